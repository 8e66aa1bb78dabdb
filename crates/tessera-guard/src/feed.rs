//! The background tasks of a guard: the revocation feed (long-poll) and the JWKS refresh.
//! INVARIANT: the guard counts as synchronised only once a read of the feed came back with
//! fewer items than a page (it has caught up); a 410 (`cursor_expired`) makes it read the
//! feed again from its start and replace its state. The tasks end when the guard is dropped.

use std::sync::{Arc, Weak};
use std::time::Duration;

use hyper::StatusCode;

use crate::config::GuardConfig;
use crate::error::GuardError;
use crate::guard::{form_encode, get, Guard, Inner};
use crate::revocation::{FeedPage, Revoked};

/// Pause after a failed read of the feed.
const RETRY: Duration = Duration::from_millis(500);

/// Reads the feed for as long as the guard lives.
pub(crate) async fn run(weak: Weak<Inner>) {
    let mut cursor: Option<String> = None;
    let mut caught_up = false;
    let mut fresh = true;
    loop {
        let Some(inner) = weak.upgrade() else { return };
        let guard = Guard { inner };
        let config = guard.config().clone();
        let wait = if caught_up {
            config.feed_wait_secs.clamp(1, 60)
        } else {
            0
        };
        let mut path = format!("/v1/revocations?limit={}&wait={wait}", config.feed_page);
        if let Some(c) = &cursor {
            path.push_str("&since=");
            path.push_str(&form_encode(c));
        }
        drop(guard);
        let answer = get(&config, &path, true, Duration::from_secs(wait)).await;
        let Some(inner) = weak.upgrade() else { return };
        let guard = Guard { inner };
        match answer {
            Ok(a) if a.status == StatusCode::OK => match a.json::<FeedPage>("revocation feed") {
                Ok(page) => {
                    let replace = fresh.then(Revoked::default);
                    fresh = false;
                    guard.apply_page(&page, replace);
                    guard.note_read();
                    caught_up = page.items.len() < config.feed_page;
                    if caught_up && !guard.is_synced() {
                        tracing::info!(cursor = %page.next, "revocation feed: synchronised");
                        guard.set_synced();
                    }
                    cursor = Some(page.next);
                    continue;
                }
                Err(e) => tracing::warn!(error = %e, "revocation feed"),
            },
            Ok(a) if a.status == StatusCode::GONE => {
                tracing::warn!("revocation feed: cursor expired, resynchronising");
                guard.note_resync();
                cursor = None;
                caught_up = false;
                fresh = true;
                continue;
            }
            Ok(a) => tracing::warn!(status = %a.status, "revocation feed answered"),
            Err(e) => tracing::warn!(error = %e, "revocation feed unreachable"),
        }
        drop(guard);
        tokio::time::sleep(RETRY).await;
    }
}

/// Refetches the JWKS when its `max-age` runs out (looking at least once a second, so a
/// shorter lifetime installed meanwhile is honoured).
pub(crate) async fn jwks_refresher(weak: Weak<Inner>) {
    loop {
        let Some(inner) = weak.upgrade() else { return };
        let until = Guard { inner }.jwks_expires();
        let now = std::time::Instant::now();
        if until > now {
            tokio::time::sleep((until - now).min(Duration::from_secs(1))).await;
            continue;
        }
        let Some(inner) = weak.upgrade() else { return };
        if let Err(e) = (Guard { inner }).refresh_jwks().await {
            tracing::warn!(error = %e, "jwks refresh");
            tokio::time::sleep(Duration::from_secs(10)).await;
        }
    }
}

impl Guard {
    /// Starts a guard: reads the catalog (unless given) and the JWKS, and spawns the
    /// revocation feed and JWKS refresh tasks (on the current tokio runtime).
    pub async fn start(config: GuardConfig) -> Result<Self, GuardError> {
        let guard = Self::connect(config).await?;
        guard.spawn_tasks();
        Ok(guard)
    }

    fn spawn_tasks(&self) {
        let weak = Arc::downgrade(&self.inner);
        tokio::spawn(jwks_refresher(weak.clone()));
        if self.inner.config.feed {
            tokio::spawn(run(weak));
        }
    }
}
