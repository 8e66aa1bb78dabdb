//! Signed audit checkpoints, audit keys (global rows, compare-and-set like `signing_keys`)
//! and audit retention, with pruning.
//!
//! INVARIANT: a checkpoint insert never overwrites (`ON CONFLICT DO NOTHING`); a prune deletes
//! only events covered by a stored checkpoint, keeps that checkpoint, and appends its own event
//! in the same transaction.

macro_rules! audit_checkpoints {
    ($store:ty) => {
        const AUDIT_KEY_COLS: &str = "kid, generation, state, created_at, activates_at, retires_at, public_key, sealed_private";
        const CHECKPOINT_COLS: &str = "agency_id, seq, hash, at, kid, signature";

        fn audit_key_row(row: &DbRow) -> Result<AuditKeyRow, StoreError> {
            Ok(AuditKeyRow {
                kid: row.try_get("kid")?,
                generation: row.try_get("generation")?,
                state: row.try_get("state")?,
                created_at: row.try_get("created_at")?,
                activates_at: row.try_get("activates_at")?,
                retires_at: row.try_get("retires_at")?,
                public_key: row.try_get("public_key")?,
                sealed_private: row.try_get("sealed_private")?,
            })
        }

        fn checkpoint_row(row: &DbRow) -> Result<AuditCheckpoint, StoreError> {
            let hash: Vec<u8> = row.try_get("hash")?;
            Ok(AuditCheckpoint {
                agency_id: col(row, "agency_id")?,
                seq: row.try_get("seq")?,
                hash: ChainHash::from_slice(&hash).ok_or_else(|| StoreError::Corrupt("checkpoint hash: not 32 bytes".into()))?,
                at: row.try_get("at")?,
                kid: row.try_get("kid")?,
                signature: row.try_get("signature")?,
            })
        }

        /// The agency's chain head, read in `tx`.
        async fn head_in(tx: &mut Tx, agency: &AgencyId) -> Result<Option<AuditHead>, StoreError> {
            let row = sqlx::query("SELECT seq, hash FROM audit_heads WHERE agency_id = $1")
                .bind(agency.as_str())
                .fetch_optional(&mut **tx)
                .await?;
            let Some(row) = row else { return Ok(None) };
            let hash: Vec<u8> = row.try_get("hash")?;
            Ok(Some(AuditHead {
                seq: row.try_get("seq")?,
                hash: ChainHash::from_slice(&hash).ok_or_else(|| StoreError::Corrupt("audit head hash".into()))?,
            }))
        }

        /// The agency's newest checkpoint with `seq <= seq`, read in `tx`.
        async fn checkpoint_at_or_before_in(tx: &mut Tx, agency: &AgencyId, seq: i64) -> Result<Option<AuditCheckpoint>, StoreError> {
            let row = sqlx::query(&format!("SELECT {CHECKPOINT_COLS} FROM audit_checkpoints WHERE agency_id = $1 AND seq <= $2 ORDER BY seq DESC LIMIT 1"))
                .bind(agency.as_str())
                .bind(seq)
                .fetch_optional(&mut **tx)
                .await?;
            row.as_ref().map(checkpoint_row).transpose()
        }

        #[async_trait]
        impl AuditCheckpoints for $store {
            async fn audit_keys(&self) -> Result<Vec<AuditKeyRow>, StoreError> {
                let rows = sqlx::query(&format!("SELECT {AUDIT_KEY_COLS} FROM audit_keys ORDER BY generation"))
                    .fetch_all(self.read_pool())
                    .await?;
                rows.iter().map(audit_key_row).collect()
            }

            async fn insert_audit_key(&self, row: &AuditKeyRow) -> Result<(), StoreError> {
                sqlx::query(&format!("INSERT INTO audit_keys ({AUDIT_KEY_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"))
                    .bind(&row.kid)
                    .bind(row.generation)
                    .bind(&row.state)
                    .bind(row.created_at)
                    .bind(row.activates_at)
                    .bind(row.retires_at)
                    .bind(&row.public_key)
                    .bind(&row.sealed_private)
                    .execute(self.write_pool())
                    .await
                    .map_err(|e| match StoreError::from(e) {
                        StoreError::Conflict { .. } => StoreError::Conflict { constraint: "generation".to_owned() },
                        other => other,
                    })?;
                Ok(())
            }

            async fn update_audit_key(
                &self,
                kid: &str,
                expected: &str,
                state: &str,
                retires_at: Option<i64>,
                sealed_private: Option<&[u8]>,
            ) -> Result<bool, StoreError> {
                // One statement: the state check and the write are atomic (as `signing_keys`).
                let r = sqlx::query(
                    "UPDATE audit_keys SET state = $3, retires_at = COALESCE($4, retires_at), \
                     sealed_private = COALESCE($5, sealed_private) WHERE kid = $1 AND state = $2",
                )
                .bind(kid)
                .bind(expected)
                .bind(state)
                .bind(retires_at)
                .bind(sealed_private)
                .execute(self.write_pool())
                .await?;
                Ok(r.rows_affected() > 0)
            }

            async fn audit_head(&self, t: &TenantScope) -> Result<Option<AuditHead>, StoreError> {
                let mut tx = self.begin_tenant(t.agency(), false).await?;
                head_in(&mut tx, t.agency()).await
            }

            async fn audit_checkpoints(&self, t: &TenantScope, after_seq: i64, limit: u32) -> Result<Vec<AuditCheckpoint>, StoreError> {
                let mut tx = self.begin_tenant(t.agency(), false).await?;
                let rows = sqlx::query(&format!("SELECT {CHECKPOINT_COLS} FROM audit_checkpoints WHERE agency_id = $1 AND seq > $2 ORDER BY seq LIMIT $3"))
                    .bind(t.agency().as_str())
                    .bind(after_seq)
                    .bind(i64::from(limit.max(1)))
                    .fetch_all(&mut *tx)
                    .await?;
                rows.iter().map(checkpoint_row).collect()
            }

            async fn audit_checkpoint_at_or_before(&self, t: &TenantScope, seq: i64) -> Result<Option<AuditCheckpoint>, StoreError> {
                let mut tx = self.begin_tenant(t.agency(), false).await?;
                checkpoint_at_or_before_in(&mut tx, t.agency(), seq).await
            }

            async fn audit_checkpoint_basis(&self, t: &TenantScope, limit: u32) -> Result<Option<AuditCheckpointBasis>, StoreError> {
                // One read transaction: an append moves the head and inserts its events in one
                // commit, so the events up to any head read here are visible to the reads after.
                let mut tx = self.begin_tenant(t.agency(), false).await?;
                let Some(head) = head_in(&mut tx, t.agency()).await? else {
                    return Ok(None);
                };
                let checkpoint = checkpoint_at_or_before_in(&mut tx, t.agency(), head.seq).await?;
                let after = checkpoint.as_ref().map_or(0, |c| c.seq);
                let events = if after < head.seq {
                    chain_in(&mut tx, t.agency(), after, limit).await?
                } else {
                    Vec::new()
                };
                Ok(Some(AuditCheckpointBasis { head, checkpoint, events }))
            }

            async fn insert_audit_checkpoint(&self, t: &TenantScope, cp: &AuditCheckpoint) -> Result<bool, StoreError> {
                Ok(self.insert_audit_checkpoints(&[(t.clone(), cp.clone())]).await? > 0)
            }

            async fn insert_audit_checkpoints(&self, cps: &[(TenantScope, AuditCheckpoint)]) -> Result<usize, StoreError> {
                if cps.iter().any(|(t, cp)| &cp.agency_id != t.agency()) {
                    return Err(StoreError::Corrupt("checkpoint of another agency".into()));
                }
                let Some((first, _)) = cps.first() else { return Ok(0) };
                // The checkpoints in one transaction, which takes no chain head's lock.
                let mut tx = self.begin_tenant(first.agency(), true).await?;
                let mut new = 0;
                let mut current = first.agency().clone();
                for (t, cp) in cps {
                    if t.agency() != &current {
                        self.switch_tenant(&mut tx, t.agency()).await?;
                        current = t.agency().clone();
                    }
                    let inserted = sqlx::query(&format!("INSERT INTO audit_checkpoints ({CHECKPOINT_COLS}) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (agency_id, seq) DO NOTHING"))
                        .bind(t.agency().as_str())
                        .bind(cp.seq)
                        .bind(cp.hash.0.to_vec())
                        .bind(cp.at)
                        .bind(&cp.kid)
                        .bind(&cp.signature)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                    new += usize::from(inserted > 0);
                }
                tx.commit().await?;
                let marks: Vec<(TenantScope, i64, i64)> = cps.iter().map(|(t, cp)| (t.clone(), cp.seq, cp.at)).collect();
                self.audit_checkpointed(&marks).await?;
                Ok(new)
            }

            async fn audit_checkpointed(&self, heads: &[(TenantScope, i64, i64)]) -> Result<(), StoreError> {
                // A transaction per head: the update takes the head's row lock, which the
                // agency's appends wait for until the commit (and a token-issue batch holds the
                // heads of many agencies while it waits), so it is held for one statement.
                for (t, seq, at) in heads {
                    let mut tx = self.begin_tenant(t.agency(), true).await?;
                    // Its newest checkpoint, and its due mark: cleared, unless events came after
                    // the checkpointed one (an append holding the row's lock is waited for, and
                    // seen): then it stays due from `at`, about when they were read. (SET sees
                    // the row as it was: the old `checkpoint_seq`.)
                    sqlx::query(
                        "UPDATE audit_heads SET \
                         checkpoint_seq = CASE WHEN checkpoint_seq < $2 THEN $2 ELSE checkpoint_seq END, \
                         pending_since = CASE WHEN seq <= $2 OR seq <= checkpoint_seq THEN NULL ELSE $3 END \
                         WHERE agency_id = $1",
                    )
                    .bind(t.agency().as_str())
                    .bind(*seq)
                    .bind(*at)
                    .execute(&mut *tx)
                    .await?;
                    tx.commit().await?;
                }
                Ok(())
            }

            async fn audit_checkpoints_due(&self, min_events: i64, before_at: i64, sweep: bool, after: Option<&AgencyId>, limit: u32) -> Result<Vec<AuditCheckpointDue>, StoreError> {
                let mut tx = self.begin_lookup("tessera.audit_scan", "on").await?;
                // The marked heads only (the partial index `audit_heads_pending`, in agency
                // order); a sweep reads every head, and takes unmarked ones past their checkpoint.
                let which = if sweep { "(h.pending_since IS NULL OR " } else { "h.pending_since IS NOT NULL AND (" };
                let rows = sqlx::query(&format!(
                    "SELECT h.agency_id, h.seq, h.checkpoint_seq, h.pending_since FROM audit_heads h \
                     WHERE h.agency_id > $1 AND h.seq > h.checkpoint_seq \
                     AND {which}h.seq - h.checkpoint_seq >= $2 OR h.pending_since <= $3) \
                     ORDER BY h.agency_id LIMIT $4"
                ))
                .bind(after.map_or("", |a| a.as_str()))
                .bind(min_events)
                .bind(before_at)
                .bind(i64::from(limit.max(1)))
                .fetch_all(&mut *tx)
                .await?;
                rows.iter()
                    .map(|r| {
                        Ok(AuditCheckpointDue {
                            agency_id: col(r, "agency_id")?,
                            head_seq: r.try_get("seq")?,
                            checkpoint_seq: r.try_get("checkpoint_seq")?,
                            pending_since: r.try_get("pending_since")?,
                        })
                    })
                    .collect()
            }

            async fn audit_retention_all(&self, after: Option<&AgencyId>, limit: u32) -> Result<Vec<(AgencyId, Option<i64>)>, StoreError> {
                let mut tx = self.begin_lookup("tessera.audit_scan", "on").await?;
                let rows = sqlx::query(
                    "SELECT h.agency_id, r.days FROM audit_heads h LEFT JOIN audit_retention r ON r.agency_id = h.agency_id \
                     WHERE h.agency_id > $1 ORDER BY h.agency_id LIMIT $2",
                )
                .bind(after.map_or("", |a| a.as_str()))
                .bind(i64::from(limit.max(1)))
                .fetch_all(&mut *tx)
                .await?;
                rows.iter().map(|r| Ok((col(r, "agency_id")?, r.try_get("days")?))).collect()
            }

            async fn audit_retention(&self, t: &TenantScope) -> Result<Option<i64>, StoreError> {
                let mut tx = self.begin_tenant(t.agency(), false).await?;
                let row = sqlx::query("SELECT days FROM audit_retention WHERE agency_id = $1")
                    .bind(t.agency().as_str())
                    .fetch_optional(&mut *tx)
                    .await?;
                Ok(match row {
                    Some(r) => Some(r.try_get("days")?),
                    None => None,
                })
            }

            async fn set_audit_retention(&self, t: &TenantScope, days: Option<i64>, set_by: &str, now: i64, audit: &AuditRecord) -> Result<(), StoreError> {
                let mut tx = self.begin_tenant(t.agency(), true).await?;
                match days {
                    Some(d) => {
                        sqlx::query(
                            "INSERT INTO audit_retention (agency_id, days, set_by, set_at) VALUES ($1, $2, $3, $4) \
                             ON CONFLICT (agency_id) DO UPDATE SET days = excluded.days, set_by = excluded.set_by, set_at = excluded.set_at",
                        )
                        .bind(t.agency().as_str())
                        .bind(d)
                        .bind(set_by)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                    }
                    None => {
                        sqlx::query("DELETE FROM audit_retention WHERE agency_id = $1")
                            .bind(t.agency().as_str())
                            .execute(&mut *tx)
                            .await?;
                    }
                }
                append_event(&mut tx, t.agency(), audit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn prune_audit(&self, t: &TenantScope, cutoff: i64, audit: &AuditRecord) -> Result<Option<AuditPrune>, StoreError> {
                let mut tx = self.begin_tenant(t.agency(), true).await?;
                // The newest checkpoint signed before the cutoff: every event it covers is older.
                let row = sqlx::query(&format!(
                    "SELECT {CHECKPOINT_COLS} FROM audit_checkpoints WHERE agency_id = $1 AND at < $2 ORDER BY seq DESC LIMIT 1"
                ))
                .bind(t.agency().as_str())
                .bind(cutoff)
                .fetch_optional(&mut *tx)
                .await?;
                let Some(cp) = row.as_ref().map(checkpoint_row).transpose()? else {
                    return Ok(None);
                };
                let deleted = sqlx::query("DELETE FROM audit_events WHERE agency_id = $1 AND seq <= $2")
                    .bind(t.agency().as_str())
                    .bind(cp.seq)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if deleted == 0 {
                    return Ok(None);
                }
                sqlx::query("DELETE FROM audit_checkpoints WHERE agency_id = $1 AND seq < $2")
                    .bind(t.agency().as_str())
                    .bind(cp.seq)
                    .execute(&mut *tx)
                    .await?;
                let mut record = audit.clone();
                if !record.detail.is_object() {
                    record.detail = serde_json::json!({});
                }
                record.detail["through_seq"] = serde_json::json!(cp.seq);
                record.detail["checkpoint_hash"] = serde_json::json!(cp.hash.to_hex());
                record.detail["events"] = serde_json::json!(deleted);
                append_event(&mut tx, t.agency(), &record).await?;
                tx.commit().await?;
                Ok(Some(AuditPrune { through_seq: cp.seq, events: deleted }))
            }
        }
    };
}

pub(crate) use audit_checkpoints;
