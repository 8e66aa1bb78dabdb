//! The outermost middleware: gives each request an id (`x-request-id`), notes the client's
//! address (behind trusted proxies, the forwarded one) and user agent for the audit trail, logs the request at `debug` (never its headers
//! or body; `TESSERA_LOG=debug` shows them) and records metrics by route template and status.
//! A request whose body did not arrive in time is answered 408 `request_timeout` here, whatever
//! the handler made of the failed read.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::caller::RequestMeta;
use crate::error::{ApiError, ErrorCode};
use crate::net::TrustedProxies;

fn request_id(req: &Request) -> String {
    // A caller's id is kept if it is short and plain, so traces join up; otherwise ours.
    req.headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .map(str::to_owned)
        .unwrap_or_else(|| {
            let mut id = String::with_capacity(4 + tessera_core::ids::ULID_LEN);
            id.push_str("req_");
            tessera_core::ids::push_ulid(
                &mut id,
                tessera_core::ids::now_millis(),
                &mut rand::thread_rng(),
            );
            id
        })
}

/// The request's audit facts, as `observe` set them (defaults on a request it did not see).
/// The one place that knows how they are stored, so no reader looks under another type.
pub fn request_meta(extensions: &axum::http::Extensions) -> Arc<RequestMeta> {
    extensions
        .get::<Arc<RequestMeta>>()
        .cloned()
        .unwrap_or_default()
}

/// Request id, log line and metrics for every request.
pub async fn observe(
    State(proxies): State<Arc<TrustedProxies>>,
    mut req: Request,
    next: Next,
) -> Response {
    let start = Instant::now();
    let id = request_id(&req);
    // The one client address every later step uses (see `net::forwarded`).
    let addr = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| proxies.client_ip(c.0.ip(), req.headers()));
    let ip = addr.map(|a| a.to_string());
    let user_agent = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.chars().take(256).collect());
    let route = req.extensions().get::<MatchedPath>().cloned();
    let method = req.method().clone();
    let conn = req.extensions().get::<crate::net::ConnHandle>().cloned();
    req.extensions_mut().insert(Arc::new(RequestMeta {
        request_id: id.clone(),
        ip: ip.clone(),
        addr,
        user_agent,
    }));
    let mut resp = next.run(req).await;
    if conn.is_some_and(|c| c.body_timed_out()) {
        resp = ApiError::new(
            ErrorCode::RequestTimeout,
            "the request body did not arrive in time",
        )
        .into_response();
    }
    let status = resp.status().as_u16();
    let secs = start.elapsed().as_secs_f64();
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    crate::metrics::observe(method.as_str(), route, status, secs);
    tracing::debug!(request_id = %id, method = %method, route = %route, status, ms = secs * 1000.0, ip = ip.as_deref().unwrap_or("-"), "request");
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    resp
}
