//! The PostgreSQL backend. Row-level security is the second wall of tenant isolation (I1):
//! every transaction sets `tessera.agency_id` with `set_config(…, true)`, local to it, so a
//! pooled connection never carries a tenant into the next request. The server refuses to run
//! as a role that would bypass RLS.

use std::time::Duration;

use sqlx::postgres::{PgPool, PgPoolOptions};

/// Row-lock clause for reads that must hold a row until commit: what a foreign-key check
/// takes, so it blocks a `DELETE` of the row but not an update of its other columns.
const KEY_SHARE: &str = "FOR KEY SHARE";

/// Row-lock clause for reads a write depends on (refresh-token rotation).
const FOR_UPDATE: &str = "FOR UPDATE";

/// A PostgreSQL-backed store.
#[derive(Clone, Debug)]
pub struct PgStore {
    pool: PgPool,
}

/// Explains how to make a role that row-level security applies to.
const ROLE_HELP: &str = "create a dedicated role, for example: \
CREATE ROLE tessera LOGIN PASSWORD '…' NOSUPERUSER NOBYPASSRLS; CREATE DATABASE tessera OWNER tessera; \
and connect as it";

impl PgStore {
    /// Connects and checks that the role is subject to row-level security.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await?;
        let row = sqlx::query("SELECT current_user::text AS name, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")
            .fetch_one(&pool)
            .await?;
        let (name, superuser, bypass): (String, bool, bool) = (
            row.try_get("name")?,
            row.try_get("rolsuper")?,
            row.try_get("rolbypassrls")?,
        );
        if superuser || bypass {
            let what = if superuser {
                "a superuser"
            } else {
                "allowed to BYPASSRLS"
            };
            return Err(StoreError::Config(format!(
                "refusing to run as PostgreSQL role `{name}`: it is {what}, which would bypass row-level security; {ROLE_HELP}"
            )));
        }
        Ok(Self { pool })
    }

    fn read_pool(&self) -> &PgPool {
        &self.pool
    }

    /// For the global tables (signing keys): no tenant is set, and none is needed, as they
    /// have no row-level security.
    fn write_pool(&self) -> &PgPool {
        &self.pool
    }

    async fn begin_tenant(&self, agency: &AgencyId, _write: bool) -> Result<Tx, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT set_config('tessera.agency_id', $1, true)")
            .bind(agency.as_str())
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }

    /// Like `begin_tenant`, as one `REPEATABLE READ` snapshot. The isolation level must be set
    /// before the transaction's first query, and `set_config` is a query (a `SELECT`), so it
    /// comes after.
    async fn begin_snapshot(&self, agency: &AgencyId) -> Result<Tx, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await?;
        sqlx::query("SELECT set_config('tessera.agency_id', $1, true)")
            .bind(agency.as_str())
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }

    /// A transaction that may read the change log of every agency (the `change_feed`
    /// policy, SELECT only), and nothing else of any tenant.
    async fn begin_feed(&self) -> Result<Tx, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT set_config('tessera.change_feed', 'on', true)")
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }

    /// A transaction in which `setting` (a SELECT-only lookup policy's key) is `value`.
    async fn begin_lookup(&self, setting: &str, value: &str) -> Result<Tx, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT set_config($1, $2, true)")
            .bind(setting)
            .bind(value)
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }

    /// A transaction that sees the rows of client `app` in every agency (the
    /// `client_lookup` policies, SELECT only), and nothing else of any tenant.
    async fn begin_client(&self, app: &AppId) -> Result<Tx, StoreError> {
        self.begin_lookup("tessera.client_id", app.as_str()).await
    }

    /// A transaction that sees the code or refresh token with this hash, in any agency (the
    /// `credential_lookup` policies, SELECT only).
    async fn begin_credential(&self, hash: &[u8]) -> Result<Tx, StoreError> {
        let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
        self.begin_lookup("tessera.credential_hash", &hex).await
    }

    /// A transaction that sees the users with this email key in every agency (the
    /// `login_lookup` policy, SELECT only).
    async fn begin_login(&self, email_key: &str) -> Result<Tx, StoreError> {
        self.begin_lookup("tessera.login_email", email_key).await
    }

    /// Moves a write transaction to another agency's rows (`append_audit_batch`).
    async fn switch_tenant(&self, tx: &mut Tx, agency: &AgencyId) -> Result<(), StoreError> {
        sqlx::query("SELECT set_config('tessera.agency_id', $1, true)")
            .bind(agency.as_str())
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    async fn find_key_impl(&self, hash: &[u8]) -> Result<Option<DbRow>, StoreError> {
        let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT set_config('tessera.credential_hash', $1, true)")
            .bind(&hex)
            .execute(&mut *tx)
            .await?;
        let row = sqlx::query(
            "SELECT agency_id, key_id, valid_until FROM api_key_secrets WHERE secret_hash = $1",
        )
        .bind(hash)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(row)
    }

    async fn migrate_impl(&self) -> Result<usize, StoreError> {
        let mut tx = self.pool.begin().await?;
        // Nodes starting together migrate one at a time.
        sqlx::query("SELECT pg_advisory_xact_lock(7265637265)")
            .execute(&mut *tx)
            .await?;
        run_migrations(tx, |m| m.postgres).await
    }
}

crate::sql::impl_store!(PgStore, sqlx::Postgres, "postgres");
