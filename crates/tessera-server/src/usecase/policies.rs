//! Cedar policies of an agency, written through the API and listed or deleted by the operator
//! offline (break-glass). Each policy is validated in strict mode against the schema generated
//! from the catalog; an agency holds a bounded number and size. Policies only narrow what roles
//! grant (forbid, conditional permit): they can never grant more.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;
use tessera_core::abac::PolicySet;
use tessera_core::PolicyId;
use tessera_store::{Page, PageRequest, Policy, Store};

use super::actor::Actor;
use crate::audit::action::AuditAction;
use crate::clock::Clock;
use crate::error::{ApiError, ErrorCode};
use crate::gate::authorized::Authorized;
use crate::services::Services;

/// The largest policy text accepted, in bytes.
pub const MAX_POLICY_BYTES: usize = 32 * 1024;
/// The most policy records an agency may hold: every one is compiled when the agency's index
/// loads and may be evaluated on its checks.
pub const MAX_AGENCY_POLICIES: usize = 100;
/// The most Cedar text an agency may hold, all records together, in bytes.
pub const MAX_AGENCY_POLICY_BYTES: usize = 256 * 1024;

/// `POST /v1/agencies/{agy}/policies`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePolicy {
    /// One or more Cedar policies (`forbid`/`permit`), using the `Tessera` schema.
    #[schemars(extend("minLength" = 1, "maxLength" = 8192, "pattern" = super::validate::NO_NUL_PATTERN))]
    pub cedar: String,
    /// What the policy is for.
    #[serde(default)]
    #[schemars(extend("pattern" = super::validate::NO_NUL_PATTERN))]
    pub description: String,
    /// Write the policy even though it forbids its own author `policies.write` (the author
    /// could then no longer change or remove it). Refused (409 `conflict`) without this.
    #[serde(default)]
    pub allow_self_lockout: bool,
}

/// Refuses a policy that would forbid its own author `policies.write` in the agency, unless
/// the request says `allow_self_lockout`: an agency should not lock itself out by mistake.
/// Platform staff acting in the agency are never subject to its policies on this permission.
async fn refuse_self_lockout(
    s: &Services,
    auth: &Authorized,
    id: &PolicyId,
    cedar: &str,
) -> Result<(), ApiError> {
    if auth.caller.is_platform && auth.agency != auth.caller.agency {
        return Ok(());
    }
    let invalid = |d: Vec<tessera_core::abac::PolicyDiagnostic>| {
        ApiError::invalid(format!(
            "invalid policy: {}",
            d.first().map(|d| d.message.clone()).unwrap_or_default()
        ))
    };
    let added = PolicySet::compile(s.engine.schema(), &[(id.to_string(), cedar.to_owned())])
        .map_err(invalid)?;
    let home = s
        .engine
        .entry(&auth.agency, auth.caller.is_platform, None)
        .await?;
    let combined = match &home.policies {
        Some(existing) => PolicySet::merge(existing, &added).map_err(ApiError::internal)?,
        None => added,
    };
    let write = s
        .catalog
        .permission("policies.write")
        .ok_or_else(|| ApiError::internal("the catalog lacks `policies.write`"))?;
    // Not only now and from here: a condition on the time (`when { context.time > … }`) or on
    // the address would lock the author out later, or from elsewhere. The policy is tried at
    // times up to ten years ahead, and without the address.
    let here = crate::gate::decide::request_context(s, &auth.meta);
    let now = s.clock.now() / 1000;
    let mut contexts = Vec::new();
    for ahead in [
        0,
        3_600,
        86_400,
        7 * 86_400,
        30 * 86_400,
        365 * 86_400,
        3_650 * 86_400,
    ] {
        let mut c = here.clone();
        c.context
            .insert("time".into(), serde_json::Value::from(now + ahead));
        contexts.push(c);
    }
    if here.context.contains_key("ip") {
        let mut c = here.clone();
        c.context.remove("ip");
        contexts.push(c);
    }
    let denied = contexts.iter().find_map(|ctx| {
        crate::gate::decide::evaluate_policies(
            s,
            &auth.caller,
            &home,
            &combined,
            write,
            &auth.agency,
            None,
            ctx,
        )
    });
    match denied {
        None => Ok(()),
        Some(reason) => Err(ApiError::new(
            ErrorCode::Conflict,
            "this policy forbids you `policies.write` in this agency, now, later or from another address: you could no longer change or remove it; send `allow_self_lockout: true` if that is intended",
        )
        .with_extra(json!({ "self_lockout": true, "reason": reason.code() }))),
    }
}

/// Adds Cedar policies. Route: `policies.write` on the agency. Further: the text validates
/// against the catalog's schema (400 with diagnostics), the agency's quota holds (409
/// `policy_quota`), and the policy does not lock its author out unless `allow_self_lockout`.
pub async fn create(
    s: &Services,
    auth: &Authorized,
    input: CreatePolicy,
) -> Result<Policy, ApiError> {
    let scope = auth.scope()?;
    if input.cedar.len() > MAX_POLICY_BYTES {
        return Err(ApiError::invalid(format!(
            "`cedar` exceeds {MAX_POLICY_BYTES} bytes"
        )));
    }
    let count = tessera_core::abac::validate_policies(s.engine.schema(), &input.cedar).map_err(
        |diagnostics| {
            let first = diagnostics
                .first()
                .map(|d| d.message.clone())
                .unwrap_or_default();
            ApiError::invalid(format!("invalid policy: {first}"))
                .with_extra(json!({ "diagnostics": diagnostics }))
        },
    )?;
    // Bounded per agency, so loading its index (and so its first check) stays cheap.
    let (mut existing, mut bytes) = (0usize, input.cedar.len());
    let mut page = PageRequest {
        limit: 200,
        cursor: None,
    };
    loop {
        let p = s.store.list_policies(&scope, &page).await?;
        existing += p.items.len();
        bytes += p.items.iter().map(|p| p.cedar.len()).sum::<usize>();
        match p.next_cursor {
            Some(c) => page.cursor = Some(c),
            None => break,
        }
    }
    if existing >= MAX_AGENCY_POLICIES || bytes > MAX_AGENCY_POLICY_BYTES {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!("an agency holds at most {MAX_AGENCY_POLICIES} policies and {MAX_AGENCY_POLICY_BYTES} bytes of Cedar; it has {existing} ({bytes} bytes with this one): merge or delete some"),
        )
        .with_extra(json!({ "constraint": "policy_quota" })));
    }
    let now = s.clock.now();
    let id = PolicyId::generate_at(u64::try_from(now).unwrap_or(0), &mut rand::thread_rng());
    if !input.allow_self_lockout {
        refuse_self_lockout(s, auth, &id, &input.cedar).await?;
    }
    let policy = Policy {
        id,
        agency_id: auth.agency.clone(),
        description: input.description.trim().chars().take(1000).collect(),
        cedar: input.cedar,
        created_by: auth.caller.principal.to_string(),
        created_at: now,
    };
    let audit = auth.audit(
        s,
        AuditAction::PolicyCreate,
        Some(policy.id.as_str()),
        json!({ "policies": count, "cedar": policy.cedar, "allow_self_lockout": input.allow_self_lockout }),
    );
    s.store.create_policy(&scope, &policy, &audit).await?;
    Ok(policy)
}

/// A page of the agency's policies. Route: `policies.read` on the agency; the operator
/// (`tessera policies list`) lists them offline.
pub async fn list(
    store: &dyn Store,
    actor: Actor<'_>,
    page: &PageRequest,
) -> Result<Page<Policy>, ApiError> {
    Ok(store.list_policies(&actor.scope()?, page).await?)
}

/// One policy. Route: `policies.read` on the agency.
pub async fn get(store: &dyn Store, auth: &Authorized, id: &PolicyId) -> Result<Policy, ApiError> {
    Ok(store.get_policy(&auth.scope()?, id).await?)
}

/// Deletes a policy (404 if the agency has none such). Route: `policies.write` on the agency;
/// the operator (`tessera policies delete`) deletes offline, the way back in when a policy
/// locked everyone out, audited in the agency as break-glass with its reason.
pub async fn remove(
    store: &dyn Store,
    clock: &dyn Clock,
    actor: Actor<'_>,
    id: &PolicyId,
) -> Result<(), ApiError> {
    let audit = actor.audit(
        clock,
        AuditAction::PolicyDelete,
        Some(id.as_str()),
        json!({}),
    );
    store
        .delete_policy(&actor.scope()?, id, clock.now(), &audit)
        .await?;
    Ok(())
}
