//! The embedded SQLite backend (WAL): one writer connection, so writes queue in-process
//! instead of failing with `SQLITE_BUSY`, and a small pool of readers.
//!
//! INVARIANT: once open, the database file and its `-wal` and `-shm` files are mode 0600 (the
//! WAL files SQLite creates later inherit the database file's mode).

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{ConnectOptions as _, Connection as _};

/// Row-lock clause for reads that must hold a row until commit. SQLite has none and needs
/// none: the single writer connection runs one write transaction at a time.
const KEY_SHARE: &str = "";

/// Row-lock clause for reads a write depends on (refresh-token rotation): none needed, for
/// the same reason.
const FOR_UPDATE: &str = "";

/// Claims lock nothing here: the single writer connection runs one claim at a time.
const SKIP_LOCKED: &str = "";

/// Counts the `checksum` column of `tessera_migrations` (0 in a database migrated before
/// checksums were kept).
const CHECKSUM_COLUMN: &str =
    "SELECT count(*) FROM pragma_table_info('tessera_migrations') WHERE name = 'checksum'";

/// The database header's application id: `TSRA`.
const APPLICATION_ID: i32 = 0x5453_5241;

/// Whether the database is a file (not `:memory:` or a `file:` URI).
fn on_disk(path: &std::path::Path) -> bool {
    let name = path.to_string_lossy();
    !(name.is_empty() || name == ":memory:" || name.starts_with("file:"))
}

/// Takes group and other access away from the database file and its `-wal` and `-shm` files;
/// returns the files it changed. SQLite gives `-wal` and `-shm` the database file's mode when
/// it creates them.
fn restrict_files(path: &std::path::Path) -> Result<Vec<std::path::PathBuf>, StoreError> {
    use std::os::unix::fs::PermissionsExt;
    if !on_disk(path) {
        return Ok(Vec::new());
    }
    let name = path.to_string_lossy();
    let mut changed = Vec::new();
    for suffix in ["", "-wal", "-shm"] {
        let p = std::path::PathBuf::from(format!("{name}{suffix}"));
        let Ok(meta) = std::fs::metadata(&p) else {
            continue;
        };
        let mode = meta.permissions().mode();
        if meta.is_file() && mode & 0o077 != 0 {
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode & 0o700)).map_err(
                |e| {
                    StoreError::Config(format!(
                        "cannot restrict the permissions of `{}`: {e}",
                        p.display()
                    ))
                },
            )?;
            changed.push(p);
        }
    }
    Ok(changed)
}

/// A SQLite-backed store.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `url` (`sqlite://PATH`), with the mint
    /// that builds scopes for it.
    pub async fn connect(url: &str) -> Result<(Self, crate::scope::ScopeMint), StoreError> {
        Ok((Self::open(url).await?, crate::scope::ScopeMint::new()))
    }

    /// Opens the database without handing out a mint.
    pub(crate) async fn open(url: &str) -> Result<Self, StoreError> {
        let opts = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Config(format!("invalid sqlite url: {e}")))?;
        let path = opts.get_filename().to_path_buf();
        let fresh = on_disk(&path) && !path.exists();
        if fresh {
            // SQLite creates a database 0644 (under the usual umask) and resets an empty database
            // file to that mode whenever a connection opens it; in WAL mode the file stays empty
            // until a checkpoint. So write its first page (an application id in the header) in
            // rollback mode, with one connection, before anything else opens it.
            let mut first = opts
                .clone()
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Delete)
                .connect()
                .await?;
            sqlx::query(&format!("PRAGMA application_id = {APPLICATION_ID}"))
                .execute(&mut first)
                .await?;
            first.close().await?;
        }
        for p in restrict_files(&path)? {
            if !fresh {
                // Someone left an existing database open to others: say so.
                tracing::warn!(path = %p.display(), "the database file was open to other users: now mode 0600");
            }
        }
        let opts = opts
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
        // The WAL files have the database file's mode; this only guards against a database
        // that was empty when we found it.
        restrict_files(&path)?;
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

    /// A read transaction in which a SELECT-only lookup policy would be on (PostgreSQL); here
    /// a plain read (the audit checkpointer's and pruner's scans of every agency's head).
    async fn begin_lookup(&self, _setting: &str, _value: &str) -> Result<Tx, StoreError> {
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

    /// A read transaction for the resource server with this identifier, in any agency.
    async fn begin_resource(&self, _identifier: &str) -> Result<Tx, StoreError> {
        Ok(self.reader.begin().await?)
    }

    /// A read transaction for the users with this email key, in every agency.
    async fn begin_login(&self, _email_key: &str) -> Result<Tx, StoreError> {
        Ok(self.reader.begin().await?)
    }

    /// A read transaction over every agency's webhooks (which agencies have one).
    async fn begin_webhook_dispatch(&self) -> Result<Tx, StoreError> {
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

    /// The reads of an authorization snapshot, inside `tx` (a read transaction: one snapshot
    /// in WAL mode). In process there is no round trip to save, so each read is its own
    /// prepared statement.
    async fn snapshot_reads(
        &self,
        tx: &mut Tx,
        agency: &AgencyId,
        grant_cutoff: i64,
        now: i64,
    ) -> Result<AuthzSnapshot, StoreError> {
        let a = agency.as_str();
        let revision: i64 = sqlx::query_scalar("SELECT value FROM revision WHERE id = 1")
            .fetch_one(&mut **tx)
            .await?;
        let sql = format!("SELECT {ROLE_COLS} FROM roles WHERE agency_id = $1 ORDER BY id");
        let roles = sqlx::query(&sql).bind(a).fetch_all(&mut **tx).await?;
        let sql = format!("SELECT {BINDING_COLS} FROM bindings WHERE agency_id = $1 ORDER BY id");
        let bindings = sqlx::query(&sql).bind(a).fetch_all(&mut **tx).await?;
        let sql = format!("SELECT {POLICY_COLS} FROM policies WHERE agency_id = $1 ORDER BY id");
        let policies = sqlx::query(&sql).bind(a).fetch_all(&mut **tx).await?;
        let sql = format!(
            "SELECT {INSTALLATION_COLS} FROM installations WHERE agency_id = $1 AND revoked_at IS NULL ORDER BY id"
        );
        let installations = sqlx::query(&sql).bind(a).fetch_all(&mut **tx).await?;
        let grants = sqlx::query_scalar(
            "SELECT id FROM oauth_grants WHERE agency_id = $1 AND revoked_at IS NOT NULL AND expires_at > $2 ORDER BY id",
        )
        .bind(a)
        .bind(grant_cutoff)
        .fetch_all(&mut **tx)
        .await?;
        let access_tokens = sqlx::query_scalar(
            "SELECT jti FROM revoked_access_tokens WHERE agency_id = $1 AND expires_at > $2 ORDER BY jti",
        )
        .bind(a)
        .bind(now)
        .fetch_all(&mut **tx)
        .await?;
        let inactive_users = sqlx::query_scalar(
            "SELECT id FROM users WHERE agency_id = $1 AND status <> 'active' ORDER BY id",
        )
        .bind(a)
        .fetch_all(&mut **tx)
        .await?;
        let installations = installations
            .iter()
            .map(installation_row)
            .collect::<Result<_, _>>()?;
        Ok(AuthzSnapshot {
            revision,
            roles: roles.iter().map(role_row).collect::<Result<_, _>>()?,
            bindings: bindings.iter().map(binding_row).collect::<Result<_, _>>()?,
            policies: policies.iter().map(policy_row).collect::<Result<_, _>>()?,
            revocations: Revocations {
                installations,
                grants,
                access_tokens,
            },
            inactive_users,
        })
    }

    async fn migrate_impl(&self) -> Result<usize, StoreError> {
        // The single writer connection serialises migrations within a process.
        run_migrations(self.writer.begin().await?, |m| m.sqlite).await
    }
}

crate::sql::impl_store!(SqliteStore, sqlx::Sqlite, "sqlite");

impl crate::store::ChangeSignals for SqliteStore {
    /// None: one process serves a SQLite file, and it polls the change log.
    fn change_signal(&self) -> Option<crate::store::ChangeSignal> {
        None
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::os::unix::fs::PermissionsExt;

    use crate::store::PlatformAdmin as _;

    fn mode(p: &std::path::Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[tokio::test]
    async fn the_database_and_its_wal_files_are_private() {
        let dir = crate::testing::TempDirGuard::new("tessera-sqlite-mode").unwrap();
        let db = dir.path().join("t.db");
        let store = super::SqliteStore::open(&format!("sqlite://{}", db.display()))
            .await
            .unwrap();
        // Non-empty from the start: SQLite resets only an empty file's mode when it opens it.
        assert!(std::fs::metadata(&db).unwrap().len() > 0);
        assert_eq!(mode(&db), 0o600);
        store.migrate().await.unwrap();
        // A writer opened later (pools recycle connections) leaves the mode alone.
        let again = super::SqliteStore::open(&format!("sqlite://{}", db.display()))
            .await
            .unwrap();
        again.migrate().await.unwrap();
        for suffix in ["", "-wal", "-shm"] {
            let p = std::path::PathBuf::from(format!("{}{suffix}", db.display()));
            assert_eq!(mode(&p), 0o600, "{}", p.display());
        }
        drop(store);
        // An existing database readable by others is tightened on the next open.
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
        let _store = super::SqliteStore::open(&format!("sqlite://{}", db.display()))
            .await
            .unwrap();
        assert_eq!(mode(&db), 0o600);
    }
}
