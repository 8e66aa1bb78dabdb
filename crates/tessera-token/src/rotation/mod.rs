//! The signing-key rotation planner: a pure function from the stored key records and the time
//! to the transitions that keep one issuer's keys rotating without downtime (DESIGN.md I6).
//! INVARIANTS (property-tested below): after bootstrap exactly one key is active; a new key is
//! published `publish_ahead` before it signs (only the very first key signs at once); a key
//! stays published until every token it may have signed has expired.
//!
//! Many nodes may plan at once: every transition names the state it expects (see
//! [`Transition::apply`]), so a store that applies each one conditionally (`… WHERE state = $from`)
//! lets exactly one node win; the others re-read and re-plan.
//!
//! Layout: `policy` (the durations), `transition` (one step and its conditional application),
//! `planner` (what to do at `now`); each imports only the ones before it.

mod planner;
mod policy;
mod transition;

pub use planner::{plan_manual_rotation, plan_rotation};
pub use policy::{RotationPolicy, RotationPolicyError};
pub use transition::{apply_plan, StaleTransition, Transition};
