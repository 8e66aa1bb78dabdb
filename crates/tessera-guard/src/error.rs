//! Why the guard could not start or reach Tessera.
//! INVARIANT: messages never carry a credential.

/// A failure of the guard itself (not a refused request: see [`crate::Refusal`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuardError {
    /// The configuration or a route declaration is unusable.
    #[error("guard configuration: {0}")]
    Config(String),
    /// Tessera could not be reached.
    #[error("tessera unreachable: {0}")]
    Http(String),
    /// Tessera answered something the guard does not understand (or an error status).
    #[error("tessera answered unexpectedly: {0}")]
    Protocol(String),
}
