//! Tailing the change log: woken by the store's change signal (PostgreSQL `LISTEN/NOTIFY`,
//! one dedicated connection per node) with polling as the fallback, so a change committed on
//! any node reaches this node's caches and revocation-feed readers within milliseconds.
//!
//! INVARIANT: the change log stays the truth. A notification only triggers a read of it
//! (`Engine::poll`), so a lost or coalesced notification delays a change, never loses it.

use std::sync::Arc;
use std::time::Duration;

use tessera_store::{ChangeEvent, ChangeSignal};

use crate::engine::Engine;

/// Tails the change feed forever. With a `signal` (PostgreSQL `LISTEN/NOTIFY`): a poll on
/// every notification, a burst coalesced into one poll in flight and one queued; a safety
/// poll every `cadence.safety` while listening; every `cadence.fallback` while the
/// listening connection is down, and once as soon as it is back (notifications sent while
/// it was down are lost). Without one (SQLite): a poll every `cadence.fallback`.
pub async fn follow(engine: Arc<Engine>, mut signal: Option<ChangeSignal>, cadence: FollowCadence) {
    let mut listening = false;
    crate::metrics::change_signal_up(signal.as_ref().map(|_| false));
    loop {
        let wait = if listening {
            cadence.safety
        } else {
            cadence.fallback
        };
        if let Some(s) = signal.as_mut() {
            match tokio::time::timeout(wait, s.recv()).await {
                Ok(Some(event)) => {
                    listening = follow_event(listening, event);
                    // Everything that arrived meanwhile is covered by the one poll below.
                    while let Some(event) = s.try_recv() {
                        listening = follow_event(listening, event);
                    }
                    crate::metrics::change_signal_up(Some(listening));
                }
                Ok(None) => {
                    tracing::error!("change notifications stopped; polling from now on");
                    signal = None;
                    listening = false;
                    crate::metrics::change_signal_up(Some(false));
                }
                Err(_elapsed) => {}
            }
        } else {
            tokio::time::sleep(wait).await;
        }
        if let Err(e) = engine.poll().await {
            tracing::warn!(error = %e, "change feed unavailable");
        }
    }
}

/// How often [`follow`] polls the change log.
#[derive(Clone, Copy, Debug)]
pub struct FollowCadence {
    /// Without a change signal, or while it is down.
    pub fallback: Duration,
    /// While the signal is up: a safety net under the notifications.
    pub safety: Duration,
}

impl Default for FollowCadence {
    fn default() -> Self {
        Self {
            fallback: Duration::from_millis(250),
            safety: Duration::from_secs(5),
        }
    }
}

/// Whether the signal is up after `event`.
fn follow_event(listening: bool, event: ChangeEvent) -> bool {
    match event {
        ChangeEvent::Notified => listening,
        ChangeEvent::Connected => {
            tracing::info!("change notifications: listening");
            true
        }
        ChangeEvent::Lost => false,
    }
}
