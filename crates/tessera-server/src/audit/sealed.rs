//! Sealing an audit record's personal fields with the services at hand, for the callers that
//! write one event outside the audit writer (`secrets::personal` holds the format).
//! INVARIANT: a record passes through `seal` before any store call chains it.

use tessera_store::{AuditEvent, AuditRecord, TenantScope};

use crate::secrets::personal::seal_keys;
use crate::services::Services;

/// Seals the personal fields of a record bound for `scope`'s chain (the key is created on the
/// agency's first event).
pub async fn seal(s: &Services, scope: &TenantScope, record: AuditRecord) -> AuditRecord {
    seal_keys(&s.data_keys, scope, record).await
}

/// Seals the record's personal fields, then appends it to `scope`'s chain (the store's
/// `append_audit`, for the callers that write one event outside the audit writer).
pub async fn append(
    s: &Services,
    scope: &TenantScope,
    record: &AuditRecord,
) -> Result<AuditEvent, tessera_store::StoreError> {
    let sealed = seal(s, scope, record.clone()).await;
    s.store.append_audit(scope, &sealed).await
}
