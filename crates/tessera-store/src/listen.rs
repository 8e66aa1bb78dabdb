//! PostgreSQL `LISTEN tessera_changes` on a dedicated connection (its own one-connection
//! pool, never a pooled tenant connection), reported as [`ChangeEvent`]s. The change log's
//! trigger (migration 0013) notifies at every commit that appends to it.
//!
//! On a lost connection it reports `Lost`, reconnects with backoff (100 ms doubling to 5 s)
//! and reports `Connected` once listening again: notifications sent in between are lost, so
//! the reader reads the change log itself then.

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use tokio::sync::mpsc;

use crate::store::{ChangeEvent, ChangeSignal};

/// The channel the change-log trigger notifies.
pub(crate) const CHANNEL: &str = "tessera_changes";

const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Starts a listener task on `options` (the store's own connection options).
pub(crate) fn spawn(options: PgConnectOptions) -> ChangeSignal {
    let (tx, rx) = mpsc::channel(16);
    let task = tokio::spawn(async move {
        let mut backoff = FIRST_BACKOFF;
        loop {
            match connect(&options).await {
                Ok((pool, mut listener)) => {
                    backoff = FIRST_BACKOFF;
                    if tx.send(ChangeEvent::Connected).await.is_err() {
                        return;
                    }
                    loop {
                        match listener.try_recv().await {
                            Ok(Some(_)) => {
                                // A full channel already holds a wake-up: nothing is lost.
                                if let Err(mpsc::error::TrySendError::Closed(_)) =
                                    tx.try_send(ChangeEvent::Notified)
                                {
                                    return;
                                }
                            }
                            Ok(None) => {
                                tracing::warn!("change notifications: connection lost; polling until it is back");
                                break;
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "change notifications: connection failed; polling until it is back");
                                break;
                            }
                        }
                    }
                    drop(listener);
                    pool.close().await;
                    if tx.send(ChangeEvent::Lost).await.is_err() {
                        return;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, retry_ms = backoff.as_millis() as u64, "change notifications: cannot listen; polling meanwhile");
                }
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    });
    ChangeSignal::new(rx, task)
}

async fn connect(options: &PgConnectOptions) -> Result<(sqlx::PgPool, PgListener), sqlx::Error> {
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .min_connections(0)
        .max_lifetime(None)
        .idle_timeout(None)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options.clone())
        .await?;
    let mut listener = PgListener::connect_with(&pool).await?;
    listener.listen(CHANNEL).await?;
    Ok((pool, listener))
}
