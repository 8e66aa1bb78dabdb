//! Refusals: a denied request answers 404 across tenants and 403 otherwise, and every refusal
//! is appended to the audit chain of the agency it concerns (I5).

use serde_json::{json, Value};
use tessera_core::{AccountId, AgencyId, Reason};
use tessera_store::{Outcome, TenantScope};

use crate::audit::record::{attribute, audit_record};
use crate::caller::{Caller, RequestMeta};
use crate::error::ApiError;
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
) -> ApiError {
    let missing = json!({ "missing_permissions": [permission], "reason": reason.code() });
    let (chain, err) = match reason {
        Reason::OtherTenant => (caller.agency.clone(), ApiError::not_found()),
        Reason::OutsideCredentialScope => (
            agency.clone(),
            ApiError::forbidden(format!(
                "the credential's scopes do not include `{permission}`"
            ))
            .with_extra(missing),
        ),
        Reason::OutsideCredentialAccount => (
            agency.clone(),
            ApiError::forbidden("this credential is bound to another account").with_extra(missing),
        ),
        Reason::DeniedByPolicy { .. } | Reason::PolicyError { .. } => (
            agency.clone(),
            ApiError::forbidden(format!(
                "a policy of this agency forbids `{permission}` here"
            ))
            .with_extra(missing),
        ),
        _ => (
            agency.clone(),
            ApiError::forbidden(format!("the caller lacks `{permission}` here"))
                .with_extra(missing),
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
            "authz.denied",
            Some(agency.as_str()),
            Outcome::Denied,
            detail,
        ),
    );
    if let Err(e) = state
        .store
        .append_audit(&TenantScope::authenticated(chain), &record)
        .await
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
    action: &str,
    detail: Value,
) -> Result<(), ApiError> {
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
    state
        .store
        .append_audit(&TenantScope::authenticated(agency.clone()), &record)
        .await?;
    Ok(())
}
