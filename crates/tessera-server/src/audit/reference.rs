//! The reference of every audit event: what it records, what its `target` holds, the keys of
//! its `detail` object, and `docs/AUDIT.md` rendered from them (a test keeps the file current;
//! regenerate with `UPDATE_AUDIT_DOC=1 cargo test -p tessera-server audit::reference`).

use super::action::AuditAction;

/// A `detail` key and its meaning.
type Field = (&'static str, &'static str);

const SIGNING_KEY_TARGET: &str = "the signing key's `kid` (its JWK thumbprint, base64url)";

impl AuditAction {
    /// What the event records, who its actor is, and when it is (not) written.
    pub const fn description(self) -> &'static str {
        match self {
            Self::AuthSignIn => "A user signed in with a password on the OAuth sign-in page. Actor: the user. Failed sign-ins are not audited one by one (they are throttled and logged); an attempt that had to wait is recorded as `auth.sign_in_throttled`; a right password refused because the user's agency is suspended is, with outcome `denied`.",
            Self::AuthSignInThrottled => "A sign-in attempt on the OAuth sign-in page waited before its password was checked, because of the failed sign-ins on record for its account, its address or both (a suspected guess; see README \"Sign-in protection\"). Written once the password is checked, with its outcome: `success` (the right password, after the wait) or `failure`. Recorded in the chain of the agency whose app asked. Actor: the user when the password was right, else `anonymous`.",
            Self::OauthConsent => "A signed-in user approved an app's authorization request and an authorization code was issued. Actor: the user.",
            Self::OauthCodeReplayed => "An authorization code was presented a second time (RFC 6749 §4.1.2). The grant its first redemption created is revoked in the same transaction; if the first redemption failed (no grant), the replay is still recorded. Not recorded when the grant is already revoked (by an earlier replay or a revocation). Outcome `denied`. Actor: the client presenting the code; on behalf of: the user it was issued to.",
            Self::OauthRefreshReused => "A refresh token rotated longer ago than the reuse grace window was presented again: the whole grant (the refresh family) is revoked in the same transaction. Outcome `denied`. Actor: the client; on behalf of: the grant's user.",
            Self::TokenIssue => "The token endpoint issued an access token. For `authorization_code` (written with the new grant) and `refresh_token` the actor is the user; for `client_credentials` the actor is the app (`app_…`), and the group-commit writer merges a batch's issues of one client, installation and scope into one event listing every token (`count`, `tokens` instead of `jti`; the record's `id`, `at`, `request_id`, `ip` and `user_agent` are the first issue's).",
            Self::TokenExchange => "An access token was exchanged for a narrower one (RFC 8693, downscoping). Actor: the subject token's actor when it is an impersonation token, else its subject; on behalf of: the subject when there is an actor. Also written with outcome `denied` when the authenticated client is not the subject token's own client (actor: that client; on behalf of: the subject token's principal). An impersonation exchange is recorded as `impersonation.start` instead.",
            Self::TokenRevoke => "A token was revoked at the revocation endpoint (RFC 7009); a refresh token revokes its whole grant. Actor: the authenticated client (`app_…`) or the principal of the authenticating credential; on behalf of: the token's subject (its grant's user; for an access token its `sub`, the app itself for a `client_credentials` token). Unknown, invalid, expired or foreign tokens are answered 200 and not recorded, nor is a refresh token whose grant is already revoked.",
            Self::ImpersonationStart => "A user or API key exchanged its token for an impersonation token of another active user of its agency (RFC 8693 with `requested_subject`). Actor: the impersonator; on behalf of: the impersonated user. Also written with outcome `denied` when the impersonator lacks `users.impersonate` there (`not_permitted`) or the user holds permissions the impersonator does not (`more_privileged_target`).",
            Self::ImpersonationRequest => "A request was made with an impersonation token. Every such request is recorded, reads included, before its handler runs (I5). Actor: the impersonator; on behalf of: the impersonated user.",
            Self::AuthzDenied => "Authorization refused a request (outcome `denied`). Two shapes: the refusal of a permission by the gate or a handler's check (`permission`, `reason`, `agency`, `account`), and the refusal of a grant or change that would hand the caller power it lacks (I2: granting permissions it does not hold, changing a principal that holds more, changing an app whose scopes it lacks; `missing_permissions`, `attempted`, `target`). A cross-tenant attempt is written in the caller's own chain, never the probed agency's. Actor: the caller (the impersonator under impersonation).",
            Self::PlatformBootstrap => "The platform tenant, its first admin API key (scope `platform.admin`) and that key's `platform_admin` binding were created on first start. Actor: `system`; request id: `bootstrap`. The first event of the platform agency's chain.",
            Self::PlatformBreakGlass => "Platform staff acting in another agency went through although that agency's own policies said no (on `agencies.*`, `policies.read` and `policies.write` platform staff are bound only by the platform-wide policies). Written in the agency's chain before the handler runs. Actor: the platform principal.",
            Self::PlatformCrossTenantRead => "Platform staff read another agency's data (`GET` or `HEAD`); written in that agency's chain so it sees when the platform looked. Their writes are recorded by the handlers' own events. Actor: the platform principal.",
            Self::AgencyCreate => "A platform admin created an agency. Written in the new agency's own chain.",
            Self::AgencyUpdate => "An agency was renamed.",
            Self::AgencyLimitsUpdate => "An agency's rate-limit overrides (plan, per-class quotas) were set.",
            Self::AgencyDelete => "A platform admin deleted an agency (the platform tenant cannot be). Written in the deleted agency's chain.",
            Self::AgencySuspend => "A platform admin suspended an agency: its data is kept, every credential of it (and every token of its marketplace apps, in every agency) is refused with `agency_suspended` until it is reinstated. Written in the suspended agency's chain.",
            Self::AgencyReinstate => "A platform admin reinstated a suspended agency: its keys, tokens and refresh tokens work again (nothing was revoked). Written in the agency's chain.",
            Self::AccountCreate => "An account was created in an agency.",
            Self::AccountUpdate => "An account was renamed.",
            Self::AccountDelete => "An account was deleted.",
            Self::AccountSuspend => "An account was suspended: credentials bound to it are refused with `account_suspended`, checks on it answer `allowed: false`, until it is reinstated.",
            Self::AccountReinstate => "A suspended account was reinstated: everything bound to it works again (nothing was revoked).",
            Self::UserCreate => "A user was created in an agency.",
            Self::UserUpdate => "A user's email, name, status or password was changed; the caller held every permission the user holds (I2).",
            Self::UserDelete => "A user was deleted; the caller held every permission the user holds (I2).",
            Self::UserErase => "A user's personal data in audit events was erased: their person key was destroyed (a tombstone keeps any new one from being made), so the personal fields of every event about them read `[erased]` while the chain still verifies. Holds no personal data; its own client address and agent are sealed under the destroyed key.",
            Self::RoleCreate => "A custom role was created; the caller holds every permission in it.",
            Self::RoleUpdate => "A custom role's name, description or permissions were changed. A change of description alone is recorded with both keys null (the description is not in the detail).",
            Self::RoleDelete => "A custom role was deleted, with its bindings when asked.",
            Self::BindingCreate => "A role was bound to a principal; the caller holds every permission it grants (I2).",
            Self::BindingDelete => "A role binding was removed; the caller held every permission its principal holds (I2).",
            Self::PolicyCreate => "A Cedar policy was added to an agency.",
            Self::PolicyDelete => "A Cedar policy was deleted: through the API (detail `{}`), or offline with `tessera policies delete` (actor `operator:cli`, empty request id, the keys below).",
            Self::ApiKeyCreate => "An API key was created; the caller holds every permission its scopes grant (I2). The secret is never recorded.",
            Self::ApiKeyRevoke => "An API key was revoked; it stops authenticating on the next request.",
            Self::ApiKeyRotate => "An API key got a new secret, the old one valid for a grace period; the caller held every permission the key holds (I2). The secret is never recorded.",
            Self::AppCreate => "An OAuth app (client) was registered. The client secret is never recorded.",
            Self::AppDelete => "An OAuth app was deleted; its clients stop authenticating and its tokens introspect as inactive.",
            Self::AppRotateSecret => "A confidential app got a new client secret, the old one valid for a grace period. The secret is never recorded.",
            Self::AppUpdate => "An app's name, redirect URIs or scopes changed; a partner scope not approved yet sends a marketplace app back to review.",
            Self::AppApprove => "A platform reviewer approved a marketplace app's pending scopes: installable in every agency. Written in the app owner's chain.",
            Self::AppReject => "A platform reviewer rejected a marketplace app's pending scopes: installable in its own agency only. Written in the app owner's chain.",
            Self::InstallationCreate => "An app was installed on an agency or an account, with the scopes consented.",
            Self::InstallationRevoke => "An app was uninstalled; every token of the installation is revoked.",
            Self::SigningKeyCreate => "The key rotation generated a token-signing key (pending, or active when there is none to sign with). Actor: `system`; request id: `key-rotation`; written in the platform agency's chain (before bootstrap, only logged), also for a rotation started with `tessera keys rotate`.",
            Self::SigningKeyActivate => "A pending signing key became active: it signs from now on. Actor: `system`; request id: `key-rotation`; platform chain.",
            Self::SigningKeyBeginRetiring => "An active (or superseded pending) signing key began retiring: it stops signing at its `retires_at` and stays published until its `expires_at`. Actor: `system`; request id: `key-rotation`; platform chain.",
            Self::SigningKeyRetire => "A retiring signing key was retired: every token it signed has expired; it is unpublished and its private key destroyed. Actor: `system`; request id: `key-rotation`; platform chain.",
            Self::AuditKeyCreate => "The audit key rotation generated an Ed25519 key that signs audit checkpoints (pending, published at `/.well-known/audit-keys.json` before it signs; active at once when there is none). Actor: `system`; request id: `audit-key-rotation`; platform chain (before bootstrap, only logged).",
            Self::AuditKeyActivate => "A pending audit key began signing checkpoints. Actor: `system`; request id: `audit-key-rotation`; platform chain.",
            Self::AuditKeyRetire => "An audit key stopped signing: its private key was destroyed; its public key stays published for as long as checkpoints it signed may exist (for good). Actor: `system`; request id: `audit-key-rotation`; platform chain.",
            Self::AuditRetentionSet => "A platform admin set (or cleared, `days` null) the agency's audit retention override. Written in the agency's chain. Actor: the platform principal.",
            Self::AuditPrune => "The retention task deleted the agency's events older than its retention period, up to (and including) the newest checkpoint signed before the cutoff; that checkpoint is kept and anchors the rest of the chain, and verification requires this event to accept a chain that does not start at 1. Actor: `system`; request id: `audit-retention`.",
            Self::SigningKeyDrop => "A signing key's record was removed (a retired key, or a pending key that never signed). Actor: `system`; request id: `key-rotation`; platform chain.",
            Self::ResourceServerCreate => "A resource server (RFC 8707) was registered: tokens can now be bound to its identifier (`resource=`). The caller holds every permission its scopes grant (I2). A platform-wide one is written in the platform agency's chain.",
            Self::ResourceServerDelete => "A resource server was deleted: `resource=` naming it is refused from now on (tokens already bound to it keep their `aud` until they expire).",
            Self::ComplianceReportRead => "A compliance report was read (`GET …/reports/access-review`, `…/reports/credentials`, `…/reports/impersonations`, or a user's `…/users/{usr}/impersonations`), one event per page, written before the page is answered. Actor: the reader (under impersonation these reads are refused, so never an impersonator).",
            Self::WebhookCreate => "A webhook was registered: the agency's audit events matching its filter are POSTed to its URL from this event on, signed per Standard Webhooks. Its secret is never recorded.",
            Self::WebhookDelete => "A webhook was deleted, with its queue of deliveries (pending and dead).",
            Self::WebhookRotateSecret => "A webhook got a new signing secret; deliveries carry a signature with the old one too until it expires. No secret is recorded.",
            Self::WebhookRedeliver => "Deliveries of a webhook were put back in the queue (one message, or every dead one since a time), due now with a fresh attempt count.",
        }
    }

    /// The keys of the record's `detail` object as emitted today, with their meaning. A key
    /// marked with a condition is present only then; the others are always present (possibly
    /// null where said). Empty: `detail` is `{}`.
    pub const fn fields(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Self::AuthSignIn => &[
                ("method", "how the user proved who they are: always `password` today"),
                ("client_id", "the app (`app_…`) whose authorization request the sign-in was for"),
                ("reason", "on a refusal only: `agency_suspended`"),
            ],
            Self::AuthSignInThrottled => &[
                ("client_id", "the app (`app_…`) whose authorization request the sign-in was for"),
                ("delay_ms", "how long the attempt waited before its password was checked"),
                ("account_failures", "failed sign-ins on record for the email, from every address"),
                ("ip_failures", "failed sign-ins on record from the client's address (IPv6: its /64), on every account"),
                ("clean_ip", "whether the address had no failure on record (it then waits at most 1 s, in its own queue)"),
                ("cluster_wide", "whether the counts came from the cluster-wide ledger (Redis) rather than this node's memory"),
            ],
            Self::OauthConsent => &[
                ("client_id", "the app (`app_…`), the same as the target"),
                ("scope", "the scopes granted, space-separated"),
                ("installation", "the installation (`ins_…`) the consent goes through, or null"),
                ("account", "the account (`acc_…`) the grant is bound to, or null"),
                ("grant", "the grant (`grt_…`) the code creates when redeemed"),
            ],
            Self::OauthCodeReplayed => &[
                ("client_id", "the client (`app_…`) that presented the code"),
                ("grant", "the code's grant (`grt_…`), the same as the target"),
            ],
            Self::OauthRefreshReused => &[
                ("grant", "the revoked grant (`grt_…`), the same as the target"),
                ("client_id", "the client (`app_…`) that presented the token"),
            ],
            Self::TokenIssue => &[
                ("grant_type", "`authorization_code`, `refresh_token` or `client_credentials`"),
                ("client_id", "`authorization_code` and `refresh_token` only: the client (`app_…`) the token was issued to"),
                ("scope", "the token's scopes, space-separated"),
                ("jti", "`authorization_code` and `refresh_token` only: the access token's `jti`"),
                ("count", "`client_credentials` only: how many tokens the event covers"),
                ("tokens", "`client_credentials` only: one object per token, with its `jti`, `request_id`, `ip` and `at` (epoch ms)"),
            ],
            Self::TokenExchange => &[
                ("kind", "`downscope` on success; when denied, what was asked: `downscope` or `impersonation`"),
                ("scope", "success only: the new token's scopes, space-separated"),
                ("account", "success only: the account (`acc_…`) the new token is bound to, or null"),
                ("jti", "success only: the new token's `jti`"),
                ("from_jti", "success only: the subject token's `jti`, the same as the target"),
                ("why", "denied only: `client_mismatch`"),
                ("client_id", "denied only: the authenticated client (`app_…`)"),
                ("subject_client_id", "denied only: the subject token's client (`app_…`, or the `key_…` of an API key)"),
            ],
            Self::TokenRevoke => &[
                ("token_type", "`refresh_token` or `access_token`"),
                ("grant", "`refresh_token` only: the revoked grant (`grt_…`), the same as the target"),
                ("jti", "`access_token` only: the revoked token's `jti`, the same as the target"),
            ],
            Self::ImpersonationStart => &[
                ("reason", "the impersonator's stated reason (the `reason` parameter, at most 500 characters)"),
                ("scope", "success only: the impersonation token's scopes, space-separated"),
                ("account", "success only: the account (`acc_…`) the token is bound to, or null"),
                ("jti", "success only: the impersonation token's `jti`"),
                ("expires_at", "success only: the token's expiry, its `exp` claim (epoch seconds)"),
                ("permissions", "success only: the permissions the token carries (held by both, less the impersonation policy's)"),
                ("why", "denied only: `not_permitted` or `more_privileged_target`"),
                ("detail", "denied only: for `not_permitted` the decision's reason code; for `more_privileged_target` the permissions the user holds beyond the impersonator"),
            ],
            Self::ImpersonationRequest => &[
                ("permission", "the permission the route requires (absent on routes that need only authentication)"),
                ("method", "the HTTP method"),
                ("path", "the request path (without the query)"),
            ],
            Self::AuthzDenied => &[
                ("permission", "permission refusal only: the permission refused"),
                ("reason", "permission refusal only: the decision's reason code (`other_tenant`, `not_granted`, `outside_credential_scope`, `outside_credential_account`, `denied_by_policy`, `policy_error`)"),
                ("agency", "permission refusal only: the agency (`agy_…`) the request concerned"),
                ("account", "permission refusal only: the account (`acc_…`) checked, or null for the agency level"),
                ("missing_permissions", "I2 refusal only: the permissions the caller lacks"),
                ("attempted", "I2 refusal only: the act refused, named like its audit action (`binding.create`, `api_key.rotate`, …)"),
                ("target", "I2 refusal only: the principal or app acted on, or null when a grant was refused"),
            ],
            Self::PlatformBootstrap => &[(
                "key_file",
                "the file in the data directory the admin key's secret was written to (`bootstrap-admin.key`)",
            )],
            Self::PlatformBreakGlass => &[
                ("permission", "the permission exercised"),
                ("method", "the HTTP method"),
                ("path", "the request path (without the query)"),
                ("home_agency", "the actor's own agency (`agy_…`, the platform's)"),
                ("overridden", "the reason code of the overridden refusal (`denied_by_policy` or `policy_error`)"),
                ("policies", "the agency policies that forbade it (`pol_…#n`); empty unless `overridden` is `denied_by_policy`"),
            ],
            Self::PlatformCrossTenantRead => &[
                ("permission", "the permission exercised"),
                ("method", "the HTTP method (`GET` or `HEAD`)"),
                ("path", "the request path (without the query)"),
                ("home_agency", "the actor's own agency (`agy_…`, the platform's)"),
            ],
            Self::AgencyCreate => &[("name", "the agency's name")],
            Self::AgencyUpdate => &[("name", "the new name")],
            Self::AgencyDelete => &[],
            Self::AgencySuspend | Self::AgencyReinstate => &[
                ("reason", "why, as the platform admin gave it"),
                ("previous_status", "the agency's status before (`active` or `suspended`)"),
            ],
            Self::AgencyLimitsUpdate => &[
                ("plan", "the plan set, or null"),
                ("overrides", "the per-class quotas set (`{class: {limit, period_seconds}}`)"),
            ],
            Self::AccountCreate => &[("name", "the account's name")],
            Self::AccountUpdate => &[("name", "the new name")],
            Self::AccountDelete => &[],
            Self::AccountSuspend | Self::AccountReinstate => &[
                ("reason", "why, as the admin gave it"),
                ("previous_status", "the account's status before (`active` or `suspended`)"),
            ],
            Self::UserCreate => &[("email", "the user's email address")],
            Self::UserUpdate => &[
                ("email", "the new email address, or null if unchanged"),
                ("name", "the new name, or null if unchanged"),
                ("status", "the new status (`active` or `disabled`), or null if unchanged"),
                ("password_changed", "whether a new password was set (the password is never recorded)"),
            ],
            Self::UserDelete => &[],
            Self::UserErase => &[("key_destroyed", "whether a key was destroyed now (false: already erased, or no event about the user had personal data)")],
            Self::RoleCreate => &[
                ("name", "the role's name"),
                ("permissions", "the role's permissions, sorted and deduplicated"),
            ],
            Self::RoleUpdate => &[
                ("name", "the new name, or null if unchanged"),
                ("permissions", "the new permission list (replacing the old), or null if unchanged"),
            ],
            Self::RoleDelete => &[(
                "remove_bindings",
                "whether the role's bindings were removed with it (`?remove_bindings=true`)",
            )],
            Self::BindingCreate => &[
                ("principal", "who is granted the role (`usr_…`, `key_…` or `ins_…`)"),
                ("role", "the role: a built-in role's name or a custom role's id (`rol_…`)"),
                ("account", "the account (`acc_…`) the grant is limited to, or null for the whole agency"),
            ],
            Self::BindingDelete => &[
                ("principal", "who held the role (`usr_…`, `key_…` or `ins_…`)"),
                ("role", "the role: a built-in role's name or a custom role's id (`rol_…`)"),
                ("account", "the account (`acc_…`) the grant was limited to, or null for the whole agency"),
            ],
            Self::PolicyCreate => &[
                ("policies", "how many policies the Cedar text holds"),
                ("cedar", "the Cedar text itself"),
                ("allow_self_lockout", "whether the body consented to a policy that forbids its own author `policies.write`"),
            ],
            Self::PolicyDelete => &[
                ("break_glass", "`tessera policies delete` only: `true`"),
                ("via", "`tessera policies delete` only: `tessera policies delete`"),
                ("reason", "`tessera policies delete` only: the operator's `--reason`"),
            ],
            Self::ApiKeyCreate => &[
                ("name", "the key's label"),
                ("scopes", "the catalog scopes capping what the key may do"),
                ("account", "the account (`acc_…`) the key is bound to, or null"),
                ("expires_at", "when the key stops authenticating (epoch ms), or null"),
            ],
            Self::ApiKeyRevoke => &[("name", "the key's label")],
            Self::ApiKeyRotate => &[(
                "grace_seconds",
                "how long the old secret keeps authenticating, in seconds",
            )],
            Self::AppCreate => &[
                ("name", "the app's name"),
                ("kind", "`private`, `marketplace` or `first_party`"),
                ("scopes", "the scopes the app may request"),
                ("redirect_uris", "its registered redirect URIs"),
                ("confidential", "whether it is a confidential client (has a secret)"),
            ],
            Self::AppDelete => &[("name", "the app's name")],
            Self::AppUpdate => &[
                ("name", "the new name"),
                ("redirect_uris", "the new redirect URIs"),
                ("scopes", "the new scopes"),
                ("review", "the review state after the change"),
                ("pending_scopes", "the scopes awaiting review after the change"),
            ],
            Self::AppApprove | Self::AppReject => &[
                ("reason", "the reviewer's reason (required to reject)"),
                ("scopes", "the scopes the decision covers (those pending)"),
                ("previous_review", "the review state before"),
            ],
            Self::AppRotateSecret => &[(
                "grace_seconds",
                "how long the old secret keeps authenticating, in seconds",
            )],
            Self::InstallationCreate => &[
                ("app", "the app installed (`app_…`)"),
                ("app_name", "its name"),
                ("account", "the account (`acc_…`) it is installed on, or null for the agency"),
                ("scopes", "the scopes consented: the most any token of the installation carries"),
            ],
            Self::InstallationRevoke => &[
                ("app", "the app uninstalled (`app_…`)"),
                ("account", "the account (`acc_…`) it was installed on, or null for the agency"),
            ],
            Self::SigningKeyCreate
            | Self::SigningKeyActivate
            | Self::SigningKeyBeginRetiring
            | Self::SigningKeyRetire
            | Self::SigningKeyDrop => &[],
            Self::AuditKeyCreate | Self::AuditKeyActivate | Self::AuditKeyRetire => &[],
            Self::AuditRetentionSet => &[
                ("days", "the new retention in days, or null: back to the server's default"),
                ("previous", "the override before, or null"),
            ],
            Self::AuditPrune => &[
                ("retention_days", "the retention period applied"),
                ("through_seq", "events up to this sequence number were deleted; the checkpoint at it anchors the rest"),
                ("checkpoint_hash", "that checkpoint's (and event's) hash, hex"),
                ("events", "how many events were deleted"),
            ],
            Self::ResourceServerCreate => &[
                ("identifier", "the resource's URI (the `aud` of its tokens)"),
                ("scopes", "the scopes it serves"),
                ("name", "its display name"),
            ],
            Self::ResourceServerDelete => &[("identifier", "the resource's URI")],
            Self::ComplianceReportRead => &[
                ("report", "`access_review`, `credentials`, `impersonations` or `user_impersonations`"),
                ("format", "`json` or `csv`"),
                ("cursor", "the page's cursor as asked, or null for the first page"),
                ("items", "how many rows the page held"),
                ("self", "`user_impersonations` only: whether the user read their own history"),
            ],
            Self::WebhookCreate => &[
                ("url", "where deliveries are POSTed"),
                ("events", "the action names and patterns it receives"),
            ],
            Self::WebhookDelete => &[("url", "where deliveries were POSTed")],
            Self::WebhookRotateSecret => &[(
                "previous_expires_at",
                "when the previous secret stops signing (RFC 3339)",
            )],
            Self::WebhookRedeliver => &[
                ("message", "with one message only: its id (`msg_…`)"),
                ("since", "for dead messages: the earliest enqueue time taken (RFC 3339), or null for all"),
                ("count", "how many deliveries were put back"),
            ],
        }
    }

    /// What the record's `target` holds.
    pub const fn target(self) -> &'static str {
        match self {
            Self::AuthSignIn => "the user's id (`usr_…`)",
            Self::AuthSignInThrottled => "the user's id (`usr_…`) when the password was right, else null",
            Self::OauthConsent => "the app's client id (`app_…`)",
            Self::OauthCodeReplayed | Self::OauthRefreshReused => "the grant id (`grt_…`)",
            Self::TokenIssue => "the grant id (`grt_…`) for `authorization_code` and `refresh_token`; the installation id (`ins_…`) for `client_credentials`",
            Self::TokenExchange => "the subject token's `jti`; null when denied",
            Self::TokenRevoke => "the grant id (`grt_…`) for a refresh token; the token's `jti` for an access token",
            Self::ImpersonationStart => "the impersonated user's id (`usr_…`)",
            Self::ImpersonationRequest => "the agency id (`agy_…`) the request is in (the caller's agency on routes that need only authentication)",
            Self::AuthzDenied => "permission refusal: the agency id (`agy_…`) the request concerned; I2 refusal: the principal (`usr_…`, `key_…`, `ins_…`) or app (`app_…`) acted on, or the agency id when a grant was refused",
            Self::PlatformBootstrap => "the bootstrap admin key's id (`key_…`)",
            Self::PlatformBreakGlass | Self::PlatformCrossTenantRead => "the agency id (`agy_…`) acted in",
            Self::AgencyCreate
            | Self::AgencyUpdate
            | Self::AgencyDelete
            | Self::AgencySuspend
            | Self::AgencyReinstate
            | Self::AgencyLimitsUpdate => "the agency id (`agy_…`)",
            Self::AccountCreate
            | Self::AccountUpdate
            | Self::AccountDelete
            | Self::AccountSuspend
            | Self::AccountReinstate => "the account id (`acc_…`)",
            Self::UserCreate | Self::UserUpdate | Self::UserDelete | Self::UserErase => {
                "the user id (`usr_…`)"
            }
            Self::RoleCreate | Self::RoleUpdate | Self::RoleDelete => "the role id (`rol_…`)",
            Self::BindingCreate | Self::BindingDelete => "the binding id (`bnd_…`)",
            Self::PolicyCreate | Self::PolicyDelete => "the policy id (`pol_…`)",
            Self::ApiKeyCreate | Self::ApiKeyRevoke | Self::ApiKeyRotate => "the key id (`key_…`)",
            Self::AppCreate
            | Self::AppDelete
            | Self::AppRotateSecret
            | Self::AppUpdate
            | Self::AppApprove
            | Self::AppReject => "the app's client id (`app_…`)",
            Self::InstallationCreate | Self::InstallationRevoke => "the installation id (`ins_…`)",
            Self::SigningKeyCreate => "the new signing key's `kid` (its JWK thumbprint, base64url)",
            Self::SigningKeyActivate
            | Self::SigningKeyBeginRetiring
            | Self::SigningKeyRetire
            | Self::SigningKeyDrop => SIGNING_KEY_TARGET,
            Self::AuditKeyCreate | Self::AuditKeyActivate | Self::AuditKeyRetire => {
                "the audit key's `kid`"
            }
            Self::AuditRetentionSet | Self::AuditPrune => "the agency (`agy_…`)",
            Self::ResourceServerCreate | Self::ResourceServerDelete => {
                "the resource server's id (`rsv_…`)"
            }
            Self::ComplianceReportRead => {
                "the agency id (`agy_…`); for a user's impersonation history, the user's id (`usr_…`)"
            }
            Self::WebhookCreate
            | Self::WebhookDelete
            | Self::WebhookRotateSecret
            | Self::WebhookRedeliver => "the webhook's id (`whk_…`)",
        }
    }
}

/// The record fields every event has, with their meaning (as `GET …/audit` and the export
/// serialise them).
const COMMON_FIELDS: &[Field] = &[
    ("seq", "its position in the agency's chain, from 1"),
    ("agency_id", "the agency whose chain holds it (`agy_…`)"),
    ("id", "the event's id (`evt_…`)"),
    ("at", "when it happened (RFC 3339 in the API and export; epoch ms in the hash)"),
    ("actor", "who acted: `usr_…`, `key_…`, `ins_…`, an app's `app_…`, `system` or `operator:cli`; under impersonation, the impersonator"),
    ("on_behalf_of", "on whose behalf, or null: the impersonated user, or the subject of the code, grant or token a client acted on"),
    ("action", "what was done: one of the names below"),
    ("target", "the object acted on, or null (per action, below)"),
    ("outcome", "`success`, `denied` (authorization refused it) or `failure` (attempted and failed)"),
    ("request_id", "the request that did it (`bootstrap` and `key-rotation` for those background acts; empty from the offline CLI)"),
    ("ip", "the client's address, or null"),
    ("user_agent", "the client's user agent, or null"),
    ("detail", "an object of facts specific to the action (per action, below); never a secret"),
    ("prev_hash", "the previous event's hash in the chain (hex; zeros for the first)"),
    ("hash", "this event's hash (hex): SHA-256 of `tessera-audit-v1\\n`, `prev_hash` and the canonical JSON of the event"),
];

fn table(out: &mut String, head: &str, rows: &[Field]) {
    out.push_str(&format!("| {head} | meaning |\n|---|---|\n"));
    for (k, v) in rows {
        out.push_str(&format!("| `{k}` | {v} |\n"));
    }
}

/// The whole of `docs/AUDIT.md`.
pub fn markdown() -> String {
    let mut out = String::new();
    out.push_str("# Audit events\n\n");
    out.push_str(
        "<!-- Generated from crates/tessera-server/src/audit/action.rs: do not edit. Regenerate with\n     UPDATE_AUDIT_DOC=1 cargo test -p tessera-server audit::reference -->\n\n",
    );
    out.push_str(
        "Every security-relevant act is appended to the hash chain of the agency it concerns (I5), \
         in the same transaction as the change it records: a failed change leaves no event and an \
         event never exists without its change. Each event's hash covers the previous event's, so \
         an edit, deletion or reordering breaks the chain where it happened (`GET …/audit/verify`). \
         The action names below are a stable contract: filters (`?action=`) and stored chains rely \
         on them.\n\n",
    );
    out.push_str(include_str!("integrity.md"));
    out.push_str("## Fields of every event\n\n");
    table(&mut out, "field", COMMON_FIELDS);
    out.push_str("\n## Actions\n\n| action | target |\n|---|---|\n");
    for a in AuditAction::ALL {
        out.push_str(&format!(
            "| [`{}`](#{}) | {} |\n",
            a.as_str(),
            anchor(a.as_str()),
            a.target()
        ));
    }
    let mut group = "";
    for a in AuditAction::ALL {
        if a.group() != group {
            group = a.group();
            out.push_str(&format!("\n## `{group}.*`\n"));
        }
        out.push_str(&format!(
            "\n### `{}`\n\n{}\n\n",
            a.as_str(),
            a.description()
        ));
        out.push_str(&format!("Target: {}.\n\n", a.target()));
        if a.fields().is_empty() {
            out.push_str("Detail: `{}`.\n");
        } else {
            table(&mut out, "detail", a.fields());
        }
    }
    out
}

/// GitHub's heading anchor for a heading that is `name` in backticks.
fn anchor(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// Exhaustive: a new variant fails to compile here until it is given a place, and the
    /// test below fails until that place is also in `ALL`.
    fn position(a: AuditAction) -> usize {
        use AuditAction::*;
        match a {
            AuthSignIn => 0,
            OauthConsent => 1,
            OauthCodeReplayed => 2,
            OauthRefreshReused => 3,
            TokenIssue => 4,
            TokenExchange => 5,
            TokenRevoke => 6,
            ImpersonationStart => 7,
            ImpersonationRequest => 8,
            AuthzDenied => 9,
            PlatformBootstrap => 10,
            PlatformBreakGlass => 11,
            PlatformCrossTenantRead => 12,
            AgencyCreate => 13,
            AgencyUpdate => 14,
            AgencyDelete => 15,
            AccountCreate => 16,
            AccountUpdate => 17,
            AccountDelete => 18,
            UserCreate => 19,
            UserUpdate => 20,
            UserDelete => 21,
            RoleCreate => 22,
            RoleUpdate => 23,
            RoleDelete => 24,
            BindingCreate => 25,
            BindingDelete => 26,
            PolicyCreate => 27,
            PolicyDelete => 28,
            ApiKeyCreate => 29,
            ApiKeyRevoke => 30,
            ApiKeyRotate => 31,
            AppCreate => 32,
            AppDelete => 33,
            AppRotateSecret => 34,
            InstallationCreate => 35,
            InstallationRevoke => 36,
            SigningKeyCreate => 37,
            SigningKeyActivate => 38,
            SigningKeyBeginRetiring => 39,
            SigningKeyRetire => 40,
            SigningKeyDrop => 41,
            AgencySuspend => 42,
            AgencyReinstate => 43,
            AccountSuspend => 44,
            AccountReinstate => 45,
            AppUpdate => 46,
            AppApprove => 47,
            AppReject => 48,
            AuthSignInThrottled => 49,
            AgencyLimitsUpdate => 50,
            ResourceServerCreate => 51,
            ResourceServerDelete => 52,
            ComplianceReportRead => 53,
            AuditKeyCreate => 54,
            AuditKeyActivate => 55,
            AuditKeyRetire => 56,
            AuditRetentionSet => 57,
            AuditPrune => 58,
            WebhookCreate => 59,
            WebhookDelete => 60,
            WebhookRotateSecret => 61,
            WebhookRedeliver => 62,
            UserErase => 63,
        }
    }
    const VARIANTS: usize = 64;

    #[test]
    fn all_lists_every_variant_once() {
        assert_eq!(AuditAction::ALL.len(), VARIANTS);
        let mut seen = [false; VARIANTS];
        for a in AuditAction::ALL {
            let i = position(*a);
            assert!(!seen[i], "{a} is listed twice in ALL");
            seen[i] = true;
        }
        assert!(seen.iter().all(|s| *s), "ALL misses a variant");
        let names: HashSet<&str> = AuditAction::ALL.iter().map(|a| a.as_str()).collect();
        assert_eq!(names.len(), VARIANTS, "two variants share a wire name");
    }

    #[test]
    fn wire_names_round_trip() {
        for a in AuditAction::ALL {
            assert_eq!(AuditAction::parse(a.as_str()), Some(*a));
            assert_eq!(a.to_string(), a.as_str());
            let (group, verb) = a.as_str().split_once('.').unwrap();
            assert!(!group.is_empty() && !verb.is_empty() && !verb.contains('.'));
            assert!(a
                .as_str()
                .chars()
                .all(|c| c.is_ascii_lowercase() || c == '_' || c == '.'));
        }
        assert_eq!(AuditAction::parse("users.read"), None);
        assert_eq!(AuditAction::parse(""), None);
        assert_eq!(AuditAction::parse("TOKEN.ISSUE"), None);
    }

    #[test]
    fn the_wire_names_used_today_are_kept() {
        // The names stored chains already hold: renaming one would orphan them.
        for s in [
            "agency.create",
            "api_key.rotate",
            "token.issue",
            "authz.denied",
            "platform.break_glass",
            "signing_key.begin_retiring",
            "impersonation.request",
        ] {
            assert!(AuditAction::parse(s).is_some(), "{s}");
        }
    }

    #[test]
    fn groups_are_contiguous_and_text_fits_a_table() {
        let mut done: Vec<&str> = Vec::new();
        for w in AuditAction::ALL.windows(2) {
            if w[0].group() != w[1].group() {
                done.push(w[0].group());
                assert!(!done.contains(&w[1].group()), "{} is split in ALL", w[1]);
            }
        }
        for a in AuditAction::ALL {
            let mut keys = HashSet::new();
            for (k, v) in a.fields() {
                assert!(keys.insert(*k), "{a}: `{k}` twice");
                assert!(!v.contains('|') && !v.contains('\n'), "{a}: `{k}`");
            }
            for text in [a.description(), a.target()] {
                assert!(
                    !text.is_empty() && !text.contains('\n') && !text.contains('|'),
                    "{a}"
                );
            }
        }
    }

    #[test]
    fn docs_are_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/AUDIT.md");
        let want = markdown();
        if std::env::var("UPDATE_AUDIT_DOC").as_deref() == Ok("1") {
            std::fs::write(path, &want).unwrap();
            return;
        }
        let have = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            have == want,
            "docs/AUDIT.md is stale: run `UPDATE_AUDIT_DOC=1 cargo test -p tessera-server audit::reference`"
        );
    }
}
