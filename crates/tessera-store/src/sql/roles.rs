//! Custom roles of an agency.
//!
//! INVARIANT: a role named by bindings is deleted only with them (`remove_bindings`), else
//! `Conflict { constraint: "role_in_use" }` and nothing changes.

macro_rules! roles {
    ($store:ty) => {
        const ROLE_COLS: &str = "agency_id, id, name, description, permissions, created_by, created_at, updated_at";

        fn role_row(row: &DbRow) -> Result<Role, StoreError> {
            let permissions: String = row.try_get("permissions")?;
            Ok(Role {
                id: col(row, "id")?,
                agency_id: col(row, "agency_id")?,
                name: row.try_get("name")?,
                description: row.try_get("description")?,
                permissions: serde_json::from_str(&permissions)?,
                created_by: row.try_get("created_by")?,
                created_at: row.try_get("created_at")?,
                updated_at: row.try_get("updated_at")?,
            })
        }

        impl $store {
            async fn create_role_impl(&self, t: &TenantScope, r: &Role, audit: &AuditRecord) -> Result<(), StoreError> {
                let mut tx = self.begin_tenant(t.agency(), true).await?;
                sqlx::query(&format!("INSERT INTO roles ({ROLE_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"))
                    .bind(t.agency().as_str())
                    .bind(r.id.as_str())
                    .bind(&r.name)
                    .bind(&r.description)
                    .bind(serde_json::to_string(&r.permissions)?)
                    .bind(&r.created_by)
                    .bind(r.created_at)
                    .bind(r.updated_at)
                    .execute(&mut *tx)
                    .await?;
                finish(tx, t.agency(), audit, Some(("role.create", r.id.as_str()))).await
            }

            async fn get_role_impl(&self, t: &TenantScope, id: &RoleId) -> Result<Role, StoreError> {
                let mut tx = self.begin_tenant(t.agency(), false).await?;
                fetch_by_id(&mut tx, ROLE_COLS, "roles", t.agency(), id.as_str(), role_row).await
            }

            async fn list_roles_impl(&self, t: &TenantScope, page: &PageRequest) -> Result<Page<Role>, StoreError> {
                self.tenant_page(t, page, ROLE_COLS, "roles", role_row, |r| r.id.to_string()).await
            }

            async fn update_role_impl(&self, t: &TenantScope, id: &RoleId, p: &RolePatch, now: i64, audit: &AuditRecord) -> Result<Role, StoreError> {
                let permissions = p.permissions.as_ref().map(serde_json::to_string).transpose()?;
                let mut tx = self.begin_tenant(t.agency(), true).await?;
                let row = sqlx::query(&format!(
                    "UPDATE roles SET name = COALESCE($3, name), description = COALESCE($4, description), \
                     permissions = COALESCE($5, permissions), updated_at = $6 \
                     WHERE agency_id = $1 AND id = $2 RETURNING {ROLE_COLS}"
                ))
                .bind(t.agency().as_str())
                .bind(id.as_str())
                .bind(&p.name)
                .bind(&p.description)
                .bind(permissions)
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or(StoreError::NotFound)?;
                let role = role_row(&row)?;
                finish(tx, t.agency(), audit, Some(("role.update", id.as_str()))).await?;
                Ok(role)
            }

            async fn delete_role_impl(&self, t: &TenantScope, id: &RoleId, remove_bindings: bool, _now: i64, audit: &AuditRecord) -> Result<u64, StoreError> {
                let agency = t.agency().as_str();
                let mut tx = self.begin_tenant(t.agency(), true).await?;
                // The role row first: its lock makes a concurrent binding insert (which holds
                // KEY_SHARE on it) finish before the bindings are counted below.
                let done = sqlx::query("DELETE FROM roles WHERE agency_id = $1 AND id = $2")
                    .bind(agency)
                    .bind(id.as_str())
                    .execute(&mut *tx)
                    .await?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound);
                }
                let removed = if remove_bindings {
                    sqlx::query("DELETE FROM bindings WHERE agency_id = $1 AND role = $2")
                        .bind(agency)
                        .bind(id.as_str())
                        .execute(&mut *tx)
                        .await?
                        .rows_affected()
                } else {
                    let in_use: i64 = sqlx::query("SELECT count(*) AS n FROM bindings WHERE agency_id = $1 AND role = $2")
                        .bind(agency)
                        .bind(id.as_str())
                        .fetch_one(&mut *tx)
                        .await?
                        .try_get("n")?;
                    if in_use > 0 {
                        // Dropping `tx` rolls the role's deletion back.
                        return Err(StoreError::Conflict { constraint: "role_in_use".to_owned() });
                    }
                    0
                };
                finish(tx, t.agency(), audit, Some(("role.delete", id.as_str()))).await?;
                Ok(removed)
            }

            async fn count_role_bindings_impl(&self, t: &TenantScope, id: &RoleId) -> Result<u64, StoreError> {
                let mut tx = self.begin_tenant(t.agency(), false).await?;
                let n: i64 = sqlx::query("SELECT count(*) AS n FROM bindings WHERE agency_id = $1 AND role = $2")
                    .bind(t.agency().as_str())
                    .bind(id.as_str())
                    .fetch_one(&mut *tx)
                    .await?
                    .try_get("n")?;
                u64::try_from(n).map_err(|_| StoreError::Corrupt(format!("binding count {n}")))
            }
        }
    };
}

pub(crate) use roles;
