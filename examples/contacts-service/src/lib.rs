//! The contacts service: a small resource server protected by `tessera-guard`. Contacts live
//! in memory, per agency and account; every route declares its permission and takes its
//! account from the path, and every request is logged with its subject and actor chain.
//! INVARIANT: a contact is read, changed or deleted only within the tenant the guard resolved
//! (another tenant's contact is 404, exactly like a missing one).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use tessera_guard::{Guard, GuardError, GuardedApp, GuardedRouter, Principal, Rule, Tenancy};

/// A contact.
#[derive(Debug, Clone)]
struct Contact {
    id: String,
    agency: String,
    account: String,
    name: String,
    email: Option<String>,
}

impl Contact {
    fn to_json(&self) -> Value {
        json!({"id": self.id, "account": self.account, "name": self.name, "email": self.email})
    }
}

/// The service's state: contacts and the access log.
#[derive(Debug, Clone, Default)]
pub struct Contacts {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug, Default)]
struct Inner {
    next: u64,
    contacts: BTreeMap<String, Contact>,
    log: Vec<String>,
}

impl Contacts {
    /// The access log lines so far (one per request a handler served).
    pub fn log(&self) -> Vec<String> {
        self.inner.lock().map(|i| i.log.clone()).unwrap_or_default()
    }

    fn record(&self, what: &str, p: &Principal, t: &Tenancy) {
        let actors = p.actors();
        let line = if actors.is_empty() {
            format!(
                "{what} sub={} agency={} account={}",
                p.subject(),
                t.agency,
                t.account.as_deref().unwrap_or("-")
            )
        } else {
            format!(
                "{what} sub={} act={} agency={} account={}",
                p.subject(),
                actors.join(">"),
                t.agency,
                t.account.as_deref().unwrap_or("-")
            )
        };
        tracing::info!(
            subject = p.subject(),
            actor = ?actors,
            client_id = p.client_id().unwrap_or("-"),
            installation = p.installation().unwrap_or("-"),
            "{what}"
        );
        if let Ok(mut i) = self.inner.lock() {
            i.log.push(line);
        }
    }
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [("content-type", "application/problem+json")],
        json!({"type": "https://tessera.dev/problems/not_found", "title": "Not Found",
               "status": 404, "detail": "no such contact", "code": "not_found"})
        .to_string(),
    )
        .into_response()
}

/// The new contact.
#[derive(Debug, Deserialize)]
pub struct NewContact {
    name: String,
    #[serde(default)]
    email: Option<String>,
}

async fn list(State(s): State<Contacts>, p: Principal, t: Tenancy) -> Response {
    s.record("contacts.list", &p, &t);
    let Ok(inner) = s.inner.lock() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let items: Vec<Value> = inner
        .contacts
        .values()
        .filter(|c| c.agency == t.agency && Some(&c.account) == t.account.as_ref())
        .map(Contact::to_json)
        .collect();
    Json(json!({"items": items})).into_response()
}

async fn create(
    State(s): State<Contacts>,
    p: Principal,
    t: Tenancy,
    Json(body): Json<NewContact>,
) -> Response {
    s.record("contacts.create", &p, &t);
    let Some(account) = t.account.clone() else {
        return not_found();
    };
    let name: String = body.name.trim().chars().take(200).collect();
    if name.is_empty() {
        return (StatusCode::UNPROCESSABLE_ENTITY, "name is required").into_response();
    }
    let Ok(mut inner) = s.inner.lock() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    inner.next += 1;
    let contact = Contact {
        id: format!("con_{}", inner.next),
        agency: t.agency.clone(),
        account,
        name,
        email: body.email.map(|e| e.chars().take(200).collect()),
    };
    let out = contact.to_json();
    inner.contacts.insert(contact.id.clone(), contact);
    (StatusCode::CREATED, Json(out)).into_response()
}

/// The contact `id` if it belongs to the tenant `t`.
fn mine(inner: &Inner, t: &Tenancy, id: &str) -> Option<Contact> {
    inner
        .contacts
        .get(id)
        .filter(|c| c.agency == t.agency && Some(&c.account) == t.account.as_ref())
        .cloned()
}

async fn read(
    State(s): State<Contacts>,
    p: Principal,
    t: Tenancy,
    Path((_, id)): Path<(String, String)>,
) -> Response {
    s.record("contacts.read", &p, &t);
    match s.inner.lock().ok().and_then(|i| mine(&i, &t, &id)) {
        Some(c) => Json(c.to_json()).into_response(),
        None => not_found(),
    }
}

async fn remove(
    State(s): State<Contacts>,
    p: Principal,
    t: Tenancy,
    Path((_, id)): Path<(String, String)>,
) -> Response {
    s.record("contacts.delete", &p, &t);
    let Ok(mut inner) = s.inner.lock() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    if mine(&inner, &t, &id).is_none() {
        return not_found();
    }
    inner.contacts.remove(&id);
    StatusCode::NO_CONTENT.into_response()
}

/// The application: every route declares its permission and takes its account from the path.
pub fn app(guard: &Guard, contacts: Contacts) -> Result<GuardedApp, GuardError> {
    let account = |p: &str| Rule::permission(p).account_from("account");
    GuardedRouter::new(guard)
        .get(
            "/v1/accounts/{account}/contacts",
            account("contacts.read"),
            list,
        )
        .post(
            "/v1/accounts/{account}/contacts",
            account("contacts.write"),
            create,
        )
        .get(
            "/v1/accounts/{account}/contacts/{id}",
            account("contacts.read"),
            read,
        )
        .delete(
            "/v1/accounts/{account}/contacts/{id}",
            account("contacts.delete"),
            remove,
        )
        .public_get("/healthz", || async { "ok" })
        .with_state(contacts)
        .build()
}
