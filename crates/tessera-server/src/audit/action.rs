//! The one list of every audit event the server emits: its wire name, what it records, what its
//! `target` holds and the keys of its `detail` object.
//!
//! The wire names ([`AuditAction::as_str`]) are a stable contract: stored chains, exports and
//! the `?action=` filter rely on them. `docs/AUDIT.md` is generated from it by `audit::reference`.

use std::fmt;

/// Every kind of audit event, one variant per wire name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AuditAction {
    /// `auth.sign_in`: a user signed in with a password on the OAuth sign-in page.
    AuthSignIn,
    /// `auth.sign_in_throttled`: a sign-in attempt was slowed down by the failures on record.
    AuthSignInThrottled,
    /// `oauth.consent`: a signed-in user approved an app's authorization request.
    OauthConsent,
    /// `oauth.code_replayed`: an authorization code was presented again; its grant is revoked.
    OauthCodeReplayed,
    /// `oauth.refresh_reused`: a rotated refresh token was reused; its grant is revoked.
    OauthRefreshReused,
    /// `token.issue`: the token endpoint issued an access token.
    TokenIssue,
    /// `token.exchange`: an access token was exchanged for a narrower one (or the exchange was
    /// refused for a client mismatch).
    TokenExchange,
    /// `token.revoke`: a refresh or access token was revoked at the revocation endpoint.
    TokenRevoke,
    /// `impersonation.start`: an impersonation token was issued (or refused).
    ImpersonationStart,
    /// `impersonation.request`: a request was made under impersonation.
    ImpersonationRequest,
    /// `authz.denied`: authorization refused a request.
    AuthzDenied,
    /// `platform.bootstrap`: the platform tenant and its first admin key were created.
    PlatformBootstrap,
    /// `platform.break_glass`: platform staff overrode an agency's own policies.
    PlatformBreakGlass,
    /// `platform.cross_tenant_read`: platform staff read another agency's data.
    PlatformCrossTenantRead,
    /// `agency.create`: an agency was created.
    AgencyCreate,
    /// `agency.update`: an agency was renamed.
    AgencyUpdate,
    /// `agency.delete`: an agency was deleted.
    AgencyDelete,
    /// `agency.suspend`: a platform admin suspended an agency.
    AgencySuspend,
    /// `agency.reinstate`: a platform admin reinstated a suspended agency.
    AgencyReinstate,
    /// `agency.limits_update`: an agency's rate-limit overrides were set.
    AgencyLimitsUpdate,
    /// `account.create`: an account was created.
    AccountCreate,
    /// `account.update`: an account was renamed.
    AccountUpdate,
    /// `account.delete`: an account was deleted.
    AccountDelete,
    /// `account.suspend`: an account was suspended.
    AccountSuspend,
    /// `account.reinstate`: a suspended account was reinstated.
    AccountReinstate,
    /// `user.create`: a user was created.
    UserCreate,
    /// `user.update`: a user's email, name, status or password changed.
    UserUpdate,
    /// `user.delete`: a user was deleted.
    UserDelete,
    /// `user.erase`: a user's personal data in audit events was crypto-shredded (their key
    /// destroyed).
    UserErase,
    /// `role.create`: a custom role was created.
    RoleCreate,
    /// `role.update`: a custom role was changed.
    RoleUpdate,
    /// `role.delete`: a custom role was deleted.
    RoleDelete,
    /// `binding.create`: a role was bound to a principal.
    BindingCreate,
    /// `binding.delete`: a role binding was removed.
    BindingDelete,
    /// `policy.create`: a Cedar policy was added to an agency.
    PolicyCreate,
    /// `policy.delete`: a Cedar policy was deleted (API or offline CLI).
    PolicyDelete,
    /// `api_key.create`: an API key was created.
    ApiKeyCreate,
    /// `api_key.revoke`: an API key was revoked.
    ApiKeyRevoke,
    /// `api_key.rotate`: an API key got a new secret.
    ApiKeyRotate,
    /// `app.create`: an OAuth app (client) was registered.
    AppCreate,
    /// `app.delete`: an OAuth app was deleted.
    AppDelete,
    /// `app.rotate_secret`: a confidential app got a new client secret.
    AppRotateSecret,
    /// `app.update`: an app's name, redirect URIs or scopes changed.
    AppUpdate,
    /// `app.approve`: a platform reviewer approved an app's pending scopes.
    AppApprove,
    /// `app.reject`: a platform reviewer rejected an app's pending scopes.
    AppReject,
    /// `installation.create`: an app was installed on an agency or account.
    InstallationCreate,
    /// `installation.revoke`: an app was uninstalled.
    InstallationRevoke,
    /// `signing_key.create`: a token-signing key was generated.
    SigningKeyCreate,
    /// `signing_key.activate`: a pending signing key became active.
    SigningKeyActivate,
    /// `signing_key.begin_retiring`: an active (or pending) signing key began retiring.
    SigningKeyBeginRetiring,
    /// `signing_key.retire`: a retiring signing key was retired and its private key destroyed.
    SigningKeyRetire,
    /// `signing_key.drop`: a signing key's record was removed.
    SigningKeyDrop,
    /// `audit_key.create`: an audit checkpoint signing key (Ed25519) was generated.
    AuditKeyCreate,
    /// `audit_key.activate`: a pending audit key began signing checkpoints.
    AuditKeyActivate,
    /// `audit_key.retire`: an audit key stopped signing; its private key was destroyed.
    AuditKeyRetire,
    /// `audit.retention_set`: a platform admin set or cleared an agency's audit retention.
    AuditRetentionSet,
    /// `audit.prune`: events older than the retention period were pruned up to a checkpoint.
    AuditPrune,
    /// `resource_server.create`: a resource server (RFC 8707) was registered.
    ResourceServerCreate,
    /// `resource_server.delete`: a resource server was deleted.
    ResourceServerDelete,
    /// `compliance.report_read`: a compliance report (access review, credential inventory,
    /// impersonation report, a user's impersonation history) was read.
    ComplianceReportRead,
    /// `webhook.create`: a webhook (signed event feed) was registered.
    WebhookCreate,
    /// `webhook.delete`: a webhook and its delivery queue were deleted.
    WebhookDelete,
    /// `webhook.rotate_secret`: a webhook got a new signing secret (the old one signs too
    /// until it expires).
    WebhookRotateSecret,
    /// `webhook.redeliver`: deliveries of a webhook were put back in the queue.
    WebhookRedeliver,
}

impl AuditAction {
    /// Every action, grouped by the prefix before the dot (the order of `docs/AUDIT.md`).
    pub const ALL: &'static [AuditAction] = &[
        Self::AuthSignIn,
        Self::AuthSignInThrottled,
        Self::OauthConsent,
        Self::OauthCodeReplayed,
        Self::OauthRefreshReused,
        Self::TokenIssue,
        Self::TokenExchange,
        Self::TokenRevoke,
        Self::ImpersonationStart,
        Self::ImpersonationRequest,
        Self::AuthzDenied,
        Self::PlatformBootstrap,
        Self::PlatformBreakGlass,
        Self::PlatformCrossTenantRead,
        Self::AgencyCreate,
        Self::AgencyUpdate,
        Self::AgencyDelete,
        Self::AgencySuspend,
        Self::AgencyReinstate,
        Self::AgencyLimitsUpdate,
        Self::AccountCreate,
        Self::AccountUpdate,
        Self::AccountDelete,
        Self::AccountSuspend,
        Self::AccountReinstate,
        Self::UserCreate,
        Self::UserUpdate,
        Self::UserDelete,
        Self::UserErase,
        Self::RoleCreate,
        Self::RoleUpdate,
        Self::RoleDelete,
        Self::BindingCreate,
        Self::BindingDelete,
        Self::PolicyCreate,
        Self::PolicyDelete,
        Self::ApiKeyCreate,
        Self::ApiKeyRevoke,
        Self::ApiKeyRotate,
        Self::AppCreate,
        Self::AppDelete,
        Self::AppRotateSecret,
        Self::AppUpdate,
        Self::AppApprove,
        Self::AppReject,
        Self::InstallationCreate,
        Self::InstallationRevoke,
        Self::SigningKeyCreate,
        Self::SigningKeyActivate,
        Self::SigningKeyBeginRetiring,
        Self::SigningKeyRetire,
        Self::SigningKeyDrop,
        Self::AuditKeyCreate,
        Self::AuditKeyActivate,
        Self::AuditKeyRetire,
        Self::AuditRetentionSet,
        Self::AuditPrune,
        Self::ResourceServerCreate,
        Self::ResourceServerDelete,
        Self::ComplianceReportRead,
        Self::WebhookCreate,
        Self::WebhookDelete,
        Self::WebhookRotateSecret,
        Self::WebhookRedeliver,
    ];

    /// The wire name stored in the record's `action` (a stable contract: never rename one).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::AuthSignIn => "auth.sign_in",
            Self::AuthSignInThrottled => "auth.sign_in_throttled",
            Self::OauthConsent => "oauth.consent",
            Self::OauthCodeReplayed => "oauth.code_replayed",
            Self::OauthRefreshReused => "oauth.refresh_reused",
            Self::TokenIssue => "token.issue",
            Self::TokenExchange => "token.exchange",
            Self::TokenRevoke => "token.revoke",
            Self::ImpersonationStart => "impersonation.start",
            Self::ImpersonationRequest => "impersonation.request",
            Self::AuthzDenied => "authz.denied",
            Self::PlatformBootstrap => "platform.bootstrap",
            Self::PlatformBreakGlass => "platform.break_glass",
            Self::PlatformCrossTenantRead => "platform.cross_tenant_read",
            Self::AgencyCreate => "agency.create",
            Self::AgencyUpdate => "agency.update",
            Self::AgencyDelete => "agency.delete",
            Self::AgencySuspend => "agency.suspend",
            Self::AgencyReinstate => "agency.reinstate",
            Self::AgencyLimitsUpdate => "agency.limits_update",
            Self::AccountCreate => "account.create",
            Self::AccountUpdate => "account.update",
            Self::AccountDelete => "account.delete",
            Self::AccountSuspend => "account.suspend",
            Self::AccountReinstate => "account.reinstate",
            Self::UserCreate => "user.create",
            Self::UserUpdate => "user.update",
            Self::UserDelete => "user.delete",
            Self::UserErase => "user.erase",
            Self::RoleCreate => "role.create",
            Self::RoleUpdate => "role.update",
            Self::RoleDelete => "role.delete",
            Self::BindingCreate => "binding.create",
            Self::BindingDelete => "binding.delete",
            Self::PolicyCreate => "policy.create",
            Self::PolicyDelete => "policy.delete",
            Self::ApiKeyCreate => "api_key.create",
            Self::ApiKeyRevoke => "api_key.revoke",
            Self::ApiKeyRotate => "api_key.rotate",
            Self::AppCreate => "app.create",
            Self::AppDelete => "app.delete",
            Self::AppRotateSecret => "app.rotate_secret",
            Self::AppUpdate => "app.update",
            Self::AppApprove => "app.approve",
            Self::AppReject => "app.reject",
            Self::InstallationCreate => "installation.create",
            Self::InstallationRevoke => "installation.revoke",
            Self::SigningKeyCreate => "signing_key.create",
            Self::SigningKeyActivate => "signing_key.activate",
            Self::SigningKeyBeginRetiring => "signing_key.begin_retiring",
            Self::SigningKeyRetire => "signing_key.retire",
            Self::SigningKeyDrop => "signing_key.drop",
            Self::AuditKeyCreate => "audit_key.create",
            Self::AuditKeyActivate => "audit_key.activate",
            Self::AuditKeyRetire => "audit_key.retire",
            Self::AuditRetentionSet => "audit.retention_set",
            Self::AuditPrune => "audit.prune",
            Self::ResourceServerCreate => "resource_server.create",
            Self::ResourceServerDelete => "resource_server.delete",
            Self::ComplianceReportRead => "compliance.report_read",
            Self::WebhookCreate => "webhook.create",
            Self::WebhookDelete => "webhook.delete",
            Self::WebhookRotateSecret => "webhook.rotate_secret",
            Self::WebhookRedeliver => "webhook.redeliver",
        }
    }

    /// The action with wire name `s`, if any.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|a| a.as_str() == s)
    }

    /// The prefix before the dot (`token` for `token.issue`): the group it is listed under.
    pub fn group(self) -> &'static str {
        let s = self.as_str();
        match s.split_once('.') {
            Some((group, _)) => group,
            None => s,
        }
    }
}

impl From<AuditAction> for String {
    fn from(a: AuditAction) -> Self {
        a.as_str().to_owned()
    }
}

impl fmt::Display for AuditAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
