//! Refusals: a denied request answers 404 across tenants and 403 otherwise, and every refusal
//! is appended to the audit chain of the agency it concerns (I5).

use serde_json::{json, Value};
use tessera_core::{AccountId, AgencyId, Reason};
use tessera_store::Outcome;

use super::error::AuthzError;
use crate::audit::action::AuditAction;
use crate::audit::record::{attribute, audit_record};
use crate::caller::{Caller, RequestMeta};
use crate::services::Services;

/// Answers a denial (404 across tenants, 403 otherwise) and audits it.
pub async fn deny(
    state: &Services,
    caller: &Caller,
    agency: &AgencyId,
    account: Option<&AccountId>,
    permission: &str,
    reason: &Reason,
    meta: &RequestMeta,
) -> AuthzError {
    let permission_owned = permission.to_owned();
    let (chain, err) = match reason {
        Reason::OtherTenant => (caller.agency.clone(), AuthzError::Hidden),
        Reason::OutsideCredentialScope => (
            agency.clone(),
            AuthzError::OutsideScope {
                permission: permission_owned,
            },
        ),
        Reason::OutsideCredentialAccount => (
            agency.clone(),
            AuthzError::OutsideAccount {
                permission: permission_owned,
            },
        ),
        Reason::DeniedByPolicy { .. } | Reason::PolicyError { .. } => (
            agency.clone(),
            AuthzError::Policy {
                permission: permission_owned,
                reason: reason.code(),
            },
        ),
        _ => (
            agency.clone(),
            AuthzError::NotGranted {
                permission: permission_owned,
                reason: reason.code(),
            },
        ),
    };
    let detail = json!({
        "permission": permission,
        "reason": reason.code(),
        "agency": agency.as_str(),
        "account": account.map(AccountId::as_str),
    });
    let record = attribute(
        caller,
        audit_record(
            state,
            &caller.principal,
            meta,
            AuditAction::AuthzDenied,
            Some(agency.as_str()),
            Outcome::Denied,
            detail,
        ),
    );
    if let Err(e) =
        crate::audit::sealed::append(state, &state.admission.admit(chain), &record).await
    {
        tracing::warn!(error = %e, "could not audit a denied request");
    }
    err
}

/// Appends a successful act of `caller` to `agency`'s chain, with the agency as the target.
pub(super) async fn audit_in(
    state: &Services,
    caller: &Caller,
    meta: &RequestMeta,
    agency: &AgencyId,
    action: AuditAction,
    detail: Value,
) -> Result<(), AuthzError> {
    let record = attribute(
        caller,
        audit_record(
            state,
            &caller.principal,
            meta,
            action,
            Some(agency.as_str()),
            Outcome::Success,
            detail,
        ),
    );
    crate::audit::sealed::append(state, &state.admission.admit(agency.clone()), &record).await?;
    Ok(())
}
