//! The revocation feed's waiting readers on this node (long-polls and SSE streams of
//! `GET /v1/revocations`, `usecase::revocations`): a count per agency, bounded by the caller,
//! and the stop signal that ends every stream when the server shuts down (so a graceful
//! shutdown does not wait for streams that never finish by themselves).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tessera_core::AgencyId;

/// The waiting readers of each agency on this node, and the node's stop signal (streams end
/// when the server shuts down, so it does not wait for them).
#[derive(Debug)]
pub struct Streams {
    open: Mutex<HashMap<AgencyId, usize>>,
    stop: tokio::sync::watch::Sender<bool>,
}

impl Default for Streams {
    fn default() -> Self {
        Self {
            open: Mutex::default(),
            stop: tokio::sync::watch::channel(false).0,
        }
    }
}

impl Streams {
    /// A slot for one waiting reader of `agency`, unless it already has `cap`.
    pub fn enter(self: &Arc<Self>, agency: &AgencyId, cap: usize) -> Option<StreamPermit> {
        let mut open = self.open.lock().ok()?;
        let n = open.entry(agency.clone()).or_default();
        if *n >= cap {
            return None;
        }
        *n += 1;
        Some(StreamPermit {
            streams: self.clone(),
            agency: agency.clone(),
        })
    }

    /// Ends every stream (at shutdown).
    pub fn stop(&self) {
        self.stop.send_replace(true);
    }

    /// Resolves once the node stops.
    pub fn stopping(&self) -> tokio::sync::watch::Receiver<bool> {
        self.stop.subscribe()
    }
}

/// One waiting reader's slot; released when dropped.
#[derive(Debug)]
pub struct StreamPermit {
    streams: Arc<Streams>,
    agency: AgencyId,
}

impl Drop for StreamPermit {
    fn drop(&mut self) {
        if let Ok(mut open) = self.streams.open.lock() {
            if let Some(n) = open.get_mut(&self.agency) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    open.remove(&self.agency);
                }
            }
        }
    }
}
