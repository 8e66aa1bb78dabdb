//! Handlers and routes of `/v1/agencies/{agy}/webhooks[/{whk}[/rotate-secret|/redeliver|
//! /deliveries[/{msg}[/redeliver]]]]`: extract, call `usecase::webhooks`, answer. Their
//! permissions (`webhooks.read`, `webhooks.write`) are declared here, in the route table.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use tessera_core::{MessageId, WebhookId};
use tessera_store::Redeliver;

use super::api_keys::optional_json;
use super::spec::{Access, RouteSpec};
use crate::error::ApiError;
use crate::gate::authorized::Authorized;
use crate::gate::TargetFrom;
use crate::http::extract::{parse_id, Json, ListQuery};
use crate::http::list::List;
use crate::http::state::AppState;
use crate::usecase::webhooks::{
    self, CreateWebhook, DeliveryView, RedeliverDead, Redelivered, RotateWebhookSecret,
    WebhookView, WebhookWithSecret,
};

/// The webhook routes of an agency.
pub(super) fn routes() -> Vec<RouteSpec> {
    use axum::routing::{delete, get, post};
    let read = Access::Permission("webhooks.read", TargetFrom::Path);
    let write = Access::Permission("webhooks.write", TargetFrom::Path);
    vec![
        RouteSpec::new(
            Method::POST,
            "/v1/agencies/{agy}/webhooks",
            write,
            "Register a webhook: the agency's audit events matching `events`, POSTed signed (Standard Webhooks); the secret is shown once",
            post(create),
        )
        .body::<CreateWebhook>()
        .returns::<WebhookWithSecret>(201)
        .carries_secret(),
        RouteSpec::new(
            Method::GET,
            "/v1/agencies/{agy}/webhooks",
            read,
            "List the agency's webhooks",
            get(list),
        )
        .returns::<List<WebhookView>>(200),
        RouteSpec::new(
            Method::GET,
            "/v1/agencies/{agy}/webhooks/{whk}",
            read,
            "Read a webhook",
            get(read_one),
        )
        .returns::<WebhookView>(200),
        RouteSpec::new(
            Method::DELETE,
            "/v1/agencies/{agy}/webhooks/{whk}",
            write,
            "Delete a webhook and its delivery queue",
            delete(remove),
        )
        .empty(),
        RouteSpec::new(
            Method::POST,
            "/v1/agencies/{agy}/webhooks/{whk}/rotate-secret",
            write,
            "Rotate a webhook's secret: the previous one keeps signing beside it until it expires (default 24 h)",
            post(rotate),
        )
        .body::<RotateWebhookSecret>()
        .returns::<WebhookWithSecret>(200)
        .carries_secret(),
        RouteSpec::new(
            Method::GET,
            "/v1/agencies/{agy}/webhooks/{whk}/deliveries",
            read,
            "List a webhook's deliveries (`state=dead`: the dead-letter list)",
            get(deliveries),
        )
        .returns::<List<DeliveryView>>(200),
        RouteSpec::new(
            Method::GET,
            "/v1/agencies/{agy}/webhooks/{whk}/deliveries/{msg}",
            read,
            "Read one delivery of a webhook",
            get(delivery),
        )
        .returns::<DeliveryView>(200),
        RouteSpec::new(
            Method::POST,
            "/v1/agencies/{agy}/webhooks/{whk}/deliveries/{msg}/redeliver",
            write,
            "Redeliver one message (whatever its state), under the same webhook-id",
            post(redeliver_one),
        )
        .returns::<Redelivered>(202),
        RouteSpec::new(
            Method::POST,
            "/v1/agencies/{agy}/webhooks/{whk}/redeliver",
            write,
            "Redeliver every dead message of a webhook (optionally only those enqueued since a time)",
            post(redeliver_dead),
        )
        .body::<RedeliverDead>()
        .returns::<Redelivered>(202),
    ]
}

/// `POST …/webhooks`: `webhooks.write` (the use case adds `audit_log.read`).
pub async fn create(
    State(s): State<AppState>,
    auth: Authorized,
    Json(body): Json<CreateWebhook>,
) -> Result<(StatusCode, axum::Json<WebhookWithSecret>), ApiError> {
    let w = webhooks::create(&s, &auth, body).await?;
    Ok((StatusCode::CREATED, axum::Json(w)))
}

/// `GET …/webhooks`: `webhooks.read`.
pub async fn list(
    State(s): State<AppState>,
    auth: Authorized,
    q: ListQuery,
) -> Result<axum::Json<List<WebhookView>>, ApiError> {
    q.cursor_as::<WebhookId>()?;
    if let Some((k, _)) = q.rest.first() {
        return Err(ApiError::invalid(format!("unknown query parameter `{k}`")));
    }
    Ok(axum::Json(
        webhooks::list(&s, &auth, &q.page()).await?.into(),
    ))
}

/// `GET …/webhooks/{whk}`: `webhooks.read`.
pub async fn read_one(
    State(s): State<AppState>,
    auth: Authorized,
    Path((_, whk)): Path<(String, String)>,
) -> Result<axum::Json<WebhookView>, ApiError> {
    let id: WebhookId = parse_id(&whk)?;
    Ok(axum::Json(webhooks::get(&s, &auth, &id).await?))
}

/// `DELETE …/webhooks/{whk}`: `webhooks.write`.
pub async fn remove(
    State(s): State<AppState>,
    auth: Authorized,
    Path((_, whk)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let id: WebhookId = parse_id(&whk)?;
    webhooks::remove(&s, &auth, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST …/webhooks/{whk}/rotate-secret` (the body may be empty): `webhooks.write`.
pub async fn rotate(
    State(s): State<AppState>,
    auth: Authorized,
    Path((_, whk)): Path<(String, String)>,
    body: Bytes,
) -> Result<axum::Json<WebhookWithSecret>, ApiError> {
    let id: WebhookId = parse_id(&whk)?;
    let input = optional_json::<RotateWebhookSecret>(&body)?;
    Ok(axum::Json(webhooks::rotate(&s, &auth, &id, input).await?))
}

/// `GET …/webhooks/{whk}/deliveries?state=`: `webhooks.read`.
pub async fn deliveries(
    State(s): State<AppState>,
    auth: Authorized,
    Path((_, whk)): Path<(String, String)>,
    q: ListQuery,
) -> Result<axum::Json<List<DeliveryView>>, ApiError> {
    let id: WebhookId = parse_id(&whk)?;
    q.cursor_as::<MessageId>()?;
    let mut state = None;
    for (k, v) in &q.rest {
        match k.as_str() {
            "state" => state = Some(v.as_str()),
            other => {
                return Err(ApiError::invalid(format!(
                    "unknown query parameter `{other}`"
                )))
            }
        }
    }
    Ok(axum::Json(
        webhooks::deliveries(&s, &auth, &id, state, &q.page())
            .await?
            .into(),
    ))
}

/// `GET …/webhooks/{whk}/deliveries/{msg}`: `webhooks.read`.
pub async fn delivery(
    State(s): State<AppState>,
    auth: Authorized,
    Path((_, whk, msg)): Path<(String, String, String)>,
) -> Result<axum::Json<DeliveryView>, ApiError> {
    let id: WebhookId = parse_id(&whk)?;
    let msg: MessageId = parse_id(&msg)?;
    Ok(axum::Json(webhooks::delivery(&s, &auth, &id, &msg).await?))
}

/// `POST …/webhooks/{whk}/deliveries/{msg}/redeliver`: `webhooks.write`.
pub async fn redeliver_one(
    State(s): State<AppState>,
    auth: Authorized,
    Path((_, whk, msg)): Path<(String, String, String)>,
) -> Result<(StatusCode, axum::Json<Redelivered>), ApiError> {
    let id: WebhookId = parse_id(&whk)?;
    let msg: MessageId = parse_id(&msg)?;
    let r = webhooks::redeliver(&s, &auth, &id, Redeliver::One(msg)).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(r)))
}

/// `POST …/webhooks/{whk}/redeliver` (the body may be empty): `webhooks.write`.
pub async fn redeliver_dead(
    State(s): State<AppState>,
    auth: Authorized,
    Path((_, whk)): Path<(String, String)>,
    body: Bytes,
) -> Result<(StatusCode, axum::Json<Redelivered>), ApiError> {
    let id: WebhookId = parse_id(&whk)?;
    let input = optional_json::<RedeliverDead>(&body)?;
    let since = webhooks::since(&input)?;
    let r = webhooks::redeliver(&s, &auth, &id, Redeliver::DeadSince(since)).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(r)))
}
