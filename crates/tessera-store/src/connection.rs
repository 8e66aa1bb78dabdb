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
