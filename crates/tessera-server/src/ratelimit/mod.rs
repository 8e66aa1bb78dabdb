//! Rate limits and quotas (GCRA): one decision per request over every bucket that applies to
//! it (per IP, user, OAuth client, API key, agency), in-process (`gcra`) on one node or
//! cluster-wide on Redis (`redis`) when `--redis-url` is set. `settings` holds the classes and
//! their quotas, `plans` the agencies' overrides (`gate::limit` picks a request's buckets), and
//! `headers` renders the IETF `RateLimit-Policy` / `RateLimit` fields.
//! INVARIANTS: a refused request charges no bucket; when Redis is unreachable a class follows
//! its fail mode (never a panic, never a wait beyond the Redis timeout); bucket memory is
//! bounded.

pub mod gcra;
pub mod headers;
pub mod plans;
pub mod redis;
pub mod settings;

use std::sync::Arc;
use std::time::Instant;

pub use settings::{Class, Dim, FailMode, Quota, RateLimitSettings};

use crate::cluster::redis::Redis;
use gcra::Outcome;

/// One bucket a request is charged to.
#[derive(Clone, Debug)]
pub struct Bucket {
    /// What it counts.
    pub dim: Dim,
    /// Its name (class, dimension and id; hashed before it reaches Redis).
    pub name: Vec<u8>,
    /// Its quota.
    pub quota: Quota,
}

/// What the headers report: one bucket's policy and level.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// The policy's name, `<class>.<dimension>`.
    pub policy: String,
    /// Its quota.
    pub quota: Quota,
    /// Requests still admitted now.
    pub remaining: u64,
    /// Seconds until the quota is whole again (or, when limited, until the next admission).
    pub reset_seconds: u64,
}

/// The decision on one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Through; the tightest bucket's report (none when nothing applied).
    Allowed(Option<Report>),
    /// Refused: 429 with `Retry-After` (the report's `reset_seconds`).
    Limited(Report),
    /// Redis unreachable and the class is fail-closed: 503 with `Retry-After`.
    Unavailable,
}

/// The limiter: settings, the in-process buckets, Redis when configured, and the agencies'
/// overrides.
#[derive(Debug)]
pub struct Limiter {
    /// The settings.
    pub settings: RateLimitSettings,
    local: gcra::Local,
    redis: Option<Arc<Redis>>,
    /// The agencies' overrides, cached per agency.
    pub overrides: plans::Overrides,
    epoch: Instant,
}

impl Limiter {
    /// A limiter; cluster-wide when `redis` is given.
    pub fn new(settings: RateLimitSettings, redis: Option<Arc<Redis>>) -> Self {
        let mut configured = Vec::new();
        if settings.enabled {
            for c in Class::ALL {
                for (d, q) in &settings.class(c).quotas {
                    configured.push((c.name(), d.name(), q.limit, q.period_seconds));
                }
            }
        }
        crate::metrics::rate_limit_configured(configured);
        Self {
            settings,
            local: gcra::Local::default(),
            redis,
            overrides: plans::Overrides::default(),
            epoch: Instant::now(),
        }
    }

    /// Whether any limit may apply.
    pub fn enabled(&self) -> bool {
        self.settings.enabled
    }

    /// Decides `class` for `buckets`: all are charged, or none.
    pub async fn decide(&self, class: Class, buckets: &[Bucket]) -> Verdict {
        if !self.settings.enabled || buckets.is_empty() {
            return Verdict::Allowed(None);
        }
        let quotas: Vec<Quota> = buckets.iter().map(|b| b.quota).collect();
        let outcome = match &self.redis {
            Some(r) => {
                let names: Vec<Vec<u8>> = buckets.iter().map(|b| b.name.clone()).collect();
                match redis::check(r, &names, &quotas).await {
                    Ok(o) => o,
                    Err(_) => {
                        return match self.settings.class(class).fail {
                            FailMode::Open => {
                                crate::metrics::rate_limit_decision(class.name(), "fail_open");
                                Verdict::Allowed(None)
                            }
                            FailMode::Closed => {
                                crate::metrics::rate_limit_decision(class.name(), "fail_closed");
                                Verdict::Unavailable
                            }
                        };
                    }
                }
            }
            None => {
                let ids: Vec<u64> = buckets.iter().map(|b| self.local.id(&b.name)).collect();
                let now = i64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(i64::MAX / 2)
                    + 1_000_000_000;
                self.local.check(&ids, &quotas, now)
            }
        };
        verdict(class, buckets, outcome)
    }
}

fn verdict(class: Class, buckets: &[Bucket], outcome: Outcome) -> Verdict {
    let policy = |b: &Bucket| format!("{}.{}", class.name(), b.dim.name());
    match outcome {
        Outcome::Limited { index, retry_us } => {
            crate::metrics::rate_limit_decision(class.name(), "limited");
            let Some(b) = buckets.get(index) else {
                return Verdict::Unavailable;
            };
            Verdict::Limited(Report {
                policy: policy(b),
                quota: b.quota,
                remaining: 0,
                reset_seconds: secs_up(retry_us),
            })
        }
        Outcome::Allowed(levels) => {
            crate::metrics::rate_limit_decision(class.name(), "allowed");
            let tightest = buckets
                .iter()
                .zip(levels)
                .min_by_key(|(_, l)| l.remaining)
                .map(|(b, l)| Report {
                    policy: policy(b),
                    quota: b.quota,
                    remaining: l.remaining,
                    reset_seconds: secs_up(l.reset_us),
                });
            Verdict::Allowed(tightest)
        }
    }
}

/// Whole seconds, rounded up, at least 1.
fn secs_up(us: i64) -> u64 {
    u64::try_from(us.max(1))
        .unwrap_or(1)
        .div_ceil(1_000_000)
        .max(1)
}
