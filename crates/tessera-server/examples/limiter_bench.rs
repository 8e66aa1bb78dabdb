//! The cost of one rate-limit decision (docs/BENCHMARKS.md "Rate limits"): in-process (GCRA
//! over three buckets: IP, key, agency) and through Redis on loopback, one at a time and
//! pipelined (concurrent decisions on the multiplexed connections).
//!   cargo run --release -p tessera-server --example limiter_bench [-- redis://127.0.0.1:6379/9]

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use tessera_server::cluster::redis::{Redis, RedisSettings};
use tessera_server::ratelimit::gcra::Local;
use tessera_server::ratelimit::Quota;

fn pct(v: &mut [Duration], p: usize) -> Duration {
    v.sort();
    v[(v.len() * p / 100).min(v.len() - 1)]
}

fn quotas() -> [Quota; 3] {
    [
        Quota {
            limit: 1_000_000,
            period_seconds: 1,
        },
        Quota {
            limit: 1_000_000,
            period_seconds: 1,
        },
        Quota {
            limit: 1_000_000,
            period_seconds: 1,
        },
    ]
}

fn names(i: usize) -> [Vec<u8>; 3] {
    [
        format!("check:ip:10.0.{}.{}", (i / 250) % 250, i % 250).into_bytes(),
        format!("check:key:key_{}", i % 1000).into_bytes(),
        format!("check:agency:agy_{}", i % 100).into_bytes(),
    ]
}

fn main() {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "redis://127.0.0.1:6379/9".into());
    // In-process: 1,000,000 decisions over 10,000 clients, each timed.
    let local = Local::default();
    let q = quotas();
    let epoch = Instant::now();
    let keys: Vec<[u64; 3]> = (0..10_000)
        .map(|i| {
            let n = names(i);
            [local.id(&n[0]), local.id(&n[1]), local.id(&n[2])]
        })
        .collect();
    let mut lat = Vec::with_capacity(1_000_000);
    for i in 0..1_000_000 {
        let k = &keys[i % keys.len()];
        let t = Instant::now();
        let now = i64::try_from(epoch.elapsed().as_micros()).unwrap() + 1_000_000_000;
        std::hint::black_box(local.check(k, &q, now));
        lat.push(t.elapsed());
    }
    println!(
        "in-process: {} decisions (3 buckets each), p50 {:?}, p99 {:?}, p99.9 {:?}",
        lat.len(),
        pct(&mut lat, 50),
        pct(&mut lat, 99),
        {
            lat.sort();
            lat[lat.len() * 999 / 1000]
        }
    );

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut s = RedisSettings::new(url);
        s.timeout = Duration::from_millis(500);
        let redis = Arc::new(Redis::connect(&s).unwrap());
        assert!(redis.ping().await, "no Redis at the URL given");
        // One at a time.
        let mut lat = Vec::with_capacity(20_000);
        for i in 0..20_000 {
            let n = names(i);
            let t = Instant::now();
            tessera_server::ratelimit::redis::check(&redis, &n, &q)
                .await
                .unwrap();
            lat.push(t.elapsed());
        }
        println!(
            "redis, one at a time: {} decisions, p50 {:?}, p99 {:?}",
            lat.len(),
            pct(&mut lat, 50),
            pct(&mut lat, 99)
        );
        // Pipelined: 64 concurrent callers share the multiplexed connections.
        let start = Instant::now();
        let tasks: Vec<_> = (0..64)
            .map(|c| {
                let redis = redis.clone();
                tokio::spawn(async move {
                    let mut lat = Vec::with_capacity(1000);
                    for i in 0..1000 {
                        let n = names(c * 1000 + i);
                        let t = Instant::now();
                        tessera_server::ratelimit::redis::check(&redis, &n, &quotas())
                            .await
                            .unwrap();
                        lat.push(t.elapsed());
                    }
                    lat
                })
            })
            .collect();
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "redis, 64 concurrent (pipelined): {} decisions, {:.0}/s, p50 {:?}, p99 {:?}",
            all.len(),
            all.len() as f64 / secs,
            pct(&mut all, 50),
            pct(&mut all, 99)
        );
    });
}
