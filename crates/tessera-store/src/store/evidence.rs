//! Reads for compliance evidence (SOC 2 reports): when each principal last acted, the public
//! facts of an agency's client secrets, and impersonation sessions with what was done under
//! them. Read-only.
//!
//! INVARIANT (I1): every read takes a `TenantScope` and filters on its agency; each is
//! bounded (a page, a capped list of actors, a `limit`) and served by an index on
//! `audit_events` (`(agency_id, actor, seq)`, `(agency_id, action, seq)`,
//! `(agency_id, on_behalf_of, seq)`), never by a scan of the chain.

use crate::audit::AuditEvent;
use crate::error::StoreError;
use crate::page::{Page, PageRequest};
use crate::records::AppSecretFacts;
use crate::scope::TenantScope;
use async_trait::async_trait;

/// At most this many actors per `last_activity` call.
pub const MAX_ACTORS: usize = 200;

/// Compliance reads. Callers: the server's report use cases, after the gate admitted the
/// agency.
#[async_trait]
pub trait Evidence: Send + Sync {
    /// The time (epoch ms) of the newest audit event of each actor that has one: one index
    /// lookup per actor, at most `MAX_ACTORS` actors (more is `Corrupt`, a caller's bug).
    async fn last_activity(
        &self,
        t: &TenantScope,
        actors: &[String],
    ) -> Result<Vec<(String, i64)>, StoreError>;
    /// The secrets (never their hashes) of these apps of the tenant, at most `MAX_ACTORS` apps.
    async fn app_secret_facts(
        &self,
        t: &TenantScope,
        apps: &[String],
    ) -> Result<Vec<AppSecretFacts>, StoreError>;
    /// `impersonation.start` events (granted and refused), optionally of one impersonated
    /// user, in sequence order; the cursor is the last sequence number.
    async fn impersonation_starts(
        &self,
        t: &TenantScope,
        on_behalf_of: Option<&str>,
        page: &PageRequest,
    ) -> Result<Page<AuditEvent>, StoreError>;
    /// What `actor` did on behalf of `on_behalf_of` after sequence `after_seq` and up to
    /// `until_at` (epoch ms), `impersonation.start` excluded: at most `limit` events.
    async fn impersonation_acts(
        &self,
        t: &TenantScope,
        actor: &str,
        on_behalf_of: &str,
        after_seq: i64,
        until_at: i64,
        limit: u32,
    ) -> Result<Vec<AuditEvent>, StoreError>;
}
