//! The OAuth records: apps (clients) and their secret hashes, installations, authorization
//! codes, grants, refresh tokens, and the sign-in view of a user.
//!
//! INVARIANT: codes, refresh tokens and client secrets appear only as keyed hashes; the
//! `Debug` of a user's credential redacts its password hash.

use schemars::JsonSchema;
use serde::Serialize;
use tessera_core::time::serde_rfc3339;
use tessera_core::{AccountId, AgencyId, AppId, InstallationId, UserId};

use super::common::User;

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

/// Where an app stands in the platform's marketplace review.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AppReview {
    /// Some partner scope awaits a reviewer.
    Pending,
    /// Nothing awaits review (or a reviewer approved every scope).
    Approved,
    /// A reviewer refused its pending scopes, with a reason.
    Rejected,
}

impl AppReview {
    /// The stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
        }
    }
    /// Parses the stored text.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(Self::Pending),
            "approved" => Some(Self::Approved),
            "rejected" => Some(Self::Rejected),
            _ => None,
        }
    }
}

/// Changes to an app (its details or its review), written in one statement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppUpdate {
    /// Display name.
    pub name: String,
    /// Redirect URIs.
    pub redirect_uris: Vec<String>,
    /// Scopes.
    pub scopes: Vec<String>,
    /// Review state.
    pub review: AppReview,
    /// Scopes installable elsewhere.
    pub approved_scopes: Vec<String>,
    /// The rejection reason, if rejected.
    pub review_reason: Option<String>,
}

/// What is suspended, platform-wide: every node keeps it in memory (normally empty).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Suspensions {
    /// Suspended agencies.
    pub agencies: Vec<AgencyId>,
    /// Suspended accounts, with their agency.
    pub accounts: Vec<(AgencyId, AccountId)>,
    /// Apps (OAuth clients) whose owning agency is suspended, with that agency.
    pub apps: Vec<(AppId, AgencyId)>,
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
    /// Marketplace review: `pending` while a partner scope awaits a platform reviewer,
    /// `approved`, or `rejected`.
    pub review: AppReview,
    /// The scopes installable in other agencies than its own (all of them once approved).
    pub approved_scopes: Vec<String>,
    /// Its scopes not approved yet (`scopes` less `approved_scopes`): installable only in its
    /// own agency, for testing.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pending_scopes: Vec<String>,
    /// Why it was rejected (only when `review` is `rejected`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub review_reason: Option<String>,
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
    /// The resource (RFC 8707) the authorization request named, if any.
    pub resource: Option<String>,
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
    /// The resource (RFC 8707) its access tokens are bound to (`aud`), if any.
    pub resource: Option<String>,
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

/// A resource server (RFC 8707): a service access tokens can be bound to (`aud`). A row of the
/// platform tenant serves every agency's tokens; an agency's row serves that agency's only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceServer {
    /// Its id.
    pub id: tessera_core::ResourceServerId,
    /// The agency it belongs to (the platform tenant for a platform-wide one).
    pub agency_id: AgencyId,
    /// The absolute URI tokens for it carry as `aud` (unique across every agency).
    pub identifier: String,
    /// Display name.
    pub name: String,
    /// The catalog scopes it serves: a token for it carries at most these.
    pub scopes: Vec<String>,
    /// The principal that registered it.
    pub created_by: String,
    /// Creation time.
    pub created_at: i64,
}
