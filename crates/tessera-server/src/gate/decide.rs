//! The decision behind every route: the RBAC index and the credential's cap, then the Cedar
//! policies of the platform and the agency (deny by default, forbid beats permit: I3), and
//! what a caller may exercise at a place. INVARIANT: platform staff escape an agency's own
//! policies only on the break-glass permissions, and only the platform's policies bind them.

use std::sync::Arc;

use serde_json::{Map, Value};
use tessera_core::decision::{Policies, PolicyInput};
use tessera_core::index::{self, Check};
use tessera_core::{AccountId, AgencyId, PermissionIndex, PermissionSet, Reason};

use super::error::AuthzError;
use crate::caller::{Caller, RequestMeta};
use crate::engine::AgencyEntry;
use crate::services::Services;

impl Caller {
    /// The engine's question for this caller, against its home agency's index.
    pub fn check<'a>(
        &'a self,
        home: &'a AgencyEntry,
        permission: PermissionIndex,
        agency: &'a AgencyId,
        account: Option<&'a AccountId>,
    ) -> Check<'a> {
        Check {
            principal: &self.principal,
            home: &home.index,
            own_grant: self.own.as_ref().map(|s| (s, self.cap.account.as_ref())),
            cap: &self.cap,
            permission,
            agency,
            account,
        }
    }
}

/// What a check is about, beyond the permission and the tenant.
#[derive(Clone, Debug, Default)]
pub struct ResourceDesc {
    /// The resource's id, if one.
    pub id: Option<String>,
    /// Attributes policies may read.
    pub attributes: Map<String, Value>,
    /// The request context (`ip`, `time`, `mfa`, …).
    pub context: Map<String, Value>,
}

/// A decision with the revision it is valid at.
#[derive(Clone, Debug)]
pub struct Decided {
    /// The answer.
    pub allowed: bool,
    /// Why.
    pub reason: Reason,
    /// The store revision the answer is valid at.
    pub revision: i64,
    /// The agency's policies that denied a platform principal on an agency- or
    /// policy-management permission, and were overridden (break-glass, audited by the gate).
    pub break_glass: Option<Reason>,
}

pub use tessera_core::decision::BREAK_GLASS_PERMISSIONS;

/// Decides whether `caller` may exercise `permission` at (`agency`, `account`): the RBAC index
/// and the credential's cap, then the Cedar policies of the platform and the agency, combined
/// by the pure `tessera_core::decision::decide`. This loads what that needs (the caller's home
/// index, the target agency's policies) and notes the revision the answer is valid at.
pub async fn decide(
    state: &Services,
    caller: &Caller,
    permission: PermissionIndex,
    agency: &AgencyId,
    account: Option<&AccountId>,
    resource: &ResourceDesc,
    at_least: Option<i64>,
) -> Result<Decided, AuthzError> {
    let home = state
        .engine
        .entry(&caller.agency, caller.is_platform, at_least)
        .await?;
    let c = caller.check(&home, permission, agency, account);
    let rbac = index::check(&c, state.engine_cfg);
    let mut revision = state.engine.valid_at(&home);
    if !rbac.allowed {
        // Cedar only narrows what RBAC allowed: the target agency is not even loaded.
        return Ok(Decided {
            allowed: false,
            reason: rbac.reason,
            revision,
            break_glass: None,
        });
    }
    // A suspended account admits only its own administration, whoever asks (RBAC allowed
    // it, so the caller already sees the account: nothing leaks across tenants).
    if let Some(acc) = account {
        let view = state.engine.suspended().await?;
        if view.account(agency, acc) && !suspended_account_allows(state, permission) {
            return Ok(Decided {
                allowed: false,
                reason: tessera_core::Reason::AccountSuspended,
                revision,
                break_glass: None,
            });
        }
    }
    let target: Arc<AgencyEntry> = if *agency == caller.agency {
        home.clone()
    } else {
        state.engine.entry(agency, false, at_least).await?
    };
    revision = revision.min(state.engine.valid_at(&target));
    let now = || state.clock.now();
    let input = policy_input(&now, caller, &home, agency, account, resource);
    let d = tessera_core::decision::decide(
        rbac,
        &state.catalog,
        permission,
        &input,
        agency_policies(&target),
        state.engine.platform_policies(),
    );
    Ok(Decided {
        allowed: d.allowed,
        reason: d.reason,
        revision,
        break_glass: d.break_glass,
    })
}

/// The permissions still exercised on a suspended account: reading it, reinstating it,
/// deleting it, and reading its audit trail.
pub const SUSPENDED_ACCOUNT_ALLOWS: &[&str] = &[
    "accounts.read",
    "accounts.suspend",
    "accounts.delete",
    "audit_log.read",
];

fn suspended_account_allows(state: &Services, permission: PermissionIndex) -> bool {
    SUSPENDED_ACCOUNT_ALLOWS
        .iter()
        .any(|p| state.catalog.permission(p) == Some(permission))
}

/// An agency entry's policies, as the decision takes them.
fn agency_policies(entry: &AgencyEntry) -> Policies<'_> {
    if entry.policies_broken {
        Policies::Broken
    } else {
        entry
            .policies
            .as_ref()
            .map_or(Policies::None, Policies::Set)
    }
}

/// What the policies see of a check: the caller, its home index (for its role names), the
/// target and the request's attributes and context; the clock is read only if a policy asks.
fn policy_input<'a>(
    now: &'a dyn Fn() -> i64,
    caller: &'a Caller,
    home: &'a AgencyEntry,
    agency: &'a AgencyId,
    account: Option<&'a AccountId>,
    resource: &'a ResourceDesc,
) -> PolicyInput<'a> {
    PolicyInput {
        principal: &caller.principal,
        principal_agency: &caller.agency,
        is_platform: caller.is_platform,
        home: &home.index,
        impersonating: caller.actor().is_some(),
        agency,
        account,
        resource_id: resource.id.as_deref(),
        attributes: &resource.attributes,
        context: &resource.context,
        now_millis: now,
    }
}

/// Evaluates `policies` for a check RBAC allowed: `Some(reason)` if they deny it.
#[allow(clippy::too_many_arguments)]
pub fn evaluate_policies(
    state: &Services,
    caller: &Caller,
    home: &AgencyEntry,
    policies: &tessera_core::abac::PolicySet,
    permission: PermissionIndex,
    agency: &AgencyId,
    account: Option<&AccountId>,
    resource: &ResourceDesc,
) -> Option<Reason> {
    let now = || state.clock.now();
    let input = policy_input(&now, caller, home, agency, account, resource);
    tessera_core::decision::evaluate_policies(&state.catalog, policies, permission, &input)
}

/// The permissions a caller may exercise at a target (RBAC and cap; policies only narrow).
pub async fn effective_of(
    state: &Services,
    caller: &Caller,
    agency: &AgencyId,
    account: Option<&AccountId>,
) -> Result<PermissionSet, AuthzError> {
    let home = state
        .engine
        .entry(&caller.agency, caller.is_platform, None)
        .await?;
    // The permission is not read by `effective`; any index does.
    let c = caller.check(&home, state.engine_cfg.cross_tenant, agency, account);
    Ok(index::effective(&c, state.engine_cfg)
        .map(|(s, _)| s)
        .unwrap_or_default())
}

/// The context the server itself knows about a request (for policies on admin routes).
pub fn request_context(state: &Services, meta: &RequestMeta) -> ResourceDesc {
    let mut context = Map::new();
    if let Some(ip) = &meta.ip {
        context.insert("ip".into(), Value::String(ip.clone()));
    }
    context.insert("time".into(), Value::from(state.clock.now() / 1000));
    ResourceDesc {
        id: None,
        attributes: Map::new(),
        context,
    }
}
