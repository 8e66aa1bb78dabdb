//! The embedded SQLite backend (WAL): one writer connection, so writes queue in-process
//! instead of failing with `SQLITE_BUSY`, and a small pool of readers.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::migrate::{CREATE_TABLE, MIGRATIONS};

/// Row-lock clause for reads that must hold a row until commit. SQLite has none and needs
/// none: the single writer connection runs one write transaction at a time.
const KEY_SHARE: &str = "";

/// A SQLite-backed store.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `url` (`sqlite://PATH`).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let opts = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Config(format!("invalid sqlite url: {e}")))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(opts.clone())
            .await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(opts.read_only(true))
            .await?;
        Ok(Self { writer, reader })
    }

    fn read_pool(&self) -> &SqlitePool {
        &self.reader
    }

    async fn begin_tenant(&self, _agency: &AgencyId, write: bool) -> Result<Tx, StoreError> {
        Ok(if write {
            self.writer.begin().await?
        } else {
            self.reader.begin().await?
        })
    }

    /// A read transaction: in WAL mode it reads one snapshot, from its first read to its end.
    async fn begin_snapshot(&self, _agency: &AgencyId) -> Result<Tx, StoreError> {
        Ok(self.reader.begin().await?)
    }

    /// A read transaction over the change log of every agency.
    async fn begin_feed(&self) -> Result<Tx, StoreError> {
        Ok(self.reader.begin().await?)
    }

    async fn find_key_impl(&self, hash: &[u8]) -> Result<Option<DbRow>, StoreError> {
        Ok(sqlx::query(
            "SELECT agency_id, key_id, valid_until FROM api_key_secrets WHERE secret_hash = $1",
        )
        .bind(hash)
        .fetch_optional(&self.reader)
        .await?)
    }

    async fn migrate_impl(&self) -> Result<usize, StoreError> {
        let mut tx = self.writer.begin().await?;
        sqlx::query(CREATE_TABLE).execute(&mut *tx).await?;
        let mut applied = 0;
        for m in MIGRATIONS {
            let done = sqlx::query("SELECT version FROM tessera_migrations WHERE version = $1")
                .bind(m.version)
                .fetch_optional(&mut *tx)
                .await?;
            if done.is_some() {
                continue;
            }
            sqlx::Executor::execute(&mut *tx, m.sqlite)
                .await
                .map_err(|e| {
                    StoreError::Config(format!("migration {} `{}` failed: {e}", m.version, m.name))
                })?;
            sqlx::query(
                "INSERT INTO tessera_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
            )
            .bind(m.version)
            .bind(m.name)
            .bind(i64::try_from(tessera_core::ids::now_millis()).unwrap_or(i64::MAX))
            .execute(&mut *tx)
            .await?;
            applied += 1;
        }
        tx.commit().await?;
        Ok(applied)
    }
}

crate::sql::impl_store!(SqliteStore, sqlx::Sqlite, "sqlite");
