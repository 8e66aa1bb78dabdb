//! The use cases of the admin API: each operation of the product is one function, called by the
//! HTTP handlers (`http::routes`) and the CLI alike. Each takes its dependencies explicitly, a
//! typed caller (`gate::authorized::Authorized`, or `actor::Actor` where the operator also acts)
//! and typed input, and answers a typed result or an `ApiError`. No axum type appears here.
//! The permission each route requires is declared in `http::routes::table`; the checks a use
//! case makes beyond it (I2, `require_dominates`, …) are named in its doc.

pub mod accounts;
pub mod actor;
pub mod agencies;
pub mod api_keys;
pub mod app_review;
pub mod apps;
pub mod audit;
pub mod bindings;
pub mod catalog;
pub mod check;
pub mod installations;
pub mod limits;
pub mod platform;
pub mod policies;
pub mod principals;
pub mod reports;
pub mod resource_servers;
pub mod revocations;
pub mod roles;
pub mod signing_keys;
pub mod subject;
pub mod suspension;
pub mod users;
pub mod validate;
pub mod webhooks;
