//! Personal data in audit events (the client's `ip` and `user_agent`, and the personal keys of
//! `detail`: emails, and the names of people) is stored sealed under the agency's data key: the
//! fields are moved into one sealed value, `detail.sealed` (base64url), bound to the event's id.
//! Sealing happens before the store computes the chain hash, so the hash covers the
//! ciphertext: when the key is destroyed (the agency deleted), `/audit/verify` still passes and
//! the reading APIs show the `[erased]` marker instead of the data.
//! Events about a person are sealed under that person's key instead (`secrets::person_keys`),
//! so erasing the person shreds only their data. The person is the user the event is about:
//! the `target` when it is a user (`usr_…`), else `on_behalf_of` when it is a user, else the
//! `actor` when it is a user; events with none (an app's client-credentials issue, an API
//! key's act) keep the agency's key. The sealed text names its key: `{agency}.{b64}` (agency
//! key) or `{agency}:{usr}.{b64}` (the person's key, bound to the event id and the user).
//! INVARIANT: personal fields never reach the store in clear; when the agency has no data key
//! (deleted) or it cannot be had, they are dropped (marked erased), never written in clear.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{Map, Value};
use tessera_core::AgencyId;
use tessera_store::{AuditEvent, AuditRecord, TenantScope};
use tessera_token::SecretBytes;

use super::data_keys::{DataKeyError, DataKeys};
use super::person_keys::is_user;

/// The user an event's personal data belongs to (see the module doc for the rule).
pub fn subject_of(record: &AuditRecord) -> Option<&str> {
    [
        record.target.as_deref(),
        record.on_behalf_of.as_deref(),
        Some(record.actor.as_str()),
    ]
    .into_iter()
    .flatten()
    .find(|id| is_user(id))
}

/// The associated data of a value sealed under a person's key.
fn person_aad(record_id: &str, subject: &str) -> Vec<u8> {
    format!("{record_id}\0{subject}").into_bytes()
}

/// Seals the personal fields of `record` with `subject`'s person key `key`.
pub fn seal_person(
    key: &SecretBytes<32>,
    agency: &AgencyId,
    subject: &str,
    mut record: AuditRecord,
) -> AuditRecord {
    if let Some(personal) = take_personal(&mut record) {
        let plain = zeroize::Zeroizing::new(Value::Object(personal).to_string());
        let aad = person_aad(record.id.as_str(), subject);
        let sealed = DataKeys::seal_with(key, agency, &aad, plain.as_bytes());
        let text = format!("{agency}:{subject}.{}", URL_SAFE_NO_PAD.encode(sealed));
        set_detail(&mut record, SEALED, Value::String(text));
    }
    record
}

/// The `detail` key that holds the sealed personal fields.
pub const SEALED: &str = "sealed";
/// The `detail` key set when the personal fields could not be kept or opened.
pub const ERASED_FLAG: &str = "personal_data";
/// What reading APIs show in place of personal data whose key is destroyed.
pub const ERASED: &str = "[erased]";

/// `detail` keys that hold personal data in every event.
const PERSONAL_KEYS: &[&str] = &["email", "phone_number"];
/// `detail` keys that hold personal data in events about people (`user.*`).
const PERSON_NAME_KEYS: &[&str] = &["name", "display_name", "given_name", "family_name"];

/// The personal fields of `record`, taken out of it (`None` when it has none).
fn take_personal(record: &mut AuditRecord) -> Option<Map<String, Value>> {
    let mut out = Map::new();
    if let Some(ip) = record.ip.take() {
        out.insert("ip".into(), Value::String(ip));
    }
    if let Some(ua) = record.user_agent.take() {
        out.insert("user_agent".into(), Value::String(ua));
    }
    if let Value::Object(detail) = &mut record.detail {
        // The merged client-credentials issue lists each token with its client's address.
        if let Some(Value::Array(tokens)) = detail.get_mut("tokens") {
            let ips: Vec<Value> = tokens
                .iter_mut()
                .map(|t| {
                    t.as_object_mut()
                        .and_then(|t| t.remove("ip"))
                        .unwrap_or(Value::Null)
                })
                .collect();
            if ips.iter().any(|v| !v.is_null()) {
                out.insert("token_ips".into(), Value::Array(ips));
            }
        }
        let person = record.action.starts_with("user.");
        let mut fields = Map::new();
        for key in PERSONAL_KEYS
            .iter()
            .chain(if person { PERSON_NAME_KEYS } else { &[] })
        {
            if let Some(v) = detail.remove(*key) {
                fields.insert((*key).to_owned(), v);
            }
        }
        if !fields.is_empty() {
            out.insert("detail".into(), Value::Object(fields));
        }
    }
    (!out.is_empty()).then_some(out)
}

/// Whether `record` holds personal fields.
fn has_personal(record: &AuditRecord) -> bool {
    take_personal(&mut record.clone()).is_some()
}

/// Puts `sealed` (or the erased flag) into `detail`, turning a non-object detail into one.
fn set_detail(record: &mut AuditRecord, key: &str, value: Value) {
    if !record.detail.is_object() {
        let old = std::mem::take(&mut record.detail);
        let mut m = Map::new();
        if !old.is_null() {
            m.insert("value".into(), old);
        }
        record.detail = Value::Object(m);
    }
    if let Value::Object(m) = &mut record.detail {
        m.insert(key.to_owned(), value);
    }
}

/// Seals the personal fields of `record` with the agency's data key `key`.
pub fn seal_with(key: &SecretBytes<32>, agency: &AgencyId, mut record: AuditRecord) -> AuditRecord {
    if let Some(personal) = take_personal(&mut record) {
        let plain = zeroize::Zeroizing::new(Value::Object(personal).to_string());
        let sealed =
            DataKeys::seal_with(key, agency, record.id.as_str().as_bytes(), plain.as_bytes());
        // The sealing agency is named: a record built in one agency may be chained in another
        // (an agency's creation is recorded in the new agency's chain, by the platform).
        let text = format!("{agency}.{}", URL_SAFE_NO_PAD.encode(sealed));
        set_detail(&mut record, SEALED, Value::String(text));
    }
    record
}

/// Drops the personal fields of `record`, marking it (the agency has no data key).
pub fn erase(mut record: AuditRecord) -> AuditRecord {
    if take_personal(&mut record).is_some() {
        set_detail(&mut record, ERASED_FLAG, Value::String("erased".into()));
    }
    record
}

/// Seals the personal fields of a record bound for `scope`'s chain with the agency's data key
/// (created on the agency's first event); erased when the agency has none.
pub async fn seal_keys(keys: &DataKeys, scope: &TenantScope, record: AuditRecord) -> AuditRecord {
    let now = record.at;
    if let Some(subject) = subject_of(&record).map(str::to_owned) {
        if !has_personal(&record) {
            return record;
        }
        return match keys.person_key(scope, &subject, true, now).await {
            Ok(key) => seal_person(&key, scope.agency(), &subject, record),
            Err(DataKeyError::Shredded) => erase(record),
            Err(e) => {
                tracing::warn!(error = %e, "no person key: the event's personal data is dropped");
                erase(record)
            }
        };
    }
    match keys.key(scope, true, now).await {
        Ok(key) => seal_with(&key, scope.agency(), record),
        Err(DataKeyError::Shredded) => erase(record),
        Err(e) => {
            tracing::warn!(error = %e, "no data key: the event's personal data is dropped");
            erase(record)
        }
    }
}

/// Loads (creating it on the agency's first event) the key [`seal_keys`] will use for
/// `record`, so that sealing it later finds the key in memory. The audit writer's callers run
/// this in their own task, concurrently, before queueing the event: the writer then seals a
/// batch of a thousand agencies without a store read for any of them. A failure here is met
/// again, and handled, when the writer seals.
pub async fn prepare_keys(keys: &DataKeys, scope: &TenantScope, record: &AuditRecord) {
    let now = record.at;
    let _loaded = match subject_of(record) {
        Some(subject) if has_personal(record) => {
            keys.person_key(scope, subject, true, now).await.map(drop)
        }
        Some(_) => return,
        None => keys.key(scope, true, now).await.map(drop),
    };
}

/// Seals with the key this node holds in memory (sync callers; the gate loads the key of the
/// agency acted in before the handler runs).
pub fn seal_cached(
    keys: &std::sync::Arc<DataKeys>,
    scope: &TenantScope,
    record: AuditRecord,
) -> AuditRecord {
    let agency = scope.agency();
    if let Some(subject) = subject_of(&record).map(str::to_owned) {
        if !has_personal(&record) {
            return record;
        }
        let key = match keys.cached_person(agency, &subject) {
            Some(known) => known,
            None => keys.person_key_now(scope, &subject, record.at),
        };
        return match key {
            Some(key) => seal_person(&key, agency, &subject, record),
            None => {
                tracing::warn!(agency = %agency, "person key not loaded: the event's personal data is dropped");
                erase(record)
            }
        };
    }
    match keys.cached(agency) {
        Some(key) => seal_with(&key, agency, record),
        None if !has_personal(&record) => record,
        None => {
            tracing::warn!(agency = %agency, "data key not loaded: the event's personal data is dropped");
            erase(record)
        }
    }
}

/// Opens the personal fields of stored events for a reading API: back in place when the key
/// exists, the `[erased]` marker when it was destroyed. `admit` gives the scope of the agency
/// that sealed a field when it is not the chain's own.
pub async fn reveal(
    keys: &DataKeys,
    scope: &TenantScope,
    admit: impl Fn(AgencyId) -> TenantScope,
    events: &mut [AuditEvent],
    now: i64,
) {
    let mut cache: std::collections::HashMap<String, Option<std::sync::Arc<SecretBytes<32>>>> =
        std::collections::HashMap::new();
    for e in events.iter_mut() {
        let Some(Value::String(text)) = e.detail.as_object_mut().and_then(|d| d.remove(SEALED))
        else {
            continue;
        };
        let Some((sealer, b64)) = text.split_once('.') else {
            continue;
        };
        // `{agency}` (the agency's key) or `{agency}:{usr}` (the person's key).
        let (agency_text, subject) = match sealer.split_once(':') {
            Some((a, s)) => (a, Some(s)),
            None => (sealer, None),
        };
        let key = match cache.get(sealer) {
            Some(k) => k.clone(),
            None => {
                let k = match agency_text.parse::<AgencyId>() {
                    Ok(a) => {
                        let admitted;
                        let s = if &a == scope.agency() {
                            scope
                        } else {
                            admitted = admit(a);
                            &admitted
                        };
                        match subject {
                            Some(subj) => keys.person_key(s, subj, false, now).await.ok(),
                            None => keys.key(s, false, now).await.ok(),
                        }
                    }
                    Err(_) => None,
                };
                cache.insert(sealer.to_owned(), k.clone());
                k
            }
        };
        let opened = key
            .zip(agency_text.parse::<AgencyId>().ok())
            .and_then(|(k, agency)| {
                let sealed = URL_SAFE_NO_PAD.decode(b64.as_bytes()).ok()?;
                let aad = match subject {
                    Some(subj) => person_aad(e.id.as_str(), subj),
                    None => e.id.as_str().as_bytes().to_vec(),
                };
                let plain = DataKeys::open_with(&k, &agency, &aad, &sealed).ok()?;
                serde_json::from_slice::<Map<String, Value>>(&plain).ok()
            });
        match opened {
            Some(mut p) => {
                e.ip = p.remove("ip").and_then(|v| v.as_str().map(str::to_owned));
                e.user_agent = p
                    .remove("user_agent")
                    .and_then(|v| v.as_str().map(str::to_owned));
                if let (Some(Value::Array(ips)), Some(Value::Array(tokens))) =
                    (p.remove("token_ips"), e.detail.get_mut("tokens"))
                {
                    for (t, ip) in tokens.iter_mut().zip(ips) {
                        if let Some(t) = t.as_object_mut() {
                            t.insert("ip".into(), ip);
                        }
                    }
                }
                if let (Some(Value::Object(fields)), Some(d)) =
                    (p.remove("detail"), e.detail.as_object_mut())
                {
                    d.extend(fields);
                }
            }
            None => {
                e.ip = Some(ERASED.to_owned());
                e.user_agent = Some(ERASED.to_owned());
                if let Some(d) = e.detail.as_object_mut() {
                    d.insert(ERASED_FLAG.to_owned(), Value::String("erased".into()));
                }
            }
        }
    }
}
