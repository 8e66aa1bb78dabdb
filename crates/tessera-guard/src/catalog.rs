//! The catalog as a guard needs it: which permissions each scope carries, which resource type
//! each permission is about, and which scopes carry a permission (for `insufficient_scope`).
//! INVARIANT: scopes map to permissions exactly as in Tessera (the union of the catalog's
//! `permissions` of each granted scope); an unknown scope carries nothing.

use std::collections::{BTreeSet, HashMap};

use serde::Deserialize;
use serde_json::Value;

use crate::error::GuardError;

#[derive(Deserialize)]
struct File {
    #[serde(default)]
    permissions: Vec<PermissionDef>,
    #[serde(default)]
    scopes: Vec<ScopeDef>,
}

#[derive(Deserialize)]
struct PermissionDef {
    name: String,
    #[serde(default)]
    resource: String,
}

#[derive(Deserialize)]
struct ScopeDef {
    name: String,
    #[serde(default)]
    audience: String,
    #[serde(default)]
    permissions: Vec<String>,
}

/// Scopes, permissions and resource types of the catalog.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    scopes: HashMap<String, Vec<String>>,
    resources: HashMap<String, String>,
    granted_by: HashMap<String, BTreeSet<String>>,
}

impl Catalog {
    /// Parses the JSON of `GET /v1/catalog`.
    pub fn from_json(value: &Value) -> Result<Self, GuardError> {
        let file =
            File::deserialize(value).map_err(|e| GuardError::Protocol(format!("catalog: {e}")))?;
        let resources: HashMap<String, String> = file
            .permissions
            .into_iter()
            .map(|p| (p.name, p.resource))
            .collect();
        let mut granted_by: HashMap<String, BTreeSet<String>> = HashMap::new();
        let mut scopes = HashMap::new();
        for s in file.scopes {
            // `insufficient_scope` names the scopes a client could ask for, not internal ones.
            if s.audience != "internal" {
                for p in &s.permissions {
                    granted_by
                        .entry(p.clone())
                        .or_default()
                        .insert(s.name.clone());
                }
            }
            scopes.insert(s.name, s.permissions);
        }
        Ok(Self {
            scopes,
            resources,
            granted_by,
        })
    }

    /// The permissions `scopes` carry.
    pub fn permissions<'a>(&self, scopes: impl IntoIterator<Item = &'a str>) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for scope in scopes {
            if let Some(perms) = self.scopes.get(scope) {
                out.extend(perms.iter().cloned());
            }
        }
        out
    }

    /// Whether `permission` is in the catalog.
    pub fn has_permission(&self, permission: &str) -> bool {
        self.resources.contains_key(permission)
    }

    /// The resource type `permission` is about.
    pub fn resource_type(&self, permission: &str) -> Option<&str> {
        self.resources.get(permission).map(String::as_str)
    }

    /// The scopes (public and partner) that carry `permission`, space-separated (for
    /// `insufficient_scope`).
    pub fn scopes_granting(&self, permission: &str) -> String {
        self.granted_by
            .get(permission)
            .map(|s| s.iter().map(String::as_str).collect::<Vec<_>>().join(" "))
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn scopes_map_to_permissions() {
        let c = Catalog::from_json(&json!({
            "permissions": [{"name": "contacts.read", "resource": "contact"},
                            {"name": "contacts.write", "resource": "contact"}],
            "scopes": [{"name": "contacts.readonly", "permissions": ["contacts.read"]},
                       {"name": "contacts.write", "permissions": ["contacts.read", "contacts.write"]}],
        }))
        .unwrap();
        let p = c.permissions(["contacts.readonly", "nope"]);
        assert_eq!(p.into_iter().collect::<Vec<_>>(), ["contacts.read"]);
        assert_eq!(c.resource_type("contacts.write"), Some("contact"));
        assert_eq!(c.scopes_granting("contacts.write"), "contacts.write");
        assert_eq!(
            c.scopes_granting("contacts.read"),
            "contacts.readonly contacts.write"
        );
        assert!(!c.has_permission("x.y"));
    }
}
