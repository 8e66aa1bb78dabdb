//! Users of an agency, and the sign-in lookup by e-mail across agencies.
//!
//! INVARIANT: the e-mail key (trimmed, lowercased) is unique per agency; a password hash
//! leaves the store only through the sign-in lookup.

macro_rules! users {
    ($store:ty) => {
        const USER_COLS: &str = "agency_id, id, email, name, status, CAST(CASE WHEN password_hash IS NULL THEN 0 ELSE 1 END AS BIGINT) AS has_password, created_at, updated_at";

        fn user_row(row: &DbRow) -> Result<User, StoreError> {
            Ok(User {
                id: col(row, "id")?,
                agency_id: col(row, "agency_id")?,
                email: row.try_get("email")?,
                name: row.try_get("name")?,
                status: status(row)?,
                has_password: row.try_get::<i64, _>("has_password")? != 0,
                created_at: row.try_get("created_at")?,
                updated_at: row.try_get("updated_at")?,
            })
        }

        impl $store {
            async fn create_user_impl(&self, t: &TenantScope, u: &NewUser, audit: &AuditRecord) -> Result<User, StoreError> {
                let mut tx = self.begin_tenant(t.agency(), true).await?;
                let row = sqlx::query(&format!(
                    "INSERT INTO users (agency_id, id, email, email_key, name, status, password_hash, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, 'active', $6, $7, $7) RETURNING {USER_COLS}"
                ))
                .bind(t.agency().as_str())
                .bind(u.id.as_str())
                .bind(u.email.trim())
                .bind(email_key(&u.email))
                .bind(&u.name)
                .bind(&u.password_hash)
                .bind(u.now)
                .fetch_one(&mut *tx)
                .await?;
                let user = user_row(&row)?;
                finish(tx, t.agency(), audit, None).await?;
                Ok(user)
            }

            async fn get_user_impl(&self, t: &TenantScope, id: &UserId) -> Result<User, StoreError> {
                let mut tx = self.begin_tenant(t.agency(), false).await?;
                fetch_by_id(&mut tx, USER_COLS, "users", t.agency(), id.as_str(), user_row).await
            }

            async fn list_users_impl(&self, t: &TenantScope, page: &PageRequest) -> Result<Page<User>, StoreError> {
                self.tenant_page(t, page, USER_COLS, "users", user_row, |u| u.id.to_string()).await
            }

            async fn update_user_impl(&self, t: &TenantScope, id: &UserId, p: &UserPatch, now: i64, audit: &AuditRecord) -> Result<User, StoreError> {
                let mut tx = self.begin_tenant(t.agency(), true).await?;
                let row = sqlx::query(&format!(
                    "UPDATE users SET email = COALESCE($3, email), email_key = COALESCE($4, email_key), name = COALESCE($5, name), \
                     status = COALESCE($6, status), password_hash = COALESCE($7, password_hash), updated_at = $8 \
                     WHERE agency_id = $1 AND id = $2 RETURNING {USER_COLS}"
                ))
                .bind(t.agency().as_str())
                .bind(id.as_str())
                .bind(p.email.as_deref().map(str::trim))
                .bind(p.email.as_deref().map(email_key))
                .bind(&p.name)
                .bind(p.status.map(Status::as_str))
                .bind(&p.password_hash)
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or(StoreError::NotFound)?;
                let user = user_row(&row)?;
                let change = p.status.is_some().then_some(("user.status", id.as_str()));
                finish(tx, t.agency(), audit, change).await?;
                Ok(user)
            }

            async fn delete_user_impl(&self, t: &TenantScope, id: &UserId, _now: i64, audit: &AuditRecord) -> Result<(), StoreError> {
                let agency = t.agency().as_str();
                let mut tx = self.begin_tenant(t.agency(), true).await?;
                sqlx::query("DELETE FROM bindings WHERE agency_id = $1 AND principal = $2").bind(agency).bind(id.as_str()).execute(&mut *tx).await?;
                let done = sqlx::query("DELETE FROM users WHERE agency_id = $1 AND id = $2").bind(agency).bind(id.as_str()).execute(&mut *tx).await?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound);
                }
                finish(tx, t.agency(), audit, Some(("user.delete", id.as_str()))).await
            }

            async fn find_users_by_email_impl(&self, email: &str) -> Result<Vec<(UserCredential, TenantScope)>, StoreError> {
                let key = email_key(email);
                if key.is_empty() {
                    return Ok(Vec::new());
                }
                let mut tx = self.begin_login(&key).await?;
                let rows = sqlx::query(&format!(
                    "SELECT {USER_COLS}, password_hash FROM users WHERE email_key = $1 \
                     AND agency_id IN (SELECT id FROM agencies WHERE status <> 'deleted') ORDER BY agency_id, id"
                ))
                .bind(&key)
                .fetch_all(&mut *tx)
                .await?;
                tx.commit().await?;
                rows.iter()
                    .map(|r| {
                        let user = user_row(r)?;
                        let scope = TenantScope::derived(user.agency_id.clone());
                        Ok((UserCredential { user, password_hash: r.try_get("password_hash")? }, scope))
                    })
                    .collect()
            }
        }
    };
}

pub(crate) use users;
