//! `summary`: the results of a full run (`bench/run.sh`) side by side, against DESIGN §7's
//! budgets: the 100-agency and 100k-agency `inproc` runs and the `peers` run, from their JSON.

use std::fmt::Write as _;
use std::path::PathBuf;

use serde_json::{json, Value};

use crate::stats::human_ns;

/// Which result files to read.
#[derive(Clone, Debug, clap::Args)]
pub struct Args {
    /// `inproc --output json` of the small dataset (100 agencies).
    #[arg(long)]
    pub small: PathBuf,
    /// `inproc --output json` of the large dataset (100k agencies).
    #[arg(long)]
    pub large: PathBuf,
    /// `peers --output json`.
    #[arg(long)]
    pub peers: PathBuf,
}

fn read(path: &PathBuf) -> anyhow::Result<Value> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read `{}`: {e}", path.display()))?;
    Ok(serde_json::from_str(&text)?)
}

fn num(v: &Value, path: &[&str]) -> f64 {
    path.iter()
        .try_fold(v, |v, k| v.get(k))
        .and_then(Value::as_f64)
        .unwrap_or(f64::NAN)
}

fn ns(v: f64) -> String {
    if v.is_finite() {
        human_ns(v as u64)
    } else {
        "–".into()
    }
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "**not met**"
    }
}

/// Reads the three results and renders the summary.
pub fn run(args: &Args) -> anyhow::Result<(Value, String)> {
    let (small, large, peers) = (read(&args.small)?, read(&args.large)?, read(&args.peers)?);
    let label = |v: &Value| {
        format!(
            "{} agencies / {} accounts / {} bindings",
            num(v, &["agencies"]),
            num(v, &["accounts"]),
            num(v, &["bindings"])
        )
    };
    let mut md = String::new();
    let _ = writeln!(md, "### Summary against DESIGN §7\n");
    let _ = writeln!(
        md,
        "| measure | {} | {} | large ÷ small | budget | verdict |\n|---|---|---|---|---|---|",
        label(&small),
        label(&large)
    );
    let mut rows = Vec::new();
    let mut latency = |md: &mut String, name: &str, path: &[&str], budget_ns: f64, scale: bool| {
        let (a, b) = (num(&small, path), num(&large, path));
        let ratio = b / a;
        let ok = a <= budget_ns && b <= budget_ns && (!scale || ratio <= 1.5);
        let budget = if scale {
            format!("≤ {} and ≤ 1.5×", ns(budget_ns))
        } else {
            format!("≤ {}", ns(budget_ns))
        };
        let _ = writeln!(
            md,
            "| {name} | {} | {} | {ratio:.2}× | {budget} | {} |",
            ns(a),
            ns(b),
            verdict(ok)
        );
        rows.push(
            json!({"measure": name, "small_ns": a, "large_ns": b, "ratio": ratio, "met": ok}),
        );
    };
    latency(&mut md, "check p50", &["check", "p50_ns"], 1_000.0, true);
    latency(&mut md, "check p99", &["check", "p99_ns"], 5_000.0, true);
    latency(
        &mut md,
        "with a Cedar condition p99",
        &["cedar_condition", "latency", "p99_ns"],
        25_000.0,
        false,
    );
    let plain = |md: &mut String, name: &str, a: String, b: String, ratio: f64| {
        let _ = writeln!(md, "| {name} | {a} | {b} | {ratio:.2}× | | |");
    };
    let mib = |v: f64| format!("{:.1} MiB", v / (1024.0 * 1024.0));
    for (name, path) in [
        ("check p99.9", &["check", "p999_ns"][..]),
        (
            "with a Cedar condition p50",
            &["cedar_condition", "latency", "p50_ns"][..],
        ),
    ] {
        let (a, b) = (num(&small, path), num(&large, path));
        plain(&mut md, name, ns(a), ns(b), b / a);
    }
    let tput = |v: &Value| num(v, &["throughput_per_s"]);
    plain(
        &mut md,
        "throughput, 1 thread",
        format!("{:.2} M/s", tput(&small) / 1e6),
        format!("{:.2} M/s", tput(&large) / 1e6),
        tput(&large) / tput(&small),
    );
    let build = |v: &Value| num(v, &["build", "index_build_s"]);
    plain(
        &mut md,
        "`AgencyIndex::build`, all agencies",
        format!("{:.2} s", build(&small)),
        format!("{:.2} s", build(&large)),
        build(&large) / build(&small),
    );
    let per_1k = |v: &Value| num(v, &["memory", "index_approx_bytes_per_1k_agencies"]);
    plain(
        &mut md,
        "index memory per 1k agencies",
        mib(per_1k(&small)),
        mib(per_1k(&large)),
        per_1k(&large) / per_1k(&small),
    );
    let rss = |v: &Value| num(v, &["memory", "rss_after_bytes"]);
    let large_rss_ok = rss(&large) <= 2.0 * 1024.0 * 1024.0 * 1024.0;
    let _ = writeln!(
        md,
        "| RSS after build (whole bench process) | {} | {} | | ≤ 2 GiB at 100k | {} |",
        mib(rss(&small)),
        mib(rss(&large)),
        verdict(large_rss_ok)
    );

    let _ = writeln!(
        md,
        "\n| peer at {} agencies | p50 | p99 | Tessera faster by (p50 / p99) | budget | verdict |\n|---|---|---|---|---|---|",
        num(&peers, &["agencies"])
    );
    let engines = peers["engines"].as_array().cloned().unwrap_or_default();
    let tessera = engines.first().cloned().unwrap_or(Value::Null);
    let (t50, t99) = (
        num(&tessera, &["latency", "p50_ns"]),
        num(&tessera, &["latency", "p99_ns"]),
    );
    let mut peer_rows = Vec::new();
    for e in engines.iter().skip(1) {
        let (p50, p99) = (
            num(e, &["latency", "p50_ns"]),
            num(e, &["latency", "p99_ns"]),
        );
        let ok = p50 / t50 >= 10.0 && p99 / t99 >= 10.0;
        let _ = writeln!(
            md,
            "| {} | {} | {} | {:.0}× / {:.0}× | ≥ 10× | {} |",
            e["engine"].as_str().unwrap_or("?"),
            ns(p50),
            ns(p99),
            p50 / t50,
            p99 / t99,
            verdict(ok)
        );
        peer_rows.push(json!({"engine": e["engine"], "speedup_p50": p50 / t50, "speedup_p99": p99 / t99, "met": ok}));
    }
    Ok((
        json!({"command": "summary", "scale": rows, "peers": peer_rows, "rss_met": large_rss_ok}),
        md,
    ))
}
