//! The catalog: the single source of truth for resources, permissions, OAuth scopes and
//! built-in roles, loaded from TOML and validated before the server starts.
//!
//! INVARIANT: a `Catalog` value is valid: every scope and role names existing permissions,
//! no `internal` permission sits in a `public`/`partner` scope unless the scope says so, and
//! an account-level role holds only permissions that apply at the account level.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::permission::{PermissionIndex, PermissionSet, MAX_PERMISSIONS};

/// The catalog shipped with Tessera (`catalog/default.toml`).
pub const DEFAULT_CATALOG_TOML: &str = include_str!("../../../catalog/default.toml");

/// The tenant level at which a permission applies or a role is bound.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// The operator itself: acts across agencies.
    Platform,
    /// A whole agency, and every account in it.
    Agency,
    /// One account.
    Account,
}

/// Who may be granted an OAuth scope.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Audience {
    /// Any app may request it.
    Public,
    /// Approved marketplace apps only.
    Partner,
    /// First-party services only; never granted to a third party.
    Internal,
}

/// A resource type, with the attributes that policies may read.
#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResourceDef {
    /// `contact`, `conversation`, …
    pub name: String,
    /// What it is, in plain words.
    #[serde(default)]
    pub description: String,
    /// Attribute name → Cedar type (`String`, `Long`, `Bool`, `Set<String>`, `Set<Long>`).
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
}

/// A permission `resource.action`.
#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PermissionDef {
    /// `contacts.read`, …
    pub name: String,
    /// The resource type it acts on.
    pub resource: String,
    /// The tenant levels it applies at.
    pub levels: Vec<Level>,
    /// Internal permissions never reach a public or partner scope unless declared.
    #[serde(default)]
    pub internal: bool,
    /// What it allows, in plain words.
    #[serde(default)]
    pub description: String,
}

/// An OAuth scope, mapping to permissions.
#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScopeDef {
    /// `contacts.readonly`, …
    pub name: String,
    /// Who may be granted it.
    pub audience: Audience,
    /// Shown on consent pages.
    #[serde(default)]
    pub description: String,
    /// The permissions it grants.
    pub permissions: Vec<String>,
    /// Set to let a non-internal scope carry internal permissions, knowingly.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_internal: bool,
}

/// A built-in role.
#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleDef {
    /// `agency_admin`, …
    pub name: String,
    /// Where it can be bound.
    pub level: Level,
    /// What it is for.
    #[serde(default)]
    pub description: String,
    /// Its permissions.
    pub permissions: Vec<String>,
}

/// The catalog file as written.
#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CatalogFile {
    /// The catalog's name.
    #[serde(default)]
    pub name: String,
    /// Resource types.
    #[serde(default)]
    pub resources: Vec<ResourceDef>,
    /// Permissions.
    #[serde(default)]
    pub permissions: Vec<PermissionDef>,
    /// OAuth scopes.
    #[serde(default)]
    pub scopes: Vec<ScopeDef>,
    /// Built-in roles.
    #[serde(default)]
    pub roles: Vec<RoleDef>,
}

/// One problem found in a catalog: the file, the entry and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CatalogProblem {
    /// The entry, such as `scope \`contacts.readonly\``.
    pub entry: String,
    /// What is wrong with it.
    pub problem: String,
}

/// A catalog that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct CatalogError {
    /// The file it came from.
    pub file: String,
    /// Every problem found (all of them, not just the first).
    pub problems: Vec<CatalogProblem>,
}

impl fmt::Display for CatalogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid catalog `{}`: {} problem(s)",
            self.file,
            self.problems.len()
        )?;
        for p in &self.problems {
            write!(f, "\n  {}: {}", p.entry, p.problem)?;
        }
        Ok(())
    }
}

/// A validated catalog with its lookup tables.
#[derive(Clone, Debug)]
pub struct Catalog {
    file: CatalogFile,
    permission_index: HashMap<String, PermissionIndex>,
    scope_sets: HashMap<String, (Audience, PermissionSet)>,
    role_sets: HashMap<String, (Level, PermissionSet)>,
    level_sets: HashMap<Level, PermissionSet>,
    internal: PermissionSet,
}

fn valid_name(s: &str, dots: bool) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && s.len() <= 64
        && chars
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || (dots && c == '.'))
}

const ATTRIBUTE_TYPES: [&str; 5] = ["String", "Long", "Bool", "Set<String>", "Set<Long>"];

impl Catalog {
    /// The default catalog, validated.
    pub fn default_catalog() -> Result<Self, CatalogError> {
        Self::from_toml("catalog/default.toml", DEFAULT_CATALOG_TOML)
    }

    /// Parses and validates a catalog; `file` names it in errors.
    pub fn from_toml(file: &str, text: &str) -> Result<Self, CatalogError> {
        let parsed: CatalogFile = toml::from_str(text).map_err(|e| CatalogError {
            file: file.to_owned(),
            problems: vec![CatalogProblem {
                entry: "(file)".into(),
                problem: e.to_string(),
            }],
        })?;
        Self::validate(file, parsed)
    }

    /// Validates a parsed catalog, reporting every problem at once.
    pub fn validate(file: &str, cat: CatalogFile) -> Result<Self, CatalogError> {
        let mut problems = Vec::new();
        macro_rules! bad {
            ($entry:expr, $problem:expr) => {
                problems.push(CatalogProblem {
                    entry: $entry,
                    problem: $problem,
                })
            };
        }

        let mut resources = HashMap::new();
        for r in &cat.resources {
            let entry = format!("resource `{}`", r.name);
            if !valid_name(&r.name, false) {
                bad!(
                    entry.clone(),
                    "name must be lowercase letters, digits and `_`".into()
                );
            }
            if resources.insert(r.name.as_str(), ()).is_some() {
                bad!(entry.clone(), "declared twice".into());
            }
            for (attr, ty) in &r.attributes {
                if !valid_name(attr, false) {
                    bad!(
                        entry.clone(),
                        format!("attribute `{attr}` has an invalid name")
                    );
                }
                if !ATTRIBUTE_TYPES.contains(&ty.as_str()) {
                    bad!(entry.clone(), format!("attribute `{attr}` has unknown type `{ty}` (expected one of {ATTRIBUTE_TYPES:?})"));
                }
            }
        }

        if cat.permissions.len() > MAX_PERMISSIONS {
            bad!(
                "(permissions)".into(),
                format!(
                    "at most {MAX_PERMISSIONS} permissions are supported, found {}",
                    cat.permissions.len()
                )
            );
        }
        let mut permission_index = HashMap::new();
        let mut level_sets: HashMap<Level, PermissionSet> = HashMap::new();
        let mut internal = PermissionSet::EMPTY;
        for (i, p) in cat.permissions.iter().enumerate().take(MAX_PERMISSIONS) {
            let entry = format!("permission `{}`", p.name);
            let well_formed = p
                .name
                .split_once('.')
                .is_some_and(|(a, b)| valid_name(a, false) && valid_name(b, false));
            if !well_formed {
                bad!(
                    entry.clone(),
                    "name must be `resource.action` in lowercase".into()
                );
            }
            if !resources.contains_key(p.resource.as_str()) {
                bad!(entry.clone(), format!("unknown resource `{}`", p.resource));
            }
            if p.levels.is_empty() {
                bad!(
                    entry.clone(),
                    "`levels` must name at least one of platform, agency, account".into()
                );
            }
            let ix = PermissionIndex(u16::try_from(i).unwrap_or(u16::MAX));
            if permission_index.insert(p.name.clone(), ix).is_some() {
                bad!(entry.clone(), "declared twice".into());
            }
            for level in &p.levels {
                level_sets.entry(*level).or_default().insert(ix);
            }
            if p.internal {
                internal.insert(ix);
            }
        }

        let resolve = |names: &[String], entry: &str, problems: &mut Vec<CatalogProblem>| {
            let mut set = PermissionSet::EMPTY;
            for n in names {
                match permission_index.get(n) {
                    Some(ix) => set.insert(*ix),
                    None => problems.push(CatalogProblem {
                        entry: entry.to_owned(),
                        problem: format!("unknown permission `{n}`"),
                    }),
                }
            }
            set
        };

        let mut scope_sets = HashMap::new();
        for s in &cat.scopes {
            let entry = format!("scope `{}`", s.name);
            if !valid_name(&s.name, true) {
                bad!(
                    entry.clone(),
                    "name must be lowercase letters, digits, `_` and `.`".into()
                );
            }
            if s.permissions.is_empty() {
                bad!(
                    entry.clone(),
                    "a scope must grant at least one permission".into()
                );
            }
            let set = resolve(&s.permissions, &entry, &mut problems);
            if s.audience != Audience::Internal && !s.allow_internal {
                for ix in set.intersect(&internal).iter() {
                    let name = &cat.permissions[ix.get()].name;
                    problems.push(CatalogProblem {
                        entry: entry.clone(),
                        problem: format!("internal permission `{name}` in a {:?} scope (set `allow_internal = true` if this is meant)", s.audience).to_lowercase(),
                    });
                }
            }
            if scope_sets
                .insert(s.name.clone(), (s.audience, set))
                .is_some()
            {
                problems.push(CatalogProblem {
                    entry,
                    problem: "declared twice".into(),
                });
            }
        }

        let mut role_sets = HashMap::new();
        for r in &cat.roles {
            let entry = format!("role `{}`", r.name);
            if !valid_name(&r.name, false) {
                problems.push(CatalogProblem {
                    entry: entry.clone(),
                    problem: "name must be lowercase letters, digits and `_`".into(),
                });
            }
            let set = resolve(&r.permissions, &entry, &mut problems);
            let allowed = match r.level {
                Level::Platform => None,
                Level::Agency => Some(
                    level_sets
                        .get(&Level::Agency)
                        .copied()
                        .unwrap_or_default()
                        .union(&level_sets.get(&Level::Account).copied().unwrap_or_default()),
                ),
                Level::Account => {
                    Some(level_sets.get(&Level::Account).copied().unwrap_or_default())
                }
            };
            if let Some(allowed) = allowed {
                for ix in set.difference(&allowed).iter() {
                    problems.push(CatalogProblem {
                        entry: entry.clone(),
                        problem: format!(
                            "permission `{}` does not apply at the {:?} level",
                            cat.permissions[ix.get()].name,
                            r.level
                        )
                        .to_lowercase(),
                    });
                }
            }
            if role_sets.insert(r.name.clone(), (r.level, set)).is_some() {
                problems.push(CatalogProblem {
                    entry,
                    problem: "declared twice".into(),
                });
            }
        }

        if problems.is_empty() {
            Ok(Self {
                file: cat,
                permission_index,
                scope_sets,
                role_sets,
                level_sets,
                internal,
            })
        } else {
            Err(CatalogError {
                file: file.to_owned(),
                problems,
            })
        }
    }

    /// The catalog as written (for export).
    pub fn file(&self) -> &CatalogFile {
        &self.file
    }

    /// The index of a permission by name.
    pub fn permission(&self, name: &str) -> Option<PermissionIndex> {
        self.permission_index.get(name).copied()
    }

    /// The definition of a permission.
    pub fn permission_def(&self, ix: PermissionIndex) -> Option<&PermissionDef> {
        self.file.permissions.get(ix.get())
    }

    /// Names of the permissions in a set, in catalog order.
    pub fn permission_names(&self, set: &PermissionSet) -> Vec<String> {
        set.iter()
            .filter_map(|ix| self.permission_def(ix))
            .map(|p| p.name.clone())
            .collect()
    }

    /// Resolves permission names; the unknown ones are returned as the error.
    pub fn permission_set(&self, names: &[String]) -> Result<PermissionSet, Vec<String>> {
        let mut set = PermissionSet::EMPTY;
        let mut unknown = Vec::new();
        for n in names {
            match self.permission(n) {
                Some(ix) => set.insert(ix),
                None => unknown.push(n.clone()),
            }
        }
        if unknown.is_empty() {
            Ok(set)
        } else {
            Err(unknown)
        }
    }

    /// A scope's audience and permissions.
    pub fn scope(&self, name: &str) -> Option<(Audience, PermissionSet)> {
        self.scope_sets.get(name).copied()
    }

    /// The union of the permissions of the scopes; unknown scopes are returned as the error.
    pub fn scopes_permissions(&self, names: &[String]) -> Result<PermissionSet, Vec<String>> {
        let mut set = PermissionSet::EMPTY;
        let mut unknown = Vec::new();
        for n in names {
            match self.scope(n) {
                Some((_, s)) => set = set.union(&s),
                None => unknown.push(n.clone()),
            }
        }
        if unknown.is_empty() {
            Ok(set)
        } else {
            Err(unknown)
        }
    }

    /// A built-in role's level and permissions.
    pub fn role(&self, name: &str) -> Option<(Level, PermissionSet)> {
        self.role_sets.get(name).copied()
    }

    /// The permissions that apply at a level.
    pub fn level_permissions(&self, level: Level) -> PermissionSet {
        self.level_sets.get(&level).copied().unwrap_or_default()
    }

    /// Internal permissions.
    pub fn internal_permissions(&self) -> PermissionSet {
        self.internal
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_catalog_is_valid_and_rich() {
        let c = match Catalog::default_catalog() {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        };
        let f = c.file();
        assert!(f.resources.len() >= 12, "resources: {}", f.resources.len());
        assert!(
            f.permissions.len() >= 40,
            "permissions: {}",
            f.permissions.len()
        );
        assert!(f.scopes.len() >= 25, "scopes: {}", f.scopes.len());
        for aud in [Audience::Public, Audience::Partner, Audience::Internal] {
            assert!(
                f.scopes.iter().any(|s| s.audience == aud),
                "no {aud:?} scope"
            );
        }
        for role in [
            "platform_admin",
            "platform_support",
            "agency_owner",
            "agency_admin",
            "agency_user",
            "account_admin",
            "account_user",
        ] {
            assert!(c.role(role).is_some(), "missing built-in role {role}");
        }
    }

    #[test]
    fn problems_name_the_entry_and_are_all_reported() {
        let text = r#"
            [[resources]]
            name = "contact"
            [[permissions]]
            name = "contacts.read"
            resource = "contact"
            levels = ["account"]
            [[permissions]]
            name = "contacts.purge"
            resource = "contact"
            levels = ["agency"]
            internal = true
            [[scopes]]
            name = "contacts.readonly"
            audience = "public"
            permissions = ["contacts.read", "contacts.nope", "contacts.purge"]
            [[roles]]
            name = "account_user"
            level = "account"
            permissions = ["contacts.purge"]
        "#;
        let err = Catalog::from_toml("mine.toml", text).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("mine.toml"), "{msg}");
        assert!(
            msg.contains("scope `contacts.readonly`: unknown permission `contacts.nope`"),
            "{msg}"
        );
        assert!(
            msg.contains("internal permission `contacts.purge`"),
            "{msg}"
        );
        assert!(msg.contains("role `account_user`: permission `contacts.purge` does not apply at the account level"), "{msg}");
        assert_eq!(err.problems.len(), 3);
    }

    #[test]
    fn a_syntax_error_names_the_file() {
        let err = Catalog::from_toml("x.toml", "[[resources]\n").unwrap_err();
        assert!(err.to_string().contains("x.toml"));
        let err = Catalog::from_toml("x.toml", "[[resources]]\nname='a'\nfoo=1\n").unwrap_err();
        assert!(err.to_string().contains("foo"), "{err}");
    }
}
