//! The OAuth queries both backends share (apps, installations, codes, grants, refresh
//! tokens, revoked access tokens, the sign-in lookup, batched audit). `impl_oauth!` expands
//! inside `impl_store!`, whose `Store` impl delegates to the inherent `*_impl` methods here.
//! Besides `impl_store!`'s helpers each backend supplies `begin_client`, `begin_credential`
//! and `begin_login` (cross-tenant reads: on PostgreSQL, narrow SELECT-only policies),
//! `switch_tenant` and the `FOR_UPDATE` row-lock clause.
//!
//! INVARIANT: a credential found across tenants (a code, a refresh token) is then read and
//! written only inside a tenant transaction of the agency its row belongs to.

macro_rules! impl_oauth {
    ($store:ty) => {
        use tessera_core::{AppId, InstallationId};

        use $crate::{
            App, AppKind, AuthCode, ClientRecord, ClientSecret, CodeRedemption, Grant, Installation, NewRefreshToken,
            RefreshToken, RefreshUse, Revocations, UserCredential,
        };

        /// Revoked grants stay in the snapshot this long after they expire (clock skew).
        const REVOKED_GRANT_MARGIN_MS: i64 = 86_400_000;

        const APP_COLS: &str = "agency_id, id, name, kind, confidential, redirect_uris, scopes, created_by, created_at, updated_at, deleted_at, token_signing_alg";
        fn app_row(row: &DbRow) -> Result<App, StoreError> {
            let kind: String = row.try_get("kind")?;
            let redirect_uris: String = row.try_get("redirect_uris")?;
            let scopes: String = row.try_get("scopes")?;
            Ok(App {
                id: col(row, "id")?,
                agency_id: col(row, "agency_id")?,
                name: row.try_get("name")?,
                kind: AppKind::parse(&kind).ok_or_else(|| StoreError::Corrupt(format!("app kind `{kind}`")))?,
                confidential: row.try_get("confidential")?,
                token_signing_alg: row.try_get("token_signing_alg")?,
                redirect_uris: serde_json::from_str(&redirect_uris)?,
                scopes: serde_json::from_str(&scopes)?,
                created_by: row.try_get("created_by")?,
                created_at: row.try_get("created_at")?,
                updated_at: row.try_get("updated_at")?,
                deleted_at: row.try_get("deleted_at")?,
            })
        }

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

        const CODE_COLS: &str = "agency_id, code_hash, client_id, user_id, installation_id, account_id, redirect_uri, scope, code_challenge, nonce, auth_time, grant_id, created_at, expires_at, consumed_at";
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
            })
        }

        const GRANT_COLS: &str = "agency_id, id, kind, client_id, subject, installation_id, account_id, scope, auth_time, created_at, expires_at, revoked_at";
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

        async fn fetch_app(tx: &mut Tx, agency: &AgencyId, id: &AppId) -> Result<App, StoreError> {
            fetch_by_id(tx, APP_COLS, "apps", agency, id.as_str(), app_row).await
        }

        async fn insert_app_secret(tx: &mut Tx, agency: &AgencyId, app: &AppId, s: &SecretHashRecord, now: i64) -> Result<(), StoreError> {
            sqlx::query("INSERT INTO app_secrets (agency_id, app_id, secret_hash, pepper_version, valid_until, created_at) VALUES ($1, $2, $3, $4, NULL, $5)")
                .bind(agency.as_str())
                .bind(app.as_str())
                .bind(&s.hash)
                .bind(s.pepper_version)
                .bind(now)
                .execute(&mut **tx)
                .await?;
            Ok(())
        }

        async fn fetch_installation(tx: &mut Tx, agency: &AgencyId, id: &InstallationId) -> Result<Installation, StoreError> {
            fetch_by_id(tx, INSTALLATION_COLS, "installations", agency, id.as_str(), installation_row).await
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

        /// What makes the agency's tokens inactive early, read inside the snapshot `tx`.
        async fn revocations_in(tx: &mut Tx, agency: &AgencyId, now: i64) -> Result<Revocations, StoreError> {
            let installations = sqlx::query(&format!("SELECT {INSTALLATION_COLS} FROM installations WHERE agency_id = $1 AND revoked_at IS NULL ORDER BY id"))
                .bind(agency.as_str())
                .fetch_all(&mut **tx)
                .await?
                .iter()
                .map(installation_row)
                .collect::<Result<Vec<_>, _>>()?;
            let grants = sqlx::query("SELECT id FROM oauth_grants WHERE agency_id = $1 AND revoked_at IS NOT NULL AND expires_at > $2 ORDER BY id")
                .bind(agency.as_str())
                .bind(now.saturating_sub(REVOKED_GRANT_MARGIN_MS))
                .fetch_all(&mut **tx)
                .await?
                .iter()
                .map(|r| r.try_get("id"))
                .collect::<Result<Vec<String>, _>>()?;
            let access_tokens = sqlx::query("SELECT jti FROM revoked_access_tokens WHERE agency_id = $1 AND expires_at > $2 ORDER BY jti")
                .bind(agency.as_str())
                .bind(now)
                .fetch_all(&mut **tx)
                .await?
                .iter()
                .map(|r| r.try_get("jti"))
                .collect::<Result<Vec<String>, _>>()?;
            Ok(Revocations { installations, grants, access_tokens })
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
            async fn append_audit_batch_impl(&self, events: &[(TenantScope, AuditRecord)]) -> Result<(), StoreError> {
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

            async fn create_app_impl(&self, t: &TenantScope, app: &App, secret: Option<&SecretHashRecord>, audit: &AuditRecord) -> Result<(), StoreError> {
                let mut tx = self.begin_tenant(t.agency(), true).await?;
                sqlx::query(&format!("INSERT INTO apps ({APP_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULL, $11)"))
                    .bind(t.agency().as_str())
                    .bind(app.id.as_str())
                    .bind(&app.name)
                    .bind(app.kind.as_str())
                    .bind(app.confidential)
                    .bind(serde_json::to_string(&app.redirect_uris)?)
                    .bind(serde_json::to_string(&app.scopes)?)
                    .bind(&app.created_by)
                    .bind(app.created_at)
                    .bind(app.updated_at)
                    .bind(&app.token_signing_alg)
                    .execute(&mut *tx)
                    .await?;
                if let Some(s) = secret {
                    insert_app_secret(&mut tx, t.agency(), &app.id, s, app.created_at).await?;
                }
                finish(tx, t.agency(), audit, Some(("app.create", app.id.as_str()))).await
            }

            async fn get_app_impl(&self, t: &TenantScope, id: &AppId) -> Result<App, StoreError> {
                let mut tx = self.begin_tenant(t.agency(), false).await?;
                fetch_app(&mut tx, t.agency(), id).await
            }

            async fn list_apps_impl(&self, t: &TenantScope, page: &PageRequest) -> Result<Page<App>, StoreError> {
                let limit = page_limit(page.limit);
                let mut tx = self.begin_tenant(t.agency(), false).await?;
                let rows = sqlx::query(&format!("SELECT {APP_COLS} FROM apps WHERE agency_id = $1 AND deleted_at IS NULL AND id > $2 ORDER BY id LIMIT $3"))
                    .bind(t.agency().as_str())
                    .bind(page.cursor.as_deref().unwrap_or(""))
                    .bind(limit + 1)
                    .fetch_all(&mut *tx)
                    .await?;
                let items = rows.iter().map(app_row).collect::<Result<Vec<_>, _>>()?;
                Ok(paginate(items, limit, |a| a.id.to_string()))
            }

            async fn delete_app_impl(&self, t: &TenantScope, id: &AppId, now: i64, audit: &AuditRecord) -> Result<App, StoreError> {
                let agency = t.agency().as_str();
                let mut tx = self.begin_tenant(t.agency(), true).await?;
                let app = fetch_app(&mut tx, t.agency(), id).await?;
                if app.deleted_at.is_some() {
                    return Ok(app);
                }
                sqlx::query("UPDATE apps SET deleted_at = $3, updated_at = $3 WHERE agency_id = $1 AND id = $2")
                    .bind(agency).bind(id.as_str()).bind(now).execute(&mut *tx).await?;
                sqlx::query("UPDATE app_secrets SET valid_until = $3 WHERE agency_id = $1 AND app_id = $2 AND (valid_until IS NULL OR valid_until > $3)")
                    .bind(agency).bind(id.as_str()).bind(now).execute(&mut *tx).await?;
                let app = fetch_app(&mut tx, t.agency(), id).await?;
                finish(tx, t.agency(), audit, Some(("app.delete", id.as_str()))).await?;
                Ok(app)
            }

            async fn rotate_app_secret_impl(
                &self,
                t: &TenantScope,
                id: &AppId,
                secret: &SecretHashRecord,
                old_valid_until: i64,
                now: i64,
                audit: &AuditRecord,
            ) -> Result<App, StoreError> {
                let agency = t.agency().as_str();
                let mut tx = self.begin_tenant(t.agency(), true).await?;
                let app = fetch_app(&mut tx, t.agency(), id).await?;
                if app.deleted_at.is_some() {
                    return Err(StoreError::NotFound);
                }
                // Secrets already past their grace are dropped; the rest end at `old_valid_until` at the latest.
                sqlx::query("DELETE FROM app_secrets WHERE agency_id = $1 AND app_id = $2 AND valid_until IS NOT NULL AND valid_until <= $3")
                    .bind(agency).bind(id.as_str()).bind(now).execute(&mut *tx).await?;
                sqlx::query("UPDATE app_secrets SET valid_until = $3 WHERE agency_id = $1 AND app_id = $2 AND (valid_until IS NULL OR valid_until > $3)")
                    .bind(agency).bind(id.as_str()).bind(old_valid_until).execute(&mut *tx).await?;
                insert_app_secret(&mut tx, t.agency(), id, secret, now).await?;
                sqlx::query("UPDATE apps SET updated_at = $3 WHERE agency_id = $1 AND id = $2")
                    .bind(agency).bind(id.as_str()).bind(now).execute(&mut *tx).await?;
                let app = fetch_app(&mut tx, t.agency(), id).await?;
                finish(tx, t.agency(), audit, Some(("app.rotate_secret", id.as_str()))).await?;
                Ok(app)
            }

            async fn find_client_impl(&self, id: &AppId) -> Result<Option<(ClientRecord, TenantScope)>, StoreError> {
                let mut tx = self.begin_client(id).await?;
                let Some(row) = sqlx::query(&format!("SELECT {APP_COLS} FROM apps WHERE id = $1"))
                    .bind(id.as_str())
                    .fetch_optional(&mut *tx)
                    .await?
                else {
                    return Ok(None);
                };
                let app = app_row(&row)?;
                // Newest first; of secrets made in one millisecond, the current one first.
                let rows = sqlx::query(
                    "SELECT secret_hash, pepper_version, valid_until FROM app_secrets WHERE agency_id = $1 AND app_id = $2 \
                     ORDER BY created_at DESC, CASE WHEN valid_until IS NULL THEN 0 ELSE 1 END, valid_until DESC",
                )
                .bind(app.agency_id.as_str())
                .bind(id.as_str())
                .fetch_all(&mut *tx)
                .await?;
                tx.commit().await?;
                let secrets = rows
                    .iter()
                    .map(|r| {
                        Ok(ClientSecret {
                            hash: r.try_get("secret_hash")?,
                            pepper_version: r.try_get("pepper_version")?,
                            valid_until: r.try_get("valid_until")?,
                        })
                    })
                    .collect::<Result<Vec<_>, StoreError>>()?;
                let scope = TenantScope::derived(app.agency_id.clone());
                Ok(Some((ClientRecord { app, secrets }, scope)))
            }

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

            async fn create_code_impl(&self, t: &TenantScope, c: &AuthCode) -> Result<(), StoreError> {
                let mut tx = self.begin_tenant(t.agency(), true).await?;
                sqlx::query(&format!("INSERT INTO oauth_codes ({CODE_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"))
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
                sqlx::query(&format!("INSERT INTO oauth_grants ({GRANT_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"))
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

pub(crate) use impl_oauth;
