//! The revision counter, the change log, commit of a write with its audit event, and the
//! authorization snapshot.
//!
//! INVARIANT: revisions come from one counter row updated inside each writing transaction, so
//! commit order is revision order and the feed is gap-free.

macro_rules! change_feed {
    ($store:ty) => {
        fn change_row(row: &DbRow) -> Result<Change, StoreError> {
            Ok(Change {
                revision: row.try_get("revision")?,
                agency: col(row, "agency_id")?,
                kind: row.try_get("kind")?,
                entity: row.try_get("entity")?,
            })
        }

        /// Bumps the global revision and records what changed, inside `tx`.
        async fn record_change(tx: &mut Tx, agency: &AgencyId, kind: &str, entity: &str, at: i64) -> Result<i64, StoreError> {
            $crate::written::changed();
            let rev: i64 = sqlx::query("UPDATE revision SET value = value + 1 WHERE id = 1 RETURNING value")
                .fetch_one(&mut **tx)
                .await?
                .try_get("value")?;
            sqlx::query("INSERT INTO change_log (agency_id, revision, kind, entity, at) VALUES ($1, $2, $3, $4, $5)")
                .bind(agency.as_str())
                .bind(rev)
                .bind(kind)
                .bind(entity)
                .bind(at)
                .execute(&mut **tx)
                .await?;
            Ok(rev)
        }

        /// Commits a write with its audit event and, for decision-changing writes, its change.
        async fn finish(mut tx: Tx, agency: &AgencyId, audit: &AuditRecord, change: Option<(&str, &str)>) -> Result<(), StoreError> {
            append_event(&mut tx, agency, audit).await?;
            if let Some((kind, entity)) = change {
                record_change(&mut tx, agency, kind, entity, audit.at).await?;
            }
            tx.commit().await?;
            $crate::written::committed();
            Ok(())
        }

        /// Revoked grants stay in the snapshot this long after they expire (clock skew).
        const REVOKED_GRANT_MARGIN_MS: i64 = 86_400_000;

        /// The `kind IN (…)` list of the revocation feed (constant names, no input).
        fn revocation_kinds_sql() -> String {
            $crate::records::REVOCATION_KINDS
                .iter()
                .map(|k| format!("'{k}'"))
                .collect::<Vec<_>>()
                .join(", ")
        }

        fn revocation_row(row: &DbRow) -> Result<RevocationChange, StoreError> {
            Ok(RevocationChange {
                revision: row.try_get("revision")?,
                agency: col(row, "agency_id")?,
                kind: row.try_get("kind")?,
                entity: row.try_get("entity")?,
                at: row.try_get("at")?,
                user_status: None,
            })
        }

        /// Fills `user_status` of the `user.status` entries of `agency` from its users, read in
        /// `tx` (a transaction of that tenant).
        async fn fill_user_status(tx: &mut Tx, agency: &AgencyId, items: &mut [RevocationChange]) -> Result<(), StoreError> {
            let ids: Vec<String> = items
                .iter()
                .filter(|c| c.kind == "user.status" && &c.agency == agency)
                .map(|c| c.entity.clone())
                .collect();
            if ids.is_empty() {
                return Ok(());
            }
            let sql = format!("SELECT id, status FROM users WHERE agency_id = $1 AND id IN ({})", placeholders(2, ids.len()));
            let mut q = sqlx::query(&sql).bind(agency.as_str());
            for id in &ids {
                q = q.bind(id);
            }
            let rows = q.fetch_all(&mut **tx).await?;
            let mut status = std::collections::HashMap::new();
            for r in &rows {
                let id: String = r.try_get("id")?;
                let st: String = r.try_get("status")?;
                status.insert(id, Status::parse(&st));
            }
            for c in items.iter_mut().filter(|c| c.kind == "user.status" && &c.agency == agency) {
                c.user_status = status.get(&c.entity).copied().flatten();
            }
            Ok(())
        }

        #[async_trait]
        impl ChangeFeed for $store {
            async fn revision(&self) -> Result<i64, StoreError> {
                Ok(sqlx::query("SELECT value FROM revision WHERE id = 1").fetch_one(self.read_pool()).await?.try_get("value")?)
            }

            async fn authz_snapshot(&self, t: &TenantScope, now: i64) -> Result<AuthzSnapshot, StoreError> {
                // One snapshot for every read: a write is in all of them or in none. On
                // PostgreSQL in one round trip (this is the cold path: the first check in an
                // agency not held waits for it); each backend reads it its own way
                // (`snapshot_reads`). Read only: dropped, not
                // committed. Its `ROLLBACK` is sent when the connection goes back to the pool
                // (sqlx pings it there), not waited for here; a commit would cost this request
                // one more round trip for nothing.
                let mut tx = self.begin_snapshot(t.agency()).await?;
                let grant_cutoff = now.saturating_sub(REVOKED_GRANT_MARGIN_MS);
                let snap = self.snapshot_reads(&mut tx, t.agency(), grant_cutoff, now).await;
                drop(tx);
                snap
            }

            async fn changes_since(&self, after_revision: i64, limit: u32) -> Result<Vec<Change>, StoreError> {
                let mut tx = self.begin_feed().await?;
                let rows = sqlx::query("SELECT agency_id, revision, kind, entity FROM change_log WHERE revision > $1 ORDER BY revision LIMIT $2")
                    .bind(after_revision)
                    .bind(i64::from(limit.clamp(1, MAX_FEED)))
                    .fetch_all(&mut *tx)
                    .await?;
                tx.commit().await?;
                rows.iter().map(change_row).collect()
            }

            async fn revocations_since(&self, tenant: Option<&TenantScope>, after_revision: i64, min_at: i64, limit: u32) -> Result<Vec<RevocationChange>, StoreError> {
                let limit = i64::from(limit.clamp(1, 1000));
                let kinds = revocation_kinds_sql();
                match tenant {
                    Some(t) => {
                        let mut tx = self.begin_snapshot(t.agency()).await?;
                        let rows = sqlx::query(&format!(
                            "SELECT agency_id, revision, kind, entity, at FROM change_log \
                             WHERE agency_id = $1 AND revision > $2 AND at > $3 AND kind IN ({kinds}) ORDER BY revision LIMIT $4"
                        ))
                        .bind(t.agency().as_str())
                        .bind(after_revision)
                        .bind(min_at)
                        .bind(limit)
                        .fetch_all(&mut *tx)
                        .await?;
                        let mut items = rows.iter().map(revocation_row).collect::<Result<Vec<_>, _>>()?;
                        fill_user_status(&mut tx, t.agency(), &mut items).await?;
                        tx.commit().await?;
                        Ok(items)
                    }
                    None => {
                        let mut tx = self.begin_feed().await?;
                        let rows = sqlx::query(&format!(
                            "SELECT agency_id, revision, kind, entity, at FROM change_log \
                             WHERE revision > $1 AND at > $2 AND kind IN ({kinds}) ORDER BY revision LIMIT $3"
                        ))
                        .bind(after_revision)
                        .bind(min_at)
                        .bind(limit)
                        .fetch_all(&mut *tx)
                        .await?;
                        tx.commit().await?;
                        let mut items = rows.iter().map(revocation_row).collect::<Result<Vec<_>, _>>()?;
                        // A user's status is read in its own tenant (the feed reader sees no users).
                        let mut agencies: Vec<AgencyId> = items.iter().filter(|c| c.kind == "user.status").map(|c| c.agency.clone()).collect();
                        agencies.sort();
                        agencies.dedup();
                        for agency in agencies {
                            let mut tx = self.begin_tenant(&agency, false).await?;
                            fill_user_status(&mut tx, &agency, &mut items).await?;
                            tx.commit().await?;
                        }
                        Ok(items)
                    }
                }
            }

            async fn revocations_dropped(&self, tenant: Option<&TenantScope>, after_revision: i64, cutoff: i64) -> Result<bool, StoreError> {
                let kinds = revocation_kinds_sql();
                let row = match tenant {
                    Some(t) => {
                        let mut tx = self.begin_tenant(t.agency(), false).await?;
                        let row = sqlx::query(&format!(
                            "SELECT revision FROM change_log WHERE agency_id = $1 AND revision > $2 AND at <= $3 AND kind IN ({kinds}) ORDER BY revision LIMIT 1"
                        ))
                        .bind(t.agency().as_str())
                        .bind(after_revision)
                        .bind(cutoff)
                        .fetch_optional(&mut *tx)
                        .await?;
                        tx.commit().await?;
                        row
                    }
                    None => {
                        let mut tx = self.begin_feed().await?;
                        let row = sqlx::query(&format!(
                            "SELECT revision FROM change_log WHERE revision > $1 AND at <= $2 AND kind IN ({kinds}) ORDER BY revision LIMIT 1"
                        ))
                        .bind(after_revision)
                        .bind(cutoff)
                        .fetch_optional(&mut *tx)
                        .await?;
                        tx.commit().await?;
                        row
                    }
                };
                Ok(row.is_some())
            }

            async fn suspensions(&self) -> Result<Suspensions, StoreError> {
                let agencies = sqlx::query("SELECT id FROM agencies WHERE status = 'suspended' ORDER BY id")
                    .fetch_all(self.read_pool())
                    .await?
                    .iter()
                    .map(|r| col(r, "id"))
                    .collect::<Result<Vec<AgencyId>, _>>()?;
                // The feed reader sees exactly the suspended accounts and the apps of
                // suspended agencies (row-level security on PostgreSQL).
                let mut tx = self.begin_feed().await?;
                let accounts = sqlx::query("SELECT agency_id, id FROM accounts WHERE status = 'suspended' ORDER BY agency_id, id")
                    .fetch_all(&mut *tx)
                    .await?
                    .iter()
                    .map(|r| Ok((col(r, "agency_id")?, col(r, "id")?)))
                    .collect::<Result<Vec<(AgencyId, AccountId)>, StoreError>>()?;
                let apps = sqlx::query("SELECT id, agency_id FROM apps WHERE agency_id IN (SELECT id FROM agencies WHERE status = 'suspended') ORDER BY id")
                    .fetch_all(&mut *tx)
                    .await?
                    .iter()
                    .map(|r| Ok((col(r, "id")?, col(r, "agency_id")?)))
                    .collect::<Result<Vec<(AppId, AgencyId)>, StoreError>>()?;
                tx.commit().await?;
                Ok(Suspensions { agencies, accounts, apps })
            }
        }
    };
}

pub(crate) use change_feed;
