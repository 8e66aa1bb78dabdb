//! Test-database fixtures, for this crate's tests and the server's (feature `testing`).
//!
//! * [`sqlite_store`]: a migrated SQLite store and its scope mint, in a fresh temporary
//!   directory removed when the returned guard drops.
//! * [`PgTestDb`]: a throw-away PostgreSQL role and database, created from the admin url in
//!   `TESSERA_TEST_DATABASE_URL` and dropped again when the value drops (panicking tests
//!   included). Without the variable the PostgreSQL tests are skipped. Its store comes with
//!   its mint, like [`crate::connect`]'s: tests get their scopes from it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::postgres::PgPoolOptions;
use sqlx::Connection;

use crate::connection::{connect, Connected};

/// The environment variable naming the admin url of the test PostgreSQL server.
pub const PG_URL_ENV: &str = "TESSERA_TEST_DATABASE_URL";

/// `<pid>_<nanos>_<counter>`: unique within this process and, in practice, across processes.
fn unique_suffix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{}_{}_{}",
        std::process::id(),
        nanos,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// The file name of the database inside the directory [`sqlite_store`] returns.
pub const SQLITE_DB_FILE: &str = "tessera.db";

/// Prints, once per process, that the PostgreSQL tests are skipped.
pub fn notice_pg_skipped() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    // Written to the real stderr, past the test harness's capture, so the skip is seen.
    ONCE.call_once(|| {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "notice: {PG_URL_ENV} not set; PostgreSQL suite skipped"
        );
    });
}

/// Removes its directory (recursively) when dropped.
#[derive(Debug)]
pub struct TempDirGuard {
    path: PathBuf,
}

impl TempDirGuard {
    /// Creates a fresh, uniquely named directory under the system temp dir.
    pub fn new(prefix: &str) -> std::io::Result<Self> {
        let path = std::env::temp_dir().join(format!("{prefix}-{}", unique_suffix()));
        std::fs::create_dir_all(&path)?;
        Ok(Self { path })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDirGuard {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.path) {
            eprintln!(
                "warning: could not remove test dir {}: {e}",
                self.path.display()
            );
        }
    }
}

/// A fresh, migrated SQLite store with its mint. Keep the guard alive as long as the store.
///
/// # Panics
/// If the directory cannot be created or the store cannot be opened or migrated.
#[allow(clippy::panic)]
pub async fn sqlite_store() -> (Connected, TempDirGuard) {
    let dir =
        TempDirGuard::new("tessera-test").unwrap_or_else(|e| panic!("creating a temp dir: {e}"));
    let url = format!("sqlite://{}", dir.path().join(SQLITE_DB_FILE).display());
    let connected = connect(&url)
        .await
        .unwrap_or_else(|e| panic!("opening {url}: {e}"));
    connected
        .store
        .migrate()
        .await
        .unwrap_or_else(|e| panic!("migrating {url}: {e}"));
    (connected, dir)
}

/// The parts of `scheme://[user[:pass]@]host[:port]/db[?query]`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PgUrl {
    scheme: String,
    host_port: String,
    query: Option<String>,
}

impl PgUrl {
    fn parse(url: &str) -> Option<Self> {
        let (scheme, rest) = url.split_once("://")?;
        let (rest, query) = match rest.split_once('?') {
            Some((r, q)) => (r, Some(q.to_owned())),
            None => (rest, None),
        };
        let authority = rest.split_once('/').map_or(rest, |(a, _db)| a);
        // The host part comes after the last `@` (a password may contain `@` only escaped).
        let host_port = authority.rsplit_once('@').map_or(authority, |(_user, h)| h);
        if host_port.is_empty() {
            return None;
        }
        Some(Self {
            scheme: scheme.to_owned(),
            host_port: host_port.to_owned(),
            query,
        })
    }

    /// The url with the user (no password: trust auth) and database replaced.
    fn with(&self, user: &str, db: &str) -> String {
        let mut url = format!("{}://{user}@{}/{db}", self.scheme, self.host_port);
        if let Some(q) = &self.query {
            url.push('?');
            url.push_str(q);
        }
        url
    }
}

/// A throw-away PostgreSQL database owned by a throw-away, unprivileged login role
/// (`NOSUPERUSER NOBYPASSRLS`, so row-level security applies to it). Both are dropped on drop.
#[derive(Debug)]
pub struct PgTestDb {
    admin_url: String,
    name: String,
    url: String,
}

impl PgTestDb {
    /// Creates the role and database, or returns `None` when `TESSERA_TEST_DATABASE_URL` is
    /// unset (the caller then skips, see [`notice_pg_skipped`]).
    ///
    /// # Panics
    /// If the variable is set but the server cannot be used: a configured test database
    /// that does not work is a failure, not a skip.
    #[allow(clippy::panic)]
    pub async fn create() -> Option<Self> {
        let admin_url = std::env::var(PG_URL_ENV)
            .ok()
            .filter(|u| !u.trim().is_empty())?;
        let parsed = PgUrl::parse(&admin_url)
            .unwrap_or_else(|| panic!("{PG_URL_ENV}: cannot parse `{admin_url}`"));
        let name = format!("tessera_t_{}", unique_suffix());
        let url = parsed.with(&name, &name);
        let admin = PgPoolOptions::new()
            .max_connections(1)
            .connect(&admin_url)
            .await
            .unwrap_or_else(|e| panic!("{PG_URL_ENV}: cannot connect as admin: {e}"));
        // From here on the value exists, so a failure below still drops what was made.
        let db = Self {
            admin_url,
            name,
            url,
        };
        for stmt in [
            format!("CREATE ROLE \"{}\" LOGIN NOSUPERUSER NOBYPASSRLS", db.name),
            format!("CREATE DATABASE \"{0}\" OWNER \"{0}\"", db.name),
        ] {
            sqlx::query(&stmt)
                .execute(&admin)
                .await
                .unwrap_or_else(|e| panic!("`{stmt}`: {e}"));
        }
        admin.close().await;
        Some(db)
    }

    /// The url of the test database, as its unprivileged owner.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// The admin url it was created from.
    pub fn admin_url(&self) -> String {
        self.admin_url.clone()
    }

    /// The role's and the database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A migrated store on the test database, with its mint.
    ///
    /// # Panics
    /// If it cannot connect or migrate.
    #[allow(clippy::panic)]
    pub async fn store(&self) -> Connected {
        let connected = connect(&self.url)
            .await
            .unwrap_or_else(|e| panic!("connecting to {}: {e}", self.url));
        connected
            .store
            .migrate()
            .await
            .unwrap_or_else(|e| panic!("migrating {}: {e}", self.url));
        connected
    }

    async fn drop_objects(admin_url: &str, name: &str) -> Result<(), sqlx::Error> {
        let mut admin = sqlx::PgConnection::connect(admin_url).await?;
        sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .execute(&mut admin)
            .await?;
        sqlx::query(&format!("DROP ROLE IF EXISTS \"{name}\""))
            .execute(&mut admin)
            .await?;
        admin.close().await
    }
}

impl Drop for PgTestDb {
    fn drop(&mut self) {
        // Drop cannot await, and may run inside a runtime: use a thread with its own.
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        let done = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(Self::drop_objects(&admin_url, &name))
                .map_err(|e| e.to_string())
        })
        .join();
        match done {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("warning: could not drop test database `{}`: {e}", self.name),
            Err(_) => eprintln!("warning: dropping test database `{}` panicked", self.name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::PgUrl;

    #[test]
    fn pg_url_replaces_user_and_database() {
        let cases = [
            (
                "postgres://postgres@127.0.0.1:5432/postgres",
                "postgres://u@127.0.0.1:5432/d",
            ),
            (
                "postgresql://admin:s3cret@db.example:6543/x?sslmode=disable",
                "postgresql://u@db.example:6543/d?sslmode=disable",
            ),
            ("postgres://localhost/postgres", "postgres://u@localhost/d"),
            ("postgres://localhost", "postgres://u@localhost/d"),
            ("postgres://a@[::1]:5432/p", "postgres://u@[::1]:5432/d"),
        ];
        for (admin, want) in cases {
            assert_eq!(
                PgUrl::parse(admin).map(|p| p.with("u", "d")).as_deref(),
                Some(want),
                "{admin}"
            );
        }
        assert_eq!(PgUrl::parse("postgres:///db"), None);
        assert_eq!(PgUrl::parse("not a url"), None);
    }
}
