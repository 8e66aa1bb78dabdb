//! OAuth form bodies as `POST /oauth/token` (and introspect, revoke) read them: the
//! content-type check and `serde_urlencoded` pairs into `Params` (repeats and NUL refused),
//! then the client credentials (`Authorization: Basic`, form-decoded, RFC 6749 §2.3.1), the
//! scope list and the PKCE verifier checks the grants apply to the parameters.
//! Input: the first line is the `Authorization` header value, the rest is the body.
//! INVARIANT: every input is parameters or an `OAuthError`, never a panic.
#![no_main]

use axum::http::{header, HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use tessera_server::oauth::endpoint::client_auth::presented;
use tessera_server::oauth::endpoint::params::Params;
use tessera_server::oauth::pkce::{s256, well_formed as pkce_well_formed};
use tessera_server::oauth::scope::split_scopes;

fuzz_target!(init: tessera_fuzz::catch_stack_overflow(), |data: &[u8]| {
    let (authorization, body) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&[][..], data),
    };
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-www-form-urlencoded; charset=UTF-8"),
    );
    if !authorization.is_empty() {
        if let Ok(v) = HeaderValue::from_bytes(authorization) {
            headers.insert(header::AUTHORIZATION, v);
        }
    }
    let Ok(params) = Params::parse(&headers, body) else {
        return;
    };
    let _ = presented(
        &headers,
        params.get("client_id"),
        params.get("client_secret"),
    );
    if let Some(scope) = params.get("scope") {
        let _ = split_scopes(scope);
    }
    if let Some(verifier) = params.get("code_verifier") {
        if pkce_well_formed(verifier) {
            let _ = s256(verifier);
        }
    }
    let _ = params.required("grant_type");
});
