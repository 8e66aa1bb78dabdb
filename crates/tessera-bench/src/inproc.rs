//! `inproc`: builds one `AgencyIndex` per generated agency and measures warm in-process check
//! latency (per call), throughput (tight loop), memory, and the Cedar-condition path.
//!
//! Agencies are generated, indexed and dropped one at a time; only the indexes and a pool of
//! sampled checks (spread evenly over the agencies, then shuffled) stay in memory.

use std::fmt::Write as _;
use std::time::Instant;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{json, Map, Value};
use tessera_core::abac::{cedar_schema, PolicySet};
use tessera_core::index::AgencyIndex;
use tessera_core::{AccountId, AgencyId};

use crate::breakdown;
use crate::data::{AgencyData, Draw, Sample, World};
use crate::stats::{self, human_ns, mib};
use crate::tessera::{self, CondSample, Entry, Indexes};

/// The most distinct checks kept for the timed run (they are cycled through).
const MAX_POOL: usize = 200_000;
/// The most distinct checks kept for the Cedar-condition run.
const MAX_COND_POOL: usize = 20_000;
/// The permission the condition guards: every non-viewer role holds it.
pub const CONDITION_PERMISSION: &str = "contacts.write";
/// The condition: a platform-wide forbid on one action unless the request is MFA-backed.
pub const CONDITION_POLICY: &str = r#"forbid(principal, action == Tessera::Action::"contacts.write", resource) unless { context.mfa };"#;

/// What `inproc` is asked to do.
#[derive(Clone, Debug, clap::Args)]
pub struct Args {
    /// Agencies to generate.
    #[arg(long, default_value_t = 100)]
    pub agencies: usize,
    /// Accounts per agency.
    #[arg(long, default_value_t = 100)]
    pub accounts_per_agency: usize,
    /// Role bindings per agency (over bindings/5 users).
    #[arg(long, default_value_t = 1_000)]
    pub bindings_per_agency: usize,
    /// Individually timed checks.
    #[arg(long, default_value_t = 1_000_000)]
    pub samples: usize,
    /// Individually timed checks with the Cedar condition.
    #[arg(long, default_value_t = 200_000)]
    pub cedar_samples: usize,
    /// Seed of the generator.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

struct Built {
    map: Indexes,
    pool: Vec<Sample>,
    cond: Vec<CondSample>,
    wall_s: f64,
    index_build_s: f64,
    index_bytes: usize,
    skipped: usize,
    users: usize,
}

fn build(world: &World, args: &Args) -> anyhow::Result<Built> {
    let n = args.agencies.max(1);
    let mut rng = StdRng::seed_from_u64(args.seed);
    let pool_size = args.samples.clamp(1, MAX_POOL);
    let cond_size = args.cedar_samples.clamp(1, MAX_COND_POOL);
    let per_agency = pool_size.div_ceil(n);
    let cond_per_agency = cond_size.div_ceil(n);
    let cond_permission = world
        .catalog
        .permission(CONDITION_PERMISSION)
        .ok_or_else(|| anyhow::anyhow!("no permission `{CONDITION_PERMISSION}`"))?;
    let mut map: Indexes = tessera_core::fastmap::with_capacity(n);
    let mut pool = Vec::with_capacity(pool_size);
    let mut cond = Vec::with_capacity(cond_size);
    let (mut index_build_s, mut index_bytes, mut skipped, mut users) = (0.0, 0, 0, 0);
    let mut previous: Option<(AgencyId, AccountId)> = None;
    let start = Instant::now();
    for i in 0..n {
        let data = AgencyData::generate(
            world,
            &mut rng,
            args.accounts_per_agency,
            args.bindings_per_agency,
        );
        users += data.users.len();
        let other = previous.as_ref().map(|(a, acc)| (a, acc));
        if pool.len() < pool_size {
            for _ in 0..per_agency.min(pool_size - pool.len()) {
                pool.extend(data.sample(world, &mut rng, Draw::Mixed, other));
            }
        }
        if cond.len() < cond_size {
            for _ in 0..cond_per_agency.min(cond_size - cond.len()) {
                let Some(s) = data.sample(world, &mut rng, Draw::AllowedOf(cond_permission), None)
                else {
                    break;
                };
                let mfa = rng.gen_bool(0.5);
                let mut context = Map::new();
                context.insert("mfa".into(), Value::Bool(mfa));
                cond.push(CondSample {
                    expect: s.expect && mfa,
                    sample: s,
                    context,
                });
            }
        }
        let input = data.index_input(world);
        let t = Instant::now();
        let (index, skip) =
            AgencyIndex::build(data.agency.clone(), false, 1, world.builtin.clone(), input);
        index_build_s += t.elapsed().as_secs_f64();
        index_bytes += index.approx_bytes();
        skipped += skip.len();
        previous = Some((data.agency.clone(), data.accounts[0].clone()));
        map.insert(
            data.agency.bits(),
            Entry {
                index,
                policies: None,
            },
        );
        if (i + 1) % (n / 10).max(1) == 0 || i + 1 == n {
            eprintln!(
                "  {:>3}%  {} agencies built, {:.1} s",
                (i + 1) * 100 / n,
                i + 1,
                start.elapsed().as_secs_f64()
            );
        }
    }
    pool.shuffle(&mut rng);
    cond.shuffle(&mut rng);
    Ok(Built {
        map,
        pool,
        cond,
        wall_s: start.elapsed().as_secs_f64(),
        index_build_s,
        index_bytes,
        skipped,
        users,
    })
}

/// Runs `inproc`; returns the results as JSON and as Markdown.
pub fn run(args: &Args) -> anyhow::Result<(Value, String)> {
    let world = World::new()?;
    let n = args.agencies.max(1);
    eprintln!(
        "inproc: {n} agencies × {} accounts × {} bindings",
        args.accounts_per_agency, args.bindings_per_agency
    );
    let rss_before = stats::rss_bytes().unwrap_or(0);
    let mut b = build(&world, args)?;
    let rss_after = stats::rss_bytes().unwrap_or(0);
    let pool_bytes: usize = b.pool.iter().map(Sample::approx_bytes).sum::<usize>()
        + b.cond
            .iter()
            .map(|c| c.sample.approx_bytes() + 64)
            .sum::<usize>();
    anyhow::ensure!(b.skipped == 0, "{} bindings were skipped", b.skipped);

    eprintln!(
        "  timing {} checks over {} distinct ones",
        args.samples,
        b.pool.len()
    );
    let timer = stats::timer_overhead(1_000_000);
    let passes = args.samples.div_ceil(b.pool.len().max(1)).max(1);
    let check = |s: &Sample| tessera::check(&b.map, &world, s);
    let (lat, disagree) =
        stats::time_each(&b.pool, passes, b.pool.len(), None, check, |s| s.expect);
    let allowed = b.pool.iter().filter(|s| s.expect).count();
    let per_s = stats::throughput(&b.pool, args.samples.max(1), check);
    let (breakdown_json, breakdown_md) = breakdown::run(&b.map, &world, &b.pool);

    eprintln!(
        "  timing {} checks with a Cedar condition",
        args.cedar_samples
    );
    let schema = cedar_schema(&world.catalog).map_err(anyhow::Error::msg)?;
    let policies = PolicySet::compile(
        &schema,
        &[("platform:0".to_owned(), CONDITION_POLICY.to_owned())],
    )
    .map_err(|d| anyhow::anyhow!("the condition does not compile: {d:?}"))?;
    for e in b.map.values_mut() {
        e.policies = Some(policies.clone());
    }
    let cond_passes = args.cedar_samples.div_ceil(b.cond.len().max(1)).max(1);
    let (cond_lat, cond_disagree) = stats::time_each(
        &b.cond,
        cond_passes,
        b.cond.len().min(20_000),
        None,
        |c| tessera::check_with_policies(&b.map, &world, c),
        |c| c.expect,
    );
    // Plain RBAC checks with the policy attached, of actions it does not cover (`applies` false).
    let cond_permission = world.catalog.permission(CONDITION_PERMISSION);
    let uncovered: Vec<CondSample> = b
        .pool
        .iter()
        .filter(|s| Some(s.permission) != cond_permission)
        .take(100_000)
        .map(|s| CondSample {
            sample: s.clone(),
            context: Map::new(),
            expect: s.expect,
        })
        .collect();
    let uncovered_passes = args.samples.div_ceil(uncovered.len().max(1)).clamp(1, 10);
    let (uncovered_lat, uncovered_disagree) = stats::time_each(
        &uncovered,
        uncovered_passes,
        uncovered.len(),
        None,
        |c| tessera::check_with_policies(&b.map, &world, c),
        |c| c.expect,
    );

    let bytes_per_1k = b.index_bytes as f64 * 1000.0 / n as f64;
    let total_bindings = n * args.bindings_per_agency;
    let out = json!({
        "command": "inproc",
        "agencies": n,
        "accounts_per_agency": args.accounts_per_agency,
        "bindings_per_agency": args.bindings_per_agency,
        "accounts": n * args.accounts_per_agency,
        "bindings": total_bindings,
        "users": b.users,
        "build": {
            "wall_s": b.wall_s,
            "index_build_s": b.index_build_s,
            "index_build_per_agency_us": b.index_build_s * 1e6 / n as f64,
        },
        "memory": {
            "rss_before_bytes": rss_before,
            "rss_after_bytes": rss_after,
            "sample_pool_bytes": pool_bytes,
            "index_approx_bytes": b.index_bytes,
            "index_approx_bytes_per_1k_agencies": bytes_per_1k,
        },
        "timer_overhead": timer.json(),
        "check": lat.json(),
        "check_distinct": b.pool.len(),
        "check_allowed_share": allowed as f64 / b.pool.len().max(1) as f64,
        "check_disagreements": disagree,
        "breakdown": breakdown_json,
        "throughput_per_s": per_s,
        "cedar_condition": {
            "policy": CONDITION_POLICY,
            "latency": cond_lat.json(),
            "distinct": b.cond.len(),
            "disagreements": cond_disagree,
            "uncovered_latency": uncovered_lat.json(),
            "uncovered_disagreements": uncovered_disagree,
        },
    });

    let mut md = String::new();
    let _ = writeln!(
        md,
        "### Tessera in process: {n} agencies, {} accounts, {} bindings\n",
        n * args.accounts_per_agency,
        total_bindings
    );
    let _ = writeln!(md, "| measure | value |\n|---|---|");
    let row = |md: &mut String, k: &str, v: String| {
        let _ = writeln!(md, "| {k} | {v} |");
    };
    row(
        &mut md,
        "data",
        format!(
            "{n} agencies × {} accounts × {} bindings ({} users, 2 custom roles each)",
            args.accounts_per_agency, args.bindings_per_agency, b.users
        ),
    );
    row(
        &mut md,
        "generate + build (wall)",
        format!("{:.1} s", b.wall_s),
    );
    row(
        &mut md,
        "`AgencyIndex::build` (sum)",
        format!(
            "{:.2} s ({:.1} µs per agency)",
            b.index_build_s,
            b.index_build_s * 1e6 / n as f64
        ),
    );
    row(
        &mut md,
        "index memory (`approx_bytes`)",
        format!(
            "{:.1} MiB total, {:.2} MiB per 1k agencies",
            mib(b.index_bytes as u64),
            bytes_per_1k / (1024.0 * 1024.0)
        ),
    );
    row(
        &mut md,
        "RSS before → after build",
        format!(
            "{:.0} → {:.0} MiB (Δ {:.0} MiB, of which ≈ {:.0} MiB sample pool)",
            mib(rss_before),
            mib(rss_after),
            mib(rss_after.saturating_sub(rss_before)),
            mib(pool_bytes as u64)
        ),
    );
    row(
        &mut md,
        "check latency p50 / p90 / p99 / p99.9",
        format!(
            "{} / {} / {} / {} ({} calls, {} distinct, {:.0}% allowed)",
            human_ns(lat.p50),
            human_ns(lat.p90),
            human_ns(lat.p99),
            human_ns(lat.p999),
            lat.count,
            b.pool.len(),
            100.0 * allowed as f64 / b.pool.len().max(1) as f64
        ),
    );
    row(
        &mut md,
        "timer overhead p50 / p99",
        format!("{} / {}", human_ns(timer.p50), human_ns(timer.p99)),
    );
    row(
        &mut md,
        "throughput, tight loop, 1 thread",
        format!("{:.2} M checks/s", per_s / 1e6),
    );
    md.push_str(&breakdown_md);
    row(
        &mut md,
        "with Cedar condition p50 / p99",
        format!(
            "{} / {} ({} calls of `{CONDITION_PERMISSION}`, forbid unless `context.mfa`)",
            human_ns(cond_lat.p50),
            human_ns(cond_lat.p99),
            cond_lat.count
        ),
    );
    row(
        &mut md,
        "policy attached, action not covered p50 / p99",
        format!(
            "{} / {}",
            human_ns(uncovered_lat.p50),
            human_ns(uncovered_lat.p99)
        ),
    );
    row(
        &mut md,
        "disagreements with the reference",
        format!("{disagree} (RBAC), {cond_disagree} (Cedar condition), {uncovered_disagree} (policy attached, not covering)"),
    );
    Ok((out, md))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The index and the Cedar path decide every sample as the reference does.
    #[test]
    fn a_small_run_agrees_with_the_reference() {
        let args = Args {
            agencies: 5,
            accounts_per_agency: 3,
            bindings_per_agency: 30,
            samples: 2_000,
            cedar_samples: 300,
            seed: 3,
        };
        let (out, md) = run(&args).unwrap();
        assert_eq!(out["check_disagreements"], 0, "{md}");
        assert_eq!(out["cedar_condition"]["disagreements"], 0, "{md}");
        assert_eq!(out["cedar_condition"]["uncovered_disagreements"], 0, "{md}");
        assert!(out["cedar_condition"]["distinct"].as_u64().unwrap() > 0);
    }
}
