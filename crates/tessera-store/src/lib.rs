//! Tessera's persistence: the `Store` traits (one per role, in `store`), their SQLite and
//! PostgreSQL implementations, and the records they keep.
//!
//! INVARIANT (I1): every tenant operation takes a `TenantScope` and filters on its agency; on
//! PostgreSQL row-level security enforces the same filter a second time. Every write that can
//! change an authorization decision bumps the revision in the change log, and every change
//! appends its audit event in the same transaction (I5, I7: never a half-applied write).

pub mod audit;
mod error;
mod migrate;
mod postgres;
mod records;
mod sql;
mod sqlite;
mod store;
#[cfg(feature = "testing")]
pub mod testing;

use tessera_core::AgencyId;

pub use audit::{AuditEvent, AuditRecord, ChainHash, Outcome};
pub use error::StoreError;
pub use postgres::PgStore;
pub use records::*;
pub use sqlite::SqliteStore;
pub use store::{AuditLog, ChangeFeed, KeyRing, Lookups, PlatformAdmin, Store, TenantData};

/// The store's traits, for `use tessera_store::prelude::*;`: calling a method through an
/// `Arc<dyn Store>` needs the trait that declares it in scope.
pub mod prelude {
    pub use crate::store::{
        AuditLog, ChangeFeed, KeyRing, Lookups, PlatformAdmin, Store, TenantData,
    };
}

/// The tenant a store call acts in: only the store builds one, so holding a scope means an
/// authenticated principal may act in its agency.
///
/// A scope comes from a [`ScopeMint`] (which only a store constructor hands out) or with a row
/// a cross-tenant lookup found, derived from that row. Nothing else can build one:
///
/// ```compile_fail,E0451
/// # use tessera_core::AgencyId;
/// let forged = tessera_store::TenantScope { agency: AgencyId::generate() };
/// ```
///
/// ```compile_fail,E0599
/// # use tessera_core::AgencyId;
/// let forged = tessera_store::TenantScope::authenticated(AgencyId::generate());
/// ```
///
/// The allowed path: connect, keep the mint where authentication happens, admit an agency once
/// a credential proves it.
///
/// ```
/// # fn main() -> Result<(), tessera_store::StoreError> {
/// # let rt = tokio::runtime::Runtime::new().map_err(|e| tessera_store::StoreError::Config(e.to_string()))?;
/// # rt.block_on(async {
/// use tessera_core::AgencyId;
/// use tessera_store::Connected;
///
/// let Connected { store, mint } = tessera_store::connect("sqlite::memory:").await?;
/// let agency = AgencyId::generate();
/// let scope = mint.admit(agency.clone());
/// assert_eq!(scope.agency(), &agency);
/// # drop(store);
/// # Ok(())
/// # })
/// # }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenantScope {
    agency: AgencyId,
}

impl TenantScope {
    /// A scope for the agency of a row the store itself read (a cross-tenant lookup).
    pub(crate) fn derived(agency: AgencyId) -> Self {
        Self { agency }
    }

    /// The agency.
    pub fn agency(&self) -> &AgencyId {
        &self.agency
    }
}

/// The capability to build a [`TenantScope`] for any agency. Handed out only by the store
/// constructors ([`connect`], [`SqliteStore::connect`], [`PgStore::connect`], the `testing`
/// fixtures); the server's authentication gate owns the one it gets, nothing else does.
///
/// Not `Clone`, not `Default`, and it cannot be built outside this crate:
///
/// ```compile_fail,E0451
/// let mint = tessera_store::ScopeMint { _seal: () };
/// ```
///
/// ```compile_fail,E0624
/// let mint = tessera_store::ScopeMint::new();
/// ```
///
/// ```compile_fail,E0599
/// let mint = tessera_store::ScopeMint::default();
/// ```
///
/// ```compile_fail,E0599
/// fn copy(mint: &tessera_store::ScopeMint) -> tessera_store::ScopeMint {
///     tessera_store::ScopeMint::clone(mint)
/// }
/// ```
#[derive(Debug)]
pub struct ScopeMint {
    _seal: (),
}

impl ScopeMint {
    /// A mint, for a store constructor to hand out with its store.
    pub(crate) fn new() -> Self {
        Self { _seal: () }
    }

    /// The scope of `agency`, for a principal authentication has proved may act there.
    pub fn admit(&self, agency: AgencyId) -> TenantScope {
        TenantScope { agency }
    }
}

/// A store with the mint that builds scopes for it: what [`connect`] returns.
#[derive(Debug)]
pub struct Connected {
    /// The store.
    pub store: std::sync::Arc<dyn Store>,
    /// The one capability to build tenant scopes; give it to authentication only.
    pub mint: ScopeMint,
}

/// One page of a list: `limit` items after `cursor`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageRequest {
    /// At most this many items (1..=200).
    pub limit: u32,
    /// The last id (or sequence number) of the previous page.
    pub cursor: Option<String>,
}

/// A page of results; `next_cursor` is `None` on the last page.
#[derive(Clone, Debug)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// Where the next page starts.
    pub next_cursor: Option<String>,
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
