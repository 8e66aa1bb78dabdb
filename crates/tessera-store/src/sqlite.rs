//! The embedded SQLite backend (WAL): one writer connection, so writes queue in-process
//! instead of failing with `SQLITE_BUSY`, and a small pool of readers.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

/// Row-lock clause for reads that must hold a row until commit. SQLite has none and needs
/// none: the single writer connection runs one write transaction at a time.
const KEY_SHARE: &str = "";

/// Row-lock clause for reads a write depends on (refresh-token rotation): none needed, for
/// the same reason.
const FOR_UPDATE: &str = "";

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

    /// The single writer: global writes (signing keys) queue with every other write.
    fn write_pool(&self) -> &SqlitePool {
        &self.writer
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

    /// A read transaction for a client's rows in every agency (`find_client`).
    async fn begin_client(&self, _app: &AppId) -> Result<Tx, StoreError> {
        Ok(self.reader.begin().await?)
    }

    /// A read transaction for the row a credential hash names, in any agency.
    async fn begin_credential(&self, _hash: &[u8]) -> Result<Tx, StoreError> {
        Ok(self.reader.begin().await?)
    }

    /// A read transaction for the users with this email key, in every agency.
    async fn begin_login(&self, _email_key: &str) -> Result<Tx, StoreError> {
        Ok(self.reader.begin().await?)
    }

    /// Moves a write transaction to another agency's rows: nothing to do here.
    async fn switch_tenant(&self, _tx: &mut Tx, _agency: &AgencyId) -> Result<(), StoreError> {
        Ok(())
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
        // The single writer connection serialises migrations within a process.
        run_migrations(self.writer.begin().await?, |m| m.sqlite).await
    }
}

crate::sql::impl_store!(SqliteStore, sqlx::Sqlite, "sqlite");
