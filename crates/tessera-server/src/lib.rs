//! The Tessera service: the HTTP app (`app`), the server loop (`run`), configuration, the
//! CLI, bootstrap, authentication and the authorization gate. Data flows one way:
//! HTTP → handler (a use case) → store; decisions are pure calls into `tessera-core`.
//! `/metrics` is behind the gate (`platform.config`, platform principals) unless configured
//! public; with an `https://` issuer every response carries HSTS.

pub mod audit;
pub mod authn;
pub mod bootstrap;
pub mod caller;
pub mod cli;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod engine;
pub mod error;
pub mod feed;
pub mod forward_auth;
pub mod gate;
pub mod http;
pub mod hugepages;
pub mod keys;
pub mod metrics;
pub mod net;
pub mod oauth;
pub mod oauth_ui;
pub mod observe;
pub mod passwords;
pub mod peppered;
pub mod ratelimit;
pub mod secrets;
pub mod seed;
pub mod services;
pub mod suspension;
pub mod usecase;
pub mod webhooks;

use std::future::Future;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use crate::audit::action::AuditAction;
use crate::error::{ApiError, ErrorCode};
use crate::gate::{GuardState, TargetFrom};
use crate::http::routes::Access;
use crate::http::state::AppState;

/// Why the app cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// A route names a permission the catalog lacks.
    #[error("route `{method} {path}` requires `{permission}`, which the catalog does not define")]
    UnknownPermission {
        method: String,
        path: String,
        permission: String,
    },
}

/// The whole HTTP app.
pub fn app(state: AppState) -> Result<Router, AppError> {
    let table = http::routes::table();
    let openapi = Arc::new(http::openapi::document(&table, &state.catalog));
    let mut router: Router<AppState> = Router::new();
    for r in table {
        let (permission, target) = match r.access {
            Access::Permission(p, t) => (p, t),
            Access::Platform(p) => (p, TargetFrom::Path),
            Access::Authenticated => ("", TargetFrom::Path),
        };
        let handler = if permission.is_empty() {
            r.handler.route_layer(axum::middleware::from_fn_with_state(
                state.clone(),
                authenticated_only,
            ))
        } else {
            let index = state.catalog.permission(permission).ok_or_else(|| {
                AppError::UnknownPermission {
                    method: r.method.to_string(),
                    path: r.path.to_owned(),
                    permission: permission.to_owned(),
                }
            })?;
            let g = GuardState {
                app: state.clone(),
                permission,
                index,
                target,
                platform_only: matches!(r.access, Access::Platform(_)),
            };
            r.handler
                .route_layer(axum::middleware::from_fn_with_state(g, gate::guard))
        };
        // A response that carries a secret is never stored by a cache.
        let handler = if r.secret {
            handler.route_layer(axum::middleware::map_response(no_store))
        } else {
            handler
        };
        // A batch of checks is larger than any other body.
        let handler = if r.path == "/v1/check/batch" {
            handler.layer(DefaultBodyLimit::max(http::extract::MAX_BATCH_BODY))
        } else {
            handler
        };
        router = router.route(r.path, handler);
    }
    let router = router
        .merge(oauth::router())
        .route("/.well-known/jwks.json", get(jwks))
        .route("/.well-known/audit-keys.json", get(audit_keys))
        .route(
            "/healthz",
            get(|| async { axum::Json(serde_json::json!({ "status": "ok" })) }),
        )
        .route("/readyz", get(readyz))
        .route("/metrics", metrics_route(&state)?)
        .route(
            "/openapi.json",
            get(move || async move { axum::Json((*openapi).clone()) }),
        )
        .fallback(|| async { ApiError::new(ErrorCode::NotFound, "no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                ErrorCode::MethodNotAllowed,
                "this route does not accept that method",
            )
        })
        .layer(DefaultBodyLimit::max(http::extract::MAX_BODY))
        .layer(axum::middleware::from_fn_with_state(
            state.http.proxies.clone(),
            observe::observe,
        ));
    let router = if state.hsts {
        router.layer(axum::middleware::map_response(hsts))
    } else {
        router
    };
    Ok(router.with_state(state))
}

/// The permission `/metrics` requires (of a platform principal) unless it is public.
pub const METRICS_PERMISSION: &str = "platform.config";

/// `GET /metrics`: behind the gate, as a platform-only route needing `platform.config`, unless
/// `metrics_public` is set.
fn metrics_route(state: &AppState) -> Result<axum::routing::MethodRouter<AppState>, AppError> {
    let route = get(metrics_text);
    if state.http.metrics_public {
        return Ok(route);
    }
    let index = state
        .catalog
        .permission(METRICS_PERMISSION)
        .ok_or_else(|| AppError::UnknownPermission {
            method: "GET".into(),
            path: "/metrics".into(),
            permission: METRICS_PERMISSION.into(),
        })?;
    let g = GuardState {
        app: state.clone(),
        permission: METRICS_PERMISSION,
        index,
        target: TargetFrom::Path,
        platform_only: true,
    };
    Ok(route.route_layer(axum::middleware::from_fn_with_state(g, gate::guard)))
}

/// RFC 6797: browsers that reached us over HTTPS keep to HTTPS for a year, subdomains too.
async fn hsts(mut resp: axum::response::Response) -> axum::response::Response {
    resp.headers_mut().insert(
        header::STRICT_TRANSPORT_SECURITY,
        header::HeaderValue::from_static("max-age=31536000; includeSubDomains"),
    );
    resp
}

/// Marks a response that carries a secret as not storable (`Cache-Control: no-store`, and
/// `Pragma: no-cache` for HTTP/1.0 caches; RFC 6749 §5.1, RFC 9111 §5.2.2.5).
async fn no_store(mut resp: axum::response::Response) -> axum::response::Response {
    let h = resp.headers_mut();
    h.insert(
        header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    h.insert(
        header::PRAGMA,
        axum::http::HeaderValue::from_static("no-cache"),
    );
    resp
}

/// The public keys that verify Tessera's tokens (RFC 7517), with a cache lifetime shorter
/// than the time a new key is published before it signs.
async fn jwks(State(s): State<AppState>) -> impl IntoResponse {
    let now = s.clock.now() / 1000;
    (
        [(header::CACHE_CONTROL, "public, max-age=300")],
        axum::Json(s.keys.jwks(now)),
    )
}

/// The public keys that verify audit checkpoints (a JWKS of Ed25519 keys, RFC 8037): every
/// key that signs, will sign or ever signed. Public and cacheable: a new key is published
/// [`crate::audit::keys::DEFAULT_PUBLISH_AHEAD_SECS`] before it signs.
async fn audit_keys(State(s): State<AppState>) -> impl IntoResponse {
    (
        [(header::CACHE_CONTROL, "public, max-age=300")],
        axum::Json(s.audit_keys.jwks()),
    )
}

/// Prometheus metrics, with the authorization cache's size. Requires `platform.config` of a
/// platform principal (see `metrics_route`), unless `metrics_public`.
async fn metrics_text(State(s): State<AppState>) -> impl IntoResponse {
    let cache = s.engine.stats();
    let text = format!(
        "{}# HELP tessera_authz_cache_entries Agency indexes held in memory.\n# TYPE tessera_authz_cache_entries gauge\ntessera_authz_cache_entries {}\n# HELP tessera_authz_cache_bytes Approximate size of the held indexes.\n# TYPE tessera_authz_cache_bytes gauge\ntessera_authz_cache_bytes {}\n# HELP tessera_authz_cache_lookups_total Index lookups: a hit uses a held index, a miss builds one from the store.\n# TYPE tessera_authz_cache_lookups_total counter\ntessera_authz_cache_lookups_total{{outcome=\"hit\"}} {}\ntessera_authz_cache_lookups_total{{outcome=\"miss\"}} {}\n# HELP tessera_authz_cache_builds_total Indexes built from the store (concurrent misses in one agency share one build).\n# TYPE tessera_authz_cache_builds_total counter\ntessera_authz_cache_builds_total {}\n# HELP tessera_authz_cache_evictions_total Indexes dropped to stay within the memory budget.\n# TYPE tessera_authz_cache_evictions_total counter\ntessera_authz_cache_evictions_total {}\n{}",
        metrics::render(),
        cache.entries,
        cache.bytes,
        cache.hits,
        cache.misses,
        cache.builds,
        cache.evictions,
        s.reads.render()
    );
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
}

/// How long `/readyz` waits for the store. While PostgreSQL is down the pool keeps trying to
/// connect for its whole acquire timeout (10 s), so an unbounded probe would hang through a
/// short outage instead of reporting it, and answer 200 once the database is back.
const READY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

async fn readyz(State(s): State<AppState>) -> impl IntoResponse {
    let ping = match tokio::time::timeout(READY_TIMEOUT, s.store.ping()).await {
        Ok(answer) => answer.map_err(|e| e.to_string()),
        Err(_) => Err(format!("no answer within {} s", READY_TIMEOUT.as_secs())),
    };
    match ping {
        Ok(()) => {
            // Redis down keeps the node ready: each rate-limit class follows its fail mode, and a
            // 503 here would pull every node out of the balancer at once (README "Rate limits").
            let mut body = serde_json::json!({ "status": "ready", "store": s.store.backend() });
            if let Some(r) = &s.redis {
                r.ping().await;
                body["redis"] = serde_json::Value::from(r.state_name());
            }
            // A replica down keeps the node ready too: its reads go to the primary.
            if let Some(state) = s.reads.readiness().await {
                body["replica"] = serde_json::Value::from(state);
            }
            (StatusCode::OK, axum::Json(body)).into_response()
        }
        Err(e) => {
            tracing::warn!(error = %e, "store not reachable");
            ApiError::new(ErrorCode::Unavailable, "the store is not reachable").into_response()
        }
    }
}

async fn authenticated_only(
    State(s): State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let meta = observe::request_meta(req.extensions());
    let (parts, body) = req.into_parts();
    let authenticated = gate::authenticate_limited(&s, &parts, &meta).await;
    let mut req = axum::extract::Request::from_parts(parts, body);
    match authenticated {
        Ok((caller, rate)) => {
            if caller.actor().is_some() {
                // Every act under impersonation is recorded, checks included (I5).
                let detail = serde_json::json!({ "method": req.method().as_str(), "path": req.uri().path() });
                let record = audit::record::attribute(
                    &caller,
                    audit::record::audit_record(
                        &s,
                        &caller.principal,
                        &meta,
                        AuditAction::ImpersonationRequest,
                        Some(caller.agency.as_str()),
                        tessera_store::Outcome::Success,
                        detail,
                    ),
                );
                let scope = s.admission.admit(caller.agency.clone());
                if let Err(e) = s.audit.append(scope, record).await {
                    return ApiError::from(e).into_response();
                }
            }
            // No data key is loaded here: these routes (check, catalog, forward-auth) write no
            // audit record of their own, and the impersonation record above goes through the
            // writer, which loads the key itself. A first check in an agency is the cold
            // path, which must not wait for a key it does not use (issue 13).
            req.extensions_mut()
                .insert(gate::authorized::Authorized::for_caller(&s, caller, meta));
            let mut resp = next.run(req).await;
            if let Some(r) = &rate {
                ratelimit::headers::apply(resp.headers_mut(), r);
            }
            resp
        }
        Err(e) => e.into_response(),
    }
}

/// Serves the app on `listener` until `shutdown` resolves, then finishes in-flight requests
/// and writes pending key-use times. Connections are served under the timeouts and caps of
/// `state.http.net` (see `net`).
pub async fn run(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let router = app(state.clone())?;
    state.engine.start_at(state.store.revision().await?);
    // What is suspended, read before the first request (then kept current by the feed).
    state.engine.reload_suspensions().await?;
    let background = cluster::jobs::Background::start(&state.services).await;
    // Revocation-feed streams never finish by themselves: they end when shutdown begins.
    let streams = state.feed_streams.clone();
    let shutdown = async move {
        shutdown.await;
        streams.stop();
    };
    net::serve(
        listener,
        router,
        state.http.net,
        state.http.proxies.clone(),
        shutdown,
    )
    .await;
    background.stop().await;
    state.key_usage.flush(state.store.as_ref()).await;
    Ok(())
}
