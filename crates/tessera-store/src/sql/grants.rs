//! Authorization codes, grants (refresh families), refresh tokens and revoked access tokens.
//!
//! INVARIANT: a credential found across tenants is then read and written only inside a tenant
//! transaction of its row's agency; of concurrent redemptions or rotations exactly one wins.

macro_rules! grants {
    ($store:ty) => {
        const CODE_COLS: &str = "agency_id, code_hash, client_id, user_id, installation_id, account_id, redirect_uri, scope, code_challenge, nonce, auth_time, grant_id, created_at, expires_at, consumed_at, resource";

        fn code_row(row: &DbRow) -> Result<AuthCode, StoreError> {
            Ok(AuthCode {
                hash: row.try_get("code_hash")?,
                agency_id: col(row, "agency_id")?,
                client_id: col(row, "client_id")?,
                user_id: col(row, "user_id")?,
                installation: opt_col(row, "installation_id")?,
                account: opt_col(row, "account_id")?,
                redirect_uri: row.try_get("redirect_uri")?,
                scope: row.try_get("scope")?,
                code_challenge: row.try_get("code_challenge")?,
                nonce: row.try_get("nonce")?,
                auth_time: row.try_get("auth_time")?,
                grant_id: row.try_get("grant_id")?,
                created_at: row.try_get("created_at")?,
                expires_at: row.try_get("expires_at")?,
                consumed_at: row.try_get("consumed_at")?,
                resource: row.try_get("resource")?,
            })
        }

        const GRANT_COLS: &str = "agency_id, id, kind, client_id, subject, installation_id, account_id, scope, auth_time, created_at, expires_at, revoked_at, resource";

        fn grant_row(row: &DbRow) -> Result<Grant, StoreError> {
            Ok(Grant {
                id: row.try_get("id")?,
                agency_id: col(row, "agency_id")?,
                kind: row.try_get("kind")?,
                client_id: col(row, "client_id")?,
                subject: row.try_get("subject")?,
                installation: opt_col(row, "installation_id")?,
                account: opt_col(row, "account_id")?,
                scope: row.try_get("scope")?,
                auth_time: row.try_get("auth_time")?,
                created_at: row.try_get("created_at")?,
                expires_at: row.try_get("expires_at")?,
                revoked_at: row.try_get("revoked_at")?,
                resource: row.try_get("resource")?,
            })
        }

        const REFRESH_COLS: &str = "agency_id, token_hash, grant_id, created_at, idle_expires_at, rotated_at";

        fn refresh_row(row: &DbRow) -> Result<RefreshToken, StoreError> {
            Ok(RefreshToken {
                hash: row.try_get("token_hash")?,
                agency_id: col(row, "agency_id")?,
                grant_id: row.try_get("grant_id")?,
                created_at: row.try_get("created_at")?,
                idle_expires_at: row.try_get("idle_expires_at")?,
                rotated_at: row.try_get("rotated_at")?,
            })
        }

        /// The grant `id`, locked with `lock` (a row-lock clause, or "").
        async fn fetch_grant(tx: &mut Tx, agency: &AgencyId, id: &str, lock: &str) -> Result<Grant, StoreError> {
            let row = sqlx::query(&format!("SELECT {GRANT_COLS} FROM oauth_grants WHERE agency_id = $1 AND id = $2 {lock}"))
                .bind(agency.as_str())
                .bind(id)
                .fetch_optional(&mut **tx)
                .await?
                .ok_or(StoreError::NotFound)?;
            grant_row(&row)
        }

        /// Stores `r` in `grant` of `agency` (the grant named here, not `r.grant_id`).
        async fn insert_refresh(tx: &mut Tx, agency: &AgencyId, grant: &str, r: &NewRefreshToken) -> Result<(), StoreError> {
            sqlx::query("INSERT INTO refresh_tokens (agency_id, token_hash, pepper_version, grant_id, created_at, idle_expires_at, rotated_at) VALUES ($1, $2, $3, $4, $5, $6, NULL)")
                .bind(agency.as_str())
                .bind(&r.hash)
                .bind(r.pepper_version)
                .bind(grant)
                .bind(r.created_at)
                .bind(r.idle_expires_at)
                .execute(&mut **tx)
                .await?;
            Ok(())
        }

        impl $store {
            async fn create_code_impl(&self, t: &TenantScope, c: &AuthCode) -> Result<(), StoreError> {
                let mut tx = self.begin_tenant(t.agency(), true).await?;
                sqlx::query(&format!("INSERT INTO oauth_codes ({CODE_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"))
                    .bind(t.agency().as_str())
                    .bind(&c.hash)
                    .bind(c.client_id.as_str())
                    .bind(c.user_id.as_str())
                    .bind(c.installation.as_ref().map(InstallationId::as_str))
                    .bind(c.account.as_ref().map(AccountId::as_str))
                    .bind(&c.redirect_uri)
                    .bind(&c.scope)
                    .bind(&c.code_challenge)
                    .bind(&c.nonce)
                    .bind(c.auth_time)
                    .bind(&c.grant_id)
                    .bind(c.created_at)
                    .bind(c.expires_at)
                    .bind(c.consumed_at)
                    .bind(&c.resource)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }

            /// The agency of the row `sql` finds by the credential hash (bound as `$1`).
            async fn credential_agency(&self, sql: &str, hash: &[u8]) -> Result<Option<AgencyId>, StoreError> {
                let mut tx = self.begin_credential(hash).await?;
                let row = sqlx::query(sql).bind(hash).fetch_optional(&mut *tx).await?;
                tx.commit().await?;
                row.map(|r| col(&r, "agency_id")).transpose()
            }

            async fn redeem_code_impl(&self, hash: &[u8], now: i64) -> Result<Option<(CodeRedemption, TenantScope)>, StoreError> {
                let Some(agency) = self.credential_agency("SELECT agency_id FROM oauth_codes WHERE code_hash = $1", hash).await? else {
                    return Ok(None);
                };
                let mut tx = self.begin_tenant(&agency, true).await?;
                // One statement checks and consumes: of concurrent redemptions, the others wait
                // for the row, re-check `consumed_at` on the committed row, and match nothing.
                let fresh = sqlx::query(&format!(
                    "UPDATE oauth_codes SET consumed_at = $3 WHERE agency_id = $1 AND code_hash = $2 AND consumed_at IS NULL RETURNING {CODE_COLS}"
                ))
                .bind(agency.as_str())
                .bind(hash)
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?;
                let out = match fresh {
                    Some(row) => CodeRedemption::Fresh(code_row(&row)?),
                    None => {
                        let row = sqlx::query(&format!("SELECT {CODE_COLS} FROM oauth_codes WHERE agency_id = $1 AND code_hash = $2"))
                            .bind(agency.as_str())
                            .bind(hash)
                            .fetch_optional(&mut *tx)
                            .await?;
                        match row {
                            Some(row) => CodeRedemption::Replayed(code_row(&row)?),
                            None => return Ok(None),
                        }
                    }
                };
                tx.commit().await?;
                Ok(Some((out, TenantScope::derived(agency))))
            }

            async fn create_grant_impl(&self, t: &TenantScope, g: &Grant, refresh: Option<&NewRefreshToken>, audit: &AuditRecord) -> Result<(), StoreError> {
                let mut tx = self.begin_tenant(t.agency(), true).await?;
                sqlx::query(&format!("INSERT INTO oauth_grants ({GRANT_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"))
                    .bind(t.agency().as_str())
                    .bind(&g.id)
                    .bind(&g.kind)
                    .bind(g.client_id.as_str())
                    .bind(&g.subject)
                    .bind(g.installation.as_ref().map(InstallationId::as_str))
                    .bind(g.account.as_ref().map(AccountId::as_str))
                    .bind(&g.scope)
                    .bind(g.auth_time)
                    .bind(g.created_at)
                    .bind(g.expires_at)
                    .bind(g.revoked_at)
                    .bind(&g.resource)
                    .execute(&mut *tx)
                    .await?;
                if let Some(r) = refresh {
                    insert_refresh(&mut tx, t.agency(), &g.id, r).await?;
                }
                finish(tx, t.agency(), audit, None).await
            }

            async fn get_grant_impl(&self, t: &TenantScope, id: &str) -> Result<Grant, StoreError> {
                let mut tx = self.begin_tenant(t.agency(), false).await?;
                fetch_grant(&mut tx, t.agency(), id, "").await
            }

            async fn revoke_grant_impl(&self, t: &TenantScope, id: &str, now: i64, audit: &AuditRecord) -> Result<bool, StoreError> {
                let mut tx = self.begin_tenant(t.agency(), true).await?;
                let done = sqlx::query("UPDATE oauth_grants SET revoked_at = $3 WHERE agency_id = $1 AND id = $2 AND revoked_at IS NULL")
                    .bind(t.agency().as_str())
                    .bind(id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                if done.rows_affected() == 0 {
                    // Already revoked (false), or not a grant of this tenant.
                    fetch_grant(&mut tx, t.agency(), id, "").await?;
                    return Ok(false);
                }
                finish(tx, t.agency(), audit, Some(("grant.revoke", id))).await?;
                Ok(true)
            }

            async fn find_refresh_token_impl(&self, hash: &[u8]) -> Result<Option<(RefreshToken, Grant, TenantScope)>, StoreError> {
                let Some(agency) = self.credential_agency("SELECT agency_id FROM refresh_tokens WHERE token_hash = $1", hash).await? else {
                    return Ok(None);
                };
                let mut tx = self.begin_tenant(&agency, false).await?;
                let Some(row) = sqlx::query(&format!("SELECT {REFRESH_COLS} FROM refresh_tokens WHERE agency_id = $1 AND token_hash = $2"))
                    .bind(agency.as_str())
                    .bind(hash)
                    .fetch_optional(&mut *tx)
                    .await?
                else {
                    return Ok(None);
                };
                let token = refresh_row(&row)?;
                let grant = fetch_grant(&mut tx, &agency, &token.grant_id, "")
                    .await
                    .map_err(|e| match e {
                        StoreError::NotFound => StoreError::Corrupt(format!("refresh token of a missing grant `{}`", token.grant_id)),
                        other => other,
                    })?;
                tx.commit().await?;
                Ok(Some((token, grant, TenantScope::derived(agency))))
            }

            async fn rotate_refresh_token_impl(
                &self,
                t: &TenantScope,
                old_hash: &[u8],
                new: &NewRefreshToken,
                now: i64,
                grace_ms: i64,
                audit: &AuditRecord,
            ) -> Result<RefreshUse, StoreError> {
                let agency = t.agency();
                let mut tx = self.begin_tenant(agency, true).await?;
                // The old token's row lock, then its grant's (the only order any writer takes
                // them in): concurrent rotations of one token, or of one family, queue here.
                let Some(row) = sqlx::query(&format!("SELECT {REFRESH_COLS} FROM refresh_tokens WHERE agency_id = $1 AND token_hash = $2 {FOR_UPDATE}"))
                    .bind(agency.as_str())
                    .bind(old_hash)
                    .fetch_optional(&mut *tx)
                    .await?
                else {
                    return Ok(RefreshUse::Revoked);
                };
                let old = refresh_row(&row)?;
                let grant = fetch_grant(&mut tx, agency, &old.grant_id, FOR_UPDATE).await?;
                if grant.revoked_at.is_some() {
                    return Ok(RefreshUse::Revoked);
                }
                match old.rotated_at {
                    None => {
                        sqlx::query("UPDATE refresh_tokens SET rotated_at = $3 WHERE agency_id = $1 AND token_hash = $2")
                            .bind(agency.as_str())
                            .bind(old_hash)
                            .bind(now)
                            .execute(&mut *tx)
                            .await?;
                        insert_refresh(&mut tx, agency, &old.grant_id, new).await?;
                        tx.commit().await?;
                        return Ok(RefreshUse::Rotated);
                    }
                    // A retry racing its own rotation: refused, the family left alone.
                    Some(at) if now.saturating_sub(at) < grace_ms => return Ok(RefreshUse::RecentlyRotated),
                    Some(_) => {}
                }
                // Reuse of a token rotated before the grace window: the family is compromised.
                sqlx::query("UPDATE oauth_grants SET revoked_at = $3 WHERE agency_id = $1 AND id = $2 AND revoked_at IS NULL")
                    .bind(agency.as_str())
                    .bind(&old.grant_id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                finish(tx, agency, audit, Some(("grant.revoke", &old.grant_id))).await?;
                Ok(RefreshUse::Reused)
            }

            async fn revoke_access_token_impl(&self, t: &TenantScope, jti: &str, expires_at: i64, audit: &AuditRecord) -> Result<(), StoreError> {
                let mut tx = self.begin_tenant(t.agency(), true).await?;
                sqlx::query(
                    "INSERT INTO revoked_access_tokens (agency_id, jti, expires_at, revoked_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (agency_id, jti) DO NOTHING",
                )
                .bind(t.agency().as_str())
                .bind(jti)
                .bind(expires_at)
                .bind(audit.at)
                .execute(&mut *tx)
                .await?;
                finish(tx, t.agency(), audit, Some(("token.revoke", jti))).await
            }
        }
    };
}

pub(crate) use grants;
