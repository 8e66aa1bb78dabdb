//! The in-memory authorization index of one agency: role permission bitsets and, per
//! principal, a compact list of grants (binding, account, role), built from a consistent
//! snapshot of the store and answering checks without IO or allocation.
//!
//! INVARIANT: `AgencyIndex::check` decides exactly as the reference `authz::authorize` does on
//! the same grants (a property test holds the two together); the cost of a check depends on
//! the principal's own grants, never on the number of agencies, accounts or principals.

use std::collections::HashMap;
use std::sync::Arc;

use crate::authz::{CredentialCap, Decision, EngineConfig, GrantSource, Reason};
use crate::catalog::Catalog;
use crate::fastmap::FastMap;
use crate::ids::{AccountId, AgencyId, BindingId, PrincipalId, RoleId};
use crate::permission::{PermissionIndex, PermissionSet};

/// One binding, packed: 40 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct CompactGrant {
    binding: [u64; 2],
    /// The account's ULID bits, kept in the grant so a check compares instead of looking up.
    account: [u64; 2],
    role: u16,
    /// Covers every account of the agency (`account` is then unused).
    wide: bool,
}

fn split(bits: u128) -> [u64; 2] {
    [(bits >> 64) as u64, bits as u64]
}

fn join(b: [u64; 2]) -> u128 {
    (u128::from(b[0]) << 64) | u128::from(b[1])
}

/// Principals are keyed by kind and ULID bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct PrincipalKey(u8, u128);

impl From<&PrincipalId> for PrincipalKey {
    fn from(p: &PrincipalId) -> Self {
        match p {
            PrincipalId::User(u) => Self(0, u.bits()),
            PrincipalId::Key(k) => Self(1, k.bits()),
            PrincipalId::Installation(i) => Self(2, i.bits()),
        }
    }
}

impl PrincipalKey {
    fn id(self) -> PrincipalId {
        match self.0 {
            0 => PrincipalId::User(crate::ids::UserId::from_bits(self.1)),
            1 => PrincipalId::Key(crate::ids::KeyId::from_bits(self.1)),
            _ => PrincipalId::Installation(crate::ids::InstallationId::from_bits(self.1)),
        }
    }
}

/// The built-in roles' permission sets, shared by every agency's index.
#[derive(Debug)]
pub struct BuiltinRoles {
    names: Vec<String>,
    sets: Vec<PermissionSet>,
    lookup: HashMap<String, u16>,
}

impl BuiltinRoles {
    /// From the catalog.
    pub fn new(catalog: &Catalog) -> Arc<Self> {
        let names: Vec<String> = catalog
            .file()
            .roles
            .iter()
            .map(|r| r.name.clone())
            .collect();
        let sets = names
            .iter()
            .map(|n| catalog.role(n).map(|(_, s)| s).unwrap_or_default())
            .collect();
        let lookup = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), u16::try_from(i).unwrap_or(u16::MAX)))
            .collect();
        Arc::new(Self {
            names,
            sets,
            lookup,
        })
    }
}

/// What the index is built from: one agency's roles and bindings at one revision.
#[derive(Clone, Debug, Default)]
pub struct IndexInput {
    /// Custom roles: id and permissions (already resolved against the catalog).
    pub roles: Vec<(RoleId, PermissionSet)>,
    /// Bindings: id, principal, role (built-in name or `rol_` id), account (`None`: agency-wide).
    pub bindings: Vec<(BindingId, PrincipalId, String, Option<AccountId>)>,
}

/// One agency's index.
#[derive(Debug)]
pub struct AgencyIndex {
    agency: AgencyId,
    is_platform: bool,
    revision: i64,
    builtin: Arc<BuiltinRoles>,
    custom: Vec<PermissionSet>,
    custom_ids: Vec<RoleId>,
    grants: Vec<CompactGrant>,
    principals: FastMap<PrincipalKey, (u32, u32)>,
}

impl AgencyIndex {
    /// Builds the index. Bindings naming an unknown role are skipped (deny by default) and
    /// reported in the second value.
    pub fn build(
        agency: AgencyId,
        is_platform: bool,
        revision: i64,
        builtin: Arc<BuiltinRoles>,
        input: IndexInput,
    ) -> (Self, Vec<BindingId>) {
        let nb = builtin.sets.len();
        let mut custom = Vec::with_capacity(input.roles.len());
        let mut custom_ids = Vec::with_capacity(input.roles.len());
        let mut custom_lookup = HashMap::with_capacity(input.roles.len());
        for (id, set) in input.roles {
            custom_lookup.insert(id.as_str().to_owned(), nb + custom.len());
            custom.push(set);
            custom_ids.push(id);
        }
        let mut skipped = Vec::new();
        let mut keyed: Vec<(PrincipalKey, CompactGrant)> = Vec::with_capacity(input.bindings.len());
        for (bid, principal, role, account) in input.bindings {
            let role_ix = builtin
                .lookup
                .get(&role)
                .map(|i| usize::from(*i))
                .or_else(|| custom_lookup.get(&role).copied());
            let Some(role_ix) = role_ix.and_then(|i| u16::try_from(i).ok()) else {
                skipped.push(bid);
                continue;
            };
            let (wide, account) = match account {
                None => (true, [0, 0]),
                Some(acc) => (false, split(acc.bits())),
            };
            keyed.push((
                PrincipalKey::from(&principal),
                CompactGrant {
                    binding: split(bid.bits()),
                    account,
                    role: role_ix,
                    wide,
                },
            ));
        }
        keyed.sort_by_key(|(k, _)| *k);
        let mut principals = FastMap::default();
        let mut grants = Vec::with_capacity(keyed.len());
        let mut i = 0;
        while i < keyed.len() {
            let key = keyed[i].0;
            let start = grants.len();
            while i < keyed.len() && keyed[i].0 == key {
                grants.push(keyed[i].1);
                i += 1;
            }
            let (s, n) = (
                u32::try_from(start).unwrap_or(u32::MAX),
                u32::try_from(grants.len() - start).unwrap_or(0),
            );
            principals.insert(key, (s, n));
        }
        grants.shrink_to_fit();
        let index = Self {
            agency,
            is_platform,
            revision,
            builtin,
            custom,
            custom_ids,
            grants,
            principals,
        };
        (index, skipped)
    }

    /// The agency.
    pub fn agency(&self) -> &AgencyId {
        &self.agency
    }

    /// Whether this is the platform tenant.
    pub fn is_platform(&self) -> bool {
        self.is_platform
    }

    /// The store revision the index reflects.
    pub fn revision(&self) -> i64 {
        self.revision
    }

    /// A rough size in bytes, for the cache's memory budget.
    pub fn approx_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.grants.capacity() * std::mem::size_of::<CompactGrant>()
            + self.principals.capacity() * (std::mem::size_of::<(PrincipalKey, (u32, u32))>() + 1)
            + self.custom.capacity() * (std::mem::size_of::<PermissionSet>() + 40)
    }

    fn role_set(&self, role: u16) -> &PermissionSet {
        let r = usize::from(role);
        if r < self.builtin.sets.len() {
            &self.builtin.sets[r]
        } else {
            self.custom
                .get(r - self.builtin.sets.len())
                .unwrap_or(&PermissionSet::EMPTY)
        }
    }

    fn role_name(&self, role: u16) -> String {
        let r = usize::from(role);
        if r < self.builtin.names.len() {
            self.builtin.names[r].clone()
        } else {
            self.custom_ids
                .get(r - self.builtin.names.len())
                .map(|id| id.to_string())
                .unwrap_or_default()
        }
    }

    fn grants_of(&self, key: PrincipalKey) -> &[CompactGrant] {
        match self.principals.get(&key) {
            Some((start, n)) => {
                let (s, n) = (*start as usize, *n as usize);
                self.grants.get(s..s + n).unwrap_or(&[])
            }
            None => &[],
        }
    }

    /// The account a check targets, as grant bits (`None`: the agency level, or across tenants).
    fn target_bits(account: Option<&AccountId>, agency_wide_only: bool) -> Option<[u64; 2]> {
        if agency_wide_only {
            None
        } else {
            account.map(|a| split(a.bits()))
        }
    }

    /// The union of the role permissions of the principal's bindings covering `account`
    /// (`None`: the agency level, which only agency-wide bindings cover). With
    /// `agency_wide_only`, account bindings are ignored (cross-tenant use).
    pub fn held(
        &self,
        principal: &PrincipalId,
        account: Option<&AccountId>,
        agency_wide_only: bool,
    ) -> PermissionSet {
        let grants = self.grants_of(PrincipalKey::from(principal));
        let target = Self::target_bits(account, agency_wide_only);
        let mut out = PermissionSet::EMPTY;
        for g in grants {
            if g.wide || Some(g.account) == target {
                out = out.union(self.role_set(g.role));
            }
        }
        out
    }

    /// The bindings (and their roles) that grant `permission` to the principal at `account`.
    pub fn explain(
        &self,
        principal: &PrincipalId,
        permission: PermissionIndex,
        account: Option<&AccountId>,
        agency_wide_only: bool,
    ) -> Vec<(GrantSource, String)> {
        let target = Self::target_bits(account, agency_wide_only);
        self.grants_of(PrincipalKey::from(principal))
            .iter()
            .filter(|g| {
                (g.wide || Some(g.account) == target) && self.role_set(g.role).contains(permission)
            })
            .map(|g| {
                (
                    GrantSource::Binding(BindingId::from_bits(join(g.binding))),
                    self.role_name(g.role),
                )
            })
            .collect()
    }

    /// The principal's bindings as the index holds them: (binding, role name or custom
    /// role id, account or `None` for agency-wide), in binding id order (access reviews).
    pub fn bindings_of(
        &self,
        principal: &PrincipalId,
    ) -> Vec<(BindingId, String, Option<AccountId>)> {
        let mut out: Vec<(BindingId, String, Option<AccountId>)> = self
            .grants_of(PrincipalKey::from(principal))
            .iter()
            .map(|g| {
                (
                    BindingId::from_bits(join(g.binding)),
                    self.role_name(g.role),
                    (!g.wide).then(|| AccountId::from_bits(join(g.account))),
                )
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// The accounts on which the principal holds account bindings, in id order: with the
    /// agency level, every place where its permissions can differ.
    pub fn bound_accounts(&self, principal: &PrincipalId) -> Vec<AccountId> {
        let mut out: Vec<AccountId> = self
            .grants_of(PrincipalKey::from(principal))
            .iter()
            .filter(|g| !g.wide)
            .map(|g| AccountId::from_bits(join(g.account)))
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// The principals bound to the role named `role` (a built-in name or a custom role's id),
    /// anywhere in the agency.
    pub fn holders_of(&self, role: &str) -> Vec<PrincipalId> {
        let mut out: Vec<PrincipalKey> = self
            .principals
            .iter()
            .filter(|(_, (start, n))| {
                let (s, n) = (*start as usize, *n as usize);
                self.grants
                    .get(s..s + n)
                    .unwrap_or(&[])
                    .iter()
                    .any(|g| self.role_name(g.role) == role)
            })
            .map(|(k, _)| *k)
            .collect();
        out.sort();
        out.into_iter().map(PrincipalKey::id).collect()
    }

    /// The principals with at least one binding, in id order, after `cursor`.
    pub fn principals_after(&self, cursor: Option<&PrincipalId>) -> Vec<PrincipalId> {
        let after = cursor.map(PrincipalKey::from);
        let mut keys: Vec<PrincipalKey> = self
            .principals
            .keys()
            .copied()
            .filter(|k| after.is_none_or(|a| *k > a))
            .collect();
        keys.sort();
        keys.into_iter().map(PrincipalKey::id).collect()
    }

    /// The role names and ids a principal holds anywhere in the agency (for ABAC attributes).
    pub fn role_names(&self, principal: &PrincipalId) -> Vec<String> {
        let mut names: Vec<String> = self
            .grants_of(PrincipalKey::from(principal))
            .iter()
            .map(|g| self.role_name(g.role))
            .collect();
        names.sort();
        names.dedup();
        names
    }
}

/// One check against the indexes.
#[derive(Clone, Copy, Debug)]
pub struct Check<'a> {
    /// Who.
    pub principal: &'a PrincipalId,
    /// The index of the principal's own agency.
    pub home: &'a AgencyIndex,
    /// A grant the credential carries itself (an API key's scopes), with its account.
    pub own_grant: Option<(&'a PermissionSet, Option<&'a AccountId>)>,
    /// The credential's cap.
    pub cap: &'a CredentialCap,
    /// What.
    pub permission: PermissionIndex,
    /// Where: the agency.
    pub agency: &'a AgencyId,
    /// Where: the account, for account-level resources.
    pub account: Option<&'a AccountId>,
}

/// The permissions `c.principal` may exercise at the target, and whether that crosses tenants.
pub fn effective(c: &Check<'_>, cfg: EngineConfig) -> Result<(PermissionSet, bool), Reason> {
    let cap = |s: PermissionSet| match &c.cap.permissions {
        Some(cap) => s.intersect(cap),
        None => s,
    };
    let own = |account: Option<&AccountId>, agency_wide_only: bool| match c.own_grant {
        Some((set, None)) => *set,
        Some((set, Some(bound))) if !agency_wide_only && account == Some(bound) => *set,
        _ => PermissionSet::EMPTY,
    };
    let cross = c.agency != c.home.agency();
    if cross {
        let platform_wide = cap(c.home.held(c.principal, None, true).union(&own(None, true)));
        if !(c.home.is_platform() && platform_wide.contains(cfg.cross_tenant)) {
            return Err(Reason::OtherTenant);
        }
    }
    if let Some(bound) = &c.cap.account {
        if c.account != Some(bound) {
            return Err(Reason::OutsideCredentialAccount);
        }
    }
    let held = c
        .home
        .held(c.principal, c.account, cross)
        .union(&own(c.account, cross));
    Ok((cap(held), cross))
}

/// Decides a check (RBAC and the credential cap; ABAC is applied by the caller after).
pub fn check(c: &Check<'_>, cfg: EngineConfig) -> Decision {
    match effective(c, cfg) {
        Err(reason) => Decision {
            allowed: false,
            reason,
        },
        Ok((set, cross_tenant)) if set.contains(c.permission) => Decision {
            allowed: true,
            reason: Reason::Granted {
                via: Vec::new(),
                cross_tenant,
            },
        },
        // Without a scope cap nothing was capped away: the permission is simply not granted.
        Ok(_) if c.cap.permissions.is_none() => Decision {
            allowed: false,
            reason: Reason::NotGranted,
        },
        Ok(_) => {
            // Say whether a grant existed but the cap removed it.
            let uncapped = Check {
                cap: &CredentialCap {
                    permissions: None,
                    account: c.cap.account.clone(),
                },
                ..*c
            };
            let reason = match effective(&uncapped, cfg) {
                Ok((set, _)) if set.contains(c.permission) => Reason::OutsideCredentialScope,
                _ => Reason::NotGranted,
            };
            Decision {
                allowed: false,
                reason,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authz::{authorize, Grant, Subject, Target};
    use proptest::prelude::*;
    use rand::SeedableRng;

    fn catalog() -> Catalog {
        Catalog::default_catalog().unwrap()
    }

    proptest! {
        /// The index decides exactly as the reference engine on the same grants.
        #[test]
        fn index_matches_the_reference(
            bindings in proptest::collection::vec((0usize..3, 0usize..4, proptest::option::of(0usize..3)), 0..12),
            cap in proptest::option::of(proptest::collection::vec(0usize..40, 0..10)),
            cap_acc in proptest::option::of(0usize..3),
            own in proptest::option::of((proptest::collection::vec(0usize..40, 0..8), proptest::option::of(0usize..3))),
            who in 0usize..3, target_acc in proptest::option::of(0usize..4), cross in any::<bool>(), platform in any::<bool>(),
            perm in 0usize..40,
        ) {
            let cat = catalog();
            let cfg = EngineConfig { cross_tenant: cat.permission("platform.cross_tenant").unwrap() };
            let builtin = BuiltinRoles::new(&cat);
            let roles = ["agency_admin", "account_user", "platform_admin", "account_viewer"];
            let mut rng = rand::rngs::StdRng::seed_from_u64(3);
            let home = AgencyId::generate_at(1, &mut rng);
            let other = AgencyId::generate_at(2, &mut rng);
            let users: Vec<PrincipalId> = (0..3).map(|i| PrincipalId::User(crate::ids::UserId::generate_at(i, &mut rng))).collect();
            let accs: Vec<AccountId> = (0..4).map(|i| AccountId::generate_at(i, &mut rng)).collect();
            let perms: Vec<PermissionIndex> = (0..40).map(|i| PermissionIndex(u16::try_from(i * 2).unwrap())).collect();
            let set = |v: &Vec<usize>| v.iter().map(|i| perms[*i]).collect::<PermissionSet>();
            let input = IndexInput {
                roles: vec![],
                bindings: bindings.iter().map(|(u, r, a)| (BindingId::generate_at(5, &mut rng), users[*u].clone(), roles[*r].to_owned(), a.map(|i| accs[i].clone()))).collect(),
            };
            let (index, skipped) = AgencyIndex::build(home.clone(), platform, 1, builtin, input.clone());
            prop_assert!(skipped.is_empty());
            let cap = CredentialCap { permissions: cap.as_ref().map(set), account: cap_acc.map(|i| accs[i].clone()) };
            let own_set = own.as_ref().map(|(v, _)| set(v));
            let own_acc = own.as_ref().and_then(|(_, a)| a.map(|i| accs[i].clone()));
            let target_agency = if cross { &other } else { &home };
            let c = Check {
                principal: &users[who], home: &index, own_grant: own_set.as_ref().map(|s| (s, own_acc.as_ref())), cap: &cap,
                permission: perms[perm], agency: target_agency, account: target_acc.map(|i| &accs[i]),
            };
            let fast = check(&c, cfg);
            let mut grants: Vec<Grant> = input.bindings.iter().filter(|(_, p, _, _)| *p == users[who]).map(|(b, _, r, a)| Grant {
                source: GrantSource::Binding(b.clone()), account: a.clone(), permissions: cat.role(r).unwrap().1,
            }).collect();
            if let Some(s) = own_set {
                grants.push(Grant { source: GrantSource::KeyScopes(crate::ids::KeyId::generate_at(1, &mut rng)), account: own_acc.clone(), permissions: s });
            }
            let subject = Subject { agency: home.clone(), is_platform: platform, grants, cap: cap.clone() };
            let slow = authorize(&subject, perms[perm], Target { agency: target_agency, account: target_acc.map(|i| &accs[i]) }, cfg);
            prop_assert_eq!(fast.allowed, slow.allowed);
            if !fast.allowed {
                prop_assert_eq!(fast.reason, slow.reason);
            }
        }
    }

    #[test]
    fn unknown_roles_are_skipped_and_custom_roles_resolve() {
        let cat = catalog();
        let mut rng = rand::rngs::StdRng::seed_from_u64(4);
        let agy = AgencyId::generate_at(1, &mut rng);
        let u = PrincipalId::User(crate::ids::UserId::generate_at(1, &mut rng));
        let role = RoleId::generate_at(1, &mut rng);
        let read = cat.permission("contacts.read").unwrap();
        let b1 = BindingId::generate_at(1, &mut rng);
        let b2 = BindingId::generate_at(1, &mut rng);
        let input = IndexInput {
            roles: vec![(role.clone(), [read].into_iter().collect())],
            bindings: vec![
                (b1.clone(), u.clone(), role.to_string(), None),
                (b2.clone(), u.clone(), "no_such_role".into(), None),
            ],
        };
        let (index, skipped) = AgencyIndex::build(agy, false, 7, BuiltinRoles::new(&cat), input);
        assert_eq!(skipped, vec![b2]);
        assert!(index.held(&u, None, false).contains(read));
        assert_eq!(
            index.explain(&u, read, None, false),
            vec![(GrantSource::Binding(b1), role.to_string())]
        );
        assert_eq!(index.role_names(&u), vec![role.to_string()]);
        assert_eq!(index.principals_after(None), vec![u.clone()]);
        assert!(index.principals_after(Some(&u)).is_empty());
        assert_eq!(index.revision(), 7);
    }
}
