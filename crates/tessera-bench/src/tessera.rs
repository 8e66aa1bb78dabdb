//! Tessera's side of every benchmark: the per-agency cache as the server holds it (a `FastMap`
//! keyed by `agency.bits()`) and the server's per-request decision path
//! (`tessera-server/src/gate/decide.rs::decide`): index check, then `tessera_core::decision::decide`
//! (Cedar only where a policy applies).
//!
//! INVARIANT: the measured path does what `decide` does for a same-tenant check by an unscoped
//! credential, in the same order, with no shortcut the server lacks.

use serde_json::{Map, Value};
use tessera_core::abac::PolicySet;
use tessera_core::decision::{decide, Policies, PolicyInput};
use tessera_core::index::{self, AgencyIndex, Check};
use tessera_core::CredentialCap;

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
pub type Indexes = tessera_core::fastmap::FastMap<u128, Entry>;

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

/// The full decision with ABAC, as the server's `decide` (same tenant).
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
    // The server's combination, the very function (`tessera_core::decision::decide`).
    let attributes = Map::new();
    let input = PolicyInput {
        principal: &s.principal,
        principal_agency: &s.home,
        is_platform: false,
        home: &home.index,
        impersonating: false,
        agency: &s.agency,
        account: s.account.as_ref(),
        resource_id: None,
        attributes: &attributes,
        context: &c.context,
        now_millis: &|| NOW_SECONDS * 1000,
    };
    let policies = home.policies.as_ref().map_or(Policies::None, Policies::Set);
    decide(
        d,
        &world.catalog,
        s.permission,
        &input,
        policies,
        Policies::None,
    )
    .allowed
}
