//! Audit records: who did what, to what, with which outcome, from which request. Acts under
//! impersonation are attributed to the impersonator, on behalf of the user (I5).

use tessera_core::{EventId, PrincipalId};
use tessera_store::{AuditRecord, Outcome};

use super::action::AuditAction;
use crate::caller::{Caller, RequestMeta};
use crate::services::Services;

/// Builds an audit record of an act by `actor`.
pub fn audit_record(
    state: &Services,
    actor: &PrincipalId,
    meta: &RequestMeta,
    action: AuditAction,
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
    action: AuditAction,
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
        action: action.into(),
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
