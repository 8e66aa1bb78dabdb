//! Measuring: per-call latency percentiles, the timer's own cost, and the process's RSS.
//!
//! Each call is timed alone with `Instant::now()` before and `elapsed()` after, so every
//! figure includes the timer's overhead (reported beside it by [`timer_overhead`]).

use std::hint::black_box;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// Latency percentiles of one run, in nanoseconds.
#[derive(Clone, Copy, Debug, Default)]
pub struct Percentiles {
    /// Calls timed.
    pub count: usize,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Slowest call.
    pub max: u64,
    /// Mean.
    pub mean: u64,
}

impl Percentiles {
    /// From unsorted samples (sorted here).
    pub fn of(mut ns: Vec<u64>) -> Self {
        if ns.is_empty() {
            return Self::default();
        }
        ns.sort_unstable();
        let at = |q: f64| {
            let i = ((ns.len() as f64) * q) as usize;
            ns[i.min(ns.len() - 1)]
        };
        let sum: u128 = ns.iter().map(|&x| u128::from(x)).sum();
        Self {
            count: ns.len(),
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            p999: at(0.999),
            max: ns[ns.len() - 1],
            mean: u64::try_from(sum / ns.len() as u128).unwrap_or(u64::MAX),
        }
    }

    /// As JSON.
    pub fn json(&self) -> Value {
        json!({
            "count": self.count, "p50_ns": self.p50, "p90_ns": self.p90, "p99_ns": self.p99,
            "p999_ns": self.p999, "max_ns": self.max, "mean_ns": self.mean,
        })
    }
}

/// Times `f` once per item, after `warmup` untimed calls over the first items. Returns the
/// latencies and how many answers differ from `expect`. With a `budget`, stops at the first
/// item past it (the slow peers).
///
/// Each item is cloned just before its timed call (untimed), so the ids a call reads are fresh
/// in cache, as a server's are right after parsing the request; what the engine itself reads
/// (its indexes, policies, entities) is as warm or cold as the traffic leaves it.
pub fn time_each<T: Clone>(
    items: &[T],
    passes: usize,
    warmup: usize,
    budget: Option<Duration>,
    mut f: impl FnMut(&T) -> bool,
    expect: impl Fn(&T) -> bool,
) -> (Percentiles, usize) {
    let began = Instant::now();
    for item in items.iter().cycle().take(warmup) {
        black_box(f(item));
    }
    let mut ns = Vec::with_capacity(items.len() * passes);
    let mut disagreements = 0;
    'passes: for _ in 0..passes {
        for item in items {
            if budget.is_some_and(|b| began.elapsed() > b) {
                break 'passes;
            }
            let fresh = black_box(item.clone());
            let start = Instant::now();
            let allowed = f(&fresh);
            let elapsed = start.elapsed();
            ns.push(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX));
            if allowed != expect(item) {
                disagreements += 1;
            }
        }
    }
    (Percentiles::of(ns), disagreements)
}

/// The cost of the timing itself: `Instant::now()` then `elapsed()` around nothing.
pub fn timer_overhead(n: usize) -> Percentiles {
    let mut ns = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        let elapsed = black_box(start).elapsed();
        ns.push(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX));
    }
    Percentiles::of(ns)
}

/// Calls per second of `f` in a tight loop over `items` (no per-call timing), `n` calls.
pub fn throughput<T>(items: &[T], n: usize, mut f: impl FnMut(&T) -> bool) -> f64 {
    let start = Instant::now();
    let mut allowed = 0usize;
    for item in items.iter().cycle().take(n) {
        allowed += usize::from(f(black_box(item)));
    }
    black_box(allowed);
    n as f64 / start.elapsed().as_secs_f64()
}

/// The resident set size of this process in bytes (`VmRSS` of /proc/self/status), if known.
pub fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Bytes as MiB, for tables.
pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// Nanoseconds as a short human figure (`850 ns`, `4.2 µs`, `3.1 ms`).
pub fn human_ns(ns: u64) -> String {
    match ns {
        0..1_000 => format!("{ns} ns"),
        1_000..1_000_000 => format!("{:.1} µs", ns as f64 / 1e3),
        _ => format!("{:.2} ms", ns as f64 / 1e6),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_the_right_ranks() {
        let p = Percentiles::of((1..=1000).rev().collect());
        assert_eq!((p.p50, p.p90, p.p99, p.max), (501, 901, 991, 1000));
        assert_eq!(Percentiles::of(vec![]).count, 0);
        assert_eq!(human_ns(850), "850 ns");
        assert_eq!(human_ns(4_200), "4.2 µs");
        assert!(rss_bytes().is_some_and(|b| b > 0));
    }
}
