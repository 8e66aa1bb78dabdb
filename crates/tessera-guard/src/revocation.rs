//! The revocation feed's state, applied in memory: what is refused, until when.
//! INVARIANT: an item refuses matching credentials until its `expires_at` or until a later
//! item for the same kind and id says `active`; unknown kinds are ignored; `api_key` items
//! only evict cached introspections (returned to the caller).

use std::collections::HashMap;

use serde::Deserialize;

use crate::principal::Identity;

/// One item of `GET /v1/revocations`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct FeedItem {
    /// The item's cursor.
    #[serde(default)]
    pub cursor: String,
    /// `token`, `token_family`, `installation`, `api_key`, `agency`, `account`, `user`, `app`.
    pub kind: String,
    /// The revoked thing's id.
    pub id: String,
    /// The agency it belongs to.
    #[serde(default)]
    pub agency: Option<String>,
    /// `revoked`, `rotated`, `suspended`, `deleted`, `disabled` or `active`.
    pub state: String,
    /// When, Unix seconds.
    #[serde(default)]
    pub at: i64,
    /// Until when it matters, Unix seconds.
    #[serde(default)]
    pub expires_at: Option<i64>,
}

/// A page of the feed.
#[derive(Debug, Clone, Deserialize)]
pub struct FeedPage {
    /// The items, oldest first.
    pub items: Vec<FeedItem>,
    /// The cursor to pass next.
    pub next: String,
}

/// Revoked ids per kind, each with the Unix second until which it is refused.
#[derive(Debug, Default, Clone)]
pub(crate) struct Revoked {
    token: HashMap<String, i64>,
    family: HashMap<String, i64>,
    installation: HashMap<String, i64>,
    agency: HashMap<String, i64>,
    account: HashMap<String, i64>,
    user: HashMap<String, i64>,
    app: HashMap<String, i64>,
}

/// Longest an item without `expires_at` is kept (a day): a fallback for a feed that omits it.
const NO_EXPIRY_KEEP: i64 = 86_400;

impl Revoked {
    /// Applies `item`; returns the API key id whose cached introspections must go.
    pub(crate) fn apply(&mut self, item: &FeedItem) -> Option<String> {
        let map = match item.kind.as_str() {
            "token" => &mut self.token,
            "token_family" => &mut self.family,
            "installation" => &mut self.installation,
            "agency" => &mut self.agency,
            "account" => &mut self.account,
            "user" => &mut self.user,
            "app" => &mut self.app,
            "api_key" => return Some(item.id.clone()),
            _ => return None,
        };
        if item.state == "active" {
            map.remove(&item.id);
        } else {
            let until = item
                .expires_at
                .unwrap_or_else(|| item.at.saturating_add(NO_EXPIRY_KEEP));
            map.insert(item.id.clone(), until);
        }
        None
    }

    /// Drops entries that no longer refuse anything.
    pub(crate) fn prune(&mut self, now: i64) {
        for map in [
            &mut self.token,
            &mut self.family,
            &mut self.installation,
            &mut self.agency,
            &mut self.account,
            &mut self.user,
            &mut self.app,
        ] {
            map.retain(|_, until| *until > now);
        }
    }

    /// Which entry refuses `who` at `now`, if any.
    pub(crate) fn refuses(&self, who: &Identity, now: i64) -> Option<&'static str> {
        let hit = |map: &HashMap<String, i64>, id: Option<&str>| {
            id.and_then(|id| map.get(id))
                .is_some_and(|until| *until > now)
        };
        if hit(&self.token, who.token_id.as_deref()) {
            return Some("token revoked");
        }
        if hit(&self.family, who.session.as_deref()) {
            return Some("token family revoked");
        }
        if hit(&self.installation, who.installation.as_deref()) {
            return Some("installation revoked");
        }
        if hit(&self.agency, Some(&who.tenant.agency)) {
            return Some("agency suspended");
        }
        if hit(&self.account, who.tenant.account.as_deref()) {
            return Some("account suspended");
        }
        if hit(&self.user, Some(&who.subject)) {
            return Some("user disabled");
        }
        let mut actor = who.act.as_ref();
        while let Some(a) = actor {
            if hit(&self.user, Some(&a.sub)) {
                return Some("actor disabled");
            }
            actor = a.act.as_deref();
        }
        if hit(&self.app, who.client_id.as_deref()) {
            return Some("app deleted");
        }
        None
    }

    /// How many entries are held.
    pub(crate) fn len(&self) -> usize {
        self.token.len()
            + self.family.len()
            + self.installation.len()
            + self.agency.len()
            + self.account.len()
            + self.user.len()
            + self.app.len()
    }
}
