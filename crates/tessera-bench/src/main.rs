//! `tessera-bench`: benchmarks of Tessera's authorization engine (DESIGN §7), in process and
//! beside Cedar and casbin on the same data. Results go to docs/BENCHMARKS.md; `bench/run.sh`
//! runs the published set.
//!
//! Progress goes to stderr; the results to stdout, as Markdown tables or JSON (`--output`).

mod breakdown;
mod ceiling;
mod data;
mod inproc;
mod peers;
mod stats;
mod summary;
mod tessera;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "tessera-bench",
    about = "Benchmarks of Tessera's authorization engine"
)]
struct Cli {
    /// How to print the results.
    #[arg(long, value_enum, default_value_t = Output::Markdown, global = true)]
    output: Output,
    /// Also write the results as JSON to this file.
    #[arg(long, global = true)]
    save_json: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Output {
    /// Markdown tables.
    Markdown,
    /// One JSON document.
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Warm in-process checks against generated agencies: latency, throughput, memory, Cedar.
    Inproc(inproc::Args),
    /// The same data and checks decided by Tessera, Cedar and casbin.
    Peers(peers::Args),
    /// A trivial HTTP endpoint, served until killed: the ceiling HTTP figures are a fraction of.
    Ceiling(ceiling::Args),
    /// Puts the JSON results of a full run side by side against the performance budgets.
    Summary(summary::Args),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let (json, markdown) = match &cli.command {
        Command::Ceiling(args) => return ceiling::run(args),
        Command::Inproc(args) => inproc::run(args)?,
        Command::Peers(args) => peers::run(args)?,
        Command::Summary(args) => summary::run(args)?,
    };
    if let Some(path) = &cli.save_json {
        std::fs::write(path, serde_json::to_string_pretty(&json)?)
            .map_err(|e| anyhow::anyhow!("cannot write `{}`: {e}", path.display()))?;
    }
    match cli.output {
        Output::Markdown => println!("{markdown}"),
        Output::Json => println!("{}", serde_json::to_string_pretty(&json)?),
    }
    Ok(())
}
