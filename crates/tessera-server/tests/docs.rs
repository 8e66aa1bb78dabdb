//! `docs/OPERATIONS.md` names only what exists: every `--flag` and `TESSERA_*` variable is one
//! of the CLI's (read from the clap definition, every subcommand), every `tessera <command>`
//! is a command, every route is served, every `tessera_*` metric is rendered by the server,
//! and its example configuration file resolves. Names of other tools and names that issue 13's
//! unmerged branches add are listed below, each with its reason.

#![allow(clippy::expect_used)]

use std::collections::BTreeSet;

use clap::CommandFactory;

const OPERATIONS: &str = include_str!("../../../docs/OPERATIONS.md");
const README: &str = include_str!("../../../README.md");
/// Where the metrics are rendered (every name is a literal in one of these).
const METRIC_SOURCES: [&str; 2] = [
    include_str!("../src/metrics.rs"),
    include_str!("../src/lib.rs"),
];
/// Where the routes outside the `/v1` table are registered.
const ROUTE_SOURCES: [&str; 2] = [
    include_str!("../src/lib.rs"),
    include_str!("../src/oauth/endpoint/mod.rs"),
];
/// Where `TESSERA_LOG` (read by the log filter, not by clap) is named.
const CLI_SOURCE: &str = include_str!("../src/cli.rs");

/// Flags of other tools cited on the page (`aws`, `gcloud`, `docker`).
const FOREIGN_FLAGS: &[&str] = &[
    "secret-id",
    "query",
    "ciphertext-blob",
    "location",
    "keyring",
    "key",
    "ciphertext-file",
    "plaintext-file",
    "env-file",
    "name",
    "ulimit",
    "stop-timeout",
];
/// Names the page may cite that the CLI does not declare (none today).
const PENDING_FLAGS: &[&str] = &[];
const PENDING_VARIABLES: &[&str] = &[];
const PENDING_COMMANDS: &[&str] = &[];
/// Metrics rendered only with `--replica-url` (the test's server has no replica;
/// `tests/replica.rs` reads them from a node that has one).
const PENDING_METRICS: &[&str] = &[
    "tessera_replica_up",
    "tessera_replica_lag_revisions",
    "tessera_replica_reads_total",
];
/// `tessera_…` identifiers on the page that are not metrics: PostgreSQL names (a role, a table,
/// the notification channel of the `prop` branch).
const NOT_METRICS: &[&str] = &["tessera_owner", "tessera_migrations", "tessera_changes"];

#[derive(Default)]
struct Cli {
    flags: BTreeSet<String>,
    variables: BTreeSet<String>,
    /// `["keys", "rotate-master"]`, `["serve"]`, …
    commands: BTreeSet<Vec<String>>,
}

fn walk(cmd: &clap::Command, path: &mut Vec<String>, cli: &mut Cli) {
    for arg in cmd.get_arguments() {
        if let Some(long) = arg.get_long() {
            cli.flags.insert(long.to_owned());
        }
        if let Some(env) = arg.get_env() {
            cli.variables.insert(env.to_string_lossy().into_owned());
        }
    }
    for sub in cmd.get_subcommands() {
        path.push(sub.get_name().to_owned());
        cli.commands.insert(path.clone());
        walk(sub, path, cli);
        path.pop();
    }
}

fn cli() -> Cli {
    let mut cmd = tessera_server::cli::Cli::command();
    cmd.build();
    let mut cli = Cli::default();
    walk(&cmd, &mut Vec::new(), &mut cli);
    cli.flags.extend(["help".to_owned(), "version".to_owned()]);
    cli
}

/// Words of `[A-Za-z0-9_-]`, in order.
fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        .filter(|w| !w.is_empty())
}

#[test]
fn every_flag_and_variable_on_the_operations_page_exists() {
    let cli = cli();
    assert!(
        cli.flags.contains("master-key-command") && cli.flags.contains("grant-to"),
        "the walk found the subcommands' flags: {:?}",
        cli.flags
    );
    let mut unknown = Vec::new();
    for w in words(OPERATIONS) {
        if let Some(flag) = w.strip_prefix("--") {
            if !flag.starts_with(|c: char| c.is_ascii_lowercase()) {
                continue; // a Markdown rule (`---`) or `--` alone
            }
            if !(cli.flags.contains(flag)
                || FOREIGN_FLAGS.contains(&flag)
                || PENDING_FLAGS.contains(&flag))
            {
                unknown.push(w.to_owned());
            }
        } else if w.starts_with("TESSERA_")
            && !(cli.variables.contains(w)
                || CLI_SOURCE.contains(&format!("\"{w}\""))
                || PENDING_VARIABLES.contains(&w))
        {
            unknown.push(w.to_owned());
        }
    }
    assert!(
        unknown.is_empty(),
        "docs/OPERATIONS.md names flags or variables the CLI does not have: {unknown:?}"
    );
}

#[test]
fn every_tessera_command_on_the_operations_page_exists() {
    let cli = cli();
    let mut unknown = Vec::new();
    let mut seen = 0;
    for (i, _) in OPERATIONS.match_indices("tessera ") {
        let before = OPERATIONS[..i].chars().next_back();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            continue;
        }
        let mut rest = &OPERATIONS[i + "tessera ".len()..];
        let mut path = Vec::new();
        // Words of lowercase letters and `-`, separated by single spaces.
        loop {
            let len = rest
                .find(|c: char| !(c.is_ascii_lowercase() || c == '-'))
                .unwrap_or(rest.len());
            let w = &rest[..len];
            if w.is_empty() || w.starts_with('-') {
                break;
            }
            let mut next = path.clone();
            next.push(w.to_owned());
            if !cli.commands.contains(&next) {
                if path.is_empty() && !PENDING_COMMANDS.contains(&w) {
                    unknown.push(format!("tessera {w}"));
                }
                // A word after a leaf command is an argument; after a group, a typo.
                let group = !path.is_empty()
                    && cli
                        .commands
                        .iter()
                        .any(|c| c.len() == path.len() + 1 && c.starts_with(&path));
                if group {
                    unknown.push(format!("tessera {} {w}", path.join(" ")));
                }
                break;
            }
            path = next;
            rest = &rest[len..];
            match rest.strip_prefix(' ') {
                Some(r) => rest = r,
                None => break,
            }
        }
        seen += usize::from(!path.is_empty());
    }
    assert!(seen >= 10, "the scan found the commands ({seen})");
    assert!(
        unknown.is_empty(),
        "docs/OPERATIONS.md names commands the CLI does not have: {unknown:?}"
    );
}

#[test]
fn every_route_on_the_operations_page_is_served() {
    let mut served: BTreeSet<String> = tessera_server::http::routes::table()
        .iter()
        .map(|r| r.path.to_owned())
        .collect();
    for src in ROUTE_SOURCES {
        for literal in src.split('"').skip(1).step_by(2) {
            if literal.starts_with('/') && !literal.contains(' ') {
                served.insert(literal.to_owned());
            }
        }
    }
    let mut unknown = Vec::new();
    let mut seen = 0;
    for prefix in [
        "/v1/",
        "/oauth/",
        "/.well-known/",
        "/readyz",
        "/healthz",
        "/metrics",
    ] {
        for (i, _) in OPERATIONS.match_indices(prefix) {
            let path: String = OPERATIONS[i..]
                .chars()
                .take_while(|c| !matches!(c, ' ' | '`' | '?' | ')' | '"' | ',' | '\n' | '\''))
                .collect();
            // `…` abbreviates a path; a trailing `.` ends a sentence.
            let path = path.trim_end_matches(['.', ':']);
            if path.contains('…') {
                continue;
            }
            seen += 1;
            if !served.contains(path) {
                unknown.push(path.to_owned());
            }
        }
    }
    assert!(seen >= 10, "the scan found the routes ({seen})");
    assert!(
        unknown.is_empty(),
        "docs/OPERATIONS.md names routes the server does not serve: {unknown:?}"
    );
}

#[test]
fn every_metric_on_the_operations_page_is_rendered() {
    let mut unknown = BTreeSet::new();
    let mut seen = 0;
    for w in words(OPERATIONS) {
        if !w.starts_with("tessera_") || NOT_METRICS.contains(&w) || PENDING_METRICS.contains(&w) {
            continue;
        }
        seen += 1;
        if !METRIC_SOURCES.iter().any(|src| src.contains(w)) {
            unknown.insert(w.to_owned());
        }
    }
    assert!(seen >= 15, "the scan found the metrics ({seen})");
    assert!(
        unknown.is_empty(),
        "docs/OPERATIONS.md names metrics the server does not render: {unknown:?}"
    );
}

#[test]
fn the_example_configuration_resolves() {
    let marker = OPERATIONS
        .find("<!-- example-config -->")
        .expect("the example configuration is marked");
    let after = &OPERATIONS[marker..];
    let start = after
        .find("```toml\n")
        .expect("a toml block follows the marker")
        + 8;
    let end = after[start..].find("\n```").expect("the block ends") + start;
    let dir = std::env::temp_dir().join(format!("tessera-docs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("tessera.toml");
    std::fs::write(&file, &after[start..end]).expect("write the example");
    let mut args = tessera_server::config::ServeArgs::default();
    args.store.config = Some(file);
    let resolved = tessera_server::config::Config::resolve(&args);
    let _ = std::fs::remove_dir_all(&dir);
    let config = resolved.expect("docs/OPERATIONS.md's example configuration resolves");
    assert!(config.issuer.starts_with("https://"));
    assert!(!config.proxies.is_empty());
    assert_eq!(config.net.max_connections_per_ip, 10_000);
    assert!(matches!(
        config.master_key,
        tessera_token::MasterKeySource::Command(_)
    ));
    assert_eq!(config.audit.retention_days, 400);
}

#[test]
fn the_sizing_section_awaits_the_benchmarks_and_the_readme_links_the_page() {
    assert!(OPERATIONS
        .contains("<!-- SIZING: filled from docs/BENCHMARKS.md \"Mixed load (issue 13)\" -->"));
    assert!(README.contains("docs/OPERATIONS.md"));
}
