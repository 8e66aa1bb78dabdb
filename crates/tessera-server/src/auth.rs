//! Authentication and the per-route authorization gate.
//!
//! Every `/v1` route declares one catalog permission (routes/mod.rs); `guard` authenticates
//! the bearer credential, resolves the target (agency and account from the path), and lets the
//! request through only if the engine allows it. Denials are audited (I5).
//! INVARIANT (I1): a `TenantScope` is only built here, for an agency the caller was authorized
//! in; another tenant's agency answers the same 404 as a missing one. (I3) deny by default.

use std::sync::Arc;

use axum::extract::{FromRequestParts, RawPathParams, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tessera_core::{
    authorize, AccountId, AgencyId, CredentialCap, EventId, Grant, GrantSource, KeyId,
    PermissionIndex, PermissionSet, PrincipalId, Reason, Subject, Target,
};
use tessera_store::{ApiKey, AuditRecord, Binding, Outcome, Status, TenantScope};
use tessera_token::{check_api_key_format, looks_like_api_key};

use crate::error::{ApiError, ErrorCode};
use crate::extract::parse_id;
use crate::state::AppState;

/// Facts about the request that every audit event carries.
#[derive(Clone, Debug, Default)]
pub struct RequestMeta {
    /// `req_…`, echoed as `x-request-id`.
    pub request_id: String,
    /// The client's address.
    pub ip: Option<String>,
    /// The client's user agent.
    pub user_agent: Option<String>,
}

/// An authenticated caller.
#[derive(Clone, Debug)]
pub struct Caller {
    /// Who.
    pub principal: PrincipalId,
    /// What the decision needs about them.
    pub subject: Subject,
    /// The API key, when the credential is one.
    pub key: Option<ApiKey>,
}

/// Where a route takes its authorization target from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetFrom {
    /// `{agy}` (or the caller's own agency) and `{acc}` from the path: checked before the handler.
    Path,
    /// The account is in the body: the gate checks the tenant, the handler calls `require_at`.
    Body,
}

/// Resolves the built-in (and, later, custom) roles of bindings into grants.
pub fn grants_of(state: &AppState, bindings: &[Binding]) -> Vec<Grant> {
    bindings
        .iter()
        .filter_map(|b| {
            let (_, permissions) = state.catalog.role(&b.role)?;
            Some(Grant {
                source: GrantSource::Binding(b.id.clone()),
                account: b.account.clone(),
                permissions,
            })
        })
        .collect()
}

/// Authenticates the `Authorization: Bearer` credential.
pub async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let raw = headers.get(header::AUTHORIZATION).ok_or_else(|| {
        ApiError::unauthenticated("send a credential as `Authorization: Bearer <API key>`")
    })?;
    let raw = raw
        .to_str()
        .map_err(|_| ApiError::unauthenticated("the authorization header is not valid text"))?;
    let token = match raw.split_once(' ') {
        Some((scheme, t)) if scheme.eq_ignore_ascii_case("bearer") => t.trim(),
        _ => {
            return Err(ApiError::unauthenticated(
                "use the `Bearer` authorization scheme",
            ))
        }
    };
    if !looks_like_api_key(token) {
        return Err(ApiError::unauthenticated(
            "the credential is not a Tessera API key",
        ));
    }
    // The format and checksum are checked before any storage read.
    check_api_key_format(token)
        .map_err(|e| ApiError::unauthenticated(format!("invalid API key: {e}")))?;
    let invalid = || ApiError::unauthenticated("the API key is invalid, expired or revoked");
    let hash = state.pepper.hash(token.as_bytes());
    let now = state.clock.now();
    let found = state
        .store
        .find_key_by_secret(hash.as_bytes())
        .await?
        .ok_or_else(invalid)?;
    if found.valid_until.is_some_and(|until| until <= now) {
        return Err(invalid());
    }
    let agency = match state.store.get_agency(&found.agency).await {
        Ok(a) if a.status == Status::Active => a,
        Ok(_) | Err(tessera_store::StoreError::NotFound) => return Err(invalid()),
        Err(e) => return Err(e.into()),
    };
    let scope = TenantScope::authenticated(agency.id.clone());
    let key = state
        .store
        .get_api_key(&scope, &found.key)
        .await
        .map_err(|e| match e {
            tessera_store::StoreError::NotFound => invalid(),
            e => e.into(),
        })?;
    if key.revoked_at.is_some() || key.expires_at.is_some_and(|at| at <= now) {
        return Err(invalid());
    }
    let principal = PrincipalId::Key(key.id.clone());
    let bindings = state.store.principal_bindings(&scope, &principal).await?;
    let mut grants = grants_of(state, &bindings);
    let cap = if key.scopes.is_empty() {
        // An unscoped key is a service account: only its bindings grant anything.
        None
    } else {
        let scoped = state
            .catalog
            .scopes_permissions(&key.scopes)
            .map_err(|_| invalid())?;
        grants.push(Grant {
            source: GrantSource::KeyScopes(key.id.clone()),
            account: key.account.clone(),
            permissions: scoped,
        });
        Some(scoped)
    };
    state.key_usage.record(&agency.id, &key.id, now);
    let subject = Subject {
        agency: agency.id.clone(),
        is_platform: agency.is_platform,
        grants,
        cap: CredentialCap {
            permissions: cap,
            account: key.account.clone(),
        },
    };
    Ok(Caller {
        principal,
        subject,
        key: Some(key),
    })
}

/// The route's requirement, attached to each route by the router.
#[derive(Clone, Debug)]
pub struct GuardState {
    /// The app.
    pub app: AppState,
    /// The permission's name.
    pub permission: &'static str,
    /// Its index.
    pub index: PermissionIndex,
    /// Where the target comes from.
    pub target: TargetFrom,
    /// Only platform principals may call the route (agency collection routes).
    pub platform_only: bool,
}

/// What the gate established; handlers extract it.
#[derive(Clone, Debug)]
pub struct Authorized {
    /// The caller.
    pub caller: Arc<Caller>,
    /// The agency acted in.
    pub agency: AgencyId,
    /// The account acted on, from the path.
    pub account: Option<AccountId>,
    /// The route's permission, if it declares one.
    permission: Option<(PermissionIndex, &'static str)>,
    checked: bool,
    /// Request facts.
    pub meta: RequestMeta,
}

impl Authorized {
    /// The tenant scope of a route whose target came from the path (already checked).
    pub fn scope(&self) -> Result<TenantScope, ApiError> {
        if !self.checked {
            return Err(ApiError::internal(
                "route declared a body target but read the path scope",
            ));
        }
        Ok(TenantScope::authenticated(self.agency.clone()))
    }

    /// The tenant scope once the tenant gate has passed, before the permission is checked at
    /// a target read from the store (a binding's or key's account). Use it only to load what
    /// that decision needs; act only with the scope `require_at` returns.
    pub fn gate_scope(&self) -> TenantScope {
        TenantScope::authenticated(self.agency.clone())
    }

    /// Refuses a grant of permissions the caller does not hold (I2), naming them, and audits it.
    pub async fn deny_missing(
        &self,
        state: &AppState,
        action: &str,
        missing: Vec<String>,
    ) -> ApiError {
        let detail = json!({ "missing_permissions": missing, "attempted": action });
        let record = audit_record(
            state,
            &self.caller.principal,
            &self.meta,
            "authz.denied",
            Some(self.agency.as_str()),
            Outcome::Denied,
            detail,
        );
        if let Err(e) = state.store.append_audit(&self.gate_scope(), &record).await {
            tracing::warn!(error = %e, "could not audit a denied request");
        }
        ApiError::forbidden(format!(
            "you cannot grant permissions you do not hold: {}",
            missing.join(", ")
        ))
        .with_extra(json!({ "missing_permissions": missing }))
    }

    /// Checks the route's permission at `account` (or the whole agency) and returns the scope.
    pub async fn require_at(
        &self,
        state: &AppState,
        account: Option<&AccountId>,
    ) -> Result<TenantScope, ApiError> {
        let (ix, name) = self
            .permission
            .ok_or_else(|| ApiError::internal("route without a permission asked for one"))?;
        self.require(state, ix, name, account).await
    }

    /// For routes any authenticated caller may use: no permission, no tenant scope.
    pub fn for_caller(caller: Caller, meta: RequestMeta) -> Self {
        Self {
            agency: caller.subject.agency.clone(),
            caller: Arc::new(caller),
            account: None,
            permission: None,
            checked: false,
            meta,
        }
    }

    /// Checks any permission at a target in this agency.
    pub async fn require(
        &self,
        state: &AppState,
        ix: PermissionIndex,
        name: &str,
        account: Option<&AccountId>,
    ) -> Result<TenantScope, ApiError> {
        let target = Target {
            agency: &self.agency,
            account,
        };
        let d = authorize(&self.caller.subject, ix, target, state.engine);
        if d.allowed {
            return Ok(TenantScope::authenticated(self.agency.clone()));
        }
        Err(deny(
            state,
            &self.caller,
            &self.agency,
            account,
            name,
            &d.reason,
            &self.meta,
        )
        .await)
    }

    /// What the caller may do at a target in this agency (for "grant only what you hold").
    pub fn effective(&self, state: &AppState, account: Option<&AccountId>) -> PermissionSet {
        self.caller.subject.effective(
            Target {
                agency: &self.agency,
                account,
            },
            state.engine,
        )
    }

    /// An audit record of an act by this caller.
    pub fn audit(
        &self,
        state: &AppState,
        action: &str,
        target: Option<&str>,
        detail: serde_json::Value,
    ) -> AuditRecord {
        audit_record(
            state,
            &self.caller.principal,
            &self.meta,
            action,
            target,
            Outcome::Success,
            detail,
        )
    }
}

/// Builds an audit record.
pub fn audit_record(
    state: &AppState,
    actor: &PrincipalId,
    meta: &RequestMeta,
    action: &str,
    target: Option<&str>,
    outcome: Outcome,
    detail: serde_json::Value,
) -> AuditRecord {
    let now = state.clock.now();
    AuditRecord {
        id: EventId::generate_at(u64::try_from(now).unwrap_or(0), &mut rand::thread_rng()),
        at: now,
        actor: actor.to_string(),
        on_behalf_of: None,
        action: action.to_owned(),
        target: target.map(str::to_owned),
        outcome,
        request_id: meta.request_id.clone(),
        ip: meta.ip.clone(),
        user_agent: meta.user_agent.clone(),
        detail,
    }
}

/// Answers a denial (404 across tenants, 403 otherwise) and audits it.
async fn deny(
    state: &AppState,
    caller: &Caller,
    agency: &AgencyId,
    account: Option<&AccountId>,
    permission: &str,
    reason: &Reason,
    meta: &RequestMeta,
) -> ApiError {
    let (chain, err) = match reason {
        Reason::OtherTenant => (caller.subject.agency.clone(), ApiError::not_found()),
        Reason::OutsideCredentialScope => (
            agency.clone(),
            ApiError::forbidden(format!(
                "the credential's scopes do not include `{permission}`"
            ))
            .with_extra(json!({ "missing_permissions": [permission] })),
        ),
        Reason::OutsideCredentialAccount => (
            agency.clone(),
            ApiError::forbidden("this credential is bound to another account")
                .with_extra(json!({ "missing_permissions": [permission] })),
        ),
        _ => (
            agency.clone(),
            ApiError::forbidden(format!("the caller lacks `{permission}` here"))
                .with_extra(json!({ "missing_permissions": [permission] })),
        ),
    };
    let detail = json!({
        "permission": permission,
        "reason": format!("{reason:?}"),
        "agency": agency.as_str(),
        "account": account.map(AccountId::as_str),
    });
    let record = audit_record(
        state,
        &caller.principal,
        meta,
        "authz.denied",
        Some(agency.as_str()),
        Outcome::Denied,
        detail,
    );
    if let Err(e) = state
        .store
        .append_audit(&TenantScope::authenticated(chain), &record)
        .await
    {
        tracing::warn!(error = %e, "could not audit a denied request");
    }
    err
}

/// The gate in front of every `/v1` route.
pub async fn guard(State(g): State<GuardState>, request: Request, next: Next) -> Response {
    match check(&g, request).await {
        Ok(request) => next.run(request).await,
        Err(e) => e.into_response(),
    }
}

async fn check(g: &GuardState, request: Request) -> Result<Request, ApiError> {
    let (mut parts, body) = request.into_parts();
    let meta = parts
        .extensions
        .get::<RequestMeta>()
        .cloned()
        .unwrap_or_default();
    let caller = authenticate(&g.app, &parts.headers).await?;
    let params = RawPathParams::from_request_parts(&mut parts, &())
        .await
        .map_err(|_| ApiError::invalid("malformed path"))?;
    let mut agency = None;
    let mut account = None;
    for (name, value) in &params {
        match name {
            "agy" => agency = Some(parse_id::<AgencyId>(value)?),
            "acc" => account = Some(parse_id::<AccountId>(value)?),
            _ => {}
        }
    }
    if g.platform_only && !caller.subject.is_platform {
        let own = caller.subject.agency.clone();
        return Err(deny(
            &g.app,
            &caller,
            &own,
            None,
            g.permission,
            &Reason::NotGranted,
            &meta,
        )
        .await);
    }
    let agency = agency.unwrap_or_else(|| caller.subject.agency.clone());
    let target = Target {
        agency: &agency,
        account: account.as_ref(),
    };
    let decision = authorize(&caller.subject, g.index, target, g.app.engine);
    let reason = &decision.reason;
    let denied = match g.target {
        TargetFrom::Path => !decision.allowed,
        // The handler checks the body's account; here only the tenant gate applies.
        TargetFrom::Body => matches!(reason, Reason::OtherTenant),
    };
    if denied {
        return Err(deny(
            &g.app,
            &caller,
            &agency,
            account.as_ref(),
            g.permission,
            reason,
            &meta,
        )
        .await);
    }
    if agency != caller.subject.agency {
        // Platform staff acting in an agency: it must exist, or it is the same 404.
        g.app.store.get_agency(&agency).await?;
    }
    parts.extensions.insert(Authorized {
        caller: Arc::new(caller),
        agency,
        account,
        permission: Some((g.index, g.permission)),
        checked: g.target == TargetFrom::Path,
        meta,
    });
    Ok(Request::from_parts(parts, body))
}

impl<S: Send + Sync> FromRequestParts<S> for Authorized {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parts.extensions.get::<Self>().cloned().ok_or_else(|| {
            ApiError::new(
                ErrorCode::Internal,
                "route is not behind the authorization gate",
            )
        })
    }
}

/// The id of the key making a request, if any (for audit details).
pub fn key_id(a: &Authorized) -> Option<&KeyId> {
    a.caller.key.as_ref().map(|k| &k.id)
}
