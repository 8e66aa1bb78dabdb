//! OAuth 2.x and OpenID Connect: the authorization server, laid out by flow.
//!
//! `endpoint/` holds the HTTP handlers (the only place with axum state); `grant/` the four
//! token-endpoint grants as use cases (typed request in, issued tokens or a `GrantError`
//! out); below them `client`, `issue`, `verify`, `tenant`, `scope`, `resource`, `pkce`, `cache`,
//! `settings` and `error` (the one mapping to RFC 6749 §5.2 bodies), which import neither.
//!
//! INVARIANT (I2): every token carries at most what its subject holds now: user tokens are
//! checked against the user's bindings at every use (the token's scopes only cap them),
//! installation tokens hold at most the installation's consented scopes, downscoped tokens
//! only narrow, and impersonation yields at most target ∩ impersonator ∩ the impersonation
//! policy. (I4) codes, refresh tokens and client secrets are stored as keyed hashes.

pub mod cache;
pub mod client;
pub mod endpoint;
pub mod error;
pub mod grant;
pub mod issue;
pub mod pkce;
pub mod refusal;
pub mod resource;
pub mod scope;
pub mod settings;
pub mod tenant;
pub mod verify;

pub use endpoint::router;
