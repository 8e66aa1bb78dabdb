//! The request-body deadline: the whole body must arrive within `body_timeout` of the
//! request's head. Past it, reading the body fails, the connection is marked, and the app
//! answers 408 `request_timeout` and closes the connection (see `observe`).

use std::future::Future as _;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Bytes;
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use super::activity::Activity;

/// The body did not arrive within the deadline.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {0:?}")]
pub struct BodyTimeout(Duration);

/// A request body with a deadline. The timer is only armed when the body is not already
/// buffered, so a request whose body came with its head costs no timer.
pub(crate) struct TimeoutBody<B> {
    inner: B,
    limit: Duration,
    deadline: Instant,
    sleep: Option<Pin<Box<Sleep>>>,
    activity: Arc<Activity>,
}

impl<B> TimeoutBody<B> {
    pub(crate) fn new(inner: B, limit: Duration, activity: Arc<Activity>) -> Self {
        Self {
            inner,
            limit,
            deadline: Instant::now() + limit,
            sleep: None,
            activity,
        }
    }
}

impl<B> HttpBody for TimeoutBody<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: Into<axum::BoxError>,
{
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        let deadline = this.deadline;
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if sleep.as_mut().poll(cx).is_ready() {
            this.activity.body_timed_out();
            crate::metrics::body_timed_out();
            return Poll::Ready(Some(Err(Box::new(BodyTimeout(this.limit)))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
