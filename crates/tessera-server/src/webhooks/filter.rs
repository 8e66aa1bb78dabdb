//! A webhook's event filter: exact action names (`api_key.create`), a group (`api_key.*`) or
//! everything (`*`), checked against the actions the server emits.
//!
//! INVARIANT: a stored filter names only known actions and groups (an unknown one is refused
//! with `unknown_event`), so it cannot silently match nothing; it is sorted and deduplicated.

use serde_json::json;

use crate::audit::action::AuditAction;
use crate::error::{ApiError, ErrorCode};

/// The most entries in one filter.
pub const MAX_ENTRIES: usize = 100;
/// The longest entry, in bytes.
pub const MAX_ENTRY_LEN: usize = 100;

/// Checks a filter; returns it sorted and deduplicated.
pub fn validate(events: &[String]) -> Result<Vec<String>, ApiError> {
    if events.is_empty() {
        return Err(ApiError::invalid(
            "`events` must name at least one action, group (`api_key.*`) or `*`",
        ));
    }
    if events.len() > MAX_ENTRIES {
        return Err(ApiError::invalid(format!(
            "`events` lists at most {MAX_ENTRIES} entries"
        )));
    }
    let mut unknown = Vec::new();
    for e in events {
        if e.len() > MAX_ENTRY_LEN {
            return Err(ApiError::invalid(format!(
                "an `events` entry is at most {MAX_ENTRY_LEN} bytes"
            )));
        }
        if !known(e) {
            unknown.push(e.clone());
        }
    }
    if !unknown.is_empty() {
        return Err(ApiError::new(
            ErrorCode::UnknownEvent,
            format!(
                "unknown events: {} (use an action of docs/AUDIT.md, a group such as `api_key.*`, or `*`)",
                unknown.join(", ")
            ),
        )
        .with_extra(json!({ "unknown_events": unknown })));
    }
    let mut out = events.to_vec();
    out.sort();
    out.dedup();
    Ok(out)
}

/// Whether an entry names an action, a group of actions, or everything.
fn known(entry: &str) -> bool {
    if entry == "*" {
        return true;
    }
    if let Some(group) = entry.strip_suffix(".*") {
        return AuditAction::ALL.iter().any(|a| a.group() == group);
    }
    AuditAction::parse(entry).is_some()
}

/// Whether `action` passes the (validated) filter.
pub fn matches(filter: &[String], action: &str) -> bool {
    filter.iter().any(|f| {
        f == "*"
            || f == action
            || f.strip_suffix(".*")
                .is_some_and(|group| action.split_once('.').is_some_and(|(g, _)| g == group))
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn v(list: &[&str]) -> Result<Vec<String>, ApiError> {
        validate(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn known_names_groups_and_star_pass() {
        assert_eq!(
            v(&["api_key.*", "*", "user.delete", "*"]).unwrap(),
            vec!["*", "api_key.*", "user.delete"]
        );
        for a in AuditAction::ALL {
            assert!(v(&[a.as_str()]).is_ok(), "{a}");
            assert!(v(&[&format!("{}.*", a.group())]).is_ok(), "{a}");
        }
    }

    #[test]
    fn unknown_names_are_refused_with_their_code() {
        for bad in [
            "api_key.explode",
            "nothing.*",
            "api_key*",
            "**",
            "",
            "*.create",
            "API_KEY.CREATE",
        ] {
            let e = v(&[bad]).unwrap_err();
            assert_eq!(e.code, ErrorCode::UnknownEvent, "{bad}");
        }
        assert_eq!(v(&[]).unwrap_err().code, ErrorCode::InvalidRequest);
        let many: Vec<String> = (0..=MAX_ENTRIES).map(|_| "*".to_owned()).collect();
        assert_eq!(validate(&many).unwrap_err().code, ErrorCode::InvalidRequest);
    }

    #[test]
    fn matching() {
        let f = v(&["api_key.*", "user.delete"]).unwrap();
        assert!(matches(&f, "api_key.create"));
        assert!(matches(&f, "api_key.revoke"));
        assert!(matches(&f, "user.delete"));
        assert!(!matches(&f, "user.create"));
        assert!(!matches(&f, "api_keyx.create"));
        assert!(matches(&["*".to_owned()], "token.issue"));
    }
}
