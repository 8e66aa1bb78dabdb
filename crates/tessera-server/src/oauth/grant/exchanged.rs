//! What both kinds of RFC 8693 exchange share: the token types of §3, the parsed request of
//! §2.1, what the result is issued with, and the answer of §2.2.1 (`issued_token_type`).
//!
//! INVARIANT: only access tokens are exchanged and issued (`access_token` or `jwt` types).

use tessera_core::AccountId;

use super::TokenResponse;
use crate::caller::Caller;
use crate::oauth::client::Client;
use crate::services::Services;

/// RFC 8693 §3 token type of access tokens.
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
/// RFC 8693 §3 token type of JWTs.
pub const JWT_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";

/// Whether a `subject_token_type` / `requested_token_type` is one Tessera exchanges.
pub fn accepted_type(t: &str) -> bool {
    t == ACCESS_TOKEN_TYPE || t == JWT_TYPE
}

/// A token-exchange request (RFC 8693 §2.1), its token types already checked.
#[derive(Debug)]
pub struct ExchangeRequest<'a> {
    /// The authenticated client, if one authenticated (optional: the token is the proof).
    pub client: Option<Client>,
    /// `subject_token`: an access token or an API key.
    pub subject_token: &'a str,
    /// `audience` and `resource` (RFC 8707): the issuer, or one resource server.
    pub targets: Vec<&'a str>,
    /// `account`: bind the result to one account.
    pub account: Option<&'a str>,
    /// `expires_in`: a shorter life, seconds.
    pub expires_in: Option<&'a str>,
    /// `scope`: a subset.
    pub scope: Option<&'a str>,
    /// `requested_subject`: impersonate this user.
    pub requested_subject: Option<&'a str>,
    /// `reason`: why (impersonation).
    pub reason: Option<&'a str>,
}

/// What both kinds of exchange are issued with.
pub(super) struct Exchanged {
    pub(super) account: Option<AccountId>,
    pub(super) expires_in: Option<i64>,
    pub(super) client_id: String,
}

/// The answer of an exchange.
pub(super) fn exchanged(token: String, expires_in: i64, scopes: &[String]) -> TokenResponse {
    let mut out = TokenResponse::bearer(token, expires_in, scopes);
    out.issued_token_type = Some(ACCESS_TOKEN_TYPE);
    out
}

/// Seconds the subject access token has left (`None` for an API key).
pub(super) fn remaining(state: &Services, caller: &Caller) -> Option<i64> {
    caller.token().map(|t| t.exp - state.clock.now() / 1000)
}
