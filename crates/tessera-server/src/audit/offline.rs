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
    /// Measure checkpoint signing and export rates on a temporary SQLite store
    #[command(hide = true)]
    Bench {
        /// Agencies
        #[arg(long, default_value_t = 200)]
        agencies: usize,
        /// Events per agency
        #[arg(long, default_value_t = 1000)]
        events: usize,
        /// Events of the one agency exported
        #[arg(long, default_value_t = 200_000)]
        export_events: usize,
    },
}

/// Runs `tessera audit …`; `json` prints one JSON document.
pub fn run(cmd: AuditCommand, json_out: bool) -> anyhow::Result<()> {
    match cmd {
        AuditCommand::Verify { export, keys } => verify(&export, &keys, json_out),
        AuditCommand::Bench {
            agencies,
            events,
            export_events,
        } => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(bench(agencies, events, export_events)),
        AuditCommand::Generate {
            events,
            checkpoint_every,
            out,
            keys_out,
        } => {
            let started = std::time::Instant::now();
            generate(events, checkpoint_every.max(1), &out, &keys_out)?;
            let secs = started.elapsed().as_secs_f64();
            println!(
                "{events} events written to {} in {secs:.2} s",
                out.display()
            );
            Ok(())
        }
    }
}

fn verify(export: &std::path::Path, keys: &std::path::Path, json_out: bool) -> anyhow::Result<()> {
    let jwks: serde_json::Value = serde_json::from_slice(
        &std::fs::read(keys)
            .map_err(|e| anyhow::anyhow!("cannot read keys `{}`: {e}", keys.display()))?,
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
            let rate = if secs > 0.0 {
                c.events as f64 / secs
            } else {
                0.0
            };
            if json_out {
                println!(
                    "{}",
                    json!({ "ok": true, "events": c.events, "checkpoints": c.checkpoints, "start_seq": c.start_seq, "last_seq": c.last_seq, "anchored_seq": c.anchored_seq, "seconds": secs, "events_per_second": rate.round() })
                );
            } else {
                let anchored = c
                    .anchored_seq
                    .map_or_else(|| "none".to_owned(), |a| a.to_string());
                let from = if c.start_seq == 0 {
                    "seq 1".to_owned()
                } else {
                    format!("checkpoint {}", c.start_seq)
                };
                println!(
                    "intact: {} events from {from} to seq {}, {} checkpoints, anchored up to seq {anchored}; events after it are protected by the hash chain only ({:.0} events/s)",
                    c.events, c.last_seq, c.checkpoints, rate
                );
            }
            Ok(())
        }
        FileVerdict::Broken { line, failure } => {
            if json_out {
                println!(
                    "{}",
                    json!({ "ok": false, "line": line, "reason": failure.reason.as_str(), "seq": failure.seq, "detail": failure.detail })
                );
                std::process::exit(1);
            }
            Err(anyhow::anyhow!(
                "line {line}: {}{}: {}",
                failure.reason.as_str(),
                failure
                    .seq
                    .map(|s| format!(" (seq {s})"))
                    .unwrap_or_default(),
                failure.detail
            ))
        }
    }
}

/// Writes a chain of `events` synthetic events of one agency, signed every `every` events, and
/// the JWKS of the key that signed it.
pub fn generate(
    events: i64,
    every: i64,
    out: &std::path::Path,
    keys_out: &std::path::Path,
) -> anyhow::Result<()> {
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
            id: tessera_core::EventId::generate_at(
                u64::try_from(at).unwrap_or(0),
                &mut rand::thread_rng(),
            ),
            at,
            actor: format!("key_{:026}", seq % 97),
            on_behalf_of: (seq % 5 == 0).then(|| "usr_01jbenchbenchbenchbenchbench".to_owned()),
            action: if seq == 1 {
                "agency.create".into()
            } else {
                "token.issue".into()
            },
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
    w.write_all(
        json!({ "type": "end", "cursor": events.to_string(), "last_seq": events })
            .to_string()
            .as_bytes(),
    )?;
    w.write_all(b"\n")?;
    w.flush()?;
    Ok(())
}

fn bench_record(at: i64, action: &str, n: usize) -> AuditRecord {
    AuditRecord {
        id: tessera_core::EventId::generate_at(
            u64::try_from(at).unwrap_or(0),
            &mut rand::thread_rng(),
        ),
        at,
        actor: "key_01jbenchbenchbenchbenchbench".into(),
        on_behalf_of: None,
        action: action.into(),
        target: Some("app_01jbenchbenchbenchbenchbench".into()),
        outcome: Outcome::Success,
        request_id: format!("req-{n}"),
        ip: Some("203.0.113.7".into()),
        user_agent: Some("bench/1.0".into()),
        detail: json!({ "client_id": "app_01jbenchbenchbenchbenchbench", "scope": "contacts.read", "n": n }),
    }
}

/// Checkpoint signing rate (the checkpointer's whole pass: due scan, read back and verify the
/// events since the last checkpoint, sign, store) and export rate, on a temporary SQLite store.
async fn bench(agencies: usize, events: usize, export_events: usize) -> anyhow::Result<()> {
    use std::sync::Arc;
    let dir = std::env::temp_dir().join(format!("tessera-audit-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let url = format!("sqlite://{}", dir.join("bench.db").display());
    let tessera_store::Connected { store, mint } = tessera_store::connect(&url).await?;
    store.migrate().await?;
    let admission = Arc::new(crate::gate::admission::Admission::new(mint));
    let clock: Arc<dyn crate::clock::Clock> = Arc::new(crate::clock::SystemClock);
    // A throw-away store: its audit keys are sealed under a random envelope key.
    let keys = Arc::new(crate::audit::keys::AuditKeys::new(
        store.clone(),
        tessera_token::SecretBytes::random(&mut rand::rngs::OsRng),
        Default::default(),
        admission.clone(),
    ));
    keys.maintain(clock.now() / 1000).await?;
    let now = clock.now();
    let mut ids = Vec::new();
    let total = agencies + 1;
    for i in 0..total {
        let id = tessera_core::AgencyId::generate();
        let a = tessera_store::Agency {
            id: id.clone(),
            name: format!("bench {i}"),
            status: tessera_store::Status::Active,
            suspended_reason: None,
            suspended_at: None,
            is_platform: false,
            created_at: now,
            updated_at: now,
        };
        store
            .create_agency(&a, &bench_record(now, "agency.create", 0))
            .await?;
        let n = if i == agencies { export_events } else { events };
        let scope = admission.admit(id.clone());
        let mut batch = Vec::with_capacity(500);
        for k in 1..n {
            batch.push((scope.clone(), bench_record(now, "token.issue", k)));
            if batch.len() == 500 {
                store.append_audit_batch(&batch).await?;
                batch.clear();
            }
        }
        store.append_audit_batch(&batch).await?;
        ids.push(id);
    }
    let cp = crate::audit::checkpoint::Checkpointer::new(
        store.clone(),
        admission.clone(),
        keys,
        clock.clone(),
        // Every agency with an event is due now (the time trigger counts from the first
        // unsigned event, which was just written).
        crate::audit::checkpoint::AuditSettings {
            checkpoint_events: 1,
            ..Default::default()
        },
    );
    let started = std::time::Instant::now();
    let made = cp.run_once().await?;
    let secs = started.elapsed().as_secs_f64();
    let verified = agencies * events + export_events;
    println!(
        "checkpoints: {made} signed in {secs:.3} s = {:.0} checkpoints/s, each after verifying its segment ({verified} events, {:.0} events/s read back and verified)",
        made as f64 / secs,
        verified as f64 / secs
    );
    // Sign alone.
    let key = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
    let started = std::time::Instant::now();
    for seq in 0..20_000 {
        let msg = checkpoint_message(ids[0].as_str(), seq, &ChainHash::GENESIS, now, "audit-1-x");
        std::hint::black_box(key.sign(&msg));
    }
    println!(
        "checkpoint signatures alone: {:.0}/s",
        20_000.0 / started.elapsed().as_secs_f64()
    );
    let last = ids.last().ok_or_else(|| anyhow::anyhow!("no agency"))?;
    let started = std::time::Instant::now();
    let mut export = crate::usecase::audit::Export::start(
        store.clone(),
        admission.admit(last.clone()),
        Default::default(),
    )
    .await
    .map_err(|e| anyhow::anyhow!(e.detail))?;
    let mut bytes = 0usize;
    while let Some(chunk) = export
        .next_chunk()
        .await
        .map_err(|e| anyhow::anyhow!(e.detail))?
    {
        bytes += chunk.len();
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "export: {export_events} events ({:.1} MB) in {secs:.3} s = {:.0} events/s",
        bytes as f64 / 1e6,
        export_events as f64 / secs
    );
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
