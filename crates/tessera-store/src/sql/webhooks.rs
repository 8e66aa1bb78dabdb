//! Webhooks and their delivery queue: CRUD, the cursor's compare-and-set with the enqueue, and
//! leased claims.
//!
//! INVARIANT: the cursor moves only from the value the dispatcher read, in the transaction
//! that inserts the deliveries (`ON CONFLICT DO NOTHING` on their deterministic ids); a claim
//! locks the rows it takes (`SKIP_LOCKED`), and an attempt's result is written only where the
//! row still carries the claim's token.

macro_rules! webhooks {
    ($store:ty) => {
        use tessera_core::{MessageId, WebhookId};
        use $crate::records::{AttemptResult, Delivery, DeliveryState, NewDelivery, Redeliver, Webhook};
        use $crate::store::WebhookStore;

        const WHK_COLS: &str = "agency_id, id, url, events, secret, prev_secret, prev_expires_at, state, audit_cursor, created_by, created_at, updated_at";
        const DLV_COLS: &str = "agency_id, id, webhook_id, event_seq, event_type, payload, state, attempts, next_attempt_at, last_status, last_error, created_at, updated_at, delivered_at";

        fn webhook_row(row: &DbRow) -> Result<Webhook, StoreError> {
            let events: String = row.try_get("events")?;
            Ok(Webhook {
                id: col(row, "id")?,
                agency_id: col(row, "agency_id")?,
                url: row.try_get("url")?,
                events: serde_json::from_str(&events)?,
                secret: row.try_get("secret")?,
                prev_secret: row.try_get("prev_secret")?,
                prev_expires_at: row.try_get("prev_expires_at")?,
                state: row.try_get("state")?,
                cursor: row.try_get("audit_cursor")?,
                created_by: row.try_get("created_by")?,
                created_at: row.try_get("created_at")?,
                updated_at: row.try_get("updated_at")?,
            })
        }

        fn delivery_row(row: &DbRow) -> Result<Delivery, StoreError> {
            let state: String = row.try_get("state")?;
            Ok(Delivery {
                id: col(row, "id")?,
                agency_id: col(row, "agency_id")?,
                webhook_id: col(row, "webhook_id")?,
                event_seq: row.try_get("event_seq")?,
                event_type: row.try_get("event_type")?,
                payload: row.try_get("payload")?,
                state: DeliveryState::parse(&state).ok_or_else(|| StoreError::Corrupt(format!("delivery state `{state}`")))?,
                attempts: row.try_get("attempts")?,
                next_attempt_at: row.try_get("next_attempt_at")?,
                last_status: row.try_get("last_status")?,
                last_error: row.try_get("last_error")?,
                created_at: row.try_get("created_at")?,
                updated_at: row.try_get("updated_at")?,
                delivered_at: row.try_get("delivered_at")?,
            })
        }

        #[async_trait]
        impl WebhookStore for $store {
            async fn create_webhook(&self, t: &TenantScope, w: &Webhook, audit: &AuditRecord) -> Result<Webhook, StoreError> {
                let mut tx = self.begin_tenant(t.agency(), true).await?;
                let head: Option<i64> = sqlx::query_scalar("SELECT seq FROM audit_heads WHERE agency_id = $1")
                    .bind(t.agency().as_str())
                    .fetch_optional(&mut *tx)
                    .await?;
                let mut stored = w.clone();
                stored.agency_id = t.agency().clone();
                stored.cursor = head.unwrap_or(0);
                sqlx::query(&format!("INSERT INTO webhooks ({WHK_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"))
                    .bind(t.agency().as_str())
                    .bind(stored.id.as_str())
                    .bind(&stored.url)
                    .bind(serde_json::to_string(&stored.events)?)
                    .bind(&stored.secret)
                    .bind(&stored.prev_secret)
                    .bind(stored.prev_expires_at)
                    .bind(&stored.state)
                    .bind(stored.cursor)
                    .bind(&stored.created_by)
                    .bind(stored.created_at)
                    .bind(stored.updated_at)
                    .execute(&mut *tx)
                    .await?;
                finish(tx, t.agency(), audit, None).await?;
                Ok(stored)
            }

            async fn get_webhook(&self, t: &TenantScope, id: &WebhookId) -> Result<Webhook, StoreError> {
                let mut tx = self.begin_tenant(t.agency(), false).await?;
                fetch_by_id(&mut tx, WHK_COLS, "webhooks", t.agency(), id.as_str(), webhook_row).await
            }

            async fn list_webhooks(&self, t: &TenantScope, page: &PageRequest) -> Result<Page<Webhook>, StoreError> {
                self.tenant_page(t, page, WHK_COLS, "webhooks", webhook_row, |w| w.id.to_string()).await
            }

            async fn count_webhooks(&self, t: &TenantScope) -> Result<i64, StoreError> {
                let mut tx = self.begin_tenant(t.agency(), false).await?;
                Ok(sqlx::query_scalar("SELECT count(*) FROM webhooks WHERE agency_id = $1")
                    .bind(t.agency().as_str())
                    .fetch_one(&mut *tx)
                    .await?)
            }

            async fn delete_webhook(&self, t: &TenantScope, id: &WebhookId, audit: &AuditRecord) -> Result<(), StoreError> {
                let mut tx = self.begin_tenant(t.agency(), true).await?;
                sqlx::query("DELETE FROM webhook_deliveries WHERE agency_id = $1 AND webhook_id = $2")
                    .bind(t.agency().as_str())
                    .bind(id.as_str())
                    .execute(&mut *tx)
                    .await?;
                let done = sqlx::query("DELETE FROM webhooks WHERE agency_id = $1 AND id = $2")
                    .bind(t.agency().as_str())
                    .bind(id.as_str())
                    .execute(&mut *tx)
                    .await?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound);
                }
                finish(tx, t.agency(), audit, None).await
            }

            async fn rotate_webhook_secret(&self, t: &TenantScope, id: &WebhookId, sealed: &[u8], prev_expires_at: i64, now: i64, audit: &AuditRecord) -> Result<Webhook, StoreError> {
                let mut tx = self.begin_tenant(t.agency(), true).await?;
                let done = sqlx::query("UPDATE webhooks SET prev_secret = secret, prev_expires_at = $3, secret = $4, updated_at = $5 WHERE agency_id = $1 AND id = $2")
                    .bind(t.agency().as_str())
                    .bind(id.as_str())
                    .bind(prev_expires_at)
                    .bind(sealed)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound);
                }
                let w = fetch_by_id(&mut tx, WHK_COLS, "webhooks", t.agency(), id.as_str(), webhook_row).await?;
                finish(tx, t.agency(), audit, None).await?;
                Ok(w)
            }

            async fn webhook_agencies(&self) -> Result<Vec<TenantScope>, StoreError> {
                let mut tx = self.begin_webhook_dispatch().await?;
                let rows: Vec<String> = sqlx::query_scalar("SELECT DISTINCT agency_id FROM webhooks ORDER BY agency_id")
                    .fetch_all(&mut *tx)
                    .await?;
                tx.commit().await?;
                rows.into_iter()
                    .map(|a| {
                        a.parse::<AgencyId>()
                            .map(TenantScope::derived)
                            .map_err(|e| StoreError::Corrupt(format!("column `agency_id`: {e}")))
                    })
                    .collect()
            }

            async fn enqueue_deliveries(&self, t: &TenantScope, webhook: &WebhookId, from: i64, to: i64, deliveries: &[NewDelivery], now: i64) -> Result<bool, StoreError> {
                let mut tx = self.begin_tenant(t.agency(), true).await?;
                let moved = sqlx::query("UPDATE webhooks SET audit_cursor = $4 WHERE agency_id = $1 AND id = $2 AND audit_cursor = $3")
                    .bind(t.agency().as_str())
                    .bind(webhook.as_str())
                    .bind(from)
                    .bind(to)
                    .execute(&mut *tx)
                    .await?;
                if moved.rows_affected() == 0 {
                    return Ok(false);
                }
                for d in deliveries {
                    sqlx::query(&format!(
                        "INSERT INTO webhook_deliveries ({DLV_COLS}) VALUES ($1, $2, $3, $4, $5, $6, 'pending', 0, $7, NULL, NULL, $7, $7, NULL) ON CONFLICT (agency_id, id) DO NOTHING"
                    ))
                    .bind(t.agency().as_str())
                    .bind(d.id.as_str())
                    .bind(webhook.as_str())
                    .bind(d.event_seq)
                    .bind(&d.event_type)
                    .bind(&d.payload)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(true)
            }

            async fn claim_deliveries(&self, t: &TenantScope, now: i64, lease_until: i64, claim: &str, limit: u32) -> Result<Vec<Delivery>, StoreError> {
                // A read first: an idle agency costs the (single, on SQLite) writer nothing.
                let mut rx = self.begin_tenant(t.agency(), false).await?;
                let due: Option<String> = sqlx::query_scalar(
                    "SELECT id FROM webhook_deliveries WHERE agency_id = $1 AND state = 'pending' AND next_attempt_at <= $2 LIMIT 1",
                )
                .bind(t.agency().as_str())
                .bind(now)
                .fetch_optional(&mut *rx)
                .await?;
                rx.commit().await?;
                if due.is_none() {
                    return Ok(Vec::new());
                }
                let mut tx = self.begin_tenant(t.agency(), true).await?;
                let rows = sqlx::query(&format!(
                    // The pick is a CTE so it runs once (PostgreSQL may run an `IN (…)`
                    // subquery again, its LIMIT then taking more rows).
                    "WITH picked AS (SELECT id FROM webhook_deliveries WHERE agency_id = $1 AND state = 'pending' \
                     AND next_attempt_at <= $2 ORDER BY next_attempt_at, id LIMIT $5 {SKIP_LOCKED}) \
                     UPDATE webhook_deliveries SET attempts = attempts + 1, next_attempt_at = $3, claim = $4, updated_at = $2 \
                     WHERE agency_id = $1 AND id IN (SELECT id FROM picked) RETURNING {DLV_COLS}"
                ))
                .bind(t.agency().as_str())
                .bind(now)
                .bind(lease_until)
                .bind(claim)
                .bind(i64::from(limit.max(1)))
                .fetch_all(&mut *tx)
                .await?;
                tx.commit().await?;
                let mut out = rows.iter().map(delivery_row).collect::<Result<Vec<_>, _>>()?;
                out.sort_by(|a, b| (a.event_seq, a.id.as_str()).cmp(&(b.event_seq, b.id.as_str())));
                Ok(out)
            }

            async fn finish_delivery(&self, t: &TenantScope, id: &MessageId, claim: &str, r: &AttemptResult) -> Result<bool, StoreError> {
                let written = self.finish_deliveries(t, claim, &[(id.clone(), r.clone())]).await?;
                Ok(written > 0)
            }

            async fn finish_deliveries(&self, t: &TenantScope, claim: &str, results: &[(MessageId, AttemptResult)]) -> Result<u64, StoreError> {
                if results.is_empty() {
                    return Ok(0);
                }
                let mut tx = self.begin_tenant(t.agency(), true).await?;
                let mut written = 0;
                for (id, r) in results {
                    let delivered = (r.state == DeliveryState::Delivered).then_some(r.at);
                    let done = sqlx::query(
                        "UPDATE webhook_deliveries SET state = $4, next_attempt_at = $5, last_status = $6, last_error = $7, updated_at = $8, \
                         delivered_at = COALESCE($9, delivered_at), claim = NULL WHERE agency_id = $1 AND id = $2 AND claim = $3",
                    )
                    .bind(t.agency().as_str())
                    .bind(id.as_str())
                    .bind(claim)
                    .bind(r.state.as_str())
                    .bind(r.next_attempt_at)
                    .bind(r.status)
                    .bind(&r.error)
                    .bind(r.at)
                    .bind(delivered)
                    .execute(&mut *tx)
                    .await?;
                    written += done.rows_affected();
                }
                tx.commit().await?;
                Ok(written)
            }

            async fn get_delivery(&self, t: &TenantScope, webhook: &WebhookId, id: &MessageId) -> Result<Delivery, StoreError> {
                let mut tx = self.begin_tenant(t.agency(), false).await?;
                let row = sqlx::query(&format!("SELECT {DLV_COLS} FROM webhook_deliveries WHERE agency_id = $1 AND webhook_id = $2 AND id = $3"))
                    .bind(t.agency().as_str())
                    .bind(webhook.as_str())
                    .bind(id.as_str())
                    .fetch_optional(&mut *tx)
                    .await?
                    .ok_or(StoreError::NotFound)?;
                delivery_row(&row)
            }

            async fn list_deliveries(&self, t: &TenantScope, webhook: &WebhookId, state: Option<DeliveryState>, page: &PageRequest) -> Result<Page<Delivery>, StoreError> {
                let limit = page_limit(page.limit);
                let mut tx = self.begin_tenant(t.agency(), false).await?;
                fetch_by_id(&mut tx, "id", "webhooks", t.agency(), webhook.as_str(), |r| r.try_get::<String, _>("id").map_err(StoreError::from)).await?;
                let rows = sqlx::query(&format!(
                    "SELECT {DLV_COLS} FROM webhook_deliveries WHERE agency_id = $1 AND webhook_id = $2 AND id > $3 \
                     AND ($4 IS NULL OR state = $4) ORDER BY id LIMIT $5"
                ))
                .bind(t.agency().as_str())
                .bind(webhook.as_str())
                .bind(page.cursor.as_deref().unwrap_or(""))
                .bind(state.map(DeliveryState::as_str))
                .bind(limit + 1)
                .fetch_all(&mut *tx)
                .await?;
                let items = rows.iter().map(delivery_row).collect::<Result<Vec<_>, _>>()?;
                Ok(paginate(items, limit, |d| d.id.to_string()))
            }

            async fn redeliver(&self, t: &TenantScope, webhook: &WebhookId, which: &Redeliver, now: i64, audit: &AuditRecord) -> Result<u64, StoreError> {
                let mut tx = self.begin_tenant(t.agency(), true).await?;
                fetch_by_id(&mut tx, "id", "webhooks", t.agency(), webhook.as_str(), |r| r.try_get::<String, _>("id").map_err(StoreError::from)).await?;
                const SET: &str = "UPDATE webhook_deliveries SET state = 'pending', attempts = 0, next_attempt_at = $3, claim = NULL, updated_at = $3";
                let done = match which {
                    Redeliver::One(id) => {
                        let done = sqlx::query(&format!("{SET} WHERE agency_id = $1 AND webhook_id = $2 AND id = $4"))
                            .bind(t.agency().as_str())
                            .bind(webhook.as_str())
                            .bind(now)
                            .bind(id.as_str())
                            .execute(&mut *tx)
                            .await?;
                        if done.rows_affected() == 0 {
                            return Err(StoreError::NotFound);
                        }
                        done
                    }
                    Redeliver::DeadSince(since) => {
                        sqlx::query(&format!("{SET} WHERE agency_id = $1 AND webhook_id = $2 AND state = 'dead' AND created_at >= $4"))
                            .bind(t.agency().as_str())
                            .bind(webhook.as_str())
                            .bind(now)
                            .bind(since.unwrap_or(i64::MIN))
                            .execute(&mut *tx)
                            .await?
                    }
                };
                let n = done.rows_affected();
                let mut audit = audit.clone();
                if let Some(detail) = audit.detail.as_object_mut() {
                    detail.insert("count".to_owned(), serde_json::json!(n));
                }
                finish(tx, t.agency(), &audit, None).await?;
                Ok(n)
            }

            async fn prune_deliveries(&self, t: &TenantScope, before: i64) -> Result<u64, StoreError> {
                let mut tx = self.begin_tenant(t.agency(), true).await?;
                let done = sqlx::query("DELETE FROM webhook_deliveries WHERE agency_id = $1 AND state = 'delivered' AND updated_at < $2")
                    .bind(t.agency().as_str())
                    .bind(before)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(done.rows_affected())
            }
        }
    };
}

pub(crate) use webhooks;
