//! The synthetic dataset every benchmark shares: agencies, their accounts and users, two custom
//! roles per agency, role bindings, and check tuples sampled from them.
//!
//! INVARIANT: the expected answer of a sample is computed here, from the generated bindings,
//! independently of every engine measured (Tessera, Cedar, casbin), so each engine is checked
//! against the same reference. Generation is deterministic for a seed.

use std::sync::Arc;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::Rng;
use tessera_core::index::{BuiltinRoles, IndexInput};
use tessera_core::{
    AccountId, AgencyId, BindingId, Catalog, EngineConfig, Level, PermissionIndex, PermissionSet,
    PrincipalId, RoleId, UserId,
};

/// Milliseconds in the generated ULIDs (mid 2025): ids look like real ones.
const ULID_MILLIS: u128 = 1_750_000_000_000;
/// Permissions in each generated custom role.
const CUSTOM_ROLE_SIZE: usize = 15;
/// Custom roles per agency.
pub const CUSTOM_ROLES: usize = 2;
/// Bindings per user on average: users per agency = bindings / this.
pub const BINDINGS_PER_USER: usize = 5;

/// A fresh ULID's 128 bits.
pub fn ulid(rng: &mut StdRng) -> u128 {
    (ULID_MILLIS << 80) | (rng.gen::<u128>() & ((1u128 << 80) - 1))
}

/// What every agency shares: the catalog and its built-in roles.
#[derive(Debug)]
pub struct World {
    /// The default catalog.
    pub catalog: Catalog,
    /// The index's view of the built-in roles.
    pub builtin: Arc<BuiltinRoles>,
    /// The engine configuration.
    pub cfg: EngineConfig,
    /// Every built-in role of the catalog: name and permissions.
    pub roles: Vec<(String, PermissionSet)>,
    /// Every catalog permission.
    pub permissions: Vec<PermissionIndex>,
    /// The permissions that apply at the account level (custom roles draw from these).
    pub account_permissions: Vec<PermissionIndex>,
    agency_admin: usize,
    agency_user: usize,
    account_user: usize,
    account_viewer: usize,
}

fn role_ix(roles: &[(String, PermissionSet)], name: &str) -> anyhow::Result<usize> {
    roles
        .iter()
        .position(|(n, _)| n == name)
        .ok_or_else(|| anyhow::anyhow!("the catalog has no built-in role `{name}`"))
}

impl World {
    /// From the default catalog.
    pub fn new() -> anyhow::Result<Self> {
        let catalog = Catalog::default_catalog()?;
        let roles: Vec<(String, PermissionSet)> = catalog
            .file()
            .roles
            .iter()
            .map(|r| {
                let set = catalog.role(&r.name).map(|(_, s)| s).unwrap_or_default();
                (r.name.clone(), set)
            })
            .collect();
        let permissions: Vec<PermissionIndex> = catalog
            .file()
            .permissions
            .iter()
            .filter_map(|p| catalog.permission(&p.name))
            .collect();
        let account_permissions = catalog.level_permissions(Level::Account).iter().collect();
        let cross_tenant = catalog
            .permission("platform.cross_tenant")
            .ok_or_else(|| anyhow::anyhow!("the catalog lacks `platform.cross_tenant`"))?;
        Ok(Self {
            builtin: BuiltinRoles::new(&catalog),
            cfg: EngineConfig { cross_tenant },
            agency_admin: role_ix(&roles, "agency_admin")?,
            agency_user: role_ix(&roles, "agency_user")?,
            account_user: role_ix(&roles, "account_user")?,
            account_viewer: role_ix(&roles, "account_viewer")?,
            catalog,
            roles,
            permissions,
            account_permissions,
        })
    }

    /// A permission's catalog name.
    pub fn permission_name(&self, p: PermissionIndex) -> &str {
        self.catalog
            .permission_def(p)
            .map_or("", |d| d.name.as_str())
    }
}

/// A role as a binding names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// A built-in role: index into `World::roles`.
    Builtin(usize),
    /// One of the agency's custom roles: index into `AgencyData::custom`.
    Custom(usize),
}

/// One role binding.
#[derive(Clone, Copy, Debug)]
pub struct Binding {
    /// The binding id's ULID bits.
    pub id: u128,
    /// Index into `AgencyData::users`.
    pub user: u32,
    /// The role.
    pub role: Role,
    /// Index into `AgencyData::accounts`; `None`: agency-wide.
    pub account: Option<u32>,
}

/// One generated agency.
#[derive(Debug)]
pub struct AgencyData {
    /// Its id.
    pub agency: AgencyId,
    /// Its accounts.
    pub accounts: Vec<AccountId>,
    /// Its users.
    pub users: Vec<UserId>,
    /// Its custom roles.
    pub custom: Vec<(RoleId, PermissionSet)>,
    /// Its bindings.
    pub bindings: Vec<Binding>,
}

/// One check, with the answer the bindings imply.
#[derive(Clone, Debug)]
pub struct Sample {
    /// The principal's own agency (its index is looked up by this id).
    pub home: AgencyId,
    /// Who.
    pub principal: PrincipalId,
    /// What.
    pub permission: PermissionIndex,
    /// The target agency (another one for a cross-tenant sample).
    pub agency: AgencyId,
    /// The target account (`None`: the agency level).
    pub account: Option<AccountId>,
    /// The reference answer.
    pub expect: bool,
}

impl Sample {
    /// Rough heap and inline size, to account for the sample pool in RSS figures.
    pub fn approx_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.home.as_str().len()
            + self.principal.as_str().len()
            + self.agency.as_str().len()
            + self.account.as_ref().map_or(0, |a| a.as_str().len())
    }
}

/// How a sample is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Draw {
    /// Half allowed, about 45% denied, 5% in another tenant (denied).
    Mixed,
    /// RBAC-allowed checks of this permission only (for the Cedar-condition run).
    AllowedOf(PermissionIndex),
}

impl AgencyData {
    /// Generates one agency with `accounts` accounts and `bindings` bindings over
    /// `bindings / BINDINGS_PER_USER` users.
    ///
    /// Binding mix: 5% `agency_admin` and 5% `agency_user` agency-wide; 40% `account_user` and
    /// 30% `account_viewer` on one account; 15% a custom role on one account, 5% agency-wide.
    pub fn generate(world: &World, rng: &mut StdRng, accounts: usize, bindings: usize) -> Self {
        let agency = AgencyId::from_bits(ulid(rng));
        let accounts: Vec<AccountId> = (0..accounts.max(1))
            .map(|_| AccountId::from_bits(ulid(rng)))
            .collect();
        let users: Vec<UserId> = (0..(bindings / BINDINGS_PER_USER).max(1))
            .map(|_| UserId::from_bits(ulid(rng)))
            .collect();
        let custom = (0..CUSTOM_ROLES)
            .map(|_| {
                let set = world
                    .account_permissions
                    .choose_multiple(rng, CUSTOM_ROLE_SIZE)
                    .copied()
                    .collect();
                (RoleId::from_bits(ulid(rng)), set)
            })
            .collect();
        let n_acc = u32::try_from(accounts.len()).unwrap_or(u32::MAX);
        let n_users = u32::try_from(users.len()).unwrap_or(u32::MAX);
        let bindings = (0..bindings)
            .map(|_| {
                let account = Some(rng.gen_range(0..n_acc));
                let (role, account) = match rng.gen_range(0..100) {
                    0..5 => (Role::Builtin(world.agency_admin), None),
                    5..10 => (Role::Builtin(world.agency_user), None),
                    10..50 => (Role::Builtin(world.account_user), account),
                    50..80 => (Role::Builtin(world.account_viewer), account),
                    80..95 => (Role::Custom(rng.gen_range(0..CUSTOM_ROLES)), account),
                    _ => (Role::Custom(rng.gen_range(0..CUSTOM_ROLES)), None),
                };
                Binding {
                    id: ulid(rng),
                    user: rng.gen_range(0..n_users),
                    role,
                    account,
                }
            })
            .collect();
        Self {
            agency,
            accounts,
            users,
            custom,
            bindings,
        }
    }

    /// The role's name as bindings carry it (built-in name or `rol_` id).
    pub fn role_name(&self, world: &World, role: Role) -> String {
        match role {
            Role::Builtin(i) => world.roles[i].0.clone(),
            Role::Custom(i) => self.custom[i].0.to_string(),
        }
    }

    /// The role's permissions.
    pub fn role_set(&self, world: &World, role: Role) -> PermissionSet {
        match role {
            Role::Builtin(i) => world.roles[i].1,
            Role::Custom(i) => self.custom[i].1,
        }
    }

    /// The index input, as the server builds it from a store snapshot.
    pub fn index_input(&self, world: &World) -> IndexInput {
        IndexInput {
            roles: self.custom.clone(),
            bindings: self
                .bindings
                .iter()
                .map(|b| {
                    (
                        BindingId::from_bits(b.id),
                        PrincipalId::User(self.users[b.user as usize].clone()),
                        self.role_name(world, b.role),
                        b.account.map(|a| self.accounts[a as usize].clone()),
                    )
                })
                .collect(),
        }
    }

    /// The reference: what `user` holds at `account` (`None`: agency level, where only
    /// agency-wide bindings count).
    pub fn held(&self, world: &World, user: u32, account: Option<u32>) -> PermissionSet {
        self.bindings
            .iter()
            .filter(|b| b.user == user && (b.account.is_none() || b.account == account))
            .fold(PermissionSet::EMPTY, |acc, b| {
                acc.union(&self.role_set(world, b.role))
            })
    }

    fn random_account(&self, rng: &mut StdRng, agency_level: u32) -> Option<u32> {
        if rng.gen_range(0..100) < agency_level {
            None
        } else {
            u32::try_from(rng.gen_range(0..self.accounts.len())).ok()
        }
    }

    /// Draws one check. `other` (another agency and one of its accounts) makes cross-tenant
    /// samples possible. `None` when the draw is impossible (no binding holds the permission).
    pub fn sample(
        &self,
        world: &World,
        rng: &mut StdRng,
        draw: Draw,
        other: Option<(&AgencyId, &AccountId)>,
    ) -> Option<Sample> {
        let b = match draw {
            Draw::Mixed => *self.bindings.choose(rng)?,
            Draw::AllowedOf(p) => {
                let holders: Vec<&Binding> = self
                    .bindings
                    .iter()
                    .filter(|b| self.role_set(world, b.role).contains(p))
                    .collect();
                **holders.choose(rng)?
            }
        };
        let principal = PrincipalId::User(self.users[b.user as usize].clone());
        let kind = rng.gen_range(0..100);
        if let (Draw::Mixed, true, Some((agency, account))) = (draw, kind < 5, other) {
            let permission = *world.permissions.choose(rng)?;
            return Some(Sample {
                home: self.agency.clone(),
                principal,
                permission,
                agency: agency.clone(),
                account: Some(account.clone()),
                expect: false,
            });
        }
        let allow_target = |rng: &mut StdRng| b.account.or_else(|| self.random_account(rng, 20));
        let (permission, account) = match draw {
            Draw::AllowedOf(p) => (p, allow_target(rng)),
            Draw::Mixed if kind < 52 => {
                let set: Vec<PermissionIndex> = self.role_set(world, b.role).iter().collect();
                (*set.choose(rng)?, allow_target(rng))
            }
            Draw::Mixed => {
                // A deny, if one can be found in a few tries.
                let mut pick = (
                    *world.permissions.choose(rng)?,
                    self.random_account(rng, 10),
                );
                for _ in 0..8 {
                    if !self.held(world, b.user, pick.1).contains(pick.0) {
                        break;
                    }
                    pick = (
                        *world.permissions.choose(rng)?,
                        self.random_account(rng, 10),
                    );
                }
                pick
            }
        };
        Some(Sample {
            home: self.agency.clone(),
            principal,
            permission,
            agency: self.agency.clone(),
            account: account.map(|a| self.accounts[a as usize].clone()),
            expect: self.held(world, b.user, account).contains(permission),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn samples_are_mixed_and_generation_is_deterministic() {
        let world = World::new().unwrap();
        let gen = |seed| {
            let mut rng = StdRng::seed_from_u64(seed);
            let a = AgencyData::generate(&world, &mut rng, 10, 200);
            let samples: Vec<Sample> = (0..400)
                .filter_map(|_| a.sample(&world, &mut rng, Draw::Mixed, None))
                .collect();
            (a, samples)
        };
        let (a, s) = gen(1);
        let (b, _) = gen(1);
        assert_eq!(a.agency, b.agency);
        assert_eq!(a.users.len(), 200 / BINDINGS_PER_USER);
        let allowed = s.iter().filter(|x| x.expect).count();
        assert!((120..280).contains(&allowed), "{allowed} of 400 allowed");
    }
}
