//! Group commit for audit events on hot paths (token issue): callers wait until their event
//! is durable, but events arriving together share one store transaction.
//!
//! INVARIANT (I5, I7): `append` returns only after the event is committed; if the store
//! fails, every waiter of that batch gets the error and the caller refuses its operation.

use std::sync::Arc;

use tessera_store::{AuditRecord, Store, StoreError, TenantScope};
use tokio::sync::{mpsc, oneshot};

/// The most events one transaction carries.
const MAX_BATCH: usize = 512;

type Pending = (
    TenantScope,
    AuditRecord,
    oneshot::Sender<Result<(), StoreError>>,
);

/// The writer's handle; its task starts on first use, on the runtime of that call.
#[derive(Debug)]
pub struct AuditWriter {
    store: Arc<dyn Store>,
    tx: std::sync::OnceLock<mpsc::Sender<Pending>>,
}

impl AuditWriter {
    /// A writer to `store`.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            tx: std::sync::OnceLock::new(),
        }
    }

    /// Appends `record` to `scope`'s chain, returning once it is committed.
    pub async fn append(&self, scope: TenantScope, record: AuditRecord) -> Result<(), StoreError> {
        let tx = self.tx.get_or_init(|| {
            let (tx, rx) = mpsc::channel::<Pending>(8192);
            tokio::spawn(run(self.store.clone(), rx));
            tx
        });
        let (done, wait) = oneshot::channel();
        tx.send((scope, record, done))
            .await
            .map_err(|_| StoreError::Unavailable("the audit writer has stopped".into()))?;
        wait.await
            .map_err(|_| StoreError::Unavailable("the audit writer has stopped".into()))?
    }
}

async fn run(store: Arc<dyn Store>, mut rx: mpsc::Receiver<Pending>) {
    let mut batch: Vec<Pending> = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let events: Vec<(TenantScope, AuditRecord)> = batch
            .iter()
            .map(|(s, r, _)| (s.clone(), r.clone()))
            .collect();
        let result = store.append_audit_batch(&events).await;
        for (_, _, done) in batch.drain(..) {
            let _ = done.send(match &result {
                Ok(()) => Ok(()),
                Err(e) => Err(StoreError::Unavailable(e.to_string())),
            });
        }
    }
}
