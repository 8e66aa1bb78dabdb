//! The revocation feed (`GET /v1/revocations`): what was revoked since a cursor, read from the
//! change log (no second table), for guards that verify tokens locally. Route:
//! `revocations.read`; a platform principal reads every agency, an agency principal its own
//! agency alone (the store reads it under that tenant's scope, I1).
//!
//! INVARIANT: an entry is served while `at + retention > now` (retention: the longest
//! access-token lifetime plus clock leeway, after which no token it could affect is alive); a
//! reader whose cursor is older than an entry it can no longer be served is told so
//! (410 `cursor_expired`) and must resynchronise. Waiting readers (long-poll and SSE) are
//! bounded per agency (`Streams`) and woken by the engine's bell (this node's writes at once,
//! other nodes' through the change-feed tailer).

use std::time::Duration;

use schemars::JsonSchema;
use serde::Serialize;
use tessera_core::AgencyId;
use tessera_store::{RevocationChange, Status, TenantScope};

pub use crate::feed::StreamPermit;

use crate::error::{ApiError, ErrorCode};
use crate::gate::authorized::Authorized;
use crate::services::Services;

/// Clock leeway a guard allows on `exp`, added to the retention.
pub const LEEWAY_SECS: i64 = 60;
/// The most entries in one answer.
pub const MAX_LIMIT: u32 = 1000;
/// Entries per answer without `limit`.
pub const DEFAULT_LIMIT: u32 = 100;
/// The longest long-poll, seconds.
pub const MAX_WAIT_SECS: u64 = 60;
/// Concurrent waiting readers (long-polls and SSE streams) per agency on one node.
pub const MAX_STREAMS_PER_AGENCY: usize = 16;
/// Waiting readers re-read the feed at least this often, bell or not.
pub const FALLBACK_POLL: Duration = Duration::from_secs(2);

/// One entry of the feed (see the README's "Revocation feed" for how a guard applies it).
#[derive(Clone, Debug, Serialize, JsonSchema, PartialEq, Eq)]
pub struct RevocationItem {
    /// This entry's cursor (opaque): pass it as `since` (or `Last-Event-ID`) to resume after it.
    pub cursor: String,
    /// `token`, `token_family`, `installation`, `api_key`, `agency`, `account`, `user` or
    /// `app`; guards ignore kinds they do not know.
    pub kind: &'static str,
    /// The id: a `jti`, a grant id (the JWT's `sid`), `ins_…`, `key_…`, `agy_…`, `acc_…`,
    /// `usr_…` or `app_…` (the JWT's `client_id`).
    pub id: String,
    /// The agency it belongs to.
    pub agency: String,
    /// `revoked`, `rotated`, `suspended`, `disabled`, `deleted` or `active`.
    pub state: &'static str,
    /// When it happened (Unix seconds).
    pub at: i64,
    /// When it leaves the feed (Unix seconds): every token it could affect has expired by then.
    pub expires_at: i64,
}

/// A page of the feed.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct RevocationPage {
    /// The entries after the cursor, oldest first.
    pub items: Vec<RevocationItem>,
    /// The cursor to pass next (equal to `since` when nothing is new).
    pub next: String,
    /// How long an entry stays in the feed, seconds.
    pub retention_seconds: i64,
}

/// What a reader asked for.
#[derive(Clone, Debug)]
pub struct FeedRequest {
    /// After this revision (`None`: from the oldest entry retained).
    pub since: Option<i64>,
    /// At most this many entries (clamped to 1..=`MAX_LIMIT`).
    pub limit: u32,
    /// Long-poll for up to this long when nothing is new.
    pub wait: Duration,
}

impl FeedRequest {
    /// Parses `since`, `limit` and `wait` (other parameters are ignored); `last_event_id`
    /// (SSE `Last-Event-ID`) wins over `since`.
    pub fn parse(
        query: &[(String, String)],
        last_event_id: Option<&str>,
    ) -> Result<Self, ApiError> {
        let mut since = None;
        let mut limit = DEFAULT_LIMIT;
        let mut wait = 0;
        for (k, v) in query {
            match k.as_str() {
                "since" => since = Some(parse_cursor(v)?),
                "limit" => {
                    limit = v
                        .parse::<u32>()
                        .ok()
                        .filter(|l| (1..=MAX_LIMIT).contains(l))
                        .ok_or_else(|| ApiError::invalid("`limit` must be 1 to 1000"))?;
                }
                "wait" => {
                    wait = v
                        .parse::<u64>()
                        .ok()
                        .filter(|w| *w <= MAX_WAIT_SECS)
                        .ok_or_else(|| ApiError::invalid("`wait` must be 0 to 60 seconds"))?;
                }
                _ => {}
            }
        }
        if let Some(id) = last_event_id {
            since = Some(parse_cursor(id)?);
        }
        Ok(Self {
            since,
            limit,
            wait: Duration::from_secs(wait),
        })
    }
}

/// A cursor: today the change-log revision, in decimal.
fn parse_cursor(v: &str) -> Result<i64, ApiError> {
    // Exactly the documented form (`^[0-9]{1,18}$`): no sign, no spaces, fits an i64.
    if v.is_empty() || v.len() > 18 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::invalid("malformed cursor"));
    }
    v.parse::<i64>()
        .map_err(|_| ApiError::invalid("malformed cursor"))
}

/// 410 `cursor_expired`.
fn expired() -> ApiError {
    ApiError::new(
        ErrorCode::CursorExpired,
        "the cursor is older than the feed's retention: forget the revocation state and read the feed again without `since`",
    )
}

/// Whose entries a reader sees.
#[derive(Clone, Debug)]
pub struct Reader {
    /// `None`: every agency (a platform principal).
    tenant: Option<TenantScope>,
    /// The agency whose stream budget it uses.
    agency: AgencyId,
}

impl Reader {
    /// The reader the gate authorized: a platform principal reads every agency.
    pub fn of(auth: &Authorized) -> Result<Self, ApiError> {
        Ok(Self {
            tenant: if auth.caller.is_platform {
                None
            } else {
                Some(auth.scope()?)
            },
            agency: auth.agency.clone(),
        })
    }
}

/// The feed's retention in seconds.
pub fn retention_secs(s: &Services) -> i64 {
    // The longest-lived access token: a plain one or an impersonation token (exchanged
    // tokens live no longer than their subject token).
    let longest = s
        .oauth
        .settings
        .access_ttl
        .max(s.oauth.settings.impersonation_ttl);
    i64::try_from(longest.as_secs())
        .unwrap_or(3600)
        .saturating_add(LEEWAY_SECS)
}

/// Checks a starting cursor: a malformed or future one, or one after which an entry already
/// left the feed, is 410 (the reader resynchronises).
pub async fn check_cursor(s: &Services, r: &Reader, since: Option<i64>) -> Result<(), ApiError> {
    let Some(since) = since else {
        return Ok(());
    };
    // A cursor from the future (another database, a restore): the reader's state is unknown.
    if since > s.store.revision().await? {
        return Err(expired());
    }
    let cutoff = s.clock.now() - retention_secs(s) * 1000;
    if s.store
        .revocations_dropped(r.tenant.as_ref(), since, cutoff)
        .await?
    {
        return Err(expired());
    }
    Ok(())
}

/// One read of the feed after `since` (no waiting), with the cursor to pass next.
pub async fn read(
    s: &Services,
    r: &Reader,
    since: Option<i64>,
    limit: u32,
) -> Result<(Vec<RevocationItem>, i64), ApiError> {
    let retention = retention_secs(s);
    // Read before the entries: anything committed after it is above it.
    let head = if since.is_none() {
        s.store.revision().await?
    } else {
        0
    };
    let min_at = s.clock.now() - retention * 1000;
    let changes = s
        .store
        .revocations_since(r.tenant.as_ref(), since.unwrap_or(0), min_at, limit)
        .await?;
    let next = match changes.last() {
        Some(c) => c.revision,
        None => since.unwrap_or(head),
    };
    let items = changes.iter().filter_map(|c| item(c, retention)).collect();
    Ok((items, next))
}

/// The JSON answer: one read, waiting up to `req.wait` for something new.
pub async fn page(s: &Services, r: &Reader, req: &FeedRequest) -> Result<RevocationPage, ApiError> {
    check_cursor(s, r, req.since).await?;
    let retention_seconds = retention_secs(s);
    let mut bell = s.engine.listen();
    let (items, next) = read(s, r, req.since, req.limit).await?;
    if !items.is_empty() || req.wait.is_zero() {
        return Ok(RevocationPage {
            items,
            next: next.to_string(),
            retention_seconds,
        });
    }
    let _permit = enter(s, &r.agency)?;
    let deadline = tokio::time::Instant::now() + req.wait;
    let mut since = Some(next);
    loop {
        let woke = tokio::select! {
            changed = bell.changed() => changed.is_ok(),
            () = tokio::time::sleep(FALLBACK_POLL) => true,
            () = tokio::time::sleep_until(deadline) => false,
        };
        let (items, next) = read(s, r, since, req.limit).await?;
        if !items.is_empty() || !woke || tokio::time::Instant::now() >= deadline {
            return Ok(RevocationPage {
                items,
                next: next.to_string(),
                retention_seconds,
            });
        }
        since = Some(next);
    }
}

/// A feed entry from a change-log entry (`None` for a kind the feed does not serve).
pub fn item(c: &RevocationChange, retention_secs: i64) -> Option<RevocationItem> {
    let (kind, state) = match c.kind.as_str() {
        "token.revoke" => ("token", "revoked"),
        "grant.revoke" => ("token_family", "revoked"),
        "installation.revoke" => ("installation", "revoked"),
        "api_key.revoke" => ("api_key", "revoked"),
        "api_key.rotate" => ("api_key", "rotated"),
        "agency.suspend" => ("agency", "suspended"),
        "agency.reinstate" => ("agency", "active"),
        "agency.delete" => ("agency", "deleted"),
        "account.suspend" => ("account", "suspended"),
        "account.reinstate" => ("account", "active"),
        "account.delete" => ("account", "deleted"),
        // The user's status when read: a later change shows here as the same state, so the
        // last entry of a user always tells its current state.
        "user.status" => (
            "user",
            match c.user_status {
                Some(Status::Active) => "active",
                Some(Status::Disabled | Status::Suspended) => "disabled",
                Some(Status::Deleted) | None => "deleted",
            },
        ),
        "user.delete" => ("user", "deleted"),
        "app.delete" => ("app", "deleted"),
        _ => return None,
    };
    let at = c.at.div_euclid(1000);
    Some(RevocationItem {
        cursor: c.revision.to_string(),
        kind,
        id: c.entity.clone(),
        agency: c.agency.to_string(),
        state,
        at,
        expires_at: at.saturating_add(retention_secs),
    })
}

/// A slot for one waiting reader of `agency`, or 429 when it has `MAX_STREAMS_PER_AGENCY`.
pub fn enter(s: &Services, agency: &AgencyId) -> Result<StreamPermit, ApiError> {
    s.feed_streams
        .enter(agency, MAX_STREAMS_PER_AGENCY)
        .ok_or_else(|| {
            let mut e = ApiError::new(
                ErrorCode::RateLimited,
                format!("at most {MAX_STREAMS_PER_AGENCY} waiting feed readers per agency"),
            );
            e.retry_after = Some(5);
            e
        })
}
