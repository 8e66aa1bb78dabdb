//! The credential inventory: an agency's API keys, its apps' client secrets, and the
//! issuer's signing keys (global: their public facts only), each with its age, last use,
//! expiry and rotation state, and flagged when stale.
//!
//! INVARIANT: no secret, hash or private key is ever read into a row (the store hands out
//! `AppSecretFacts`, and of a signing key only its public facts are copied). Stale means any
//! of: `unused` (no use for `unused_days`, default 90), `no_expiry`, `older_than_policy`
//! (not created or rotated for `max_age_days`, default 365).

use schemars::JsonSchema;
use serde::Serialize;
use tessera_core::time::serde_rfc3339;
use tessera_core::AccountId;
use tessera_store::{PageRequest, TenantScope};

use super::{
    audit_read, bounded, next_cursor, split_cursor, time_cell, CsvRow, Format, ReadFacts,
    ReportPage,
};
use crate::error::ApiError;
use crate::gate::authorized::Authorized;
use crate::services::Services;

const SECTIONS: &[&str] = &["keys", "apps", "signing"];
const DAY_MS: i64 = 86_400_000;

/// The staleness policy of one read (`?unused_days=&max_age_days=`).
#[derive(Clone, Copy, Debug, Serialize, JsonSchema)]
pub struct CredentialPolicy {
    /// A credential not used for this many days is `unused` (default 90).
    pub unused_days: u32,
    /// A credential not created or rotated for this many days is `older_than_policy`
    /// (default 365).
    pub max_age_days: u32,
}

impl Default for CredentialPolicy {
    fn default() -> Self {
        Self {
            unused_days: 90,
            max_age_days: 365,
        }
    }
}

/// One credential.
#[derive(Debug, Serialize, JsonSchema)]
pub struct CredentialEntry {
    /// `api_key`, `app_secret` or `signing_key`.
    pub kind: String,
    /// The key's id, the app's client id, or the signing key's `kid`.
    pub id: String,
    /// A key's or app's name; a signing key's algorithm.
    pub name: String,
    /// Who created it (keys), or null.
    pub created_by: Option<String>,
    /// The account a key is bound to, or null.
    pub account: Option<AccountId>,
    /// API key: `active` or `expired`. App secret: `current`, `retiring` (an old secret in
    /// its rotation grace) or `expired`. Signing key: `pending`, `active`, `retiring`, `retired`.
    pub state: String,
    /// When it was made.
    #[serde(serialize_with = "serde_rfc3339::serialize")]
    #[schemars(with = "String")]
    pub created_at: i64,
    /// Days since it was made or last rotated.
    pub age_days: i64,
    /// A key's last authenticated use; an app's newest audit event as actor in this agency
    /// (its token issues); null for signing keys and credentials never used.
    #[serde(serialize_with = "serde_rfc3339::option::serialize")]
    #[schemars(with = "Option<String>")]
    pub last_used_at: Option<i64>,
    /// When it stops working, or null for never.
    #[serde(serialize_with = "serde_rfc3339::option::serialize")]
    #[schemars(with = "Option<String>")]
    pub expires_at: Option<i64>,
    /// When it was last rotated, or null.
    #[serde(serialize_with = "serde_rfc3339::option::serialize")]
    #[schemars(with = "Option<String>")]
    pub rotated_at: Option<i64>,
    /// `never`, `rotated`, `in_grace` (an older secret still valid) or, for signing keys,
    /// the key ring's state.
    pub rotation: String,
    /// The pepper version of a secret's hash (app secrets), or null.
    pub pepper_version: Option<i64>,
    /// Why it is stale: `unused`, `no_expiry`, `older_than_policy`.
    pub flags: Vec<String>,
    /// Whether any flag is set.
    pub stale: bool,
}

impl CsvRow for CredentialEntry {
    fn header() -> &'static [&'static str] {
        &[
            "kind",
            "id",
            "name",
            "created_by",
            "account",
            "state",
            "created_at",
            "age_days",
            "last_used_at",
            "expires_at",
            "rotated_at",
            "rotation",
            "pepper_version",
            "flags",
            "stale",
        ]
    }
    fn cells(&self) -> Vec<String> {
        vec![
            self.kind.clone(),
            self.id.clone(),
            self.name.clone(),
            self.created_by.clone().unwrap_or_default(),
            self.account
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            self.state.clone(),
            time_cell(Some(self.created_at)),
            self.age_days.to_string(),
            time_cell(self.last_used_at),
            time_cell(self.expires_at),
            time_cell(self.rotated_at),
            self.rotation.clone(),
            self.pepper_version
                .map(|v| v.to_string())
                .unwrap_or_default(),
            self.flags.join(" "),
            self.stale.to_string(),
        ]
    }
}

/// The facts staleness is judged on.
struct Facts {
    now: i64,
    since: i64,
    last_used: Option<i64>,
    expires_at: Option<i64>,
    live: bool,
}

/// The stale flags of a live credential (an expired one is flagged by its state alone).
fn flags(p: CredentialPolicy, f: &Facts) -> Vec<String> {
    let mut out = Vec::new();
    if !f.live {
        return out;
    }
    if f.last_used.unwrap_or(f.since) < f.now - i64::from(p.unused_days) * DAY_MS {
        out.push("unused".to_owned());
    }
    if f.expires_at.is_none() {
        out.push("no_expiry".to_owned());
    }
    if f.since < f.now - i64::from(p.max_age_days) * DAY_MS {
        out.push("older_than_policy".to_owned());
    }
    out
}

/// A page of the inventory: API keys (revoked ones left out), then client secrets, then
/// signing keys. Route: `compliance.read` on the agency.
pub async fn page(
    s: &Services,
    auth: &Authorized,
    cursor: Option<&str>,
    limit: u32,
    policy: CredentialPolicy,
    format: Format,
) -> Result<ReportPage<CredentialEntry>, ApiError> {
    let scope = auth.scope()?;
    let (ix, inner) = split_cursor(cursor, SECTIONS)?;
    let req = PageRequest {
        limit: bounded(limit),
        cursor: inner.map(str::to_owned),
    };
    let now = s.clock.now();
    let (items, next) = match ix {
        0 => api_keys(s, &scope, &req, policy, now).await?,
        1 => app_secrets(s, &scope, &req, policy, now).await?,
        _ => (signing_keys(s, policy, now).await?, None),
    };
    let out = ReportPage {
        report: "credentials".into(),
        agency: auth.agency.clone(),
        generated_at: now,
        next_cursor: next_cursor(ix, next, SECTIONS),
        items,
    };
    audit_read(
        s,
        auth,
        &scope,
        ReadFacts {
            report: "credentials",
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

type Rows = (Vec<CredentialEntry>, Option<String>);

async fn api_keys(
    s: &Services,
    scope: &TenantScope,
    req: &PageRequest,
    p: CredentialPolicy,
    now: i64,
) -> Result<Rows, ApiError> {
    let page = s.store.list_api_keys(scope, req).await?;
    let items = page
        .items
        .into_iter()
        .filter(|k| k.revoked_at.is_none())
        .map(|k| {
            let live = k.expires_at.is_none_or(|at| at > now);
            let since = k.rotated_at.unwrap_or(k.created_at);
            let flags = flags(
                p,
                &Facts {
                    now,
                    since,
                    last_used: k.last_used_at,
                    expires_at: k.expires_at,
                    live,
                },
            );
            CredentialEntry {
                kind: "api_key".into(),
                id: k.id.to_string(),
                name: k.name,
                created_by: Some(k.created_by),
                account: k.account,
                state: if live { "active" } else { "expired" }.into(),
                created_at: k.created_at,
                age_days: (now - since).max(0) / DAY_MS,
                last_used_at: k.last_used_at,
                expires_at: k.expires_at,
                rotated_at: k.rotated_at,
                rotation: if k.rotated_at.is_some() {
                    "rotated"
                } else {
                    "never"
                }
                .into(),
                pepper_version: None,
                stale: !flags.is_empty(),
                flags,
            }
        })
        .collect();
    Ok((items, page.next_cursor))
}

async fn app_secrets(
    s: &Services,
    scope: &TenantScope,
    req: &PageRequest,
    p: CredentialPolicy,
    now: i64,
) -> Result<Rows, ApiError> {
    let page = s.store.list_apps(scope, req).await?;
    let ids: Vec<String> = page.items.iter().map(|a| a.id.to_string()).collect();
    let secrets = s.store.app_secret_facts(scope, &ids).await?;
    let used: std::collections::HashMap<String, i64> = s
        .store
        .last_activity(scope, &ids)
        .await?
        .into_iter()
        .collect();
    let mut items = Vec::new();
    for app in &page.items {
        let mine: Vec<_> = secrets.iter().filter(|x| x.app_id == app.id).collect();
        // Newest first: an older secret still valid means a rotation is in its grace.
        let newest = mine.iter().map(|x| x.created_at).max();
        let in_grace = mine.iter().any(|x| x.valid_until.is_some_and(|u| u > now));
        for x in &mine {
            let live = x.valid_until.is_none_or(|u| u > now);
            let state = match x.valid_until {
                None => "current",
                Some(u) if u > now => "retiring",
                Some(_) => "expired",
            };
            let last_used = used.get(app.id.as_str()).copied();
            let rotated = mine.len() > 1 && Some(x.created_at) == newest;
            let flags = flags(
                p,
                &Facts {
                    now,
                    since: x.created_at,
                    last_used,
                    expires_at: x.valid_until,
                    live,
                },
            );
            items.push(CredentialEntry {
                kind: "app_secret".into(),
                id: app.id.to_string(),
                name: app.name.clone(),
                created_by: Some(app.created_by.clone()),
                account: None,
                state: state.into(),
                created_at: x.created_at,
                age_days: (now - x.created_at).max(0) / DAY_MS,
                last_used_at: last_used,
                expires_at: x.valid_until,
                rotated_at: rotated.then_some(x.created_at),
                rotation: if in_grace {
                    "in_grace"
                } else if rotated {
                    "rotated"
                } else {
                    "never"
                }
                .into(),
                pepper_version: Some(x.pepper_version),
                stale: !flags.is_empty(),
                flags,
            });
        }
    }
    Ok((items, page.next_cursor))
}

async fn signing_keys(
    s: &Services,
    p: CredentialPolicy,
    now: i64,
) -> Result<Vec<CredentialEntry>, ApiError> {
    // Global rows, few (a ring of pending/active/retiring keys); times in seconds.
    let rows = s.store.signing_keys().await?;
    Ok(rows
        .into_iter()
        .take(tessera_store::MAX_ACTORS)
        .map(|k| {
            let ms = |secs: i64| secs.saturating_mul(1000);
            let since = ms(k.activates_at.max(k.created_at));
            let live = matches!(k.state.as_str(), "active" | "pending");
            let mut flags = Vec::new();
            if live && since < now - i64::from(p.max_age_days) * DAY_MS {
                flags.push("older_than_policy".to_owned());
            }
            CredentialEntry {
                kind: "signing_key".into(),
                id: k.kid,
                name: k.alg,
                created_by: None,
                account: None,
                created_at: ms(k.created_at),
                age_days: (now - ms(k.created_at)).max(0) / DAY_MS,
                last_used_at: None,
                expires_at: k.expires_at.map(ms),
                rotated_at: k.retires_at.map(ms),
                rotation: k.state.clone(),
                state: k.state,
                pepper_version: None,
                stale: !flags.is_empty(),
                flags,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000;

    fn f(since_days: i64, used_days: Option<i64>, expires: Option<i64>) -> Facts {
        Facts {
            now: NOW,
            since: NOW - since_days * DAY_MS,
            last_used: used_days.map(|d| NOW - d * DAY_MS),
            expires_at: expires,
            live: true,
        }
    }

    #[test]
    fn stale_flags_follow_the_policy() {
        let p = CredentialPolicy::default();
        assert!(flags(p, &f(10, Some(1), Some(NOW + DAY_MS))).is_empty());
        assert_eq!(flags(p, &f(10, Some(91), Some(NOW + DAY_MS))), ["unused"]);
        // Never used: judged from its creation.
        assert_eq!(flags(p, &f(91, None, Some(NOW + DAY_MS))), ["unused"]);
        assert!(flags(p, &f(89, None, Some(NOW + DAY_MS))).is_empty());
        assert_eq!(flags(p, &f(10, Some(1), None)), ["no_expiry"]);
        assert_eq!(
            flags(p, &f(400, Some(1), Some(NOW + DAY_MS))),
            ["older_than_policy"]
        );
        let strict = CredentialPolicy {
            unused_days: 5,
            max_age_days: 7,
        };
        assert_eq!(
            flags(strict, &f(10, Some(6), None)),
            ["unused", "no_expiry", "older_than_policy"]
        );
        let dead = Facts {
            live: false,
            ..f(400, None, None)
        };
        assert!(flags(p, &dead).is_empty());
    }
}
