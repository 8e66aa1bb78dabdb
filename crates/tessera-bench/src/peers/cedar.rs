//! The same RBAC data as Cedar policies and entities, evaluated with
//! `cedar_policy::Authorizer::is_authorized` over one shared policy set and entity store.
//!
//! Both encodings use Cedar's action groups: each permission is an action entity `in` the group
//! `Bench::Action::"role:<role>"` of every role that holds it, so a policy names one group
//! rather than listing the role's actions (a listed `action in [..]` is several times slower,
//! since Cedar rebuilds each policy's condition per request). Two ways to bind roles, both
//! deciding exactly as Tessera's bindings do (the harness counts every disagreement):
//! - **groups**, Cedar's textbook RBAC: a role at a scope is a group entity
//!   `Bench::Role::"<scope>/<role>"` the user is `in`; one template per role,
//!   `permit(principal in ?principal, action in Bench::Action::"role:<role>", resource in ?resource);`,
//!   linked once per group with `?resource` = `Bench::Agency::"agy_…"` (agency-wide) or
//!   `Bench::Account::"acc_…"`; `Account in Agency`, so an agency-wide link covers the agency
//!   and all its accounts. Policies grow with the (scope, role) pairs in use.
//! - **tags**, Cedar's entity tags (RFC 82) for per-resource roles: the user carries one tag per
//!   scope it holds roles at (`"acc_…" → {"account_user", …}`); one policy per role,
//!   `permit(principal, action in Bench::Action::"role:<role>", resource) when {
//!   principal.hasTag(resource.scope) && principal.getTag(resource.scope).contains("<role>")
//!   || …(resource.agency_scope)… };`. Policies grow with the roles (8 built-in + 2 custom per
//!   agency), not with the bindings.
//! - **tags, one policy set per agency**: the same, partitioned by tenant (a policy store per
//!   tenant): the request is evaluated against the built-in roles' policies and the target
//!   agency's own custom roles only (10 policies).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::str::FromStr;

use cedar_policy::{
    Authorizer, Context, Decision, Entities, Entity, EntityId, EntityTypeName, EntityUid, PolicyId,
    PolicySet, Request, RestrictedExpression, SlotId, Template,
};

use crate::data::{AgencyData, Role, Sample, World};

/// Which encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// Role groups and linked templates.
    Groups,
    /// Entity tags and one policy per role.
    Tags,
    /// Entity tags, with one policy set per agency (built-in roles + its custom roles), chosen
    /// by the target's agency: Cedar partitioned by tenant, as a policy store per tenant would.
    TagsPerAgency,
}

#[derive(Debug)]
struct Types {
    user: EntityTypeName,
    role: EntityTypeName,
    agency: EntityTypeName,
    account: EntityTypeName,
    action: EntityTypeName,
}

impl Types {
    fn new() -> anyhow::Result<Self> {
        let t = |n: &str| {
            EntityTypeName::from_str(&format!("Bench::{n}")).map_err(|e| anyhow::anyhow!("{e}"))
        };
        Ok(Self {
            user: t("User")?,
            role: t("Role")?,
            agency: t("Agency")?,
            account: t("Account")?,
            action: t("Action")?,
        })
    }

    fn uid(ty: &EntityTypeName, id: &str) -> EntityUid {
        EntityUid::from_type_name_and_id(ty.clone(), EntityId::new(id))
    }
}

/// A built Cedar deployment.
#[derive(Debug)]
pub struct CedarPeer {
    authorizer: Authorizer,
    policies: PolicySet,
    /// For `TagsPerAgency`: the policy set of each agency, by agency id.
    per_agency: HashMap<String, PolicySet>,
    entities: Entities,
    types: Types,
    /// Static and linked policies evaluated per request (per agency for `TagsPerAgency`).
    pub policy_count: usize,
    /// Entities in the store.
    pub entity_count: usize,
}

/// The action group of a role: `Bench::Action::"role:<name>"`, parent of each of its actions.
fn action_group(types: &Types, role: &str) -> EntityUid {
    Types::uid(&types.action, &format!("role:{role}"))
}

/// One entity per catalog permission, `in` the action group of every role that holds it
/// (Cedar's action groups, as a schema's `memberOf` declares them).
fn action_entities(
    world: &World,
    types: &Types,
    roles: &[(String, tessera_core::PermissionSet)],
) -> Vec<Entity> {
    world
        .permissions
        .iter()
        .map(|p| {
            let parents: HashSet<EntityUid> = roles
                .iter()
                .filter(|(_, set)| set.contains(*p))
                .map(|(name, _)| action_group(types, name))
                .collect();
            Entity::new_no_attrs(
                Types::uid(&types.action, world.permission_name(*p)),
                parents,
            )
        })
        .collect()
}

/// Every role of the deployment: built-in ones, then each agency's custom ones (name, set).
fn all_roles(world: &World, agencies: &[AgencyData]) -> Vec<(String, tessera_core::PermissionSet)> {
    let mut roles = world.roles.clone();
    for a in agencies {
        roles.extend(a.custom.iter().map(|(id, set)| (id.to_string(), *set)));
    }
    roles
}

/// The scope a binding is at: the agency or one account.
fn scope(a: &AgencyData, account: Option<u32>) -> &str {
    match account {
        Some(i) => a.accounts[i as usize].as_str(),
        None => a.agency.as_str(),
    }
}

impl CedarPeer {
    /// Encodes every agency.
    pub fn build(
        world: &World,
        agencies: &[AgencyData],
        encoding: Encoding,
    ) -> anyhow::Result<Self> {
        let types = Types::new()?;
        let mut policies = PolicySet::new();
        let mut per_agency = HashMap::new();
        let mut entities: Vec<Entity> = Vec::new();
        let roles = all_roles(world, agencies);
        let string = |s: &str| RestrictedExpression::new_string(s.to_owned());
        entities.extend(action_entities(world, &types, &roles));
        for a in agencies {
            let agency_uid = Types::uid(&types.agency, a.agency.as_str());
            let scope_attrs = |own: &str| -> HashMap<String, RestrictedExpression> {
                if encoding != Encoding::Groups {
                    HashMap::from([
                        ("scope".to_owned(), string(own)),
                        ("agency_scope".to_owned(), string(a.agency.as_str())),
                    ])
                } else {
                    HashMap::new()
                }
            };
            entities.push(Entity::new(
                agency_uid.clone(),
                scope_attrs(a.agency.as_str()),
                HashSet::new(),
            )?);
            for acc in &a.accounts {
                entities.push(Entity::new(
                    Types::uid(&types.account, acc.as_str()),
                    scope_attrs(acc.as_str()),
                    HashSet::from([agency_uid.clone()]),
                )?);
            }
        }
        match encoding {
            Encoding::Groups => {
                for (name, _) in &roles {
                    let text = format!(
                        "permit(principal in ?principal, action in {}, resource in ?resource);",
                        action_group(&types, name)
                    );
                    policies.add_template(Template::parse(
                        Some(PolicyId::new(format!("role:{name}"))),
                        &text,
                    )?)?;
                }
                for a in agencies {
                    let mut groups_of: HashMap<u32, HashSet<EntityUid>> = HashMap::new();
                    let mut linked: HashSet<(Option<u32>, Role)> = HashSet::new();
                    for b in &a.bindings {
                        let role = a.role_name(world, b.role);
                        let scope = scope(a, b.account);
                        let group = Types::uid(&types.role, &format!("{scope}/{role}"));
                        groups_of.entry(b.user).or_default().insert(group.clone());
                        if linked.insert((b.account, b.role)) {
                            let resource = match b.account {
                                Some(_) => Types::uid(&types.account, scope),
                                None => Types::uid(&types.agency, scope),
                            };
                            policies.link(
                                PolicyId::new(format!("role:{role}")),
                                PolicyId::new(format!("link:{scope}/{role}")),
                                HashMap::from([
                                    (SlotId::principal(), group),
                                    (SlotId::resource(), resource),
                                ]),
                            )?;
                        }
                    }
                    for (u, groups) in groups_of {
                        entities.push(Entity::new_no_attrs(
                            Types::uid(&types.user, a.users[u as usize].as_str()),
                            groups,
                        ));
                    }
                }
            }
            Encoding::Tags | Encoding::TagsPerAgency => {
                let policy = |name: &str| {
                    let text = format!(
                        "permit(principal, action in {}, resource) when {{ \
                         (principal.hasTag(resource.scope) && principal.getTag(resource.scope).contains(\"{name}\")) || \
                         (principal.hasTag(resource.agency_scope) && principal.getTag(resource.agency_scope).contains(\"{name}\")) }};",
                        action_group(&types, name)
                    );
                    cedar_policy::Policy::parse(Some(PolicyId::new(format!("role:{name}"))), &text)
                        .map_err(anyhow::Error::from)
                };
                if encoding == Encoding::Tags {
                    for (name, _) in &roles {
                        policies.add(policy(name)?)?;
                    }
                } else {
                    for a in agencies {
                        let mut set = PolicySet::new();
                        for (name, _) in &world.roles {
                            set.add(policy(name)?)?;
                        }
                        for (id, _) in &a.custom {
                            set.add(policy(id.as_str())?)?;
                        }
                        per_agency.insert(a.agency.as_str().to_owned(), set);
                    }
                }
                for a in agencies {
                    let mut tags_of: HashMap<u32, BTreeMap<&str, BTreeSet<String>>> =
                        HashMap::new();
                    for b in &a.bindings {
                        tags_of
                            .entry(b.user)
                            .or_default()
                            .entry(scope(a, b.account))
                            .or_default()
                            .insert(a.role_name(world, b.role));
                    }
                    for (u, tags) in tags_of {
                        let tags = tags.into_iter().map(|(scope, roles)| {
                            (
                                scope.to_owned(),
                                RestrictedExpression::new_set(roles.iter().map(|r| string(r))),
                            )
                        });
                        entities.push(Entity::new_with_tags(
                            Types::uid(&types.user, a.users[u as usize].as_str()),
                            [],
                            [],
                            tags,
                        )?);
                    }
                }
            }
        }
        let entity_count = entities.len();
        let entities = Entities::from_entities(entities, None)?;
        let policy_count = if encoding == Encoding::TagsPerAgency {
            per_agency
                .values()
                .map(|s| s.policies().count())
                .max()
                .unwrap_or(0)
        } else {
            policies.policies().count()
        };
        Ok(Self {
            authorizer: Authorizer::new(),
            policy_count,
            policies,
            per_agency,
            entities,
            types,
            entity_count,
        })
    }

    /// Decides one sample: builds the request from its ids and asks the authorizer.
    pub fn decide(&self, world: &World, s: &Sample) -> bool {
        let resource = match &s.account {
            Some(acc) => Types::uid(&self.types.account, acc.as_str()),
            None => Types::uid(&self.types.agency, s.agency.as_str()),
        };
        let Ok(request) = Request::new(
            Types::uid(&self.types.user, s.principal.as_str()),
            Types::uid(&self.types.action, world.permission_name(s.permission)),
            resource,
            Context::empty(),
            None,
        ) else {
            return false;
        };
        let policies = if self.per_agency.is_empty() {
            &self.policies
        } else {
            match self.per_agency.get(s.agency.as_str()) {
                Some(set) => set,
                None => return false,
            }
        };
        self.authorizer
            .is_authorized(&request, policies, &self.entities)
            .decision()
            == Decision::Allow
    }
}
