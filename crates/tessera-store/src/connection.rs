//! Opening a store by its url: `connect` picks the backend from the url's scheme and returns
//! the store with its scope mint (`Connected`); `grant_runtime_role` prepares a PostgreSQL
//! role the server can run as.

use crate::error::StoreError;
use crate::postgres::PgStore;
use crate::scope::ScopeMint;
use crate::sqlite::SqliteStore;
use crate::store::Store;

/// A store with the mint that builds scopes for it: what [`connect`] returns.
#[derive(Debug)]
pub struct Connected {
    /// The store.
    pub store: std::sync::Arc<dyn Store>,
    /// The one capability to build tenant scopes; give it to authentication only.
    pub mint: ScopeMint,
}

/// Connects to the store named by `url` (`sqlite://…` or `postgres://…`), with its mint.
pub async fn connect(url: &str) -> Result<Connected, StoreError> {
    let store: std::sync::Arc<dyn Store> =
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            std::sync::Arc::new(PgStore::open(url).await?)
        } else if url.starts_with("sqlite:") {
            std::sync::Arc::new(SqliteStore::open(url).await?)
        } else {
            return Err(StoreError::Config(format!(
            "unsupported database url scheme in `{}` (expected `sqlite://PATH` or `postgres://…`)",
            url.split(':').next().unwrap_or_default()
        )));
        };
    Ok(Connected {
        store,
        mint: ScopeMint::new(),
    })
}

/// Whether `url` names a PostgreSQL database.
fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// Connects to a read replica of the PostgreSQL primary `primary_url` (a hot standby fed by
/// streaming replication), with the same refusal of a role that would bypass row-level
/// security. It hands out no mint: the primary's mint makes the scopes both use. A SQLite
/// primary, or a replica url that is not PostgreSQL, is a configuration error.
pub async fn connect_replica(
    primary_url: &str,
    replica_url: &str,
) -> Result<std::sync::Arc<dyn Store>, StoreError> {
    if !is_postgres(primary_url) {
        return Err(StoreError::Config(
            "`--replica-url` needs a PostgreSQL primary (`--database-url postgres://…`); SQLite has no replicas".into(),
        ));
    }
    if !is_postgres(replica_url) {
        return Err(StoreError::Config(format!(
            "unsupported replica url scheme in `{}` (expected `postgres://…`)",
            replica_url.split(':').next().unwrap_or_default()
        )));
    }
    Ok(std::sync::Arc::new(
        PgStore::open_replica(replica_url).await?,
    ))
}

/// On PostgreSQL, as the tables' owner: grants `role` row access to every table (and to the
/// tables later migrations create), so the server can run as a role that owns nothing and so
/// cannot turn row-level security off. SQLite has no roles: an error.
pub async fn grant_runtime_role(owner_url: &str, role: &str) -> Result<(), StoreError> {
    if !(owner_url.starts_with("postgres://") || owner_url.starts_with("postgresql://")) {
        return Err(StoreError::Config(
            "`--grant-to` applies to PostgreSQL only".into(),
        ));
    }
    PgStore::open(owner_url)
        .await?
        .grant_runtime_role(role)
        .await
}
