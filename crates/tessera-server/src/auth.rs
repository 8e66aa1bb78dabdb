//! TEMPORARY facade while `oauth/` moves to the new paths (removed before this lands).

pub use crate::audit::record::{attribute, audit_event, audit_record};
pub use crate::authn::key_grant;
pub use crate::caller::{Caller, RequestMeta};
pub use crate::gate::decide::{evaluate_policies, request_context, ResourceDesc};

/// The old signature, for `oauth/introspect.rs` until it moves.
pub async fn authenticate(
    state: &crate::services::Services,
    headers: &axum::http::HeaderMap,
) -> Result<std::sync::Arc<Caller>, crate::error::ApiError> {
    Ok(crate::authn::authenticate(state, crate::http::extract::authorization(headers)).await?)
}

/// The old signature, for `oauth/` until it moves.
pub async fn authenticate_token(
    state: &crate::services::Services,
    token: &str,
) -> Result<std::sync::Arc<Caller>, crate::error::ApiError> {
    Ok(crate::authn::authenticate_token(state, token).await?)
}

/// The old signature, for `oauth/` until it moves.
pub async fn decide(
    state: &crate::services::Services,
    caller: &Caller,
    permission: tessera_core::PermissionIndex,
    agency: &tessera_core::AgencyId,
    account: Option<&tessera_core::AccountId>,
    resource: &ResourceDesc,
    at_least: Option<i64>,
) -> Result<crate::gate::decide::Decided, crate::error::ApiError> {
    Ok(crate::gate::decide::decide(
        state, caller, permission, agency, account, resource, at_least,
    )
    .await?)
}

/// The old signature, for `oauth/` until it moves.
pub async fn effective_of(
    state: &crate::services::Services,
    caller: &Caller,
    agency: &tessera_core::AgencyId,
    account: Option<&tessera_core::AccountId>,
) -> Result<tessera_core::PermissionSet, crate::error::ApiError> {
    Ok(crate::gate::decide::effective_of(state, caller, agency, account).await?)
}
