//! `tessera-guard`: enforcement at a resource server protected by Tessera.
//!
//! - **Verification** of access tokens, locally: the JWKS is fetched and cached (its
//!   `Cache-Control: max-age` honoured; an unknown `kid` refetches it at most once per
//!   [`GuardConfig::unknown_kid_refetch`]), each key verifies with its own algorithm only,
//!   and `iss`, `aud` (this service's resource identifier), `typ: at+jwt`, `exp`/`nbf` (with
//!   leeway) are checked. Verified tokens are cached by their signature (compared in full)
//!   until they expire.
//! - **The revocation feed** (`GET /v1/revocations`, long-poll) is applied in memory by a
//!   background task; a 410 makes the guard resynchronise from the start of the feed.
//!   **Until its first read of the feed completes, the guard accepts no JWT: it answers 503
//!   (fail closed), nor once the feed has not been read for
//!   [`GuardConfig::feed_max_staleness`] (90 s).**
//! - **API keys** (`tsk_…`) are introspected (`POST /oauth/introspect`) with short positive
//!   and negative caches; `api_key` items of the feed evict them.
//! - **Routes** are declared through [`GuardedRouter`], whose only route methods take a
//!   [`Rule`] (the permission, and where the tenant and resource come from): a route without
//!   a declaration does not compile, and [`GuardedRouter::build`] refuses (so the service
//!   does not start) on a permission the catalog lacks or a path parameter the path lacks.
//! - **[`Principal`]** and **[`Tenancy`]** are extractors for handlers.
//! - **Answers**: 401 with `WWW-Authenticate` (RFC 6750), 403 problem+json, 404 for another
//!   tenant's object, 503 when the guard cannot decide.

mod catalog;
mod check;
mod config;
mod error;
mod feed;
mod guard;
mod http;
mod introspect;
mod layer;
mod principal;
mod refusal;
mod revocation;
mod router;
mod rule;
#[cfg(test)]
mod tests;

pub use catalog::Catalog;
pub use check::CheckTarget;
pub use config::{CatalogSource, GuardConfig};
pub use error::GuardError;
pub use guard::Guard;
pub use layer::{GuardLayer, GuardService};
pub use principal::{Actor, CredentialKind, Principal, Tenancy, Tenant};
pub use refusal::Refusal;
pub use revocation::{FeedItem, FeedPage};
pub use router::{GuardedApp, GuardedRouter, RouteInfo};
pub use rule::Rule;
