//! The cluster-wide failure ledger of sign-in protection, in Redis: one counter per key, whose
//! expiry slides to [`WINDOW_MS`] after each failure (the same window as this node's counters).
//! Key names are `tessera:signin:` + HMAC of the throttle's key under the pepper, so Redis holds
//! neither an email nor an address, nor anything a dictionary of emails can reverse without
//! the master key. Every call goes through the shared handle (its timeout, its outage metric and
//! log line); an error makes the throttle answer from this node's counters.

use std::sync::Arc;

use redis::Script;

use super::{FailureLedger, Key, LedgerFuture, WINDOW_MS};
use crate::cluster::redis::Redis;

/// `KEYS`: the counters; `ARGV[1]`: the window in ms. One round trip, atomic.
const RECORD: &str = r"
for i, k in ipairs(KEYS) do
  redis.call('INCR', k)
  redis.call('PEXPIRE', k, ARGV[1])
end
return #KEYS
";

/// The ledger on the shared Redis handle.
#[derive(Debug)]
pub struct RedisLedger {
    redis: Arc<Redis>,
    pepper: Arc<tessera_token::Pepper>,
    record: Script,
}

impl RedisLedger {
    /// A ledger on `redis`, naming keys with `pepper`.
    pub fn new(redis: Arc<Redis>, pepper: Arc<tessera_token::Pepper>) -> Self {
        Self {
            redis,
            pepper,
            record: Script::new(RECORD),
        }
    }

    fn names(&self, keys: &[Key]) -> Vec<Vec<u8>> {
        keys.iter()
            .map(|k| {
                let mut name = b"tessera:signin:".to_vec();
                name.extend_from_slice(self.pepper.hash(k).to_hex().as_bytes());
                name
            })
            .collect()
    }
}

impl FailureLedger for RedisLedger {
    fn counts<'a>(&'a self, keys: &'a [Key]) -> LedgerFuture<'a, Result<Vec<u32>, ()>> {
        Box::pin(async move {
            let names = self.names(keys);
            let mut cmd = redis::cmd("MGET");
            for n in &names {
                cmd.arg(n.as_slice());
            }
            let found: Vec<Option<u32>> = self.redis.query(&cmd).await.map_err(|_| ())?;
            Ok(found.into_iter().map(Option::unwrap_or_default).collect())
        })
    }

    fn record_failure<'a>(&'a self, keys: &'a [Key]) -> LedgerFuture<'a, Result<(), ()>> {
        Box::pin(async move {
            let names = self.names(keys);
            let refs: Vec<&[u8]> = names.iter().map(Vec::as_slice).collect();
            self.redis
                .script::<i64>(&self.record, &refs, &[WINDOW_MS])
                .await
                .map(|_| ())
                .map_err(|_| ())
        })
    }

    fn clear<'a>(&'a self, keys: &'a [Key]) -> LedgerFuture<'a, Result<(), ()>> {
        Box::pin(async move {
            let names = self.names(keys);
            let mut cmd = redis::cmd("DEL");
            for n in &names {
                cmd.arg(n.as_slice());
            }
            self.redis
                .query::<i64>(&cmd)
                .await
                .map(|_| ())
                .map_err(|_| ())
        })
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};
    use std::process::{Child, Command, Stdio};
    use std::time::Duration;

    use super::*;
    use crate::cluster::redis::RedisSettings;
    use crate::oauth_ui::throttle::SignInThrottle;

    /// A throw-away `redis-server` on a free port, stopped on drop.
    struct Server {
        port: u16,
        child: Option<Child>,
    }

    impl Server {
        /// `None` when `redis-server` is not installed and the suite may skip (outside CI).
        fn start(port: u16) -> Option<Self> {
            let child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn();
            let child = match child {
                Ok(c) => c,
                Err(e) => {
                    assert!(
                        std::env::var_os("TESSERA_TEST_REDIS_REQUIRED").is_none(),
                        "redis-server is required here: {e}"
                    );
                    eprintln!("notice: redis-server not found; Redis ledger test skipped");
                    return None;
                }
            };
            for _ in 0..200 {
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Some(Self {
                port,
                child: Some(child),
            })
        }

        fn stop(&mut self) {
            if let Some(mut c) = self.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }

    impl Drop for Server {
        fn drop(&mut self) {
            self.stop();
        }
    }

    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or(0)
    }

    const T0: i64 = 1_700_000_000_000;

    #[tokio::test]
    async fn two_nodes_count_together_in_redis_and_fall_back_while_it_is_down() {
        let port = free_port();
        let Some(mut server) = Server::start(port) else {
            return;
        };
        let mut settings = RedisSettings::new(format!("redis://127.0.0.1:{}/", server.port));
        settings.timeout = Duration::from_millis(200);
        let redis = Arc::new(Redis::connect(&settings).unwrap());
        let pepper = Arc::new(tessera_token::Pepper::new(1, [7; 32]));
        let node = || {
            SignInThrottle::with_ledger(
                100,
                Arc::new(RedisLedger::new(redis.clone(), pepper.clone())),
            )
        };
        let (node1, node2) = (node(), node());
        // A fresh email for this run (the server is private, but be safe).
        let email = format!("ann-{port}@example.com");
        let ip = Some(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7)));
        for i in 0..6 {
            let n = if i % 2 == 0 { &node1 } else { &node2 };
            n.record_failure(&email, ip, T0 + i).await;
        }
        let seen = node2.assess(&email, ip, T0 + 6).await;
        assert!(seen.shared, "{seen:?}");
        assert_eq!((seen.account_failures, seen.ip_failures), (6, 6));
        assert_eq!(seen.delay.as_millis(), 1000);
        // Redis holds neither the email nor the address.
        let mut keys = ::redis::cmd("KEYS");
        keys.arg("*");
        let names: Vec<String> = redis.query(&keys).await.unwrap();
        assert_eq!(names.len(), 3, "{names:?}");
        // (Not `contains("203")`: a hex digest holds those three digits in about 1 run in 25.)
        assert!(
            names.iter().all(|n| n.starts_with("tessera:signin:")
                && !n.contains(&email)
                && !n.contains("ann-")
                && !n.contains("203.0.113.7")),
            "{names:?}"
        );
        // Each counter expires 15 minutes after its last failure.
        let mut ttl = ::redis::cmd("PTTL");
        ttl.arg(&names[0]);
        let left: i64 = redis.query(&ttl).await.unwrap();
        assert!(
            left > super::WINDOW_MS - 60_000 && left <= super::WINDOW_MS,
            "{left}"
        );

        // Redis down: each node answers from what it saw itself, within the timeout.
        server.stop();
        let alone = node2.assess(&email, ip, T0 + 7).await;
        assert!(!alone.shared);
        assert_eq!(alone.account_failures, 3);
        node2.record_failure(&email, ip, T0 + 8).await;
        // Back: the shared counts again, with no restart of the nodes.
        let mut server = Server::start(port).unwrap();
        let mut back = node1.assess(&email, ip, T0 + 9).await;
        for _ in 0..50 {
            if back.shared {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            back = node1.assess(&email, ip, T0 + 9).await;
        }
        assert!(back.shared, "{back:?}");
        // The new server started empty (nothing is kept on disk).
        assert_eq!(back.account_failures, 0);
        node1.record_failure(&email, ip, T0 + 10).await;
        node1.record_success(&email, ip).await;
        let after = node2.assess(&email, ip, T0 + 11).await;
        assert_eq!((after.account_failures, after.ip_failures), (0, 1));
        server.stop();
    }
}
