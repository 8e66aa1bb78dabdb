//! Client authentication at the endpoints (RFC 6749 §2.3.1): reading `client_secret_basic`
//! (the `Authorization: Basic` header, its parts form-encoded) or `client_secret_post` (form
//! parameters) or a public client's bare `client_id`, then checking them in `oauth::client`.
//!
//! INVARIANT: one method per request: Basic together with `client_secret`, or a `client_id`
//! that differs from the Basic one, is `invalid_request`.

use std::borrow::Cow;

use axum::http::{header, HeaderMap};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use crate::oauth::client::{self, AuthMethod, Client};
use crate::oauth::error::OAuthError;
use crate::services::Services;

/// Decodes one `application/x-www-form-urlencoded` component (Basic credentials are encoded
/// so, RFC 6749 §2.3.1 and Appendix B). `&` and `=` are data here, not separators; a malformed
/// `%` escape or a result that is not UTF-8 is refused rather than passed on lossily.
fn form_decode(s: &str) -> Option<String> {
    if !s.contains(['%', '+']) {
        // Nothing to decode (the usual client id and secret).
        return Some(s.to_owned());
    }
    let bytes = s.as_bytes();
    let escapes_ok = bytes.iter().enumerate().all(|(i, b)| {
        *b != b'%'
            || bytes
                .get(i + 1..i + 3)
                .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
    });
    if !escapes_ok {
        return None;
    }
    let one = format!("={}", s.replace('&', "%26").replace('=', "%3D"));
    let value = form_urlencoded::parse(one.as_bytes())
        .next()
        .map_or(Cow::Borrowed(""), |(_, v)| v);
    // `parse` replaces invalid UTF-8 with U+FFFD: refuse instead.
    (!value.contains('\u{FFFD}') || s.contains('\u{FFFD}')).then(|| value.into_owned())
}

/// The client credentials a request presents: (client_id, secret, method).
pub fn presented(
    headers: &HeaderMap,
    form_id: Option<&str>,
    form_secret: Option<&str>,
) -> Result<Option<(String, Option<String>, AuthMethod)>, OAuthError> {
    let basic = match headers.get(header::AUTHORIZATION) {
        Some(v) => {
            let v = v
                .to_str()
                .map_err(|_| OAuthError::invalid_client("malformed authorization header"))?;
            match v.split_once(' ') {
                Some((scheme, rest)) if scheme.eq_ignore_ascii_case("basic") => {
                    let raw = STANDARD.decode(rest.trim()).map_err(|_| {
                        OAuthError::invalid_client("Basic credentials are not base64")
                    })?;
                    let raw = String::from_utf8(raw).map_err(|_| {
                        OAuthError::invalid_client("Basic credentials are not UTF-8")
                    })?;
                    let (id, secret) = raw.split_once(':').ok_or_else(|| {
                        OAuthError::invalid_client("Basic credentials lack a `:`")
                    })?;
                    let id = form_decode(id)
                        .ok_or_else(|| OAuthError::invalid_client("malformed client id"))?;
                    let secret = form_decode(secret)
                        .ok_or_else(|| OAuthError::invalid_client("malformed client secret"))?;
                    Some((id, secret))
                }
                _ => None,
            }
        }
        None => None,
    };
    match (basic, form_id, form_secret) {
        (Some(_), _, Some(_)) => Err(OAuthError::invalid_request(
            "use one client authentication method, not both Basic and client_secret",
        )),
        (Some((id, secret)), form_id, None) => {
            if form_id.is_some_and(|f| f != id) {
                return Err(OAuthError::invalid_request(
                    "`client_id` differs from the Basic credentials",
                ));
            }
            Ok(Some((id, Some(secret), AuthMethod::Basic)))
        }
        (None, Some(id), Some(secret)) => Ok(Some((
            id.to_owned(),
            Some(secret.to_owned()),
            AuthMethod::Post,
        ))),
        (None, Some(id), None) => Ok(Some((id.to_owned(), None, AuthMethod::None))),
        (None, None, Some(_)) => Err(OAuthError::invalid_request(
            "`client_secret` without `client_id`",
        )),
        (None, None, None) => Ok(None),
    }
}

/// Authenticates the client of a token-endpoint request. Confidential clients must present a
/// valid secret; public clients present their id only.
pub async fn authenticate(
    state: &Services,
    headers: &HeaderMap,
    form_id: Option<&str>,
    form_secret: Option<&str>,
) -> Result<Client, OAuthError> {
    let (id, secret, method) = presented(headers, form_id, form_secret)?
        .ok_or_else(|| OAuthError::invalid_client("authenticate the client (client_id)"))?;
    Ok(client::authenticate_as(state, &id, secret.as_deref(), method).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(id: &str, secret: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        let v = format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")));
        h.insert(header::AUTHORIZATION, v.parse().unwrap());
        h
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        let got = presented(&basic("app%5F1", "a%2Bb+c"), None, None).unwrap();
        assert_eq!(
            got,
            Some(("app_1".into(), Some("a+b c".into()), AuthMethod::Basic))
        );
    }

    #[test]
    fn two_methods_at_once_are_refused() {
        assert!(presented(&basic("a", "b"), Some("a"), Some("b")).is_err());
        assert!(presented(&basic("a", "b"), Some("other"), None).is_err());
        assert!(presented(&HeaderMap::new(), None, Some("s")).is_err());
    }

    #[test]
    fn post_and_none() {
        let h = HeaderMap::new();
        assert_eq!(
            presented(&h, Some("c"), Some("s")).unwrap(),
            Some(("c".into(), Some("s".into()), AuthMethod::Post))
        );
        assert_eq!(
            presented(&h, Some("c"), None).unwrap(),
            Some(("c".into(), None, AuthMethod::None))
        );
        assert_eq!(presented(&h, None, None).unwrap(), None);
    }

    #[test]
    fn bad_percent_escapes_fail() {
        assert_eq!(form_decode("%zz"), None);
        assert_eq!(form_decode("%4"), None);
        assert_eq!(form_decode("a%41"), Some("aA".into()));
        assert_eq!(form_decode("%FF"), None);
    }

    #[test]
    fn separators_are_data_in_one_component() {
        assert_eq!(form_decode("a=b&c"), Some("a=b&c".into()));
        assert_eq!(form_decode(""), Some(String::new()));
    }
}
