//! Handler of `GET /v1/revocations` (`revocations.read`): the revocation feed as JSON (with an
//! optional long-poll) or, with `Accept: text/event-stream`, as Server-Sent Events. The reads
//! are `usecase::revocations`; this file only frames them.
//!
//! INVARIANT: a stream re-authenticates its credential and re-checks `revocations.read` at
//! every keep-alive, and ends when either fails, when the node stops, or when the store fails
//! (the client resumes with `Last-Event-ID`); streams count against the agency's cap.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::gate::authorized::Authorized;
use crate::http::state::AppState;
use crate::usecase::revocations::{self as feed, FeedRequest, Reader, StreamPermit};

/// The longest gap between two writes on a stream.
pub const KEEPALIVE: Duration = Duration::from_secs(15);

/// `GET /v1/revocations`.
pub async fn list(
    State(s): State<AppState>,
    auth: Authorized,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let query: Vec<(String, String)> = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let sse = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.to_ascii_lowercase().contains("text/event-stream"));
    // Honoured in both modes (a proxy may turn a stream's reconnect into a plain GET).
    let last_event_id = headers
        .get("last-event-id")
        .map(|v| {
            v.to_str()
                .map_err(|_| ApiError::invalid("malformed Last-Event-ID"))
        })
        .transpose()?;
    let req = FeedRequest::parse(&query, last_event_id)?;
    let reader = Reader::of(&auth)?;
    if !sse {
        return Ok(axum::Json(feed::page(&s, &reader, &req).await?).into_response());
    }
    feed::check_cursor(&s, &reader, req.since).await?;
    let permit = feed::enter(&s, &auth.agency)?;
    let credential = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let keepalive = KEEPALIVE
        .min(s.http.net.idle_timeout / 2)
        .max(Duration::from_secs(1));
    let stream = Stream {
        bell: s.engine.listen(),
        stop: s.feed_streams.stopping(),
        s,
        auth,
        reader,
        credential,
        since: req.since,
        limit: req.limit,
        // A first comment at once, so the client sees the stream open (headers flushed).
        out: VecDeque::from([": keepalive\n\n".to_owned()]),
        keepalive,
        next_keepalive: tokio::time::Instant::now() + keepalive,
        _permit: permit,
    };
    let body = Body::from_stream(futures_util::stream::unfold(stream, |mut st| async move {
        st.next()
            .await
            .map(|chunk| (Ok::<_, Infallible>(chunk), st))
    }));
    let mut resp = Response::new(body);
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // nginx: pass events on as they come.
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(resp)
}

/// One SSE stream's state.
struct Stream {
    s: AppState,
    auth: Authorized,
    reader: Reader,
    credential: String,
    since: Option<i64>,
    limit: u32,
    bell: tokio::sync::watch::Receiver<u64>,
    stop: tokio::sync::watch::Receiver<bool>,
    out: VecDeque<String>,
    keepalive: Duration,
    next_keepalive: tokio::time::Instant,
    _permit: StreamPermit,
}

impl Stream {
    /// The next chunk to write, or `None` to end the stream.
    async fn next(&mut self) -> Option<String> {
        loop {
            if *self.stop.borrow() {
                return None;
            }
            if let Some(chunk) = self.out.pop_front() {
                self.next_keepalive = tokio::time::Instant::now() + self.keepalive;
                return Some(chunk);
            }
            match feed::read(&self.s, &self.reader, self.since, self.limit).await {
                Ok((items, next)) => {
                    self.since = Some(next);
                    for it in &items {
                        let data = serde_json::to_string(it).ok()?;
                        self.out.push_back(format!(
                            "id: {}\nevent: revocation\ndata: {data}\n\n",
                            it.cursor
                        ));
                    }
                    if !self.out.is_empty() {
                        continue;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = ?e, "revocation stream ends: the feed is unreadable");
                    return None;
                }
            }
            tokio::select! {
                changed = self.bell.changed() => {
                    if changed.is_err() {
                        return None;
                    }
                }
                _ = self.stop.changed() => return None,
                () = tokio::time::sleep(feed::FALLBACK_POLL) => {}
                () = tokio::time::sleep_until(self.next_keepalive) => {
                    if !self.still_allowed().await {
                        return None;
                    }
                    self.out.push_back(": keepalive\n\n".to_owned());
                }
            }
        }
    }

    /// Whether the credential still authenticates and still holds `revocations.read` (a
    /// revoked or expired credential ends its stream within one keep-alive).
    async fn still_allowed(&self) -> bool {
        let Ok(caller) =
            crate::authn::authenticate(&self.s, crate::authn::Presented::Value(&self.credential))
                .await
        else {
            return false;
        };
        if caller.principal != self.auth.caller.principal {
            return false;
        }
        let Some(permission) = self.s.catalog.permission("revocations.read") else {
            return false;
        };
        let ctx = crate::gate::decide::request_context(&self.s, &self.auth.meta);
        crate::gate::decide::decide(
            &self.s,
            &caller,
            permission,
            &self.auth.agency,
            None,
            &ctx,
            None,
        )
        .await
        .is_ok_and(|d| d.allowed)
    }
}
