//! The accept loop: HTTP/1 connections served by hyper with the protections a public port
//! needs against slow and greedy clients. A connection over the global or per-client cap is
//! closed at once, unread; each admitted connection runs under `conn`'s deadlines (header,
//! idle, stalled response) and each request body under `body`'s. Shutdown stops accepting,
//! lets in-flight requests finish and closes idle connections.

mod body;
mod conn;
mod limits;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;

pub use conn::ConnHandle;
pub use limits::Limits;

/// Timeouts and connection caps of the HTTP listener.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetSettings {
    /// A request's head (request line and headers) must arrive within this time from the
    /// connection's start or the request's first byte.
    pub header_timeout: Duration,
    /// A request's whole body must arrive within this time from the end of its head.
    pub body_timeout: Duration,
    /// A kept-alive connection may wait this long for its next request, and a response may
    /// stall this long on a client that does not read it.
    pub idle_timeout: Duration,
    /// Open connections, all clients together.
    pub max_connections: usize,
    /// Open connections from one client address (an IPv6 client: its /64).
    pub max_connections_per_ip: usize,
}

impl Default for NetSettings {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            max_connections: 10_000,
            max_connections_per_ip: 256,
        }
    }
}

/// Serves `router` on `listener` until `shutdown` resolves, then waits for the open
/// connections to finish their in-flight requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    settings: NetSettings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let limits = Arc::new(Limits::new(
        settings.max_connections,
        settings.max_connections_per_ip,
    ));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    // Every connection task holds a sender; `recv` answers `None` once all are gone.
    let (live_tx, mut live_rx) = tokio::sync::mpsc::channel::<()>(1);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    accept_error(&e).await;
                    continue;
                }
            },
        };
        let Some(permit) = limits.admit(peer.ip()) else {
            // Refused before reading a byte: dropping the socket closes it.
            drop(tcp);
            continue;
        };
        // Small responses go out at once (no Nagle delay behind a delayed ACK).
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
        let router = router.clone();
        let stop = stop_rx.clone();
        let live = live_tx.clone();
        tokio::spawn(async move {
            conn::serve_connection(tcp, peer, router, settings, stop).await;
            drop(permit);
            drop(live);
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    drop(live_tx);
    let _ = live_rx.recv().await;
}

/// An accept error: a connection that failed before we saw it is skipped; anything else
/// (such as running out of file descriptors) pauses accepting briefly instead of spinning.
async fn accept_error(e: &std::io::Error) {
    use std::io::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset | ErrorKind::ConnectionRefused
    ) {
        return;
    }
    crate::metrics::accept_error();
    tracing::warn!(error = %e, "accept failed; pausing briefly");
    tokio::time::sleep(Duration::from_millis(50)).await;
}

/// How the service faces the network: the listener's timeouts and caps, and who may read
/// `/metrics`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HttpSettings {
    /// Timeouts and connection caps.
    pub net: NetSettings,
    /// `/metrics` without a credential (for a scraper on a private network).
    pub metrics_public: bool,
}
