//! The access review: every principal of an agency (its users, its API keys, the apps
//! installed in it) with its roles, its bindings, what the authorizer grants it at the agency
//! and on each account where that differs, and its last activity.
//!
//! INVARIANT: the permissions are the engine's own answer (`gate::decide::effective_of`, the
//! function behind `/v1/check`: RBAC ∩ the credential's cap), at the revision of the index the
//! bindings came from; an inactive principal (disabled user, expired key) is granted nothing.
//! Cedar policies may still narrow a permission per resource (`policies_may_narrow`). Last
//! activity is one index lookup per row (`Evidence::last_activity`), never a scan.

use schemars::JsonSchema;
use serde::Serialize;
use tessera_core::time::serde_rfc3339;
use tessera_core::{AccountId, CredentialCap, PermissionSet, PrincipalId};
use tessera_store::{PageRequest, Status, TenantScope};

use super::{
    audit_read, bounded, next_cursor, split_cursor, time_cell, CsvRow, Format, ReadFacts,
    ReportPage,
};
use crate::authn::key_grant;
use crate::caller::{Caller, Credential};
use crate::error::ApiError;
use crate::gate::authorized::Authorized;
use crate::gate::decide::effective_of;
use crate::oauth::scope::scope_permissions;
use crate::services::Services;

const SECTIONS: &[&str] = &["users", "keys", "installations"];

/// One binding of a principal.
#[derive(Debug, Serialize, JsonSchema)]
pub struct BindingView {
    /// `bnd_…`.
    pub id: String,
    /// A built-in role's name or a custom role's id.
    pub role: String,
    /// The account, or null for agency-wide.
    pub account: Option<AccountId>,
}

/// What a principal may do on one account, where it differs from the agency level.
#[derive(Debug, Serialize, JsonSchema)]
pub struct AccountPermissions {
    /// The account.
    pub account: AccountId,
    /// Permission names, in catalog order.
    pub permissions: Vec<String>,
}

/// One principal under review.
#[derive(Debug, Serialize, JsonSchema)]
pub struct AccessReviewEntry {
    /// `usr_…`, `key_…` or `ins_…`.
    pub principal: PrincipalId,
    /// `user`, `api_key` or `installation`.
    pub kind: String,
    /// A user's or key's name; an installation's app id.
    pub name: String,
    /// A user's email.
    pub email: Option<String>,
    /// `active`, `disabled`, `expired`.
    pub status: String,
    /// The account a key or installation is bound to, or null.
    pub bound_account: Option<AccountId>,
    /// The credential's own scopes (keys and installations).
    pub scopes: Vec<String>,
    /// Its role names (built-in names, custom role ids), sorted.
    pub roles: Vec<String>,
    /// Its bindings.
    pub bindings: Vec<BindingView>,
    /// What the authorizer grants it at the agency level (for a bound key or installation:
    /// on its account), in catalog order.
    pub permissions: Vec<String>,
    /// On each account where it holds account bindings: what it is granted there.
    pub account_permissions: Vec<AccountPermissions>,
    /// Whether Cedar policies of the agency or platform may narrow these per resource.
    pub policies_may_narrow: bool,
    /// When it was created.
    #[serde(serialize_with = "serde_rfc3339::serialize")]
    #[schemars(with = "String")]
    pub created_at: i64,
    /// Its newest audit event as actor (sign-in, token, change, …), if any.
    #[serde(serialize_with = "serde_rfc3339::option::serialize")]
    #[schemars(with = "Option<String>")]
    pub last_activity_at: Option<i64>,
    /// A key's last authenticated use (recorded in batches), if any.
    #[serde(serialize_with = "serde_rfc3339::option::serialize")]
    #[schemars(with = "Option<String>")]
    pub last_used_at: Option<i64>,
    /// The authorization revision the roles and permissions are valid at.
    pub revision: i64,
}

impl CsvRow for AccessReviewEntry {
    fn header() -> &'static [&'static str] {
        &[
            "principal",
            "kind",
            "name",
            "email",
            "status",
            "bound_account",
            "scopes",
            "roles",
            "bindings",
            "permissions",
            "account_permissions",
            "policies_may_narrow",
            "created_at",
            "last_activity_at",
            "last_used_at",
            "revision",
        ]
    }
    fn cells(&self) -> Vec<String> {
        vec![
            self.principal.to_string(),
            self.kind.clone(),
            self.name.clone(),
            self.email.clone().unwrap_or_default(),
            self.status.clone(),
            self.bound_account
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            self.scopes.join(" "),
            self.roles.join(" "),
            self.bindings
                .iter()
                .map(|b| match &b.account {
                    Some(a) => format!("{}:{}@{}", b.id, b.role, a),
                    None => format!("{}:{}@agency", b.id, b.role),
                })
                .collect::<Vec<_>>()
                .join(" "),
            self.permissions.join(" "),
            self.account_permissions
                .iter()
                .map(|a| format!("{}={}", a.account, a.permissions.join(",")))
                .collect::<Vec<_>>()
                .join(" "),
            self.policies_may_narrow.to_string(),
            time_cell(Some(self.created_at)),
            time_cell(self.last_activity_at),
            time_cell(self.last_used_at),
            self.revision.to_string(),
        ]
    }
}

/// A principal before its permissions are computed.
struct Row {
    principal: PrincipalId,
    kind: &'static str,
    name: String,
    email: Option<String>,
    status: &'static str,
    bound_account: Option<AccountId>,
    scopes: Vec<String>,
    created_at: i64,
    last_used_at: Option<i64>,
    /// The caller the engine is asked about; `None` when inactive.
    subject: Option<Caller>,
}

/// A page of the access review: users, then API keys, then installations (`limit` rows at
/// most, cursor from the previous page). Route: `compliance.read` on the agency.
pub async fn page(
    s: &Services,
    auth: &Authorized,
    cursor: Option<&str>,
    limit: u32,
    format: Format,
) -> Result<ReportPage<AccessReviewEntry>, ApiError> {
    let scope = auth.scope()?;
    let (ix, inner) = split_cursor(cursor, SECTIONS)?;
    let req = PageRequest {
        limit: bounded(limit),
        cursor: inner.map(str::to_owned),
    };
    let (rows, next) = match ix {
        0 => users(s, auth, &scope, &req).await?,
        1 => keys(s, auth, &scope, &req).await?,
        _ => installations(s, auth, &scope, &req).await?,
    };
    let entry = s
        .engine
        .entry(
            &auth.agency,
            auth.caller.is_platform && auth.agency == auth.caller.agency,
            None,
        )
        .await?;
    let revision = s.engine.valid_at(&entry);
    let policies_may_narrow = entry.policies.is_some()
        || entry.policies_broken
        || !matches!(
            s.engine.platform_policies(),
            tessera_core::decision::Policies::None
        );
    let actors: Vec<String> = rows.iter().map(|r| r.principal.to_string()).collect();
    let seen: std::collections::HashMap<String, i64> = s
        .store
        .last_activity(&scope, &actors)
        .await?
        .into_iter()
        .collect();
    let mut items = Vec::with_capacity(rows.len());
    for r in rows {
        let bindings = entry.index.bindings_of(&r.principal);
        let mut roles: Vec<String> = bindings.iter().map(|(_, role, _)| role.clone()).collect();
        roles.sort();
        roles.dedup();
        let (permissions, account_permissions) = match &r.subject {
            None => (Vec::new(), Vec::new()),
            Some(subject) => {
                grants(s, auth, subject, &entry.index.bound_accounts(&r.principal)).await?
            }
        };
        items.push(AccessReviewEntry {
            last_activity_at: seen.get(r.principal.as_str()).copied(),
            principal: r.principal,
            kind: r.kind.into(),
            name: r.name,
            email: r.email,
            status: r.status.into(),
            bound_account: r.bound_account,
            scopes: r.scopes,
            roles,
            bindings: bindings
                .into_iter()
                .map(|(id, role, account)| BindingView {
                    id: id.to_string(),
                    role,
                    account,
                })
                .collect(),
            permissions,
            account_permissions,
            policies_may_narrow,
            created_at: r.created_at,
            last_used_at: r.last_used_at,
            revision,
        });
    }
    let out = ReportPage {
        report: "access_review".into(),
        agency: auth.agency.clone(),
        generated_at: s.clock.now(),
        next_cursor: next_cursor(ix, next, SECTIONS),
        items,
    };
    audit_read(
        s,
        auth,
        &scope,
        ReadFacts {
            report: "access_review",
            target: auth.agency.as_str(),
            format,
            cursor,
            items: out.items.len(),
            own: None,
        },
    )
    .await?;
    Ok(out)
}

/// What the engine grants `subject` at the agency level (or its bound account) and on each
/// account it is bound on, where that differs.
async fn grants(
    s: &Services,
    auth: &Authorized,
    subject: &Caller,
    accounts: &[AccountId],
) -> Result<(Vec<String>, Vec<AccountPermissions>), ApiError> {
    let agency = &auth.agency;
    let base_at = subject.cap.account.clone();
    let base = effective_of(s, subject, agency, base_at.as_ref()).await?;
    let mut per_account = Vec::new();
    if base_at.is_none() {
        for acc in accounts {
            let set = effective_of(s, subject, agency, Some(acc)).await?;
            if set != base {
                per_account.push(AccountPermissions {
                    account: acc.clone(),
                    permissions: s.catalog.permission_names(&set),
                });
            }
        }
    }
    Ok((s.catalog.permission_names(&base), per_account))
}

fn subject(
    auth: &Authorized,
    principal: PrincipalId,
    cap: CredentialCap,
    own: Option<PermissionSet>,
    credential: Credential,
) -> Caller {
    Caller {
        principal,
        agency: auth.agency.clone(),
        is_platform: auth.caller.is_platform && auth.agency == auth.caller.agency,
        credential,
        cap,
        own,
    }
}

type Rows = (Vec<Row>, Option<String>);

async fn users(
    s: &Services,
    auth: &Authorized,
    scope: &TenantScope,
    req: &PageRequest,
) -> Result<Rows, ApiError> {
    let page = s.store.list_users(scope, req).await?;
    let rows = page
        .items
        .into_iter()
        .map(|u| {
            let active = u.status == Status::Active;
            let principal = PrincipalId::User(u.id.clone());
            Row {
                subject: active.then(|| {
                    subject(
                        auth,
                        principal.clone(),
                        CredentialCap {
                            permissions: None,
                            account: None,
                        },
                        None,
                        Credential::None,
                    )
                }),
                principal,
                kind: "user",
                name: u.name,
                email: Some(u.email),
                status: if active { "active" } else { "disabled" },
                bound_account: None,
                scopes: Vec::new(),
                created_at: u.created_at,
                last_used_at: None,
            }
        })
        .collect();
    Ok((rows, page.next_cursor))
}

async fn keys(
    s: &Services,
    auth: &Authorized,
    scope: &TenantScope,
    req: &PageRequest,
) -> Result<Rows, ApiError> {
    let now = s.clock.now();
    let page = s.store.list_api_keys(scope, req).await?;
    // Revoked keys grant nothing and are listed in the credential inventory, not here.
    let rows = page
        .items
        .into_iter()
        .filter(|k| k.revoked_at.is_none())
        .map(|k| {
            let expired = k.expires_at.is_some_and(|at| at <= now);
            let principal = PrincipalId::Key(k.id.clone());
            let grant = if expired { None } else { key_grant(s, &k) };
            Row {
                subject: grant.map(|(own, cap)| {
                    subject(
                        auth,
                        principal.clone(),
                        CredentialCap {
                            permissions: cap,
                            account: k.account.clone(),
                        },
                        own,
                        Credential::ApiKey(k.clone()),
                    )
                }),
                principal,
                kind: "api_key",
                name: k.name,
                email: None,
                status: if expired { "expired" } else { "active" },
                bound_account: k.account,
                scopes: k.scopes,
                created_at: k.created_at,
                last_used_at: k.last_used_at,
            }
        })
        .collect();
    Ok((rows, page.next_cursor))
}

async fn installations(
    s: &Services,
    auth: &Authorized,
    scope: &TenantScope,
    req: &PageRequest,
) -> Result<Rows, ApiError> {
    let page = s.store.list_installations(scope, None, req).await?;
    let rows = page
        .items
        .into_iter()
        .map(|i| {
            let principal = PrincipalId::Installation(i.id.clone());
            let set = scope_permissions(&s.catalog, &i.scopes);
            Row {
                subject: Some(subject(
                    auth,
                    principal.clone(),
                    CredentialCap {
                        permissions: Some(set),
                        account: i.account.clone(),
                    },
                    Some(set),
                    Credential::None,
                )),
                principal,
                kind: "installation",
                name: i.app_id.to_string(),
                email: None,
                status: "active",
                bound_account: i.account,
                scopes: i.scopes,
                created_at: i.created_at,
                last_used_at: None,
            }
        })
        .collect();
    Ok((rows, page.next_cursor))
}
