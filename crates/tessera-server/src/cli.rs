//! The `tessera` command line: `serve`, `migrate`, `catalog validate`, `keys`, `policies`,
//! `audit verify`, `dev seed`. Every
//! command that prints a result takes `--output json`. Exit codes: 0 success, 1 the command
//! failed (its message says why), 2 a usage error. Operations that a route also offers run the
//! same use case (`crate::usecase`) as the operator (`usecase::actor::Operator`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand, ValueEnum};
use serde_json::json;
use tessera_core::Catalog;

use crate::clock::{Clock, SystemClock};
use crate::config::{Config, LogFormat, ServeArgs, StoreArgs};
use crate::error::{ApiError, ErrorCode};
use crate::http::state::AppState;
use crate::usecase;
use crate::usecase::actor::{Actor, Operator};

/// Tessera: identity, token and authorization server for multi-tenant SaaS platforms.
#[derive(Debug, Parser)]
#[command(name = "tessera", version, about)]
pub struct Cli {
    /// How results are printed
    #[arg(long, global = true, value_enum, default_value = "text")]
    pub output: Output,
    #[command(subcommand)]
    pub command: Command,
}

/// Result format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Lines for people.
    Text,
    /// One JSON document.
    Json,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (SQLite in ./tessera-data with no configuration)
    Serve(Box<ServeArgs>),
    /// Apply database migrations and exit. On PostgreSQL, run it as the tables' owner and name
    /// the role the server runs as with `--grant-to`: that role gets row access only, so it
    /// cannot turn row-level security off
    Migrate(MigrateArgs),
    /// Work with catalogs
    #[command(subcommand)]
    Catalog(CatalogCommand),
    /// Work with the token-signing keys
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Work with audit exports offline: `tessera audit verify --export FILE --keys FILE`
    #[command(subcommand)]
    Audit(crate::audit::offline::AuditCommand),
    /// An agency's Cedar policies, offline against the database: the way back in when a
    /// policy locked everyone out (break-glass; each deletion is audited in the agency)
    #[command(subcommand)]
    Policies(PoliciesCommand),
    /// Development and benchmarking tools: `tessera dev seed --agencies N`
    #[command(subcommand)]
    Dev(crate::seed::DevCommand),
}

/// `tessera policies …`.
#[derive(Debug, Subcommand)]
pub enum PoliciesCommand {
    /// List an agency's policies
    List {
        /// The agency (`agy_…`)
        #[arg(long, value_name = "AGENCY")]
        agency: tessera_core::AgencyId,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Delete one of an agency's policies
    Delete {
        /// The agency (`agy_…`)
        #[arg(long, value_name = "AGENCY")]
        agency: tessera_core::AgencyId,
        /// The policy (`pol_…`)
        policy: tessera_core::PolicyId,
        /// Why, for the audit trail
        #[arg(long, default_value = "break-glass from the command line")]
        reason: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// `tessera migrate`.
#[derive(Debug, clap::Args)]
pub struct MigrateArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// PostgreSQL: after migrating, grant this role row access to every table (the role the
    /// server runs as, which must own nothing)
    #[arg(long, value_name = "ROLE")]
    pub grant_to: Option<String>,
}

/// `tessera keys …`.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Publish a new signing key now; it signs after the publish-ahead period
    Rotate(StoreArgs),
    /// List the signing keys (never their private parts)
    List(StoreArgs),
    /// Rewrap every stored secret and agency data key under the master key source's FIRST key
    /// (servers keep running; the source holds the new key first, the old one after), then
    /// retire the old keys no row uses any more (they may then leave the source)
    RotateMaster {
        #[command(flatten)]
        store: StoreArgs,
        /// Pause between verification passes, in milliseconds (lets nodes that still wrap
        /// under the old key notice the new one)
        #[arg(long, default_value_t = 1000, value_name = "MS")]
        settle_ms: u64,
    },
    /// Add a new random pepper version (new credentials hash under it; older ones are rehashed
    /// on next use), and retire older versions no stored hash uses
    RotatePepper {
        #[command(flatten)]
        store: StoreArgs,
        /// Retire only versions superseded at least this long ago (covers the short-lived
        /// authorization codes, whose hashes carry no version)
        #[arg(long, default_value_t = 3600, value_name = "SECS")]
        retire_after_secs: u64,
        /// Only retire unused versions, add none
        #[arg(long)]
        retire_only: bool,
    },
}

/// `tessera catalog …`.
#[derive(Debug, Subcommand)]
pub enum CatalogCommand {
    /// Validate a catalog file and report every problem
    Validate {
        /// The catalog TOML file
        file: PathBuf,
    },
}

/// Runs the CLI.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let output = cli.output;
    let result = match cli.command {
        Command::Catalog(CatalogCommand::Validate { file }) => validate_catalog(&file, output),
        Command::Migrate(args) => runtime().and_then(|rt| rt.block_on(migrate(&args, output))),
        Command::Policies(cmd) => runtime().and_then(|rt| rt.block_on(policies(cmd, output))),
        Command::Serve(args) => {
            crate::hugepages::restart_with_huge_pages("TESSERA_HUGE_PAGES");
            runtime().and_then(|rt| rt.block_on(serve(&args)))
        }
        Command::Keys(cmd) => runtime().and_then(|rt| rt.block_on(keys(cmd, output))),
        Command::Audit(cmd) => crate::audit::offline::run(cmd, output == Output::Json),
        Command::Dev(cmd) => {
            runtime().and_then(|rt| rt.block_on(crate::seed::run(cmd, output == Output::Json)))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            match output {
                Output::Json => println!("{}", json!({ "ok": false, "error": format!("{e:#}") })),
                Output::Text => eprintln!("error: {e:#}"),
            }
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

fn load_catalog(path: Option<&Path>) -> anyhow::Result<Catalog> {
    Ok(match path {
        None => Catalog::default_catalog()?,
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .map_err(|e| anyhow::anyhow!("cannot read catalog `{}`: {e}", p.display()))?;
            Catalog::from_toml(&p.display().to_string(), &text)?
        }
    })
}

fn validate_catalog(file: &Path, output: Output) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| anyhow::anyhow!("cannot read catalog `{}`: {e}", file.display()))?;
    match Catalog::from_toml(&file.display().to_string(), &text) {
        Ok(c) => {
            let f = c.file();
            match output {
                Output::Json => println!(
                    "{}",
                    json!({
                        "ok": true, "file": file.display().to_string(), "resources": f.resources.len(),
                        "permissions": f.permissions.len(), "scopes": f.scopes.len(), "roles": f.roles.len(),
                    })
                ),
                Output::Text => println!(
                    "{}: valid ({} resources, {} permissions, {} scopes, {} roles)",
                    file.display(),
                    f.resources.len(),
                    f.permissions.len(),
                    f.scopes.len(),
                    f.roles.len()
                ),
            }
            Ok(())
        }
        Err(e) => {
            if output == Output::Json {
                let problems: Vec<_> = e
                    .problems
                    .iter()
                    .map(|p| json!({ "entry": p.entry, "problem": p.problem }))
                    .collect();
                println!(
                    "{}",
                    json!({ "ok": false, "file": e.file, "problems": problems })
                );
                // The JSON above is the whole answer.
                std::process::exit(1);
            }
            Err(e.into())
        }
    }
}

fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TESSERA_LOG")
        .unwrap_or_else(|_| "info,sqlx=warn".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

async fn open_store(config: &Config) -> anyhow::Result<tessera_store::Connected> {
    if config.database_url.starts_with("sqlite:") {
        create_private_dir(&config.data_dir)?;
    }
    Ok(tessera_store::connect(&config.database_url).await?)
}

/// Creates the data dir mode 0700 (an existing one open to others is reported, not changed:
/// it may be a directory the operator shares on purpose).
pub fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| anyhow::anyhow!("cannot create data dir `{}`: {e}", dir.display()))?;
    } else if let Ok(meta) = std::fs::metadata(dir) {
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(path = %dir.display(), "the data dir is open to other users: make it mode 0700");
        }
    }
    Ok(())
}

/// The data dir (0700), the master keys from their source (a key file is created 0600 on
/// first start: the flag says so) and the store (a SQLite database is created 0600), as
/// `serve` opens them.
pub async fn open_data(
    config: &Config,
) -> anyhow::Result<(
    Arc<crate::secrets::MasterRing>,
    bool,
    tessera_store::Connected,
)> {
    create_private_dir(&config.data_dir)?;
    let (ring, created) = open_master(config)?;
    let store = open_store(config).await?;
    Ok((Arc::new(ring), created, store))
}

/// The master keys from the configured source; a failure names its stable code.
fn open_master(config: &Config) -> anyhow::Result<(crate::secrets::MasterRing, bool)> {
    crate::secrets::MasterRing::from_source(config.master_key.clone())
        .map_err(|e| anyhow::anyhow!("{e} ({})", e.code()))
}

async fn migrate(args: &MigrateArgs, output: Output) -> anyhow::Result<()> {
    let config = Config::resolve_store(&args.store)?;
    let store = open_store(&config).await?.store;
    let applied = store.migrate().await?;
    if let Some(role) = &args.grant_to {
        tessera_store::grant_runtime_role(&config.database_url, role).await?;
    }
    match output {
        Output::Json => println!(
            "{}",
            json!({ "ok": true, "backend": store.backend(), "applied": applied, "granted_to": args.grant_to })
        ),
        Output::Text => {
            println!("{}: {applied} migration(s) applied", store.backend());
            if let Some(role) = &args.grant_to {
                println!("granted row access to `{role}`");
            }
        }
    }
    Ok(())
}

async fn policies(cmd: PoliciesCommand, output: Output) -> anyhow::Result<()> {
    let (PoliciesCommand::List { agency, store } | PoliciesCommand::Delete { agency, store, .. }) =
        &cmd;
    let config = Config::resolve_store(store)?;
    let tessera_store::Connected { store, mint } = open_store(&config).await?;
    store.migrate().await?;
    // The operator at the console holds the database's own mint.
    let admission = crate::gate::admission::Admission::new(mint);
    let (via, reason) = match &cmd {
        PoliciesCommand::List { .. } => ("tessera policies list", None),
        PoliciesCommand::Delete { reason, .. } => ("tessera policies delete", Some(reason.clone())),
    };
    // The operator at the console is the authority here, as with the database itself.
    let operator = Operator::in_agency(store.as_ref(), &admission, agency.clone(), via, reason)
        .await
        .map_err(|e| match e.code {
            ErrorCode::NotFound => anyhow::anyhow!("no agency `{agency}` in this database"),
            _ => failed(e),
        })?;
    let actor = Actor::Operator(&operator);
    match &cmd {
        PoliciesCommand::List { .. } => {
            let mut all = Vec::new();
            let mut page = tessera_store::PageRequest {
                limit: 200,
                cursor: None,
            };
            loop {
                let p = usecase::policies::list(store.as_ref(), actor, &page)
                    .await
                    .map_err(failed)?;
                all.extend(p.items);
                match p.next_cursor {
                    Some(c) => page.cursor = Some(c),
                    None => break,
                }
            }
            match output {
                Output::Json => println!("{}", json!({ "ok": true, "items": all })),
                Output::Text => {
                    for p in &all {
                        println!("{}  {}\n{}\n", p.id, p.description, p.cedar.trim());
                    }
                    println!(
                        "{} polic{}",
                        all.len(),
                        if all.len() == 1 { "y" } else { "ies" }
                    );
                }
            }
        }
        PoliciesCommand::Delete { policy, .. } => {
            usecase::policies::remove(store.as_ref(), &SystemClock, actor, policy)
                .await
                .map_err(|e| match e.code {
                    ErrorCode::NotFound => {
                        anyhow::anyhow!("no policy `{policy}` in agency `{agency}`")
                    }
                    _ => failed(e),
                })?;
            match output {
                Output::Json => println!("{}", json!({ "ok": true, "deleted": policy })),
                Output::Text => println!("deleted {policy} (audited in {agency})"),
            }
        }
    }
    Ok(())
}

/// A use case's error as the command's failure (its message; the cause of a 5xx is logged).
fn failed(e: ApiError) -> anyhow::Error {
    anyhow::anyhow!("{} ({})", e.detail, e.code.as_str())
}

async fn keys(cmd: KeysCommand, output: Output) -> anyhow::Result<()> {
    let (KeysCommand::Rotate(args)
    | KeysCommand::List(args)
    | KeysCommand::RotateMaster { store: args, .. }
    | KeysCommand::RotatePepper { store: args, .. }) = &cmd;
    let config = Config::resolve_store(args)?;
    let tessera_store::Connected { store, mint } = open_store(&config).await?;
    store.migrate().await?;
    let (ring, _) = open_master(&config)?;
    let ring = Arc::new(ring);
    let now = SystemClock.now();
    let admission = Arc::new(crate::gate::admission::Admission::new(mint));
    match &cmd {
        KeysCommand::RotateMaster { settle_ms, .. } => {
            // First make sure the stored secrets exist (an installation that never started
            // since they were introduced stores them from the current derivations).
            crate::secrets::Material::load(store.as_ref(), ring.clone(), now).await?;
            let report = crate::secrets::rotate::rotate_master(
                store.as_ref(),
                &ring,
                &admission,
                now,
                std::time::Duration::from_millis(*settle_ms),
            )
            .await
            .map_err(|e| anyhow::anyhow!("{e} ({})", e.code()))?;
            match output {
                Output::Json => println!("{}", json!({ "ok": true, "rotation": report })),
                Output::Text => println!(
                    "active master key {}: {} secret(s) and {} data key(s) rewrapped; retired: {}",
                    report.active,
                    report.secrets_rewrapped,
                    report.data_keys_rewrapped,
                    if report.retired.is_empty() {
                        "none".to_owned()
                    } else {
                        report.retired.join(", ")
                    }
                ),
            }
            return Ok(());
        }
        KeysCommand::RotatePepper {
            retire_after_secs,
            retire_only,
            ..
        } => {
            crate::secrets::Material::load(store.as_ref(), ring.clone(), now).await?;
            let report = crate::secrets::rotate::rotate_pepper(
                store.as_ref(),
                &ring,
                &admission,
                now,
                std::time::Duration::from_secs(*retire_after_secs),
                *retire_only,
            )
            .await
            .map_err(|e| anyhow::anyhow!("{e} ({})", e.code()))?;
            match output {
                Output::Json => println!("{}", json!({ "ok": true, "rotation": report })),
                Output::Text => println!(
                    "new pepper version: {}; retired: {:?}; kept (still in use or too recent): {:?}",
                    report.created.map_or("none".to_owned(), |v| v.to_string()),
                    report.retired,
                    report.kept
                ),
            }
            return Ok(());
        }
        KeysCommand::Rotate(_) | KeysCommand::List(_) => {}
    }
    let material = crate::secrets::Material::load(store.as_ref(), ring, now).await?;
    let keys = crate::keys::Keys::new(
        store,
        material.root.signing_kek.clone(),
        tessera_token::RotationPolicy::default(),
        admission,
    );
    if matches!(cmd, KeysCommand::Rotate(_)) {
        let steps = usecase::signing_keys::rotate(&keys, &SystemClock).await?;
        if output == Output::Text {
            println!("{steps} rotation step(s) applied");
        }
    }
    let list = usecase::signing_keys::list(&keys).await?;
    match output {
        Output::Json => println!("{}", json!({ "ok": true, "keys": list })),
        Output::Text => {
            for k in &list {
                println!(
                    "{}  {}  {}  activates_at={}",
                    k["kid"].as_str().unwrap_or("?"),
                    k["alg"].as_str().unwrap_or("?"),
                    k["state"].as_str().unwrap_or("?"),
                    k["activates_at"]
                );
            }
        }
    }
    Ok(())
}

async fn serve(args: &ServeArgs) -> anyhow::Result<()> {
    let config = Config::resolve(args)?;
    init_logs(config.log_format);
    // Handlers first: a SIGTERM during start-up must stop the server, not kill it mid-write.
    let shutdown = shutdown_signal()?;
    let catalog = load_catalog(config.catalog.as_deref())?;
    let (ring, created, store) = open_data(&config).await?;
    if created {
        tracing::info!(source = %config.master_key.describe(), "created a new master key (keep it safe: it protects every stored credential)");
    }
    let applied = store.store.migrate().await?;
    tracing::info!(backend = store.store.backend(), applied, "store ready");
    let material =
        crate::secrets::Material::load(store.store.as_ref(), ring, SystemClock.now()).await?;
    tracing::info!(source = %config.master_key.describe(), peppers = material.root.peppers.len(), "secrets ready");
    let mut settings = crate::services::EngineSettings {
        cache_bytes: config.authz_cache_mb << 20,
        oauth: crate::oauth::settings::OAuthSettings {
            issuer: config.issuer.clone(),
            access_ttl: std::time::Duration::from_secs(
                u64::try_from(config.access_token_ttl).unwrap_or(0),
            ),
            refresh_reuse_grace: std::time::Duration::from_millis(
                u64::try_from(config.refresh_reuse_grace_ms).unwrap_or(0),
            ),
            ..Default::default()
        },
        password_workers: config.password_workers,
        http: crate::net::HttpSettings {
            net: config.net,
            metrics_public: config.metrics_public,
            proxies: Arc::new(config.proxies.clone()),
        },
        redis: config.redis.clone(),
        rate_limits: config.rate_limits.clone(),
        forward_auth: config.forward_auth.clone(),
        audit: config.audit,
        webhooks: config.webhooks.clone(),
        jobs: config.jobs,
        ..Default::default()
    };
    if let Some(url) = &config.replica_url {
        // The same role checks as the primary's: row-level security must apply there too.
        settings.replica = Some(tessera_store::connect_replica(&config.database_url, url).await?);
        tracing::info!("read replica ready");
    }
    if config.webhooks.allow_private_targets {
        tracing::warn!("webhooks may reach internal addresses (--webhook-allow-private-targets)");
    }
    if let Some(p) = &config.policies {
        let text = std::fs::read_to_string(p)
            .map_err(|e| anyhow::anyhow!("cannot read policies `{}`: {e}", p.display()))?;
        settings
            .platform_policies
            .push((format!("platform:{}", p.display()), text));
    }
    let state =
        AppState::with_material(store, catalog, &material, Arc::new(SystemClock), settings)?;
    drop(material);
    if let Some(path) = crate::bootstrap::ensure(&state, &config.data_dir).await? {
        tracing::info!(path = %path.display(), "first start: platform admin API key written (mode 0600)");
    }
    // After bootstrap, so even the first key's creation is in the platform's audit chain.
    let steps = state.keys.maintain(state.clock.now() / 1000).await?;
    tracing::info!(steps, "signing keys ready");
    let steps = state.audit_keys.maintain(state.clock.now() / 1000).await?;
    tracing::info!(steps, "audit keys ready");
    // Warm the dummy password hash so the first sign-in is not slower than the rest.
    tokio::task::spawn_blocking(|| tessera_token::verify_dummy("warm-up")).await?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.listen))?;
    if !config.proxies.is_empty() {
        let ranges: Vec<String> = config
            .proxies
            .ranges()
            .iter()
            .map(ToString::to_string)
            .collect();
        tracing::info!(ranges = %ranges.join(","), "forwarding headers are read from these proxies only");
    }
    tracing::info!(listen = %listener.local_addr()?, issuer = %config.issuer, "tessera listening");
    if let Some(fds) = open_files_limit() {
        if config.net.max_connections.saturating_add(64) > fds {
            tracing::warn!(max_connections = config.net.max_connections, open_files_limit = fds, "--max-connections is near or above the open-files limit: raise `ulimit -n` or lower the cap, so that the cap, not running out of descriptors, turns clients away");
        }
    }
    if config.metrics_public {
        tracing::warn!(
            "/metrics is public (--metrics-public): keep the port off untrusted networks"
        );
    }
    crate::run(listener, state, shutdown).await?;
    tracing::info!("stopped");
    Ok(())
}

/// The soft limit on open files (Linux: `/proc/self/limits`), if known.
fn open_files_limit() -> Option<usize> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {},
            _ = int.recv() => {},
        }
        tracing::info!("shutting down: finishing in-flight requests");
    })
}
