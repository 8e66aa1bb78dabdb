//! The decision behind every route: the RBAC index and the credential's cap, then the Cedar
//! policies of the platform and the agency (deny by default, forbid beats permit: I3), and
//! what a caller may exercise at a place. INVARIANT: platform staff escape an agency's own
//! policies only on the break-glass permissions, and only the platform's policies bind them.

use std::sync::Arc;

use serde_json::{Map, Value};
use tessera_core::abac::{AbacRequest, PrincipalKind};
use tessera_core::index::{self, Check};
use tessera_core::{AccountId, AgencyId, PermissionIndex, PermissionSet, PrincipalId, Reason};

use super::error::AuthzError;
use crate::caller::{Caller, RequestMeta};
use crate::engine::{AgencyEntry, PlatformPolicies};
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

/// The permissions on which platform staff acting in an agency are not subject to that
/// agency's own policies: an agency cannot lock the platform out of reading, fixing or
/// deleting it (every override is audited as `platform.break_glass`).
pub const BREAK_GLASS_PERMISSIONS: [&str; 6] = [
    "agencies.read",
    "agencies.update",
    "agencies.delete",
    "agencies.suspend",
    "policies.read",
    "policies.write",
];

/// Decides whether `caller` may exercise `permission` at (`agency`, `account`): the RBAC index
/// and the credential's cap, then the Cedar policies of the platform and the agency.
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
    let d = index::check(&c, state.engine_cfg);
    let mut revision = state.engine.valid_at(&home);
    if !d.allowed {
        return Ok(Decided {
            allowed: false,
            reason: d.reason,
            revision,
            break_glass: None,
        });
    }
    let target: Arc<AgencyEntry> = if *agency == caller.agency {
        home.clone()
    } else {
        state.engine.entry(agency, false, at_least).await?
    };
    revision = revision.min(state.engine.valid_at(&target));
    if let Some(reason) = abac(
        state, caller, &home, &target, permission, agency, account, resource,
    ) {
        // Platform staff in an agency, on agency or policy management: only the platform's
        // own policies (asked apart) may refuse them, never the agency's.
        let glass = caller.is_platform
            && *agency != caller.agency
            && state
                .catalog
                .permission_def(permission)
                .is_some_and(|def| BREAK_GLASS_PERMISSIONS.contains(&def.name.as_str()))
            && match state.engine.platform_policies() {
                PlatformPolicies::None => true,
                PlatformPolicies::Set(platform) => evaluate_policies(
                    state, caller, &home, platform, permission, agency, account, resource,
                )
                .is_none(),
                PlatformPolicies::Broken => false,
            };
        if glass {
            return Ok(Decided {
                allowed: true,
                reason: d.reason,
                revision,
                break_glass: Some(reason),
            });
        }
        return Ok(Decided {
            allowed: false,
            reason,
            revision,
            break_glass: None,
        });
    }
    Ok(Decided {
        allowed: true,
        reason: d.reason,
        revision,
        break_glass: None,
    })
}

/// The Cedar step: `Some(reason)` if a policy denies what RBAC allowed.
#[allow(clippy::too_many_arguments)]
fn abac(
    state: &Services,
    caller: &Caller,
    home: &AgencyEntry,
    target: &AgencyEntry,
    permission: PermissionIndex,
    agency: &AgencyId,
    account: Option<&AccountId>,
    resource: &ResourceDesc,
) -> Option<Reason> {
    if target.policies_broken {
        return Some(Reason::PolicyError {
            errors: vec!["the agency's stored policies no longer compile".into()],
        });
    }
    let policies = target.policies.as_ref()?;
    evaluate_policies(
        state, caller, home, policies, permission, agency, account, resource,
    )
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
    let def = state.catalog.permission_def(permission)?;
    if !policies.applies(&def.name) {
        return None;
    }
    let roles = home.index.role_names(&caller.principal);
    // The schema makes `time`, `mfa` and `impersonating` required: fill what the caller left out
    // (no MFA and no impersonation are the safe assumptions).
    let mut context = resource.context.clone();
    context
        .entry("time")
        .or_insert_with(|| Value::from(state.clock.now() / 1000));
    context.entry("mfa").or_insert(Value::Bool(false));
    context
        .entry("impersonating")
        .or_insert(Value::Bool(caller.actor().is_some()));
    let req = AbacRequest {
        principal_type: match caller.principal {
            PrincipalId::User(_) => PrincipalKind::User,
            // An installation is a machine credential too.
            PrincipalId::Key(_) | PrincipalId::Installation(_) => PrincipalKind::ApiKey,
        },
        principal_id: caller.principal.as_str(),
        principal_agency: caller.agency.as_str(),
        principal_roles: &roles,
        action: &def.name,
        resource_type: &def.resource,
        resource_id: resource.id.as_deref(),
        resource_agency: agency.as_str(),
        resource_account: account.map(AccountId::as_str),
        resource_attributes: &resource.attributes,
        context: &context,
    };
    let out = policies.evaluate(&req);
    if out.allowed {
        None
    } else if !out.errors.is_empty() {
        Some(Reason::PolicyError { errors: out.errors })
    } else {
        Some(Reason::DeniedByPolicy {
            policies: out.determining,
        })
    }
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
