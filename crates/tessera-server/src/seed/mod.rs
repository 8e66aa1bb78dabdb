//! `tessera dev seed`: fills the configured database with a synthetic platform (agencies,
//! accounts, users, custom roles, bindings, API keys, apps, installations) as the server
//! writes them, for load tests and sizing. The rows are in `plan`, the credentials file in
//! `emit`, the writing in `tessera_store::bulk` (PostgreSQL `COPY` as the tables' owner,
//! SQLite multi-row `INSERT`s).
//!
//! INVARIANT: a database that already holds agencies is refused unless `--append`; every batch
//! is one transaction; the revision is bumped once at the end, so running nodes drop their
//! caches. No audit events are written: the seeded agencies' chains start empty (and verify).

pub mod emit;
pub mod plan;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use serde_json::json;
use sha2::{Digest, Sha256};
use tessera_store::bulk::{BulkLoad, BulkTable};

use crate::clock::{Clock, SystemClock};
use crate::config::{Config, StoreArgs};
use plan::{Counts, Plan};

/// The created_at of a reproducible (`--seed`) dataset: 2026-01-01T00:00:00Z.
const FIXED_TIME_MS: i64 = 1_767_225_600_000;

/// Dataset sizes used when the counts are not given.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Preset {
    /// 100k agencies, 1M accounts, 1M users, 10M bindings, 200k API keys, 50k apps, 500k
    /// installations.
    Full,
    /// 1k agencies and the same ratios (10k accounts, 100k bindings, …).
    Small,
}

/// `tessera dev …`.
#[derive(Debug, clap::Subcommand)]
pub enum DevCommand {
    /// Fill the configured database with a synthetic platform (`--agencies N` and the other
    /// counts), through COPY on PostgreSQL (run it with the tables' owner url, as `migrate`);
    /// `--emit FILE` writes credentials to use against it (format: docs/SEEDING.md)
    Seed(Box<SeedArgs>),
}

/// `tessera dev seed`.
#[derive(Debug, clap::Args)]
pub struct SeedArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Agencies [default: from `--preset`]
    #[arg(long, value_name = "N")]
    pub agencies: Option<u64>,
    /// Accounts in all [default: 10 per agency]
    #[arg(long, value_name = "N")]
    pub accounts: Option<u64>,
    /// Users in all [default: 10 per agency]
    #[arg(long, value_name = "N")]
    pub users: Option<u64>,
    /// Role bindings in all [default: 100 per agency]
    #[arg(long, value_name = "N")]
    pub bindings: Option<u64>,
    /// API keys in all [default: 2 per agency]
    #[arg(long, value_name = "N")]
    pub api_keys: Option<u64>,
    /// OAuth apps in all, half marketplace, half private [default: 1 per 2 agencies]
    #[arg(long, value_name = "N")]
    pub apps: Option<u64>,
    /// App installations in all [default: 5 per agency]
    #[arg(long, value_name = "N")]
    pub installations: Option<u64>,
    /// Sizes when `--agencies` is not given [default: full on PostgreSQL, small on SQLite]
    #[arg(long, value_enum)]
    pub preset: Option<Preset>,
    /// Make the dataset reproducible (the same ids and secrets for the same seed and
    /// database): never on a database anyone else can reach, as its secrets are predictable
    #[arg(long, value_name = "S")]
    pub seed: Option<u64>,
    /// Add to a database that already holds agencies
    #[arg(long)]
    pub append: bool,
    /// Write credentials to use against the data as JSON Lines (mode 0600), one per agency
    #[arg(long, value_name = "FILE")]
    pub emit: Option<PathBuf>,
    /// With `--emit`: only this many agencies, spread evenly
    #[arg(long, value_name = "K", requires = "emit")]
    pub emit_sample: Option<u64>,
    /// Rows per transaction
    #[arg(long, default_value_t = 50_000, value_name = "ROWS", value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub batch_rows: u64,
}

impl SeedArgs {
    /// The counts: given, or the preset's agencies with the per-agency ratios.
    pub fn counts(&self, postgres: bool) -> Counts {
        let preset = self.preset.unwrap_or(if postgres {
            Preset::Full
        } else {
            Preset::Small
        });
        let n = self.agencies.unwrap_or(match preset {
            Preset::Full => 100_000,
            Preset::Small => 1_000,
        });
        Counts {
            agencies: n,
            accounts: self.accounts.unwrap_or(n.saturating_mul(10)),
            users: self.users.unwrap_or(n.saturating_mul(10)),
            bindings: self.bindings.unwrap_or(n.saturating_mul(100)),
            api_keys: self.api_keys.unwrap_or(n.saturating_mul(2)),
            apps: self.apps.unwrap_or(n.div_ceil(2)),
            installations: self.installations.unwrap_or(n.saturating_mul(5)),
        }
    }
}

/// One table's progress display: a bar on a terminal, a line when done otherwise.
struct Progress {
    bar: indicatif::ProgressBar,
    plain: bool,
}

impl Progress {
    fn new(table: BulkTable, total: u64, plain: bool) -> Self {
        let bar = if plain {
            indicatif::ProgressBar::hidden()
        } else {
            indicatif::ProgressBar::new(total)
        };
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{prefix:>16} [{bar:32}] {pos:>9}/{len:9} rows {per_sec:>12} {elapsed_precise}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix(table.name());
        Self { bar, plain }
    }
}

/// Runs `tessera dev …`; `json`: one JSON document on stdout instead of lines.
pub async fn run(cmd: DevCommand, json: bool) -> anyhow::Result<()> {
    let DevCommand::Seed(args) = cmd;
    seed(&args, json).await
}

/// Opens the store as `serve` does (data dir 0700, master keys from their source), migrated.
async fn open(
    config: &Config,
) -> anyhow::Result<(Arc<crate::secrets::MasterRing>, tessera_store::Connected)> {
    use std::os::unix::fs::DirBuilderExt;
    if !config.data_dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&config.data_dir)
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot create data dir `{}`: {e}",
                    config.data_dir.display()
                )
            })?;
    }
    let (ring, _) = crate::secrets::MasterRing::from_source(config.master_key.clone())
        .map_err(|e| anyhow::anyhow!("{e} ({})", e.code()))?;
    let connected = tessera_store::connect(&config.database_url).await?;
    connected.store.migrate().await?;
    Ok((Arc::new(ring), connected))
}

/// The configured catalog (the built-in one by default).
fn catalog(config: &Config) -> anyhow::Result<tessera_core::Catalog> {
    Ok(match config.catalog.as_deref() {
        None => tessera_core::Catalog::default_catalog()?,
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .map_err(|e| anyhow::anyhow!("cannot read catalog `{}`: {e}", p.display()))?;
            tessera_core::Catalog::from_toml(&p.display().to_string(), &text)?
        }
    })
}

async fn seed(args: &SeedArgs, json: bool) -> anyhow::Result<()> {
    let config = Config::resolve_store(&args.store)?;
    let (ring, connected) = open(&config).await?;
    let postgres = connected.store.backend() == "postgres";
    let wall = SystemClock.now();
    let material = crate::secrets::Material::load(connected.store.as_ref(), ring, wall).await?;
    let pepper = material
        .root
        .current_pepper()
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("no live pepper in the stored secrets"))?;
    drop(material);
    let bulk: Arc<dyn BulkLoad> = tessera_store::bulk::open_bulk(&config.database_url)
        .await?
        .into();
    let existing = bulk.agencies().await?;
    if existing > 0 && !args.append {
        anyhow::bail!("the database already holds {existing} agencies: `tessera dev seed` fills an empty database; pass `--append` to add to it");
    }
    let (key, now) = match args.seed {
        Some(s) => {
            let mut h = Sha256::new();
            h.update(b"tessera dev seed\0");
            h.update(s.to_be_bytes());
            h.update(existing.to_be_bytes());
            (h.finalize().into(), FIXED_TIME_MS)
        }
        None => {
            let mut k = [0u8; 32];
            rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut k);
            (k, wall)
        }
    };
    let plan = Arc::new(
        Plan::new(args.counts(postgres), key, now, pepper).map_err(|e| anyhow::anyhow!(e))?,
    );
    let plain = !std::io::stdout().is_terminal() || json;
    let started = Instant::now();
    let mut tables = Vec::new();
    for table in BulkTable::ALL {
        let t0 = Instant::now();
        let rows = load_table(&plan, bulk.clone(), table, args.batch_rows, plain).await?;
        let secs = t0.elapsed().as_secs_f64();
        if plain && !json {
            println!("{:>16}: {rows} rows in {secs:.1} s", table.name());
        }
        tables.push(json!({ "table": table.name(), "rows": rows, "seconds": secs }));
    }
    // Statistics and visibility before the first node reads the tables, so that a benchmark
    // run right after seeding does not meet autovacuum's first pass over them.
    let t0 = Instant::now();
    for table in BulkTable::ALL {
        bulk.settle(table).await?;
    }
    let settle_seconds = t0.elapsed().as_secs_f64();
    if plain && !json {
        let how = if postgres {
            "VACUUM (ANALYZE)"
        } else {
            "ANALYZE"
        };
        println!("{how} of every table in {settle_seconds:.1} s");
    }
    let revision = bulk
        .bump_revision(
            plan.agency_id(0).as_str(),
            "dev.seed",
            &format!("{} agencies", plan.counts.agencies),
            now,
        )
        .await?;
    if let Some(path) = &args.emit {
        let catalog = catalog(&config)?;
        let which = emit::chosen(plan.counts.agencies, args.emit_sample);
        emit::write(path, &plan, &catalog, &which)?;
    }
    let seconds = started.elapsed().as_secs_f64();
    if json {
        println!(
            "{}",
            json!({ "ok": true, "backend": bulk.backend(), "counts": plan.counts, "tables": tables,
                    "settle_seconds": settle_seconds, "seconds": seconds, "revision": revision, "emitted": args.emit })
        );
    } else {
        println!(
            "seeded {} agencies on {} in {seconds:.1} s (revision {revision})",
            plan.counts.agencies,
            bulk.backend()
        );
        if let Some(p) = &args.emit {
            println!("credentials: {} (mode 0600)", p.display());
        }
    }
    Ok(())
}

/// Streams one table: a blocking thread makes the batches, this task writes them (so
/// generating and writing overlap on two cores). Returns the rows written.
async fn load_table(
    plan: &Arc<Plan>,
    bulk: Arc<dyn BulkLoad>,
    table: BulkTable,
    batch_rows: u64,
    plain: bool,
) -> anyhow::Result<u64> {
    let progress = Progress::new(table, plan.total(table), plain);
    let (tx, mut rx) = tokio::sync::mpsc::channel(2);
    let gen_plan = plan.clone();
    let batch = usize::try_from(batch_rows).unwrap_or(50_000);
    let producer = tokio::task::spawn_blocking(move || {
        let mut rows = Vec::with_capacity(batch + 1024);
        for i in 0..gen_plan.counts.agencies {
            gen_plan.rows(table, i, &mut rows);
            if rows.len() >= batch {
                let full = std::mem::replace(&mut rows, Vec::with_capacity(batch + 1024));
                if tx.blocking_send(full).is_err() {
                    return;
                }
            }
        }
        if !rows.is_empty() {
            let _ = tx.blocking_send(rows);
        }
    });
    let mut written = 0u64;
    while let Some(rows) = rx.recv().await {
        bulk.load(table, &rows)
            .await
            .map_err(|e| anyhow::anyhow!("writing {} (after {written} rows): {e}", table.name()))?;
        written += rows.len() as u64;
        progress.bar.inc(rows.len() as u64);
    }
    producer.await?;
    if !progress.plain {
        progress.bar.finish();
    }
    Ok(written)
}
