//! The tenant scope every tenant operation takes (I1), and the mint that builds one: only a
//! store constructor hands out a mint, so holding a scope means authentication admitted its
//! agency (or a cross-tenant lookup derived it from the row it found).

use tessera_core::AgencyId;

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
/// constructors ([`connect`](crate::connect),
/// [`SqliteStore::connect`](crate::SqliteStore::connect),
/// [`PgStore::connect`](crate::PgStore::connect), the `testing` fixtures); the server's
/// authentication gate owns the one it gets, nothing else does.
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
