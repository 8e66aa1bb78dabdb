//! The IETF rate-limit header fields (draft-ietf-httpapi-ratelimit-headers-11):
//! `RateLimit-Policy: "<name>";q=<limit>;w=<window>` and `RateLimit: "<name>";r=<remaining>;t=<reset>`,
//! structured-field lists with one member: the tightest policy of the request.

use axum::http::{HeaderMap, HeaderName, HeaderValue};

use super::Report;

/// `RateLimit-Policy`.
pub static POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
/// `RateLimit`.
pub static RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");

/// The `RateLimit-Policy` value.
pub fn policy(r: &Report) -> String {
    format!(
        "\"{}\";q={};w={}",
        r.policy, r.quota.limit, r.quota.period_seconds
    )
}

/// The `RateLimit` value.
pub fn level(r: &Report) -> String {
    format!("\"{}\";r={};t={}", r.policy, r.remaining, r.reset_seconds)
}

/// Sets both fields.
pub fn apply(h: &mut HeaderMap, r: &Report) {
    if let Ok(v) = HeaderValue::from_str(&policy(r)) {
        h.insert(POLICY.clone(), v);
    }
    if let Ok(v) = HeaderValue::from_str(&level(r)) {
        h.insert(RATELIMIT.clone(), v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ratelimit::Quota;

    #[test]
    fn draft_syntax() {
        let r = Report {
            policy: "token.client".into(),
            quota: Quota {
                limit: 100,
                period_seconds: 60,
            },
            remaining: 0,
            reset_seconds: 12,
        };
        assert_eq!(policy(&r), "\"token.client\";q=100;w=60");
        assert_eq!(level(&r), "\"token.client\";r=0;t=12");
    }
}
