//! Who asks at the introspection and revocation endpoints: an authenticated client (RFC 7662
//! §2.1, RFC 7009 §2.1), a public client by `client_id` (revocation only), or a bearer
//! credential (an API key or access token of Tessera's own).
//!
//! INVARIANT: a client sees its own tokens only; a credential sees its agency's (its
//! account's, if bound to one); platform credentials see every agency's.

use axum::http::{header, HeaderMap};

use super::client_auth;
use super::params::Params;
use crate::caller::Caller;
use crate::oauth::client::{AuthMethod, Client};
use crate::oauth::error::OAuthError;
use crate::oauth::refusal::from_authn;
use crate::services::Services;

/// Who is asking.
pub(super) enum Asker {
    Client(Client),
    Credential(std::sync::Arc<Caller>),
}

impl Asker {
    /// Whether this asker may learn about a token of `client_id` in (`agency`, `account`).
    pub(super) fn may_see(&self, client_id: &str, agency: &str, account: Option<&str>) -> bool {
        match self {
            Self::Client(c) => c.id().as_str() == client_id,
            Self::Credential(c) => {
                c.is_platform
                    || (c.agency.as_str() == agency
                        && c.cap
                            .account
                            .as_ref()
                            .is_none_or(|a| Some(a.as_str()) == account))
            }
        }
    }
}

fn bearer(headers: &HeaderMap) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .is_some_and(|(s, _)| s.eq_ignore_ascii_case("bearer"))
}

/// Who asks. `public`: a public client may identify itself by `client_id` alone (revocation,
/// RFC 7009 §2.1); introspection needs an authenticated client or credential (RFC 7662 §2.1).
pub(super) async fn asker(
    state: &Services,
    headers: &HeaderMap,
    p: &Params,
    public: bool,
    addr: Option<std::net::IpAddr>,
    rate: &std::sync::Mutex<Option<crate::ratelimit::Report>>,
) -> Result<Asker, OAuthError> {
    use crate::gate::limit;
    use crate::ratelimit::Class::Introspect;
    // One rate-limit decision once the asker is known (its IP alone if it is not).
    let refused = |v: crate::ratelimit::Verdict| {
        if let (crate::ratelimit::Verdict::Allowed(Some(r)), Ok(mut slot)) = (&v, rate.lock()) {
            *slot = Some(r.clone());
        }
        OAuthError::from_verdict(&v)
    };
    if bearer(headers) {
        // An outage while authenticating the bearer credential is `temporarily_unavailable`,
        // never `invalid_client`.
        let caller =
            match crate::authn::authenticate(state, crate::http::extract::authorization(headers))
                .await
            {
                Ok(c) => c,
                Err(e) => {
                    let v = limit::for_caller(state, Introspect, addr, None).await;
                    return Err(
                        refused(v).unwrap_or_else(|| from_authn(e, OAuthError::invalid_client))
                    );
                }
            };
        if let Some(e) = refused(limit::for_caller(state, Introspect, addr, Some(&caller)).await) {
            return Err(e);
        }
        return Ok(Asker::Credential(caller));
    }
    let c =
        client_auth::authenticate(state, headers, p.get("client_id"), p.get("client_secret")).await;
    let who = c
        .as_ref()
        .ok()
        .map(|c| (c.id().as_str(), &c.app().agency_id));
    if let Some(e) = refused(limit::for_client(state, Introspect, addr, who).await) {
        return Err(e);
    }
    let c = c?;
    if c.method == AuthMethod::None && !public {
        return Err(OAuthError::invalid_client(
            "introspection and revocation need an authenticated client or credential",
        ));
    }
    Ok(Asker::Client(c))
}
