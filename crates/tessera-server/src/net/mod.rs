//! The accept loop: HTTP/1 connections served by hyper with the protections a public port
//! needs against slow and greedy clients. A connection over the global or per-client cap is
//! closed at once, unread; each admitted connection runs under `conn`'s deadlines (header,
//! idle, stalled response) and each request body under `body`'s. Shutdown stops accepting,
//! lets in-flight requests finish and closes idle connections.

mod activity;
mod body;
mod conn;
pub mod forwarded;
mod limits;
pub mod settings;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;

pub use conn::ConnHandle;
pub use forwarded::{ForwardedHeader, TrustedProxies};
pub use limits::{client_key, Limits};
pub use settings::{HttpSettings, NetSettings};

/// Serves `router` on `listener` until `shutdown` resolves, then waits for the open
/// connections to finish their in-flight requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    settings: NetSettings,
    proxies: Arc<TrustedProxies>,
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
        // A trusted proxy carries many clients: only the global cap applies to it.
        let Some(permit) = limits.admit(peer.ip(), proxies.trusts(peer.ip())) else {
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
