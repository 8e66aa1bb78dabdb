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

/// The active installation `id` of agency `agency`, from its current state. A miss in this
/// node's cached entry is checked again with the entry brought up to the store's current
/// revision: an installation made on another node a moment ago is not yet in an entry built
/// before it (the change feed reaches this node within its polling interval), and refusing
/// it then would answer "removed" for an installation that exists. A removed installation
/// is seen at once either way: the check is only ever widened to the store's state now.
pub async fn active_installation(
    state: &Services,
    agency: &AgencyId,
    id: &str,
) -> Result<Option<Installation>, EngineError> {
    let platform = is_platform(state, agency).await?;
    let entry = state.engine.entry(agency, platform, None).await?;
    if let Some(i) = entry.tokens.installations.get(id) {
        return Ok(Some(i.clone()));
    }
    if entry.installation_unknown(id) {
        return Ok(None);
    }
    let now = state.store.revision().await?;
    let entry = state.engine.entry(agency, platform, Some(now)).await?;
    let found = entry.tokens.installations.get(id).cloned();
    if found.is_none() {
        entry.remember_unknown_installation(id);
    }
    Ok(found)
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
