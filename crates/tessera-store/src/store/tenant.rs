//! Everything an authenticated principal reads and writes inside its agency: accounts, users,
//! bindings, roles, policies, API keys, apps, installations, codes, grants, tokens and
//! resource servers.
//!
//! INVARIANT (I1): every method takes the `TenantScope` and acts on that agency's rows only
//! (whatever agency a record passed in names); each write commits its audit event, and its
//! change-log entry when it can change a decision, in the same transaction.

use async_trait::async_trait;
use tessera_core::{
    AccountId, AppId, BindingId, InstallationId, KeyId, PolicyId, PrincipalId, ResourceServerId,
    RoleId, UserId,
};

use crate::audit::AuditRecord;
use crate::error::StoreError;
use crate::page::{Page, PageRequest};
use crate::records::{
    Account, AgencyLimitsRecord, ApiKey, App, AppUpdate, AuthCode, Binding, Grant, Installation,
    NewRefreshToken, NewUser, Policy, RefreshUse, ResourceServer, Role, RolePatch, SecretHashRecord, User,
    UserPatch,
};
use crate::scope::TenantScope;

/// The tenant's data, behind a `TenantScope`. Callers: the server's services, after the gate
/// authenticated the principal and admitted its agency.
///
/// Apps live in their owner's agency; app writes append `app.*` to the owner agency's change
/// log, so nodes drop their cached client.
#[async_trait]
pub trait TenantData: Send + Sync {
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
    /// Suspends (`Some(reason)`) or reinstates (`None`) an account; returns it as it stands
    /// after, and whether it changed (nothing is written when it was already so). A change
    /// commits its audit event and `account.suspend`/`account.reinstate` in the change log.
    async fn set_account_suspended(
        &self,
        t: &TenantScope,
        id: &AccountId,
        reason: Option<&str>,
        now: i64,
        audit: &AuditRecord,
    ) -> Result<(Account, bool), StoreError>;
    /// Deletes an account with its bindings and the keys bound to it (their secrets and bindings too).
    async fn delete_account(
        &self,
        t: &TenantScope,
        id: &AccountId,
        now: i64,
        audit: &AuditRecord,
    ) -> Result<(), StoreError>;
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
    /// The agency's limit overrides, if any were set.
    async fn get_agency_limits(
        &self,
        t: &TenantScope,
    ) -> Result<Option<AgencyLimitsRecord>, StoreError>;
    /// Replaces the agency's limit overrides (records an `agency.limits` change).
    async fn put_agency_limits(
        &self,
        t: &TenantScope,
        l: &AgencyLimitsRecord,
        audit: &AuditRecord,
    ) -> Result<(), StoreError>;
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
    /// Records when keys were last used (batched by the server, not a write per request).
    async fn touch_api_keys(&self, uses: &[(TenantScope, KeyId, i64)]) -> Result<(), StoreError>;
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
    /// Changes an app that is not deleted (details and review state), with `app.update` in
    /// the change log so that nodes drop their cached client.
    async fn update_app(
        &self,
        t: &TenantScope,
        id: &AppId,
        update: &AppUpdate,
        now: i64,
        audit: &AuditRecord,
    ) -> Result<App, StoreError>;
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
    /// Stores a code (its hash).
    async fn create_code(&self, t: &TenantScope, code: &AuthCode) -> Result<(), StoreError>;
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
    /// Registers a resource server in the scope's agency (whatever `r.agency_id` says). An
    /// identifier already registered in any agency is `Conflict { constraint: "identifier" }`.
    /// Appends `resource_server.create` to the change log.
    async fn create_resource_server(
        &self,
        t: &TenantScope,
        r: &ResourceServer,
        audit: &AuditRecord,
    ) -> Result<(), StoreError>;
    /// A resource server of the tenant.
    async fn get_resource_server(
        &self,
        t: &TenantScope,
        id: &ResourceServerId,
    ) -> Result<ResourceServer, StoreError>;
    /// The tenant's resource servers, in id order (ids are time-ordered to the millisecond).
    async fn list_resource_servers(
        &self,
        t: &TenantScope,
        page: &PageRequest,
    ) -> Result<Page<ResourceServer>, StoreError>;
    /// Deletes a resource server. Appends `resource_server.delete` to the change log.
    async fn delete_resource_server(
        &self,
        t: &TenantScope,
        id: &ResourceServerId,
        audit: &AuditRecord,
    ) -> Result<(), StoreError>;
}
