//! What a connection is doing, and since when: the phases the watchdog in `conn` times, and the
//! flag a request body sets when it did not arrive in time (`body`). Shared by both, so it
//! sits below them.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::time::{Duration, Instant};

use super::settings::NetSettings;

pub(super) const HEAD: u8 = 0;
pub(super) const HANDLING: u8 = 1;
pub(super) const RESPONDING: u8 = 2;
pub(super) const IDLE: u8 = 3;

/// What a connection is doing, and since when (milliseconds since it opened).
#[derive(Debug)]
pub(crate) struct Activity {
    opened: Instant,
    phase: AtomicU8,
    since: AtomicU64,
    last_io: AtomicU64,
    body_timed_out: AtomicBool,
}

impl Activity {
    pub(super) fn new() -> Self {
        Self {
            opened: Instant::now(),
            phase: AtomicU8::new(HEAD),
            since: AtomicU64::new(0),
            last_io: AtomicU64::new(0),
            body_timed_out: AtomicBool::new(false),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    pub(super) fn enter(&self, phase: u8) {
        self.since.store(self.now(), Ordering::Relaxed);
        self.phase.store(phase, Ordering::Relaxed);
    }

    pub(super) fn io(&self, read: bool) {
        let now = self.now();
        self.last_io.store(now, Ordering::Relaxed);
        if read && self.phase.load(Ordering::Relaxed) == IDLE {
            // The next request's first byte: its head must now arrive in time.
            self.since.store(now, Ordering::Relaxed);
            self.phase.store(HEAD, Ordering::Relaxed);
        }
    }

    /// Whether a request body did not arrive in time.
    pub(super) fn body_has_timed_out(&self) -> bool {
        self.body_timed_out.load(Ordering::Relaxed)
    }

    /// Notes that a request body did not arrive in time.
    pub(crate) fn body_timed_out(&self) {
        self.body_timed_out.store(true, Ordering::Relaxed);
    }

    /// `Err(phase name)` if the connection is past its deadline, else when to look again.
    pub(super) fn deadline(&self, s: &NetSettings) -> Result<Duration, &'static str> {
        let now = self.now();
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let (from, limit, name) = match self.phase.load(Ordering::Relaxed) {
            HEAD => (
                self.since.load(Ordering::Relaxed),
                ms(s.header_timeout),
                "header",
            ),
            IDLE => (
                self.since.load(Ordering::Relaxed),
                ms(s.idle_timeout),
                "idle",
            ),
            RESPONDING => (
                self.last_io
                    .load(Ordering::Relaxed)
                    .max(self.since.load(Ordering::Relaxed)),
                ms(s.idle_timeout),
                "write",
            ),
            _ => return Ok(s.idle_timeout),
        };
        let due = from.saturating_add(limit);
        if now >= due {
            Err(name)
        } else {
            Ok(Duration::from_millis(due - now))
        }
    }
}
