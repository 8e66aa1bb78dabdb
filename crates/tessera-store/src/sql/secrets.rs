//! Stored secrets (`store::secrets`): the master keys, the installation-wide secrets and each
//! agency's data key.
//!
//! INVARIANT: rewraps compare-and-set on `master_key_id`; data keys are read and written in
//! their agency's tenant transaction only, and never inserted for a deleted agency.

macro_rules! secrets {
    ($store:ty) => {
        const ROOT_SECRET_COLS: &str = "purpose, version, master_key_id, sealed, created_at, retired_at";

        #[async_trait]
        impl SecretStore for $store {
            async fn master_keys(&self) -> Result<Vec<MasterKeyRow>, StoreError> {
                let rows = sqlx::query("SELECT key_id, state, created_at, retired_at FROM master_keys ORDER BY created_at, key_id")
                    .fetch_all(self.read_pool())
                    .await?;
                rows.iter()
                    .map(|r| {
                        Ok(MasterKeyRow {
                            key_id: r.try_get("key_id")?,
                            state: r.try_get("state")?,
                            created_at: r.try_get("created_at")?,
                            retired_at: r.try_get("retired_at")?,
                        })
                    })
                    .collect()
            }

            async fn activate_master_key(&self, key_id: &str, now: i64) -> Result<(), StoreError> {
                let mut tx = self.write_pool().begin().await?;
                sqlx::query("UPDATE master_keys SET state = 'previous' WHERE state = 'active' AND key_id <> $1")
                    .bind(key_id)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("INSERT INTO master_keys (key_id, state, created_at, retired_at) VALUES ($1, 'active', $2, NULL) \
                             ON CONFLICT (key_id) DO UPDATE SET state = 'active', retired_at = NULL")
                    .bind(key_id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn retire_master_key(&self, key_id: &str, now: i64) -> Result<bool, StoreError> {
                Ok(sqlx::query("UPDATE master_keys SET state = 'retired', retired_at = $2 WHERE key_id = $1 AND state = 'previous'")
                    .bind(key_id)
                    .bind(now)
                    .execute(self.write_pool())
                    .await?
                    .rows_affected()
                    > 0)
            }

            async fn root_secrets(&self) -> Result<Vec<RootSecretRow>, StoreError> {
                let rows = sqlx::query(&format!("SELECT {ROOT_SECRET_COLS} FROM root_secrets ORDER BY purpose, version"))
                    .fetch_all(self.read_pool())
                    .await?;
                rows.iter()
                    .map(|r| {
                        Ok(RootSecretRow {
                            purpose: r.try_get("purpose")?,
                            version: r.try_get("version")?,
                            master_key_id: r.try_get("master_key_id")?,
                            sealed: r.try_get("sealed")?,
                            created_at: r.try_get("created_at")?,
                            retired_at: r.try_get("retired_at")?,
                        })
                    })
                    .collect()
            }

            async fn insert_root_secret(&self, row: &RootSecretRow) -> Result<bool, StoreError> {
                Ok(sqlx::query(&format!("INSERT INTO root_secrets ({ROOT_SECRET_COLS}) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (purpose, version) DO NOTHING"))
                    .bind(&row.purpose)
                    .bind(row.version)
                    .bind(&row.master_key_id)
                    .bind(&row.sealed)
                    .bind(row.created_at)
                    .bind(row.retired_at)
                    .execute(self.write_pool())
                    .await?
                    .rows_affected()
                    > 0)
            }

            async fn rewrap_root_secret(&self, purpose: &str, version: i64, from: &str, to: &str, sealed: &[u8]) -> Result<bool, StoreError> {
                Ok(sqlx::query("UPDATE root_secrets SET master_key_id = $4, sealed = $5 WHERE purpose = $1 AND version = $2 AND master_key_id = $3 AND retired_at IS NULL")
                    .bind(purpose)
                    .bind(version)
                    .bind(from)
                    .bind(to)
                    .bind(sealed)
                    .execute(self.write_pool())
                    .await?
                    .rows_affected()
                    > 0)
            }

            async fn retire_root_secret(&self, purpose: &str, version: i64, now: i64) -> Result<bool, StoreError> {
                let empty: &[u8] = &[];
                Ok(sqlx::query("UPDATE root_secrets SET sealed = $3, retired_at = $4 WHERE purpose = $1 AND version = $2 AND retired_at IS NULL")
                    .bind(purpose)
                    .bind(version)
                    .bind(empty)
                    .bind(now)
                    .execute(self.write_pool())
                    .await?
                    .rows_affected()
                    > 0)
            }

            async fn all_agency_ids(&self) -> Result<Vec<AgencyId>, StoreError> {
                let rows = sqlx::query("SELECT id FROM agencies ORDER BY id").fetch_all(self.read_pool()).await?;
                rows.iter()
                    .map(|r| {
                        let id: String = r.try_get("id")?;
                        id.parse::<AgencyId>().map_err(|e| StoreError::Corrupt(format!("agency id `{id}`: {e}")))
                    })
                    .collect()
            }

            async fn data_key(&self, scope: &TenantScope) -> Result<Option<DataKeyRow>, StoreError> {
                let agency = scope.agency();
                let mut tx = self.begin_tenant(agency, false).await?;
                let row = sqlx::query("SELECT master_key_id, sealed, created_at FROM agency_data_keys WHERE agency_id = $1")
                    .bind(agency.as_str())
                    .fetch_optional(&mut *tx)
                    .await?;
                tx.commit().await?;
                row.map(|r| {
                    Ok(DataKeyRow {
                        master_key_id: r.try_get("master_key_id")?,
                        sealed: r.try_get("sealed")?,
                        created_at: r.try_get("created_at")?,
                    })
                })
                .transpose()
            }

            async fn insert_data_key(&self, scope: &TenantScope, row: &DataKeyRow) -> Result<bool, StoreError> {
                let agency = scope.agency();
                let mut tx = self.begin_tenant(agency, true).await?;
                // The agency's row is read in the same transaction: a deletion committed first
                // is seen, one committed later removes this key with the agency.
                let done = sqlx::query(
                    "INSERT INTO agency_data_keys (agency_id, master_key_id, sealed, created_at) \
                     SELECT id, $2, $3, $4 FROM agencies WHERE id = $1 AND status <> 'deleted' \
                     ON CONFLICT (agency_id) DO NOTHING",
                )
                .bind(agency.as_str())
                .bind(&row.master_key_id)
                .bind(&row.sealed)
                .bind(row.created_at)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                tx.commit().await?;
                Ok(done > 0)
            }

            async fn rewrap_data_key(&self, scope: &TenantScope, from: &str, to: &str, sealed: &[u8]) -> Result<bool, StoreError> {
                let agency = scope.agency();
                let mut tx = self.begin_tenant(agency, true).await?;
                let done = sqlx::query("UPDATE agency_data_keys SET master_key_id = $3, sealed = $4 WHERE agency_id = $1 AND master_key_id = $2")
                    .bind(agency.as_str())
                    .bind(from)
                    .bind(to)
                    .bind(sealed)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                tx.commit().await?;
                Ok(done > 0)
            }

            async fn person_key(&self, scope: &TenantScope, subject: &str) -> Result<Option<Option<Vec<u8>>>, StoreError> {
                let agency = scope.agency();
                let mut tx = self.begin_tenant(agency, false).await?;
                let row = sqlx::query("SELECT sealed FROM person_keys WHERE agency_id = $1 AND subject = $2")
                    .bind(agency.as_str())
                    .bind(subject)
                    .fetch_optional(&mut *tx)
                    .await?;
                tx.commit().await?;
                row.map(|r| r.try_get::<Option<Vec<u8>>, _>("sealed")).transpose().map_err(Into::into)
            }

            async fn insert_person_key(&self, scope: &TenantScope, subject: &str, sealed: &[u8], now: i64) -> Result<bool, StoreError> {
                let agency = scope.agency();
                let mut tx = self.begin_tenant(agency, true).await?;
                let done = sqlx::query(
                    "INSERT INTO person_keys (agency_id, subject, sealed, created_at) \
                     SELECT id, $2, $3, $4 FROM agencies WHERE id = $1 AND status <> 'deleted' \
                     ON CONFLICT (agency_id, subject) DO NOTHING",
                )
                .bind(agency.as_str())
                .bind(subject)
                .bind(sealed)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                tx.commit().await?;
                Ok(done > 0)
            }

            async fn erase_person_key(&self, scope: &TenantScope, subject: &str, now: i64) -> Result<bool, StoreError> {
                let agency = scope.agency();
                let mut tx = self.begin_tenant(agency, true).await?;
                let had = sqlx::query("UPDATE person_keys SET sealed = NULL, erased_at = $3 WHERE agency_id = $1 AND subject = $2 AND sealed IS NOT NULL")
                    .bind(agency.as_str())
                    .bind(subject)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                // The tombstone, when the person never had a key: none is made later either.
                sqlx::query(
                    "INSERT INTO person_keys (agency_id, subject, sealed, created_at, erased_at) \
                     VALUES ($1, $2, NULL, $3, $3) ON CONFLICT (agency_id, subject) DO NOTHING",
                )
                .bind(agency.as_str())
                .bind(subject)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(had > 0)
            }

            async fn pepper_versions_in_use(&self, scope: &TenantScope) -> Result<Vec<i64>, StoreError> {
                let agency = scope.agency();
                let mut tx = self.begin_tenant(agency, false).await?;
                let rows = sqlx::query(
                    "SELECT pepper_version FROM api_key_secrets WHERE agency_id = $1 \
                     UNION SELECT pepper_version FROM app_secrets WHERE agency_id = $1 \
                     UNION SELECT pepper_version FROM refresh_tokens WHERE agency_id = $1",
                )
                .bind(agency.as_str())
                .fetch_all(&mut *tx)
                .await?;
                tx.commit().await?;
                let mut versions = rows.iter().map(|r| r.try_get::<i64, _>("pepper_version")).collect::<Result<Vec<_>, _>>()?;
                versions.sort_unstable();
                Ok(versions)
            }

            async fn rehash_secret(&self, scope: &TenantScope, old: &[u8], new: &[u8], version: i64) -> Result<bool, StoreError> {
                let agency = scope.agency();
                let mut tx = self.begin_tenant(agency, true).await?;
                let mut done = 0;
                for table in ["api_key_secrets", "app_secrets"] {
                    done += sqlx::query(&format!("UPDATE {table} SET secret_hash = $3, pepper_version = $4 WHERE agency_id = $1 AND secret_hash = $2"))
                        .bind(agency.as_str())
                        .bind(old)
                        .bind(new)
                        .bind(version)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                }
                tx.commit().await?;
                Ok(done > 0)
            }
        }
    };
}

pub(crate) use secrets;
