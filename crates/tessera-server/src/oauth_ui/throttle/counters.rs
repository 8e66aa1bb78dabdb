//! Failure counters kept in this process: bounded maps from a hashed key to its failures, each
//! forgotten [`WINDOW_MS`] after its last failure. They answer when no cluster-wide ledger is
//! configured, and stand in for it while it is unreachable.

use std::collections::HashMap;

/// Failures are forgotten after this long without a new one.
pub const WINDOW_MS: i64 = 15 * 60 * 1000;

/// A key as stored: SHA-256 of its normalised form, so every entry has the same small size
/// whatever a client sends, and no email address sits in memory.
pub type Key = [u8; 32];

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    last_failure_ms: i64,
}

impl Entry {
    fn is_live(&self, now_ms: i64) -> bool {
        now_ms.saturating_sub(self.last_failure_ms) < WINDOW_MS
    }
}

/// Failure counters of one kind, at most `max` entries.
#[derive(Debug, Default)]
pub(super) struct Counters(HashMap<Key, Entry>);

impl Counters {
    pub(super) fn len(&self) -> usize {
        self.0.len()
    }

    #[cfg(test)]
    pub(super) fn contains(&self, key: &Key) -> bool {
        self.0.contains_key(key)
    }

    pub(super) fn failures(&self, key: &Key, now_ms: i64) -> u32 {
        self.0
            .get(key)
            .filter(|e| e.is_live(now_ms))
            .map_or(0, |e| e.failures)
    }

    pub(super) fn remove(&mut self, key: &Key) {
        self.0.remove(key);
    }

    pub(super) fn record_failure(&mut self, key: Key, now_ms: i64, max: usize) {
        if !self.0.contains_key(&key) && self.0.len() >= max {
            self.make_room(now_ms, max);
        }
        let entry = self.0.entry(key).or_insert(Entry {
            failures: 0,
            last_failure_ms: now_ms,
        });
        if !entry.is_live(now_ms) {
            entry.failures = 0;
        }
        entry.failures = entry.failures.saturating_add(1);
        entry.last_failure_ms = entry.last_failure_ms.max(now_ms);
    }

    /// Drops decayed entries, then, if still full, the least recently failed eighth (at least
    /// one), so a flood of new keys costs amortised O(1) per insertion rather than a scan each.
    fn make_room(&mut self, now_ms: i64, max: usize) {
        self.0.retain(|_, e| e.is_live(now_ms));
        if self.0.len() < max {
            return;
        }
        let mut times: Vec<i64> = self.0.values().map(|e| e.last_failure_ms).collect();
        let evict = (times.len() / 8).max(1);
        let (_, &mut threshold, _) = times.select_nth_unstable(evict - 1);
        self.0.retain(|_, e| e.last_failure_ms > threshold);
    }
}
