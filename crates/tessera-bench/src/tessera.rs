//! Tessera's side of every benchmark: the per-agency cache as the server holds it (a `HashMap`
//! keyed by `agency.bits()`) and the server's per-request decision path
//! (`tessera-server/src/auth.rs::decide`): index check, then Cedar only where a policy applies.
//!
//! INVARIANT: the measured path does what `decide` does for a same-tenant check by an unscoped
//! credential, in the same order, with no shortcut the server lacks.

use std::collections::HashMap;

use serde_json::{Map, Value};
use tessera_core::abac::{AbacRequest, PolicySet, PrincipalKind};
use tessera_core::index::{self, AgencyIndex, Check};
use tessera_core::{AccountId, CredentialCap, PrincipalId};

use crate::data::{Sample, World};

/// The `time` the Cedar context carries (epoch seconds; fixed, the bench has no clock).
const NOW_SECONDS: i64 = 1_750_000_000;

/// One agency's cached state, as the server's `AgencyEntry`.
#[derive(Debug)]
pub struct Entry {
    /// The RBAC index.
    pub index: AgencyIndex,
    /// Compiled Cedar policies, if any.
    pub policies: Option<PolicySet>,
}

/// The cache: agency ULID bits → entry.
pub type Indexes = HashMap<u128, Entry>;

/// The RBAC decision of one sample, looked up as the server does.
pub fn check(map: &Indexes, world: &World, s: &Sample) -> bool {
    let Some(home) = map.get(&s.home.bits()) else {
        return false;
    };
    let cap = CredentialCap::default();
    index::check(
        &Check {
            principal: &s.principal,
            home: &home.index,
            own_grant: None,
            cap: &cap,
            permission: s.permission,
            agency: &s.agency,
            account: s.account.as_ref(),
        },
        world.cfg,
    )
    .allowed
}

/// A sample for the Cedar-condition run: the check and its request context.
#[derive(Clone, Debug)]
pub struct CondSample {
    /// The check (RBAC allows it).
    pub sample: Sample,
    /// The context the client sent (`mfa`).
    pub context: Map<String, Value>,
    /// The expected answer after Cedar.
    pub expect: bool,
}

/// The full decision with ABAC, as `decide` + `abac` in the server (same tenant).
pub fn check_with_policies(map: &Indexes, world: &World, c: &CondSample) -> bool {
    let s = &c.sample;
    let Some(home) = map.get(&s.home.bits()) else {
        return false;
    };
    let cap = CredentialCap::default();
    let d = index::check(
        &Check {
            principal: &s.principal,
            home: &home.index,
            own_grant: None,
            cap: &cap,
            permission: s.permission,
            agency: &s.agency,
            account: s.account.as_ref(),
        },
        world.cfg,
    );
    if !d.allowed {
        return false;
    }
    let Some(policies) = home.policies.as_ref() else {
        return true;
    };
    let Some(def) = world.catalog.permission_def(s.permission) else {
        return false;
    };
    if !policies.applies(&def.name) {
        return true;
    }
    let roles = home.index.role_names(&s.principal);
    let mut context = c.context.clone();
    context
        .entry("time")
        .or_insert_with(|| Value::from(NOW_SECONDS));
    context.entry("mfa").or_insert(Value::Bool(false));
    context.entry("impersonating").or_insert(Value::Bool(false));
    let attributes = Map::new();
    let req = AbacRequest {
        principal_type: match s.principal {
            PrincipalId::User(_) => PrincipalKind::User,
            PrincipalId::Key(_) | PrincipalId::Installation(_) => PrincipalKind::ApiKey,
        },
        principal_id: s.principal.as_str(),
        principal_agency: s.home.as_str(),
        principal_roles: &roles,
        action: &def.name,
        resource_type: &def.resource,
        resource_id: None,
        resource_agency: s.agency.as_str(),
        resource_account: s.account.as_ref().map(AccountId::as_str),
        resource_attributes: &attributes,
        context: &context,
    };
    policies.evaluate(&req).allowed
}
