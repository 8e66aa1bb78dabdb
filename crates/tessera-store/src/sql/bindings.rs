//! Role bindings of principals, agency-wide or on one account.
//!
//! INVARIANT: a binding naming a custom role is inserted only while the role row is held
//! (`KEY_SHARE`), so no binding outlives its role.

macro_rules! bindings {
    ($store:ty) => {
        const BINDING_COLS: &str = "agency_id, id, principal, role, account_id, created_by, created_at";

        fn binding_row(row: &DbRow) -> Result<Binding, StoreError> {
            Ok(Binding {
                id: col(row, "id")?,
                agency_id: col(row, "agency_id")?,
                principal: col::<PrincipalId>(row, "principal")?,
                role: row.try_get("role")?,
                account: opt_col(row, "account_id")?,
                created_by: row.try_get("created_by")?,
                created_at: row.try_get("created_at")?,
            })
        }

        /// Inserts `b` into `agency` (the scope's, never the record's own `agency_id`).
        ///
        /// A custom role (`rol_…`) must exist in the agency, else `Reference`. The role row is
        /// read under `KEY_SHARE` (a foreign-key check by hand): a concurrent `delete_role`
        /// waits for this transaction and then sees the binding, so no binding outlives its role.
        async fn insert_binding(tx: &mut Tx, agency: &AgencyId, b: &Binding) -> Result<(), StoreError> {
            if b.role.starts_with(RoleId::PREFIX) {
                sqlx::query(&format!("SELECT id FROM roles WHERE agency_id = $1 AND id = $2 {KEY_SHARE}"))
                    .bind(agency.as_str())
                    .bind(&b.role)
                    .fetch_optional(&mut **tx)
                    .await?
                    .ok_or(StoreError::Reference)?;
            }
            sqlx::query("INSERT INTO bindings (agency_id, id, principal, role, account_id, account_key, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
                .bind(agency.as_str())
                .bind(b.id.as_str())
                .bind(b.principal.as_str())
                .bind(&b.role)
                .bind(b.account.as_ref().map(AccountId::as_str))
                .bind(b.account.as_ref().map(AccountId::as_str).unwrap_or(""))
                .bind(&b.created_by)
                .bind(b.created_at)
                .execute(&mut **tx)
                .await?;
            Ok(())
        }

        impl $store {
            async fn create_binding_impl(&self, t: &TenantScope, b: &Binding, audit: &AuditRecord) -> Result<(), StoreError> {
                let mut tx = self.begin_tenant(t.agency(), true).await?;
                insert_binding(&mut tx, t.agency(), b).await?;
                finish(tx, t.agency(), audit, Some(("binding.create", b.id.as_str()))).await
            }

            async fn get_binding_impl(&self, t: &TenantScope, id: &BindingId) -> Result<Binding, StoreError> {
                let mut tx = self.begin_tenant(t.agency(), false).await?;
                fetch_by_id(&mut tx, BINDING_COLS, "bindings", t.agency(), id.as_str(), binding_row).await
            }

            async fn list_bindings_impl(&self, t: &TenantScope, principal: Option<&PrincipalId>, page: &PageRequest) -> Result<Page<Binding>, StoreError> {
                let limit = page_limit(page.limit);
                let mut tx = self.begin_tenant(t.agency(), false).await?;
                let rows = sqlx::query(&format!("SELECT {BINDING_COLS} FROM bindings WHERE agency_id = $1 AND id > $2 AND ($3 IS NULL OR principal = $3) ORDER BY id LIMIT $4"))
                    .bind(t.agency().as_str())
                    .bind(page.cursor.as_deref().unwrap_or(""))
                    .bind(principal.map(PrincipalId::as_str))
                    .bind(limit + 1)
                    .fetch_all(&mut *tx)
                    .await?;
                let items = rows.iter().map(binding_row).collect::<Result<Vec<_>, _>>()?;
                Ok(paginate(items, limit, |b| b.id.to_string()))
            }

            async fn principal_bindings_impl(&self, t: &TenantScope, principal: &PrincipalId) -> Result<Vec<Binding>, StoreError> {
                let mut tx = self.begin_tenant(t.agency(), false).await?;
                let rows = sqlx::query(&format!("SELECT {BINDING_COLS} FROM bindings WHERE agency_id = $1 AND principal = $2 ORDER BY id"))
                    .bind(t.agency().as_str())
                    .bind(principal.as_str())
                    .fetch_all(&mut *tx)
                    .await?;
                rows.iter().map(binding_row).collect()
            }

            async fn delete_binding_impl(&self, t: &TenantScope, id: &BindingId, _now: i64, audit: &AuditRecord) -> Result<(), StoreError> {
                let mut tx = self.begin_tenant(t.agency(), true).await?;
                let done = sqlx::query("DELETE FROM bindings WHERE agency_id = $1 AND id = $2")
                    .bind(t.agency().as_str())
                    .bind(id.as_str())
                    .execute(&mut *tx)
                    .await?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound);
                }
                finish(tx, t.agency(), audit, Some(("binding.delete", id.as_str()))).await
            }
        }
    };
}

pub(crate) use bindings;
