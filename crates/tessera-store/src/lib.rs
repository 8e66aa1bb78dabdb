//! Tessera's persistence: the `Store` trait, its SQLite and PostgreSQL implementations, and
//! the records they keep.
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
mod sql_oauth;
mod sqlite;
#[cfg(feature = "testing")]
pub mod testing;

use async_trait::async_trait;
use tessera_core::{
    AccountId, AgencyId, AppId, BindingId, InstallationId, KeyId, PolicyId, PrincipalId, RoleId,
    UserId,
};

pub use audit::{AuditEvent, AuditRecord, ChainHash, Outcome};
pub use error::StoreError;
pub use postgres::PgStore;
pub use records::*;
pub use sqlite::SqliteStore;

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
    let store: std::sync::Arc<dyn Store> = if url.starts_with("postgres://")
        || url.starts_with("postgresql://")
    {
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

/// The persistence interface. Both backends pass the same test suite.
#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug {
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;
    /// Applies pending migrations; returns how many ran.
    async fn migrate(&self) -> Result<usize, StoreError>;
    /// Whether the store answers.
    async fn ping(&self) -> Result<(), StoreError>;
    /// The latest revision of the change log.
    async fn revision(&self) -> Result<i64, StoreError>;

    // --- platform and agencies (global) ---
    /// The platform tenant, once bootstrapped.
    async fn platform_agency(&self) -> Result<Option<Agency>, StoreError>;
    /// Creates the platform tenant, its first admin key and the key's binding, atomically.
    /// Returns `false` (and changes nothing) if the store was already bootstrapped.
    async fn bootstrap(&self, b: Bootstrap) -> Result<bool, StoreError>;
    /// Creates an agency.
    async fn create_agency(&self, a: &Agency, audit: &AuditRecord) -> Result<(), StoreError>;
    /// An agency that is not deleted (the platform tenant included).
    async fn get_agency(&self, id: &AgencyId) -> Result<Agency, StoreError>;
    /// Agencies, in id order (ids are time-ordered to the millisecond) (not the platform tenant, not deleted ones).
    async fn list_agencies(&self, page: &PageRequest) -> Result<Page<Agency>, StoreError>;
    /// Renames an agency.
    async fn update_agency(
        &self,
        id: &AgencyId,
        name: &str,
        now: i64,
        audit: &AuditRecord,
    ) -> Result<Agency, StoreError>;
    /// Marks an agency deleted: its credentials stop working, its audit trail stays.
    async fn delete_agency(
        &self,
        id: &AgencyId,
        now: i64,
        audit: &AuditRecord,
    ) -> Result<(), StoreError>;

    // --- token-signing keys (global) ---
    // The issuer's key ring: platform keys, no tenant, and no audit event or change-log entry
    // written here. On PostgreSQL the table has no row-level security (it holds no tenant
    // data; private keys are sealed under the master key). Times are epoch seconds.
    // Writes are compare-and-set on the row's state, so that nodes applying the same rotation
    // plan at once cannot both win: exactly one sees `true`, the others re-read and re-plan.
    /// Every signing key, ordered by `created_at`, then `kid` (compared bytewise, the same on
    /// both backends).
    async fn signing_keys(&self) -> Result<Vec<SigningKeyRow>, StoreError>;
    /// Stores a new signing key. A `kid` already stored is `Conflict { constraint: "kid" }`.
    async fn insert_signing_key(&self, row: &SigningKeyRow) -> Result<(), StoreError>;
    /// Compare-and-set: if key `kid` is currently in one of `expected_states`, sets its
    /// `state`, and `retires_at`, `expires_at` and the sealed private key where they are
    /// `Some` (`None` leaves the stored value; retiring a key passes `Some(&[])` to wipe it).
    /// Returns whether a row changed: `false` (and nothing changes) when the key is missing
    /// or in another state, or when `expected_states` is empty.
    async fn update_signing_key(
        &self,
        kid: &str,
        expected_states: &[&str],
        state: &str,
        retires_at: Option<i64>,
        expires_at: Option<i64>,
        sealed_private: Option<&[u8]>,
    ) -> Result<bool, StoreError>;
    /// Compare-and-set: deletes key `kid` if it is currently in one of `expected_states`.
    /// Returns whether a row was deleted (`false` when it is missing, in another state, or
    /// `expected_states` is empty).
    async fn delete_signing_key(
        &self,
        kid: &str,
        expected_states: &[&str],
    ) -> Result<bool, StoreError>;

    // --- accounts ---
    /// Creates an account.
    async fn create_account(
        &self,
        t: &TenantScope,
        a: &Account,
        audit: &AuditRecord,
    ) -> Result<(), StoreError>;
    /// An account of the tenant.
    async fn get_account(&self, t: &TenantScope, id: &AccountId) -> Result<Account, StoreError>;
    /// The tenant's accounts, in id order (ids are time-ordered to the millisecond).
    async fn list_accounts(
        &self,
        t: &TenantScope,
        page: &PageRequest,
    ) -> Result<Page<Account>, StoreError>;
    /// Renames an account.
    async fn update_account(
        &self,
        t: &TenantScope,
        id: &AccountId,
        name: &str,
        now: i64,
        audit: &AuditRecord,
    ) -> Result<Account, StoreError>;
    /// Deletes an account with its bindings and the keys bound to it (their secrets and bindings too).
    async fn delete_account(
        &self,
        t: &TenantScope,
        id: &AccountId,
        now: i64,
        audit: &AuditRecord,
    ) -> Result<(), StoreError>;

    // --- users ---
    /// Creates a user (email unique per agency, case-insensitively).
    async fn create_user(
        &self,
        t: &TenantScope,
        u: &NewUser,
        audit: &AuditRecord,
    ) -> Result<User, StoreError>;
    /// A user of the tenant.
    async fn get_user(&self, t: &TenantScope, id: &UserId) -> Result<User, StoreError>;
    /// The tenant's users, in id order (ids are time-ordered to the millisecond).
    async fn list_users(
        &self,
        t: &TenantScope,
        page: &PageRequest,
    ) -> Result<Page<User>, StoreError>;
    /// Changes a user's name, email, status or password hash.
    async fn update_user(
        &self,
        t: &TenantScope,
        id: &UserId,
        patch: &UserPatch,
        now: i64,
        audit: &AuditRecord,
    ) -> Result<User, StoreError>;
    /// Deletes a user with its bindings.
    async fn delete_user(
        &self,
        t: &TenantScope,
        id: &UserId,
        now: i64,
        audit: &AuditRecord,
    ) -> Result<(), StoreError>;

    // --- bindings ---
    /// Creates a binding (unique per principal, role and scope).
    async fn create_binding(
        &self,
        t: &TenantScope,
        b: &Binding,
        audit: &AuditRecord,
    ) -> Result<(), StoreError>;
    /// A binding of the tenant.
    async fn get_binding(&self, t: &TenantScope, id: &BindingId) -> Result<Binding, StoreError>;
    /// The tenant's bindings, optionally of one principal, in id order (ids are time-ordered to the millisecond).
    async fn list_bindings(
        &self,
        t: &TenantScope,
        principal: Option<&PrincipalId>,
        page: &PageRequest,
    ) -> Result<Page<Binding>, StoreError>;
    /// Every binding of a principal (for authorization).
    async fn principal_bindings(
        &self,
        t: &TenantScope,
        principal: &PrincipalId,
    ) -> Result<Vec<Binding>, StoreError>;
    /// Deletes a binding.
    async fn delete_binding(
        &self,
        t: &TenantScope,
        id: &BindingId,
        now: i64,
        audit: &AuditRecord,
    ) -> Result<(), StoreError>;

    // --- custom roles ---
    /// Creates a custom role in the scope's agency (whatever `r.agency_id` says). A duplicate
    /// name is `Conflict { constraint: "name" }`. Bumps the revision.
    async fn create_role(
        &self,
        t: &TenantScope,
        r: &Role,
        audit: &AuditRecord,
    ) -> Result<(), StoreError>;
    /// A custom role of the tenant.
    async fn get_role(&self, t: &TenantScope, id: &RoleId) -> Result<Role, StoreError>;
    /// The tenant's custom roles, in id order (ids are time-ordered to the millisecond).
    async fn list_roles(
        &self,
        t: &TenantScope,
        page: &PageRequest,
    ) -> Result<Page<Role>, StoreError>;
    /// Changes a role's name, description or permissions. Bumps the revision.
    async fn update_role(
        &self,
        t: &TenantScope,
        id: &RoleId,
        patch: &RolePatch,
        now: i64,
        audit: &AuditRecord,
    ) -> Result<Role, StoreError>;
    /// Deletes a role. If bindings name it, this is `Conflict { constraint: "role_in_use" }`
    /// and nothing changes, unless `remove_bindings`: then they go with it, atomically.
    /// Returns how many bindings were removed. Bumps the revision.
    async fn delete_role(
        &self,
        t: &TenantScope,
        id: &RoleId,
        remove_bindings: bool,
        now: i64,
        audit: &AuditRecord,
    ) -> Result<u64, StoreError>;
    /// How many of the tenant's bindings name this role (0 for a role it does not have).
    async fn count_role_bindings(&self, t: &TenantScope, id: &RoleId) -> Result<u64, StoreError>;

    // --- policies ---
    /// Creates a Cedar policy in the scope's agency (whatever `p.agency_id` says). Bumps the
    /// revision.
    async fn create_policy(
        &self,
        t: &TenantScope,
        p: &Policy,
        audit: &AuditRecord,
    ) -> Result<(), StoreError>;
    /// A policy of the tenant.
    async fn get_policy(&self, t: &TenantScope, id: &PolicyId) -> Result<Policy, StoreError>;
    /// The tenant's policies, in id order (ids are time-ordered to the millisecond).
    async fn list_policies(
        &self,
        t: &TenantScope,
        page: &PageRequest,
    ) -> Result<Page<Policy>, StoreError>;
    /// Deletes a policy. Bumps the revision.
    async fn delete_policy(
        &self,
        t: &TenantScope,
        id: &PolicyId,
        now: i64,
        audit: &AuditRecord,
    ) -> Result<(), StoreError>;

    // --- authorization data and the change feed ---
    /// Every role, binding and policy of the tenant, its revocations (active installations;
    /// grants revoked whose `expires_at` is after `now` minus one day; revoked access tokens
    /// not expired at `now`) and the global revision, read in one consistent snapshot: it
    /// reflects exactly the writes up to `revision`.
    async fn authz_snapshot(&self, t: &TenantScope, now: i64) -> Result<AuthzSnapshot, StoreError>;
    /// The global change feed (every agency), in revision order: at most `limit` changes
    /// (clamped to 1..=10000) with a revision above `after_revision`. The revisions are
    /// gap-free, and a change is returned only once every lower revision is visible, so a
    /// tailer that resumes after the last revision it saw misses nothing.
    async fn changes_since(
        &self,
        after_revision: i64,
        limit: u32,
    ) -> Result<Vec<Change>, StoreError>;

    // --- API keys ---
    /// Creates a key with its first secret hash, and its bindings (if any), atomically.
    async fn create_api_key(
        &self,
        t: &TenantScope,
        k: &ApiKey,
        secret: &SecretHashRecord,
        bindings: &[Binding],
        audit: &AuditRecord,
    ) -> Result<(), StoreError>;
    /// A key of the tenant (revoked ones included).
    async fn get_api_key(&self, t: &TenantScope, id: &KeyId) -> Result<ApiKey, StoreError>;
    /// The tenant's keys, in id order (ids are time-ordered to the millisecond).
    async fn list_api_keys(
        &self,
        t: &TenantScope,
        page: &PageRequest,
    ) -> Result<Page<ApiKey>, StoreError>;
    /// Revokes a key and every secret of it, at once.
    async fn revoke_api_key(
        &self,
        t: &TenantScope,
        id: &KeyId,
        now: i64,
        audit: &AuditRecord,
    ) -> Result<ApiKey, StoreError>;
    /// Adds a new secret; the current ones stay valid until `old_valid_until`.
    async fn rotate_api_key(
        &self,
        t: &TenantScope,
        id: &KeyId,
        secret: &SecretHashRecord,
        old_valid_until: i64,
        now: i64,
        audit: &AuditRecord,
    ) -> Result<ApiKey, StoreError>;
    /// Finds the key a secret hash belongs to, across tenants (authentication only), with the
    /// scope of the key's agency.
    async fn find_key_by_secret(
        &self,
        hash: &[u8],
    ) -> Result<Option<(KeySecretMatch, TenantScope)>, StoreError>;
    /// Records when keys were last used (batched by the server, not a write per request).
    async fn touch_api_keys(&self, uses: &[(TenantScope, KeyId, i64)]) -> Result<(), StoreError>;

    // --- audit ---
    /// Appends an event on its own (denied requests, sign-ins).
    async fn append_audit(
        &self,
        t: &TenantScope,
        audit: &AuditRecord,
    ) -> Result<AuditEvent, StoreError>;
    /// The tenant's audit events, in id order (ids are time-ordered to the millisecond).
    async fn list_audit(
        &self,
        t: &TenantScope,
        filter: &AuditFilter,
        page: &PageRequest,
    ) -> Result<Page<AuditEvent>, StoreError>;
    /// Every event of the tenant in order, for export and verification.
    async fn audit_chain(
        &self,
        t: &TenantScope,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<AuditEvent>, StoreError>;

    /// Appends events to several tenants' chains in one transaction (group commit); each
    /// record goes to the chain of its scope, in order.
    async fn append_audit_batch(
        &self,
        events: &[(TenantScope, AuditRecord)],
    ) -> Result<(), StoreError>;

    // --- OAuth clients (apps) ---
    // Apps live in their owner's agency. Authentication reads one by its id across tenants
    // (`find_client`; on PostgreSQL a SELECT-only `client_lookup` policy shows exactly the
    // rows of the app id set for the transaction). App writes append `app.*` to the change
    // log of the owner agency, so nodes drop their cached client.
    /// Registers an app with its first secret (confidential clients).
    async fn create_app(
        &self,
        t: &TenantScope,
        app: &App,
        secret: Option<&SecretHashRecord>,
        audit: &AuditRecord,
    ) -> Result<(), StoreError>;
    /// An app of the tenant (deleted ones included).
    async fn get_app(&self, t: &TenantScope, id: &AppId) -> Result<App, StoreError>;
    /// The tenant's apps that are not deleted, in id order.
    async fn list_apps(&self, t: &TenantScope, page: &PageRequest)
        -> Result<Page<App>, StoreError>;
    /// Marks an app deleted and revokes its secrets. Returns it.
    async fn delete_app(
        &self,
        t: &TenantScope,
        id: &AppId,
        now: i64,
        audit: &AuditRecord,
    ) -> Result<App, StoreError>;
    /// Adds a new secret; the current ones stay valid until `old_valid_until`.
    async fn rotate_app_secret(
        &self,
        t: &TenantScope,
        id: &AppId,
        secret: &SecretHashRecord,
        old_valid_until: i64,
        now: i64,
        audit: &AuditRecord,
    ) -> Result<App, StoreError>;
    /// The client `id` with its secrets, across tenants (client authentication, installing a
    /// marketplace app), with the scope of its owner agency. `None` if no app has this id.
    async fn find_client(
        &self,
        id: &AppId,
    ) -> Result<Option<(ClientRecord, TenantScope)>, StoreError>;

    // --- installations ---
    /// Installs an app. One active installation per (agency, account or none, app): another is
    /// `Conflict { constraint: "installation" }`. Appends `installation.create`.
    async fn create_installation(
        &self,
        t: &TenantScope,
        ins: &Installation,
        audit: &AuditRecord,
    ) -> Result<(), StoreError>;
    /// An installation of the tenant (uninstalled ones included).
    async fn get_installation(
        &self,
        t: &TenantScope,
        id: &InstallationId,
    ) -> Result<Installation, StoreError>;
    /// The tenant's active installations, optionally on one account only, in id order.
    async fn list_installations(
        &self,
        t: &TenantScope,
        account: Option<&AccountId>,
        page: &PageRequest,
    ) -> Result<Page<Installation>, StoreError>;
    /// Uninstalls: marks it revoked and revokes every grant through it (so their refresh
    /// tokens stop at once), atomically. Appends `installation.revoke`. Returns it.
    async fn revoke_installation(
        &self,
        t: &TenantScope,
        id: &InstallationId,
        now: i64,
        audit: &AuditRecord,
    ) -> Result<Installation, StoreError>;
    /// The active installations of client `app` in every agency (client credentials), each
    /// with the scope of its installing agency.
    async fn client_installations(
        &self,
        app: &AppId,
    ) -> Result<Vec<(Installation, TenantScope)>, StoreError>;

    // --- authorization codes, grants and refresh tokens ---
    /// Stores a code (its hash).
    async fn create_code(&self, t: &TenantScope, code: &AuthCode) -> Result<(), StoreError>;
    /// Finds the code with this hash across tenants and marks it consumed at `now` if it was
    /// not (atomically: of two concurrent redemptions exactly one is `Fresh`), with the scope
    /// of the code's agency. `None` if no code has this hash.
    async fn redeem_code(
        &self,
        hash: &[u8],
        now: i64,
    ) -> Result<Option<(CodeRedemption, TenantScope)>, StoreError>;
    /// Creates a grant with its first refresh token (if any), and the audit event, atomically.
    async fn create_grant(
        &self,
        t: &TenantScope,
        grant: &Grant,
        refresh: Option<&NewRefreshToken>,
        audit: &AuditRecord,
    ) -> Result<(), StoreError>;
    /// A grant of the tenant.
    async fn get_grant(&self, t: &TenantScope, id: &str) -> Result<Grant, StoreError>;
    /// Revokes a grant and so its refresh tokens. Returns whether it was active. Appends
    /// `grant.revoke` when it was. `NotFound` if the tenant has no such grant (a code whose
    /// redemption failed never created one).
    async fn revoke_grant(
        &self,
        t: &TenantScope,
        id: &str,
        now: i64,
        audit: &AuditRecord,
    ) -> Result<bool, StoreError>;
    /// The refresh token with this hash and its grant, across tenants, with the scope of
    /// their agency.
    async fn find_refresh_token(
        &self,
        hash: &[u8],
    ) -> Result<Option<(RefreshToken, Grant, TenantScope)>, StoreError>;
    /// Rotates refresh token `old_hash` (of the scope's agency) to `new`, in one transaction
    /// holding the old row's lock: if its grant is revoked or the token is unknown,
    /// `Revoked`; if it was never rotated, it is marked rotated at `now`, `new` is stored,
    /// `Rotated`; if it was rotated less than `grace_ms` before `now`, nothing changes,
    /// `RecentlyRotated`; otherwise the grant is revoked (appending `grant.revoke` and
    /// `audit`), `Reused`.
    async fn rotate_refresh_token(
        &self,
        t: &TenantScope,
        old_hash: &[u8],
        new: &NewRefreshToken,
        now: i64,
        grace_ms: i64,
        audit: &AuditRecord,
    ) -> Result<RefreshUse, StoreError>;
    /// Revokes an access token by its `jti` until it expires. Appends `token.revoke`.
    async fn revoke_access_token(
        &self,
        t: &TenantScope,
        jti: &str,
        expires_at: i64,
        audit: &AuditRecord,
    ) -> Result<(), StoreError>;

    // --- sign-in ---
    /// Every user with this email (compared case-insensitively), in every agency that is not
    /// deleted, with its password hash and the scope of its agency (sign-in only).
    async fn find_users_by_email(
        &self,
        email: &str,
    ) -> Result<Vec<(UserCredential, TenantScope)>, StoreError>;
}
