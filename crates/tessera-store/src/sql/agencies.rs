//! Platform administration: migrate, ping, bootstrap and the agencies (global rows).
//!
//! INVARIANT: bootstrap is all-or-nothing and happens once; a deleted agency's keys are
//! revoked and their secrets dropped in the same transaction.

macro_rules! agencies {
    ($store:ty, $backend:literal) => {
        const AGENCY_COLS: &str = "id, name, status, is_platform, created_at, updated_at, suspended_reason, suspended_at";

        fn agency_row(row: &DbRow) -> Result<Agency, StoreError> {
            Ok(Agency {
                id: col(row, "id")?,
                name: row.try_get("name")?,
                status: status(row)?,
                suspended_reason: row.try_get("suspended_reason")?,
                suspended_at: row.try_get("suspended_at")?,
                is_platform: row.try_get("is_platform")?,
                created_at: row.try_get("created_at")?,
                updated_at: row.try_get("updated_at")?,
            })
        }

        async fn insert_agency(tx: &mut Tx, a: &Agency) -> Result<(), StoreError> {
            sqlx::query(&format!("INSERT INTO agencies ({AGENCY_COLS}) VALUES ($1, $2, $3, $4, $5, $6, NULL, NULL)"))
                .bind(a.id.as_str())
                .bind(&a.name)
                .bind(a.status.as_str())
                .bind(a.is_platform)
                .bind(a.created_at)
                .bind(a.updated_at)
                .execute(&mut **tx)
                .await?;
            Ok(())
        }

        #[async_trait]
        impl PlatformAdmin for $store {
            fn backend(&self) -> &'static str {
                $backend
            }

            async fn migrate(&self) -> Result<usize, StoreError> {
                self.migrate_impl().await
            }

            async fn ping(&self) -> Result<(), StoreError> {
                sqlx::query("SELECT 1").execute(self.read_pool()).await?;
                Ok(())
            }

            async fn platform_agency(&self) -> Result<Option<Agency>, StoreError> {
                let row = sqlx::query(&format!("SELECT {AGENCY_COLS} FROM agencies WHERE is_platform"))
                    .fetch_optional(self.read_pool())
                    .await?;
                row.as_ref().map(agency_row).transpose()
            }

            async fn bootstrap(&self, b: Bootstrap) -> Result<bool, StoreError> {
                let mut tx = self.begin_tenant(&b.platform.id, true).await?;
                let existing = sqlx::query("SELECT id FROM agencies WHERE is_platform").fetch_optional(&mut *tx).await?;
                if existing.is_some() {
                    return Ok(false);
                }
                insert_agency(&mut tx, &b.platform).await?;
                insert_key(&mut tx, &b.platform.id, &b.key, &b.secret).await?;
                insert_binding(&mut tx, &b.platform.id, &b.binding).await?;
                finish(tx, &b.platform.id, &b.audit, Some(("bootstrap", b.platform.id.as_str()))).await?;
                Ok(true)
            }

            async fn create_agency(&self, a: &Agency, audit: &AuditRecord) -> Result<(), StoreError> {
                let mut tx = self.begin_tenant(&a.id, true).await?;
                insert_agency(&mut tx, a).await?;
                finish(tx, &a.id, audit, Some(("agency.create", a.id.as_str()))).await
            }

            async fn get_agency(&self, id: &AgencyId) -> Result<Agency, StoreError> {
                let row = sqlx::query(&format!("SELECT {AGENCY_COLS} FROM agencies WHERE id = $1 AND status <> 'deleted'"))
                    .bind(id.as_str())
                    .fetch_optional(self.read_pool())
                    .await?
                    .ok_or(StoreError::NotFound)?;
                agency_row(&row)
            }

            async fn list_agencies(&self, page: &PageRequest) -> Result<Page<Agency>, StoreError> {
                let limit = page_limit(page.limit);
                let rows = sqlx::query(&format!("SELECT {AGENCY_COLS} FROM agencies WHERE NOT is_platform AND status <> 'deleted' AND id > $1 ORDER BY id LIMIT $2"))
                    .bind(page.cursor.as_deref().unwrap_or(""))
                    .bind(limit + 1)
                    .fetch_all(self.read_pool())
                    .await?;
                let items = rows.iter().map(agency_row).collect::<Result<Vec<_>, _>>()?;
                Ok(paginate(items, limit, |a| a.id.to_string()))
            }

            async fn update_agency(&self, id: &AgencyId, name: &str, now: i64, audit: &AuditRecord) -> Result<Agency, StoreError> {
                let mut tx = self.begin_tenant(id, true).await?;
                let row = sqlx::query(&format!("UPDATE agencies SET name = $2, updated_at = $3 WHERE id = $1 AND status <> 'deleted' RETURNING {AGENCY_COLS}"))
                    .bind(id.as_str())
                    .bind(name)
                    .bind(now)
                    .fetch_optional(&mut *tx)
                    .await?
                    .ok_or(StoreError::NotFound)?;
                let agency = agency_row(&row)?;
                finish(tx, id, audit, None).await?;
                Ok(agency)
            }

            async fn delete_agency(&self, id: &AgencyId, now: i64, audit: &AuditRecord) -> Result<(), StoreError> {
                let mut tx = self.begin_tenant(id, true).await?;
                let done = sqlx::query("UPDATE agencies SET status = 'deleted', updated_at = $2 WHERE id = $1 AND status <> 'deleted' AND NOT is_platform")
                    .bind(id.as_str())
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound);
                }
                sqlx::query("UPDATE api_keys SET revoked_at = $2 WHERE agency_id = $1 AND revoked_at IS NULL")
                    .bind(id.as_str())
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("DELETE FROM api_key_secrets WHERE agency_id = $1").bind(id.as_str()).execute(&mut *tx).await?;
                // Crypto-shredding: the agency's data key goes with it, in this transaction.
                sqlx::query("DELETE FROM agency_data_keys WHERE agency_id = $1").bind(id.as_str()).execute(&mut *tx).await?;
                sqlx::query("DELETE FROM person_keys WHERE agency_id = $1").bind(id.as_str()).execute(&mut *tx).await?;
                finish(tx, id, audit, Some(("agency.delete", id.as_str()))).await
            }

            async fn set_agency_suspended(&self, id: &AgencyId, reason: Option<&str>, now: i64, audit: &AuditRecord) -> Result<(Agency, bool), StoreError> {
                let mut tx = self.begin_tenant(id, true).await?;
                let (from, to, kind) = match reason {
                    Some(_) => ("active", "suspended", "agency.suspend"),
                    None => ("suspended", "active", "agency.reinstate"),
                };
                let changed = sqlx::query(&format!("UPDATE agencies SET status = $2, suspended_reason = $3, suspended_at = $4, updated_at = $5 WHERE id = $1 AND status = $6 AND NOT is_platform RETURNING {AGENCY_COLS}"))
                    .bind(id.as_str())
                    .bind(to)
                    .bind(reason)
                    .bind(reason.map(|_| now))
                    .bind(now)
                    .bind(from)
                    .fetch_optional(&mut *tx)
                    .await?;
                match changed {
                    Some(row) => {
                        let agency = agency_row(&row)?;
                        finish(tx, id, audit, Some((kind, id.as_str()))).await?;
                        Ok((agency, true))
                    }
                    None => {
                        let row = sqlx::query(&format!("SELECT {AGENCY_COLS} FROM agencies WHERE id = $1 AND status <> 'deleted' AND NOT is_platform"))
                            .bind(id.as_str())
                            .fetch_optional(&mut *tx)
                            .await?
                            .ok_or(StoreError::NotFound)?;
                        Ok((agency_row(&row)?, false))
                    }
                }
            }
        }
    };
}

pub(crate) use agencies;
