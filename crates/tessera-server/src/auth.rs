//! Authentication and the per-route authorization gate.
//!
//! Every `/v1` route declares one catalog permission (routes/mod.rs); `guard` authenticates
//! the bearer credential, resolves the target (agency and account from the path), and lets the
//! request through only if the engine allows it (RBAC index, credential cap, then Cedar).
//! Denials are audited (I5).
//! INVARIANT (I1): a `TenantScope` is only built here, for an agency the caller was authorized
//! in; another tenant's agency answers the same 404 as a missing one. (I3) deny by default.

use std::sync::Arc;

use axum::extract::{FromRequestParts, RawPathParams, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};
use tessera_core::abac::{AbacRequest, PrincipalKind};
use tessera_core::index::{self, Check};
use tessera_core::{
    AccountId, AgencyId, CredentialCap, EventId, PermissionIndex, PermissionSet, PrincipalId,
    Reason,
};
use tessera_store::{ApiKey, AuditRecord, Outcome, Status, TenantScope};
use tessera_token::{check_api_key_format, looks_like_api_key};

use crate::engine::{AgencyEntry, EngineError, PlatformPolicies};
use crate::error::{ApiError, ErrorCode};
use crate::http::extract::parse_id;
use crate::http::state::AppState;
use crate::services::Services;

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

/// An authenticated caller: who, from which agency, with which credential.
#[derive(Clone, Debug)]
pub struct Caller {
    /// Who.
    pub principal: PrincipalId,
    /// Its own agency.
    pub agency: AgencyId,
    /// Whether that is the platform tenant.
    pub is_platform: bool,
    /// The API key, when the credential is one.
    pub key: Option<ApiKey>,
    /// The credential's cap (scopes, account).
    pub cap: CredentialCap,
    /// What the credential grants by itself (an API key's scopes, an installation's consented
    /// scopes), at `cap.account`.
    pub own: Option<PermissionSet>,
    /// The access token, when the credential is one.
    pub token: Option<Arc<tessera_token::AccessClaims>>,
}

impl Caller {
    /// The impersonator, when this caller acts under an impersonation token.
    pub fn actor(&self) -> Option<&str> {
        self.token
            .as_ref()
            .and_then(|t| t.act.as_ref())
            .map(|a| a.sub.as_str())
    }
}

impl Caller {
    /// The engine's question for this caller, against its home agency's index.
    pub fn check<'a>(
        &'a self,
        home: &'a AgencyEntry,
        permission: PermissionIndex,
        agency: &'a AgencyId,
        account: Option<&'a AccountId>,
    ) -> Check<'a> {
        Check {
            principal: &self.principal,
            home: &home.index,
            own_grant: self.own.as_ref().map(|s| (s, self.cap.account.as_ref())),
            cap: &self.cap,
            permission,
            agency,
            account,
        }
    }
}

/// A principal or credential a caller wants to change, with what it holds by itself.
#[derive(Clone, Debug)]
pub struct Target {
    /// The principal (its bindings are read from the agency's index).
    pub principal: PrincipalId,
    /// What the credential grants by itself (an API key's scopes), at `cap.account`.
    pub own: Option<PermissionSet>,
    /// The credential's cap.
    pub cap: CredentialCap,
}

impl Target {
    /// A user: their bindings, uncapped.
    pub fn user(id: &tessera_core::UserId) -> Self {
        Self {
            principal: PrincipalId::User(id.clone()),
            own: None,
            cap: CredentialCap::default(),
        }
    }

    /// An API key: its bindings and scopes, capped by its scopes and account. A key whose
    /// scope left the catalog holds nothing.
    pub fn key(state: &Services, key: &ApiKey) -> Self {
        let (own, cap) = key_grant(state, key).unwrap_or((None, Some(PermissionSet::EMPTY)));
        Self {
            principal: PrincipalId::Key(key.id.clone()),
            own,
            cap: CredentialCap {
                permissions: cap,
                account: key.account.clone(),
            },
        }
    }

    /// Any principal of the agency (a binding's).
    pub async fn principal(
        state: &Services,
        scope: &TenantScope,
        principal: &PrincipalId,
    ) -> Result<Self, ApiError> {
        match principal {
            PrincipalId::Key(id) => match state.store.get_api_key(scope, id).await {
                Ok(key) => Ok(Self::key(state, &key)),
                Err(tessera_store::StoreError::NotFound) => Ok(Self {
                    principal: principal.clone(),
                    own: None,
                    cap: CredentialCap::default(),
                }),
                Err(e) => Err(e.into()),
            },
            _ => Ok(Self {
                principal: principal.clone(),
                own: None,
                cap: CredentialCap::default(),
            }),
        }
    }
}

/// What a check is about, beyond the permission and the tenant.
#[derive(Clone, Debug, Default)]
pub struct ResourceDesc {
    /// The resource's id, if one.
    pub id: Option<String>,
    /// Attributes policies may read.
    pub attributes: Map<String, Value>,
    /// The request context (`ip`, `time`, `mfa`, …).
    pub context: Map<String, Value>,
}

/// A decision with the revision it is valid at.
#[derive(Clone, Debug)]
pub struct Decided {
    /// The answer.
    pub allowed: bool,
    /// Why.
    pub reason: Reason,
    /// The store revision the answer is valid at.
    pub revision: i64,
    /// The agency's policies that denied a platform principal on an agency- or
    /// policy-management permission, and were overridden (break-glass, audited by the gate).
    pub break_glass: Option<Reason>,
}

/// The permissions on which platform staff acting in an agency are not subject to that
/// agency's own policies: an agency cannot lock the platform out of reading, fixing or
/// deleting it (every override is audited as `platform.break_glass`).
pub const BREAK_GLASS_PERMISSIONS: [&str; 6] = [
    "agencies.read",
    "agencies.update",
    "agencies.delete",
    "agencies.suspend",
    "policies.read",
    "policies.write",
];

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Store(s) => s.into(),
            EngineError::RevisionNotReached { wanted, have } => {
                let mut err = ApiError::new(ErrorCode::RevisionNotReached, format!("this node has not reached revision {wanted} yet (it is at {have}); retry shortly"));
                err.retry_after = Some(1);
                err
            }
        }
    }
}

/// Authenticates the `Authorization: Bearer` credential: from the engine's cache when this
/// node has seen it since its agency last changed, else from the store.
pub async fn authenticate(state: &Services, headers: &HeaderMap) -> Result<Arc<Caller>, ApiError> {
    let raw = headers.get(header::AUTHORIZATION).ok_or_else(|| {
        ApiError::unauthenticated(
            "send a credential as `Authorization: Bearer <API key or access token>`",
        )
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
    // A Bearer credential was presented: a refusal says `invalid_token` (RFC 6750 §3.1).
    authenticate_token(state, token)
        .await
        .map_err(ApiError::presented)
}

/// Authenticates a bearer credential: an API key or an access token.
pub async fn authenticate_token(state: &Services, token: &str) -> Result<Arc<Caller>, ApiError> {
    if crate::oauth::tokens::looks_like_jwt(token) {
        return authenticate_access_token(state, token).await;
    }
    if !looks_like_api_key(token) {
        return Err(ApiError::unauthenticated(
            "the credential is neither a Tessera API key nor an access token",
        ));
    }
    // The format and checksum are checked before any storage read.
    check_api_key_format(token)
        .map_err(|e| ApiError::unauthenticated(format!("invalid API key: {e}")))?;
    let invalid = || ApiError::unauthenticated("the API key is invalid, expired or revoked");
    let hash = state.pepper.hash(token.as_bytes());
    let now = state.clock.now();
    if let Some(caller) = state.engine.cached_caller(hash.as_bytes(), now).await {
        if let Some(key) = &caller.key {
            state.key_usage.record(&caller.agency, &key.id, now);
        }
        return Ok(caller);
    }
    let found = state
        .store
        .find_key_by_secret(hash.as_bytes())
        .await?
        .ok_or_else(invalid)?;
    // Read before the key: a revocation committed after this point moves the generation and
    // keeps this authentication out of the cache.
    let generation = state.engine.generation_of(&found.agency);
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
    let (own, cap) = key_grant(state, &key).ok_or_else(invalid)?;
    state.key_usage.record(&agency.id, &key.id, now);
    let valid_until = match (found.valid_until, key.expires_at) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let caller = Arc::new(Caller {
        principal: PrincipalId::Key(key.id.clone()),
        agency: agency.id,
        is_platform: agency.is_platform,
        cap: CredentialCap {
            permissions: cap,
            account: key.account.clone(),
        },
        own,
        key: Some(key),
        token: None,
    });
    state
        .engine
        .remember_caller(*hash.as_bytes(), caller.clone(), valid_until, generation)
        .await;
    Ok(caller)
}

/// Authenticates an access token (RFC 9068 JWT): verified, checked against the agency's
/// revocations, and cached with the agency's callers until it expires or the agency changes.
async fn authenticate_access_token(state: &Services, token: &str) -> Result<Arc<Caller>, ApiError> {
    let hash = state.pepper.hash(token.as_bytes());
    let now = state.clock.now();
    if let Some(caller) = state.engine.cached_caller(hash.as_bytes(), now).await {
        // The caller is cached with its tenant agency; its client (a marketplace app lives in
        // another agency) is checked against that agency's state too.
        let client_ok = match caller.token.as_ref().map(|t| t.client_id.as_str()) {
            Some(id) if !id.starts_with("key_") => crate::oauth::client::lookup(state, id)
                .await
                .map_err(oauth_to_api)?
                .is_some(),
            _ => true,
        };
        if client_ok {
            return Ok(caller);
        }
        return Err(ApiError::unauthenticated(
            "the access token is not valid: its client was deleted",
        ));
    }
    let issuer = state.oauth.issuer().to_owned();
    let claims = match crate::oauth::tokens::check_access_token(state, token, Some(&issuer)).await {
        Ok(Ok(c)) => c,
        Ok(Err(why)) => {
            return Err(ApiError::unauthenticated(format!(
                "the access token is not valid: {why}"
            )))
        }
        Err(e) => return Err(oauth_to_api(e)),
    };
    let agency: AgencyId = claims
        .tenant
        .agency
        .parse()
        .map_err(|_| ApiError::unauthenticated("the access token has a malformed tenant"))?;
    let generation = state.engine.generation_of(&agency);
    let caller = Arc::new(
        crate::oauth::tokens::caller_from_claims(state, &claims)
            .await
            .map_err(oauth_to_api)?,
    );
    state
        .engine
        .remember_caller(
            *hash.as_bytes(),
            caller.clone(),
            Some(claims.exp.saturating_mul(1000)),
            generation,
        )
        .await;
    Ok(caller)
}

fn oauth_to_api(e: crate::oauth::OAuthError) -> ApiError {
    match e.status.as_u16() {
        503 => ApiError::new(ErrorCode::Unavailable, e.description),
        401 => ApiError::unauthenticated(e.description),
        s if s >= 500 => ApiError::internal(e.description),
        _ => ApiError::unauthenticated(e.description),
    }
}

/// An API key's own grant and cap: its scopes' permissions, or nothing for an unscoped key
/// (which holds only what is bound to it). `None` if a scope left the catalog.
pub fn key_grant(
    state: &Services,
    key: &ApiKey,
) -> Option<(Option<PermissionSet>, Option<PermissionSet>)> {
    if key.scopes.is_empty() {
        return Some((None, None));
    }
    let set = state.catalog.scopes_permissions(&key.scopes).ok()?;
    Some((Some(set), Some(set)))
}

/// Decides whether `caller` may exercise `permission` at (`agency`, `account`): the RBAC index
/// and the credential's cap, then the Cedar policies of the platform and the agency.
pub async fn decide(
    state: &Services,
    caller: &Caller,
    permission: PermissionIndex,
    agency: &AgencyId,
    account: Option<&AccountId>,
    resource: &ResourceDesc,
    at_least: Option<i64>,
) -> Result<Decided, ApiError> {
    let home = state
        .engine
        .entry(&caller.agency, caller.is_platform, at_least)
        .await?;
    let c = caller.check(&home, permission, agency, account);
    let d = index::check(&c, state.engine_cfg);
    let mut revision = state.engine.valid_at(&home);
    if !d.allowed {
        return Ok(Decided {
            allowed: false,
            reason: d.reason,
            revision,
            break_glass: None,
        });
    }
    let target: Arc<AgencyEntry> = if *agency == caller.agency {
        home.clone()
    } else {
        state.engine.entry(agency, false, at_least).await?
    };
    revision = revision.min(state.engine.valid_at(&target));
    if let Some(reason) = abac(
        state, caller, &home, &target, permission, agency, account, resource,
    ) {
        // Platform staff in an agency, on agency or policy management: only the platform's
        // own policies (asked apart) may refuse them, never the agency's.
        let glass = caller.is_platform
            && *agency != caller.agency
            && state
                .catalog
                .permission_def(permission)
                .is_some_and(|def| BREAK_GLASS_PERMISSIONS.contains(&def.name.as_str()))
            && match state.engine.platform_policies() {
                PlatformPolicies::None => true,
                PlatformPolicies::Set(platform) => evaluate_policies(
                    state, caller, &home, platform, permission, agency, account, resource,
                )
                .is_none(),
                PlatformPolicies::Broken => false,
            };
        if glass {
            return Ok(Decided {
                allowed: true,
                reason: d.reason,
                revision,
                break_glass: Some(reason),
            });
        }
        return Ok(Decided {
            allowed: false,
            reason,
            revision,
            break_glass: None,
        });
    }
    Ok(Decided {
        allowed: true,
        reason: d.reason,
        revision,
        break_glass: None,
    })
}

/// The Cedar step: `Some(reason)` if a policy denies what RBAC allowed.
#[allow(clippy::too_many_arguments)]
fn abac(
    state: &Services,
    caller: &Caller,
    home: &AgencyEntry,
    target: &AgencyEntry,
    permission: PermissionIndex,
    agency: &AgencyId,
    account: Option<&AccountId>,
    resource: &ResourceDesc,
) -> Option<Reason> {
    if target.policies_broken {
        return Some(Reason::PolicyError {
            errors: vec!["the agency's stored policies no longer compile".into()],
        });
    }
    let policies = target.policies.as_ref()?;
    evaluate_policies(
        state, caller, home, policies, permission, agency, account, resource,
    )
}

/// Evaluates `policies` for a check RBAC allowed: `Some(reason)` if they deny it.
#[allow(clippy::too_many_arguments)]
pub fn evaluate_policies(
    state: &Services,
    caller: &Caller,
    home: &AgencyEntry,
    policies: &tessera_core::abac::PolicySet,
    permission: PermissionIndex,
    agency: &AgencyId,
    account: Option<&AccountId>,
    resource: &ResourceDesc,
) -> Option<Reason> {
    let def = state.catalog.permission_def(permission)?;
    if !policies.applies(&def.name) {
        return None;
    }
    let roles = home.index.role_names(&caller.principal);
    // The schema makes `time`, `mfa` and `impersonating` required: fill what the caller left out
    // (no MFA and no impersonation are the safe assumptions).
    let mut context = resource.context.clone();
    context
        .entry("time")
        .or_insert_with(|| Value::from(state.clock.now() / 1000));
    context.entry("mfa").or_insert(Value::Bool(false));
    context
        .entry("impersonating")
        .or_insert(Value::Bool(caller.actor().is_some()));
    let req = AbacRequest {
        principal_type: match caller.principal {
            PrincipalId::User(_) => PrincipalKind::User,
            // An installation is a machine credential too.
            PrincipalId::Key(_) | PrincipalId::Installation(_) => PrincipalKind::ApiKey,
        },
        principal_id: caller.principal.as_str(),
        principal_agency: caller.agency.as_str(),
        principal_roles: &roles,
        action: &def.name,
        resource_type: &def.resource,
        resource_id: resource.id.as_deref(),
        resource_agency: agency.as_str(),
        resource_account: account.map(AccountId::as_str),
        resource_attributes: &resource.attributes,
        context: &context,
    };
    let out = policies.evaluate(&req);
    if out.allowed {
        None
    } else if !out.errors.is_empty() {
        Some(Reason::PolicyError { errors: out.errors })
    } else {
        Some(Reason::DeniedByPolicy {
            policies: out.determining,
        })
    }
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

/// Where a route takes its authorization target from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetFrom {
    /// `{agy}` (or the caller's own agency) and `{acc}` from the path: checked before the handler.
    Path,
    /// The account is in the body or the stored object: the gate checks the tenant, the
    /// handler calls `require_at`.
    Body,
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
    permission: Option<(PermissionIndex, &'static str)>,
    checked: bool,
    /// Request facts.
    pub meta: RequestMeta,
}

impl Authorized {
    /// For routes any authenticated caller may use: no permission, no tenant scope.
    pub fn for_caller(caller: Arc<Caller>, meta: RequestMeta) -> Self {
        Self {
            agency: caller.agency.clone(),
            caller,
            account: None,
            permission: None,
            checked: false,
            meta,
        }
    }

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

    /// Checks the route's permission at `account` (or the whole agency) and returns the scope.
    pub async fn require_at(
        &self,
        state: &Services,
        account: Option<&AccountId>,
    ) -> Result<TenantScope, ApiError> {
        let (ix, name) = self
            .permission
            .ok_or_else(|| ApiError::internal("route without a permission asked for one"))?;
        self.require(state, ix, name, account).await
    }

    /// Checks any permission at a target in this agency.
    pub async fn require(
        &self,
        state: &Services,
        ix: PermissionIndex,
        name: &str,
        account: Option<&AccountId>,
    ) -> Result<TenantScope, ApiError> {
        let d = decide(
            state,
            &self.caller,
            ix,
            &self.agency,
            account,
            &request_context(state, &self.meta),
            None,
        )
        .await?;
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
    pub async fn effective(
        &self,
        state: &Services,
        account: Option<&AccountId>,
    ) -> Result<PermissionSet, ApiError> {
        effective_of(state, &self.caller, &self.agency, account).await
    }

    /// Refuses a grant of permissions the caller does not hold (I2), naming them, and audits it.
    pub async fn deny_missing(
        &self,
        state: &Services,
        action: &str,
        missing: Vec<String>,
    ) -> ApiError {
        let message = format!(
            "you cannot grant permissions you do not hold: {}",
            missing.join(", ")
        );
        self.refuse_missing(state, action, None, missing, message)
            .await
    }

    /// Audits and answers a refusal (403) for lacking `missing` to do `action` on `target`.
    pub async fn refuse_missing(
        &self,
        state: &Services,
        action: &str,
        target: Option<&str>,
        missing: Vec<String>,
        message: String,
    ) -> ApiError {
        let detail =
            json!({ "missing_permissions": missing, "attempted": action, "target": target });
        let record = attribute(
            &self.caller,
            audit_record(
                state,
                &self.caller.principal,
                &self.meta,
                "authz.denied",
                Some(target.unwrap_or(self.agency.as_str())),
                Outcome::Denied,
                detail,
            ),
        );
        if let Err(e) = state.store.append_audit(&self.gate_scope(), &record).await {
            tracing::warn!(error = %e, "could not audit a denied request");
        }
        ApiError::forbidden(message).with_extra(json!({ "missing_permissions": missing }))
    }

    /// Refuses to change `target` (rotate, revoke or reset its secret, change its password,
    /// email or status, remove its bindings, delete it) when it holds any permission the caller
    /// lacks at the same place: the agency level and every account where either has a grant
    /// (I2). Otherwise the change hands the caller the target's power (a rotated key's new
    /// secret, a password the caller chose). Acting on oneself is always allowed. The refusal
    /// names the missing permissions and is audited.
    pub async fn require_dominates(
        &self,
        state: &Services,
        target: &Target,
        action: &str,
    ) -> Result<(), ApiError> {
        // Oneself, with a credential that is not narrowed (no scopes, no account, no
        // impersonation): nothing to gain. A narrowed credential (a token holding only
        // `users.write`) is compared like anyone else, or it could reset its own user's
        // password and sign in as the whole user.
        let unnarrowed = self.caller.cap.permissions.is_none()
            && self.caller.cap.account.is_none()
            && self.caller.own.is_none()
            && self.caller.actor().is_none();
        if target.principal == self.caller.principal && unnarrowed {
            return Ok(());
        }
        let entry = state
            .engine
            .entry(
                &self.agency,
                self.caller.is_platform && self.agency == self.caller.agency,
                None,
            )
            .await?;
        let mut places: Vec<Option<AccountId>> = vec![None];
        places.extend(
            entry
                .index
                .bound_accounts(&target.principal)
                .into_iter()
                .map(Some),
        );
        if let Some(acc) = &target.cap.account {
            places.push(Some(acc.clone()));
        }
        places.sort();
        places.dedup();
        let mut missing = PermissionSet::EMPTY;
        for place in &places {
            let held = Check {
                principal: &target.principal,
                home: &entry.index,
                own_grant: target
                    .own
                    .as_ref()
                    .map(|s| (s, target.cap.account.as_ref())),
                cap: &target.cap,
                permission: state.engine_cfg.cross_tenant,
                agency: &self.agency,
                account: place.as_ref(),
            };
            let Ok((held, _)) = index::effective(&held, state.engine_cfg) else {
                continue;
            };
            if held.is_empty() {
                continue;
            }
            let mut mine = effective_of(state, &self.caller, &self.agency, place.as_ref()).await?;
            // What the agency's policies forbid the caller here, the caller does not hold.
            if entry.policies_broken {
                mine = PermissionSet::EMPTY;
            } else if let Some(policies) = entry.policies.as_ref() {
                let home = if self.agency == self.caller.agency {
                    entry.clone()
                } else {
                    state
                        .engine
                        .entry(&self.caller.agency, self.caller.is_platform, None)
                        .await?
                };
                let ctx = request_context(state, &self.meta);
                let mut forbidden = PermissionSet::EMPTY;
                for ix in held.intersect(&mine).iter() {
                    let denied = evaluate_policies(
                        state,
                        &self.caller,
                        &home,
                        policies,
                        ix,
                        &self.agency,
                        place.as_ref(),
                        &ctx,
                    );
                    if denied.is_some() {
                        forbidden.insert(ix);
                    }
                }
                mine = mine.difference(&forbidden);
            }
            missing = missing.union(&held.difference(&mine));
        }
        if missing.is_empty() {
            return Ok(());
        }
        let names = state.catalog.permission_names(&missing);
        let message = format!(
            "`{}` holds permissions you do not, so you cannot change it: {}",
            target.principal,
            names.join(", ")
        );
        Err(self
            .refuse_missing(
                state,
                action,
                Some(target.principal.as_str()),
                names,
                message,
            )
            .await)
    }

    /// An audit record of an act by this caller.
    pub fn audit(
        &self,
        state: &Services,
        action: &str,
        target: Option<&str>,
        detail: serde_json::Value,
    ) -> AuditRecord {
        attribute(
            &self.caller,
            audit_record(
                state,
                &self.caller.principal,
                &self.meta,
                action,
                target,
                Outcome::Success,
                detail,
            ),
        )
    }
}

/// The permissions a caller may exercise at a target (RBAC and cap; policies only narrow).
pub async fn effective_of(
    state: &Services,
    caller: &Caller,
    agency: &AgencyId,
    account: Option<&AccountId>,
) -> Result<PermissionSet, ApiError> {
    let home = state
        .engine
        .entry(&caller.agency, caller.is_platform, None)
        .await?;
    // The permission is not read by `effective`; any index does.
    let c = caller.check(&home, state.engine_cfg.cross_tenant, agency, account);
    Ok(index::effective(&c, state.engine_cfg)
        .map(|(s, _)| s)
        .unwrap_or_default())
}

/// The context the server itself knows about a request (for policies on admin routes).
pub fn request_context(state: &Services, meta: &RequestMeta) -> ResourceDesc {
    let mut context = Map::new();
    if let Some(ip) = &meta.ip {
        context.insert("ip".into(), Value::String(ip.clone()));
    }
    context.insert("time".into(), Value::from(state.clock.now() / 1000));
    ResourceDesc {
        id: None,
        attributes: Map::new(),
        context,
    }
}

/// Builds an audit record of an act by `actor`.
pub fn audit_record(
    state: &Services,
    actor: &PrincipalId,
    meta: &RequestMeta,
    action: &str,
    target: Option<&str>,
    outcome: Outcome,
    detail: serde_json::Value,
) -> AuditRecord {
    audit_event(
        state,
        meta,
        actor.as_str(),
        None,
        action,
        target,
        outcome,
        detail,
    )
}

/// Builds an audit record with any actor (a client, `system`) and on-behalf-of.
#[allow(clippy::too_many_arguments)]
pub fn audit_event(
    state: &Services,
    meta: &RequestMeta,
    actor: &str,
    on_behalf_of: Option<&str>,
    action: &str,
    target: Option<&str>,
    outcome: Outcome,
    detail: serde_json::Value,
) -> AuditRecord {
    let now = state.clock.now();
    AuditRecord {
        id: EventId::generate_at(u64::try_from(now).unwrap_or(0), &mut rand::thread_rng()),
        at: now,
        actor: actor.to_owned(),
        on_behalf_of: on_behalf_of.map(str::to_owned),
        action: action.to_owned(),
        target: target.map(str::to_owned),
        outcome,
        request_id: meta.request_id.clone(),
        ip: meta.ip.clone(),
        user_agent: meta.user_agent.clone(),
        detail,
    }
}

/// Attributes a record to the impersonator when the caller acts under impersonation: the
/// impersonator is the actor, the impersonated user the one acted on behalf of (I5).
pub fn attribute(caller: &Caller, mut record: AuditRecord) -> AuditRecord {
    if let Some(actor) = caller.actor() {
        record.on_behalf_of = Some(std::mem::replace(&mut record.actor, actor.to_owned()));
    }
    record
}

/// Answers a denial (404 across tenants, 403 otherwise) and audits it.
pub async fn deny(
    state: &Services,
    caller: &Caller,
    agency: &AgencyId,
    account: Option<&AccountId>,
    permission: &str,
    reason: &Reason,
    meta: &RequestMeta,
) -> ApiError {
    let missing = json!({ "missing_permissions": [permission], "reason": reason.code() });
    let (chain, err) = match reason {
        Reason::OtherTenant => (caller.agency.clone(), ApiError::not_found()),
        Reason::OutsideCredentialScope => (
            agency.clone(),
            ApiError::forbidden(format!(
                "the credential's scopes do not include `{permission}`"
            ))
            .with_extra(missing),
        ),
        Reason::OutsideCredentialAccount => (
            agency.clone(),
            ApiError::forbidden("this credential is bound to another account").with_extra(missing),
        ),
        Reason::DeniedByPolicy { .. } | Reason::PolicyError { .. } => (
            agency.clone(),
            ApiError::forbidden(format!(
                "a policy of this agency forbids `{permission}` here"
            ))
            .with_extra(missing),
        ),
        _ => (
            agency.clone(),
            ApiError::forbidden(format!("the caller lacks `{permission}` here"))
                .with_extra(missing),
        ),
    };
    let detail = json!({
        "permission": permission,
        "reason": reason.code(),
        "agency": agency.as_str(),
        "account": account.map(AccountId::as_str),
    });
    let record = attribute(
        caller,
        audit_record(
            state,
            &caller.principal,
            meta,
            "authz.denied",
            Some(agency.as_str()),
            Outcome::Denied,
            detail,
        ),
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

/// Appends a successful act of `caller` to `agency`'s chain, with the agency as the target.
async fn audit_in(
    state: &Services,
    caller: &Caller,
    meta: &RequestMeta,
    agency: &AgencyId,
    action: &str,
    detail: Value,
) -> Result<(), ApiError> {
    let record = attribute(
        caller,
        audit_record(
            state,
            &caller.principal,
            meta,
            action,
            Some(agency.as_str()),
            Outcome::Success,
            detail,
        ),
    );
    state
        .store
        .append_audit(&TenantScope::authenticated(agency.clone()), &record)
        .await?;
    Ok(())
}

/// The gate in front of every `/v1` route.
pub async fn guard(State(g): State<GuardState>, request: Request, next: Next) -> Response {
    let method = request.method().clone();
    match check(&g, request).await {
        Ok((request, agency)) => {
            let resp = next.run(request).await;
            // This node's own writes take effect on its next check (other nodes: the feed).
            if resp.status().is_success() && method != Method::GET && method != Method::HEAD {
                g.app.engine.invalidate(&agency);
            }
            resp
        }
        Err(e) => e.into_response(),
    }
}

async fn check(g: &GuardState, request: Request) -> Result<(Request, AgencyId), ApiError> {
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
    if g.platform_only && !caller.is_platform {
        let own = caller.agency.clone();
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
    let agency = agency.unwrap_or_else(|| caller.agency.clone());
    let ctx = request_context(&g.app, &meta);
    let d = decide(
        &g.app,
        &caller,
        g.index,
        &agency,
        account.as_ref(),
        &ctx,
        None,
    )
    .await?;
    let denied = match g.target {
        TargetFrom::Path => !d.allowed,
        // The handler checks the body's account; here only the tenant gate applies.
        TargetFrom::Body => matches!(d.reason, Reason::OtherTenant),
    };
    if denied {
        return Err(deny(
            &g.app,
            &caller,
            &agency,
            account.as_ref(),
            g.permission,
            &d.reason,
            &meta,
        )
        .await);
    }
    if agency != caller.agency {
        // Platform staff acting in an agency: it must exist, or it is the same 404.
        g.app.store.get_agency(&agency).await?;
        if let Some(overridden) = &d.break_glass {
            // The agency's policies said no; platform staff went through anyway (I5).
            let detail = json!({
                "permission": g.permission, "method": parts.method.as_str(),
                "path": parts.uri.path(), "home_agency": caller.agency.as_str(),
                "overridden": overridden.code(), "policies": match overridden {
                    Reason::DeniedByPolicy { policies } => json!(policies),
                    _ => json!([]),
                },
            });
            audit_in(
                &g.app,
                &caller,
                &meta,
                &agency,
                "platform.break_glass",
                detail,
            )
            .await?;
        }
        // Their reads are recorded in the agency's own chain (their writes are audited by the
        // handlers), so an agency can see when platform staff looked at its data.
        if parts.method == Method::GET || parts.method == Method::HEAD {
            let path = parts.uri.path().to_owned();
            let detail = json!({ "permission": g.permission, "method": parts.method.as_str(), "path": path, "home_agency": caller.agency.as_str() });
            audit_in(
                &g.app,
                &caller,
                &meta,
                &agency,
                "platform.cross_tenant_read",
                detail,
            )
            .await?;
        }
    }
    if caller.actor().is_some() {
        // Every act under impersonation is recorded, reads included (I5).
        let detail = json!({ "permission": g.permission, "method": parts.method.as_str(), "path": parts.uri.path() });
        let record = attribute(
            &caller,
            audit_record(
                &g.app,
                &caller.principal,
                &meta,
                "impersonation.request",
                Some(agency.as_str()),
                Outcome::Success,
                detail,
            ),
        );
        g.app
            .audit
            .append(TenantScope::authenticated(agency.clone()), record)
            .await?;
    }
    parts.extensions.insert(Authorized {
        caller,
        agency: agency.clone(),
        account,
        permission: Some((g.index, g.permission)),
        checked: g.target == TargetFrom::Path,
        meta,
    });
    Ok((Request::from_parts(parts, body), agency))
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
