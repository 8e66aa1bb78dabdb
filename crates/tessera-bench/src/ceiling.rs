//! `tessera-bench ceiling`: the most a core can serve at all over HTTP/1.1, so every HTTP figure
//! can be given as a fraction of it (docs/BENCHMARKS.md "Per core").
//!
//! One axum route for any path and method that reads the body and answers a small JSON
//! document, on the same runtime, allocator and release profile as `tessera serve`. It does no
//! other work: what Tessera spends beyond it is Tessera's.

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::http::header;
use axum::response::IntoResponse;

/// Arguments of `tessera-bench ceiling`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where to listen.
    #[arg(long, default_value = "127.0.0.1:18390")]
    pub listen: SocketAddr,
}

/// The whole endpoint: take the body, answer as `POST /v1/check` does when it allows.
async fn answer(body: Bytes) -> impl IntoResponse {
    std::hint::black_box(&body);
    (
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"allowed":true}"#,
    )
}

/// Serves until killed. A multi-thread runtime, as `tessera serve` builds: pinned to one core
/// by `taskset`, it has one worker, as Tessera then has.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.listen).await?;
        eprintln!("ceiling: listening on {}", listener.local_addr()?);
        let app = axum::Router::new().fallback(answer);
        axum::serve(listener, app).await?;
        Ok(())
    })
}
