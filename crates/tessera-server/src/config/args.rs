//! The command-line options of `tessera serve` and of the commands that open the store: clap
//! reads flags and `TESSERA_*` variables into these; `Config::resolve` lays them over the
//! `--config` file and the defaults, and checks every value.

use std::path::PathBuf;

use serde::Deserialize;

/// Log line format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Options shared by the commands that open the store.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct StoreArgs {
    /// Directory for the embedded database, the master key and the bootstrap key [default: ./tessera-data]
    #[arg(long, env = "TESSERA_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// `postgres://user@host/db` for production, or `sqlite://PATH` [default: SQLite in the data dir]
    #[arg(
        long,
        env = "TESSERA_DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,
    /// A TOML file with any of: listen, data_dir, database_url, replica_url, issuer, log_format, catalog, policies, authz_cache_mb, access_token_ttl, refresh_reuse_grace_ms, password_workers, header_timeout_secs, body_timeout_secs, idle_timeout_secs, max_connections, max_connections_per_ip, metrics_public, trusted_proxies, trusted_proxy_header, redis_url, redis_timeout_ms, master_key_file, master_key_env, master_key_command, audit_checkpoint_events, audit_checkpoint_seconds, audit_retention_days, [rate_limits.<class>], [plans.<name>.<class>], [forward_auth] (audience, [[forward_auth.routes]])
    #[arg(long, env = "TESSERA_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The master key file: lines of 64 hex characters, the current key first, previous ones
    /// after during a rotation; created (mode 0600) when missing [default: DATA_DIR/master.key]
    #[arg(long, env = "TESSERA_MASTER_KEY_FILE", value_name = "FILE")]
    pub master_key_file: Option<PathBuf>,
    /// Read the master key(s) from this environment variable instead (hex; several separated by
    /// commas, the current first)
    #[arg(long, env = "TESSERA_MASTER_KEY_ENV", value_name = "VAR")]
    pub master_key_env: Option<String>,
    /// Run this shell command and read the master key(s) from its output, one per line, the
    /// current first (Vault, a cloud KMS, …)
    #[arg(
        long,
        env = "TESSERA_MASTER_KEY_COMMAND",
        value_name = "CMD",
        hide_env_values = true
    )]
    pub master_key_command: Option<String>,
}

/// `tessera serve` options.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8080]
    #[arg(long, env = "TESSERA_LISTEN", value_name = "ADDR")]
    pub listen: Option<String>,
    /// The `iss` of every token and the base of discovery [default: http://<listen address>]
    #[arg(long, env = "TESSERA_ISSUER", value_name = "URL")]
    pub issuer: Option<String>,
    /// Log format [default: text]
    #[arg(long, env = "TESSERA_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// A catalog TOML file to use instead of the built-in one
    #[arg(long, env = "TESSERA_CATALOG", value_name = "FILE")]
    pub catalog: Option<PathBuf>,
    /// A Cedar file of platform-wide policies, applied in every agency (validated at start)
    #[arg(long, env = "TESSERA_POLICIES", value_name = "FILE")]
    pub policies: Option<PathBuf>,
    /// Memory budget of the authorization index cache, in MiB [default: 1024]
    #[arg(long, env = "TESSERA_AUTHZ_CACHE_MB", value_name = "MIB")]
    pub authz_cache_mb: Option<u64>,
    /// Lifetime of access tokens, in seconds, 60 to 3600 [default: 900]
    #[arg(long, env = "TESSERA_ACCESS_TOKEN_TTL", value_name = "SECS")]
    pub access_token_ttl: Option<i64>,
    /// A rotated refresh token presented again within this window (a client's own retry) is
    /// refused without revoking its family; after it, the family is revoked. Milliseconds,
    /// 0 to 5000 [default: 2000]
    #[arg(long, env = "TESSERA_REFRESH_REUSE_GRACE_MS", value_name = "MS")]
    pub refresh_reuse_grace_ms: Option<i64>,
    /// Threads that hash passwords (argon2id, 19 MiB each); sign-ins beyond them and a short
    /// queue answer 503 with Retry-After [default: half the cores, at least 1]
    #[arg(long, env = "TESSERA_PASSWORD_WORKERS", value_name = "N")]
    pub password_workers: Option<usize>,
    /// A request's head must arrive within this time of the connection's start or the request's
    /// first byte, else the connection is closed. Seconds, 1 to 3600 [default: 10]
    #[arg(long, env = "TESSERA_HEADER_TIMEOUT_SECS", value_name = "SECS")]
    pub header_timeout_secs: Option<u64>,
    /// A request's whole body must arrive within this time of its head, else 408 and the
    /// connection is closed. Seconds, 1 to 3600 [default: 30]
    #[arg(long, env = "TESSERA_BODY_TIMEOUT_SECS", value_name = "SECS")]
    pub body_timeout_secs: Option<u64>,
    /// A kept-alive connection may wait this long for its next request, and a response may
    /// stall this long on a client that does not read it. Seconds, 1 to 3600 [default: 60]
    #[arg(long, env = "TESSERA_IDLE_TIMEOUT_SECS", value_name = "SECS")]
    pub idle_timeout_secs: Option<u64>,
    /// Open connections, all clients together; more are closed at once [default: 10000]
    #[arg(long, env = "TESSERA_MAX_CONNECTIONS", value_name = "N")]
    pub max_connections: Option<usize>,
    /// Open connections from one client address (IPv6: one /64); more are closed at once
    /// [default: 256]
    #[arg(long, env = "TESSERA_MAX_CONNECTIONS_PER_IP", value_name = "N")]
    pub max_connections_per_ip: Option<usize>,
    /// Serve `/metrics` without a credential (for a scraper on a private network); otherwise it
    /// needs a platform credential holding `platform.config`
    #[arg(long, env = "TESSERA_METRICS_PUBLIC", action = clap::ArgAction::SetTrue)]
    pub metrics_public: bool,
    /// Proxies (CIDRs or addresses, comma-separated) whose `X-Forwarded-For` / `Forwarded`
    /// name the client; from any other peer those headers are ignored [default: none]
    #[arg(long, env = "TESSERA_TRUSTED_PROXIES", value_name = "CIDRS")]
    pub trusted_proxies: Option<String>,
    /// Which forwarding header the trusted proxies write [default: auto: `X-Forwarded-For`
    /// when present, else `Forwarded`]
    #[arg(long, env = "TESSERA_TRUSTED_PROXY_HEADER", value_enum)]
    pub trusted_proxy_header: Option<crate::net::ForwardedHeader>,
    /// `postgres://user@replica-host/db`: a streaming read replica (hot standby) of the
    /// PostgreSQL primary; index builds, admin lists, audit reads and JWT introspection read it
    /// when it has applied the revision they must reflect [default: none, every read on the
    /// primary]
    #[arg(
        long,
        env = "TESSERA_REPLICA_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub replica_url: Option<String>,
    /// `redis://[:password@]host:port[/db]`: share rate limits (and sign-in counters) across
    /// every node [default: none, each node keeps its own]
    #[arg(
        long,
        env = "TESSERA_REDIS_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub redis_url: Option<String>,
    /// The longest one Redis call may take, in milliseconds, 1 to 10000 [default: 50]
    #[arg(long, env = "TESSERA_REDIS_TIMEOUT_MS", value_name = "MS")]
    pub redis_timeout_ms: Option<u64>,
    /// A class's quota per dimension, `CLASS.DIM=N/S` (or `=off`), or its fail mode,
    /// `CLASS.fail=open|closed`; repeatable. Classes: signin, token, introspect, check, read,
    /// write; dimensions: ip, user, client, key, agency
    #[arg(long = "rate-limit", value_name = "CLASS.DIM=N/S")]
    pub rate_limit: Vec<String>,
    /// `off` disables every rate limit [default: on]
    #[arg(
        long = "rate-limits",
        env = "TESSERA_RATE_LIMITS",
        value_name = "on|off"
    )]
    pub rate_limits: Option<String>,
    /// Sign an audit checkpoint of an agency's chain after this many new events, 1 to
    /// 1000000 [default: 1000]
    #[arg(long, env = "TESSERA_AUDIT_CHECKPOINT_EVENTS", value_name = "N")]
    pub audit_checkpoint_events: Option<i64>,
    /// Sign an audit checkpoint at most this many seconds after an agency's newest event, 1 to
    /// 86400 [default: 60]
    #[arg(long, env = "TESSERA_AUDIT_CHECKPOINT_SECONDS", value_name = "S")]
    pub audit_checkpoint_seconds: Option<i64>,
    /// Keep audit events this many days (pruned up to a signed checkpoint), 90 to 36500;
    /// platform admins may set another value per agency [default: 400]
    #[arg(long, env = "TESSERA_AUDIT_RETENTION_DAYS", value_name = "DAYS")]
    pub audit_retention_days: Option<i64>,
    /// Let webhooks reach loopback, private, link-local, CGNAT and other internal addresses
    /// (tests, an on-premises SIEM); refused by default (SSRF)
    #[arg(long, env = "TESSERA_WEBHOOK_ALLOW_PRIVATE_TARGETS", action = clap::ArgAction::SetTrue)]
    pub webhook_allow_private_targets: bool,
    /// The unit of the webhook retry schedule (5, 300, 1800, 7200, 18000, 36000, 36000 units
    /// after failures 1 to 7; then dead), in milliseconds, 1 to 60000 [default: 1000]
    #[arg(long, env = "TESSERA_WEBHOOK_RETRY_UNIT_MS", value_name = "MS")]
    pub webhook_retry_unit_ms: Option<u64>,
    /// The longest one webhook attempt may take (connecting: at most 5 s of it), in
    /// milliseconds, 100 to 60000 [default: 15000]
    #[arg(long, env = "TESSERA_WEBHOOK_TIMEOUT_MS", value_name = "MS")]
    pub webhook_timeout_ms: Option<u64>,
    /// `off`: this node does not deliver webhooks (others sharing the database do; the queue
    /// waits for them) [default: on]
    #[arg(long, env = "TESSERA_WEBHOOK_DISPATCH", value_name = "on|off")]
    pub webhook_dispatch: Option<String>,
    /// Every cluster job's tick, in milliseconds, 10 to 3600000 (tests) [default: each job's
    /// own: 60 s for key rotation, 1 to 15 s for checkpoints, 1 h for retention]
    #[arg(
        long,
        env = "TESSERA_CLUSTER_JOB_TICK_MS",
        value_name = "MS",
        hide = true
    )]
    pub cluster_job_tick_ms: Option<u64>,
    /// How long a cluster job's lease lasts unless renewed (a dead node's jobs move within
    /// about this long), in milliseconds, 300 to 600000 [default: 20000]
    #[arg(long, env = "TESSERA_CLUSTER_LEASE_MS", value_name = "MS", hide = true)]
    pub cluster_lease_ms: Option<u64>,
    #[command(flatten)]
    pub store: StoreArgs,
}
