//! ABAC (DESIGN §6 step 4): Cedar `forbid` and conditional `permit` policies of the platform and
//! the agency, checked against a schema generated from the catalog, evaluated only where they apply.
//!
//! INVARIANT (I2): ABAC only narrows what RBAC allows, it never grants. For a check of action `A`
//! that RBAC allowed: if no policy's action scope (`action`, `action == A`, `action in [.., A]`)
//! covers `A`, Cedar is not run (allowed, zero cost). Otherwise, if no `permit` covers `A`, a
//! baseline `permit(principal, action, resource);` joins the evaluation so only forbids bite; if
//! permits cover `A`, they are conditions and one must hold. `forbid` beats `permit`.
//! INVARIANT (I3): a policy whose evaluation errors, or a request that cannot be built, denies.
//!
//! Layout, imports flowing down the list: `diagnostic` (positioned errors), `schema` (generated
//! from the catalog), `bounds` (size limits, parsing, validation), `coverage` (what a set
//! covers and observes), `request` (the Cedar request of a check), `policy_set` (compiling),
//! `evaluate` (the decision).

mod bounds;
mod coverage;
mod diagnostic;
mod evaluate;
mod policy_set;
mod request;
mod schema;
#[cfg(test)]
mod test_support;

pub use bounds::{
    check_text_bounds, validate_policies, MAX_LIKE_PATTERN, MAX_POLICY_DEPTH, MAX_POLICY_NESTING,
    MAX_POLICY_SET, MAX_POLICY_STRING, MAX_POLICY_TEXT_BYTES,
};
pub use diagnostic::PolicyDiagnostic;
pub use evaluate::AbacDecision;
pub use policy_set::PolicySet;
pub use request::{AbacRequest, PrincipalKind};
pub use schema::{cedar_schema, cedar_schema_text, NAMESPACE};
