//! Resource servers (RFC 8707): immutable rows of an agency (the platform tenant's serve every
//! agency), created and deleted, and found by identifier before the token endpoint knows whose
//! they are.
//!
//! INVARIANT: an identifier is unique across every agency (`Conflict { constraint:
//! "identifier" }`); every write appends its change-log entry, so each node's view follows.

macro_rules! resource_servers {
    ($store:ty) => {
        const RSV_COLS: &str = "agency_id, id, identifier, name, scopes, created_by, created_at";

        fn resource_server_row(row: &DbRow) -> Result<ResourceServer, StoreError> {
            let scopes: String = row.try_get("scopes")?;
            Ok(ResourceServer {
                id: col(row, "id")?,
                agency_id: col(row, "agency_id")?,
                identifier: row.try_get("identifier")?,
                name: row.try_get("name")?,
                scopes: serde_json::from_str(&scopes)?,
                created_by: row.try_get("created_by")?,
                created_at: row.try_get("created_at")?,
            })
        }

        impl $store {
            async fn create_resource_server_impl(
                &self,
                t: &TenantScope,
                r: &ResourceServer,
                audit: &AuditRecord,
            ) -> Result<(), StoreError> {
                let mut tx = self.begin_tenant(t.agency(), true).await?;
                sqlx::query(&format!(
                    "INSERT INTO resource_servers ({RSV_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
                ))
                .bind(t.agency().as_str())
                .bind(r.id.as_str())
                .bind(&r.identifier)
                .bind(&r.name)
                .bind(serde_json::to_string(&r.scopes)?)
                .bind(&r.created_by)
                .bind(r.created_at)
                .execute(&mut *tx)
                .await?;
                finish(
                    tx,
                    t.agency(),
                    audit,
                    Some(("resource_server.create", r.id.as_str())),
                )
                .await
            }

            async fn get_resource_server_impl(
                &self,
                t: &TenantScope,
                id: &ResourceServerId,
            ) -> Result<ResourceServer, StoreError> {
                let mut tx = self.begin_tenant(t.agency(), false).await?;
                fetch_by_id(
                    &mut tx,
                    RSV_COLS,
                    "resource_servers",
                    t.agency(),
                    id.as_str(),
                    resource_server_row,
                )
                .await
            }

            async fn list_resource_servers_impl(
                &self,
                t: &TenantScope,
                page: &PageRequest,
            ) -> Result<Page<ResourceServer>, StoreError> {
                self.tenant_page(
                    t,
                    page,
                    RSV_COLS,
                    "resource_servers",
                    resource_server_row,
                    |r| r.id.to_string(),
                )
                .await
            }

            async fn delete_resource_server_impl(
                &self,
                t: &TenantScope,
                id: &ResourceServerId,
                audit: &AuditRecord,
            ) -> Result<(), StoreError> {
                let mut tx = self.begin_tenant(t.agency(), true).await?;
                let done =
                    sqlx::query("DELETE FROM resource_servers WHERE agency_id = $1 AND id = $2")
                        .bind(t.agency().as_str())
                        .bind(id.as_str())
                        .execute(&mut *tx)
                        .await?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound);
                }
                finish(
                    tx,
                    t.agency(),
                    audit,
                    Some(("resource_server.delete", id.as_str())),
                )
                .await
            }

            async fn find_resource_server_impl(
                &self,
                identifier: &str,
            ) -> Result<Option<(ResourceServer, TenantScope)>, StoreError> {
                let mut tx = self.begin_resource(identifier).await?;
                let row = sqlx::query(&format!(
                    "SELECT {RSV_COLS} FROM resource_servers WHERE identifier = $1"
                ))
                .bind(identifier)
                .fetch_optional(&mut *tx)
                .await?;
                tx.commit().await?;
                let Some(row) = row else {
                    return Ok(None);
                };
                let found = resource_server_row(&row)?;
                let scope = TenantScope::derived(found.agency_id.clone());
                Ok(Some((found, scope)))
            }
        }
    };
}

pub(crate) use resource_servers;
