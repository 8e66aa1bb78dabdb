//! The storage suite: every case is written once against `Arc<dyn Store>` and run on SQLite
//! (always) and on PostgreSQL (when `TESSERA_TEST_DATABASE_URL` names an admin url).
//! Fixtures are built through the Store API itself.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::sync::Arc;

use tessera_core::{AccountId, AgencyId, BindingId, EventId, KeyId, PrincipalId, UserId};
use tessera_store::audit::verify_chain;
use tessera_store::testing::{notice_pg_skipped, sqlite_store, PgTestDb, SQLITE_DB_FILE};
use tessera_store::{
    Account, Agency, ApiKey, AuditEvent, AuditFilter, AuditRecord, Binding, Bootstrap, ChainHash,
    NewUser, Outcome, PageRequest, SecretHashRecord, Status, Store, StoreError, TenantScope, User,
    UserPatch,
};

// ---------------------------------------------------------------------------------------
// The runner: one sqlite_* and one postgres_* test per case.
// ---------------------------------------------------------------------------------------

macro_rules! cases {
    ($($case:ident => $sqlite:ident, $postgres:ident;)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $sqlite() {
            let (store, _dir) = sqlite_store().await;
            assert_eq!(store.backend(), "sqlite");
            $case(store).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $postgres() {
            let Some(db) = PgTestDb::create().await else {
                notice_pg_skipped();
                return;
            };
            let store = db.store().await;
            assert_eq!(store.backend(), "postgres");
            $case(store).await;
        }
    )*};
}

cases! {
    case_migrations_ping_backend => sqlite_migrations_ping_backend, postgres_migrations_ping_backend;
    case_bootstrap => sqlite_bootstrap, postgres_bootstrap;
    case_agencies => sqlite_agencies, postgres_agencies;
    case_agency_pagination => sqlite_agency_pagination, postgres_agency_pagination;
    case_accounts => sqlite_accounts, postgres_accounts;
    case_users => sqlite_users, postgres_users;
    case_user_email_unique_case_insensitively => sqlite_user_email_unique_case_insensitively, postgres_user_email_unique_case_insensitively;
    case_tenant_isolation => sqlite_tenant_isolation, postgres_tenant_isolation;
    case_scope_wins_over_record_agency => sqlite_scope_wins_over_record_agency, postgres_scope_wins_over_record_agency;
    case_bindings => sqlite_bindings, postgres_bindings;
    case_binding_on_foreign_account_refused => sqlite_binding_on_foreign_account_refused, postgres_binding_on_foreign_account_refused;
    case_delete_account_cascades => sqlite_delete_account_cascades, postgres_delete_account_cascades;
    case_delete_user_removes_bindings => sqlite_delete_user_removes_bindings, postgres_delete_user_removes_bindings;
    case_api_keys => sqlite_api_keys, postgres_api_keys;
    case_touch_api_keys => sqlite_touch_api_keys, postgres_touch_api_keys;
    case_revision => sqlite_revision, postgres_revision;
    case_audit_every_write => sqlite_audit_every_write, postgres_audit_every_write;
    case_audit_tamper_and_list => sqlite_audit_tamper_and_list, postgres_audit_tamper_and_list;
    case_atomic_writes => sqlite_atomic_writes, postgres_atomic_writes;
    case_concurrent_audit => sqlite_concurrent_audit, postgres_concurrent_audit;
    case_concurrent_writes => sqlite_concurrent_writes, postgres_concurrent_writes;
}

// ---------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------

fn now() -> i64 {
    i64::try_from(tessera_core::ids::now_millis()).unwrap()
}

fn page(limit: u32, cursor: Option<String>) -> PageRequest {
    PageRequest { limit, cursor }
}

fn all() -> PageRequest {
    page(200, None)
}

/// An audit record by `actor` doing `action`.
fn record_by(actor: &str, action: &str) -> AuditRecord {
    AuditRecord {
        id: EventId::generate(),
        at: now(),
        actor: actor.to_owned(),
        on_behalf_of: None,
        action: action.to_owned(),
        target: None,
        outcome: Outcome::Success,
        request_id: format!("req-{}", EventId::generate()),
        ip: Some("192.0.2.1".to_owned()),
        user_agent: Some("suite/1".to_owned()),
        detail: serde_json::json!({ "case": "suite", "n": [1, 2, 3], "nested": { "z": true, "a": null } }),
    }
}

fn record(action: &str) -> AuditRecord {
    record_by("system", action)
}

fn secret() -> SecretHashRecord {
    SecretHashRecord {
        hash: rand::random::<[u8; 32]>().to_vec(),
        pepper_version: 1,
    }
}

fn bootstrap_value() -> Bootstrap {
    let at = now();
    let platform = Agency {
        id: AgencyId::generate(),
        name: "Platform".into(),
        status: Status::Active,
        is_platform: true,
        created_at: at,
        updated_at: at,
    };
    let key = ApiKey {
        id: KeyId::generate(),
        agency_id: platform.id.clone(),
        name: "bootstrap".into(),
        account: None,
        scopes: vec!["*".into()],
        created_by: "system".into(),
        created_at: at,
        expires_at: None,
        revoked_at: None,
        last_used_at: None,
        rotated_at: None,
    };
    let binding = Binding {
        id: BindingId::generate(),
        agency_id: platform.id.clone(),
        principal: PrincipalId::Key(key.id.clone()),
        role: "platform_admin".into(),
        account: None,
        created_by: "system".into(),
        created_at: at,
    };
    Bootstrap {
        platform,
        key,
        secret: secret(),
        binding,
        audit: record("platform.bootstrap"),
    }
}

fn agency_value(id: AgencyId, name: &str) -> Agency {
    let at = now();
    Agency {
        id,
        name: name.into(),
        status: Status::Active,
        is_platform: false,
        created_at: at,
        updated_at: at,
    }
}

/// Creates an agency and returns its scope.
async fn agency(store: &Arc<dyn Store>, name: &str) -> TenantScope {
    let a = agency_value(AgencyId::generate(), name);
    store
        .create_agency(&a, &record("agency.create"))
        .await
        .unwrap();
    TenantScope::authenticated(a.id)
}

fn account_value(t: &TenantScope, name: &str) -> Account {
    let at = now();
    Account {
        id: AccountId::generate(),
        agency_id: t.agency().clone(),
        name: name.into(),
        created_at: at,
        updated_at: at,
    }
}

async fn account(store: &Arc<dyn Store>, t: &TenantScope, name: &str) -> Account {
    let a = account_value(t, name);
    store
        .create_account(t, &a, &record("account.create"))
        .await
        .unwrap();
    a
}

async fn user(
    store: &Arc<dyn Store>,
    t: &TenantScope,
    email: &str,
    password: Option<&str>,
) -> User {
    let u = NewUser {
        id: UserId::generate(),
        email: email.into(),
        name: format!("User {email}"),
        password_hash: password.map(str::to_owned),
        now: now(),
    };
    store
        .create_user(t, &u, &record("user.create"))
        .await
        .unwrap()
}

fn binding_value(
    t: &TenantScope,
    principal: &PrincipalId,
    role: &str,
    account: Option<&AccountId>,
) -> Binding {
    Binding {
        id: BindingId::generate(),
        agency_id: t.agency().clone(),
        principal: principal.clone(),
        role: role.into(),
        account: account.cloned(),
        created_by: "system".into(),
        created_at: now(),
    }
}

async fn bind(
    store: &Arc<dyn Store>,
    t: &TenantScope,
    principal: &PrincipalId,
    role: &str,
    account: Option<&AccountId>,
) -> Binding {
    let b = binding_value(t, principal, role, account);
    store
        .create_binding(t, &b, &record("binding.create"))
        .await
        .unwrap();
    b
}

fn key_value(t: &TenantScope, account: Option<&AccountId>) -> ApiKey {
    ApiKey {
        id: KeyId::generate(),
        agency_id: t.agency().clone(),
        name: "ci".into(),
        account: account.cloned(),
        scopes: vec!["accounts:read".into(), "users:write".into()],
        created_by: "system".into(),
        created_at: now(),
        expires_at: Some(now() + 86_400_000),
        revoked_at: None,
        last_used_at: None,
        rotated_at: None,
    }
}

/// Creates a key with one binding per role (on the key's account, if any).
async fn key(
    store: &Arc<dyn Store>,
    t: &TenantScope,
    account: Option<&AccountId>,
    roles: &[&str],
) -> (ApiKey, SecretHashRecord, Vec<Binding>) {
    let k = key_value(t, account);
    let s = secret();
    let principal = PrincipalId::Key(k.id.clone());
    let bindings: Vec<Binding> = roles
        .iter()
        .map(|r| binding_value(t, &principal, r, account))
        .collect();
    store
        .create_api_key(t, &k, &s, &bindings, &record("api_key.create"))
        .await
        .unwrap();
    (k, s, bindings)
}

/// The agency's whole audit chain.
async fn chain(store: &Arc<dyn Store>, t: &TenantScope) -> Vec<AuditEvent> {
    store.audit_chain(t, 0, 100_000).await.unwrap()
}

fn assert_chain_ok(events: &[AuditEvent]) {
    let last = verify_chain(ChainHash::GENESIS, 0, events)
        .unwrap_or_else(|seq| panic!("chain broken at seq {seq}"));
    assert_eq!(
        Some(last),
        events.last().map(|e| e.hash).or(Some(ChainHash::GENESIS))
    );
}

fn is_not_found<T: std::fmt::Debug>(r: Result<T, StoreError>) -> bool {
    matches!(r, Err(StoreError::NotFound))
}

fn assert_conflict<T: std::fmt::Debug>(r: Result<T, StoreError>, want: &str) {
    match r {
        Err(StoreError::Conflict { constraint }) => assert_eq!(constraint, want),
        other => panic!("expected a conflict on `{want}`, got {other:?}"),
    }
}

fn user_principal(u: &User) -> PrincipalId {
    PrincipalId::User(u.id.clone())
}

// ---------------------------------------------------------------------------------------
// Cases
// ---------------------------------------------------------------------------------------

async fn case_migrations_ping_backend(store: Arc<dyn Store>) {
    assert!(matches!(store.backend(), "sqlite" | "postgres"));
    store.ping().await.unwrap();
    // The fixture migrated already: again is a no-op, as often as asked.
    assert_eq!(store.migrate().await.unwrap(), 0);
    assert_eq!(store.migrate().await.unwrap(), 0);
    assert_eq!(store.revision().await.unwrap(), 0);
    assert_eq!(store.platform_agency().await.unwrap(), None);
    let listed = store.list_agencies(&all()).await.unwrap();
    assert!(listed.items.is_empty());
    assert_eq!(listed.next_cursor, None);
    // Data survives a repeated migration.
    let t = agency(&store, "Kept").await;
    assert_eq!(store.migrate().await.unwrap(), 0);
    assert_eq!(store.get_agency(t.agency()).await.unwrap().name, "Kept");
}

async fn case_bootstrap(store: Arc<dyn Store>) {
    let b = bootstrap_value();
    assert!(store.bootstrap(b.clone()).await.unwrap());
    let second = bootstrap_value();
    assert!(
        !store.bootstrap(second.clone()).await.unwrap(),
        "a second bootstrap must change nothing"
    );

    assert_eq!(
        store.platform_agency().await.unwrap().as_ref(),
        Some(&b.platform)
    );
    assert_eq!(store.get_agency(&b.platform.id).await.unwrap(), b.platform);
    assert!(is_not_found(store.get_agency(&second.platform.id).await));
    assert!(
        store.list_agencies(&all()).await.unwrap().items.is_empty(),
        "the platform tenant is not listed"
    );

    let found = store
        .find_key_by_secret(&b.secret.hash)
        .await
        .unwrap()
        .expect("bootstrap key found by its secret");
    assert_eq!(
        (found.agency, found.key.clone(), found.valid_until),
        (b.platform.id.clone(), b.key.id.clone(), None)
    );
    assert_eq!(
        store.find_key_by_secret(&second.secret.hash).await.unwrap(),
        None
    );

    let t = TenantScope::authenticated(b.platform.id.clone());
    assert_eq!(store.get_api_key(&t, &b.key.id).await.unwrap(), b.key);
    assert_eq!(
        store
            .principal_bindings(&t, &PrincipalId::Key(b.key.id.clone()))
            .await
            .unwrap(),
        vec![b.binding.clone()]
    );
    let events = chain(&store, &t).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].record(), b.audit);
    assert_chain_ok(&events);
    assert_eq!(store.revision().await.unwrap(), 1);
    // The platform tenant cannot be deleted.
    assert!(is_not_found(
        store
            .delete_agency(&b.platform.id, now(), &record("agency.delete"))
            .await
    ));
    assert!(store.platform_agency().await.unwrap().is_some());
}

async fn case_agencies(store: Arc<dyn Store>) {
    let a = agency_value(AgencyId::generate(), "Acme");
    store
        .create_agency(&a, &record("agency.create"))
        .await
        .unwrap();
    assert_eq!(store.get_agency(&a.id).await.unwrap(), a);
    assert!(is_not_found(store.get_agency(&AgencyId::generate()).await));
    // A duplicate id conflicts.
    assert!(matches!(
        store.create_agency(&a, &record("agency.create")).await,
        Err(StoreError::Conflict { .. })
    ));

    let later = a.updated_at + 1000;
    let renamed = store
        .update_agency(&a.id, "Acme Corp", later, &record("agency.update"))
        .await
        .unwrap();
    assert_eq!(
        (
            renamed.name.as_str(),
            renamed.updated_at,
            renamed.created_at
        ),
        ("Acme Corp", later, a.created_at)
    );
    assert_eq!(store.get_agency(&a.id).await.unwrap(), renamed);
    assert!(is_not_found(
        store
            .update_agency(&AgencyId::generate(), "x", later, &record("agency.update"))
            .await
    ));

    // A key of the agency authenticates until the agency is deleted.
    let t = TenantScope::authenticated(a.id.clone());
    let (k, s, _) = key(&store, &t, None, &["agency_admin"]).await;
    assert!(store.find_key_by_secret(&s.hash).await.unwrap().is_some());
    let other = agency(&store, "Other").await;
    let (_, other_secret, _) = key(&store, &other, None, &["agency_admin"]).await;

    store
        .delete_agency(&a.id, later + 1, &record("agency.delete"))
        .await
        .unwrap();
    assert!(is_not_found(store.get_agency(&a.id).await));
    let listed: Vec<AgencyId> = store
        .list_agencies(&all())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|x| x.id)
        .collect();
    assert_eq!(listed, vec![other.agency().clone()]);
    assert_eq!(
        store.find_key_by_secret(&s.hash).await.unwrap(),
        None,
        "a deleted agency's keys stop working"
    );
    assert!(store
        .get_api_key(&t, &k.id)
        .await
        .unwrap()
        .revoked_at
        .is_some());
    assert!(
        store
            .find_key_by_secret(&other_secret.hash)
            .await
            .unwrap()
            .is_some(),
        "other agencies are untouched"
    );
    assert!(is_not_found(
        store
            .delete_agency(&a.id, later + 2, &record("agency.delete"))
            .await
    ));
    assert!(is_not_found(
        store
            .update_agency(&a.id, "Zombie", later + 2, &record("agency.update"))
            .await
    ));

    // Its audit trail stays: create, key, update, delete.
    let events = chain(&store, &t).await;
    let actions: Vec<&str> = events.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "agency.create",
            "agency.update",
            "api_key.create",
            "agency.delete"
        ]
    );
    assert_chain_ok(&events);
}

async fn case_agency_pagination(store: Arc<dyn Store>) {
    store.bootstrap(bootstrap_value()).await.unwrap();
    // Ids are ULIDs: one millisecond apart, creation order is id order (oldest first).
    let base = tessera_core::ids::now_millis();
    let mut created = Vec::new();
    for i in 0..5u64 {
        let a = agency_value(
            AgencyId::generate_at(base + i, &mut rand::thread_rng()),
            &format!("Agency {i}"),
        );
        store
            .create_agency(&a, &record("agency.create"))
            .await
            .unwrap();
        created.push(a);
    }
    let mut seen = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let p = store.list_agencies(&page(2, cursor.clone())).await.unwrap();
        pages += 1;
        assert!(p.items.len() <= 2);
        assert!(!p.items.is_empty(), "no empty page is handed out");
        seen.extend(p.items);
        match p.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
        assert!(pages < 10, "pagination does not end");
    }
    assert_eq!(pages, 3);
    assert_eq!(
        seen, created,
        "every agency once, oldest first, the platform tenant not listed"
    );
    // Exactly one page's worth: no dangling cursor.
    let p = store.list_agencies(&page(5, None)).await.unwrap();
    assert_eq!((p.items.len(), p.next_cursor), (5, None));
    // Limits are clamped (0 behaves like 1).
    assert_eq!(
        store
            .list_agencies(&page(0, None))
            .await
            .unwrap()
            .items
            .len(),
        1
    );
}

async fn case_accounts(store: Arc<dyn Store>) {
    let t = agency(&store, "Acme").await;
    assert!(store
        .list_accounts(&t, &all())
        .await
        .unwrap()
        .items
        .is_empty());
    let a = account(&store, &t, "Main").await;
    let b = account(&store, &t, "Side").await;
    assert_eq!(store.get_account(&t, &a.id).await.unwrap(), a);
    let mut want = vec![a.clone(), b.clone()];
    want.sort_by(|x, y| x.id.cmp(&y.id));
    assert_eq!(store.list_accounts(&t, &all()).await.unwrap().items, want);
    let p1 = store.list_accounts(&t, &page(1, None)).await.unwrap();
    let p2 = store
        .list_accounts(&t, &page(1, p1.next_cursor.clone()))
        .await
        .unwrap();
    assert_eq!(
        (p1.items.len(), p2.items.len(), p2.next_cursor),
        (1, 1, None)
    );
    assert_ne!(p1.items[0].id, p2.items[0].id);

    let later = a.updated_at + 5;
    let renamed = store
        .update_account(&t, &a.id, "Primary", later, &record("account.update"))
        .await
        .unwrap();
    assert_eq!(
        (
            renamed.name.as_str(),
            renamed.updated_at,
            renamed.created_at
        ),
        ("Primary", later, a.created_at)
    );
    assert_eq!(store.get_account(&t, &a.id).await.unwrap(), renamed);
    assert!(is_not_found(
        store
            .update_account(
                &t,
                &AccountId::generate(),
                "x",
                later,
                &record("account.update")
            )
            .await
    ));

    store
        .delete_account(&t, &a.id, later, &record("account.delete"))
        .await
        .unwrap();
    assert!(is_not_found(store.get_account(&t, &a.id).await));
    assert!(is_not_found(
        store
            .delete_account(&t, &a.id, later, &record("account.delete"))
            .await
    ));
    assert_eq!(
        store.list_accounts(&t, &all()).await.unwrap().items,
        vec![b]
    );
}

async fn case_users(store: Arc<dyn Store>) {
    let t = agency(&store, "Acme").await;
    let ann = user(
        &store,
        &t,
        "  ann@example.com ",
        Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"),
    )
    .await;
    assert_eq!(ann.email, "ann@example.com", "stored trimmed");
    assert!(ann.has_password);
    assert_eq!((ann.status, &ann.agency_id), (Status::Active, t.agency()));
    let bob = user(&store, &t, "bob@example.com", None).await;
    assert!(!bob.has_password);
    assert_eq!(store.get_user(&t, &ann.id).await.unwrap(), ann);
    assert!(is_not_found(store.get_user(&t, &UserId::generate()).await));
    let mut want = vec![ann.clone(), bob.clone()];
    want.sort_by(|x, y| x.id.cmp(&y.id));
    assert_eq!(store.list_users(&t, &all()).await.unwrap().items, want);

    // Setting a password.
    let later = bob.updated_at + 10;
    let patch = UserPatch {
        password_hash: Some("$argon2id$v=19$new".into()),
        ..UserPatch::default()
    };
    let bob2 = store
        .update_user(&t, &bob.id, &patch, later, &record("user.update"))
        .await
        .unwrap();
    assert!(bob2.has_password);
    assert_eq!(
        (bob2.updated_at, bob2.email.as_str(), bob2.name.as_str()),
        (later, bob.email.as_str(), bob.name.as_str())
    );
    // Name, email, status; other fields stay.
    let patch = UserPatch {
        email: Some(" Robert@Example.com".into()),
        name: Some("Robert".into()),
        status: Some(Status::Disabled),
        password_hash: None,
    };
    let bob3 = store
        .update_user(&t, &bob.id, &patch, later + 1, &record("user.update"))
        .await
        .unwrap();
    assert_eq!(
        (
            bob3.email.as_str(),
            bob3.name.as_str(),
            bob3.status,
            bob3.has_password
        ),
        ("Robert@Example.com", "Robert", Status::Disabled, true)
    );
    assert_eq!(store.get_user(&t, &bob.id).await.unwrap(), bob3);
    // The old address is free again, the new one (in any case) taken.
    user(&store, &t, "BOB@example.com", None).await;
    assert_conflict(
        store
            .create_user(
                &t,
                &NewUser {
                    id: UserId::generate(),
                    email: "robert@EXAMPLE.com".into(),
                    name: "R".into(),
                    password_hash: None,
                    now: now(),
                },
                &record("user.create"),
            )
            .await,
        "email",
    );
    assert!(is_not_found(
        store
            .update_user(
                &t,
                &UserId::generate(),
                &UserPatch::default(),
                later,
                &record("user.update")
            )
            .await
    ));

    store
        .delete_user(&t, &ann.id, later, &record("user.delete"))
        .await
        .unwrap();
    assert!(is_not_found(store.get_user(&t, &ann.id).await));
    assert!(is_not_found(
        store
            .delete_user(&t, &ann.id, later, &record("user.delete"))
            .await
    ));
    assert!(!store
        .list_users(&t, &all())
        .await
        .unwrap()
        .items
        .iter()
        .any(|u| u.id == ann.id));
}

async fn case_user_email_unique_case_insensitively(store: Arc<dyn Store>) {
    let t = agency(&store, "Acme").await;
    let other = agency(&store, "Other").await;
    let ann = user(&store, &t, "Ann.Smith@Example.com", None).await;
    let events = chain(&store, &t).await.len();
    let dup = NewUser {
        id: UserId::generate(),
        email: "ann.smith@example.COM".into(),
        name: "Dup".into(),
        password_hash: None,
        now: now(),
    };
    assert_conflict(
        store.create_user(&t, &dup, &record("user.create")).await,
        "email",
    );
    assert_conflict(
        store
            .create_user(
                &t,
                &NewUser {
                    email: " ANN.SMITH@EXAMPLE.COM ".into(),
                    ..dup.clone()
                },
                &record("user.create"),
            )
            .await,
        "email",
    );
    assert!(is_not_found(store.get_user(&t, &dup.id).await));
    assert_eq!(
        chain(&store, &t).await.len(),
        events,
        "a refused write leaves no audit event"
    );
    // Unique per agency only.
    store
        .create_user(&other, &dup, &record("user.create"))
        .await
        .unwrap();
    // Renaming another user onto the address conflicts too.
    let bea = user(&store, &t, "bea@example.com", None).await;
    let patch = UserPatch {
        email: Some("ANN.smith@example.com".into()),
        ..UserPatch::default()
    };
    assert_conflict(
        store
            .update_user(&t, &bea.id, &patch, now(), &record("user.update"))
            .await,
        "email",
    );
    assert_eq!(
        store.get_user(&t, &bea.id).await.unwrap().email,
        "bea@example.com"
    );
    assert_eq!(store.get_user(&t, &ann.id).await.unwrap(), ann);
}

async fn case_tenant_isolation(store: Arc<dyn Store>) {
    let a = agency(&store, "A").await;
    let b = agency(&store, "B").await;
    let acc = account(&store, &a, "A main").await;
    let usr = user(&store, &a, "ann@a.example", None).await;
    let bnd = bind(
        &store,
        &a,
        &user_principal(&usr),
        "account_admin",
        Some(&acc.id),
    )
    .await;
    let (k, s, _) = key(&store, &a, None, &["agency_viewer"]).await;
    let a_events = chain(&store, &a).await;
    // B has data of its own too, so "empty" below is not vacuous.
    let b_acc = account(&store, &b, "B main").await;
    let b_events = chain(&store, &b).await;
    let rev = store.revision().await.unwrap();
    let at = now();

    assert!(is_not_found(store.get_account(&b, &acc.id).await));
    assert!(is_not_found(
        store
            .update_account(&b, &acc.id, "hijacked", at, &record("account.update"))
            .await
    ));
    assert!(is_not_found(
        store
            .delete_account(&b, &acc.id, at, &record("account.delete"))
            .await
    ));
    assert_eq!(
        store.list_accounts(&b, &all()).await.unwrap().items,
        vec![b_acc]
    );

    assert!(is_not_found(store.get_user(&b, &usr.id).await));
    let patch = UserPatch {
        name: Some("hijacked".into()),
        status: Some(Status::Disabled),
        ..UserPatch::default()
    };
    assert!(is_not_found(
        store
            .update_user(&b, &usr.id, &patch, at, &record("user.update"))
            .await
    ));
    assert!(is_not_found(
        store
            .delete_user(&b, &usr.id, at, &record("user.delete"))
            .await
    ));
    assert!(store.list_users(&b, &all()).await.unwrap().items.is_empty());

    assert!(is_not_found(store.get_binding(&b, &bnd.id).await));
    assert!(is_not_found(
        store
            .delete_binding(&b, &bnd.id, at, &record("binding.delete"))
            .await
    ));
    assert!(store
        .list_bindings(&b, None, &all())
        .await
        .unwrap()
        .items
        .is_empty());
    assert!(store
        .list_bindings(&b, Some(&user_principal(&usr)), &all())
        .await
        .unwrap()
        .items
        .is_empty());
    assert!(store
        .principal_bindings(&b, &user_principal(&usr))
        .await
        .unwrap()
        .is_empty());

    assert!(is_not_found(store.get_api_key(&b, &k.id).await));
    assert!(is_not_found(
        store
            .revoke_api_key(&b, &k.id, at, &record("api_key.revoke"))
            .await
    ));
    assert!(is_not_found(
        store
            .rotate_api_key(
                &b,
                &k.id,
                &secret(),
                at + 1000,
                at,
                &record("api_key.rotate")
            )
            .await
    ));
    assert!(store
        .list_api_keys(&b, &all())
        .await
        .unwrap()
        .items
        .is_empty());
    // touch with the wrong agency does nothing.
    store
        .touch_api_keys(&[(b.agency().clone(), k.id.clone(), at)])
        .await
        .unwrap();

    let b_audit = store
        .list_audit(&b, &AuditFilter::default(), &all())
        .await
        .unwrap()
        .items;
    assert_eq!(b_audit, b_events);
    assert!(b_audit.iter().all(|e| &e.agency_id == b.agency()));

    // Nothing of A changed, nothing was audited in A, no revision was spent.
    assert_eq!(store.get_account(&a, &acc.id).await.unwrap(), acc);
    assert_eq!(store.get_user(&a, &usr.id).await.unwrap(), usr);
    assert_eq!(store.get_binding(&a, &bnd.id).await.unwrap(), bnd);
    assert_eq!(store.get_api_key(&a, &k.id).await.unwrap(), k);
    assert!(store.find_key_by_secret(&s.hash).await.unwrap().is_some());
    assert_eq!(chain(&store, &a).await, a_events);
    assert_eq!(chain(&store, &b).await, b_events);
    assert_eq!(store.revision().await.unwrap(), rev);
}

/// A record naming another agency does not let a scope write there: the scope decides.
async fn case_scope_wins_over_record_agency(store: Arc<dyn Store>) {
    let a = agency(&store, "A").await;
    let b = agency(&store, "B").await;
    let usr = user(&store, &a, "ann@a.example", None).await;
    let mut bnd = binding_value(&a, &user_principal(&usr), "agency_admin", None);
    bnd.agency_id = b.agency().clone();
    let mut k = key_value(&a, None);
    k.agency_id = b.agency().clone();
    let s = secret();
    let mut kb = binding_value(&a, &PrincipalId::Key(k.id.clone()), "agency_admin", None);
    kb.agency_id = b.agency().clone();
    let b_events = chain(&store, &b).await;

    let created_binding = store
        .create_binding(&a, &bnd, &record("binding.create"))
        .await;
    let created_key = store
        .create_api_key(&a, &k, &s, &[kb.clone()], &record("api_key.create"))
        .await;

    // Whatever the outcome, agency B gained nothing.
    assert!(store
        .list_bindings(&b, None, &all())
        .await
        .unwrap()
        .items
        .is_empty());
    assert!(store
        .list_api_keys(&b, &all())
        .await
        .unwrap()
        .items
        .is_empty());
    assert!(is_not_found(store.get_binding(&b, &bnd.id).await));
    assert!(is_not_found(store.get_api_key(&b, &k.id).await));
    assert_eq!(chain(&store, &b).await, b_events);
    // And the writes landed in the scope's agency, as create_account does with its record.
    created_binding.unwrap();
    created_key.unwrap();
    assert_eq!(
        store.get_binding(&a, &bnd.id).await.unwrap().agency_id,
        *a.agency()
    );
    assert_eq!(
        store.get_api_key(&a, &k.id).await.unwrap().agency_id,
        *a.agency()
    );
    assert_eq!(
        store
            .principal_bindings(&a, &PrincipalId::Key(k.id.clone()))
            .await
            .unwrap()
            .len(),
        1
    );
    let found = store.find_key_by_secret(&s.hash).await.unwrap().unwrap();
    assert_eq!(&found.agency, a.agency());
}

async fn case_bindings(store: Arc<dyn Store>) {
    let t = agency(&store, "Acme").await;
    let acc = account(&store, &t, "Main").await;
    let acc2 = account(&store, &t, "Second").await;
    let ann = user_principal(&user(&store, &t, "ann@example.com", None).await);
    let bob = user_principal(&user(&store, &t, "bob@example.com", None).await);

    let wide = bind(&store, &t, &ann, "agency_viewer", None).await;
    let on_acc = bind(&store, &t, &ann, "account_admin", Some(&acc.id)).await;
    assert_eq!(store.get_binding(&t, &wide.id).await.unwrap(), wide);
    assert_eq!(store.get_binding(&t, &on_acc.id).await.unwrap(), on_acc);

    // Same principal, role and scope: a conflict, for agency-wide and account bindings alike.
    let events = chain(&store, &t).await.len();
    let rev = store.revision().await.unwrap();
    assert_conflict(
        store
            .create_binding(
                &t,
                &binding_value(&t, &ann, "account_admin", Some(&acc.id)),
                &record("binding.create"),
            )
            .await,
        "binding",
    );
    assert_conflict(
        store
            .create_binding(
                &t,
                &binding_value(&t, &ann, "agency_viewer", None),
                &record("binding.create"),
            )
            .await,
        "binding",
    );
    assert_eq!(
        (
            chain(&store, &t).await.len(),
            store.revision().await.unwrap()
        ),
        (events, rev)
    );
    // Any one of the three differing is fine.
    let on_acc2 = bind(&store, &t, &ann, "account_admin", Some(&acc2.id)).await;
    let wide_admin = bind(&store, &t, &ann, "account_admin", None).await;
    let bob_acc = bind(&store, &t, &bob, "account_admin", Some(&acc.id)).await;

    let mut want = vec![
        wide.clone(),
        on_acc.clone(),
        on_acc2.clone(),
        wide_admin.clone(),
    ];
    want.sort_by(|x, y| x.id.cmp(&y.id));
    let got = store.principal_bindings(&t, &ann).await.unwrap();
    assert_eq!(
        got, want,
        "agency-wide and account bindings are both returned"
    );
    assert_eq!(
        store
            .list_bindings(&t, Some(&ann), &all())
            .await
            .unwrap()
            .items,
        want
    );
    assert_eq!(
        store
            .list_bindings(&t, Some(&bob), &all())
            .await
            .unwrap()
            .items,
        vec![bob_acc.clone()]
    );
    assert_eq!(
        store
            .list_bindings(&t, None, &all())
            .await
            .unwrap()
            .items
            .len(),
        5
    );
    // Paging through all five, two at a time.
    let (mut ids, mut cursor) = (Vec::new(), None);
    loop {
        let p = store
            .list_bindings(&t, None, &page(2, cursor))
            .await
            .unwrap();
        ids.extend(p.items.into_iter().map(|b| b.id));
        cursor = p.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    let unique: BTreeSet<_> = ids.iter().cloned().collect();
    assert_eq!((ids.len(), unique.len()), (5, 5));
    assert!(ids.windows(2).all(|w| w[0] < w[1]));

    store
        .delete_binding(&t, &on_acc.id, now(), &record("binding.delete"))
        .await
        .unwrap();
    assert!(is_not_found(store.get_binding(&t, &on_acc.id).await));
    assert!(is_not_found(
        store
            .delete_binding(&t, &on_acc.id, now(), &record("binding.delete"))
            .await
    ));
    assert_eq!(store.principal_bindings(&t, &ann).await.unwrap().len(), 3);
    // Once deleted, the same binding can be made again.
    bind(&store, &t, &ann, "account_admin", Some(&acc.id)).await;
}

async fn case_binding_on_foreign_account_refused(store: Arc<dyn Store>) {
    let a = agency(&store, "A").await;
    let b = agency(&store, "B").await;
    let ann = user_principal(&user(&store, &a, "ann@a.example", None).await);
    let b_acc = account(&store, &b, "B main").await;
    let (a_events, b_events) = (chain(&store, &a).await, chain(&store, &b).await);
    let rev = store.revision().await.unwrap();

    let foreign = binding_value(&a, &ann, "account_admin", Some(&b_acc.id));
    let r = store
        .create_binding(&a, &foreign, &record("binding.create"))
        .await;
    assert!(
        r.is_err(),
        "a binding on another agency's account must be refused, got {r:?}"
    );
    // Also for an id that names no account at all.
    let r = store
        .create_binding(
            &a,
            &binding_value(&a, &ann, "account_admin", Some(&AccountId::generate())),
            &record("binding.create"),
        )
        .await;
    assert!(
        r.is_err(),
        "a binding on a missing account must be refused, got {r:?}"
    );
    // And through a key's bindings: nothing of the key is written either.
    let k = key_value(&a, None);
    let s = secret();
    let kb = binding_value(
        &a,
        &PrincipalId::Key(k.id.clone()),
        "account_admin",
        Some(&b_acc.id),
    );
    assert!(store
        .create_api_key(&a, &k, &s, &[kb], &record("api_key.create"))
        .await
        .is_err());
    // A key bound to another agency's account is refused as well.
    let k2 = key_value(&a, Some(&b_acc.id));
    assert!(store
        .create_api_key(&a, &k2, &secret(), &[], &record("api_key.create"))
        .await
        .is_err());

    assert!(is_not_found(store.get_binding(&a, &foreign.id).await));
    assert!(store.principal_bindings(&a, &ann).await.unwrap().is_empty());
    assert!(store
        .list_bindings(&b, None, &all())
        .await
        .unwrap()
        .items
        .is_empty());
    assert!(is_not_found(store.get_api_key(&a, &k.id).await));
    assert!(is_not_found(store.get_api_key(&a, &k2.id).await));
    assert_eq!(store.find_key_by_secret(&s.hash).await.unwrap(), None);
    assert_eq!(chain(&store, &a).await, a_events);
    assert_eq!(chain(&store, &b).await, b_events);
    assert_eq!(store.revision().await.unwrap(), rev);
}

async fn case_delete_account_cascades(store: Arc<dyn Store>) {
    let t = agency(&store, "Acme").await;
    let gone = account(&store, &t, "Gone").await;
    let kept = account(&store, &t, "Kept").await;
    let ann = user_principal(&user(&store, &t, "ann@example.com", None).await);
    let wide = bind(&store, &t, &ann, "agency_viewer", None).await;
    let on_gone = bind(&store, &t, &ann, "account_admin", Some(&gone.id)).await;
    let on_kept = bind(&store, &t, &ann, "account_admin", Some(&kept.id)).await;
    // A key bound to the account (its bindings on it), and an agency-wide key.
    let (acc_key, acc_secret, _) = key(
        &store,
        &t,
        Some(&gone.id),
        &["account_admin", "account_viewer"],
    )
    .await;
    let (wide_key, wide_secret, wide_key_bindings) =
        key(&store, &t, None, &["agency_viewer"]).await;
    let wide_key_on_gone = bind(
        &store,
        &t,
        &PrincipalId::Key(wide_key.id.clone()),
        "account_admin",
        Some(&gone.id),
    )
    .await;
    let (kept_key, kept_secret, _) = key(&store, &t, Some(&kept.id), &["account_admin"]).await;
    let events = chain(&store, &t).await.len();
    let rev = store.revision().await.unwrap();

    store
        .delete_account(&t, &gone.id, now(), &record("account.delete"))
        .await
        .unwrap();

    assert!(is_not_found(store.get_account(&t, &gone.id).await));
    assert!(is_not_found(store.get_binding(&t, &on_gone.id).await));
    assert!(is_not_found(
        store.get_binding(&t, &wide_key_on_gone.id).await
    ));
    let mut left = vec![wide.clone(), on_kept.clone()];
    left.sort_by(|x, y| x.id.cmp(&y.id));
    assert_eq!(store.principal_bindings(&t, &ann).await.unwrap(), left);
    // The account's key no longer works (gone or revoked), nor do its bindings.
    match store.get_api_key(&t, &acc_key.id).await {
        Err(StoreError::NotFound) => {}
        Ok(k) => assert!(
            k.revoked_at.is_some(),
            "an account-bound key must not survive its account: {k:?}"
        ),
        Err(e) => panic!("{e}"),
    }
    assert_eq!(
        store.find_key_by_secret(&acc_secret.hash).await.unwrap(),
        None
    );
    assert!(store
        .principal_bindings(&t, &PrincipalId::Key(acc_key.id.clone()))
        .await
        .unwrap()
        .is_empty());
    // Other keys and their other bindings stay.
    assert!(store
        .find_key_by_secret(&wide_secret.hash)
        .await
        .unwrap()
        .is_some());
    assert!(store
        .find_key_by_secret(&kept_secret.hash)
        .await
        .unwrap()
        .is_some());
    assert_eq!(
        store
            .principal_bindings(&t, &PrincipalId::Key(wide_key.id.clone()))
            .await
            .unwrap(),
        wide_key_bindings
    );
    assert_eq!(store.get_api_key(&t, &kept_key.id).await.unwrap(), kept_key);
    let evs = chain(&store, &t).await;
    assert_eq!(evs.len(), events + 1);
    assert_eq!(evs.last().unwrap().action, "account.delete");
    assert!(store.revision().await.unwrap() > rev);
}

async fn case_delete_user_removes_bindings(store: Arc<dyn Store>) {
    let t = agency(&store, "Acme").await;
    let acc = account(&store, &t, "Main").await;
    let ann = user(&store, &t, "ann@example.com", None).await;
    let bob = user(&store, &t, "bob@example.com", None).await;
    bind(&store, &t, &user_principal(&ann), "agency_viewer", None).await;
    let ann_acc = bind(
        &store,
        &t,
        &user_principal(&ann),
        "account_admin",
        Some(&acc.id),
    )
    .await;
    let bob_b = bind(&store, &t, &user_principal(&bob), "agency_viewer", None).await;
    let rev = store.revision().await.unwrap();

    store
        .delete_user(&t, &ann.id, now(), &record("user.delete"))
        .await
        .unwrap();
    assert!(store
        .principal_bindings(&t, &user_principal(&ann))
        .await
        .unwrap()
        .is_empty());
    assert!(is_not_found(store.get_binding(&t, &ann_acc.id).await));
    assert_eq!(
        store.list_bindings(&t, None, &all()).await.unwrap().items,
        vec![bob_b]
    );
    assert!(store.revision().await.unwrap() > rev);
    // A user made later with the same address starts with nothing.
    let again = user(&store, &t, "ann@example.com", None).await;
    assert!(store
        .principal_bindings(&t, &user_principal(&again))
        .await
        .unwrap()
        .is_empty());
}

async fn case_api_keys(store: Arc<dyn Store>) {
    let t = agency(&store, "Acme").await;
    let (k, s1, bindings) = key(&store, &t, None, &["agency_admin", "agency_viewer"]).await;
    let principal = PrincipalId::Key(k.id.clone());
    assert_eq!(store.get_api_key(&t, &k.id).await.unwrap(), k);
    assert_eq!(
        store.list_api_keys(&t, &all()).await.unwrap().items,
        vec![k.clone()]
    );
    let m = store.find_key_by_secret(&s1.hash).await.unwrap().unwrap();
    assert_eq!(
        (&m.agency, &m.key, m.valid_until),
        (t.agency(), &k.id, None)
    );
    assert_eq!(
        store.find_key_by_secret(&secret().hash).await.unwrap(),
        None
    );
    let mut want = bindings.clone();
    want.sort_by(|x, y| x.id.cmp(&y.id));
    assert_eq!(
        store.principal_bindings(&t, &principal).await.unwrap(),
        want
    );
    // One secret hash belongs to one key, across agencies.
    let other = agency(&store, "Other").await;
    let dup = key_value(&other, None);
    assert_conflict(
        store
            .create_api_key(&other, &dup, &s1, &[], &record("api_key.create"))
            .await,
        "secret",
    );
    assert!(is_not_found(store.get_api_key(&other, &dup.id).await));

    // Rotation: both secrets work, the old one until the grace time.
    let t0 = now();
    let grace = t0 + 60_000;
    let s2 = secret();
    let rotated = store
        .rotate_api_key(&t, &k.id, &s2, grace, t0, &record("api_key.rotate"))
        .await
        .unwrap();
    assert_eq!((rotated.rotated_at, rotated.revoked_at), (Some(t0), None));
    let old = store.find_key_by_secret(&s1.hash).await.unwrap().unwrap();
    assert_eq!((&old.key, old.valid_until), (&k.id, Some(grace)));
    let new = store.find_key_by_secret(&s2.hash).await.unwrap().unwrap();
    assert_eq!((&new.key, new.valid_until), (&k.id, None));
    // Rotating again after the grace drops the expired secret and caps the current one.
    let t1 = grace + 1;
    let s3 = secret();
    store
        .rotate_api_key(&t, &k.id, &s3, t1 + 60_000, t1, &record("api_key.rotate"))
        .await
        .unwrap();
    assert_eq!(store.find_key_by_secret(&s1.hash).await.unwrap(), None);
    assert_eq!(
        store
            .find_key_by_secret(&s2.hash)
            .await
            .unwrap()
            .unwrap()
            .valid_until,
        Some(t1 + 60_000)
    );
    assert_eq!(
        store
            .find_key_by_secret(&s3.hash)
            .await
            .unwrap()
            .unwrap()
            .valid_until,
        None
    );
    // A later grace never extends an earlier one.
    let s4 = secret();
    store
        .rotate_api_key(
            &t,
            &k.id,
            &s4,
            t1 + 120_000,
            t1 + 1,
            &record("api_key.rotate"),
        )
        .await
        .unwrap();
    assert_eq!(
        store
            .find_key_by_secret(&s2.hash)
            .await
            .unwrap()
            .unwrap()
            .valid_until,
        Some(t1 + 60_000)
    );
    assert_eq!(
        store
            .find_key_by_secret(&s3.hash)
            .await
            .unwrap()
            .unwrap()
            .valid_until,
        Some(t1 + 120_000)
    );
    assert!(is_not_found(
        store
            .rotate_api_key(
                &t,
                &KeyId::generate(),
                &secret(),
                grace,
                t1,
                &record("api_key.rotate")
            )
            .await
    ));

    // Revocation: every secret stops at once, the bindings go, the key stays visible.
    let events = chain(&store, &t).await.len();
    let at = t1 + 2;
    let revoked = store
        .revoke_api_key(&t, &k.id, at, &record("api_key.revoke"))
        .await
        .unwrap();
    assert_eq!(revoked.revoked_at, Some(at));
    for s in [&s1, &s2, &s3, &s4] {
        assert_eq!(store.find_key_by_secret(&s.hash).await.unwrap(), None);
    }
    assert!(store
        .principal_bindings(&t, &principal)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(store.get_api_key(&t, &k.id).await.unwrap(), revoked);
    assert_eq!(
        store.list_api_keys(&t, &all()).await.unwrap().items,
        vec![revoked.clone()]
    );
    assert_eq!(chain(&store, &t).await.len(), events + 1);
    // Revoking again changes nothing (and audits nothing); a revoked key cannot be rotated.
    let again = store
        .revoke_api_key(&t, &k.id, at + 5, &record("api_key.revoke"))
        .await
        .unwrap();
    assert_eq!(again.revoked_at, Some(at));
    assert_eq!(chain(&store, &t).await.len(), events + 1);
    let s5 = secret();
    assert!(is_not_found(
        store
            .rotate_api_key(&t, &k.id, &s5, at + 10, at + 6, &record("api_key.rotate"))
            .await
    ));
    assert_eq!(store.find_key_by_secret(&s5.hash).await.unwrap(), None);
    assert!(is_not_found(
        store
            .revoke_api_key(&t, &KeyId::generate(), at, &record("api_key.revoke"))
            .await
    ));
}

async fn case_touch_api_keys(store: Arc<dyn Store>) {
    let t = agency(&store, "Acme").await;
    let other = agency(&store, "Other").await;
    let (k1, _, _) = key(&store, &t, None, &[]).await;
    let (k2, _, _) = key(&store, &t, None, &[]).await;
    let (k3, _, _) = key(&store, &other, None, &[]).await;
    let rev = store.revision().await.unwrap();
    let events = (
        chain(&store, &t).await.len(),
        chain(&store, &other).await.len(),
    );
    let t0 = now();

    store.touch_api_keys(&[]).await.unwrap();
    store
        .touch_api_keys(&[
            (t.agency().clone(), k1.id.clone(), t0),
            (other.agency().clone(), k3.id.clone(), t0 + 7),
        ])
        .await
        .unwrap();
    assert_eq!(
        store.get_api_key(&t, &k1.id).await.unwrap().last_used_at,
        Some(t0)
    );
    assert_eq!(
        store.get_api_key(&t, &k2.id).await.unwrap().last_used_at,
        None
    );
    assert_eq!(
        store
            .get_api_key(&other, &k3.id)
            .await
            .unwrap()
            .last_used_at,
        Some(t0 + 7)
    );
    // Never backwards, also within one batch.
    store
        .touch_api_keys(&[(t.agency().clone(), k1.id.clone(), t0 - 1000)])
        .await
        .unwrap();
    assert_eq!(
        store.get_api_key(&t, &k1.id).await.unwrap().last_used_at,
        Some(t0)
    );
    store
        .touch_api_keys(&[
            (t.agency().clone(), k1.id.clone(), t0 + 50),
            (t.agency().clone(), k1.id.clone(), t0 + 20),
        ])
        .await
        .unwrap();
    assert_eq!(
        store.get_api_key(&t, &k1.id).await.unwrap().last_used_at,
        Some(t0 + 50)
    );
    // A key under the wrong agency is not touched, and an unknown key is no error.
    store
        .touch_api_keys(&[
            (t.agency().clone(), k3.id.clone(), t0 + 100),
            (t.agency().clone(), KeyId::generate(), t0),
        ])
        .await
        .unwrap();
    assert_eq!(
        store
            .get_api_key(&other, &k3.id)
            .await
            .unwrap()
            .last_used_at,
        Some(t0 + 7)
    );
    // Bookkeeping only: no revision, no audit event.
    assert_eq!(store.revision().await.unwrap(), rev);
    assert_eq!(
        (
            chain(&store, &t).await.len(),
            chain(&store, &other).await.len()
        ),
        events
    );
}

async fn case_revision(store: Arc<dyn Store>) {
    let r0 = store.revision().await.unwrap();
    let t = agency(&store, "Acme").await;
    let r1 = store.revision().await.unwrap();
    assert!(r1 > r0, "agency.create changes decisions");
    let acc = account(&store, &t, "Main").await;
    let ann = user(&store, &t, "ann@example.com", None).await;
    let r2 = store.revision().await.unwrap();

    let b = bind(
        &store,
        &t,
        &user_principal(&ann),
        "account_admin",
        Some(&acc.id),
    )
    .await;
    let r3 = store.revision().await.unwrap();
    assert!(r3 > r2, "binding create: {r2} -> {r3}");
    let (k, _, _) = key(&store, &t, None, &["agency_viewer"]).await;
    let r4 = store.revision().await.unwrap();
    assert!(r4 > r3, "key create: {r3} -> {r4}");

    // Reads change nothing.
    store.get_binding(&t, &b.id).await.unwrap();
    store.list_bindings(&t, None, &all()).await.unwrap();
    store
        .principal_bindings(&t, &user_principal(&ann))
        .await
        .unwrap();
    store.get_api_key(&t, &k.id).await.unwrap();
    store.list_api_keys(&t, &all()).await.unwrap();
    store.get_account(&t, &acc.id).await.unwrap();
    store.list_accounts(&t, &all()).await.unwrap();
    store.get_user(&t, &ann.id).await.unwrap();
    store.list_users(&t, &all()).await.unwrap();
    store.get_agency(t.agency()).await.unwrap();
    store.list_agencies(&all()).await.unwrap();
    store.find_key_by_secret(&secret().hash).await.unwrap();
    store
        .list_audit(&t, &AuditFilter::default(), &all())
        .await
        .unwrap();
    store.audit_chain(&t, 0, 10).await.unwrap();
    assert_eq!(store.revision().await.unwrap(), r4);
    // So does a refused write.
    assert!(store
        .create_binding(&t, &b, &record("binding.create"))
        .await
        .is_err());
    assert_eq!(store.revision().await.unwrap(), r4);

    store
        .delete_binding(&t, &b.id, now(), &record("binding.delete"))
        .await
        .unwrap();
    let r5 = store.revision().await.unwrap();
    assert!(r5 > r4, "binding delete: {r4} -> {r5}");
    store
        .revoke_api_key(&t, &k.id, now(), &record("api_key.revoke"))
        .await
        .unwrap();
    let r6 = store.revision().await.unwrap();
    assert!(r6 > r5, "key revoke: {r5} -> {r6}");
    let patch = UserPatch {
        status: Some(Status::Disabled),
        ..UserPatch::default()
    };
    store
        .update_user(&t, &ann.id, &patch, now(), &record("user.update"))
        .await
        .unwrap();
    let r7 = store.revision().await.unwrap();
    assert!(r7 > r6, "user disable: {r6} -> {r7}");
    store
        .delete_agency(t.agency(), now(), &record("agency.delete"))
        .await
        .unwrap();
    assert!(store.revision().await.unwrap() > r7, "agency delete");
}

/// Every write appends exactly one event, to its own agency's chain, and the chain verifies.
async fn case_audit_every_write(store: Arc<dyn Store>) {
    let t = agency(&store, "Acme").await;
    let other = agency(&store, "Other").await;
    let other_events = chain(&store, &other).await;
    let mut expected: Vec<AuditRecord> = Vec::new();
    let first = chain(&store, &t).await;
    assert_eq!(first.len(), 1);
    expected.push(first[0].record());

    // Runs one write with a fresh record and checks the one event it appended.
    macro_rules! audited {
        ($action:literal, |$r:ident| $call:expr) => {{
            let $r = record_by("usr_suite", $action);
            let out = $call.await.unwrap();
            expected.push($r.clone());
            let events = chain(&store, &t).await;
            assert_eq!(
                events.len(),
                expected.len(),
                "`{}` appended exactly one event",
                $action
            );
            let last = events.last().unwrap();
            assert_eq!(last.record(), $r);
            assert_eq!(
                (last.seq, &last.agency_id),
                (i64::try_from(expected.len()).unwrap(), t.agency())
            );
            out
        }};
    }

    let at = now();
    let acc = account_value(&t, "Main");
    audited!("account.create", |r| store.create_account(&t, &acc, &r));
    audited!("account.update", |r| store
        .update_account(&t, &acc.id, "Primary", at, &r));
    let nu = NewUser {
        id: UserId::generate(),
        email: "ann@example.com".into(),
        name: "Ann".into(),
        password_hash: None,
        now: at,
    };
    let ann = audited!("user.create", |r| store.create_user(&t, &nu, &r));
    let patch = UserPatch {
        name: Some("Annie".into()),
        ..UserPatch::default()
    };
    audited!("user.update", |r| store
        .update_user(&t, &ann.id, &patch, at, &r));
    let b = binding_value(&t, &user_principal(&ann), "account_admin", Some(&acc.id));
    audited!("binding.create", |r| store.create_binding(&t, &b, &r));
    audited!("binding.delete", |r| store
        .delete_binding(&t, &b.id, at, &r));
    let k = key_value(&t, None);
    let kb = [binding_value(
        &t,
        &PrincipalId::Key(k.id.clone()),
        "agency_viewer",
        None,
    )];
    audited!("api_key.create", |r| store.create_api_key(
        &t,
        &k,
        &secret(),
        &kb,
        &r
    ));
    audited!("api_key.rotate", |r| store.rotate_api_key(
        &t,
        &k.id,
        &secret(),
        at + 1000,
        at,
        &r
    ));
    audited!("api_key.revoke", |r| store
        .revoke_api_key(&t, &k.id, at, &r));
    audited!("auth.denied", |r| store.append_audit(&t, &r));
    audited!("user.delete", |r| store.delete_user(&t, &ann.id, at, &r));
    audited!("account.delete", |r| store
        .delete_account(&t, &acc.id, at, &r));
    audited!("agency.update", |r| store.update_agency(
        t.agency(),
        "Acme 2",
        at,
        &r
    ));
    audited!("agency.delete", |r| store.delete_agency(t.agency(), at, &r));

    let events = chain(&store, &t).await;
    assert_chain_ok(&events);
    assert_eq!(
        events.iter().map(AuditEvent::record).collect::<Vec<_>>(),
        expected
    );
    assert_eq!(
        events.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1..=i64::try_from(expected.len()).unwrap()).collect::<Vec<_>>()
    );
    // Nothing leaked into the other agency's chain.
    assert_eq!(chain(&store, &other).await, other_events);
}

async fn case_audit_tamper_and_list(store: Arc<dyn Store>) {
    let t = agency(&store, "Acme").await;
    let other = agency(&store, "Other").await;
    for i in 0..9 {
        let actor = if i % 3 == 0 { "usr_alice" } else { "key_ci" };
        let action = if i % 2 == 0 {
            "auth.denied"
        } else {
            "auth.login"
        };
        let mut r = record_by(actor, action);
        r.outcome = if i % 2 == 0 {
            Outcome::Denied
        } else {
            Outcome::Success
        };
        r.on_behalf_of = (i == 4).then(|| "usr_bob".to_owned());
        r.target = Some(format!("acc_{i}"));
        r.ip = None;
        r.detail = serde_json::json!({ "i": i, "unicode": "é✓", "quote": "\"" });
        let e = store.append_audit(&t, &r).await.unwrap();
        assert_eq!(e.record(), r);
        assert_eq!(e.seq, i + 2);
    }
    let events = chain(&store, &t).await;
    assert_eq!(events.len(), 10);
    assert_chain_ok(&events);

    // Chunked reading continues the chain from where it left off.
    let head = store.audit_chain(&t, 0, 4).await.unwrap();
    let tail = store.audit_chain(&t, 4, 100).await.unwrap();
    assert_eq!((head.len(), tail.len()), (4, 6));
    let mid = verify_chain(ChainHash::GENESIS, 0, &head).unwrap();
    assert_eq!(verify_chain(mid, 4, &tail), Ok(events[9].hash));
    assert_eq!(
        verify_chain(ChainHash::GENESIS, 0, &tail),
        Err(5),
        "a chunk does not verify from genesis"
    );

    // Tampering in memory is caught, at the event tampered with.
    let mut forged = events.clone();
    forged[4].action = "auth.login.forged".into();
    assert_eq!(verify_chain(ChainHash::GENESIS, 0, &forged), Err(5));
    let mut forged = events.clone();
    forged[7].detail = serde_json::json!({ "i": 999 });
    assert_eq!(verify_chain(ChainHash::GENESIS, 0, &forged), Err(8));
    let mut dropped = events.clone();
    dropped.remove(2);
    assert_eq!(verify_chain(ChainHash::GENESIS, 0, &dropped), Err(4));
    let mut swapped = events.clone();
    swapped.swap(5, 6);
    assert_eq!(verify_chain(ChainHash::GENESIS, 0, &swapped), Err(7));

    // Filters.
    let by = |actor: Option<&str>, action: Option<&str>| AuditFilter {
        after: None,
        actor: actor.map(Into::into),
        action: action.map(Into::into),
    };
    let alice = store
        .list_audit(&t, &by(Some("usr_alice"), None), &all())
        .await
        .unwrap();
    assert_eq!(
        alice.items.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [2, 5, 8]
    );
    assert_eq!(alice.next_cursor, None);
    let denied = store
        .list_audit(&t, &by(None, Some("auth.denied")), &all())
        .await
        .unwrap()
        .items;
    assert_eq!(
        denied.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [2, 4, 6, 8, 10]
    );
    let both = store
        .list_audit(&t, &by(Some("usr_alice"), Some("auth.denied")), &all())
        .await
        .unwrap()
        .items;
    assert_eq!(both.iter().map(|e| e.seq).collect::<Vec<_>>(), [2, 8]);
    let after = AuditFilter {
        after: Some(events[6].at),
        ..AuditFilter::default()
    };
    assert!(store
        .list_audit(&t, &after, &all())
        .await
        .unwrap()
        .items
        .iter()
        .all(|e| e.at >= events[6].at));
    assert!(store
        .list_audit(&t, &by(Some("nobody"), None), &all())
        .await
        .unwrap()
        .items
        .is_empty());

    // Pagination by sequence number, filtered and not.
    let mut seqs = Vec::new();
    let mut cursor = None;
    loop {
        let p = store
            .list_audit(&t, &AuditFilter::default(), &page(3, cursor))
            .await
            .unwrap();
        assert!(p.items.len() <= 3);
        seqs.extend(p.items.iter().map(|e| e.seq));
        if let (Some(c), Some(last)) = (&p.next_cursor, p.items.last()) {
            assert_eq!(c, &last.seq.to_string());
        }
        cursor = p.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(seqs, (1..=10).collect::<Vec<_>>());
    let p1 = store
        .list_audit(&t, &by(None, Some("auth.denied")), &page(2, None))
        .await
        .unwrap();
    let p2 = store
        .list_audit(
            &t,
            &by(None, Some("auth.denied")),
            &page(2, p1.next_cursor.clone()),
        )
        .await
        .unwrap();
    let p3 = store
        .list_audit(
            &t,
            &by(None, Some("auth.denied")),
            &page(2, p2.next_cursor.clone()),
        )
        .await
        .unwrap();
    let got: Vec<i64> = [p1.items, p2.items, p3.items]
        .concat()
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!((got, p3.next_cursor), (vec![2, 4, 6, 8, 10], None));
    assert!(store
        .list_audit(
            &t,
            &AuditFilter::default(),
            &page(2, Some("not-a-seq".into()))
        )
        .await
        .is_err());

    // Another agency sees none of it.
    let theirs = store
        .list_audit(&other, &AuditFilter::default(), &all())
        .await
        .unwrap()
        .items;
    assert_eq!(theirs.len(), 1);
    assert!(theirs.iter().all(|e| &e.agency_id == other.agency()));
    assert!(store
        .list_audit(&other, &by(Some("usr_alice"), None), &all())
        .await
        .unwrap()
        .items
        .is_empty());
    assert_eq!(chain(&store, &other).await, theirs);
}

/// A write that fails leaves nothing behind: no row, no audit event, no revision.
async fn case_atomic_writes(store: Arc<dyn Store>) {
    let t = agency(&store, "Acme").await;
    let acc = account(&store, &t, "Main").await;
    let ann = user(&store, &t, "ann@example.com", None).await;
    let events = chain(&store, &t).await;
    let rev = store.revision().await.unwrap();
    let unchanged = |store: Arc<dyn Store>, t: TenantScope, events: Vec<AuditEvent>| async move {
        assert_eq!(
            chain(&store, &t).await,
            events,
            "no audit event from a failed write"
        );
        assert_eq!(
            store.revision().await.unwrap(),
            rev,
            "no revision from a failed write"
        );
    };

    // Duplicate account id, under another name.
    let dup = Account {
        name: "Impostor".into(),
        ..acc.clone()
    };
    assert!(matches!(
        store
            .create_account(&t, &dup, &record("account.create"))
            .await,
        Err(StoreError::Conflict { .. })
    ));
    assert_eq!(store.get_account(&t, &acc.id).await.unwrap(), acc);
    assert_eq!(
        store.list_accounts(&t, &all()).await.unwrap().items,
        vec![acc.clone()]
    );
    unchanged(store.clone(), t.clone(), events.clone()).await;

    // A key whose second binding conflicts with its first: neither key, secret nor binding.
    let k = key_value(&t, None);
    let s = secret();
    let b1 = binding_value(&t, &PrincipalId::Key(k.id.clone()), "agency_viewer", None);
    let b2 = Binding {
        id: BindingId::generate(),
        ..b1.clone()
    };
    assert_conflict(
        store
            .create_api_key(&t, &k, &s, &[b1.clone(), b2], &record("api_key.create"))
            .await,
        "binding",
    );
    assert!(is_not_found(store.get_api_key(&t, &k.id).await));
    assert_eq!(store.find_key_by_secret(&s.hash).await.unwrap(), None);
    assert!(is_not_found(store.get_binding(&t, &b1.id).await));
    unchanged(store.clone(), t.clone(), events.clone()).await;

    // A duplicate binding: no row, no event, no revision.
    let bound = bind(&store, &t, &user_principal(&ann), "agency_viewer", None).await;
    let events = chain(&store, &t).await;
    let rev = store.revision().await.unwrap();
    let again = binding_value(&t, &user_principal(&ann), "agency_viewer", None);
    assert_conflict(
        store
            .create_binding(&t, &again, &record("binding.create"))
            .await,
        "binding",
    );
    assert!(is_not_found(store.get_binding(&t, &again.id).await));
    assert_eq!(
        store
            .principal_bindings(&t, &user_principal(&ann))
            .await
            .unwrap(),
        vec![bound]
    );
    assert_eq!(chain(&store, &t).await, events);
    assert_eq!(store.revision().await.unwrap(), rev);
    // The failed writes did not poison the store.
    store
        .create_account(&t, &account_value(&t, "Fresh"), &record("account.create"))
        .await
        .unwrap();
    let after = chain(&store, &t).await;
    assert_eq!(after.len(), events.len() + 1);
    assert_chain_ok(&after);
}

async fn concurrent_appends(store: &Arc<dyn Store>, t: &TenantScope, n: usize) -> Vec<AuditEvent> {
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let (store, t) = (store.clone(), t.clone());
            tokio::spawn(async move {
                let mut r = record("auth.denied");
                r.detail = serde_json::json!({ "task": i });
                store.append_audit(&t, &r).await.unwrap()
            })
        })
        .collect();
    let mut out = Vec::new();
    for task in tasks {
        out.push(task.await.unwrap());
    }
    out
}

async fn case_concurrent_audit(store: Arc<dyn Store>) {
    let t = agency(&store, "Acme").await;
    let other = agency(&store, "Other").await;
    // agency.create is event 1 of each chain: the 20 appends take 2..=21.
    let base = i64::try_from(chain(&store, &t).await.len()).unwrap();
    let (mine, theirs) = tokio::join!(
        concurrent_appends(&store, &t, 20),
        concurrent_appends(&store, &other, 5)
    );
    let seqs: BTreeSet<i64> = mine.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (base + 1..=base + 20).collect::<BTreeSet<_>>());
    assert_eq!(
        theirs.iter().map(|e| e.seq).collect::<BTreeSet<_>>(),
        (2..=6).collect::<BTreeSet<_>>()
    );
    let events = chain(&store, &t).await;
    assert_eq!(events.len(), 21);
    assert_chain_ok(&events);
    assert_chain_ok(&chain(&store, &other).await);
    // What each append returned is what was stored.
    for e in &mine {
        assert_eq!(&events[usize::try_from(e.seq - 1).unwrap()], e);
    }
}

/// Concurrent writes of every kind in one agency keep one unbroken chain.
async fn case_concurrent_writes(store: Arc<dyn Store>) {
    let t = agency(&store, "Acme").await;
    let ann = user(&store, &t, "ann@example.com", None).await;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let (store, t, ann) = (store.clone(), t.clone(), ann.clone());
        tasks.push(tokio::spawn(async move {
            let acc = account(&store, &t, &format!("Account {i}")).await;
            bind(
                &store,
                &t,
                &user_principal(&ann),
                "account_admin",
                Some(&acc.id),
            )
            .await;
            key(&store, &t, Some(&acc.id), &["account_viewer"]).await;
            store
                .append_audit(&t, &record("auth.denied"))
                .await
                .unwrap();
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let events = chain(&store, &t).await;
    assert_eq!(events.len(), 2 + 8 * 4);
    assert_chain_ok(&events);
    assert_eq!(
        store.list_accounts(&t, &all()).await.unwrap().items.len(),
        8
    );
    assert_eq!(
        store
            .principal_bindings(&t, &user_principal(&ann))
            .await
            .unwrap()
            .len(),
        8
    );
    assert_eq!(
        store.list_api_keys(&t, &all()).await.unwrap().items.len(),
        8
    );
}

// ---------------------------------------------------------------------------------------
// A brand-new chain under contention: the first event of an agency that has none yet. The
// Store API always writes an agency's first event with the agency, so the row is made here
// with plain SQL; the 20 concurrent appends must then take exactly seqs 1..=20.
// ---------------------------------------------------------------------------------------

async fn fresh_chain_under_contention(store: Arc<dyn Store>, t: TenantScope) {
    let events = concurrent_appends(&store, &t, 20).await;
    let seqs: BTreeSet<i64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=20).collect::<BTreeSet<_>>());
    let chain = chain(&store, &t).await;
    assert_eq!(chain.len(), 20);
    assert_chain_ok(&chain);
}

const RAW_AGENCY: &str = "INSERT INTO agencies (id, name, status, is_platform, created_at, updated_at) VALUES ($1, 'Raw', 'active', $2, 0, 0)";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_concurrent_audit_fresh_chain() {
    let (store, dir) = sqlite_store().await;
    let id = AgencyId::generate();
    let url = format!("sqlite://{}", dir.path().join(SQLITE_DB_FILE).display());
    let raw = sqlx::SqlitePool::connect(&url).await.unwrap();
    sqlx::query(RAW_AGENCY)
        .bind(id.as_str())
        .bind(false)
        .execute(&raw)
        .await
        .unwrap();
    raw.close().await;
    fresh_chain_under_contention(store, TenantScope::authenticated(id)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_concurrent_audit_fresh_chain() {
    let Some(db) = PgTestDb::create().await else {
        notice_pg_skipped();
        return;
    };
    let store = db.store().await;
    let id = AgencyId::generate();
    let raw = sqlx::PgPool::connect(&db.url()).await.unwrap();
    sqlx::query(RAW_AGENCY)
        .bind(id.as_str())
        .bind(false)
        .execute(&raw)
        .await
        .unwrap();
    raw.close().await;
    fresh_chain_under_contention(store, TenantScope::authenticated(id)).await;
}
