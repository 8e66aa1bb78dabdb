//! `tessera keys rotate-master` and `tessera keys rotate-pepper`, as functions the command and
//! the tests call against a live database while servers run.
//!
//! Master rotation: the source holds the NEW key first and the old one(s) after. The new key is
//! made `active` (nodes wrap new values only under the active key, and reload their source to
//! get it); then every stored secret and data key still wrapped under another key is rewrapped
//! (compare-and-set), pass after pass until a pass finds none, a settle delay apart, so rows a
//! lagging node wrote under the old key are not missed. Old keys no row uses are then
//! `retired`, and the operator may remove them from the source. Nothing else changes: hashes,
//! tokens and sealed values are under the stored secrets, not under the master key.
//!
//! Pepper rotation: a new random version becomes current (nodes learn it on their next reload:
//! a periodic one, or a lookup miss); an older version is retired (material destroyed) once no
//! stored hash uses it and it has been superseded for longer than `retire_after` (which covers
//! the unversioned short-lived hashes: authorization codes).
//! INVARIANT: every step is idempotent and compare-and-set, so the command can be re-run (or
//! run on two machines) at any point.

use std::time::Duration;

use rand::rngs::OsRng;
use serde::Serialize;
use tessera_store::{RootSecretRow, Store};
use tessera_token::SecretBytes;

use super::error::{unwrap32, wrap_purpose, SecretsError};
use super::master::MasterRing;
use super::root::{open_row, PEPPER};

/// How many rewrap passes at most before giving up (each settles first).
const MAX_PASSES: usize = 20;

/// What a master rotation did.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct MasterRotation {
    /// The key now active.
    pub active: String,
    /// Stored secrets rewrapped.
    pub secrets_rewrapped: usize,
    /// Agency data keys rewrapped.
    pub data_keys_rewrapped: usize,
    /// Keys retired (no row uses them; they may leave the key source).
    pub retired: Vec<String>,
}

/// Rewraps everything under the ring's current key (the source's first) and retires the keys
/// no row uses any more. `settle` is the pause before each verification pass.
pub async fn rotate_master(
    store: &dyn Store,
    ring: &MasterRing,
    admission: &crate::gate::admission::Admission,
    now: i64,
    settle: Duration,
) -> Result<MasterRotation, SecretsError> {
    ring.reload().await?;
    let target = ring.current();
    let target_id = target.key_id();
    store.activate_master_key(&target_id, now).await?;
    let mut report = MasterRotation {
        active: target_id.clone(),
        secrets_rewrapped: 0,
        data_keys_rewrapped: 0,
        retired: Vec::new(),
    };
    let mut clean_passes = 0;
    for _ in 0..MAX_PASSES {
        let mut moved = 0;
        for row in store.root_secrets().await? {
            if row.retired_at.is_some() || row.master_key_id == target_id {
                continue;
            }
            let value = open_row(ring, &row).await?;
            let purpose = wrap_purpose(&row.purpose, row.version);
            let sealed = target.wrap(&purpose, value.expose(), &mut OsRng);
            if store
                .rewrap_root_secret(
                    &row.purpose,
                    row.version,
                    &row.master_key_id,
                    &target_id,
                    &sealed,
                )
                .await?
            {
                report.secrets_rewrapped += 1;
                moved += 1;
            }
        }
        for agency in store.all_agency_ids().await? {
            let scope = admission.admit(agency.clone());
            let Some(row) = store.data_key(&scope).await? else {
                continue;
            };
            if row.master_key_id == target_id {
                continue;
            }
            let purpose = format!("data-key/{agency}");
            let old = ring.key(&row.master_key_id).await?;
            let value = unwrap32(&old, &purpose, &row.sealed)?;
            let sealed = target.wrap(&purpose, value.expose(), &mut OsRng);
            if store
                .rewrap_data_key(&scope, &row.master_key_id, &target_id, &sealed)
                .await?
            {
                report.data_keys_rewrapped += 1;
                moved += 1;
            }
        }
        if moved == 0 {
            clean_passes += 1;
            if clean_passes >= 2 {
                break;
            }
        } else {
            clean_passes = 0;
        }
        tokio::time::sleep(settle).await;
    }
    if clean_passes < 2 {
        return Err(SecretsError::Internal(
            "rows kept appearing under an old master key: is a node running with an old key source? re-run when every node has the new key".into(),
        ));
    }
    for k in store.master_keys().await? {
        if k.state == "previous" && store.retire_master_key(&k.key_id, now).await? {
            report.retired.push(k.key_id);
        }
    }
    Ok(report)
}

/// What a pepper rotation did.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PepperRotation {
    /// The new current version (`None` when only retiring).
    pub created: Option<i64>,
    /// Versions retired (material destroyed).
    pub retired: Vec<i64>,
    /// Older versions kept because stored hashes still use them, or too recently superseded.
    pub kept: Vec<i64>,
}

/// Adds a new pepper version (unless `retire_only`) and retires the older versions that no
/// stored hash uses and that were superseded more than `retire_after` ago.
pub async fn rotate_pepper(
    store: &dyn Store,
    ring: &MasterRing,
    admission: &crate::gate::admission::Admission,
    now: i64,
    retire_after: Duration,
    retire_only: bool,
) -> Result<PepperRotation, SecretsError> {
    let mut report = PepperRotation {
        created: None,
        retired: Vec::new(),
        kept: Vec::new(),
    };
    if !retire_only {
        let wrap = ring.for_wrapping(store, now).await?;
        // A racing rotation takes the same version: the loser tries the next one.
        for _ in 0..8 {
            let next = store
                .root_secrets()
                .await?
                .iter()
                .filter(|r| r.purpose == PEPPER)
                .map(|r| r.version)
                .max()
                .unwrap_or(0)
                + 1;
            let material = SecretBytes::<32>::random(&mut OsRng);
            let row = RootSecretRow {
                purpose: PEPPER.to_owned(),
                version: next,
                master_key_id: wrap.key_id(),
                sealed: wrap.wrap(&wrap_purpose(PEPPER, next), material.expose(), &mut OsRng),
                created_at: now,
                retired_at: None,
            };
            if store.insert_root_secret(&row).await? {
                report.created = Some(next);
                break;
            }
        }
        if report.created.is_none() {
            return Err(SecretsError::Internal(
                "could not add a pepper version".into(),
            ));
        }
    }
    let peppers: Vec<RootSecretRow> = store
        .root_secrets()
        .await?
        .into_iter()
        .filter(|r| r.purpose == PEPPER)
        .collect();
    let Some(newest) = peppers.iter().map(|r| r.version).max() else {
        return Ok(report);
    };
    let mut in_use = std::collections::BTreeSet::new();
    for agency in store.all_agency_ids().await? {
        in_use.extend(
            store
                .pepper_versions_in_use(&admission.admit(agency))
                .await?,
        );
    }
    let retire_after_ms = i64::try_from(retire_after.as_millis()).unwrap_or(i64::MAX);
    for row in peppers
        .iter()
        .filter(|r| r.retired_at.is_none() && r.version < newest)
    {
        // Superseded when the next version was created.
        let superseded_at = peppers
            .iter()
            .filter(|r| r.version > row.version)
            .map(|r| r.created_at)
            .min()
            .unwrap_or(now);
        let old_enough = now.saturating_sub(superseded_at) >= retire_after_ms;
        if !in_use.contains(&row.version) && old_enough {
            if store.retire_root_secret(PEPPER, row.version, now).await? {
                report.retired.push(row.version);
            }
        } else {
            report.kept.push(row.version);
        }
    }
    Ok(report)
}
