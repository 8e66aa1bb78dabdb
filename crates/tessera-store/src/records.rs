//! The rows the store keeps, as the rest of the server sees them. No secret is ever part
//! of a record that can be listed: password and key-secret hashes live in their own types.

use schemars::JsonSchema;
use serde::Serialize;
use tessera_core::time::serde_rfc3339;
use tessera_core::{
    AccountId, AgencyId, AppId, BindingId, InstallationId, KeyId, PolicyId, PrincipalId, RoleId,
    UserId,
};

use crate::audit::AuditRecord;

/// Whether a tenant object is usable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// In use.
    Active,
    /// Kept but unusable: its credentials do not authenticate.
    Disabled,
    /// Gone (agencies keep their audit trail).
    Deleted,
}

impl Status {
    /// The stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Disabled => "disabled",
            Self::Deleted => "deleted",
        }
    }
    /// Parses the stored text.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(Self::Active),
            "disabled" => Some(Self::Disabled),
            "deleted" => Some(Self::Deleted),
            _ => None,
        }
    }
}

/// An agency (or the platform tenant).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Agency {
    /// Its id.
    pub id: AgencyId,
    /// Display name.
    pub name: String,
    /// Lifecycle state.
    pub status: Status,
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
    /// Creation time.
    #[serde(serialize_with = "serde_rfc3339::serialize")]
    #[schemars(with = "String")]
    pub created_at: i64,
    /// Last change.
    #[serde(serialize_with = "serde_rfc3339::serialize")]
    #[schemars(with = "String")]
    pub updated_at: i64,
}

/// A person. The password hash is never part of this record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct User {
    /// Its id.
    pub id: UserId,
    /// The agency it belongs to.
    pub agency_id: AgencyId,
    /// Sign-in email (unique per agency, case-insensitively).
    pub email: String,
    /// Display name.
    pub name: String,
    /// `active` or `disabled`.
    pub status: Status,
    /// Whether a password is set.
    pub has_password: bool,
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

/// What kind of OAuth client an app is (DESIGN.md §1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AppKind {
    /// An agency's own client: used by that agency's users and installations only.
    Private,
    /// A partner's client, listed for every agency to install; never holds `internal` scopes.
    Marketplace,
    /// The platform's own client, marked so by a platform admin: the only kind that may hold
    /// `internal` scopes.
    FirstParty,
}

impl AppKind {
    /// The stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Private => "private",
            Self::Marketplace => "marketplace",
            Self::FirstParty => "first_party",
        }
    }
    /// Parses the stored text.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "private" => Some(Self::Private),
            "marketplace" => Some(Self::Marketplace),
            "first_party" => Some(Self::FirstParty),
            _ => None,
        }
    }
}

/// An OAuth client, owned by one agency. Its secrets (hashed) live apart.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct App {
    /// Its id, which is also its OAuth `client_id`.
    pub id: AppId,
    /// The agency that owns it (the partner, for a marketplace app).
    pub agency_id: AgencyId,
    /// Display name, shown on the consent page.
    pub name: String,
    /// Private, marketplace or first-party.
    pub kind: AppKind,
    /// Whether it authenticates with a secret (a confidential client) or not (a public one).
    pub confidential: bool,
    /// The JWS algorithm its tokens are signed with: `EdDSA` (the default), or `ES256` or
    /// `RS256` for clients whose libraries lack EdDSA.
    pub token_signing_alg: String,
    /// The redirect URIs, matched exactly.
    pub redirect_uris: Vec<String>,
    /// The most the app may ever request (catalog scope names).
    pub scopes: Vec<String>,
    /// The principal that registered it.
    pub created_by: String,
    /// Creation time.
    #[serde(serialize_with = "serde_rfc3339::serialize")]
    #[schemars(with = "String")]
    pub created_at: i64,
    /// Last change.
    #[serde(serialize_with = "serde_rfc3339::serialize")]
    #[schemars(with = "String")]
    pub updated_at: i64,
    /// When it was deleted: its clients no longer authenticate, its tokens are inactive.
    #[serde(serialize_with = "serde_rfc3339::option::serialize")]
    #[schemars(with = "Option<String>")]
    pub deleted_at: Option<i64>,
}

/// A keyed hash of one client secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientSecret {
    /// HMAC-SHA-256 of the secret under the pepper.
    pub hash: Vec<u8>,
    /// Which pepper made it.
    pub pepper_version: i64,
    /// After this the secret no longer authenticates (an old secret after a rotation).
    pub valid_until: Option<i64>,
}

/// An OAuth client as authentication sees it: the app and its secret hashes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientRecord {
    /// The app (deleted ones included: the caller checks `deleted_at`).
    pub app: App,
    /// Its secrets, newest first (none for a public client).
    pub secrets: Vec<ClientSecret>,
}

/// An app installed on an agency or one of its accounts, holding the consented scopes. It
/// lives in the installing agency; the app may belong to another (a marketplace app).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Installation {
    /// Its id.
    pub id: InstallationId,
    /// The agency it is installed in.
    pub agency_id: AgencyId,
    /// The app.
    pub app_id: AppId,
    /// The agency that owns the app.
    pub app_agency_id: AgencyId,
    /// `Some`: installed on this account only; `None`: on the whole agency.
    pub account: Option<AccountId>,
    /// The consented scopes: the most any token of this installation carries.
    pub scopes: Vec<String>,
    /// Who installed it.
    pub created_by: String,
    /// Creation time.
    #[serde(serialize_with = "serde_rfc3339::serialize")]
    #[schemars(with = "String")]
    pub created_at: i64,
    /// When it was uninstalled.
    #[serde(serialize_with = "serde_rfc3339::option::serialize")]
    #[schemars(with = "Option<String>")]
    pub revoked_at: Option<i64>,
}

/// An authorization code, stored by the keyed hash of its value (never the value).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthCode {
    /// HMAC-SHA-256 of the code under the pepper (unique).
    pub hash: Vec<u8>,
    /// The signed-in user's agency.
    pub agency_id: AgencyId,
    /// The client it was issued to.
    pub client_id: AppId,
    /// The user who consented.
    pub user_id: UserId,
    /// The installation the consent went through, if any.
    pub installation: Option<InstallationId>,
    /// The account the tokens will act on, if one.
    pub account: Option<AccountId>,
    /// The redirect URI of the request, which the token request must repeat exactly.
    pub redirect_uri: String,
    /// The granted scopes, space-separated.
    pub scope: String,
    /// The PKCE S256 challenge.
    pub code_challenge: String,
    /// The OIDC nonce of the request.
    pub nonce: Option<String>,
    /// When the user signed in (epoch ms).
    pub auth_time: i64,
    /// The grant (refresh family) the exchange creates: on a replay, it is revoked.
    pub grant_id: String,
    /// Creation time.
    pub created_at: i64,
    /// After this the code is refused.
    pub expires_at: i64,
    /// When it was exchanged (`None` until then).
    pub consumed_at: Option<i64>,
}

/// What redeeming a code found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CodeRedemption {
    /// First use: the code is now consumed.
    Fresh(AuthCode),
    /// The code was already consumed: a replay.
    Replayed(AuthCode),
}

/// A grant: what a subject consented to a client, the family of the refresh tokens it
/// issued. Revoking it revokes them all, and the access tokens that name it (`sid`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Grant {
    /// `grt_` + a ULID.
    pub id: String,
    /// The agency the tokens act in.
    pub agency_id: AgencyId,
    /// `authorization_code` or `token_exchange`.
    pub kind: String,
    /// The client.
    pub client_id: AppId,
    /// The subject (`usr_…`).
    pub subject: String,
    /// The installation it goes through, if any.
    pub installation: Option<InstallationId>,
    /// The account the tokens act on, if one.
    pub account: Option<AccountId>,
    /// The granted scopes, space-separated: refreshes may only narrow them.
    pub scope: String,
    /// When the user signed in (epoch ms).
    pub auth_time: Option<i64>,
    /// Creation time.
    #[serde(serialize_with = "serde_rfc3339::serialize")]
    #[schemars(with = "String")]
    pub created_at: i64,
    /// The absolute end of the refresh family.
    #[serde(serialize_with = "serde_rfc3339::serialize")]
    #[schemars(with = "String")]
    pub expires_at: i64,
    /// When it was revoked.
    #[serde(serialize_with = "serde_rfc3339::option::serialize")]
    #[schemars(with = "Option<String>")]
    pub revoked_at: Option<i64>,
}

/// A new refresh token, stored by the keyed hash of its value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewRefreshToken {
    /// HMAC-SHA-256 of the token under the pepper (unique).
    pub hash: Vec<u8>,
    /// Which pepper made it.
    pub pepper_version: i64,
    /// Its grant (family).
    pub grant_id: String,
    /// Creation time.
    pub created_at: i64,
    /// Unused until this, it expires (the idle lifetime).
    pub idle_expires_at: i64,
}

/// A stored refresh token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefreshToken {
    /// HMAC-SHA-256 of the token under the pepper.
    pub hash: Vec<u8>,
    /// The agency of its grant.
    pub agency_id: AgencyId,
    /// Its grant (family).
    pub grant_id: String,
    /// Creation time.
    pub created_at: i64,
    /// Unused until this, it expires.
    pub idle_expires_at: i64,
    /// When it was used and replaced by a new one.
    pub rotated_at: Option<i64>,
}

/// What presenting a refresh token for rotation did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RefreshUse {
    /// The token was current: it is marked rotated and the new one is stored.
    Rotated,
    /// The token was rotated less than the grace window ago (a client's retry racing its own
    /// rotation): refused, but its grant is left alone. Nothing is stored.
    RecentlyRotated,
    /// The token had been rotated before the grace window: its whole grant is now revoked.
    Reused,
    /// The grant was already revoked, or the token is unknown: nothing stored.
    Revoked,
}

/// A user as sign-in sees it: the record and its password hash.
#[derive(Clone, PartialEq, Eq)]
pub struct UserCredential {
    /// The user.
    pub user: User,
    /// argon2id PHC string, if a password is set.
    pub password_hash: Option<String>,
}

impl std::fmt::Debug for UserCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserCredential")
            .field("user", &self.user)
            .field(
                "password_hash",
                &self.password_hash.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
}

/// What makes an agency's tokens inactive before they expire, read with its authorization
/// snapshot.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Revocations {
    /// The agency's active (not uninstalled) installations.
    pub installations: Vec<Installation>,
    /// Revoked grants whose tokens may still be unexpired.
    pub grants: Vec<String>,
    /// Revoked access-token `jti`s that have not expired.
    pub access_tokens: Vec<String>,
}
