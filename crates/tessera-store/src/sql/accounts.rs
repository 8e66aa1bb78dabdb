//! Accounts of an agency.
//!
//! INVARIANT: deleting an account takes its bindings, its keys (with their secrets and
//! bindings) and its installations' grants with it, atomically.

macro_rules! accounts {
    ($store:ty) => {
        const ACCOUNT_COLS: &str = "agency_id, id, name, created_at, updated_at, status, suspended_reason, suspended_at";

        fn account_row(row: &DbRow) -> Result<Account, StoreError> {
            Ok(Account {
                id: col(row, "id")?,
                agency_id: col(row, "agency_id")?,
                name: row.try_get("name")?,
                status: status(row)?,
                suspended_reason: row.try_get("suspended_reason")?,
                suspended_at: row.try_get("suspended_at")?,
                created_at: row.try_get("created_at")?,
                updated_at: row.try_get("updated_at")?,
            })
        }

        impl $store {
            async fn create_account_impl(&self, t: &TenantScope, a: &Account, audit: &AuditRecord) -> Result<(), StoreError> {
                let mut tx = self.begin_tenant(t.agency(), true).await?;
                sqlx::query(&format!("INSERT INTO accounts ({ACCOUNT_COLS}) VALUES ($1, $2, $3, $4, $5, 'active', NULL, NULL)"))
                    .bind(t.agency().as_str())
                    .bind(a.id.as_str())
                    .bind(&a.name)
                    .bind(a.created_at)
                    .bind(a.updated_at)
                    .execute(&mut *tx)
                    .await?;
                finish(tx, t.agency(), audit, None).await
            }

            async fn get_account_impl(&self, t: &TenantScope, id: &AccountId) -> Result<Account, StoreError> {
                let mut tx = self.begin_tenant(t.agency(), false).await?;
                fetch_by_id(&mut tx, ACCOUNT_COLS, "accounts", t.agency(), id.as_str(), account_row).await
            }

            async fn list_accounts_impl(&self, t: &TenantScope, page: &PageRequest) -> Result<Page<Account>, StoreError> {
                self.tenant_page(t, page, ACCOUNT_COLS, "accounts", account_row, |a| a.id.to_string()).await
            }

            async fn update_account_impl(&self, t: &TenantScope, id: &AccountId, name: &str, now: i64, audit: &AuditRecord) -> Result<Account, StoreError> {
                let mut tx = self.begin_tenant(t.agency(), true).await?;
                let row = sqlx::query(&format!("UPDATE accounts SET name = $3, updated_at = $4 WHERE agency_id = $1 AND id = $2 RETURNING {ACCOUNT_COLS}"))
                    .bind(t.agency().as_str())
                    .bind(id.as_str())
                    .bind(name)
                    .bind(now)
                    .fetch_optional(&mut *tx)
                    .await?
                    .ok_or(StoreError::NotFound)?;
                let account = account_row(&row)?;
                finish(tx, t.agency(), audit, None).await?;
                Ok(account)
            }

            async fn delete_account_impl(&self, t: &TenantScope, id: &AccountId, now: i64, audit: &AuditRecord) -> Result<(), StoreError> {
                let agency = t.agency().as_str();
                let mut tx = self.begin_tenant(t.agency(), true).await?;
                revoke_account_oauth(&mut tx, t.agency(), id, now).await?;
                drop_key_grants(&mut tx, t.agency(), "account_id = $2", id.as_str()).await?;
                sqlx::query("DELETE FROM api_keys WHERE agency_id = $1 AND account_id = $2").bind(agency).bind(id.as_str()).execute(&mut *tx).await?;
                sqlx::query("DELETE FROM bindings WHERE agency_id = $1 AND account_id = $2").bind(agency).bind(id.as_str()).execute(&mut *tx).await?;
                let done = sqlx::query("DELETE FROM accounts WHERE agency_id = $1 AND id = $2").bind(agency).bind(id.as_str()).execute(&mut *tx).await?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound);
                }
                finish(tx, t.agency(), audit, Some(("account.delete", id.as_str()))).await
            }

            async fn set_account_suspended_impl(&self, t: &TenantScope, id: &AccountId, reason: Option<&str>, now: i64, audit: &AuditRecord) -> Result<(Account, bool), StoreError> {
                let mut tx = self.begin_tenant(t.agency(), true).await?;
                let (from, to, kind) = match reason {
                    Some(_) => ("active", "suspended", "account.suspend"),
                    None => ("suspended", "active", "account.reinstate"),
                };
                let changed = sqlx::query(&format!("UPDATE accounts SET status = $3, suspended_reason = $4, suspended_at = $5, updated_at = $6 WHERE agency_id = $1 AND id = $2 AND status = $7 RETURNING {ACCOUNT_COLS}"))
                    .bind(t.agency().as_str())
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
                        let account = account_row(&row)?;
                        finish(tx, t.agency(), audit, Some((kind, id.as_str()))).await?;
                        Ok((account, true))
                    }
                    None => Ok((fetch_by_id(&mut tx, ACCOUNT_COLS, "accounts", t.agency(), id.as_str(), account_row).await?, false)),
                }
            }
        }
    };
}

pub(crate) use accounts;
