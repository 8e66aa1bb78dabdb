//! Configuration: flags, then `TESSERA_*` variables, then the `--config` TOML file, then
//! defaults (API.md "Command line and files").

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

mod args;
pub use args::{LogFormat, ServeArgs, StoreArgs};

/// A list in the file: `"10.0.0.0/8, ::1"` or `["10.0.0.0/8", "::1"]`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum TextList {
    One(String),
    Many(Vec<String>),
}

impl TextList {
    fn joined(&self) -> String {
        match self {
            Self::One(s) => s.clone(),
            Self::Many(v) => v.join(","),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    replica_url: Option<String>,
    issuer: Option<String>,
    log_format: Option<LogFormat>,
    catalog: Option<PathBuf>,
    policies: Option<PathBuf>,
    authz_cache_mb: Option<u64>,
    access_token_ttl: Option<i64>,
    refresh_reuse_grace_ms: Option<i64>,
    password_workers: Option<usize>,
    header_timeout_secs: Option<u64>,
    body_timeout_secs: Option<u64>,
    idle_timeout_secs: Option<u64>,
    max_connections: Option<usize>,
    max_connections_per_ip: Option<usize>,
    metrics_public: Option<bool>,
    trusted_proxies: Option<TextList>,
    trusted_proxy_header: Option<crate::net::ForwardedHeader>,
    redis_url: Option<String>,
    redis_timeout_ms: Option<u64>,
    rate_limits: Option<crate::ratelimit::settings::FileRateLimits>,
    plans: Option<
        std::collections::BTreeMap<
            String,
            std::collections::BTreeMap<String, crate::ratelimit::Quota>,
        >,
    >,
    forward_auth: Option<crate::forward_auth::ForwardAuthConfig>,
    audit_checkpoint_events: Option<i64>,
    audit_checkpoint_seconds: Option<i64>,
    audit_retention_days: Option<i64>,
    master_key_file: Option<PathBuf>,
    master_key_env: Option<String>,
    master_key_command: Option<String>,
}

/// The index cache's default budget, in MiB: 100k seeded agencies need ≈ 620 MB of index
/// (docs/BENCHMARKS.md), and DESIGN §7 allows 1 GiB of index per node.
pub const DEFAULT_AUTHZ_CACHE_MB: u64 = 1024;

/// The resolved configuration.
#[derive(Clone)]
pub struct Config {
    /// Where to listen.
    pub listen: SocketAddr,
    /// The data directory.
    pub data_dir: PathBuf,
    /// The store's URL (may hold a password: never log it).
    pub database_url: String,
    /// A read replica of the PostgreSQL primary (may hold a password: never log it).
    pub replica_url: Option<String>,
    /// The issuer URL.
    pub issuer: String,
    /// Log format.
    pub log_format: LogFormat,
    /// A catalog file, or the built-in catalog.
    pub catalog: Option<PathBuf>,
    /// Platform-wide Cedar policies.
    pub policies: Option<PathBuf>,
    /// Index cache budget in MiB.
    pub authz_cache_mb: u64,
    /// Access-token lifetime, seconds.
    pub access_token_ttl: i64,
    /// Refresh-token reuse grace, milliseconds.
    pub refresh_reuse_grace_ms: i64,
    /// Password-hashing threads (0: the default for this machine).
    pub password_workers: usize,
    /// The listener's timeouts and connection caps.
    pub net: crate::net::NetSettings,
    /// `/metrics` without a credential.
    pub metrics_public: bool,
    /// The proxies whose forwarding headers name the client.
    pub proxies: crate::net::TrustedProxies,
    /// Redis, when set (its URL may hold a password: never log it).
    pub redis: Option<crate::cluster::redis::RedisSettings>,
    /// Rate limits and plans.
    pub rate_limits: crate::ratelimit::RateLimitSettings,
    /// Forward-auth routes (checked against the catalog when the services are built).
    pub forward_auth: crate::forward_auth::ForwardAuthConfig,
    /// Audit checkpoint interval and retention.
    pub audit: crate::audit::checkpoint::AuditSettings,
    /// Signed webhooks.
    pub webhooks: crate::webhooks::WebhookSettings,
    /// Cluster jobs' lease and ticks (hidden flags, for tests).
    pub jobs: crate::cluster::leases::JobSettings,
    /// Where the master key comes from (a command line may hold a token: never log it).
    pub master_key: tessera_token::MasterKeySource,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field("database_url", &"[redacted]")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read config file `{path}`: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    /// The file is not valid.
    #[error("invalid config file `{path}`: {message}")]
    Parse { path: String, message: String },
    /// A value is not valid.
    #[error("invalid `{field}` `{value}`: {message}")]
    Value {
        field: &'static str,
        value: String,
        message: String,
    },
}

/// A timeout in seconds, 1 to 3600.
fn timeout(
    field: &'static str,
    value: Option<u64>,
    default: std::time::Duration,
) -> Result<std::time::Duration, ConfigError> {
    match value {
        None => Ok(default),
        Some(n @ 1..=3600) => Ok(std::time::Duration::from_secs(n)),
        Some(n) => Err(ConfigError::Value {
            field,
            value: n.to_string(),
            message: "must be 1 to 3600 seconds".into(),
        }),
    }
}

/// A connection cap, at least 1.
fn cap(field: &'static str, value: Option<usize>, default: usize) -> Result<usize, ConfigError> {
    match value {
        None => Ok(default),
        Some(0) => Err(ConfigError::Value {
            field,
            value: "0".into(),
            message: "must be at least 1".into(),
        }),
        Some(n) => Ok(n),
    }
}

fn net_settings(
    args: &ServeArgs,
    file: &FileConfig,
) -> Result<crate::net::NetSettings, ConfigError> {
    let d = crate::net::NetSettings::default();
    Ok(crate::net::NetSettings {
        header_timeout: timeout(
            "header_timeout_secs",
            args.header_timeout_secs.or(file.header_timeout_secs),
            d.header_timeout,
        )?,
        body_timeout: timeout(
            "body_timeout_secs",
            args.body_timeout_secs.or(file.body_timeout_secs),
            d.body_timeout,
        )?,
        idle_timeout: timeout(
            "idle_timeout_secs",
            args.idle_timeout_secs.or(file.idle_timeout_secs),
            d.idle_timeout,
        )?,
        max_connections: cap(
            "max_connections",
            args.max_connections.or(file.max_connections),
            d.max_connections,
        )?,
        max_connections_per_ip: cap(
            "max_connections_per_ip",
            args.max_connections_per_ip.or(file.max_connections_per_ip),
            d.max_connections_per_ip,
        )?,
    })
}

/// A number within `range`, or the default.
fn bounded(
    field: &'static str,
    value: Option<i64>,
    default: i64,
    range: std::ops::RangeInclusive<i64>,
    unit: &str,
) -> Result<i64, ConfigError> {
    match value {
        None => Ok(default),
        Some(n) if range.contains(&n) => Ok(n),
        Some(n) => Err(ConfigError::Value {
            field,
            value: n.to_string(),
            message: format!("must be {} to {} {unit}", range.start(), range.end()),
        }),
    }
}

fn audit_settings(
    args: &ServeArgs,
    file: &FileConfig,
) -> Result<crate::audit::checkpoint::AuditSettings, ConfigError> {
    use crate::audit::checkpoint as c;
    Ok(c::AuditSettings {
        checkpoint_events: bounded(
            "audit_checkpoint_events",
            args.audit_checkpoint_events
                .or(file.audit_checkpoint_events),
            c::DEFAULT_CHECKPOINT_EVENTS,
            1..=1_000_000,
            "events",
        )?,
        checkpoint_seconds: bounded(
            "audit_checkpoint_seconds",
            args.audit_checkpoint_seconds
                .or(file.audit_checkpoint_seconds),
            c::DEFAULT_CHECKPOINT_SECONDS,
            1..=86_400,
            "seconds",
        )?,
        retention_days: bounded(
            "audit_retention_days",
            args.audit_retention_days.or(file.audit_retention_days),
            c::DEFAULT_RETENTION_DAYS,
            c::MIN_RETENTION_DAYS..=c::MAX_RETENTION_DAYS,
            "days",
        )?,
    })
}

/// `--replica-url`: PostgreSQL, beside a PostgreSQL primary.
fn replica_url(url: Option<String>, primary: &str) -> Result<Option<String>, ConfigError> {
    let Some(url) = url.filter(|u| !u.trim().is_empty()) else {
        return Ok(None);
    };
    let pg = |u: &str| u.starts_with("postgres://") || u.starts_with("postgresql://");
    if !pg(primary) {
        return Err(ConfigError::Value {
            field: "replica_url",
            value: "[redacted]".into(),
            message: "a read replica needs a PostgreSQL primary (`--database-url postgres://…`); SQLite has no replicas".into(),
        });
    }
    if !pg(&url) {
        return Err(ConfigError::Value {
            field: "replica_url",
            value: "[redacted]".into(),
            message: "must be a `postgres://…` url".into(),
        });
    }
    Ok(Some(url))
}

fn redis_settings(
    args: &ServeArgs,
    file: &FileConfig,
) -> Result<Option<crate::cluster::redis::RedisSettings>, ConfigError> {
    let Some(url) = args.redis_url.clone().or_else(|| file.redis_url.clone()) else {
        return Ok(None);
    };
    let mut s = crate::cluster::redis::RedisSettings::new(url);
    match args.redis_timeout_ms.or(file.redis_timeout_ms) {
        None => {}
        Some(n @ 1..=10_000) => s.timeout = std::time::Duration::from_millis(n),
        Some(n) => {
            return Err(ConfigError::Value {
                field: "redis_timeout_ms",
                value: n.to_string(),
                message: "must be 1 to 10000 milliseconds".into(),
            })
        }
    }
    Ok(Some(s))
}

fn read_file(path: Option<&Path>) -> Result<FileConfig, ConfigError> {
    let Some(path) = path else {
        return Ok(FileConfig::default());
    };
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.display().to_string(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.display().to_string(),
        message: e.message().to_owned(),
    })
}

/// The default SQLite url for a data dir.
pub fn sqlite_url(data_dir: &Path) -> String {
    format!("sqlite://{}", data_dir.join("tessera.db").display())
}

/// The master key's source: at most one of file, variable and command (flags and variables
/// over the config file), else `DATA_DIR/master.key`.
fn master_key_source(
    args: &StoreArgs,
    from_file: [Option<tessera_token::MasterKeySource>; 3],
    data_dir: &Path,
) -> Result<tessera_token::MasterKeySource, ConfigError> {
    use tessera_token::MasterKeySource as S;
    let from_args = [
        args.master_key_file.clone().map(S::File),
        args.master_key_env.clone().map(S::Env),
        args.master_key_command.clone().map(S::Command),
    ];
    let pick = |set: [Option<S>; 3]| -> Result<Option<S>, ConfigError> {
        let mut chosen: Vec<S> = set.into_iter().flatten().collect();
        if chosen.len() > 1 {
            return Err(ConfigError::Value {
                field: "master_key",
                value: chosen
                    .iter()
                    .map(S::describe)
                    .collect::<Vec<_>>()
                    .join(", "),
                message: "set only one of master_key_file, master_key_env and master_key_command"
                    .into(),
            });
        }
        Ok(chosen.pop())
    };
    let source = match pick(from_args)? {
        Some(s) => s,
        None => pick(from_file)?.unwrap_or_else(|| S::File(data_dir.join("master.key"))),
    };
    if let S::Env(text) | S::Command(text) = &source {
        if text.trim().is_empty() {
            return Err(ConfigError::Value {
                field: "master_key",
                value: source.describe(),
                message: "the variable name or command is empty".into(),
            });
        }
    }
    Ok(source)
}

impl Config {
    /// Resolves flags and variables (already merged by clap) over the file over defaults.
    pub fn resolve(args: &ServeArgs) -> Result<Self, ConfigError> {
        let mut file = read_file(args.store.config.as_deref())?;
        let file_master = [
            file.master_key_file
                .take()
                .map(tessera_token::MasterKeySource::File),
            file.master_key_env
                .take()
                .map(tessera_token::MasterKeySource::Env),
            file.master_key_command
                .take()
                .map(tessera_token::MasterKeySource::Command),
        ];
        let audit = audit_settings(args, &file)?;
        let net = net_settings(args, &file)?;
        let redis = redis_settings(args, &file)?;
        let enabled = match args.rate_limits.as_deref() {
            None => None,
            Some("on") => Some(true),
            Some("off") => Some(false),
            Some(other) => {
                return Err(ConfigError::Value {
                    field: "rate_limits",
                    value: other.to_owned(),
                    message: "must be `on` or `off`".into(),
                })
            }
        };
        let rate_limits = crate::ratelimit::RateLimitSettings::resolve(
            file.rate_limits.as_ref(),
            file.plans.as_ref(),
            &args.rate_limit,
            enabled,
        )
        .map_err(|e| ConfigError::Value {
            field: "rate_limit",
            value: e.0.clone(),
            message: e.1.to_owned(),
        })?;
        let metrics_public = args.metrics_public || file.metrics_public.unwrap_or(false);
        let proxy_list = args
            .trusted_proxies
            .clone()
            .or_else(|| file.trusted_proxies.as_ref().map(TextList::joined))
            .unwrap_or_default();
        let proxies = crate::net::TrustedProxies::parse(
            &proxy_list,
            args.trusted_proxy_header
                .or(file.trusted_proxy_header)
                .unwrap_or_default(),
        )
        .map_err(|e| ConfigError::Value {
            field: "trusted_proxies",
            value: e.0.clone(),
            message: e.to_string(),
        })?;
        let listen_text = args
            .listen
            .clone()
            .or(file.listen)
            .unwrap_or_else(|| "127.0.0.1:8080".to_owned());
        let listen: SocketAddr =
            listen_text
                .parse()
                .map_err(|e: std::net::AddrParseError| ConfigError::Value {
                    field: "listen",
                    value: listen_text.clone(),
                    message: format!("{e} (expected HOST:PORT, such as 127.0.0.1:8080)"),
                })?;
        let data_dir = args
            .store
            .data_dir
            .clone()
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from("tessera-data"));
        let master_key = master_key_source(&args.store, file_master, &data_dir)?;
        let database_url = args
            .store
            .database_url
            .clone()
            .or(file.database_url)
            .unwrap_or_else(|| sqlite_url(&data_dir));
        let replica_url =
            replica_url(args.replica_url.clone().or(file.replica_url), &database_url)?;
        let issuer = args
            .issuer
            .clone()
            .or(file.issuer)
            .unwrap_or_else(|| format!("http://{listen}"));
        if !(issuer.starts_with("https://") || issuer.starts_with("http://")) {
            return Err(ConfigError::Value {
                field: "issuer",
                value: issuer,
                message: "must be an http(s) URL".into(),
            });
        }
        let ranged = |field: &'static str, v: Option<u64>, lo: u64, hi: u64, default: u64| match v {
            None => Ok(default),
            Some(n) if (lo..=hi).contains(&n) => Ok(n),
            Some(n) => Err(ConfigError::Value {
                field,
                value: n.to_string(),
                message: format!("must be {lo} to {hi}"),
            }),
        };
        let total_ms = ranged(
            "webhook_timeout_ms",
            args.webhook_timeout_ms,
            100,
            60_000,
            15_000,
        )?;
        let webhooks = crate::webhooks::WebhookSettings {
            allow_private_targets: args.webhook_allow_private_targets,
            retry_unit: std::time::Duration::from_millis(ranged(
                "webhook_retry_unit_ms",
                args.webhook_retry_unit_ms,
                1,
                60_000,
                1000,
            )?),
            total_timeout: std::time::Duration::from_millis(total_ms),
            connect_timeout: std::time::Duration::from_millis(total_ms.min(5000)),
            dispatch: match args.webhook_dispatch.as_deref() {
                None | Some("on") => true,
                Some("off") => false,
                Some(other) => {
                    return Err(ConfigError::Value {
                        field: "webhook_dispatch",
                        value: other.to_owned(),
                        message: "must be on or off".to_owned(),
                    })
                }
            },
            ..Default::default()
        };
        let jobs = crate::cluster::leases::JobSettings {
            lease: std::time::Duration::from_millis(ranged(
                "cluster_lease_ms",
                args.cluster_lease_ms,
                300,
                600_000,
                20_000,
            )?),
            tick: match args.cluster_job_tick_ms {
                None => None,
                Some(_) => Some(std::time::Duration::from_millis(ranged(
                    "cluster_job_tick_ms",
                    args.cluster_job_tick_ms,
                    10,
                    3_600_000,
                    0,
                )?)),
            },
        };
        Ok(Self {
            audit,
            webhooks,
            jobs,
            master_key,
            forward_auth: file.forward_auth.clone().unwrap_or_default(),
            rate_limits,
            redis,
            net,
            metrics_public,
            proxies,
            listen,
            data_dir,
            database_url,
            replica_url,
            issuer: issuer.trim_end_matches('/').to_owned(),
            log_format: args.log_format.or(file.log_format).unwrap_or_default(),
            catalog: args.catalog.clone().or(file.catalog),
            policies: args.policies.clone().or(file.policies),
            access_token_ttl: match args
                .access_token_ttl
                .or(file.access_token_ttl)
                .unwrap_or(900)
            {
                n @ 60..=3600 => n,
                n => {
                    return Err(ConfigError::Value {
                        field: "access_token_ttl",
                        value: n.to_string(),
                        message: "must be 60 to 3600 seconds".into(),
                    })
                }
            },
            refresh_reuse_grace_ms: match args
                .refresh_reuse_grace_ms
                .or(file.refresh_reuse_grace_ms)
                .unwrap_or(2000)
            {
                n @ 0..=5000 => n,
                n => {
                    return Err(ConfigError::Value {
                        field: "refresh_reuse_grace_ms",
                        value: n.to_string(),
                        message: "must be 0 to 5000 milliseconds".into(),
                    })
                }
            },
            authz_cache_mb: match args
                .authz_cache_mb
                .or(file.authz_cache_mb)
                .unwrap_or(DEFAULT_AUTHZ_CACHE_MB)
            {
                0 => {
                    return Err(ConfigError::Value {
                        field: "authz_cache_mb",
                        value: "0".into(),
                        message: "must be at least 1".into(),
                    })
                }
                n => n,
            },
            password_workers: match args.password_workers.or(file.password_workers) {
                None => 0,
                Some(n @ 1..=256) => n,
                Some(n) => {
                    return Err(ConfigError::Value {
                        field: "password_workers",
                        value: n.to_string(),
                        message: "must be 1 to 256".into(),
                    })
                }
            },
        })
    }

    /// The store settings alone (for `tessera migrate`).
    pub fn resolve_store(args: &StoreArgs) -> Result<Self, ConfigError> {
        Self::resolve(&ServeArgs {
            store: args.clone(),
            ..ServeArgs::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replica_needs_a_postgres_primary_and_a_postgres_url() {
        let mut args = ServeArgs {
            replica_url: Some("postgres://tessera@replica/tessera".into()),
            ..ServeArgs::default()
        };
        // The default primary is SQLite: refused, the url (it may hold a password) not echoed.
        match Config::resolve(&args) {
            Err(
                e @ ConfigError::Value {
                    field: "replica_url",
                    ..
                },
            ) => {
                let text = e.to_string();
                assert!(text.contains("PostgreSQL primary"), "{text}");
                assert!(!text.contains("replica/tessera"), "{text}");
            }
            other => panic!("expected a replica_url error, got {other:?}"),
        }
        args.store.database_url = Some("postgres://tessera@primary/tessera".into());
        let c = Config::resolve(&args).ok().and_then(|c| c.replica_url);
        assert_eq!(c.as_deref(), Some("postgres://tessera@replica/tessera"));
        args.replica_url = Some("mysql://replica/tessera".into());
        assert!(matches!(
            Config::resolve(&args),
            Err(ConfigError::Value {
                field: "replica_url",
                ..
            })
        ));
        // Unset (or empty): no replica.
        args.replica_url = Some(String::new());
        assert_eq!(
            Config::resolve(&args).ok().map(|c| c.replica_url),
            Some(None)
        );
    }

    #[test]
    fn audit_checkpoint_interval_and_retention() {
        use crate::audit::checkpoint::AuditSettings;
        let c = Config::resolve(&ServeArgs::default()).ok().map(|c| c.audit);
        assert_eq!(c, Some(AuditSettings::default()));
        assert_eq!(
            c.map(|a| (a.checkpoint_events, a.checkpoint_seconds, a.retention_days)),
            Some((1000, 60, 400))
        );
        let dir = std::env::temp_dir().join(format!("tessera-config-audit-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let file = dir.join("a.toml");
        let _ = std::fs::write(
            &file,
            "audit_checkpoint_events = 50\naudit_checkpoint_seconds = 5\n",
        );
        let mut args = ServeArgs::default();
        args.store.config = Some(file);
        let c = Config::resolve(&args).ok().map(|c| c.audit);
        assert_eq!(
            c.map(|a| (a.checkpoint_events, a.checkpoint_seconds)),
            Some((50, 5))
        );
        // Flags win over the file.
        args.audit_checkpoint_events = Some(7);
        args.audit_retention_days = Some(365);
        let c = Config::resolve(&args).ok().map(|c| c.audit);
        assert_eq!(
            c.map(|a| (a.checkpoint_events, a.checkpoint_seconds, a.retention_days)),
            Some((7, 5, 365))
        );
        for (field, set) in [
            ("audit_checkpoint_events", (Some(0), None, None)),
            ("audit_checkpoint_seconds", (None, Some(0), None)),
            ("audit_checkpoint_seconds", (None, Some(86_401), None)),
            ("audit_retention_days", (None, None, Some(89))),
        ] {
            let mut a = ServeArgs::default();
            (
                a.audit_checkpoint_events,
                a.audit_checkpoint_seconds,
                a.audit_retention_days,
            ) = set;
            assert!(
                matches!(Config::resolve(&a), Err(ConfigError::Value { field: f, .. }) if f == field),
                "{field}"
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn master_key_source_flags() {
        use tessera_token::MasterKeySource as S;
        let c = Config::resolve(&ServeArgs::default()).ok();
        assert_eq!(
            c.map(|c| c.master_key),
            Some(S::File(PathBuf::from("tessera-data/master.key")))
        );
        let mut args = ServeArgs::default();
        args.store.master_key_env = Some("MK".into());
        assert_eq!(
            Config::resolve(&args).ok().map(|c| c.master_key),
            Some(S::Env("MK".into()))
        );
        args.store.master_key_command = Some("vault kv get -field=k secret/t".into());
        let err = Config::resolve(&args).err().map(|e| e.to_string());
        assert!(
            err.as_deref().is_some_and(|e| e.contains("set only one")),
            "{err:?}"
        );
        // A command line is never echoed (it may carry a token).
        assert!(err.is_some_and(|e| !e.contains("vault")));
        let mut args = ServeArgs::default();
        args.store.master_key_command = Some("  ".into());
        assert!(Config::resolve(&args).is_err());
    }

    #[test]
    fn defaults_then_file_then_flags() {
        let c = Config::resolve(&ServeArgs::default()).ok();
        let c = c.as_ref();
        assert_eq!(
            c.map(|c| c.listen.to_string()).as_deref(),
            Some("127.0.0.1:8080")
        );
        assert_eq!(c.map(|c| c.issuer.as_str()), Some("http://127.0.0.1:8080"));
        assert_eq!(
            c.map(|c| c.database_url.as_str()),
            Some("sqlite://tessera-data/tessera.db")
        );

        let dir = std::env::temp_dir().join(format!("tessera-config-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let file = dir.join("t.toml");
        let _ = std::fs::write(
            &file,
            "listen = \"127.0.0.1:9000\"\ndata_dir = \"/var/lib/t\"\n",
        );
        let mut args = ServeArgs::default();
        args.store.config = Some(file.clone());
        let c = Config::resolve(&args).ok();
        assert_eq!(c.as_ref().map(|c| c.listen.port()), Some(9000));
        assert_eq!(
            c.as_ref().map(|c| c.database_url.as_str()),
            Some("sqlite:///var/lib/t/tessera.db")
        );
        args.listen = Some("127.0.0.1:9100".into());
        assert_eq!(
            Config::resolve(&args).ok().map(|c| c.listen.port()),
            Some(9100)
        );

        let _ = std::fs::write(
            &file,
            "header_timeout_secs = 3\nmax_connections_per_ip = 7\nmetrics_public = true\n",
        );
        let c = Config::resolve(&args).ok();
        assert_eq!(
            c.as_ref().map(|c| (
                c.net.header_timeout.as_secs(),
                c.net.body_timeout.as_secs(),
                c.net.idle_timeout.as_secs(),
                c.net.max_connections,
                c.net.max_connections_per_ip,
                c.metrics_public
            )),
            Some((3, 30, 60, 10_000, 7, true))
        );
        args.header_timeout_secs = Some(4);
        assert_eq!(
            Config::resolve(&args)
                .ok()
                .map(|c| c.net.header_timeout.as_secs()),
            Some(4)
        );
        args.header_timeout_secs = Some(0);
        assert!(matches!(
            Config::resolve(&args),
            Err(ConfigError::Value {
                field: "header_timeout_secs",
                ..
            })
        ));
        args.header_timeout_secs = None;
        args.max_connections = Some(0);
        assert!(matches!(
            Config::resolve(&args),
            Err(ConfigError::Value {
                field: "max_connections",
                ..
            })
        ));
        args.max_connections = None;

        let _ = std::fs::write(&file, "listen = 5\n");
        assert!(matches!(
            Config::resolve(&args),
            Err(ConfigError::Parse { .. })
        ));
        let _ = std::fs::write(&file, "nope = 1\n");
        assert!(matches!(
            Config::resolve(&args),
            Err(ConfigError::Parse { .. })
        ));
        let _ = std::fs::remove_dir_all(&dir);
        args.store.config = None;
        args.listen = Some("not an address".into());
        assert!(matches!(
            Config::resolve(&args),
            Err(ConfigError::Value {
                field: "listen",
                ..
            })
        ));
    }
}
