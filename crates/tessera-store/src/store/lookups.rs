//! The cross-tenant reads that come before authentication: a key by its secret hash, a client
//! by its id, a code or refresh token by its hash, users by e-mail, a resource server by its
//! identifier. On PostgreSQL each runs
//! under a narrow SELECT-only policy keyed by what it looks up.
//!
//! INVARIANT: each returns the row with the `TenantScope` the store derived from the row
//! itself: the only way, besides the `ScopeMint`, to get a scope.

use async_trait::async_trait;
use tessera_core::AppId;

use crate::error::StoreError;
use crate::records::{
    ClientRecord, CodeRedemption, Grant, Installation, KeySecretMatch, RefreshToken, ResourceServer,
    UserCredential,
};
use crate::scope::TenantScope;

/// Pre-authentication lookups across tenants. Callers: the authentication gate (API keys,
/// client authentication, sign-in) and the OAuth token endpoint (codes, refresh tokens,
/// client credentials), never a handler acting for an authenticated principal.
#[async_trait]
pub trait Lookups: Send + Sync {
    /// Finds the key a secret hash belongs to, across tenants (authentication only), with the
    /// scope of the key's agency.
    async fn find_key_by_secret(
        &self,
        hash: &[u8],
    ) -> Result<Option<(KeySecretMatch, TenantScope)>, StoreError>;
    /// The client `id` with its secrets, across tenants (client authentication, installing a
    /// marketplace app), with the scope of its owner agency. `None` if no app has this id.
    async fn find_client(
        &self,
        id: &AppId,
    ) -> Result<Option<(ClientRecord, TenantScope)>, StoreError>;
    /// The active installations of client `app` in every agency (client credentials), each
    /// with the scope of its installing agency.
    async fn client_installations(
        &self,
        app: &AppId,
    ) -> Result<Vec<(Installation, TenantScope)>, StoreError>;
    /// Finds the code with this hash across tenants and marks it consumed at `now` if it was
    /// not (atomically: of two concurrent redemptions exactly one is `Fresh`), with the scope
    /// of the code's agency. `None` if no code has this hash.
    async fn redeem_code(
        &self,
        hash: &[u8],
        now: i64,
    ) -> Result<Option<(CodeRedemption, TenantScope)>, StoreError>;
    /// The refresh token with this hash and its grant, across tenants, with the scope of
    /// their agency.
    async fn find_refresh_token(
        &self,
        hash: &[u8],
    ) -> Result<Option<(RefreshToken, Grant, TenantScope)>, StoreError>;
    /// Every user with this email (compared case-insensitively), in every agency that is not
    /// deleted, with its password hash and the scope of its agency (sign-in only).
    async fn find_users_by_email(
        &self,
        email: &str,
    ) -> Result<Vec<(UserCredential, TenantScope)>, StoreError>;
    /// The resource server with this identifier (exactly), in any agency, with the scope of
    /// its agency (the token endpoint resolving `resource`, RFC 8707). `None` if none.
    async fn find_resource_server(
        &self,
        identifier: &str,
    ) -> Result<Option<(ResourceServer, TenantScope)>, StoreError>;
}
