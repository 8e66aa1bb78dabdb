//! The impersonation report: who impersonated whom, when, why (the stated reason), with which
//! scopes and until when, and what they did under it; and one user's own view of the sessions
//! that touched them.
//!
//! A session is an `impersonation.start` event (granted or refused). Its acts are the events
//! whose actor is the impersonator and whose `on_behalf_of` is the user, after the start and
//! until the token's expiry (`impersonation.request` for every request, and the writes the
//! handlers recorded). Two sessions of the same pair that overlap in time share their acts.
//!
//! INVARIANT: a page holds at most `limit` sessions and each at most `ACTS_PER_SESSION` acts
//! (`acts_truncated` says when there were more), each read through an index
//! (`(agency_id, action, seq)`, `(agency_id, on_behalf_of, seq)`). INVARIANT (self view): a
//! user reads their own history only with their own credential, never under impersonation
//! and only when that credential's scopes carry `compliance.read` (the internal
//! `compliance.readonly` scope, so never a third-party app); anyone else needs
//! `compliance.read` on the agency, and is refused (403, audited) before the user's existence
//! is looked up.

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;
use tessera_core::time::serde_rfc3339;
use tessera_core::{PrincipalId, UserId};
use tessera_store::{AuditEvent, Outcome, PageRequest, TenantScope};

use super::{audit_read, bounded, time_cell, CsvRow, Format, ReadFacts, ReportPage};
use crate::error::ApiError;
use crate::gate::authorized::Authorized;
use crate::services::Services;

/// At most this many acts are listed per session.
pub const ACTS_PER_SESSION: u32 = 100;

/// One thing done under an impersonation.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ImpersonationAct {
    /// The event's place in the agency's chain.
    pub seq: i64,
    /// When.
    #[serde(serialize_with = "serde_rfc3339::serialize")]
    #[schemars(with = "String")]
    pub at: i64,
    /// The audit action (`impersonation.request`, `contact.update`, …).
    pub action: String,
    /// Its target, if any.
    pub target: Option<String>,
    /// `success` or `denied`.
    pub outcome: String,
    /// For a request: the method and path (`GET /v1/agencies/…`).
    pub request: Option<String>,
    /// For a request: the permission the route required.
    pub permission: Option<String>,
}

/// One impersonation session (or refused attempt).
#[derive(Debug, Serialize, JsonSchema)]
pub struct ImpersonationSession {
    /// The `impersonation.start` event's id (`evt_…`).
    pub event: String,
    /// Its place in the agency's chain.
    pub seq: i64,
    /// When it started (or was refused).
    #[serde(serialize_with = "serde_rfc3339::serialize")]
    #[schemars(with = "String")]
    pub started_at: i64,
    /// Who impersonated (`usr_…` or `key_…`).
    pub impersonator: String,
    /// Who was impersonated (`usr_…`).
    pub user: Option<String>,
    /// `success`, or `denied` for a refused attempt.
    pub outcome: String,
    /// The impersonator's stated reason.
    pub reason: Option<String>,
    /// Why it was refused (`not_permitted`, `more_privileged_target`), or null.
    pub refused_because: Option<String>,
    /// The token's scopes, space-separated.
    pub scope: Option<String>,
    /// The account the token was bound to, or null.
    pub account: Option<String>,
    /// The permissions the token carried.
    pub permissions: Vec<String>,
    /// When the token expired.
    #[serde(serialize_with = "serde_rfc3339::option::serialize")]
    #[schemars(with = "Option<String>")]
    pub expires_at: Option<i64>,
    /// The impersonator's address (null in a user's own view).
    pub ip: Option<String>,
    /// The request that started it.
    pub request_id: String,
    /// What was done under it, in order.
    pub acts: Vec<ImpersonationAct>,
    /// Whether more than `ACTS_PER_SESSION` acts were done (read the rest with
    /// `GET …/audit?actor=` from the last act's time).
    pub acts_truncated: bool,
}

impl CsvRow for ImpersonationSession {
    fn header() -> &'static [&'static str] {
        &[
            "event",
            "started_at",
            "impersonator",
            "user",
            "outcome",
            "reason",
            "refused_because",
            "scope",
            "account",
            "permissions",
            "expires_at",
            "ip",
            "request_id",
            "acts_count",
            "acts_truncated",
            "acts",
        ]
    }
    fn cells(&self) -> Vec<String> {
        vec![
            self.event.clone(),
            time_cell(Some(self.started_at)),
            self.impersonator.clone(),
            self.user.clone().unwrap_or_default(),
            self.outcome.clone(),
            self.reason.clone().unwrap_or_default(),
            self.refused_because.clone().unwrap_or_default(),
            self.scope.clone().unwrap_or_default(),
            self.account.clone().unwrap_or_default(),
            self.permissions.join(" "),
            time_cell(self.expires_at),
            self.ip.clone().unwrap_or_default(),
            self.request_id.clone(),
            self.acts.len().to_string(),
            self.acts_truncated.to_string(),
            // One line per act inside the cell (RFC 4180 quotes line breaks).
            self.acts
                .iter()
                .map(|a| {
                    format!(
                        "{} {} {} {}",
                        time_cell(Some(a.at)),
                        a.action,
                        a.outcome,
                        a.request
                            .clone()
                            .or_else(|| a.target.clone())
                            .unwrap_or_default()
                    )
                })
                .collect::<Vec<_>>()
                .join("\n"),
        ]
    }
}

fn text(detail: &Value, key: &str) -> Option<String> {
    detail.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn act(e: AuditEvent) -> ImpersonationAct {
    let request = match (text(&e.detail, "method"), text(&e.detail, "path")) {
        (Some(m), Some(p)) => Some(format!("{m} {p}")),
        _ => None,
    };
    ImpersonationAct {
        seq: e.seq,
        at: e.at,
        permission: text(&e.detail, "permission"),
        action: e.action,
        target: e.target,
        outcome: e.outcome.as_str().to_owned(),
        request,
    }
}

/// A session and its acts.
async fn session(
    s: &Services,
    scope: &TenantScope,
    e: AuditEvent,
    own_view: bool,
) -> Result<ImpersonationSession, ApiError> {
    let d = &e.detail;
    // `expires_at` is the token's `exp` (epoch seconds).
    let expires_at = d
        .get("expires_at")
        .and_then(Value::as_i64)
        .map(|secs| secs.saturating_mul(1000));
    let granted = e.outcome == Outcome::Success;
    let (acts, acts_truncated) = match (&e.on_behalf_of, expires_at) {
        (Some(user), Some(until)) if granted => {
            let mut acts = s
                .store
                .impersonation_acts(scope, &e.actor, user, e.seq, until, ACTS_PER_SESSION + 1)
                .await?;
            let more = acts.len() > ACTS_PER_SESSION as usize;
            acts.truncate(ACTS_PER_SESSION as usize);
            (acts.into_iter().map(act).collect(), more)
        }
        _ => (Vec::new(), false),
    };
    Ok(ImpersonationSession {
        event: e.id.to_string(),
        seq: e.seq,
        started_at: e.at,
        outcome: e.outcome.as_str().to_owned(),
        reason: text(d, "reason"),
        refused_because: text(d, "why"),
        scope: text(d, "scope"),
        account: text(d, "account"),
        permissions: d
            .get("permissions")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default(),
        expires_at,
        ip: if own_view { None } else { e.ip.clone() },
        request_id: e.request_id.clone(),
        impersonator: e.actor,
        user: e.on_behalf_of,
        acts,
        acts_truncated,
    })
}

async fn sessions(
    s: &Services,
    scope: &TenantScope,
    user: Option<&str>,
    cursor: Option<&str>,
    limit: u32,
    own_view: bool,
) -> Result<(Vec<ImpersonationSession>, Option<String>), ApiError> {
    if cursor.is_some_and(|c| c.len() > 19 || c.parse::<i64>().is_err()) {
        return Err(ApiError::invalid(
            "`cursor` is not a cursor this report returned",
        ));
    }
    let page = s
        .store
        .impersonation_starts(
            scope,
            user,
            &PageRequest {
                limit: bounded(limit),
                cursor: cursor.map(str::to_owned),
            },
        )
        .await?;
    let mut out = Vec::with_capacity(page.items.len());
    for e in page.items {
        out.push(session(s, scope, e, own_view).await?);
    }
    Ok((out, page.next_cursor))
}

/// A page of the agency's impersonation sessions, oldest first. Route: `compliance.read` on
/// the agency.
pub async fn page(
    s: &Services,
    auth: &Authorized,
    cursor: Option<&str>,
    limit: u32,
    format: Format,
) -> Result<ReportPage<ImpersonationSession>, ApiError> {
    let scope = auth.scope()?;
    let (items, next_cursor) = sessions(s, &scope, None, cursor, limit, false).await?;
    let out = ReportPage {
        report: "impersonations".into(),
        agency: auth.agency.clone(),
        generated_at: s.clock.now(),
        items,
        next_cursor,
    };
    audit_read(
        s,
        auth,
        &scope,
        ReadFacts {
            report: "impersonations",
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

/// Whether the caller is `user` themself, with their own credential (not an impersonation)
/// whose scopes carry `compliance.read`.
fn is_self(s: &Services, auth: &Authorized, user: &UserId) -> bool {
    let c = &auth.caller;
    let carries = s.catalog.permission("compliance.read").is_some_and(|ix| {
        c.cap
            .permissions
            .as_ref()
            .is_none_or(|set| set.contains(ix))
    });
    c.principal == PrincipalId::User(user.clone())
        && c.agency == auth.agency
        && c.actor().is_none()
        && carries
}

/// A page of the sessions that impersonated `user`, oldest first. Route: `compliance.read`
/// (tenant only at the gate); further: the user themself (`is_self`), or `compliance.read` on
/// the agency, checked here before the user is looked up; a user of no agency of the
/// caller's is 404.
pub async fn of_user(
    s: &Services,
    auth: &Authorized,
    user: &UserId,
    cursor: Option<&str>,
    limit: u32,
    format: Format,
) -> Result<ReportPage<ImpersonationSession>, ApiError> {
    let own = is_self(s, auth, user);
    let scope = if own {
        auth.gate_scope()
    } else {
        auth.require_at(s, None).await?
    };
    s.store.get_user(&scope, user).await?;
    let (items, next_cursor) = sessions(s, &scope, Some(user.as_str()), cursor, limit, own).await?;
    let out = ReportPage {
        report: "user_impersonations".into(),
        agency: auth.agency.clone(),
        generated_at: s.clock.now(),
        items,
        next_cursor,
    };
    audit_read(
        s,
        auth,
        &scope,
        ReadFacts {
            report: "user_impersonations",
            target: user.as_str(),
            format,
            cursor,
            items: out.items.len(),
            own: Some(own),
        },
    )
    .await?;
    Ok(out)
}
