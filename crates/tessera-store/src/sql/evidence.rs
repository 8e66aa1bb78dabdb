//! Compliance reads (`Evidence`): last activity per actor, client-secret facts,
//! impersonation sessions and their acts.
//!
//! INVARIANT: each query is bounded (`LIMIT`, or at most `MAX_ACTORS` ids) and filters on the
//! scope's agency first, so it runs on one of the `audit_events` indexes (or the
//! `app_secrets` primary key) and never scans another tenant's rows.

macro_rules! evidence {
    ($store:ty) => {
        #[async_trait]
        impl $crate::store::Evidence for $store {
            async fn last_activity(&self, t: &TenantScope, actors: &[String]) -> Result<Vec<(String, i64)>, StoreError> {
                if actors.len() > $crate::store::MAX_ACTORS {
                    return Err(StoreError::Corrupt(format!("at most {} actors per call", $crate::store::MAX_ACTORS)));
                }
                let mut tx = self.begin_tenant(t.agency(), false).await?;
                let mut out = Vec::with_capacity(actors.len());
                for actor in actors {
                    // The newest event of the actor: one descent of (agency_id, actor, seq).
                    let at: Option<i64> = sqlx::query_scalar(
                        "SELECT at FROM audit_events WHERE agency_id = $1 AND actor = $2 ORDER BY seq DESC LIMIT 1",
                    )
                    .bind(t.agency().as_str())
                    .bind(actor)
                    .fetch_optional(&mut *tx)
                    .await?;
                    if let Some(at) = at {
                        out.push((actor.clone(), at));
                    }
                }
                Ok(out)
            }

            async fn app_secret_facts(&self, t: &TenantScope, apps: &[String]) -> Result<Vec<$crate::records::AppSecretFacts>, StoreError> {
                if apps.is_empty() {
                    return Ok(Vec::new());
                }
                if apps.len() > $crate::store::MAX_ACTORS {
                    return Err(StoreError::Corrupt(format!("at most {} apps per call", $crate::store::MAX_ACTORS)));
                }
                let mut tx = self.begin_tenant(t.agency(), false).await?;
                let sql = format!(
                    "SELECT app_id, created_at, valid_until, pepper_version FROM app_secrets \
                     WHERE agency_id = $1 AND app_id IN ({}) ORDER BY app_id, created_at DESC",
                    placeholders(2, apps.len())
                );
                let mut q = sqlx::query(&sql).bind(t.agency().as_str());
                for a in apps {
                    q = q.bind(a);
                }
                let rows = q.fetch_all(&mut *tx).await?;
                rows.iter()
                    .map(|row| {
                        Ok($crate::records::AppSecretFacts {
                            app_id: col(row, "app_id")?,
                            created_at: row.try_get("created_at")?,
                            valid_until: row.try_get("valid_until")?,
                            pepper_version: row.try_get("pepper_version")?,
                        })
                    })
                    .collect()
            }

            async fn impersonation_starts(&self, t: &TenantScope, on_behalf_of: Option<&str>, page: &PageRequest) -> Result<Page<AuditEvent>, StoreError> {
                let limit = page_limit(page.limit);
                let after_seq: i64 = match page.cursor.as_deref() {
                    None => 0,
                    Some(c) => c.parse().map_err(|_| StoreError::NotFound)?,
                };
                let mut tx = self.begin_tenant(t.agency(), false).await?;
                let rows = match on_behalf_of {
                    // One user's sessions: their range of (agency_id, on_behalf_of, seq).
                    Some(user) => sqlx::query(&format!(
                        "SELECT {EVENT_COLS} FROM audit_events WHERE agency_id = $1 AND on_behalf_of = $2 \
                         AND on_behalf_of IS NOT NULL AND seq > $3 AND action = 'impersonation.start' \
                         ORDER BY seq LIMIT $4"
                    ))
                    .bind(t.agency().as_str())
                    .bind(user)
                    .bind(after_seq)
                    .bind(limit + 1)
                    .fetch_all(&mut *tx)
                    .await?,
                    // Everyone's: the range of (agency_id, action, seq).
                    None => sqlx::query(&format!(
                        "SELECT {EVENT_COLS} FROM audit_events WHERE agency_id = $1 \
                         AND action = 'impersonation.start' AND seq > $2 ORDER BY seq LIMIT $3"
                    ))
                    .bind(t.agency().as_str())
                    .bind(after_seq)
                    .bind(limit + 1)
                    .fetch_all(&mut *tx)
                    .await?,
                };
                let items = rows.iter().map(event_row).collect::<Result<Vec<_>, _>>()?;
                Ok(paginate(items, limit, |e| e.seq.to_string()))
            }

            async fn impersonation_acts(
                &self,
                t: &TenantScope,
                actor: &str,
                on_behalf_of: &str,
                after_seq: i64,
                until_at: i64,
                limit: u32,
            ) -> Result<Vec<AuditEvent>, StoreError> {
                let mut tx = self.begin_tenant(t.agency(), false).await?;
                let rows = sqlx::query(&format!(
                    "SELECT {EVENT_COLS} FROM audit_events WHERE agency_id = $1 AND on_behalf_of = $2 \
                     AND on_behalf_of IS NOT NULL AND seq > $3 AND actor = $4 AND at <= $5 \
                     AND action <> 'impersonation.start' ORDER BY seq LIMIT $6"
                ))
                .bind(t.agency().as_str())
                .bind(on_behalf_of)
                .bind(after_seq)
                .bind(actor)
                .bind(until_at)
                .bind(i64::from(limit.max(1)))
                .fetch_all(&mut *tx)
                .await?;
                rows.iter().map(event_row).collect()
            }
        }
    };
}

pub(crate) use evidence;
