//! GCRA (the generic cell rate algorithm), in-process: the pure decision over a request's
//! buckets (the same arithmetic as the Redis script in `ratelimit::redis`), and a sharded,
//! bounded map of theoretical arrival times.
//! INVARIANTS: a decision is all-or-nothing (a request refused by one bucket charges none);
//! memory stays bounded (`MAX_PER_SHARD` entries per shard: expired entries are swept first,
//! and a shard still full is cleared, which only ever makes limits more lenient).

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Mutex;

use super::settings::Quota;

const SHARDS: usize = 32;
const MAX_PER_SHARD: usize = 1 << 15;

/// One bucket's state after a decision, for the headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Level {
    /// Requests still admitted now (`r`).
    pub remaining: u64,
    /// Microseconds until the bucket is full again (`t`).
    pub reset_us: i64,
}

/// The outcome over every bucket of a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Admitted: every bucket charged; each bucket's level.
    Allowed(Vec<Level>),
    /// Refused by bucket `index`: nothing charged; admitted again in `retry_us`.
    Limited { index: usize, retry_us: i64 },
}

/// The emission interval of a quota, in microseconds (at least 1).
pub fn interval_us(q: Quota) -> i64 {
    (i64::from(q.period_seconds) * 1_000_000 / i64::from(q.limit.max(1))).max(1)
}

/// The period of a quota, in microseconds.
pub fn period_us(q: Quota) -> i64 {
    i64::from(q.period_seconds) * 1_000_000
}

/// The decision for `quotas` whose stored arrival times are `tats` (0 = none), at `now` µs;
/// on `Allowed`, `tats` holds the new values to store.
pub fn decide(quotas: &[Quota], tats: &mut [i64], now: i64) -> Outcome {
    let mut worst: Option<(usize, i64)> = None;
    let mut news = Vec::with_capacity(quotas.len());
    for (i, (q, tat)) in quotas.iter().zip(tats.iter()).enumerate() {
        let new = (*tat).max(now) + interval_us(*q);
        let over = new - now - period_us(*q);
        if over > 0 && worst.is_none_or(|(_, w)| over > w) {
            worst = Some((i, over));
        }
        news.push(new);
    }
    if let Some((index, retry_us)) = worst {
        return Outcome::Limited { index, retry_us };
    }
    let mut levels = Vec::with_capacity(quotas.len());
    for ((q, tat), new) in quotas.iter().zip(tats.iter_mut()).zip(news) {
        *tat = new;
        levels.push(Level {
            remaining: u64::try_from((period_us(*q) - (new - now)) / interval_us(*q)).unwrap_or(0),
            reset_us: new - now,
        });
    }
    Outcome::Allowed(levels)
}

/// The in-process buckets: bucket key → theoretical arrival time (µs).
#[derive(Debug)]
pub struct Local {
    shards: Vec<Mutex<HashMap<u64, i64>>>,
    hasher: std::collections::hash_map::RandomState,
}

impl Default for Local {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            hasher: std::collections::hash_map::RandomState::new(),
        }
    }
}

impl Local {
    /// A bucket key's 64-bit id (keyed by a per-process secret: not predictable).
    pub fn id(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    /// Decides over `keys` (bucket ids) with their `quotas` at `now` µs, charging all or none.
    pub fn check(&self, keys: &[u64], quotas: &[Quota], now: i64) -> Outcome {
        // Buckets of one request may sit in different shards: lock them in shard order.
        let mut order: Vec<usize> = keys.iter().map(|k| shard_of(*k)).collect();
        order.sort_unstable();
        order.dedup();
        let mut guards = Vec::with_capacity(order.len());
        for s in &order {
            match self.shards.get(*s).map(Mutex::lock) {
                Some(Ok(g)) => guards.push((*s, g)),
                _ => return Outcome::Allowed(Vec::new()),
            }
        }
        let mut tats: Vec<i64> = keys
            .iter()
            .map(|k| {
                guards
                    .iter()
                    .find(|(s, _)| *s == shard_of(*k))
                    .and_then(|(_, g)| g.get(k).copied())
                    .unwrap_or(0)
            })
            .collect();
        let out = decide(quotas, &mut tats, now);
        if matches!(out, Outcome::Allowed(_)) {
            for (k, tat) in keys.iter().zip(tats) {
                if let Some((_, g)) = guards.iter_mut().find(|(s, _)| *s == shard_of(*k)) {
                    if g.len() >= MAX_PER_SHARD && !g.contains_key(k) {
                        g.retain(|_, t| *t > now);
                        if g.len() >= MAX_PER_SHARD {
                            g.clear();
                        }
                    }
                    g.insert(*k, tat);
                }
            }
        }
        out
    }

    /// Entries held (for tests and metrics).
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().map(|g| g.len()).unwrap_or(0))
            .sum()
    }

    /// Whether no bucket is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn shard_of(k: u64) -> usize {
    usize::try_from(k % SHARDS as u64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(limit: u32, period_seconds: u32) -> Quota {
        Quota {
            limit,
            period_seconds,
        }
    }

    #[test]
    fn a_burst_of_the_limit_then_one_per_interval() {
        let quotas = [q(10, 60)];
        let mut tat = [0i64];
        let now = 1_000_000_000;
        for i in 0..10 {
            match decide(&quotas, &mut tat, now) {
                Outcome::Allowed(l) => assert_eq!(l[0].remaining, 9 - i),
                o => unreachable!("request {i}: {o:?}"),
            }
        }
        let Outcome::Limited { index, retry_us } = decide(&quotas, &mut tat, now) else {
            unreachable!("the 11th is refused")
        };
        assert_eq!((index, retry_us), (0, 6_000_000));
        // One interval later, exactly one more.
        assert!(matches!(
            decide(&quotas, &mut tat, now + 6_000_000),
            Outcome::Allowed(_)
        ));
        assert!(matches!(
            decide(&quotas, &mut tat, now + 6_000_000),
            Outcome::Limited { .. }
        ));
    }

    #[test]
    fn a_refusal_charges_no_bucket() {
        let quotas = [q(100, 1), q(1, 60)];
        let mut tats = [0i64, 0];
        let now = 5_000_000;
        assert!(matches!(
            decide(&quotas, &mut tats, now),
            Outcome::Allowed(_)
        ));
        let before = tats;
        assert!(matches!(
            decide(&quotas, &mut tats, now),
            Outcome::Limited { index: 1, .. }
        ));
        assert_eq!(tats, before);
    }

    #[test]
    fn local_is_all_or_nothing_and_bounded() {
        let l = Local::default();
        let (a, b) = (l.id(b"a"), l.id(b"b"));
        let now = 1_000_000;
        assert!(matches!(
            l.check(&[a, b], &[q(5, 60), q(1, 60)], now),
            Outcome::Allowed(_)
        ));
        // b refuses: a is not charged, so a still has 4.
        assert!(matches!(
            l.check(&[a, b], &[q(5, 60), q(1, 60)], now),
            Outcome::Limited { index: 1, .. }
        ));
        for _ in 0..4 {
            assert!(matches!(
                l.check(&[a], &[q(5, 60)], now),
                Outcome::Allowed(_)
            ));
        }
        assert!(matches!(
            l.check(&[a], &[q(5, 60)], now),
            Outcome::Limited { .. }
        ));
        // A flood of distinct keys stays under the bound.
        for i in 0..(SHARDS * MAX_PER_SHARD + 5000) as u64 {
            l.check(&[i], &[q(1, 60)], now);
        }
        assert!(l.len() <= SHARDS * MAX_PER_SHARD);
    }
}
