//! Reading a request at the endpoints: its body (within the router's limit), its audit facts, and
//! its form parameters (RFC 6749 §3.1, §3.2: `application/x-www-form-urlencoded`, each
//! parameter at most once).
//!
//! INVARIANT: a repeated parameter or a NUL character is refused; an empty value counts as
//! absent. The one exception is `resource` (RFC 8707 §2 lets it repeat): its values are kept
//! in order, and [`Params::resource`] accepts one distinct value only.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};

use crate::caller::RequestMeta;
use crate::oauth::error::OAuthError;

/// The form parameters of a request, each at most once (RFC 6749 §3.1, §3.2), and every
/// `resource` value (RFC 8707 §2).
#[derive(Debug, Default)]
pub struct Params(HashMap<String, String>, Vec<String>);

impl Params {
    /// Parses an `application/x-www-form-urlencoded` body.
    pub fn parse(headers: &HeaderMap, body: &[u8]) -> Result<Self, OAuthError> {
        let form = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| {
                v.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            });
        if !form {
            return Err(OAuthError::invalid_request(
                "send the parameters as application/x-www-form-urlencoded",
            ));
        }
        Self::from_pairs(decode_form(body))
    }

    /// From decoded pairs; a repeated parameter is refused.
    pub fn from_pairs(pairs: Vec<(String, String)>) -> Result<Self, OAuthError> {
        let mut map = HashMap::with_capacity(pairs.len());
        let mut resources = Vec::new();
        for (k, v) in pairs {
            if v.contains('\0') {
                return Err(OAuthError::invalid_request(format!(
                    "parameter `{k}` contains a NUL character"
                )));
            }
            if k == "resource" {
                // At most a few: each is resolved, and one is kept.
                if resources.len() >= 16 {
                    return Err(crate::oauth::resource::invalid_target(
                        "too many `resource` values",
                    ));
                }
                resources.push(v);
                continue;
            }
            if map.insert(k.clone(), v).is_some() {
                return Err(OAuthError::invalid_request(format!(
                    "parameter `{k}` is repeated"
                )));
            }
        }
        Ok(Self(map, resources))
    }

    /// The one resource (RFC 8707) the request names, if any: a value repeated is that value;
    /// different values are `invalid_target` (a token has one audience here).
    pub fn resource(&self) -> Result<Option<&str>, OAuthError> {
        let values: Vec<&str> = self.1.iter().map(String::as_str).collect();
        crate::oauth::resource::single(&values)
    }

    /// A parameter; an empty value counts as absent (RFC 6749 §3.1).
    pub fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str).filter(|v| !v.is_empty())
    }

    /// A required parameter.
    pub fn required(&self, k: &str) -> Result<&str, OAuthError> {
        self.get(k)
            .ok_or_else(|| OAuthError::invalid_request(format!("`{k}` is required")))
    }
}

/// The pairs of an `application/x-www-form-urlencoded` body, decoded as `form_urlencoded::parse`
/// decodes them (`+` is a space, `%XX` a byte, invalid UTF-8 replaced), in one pass and one copy
/// for the common piece that has neither `+` nor `%` (a token, an id, a grant type).
fn decode_form(body: &[u8]) -> Vec<(String, String)> {
    fn plain(piece: &[u8]) -> Option<String> {
        if piece.iter().any(|b| matches!(b, b'+' | b'%')) {
            return None;
        }
        std::str::from_utf8(piece).ok().map(str::to_owned)
    }
    let mut out = Vec::new();
    for pair in body.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
        let (k, v) = match pair.iter().position(|b| *b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &[][..]),
        };
        match (plain(k), plain(v)) {
            (Some(k), Some(v)) => out.push((k, v)),
            _ => out.extend(
                form_urlencoded::parse(pair).map(|(k, v)| (k.into_owned(), v.into_owned())),
            ),
        }
    }
    out
}

/// A request's parts and its whole body, without copying the headers (the `Parts`
/// extractor clones them). The body limit is the router's.
pub async fn split(req: axum::extract::Request) -> Result<(Parts, Bytes), OAuthError> {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, crate::http::extract::MAX_BODY)
        .await
        .map_err(|_| OAuthError::invalid_request("the body is too large or unreadable"))?;
    Ok((parts, bytes))
}

/// The request's audit facts (set by the request-id layer), shared.
pub fn meta(parts: &Parts) -> std::sync::Arc<RequestMeta> {
    crate::observe::request_meta(&parts.extensions)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::decode_form;

    #[test]
    fn decodes_as_form_urlencoded_does() {
        for body in [
            &b"grant_type=client_credentials&scope=a+b&x=%41%zz&=v&k&&k2="[..],
            b"token=eyJ.eyJ.sig",
            b"a=%FF%FE&b=\xff",
            b"",
            b"&&=",
        ] {
            let want: Vec<(String, String)> = form_urlencoded::parse(body)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            assert_eq!(
                decode_form(body),
                want,
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
    }

    proptest! {
        #[test]
        fn any_body_decodes_as_form_urlencoded_does(body in proptest::collection::vec(
            prop_oneof![Just(b'&'), Just(b'='), Just(b'+'), Just(b'%'), Just(b'a'), Just(b'4'),
                        Just(0xC3u8), Just(0xA9u8), Just(0xFFu8), any::<u8>()], 0..64)) {
            let want: Vec<(String, String)> = form_urlencoded::parse(&body)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            prop_assert_eq!(decode_form(&body), want);
        }
    }
}
