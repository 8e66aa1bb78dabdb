//! Prometheus metrics: requests by route and status, latency histograms per route, store
//! errors, and the listener's connections (open, refused over a cap, closed for slowness). A small registry of our own: the text format is simple and the hot path is one
//! short lock per request.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Default)]
struct RouteStats {
    statuses: BTreeMap<u16, u64>,
    latency: Histogram,
}

/// Route template → method → stats; looked up by `&str`, so a request allocates nothing once
/// its route has been seen.
#[derive(Default)]
struct Registry {
    routes: BTreeMap<String, BTreeMap<&'static str, RouteStats>>,
}

fn method_name(m: &str) -> &'static str {
    match m {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        _ => "OTHER",
    }
}

static REGISTRY: OnceLock<Mutex<Registry>> = OnceLock::new();
static STORE_ERRORS: AtomicU64 = AtomicU64::new(0);
static CONNECTIONS_OPEN: AtomicU64 = AtomicU64::new(0);
static REFUSED_TOTAL: AtomicU64 = AtomicU64::new(0);
static REFUSED_PER_IP: AtomicU64 = AtomicU64::new(0);
static TIMED_OUT_HEADER: AtomicU64 = AtomicU64::new(0);
static TIMED_OUT_IDLE: AtomicU64 = AtomicU64::new(0);
static TIMED_OUT_WRITE: AtomicU64 = AtomicU64::new(0);
static BODY_TIMEOUTS: AtomicU64 = AtomicU64::new(0);
static ACCEPT_ERRORS: AtomicU64 = AtomicU64::new(0);
static REDIS_ERRORS: AtomicU64 = AtomicU64::new(0);
/// 1 up, 0 unreachable, 2 not configured (not rendered).
static REDIS_UP: AtomicU64 = AtomicU64::new(2);

/// Counts a failed or timed-out Redis call.
pub fn redis_error() {
    REDIS_ERRORS.fetch_add(1, Ordering::Relaxed);
}

/// Records whether Redis answers.
pub fn redis_up(up: bool) {
    REDIS_UP.store(u64::from(up), Ordering::Relaxed);
}

/// Cluster jobs: name → (runs on this node, whether this node holds the job's lease).
static JOBS: Mutex<BTreeMap<&'static str, (u64, bool)>> = Mutex::new(BTreeMap::new());
/// The change signal: 1 listening, 0 polling (lost), 2 none on this backend (not rendered).
static SIGNAL_UP: AtomicU64 = AtomicU64::new(2);

/// Counts one run of a cluster job on this node.
pub fn cluster_job_run(job: &'static str) {
    if let Ok(mut j) = JOBS.lock() {
        j.entry(job).or_default().0 += 1;
    }
}

/// Records whether this node holds a cluster job's lease.
pub fn cluster_job_leader(job: &'static str, leader: bool) {
    if let Ok(mut j) = JOBS.lock() {
        j.entry(job).or_default().1 = leader;
    }
}

/// Webhook attempts made by this node, by outcome: delivered, to be retried, dead.
static WEBHOOK_ATTEMPTS: [AtomicU64; 3] = [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)];
const WEBHOOK_OUTCOMES: [&str; 3] = ["delivered", "retrying", "dead"];

/// Counts one webhook attempt made by this node: `delivered`, `retrying` or `dead`.
pub fn webhook_attempt(outcome: &'static str) {
    if let Some(i) = WEBHOOK_OUTCOMES.iter().position(|o| *o == outcome) {
        WEBHOOK_ATTEMPTS[i].fetch_add(1, Ordering::Relaxed);
    }
}

fn render_webhooks(out: &mut String) {
    let _ = writeln!(out, "# HELP tessera_webhook_attempts_total Webhook deliveries attempted by this node, by outcome (every node dispatches; each attempt is claimed once).");
    let _ = writeln!(out, "# TYPE tessera_webhook_attempts_total counter");
    for (o, n) in WEBHOOK_OUTCOMES.iter().zip(&WEBHOOK_ATTEMPTS) {
        let _ = writeln!(
            out,
            "tessera_webhook_attempts_total{{outcome=\"{o}\"}} {}",
            n.load(Ordering::Relaxed)
        );
    }
}

/// Audit checkpoint passes on this node: (checkpoints stored, passes), and the last pass's
/// agencies due and duration in milliseconds (rendered only once this node has made a pass).
static CHECKPOINTS: [AtomicU64; 4] = [
    AtomicU64::new(0),
    AtomicU64::new(0),
    AtomicU64::new(0),
    AtomicU64::new(0),
];

/// Records one checkpointer pass on this node: agencies found due, checkpoints stored, and how
/// long the pass took.
pub fn audit_checkpoint_pass(due: usize, stored: usize, took: std::time::Duration) {
    CHECKPOINTS[0].fetch_add(stored as u64, Ordering::Relaxed);
    CHECKPOINTS[1].fetch_add(1, Ordering::Relaxed);
    CHECKPOINTS[2].store(due as u64, Ordering::Relaxed);
    CHECKPOINTS[3].store(
        u64::try_from(took.as_millis()).unwrap_or(u64::MAX),
        Ordering::Relaxed,
    );
}

fn render_checkpoints(out: &mut String) {
    let [stored, passes, due, took] = CHECKPOINTS.each_ref().map(|a| a.load(Ordering::Relaxed));
    if passes == 0 {
        return;
    }
    let _ = writeln!(out, "# HELP tessera_audit_checkpoints_total Audit checkpoints signed and stored by this node (the node holding the checkpoint lease).");
    let _ = writeln!(out, "# TYPE tessera_audit_checkpoints_total counter");
    let _ = writeln!(out, "tessera_audit_checkpoints_total {stored}");
    let _ = writeln!(out, "# HELP tessera_audit_checkpoint_due Agencies found due at this node's last checkpoint pass (events since their checkpoint, older than the interval or more than the count).");
    let _ = writeln!(out, "# TYPE tessera_audit_checkpoint_due gauge");
    let _ = writeln!(out, "tessera_audit_checkpoint_due {due}");
    let _ = writeln!(out, "# HELP tessera_audit_checkpoint_pass_seconds Duration of this node's last checkpoint pass (a pass longer than the tick means checkpoints fall behind).");
    let _ = writeln!(out, "# TYPE tessera_audit_checkpoint_pass_seconds gauge");
    let _ = writeln!(
        out,
        "tessera_audit_checkpoint_pass_seconds {:.3}",
        took as f64 / 1000.0
    );
}

/// Records whether the change signal is listening (`None`: the backend has none).
pub fn change_signal_up(up: Option<bool>) {
    SIGNAL_UP.store(up.map_or(2, u64::from), Ordering::Relaxed);
}

fn render_cluster(out: &mut String) {
    let jobs = JOBS.lock().map(|j| j.clone()).unwrap_or_default();
    if !jobs.is_empty() {
        let _ = writeln!(out, "# HELP tessera_cluster_job_runs_total Runs of each cluster job on this node (a job runs on the node holding its lease).");
        let _ = writeln!(out, "# TYPE tessera_cluster_job_runs_total counter");
        for (job, (runs, _)) in &jobs {
            let _ = writeln!(
                out,
                "tessera_cluster_job_runs_total{{job=\"{job}\"}} {runs}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP tessera_cluster_job_leader Whether this node holds the cluster job's lease."
        );
        let _ = writeln!(out, "# TYPE tessera_cluster_job_leader gauge");
        for (job, (_, leader)) in &jobs {
            let _ = writeln!(
                out,
                "tessera_cluster_job_leader{{job=\"{job}\"}} {}",
                u8::from(*leader)
            );
        }
    }
    let up = SIGNAL_UP.load(Ordering::Relaxed);
    if up != 2 {
        let _ = writeln!(out, "# HELP tessera_change_signal_up Whether the change log's notifications are received (0: polling every 250 ms).");
        let _ = writeln!(out, "# TYPE tessera_change_signal_up gauge");
        let _ = writeln!(out, "tessera_change_signal_up {up}");
    }
}

/// Rate-limit decisions: (class, outcome) → count.
static DECISIONS: Mutex<BTreeMap<(&'static str, &'static str), u64>> = Mutex::new(BTreeMap::new());
/// The configured quotas: (class, dimension, limit, period seconds).
static CONFIGURED: Mutex<Vec<(&'static str, &'static str, u32, u32)>> = Mutex::new(Vec::new());
static OVERRIDES: AtomicU64 = AtomicU64::new(0);

/// Counts one rate-limit decision (`allowed`, `limited`, `fail_open`, `fail_closed`).
pub fn rate_limit_decision(class: &'static str, outcome: &'static str) {
    if let Ok(mut d) = DECISIONS.lock() {
        *d.entry((class, outcome)).or_default() += 1;
    }
}

/// Records the configured quotas.
pub fn rate_limit_configured(quotas: Vec<(&'static str, &'static str, u32, u32)>) {
    if let Ok(mut c) = CONFIGURED.lock() {
        *c = quotas;
    }
}

/// Records how many agencies (held in the cache) have overrides.
pub fn rate_limit_overrides(n: usize) {
    OVERRIDES.store(n as u64, Ordering::Relaxed);
}

fn render_rate_limits(out: &mut String) {
    let _ = writeln!(
        out,
        "# HELP tessera_rate_limit_decisions_total Rate-limit decisions by class and outcome."
    );
    let _ = writeln!(out, "# TYPE tessera_rate_limit_decisions_total counter");
    if let Ok(d) = DECISIONS.lock() {
        for ((class, outcome), n) in d.iter() {
            let _ = writeln!(
                out,
                "tessera_rate_limit_decisions_total{{class=\"{class}\",outcome=\"{outcome}\"}} {n}"
            );
        }
    }
    let _ = writeln!(out, "# HELP tessera_rate_limit_quota Configured default quotas (requests per period) by class and dimension.");
    let _ = writeln!(out, "# TYPE tessera_rate_limit_quota gauge");
    if let Ok(c) = CONFIGURED.lock() {
        for (class, dim, limit, period) in c.iter() {
            let _ = writeln!(out, "tessera_rate_limit_quota{{class=\"{class}\",dimension=\"{dim}\",period_seconds=\"{period}\"}} {limit}");
        }
    }
    let _ = writeln!(out, "# HELP tessera_rate_limit_agency_overrides Agencies with limit overrides (among those this node holds).");
    let _ = writeln!(out, "# TYPE tessera_rate_limit_agency_overrides gauge");
    let _ = writeln!(
        out,
        "tessera_rate_limit_agency_overrides {}",
        OVERRIDES.load(Ordering::Relaxed)
    );
}

fn render_redis(out: &mut String) {
    let _ = writeln!(
        out,
        "# HELP tessera_redis_errors_total Redis calls that failed or timed out."
    );
    let _ = writeln!(out, "# TYPE tessera_redis_errors_total counter");
    let _ = writeln!(
        out,
        "tessera_redis_errors_total {}",
        REDIS_ERRORS.load(Ordering::Relaxed)
    );
    let up = REDIS_UP.load(Ordering::Relaxed);
    if up != 2 {
        let _ = writeln!(
            out,
            "# HELP tessera_redis_up Whether the last Redis call answered (1) or not (0)."
        );
        let _ = writeln!(out, "# TYPE tessera_redis_up gauge");
        let _ = writeln!(out, "tessera_redis_up {up}");
    }
}

/// Counts a connection admitted by the listener.
pub fn connection_opened() {
    CONNECTIONS_OPEN.fetch_add(1, Ordering::Relaxed);
}

/// Counts an admitted connection's end.
pub fn connection_closed() {
    let _ = CONNECTIONS_OPEN.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
        Some(n.saturating_sub(1))
    });
}

/// Counts a connection refused over a cap (`max_connections` or `max_connections_per_ip`).
pub fn connection_refused(cap: &str) {
    let counter = if cap == "max_connections" {
        &REFUSED_TOTAL
    } else {
        &REFUSED_PER_IP
    };
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Counts a connection closed because the client was too slow (`header`, `idle`, `write`).
pub fn connection_timed_out(phase: &str) {
    let counter = match phase {
        "header" => &TIMED_OUT_HEADER,
        "idle" => &TIMED_OUT_IDLE,
        _ => &TIMED_OUT_WRITE,
    };
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Counts a request body that did not arrive in time.
pub fn body_timed_out() {
    BODY_TIMEOUTS.fetch_add(1, Ordering::Relaxed);
}

/// Counts a failed `accept` (such as running out of file descriptors).
pub fn accept_error() {
    ACCEPT_ERRORS.fetch_add(1, Ordering::Relaxed);
}

fn render_connections(out: &mut String) {
    let n = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let _ = writeln!(
        out,
        "# HELP tessera_connections_open Open client connections."
    );
    let _ = writeln!(out, "# TYPE tessera_connections_open gauge");
    let _ = writeln!(out, "tessera_connections_open {}", n(&CONNECTIONS_OPEN));
    let _ = writeln!(out, "# HELP tessera_connections_refused_total Connections closed unread because a cap was reached.");
    let _ = writeln!(out, "# TYPE tessera_connections_refused_total counter");
    let _ = writeln!(
        out,
        "tessera_connections_refused_total{{cap=\"max_connections\"}} {}",
        n(&REFUSED_TOTAL)
    );
    let _ = writeln!(
        out,
        "tessera_connections_refused_total{{cap=\"max_connections_per_ip\"}} {}",
        n(&REFUSED_PER_IP)
    );
    let _ = writeln!(out, "# HELP tessera_connections_timed_out_total Connections closed because the client was too slow.");
    let _ = writeln!(out, "# TYPE tessera_connections_timed_out_total counter");
    for (phase, c) in [
        ("header", &TIMED_OUT_HEADER),
        ("idle", &TIMED_OUT_IDLE),
        ("write", &TIMED_OUT_WRITE),
    ] {
        let _ = writeln!(
            out,
            "tessera_connections_timed_out_total{{phase=\"{phase}\"}} {}",
            n(c)
        );
    }
    let _ = writeln!(out, "# HELP tessera_request_body_timeouts_total Request bodies that did not arrive in time (answered 408).");
    let _ = writeln!(out, "# TYPE tessera_request_body_timeouts_total counter");
    let _ = writeln!(
        out,
        "tessera_request_body_timeouts_total {}",
        n(&BODY_TIMEOUTS)
    );
    let _ = writeln!(out, "# HELP tessera_accept_errors_total Failed accepts (such as running out of file descriptors).");
    let _ = writeln!(out, "# TYPE tessera_accept_errors_total counter");
    let _ = writeln!(out, "tessera_accept_errors_total {}", n(&ACCEPT_ERRORS));
}

fn registry() -> &'static Mutex<Registry> {
    REGISTRY.get_or_init(Mutex::default)
}

/// Counts one store error.
pub fn store_error() {
    STORE_ERRORS.fetch_add(1, Ordering::Relaxed);
}

/// Records one finished request.
pub fn observe(method: &str, route: &str, status: u16, seconds: f64) {
    let Ok(mut r) = registry().lock() else { return };
    if !r.routes.contains_key(route) {
        r.routes.insert(route.to_owned(), BTreeMap::new());
    }
    let Some(by_method) = r.routes.get_mut(route) else {
        return;
    };
    let stats = by_method.entry(method_name(method)).or_default();
    *stats.statuses.entry(status).or_default() += 1;
    let h = &mut stats.latency;
    h.count += 1;
    h.sum += seconds;
    for (i, le) in BUCKETS.iter().enumerate() {
        if seconds <= *le {
            h.counts[i] += 1;
        }
    }
}

fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The Prometheus text exposition.
pub fn render() -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP tessera_http_requests_total HTTP requests by route and status."
    );
    let _ = writeln!(out, "# TYPE tessera_http_requests_total counter");
    if let Ok(r) = registry().lock() {
        for (route, by_method) in &r.routes {
            let route = label(route);
            for (m, stats) in by_method {
                for (status, n) in &stats.statuses {
                    let _ = writeln!(out, "tessera_http_requests_total{{method=\"{m}\",route=\"{route}\",status=\"{status}\"}} {n}");
                }
            }
        }
        let _ = writeln!(
            out,
            "# HELP tessera_http_request_duration_seconds HTTP request latency by route."
        );
        let _ = writeln!(
            out,
            "# TYPE tessera_http_request_duration_seconds histogram"
        );
        for (route, by_method) in &r.routes {
            let route = label(route);
            for (m, stats) in by_method {
                let h = &stats.latency;
                for (i, le) in BUCKETS.iter().enumerate() {
                    let _ = writeln!(out, "tessera_http_request_duration_seconds_bucket{{method=\"{m}\",route=\"{route}\",le=\"{le}\"}} {}", h.counts[i]);
                }
                let _ = writeln!(out, "tessera_http_request_duration_seconds_bucket{{method=\"{m}\",route=\"{route}\",le=\"+Inf\"}} {}", h.count);
                let _ = writeln!(out, "tessera_http_request_duration_seconds_sum{{method=\"{m}\",route=\"{route}\"}} {}", h.sum);
                let _ = writeln!(out, "tessera_http_request_duration_seconds_count{{method=\"{m}\",route=\"{route}\"}} {}", h.count);
            }
        }
    }
    let _ = writeln!(
        out,
        "# HELP tessera_store_errors_total Store operations that failed on the server's side."
    );
    let _ = writeln!(out, "# TYPE tessera_store_errors_total counter");
    let _ = writeln!(
        out,
        "tessera_store_errors_total {}",
        STORE_ERRORS.load(Ordering::Relaxed)
    );
    render_connections(&mut out);
    render_redis(&mut out);
    render_rate_limits(&mut out);
    render_cluster(&mut out);
    render_webhooks(&mut out);
    render_checkpoints(&mut out);
    out
}
