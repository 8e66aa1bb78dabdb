//! Cedar policies of an agency: immutable rows, created and deleted.
//!
//! INVARIANT: every write bumps the revision (a policy can change any decision).

macro_rules! policies {
    ($store:ty) => {
        const POLICY_COLS: &str = "agency_id, id, description, cedar, created_by, created_at";

        fn policy_row(row: &DbRow) -> Result<Policy, StoreError> {
            Ok(Policy {
                id: col(row, "id")?,
                agency_id: col(row, "agency_id")?,
                description: row.try_get("description")?,
                cedar: row.try_get("cedar")?,
                created_by: row.try_get("created_by")?,
                created_at: row.try_get("created_at")?,
            })
        }

        impl $store {
            async fn create_policy_impl(
                &self,
                t: &TenantScope,
                p: &Policy,
                audit: &AuditRecord,
            ) -> Result<(), StoreError> {
                let mut tx = self.begin_tenant(t.agency(), true).await?;
                sqlx::query(&format!(
                    "INSERT INTO policies ({POLICY_COLS}) VALUES ($1, $2, $3, $4, $5, $6)"
                ))
                .bind(t.agency().as_str())
                .bind(p.id.as_str())
                .bind(&p.description)
                .bind(&p.cedar)
                .bind(&p.created_by)
                .bind(p.created_at)
                .execute(&mut *tx)
                .await?;
                finish(
                    tx,
                    t.agency(),
                    audit,
                    Some(("policy.create", p.id.as_str())),
                )
                .await
            }

            async fn get_policy_impl(
                &self,
                t: &TenantScope,
                id: &PolicyId,
            ) -> Result<Policy, StoreError> {
                let mut tx = self.begin_tenant(t.agency(), false).await?;
                fetch_by_id(
                    &mut tx,
                    POLICY_COLS,
                    "policies",
                    t.agency(),
                    id.as_str(),
                    policy_row,
                )
                .await
            }

            async fn list_policies_impl(
                &self,
                t: &TenantScope,
                page: &PageRequest,
            ) -> Result<Page<Policy>, StoreError> {
                self.tenant_page(t, page, POLICY_COLS, "policies", policy_row, |p| {
                    p.id.to_string()
                })
                .await
            }

            async fn delete_policy_impl(
                &self,
                t: &TenantScope,
                id: &PolicyId,
                _now: i64,
                audit: &AuditRecord,
            ) -> Result<(), StoreError> {
                let mut tx = self.begin_tenant(t.agency(), true).await?;
                let done = sqlx::query("DELETE FROM policies WHERE agency_id = $1 AND id = $2")
                    .bind(t.agency().as_str())
                    .bind(id.as_str())
                    .execute(&mut *tx)
                    .await?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound);
                }
                finish(tx, t.agency(), audit, Some(("policy.delete", id.as_str()))).await
            }
        }
    };
}

pub(crate) use policies;
