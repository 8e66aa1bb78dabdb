//! `peers`: the same agencies, bindings and sampled checks decided by Tessera, by Cedar (two
//! encodings) and by casbin, each timed per call on the same samples, each checked against the
//! reference answer (every engine must agree on every sample).

pub mod casbin;
pub mod cedar;

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde_json::{json, Value};
use tessera_core::index::AgencyIndex;

use crate::data::{AgencyData, Draw, Sample, World};
use crate::stats::{self, human_ns, Percentiles};
use crate::tessera::{self, Entry, Indexes};

use self::casbin::CasbinPeer;
use self::cedar::{CedarPeer, Encoding};

/// What `peers` is asked to do.
#[derive(Clone, Debug, clap::Args)]
pub struct Args {
    /// Agencies to generate.
    #[arg(long, default_value_t = 100)]
    pub agencies: usize,
    /// Accounts per agency.
    #[arg(long, default_value_t = 100)]
    pub accounts_per_agency: usize,
    /// Role bindings per agency.
    #[arg(long, default_value_t = 1_000)]
    pub bindings_per_agency: usize,
    /// Distinct sampled checks, each decided once by every engine (Tessera: `--tessera-passes`).
    #[arg(long, default_value_t = 5_000)]
    pub samples: usize,
    /// Passes of Tessera over the samples (its calls are too fast for one pass to give a p99).
    #[arg(long, default_value_t = 20)]
    pub tessera_passes: usize,
    /// Seconds of timed calls per peer at most (the slowest stop early; Tessera always finishes).
    #[arg(long, default_value_t = 60)]
    pub budget_s: u64,
    /// Untimed calls per engine before timing.
    #[arg(long, default_value_t = 200)]
    pub warmup: usize,
    /// Seed of the generator.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// One engine's results.
#[derive(Debug)]
struct Row {
    engine: &'static str,
    size: String,
    build_s: f64,
    rss_delta: u64,
    latency: Percentiles,
    disagreements: usize,
}

fn timed_build<T>(f: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<(T, f64, u64)> {
    let rss = stats::rss_bytes().unwrap_or(0);
    let start = Instant::now();
    let built = f()?;
    let secs = start.elapsed().as_secs_f64();
    Ok((
        built,
        secs,
        stats::rss_bytes().unwrap_or(0).saturating_sub(rss),
    ))
}

/// Runs `peers`; returns the results as JSON and as Markdown.
pub fn run(args: &Args) -> anyhow::Result<(Value, String)> {
    let world = World::new()?;
    let n = args.agencies.max(1);
    eprintln!(
        "peers: {n} agencies × {} accounts × {} bindings, {} samples",
        args.accounts_per_agency, args.bindings_per_agency, args.samples
    );
    let mut rng = StdRng::seed_from_u64(args.seed);
    let agencies: Vec<AgencyData> = (0..n)
        .map(|_| {
            AgencyData::generate(
                &world,
                &mut rng,
                args.accounts_per_agency,
                args.bindings_per_agency,
            )
        })
        .collect();
    let per_agency = args.samples.div_ceil(n);
    let mut samples: Vec<Sample> = Vec::with_capacity(args.samples);
    for (i, a) in agencies.iter().enumerate() {
        let prev = &agencies[(i + n - 1) % n];
        let other = (n > 1).then(|| (&prev.agency, &prev.accounts[0]));
        for _ in 0..per_agency {
            samples.extend(a.sample(&world, &mut rng, Draw::Mixed, other));
        }
    }
    samples.truncate(args.samples);
    samples.shuffle(&mut rng);
    let allowed = samples.iter().filter(|s| s.expect).count();

    let mut rows = Vec::new();
    eprintln!("  building Tessera indexes");
    let (map, build_s, rss_delta) = timed_build(|| {
        let mut map: Indexes = tessera_core::fastmap::with_capacity(n);
        for a in &agencies {
            let (index, _) = AgencyIndex::build(
                a.agency.clone(),
                false,
                1,
                world.builtin.clone(),
                a.index_input(&world),
            );
            map.insert(
                a.agency.bits(),
                Entry {
                    index,
                    policies: None,
                },
            );
        }
        Ok(map)
    })?;
    let (latency, disagreements) = stats::time_each(
        &samples,
        args.tessera_passes.max(1),
        args.warmup.max(samples.len()),
        None,
        |s| tessera::check(&map, &world, s),
        |s| s.expect,
    );
    rows.push(Row {
        engine: "Tessera (`AgencyIndex`)",
        size: format!("{n} indexes"),
        build_s,
        rss_delta,
        latency,
        disagreements: disagreements / args.tessera_passes.max(1),
    });
    drop(map);

    let budget = Some(Duration::from_secs(args.budget_s.max(1)));
    for (engine, encoding) in [
        (
            "Cedar, entity tags, policy set per agency",
            Encoding::TagsPerAgency,
        ),
        ("Cedar, entity tags, one policy set", Encoding::Tags),
        ("Cedar, role groups, one policy set", Encoding::Groups),
    ] {
        eprintln!("  building {engine}");
        let (peer, build_s, rss_delta) =
            timed_build(|| CedarPeer::build(&world, &agencies, encoding))?;
        eprintln!(
            "  timing {engine}: {} policies, {} entities",
            peer.policy_count, peer.entity_count
        );
        let (latency, disagreements) = stats::time_each(
            &samples,
            1,
            args.warmup,
            budget,
            |s| peer.decide(&world, s),
            |s| s.expect,
        );
        rows.push(Row {
            engine,
            size: format!(
                "{} policies, {} entities",
                peer.policy_count, peer.entity_count
            ),
            build_s,
            rss_delta,
            latency,
            disagreements,
        });
    }

    eprintln!("  building casbin");
    let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    let (peer, build_s, rss_delta) =
        timed_build(|| runtime.block_on(CasbinPeer::build(&world, &agencies)))?;
    eprintln!("  timing casbin: {} p, {} g rows", peer.p_rows, peer.g_rows);
    let (latency, disagreements) = stats::time_each(
        &samples,
        1,
        args.warmup,
        budget,
        |s| peer.decide(&world, s),
        |s| s.expect,
    );
    rows.push(Row {
        engine: "casbin (RBAC with domains)",
        size: format!("{} `p` rows, {} `g` rows", peer.p_rows, peer.g_rows),
        build_s,
        rss_delta,
        latency,
        disagreements,
    });

    let tessera = rows[0].latency;
    let ratio = |a: u64, b: u64| a as f64 / b.max(1) as f64;
    let mut md = String::new();
    let _ = writeln!(
        md,
        "### Peers: {n} agencies, {} accounts, {} bindings; {} checks ({:.0}% allowed)\n",
        n * args.accounts_per_agency,
        n * args.bindings_per_agency,
        samples.len(),
        100.0 * allowed as f64 / samples.len().max(1) as f64
    );
    let _ = writeln!(
        md,
        "| engine | data | build | calls timed | p50 | p99 | peer ÷ Tessera p50 | peer ÷ Tessera p99 | disagreements |\n|---|---|---|---|---|---|---|---|---|"
    );
    let mut json_rows = Vec::new();
    for r in &rows {
        let _ = writeln!(
            md,
            "| {} | {} | {:.2} s | {} | {} | {} | {:.0}× | {:.0}× | {} |",
            r.engine,
            r.size,
            r.build_s,
            r.latency.count,
            human_ns(r.latency.p50),
            human_ns(r.latency.p99),
            ratio(r.latency.p50, tessera.p50),
            ratio(r.latency.p99, tessera.p99),
            r.disagreements
        );
        json_rows.push(json!({
            "engine": r.engine, "data": r.size, "build_s": r.build_s, "rss_delta_bytes": r.rss_delta,
            "latency": r.latency.json(), "disagreements": r.disagreements,
            "tessera_over_peer_p50": ratio(tessera.p50, r.latency.p50),
            "tessera_over_peer_p99": ratio(tessera.p99, r.latency.p99),
        }));
    }
    let out = json!({
        "command": "peers",
        "agencies": n,
        "accounts_per_agency": args.accounts_per_agency,
        "bindings_per_agency": args.bindings_per_agency,
        "samples": samples.len(),
        "allowed_share": allowed as f64 / samples.len().max(1) as f64,
        "tessera_passes": args.tessera_passes,
        "engines": json_rows,
    });
    Ok((out, md))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every engine decides every sample as the reference does, on a small dataset.
    #[test]
    fn all_engines_agree_on_a_small_dataset() {
        let args = Args {
            agencies: 3,
            accounts_per_agency: 4,
            bindings_per_agency: 40,
            samples: 300,
            tessera_passes: 1,
            budget_s: 600,
            warmup: 0,
            seed: 7,
        };
        let (out, md) = run(&args).unwrap();
        for e in out["engines"].as_array().unwrap() {
            assert_eq!(e["disagreements"], 0, "{md}");
        }
        assert_eq!(out["engines"].as_array().unwrap().len(), 5);
    }
}
