//! An agency's rate-limit overrides: `GET` (`agencies.read` on the agency: its admins read
//! their own) and `PUT` (`agencies.write`, platform level only: an agency never raises its
//! own quota). The answer shows the plan, the explicit overrides and the effective quota of
//! every class.
//! INVARIANT: a stored override names a known plan and known classes, with `limit ≥ 1` and
//! `1 ≤ period_seconds ≤ 86400`; every write is audited and reaches every node through the
//! change log.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tessera_store::{AgencyLimitsRecord, KeyRateLimit};

use crate::audit::action::AuditAction;
use crate::error::ApiError;
use crate::gate::authorized::Authorized;
use crate::ratelimit::plans::{effective, from_record};
use crate::ratelimit::{Class, Quota};
use crate::services::Services;

/// `PUT /v1/agencies/{agy}/limits`: the whole set of overrides (replaces the previous one).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PutLimits {
    /// A plan from the configuration (shipped: `free`, `standard`, `enterprise`), or null.
    pub plan: Option<String>,
    /// Explicit aggregate quotas per class (`token`, `introspect`, `check`, `read`, `write`,
    /// `signin`), over the plan's.
    #[serde(default)]
    pub overrides: BTreeMap<String, KeyRateLimit>,
    /// With `period_seconds`: one quota for each API class at once (`token`, `introspect`,
    /// `check`, `read`, `write`); an explicit override of a class wins over it.
    pub limit: Option<u32>,
    /// With `limit`.
    pub period_seconds: Option<u32>,
}

/// An agency's limits.
#[derive(Debug, Serialize, JsonSchema)]
pub struct AgencyLimitsView {
    /// The plan, if any.
    pub plan: Option<String>,
    /// The explicit per-class quotas.
    pub overrides: BTreeMap<String, KeyRateLimit>,
    /// The agency's aggregate quota per class now in force (plan, override or configured
    /// default; a class without one is absent: not limited per agency).
    pub effective: BTreeMap<String, KeyRateLimit>,
}

fn view(s: &Services, rec: Option<&AgencyLimitsRecord>) -> AgencyLimitsView {
    let limits = from_record(rec);
    let effective = Class::ALL
        .into_iter()
        .filter_map(|c| {
            effective(&s.limiter.settings, Some(&limits), c).map(|q| {
                (
                    c.name().to_owned(),
                    KeyRateLimit {
                        limit: q.limit,
                        period_seconds: q.period_seconds,
                    },
                )
            })
        })
        .collect();
    AgencyLimitsView {
        plan: limits.plan.clone(),
        overrides: limits
            .overrides
            .iter()
            .map(|(c, q)| {
                (
                    c.name().to_owned(),
                    KeyRateLimit {
                        limit: q.limit,
                        period_seconds: q.period_seconds,
                    },
                )
            })
            .collect(),
        effective,
    }
}

/// The agency's limits. Route: `agencies.read` on the agency.
pub async fn get(s: &Services, auth: &Authorized) -> Result<AgencyLimitsView, ApiError> {
    let scope = auth.scope()?;
    let rec = s.store.get_agency_limits(&scope).await?;
    Ok(view(s, rec.as_ref()))
}

/// Sets the agency's limits. Route: `agencies.write` (platform).
pub async fn put(
    s: &Services,
    auth: &Authorized,
    input: PutLimits,
) -> Result<AgencyLimitsView, ApiError> {
    let scope = auth.scope()?;
    if let Some(p) = &input.plan {
        if !s.limiter.settings.plans.contains_key(p) {
            let known: Vec<&String> = s.limiter.settings.plans.keys().collect();
            return Err(ApiError::invalid(format!(
                "no plan `{}`",
                p.chars().take(64).collect::<String>()
            ))
            .with_extra(json!({ "plans": known })));
        }
    }
    let mut overrides = BTreeMap::new();
    for (class, q) in &input.overrides {
        let Some(found) = Class::from_name(class) else {
            let known: Vec<&str> = Class::ALL.iter().map(|c| c.name()).collect();
            return Err(ApiError::invalid(format!(
                "no class `{}`",
                class.chars().take(64).collect::<String>()
            ))
            .with_extra(json!({ "classes": known })));
        };
        if Quota::new(q.limit, q.period_seconds).is_none() {
            return Err(ApiError::invalid(format!(
                "`overrides.{class}` needs `limit` ≥ 1 and `period_seconds` 1 to 86400"
            )));
        }
        overrides.insert(found.name().to_owned(), *q);
    }
    match (input.limit, input.period_seconds) {
        (None, None) => {}
        (Some(limit), Some(period_seconds)) if Quota::new(limit, period_seconds).is_some() => {
            for c in Class::ALL.into_iter().filter(|c| *c != Class::Signin) {
                overrides
                    .entry(c.name().to_owned())
                    .or_insert(KeyRateLimit {
                        limit,
                        period_seconds,
                    });
            }
        }
        _ => return Err(ApiError::invalid(
            "`limit` and `period_seconds` go together: `limit` ≥ 1 and `period_seconds` 1 to 86400",
        )),
    }
    let rec = AgencyLimitsRecord {
        plan: input.plan,
        overrides,
        updated_by: auth.caller.principal.to_string(),
        updated_at: s.clock.now(),
    };
    let audit = auth.audit(
        s,
        AuditAction::AgencyLimitsUpdate,
        Some(auth.agency.as_str()),
        json!({ "plan": rec.plan, "overrides": rec.overrides }),
    );
    s.store.put_agency_limits(&scope, &rec, &audit).await?;
    // This node at once; the others through the change log.
    s.engine.invalidate(&auth.agency);
    Ok(view(s, Some(&rec)))
}
