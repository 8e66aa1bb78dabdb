//! Who acts in a use case that both a route and the command line run: a caller the gate let
//! through (`Authorized`), or the operator at the console (`Operator`, break-glass).
//! INVARIANT: an operator acts only in an agency that exists; every write by either is audited
//! in that agency's chain, the operator's marked `break_glass` with its reason.

use serde_json::{json, Value};
use tessera_core::{AgencyId, EventId};
use tessera_store::{AuditRecord, Outcome, Store, TenantScope};

use crate::audit::action::AuditAction;
use crate::audit::record::attribute;
use crate::clock::Clock;
use crate::error::ApiError;
use crate::gate::authorized::Authorized;

/// The operator at the console: the authority over the database, as with the database itself.
#[derive(Clone, Debug)]
pub struct Operator {
    /// Why, for the audit trail.
    pub reason: Option<String>,
    /// The command, for the audit trail (`tessera policies delete`).
    pub via: &'static str,
    /// The agency's scope: the console holds the database's own mint.
    scope: TenantScope,
}

impl Operator {
    /// The operator acting in `agency` through the command `via`; 404 if there is no such agency.
    pub async fn in_agency(
        store: &dyn Store,
        admission: &crate::gate::admission::Admission,
        agency: AgencyId,
        via: &'static str,
        reason: Option<String>,
    ) -> Result<Self, ApiError> {
        store.get_agency(&agency).await?;
        Ok(Self {
            scope: admission.admit(agency),
            reason,
            via,
        })
    }
}

/// Who acts.
#[derive(Clone, Copy, Debug)]
pub enum Actor<'a> {
    /// A caller the gate let through at the route's permission.
    Caller(&'a Authorized),
    /// The operator at the console.
    Operator(&'a Operator),
}

impl Actor<'_> {
    /// The tenant scope acted in.
    pub fn scope(&self) -> Result<TenantScope, ApiError> {
        match self {
            Actor::Caller(auth) => Ok(auth.scope()?),
            Actor::Operator(op) => Ok(op.scope.clone()),
        }
    }

    /// An audit record of a successful act: the caller's as `Authorized::audit` builds it
    /// (attributed to an impersonator, I5); the operator's as `operator:cli`, marked break-glass.
    pub fn audit(
        &self,
        clock: &dyn Clock,
        action: AuditAction,
        target: Option<&str>,
        detail: Value,
    ) -> AuditRecord {
        let at = clock.now();
        let id = EventId::generate_at(u64::try_from(at).unwrap_or(0), &mut rand::thread_rng());
        match self {
            Actor::Caller(auth) => auth.seal(attribute(
                &auth.caller,
                AuditRecord {
                    id,
                    at,
                    actor: auth.caller.principal.as_str().to_owned(),
                    on_behalf_of: None,
                    action: action.into(),
                    target: target.map(str::to_owned),
                    outcome: Outcome::Success,
                    request_id: auth.meta.request_id.clone(),
                    ip: auth.meta.ip.clone(),
                    user_agent: auth.meta.user_agent.clone(),
                    detail,
                },
            )),
            Actor::Operator(op) => {
                let mut detail = match detail {
                    Value::Object(m) => m,
                    _ => serde_json::Map::new(),
                };
                detail.insert("break_glass".into(), json!(true));
                detail.insert("via".into(), json!(op.via));
                detail.insert("reason".into(), json!(op.reason));
                AuditRecord {
                    id,
                    at,
                    actor: "operator:cli".into(),
                    on_behalf_of: None,
                    action: action.into(),
                    target: target.map(str::to_owned),
                    outcome: Outcome::Success,
                    request_id: String::new(),
                    ip: None,
                    user_agent: None,
                    detail: Value::Object(detail),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    #[tokio::test]
    async fn an_operator_acts_in_its_agency_and_is_audited_as_break_glass() {
        let (connected, _dir) = tessera_store::testing::sqlite_store().await;
        let admission = crate::gate::admission::Admission::new(connected.mint);
        let agency = AgencyId::generate();
        let op = Operator {
            scope: admission.admit(agency),
            reason: Some("owner locked out".into()),
            via: "tessera policies delete",
        };
        let actor = Actor::Operator(&op);
        assert!(actor.scope().is_ok());
        let r = actor.audit(
            &ManualClock::new(1_800_000_000_000),
            AuditAction::PolicyDelete,
            Some("pol_x"),
            json!({ "kept": 1 }),
        );
        assert_eq!(
            (r.actor.as_str(), r.at),
            ("operator:cli", 1_800_000_000_000)
        );
        assert_eq!(
            (r.action.as_str(), r.target.as_deref()),
            ("policy.delete", Some("pol_x"))
        );
        assert_eq!(
            r.detail,
            json!({ "kept": 1, "break_glass": true, "via": "tessera policies delete", "reason": "owner locked out" })
        );
        assert!(r.on_behalf_of.is_none() && r.request_id.is_empty() && r.ip.is_none());
    }
}
