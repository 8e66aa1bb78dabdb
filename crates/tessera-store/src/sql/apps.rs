//! OAuth clients (apps) with their secret hashes, and the client lookup across tenants.
//!
//! INVARIANT: an app lives in its owner's agency; deleting it ends its secrets at once.

macro_rules! apps {
    ($store:ty) => {
        const APP_COLS: &str = "agency_id, id, name, kind, confidential, redirect_uris, scopes, created_by, created_at, updated_at, deleted_at, token_signing_alg, review, approved_scopes, review_reason";

        fn app_row(row: &DbRow) -> Result<App, StoreError> {
            let kind: String = row.try_get("kind")?;
            let redirect_uris: String = row.try_get("redirect_uris")?;
            let scopes: Vec<String> = serde_json::from_str(&row.try_get::<String, _>("scopes")?)?;
            let approved_scopes: Vec<String> = serde_json::from_str(&row.try_get::<String, _>("approved_scopes")?)?;
            let review: String = row.try_get("review")?;
            let pending_scopes = scopes.iter().filter(|s| !approved_scopes.contains(s)).cloned().collect();
            Ok(App {
                id: col(row, "id")?,
                agency_id: col(row, "agency_id")?,
                name: row.try_get("name")?,
                kind: AppKind::parse(&kind).ok_or_else(|| StoreError::Corrupt(format!("app kind `{kind}`")))?,
                confidential: row.try_get("confidential")?,
                token_signing_alg: row.try_get("token_signing_alg")?,
                redirect_uris: serde_json::from_str(&redirect_uris)?,
                scopes,
                review: AppReview::parse(&review).ok_or_else(|| StoreError::Corrupt(format!("app review `{review}`")))?,
                approved_scopes,
                pending_scopes,
                review_reason: row.try_get("review_reason")?,
                created_by: row.try_get("created_by")?,
                created_at: row.try_get("created_at")?,
                updated_at: row.try_get("updated_at")?,
                deleted_at: row.try_get("deleted_at")?,
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

        impl $store {
            async fn create_app_impl(&self, t: &TenantScope, app: &App, secret: Option<&SecretHashRecord>, audit: &AuditRecord) -> Result<(), StoreError> {
                let mut tx = self.begin_tenant(t.agency(), true).await?;
                sqlx::query(&format!("INSERT INTO apps ({APP_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULL, $11, $12, $13, $14)"))
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
                    .bind(app.review.as_str())
                    .bind(serde_json::to_string(&app.approved_scopes)?)
                    .bind(&app.review_reason)
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

            async fn update_app_impl(&self, t: &TenantScope, id: &AppId, u: &AppUpdate, now: i64, audit: &AuditRecord) -> Result<App, StoreError> {
                let mut tx = self.begin_tenant(t.agency(), true).await?;
                let done = sqlx::query("UPDATE apps SET name = $3, redirect_uris = $4, scopes = $5, review = $6, approved_scopes = $7, review_reason = $8, updated_at = $9 WHERE agency_id = $1 AND id = $2 AND deleted_at IS NULL")
                    .bind(t.agency().as_str())
                    .bind(id.as_str())
                    .bind(&u.name)
                    .bind(serde_json::to_string(&u.redirect_uris)?)
                    .bind(serde_json::to_string(&u.scopes)?)
                    .bind(u.review.as_str())
                    .bind(serde_json::to_string(&u.approved_scopes)?)
                    .bind(&u.review_reason)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound);
                }
                let app = fetch_app(&mut tx, t.agency(), id).await?;
                finish(tx, t.agency(), audit, Some(("app.update", id.as_str()))).await?;
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
        }
    };
}

pub(crate) use apps;
