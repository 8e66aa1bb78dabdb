//! One connection: hyper's HTTP/1 state machine under a watchdog that closes it when the
//! client is too slow. hyper's own header timer restarts when a response ends, so it would
//! also cut keep-alive waits short; we keep our own deadlines instead, per phase:
//! - `Head`: from the connection's start, or a request's first byte, to the end of its head:
//!   `header_timeout`;
//! - `Idle`: between a response and the next request's first byte: `idle_timeout`;
//! - `Responding`: while a response is written, no progress for `idle_timeout`;
//! - `Handling`: none here (the body has `body_timeout`, see `body`; the handler is ours).

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tower::ServiceExt as _;

use super::activity::{Activity, HANDLING, IDLE, RESPONDING};
use super::body::TimeoutBody;
use super::settings::NetSettings;

/// The connection a request arrived on, as a request extension: the app reads from it whether
/// the request's body timed out (and then answers 408).
#[derive(Clone, Debug)]
pub struct ConnHandle(pub(crate) Arc<Activity>);

impl ConnHandle {
    /// Whether a request body on this connection did not arrive in time.
    pub fn body_timed_out(&self) -> bool {
        self.0.body_has_timed_out()
    }
}

/// The socket, noting each read and write that makes progress.
struct Tracked<T> {
    io: T,
    activity: Arc<Activity>,
}

impl<T: AsyncRead + Unpin> AsyncRead for Tracked<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.io).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.io(true);
        }
        r
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Tracked<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.io(false);
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.io(false);
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// A response body that marks the connection idle once hyper has written (and dropped) it.
pub(crate) struct Tracking<B> {
    inner: B,
    activity: Arc<Activity>,
}

impl<B: hyper::body::Body + Unpin> hyper::body::Body for Tracking<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

impl<B> Drop for Tracking<B> {
    fn drop(&mut self) {
        self.activity.enter(IDLE);
    }
}

/// Serves one connection until it ends, a deadline passes, or `stop` asks for a graceful end.
pub(crate) async fn serve_connection(
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    router: Router,
    settings: NetSettings,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Tracked {
        io: tcp,
        activity: activity.clone(),
    });
    let on_request = activity.clone();
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let activity = on_request.clone();
        activity.enter(HANDLING);
        let (mut parts, body) = req.into_parts();
        parts.extensions.insert(ConnectInfo(peer));
        parts.extensions.insert(ConnHandle(activity.clone()));
        let body = TimeoutBody::new(body, settings.body_timeout, activity.clone());
        let req = axum::extract::Request::from_parts(parts, Body::new(body));
        let router = router.clone();
        async move {
            let resp = router.oneshot(req).await?;
            activity.enter(RESPONDING);
            Ok::<_, std::convert::Infallible>(resp.map(|inner: Body| Tracking { inner, activity }))
        }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        // Our watchdog keeps the header deadline (see the module's header).
        .header_read_timeout(None)
        .serve_connection(io, service);
    let mut conn = std::pin::pin!(conn);
    let mut stopping = *stop.borrow();
    if stopping {
        conn.as_mut().graceful_shutdown();
    }
    loop {
        let wait = match activity.deadline(&settings) {
            Ok(wait) => wait,
            Err(phase) => {
                crate::metrics::connection_timed_out(phase);
                tracing::debug!(%peer, phase, "closing a slow connection");
                return;
            }
        };
        tokio::select! {
            done = conn.as_mut() => {
                if let Err(e) = done {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                return;
            }
            _ = stop.changed(), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
            () = tokio::time::sleep(wait) => {}
        }
    }
}
