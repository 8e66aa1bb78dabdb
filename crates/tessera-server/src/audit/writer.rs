//! Group commit for audit events on hot paths (token issue): callers wait until their event
//! is durable, but events arriving together share one store transaction. Events go to one
//! of a few lanes by agency (each lane its own batches and connection), and the caller loads
//! the agency's data key before queueing, so no batch waits on a key read.
//!
//! INVARIANT (I5, I7): `append` returns only after the event is committed; if the store
//! fails, every waiter of that batch gets the error and the caller refuses its operation.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{json, Value};
use tessera_core::AgencyId;
use tessera_store::{AuditRecord, Store, StoreError, TenantScope};
use tokio::sync::{mpsc, oneshot};

/// The most events one transaction carries.
const MAX_BATCH: usize = 512;

/// How many times a writer yields to let ready requests add to its batch, while they do.
const GATHER_YIELDS: usize = 4;

/// Independent writers, each with its own batches and connection; an agency's events always
/// go to the same one (by a hash of its id), so each chain keeps this node's order. With one
/// writer, a batch spread over a thousand agencies (uniform traffic at 100k agencies) moved
/// every head in turn while the next batch waited; lanes overlap those round trips.
const LANES: usize = 4;

/// An event handed to the writer.
#[derive(Debug)]
pub enum Entry {
    /// Written as it is.
    Record(AuditRecord),
    /// A client-credentials issue (`token.issue`): within a batch, the issues of one client,
    /// installation and scope share one record listing every token.
    ClientCredentialsIssue(Issue),
}

/// One client-credentials issue: its record (whose `detail` the writer fills) and the facts
/// the merged record lists.
#[derive(Debug)]
pub struct Issue {
    /// The record of the issue: actor the client, target the installation.
    pub record: AuditRecord,
    /// The token's scope, space-separated.
    pub scope: String,
    /// The token's `jti`.
    pub jti: String,
}

type Pending = (TenantScope, Entry, oneshot::Sender<Result<(), StoreError>>);

/// The writer's handle; its task starts on first use, on the runtime of that call.
#[derive(Debug)]
pub struct AuditWriter {
    store: Arc<dyn Store>,
    /// Seals the personal fields of each event under its agency's data key (`None`: tests of
    /// the writer alone).
    data_keys: Option<Arc<crate::secrets::DataKeys>>,
    lanes: std::sync::OnceLock<Vec<mpsc::Sender<Pending>>>,
}

impl AuditWriter {
    /// A writer to `store`.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            data_keys: None,
            lanes: std::sync::OnceLock::new(),
        }
    }

    /// A writer that seals each event's personal fields under its agency's data key.
    pub fn with_data_keys(store: Arc<dyn Store>, data_keys: Arc<crate::secrets::DataKeys>) -> Self {
        Self {
            store,
            data_keys: Some(data_keys),
            lanes: std::sync::OnceLock::new(),
        }
    }

    /// Appends `record` to `scope`'s chain, returning once it is committed.
    pub async fn append(&self, scope: TenantScope, record: AuditRecord) -> Result<(), StoreError> {
        self.send(scope, Entry::Record(record)).await
    }

    /// Appends a client-credentials issue to `scope`'s chain, returning once it is committed
    /// (merged with the batch's other issues of the same client, installation and scope).
    pub async fn append_issue(&self, scope: TenantScope, issue: Issue) -> Result<(), StoreError> {
        self.send(scope, Entry::ClientCredentialsIssue(issue)).await
    }

    async fn send(&self, scope: TenantScope, entry: Entry) -> Result<(), StoreError> {
        if let Some(keys) = &self.data_keys {
            let record = match &entry {
                Entry::Record(r) => r,
                Entry::ClientCredentialsIssue(i) => &i.record,
            };
            crate::secrets::personal::prepare_keys(keys, &scope, record).await;
        }
        let lanes = self.lanes.get_or_init(|| {
            (0..LANES)
                .map(|_| {
                    let (tx, rx) = mpsc::channel::<Pending>(8192 / LANES);
                    tokio::spawn(run(self.store.clone(), self.data_keys.clone(), rx));
                    tx
                })
                .collect()
        });
        let tx = &lanes[lane(scope.agency())];
        let (done, wait) = oneshot::channel();
        tx.send((scope, entry, done))
            .await
            .map_err(|_| StoreError::Unavailable("the audit writer has stopped".into()))?;
        wait.await
            .map_err(|_| StoreError::Unavailable("the audit writer has stopped".into()))?
    }
}

/// The lane of an agency's events (FNV-1a of its id: stable, and ids are server-minted).
fn lane(agency: &AgencyId) -> usize {
    let h = agency
        .as_str()
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
    usize::try_from(h % LANES as u64).unwrap_or(0)
}

/// Merges the batch's client-credentials issues of one client, installation and scope into
/// one event that lists every token (its `jti`, request id, address and time): the same facts,
/// one chain link instead of hundreds under load. Grouped by the typed entry, never by the
/// record's JSON.
fn coalesce(batch: &[Pending]) -> Vec<(TenantScope, AuditRecord)> {
    let mut out: Vec<(TenantScope, AuditRecord)> = Vec::with_capacity(batch.len());
    let mut merged: HashMap<(&AgencyId, &str, Option<&str>, &str), usize> = HashMap::new();
    for (scope, entry, _) in batch {
        let issue = match entry {
            Entry::Record(r) => {
                out.push((scope.clone(), r.clone()));
                continue;
            }
            Entry::ClientCredentialsIssue(issue) => issue,
        };
        let r = &issue.record;
        let key = (
            scope.agency(),
            r.actor.as_str(),
            r.target.as_deref(),
            issue.scope.as_str(),
        );
        let token = json!({
            "jti": issue.jti,
            "request_id": r.request_id,
            "ip": r.ip,
            "at": r.at,
        });
        match merged.get(&key) {
            Some(&i) => {
                let detail = &mut out[i].1.detail;
                if let Some(Value::Array(tokens)) = detail.get_mut("tokens") {
                    tokens.push(token);
                }
                if let Some(n) = detail.get("count").and_then(Value::as_u64) {
                    detail["count"] = Value::from(n + 1);
                }
            }
            None => {
                let mut first = r.clone();
                first.detail = json!({
                    "grant_type": "client_credentials",
                    "scope": issue.scope,
                    "count": 1,
                    "tokens": [token],
                });
                merged.insert(key, out.len());
                out.push((scope.clone(), first));
            }
        }
    }
    out
}

async fn run(
    store: Arc<dyn Store>,
    data_keys: Option<Arc<crate::secrets::DataKeys>>,
    mut rx: mpsc::Receiver<Pending>,
) {
    let mut batch: Vec<Pending> = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        gather(&mut rx, &mut batch).await;
        let mut events = coalesce(&batch);
        if let Some(keys) = &data_keys {
            // Sealed before the store chains them: the hash covers the ciphertext.
            for (scope, record) in &mut events {
                let r = std::mem::replace(record, placeholder());
                *record = crate::secrets::personal::seal_keys(keys, scope, r).await;
            }
        }
        let result = store.append_audit_batch(&events).await;
        for (_, _, done) in batch.drain(..) {
            let _ = done.send(match &result {
                Ok(()) => Ok(()),
                Err(e) => Err(StoreError::Unavailable(e.to_string())),
            });
        }
    }
}

/// Lets the requests that are ready to run queue their events before the batch is written: a
/// batch costs a transaction whatever its size, and under load the events arrive while this
/// task is the one running (one worker: each yield runs every other ready task first). When
/// nothing else is ready, a yield returns at once: an idle server adds no latency.
async fn gather(rx: &mut mpsc::Receiver<Pending>, batch: &mut Vec<Pending>) {
    for _ in 0..GATHER_YIELDS {
        if batch.len() >= MAX_BATCH {
            return;
        }
        tokio::task::yield_now().await;
        let before = batch.len();
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        if batch.len() == before {
            return;
        }
    }
}

/// A record to swap out while its replacement is built.
fn placeholder() -> AuditRecord {
    AuditRecord {
        id: tessera_core::EventId::generate_at(0, &mut rand::thread_rng()),
        at: 0,
        actor: String::new(),
        on_behalf_of: None,
        action: String::new(),
        target: None,
        outcome: tessera_store::Outcome::Success,
        request_id: String::new(),
        ip: None,
        user_agent: None,
        detail: Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_core::EventId;
    use tessera_store::Outcome;

    use crate::gate::admission::Admission;

    fn issue(
        admission: &Admission,
        agency: &AgencyId,
        actor: &str,
        jti: &str,
        grant: &str,
    ) -> Pending {
        let (tx, _rx) = oneshot::channel();
        let record = AuditRecord {
            id: EventId::generate_at(1, &mut rand::thread_rng()),
            at: 1,
            actor: actor.into(),
            on_behalf_of: None,
            action: "token.issue".into(),
            target: Some("ins_x".into()),
            outcome: Outcome::Success,
            request_id: format!("req_{jti}"),
            ip: None,
            user_agent: None,
            detail: json!({ "grant_type": grant }),
        };
        let entry = if grant == "client_credentials" {
            Entry::ClientCredentialsIssue(Issue {
                record,
                scope: "a b".into(),
                jti: jti.into(),
            })
        } else {
            Entry::Record(record)
        };
        (admission.admit(agency.clone()), entry, tx)
    }

    /// Requests that become ready while the writer holds a batch join it: one transaction for
    /// all of them instead of one per request (issue throughput on one core).
    #[tokio::test(flavor = "current_thread")]
    async fn a_batch_gathers_the_events_of_requests_ready_meanwhile() {
        let (connected, _dir) = tessera_store::testing::sqlite_store().await;
        let admission = Admission::new(connected.mint);
        let agency = AgencyId::generate_at(1, &mut rand::thread_rng());
        let (tx, mut rx) = mpsc::channel::<Pending>(64);
        tx.send(issue(
            &admission,
            &agency,
            "app_1",
            "j0",
            "client_credentials",
        ))
        .await
        .unwrap();
        for i in 1..=10 {
            let (tx, pending) = (
                tx.clone(),
                issue(
                    &admission,
                    &agency,
                    "app_1",
                    &format!("j{i}"),
                    "client_credentials",
                ),
            );
            // Runs only when the current task yields (one thread).
            tokio::spawn(async move { tx.send(pending).await });
        }
        let mut batch = Vec::new();
        rx.recv_many(&mut batch, MAX_BATCH).await;
        assert_eq!(batch.len(), 1, "the other requests have not run yet");
        gather(&mut rx, &mut batch).await;
        assert_eq!(batch.len(), 11);
        // Nothing else ready: gathering returns without waiting for more.
        let started = std::time::Instant::now();
        gather(&mut rx, &mut batch).await;
        assert_eq!(batch.len(), 11);
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }

    #[tokio::test]
    async fn client_credentials_issues_coalesce_and_keep_every_jti() {
        let (connected, _dir) = tessera_store::testing::sqlite_store().await;
        let admission = Admission::new(connected.mint);
        let mut rng = rand::thread_rng();
        let a = AgencyId::generate_at(1, &mut rng);
        let b = AgencyId::generate_at(2, &mut rng);
        let batch = vec![
            issue(&admission, &a, "app_1", "j1", "client_credentials"),
            issue(&admission, &a, "app_1", "j2", "client_credentials"),
            issue(&admission, &b, "app_1", "j3", "client_credentials"),
            issue(&admission, &a, "usr_1", "j4", "refresh_token"),
            issue(&admission, &a, "app_1", "j5", "client_credentials"),
        ];
        let out = coalesce(&batch);
        assert_eq!(out.len(), 3);
        assert_eq!(out[0].1.detail["count"], 3);
        let jtis: Vec<&str> = out[0].1.detail["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["jti"].as_str().unwrap())
            .collect();
        assert_eq!(jtis, ["j1", "j2", "j5"]);
        assert_eq!(out[1].0.agency(), &b);
        assert_eq!(out[2].1.detail["grant_type"], "refresh_token");
    }
}
