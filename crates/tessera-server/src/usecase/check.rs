//! The check API: may a principal (default: the caller) exercise a permission on a resource,
//! one question or a batch at one revision. The same engine answers that guards every route.
//! Anyone may ask about themselves; about another principal only with `bindings.read` where
//! the question is asked (`subject::resolve`). Unknown permissions and resource types deny (I3).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tessera_core::{AccountId, AgencyId, PermissionIndex, PrincipalId, Reason};

use super::subject;
use crate::caller::Caller;
use crate::error::{ApiError, ErrorCode};
use crate::gate::authorized::Authorized;
use crate::gate::decide::{decide, ResourceDesc};
use crate::services::Services;

/// The most checks one batch may hold.
pub const MAX_BATCH: usize = 1000;

/// Deserialises an optional whole number that JSON may spell `17` or `17.0` (both are
/// integers to JSON Schema); a fraction or an out-of-range value is an error.
fn de_opt_whole<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    match Option::<serde_json::Number>::deserialize(d)? {
        None => Ok(None),
        Some(n) => {
            if let Some(i) = n.as_i64() {
                return Ok(Some(i));
            }
            match n.as_f64() {
                Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(Some(f as i64)),
                _ => Err(serde::de::Error::custom(format!(
                    "`{n}` is not a whole number in range"
                ))),
            }
        }
    }
}

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
    #[serde(default, deserialize_with = "de_opt_whole")]
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
    #[serde(default, deserialize_with = "de_opt_whole")]
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

async fn run(
    s: &Services,
    auth: &Authorized,
    req: &CheckRequest,
    at_least: Option<i64>,
) -> Result<CheckResponse, ApiError> {
    let r = &req.resource;
    let subject = subject::resolve(
        s,
        auth,
        req.principal.as_ref(),
        &r.agency,
        r.account.as_ref(),
        at_least,
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
    if let (Some(own), Some(key)) = (&subject.own, subject.key()) {
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

/// One check. Route: any valid credential. Further: about another principal, `bindings.read`
/// where it is asked (`subject::resolve`).
pub async fn check(
    s: &Services,
    auth: &Authorized,
    req: &CheckRequest,
) -> Result<CheckResponse, ApiError> {
    run(s, auth, req, req.at_least_revision).await
}

/// Up to `MAX_BATCH` checks at one revision; a check the caller may not ask answers
/// `not_found` or `forbidden` in its place. Route: any valid credential; each check as `check`.
pub async fn batch(
    s: &Services,
    auth: &Authorized,
    req: &BatchRequest,
) -> Result<BatchResponse, ApiError> {
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
        let r = match run(s, auth, c, req.at_least_revision).await {
            Ok(r) => r,
            Err(e) if e.code == ErrorCode::NotFound => denial("not_found", s.engine.applied()),
            Err(e) if e.code == ErrorCode::Forbidden => denial("forbidden", s.engine.applied()),
            Err(e) => return Err(e),
        };
        results.push(r);
    }
    let revision = results
        .iter()
        .map(|r| r.revision)
        .min()
        .unwrap_or_else(|| s.engine.applied());
    Ok(BatchResponse { results, revision })
}
