//! TEMPORARY facade while `oauth/` moves to the new paths (removed before this lands).

pub use crate::audit::record::{attribute, audit_event, audit_record};
pub use crate::authn::{authenticate_token, key_grant};
pub use crate::caller::{Caller, RequestMeta};
pub use crate::gate::decide::{
    decide, effective_of, evaluate_policies, request_context, ResourceDesc,
};

/// The old signature, for `oauth/introspect.rs` until it moves.
pub async fn authenticate(
    state: &crate::services::Services,
    headers: &axum::http::HeaderMap,
) -> Result<std::sync::Arc<Caller>, crate::error::ApiError> {
    crate::authn::authenticate(state, crate::http::extract::authorization(headers)).await
}
