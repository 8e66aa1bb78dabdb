//! What the authorization server reads of an agency's current state: whether it is the
//! platform tenant, and its active installations (from the engine's agency entry).
//!
//! INVARIANT: an installation counts only if the agency's current entry lists it, whatever a
//! cached list of a client's installations says.

use tessera_core::AgencyId;
use tessera_store::{Installation, StoreError};

use super::error::OAuthError;
use crate::engine::EngineError;
use crate::services::Services;

/// Whether an agency is the platform tenant (the id is read once).
pub async fn is_platform(state: &Services, agency: &AgencyId) -> Result<bool, StoreError> {
    if let Some(p) = state.platform_id.get() {
        return Ok(p == agency);
    }
    match state.store.platform_agency().await? {
        Some(p) => {
            let is = &p.id == agency;
            let _ = state.platform_id.set(p.id);
            Ok(is)
        }
        None => Ok(false),
    }
}

/// The active installation `id` of agency `agency`, from its current state.
pub async fn active_installation(
    state: &Services,
    agency: &AgencyId,
    id: &str,
) -> Result<Option<Installation>, EngineError> {
    let platform = is_platform(state, agency).await?;
    let entry = state.engine.entry(agency, platform, None).await?;
    Ok(entry.tokens.installations.get(id).cloned())
}

impl From<EngineError> for OAuthError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Store(s) => s.into(),
            e @ EngineError::RevisionNotReached { .. } => {
                OAuthError::unavailable(format!("{e}; retry shortly"))
            }
        }
    }
}
