//! Cluster leases and platform change-log entries (`Cluster`).
//!
//! INVARIANT: a lease changes hands or is renewed only by the one upsert below, whose `WHERE`
//! lets it through for the holder itself or once the lease has expired.

macro_rules! cluster {
    ($store:ty) => {
        /// The longest lease a caller may ask for.
        const MAX_LEASE_MS: i64 = 3_600_000;

        #[async_trait]
        impl $crate::store::Cluster for $store {
            async fn acquire_lease(&self, name: &str, holder: &str, now: i64, ttl_ms: i64) -> Result<bool, StoreError> {
                let expires = now.saturating_add(ttl_ms.clamp(1, MAX_LEASE_MS));
                // One statement: on PostgreSQL a racing upsert of the same name waits for the
                // first to commit, then re-checks the `WHERE` against the committed row.
                let done = sqlx::query(
                    "INSERT INTO cluster_leases (name, holder, acquired_at, expires_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at, \
                     acquired_at = CASE WHEN cluster_leases.holder = excluded.holder THEN cluster_leases.acquired_at ELSE excluded.acquired_at END \
                     WHERE cluster_leases.holder = excluded.holder OR cluster_leases.expires_at <= $3",
                )
                .bind(name)
                .bind(holder)
                .bind(now)
                .bind(expires)
                .execute(self.write_pool())
                .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn release_lease(&self, name: &str, holder: &str) -> Result<bool, StoreError> {
                let done = sqlx::query("DELETE FROM cluster_leases WHERE name = $1 AND holder = $2")
                    .bind(name)
                    .bind(holder)
                    .execute(self.write_pool())
                    .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn lease(&self, name: &str) -> Result<Option<$crate::store::Lease>, StoreError> {
                let row = sqlx::query("SELECT name, holder, acquired_at, expires_at FROM cluster_leases WHERE name = $1")
                    .bind(name)
                    .fetch_optional(self.read_pool())
                    .await?;
                row.map(|r| {
                    Ok($crate::store::Lease {
                        name: r.try_get("name")?,
                        holder: r.try_get("holder")?,
                        acquired_at: r.try_get("acquired_at")?,
                        expires_at: r.try_get("expires_at")?,
                    })
                })
                .transpose()
            }

            async fn record_platform_change(&self, t: &TenantScope, kind: &str, entity: &str, at: i64) -> Result<i64, StoreError> {
                let mut tx = self.begin_tenant(t.agency(), true).await?;
                let rev = record_change(&mut tx, t.agency(), kind, entity, at).await?;
                tx.commit().await?;
                Ok(rev)
            }
        }
    };
}

pub(crate) use cluster;
