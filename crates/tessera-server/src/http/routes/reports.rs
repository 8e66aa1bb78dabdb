//! Handlers of `/v1/agencies/{agy}/reports/*` and `/v1/agencies/{agy}/users/{usr}/impersonations`:
//! read the query and the `Accept` header, call `usecase::reports`, answer JSON or CSV
//! (`text/csv`, RFC 4180, with the next page's cursor in `Tessera-Next-Cursor` and a
//! `Link: rel="next"`). Their permission, `compliance.read`, is declared in the route table
//! (`super::table`); the user view lets the user themself in (`usecase::reports::impersonations`).

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, Uri};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tessera_core::UserId;

use super::spec::{Access, RouteSpec};
use crate::error::ApiError;
use crate::gate::authorized::Authorized;
use crate::gate::TargetFrom;
use crate::http::csv;
use crate::http::extract::{parse_id, ListQuery};
use crate::http::state::AppState;
use crate::usecase::reports::credentials::CredentialPolicy;
use crate::usecase::reports::{
    access_review, credentials, impersonations, CsvRow, Format, ReportPage,
};

/// The compliance report routes (deliverable 7 of issue 12).
pub(super) fn routes() -> Vec<RouteSpec> {
    use axum::routing::get;
    use impersonations::ImpersonationSession;
    use Access::Permission as P;
    vec![
        RouteSpec::new(
            Method::GET,
            "/v1/agencies/{agy}/reports/access-review",
            P("compliance.read", TargetFrom::Path),
            "Access review: every principal with its roles, bindings, effective permissions and last activity (`limit`, `cursor`; CSV with `Accept: text/csv`); each page read is audited",
            get(access_review),
        )
        .returns::<ReportPage<access_review::AccessReviewEntry>>(200),
        RouteSpec::new(
            Method::GET,
            "/v1/agencies/{agy}/reports/credentials",
            P("compliance.read", TargetFrom::Path),
            "Credential inventory: API keys, client secrets and signing keys with age, last use, expiry, rotation and stale flags (`unused_days` default 90, `max_age_days` default 365, `limit`, `cursor`; CSV with `Accept: text/csv`); each page read is audited",
            get(credentials),
        )
        .returns::<ReportPage<credentials::CredentialEntry>>(200),
        RouteSpec::new(
            Method::GET,
            "/v1/agencies/{agy}/reports/impersonations",
            P("compliance.read", TargetFrom::Path),
            "Impersonation report: who impersonated whom, when, why, and what they did (`limit`, `cursor`; CSV with `Accept: text/csv`); each page read is audited",
            get(impersonations),
        )
        .returns::<ReportPage<ImpersonationSession>>(200),
        RouteSpec::new(
            Method::GET,
            "/v1/agencies/{agy}/users/{usr}/impersonations",
            P("compliance.read", TargetFrom::Body),
            "The impersonation sessions that touched a user, with reasons: the user themself (their own credential carrying `compliance.readonly`, never under impersonation) or `compliance.read` on the agency; each page read is audited",
            get(of_user),
        )
        .returns::<ReportPage<ImpersonationSession>>(200),
    ]
}

/// JSON unless the client asks for `text/csv` (and not JSON before it).
fn format(headers: &HeaderMap) -> Format {
    let accept = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(",");
    let csv = accept.find("text/csv");
    let json = accept.find("application/json");
    match (csv, json) {
        (Some(c), Some(j)) if c < j => Format::Csv,
        (Some(_), None) => Format::Csv,
        _ => Format::Json,
    }
}

/// Refuses query parameters the route does not know (I7).
fn only(q: &ListQuery, known: &[&str]) -> Result<(), ApiError> {
    match q.rest.iter().find(|(k, _)| !known.contains(&k.as_str())) {
        Some((k, _)) => Err(ApiError::invalid(format!(
            "unknown query parameter `{}`",
            k.chars().take(64).collect::<String>()
        ))),
        None => Ok(()),
    }
}

fn answer<T: Serialize + CsvRow>(uri: &Uri, page: ReportPage<T>, f: Format) -> Response {
    match f {
        Format::Json => axum::Json(page).into_response(),
        Format::Csv => {
            let body = csv::render(&page.items);
            let mut resp = (
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/csv; charset=utf-8; header=present"),
                )],
                body,
            )
                .into_response();
            if let Some(next) = &page.next_cursor {
                let mut query: Vec<(String, String)> = uri
                    .query()
                    .map(|q| {
                        form_urlencoded::parse(q.as_bytes())
                            .into_owned()
                            .filter(|(k, _)| k != "cursor")
                            .collect()
                    })
                    .unwrap_or_default();
                query.push(("cursor".into(), next.clone()));
                let qs = form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(query)
                    .finish();
                let h = resp.headers_mut();
                if let Ok(v) = HeaderValue::from_str(next) {
                    h.insert("tessera-next-cursor", v);
                }
                if let Ok(v) =
                    HeaderValue::from_str(&format!("<{}?{qs}>; rel=\"next\"", uri.path()))
                {
                    h.insert(header::LINK, v);
                }
            }
            resp
        }
    }
}

fn days(q: &ListQuery, name: &str, default: u32) -> Result<u32, ApiError> {
    match q.get(name) {
        None => Ok(default),
        Some(v) => v
            .parse::<u32>()
            .ok()
            .filter(|d| (1..=3650).contains(d))
            .ok_or_else(|| {
                ApiError::invalid(format!(
                    "`{name}` must be a whole number of days, 1 to 3650"
                ))
            }),
    }
}

/// `GET …/reports/access-review`: `compliance.read` on the agency.
pub async fn access_review(
    State(s): State<AppState>,
    auth: Authorized,
    headers: HeaderMap,
    uri: Uri,
    q: ListQuery,
) -> Result<Response, ApiError> {
    only(&q, &[])?;
    let f = format(&headers);
    let page = access_review::page(&s, &auth, q.cursor.as_deref(), q.limit, f).await?;
    Ok(answer(&uri, page, f))
}

/// `GET …/reports/credentials?unused_days=&max_age_days=`: `compliance.read` on the agency.
pub async fn credentials(
    State(s): State<AppState>,
    auth: Authorized,
    headers: HeaderMap,
    uri: Uri,
    q: ListQuery,
) -> Result<Response, ApiError> {
    only(&q, &["unused_days", "max_age_days"])?;
    let d = CredentialPolicy::default();
    let policy = CredentialPolicy {
        unused_days: days(&q, "unused_days", d.unused_days)?,
        max_age_days: days(&q, "max_age_days", d.max_age_days)?,
    };
    let f = format(&headers);
    let page = credentials::page(&s, &auth, q.cursor.as_deref(), q.limit, policy, f).await?;
    Ok(answer(&uri, page, f))
}

/// `GET …/reports/impersonations`: `compliance.read` on the agency.
pub async fn impersonations(
    State(s): State<AppState>,
    auth: Authorized,
    headers: HeaderMap,
    uri: Uri,
    q: ListQuery,
) -> Result<Response, ApiError> {
    only(&q, &[])?;
    let f = format(&headers);
    let page = impersonations::page(&s, &auth, q.cursor.as_deref(), q.limit, f).await?;
    Ok(answer(&uri, page, f))
}

/// `GET …/users/{usr}/impersonations`: the user themself (their own credential, carrying
/// `compliance.readonly`, not under impersonation), or `compliance.read` on the agency.
pub async fn of_user(
    State(s): State<AppState>,
    auth: Authorized,
    headers: HeaderMap,
    uri: Uri,
    Path((_, usr)): Path<(String, String)>,
    q: ListQuery,
) -> Result<Response, ApiError> {
    only(&q, &[])?;
    let id: UserId = parse_id(&usr)?;
    let f = format(&headers);
    let page = impersonations::of_user(&s, &auth, &id, q.cursor.as_deref(), q.limit, f).await?;
    Ok(answer(&uri, page, f))
}
