//! The per-agency audit chain: append (one event or a group commit), list and export.
//!
//! INVARIANT: an agency's head row is moved once per append under its row lock, so the chain
//! never forks; batches take the heads in agency order, so they cannot deadlock.

macro_rules! audit {
    ($store:ty) => {
        const EVENT_COLS: &str = "agency_id, seq, id, at, actor, on_behalf_of, action, target, outcome, request_id, ip, user_agent, detail, prev_hash, hash";

        fn event_row(row: &DbRow) -> Result<AuditEvent, StoreError> {
            let outcome: String = row.try_get("outcome")?;
            let detail: String = row.try_get("detail")?;
            let hash = |name: &str| -> Result<ChainHash, StoreError> {
                let b: Vec<u8> = row.try_get(name)?;
                ChainHash::from_slice(&b).ok_or_else(|| StoreError::Corrupt(format!("column `{name}`: not 32 bytes")))
            };
            Ok(AuditEvent {
                seq: row.try_get("seq")?,
                agency_id: col(row, "agency_id")?,
                id: col(row, "id")?,
                at: row.try_get("at")?,
                actor: row.try_get("actor")?,
                on_behalf_of: row.try_get("on_behalf_of")?,
                action: row.try_get("action")?,
                target: row.try_get("target")?,
                outcome: Outcome::parse(&outcome).ok_or_else(|| StoreError::Corrupt(format!("outcome `{outcome}`")))?,
                request_id: row.try_get("request_id")?,
                ip: row.try_get("ip")?,
                user_agent: row.try_get("user_agent")?,
                detail: serde_json::from_str(&detail)?,
                prev_hash: hash("prev_hash")?,
                hash: hash("hash")?,
            })
        }

        /// Appends one event to the agency's chain, inside `tx`.
        async fn append_event(tx: &mut Tx, agency: &AgencyId, r: &AuditRecord) -> Result<AuditEvent, StoreError> {
            let links = append_events(tx, agency, &[r]).await?;
            let Some(&(seq, prev_hash, hash)) = links.first() else {
                return Err(StoreError::Corrupt("no audit event appended".into()));
            };
            Ok(AuditEvent::linked(seq, agency, r, prev_hash, hash))
        }

        /// Appends events to one agency's chain inside `tx`: the head is moved once (its row
        /// lock queues concurrent writers of the agency, so the chain never forks), the hashes
        /// are chained here, and the rows go in a few multi-row inserts (group commit of
        /// hot-path events such as token issue). Returns each event's (seq, prev, hash).
        async fn append_events(tx: &mut Tx, agency: &AgencyId, records: &[&AuditRecord]) -> Result<Vec<(i64, ChainHash, ChainHash)>, StoreError> {
            let Ok(n) = i64::try_from(records.len()) else {
                return Err(StoreError::Corrupt("too many audit events in one batch".into()));
            };
            if n == 0 {
                return Ok(Vec::new());
            }
            // The first event after a checkpoint marks the head as due (`pending_since`, kept
            // until the checkpointer clears it): the checkpointer reads only marked heads.
            const BUMP: &str = "UPDATE audit_heads SET seq = seq + $2, pending_since = COALESCE(pending_since, $3) WHERE agency_id = $1 RETURNING seq, hash";
            let since = records.iter().map(|r| r.at).min().unwrap_or(0);
            let head = sqlx::query(BUMP).bind(agency.as_str()).bind(n).bind(since).fetch_optional(&mut **tx).await?;
            let row = match head {
                Some(row) => row,
                None => {
                    sqlx::query("INSERT INTO audit_heads (agency_id, seq, hash) VALUES ($1, 0, $2) ON CONFLICT (agency_id) DO NOTHING")
                        .bind(agency.as_str())
                        .bind(ChainHash::GENESIS.0.to_vec())
                        .execute(&mut **tx)
                        .await?;
                    sqlx::query(BUMP).bind(agency.as_str()).bind(n).bind(since).fetch_one(&mut **tx).await?
                }
            };
            let prev: Vec<u8> = row.try_get("hash")?;
            let mut prev = ChainHash::from_slice(&prev).ok_or_else(|| StoreError::Corrupt("audit head hash".into()))?;
            let last: i64 = row.try_get("seq")?;
            let first = last - n + 1;
            let mut chained = Vec::with_capacity(records.len());
            for (i, r) in records.iter().enumerate() {
                let seq = first + i64::try_from(i).unwrap_or(0);
                let hash = chain_hash(seq, agency, r, &prev);
                chained.push((seq, *r, prev, hash));
                prev = hash;
            }
            sqlx::query("UPDATE audit_heads SET hash = $2 WHERE agency_id = $1")
                .bind(agency.as_str())
                .bind(prev.0.to_vec())
                .execute(&mut **tx)
                .await?;
            const COLS: usize = 15;
            // Small chunks: SQLite resolves each `$n` by name, so cost grows with the square
            // of the parameters in one statement.
            for chunk in chained.chunks(8) {
                let values = (0..chunk.len())
                    .map(|i| format!("({})", placeholders(i * COLS + 1, COLS)))
                    .collect::<Vec<_>>()
                    .join(", ");
                let sql = format!(
                    "INSERT INTO audit_events (agency_id, seq, id, at, actor, on_behalf_of, action, target, outcome, request_id, ip, user_agent, detail, prev_hash, hash) VALUES {values}"
                );
                let mut q = sqlx::query(&sql);
                for (seq, r, prev, hash) in chunk {
                    q = q
                        .bind(agency.as_str())
                        .bind(*seq)
                        .bind(r.id.as_str())
                        .bind(r.at)
                        .bind(&r.actor)
                        .bind(&r.on_behalf_of)
                        .bind(&r.action)
                        .bind(&r.target)
                        .bind(r.outcome.as_str())
                        .bind(&r.request_id)
                        .bind(&r.ip)
                        .bind(&r.user_agent)
                        .bind(r.detail.to_string())
                        .bind(prev.0.to_vec())
                        .bind(hash.0.to_vec());
                }
                q.execute(&mut **tx).await?;
            }
            Ok(chained.into_iter().map(|(seq, _, prev, hash)| (seq, prev, hash)).collect())
        }

        /// The agency's events with `seq > after_seq`, in order, at most `limit`, read in `tx`.
        async fn chain_in(tx: &mut Tx, agency: &AgencyId, after_seq: i64, limit: u32) -> Result<Vec<AuditEvent>, StoreError> {
            let rows = sqlx::query(&format!("SELECT {EVENT_COLS} FROM audit_events WHERE agency_id = $1 AND seq > $2 ORDER BY seq LIMIT $3"))
                .bind(agency.as_str())
                .bind(after_seq)
                .bind(i64::from(limit.max(1)))
                .fetch_all(&mut **tx)
                .await?;
            rows.iter().map(event_row).collect()
        }

        #[async_trait]
        impl AuditLog for $store {
            async fn append_audit(&self, t: &TenantScope, audit: &AuditRecord) -> Result<AuditEvent, StoreError> {
                let mut tx = self.begin_tenant(t.agency(), true).await?;
                let e = append_event(&mut tx, t.agency(), audit).await?;
                tx.commit().await?;
                Ok(e)
            }

            async fn list_audit(&self, t: &TenantScope, f: &AuditFilter, page: &PageRequest) -> Result<Page<AuditEvent>, StoreError> {
                let limit = page_limit(page.limit);
                let after_seq: i64 = match page.cursor.as_deref() {
                    None => 0,
                    Some(c) => c.parse().map_err(|_| StoreError::NotFound)?,
                };
                let mut tx = self.begin_tenant(t.agency(), false).await?;
                let rows = sqlx::query(&format!(
                    "SELECT {EVENT_COLS} FROM audit_events WHERE agency_id = $1 AND seq > $2 \
                     AND ($3 IS NULL OR at >= $3) AND ($4 IS NULL OR actor = $4) AND ($5 IS NULL OR action = $5) \
                     ORDER BY seq LIMIT $6"
                ))
                .bind(t.agency().as_str())
                .bind(after_seq)
                .bind(f.after)
                .bind(&f.actor)
                .bind(&f.action)
                .bind(limit + 1)
                .fetch_all(&mut *tx)
                .await?;
                let items = rows.iter().map(event_row).collect::<Result<Vec<_>, _>>()?;
                Ok(paginate(items, limit, |e| e.seq.to_string()))
            }

            async fn audit_chain(&self, t: &TenantScope, after_seq: i64, limit: u32) -> Result<Vec<AuditEvent>, StoreError> {
                let mut tx = self.begin_tenant(t.agency(), false).await?;
                chain_in(&mut tx, t.agency(), after_seq, limit).await
            }

            async fn append_audit_batch(&self, events: &[(TenantScope, AuditRecord)]) -> Result<(), StoreError> {
                // Agencies in one fixed order, each chain's own order kept (a stable sort):
                // concurrent batches take the chain heads' locks in the same order, so they
                // cannot deadlock.
                let mut order: Vec<&(TenantScope, AuditRecord)> = events.iter().collect();
                order.sort_by(|a, b| a.0.agency().as_str().cmp(b.0.agency().as_str()));
                let Some((first, _)) = order.first() else { return Ok(()) };
                let mut tx = self.begin_tenant(first.agency(), true).await?;
                for (i, group) in order.chunk_by(|a, b| a.0.agency() == b.0.agency()).enumerate() {
                    let agency = group[0].0.agency();
                    if i > 0 {
                        self.switch_tenant(&mut tx, agency).await?;
                    }
                    let records: Vec<&AuditRecord> = group.iter().map(|(_, r)| r).collect();
                    append_events(&mut tx, agency, &records).await?;
                }
                tx.commit().await?;
                Ok(())
            }
        }
    };
}

pub(crate) use audit;
