//! `tessera audit …`: offline verification of an export against a JWKS file (no server, no
//! database), and a hidden generator of signed test exports for the throughput benchmark.
//!
//! INVARIANT: `verify` exits 0 only when every line verifies and the chain is non-empty; any
//! other outcome names the first bad line and a stable reason code (docs/AUDIT.md).

use std::io::{BufReader, BufWriter, Write};
use std::path::PathBuf;

use ed25519_dalek::Signer as _;
use serde_json::json;
use tessera_store::{AuditCheckpoint, AuditEvent, AuditRecord, ChainHash, Outcome};

use crate::audit::verify::{checkpoint_message, keys_from_jwks, verify_export, FileVerdict};

/// `tessera audit …`.
#[derive(Debug, clap::Subcommand)]
pub enum AuditCommand {
    /// Verify an export (`GET /v1/agencies/{agy}/audit/export`) offline against the audit keys
    /// (`/.well-known/audit-keys.json`): exit 0 when intact, 1 with the first bad line and why
    Verify {
        /// The export file (JSON Lines)
        #[arg(long, value_name = "FILE")]
        export: PathBuf,
        /// The JWKS file of the audit keys
        #[arg(long, value_name = "FILE")]
        keys: PathBuf,
    },
    /// Write a signed synthetic export and its JWKS (for benchmarks)
    #[command(hide = true)]
    Generate {
        /// Events to write
        #[arg(long, default_value_t = 1_000_000)]
        events: i64,
        /// A checkpoint every this many events
        #[arg(long, default_value_t = 1000)]
        checkpoint_every: i64,
        /// The export file to write
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// The JWKS file to write
        #[arg(long, value_name = "FILE")]
        keys_out: PathBuf,
    },
}

/// Runs `tessera audit …`; `json` prints one JSON document.
pub fn run(cmd: AuditCommand, json_out: bool) -> anyhow::Result<()> {
    match cmd {
        AuditCommand::Verify { export, keys } => verify(&export, &keys, json_out),
        AuditCommand::Generate { events, checkpoint_every, out, keys_out } => {
            let started = std::time::Instant::now();
            generate(events, checkpoint_every.max(1), &out, &keys_out)?;
            let secs = started.elapsed().as_secs_f64();
            println!("{events} events written to {} in {secs:.2} s", out.display());
            Ok(())
        }
    }
}

fn verify(export: &std::path::Path, keys: &std::path::Path, json_out: bool) -> anyhow::Result<()> {
    let jwks: serde_json::Value = serde_json::from_slice(
        &std::fs::read(keys).map_err(|e| anyhow::anyhow!("cannot read keys `{}`: {e}", keys.display()))?,
    )
    .map_err(|e| anyhow::anyhow!("keys `{}` is not JSON: {e}", keys.display()))?;
    let keys = keys_from_jwks(&jwks).map_err(|e| anyhow::anyhow!("{e}"))?;
    let file = std::fs::File::open(export)
        .map_err(|e| anyhow::anyhow!("cannot read export `{}`: {e}", export.display()))?;
    let started = std::time::Instant::now();
    let verdict = verify_export(BufReader::with_capacity(1 << 20, file), &keys)?;
    let secs = started.elapsed().as_secs_f64();
    match verdict {
        FileVerdict::Intact(c) => {
            let rate = if secs > 0.0 { c.events as f64 / secs } else { 0.0 };
            if json_out {
                println!("{}", json!({ "ok": true, "events": c.events, "checkpoints": c.checkpoints, "start_seq": c.start_seq, "last_seq": c.last_seq, "anchored_seq": c.anchored_seq, "seconds": secs, "events_per_second": rate.round() }));
            } else {
                let anchored = c.anchored_seq.map_or_else(|| "none".to_owned(), |a| a.to_string());
                let from = if c.start_seq == 0 { "seq 1".to_owned() } else { format!("checkpoint {}", c.start_seq) };
                println!(
                    "intact: {} events from {from} to seq {}, {} checkpoints, anchored up to seq {anchored}; events after it are protected by the hash chain only ({:.0} events/s)",
                    c.events, c.last_seq, c.checkpoints, rate
                );
            }
            Ok(())
        }
        FileVerdict::Broken { line, failure } => {
            if json_out {
                println!("{}", json!({ "ok": false, "line": line, "reason": failure.reason.as_str(), "seq": failure.seq, "detail": failure.detail }));
                std::process::exit(1);
            }
            Err(anyhow::anyhow!(
                "line {line}: {}{}: {}",
                failure.reason.as_str(),
                failure.seq.map(|s| format!(" (seq {s})")).unwrap_or_default(),
                failure.detail
            ))
        }
    }
}

/// Writes a chain of `events` synthetic events of one agency, signed every `every` events, and
/// the JWKS of the key that signed it.
pub fn generate(events: i64, every: i64, out: &std::path::Path, keys_out: &std::path::Path) -> anyhow::Result<()> {
    let key = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
    let kid = "audit-bench-1".to_owned();
    let jwks = json!({ "keys": [{
        "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": kid,
        "x": base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, key.verifying_key().to_bytes()),
    }] });
    std::fs::write(keys_out, serde_json::to_vec_pretty(&jwks)?)?;
    let agency = tessera_core::AgencyId::generate();
    let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(out)?);
    let mut prev = ChainHash::GENESIS;
    let mut line = String::with_capacity(1024);
    let t0: i64 = 1_800_000_000_000;
    for seq in 1..=events {
        let at = t0 + seq;
        let r = AuditRecord {
            id: tessera_core::EventId::generate_at(u64::try_from(at).unwrap_or(0), &mut rand::thread_rng()),
            at,
            actor: format!("key_{:026}", seq % 97),
            on_behalf_of: (seq % 5 == 0).then(|| "usr_01jbenchbenchbenchbenchbench".to_owned()),
            action: if seq == 1 { "agency.create".into() } else { "token.issue".into() },
            target: Some("app_01jbenchbenchbenchbenchbench".into()),
            outcome: Outcome::Success,
            request_id: format!("req-{seq}"),
            ip: Some("203.0.113.7".into()),
            user_agent: Some("bench/1.0 (\"quoted\")".into()),
            detail: json!({ "client_id": "app_01jbenchbenchbenchbenchbench", "scope": "contacts.read contacts.write", "jti": format!("jti-{seq}"), "n": seq, "ok": true }),
        };
        let hash = tessera_store::audit::chain_hash(seq, &agency, &r, &prev);
        let e = AuditEvent {
            seq,
            agency_id: agency.clone(),
            id: r.id,
            at,
            actor: r.actor,
            on_behalf_of: r.on_behalf_of,
            action: r.action,
            target: r.target,
            outcome: r.outcome,
            request_id: r.request_id,
            ip: r.ip,
            user_agent: r.user_agent,
            detail: r.detail,
            prev_hash: prev,
            hash,
        };
        line.clear();
        crate::usecase::audit::event_line(&e, &mut line).map_err(|e| anyhow::anyhow!(e.detail))?;
        w.write_all(line.as_bytes())?;
        if seq % every == 0 || seq == events {
            let msg = checkpoint_message(agency.as_str(), seq, &hash, at, &kid);
            let cp = AuditCheckpoint {
                agency_id: agency.clone(),
                seq,
                hash,
                at,
                kid: kid.clone(),
                signature: key.sign(&msg).to_bytes().to_vec(),
            };
            w.write_all(crate::usecase::audit::checkpoint_line(&cp).as_bytes())?;
            w.write_all(b"\n")?;
        }
        prev = hash;
    }
    w.write_all(json!({ "type": "end", "cursor": events.to_string(), "last_seq": events }).to_string().as_bytes())?;
    w.write_all(b"\n")?;
    w.flush()?;
    Ok(())
}
