//! The gate in front of every `/v1` route: authenticates the bearer credential, resolves the
//! target (agency and account from the path), and lets the request through only if the
//! decision allows it. Every route's permission is declared in `http::routes::table`.
//! INVARIANT (I1): tenant scopes come from `admission` (the only holder of the store's mint):
//! `Authorized` carries the scope of the agency the caller was authorized in; another tenant's
//! agency answers the same 404 as a missing one. (I3) deny by default.

pub mod admission;
pub mod authorized;
pub mod decide;
pub mod deny;
pub mod dominates;
pub mod error;
pub mod limit;

use axum::extract::{FromRequestParts, RawPathParams, Request, State};
use axum::http::request::Parts;
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use serde_json::json;
use tessera_core::{AccountId, AgencyId, PermissionIndex, Reason};
use tessera_store::Outcome;

use crate::audit::action::AuditAction;
use crate::audit::record::{attribute, audit_record};
use crate::caller::RequestMeta;
use crate::error::{ApiError, ErrorCode};
use crate::http::extract::parse_id;
use crate::http::state::AppState;
use authorized::Authorized;
use decide::{decide, request_context};
use deny::{audit_in, deny};

/// The route's requirement, attached to each route by the router.
#[derive(Clone, Debug)]
pub struct GuardState {
    /// The app.
    pub app: AppState,
    /// The permission's name.
    pub permission: &'static str,
    /// Its index.
    pub index: PermissionIndex,
    /// Where the target comes from.
    pub target: TargetFrom,
    /// Only platform principals may call the route (agency collection routes).
    pub platform_only: bool,
}

/// Where a route takes its authorization target from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetFrom {
    /// `{agy}` (or the caller's own agency) and `{acc}` from the path: checked before the handler.
    Path,
    /// The account is in the body or the stored object: the gate checks the tenant, the
    /// handler calls `require_at`.
    Body,
}

/// The gate in front of every `/v1` route.
pub async fn guard(State(g): State<GuardState>, request: Request, next: Next) -> Response {
    let method = request.method().clone();
    match check(&g, request).await {
        Ok((request, agency, rate)) => {
            let (mut resp, written) = tessera_store::written::observe(next.run(request)).await;
            if let Some(r) = &rate {
                crate::ratelimit::headers::apply(resp.headers_mut(), r);
            }
            // This node's own decision-changing writes take effect on its next check (other
            // nodes: the feed). A write that recorded no change (a rename) keeps the agency's
            // index: dropping it would only cost a rebuild from the store on the next request.
            let write = method != Method::GET && method != Method::HEAD;
            if write && resp.status().is_success() {
                if written.may_change_decisions() {
                    g.app.engine.invalidate(&agency);
                } else {
                    g.app.engine.wrote(&agency);
                }
            }
            resp
        }
        Err(e) => e.into_response(),
    }
}

/// What the gate lets through: the request, the agency acted in, and the rate-limit report
/// for the response's headers.
type Checked = (Request, AgencyId, Option<crate::ratelimit::Report>);

/// Authenticates, then charges the request's buckets (its IP alone when authentication
/// failed): one rate-limit decision per request, before any authorization work.
pub async fn authenticate_limited(
    app: &AppState,
    parts: &Parts,
    meta: &RequestMeta,
) -> Result<
    (
        std::sync::Arc<crate::caller::Caller>,
        Option<crate::ratelimit::Report>,
    ),
    ApiError,
> {
    let class = limit::v1_class(&parts.method, parts.uri.path());
    // Forward auth also accepts tokens for the resource of the service behind the proxy.
    let audience = (parts.uri.path() == "/v1/forward-auth")
        .then(|| app.forward_auth.audience.as_deref())
        .flatten();
    let header = crate::http::extract::authorization(&parts.headers);
    let caller = match crate::authn::authenticate_for(app, header, audience).await {
        Ok(c) => c,
        Err(e) => {
            let v = limit::for_caller(app, class, meta.addr, None).await;
            return Err(ApiError::from_verdict(&v).unwrap_or_else(|| e.into()));
        }
    };
    let v = limit::for_caller(app, class, meta.addr, Some(&caller)).await;
    if let Some(e) = ApiError::from_verdict(&v) {
        return Err(e);
    }
    let report = match v {
        crate::ratelimit::Verdict::Allowed(r) => r,
        _ => None,
    };
    Ok((caller, report))
}

async fn check(g: &GuardState, request: Request) -> Result<Checked, ApiError> {
    let (mut parts, body) = request.into_parts();
    let meta = crate::observe::request_meta(&parts.extensions);
    let (caller, rate) = authenticate_limited(&g.app, &parts, &meta).await?;
    let params = RawPathParams::from_request_parts(&mut parts, &())
        .await
        .map_err(|_| ApiError::invalid("malformed path"))?;
    let mut agency = None;
    let mut account = None;
    for (name, value) in &params {
        match name {
            "agy" => agency = Some(parse_id::<AgencyId>(value)?),
            "acc" => account = Some(parse_id::<AccountId>(value)?),
            _ => {}
        }
    }
    if g.platform_only && !caller.is_platform {
        let own = caller.agency.clone();
        return Err(deny(
            &g.app,
            &caller,
            &own,
            None,
            g.permission,
            &Reason::NotGranted,
            &meta,
        )
        .await
        .into());
    }
    let agency = agency.unwrap_or_else(|| caller.agency.clone());
    let ctx = request_context(&g.app, &meta);
    let d = decide(
        &g.app,
        &caller,
        g.index,
        &agency,
        account.as_ref(),
        &ctx,
        None,
    )
    .await?;
    let denied = match g.target {
        TargetFrom::Path => !d.allowed,
        // The handler checks the body's account; here only the tenant gate applies.
        TargetFrom::Body => matches!(d.reason, Reason::OtherTenant),
    };
    if denied {
        return Err(deny(
            &g.app,
            &caller,
            &agency,
            account.as_ref(),
            g.permission,
            &d.reason,
            &meta,
        )
        .await
        .into());
    }
    if agency != caller.agency {
        // Platform staff acting in an agency: it must exist, or it is the same 404.
        g.app.store.get_agency(&agency).await?;
        if let Some(overridden) = &d.break_glass {
            // The agency's policies said no; platform staff went through anyway (I5).
            let detail = json!({
                "permission": g.permission, "method": parts.method.as_str(),
                "path": parts.uri.path(), "home_agency": caller.agency.as_str(),
                "overridden": overridden.code(), "policies": match overridden {
                    Reason::DeniedByPolicy { policies } => json!(policies),
                    _ => json!([]),
                },
            });
            audit_in(
                &g.app,
                &caller,
                &meta,
                &agency,
                AuditAction::PlatformBreakGlass,
                detail,
            )
            .await?;
        }
        // Their reads are recorded in the agency's own chain (their writes are audited by the
        // handlers), so an agency can see when platform staff looked at its data.
        if parts.method == Method::GET || parts.method == Method::HEAD {
            let path = parts.uri.path().to_owned();
            let detail = json!({ "permission": g.permission, "method": parts.method.as_str(), "path": path, "home_agency": caller.agency.as_str() });
            audit_in(
                &g.app,
                &caller,
                &meta,
                &agency,
                AuditAction::PlatformCrossTenantRead,
                detail,
            )
            .await?;
        }
    }
    if caller.actor().is_some() {
        // Every act under impersonation is recorded, reads included (I5).
        let detail = json!({ "permission": g.permission, "method": parts.method.as_str(), "path": parts.uri.path() });
        let record = attribute(
            &caller,
            audit_record(
                &g.app,
                &caller.principal,
                &meta,
                AuditAction::ImpersonationRequest,
                Some(agency.as_str()),
                Outcome::Success,
                detail,
            ),
        );
        g.app
            .audit
            .append(g.app.admission.admit(agency.clone()), record)
            .await?;
    }
    // The acted-in agency's data key, in memory before the handler seals its audit records
    // (one store read per agency and node; an agency without one gets it here).
    if let Err(e) = g
        .app
        .data_keys
        .key(
            &g.app.admission.admit(agency.clone()),
            true,
            g.app.clock.now(),
        )
        .await
    {
        tracing::warn!(error = %e, "no data key for the agency acted in");
    }
    // The keys of the people the request names, in memory before the handler seals records
    // about them. The caller's is made here if it has none (once: then every request of theirs
    // finds it cached, with no store read); the users in the path are only loaded (never made:
    // a path is the caller's text).
    {
        let scope = g.app.admission.admit(agency.clone());
        let now = g.app.clock.now();
        let caller_id = caller.principal.as_str();
        if crate::secrets::person_keys::is_user(caller_id) {
            if let Err(e) = g
                .app
                .data_keys
                .person_key(&scope, caller_id, true, now)
                .await
            {
                if !matches!(e, crate::secrets::DataKeyError::Shredded) {
                    tracing::warn!(error = %e, "no person key for the caller");
                }
            }
        }
        let named = parts
            .uri
            .path()
            .split('/')
            .filter(|s| crate::secrets::person_keys::is_user(s) && *s != caller_id)
            .take(3)
            .map(str::to_owned)
            .collect::<Vec<_>>();
        for subject in named {
            g.app.data_keys.load_person(&scope, &subject, now).await;
        }
    }
    parts.extensions.insert(Authorized {
        caller,
        agency: agency.clone(),
        account,
        permission: Some((g.index, g.permission)),
        checked: g.target == TargetFrom::Path,
        admission: g.app.admission.clone(),
        meta,
        data_keys: g.app.data_keys.clone(),
    });
    Ok((Request::from_parts(parts, body), agency, rate))
}

impl<S: Send + Sync> FromRequestParts<S> for Authorized {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parts.extensions.get::<Self>().cloned().ok_or_else(|| {
            ApiError::new(
                ErrorCode::Internal,
                "route is not behind the authorization gate",
            )
        })
    }
}
