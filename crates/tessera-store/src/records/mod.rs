//! The rows the store keeps, as the rest of the server sees them: the directory (agencies,
//! accounts, users, bindings, roles, policies, API keys), the change feed and signing keys
//! here, the OAuth records in `oauth`, and what both use (`Status`, `User`) in `common`.
//!
//! INVARIANT: no secret is ever part of a record that can be listed: password and
//! key-secret hashes live in their own types, whose `Debug` redacts them.

mod common;
mod oauth;
mod webhooks;

pub use common::{Status, User};
pub use oauth::*;
pub use webhooks::*;

use schemars::JsonSchema;
use serde::Serialize;
use tessera_core::time::serde_rfc3339;
use tessera_core::{
    AccountId, AgencyId, AppId, BindingId, KeyId, PolicyId, PrincipalId, RoleId, UserId,
};

use crate::audit::AuditRecord;

/// An agency (or the platform tenant).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Agency {
    /// Its id.
    pub id: AgencyId,
    /// Display name.
    pub name: String,
    /// Lifecycle state: `active` or `suspended`.
    pub status: Status,
    /// Why it is suspended (only while it is).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suspended_reason: Option<String>,
    /// Since when it is suspended (only while it is).
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "serde_rfc3339::option::serialize"
    )]
    #[schemars(with = "Option<String>")]
    pub suspended_at: Option<i64>,
    /// Whether this is the operator's own tenant.
    #[serde(skip)]
    pub is_platform: bool,
    /// Creation time.
    #[serde(serialize_with = "serde_rfc3339::serialize")]
    #[schemars(with = "String")]
    pub created_at: i64,
    /// Last change.
    #[serde(serialize_with = "serde_rfc3339::serialize")]
    #[schemars(with = "String")]
    pub updated_at: i64,
}

/// A sub-account of an agency.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Account {
    /// Its id.
    pub id: AccountId,
    /// The agency that owns it.
    pub agency_id: AgencyId,
    /// Display name.
    pub name: String,
    /// `active` or `suspended`.
    pub status: Status,
    /// Why it is suspended (only while it is).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suspended_reason: Option<String>,
    /// Since when it is suspended (only while it is).
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "serde_rfc3339::option::serialize"
    )]
    #[schemars(with = "Option<String>")]
    pub suspended_at: Option<i64>,
    /// Creation time.
    #[serde(serialize_with = "serde_rfc3339::serialize")]
    #[schemars(with = "String")]
    pub created_at: i64,
    /// Last change.
    #[serde(serialize_with = "serde_rfc3339::serialize")]
    #[schemars(with = "String")]
    pub updated_at: i64,
}

/// A user to create.
#[derive(Clone)]
pub struct NewUser {
    /// Its id.
    pub id: UserId,
    /// Sign-in email, already validated.
    pub email: String,
    /// Display name.
    pub name: String,
    /// argon2id PHC string, if a password was given.
    pub password_hash: Option<String>,
    /// Creation time.
    pub now: i64,
}

impl std::fmt::Debug for NewUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewUser")
            .field("id", &self.id)
            .field("email", &self.email)
            .field("password_hash", &"[redacted]")
            .finish()
    }
}

/// Changes to a user; `None` leaves a field as it is.
#[derive(Clone, Default)]
pub struct UserPatch {
    /// New email.
    pub email: Option<String>,
    /// New name.
    pub name: Option<String>,
    /// New status.
    pub status: Option<Status>,
    /// New password hash.
    pub password_hash: Option<String>,
}

impl std::fmt::Debug for UserPatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserPatch")
            .field("email", &self.email)
            .field("name", &self.name)
            .field("status", &self.status)
            .field(
                "password_hash",
                &self.password_hash.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
}

/// A role granted to a principal over the agency or one account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Binding {
    /// Its id.
    pub id: BindingId,
    /// The agency it lives in.
    pub agency_id: AgencyId,
    /// Who is granted.
    pub principal: PrincipalId,
    /// A built-in role's name or a custom role's id.
    pub role: String,
    /// `None`: agency-wide (covers every account).
    pub account: Option<AccountId>,
    /// Who granted it.
    pub created_by: String,
    /// Creation time.
    #[serde(serialize_with = "serde_rfc3339::serialize")]
    #[schemars(with = "String")]
    pub created_at: i64,
}

/// A custom role of one agency: a named set of catalog permissions. Bindings name it by id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Role {
    /// Its id.
    pub id: RoleId,
    /// The agency it belongs to.
    pub agency_id: AgencyId,
    /// Display name (unique per agency).
    pub name: String,
    /// What it is for.
    pub description: String,
    /// Catalog permission names (`contacts.read`, …), validated by the caller.
    pub permissions: Vec<String>,
    /// The principal that created it.
    pub created_by: String,
    /// Creation time.
    #[serde(serialize_with = "serde_rfc3339::serialize")]
    #[schemars(with = "String")]
    pub created_at: i64,
    /// Last change.
    #[serde(serialize_with = "serde_rfc3339::serialize")]
    #[schemars(with = "String")]
    pub updated_at: i64,
}

/// Changes to a role; `None` leaves a field as it is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RolePatch {
    /// New name (unique per agency).
    pub name: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New permission set, replacing the old one.
    pub permissions: Option<Vec<String>>,
}

/// A Cedar policy of one agency. Immutable: a change is a delete and a create.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Policy {
    /// Its id.
    pub id: PolicyId,
    /// The agency it belongs to.
    pub agency_id: AgencyId,
    /// What it is for.
    pub description: String,
    /// The policy text, validated against the catalog's schema by the caller.
    pub cedar: String,
    /// The principal that created it.
    pub created_by: String,
    /// Creation time.
    #[serde(serialize_with = "serde_rfc3339::serialize")]
    #[schemars(with = "String")]
    pub created_at: i64,
}

/// One entry of the global change feed: a decision-changing write, at its revision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// The revision the write committed at (strictly increasing, gap-free).
    pub revision: i64,
    /// The agency it changed.
    pub agency: AgencyId,
    /// What happened, such as `binding.create` or `role.delete`.
    pub kind: String,
    /// The id of the object it happened to.
    pub entity: String,
}

/// The change-log kinds the revocation feed serves (`ChangeFeed::revocations_since`).
pub const REVOCATION_KINDS: &[&str] = &[
    "token.revoke",
    "grant.revoke",
    "installation.revoke",
    "api_key.revoke",
    "api_key.rotate",
    "agency.suspend",
    "agency.reinstate",
    "agency.delete",
    "account.suspend",
    "account.reinstate",
    "account.delete",
    "user.status",
    "user.delete",
    "app.delete",
];

/// One entry of the revocation feed: a change of a `REVOCATION_KINDS` kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevocationChange {
    /// The revision the write committed at.
    pub revision: i64,
    /// The agency it changed.
    pub agency: AgencyId,
    /// The change-log kind, such as `token.revoke`.
    pub kind: String,
    /// The id of the object it happened to.
    pub entity: String,
    /// When it was written (Unix milliseconds).
    pub at: i64,
    /// For `user.status`: the user's status when the feed is read (`None`: the user is gone).
    pub user_status: Option<Status>,
}

/// Everything an agency's authorization decisions are made from, read at one instant.
///
/// INVARIANT: the roles, bindings and policies are those of exactly the writes with a
/// revision `<= revision` (one consistent read), each list in id order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct AuthzSnapshot {
    /// The global revision the snapshot was read at.
    pub revision: i64,
    /// The agency's custom roles.
    pub roles: Vec<Role>,
    /// The agency's bindings.
    pub bindings: Vec<Binding>,
    /// The agency's policies.
    pub policies: Vec<Policy>,
    /// Installations and revoked grants and tokens, read in the same snapshot.
    pub revocations: Revocations,
    /// The ids of the agency's users who are not active (disabled or suspended), sorted. Users
    /// are created active, and every status change or deletion is in the change log, so an
    /// index built from this snapshot knows every user's state at its revision: a check about
    /// a user reads no user row.
    pub inactive_users: Vec<String>,
}

/// An API key's metadata. The secret is never stored; its hashes live apart.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct ApiKey {
    /// Its id.
    pub id: KeyId,
    /// The agency it belongs to.
    pub agency_id: AgencyId,
    /// A label.
    pub name: String,
    /// `Some`: the key acts on this account only.
    pub account: Option<AccountId>,
    /// Catalog scopes capping what the key may do.
    pub scopes: Vec<String>,
    /// The principal that created it.
    pub created_by: String,
    /// Creation time.
    #[serde(serialize_with = "serde_rfc3339::serialize")]
    #[schemars(with = "String")]
    pub created_at: i64,
    /// After this the key no longer authenticates.
    #[serde(serialize_with = "serde_rfc3339::option::serialize")]
    #[schemars(with = "Option<String>")]
    pub expires_at: Option<i64>,
    /// When it was revoked.
    #[serde(serialize_with = "serde_rfc3339::option::serialize")]
    #[schemars(with = "Option<String>")]
    pub revoked_at: Option<i64>,
    /// Last successful authentication (updated in batches).
    #[serde(serialize_with = "serde_rfc3339::option::serialize")]
    #[schemars(with = "Option<String>")]
    pub last_used_at: Option<i64>,
    /// Last rotation.
    #[serde(serialize_with = "serde_rfc3339::option::serialize")]
    #[schemars(with = "Option<String>")]
    pub rotated_at: Option<i64>,
    /// The key's own rate limit, set at creation (kept across rotation).
    pub rate_limit: Option<KeyRateLimit>,
}

/// An API key's own rate limit: `limit` requests per `period_seconds`, across every class.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyRateLimit {
    /// Requests per period (at least 1).
    pub limit: u32,
    /// The period in seconds (1 to 86400).
    pub period_seconds: u32,
}

/// An agency's limit overrides, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgencyLimitsRecord {
    /// A plan name from the configuration, if any.
    pub plan: Option<String>,
    /// Explicit per-class aggregate quotas.
    pub overrides: std::collections::BTreeMap<String, KeyRateLimit>,
    /// Who set them.
    pub updated_by: String,
    /// When.
    pub updated_at: i64,
}

/// A keyed hash of one key secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretHashRecord {
    /// HMAC-SHA-256 of the secret under the pepper.
    pub hash: Vec<u8>,
    /// Which pepper made it.
    pub pepper_version: i64,
}

/// The key a presented secret belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeySecretMatch {
    /// The key's agency.
    pub agency: AgencyId,
    /// The key.
    pub key: KeyId,
    /// After this, this secret (an old one, after a rotation) is no longer valid.
    pub valid_until: Option<i64>,
}

/// What the first start writes.
#[derive(Clone, Debug)]
pub struct Bootstrap {
    /// The platform tenant.
    pub platform: Agency,
    /// Its first admin key.
    pub key: ApiKey,
    /// The key's secret hash.
    pub secret: SecretHashRecord,
    /// The key's `platform_admin` binding.
    pub binding: Binding,
    /// The audit event.
    pub audit: AuditRecord,
}

/// Filters for the audit list.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    /// Only events at or after this time.
    pub after: Option<i64>,
    /// Only events by this actor.
    pub actor: Option<String>,
    /// Only this action.
    pub action: Option<String>,
}

/// One token-signing key as stored: the key ring of the issuer, global (platform keys, no
/// agency). The server converts it to and from the token crate's key record; this crate
/// interprets none of its text. Times are Unix epoch SECONDS, as the token crate uses them
/// (not milliseconds like the other records).
///
/// `Debug` never prints the sealed private key, only its length.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKeyRow {
    /// Key id (unique).
    pub kid: String,
    /// The JWS algorithm it signs with, such as `EdDSA`.
    pub alg: String,
    /// Lifecycle state: `pending`, `active`, `retiring` or `retired`.
    pub state: String,
    /// When the key was generated.
    pub created_at: i64,
    /// When the key starts (or started) to sign.
    pub activates_at: i64,
    /// When the key stopped signing.
    pub retires_at: Option<i64>,
    /// When the last token it may have signed expires.
    pub expires_at: Option<i64>,
    /// The public JWK, as JSON text.
    pub public_jwk: String,
    /// The private key, sealed under the master key. Empty once retired.
    pub sealed_private: Vec<u8>,
}

impl std::fmt::Debug for SigningKeyRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeyRow")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("state", &self.state)
            .field("created_at", &self.created_at)
            .field("activates_at", &self.activates_at)
            .field("retires_at", &self.retires_at)
            .field("expires_at", &self.expires_at)
            .field("public_jwk", &self.public_jwk)
            .field(
                "sealed_private",
                &format_args!("[sealed {} bytes]", self.sealed_private.len()),
            )
            .finish()
    }
}

/// The public facts of one client secret, for the credential inventory: never its hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppSecretFacts {
    /// The app (`app_…`).
    pub app_id: AppId,
    /// When the secret was made (epoch ms).
    pub created_at: i64,
    /// When it stops authenticating (an old secret after a rotation), if ever.
    pub valid_until: Option<i64>,
    /// The pepper version its hash was made under.
    pub pepper_version: i64,
}
