//! The shared Redis handle: state that every node of a cluster must see (rate-limit buckets,
//! sign-in failure counters). A small pool of multiplexed connections that reconnect by
//! themselves; every call runs under one timeout; the handle knows whether Redis answered
//! last time (`/readyz` reports it), counts failures (`tessera_redis_errors_total`) and logs an
//! outage at most once per `LOG_EVERY`.
//! INVARIANTS: a call never waits longer than the timeout; a failure is an `Unreachable`
//! value, never a panic; the URL (which may hold a password) is never logged.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{Client, Cmd, FromRedisValue, Script};

/// At most one outage log line per this period.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// How to reach Redis.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedisSettings {
    /// `redis://[user:password@]host:port[/db]` (may hold a password: never logged).
    pub url: String,
    /// The longest a call may take, connection included.
    pub timeout: Duration,
    /// Multiplexed connections (each pipelines concurrent calls).
    pub connections: usize,
}

impl RedisSettings {
    /// Settings for `url` with the defaults: a 50 ms timeout, 4 connections.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            timeout: Duration::from_millis(50),
            connections: 4,
        }
    }
}

/// Redis did not answer (down, timed out, or refused the call).
#[derive(Debug, thiserror::Error)]
#[error("redis unreachable: {0}")]
pub struct Unreachable(pub String);

/// The handle; cheap to share behind an `Arc`.
pub struct Redis {
    conns: Vec<ConnectionManager>,
    next: AtomicUsize,
    timeout: Duration,
    up: AtomicBool,
    /// Milliseconds since `born` of the last outage log line (0: none yet).
    last_log: AtomicU64,
    born: Instant,
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redis")
            .field("connections", &self.conns.len())
            .field("timeout", &self.timeout)
            .field("up", &self.is_up())
            .finish_non_exhaustive()
    }
}

impl Redis {
    /// A handle for `settings`. Connects lazily: a node starts while Redis is down, and its
    /// calls fail (and are counted) until Redis answers. Only a malformed URL is an error.
    pub fn connect(settings: &RedisSettings) -> Result<Self, Unreachable> {
        let client = Client::open(settings.url.as_str()).map_err(|e| {
            Unreachable(format!(
                "invalid redis URL: {}",
                format_args!("{:?}", e.kind())
            ))
        })?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(settings.timeout))
            .set_response_timeout(Some(settings.timeout))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(5))
            .set_max_delay(Duration::from_millis(50));
        let n = settings.connections.clamp(1, 64);
        let mut conns = Vec::with_capacity(n);
        for _ in 0..n {
            conns.push(
                ConnectionManager::new_lazy_with_config(client.clone(), config.clone())
                    .map_err(|e| Unreachable(format!("{:?}", e.kind())))?,
            );
        }
        crate::metrics::redis_up(true);
        Ok(Self {
            conns,
            next: AtomicUsize::new(0),
            timeout: settings.timeout,
            up: AtomicBool::new(true),
            last_log: AtomicU64::new(0),
            born: Instant::now(),
        })
    }

    /// Whether the last call answered.
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// The state `/readyz` shows: `up` or `unreachable`.
    pub fn state_name(&self) -> &'static str {
        if self.is_up() {
            "up"
        } else {
            "unreachable"
        }
    }

    fn conn(&self) -> ConnectionManager {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.conns.len().max(1);
        // `connect` made at least one connection.
        self.conns[i].clone()
    }

    /// Runs `script` (EVALSHA, loading it on `NOSCRIPT`) with `keys` and `args`.
    pub async fn script<T: FromRedisValue>(
        &self,
        script: &Script,
        keys: &[&[u8]],
        args: &[i64],
    ) -> Result<T, Unreachable> {
        let mut inv = script.prepare_invoke();
        for k in keys {
            inv.key(*k);
        }
        for a in args {
            inv.arg(*a);
        }
        let mut conn = self.conn();
        let res = tokio::time::timeout(self.timeout, inv.invoke_async::<T>(&mut conn)).await;
        self.settle(res)
    }

    /// Runs one command.
    pub async fn query<T: FromRedisValue>(&self, cmd: &Cmd) -> Result<T, Unreachable> {
        let mut conn = self.conn();
        let res = tokio::time::timeout(self.timeout, cmd.query_async::<T>(&mut conn)).await;
        self.settle(res)
    }

    /// `PING`: refreshes the up/down state (for `/readyz`).
    pub async fn ping(&self) -> bool {
        self.query::<String>(&::redis::cmd("PING")).await.is_ok()
    }

    fn settle<T>(
        &self,
        res: Result<::redis::RedisResult<T>, tokio::time::error::Elapsed>,
    ) -> Result<T, Unreachable> {
        let err = match res {
            Ok(Ok(v)) => {
                if !self.up.swap(true, Ordering::Relaxed) {
                    crate::metrics::redis_up(true);
                    tracing::warn!("redis reachable again");
                }
                return Ok(v);
            }
            Ok(Err(e)) => format!("{:?}", e.kind()),
            Err(_) => "timed out".to_owned(),
        };
        crate::metrics::redis_error();
        if self.up.swap(false, Ordering::Relaxed) {
            crate::metrics::redis_up(false);
        }
        self.log_outage(&err);
        Err(Unreachable(err))
    }

    /// One line per `LOG_EVERY` at most, however many calls fail.
    fn log_outage(&self, err: &str) {
        let now = u64::try_from(self.born.elapsed().as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let last = self.last_log.load(Ordering::Relaxed);
        let every = u64::try_from(LOG_EVERY.as_millis()).unwrap_or(u64::MAX);
        if (last == 0 || now.saturating_sub(last) >= every)
            && self
                .last_log
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::error!(error = err, "redis unreachable: cluster-wide limits follow their fail mode (at most one such line every 10 s)");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_malformed_url_is_refused_and_not_echoed() {
        let e = Redis::connect(&RedisSettings::new("redis://:secret@[bad"));
        assert!(e.is_err());
        assert!(!format!("{:?}", e.err()).contains("secret"));
    }

    #[tokio::test]
    async fn an_unreachable_server_fails_within_the_timeout() {
        // Port 1 on loopback: nothing listens there.
        let mut s = RedisSettings::new("redis://127.0.0.1:1/");
        s.timeout = Duration::from_millis(100);
        let Ok(r) = Redis::connect(&s) else {
            unreachable!("a well-formed URL connects lazily")
        };
        let t = Instant::now();
        assert!(!r.ping().await);
        assert!(t.elapsed() < Duration::from_secs(2));
        assert_eq!(r.state_name(), "unreachable");
    }
}
