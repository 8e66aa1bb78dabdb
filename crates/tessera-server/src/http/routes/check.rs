//! The check API: `POST /v1/check`, `POST /v1/check/batch`, the effective permissions of a
//! principal, and the principals that hold a permission on an account. One engine answers all
//! of them, the same one that guards every route.
//!
//! Who may ask: anyone about themselves; about another principal, a caller holding
//! `bindings.read` where the question is asked (another agency is the same 404 as a missing one).
//! Unknown permissions and resource types deny (I3).

use axum::extract::{Path, State};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tessera_core::{AccountId, AgencyId, PermissionIndex, PrincipalId, Reason};
use tessera_store::{Status, StoreError, TenantScope};

use std::sync::Arc;

use crate::authn::key_grant;
use crate::caller::Caller;
use crate::engine::{CachedSubject, Engine};
use crate::error::ApiError;
use crate::gate::authorized::Authorized;
use crate::gate::decide::{decide, effective_of, ResourceDesc};
use crate::gate::deny::deny;
use crate::http::extract::{parse_id, Json, ListQuery};
use crate::http::state::AppState;
use crate::services::Services;

/// The most checks one batch may hold.
pub const MAX_BATCH: usize = 1000;

/// What a check is about.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckResource {
    /// The catalog resource type, such as `contact`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The resource's id, if the question is about one.
    pub id: Option<String>,
    /// The agency that owns it.
    pub agency: AgencyId,
    /// The account, for account-level resources.
    pub account: Option<AccountId>,
    /// Attributes Cedar policies may read (the catalog lists them per type).
    #[serde(default)]
    pub attributes: Map<String, Value>,
}

/// `POST /v1/check`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckRequest {
    /// A `usr_` or `key_` id; omit to ask about the caller.
    pub principal: Option<PrincipalId>,
    /// A catalog permission, such as `contacts.read`.
    pub permission: String,
    /// The resource.
    pub resource: CheckResource,
    /// Request context for policies: `ip`, `time` (epoch seconds), `mfa`, `impersonating`.
    #[serde(default)]
    pub context: Map<String, Value>,
    /// Wait (briefly) until this node has applied this revision.
    #[serde(default, deserialize_with = "crate::http::extract::de_opt_whole")]
    pub at_least_revision: Option<i64>,
    /// Include which bindings, roles and policies decided.
    #[serde(default)]
    pub explain: bool,
}

/// One grant in an explanation.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ExplainedGrant {
    /// `binding` or `key_scopes`.
    pub kind: &'static str,
    /// The binding's or key's id.
    pub id: String,
    /// The role, for bindings.
    pub role: Option<String>,
}

/// Why a check came out as it did.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Explanation {
    /// The grants that hold the permission at the target.
    pub grants: Vec<ExplainedGrant>,
    /// The policies that denied it (`pol_…#n`).
    pub policies: Vec<String>,
    /// Policy evaluation errors.
    pub errors: Vec<String>,
}

/// The answer to a check.
#[derive(Debug, Serialize, JsonSchema)]
pub struct CheckResponse {
    /// Whether the principal may.
    pub allowed: bool,
    /// The store revision the answer is valid at.
    pub revision: i64,
    /// `granted`, `not_granted`, `other_tenant`, `outside_credential_scope`,
    /// `outside_credential_account`, `denied_by_policy`, `policy_error`, `unknown_permission`,
    /// `resource_type_mismatch`, `inactive_principal`.
    pub reason: String,
    /// On request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explanation: Option<Explanation>,
}

/// `POST /v1/check/batch`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    /// Up to 1,000 checks (their own `at_least_revision` is ignored).
    #[schemars(extend("minItems" = 1, "maxItems" = 1000))]
    pub checks: Vec<CheckRequest>,
    /// Wait (briefly) until this node has applied this revision.
    #[serde(default, deserialize_with = "crate::http::extract::de_opt_whole")]
    pub at_least_revision: Option<i64>,
}

/// The answers, in order.
#[derive(Debug, Serialize, JsonSchema)]
pub struct BatchResponse {
    /// One per check.
    pub results: Vec<CheckResponse>,
    /// The revision every answer is valid at.
    pub revision: i64,
}

fn denial(reason: &str, revision: i64) -> CheckResponse {
    CheckResponse {
        allowed: false,
        revision,
        reason: reason.to_owned(),
        explanation: None,
    }
}

/// The subject of a check: the caller, or another principal of `agency` the caller may ask
/// about. Resolved principals are cached in the agency's engine entry (dropped with it on any
/// change of the agency: a disabled user, a revoked key).
async fn subject(
    s: &Services,
    auth: &Authorized,
    principal: Option<&PrincipalId>,
    agency: &AgencyId,
    account: Option<&AccountId>,
) -> Result<Option<Arc<Caller>>, ApiError> {
    let caller = &auth.caller;
    let Some(p) = principal.filter(|p| **p != caller.principal) else {
        return Ok(Some(caller.clone()));
    };
    let read = s
        .catalog
        .permission("bindings.read")
        .ok_or_else(|| ApiError::internal("catalog lacks `bindings.read`"))?;
    let d = decide(
        s,
        caller,
        read,
        agency,
        account,
        &crate::gate::decide::request_context(s, &auth.meta),
        None,
    )
    .await?;
    if !d.allowed {
        return Err(deny(
            s,
            caller,
            agency,
            account,
            "bindings.read",
            &d.reason,
            &auth.meta,
        )
        .await
        .into());
    }
    let now = s.clock.now();
    let generation = s.engine.generation_of(agency);
    // Same agency as the caller: it exists and its kind is known; across tenants, look it up.
    let is_platform = if *agency == caller.agency {
        caller.is_platform
    } else {
        s.store.get_agency(agency).await?.is_platform
    };
    let entry = s.engine.entry(agency, is_platform, None).await?;
    if let Some(hit) = Engine::cached_subject(&entry, p.as_str(), now) {
        return Ok(hit.caller.clone());
    }
    let scope = TenantScope::authenticated(agency.clone());
    let mut valid_until = None;
    let resolved = match p {
        PrincipalId::User(u) => match s.store.get_user(&scope, u).await {
            Ok(user) if user.status == Status::Active => Some((None, None, None)),
            Ok(_) => None,
            Err(StoreError::NotFound) => Some((None, None, None)),
            Err(e) => return Err(e.into()),
        },
        PrincipalId::Key(k) => match s.store.get_api_key(&scope, k).await {
            Ok(key) if key.revoked_at.is_none() && key.expires_at.is_none_or(|at| at > now) => {
                valid_until = key.expires_at;
                key_grant(s, &key).map(|(own, cap)| (Some(key), own, cap))
            }
            Ok(_) => None,
            Err(StoreError::NotFound) => Some((None, None, None)),
            Err(e) => return Err(e.into()),
        },
        // Installations hold no bindings; checks about them answer from nothing (deny).
        PrincipalId::Installation(_) => Some((None, None, None)),
    };
    let subject = resolved.map(|(key, own, cap)| {
        let account_cap = key
            .as_ref()
            .and_then(|k: &tessera_store::ApiKey| k.account.clone());
        Arc::new(Caller {
            principal: p.clone(),
            agency: agency.clone(),
            is_platform,
            key,
            cap: tessera_core::CredentialCap {
                permissions: cap,
                account: account_cap,
            },
            own,
            token: None,
        })
    });
    s.engine.remember_subject(
        agency,
        &entry,
        p.as_str(),
        CachedSubject {
            caller: subject.clone(),
            valid_until,
        },
        generation,
    );
    Ok(subject)
}

async fn run(
    s: &Services,
    auth: &Authorized,
    req: &CheckRequest,
    at_least: Option<i64>,
) -> Result<CheckResponse, ApiError> {
    let r = &req.resource;
    let subject = subject(
        s,
        auth,
        req.principal.as_ref(),
        &r.agency,
        r.account.as_ref(),
    )
    .await?;
    let revision_now = s.engine.applied();
    let Some(permission) = s.catalog.permission(&req.permission) else {
        return Ok(denial("unknown_permission", revision_now));
    };
    if s.catalog
        .permission_def(permission)
        .is_none_or(|d| d.resource != r.kind)
    {
        return Ok(denial("resource_type_mismatch", revision_now));
    }
    let Some(subject) = subject else {
        return Ok(denial("inactive_principal", revision_now));
    };
    let desc = ResourceDesc {
        id: r.id.clone(),
        attributes: r.attributes.clone(),
        context: req.context.clone(),
    };
    let d = decide(
        s,
        &subject,
        permission,
        &r.agency,
        r.account.as_ref(),
        &desc,
        at_least,
    )
    .await?;
    let explanation = if req.explain {
        Some(
            explain(
                s,
                &subject,
                permission,
                &r.agency,
                r.account.as_ref(),
                &d.reason,
            )
            .await?,
        )
    } else {
        None
    };
    Ok(CheckResponse {
        allowed: d.allowed,
        revision: d.revision,
        reason: d.reason.code().to_owned(),
        explanation,
    })
}

async fn explain(
    s: &Services,
    subject: &Caller,
    permission: PermissionIndex,
    agency: &AgencyId,
    account: Option<&AccountId>,
    reason: &Reason,
) -> Result<Explanation, ApiError> {
    let home = s
        .engine
        .entry(&subject.agency, subject.is_platform, None)
        .await?;
    let cross = *agency != subject.agency;
    let mut grants: Vec<ExplainedGrant> = home
        .index
        .explain(&subject.principal, permission, account, cross)
        .into_iter()
        .map(|(src, role)| ExplainedGrant {
            kind: "binding",
            id: source_id(&src),
            role: Some(role),
        })
        .collect();
    if let (Some(own), Some(key)) = (&subject.own, &subject.key) {
        let covers = key.account.is_none() || (!cross && key.account.as_ref() == account);
        if covers && own.contains(permission) {
            grants.push(ExplainedGrant {
                kind: "key_scopes",
                id: key.id.to_string(),
                role: None,
            });
        }
    }
    let (policies, errors) = match reason {
        Reason::DeniedByPolicy { policies } => (policies.clone(), Vec::new()),
        Reason::PolicyError { errors } => (Vec::new(), errors.clone()),
        _ => (Vec::new(), Vec::new()),
    };
    Ok(Explanation {
        grants,
        policies,
        errors,
    })
}

fn source_id(src: &tessera_core::GrantSource) -> String {
    match src {
        tessera_core::GrantSource::Binding(b) => b.to_string(),
        tessera_core::GrantSource::KeyScopes(k) => k.to_string(),
    }
}

/// Any valid credential: about itself; about others with `bindings.read` there.
pub async fn check(
    State(s): State<AppState>,
    auth: Authorized,
    Json(req): Json<CheckRequest, true>,
) -> Result<axum::Json<CheckResponse>, ApiError> {
    Ok(axum::Json(
        run(&s, &auth, &req, req.at_least_revision).await?,
    ))
}

/// Any valid credential; each check as for `/v1/check`.
pub async fn batch(
    State(s): State<AppState>,
    auth: Authorized,
    Json(req): Json<BatchRequest, true>,
) -> Result<axum::Json<BatchResponse>, ApiError> {
    if req.checks.is_empty() || req.checks.len() > MAX_BATCH {
        return Err(ApiError::invalid(format!(
            "`checks` must hold 1 to {MAX_BATCH} checks"
        )));
    }
    if let Some(w) = req.at_least_revision {
        // Bring every index this batch uses up to the revision first, so one revision holds.
        s.engine
            .entry(&auth.caller.agency, auth.caller.is_platform, Some(w))
            .await?;
    }
    let mut results = Vec::with_capacity(req.checks.len());
    for c in &req.checks {
        let r = match run(&s, &auth, c, req.at_least_revision).await {
            Ok(r) => r,
            Err(e) if e.code == crate::error::ErrorCode::NotFound => {
                denial("not_found", s.engine.applied())
            }
            Err(e) if e.code == crate::error::ErrorCode::Forbidden => {
                denial("forbidden", s.engine.applied())
            }
            Err(e) => return Err(e),
        };
        results.push(r);
    }
    let revision = results
        .iter()
        .map(|r| r.revision)
        .min()
        .unwrap_or_else(|| s.engine.applied());
    Ok(axum::Json(BatchResponse { results, revision }))
}

/// A principal's effective permissions.
#[derive(Debug, Serialize, JsonSchema)]
pub struct EffectivePermissions {
    /// Who.
    pub principal: PrincipalId,
    /// Where.
    pub agency: AgencyId,
    /// Where, if one account.
    pub account: Option<AccountId>,
    /// Permission names, in catalog order (policies may still narrow them per resource).
    pub permissions: Vec<String>,
    /// The revision they are valid at.
    pub revision: i64,
}

/// Requires `bindings.read` at the agency (or `?account=`).
pub async fn permissions(
    State(s): State<AppState>,
    auth: Authorized,
    Path((_, id)): Path<(String, String)>,
    q: ListQuery,
) -> Result<axum::Json<EffectivePermissions>, ApiError> {
    let principal: PrincipalId = parse_id(&id)?;
    let account = q.get("account").map(parse_id::<AccountId>).transpose()?;
    auth.require_at(&s, account.as_ref()).await?;
    let agency = auth.agency.clone();
    let subject = subject(&s, &auth, Some(&principal), &agency, account.as_ref()).await?;
    let set = match &subject {
        Some(sub) => effective_of(&s, sub, &agency, account.as_ref()).await?,
        None => tessera_core::PermissionSet::EMPTY,
    };
    let entry = s.engine.entry(&agency, false, None).await?;
    Ok(axum::Json(EffectivePermissions {
        principal,
        agency,
        account,
        permissions: s.catalog.permission_names(&set),
        revision: s.engine.valid_at(&entry),
    }))
}

/// A principal that holds a permission.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Holder {
    /// Who.
    pub principal: PrincipalId,
}

/// A page of holders.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Holders {
    /// The principals, in id order.
    pub items: Vec<Holder>,
    /// The next page.
    pub next_cursor: Option<String>,
    /// The revision the answer is valid at.
    pub revision: i64,
}

/// Requires `bindings.read` on the account. `?permission=` is required.
pub async fn principals(
    State(s): State<AppState>,
    auth: Authorized,
    q: ListQuery,
) -> Result<axum::Json<Holders>, ApiError> {
    let scope = auth.scope()?;
    let name = q
        .get("permission")
        .ok_or_else(|| ApiError::invalid("`permission` is required"))?;
    let permission = s
        .catalog
        .permission(name)
        .ok_or_else(|| ApiError::invalid(format!("unknown permission `{name}`")))?;
    let cursor = q
        .cursor
        .as_deref()
        .map(parse_id::<PrincipalId>)
        .transpose()
        .map_err(|_| ApiError::invalid("`cursor` is not a cursor this list returned"))?;
    let agency = auth.agency.clone();
    let account = auth.account.clone();
    let entry = s.engine.entry(&agency, false, None).await?;
    // Principals with bindings, and keys whose own scopes grant something.
    let mut candidates: Vec<PrincipalId> = entry.index.principals_after(cursor.as_ref());
    let mut page = tessera_store::PageRequest {
        limit: 200,
        cursor: None,
    };
    loop {
        let keys = s.store.list_api_keys(&scope, &page).await?;
        for k in &keys.items {
            let p = PrincipalId::Key(k.id.clone());
            if !k.scopes.is_empty()
                && k.revoked_at.is_none()
                && cursor.as_ref().is_none_or(|c| p.as_str() > c.as_str())
            {
                candidates.push(p);
            }
        }
        match keys.next_cursor {
            Some(c) => page.cursor = Some(c),
            None => break,
        }
    }
    candidates.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    candidates.dedup();
    let mut items = Vec::new();
    let mut next_cursor = None;
    for p in candidates {
        if items.len() == q.limit as usize {
            next_cursor = items.last().map(|h: &Holder| h.principal.to_string());
            break;
        }
        let Some(sub) = subject(&s, &auth, Some(&p), &agency, account.as_ref()).await? else {
            continue;
        };
        let d = decide(
            &s,
            &sub,
            permission,
            &agency,
            account.as_ref(),
            &ResourceDesc::default(),
            None,
        )
        .await?;
        if d.allowed {
            items.push(Holder { principal: p });
        }
    }
    Ok(axum::Json(Holders {
        items,
        next_cursor,
        revision: s.engine.valid_at(&entry),
    }))
}
