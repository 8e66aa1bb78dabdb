//! Suspension and reinstatement of agencies (platform staff, `agencies.suspend`) and of
//! accounts (agency admins, `accounts.suspend`). A suspended object keeps its data; its
//! credentials are refused (`agency_suspended` / `account_suspended`) on every node until it is
//! reinstated, which restores everything as it was (nothing is revoked).
//!
//! INVARIANT: the platform tenant is never suspended; a reason (1 to 500 characters) is
//! required both ways; asking for the state an object is already in answers 200 with the object
//! unchanged and writes nothing (idempotent); a change is audited with its reason and the
//! previous status in the same write as the change and its change-log entry, and this node's
//! view of what is suspended is reloaded before the answer.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;
use tessera_store::{Account, Agency, Status};

use crate::audit::action::AuditAction;
use crate::error::{ApiError, ErrorCode};
use crate::gate::authorized::Authorized;
use crate::services::Services;

/// The longest reason kept, in characters.
pub const MAX_REASON: usize = 500;

/// `POST …/suspend` and `POST …/reinstate`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Reason {
    /// Why (required, 1 to 500 characters); kept in the audit trail, and on the suspended
    /// object while it is suspended.
    #[schemars(extend("minLength" = 1, "maxLength" = 500))]
    pub reason: String,
}

impl Reason {
    /// The reason, trimmed and checked.
    pub fn checked(&self) -> Result<String, ApiError> {
        reason(&self.reason)
    }
}

/// Checks a reason: not blank, at most `MAX_REASON` characters, no control characters.
pub fn reason(text: &str) -> Result<String, ApiError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(ApiError::invalid(
            "`reason` is required and must not be blank",
        ));
    }
    if text.chars().count() > MAX_REASON {
        return Err(ApiError::invalid(format!(
            "`reason` is at most {MAX_REASON} characters"
        )));
    }
    if text.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            "`reason` must not contain control characters",
        ));
    }
    Ok(text.to_owned())
}

/// Suspends (`suspend`) or reinstates the agency acted on. Route: `agencies.suspend` on it
/// (a platform-level permission). Further: the platform tenant is refused (409
/// `platform_not_suspendable`).
pub async fn agency(
    s: &Services,
    auth: &Authorized,
    input: &Reason,
    suspend: bool,
) -> Result<Agency, ApiError> {
    auth.scope()?;
    let reason = input.checked()?;
    let current = s.store.get_agency(&auth.agency).await?;
    if current.is_platform || auth.agency == auth.caller.agency {
        return Err(ApiError::new(
            ErrorCode::PlatformNotSuspendable,
            "the platform tenant cannot be suspended",
        ));
    }
    let (action, wanted) = if suspend {
        (AuditAction::AgencySuspend, Status::Suspended)
    } else {
        (AuditAction::AgencyReinstate, Status::Active)
    };
    if current.status == wanted {
        return Ok(current);
    }
    let audit = auth.audit(
        s,
        action,
        Some(auth.agency.as_str()),
        json!({ "reason": reason, "previous_status": current.status }),
    );
    let (agency, _) = s
        .store
        .set_agency_suspended(
            &auth.agency,
            suspend.then_some(reason.as_str()),
            s.clock.now(),
            &audit,
        )
        .await?;
    reload(s).await;
    Ok(agency)
}

/// Suspends (`suspend`) or reinstates the account acted on. Route: `accounts.suspend` on it
/// (an agency-level permission: account-level roles never hold it).
pub async fn account(
    s: &Services,
    auth: &Authorized,
    input: &Reason,
    suspend: bool,
) -> Result<Account, ApiError> {
    let scope = auth.scope()?;
    let id = auth
        .account
        .as_ref()
        .ok_or_else(|| ApiError::internal("account route without `{acc}`"))?;
    let reason = input.checked()?;
    let current = s.store.get_account(&scope, id).await?;
    let (action, wanted) = if suspend {
        (AuditAction::AccountSuspend, Status::Suspended)
    } else {
        (AuditAction::AccountReinstate, Status::Active)
    };
    if current.status == wanted {
        return Ok(current);
    }
    let audit = auth.audit(
        s,
        action,
        Some(id.as_str()),
        json!({ "reason": reason, "previous_status": current.status }),
    );
    let (account, _) = s
        .store
        .set_account_suspended(
            &scope,
            id,
            suspend.then_some(reason.as_str()),
            s.clock.now(),
            &audit,
        )
        .await?;
    reload(s).await;
    Ok(account)
}

/// Reloads this node's view at once; if the store fails now, the change feed reloads it
/// within its poll interval (the write is already committed).
async fn reload(s: &Services) {
    if let Err(e) = s.engine.reload_suspensions().await {
        tracing::warn!(error = %e, "could not reload the suspensions; the change feed will");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_required_bounded_and_plain() {
        assert_eq!(reason("  unpaid invoices ").unwrap(), "unpaid invoices");
        for bad in ["", "   ", "a\u{0}b", "line\nbreak"] {
            assert_eq!(
                reason(bad).unwrap_err().code,
                ErrorCode::InvalidRequest,
                "{bad:?}"
            );
        }
        assert!(reason(&"é".repeat(MAX_REASON)).is_ok());
        assert!(reason(&"é".repeat(MAX_REASON + 1)).is_err());
    }
}
