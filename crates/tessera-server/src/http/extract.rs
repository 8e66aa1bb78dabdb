//! Request extractors whose rejections are problem+json with stable codes: JSON bodies
//! (unknown fields refused), list queries, and typed path ids.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, ErrorCode};

/// The largest request body accepted, in bytes.
pub const MAX_BODY: usize = 64 * 1024;
/// The largest body of `POST /v1/check/batch` (1,000 checks with attributes).
pub const MAX_BATCH_BODY: usize = 2 * 1024 * 1024;
/// The deepest nesting of arrays and objects a JSON body may have. No request type nests
/// more than a few levels; the bound is checked on the bytes, before any parser recurses.
pub const MAX_JSON_DEPTH: usize = 32;

/// A JSON body; malformed JSON, wrong types and unknown fields are 400 `invalid_request`, and
/// so is a NUL character in any string unless `NUL_OK` (for bodies that are never stored, such
/// as checks: PostgreSQL text cannot hold NUL).
#[derive(Debug)]
pub struct Json<T, const NUL_OK: bool = false>(pub T);

impl<S: Send + Sync, T: DeserializeOwned, const NUL_OK: bool> FromRequest<S> for Json<T, NUL_OK> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let json_type = req
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|v| v.trim().to_ascii_lowercase())
            .is_some_and(|v| {
                v == "application/json" || (v.starts_with("application/") && v.ends_with("+json"))
            });
        if !json_type {
            return Err(ApiError::new(
                ErrorCode::UnsupportedMediaType,
                "send the body as `application/json`",
            ));
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|r| {
                if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(ErrorCode::PayloadTooLarge, "the body is too large")
                } else {
                    ApiError::invalid(r.body_text())
                }
            })?;
        if json_depth_exceeds(&bytes, MAX_JSON_DEPTH) {
            return Err(ApiError::invalid(format!(
                "the body nests arrays and objects more than {MAX_JSON_DEPTH} deep"
            )));
        }
        if !NUL_OK && has_escaped_nul(&bytes) {
            return Err(ApiError::invalid(
                "strings must not contain NUL characters (`\\u0000`)",
            ));
        }
        serde_json::from_slice(&bytes)
            .map(Self)
            .map_err(|e| match e.classify() {
                serde_json::error::Category::Data => {
                    ApiError::invalid(format!("invalid body: {e}"))
                }
                _ => ApiError::invalid(format!("malformed JSON: {e}")),
            })
    }
}

/// Whether a JSON text nests arrays and objects deeper than `max` (strings skipped, escapes
/// followed pairwise). Linear, without recursion; malformed JSON is left to the parser.
pub fn json_depth_exceeds(b: &[u8], max: usize) -> bool {
    let (mut depth, mut in_string, mut i) = (0usize, false, 0usize);
    while let Some(&c) = b.get(i) {
        match (in_string, c) {
            (true, b'\\') => i += 1,
            (true, b'"') | (false, b'"') => in_string = !in_string,
            (false, b'[' | b'{') => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            (false, b']' | b'}') => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    false
}

/// Whether a JSON text holds an escaped NUL (`\u0000`) in a string. NUL cannot be stored (it is
/// not valid in PostgreSQL text) and has no use in an identity API; a raw NUL byte is not valid
/// JSON at all. Escapes are followed pairwise, so an escaped backslash before `u0000` is text.
pub fn has_escaped_nul(b: &[u8]) -> bool {
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' {
            if b.get(i + 1) == Some(&b'u') && b.get(i + 2..i + 6) == Some(b"0000".as_slice()) {
                return true;
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    false
}

/// `?limit=&cursor=` for lists.
#[derive(Clone, Debug)]
pub struct ListQuery {
    /// 1..=200, default 50.
    pub limit: u32,
    /// Opaque cursor from the previous page.
    pub cursor: Option<String>,
    /// Other query parameters, for the route to read.
    pub rest: Vec<(String, String)>,
}

impl ListQuery {
    /// The page request for the store.
    pub fn page(&self) -> tessera_store::PageRequest {
        tessera_store::PageRequest {
            limit: self.limit,
            cursor: self.cursor.clone(),
        }
    }
    /// Checks the cursor is an id of type `T` (or a number, for the audit log).
    pub fn cursor_as<T: std::str::FromStr>(&self) -> Result<(), ApiError> {
        match &self.cursor {
            Some(c) if c.parse::<T>().is_err() => Err(ApiError::invalid(
                "`cursor` is not a cursor this list returned",
            )),
            _ => Ok(()),
        }
    }
    /// A named extra parameter.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.rest
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ListQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let pairs: Vec<(String, String)> = match parts.uri.query() {
            None => Vec::new(),
            Some(q) => serde_urlencoded_pairs(q)?,
        };
        let mut out = Self {
            limit: 50,
            cursor: None,
            rest: Vec::new(),
        };
        for (k, v) in pairs {
            if k.contains('\0') || v.contains('\0') {
                return Err(ApiError::invalid(
                    "query parameters must not contain NUL characters",
                ));
            }
            match k.as_str() {
                "limit" => {
                    out.limit = v
                        .parse::<u32>()
                        .ok()
                        .filter(|n| (1..=200).contains(n))
                        .ok_or_else(|| {
                            ApiError::invalid("`limit` must be a whole number from 1 to 200")
                        })?;
                }
                "cursor" if v.is_empty() => {
                    return Err(ApiError::invalid(
                        "`cursor` must not be empty (omit it for the first page)",
                    ))
                }
                "cursor" => out.cursor = Some(v),
                _ => out.rest.push((k, v)),
            }
        }
        Ok(out)
    }
}

fn serde_urlencoded_pairs(q: &str) -> Result<Vec<(String, String)>, ApiError> {
    axum::extract::Query::<Vec<(String, String)>>::try_from_uri(
        &format!("/?{q}")
            .parse()
            .map_err(|_| ApiError::invalid("malformed query string"))?,
    )
    .map(|axum::extract::Query(v)| v)
    .map_err(|_| ApiError::invalid("malformed query string"))
}

/// Parses a path segment as a typed id: a wrong prefix or form is 400 `invalid_id`.
pub fn parse_id<T: std::str::FromStr<Err = tessera_core::IdError>>(
    raw: &str,
) -> Result<T, ApiError> {
    raw.parse()
        .map_err(|e: tessera_core::IdError| ApiError::new(ErrorCode::InvalidId, e.to_string()))
}

/// The request's `Authorization` header, for `authn::authenticate`.
pub fn authorization(headers: &axum::http::HeaderMap) -> crate::authn::Presented<'_> {
    match headers.get(axum::http::header::AUTHORIZATION) {
        None => crate::authn::Presented::Absent,
        Some(v) => v.to_str().map_or(
            crate::authn::Presented::NotText,
            crate::authn::Presented::Value,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::{has_escaped_nul, json_depth_exceeds};

    #[test]
    fn json_depth_is_bounded_outside_strings() {
        let deep = |n: usize| format!("{}1{}", "[".repeat(n), "]".repeat(n));
        assert!(!json_depth_exceeds(deep(32).as_bytes(), 32));
        assert!(json_depth_exceeds(deep(33).as_bytes(), 32));
        assert!(json_depth_exceeds(deep(100_000).as_bytes(), 32));
        let in_string = format!(r#"{{"a":"{}\"{}"}}"#, "[".repeat(100), "{".repeat(100));
        assert!(!json_depth_exceeds(in_string.as_bytes(), 32), "{in_string}");
        assert!(!json_depth_exceeds(br#"{"a":{"b":[{"c":[]}]}}"#, 5));
        assert!(json_depth_exceeds(br#"{"a":{"b":[{"c":[]}]}}"#, 4));
    }

    #[test]
    fn escaped_nul_is_found_and_escaped_backslashes_are_not() {
        assert!(has_escaped_nul(br#"{"a":"x\u0000y"}"#));
        assert!(has_escaped_nul(br#"{"a\u0000":1}"#));
        assert!(
            !has_escaped_nul(br#"{"a":"x\\u0000y"}"#),
            "an escaped backslash, then text"
        );
        assert!(has_escaped_nul(br#"{"a":"x\\\u0000y"}"#));
        assert!(!has_escaped_nul(br#"{"a":"\u0041"}"#), "another escape");
        assert!(!has_escaped_nul(b"{}"));
    }
}
