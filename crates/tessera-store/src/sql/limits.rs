//! Agency limit overrides (rate limits): one row per agency, replaced whole.
//!
//! INVARIANT: every write records an `agency.limits` change, so every node drops its cached
//! overrides of the agency.

macro_rules! limits {
    ($store:ty) => {
        impl $store {
            async fn get_agency_limits_impl(
                &self,
                t: &TenantScope,
            ) -> Result<Option<AgencyLimitsRecord>, StoreError> {
                let mut tx = self.begin_tenant(t.agency(), false).await?;
                let row = sqlx::query(
                    "SELECT plan, overrides, updated_by, updated_at FROM agency_limits WHERE agency_id = $1",
                )
                .bind(t.agency().as_str())
                .fetch_optional(&mut *tx)
                .await?;
                let Some(row) = row else { return Ok(None) };
                let overrides: String = row.try_get("overrides")?;
                Ok(Some(AgencyLimitsRecord {
                    plan: row.try_get("plan")?,
                    overrides: serde_json::from_str(&overrides)?,
                    updated_by: row.try_get("updated_by")?,
                    updated_at: row.try_get("updated_at")?,
                }))
            }

            async fn put_agency_limits_impl(
                &self,
                t: &TenantScope,
                l: &AgencyLimitsRecord,
                audit: &AuditRecord,
            ) -> Result<(), StoreError> {
                let mut tx = self.begin_tenant(t.agency(), true).await?;
                sqlx::query("DELETE FROM agency_limits WHERE agency_id = $1")
                    .bind(t.agency().as_str())
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(
                    "INSERT INTO agency_limits (agency_id, plan, overrides, updated_by, updated_at) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(t.agency().as_str())
                .bind(l.plan.as_deref())
                .bind(serde_json::to_string(&l.overrides)?)
                .bind(&l.updated_by)
                .bind(l.updated_at)
                .execute(&mut *tx)
                .await?;
                finish(
                    tx,
                    t.agency(),
                    audit,
                    Some(("agency.limits", t.agency().as_str())),
                )
                .await
            }
        }
    };
}

pub(crate) use limits;
