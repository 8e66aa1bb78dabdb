//! The same RBAC data as casbin "RBAC with domains", loaded from in-memory policies.
//!
//! Encoding: a domain is a scope (an agency id or an account id). `g, usr_…, <role>, <scope>`
//! for each binding; `p, <role>, <permission>` for each permission of each role (built-in roles
//! once, custom roles by their `rol_` id). A request names the account *and* its agency, so
//! agency-wide grants cover every account:
//! `m = r.act == p.act && (g(r.sub, p.sub, r.acc) || g(r.sub, p.sub, r.agy))`, with `r.acc`
//! set to `-` at the agency level. Policy rows do not repeat per domain (the textbook model's
//! `p = sub, dom, obj, act` would multiply them by the agencies), which favours casbin.

use std::collections::HashSet;

use casbin::prelude::*;

use crate::data::{AgencyData, Sample, World};

/// The model.
pub const MODEL: &str = "\
[request_definition]
r = sub, acc, agy, act

[policy_definition]
p = sub, act

[role_definition]
g = _, _, _

[policy_effect]
e = some(where (p.eft == allow))

[matchers]
m = r.act == p.act && (g(r.sub, p.sub, r.acc) || g(r.sub, p.sub, r.agy))
";

/// A built casbin enforcer.
pub struct CasbinPeer {
    enforcer: Enforcer,
    /// `p` rows.
    pub p_rows: usize,
    /// `g` rows.
    pub g_rows: usize,
}

impl std::fmt::Debug for CasbinPeer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CasbinPeer")
            .field("p_rows", &self.p_rows)
            .field("g_rows", &self.g_rows)
            .finish()
    }
}

impl CasbinPeer {
    /// Loads every agency (async: casbin builds enforcers on a runtime).
    pub async fn build(world: &World, agencies: &[AgencyData]) -> anyhow::Result<Self> {
        let model = DefaultModel::from_str(MODEL).await?;
        let mut enforcer = Enforcer::new(model, MemoryAdapter::default()).await?;
        enforcer.enable_auto_save(false);
        let mut p: Vec<Vec<String>> = Vec::new();
        let mut role_rows = |name: &str, set: &tessera_core::PermissionSet| {
            p.extend(
                set.iter()
                    .map(|perm| vec![name.to_owned(), world.permission_name(perm).to_owned()]),
            );
        };
        for (name, set) in &world.roles {
            role_rows(name, set);
        }
        let mut g: HashSet<Vec<String>> = HashSet::new();
        for a in agencies {
            for (id, set) in &a.custom {
                role_rows(id.as_str(), set);
            }
            for b in &a.bindings {
                let scope = match b.account {
                    Some(i) => a.accounts[i as usize].as_str(),
                    None => a.agency.as_str(),
                };
                g.insert(vec![
                    a.users[b.user as usize].as_str().to_owned(),
                    a.role_name(world, b.role),
                    scope.to_owned(),
                ]);
            }
        }
        let (p_rows, g_rows) = (p.len(), g.len());
        enforcer.add_policies(p).await?;
        enforcer
            .add_grouping_policies(g.into_iter().collect())
            .await?;
        enforcer.build_role_links()?;
        Ok(Self {
            enforcer,
            p_rows,
            g_rows,
        })
    }

    /// Decides one sample.
    pub fn decide(&self, world: &World, s: &Sample) -> bool {
        let acc = s.account.as_ref().map_or("-", |a| a.as_str());
        self.enforcer
            .enforce((
                s.principal.as_str(),
                acc,
                s.agency.as_str(),
                world.permission_name(s.permission),
            ))
            .unwrap_or(false)
    }
}
