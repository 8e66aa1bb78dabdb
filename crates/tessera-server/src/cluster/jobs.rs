//! The node's background work. Per cluster (on the node holding the job's lease, see
//! `leases`): signing-key and audit-key rotation, audit checkpoints, audit retention. Per
//! node: tailing the change log (`follow`), reloading the key rings and peppers, flushing its
//! own API-key last-used times, and webhook delivery.
//!
//! Per node on purpose: last-used times are this node's observations in memory (another node
//! cannot write them), and the flush is monotonic (`last_used_at` only moves forward, a
//! `WHERE last_used_at < $new` in the store), so nodes flushing the same key in any order
//! agree. Webhook delivery is already claim-safe: enqueueing is compare-and-set on each
//! webhook's cursor with deterministic message ids, and each attempt is claimed under a
//! lease on the delivery row (`webhooks::dispatch`), so every node may run it.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::cluster::follow::{follow, FollowCadence};
use crate::cluster::leases::{self, Leases};
use crate::services::Services;

/// The running background tasks of a node.
#[derive(Debug)]
pub struct Background {
    tasks: Vec<JoinHandle<()>>,
    leases: Arc<Leases>,
}

impl Background {
    /// Starts every task: takes what leases it can first, so a job's first tick already knows.
    pub async fn start(services: &Arc<Services>) -> Self {
        let s = services;
        let settings = s.jobs;
        let leases = Arc::new(Leases::new(
            s.store.clone(),
            s.clock.clone(),
            settings.lease,
        ));
        leases.renew_all().await;
        tracing::info!(node = %leases.node(), "cluster jobs: node ready");
        let mut tasks = Vec::new();
        tasks.push(tokio::spawn(follow(
            s.engine.clone(),
            s.store.change_signal(),
            FollowCadence::default(),
        )));
        tasks.push(keep_leases(leases.clone()));
        tasks.push(reload_keys_on_change(s.clone()));
        tasks.push(every(Duration::from_secs(60), {
            let s = s.clone();
            move || per_node_reload(s.clone())
        }));
        let tick = |own: Duration| settings.tick.unwrap_or(own);
        tasks.push(job(
            &leases,
            leases::SIGNING_KEYS,
            tick(Duration::from_secs(60)),
            {
                let s = s.clone();
                move || {
                    let s = s.clone();
                    async move {
                        if let Err(e) = s.keys.maintain(s.clock.now() / 1000).await {
                            tracing::error!(error = %e, "signing key maintenance failed");
                        }
                    }
                }
            },
        ));
        tasks.push(job(
            &leases,
            leases::AUDIT_KEYS,
            tick(Duration::from_secs(60)),
            {
                let s = s.clone();
                move || {
                    let s = s.clone();
                    async move {
                        if let Err(e) = s.audit_keys.maintain(s.clock.now() / 1000).await {
                            tracing::error!(error = %e, "audit key maintenance failed");
                        }
                    }
                }
            },
        ));
        // Checkpoints: a tick of a quarter of the interval (1 to 15 s) keeps each agency's
        // newest event within about the configured seconds of its checkpoint.
        let checkpoint_tick = Duration::from_secs(
            u64::try_from(s.checkpointer.settings().checkpoint_seconds / 4)
                .unwrap_or(1)
                .clamp(1, 15),
        );
        tasks.push(job(
            &leases,
            leases::AUDIT_CHECKPOINTS,
            tick(checkpoint_tick),
            {
                let s = s.clone();
                move || {
                    let s = s.clone();
                    async move {
                        if let Err(e) = s.checkpointer.run_once().await {
                            tracing::warn!(error = %e, "audit checkpoints failed");
                        }
                    }
                }
            },
        ));
        // Pruning visits every agency with events (a transaction each: 100k at full size), so
        // its first run waits one period instead of landing on a node's first minute, when
        // its caches are cold and every request already goes to the store.
        let prune_every = tick(Duration::from_secs(3600));
        tasks.push(job_after(
            &leases,
            leases::AUDIT_PRUNE,
            prune_every,
            prune_every,
            {
                let s = s.clone();
                move || {
                    let s = s.clone();
                    async move {
                        if let Err(e) = s.checkpointer.prune_once().await {
                            tracing::warn!(error = %e, "audit pruning failed");
                        }
                    }
                }
            },
        ));
        tasks.push(every(Duration::from_secs(15), {
            let s = s.clone();
            move || {
                let s = s.clone();
                async move { s.key_usage.flush(s.store.as_ref()).await }
            }
        }));
        if s.webhooks.settings.dispatch {
            tasks.push(tokio::spawn(crate::webhooks::dispatch::run(s.clone())));
        }
        Self { tasks, leases }
    }

    /// Stops every task and gives up this node's leases (another node takes over at once).
    pub async fn stop(self) {
        for t in &self.tasks {
            t.abort();
        }
        self.leases.release_all().await;
    }
}

/// Runs `f` every `period`, forever, the first time at once.
fn every<F, Fut>(period: Duration, f: F) -> JoinHandle<()>
where
    F: Fn() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    every_after(Duration::ZERO, period, f)
}

/// Runs `f` every `period`, forever, the first time after `first`.
fn every_after<F, Fut>(first: Duration, period: Duration, f: F) -> JoinHandle<()>
where
    F: Fn() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + first, period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            f().await;
        }
    })
}

/// Runs `f` every `period` while this node holds `name`'s lease, and counts the runs.
fn job<F, Fut>(leases: &Arc<Leases>, name: &'static str, period: Duration, f: F) -> JoinHandle<()>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send,
{
    job_after(leases, name, Duration::ZERO, period, f)
}

/// [`job`], the first tick after `first` instead of at once.
fn job_after<F, Fut>(
    leases: &Arc<Leases>,
    name: &'static str,
    first: Duration,
    period: Duration,
    f: F,
) -> JoinHandle<()>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send,
{
    let leases = leases.clone();
    every_after(first, period, move || {
        let run = leases.holds(name).then(&f);
        async move {
            if let Some(run) = run {
                run.await;
                crate::metrics::cluster_job_run(name);
            }
        }
    })
}

/// Renews the leases every third of their length.
fn keep_leases(leases: Arc<Leases>) -> JoinHandle<()> {
    let period = leases.renew_every();
    every(period, move || {
        let leases = leases.clone();
        async move { leases.renew_all().await }
    })
}

/// Reloads the signing-key ring when the feed shows a key change (another node's rotation,
/// or `tessera keys rotate`), so JWKS and verification follow within the feed's latency.
fn reload_keys_on_change(s: Arc<Services>) -> JoinHandle<()> {
    let mut bell = s.engine.listen_keys();
    tokio::spawn(async move {
        while bell.changed().await.is_ok() {
            if let Err(e) = s.keys.reload().await {
                tracing::error!(error = %e, "signing key reload failed");
            }
        }
    })
}

/// What every node rereads each minute whoever rotates: the signing and audit key rings
/// (a safety net under the feed) and the peppers.
async fn per_node_reload(s: Arc<Services>) {
    if let Err(e) = s.keys.reload().await {
        tracing::error!(error = %e, "signing key reload failed");
    }
    if let Err(e) = s.audit_keys.reload().await {
        tracing::error!(error = %e, "audit key reload failed");
    }
    // A pepper version added by `tessera keys rotate-pepper` becomes current here within a
    // minute (or at once on a lookup miss).
    if let Err(e) = s.pepper.reload(s.store.as_ref(), &s.ring).await {
        tracing::error!(error = %e, code = e.code(), "pepper reload failed");
    }
}
