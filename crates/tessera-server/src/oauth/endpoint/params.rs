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
        Self::from_pairs(
            serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
                .map_err(|_| OAuthError::invalid_request("the form body is malformed"))?,
        )
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

/// A request's parts and its whole body, without copying the headers (the `Parts`
/// extractor clones them). The body limit is the router's.
pub async fn split(req: axum::extract::Request) -> Result<(Parts, Bytes), OAuthError> {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, crate::http::extract::MAX_BODY)
        .await
        .map_err(|_| OAuthError::invalid_request("the body is too large or unreadable"))?;
    Ok((parts, bytes))
}

/// The request's audit facts (set by the request-id layer).
pub fn meta(parts: &Parts) -> RequestMeta {
    parts
        .extensions
        .get::<RequestMeta>()
        .cloned()
        .unwrap_or_default()
}
