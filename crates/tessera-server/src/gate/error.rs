//! Why the gate, or a use case asking it, refused an act. Mapped to problem+json in
//! `crate::error`, in one place; the refusal itself is audited where it is decided.

use tessera_store::StoreError;

use crate::authn::AuthnError;
use crate::engine::EngineError;

/// A refusal, or the failure that kept the gate from deciding.
#[derive(Debug, thiserror::Error)]
pub enum AuthzError {
    /// Another tenant's agency: the same answer as a missing one (I1).
    #[error("not found")]
    Hidden,
    /// The credential's scopes do not include the permission.
    #[error("the credential's scopes do not include `{permission}`")]
    OutsideScope {
        /// The permission asked for.
        permission: String,
    },
    /// The credential is bound to another account.
    #[error("this credential is bound to another account")]
    OutsideAccount {
        /// The permission asked for.
        permission: String,
    },
    /// A policy of the agency forbids it (or the policies failed: deny by default).
    #[error("a policy of this agency forbids `{permission}` here")]
    Policy {
        /// The permission asked for.
        permission: String,
        /// `denied_by_policy` or `policy_error`.
        reason: &'static str,
    },
    /// The caller holds no grant of the permission here.
    #[error("the caller lacks `{permission}` here")]
    NotGranted {
        /// The permission asked for.
        permission: String,
        /// The engine's reason code.
        reason: &'static str,
    },
    /// The act needs permissions the caller lacks (I2: granting beyond one's own, changing a
    /// principal that holds more).
    #[error("{message}")]
    Missing {
        /// The sentence for the client.
        message: String,
        /// The permissions the caller lacks.
        missing: Vec<String>,
    },
    /// The caller could not be authenticated.
    #[error(transparent)]
    Authn(#[from] AuthnError),
    /// The engine could not load what the decision needs.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A route misused the gate (a bug; the detail goes to the log).
    #[error("{0}")]
    Internal(&'static str),
}
