//! Installations of apps on an agency or account, and the client-credentials lookup.
//!
//! INVARIANT: uninstalling revokes every grant through the installation in the same
//! transaction, so their refresh tokens stop at once.

macro_rules! installations {
    ($store:ty) => {
        const INSTALLATION_COLS: &str = "agency_id, id, app_id, app_agency_id, account_id, scopes, created_by, created_at, revoked_at";

        fn installation_row(row: &DbRow) -> Result<Installation, StoreError> {
            let scopes: String = row.try_get("scopes")?;
            Ok(Installation {
                id: col(row, "id")?,
                agency_id: col(row, "agency_id")?,
                app_id: col(row, "app_id")?,
                app_agency_id: col(row, "app_agency_id")?,
                account: opt_col(row, "account_id")?,
                scopes: serde_json::from_str(&scopes)?,
                created_by: row.try_get("created_by")?,
                created_at: row.try_get("created_at")?,
                revoked_at: row.try_get("revoked_at")?,
            })
        }

        async fn fetch_installation(tx: &mut Tx, agency: &AgencyId, id: &InstallationId) -> Result<Installation, StoreError> {
            fetch_by_id(tx, INSTALLATION_COLS, "installations", agency, id.as_str(), installation_row).await
        }

        /// Revokes, inside `tx`, the installations on an account being deleted and every grant
        /// acting on it or going through them.
        async fn revoke_account_oauth(tx: &mut Tx, agency: &AgencyId, account: &AccountId, now: i64) -> Result<(), StoreError> {
            sqlx::query(
                "UPDATE oauth_grants SET revoked_at = $3 WHERE agency_id = $1 AND revoked_at IS NULL \
                 AND (account_id = $2 OR installation_id IN (SELECT id FROM installations WHERE agency_id = $1 AND account_id = $2))",
            )
            .bind(agency.as_str())
            .bind(account.as_str())
            .bind(now)
            .execute(&mut **tx)
            .await?;
            sqlx::query("UPDATE installations SET revoked_at = $3 WHERE agency_id = $1 AND account_id = $2 AND revoked_at IS NULL")
                .bind(agency.as_str())
                .bind(account.as_str())
                .bind(now)
                .execute(&mut **tx)
                .await?;
            Ok(())
        }

        impl $store {
            async fn create_installation_impl(&self, t: &TenantScope, ins: &Installation, audit: &AuditRecord) -> Result<(), StoreError> {
                let mut tx = self.begin_tenant(t.agency(), true).await?;
                if let Some(account) = &ins.account {
                    // A foreign-key check by hand (installations outlive their account's
                    // deletion as revoked rows, so there is no declared key).
                    sqlx::query(&format!("SELECT id FROM accounts WHERE agency_id = $1 AND id = $2 {KEY_SHARE}"))
                        .bind(t.agency().as_str())
                        .bind(account.as_str())
                        .fetch_optional(&mut *tx)
                        .await?
                        .ok_or(StoreError::Reference)?;
                }
                sqlx::query(
                    "INSERT INTO installations (agency_id, id, app_id, app_agency_id, account_id, account_key, scopes, created_by, created_at, revoked_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL)",
                )
                .bind(t.agency().as_str())
                .bind(ins.id.as_str())
                .bind(ins.app_id.as_str())
                .bind(ins.app_agency_id.as_str())
                .bind(ins.account.as_ref().map(AccountId::as_str))
                .bind(ins.account.as_ref().map(AccountId::as_str).unwrap_or(""))
                .bind(serde_json::to_string(&ins.scopes)?)
                .bind(&ins.created_by)
                .bind(ins.created_at)
                .execute(&mut *tx)
                .await?;
                finish(tx, t.agency(), audit, Some(("installation.create", ins.id.as_str()))).await
            }

            async fn get_installation_impl(&self, t: &TenantScope, id: &InstallationId) -> Result<Installation, StoreError> {
                let mut tx = self.begin_tenant(t.agency(), false).await?;
                fetch_installation(&mut tx, t.agency(), id).await
            }

            async fn list_installations_impl(&self, t: &TenantScope, account: Option<&AccountId>, page: &PageRequest) -> Result<Page<Installation>, StoreError> {
                let limit = page_limit(page.limit);
                let mut tx = self.begin_tenant(t.agency(), false).await?;
                let rows = sqlx::query(&format!(
                    "SELECT {INSTALLATION_COLS} FROM installations WHERE agency_id = $1 AND revoked_at IS NULL \
                     AND ($2 IS NULL OR account_id = $2) AND id > $3 ORDER BY id LIMIT $4"
                ))
                .bind(t.agency().as_str())
                .bind(account.map(AccountId::as_str))
                .bind(page.cursor.as_deref().unwrap_or(""))
                .bind(limit + 1)
                .fetch_all(&mut *tx)
                .await?;
                let items = rows.iter().map(installation_row).collect::<Result<Vec<_>, _>>()?;
                Ok(paginate(items, limit, |i| i.id.to_string()))
            }

            async fn revoke_installation_impl(&self, t: &TenantScope, id: &InstallationId, now: i64, audit: &AuditRecord) -> Result<Installation, StoreError> {
                let agency = t.agency().as_str();
                let mut tx = self.begin_tenant(t.agency(), true).await?;
                let ins = fetch_installation(&mut tx, t.agency(), id).await?;
                if ins.revoked_at.is_some() {
                    return Ok(ins);
                }
                let done = sqlx::query("UPDATE installations SET revoked_at = $3 WHERE agency_id = $1 AND id = $2 AND revoked_at IS NULL")
                    .bind(agency).bind(id.as_str()).bind(now).execute(&mut *tx).await?;
                if done.rows_affected() == 0 {
                    // Revoked concurrently, after the read above.
                    return fetch_installation(&mut tx, t.agency(), id).await;
                }
                sqlx::query("UPDATE oauth_grants SET revoked_at = $3 WHERE agency_id = $1 AND installation_id = $2 AND revoked_at IS NULL")
                    .bind(agency).bind(id.as_str()).bind(now).execute(&mut *tx).await?;
                let ins = fetch_installation(&mut tx, t.agency(), id).await?;
                finish(tx, t.agency(), audit, Some(("installation.revoke", id.as_str()))).await?;
                Ok(ins)
            }

            async fn client_installations_impl(&self, app: &AppId) -> Result<Vec<(Installation, TenantScope)>, StoreError> {
                let mut tx = self.begin_client(app).await?;
                let rows = sqlx::query(&format!(
                    "SELECT {INSTALLATION_COLS} FROM installations WHERE app_id = $1 AND revoked_at IS NULL \
                     AND agency_id IN (SELECT id FROM agencies WHERE status <> 'deleted') ORDER BY agency_id, id"
                ))
                .bind(app.as_str())
                .fetch_all(&mut *tx)
                .await?;
                tx.commit().await?;
                rows.iter()
                    .map(|r| {
                        let ins = installation_row(r)?;
                        let scope = TenantScope::derived(ins.agency_id.clone());
                        Ok((ins, scope))
                    })
                    .collect()
            }
        }
    };
}

pub(crate) use installations;
