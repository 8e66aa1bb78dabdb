//! Request extractors whose rejections are problem+json with stable codes: JSON bodies
//! (unknown fields refused), list queries, and typed path ids.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, ErrorCode};

/// The largest request body accepted, in bytes.
pub const MAX_BODY: usize = 64 * 1024;
/// The largest body of `POST /v1/check/batch` (1,000 checks with attributes).
pub const MAX_BATCH_BODY: usize = 2 * 1024 * 1024;

/// A JSON body; malformed JSON, wrong types and unknown fields are 400 `invalid_request`.
#[derive(Debug)]
pub struct Json<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Self(v)),
            Err(rejection) => Err(json_rejection(&rejection)),
        }
    }
}

fn json_rejection(r: &JsonRejection) -> ApiError {
    match r {
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "send the body as `application/json`",
        ),
        JsonRejection::BytesRejection(_) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::new(
                ErrorCode::PayloadTooLarge,
                format!("the body exceeds {MAX_BODY} bytes"),
            )
        }
        JsonRejection::JsonDataError(e) => {
            ApiError::invalid(format!("invalid body: {}", source_text(e)))
        }
        JsonRejection::JsonSyntaxError(e) => {
            ApiError::invalid(format!("malformed JSON: {}", source_text(e)))
        }
        other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("the body exceeds {MAX_BODY} bytes"),
        ),
        other => ApiError::invalid(other.body_text()),
    }
}

fn source_text(e: &dyn std::error::Error) -> String {
    let mut cur: &dyn std::error::Error = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
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

/// Deserialises an optional whole number that JSON may spell `17` or `17.0` (both are
/// integers to JSON Schema); a fraction or an out-of-range value is an error.
pub fn de_opt_whole<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    use serde::Deserialize;
    match Option::<serde_json::Number>::deserialize(d)? {
        None => Ok(None),
        Some(n) => {
            if let Some(i) = n.as_i64() {
                return Ok(Some(i));
            }
            match n.as_f64() {
                Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(Some(f as i64)),
                _ => Err(serde::de::Error::custom(format!(
                    "`{n}` is not a whole number in range"
                ))),
            }
        }
    }
}
