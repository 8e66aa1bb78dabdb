//! ABAC checks through Tessera's `POST /v1/check`, cached per question until a newer
//! revision is seen (from another answer or the feed's cursor) or `check_ttl` passes.
//! INVARIANT: an answer is never reused once a newer revision is known.

use std::sync::atomic::Ordering;
use std::time::Instant;

use hyper::{Method, StatusCode};
use serde::Deserialize;
use serde_json::json;

use crate::guard::{call, CheckAnswer, Guard};
use crate::principal::Principal;
use crate::refusal::Refusal;

/// What an ABAC check is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckTarget<'a> {
    /// The catalog resource type.
    pub resource_type: &'a str,
    /// The resource id, when the question is about one.
    pub id: Option<&'a str>,
    /// Its agency.
    pub agency: &'a str,
    /// Its account.
    pub account: Option<&'a str>,
}

#[derive(Deserialize)]
struct CheckReply {
    allowed: bool,
    revision: i64,
}

impl Guard {
    /// Asks Tessera's `/v1/check` whether `principal` may exercise `permission` on `target`
    /// (the roles and ABAC policies beyond the credential's scopes). Answers are cached by
    /// question until a newer revision is seen or [`GuardConfig::check_ttl`] passes.
    ///
    /// Only users (`usr_…`) and API keys (`key_…`) have roles to check; for an app's own
    /// token (client credentials), the scopes its installation consented to are the whole
    /// grant, and this answers `true`.
    pub async fn check(
        &self,
        principal: &Principal,
        permission: &str,
        target: &CheckTarget<'_>,
    ) -> Result<bool, Refusal> {
        let sub = principal.subject();
        if !(sub.starts_with("usr_") || sub.starts_with("key_")) {
            return Ok(true);
        }
        let impersonating = principal.act().is_some();
        let key = serde_json::to_string(&json!([
            sub,
            permission,
            target.resource_type,
            target.id,
            target.agency,
            target.account,
            impersonating
        ]))
        .unwrap_or_default();
        let config = &self.inner.config;
        let latest = self.inner.latest_revision.load(Ordering::Acquire);
        if let Some(hit) = self
            .inner
            .checks
            .lock()
            .ok()
            .and_then(|m| m.get(&key).copied())
        {
            if hit.revision >= latest && hit.at.elapsed() < config.check_ttl {
                return Ok(hit.allowed);
            }
        }
        let mut resource = json!({"type": target.resource_type, "agency": target.agency});
        if let Some(id) = target.id {
            resource["id"] = json!(id);
        }
        if let Some(account) = target.account {
            resource["account"] = json!(account);
        }
        let body = json!({
            "principal": sub,
            "permission": permission,
            "resource": resource,
            "context": {"impersonating": impersonating},
        });
        let answer = call(
            config,
            Method::POST,
            "/v1/check",
            Some(("application/json", body.to_string().into_bytes())),
        )
        .await
        .map_err(|e| Refusal::Unavailable(e.to_string()))?;
        if answer.status != StatusCode::OK {
            return Err(Refusal::Unavailable(format!(
                "/v1/check answered {}",
                answer.status
            )));
        }
        let reply: CheckReply = answer
            .json("check")
            .map_err(|e| Refusal::Unavailable(e.to_string()))?;
        self.inner
            .latest_revision
            .fetch_max(reply.revision, Ordering::AcqRel);
        if let Ok(mut m) = self.inner.checks.lock() {
            if m.len() >= 10_000 {
                m.clear();
            }
            m.insert(
                key,
                CheckAnswer {
                    allowed: reply.allowed,
                    revision: reply.revision,
                    at: Instant::now(),
                },
            );
        }
        Ok(reply.allowed)
    }
}
