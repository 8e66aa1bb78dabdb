//! Compliance evidence (SOC 2): the access review, the credential inventory, the impersonation
//! report and a user's own impersonation history, as pages of rows (JSON, or CSV through
//! `http::csv`).
//!
//! INVARIANT (I5): every page read is audited (`compliance.report_read`, in the agency's
//! chain) before it is answered; a failed audit fails the read. INVARIANT (scale): a page holds
//! at most `limit` ≤ 200 rows, read with bounded, indexed queries (no query scans the agency's
//! whole audit chain or runs unbounded per row). INVARIANT (I1): every read uses the scope of
//! the agency the gate authorized.

pub mod access_review;
pub mod credentials;
pub mod impersonations;

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::json;
use tessera_core::time::serde_rfc3339;
use tessera_core::AgencyId;
use tessera_store::TenantScope;

use crate::audit::action::AuditAction;
use crate::error::ApiError;
use crate::gate::authorized::Authorized;
use crate::services::Services;

/// How a report page is answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `application/json` (the default).
    Json,
    /// `text/csv` (RFC 4180), asked with `Accept: text/csv`.
    Csv,
}

impl Format {
    /// The name recorded in the audit event.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Csv => "csv",
        }
    }
}

/// One page of a report.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ReportPage<T> {
    /// `access_review`, `credentials`, `impersonations` or `user_impersonations`.
    pub report: String,
    /// The agency reported on.
    pub agency: AgencyId,
    /// When the page was computed.
    #[serde(serialize_with = "serde_rfc3339::serialize")]
    #[schemars(with = "String")]
    pub generated_at: i64,
    /// The rows.
    pub items: Vec<T>,
    /// The cursor of the next page, or null on the last. A page may hold fewer than `limit`
    /// rows and still have a next one: follow the cursor until it is null.
    pub next_cursor: Option<String>,
}

/// A row that also renders as CSV: the header, and its cells in the same order.
pub trait CsvRow {
    /// The column names.
    fn header() -> &'static [&'static str];
    /// The cells, unescaped (`http::csv` quotes them and neutralises formulas).
    fn cells(&self) -> Vec<String>;
}

/// An RFC 3339 time for a CSV cell, or empty.
pub(crate) fn time_cell(ms: Option<i64>) -> String {
    ms.map(tessera_core::time::format_rfc3339)
        .unwrap_or_default()
}

/// `limit` rows at most (the list routes' bound, 1..=200).
pub(crate) fn bounded(limit: u32) -> u32 {
    limit.clamp(1, tessera_store::MAX_ACTORS as u32)
}

/// What one read of a report page records.
pub(crate) struct ReadFacts<'a> {
    pub report: &'a str,
    pub target: &'a str,
    pub format: Format,
    pub cursor: Option<&'a str>,
    pub items: usize,
    pub own: Option<bool>,
}

/// Audits one page read in the agency's chain, before the page is answered (I5).
pub(crate) async fn audit_read(
    s: &Services,
    auth: &Authorized,
    scope: &TenantScope,
    f: ReadFacts<'_>,
) -> Result<(), ApiError> {
    let mut detail = json!({
        "report": f.report,
        "format": f.format.as_str(),
        "cursor": f.cursor,
        "items": f.items,
    });
    if let (Some(own), Some(map)) = (f.own, detail.as_object_mut()) {
        map.insert("self".into(), own.into());
    }
    let record = auth.audit(s, AuditAction::ComplianceReportRead, Some(f.target), detail);
    s.store.append_audit(scope, &record).await?;
    Ok(())
}

/// A cursor `<section>:<inner>` of a report that walks several lists in turn.
pub(crate) fn split_cursor<'a>(
    cursor: Option<&'a str>,
    sections: &[&'static str],
) -> Result<(usize, Option<&'a str>), ApiError> {
    let bad = || ApiError::invalid("`cursor` is not a cursor this report returned");
    let Some(c) = cursor else {
        return Ok((0, None));
    };
    let (section, inner) = c.split_once(':').ok_or_else(bad)?;
    let ix = sections
        .iter()
        .position(|s| *s == section)
        .ok_or_else(bad)?;
    if inner.len() > 64 || !inner.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(bad());
    }
    Ok((ix, (!inner.is_empty()).then_some(inner)))
}

/// The cursor after a page of section `ix` whose own next cursor is `next`: the same section
/// again, the start of the next section, or none after the last.
pub(crate) fn next_cursor(
    ix: usize,
    next: Option<String>,
    sections: &[&'static str],
) -> Option<String> {
    match next {
        Some(n) => sections.get(ix).map(|s| format!("{s}:{n}")),
        None => sections.get(ix + 1).map(|s| format!("{s}:")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: &[&str] = &["users", "keys"];

    #[test]
    fn cursors_walk_the_sections_in_turn() {
        assert_eq!(split_cursor(None, S).unwrap(), (0, None));
        assert_eq!(split_cursor(Some("keys:"), S).unwrap(), (1, None));
        assert_eq!(
            split_cursor(Some("users:usr_01ARZ3NDEKTSV4RRFFQ69G5FAV"), S).unwrap(),
            (0, Some("usr_01ARZ3NDEKTSV4RRFFQ69G5FAV"))
        );
        assert_eq!(next_cursor(0, None, S).as_deref(), Some("keys:"));
        assert_eq!(
            next_cursor(0, Some("x".into()), S).as_deref(),
            Some("users:x")
        );
        assert_eq!(next_cursor(1, None, S), None);
    }

    #[test]
    fn foreign_cursors_are_refused() {
        for bad in [
            "",
            "users",
            "apps:",
            "users:a'b",
            "keys:a;b",
            &format!("users:{}", "a".repeat(65)),
        ] {
            assert!(split_cursor(Some(bad), S).is_err(), "{bad}");
        }
    }
}
