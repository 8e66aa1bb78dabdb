//! API keys and their secret hashes.
//!
//! INVARIANT: revoking a key drops its secrets and bindings at once; a rotation keeps the old
//! secrets valid until `old_valid_until` at the latest.

macro_rules! api_keys {
    ($store:ty) => {
        const KEY_COLS: &str = "agency_id, id, name, account_id, scopes, created_by, created_at, expires_at, revoked_at, last_used_at, rotated_at, rate_limit, rate_period_seconds";

        fn key_row(row: &DbRow) -> Result<ApiKey, StoreError> {
            let scopes: String = row.try_get("scopes")?;
            Ok(ApiKey {
                id: col(row, "id")?,
                agency_id: col(row, "agency_id")?,
                name: row.try_get("name")?,
                account: opt_col(row, "account_id")?,
                scopes: serde_json::from_str(&scopes)?,
                created_by: row.try_get("created_by")?,
                created_at: row.try_get("created_at")?,
                expires_at: row.try_get("expires_at")?,
                revoked_at: row.try_get("revoked_at")?,
                last_used_at: row.try_get("last_used_at")?,
                rotated_at: row.try_get("rotated_at")?,
                rate_limit: {
                    let l: Option<i64> = row.try_get("rate_limit")?;
                    let p: Option<i64> = row.try_get("rate_period_seconds")?;
                    match (l.and_then(|l| u32::try_from(l).ok()), p.and_then(|p| u32::try_from(p).ok())) {
                        (Some(limit), Some(period_seconds)) => Some(KeyRateLimit { limit, period_seconds }),
                        _ => None,
                    }
                },
            })
        }

        /// Inserts `k` into `agency` (the scope's, never the record's own `agency_id`).
        async fn insert_key(tx: &mut Tx, agency: &AgencyId, k: &ApiKey, s: &SecretHashRecord) -> Result<(), StoreError> {
            sqlx::query(&format!("INSERT INTO api_keys ({KEY_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, NULL, NULL, $9, $10)"))
                .bind(agency.as_str())
                .bind(k.id.as_str())
                .bind(&k.name)
                .bind(k.account.as_ref().map(AccountId::as_str))
                .bind(serde_json::to_string(&k.scopes)?)
                .bind(&k.created_by)
                .bind(k.created_at)
                .bind(k.expires_at)
                .bind(k.rate_limit.map(|r| i64::from(r.limit)))
                .bind(k.rate_limit.map(|r| i64::from(r.period_seconds)))
                .execute(&mut **tx)
                .await?;
            insert_secret(tx, agency, &k.id, s, k.created_at).await
        }

        async fn insert_secret(tx: &mut Tx, agency: &AgencyId, key: &KeyId, s: &SecretHashRecord, now: i64) -> Result<(), StoreError> {
            sqlx::query("INSERT INTO api_key_secrets (agency_id, key_id, secret_hash, pepper_version, valid_until, created_at) VALUES ($1, $2, $3, $4, NULL, $5)")
                .bind(agency.as_str())
                .bind(key.as_str())
                .bind(&s.hash)
                .bind(s.pepper_version)
                .bind(now)
                .execute(&mut **tx)
                .await?;
            Ok(())
        }

        async fn fetch_key(tx: &mut Tx, agency: &AgencyId, id: &KeyId) -> Result<ApiKey, StoreError> {
            fetch_by_id(tx, KEY_COLS, "api_keys", agency, id.as_str(), key_row).await
        }

        /// Removes the bindings held by, and the secrets of, keys matching `filter`.
        async fn drop_key_grants(tx: &mut Tx, agency: &AgencyId, key_filter: &str, arg: &str) -> Result<(), StoreError> {
            sqlx::query(&format!("DELETE FROM bindings WHERE agency_id = $1 AND principal IN (SELECT id FROM api_keys WHERE agency_id = $1 AND {key_filter})"))
                .bind(agency.as_str())
                .bind(arg)
                .execute(&mut **tx)
                .await?;
            sqlx::query(&format!("DELETE FROM api_key_secrets WHERE agency_id = $1 AND key_id IN (SELECT id FROM api_keys WHERE agency_id = $1 AND {key_filter})"))
                .bind(agency.as_str())
                .bind(arg)
                .execute(&mut **tx)
                .await?;
            Ok(())
        }

        impl $store {
            async fn create_api_key_impl(&self, t: &TenantScope, k: &ApiKey, secret: &SecretHashRecord, bindings: &[Binding], audit: &AuditRecord) -> Result<(), StoreError> {
                let mut tx = self.begin_tenant(t.agency(), true).await?;
                insert_key(&mut tx, t.agency(), k, secret).await?;
                for b in bindings {
                    insert_binding(&mut tx, t.agency(), b).await?;
                }
                finish(tx, t.agency(), audit, Some(("api_key.create", k.id.as_str()))).await
            }

            async fn get_api_key_impl(&self, t: &TenantScope, id: &KeyId) -> Result<ApiKey, StoreError> {
                let mut tx = self.begin_tenant(t.agency(), false).await?;
                fetch_key(&mut tx, t.agency(), id).await
            }

            async fn list_api_keys_impl(&self, t: &TenantScope, page: &PageRequest) -> Result<Page<ApiKey>, StoreError> {
                self.tenant_page(t, page, KEY_COLS, "api_keys", key_row, |k| k.id.to_string()).await
            }

            async fn revoke_api_key_impl(&self, t: &TenantScope, id: &KeyId, now: i64, audit: &AuditRecord) -> Result<ApiKey, StoreError> {
                let mut tx = self.begin_tenant(t.agency(), true).await?;
                let key = fetch_key(&mut tx, t.agency(), id).await?;
                if key.revoked_at.is_some() {
                    return Ok(key);
                }
                drop_key_grants(&mut tx, t.agency(), "id = $2", id.as_str()).await?;
                sqlx::query("UPDATE api_keys SET revoked_at = $3 WHERE agency_id = $1 AND id = $2")
                    .bind(t.agency().as_str())
                    .bind(id.as_str())
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                let key = fetch_key(&mut tx, t.agency(), id).await?;
                finish(tx, t.agency(), audit, Some(("api_key.revoke", id.as_str()))).await?;
                Ok(key)
            }

            async fn rotate_api_key_impl(&self, t: &TenantScope, id: &KeyId, secret: &SecretHashRecord, old_valid_until: i64, now: i64, audit: &AuditRecord) -> Result<ApiKey, StoreError> {
                let agency = t.agency().as_str();
                let mut tx = self.begin_tenant(t.agency(), true).await?;
                let key = fetch_key(&mut tx, t.agency(), id).await?;
                if key.revoked_at.is_some() {
                    return Err(StoreError::NotFound);
                }
                // Secrets already past their grace are dropped; the rest end at `old_valid_until` at the latest.
                sqlx::query("DELETE FROM api_key_secrets WHERE agency_id = $1 AND key_id = $2 AND valid_until IS NOT NULL AND valid_until <= $3")
                    .bind(agency).bind(id.as_str()).bind(now).execute(&mut *tx).await?;
                sqlx::query("UPDATE api_key_secrets SET valid_until = $3 WHERE agency_id = $1 AND key_id = $2 AND (valid_until IS NULL OR valid_until > $3)")
                    .bind(agency).bind(id.as_str()).bind(old_valid_until).execute(&mut *tx).await?;
                insert_secret(&mut tx, t.agency(), id, secret, now).await?;
                sqlx::query("UPDATE api_keys SET rotated_at = $3 WHERE agency_id = $1 AND id = $2")
                    .bind(agency).bind(id.as_str()).bind(now).execute(&mut *tx).await?;
                let key = fetch_key(&mut tx, t.agency(), id).await?;
                finish(tx, t.agency(), audit, Some(("api_key.rotate", id.as_str()))).await?;
                Ok(key)
            }

            async fn touch_api_keys_impl(&self, uses: &[(TenantScope, KeyId, i64)]) -> Result<(), StoreError> {
                // Grouped by agency, up to TOUCH_AGENCIES_PER_TX agencies per transaction, the
                // tenant switched between them: at 100k agencies in use a flush touches tens of
                // thousands of agencies, and a transaction (a commit, a WAL flush) for each one
                // cost the primary more than the requests did.
                const TOUCH_AGENCIES_PER_TX: usize = 256;
                let mut by_agency: Vec<&(TenantScope, KeyId, i64)> = uses.iter().collect();
                by_agency.sort_by(|a, b| a.0.agency().cmp(b.0.agency()));
                let groups: Vec<&[&(TenantScope, KeyId, i64)]> =
                    by_agency.chunk_by(|a, b| a.0.agency() == b.0.agency()).collect();
                for chunk in groups.chunks(TOUCH_AGENCIES_PER_TX) {
                    let Some(first) = chunk.first().and_then(|g| g.first()) else { continue };
                    let mut tx = self.begin_tenant(first.0.agency(), true).await?;
                    for (i, group) in chunk.iter().enumerate() {
                        let Some(head) = group.first() else { continue };
                        let agency = head.0.agency();
                        if i > 0 {
                            self.switch_tenant(&mut tx, agency).await?;
                        }
                        for (_, key, at) in group.iter() {
                            sqlx::query("UPDATE api_keys SET last_used_at = $3 WHERE agency_id = $1 AND id = $2 AND (last_used_at IS NULL OR last_used_at < $3)")
                                .bind(agency.as_str())
                                .bind(key.as_str())
                                .bind(*at)
                                .execute(&mut *tx)
                                .await?;
                        }
                    }
                    tx.commit().await?;
                }
                Ok(())
            }
        }
    };
}

pub(crate) use api_keys;
