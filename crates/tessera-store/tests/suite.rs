//! The storage suite: every case is written once against `Arc<dyn Store>` and run on SQLite
//! (always) and on PostgreSQL (when `TESSERA_TEST_DATABASE_URL` names an admin url).
//! Fixtures are built through the Store API itself.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::sync::Arc;

use tessera_core::{
    AccountId, AgencyId, AppId, BindingId, EventId, InstallationId, KeyId, PolicyId, PrincipalId,
    RoleId, UserId,
};
use tessera_store::audit::verify_chain;
use tessera_store::testing::{notice_pg_skipped, sqlite_store, PgTestDb, SQLITE_DB_FILE};
use tessera_store::{
    Account, Agency, ApiKey, App, AppKind, AuditEvent, AuditFilter, AuditRecord, AuthCode, Binding,
    Bootstrap, ChainHash, Change, ClientRecord, CodeRedemption, Connected, Grant, Installation,
    KeySecretMatch, NewRefreshToken, NewUser, Outcome, PageRequest, Policy, RefreshToken,
    RefreshUse, Role, RolePatch, ScopeMint, SecretHashRecord, SigningKeyRow, Status, Store,
    StoreError, TenantScope, User, UserCredential, UserPatch,
};

// ---------------------------------------------------------------------------------------
// The runner: one sqlite_* and one postgres_* test per case.
// ---------------------------------------------------------------------------------------

macro_rules! cases {
    ($($case:ident => $sqlite:ident, $postgres:ident;)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $sqlite() {
            let (Connected { store, mint }, _dir) = sqlite_store().await;
            assert_eq!(store.backend(), "sqlite");
            $case(store, mint).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $postgres() {
            let Some(db) = PgTestDb::create().await else {
                notice_pg_skipped();
                return;
            };
            let Connected { store, mint } = db.store().await;
            assert_eq!(store.backend(), "postgres");
            $case(store, mint).await;
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
    case_roles => sqlite_roles, postgres_roles;
    case_delete_role_and_its_bindings => sqlite_delete_role_and_its_bindings, postgres_delete_role_and_its_bindings;
    case_policies => sqlite_policies, postgres_policies;
    case_authz_snapshot => sqlite_authz_snapshot, postgres_authz_snapshot;
    case_authz_snapshot_consistent_under_writes => sqlite_authz_snapshot_consistent_under_writes, postgres_authz_snapshot_consistent_under_writes;
    case_delete_role_races_binding => sqlite_delete_role_races_binding, postgres_delete_role_races_binding;
    case_changes_since => sqlite_changes_since, postgres_changes_since;
    case_change_feed_gap_free_under_concurrency => sqlite_change_feed_gap_free_under_concurrency, postgres_change_feed_gap_free_under_concurrency;
    case_signing_keys_insert_and_list => sqlite_signing_keys_insert_and_list, postgres_signing_keys_insert_and_list;
    case_signing_key_duplicate_kid => sqlite_signing_key_duplicate_kid, postgres_signing_key_duplicate_kid;
    case_signing_key_compare_and_set => sqlite_signing_key_compare_and_set, postgres_signing_key_compare_and_set;
    case_signing_key_concurrent_compare_and_set => sqlite_signing_key_concurrent_compare_and_set, postgres_signing_key_concurrent_compare_and_set;
    case_signing_key_delete => sqlite_signing_key_delete, postgres_signing_key_delete;
    case_signing_key_debug_hides_sealed_key => sqlite_signing_key_debug_hides_sealed_key, postgres_signing_key_debug_hides_sealed_key;
    case_apps => sqlite_apps, postgres_apps;
    case_installations => sqlite_installations, postgres_installations;
    case_client_installations => sqlite_client_installations, postgres_client_installations;
    case_codes => sqlite_codes, postgres_codes;
    case_concurrent_code_redemption => sqlite_concurrent_code_redemption, postgres_concurrent_code_redemption;
    case_grants => sqlite_grants, postgres_grants;
    case_refresh_rotation => sqlite_refresh_rotation, postgres_refresh_rotation;
    case_concurrent_refresh_rotation => sqlite_concurrent_refresh_rotation, postgres_concurrent_refresh_rotation;
    case_revoke_installation_revokes_grants => sqlite_revoke_installation_revokes_grants, postgres_revoke_installation_revokes_grants;
    case_delete_account_revokes_installations => sqlite_delete_account_revokes_installations, postgres_delete_account_revokes_installations;
    case_authz_snapshot_revocations => sqlite_authz_snapshot_revocations, postgres_authz_snapshot_revocations;
    case_oauth_change_log => sqlite_oauth_change_log, postgres_oauth_change_log;
    case_oauth_tenant_isolation => sqlite_oauth_tenant_isolation, postgres_oauth_tenant_isolation;
    case_find_users_by_email => sqlite_find_users_by_email, postgres_find_users_by_email;
    case_append_audit_batch => sqlite_append_audit_batch, postgres_append_audit_batch;
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
async fn agency(store: &Arc<dyn Store>, mint: &ScopeMint, name: &str) -> TenantScope {
    let a = agency_value(AgencyId::generate(), name);
    store
        .create_agency(&a, &record("agency.create"))
        .await
        .unwrap();
    mint.admit(a.id)
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

fn role_value(t: &TenantScope, name: &str, permissions: &[&str]) -> Role {
    let at = now();
    Role {
        id: RoleId::generate(),
        agency_id: t.agency().clone(),
        name: name.into(),
        description: format!("The {name} role"),
        permissions: permissions.iter().map(|p| (*p).to_owned()).collect(),
        created_by: "usr_suite".into(),
        created_at: at,
        updated_at: at,
    }
}

async fn role(store: &Arc<dyn Store>, t: &TenantScope, name: &str, permissions: &[&str]) -> Role {
    let r = role_value(t, name, permissions);
    store
        .create_role(t, &r, &record("role.create"))
        .await
        .unwrap();
    r
}

fn policy_value(t: &TenantScope, description: &str) -> Policy {
    Policy {
        id: PolicyId::generate(),
        agency_id: t.agency().clone(),
        description: description.into(),
        cedar: format!(
            "// {description}\nforbid (principal, action == Action::\"contacts.delete\", resource)\nwhen {{ resource.locked }};"
        ),
        created_by: "usr_suite".into(),
        created_at: now(),
    }
}

async fn policy(store: &Arc<dyn Store>, t: &TenantScope, description: &str) -> Policy {
    let p = policy_value(t, description);
    store
        .create_policy(t, &p, &record("policy.create"))
        .await
        .unwrap();
    p
}

/// A signing key in `state`, created at `created_at` (epoch seconds), with a random sealed key.
fn signing_key_value(kid: &str, state: &str, created_at: i64) -> SigningKeyRow {
    SigningKeyRow {
        kid: kid.to_owned(),
        alg: "EdDSA".to_owned(),
        state: state.to_owned(),
        created_at,
        activates_at: created_at + 100,
        retires_at: None,
        expires_at: None,
        public_jwk: serde_json::json!({ "kty": "OKP", "crv": "Ed25519", "kid": kid, "x": "AAAA" })
            .to_string(),
        sealed_private: (0..48).map(|_| rand::random::<u8>()).collect(),
    }
}

async fn signing_key(store: &Arc<dyn Store>, kid: &str, state: &str) -> SigningKeyRow {
    let row = signing_key_value(kid, state, 1_700_000_000);
    store.insert_signing_key(&row).await.unwrap();
    row
}

/// The stored row of `kid`.
async fn stored_key(store: &Arc<dyn Store>, kid: &str) -> Option<SigningKeyRow> {
    store
        .signing_keys()
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.kid == kid)
}

fn sorted<T, K: Ord>(mut items: Vec<T>, key: impl Fn(&T) -> K) -> Vec<T> {
    items.sort_by_key(key);
    items
}

/// The whole change feed after `after`, read in pages of `chunk`.
async fn feed(store: &Arc<dyn Store>, after: i64, chunk: u32) -> Vec<Change> {
    let (mut out, mut last) = (Vec::new(), after);
    loop {
        let batch = store.changes_since(last, chunk).await.unwrap();
        let Some(c) = batch.last() else { break };
        last = c.revision;
        out.extend(batch);
    }
    out
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

// Cross-tenant lookups, checked: each returns the scope the store derived from the row it
// found, and that scope is the row's own agency.

async fn key_by_secret(
    store: &Arc<dyn Store>,
    hash: &[u8],
) -> Result<Option<KeySecretMatch>, StoreError> {
    let found = store.find_key_by_secret(hash).await?;
    Ok(found.map(|(m, scope)| {
        assert_eq!(scope.agency(), &m.agency);
        m
    }))
}

async fn client(store: &Arc<dyn Store>, id: &AppId) -> Result<Option<ClientRecord>, StoreError> {
    let found = store.find_client(id).await?;
    Ok(found.map(|(c, scope)| {
        assert_eq!(scope.agency(), &c.app.agency_id);
        c
    }))
}

async fn installations_of(
    store: &Arc<dyn Store>,
    app: &AppId,
) -> Result<Vec<Installation>, StoreError> {
    let found = store.client_installations(app).await?;
    Ok(found
        .into_iter()
        .map(|(i, scope)| {
            assert_eq!(scope.agency(), &i.agency_id);
            i
        })
        .collect())
}

async fn redeem(
    store: &Arc<dyn Store>,
    hash: &[u8],
    now: i64,
) -> Result<Option<CodeRedemption>, StoreError> {
    let found = store.redeem_code(hash, now).await?;
    Ok(found.map(|(r, scope)| {
        let (CodeRedemption::Fresh(c) | CodeRedemption::Replayed(c)) = &r;
        assert_eq!(scope.agency(), &c.agency_id);
        r
    }))
}

async fn refresh_token(
    store: &Arc<dyn Store>,
    hash: &[u8],
) -> Result<Option<(RefreshToken, Grant)>, StoreError> {
    let found = store.find_refresh_token(hash).await?;
    Ok(found.map(|(token, grant, scope)| {
        assert_eq!(scope.agency(), &token.agency_id);
        assert_eq!(scope.agency(), &grant.agency_id);
        (token, grant)
    }))
}

async fn users_by_email(
    store: &Arc<dyn Store>,
    email: &str,
) -> Result<Vec<UserCredential>, StoreError> {
    let found = store.find_users_by_email(email).await?;
    Ok(found
        .into_iter()
        .map(|(u, scope)| {
            assert_eq!(scope.agency(), &u.user.agency_id);
            u
        })
        .collect())
}

// ---------------------------------------------------------------------------------------
// Cases
// ---------------------------------------------------------------------------------------

async fn case_migrations_ping_backend(store: Arc<dyn Store>, mint: ScopeMint) {
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
    assert_eq!(store.signing_keys().await.unwrap(), []);
    // Data survives a repeated migration.
    let t = agency(&store, &mint, "Kept").await;
    let k = signing_key(&store, "kept-key", "active").await;
    assert_eq!(store.migrate().await.unwrap(), 0);
    assert_eq!(store.get_agency(t.agency()).await.unwrap().name, "Kept");
    assert_eq!(store.signing_keys().await.unwrap(), [k]);
}

async fn case_bootstrap(store: Arc<dyn Store>, mint: ScopeMint) {
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

    let found = key_by_secret(&store, &b.secret.hash)
        .await
        .unwrap()
        .expect("bootstrap key found by its secret");
    assert_eq!(
        (found.agency, found.key.clone(), found.valid_until),
        (b.platform.id.clone(), b.key.id.clone(), None)
    );
    assert_eq!(
        key_by_secret(&store, &second.secret.hash).await.unwrap(),
        None
    );

    let t = mint.admit(b.platform.id.clone());
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

async fn case_agencies(store: Arc<dyn Store>, mint: ScopeMint) {
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
    let t = mint.admit(a.id.clone());
    let (k, s, _) = key(&store, &t, None, &["agency_admin"]).await;
    assert!(key_by_secret(&store, &s.hash).await.unwrap().is_some());
    let other = agency(&store, &mint, "Other").await;
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
        key_by_secret(&store, &s.hash).await.unwrap(),
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
        key_by_secret(&store, &other_secret.hash)
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

async fn case_agency_pagination(store: Arc<dyn Store>, _mint: ScopeMint) {
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

async fn case_accounts(store: Arc<dyn Store>, mint: ScopeMint) {
    let t = agency(&store, &mint, "Acme").await;
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

async fn case_users(store: Arc<dyn Store>, mint: ScopeMint) {
    let t = agency(&store, &mint, "Acme").await;
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

async fn case_user_email_unique_case_insensitively(store: Arc<dyn Store>, mint: ScopeMint) {
    let t = agency(&store, &mint, "Acme").await;
    let other = agency(&store, &mint, "Other").await;
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

async fn case_tenant_isolation(store: Arc<dyn Store>, mint: ScopeMint) {
    let a = agency(&store, &mint, "A").await;
    let b = agency(&store, &mint, "B").await;
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
        .touch_api_keys(&[(b.clone(), k.id.clone(), at)])
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
    assert!(key_by_secret(&store, &s.hash).await.unwrap().is_some());
    assert_eq!(chain(&store, &a).await, a_events);
    assert_eq!(chain(&store, &b).await, b_events);
    assert_eq!(store.revision().await.unwrap(), rev);
}

/// A record naming another agency does not let a scope write there: the scope decides.
async fn case_scope_wins_over_record_agency(store: Arc<dyn Store>, mint: ScopeMint) {
    let a = agency(&store, &mint, "A").await;
    let b = agency(&store, &mint, "B").await;
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
    let found = key_by_secret(&store, &s.hash).await.unwrap().unwrap();
    assert_eq!(&found.agency, a.agency());
}

async fn case_bindings(store: Arc<dyn Store>, mint: ScopeMint) {
    let t = agency(&store, &mint, "Acme").await;
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

async fn case_binding_on_foreign_account_refused(store: Arc<dyn Store>, mint: ScopeMint) {
    let a = agency(&store, &mint, "A").await;
    let b = agency(&store, &mint, "B").await;
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
    assert_eq!(key_by_secret(&store, &s.hash).await.unwrap(), None);
    assert_eq!(chain(&store, &a).await, a_events);
    assert_eq!(chain(&store, &b).await, b_events);
    assert_eq!(store.revision().await.unwrap(), rev);
}

async fn case_delete_account_cascades(store: Arc<dyn Store>, mint: ScopeMint) {
    let t = agency(&store, &mint, "Acme").await;
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
    assert_eq!(key_by_secret(&store, &acc_secret.hash).await.unwrap(), None);
    assert!(store
        .principal_bindings(&t, &PrincipalId::Key(acc_key.id.clone()))
        .await
        .unwrap()
        .is_empty());
    // Other keys and their other bindings stay.
    assert!(key_by_secret(&store, &wide_secret.hash)
        .await
        .unwrap()
        .is_some());
    assert!(key_by_secret(&store, &kept_secret.hash)
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

async fn case_delete_user_removes_bindings(store: Arc<dyn Store>, mint: ScopeMint) {
    let t = agency(&store, &mint, "Acme").await;
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

async fn case_api_keys(store: Arc<dyn Store>, mint: ScopeMint) {
    let t = agency(&store, &mint, "Acme").await;
    let (k, s1, bindings) = key(&store, &t, None, &["agency_admin", "agency_viewer"]).await;
    let principal = PrincipalId::Key(k.id.clone());
    assert_eq!(store.get_api_key(&t, &k.id).await.unwrap(), k);
    assert_eq!(
        store.list_api_keys(&t, &all()).await.unwrap().items,
        vec![k.clone()]
    );
    let m = key_by_secret(&store, &s1.hash).await.unwrap().unwrap();
    assert_eq!(
        (&m.agency, &m.key, m.valid_until),
        (t.agency(), &k.id, None)
    );
    assert_eq!(key_by_secret(&store, &secret().hash).await.unwrap(), None);
    let mut want = bindings.clone();
    want.sort_by(|x, y| x.id.cmp(&y.id));
    assert_eq!(
        store.principal_bindings(&t, &principal).await.unwrap(),
        want
    );
    // One secret hash belongs to one key, across agencies.
    let other = agency(&store, &mint, "Other").await;
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
    let old = key_by_secret(&store, &s1.hash).await.unwrap().unwrap();
    assert_eq!((&old.key, old.valid_until), (&k.id, Some(grace)));
    let new = key_by_secret(&store, &s2.hash).await.unwrap().unwrap();
    assert_eq!((&new.key, new.valid_until), (&k.id, None));
    // Rotating again after the grace drops the expired secret and caps the current one.
    let t1 = grace + 1;
    let s3 = secret();
    store
        .rotate_api_key(&t, &k.id, &s3, t1 + 60_000, t1, &record("api_key.rotate"))
        .await
        .unwrap();
    assert_eq!(key_by_secret(&store, &s1.hash).await.unwrap(), None);
    assert_eq!(
        key_by_secret(&store, &s2.hash)
            .await
            .unwrap()
            .unwrap()
            .valid_until,
        Some(t1 + 60_000)
    );
    assert_eq!(
        key_by_secret(&store, &s3.hash)
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
        key_by_secret(&store, &s2.hash)
            .await
            .unwrap()
            .unwrap()
            .valid_until,
        Some(t1 + 60_000)
    );
    assert_eq!(
        key_by_secret(&store, &s3.hash)
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
        assert_eq!(key_by_secret(&store, &s.hash).await.unwrap(), None);
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
    assert_eq!(key_by_secret(&store, &s5.hash).await.unwrap(), None);
    assert!(is_not_found(
        store
            .revoke_api_key(&t, &KeyId::generate(), at, &record("api_key.revoke"))
            .await
    ));
}

async fn case_touch_api_keys(store: Arc<dyn Store>, mint: ScopeMint) {
    let t = agency(&store, &mint, "Acme").await;
    let other = agency(&store, &mint, "Other").await;
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
            (t.clone(), k1.id.clone(), t0),
            (other.clone(), k3.id.clone(), t0 + 7),
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
        .touch_api_keys(&[(t.clone(), k1.id.clone(), t0 - 1000)])
        .await
        .unwrap();
    assert_eq!(
        store.get_api_key(&t, &k1.id).await.unwrap().last_used_at,
        Some(t0)
    );
    store
        .touch_api_keys(&[
            (t.clone(), k1.id.clone(), t0 + 50),
            (t.clone(), k1.id.clone(), t0 + 20),
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
            (t.clone(), k3.id.clone(), t0 + 100),
            (t.clone(), KeyId::generate(), t0),
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

async fn case_revision(store: Arc<dyn Store>, mint: ScopeMint) {
    let r0 = store.revision().await.unwrap();
    let t = agency(&store, &mint, "Acme").await;
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
    key_by_secret(&store, &secret().hash).await.unwrap();
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
async fn case_audit_every_write(store: Arc<dyn Store>, mint: ScopeMint) {
    let t = agency(&store, &mint, "Acme").await;
    let other = agency(&store, &mint, "Other").await;
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
    let rl = role_value(&t, "Support", &["contacts.read"]);
    audited!("role.create", |r| store.create_role(&t, &rl, &r));
    let patch = RolePatch {
        name: Some("Helpdesk".into()),
        ..RolePatch::default()
    };
    audited!("role.update", |r| store
        .update_role(&t, &rl.id, &patch, at, &r));
    let rb = binding_value(&t, &user_principal(&ann), rl.id.as_str(), None);
    audited!("binding.create", |r| store.create_binding(&t, &rb, &r));
    audited!("role.delete", |r| store
        .delete_role(&t, &rl.id, true, at, &r));
    let pl = policy_value(&t, "No deletes");
    audited!("policy.create", |r| store.create_policy(&t, &pl, &r));
    audited!("policy.delete", |r| store.delete_policy(&t, &pl.id, at, &r));
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

async fn case_audit_tamper_and_list(store: Arc<dyn Store>, mint: ScopeMint) {
    let t = agency(&store, &mint, "Acme").await;
    let other = agency(&store, &mint, "Other").await;
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
async fn case_atomic_writes(store: Arc<dyn Store>, mint: ScopeMint) {
    let t = agency(&store, &mint, "Acme").await;
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
    assert_eq!(key_by_secret(&store, &s.hash).await.unwrap(), None);
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

async fn case_concurrent_audit(store: Arc<dyn Store>, mint: ScopeMint) {
    let t = agency(&store, &mint, "Acme").await;
    let other = agency(&store, &mint, "Other").await;
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
async fn case_concurrent_writes(store: Arc<dyn Store>, mint: ScopeMint) {
    let t = agency(&store, &mint, "Acme").await;
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
    let (Connected { store, mint }, dir) = sqlite_store().await;
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
    fresh_chain_under_contention(store, mint.admit(id)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_concurrent_audit_fresh_chain() {
    let Some(db) = PgTestDb::create().await else {
        notice_pg_skipped();
        return;
    };
    let Connected { store, mint } = db.store().await;
    let id = AgencyId::generate();
    let raw = sqlx::PgPool::connect(&db.url()).await.unwrap();
    sqlx::query(RAW_AGENCY)
        .bind(id.as_str())
        .bind(false)
        .execute(&raw)
        .await
        .unwrap();
    raw.close().await;
    fresh_chain_under_contention(store, mint.admit(id)).await;
}

// ---------------------------------------------------------------------------------------
// Custom roles, policies, the authorization snapshot and the change feed.
// ---------------------------------------------------------------------------------------

async fn case_roles(store: Arc<dyn Store>, mint: ScopeMint) {
    let t = agency(&store, &mint, "Acme").await;
    let other = agency(&store, &mint, "Other").await;
    assert!(store.list_roles(&t, &all()).await.unwrap().items.is_empty());

    let rev = store.revision().await.unwrap();
    let editor = role(&store, &t, "Editor", &["contacts.read", "contacts.write"]).await;
    assert!(
        store.revision().await.unwrap() > rev,
        "role create bumps the revision"
    );
    let viewer = role(&store, &t, "Viewer", &["contacts.read"]).await;
    assert_eq!(store.get_role(&t, &editor.id).await.unwrap(), editor);
    assert_eq!(store.get_role(&t, &viewer.id).await.unwrap(), viewer);
    assert!(is_not_found(store.get_role(&t, &RoleId::generate()).await));
    let want = sorted(vec![editor.clone(), viewer.clone()], |r| r.id.clone());
    assert_eq!(store.list_roles(&t, &all()).await.unwrap().items, want);
    let p1 = store.list_roles(&t, &page(1, None)).await.unwrap();
    let p2 = store
        .list_roles(&t, &page(1, p1.next_cursor.clone()))
        .await
        .unwrap();
    assert_eq!(
        (p1.items, p2.items, p2.next_cursor),
        (vec![want[0].clone()], vec![want[1].clone()], None)
    );

    // A duplicate name conflicts and leaves nothing behind: no row, no event, no revision.
    let events = chain(&store, &t).await;
    let rev = store.revision().await.unwrap();
    let dup = role_value(&t, "Editor", &["contacts.read"]);
    assert_conflict(
        store.create_role(&t, &dup, &record("role.create")).await,
        "name",
    );
    assert!(is_not_found(store.get_role(&t, &dup.id).await));
    // A duplicate id conflicts too.
    let same_id = Role {
        name: "Other name".into(),
        ..editor.clone()
    };
    assert!(matches!(
        store
            .create_role(&t, &same_id, &record("role.create"))
            .await,
        Err(StoreError::Conflict { .. })
    ));
    assert_eq!(store.get_role(&t, &editor.id).await.unwrap(), editor);
    assert_eq!(chain(&store, &t).await, events);
    assert_eq!(store.revision().await.unwrap(), rev);
    // Names are unique per agency only.
    let theirs = role(&store, &other, "Editor", &["contacts.read"]).await;
    // The scope decides the agency, not the record.
    let mut stray = role_value(&t, "Stray", &[]);
    stray.agency_id = other.agency().clone();
    store
        .create_role(&t, &stray, &record("role.create"))
        .await
        .unwrap();
    assert_eq!(
        &store.get_role(&t, &stray.id).await.unwrap().agency_id,
        t.agency()
    );
    assert!(is_not_found(store.get_role(&other, &stray.id).await));

    // Updates: one field alone leaves the others; every update bumps the revision.
    let later = editor.updated_at + 1000;
    let rev = store.revision().await.unwrap();
    let patch = RolePatch {
        permissions: Some(vec!["contacts.read".into()]),
        ..RolePatch::default()
    };
    let narrowed = store
        .update_role(&t, &editor.id, &patch, later, &record("role.update"))
        .await
        .unwrap();
    assert_eq!(
        narrowed,
        Role {
            permissions: vec!["contacts.read".into()],
            updated_at: later,
            ..editor.clone()
        }
    );
    assert_eq!(store.get_role(&t, &editor.id).await.unwrap(), narrowed);
    let rev2 = store.revision().await.unwrap();
    assert!(rev2 > rev, "role update: {rev} -> {rev2}");
    let patch = RolePatch {
        name: Some("Writer".into()),
        description: Some("Writes".into()),
        permissions: Some(vec![]),
    };
    let renamed = store
        .update_role(&t, &editor.id, &patch, later + 1, &record("role.update"))
        .await
        .unwrap();
    assert_eq!(
        renamed,
        Role {
            name: "Writer".into(),
            description: "Writes".into(),
            permissions: vec![],
            updated_at: later + 1,
            ..editor.clone()
        }
    );
    assert!(store.revision().await.unwrap() > rev2);
    // Renaming onto a taken name conflicts and changes nothing.
    let (events, rev) = (chain(&store, &t).await, store.revision().await.unwrap());
    let onto = RolePatch {
        name: Some("Writer".into()),
        ..RolePatch::default()
    };
    assert_conflict(
        store
            .update_role(&t, &viewer.id, &onto, later, &record("role.update"))
            .await,
        "name",
    );
    assert_eq!(store.get_role(&t, &viewer.id).await.unwrap(), viewer);
    assert!(is_not_found(
        store
            .update_role(
                &t,
                &RoleId::generate(),
                &RolePatch::default(),
                later,
                &record("role.update")
            )
            .await
    ));
    assert_eq!(chain(&store, &t).await, events);
    assert_eq!(store.revision().await.unwrap(), rev);

    // Another agency's scope sees nothing of these roles and changes none of them.
    assert!(is_not_found(store.get_role(&other, &editor.id).await));
    assert!(is_not_found(
        store
            .update_role(&other, &editor.id, &onto, later, &record("role.update"))
            .await
    ));
    assert!(is_not_found(
        store
            .delete_role(&other, &editor.id, true, later, &record("role.delete"))
            .await
    ));
    assert_eq!(
        store.count_role_bindings(&other, &editor.id).await.unwrap(),
        0
    );
    assert_eq!(
        store.list_roles(&other, &all()).await.unwrap().items,
        vec![theirs]
    );
    assert_eq!(store.get_role(&t, &editor.id).await.unwrap(), renamed);
    assert_eq!(chain(&store, &t).await, events);
    assert_eq!(store.revision().await.unwrap(), rev);

    // Deleting an unused role: gone, revision bumped, the name free again.
    assert_eq!(
        store
            .delete_role(&t, &viewer.id, false, now(), &record("role.delete"))
            .await
            .unwrap(),
        0
    );
    assert!(store.revision().await.unwrap() > rev, "role delete");
    assert!(is_not_found(store.get_role(&t, &viewer.id).await));
    assert!(is_not_found(
        store
            .delete_role(&t, &viewer.id, true, now(), &record("role.delete"))
            .await
    ));
    role(&store, &t, "Viewer", &[]).await;
}

async fn case_delete_role_and_its_bindings(store: Arc<dyn Store>, mint: ScopeMint) {
    let t = agency(&store, &mint, "Acme").await;
    let other = agency(&store, &mint, "Other").await;
    let acc = account(&store, &t, "Main").await;
    let ann = user_principal(&user(&store, &t, "ann@example.com", None).await);
    let bob = user_principal(&user(&store, &t, "bob@example.com", None).await);
    let support = role(&store, &t, "Support", &["contacts.read"]).await;
    let kept = role(&store, &t, "Kept", &["contacts.read"]).await;
    let b_ann = bind(&store, &t, &ann, support.id.as_str(), None).await;
    let b_bob = bind(&store, &t, &bob, support.id.as_str(), Some(&acc.id)).await;
    let (k, _, kb) = key(&store, &t, None, &[support.id.as_str()]).await;
    let b_kept = bind(&store, &t, &ann, kept.id.as_str(), None).await;
    let b_builtin = bind(&store, &t, &ann, "agency_viewer", None).await;
    assert_eq!(store.count_role_bindings(&t, &support.id).await.unwrap(), 3);
    assert_eq!(store.count_role_bindings(&t, &kept.id).await.unwrap(), 1);
    assert_eq!(
        store
            .count_role_bindings(&t, &RoleId::generate())
            .await
            .unwrap(),
        0
    );

    // A binding may only name a custom role of its own agency that exists.
    let theirs = role(&store, &other, "Theirs", &[]).await;
    let events = chain(&store, &t).await;
    let rev = store.revision().await.unwrap();
    for missing in [RoleId::generate(), theirs.id.clone()] {
        let b = binding_value(&t, &ann, missing.as_str(), None);
        assert!(matches!(
            store
                .create_binding(&t, &b, &record("binding.create"))
                .await,
            Err(StoreError::Reference)
        ));
        assert!(is_not_found(store.get_binding(&t, &b.id).await));
    }
    let k2 = key_value(&t, None);
    let kb2 = binding_value(
        &t,
        &PrincipalId::Key(k2.id.clone()),
        theirs.id.as_str(),
        None,
    );
    assert!(matches!(
        store
            .create_api_key(&t, &k2, &secret(), &[kb2], &record("api_key.create"))
            .await,
        Err(StoreError::Reference)
    ));
    assert!(is_not_found(store.get_api_key(&t, &k2.id).await));
    assert_eq!(chain(&store, &t).await, events);
    assert_eq!(store.revision().await.unwrap(), rev);

    // In use, and bindings not to be removed: a conflict, and nothing at all changes.
    let before = store.authz_snapshot(&t, now()).await.unwrap();
    assert_conflict(
        store
            .delete_role(&t, &support.id, false, now(), &record("role.delete"))
            .await,
        "role_in_use",
    );
    assert_eq!(store.get_role(&t, &support.id).await.unwrap(), support);
    assert_eq!(store.authz_snapshot(&t, now()).await.unwrap(), before);
    assert_eq!(chain(&store, &t).await, events);
    assert_eq!(store.revision().await.unwrap(), rev);

    // With remove_bindings: the role and exactly its bindings go, in one audited write.
    let removed = store
        .delete_role(&t, &support.id, true, now(), &record("role.delete"))
        .await
        .unwrap();
    assert_eq!(removed, 3);
    assert!(store.revision().await.unwrap() > rev);
    assert!(is_not_found(store.get_role(&t, &support.id).await));
    for b in [&b_ann, &b_bob, &kb[0]] {
        assert!(is_not_found(store.get_binding(&t, &b.id).await));
    }
    assert_eq!(store.count_role_bindings(&t, &support.id).await.unwrap(), 0);
    assert_eq!(
        store.list_bindings(&t, None, &all()).await.unwrap().items,
        sorted(vec![b_kept.clone(), b_builtin.clone()], |b| b.id.clone())
    );
    let after = chain(&store, &t).await;
    assert_eq!(after.len(), events.len() + 1);
    assert_eq!(after.last().unwrap().action, "role.delete");
    assert_chain_ok(&after);
    // The key stays; it only lost its binding.
    assert_eq!(store.get_api_key(&t, &k.id).await.unwrap(), k);
    // The deleted role cannot be bound again.
    assert!(matches!(
        store
            .create_binding(
                &t,
                &binding_value(&t, &bob, support.id.as_str(), None),
                &record("binding.create")
            )
            .await,
        Err(StoreError::Reference)
    ));

    // Once its last binding is gone, a role is deleted without removing anything.
    store
        .delete_binding(&t, &b_kept.id, now(), &record("binding.delete"))
        .await
        .unwrap();
    assert_eq!(
        store
            .delete_role(&t, &kept.id, false, now(), &record("role.delete"))
            .await
            .unwrap(),
        0
    );
    assert!(store.list_roles(&t, &all()).await.unwrap().items.is_empty());
    assert_eq!(
        store.list_bindings(&t, None, &all()).await.unwrap().items,
        vec![b_builtin]
    );
    // The other agency's role is untouched.
    assert_eq!(store.get_role(&other, &theirs.id).await.unwrap(), theirs);
}

async fn case_policies(store: Arc<dyn Store>, mint: ScopeMint) {
    let t = agency(&store, &mint, "Acme").await;
    let other = agency(&store, &mint, "Other").await;
    assert!(store
        .list_policies(&t, &all())
        .await
        .unwrap()
        .items
        .is_empty());

    let rev = store.revision().await.unwrap();
    let no_deletes = policy(&store, &t, "No deletes").await;
    assert!(
        store.revision().await.unwrap() > rev,
        "policy create bumps the revision"
    );
    let hours = policy(&store, &t, "Business hours").await;
    assert_eq!(
        store.get_policy(&t, &no_deletes.id).await.unwrap(),
        no_deletes
    );
    assert!(is_not_found(
        store.get_policy(&t, &PolicyId::generate()).await
    ));
    let want = sorted(vec![no_deletes.clone(), hours.clone()], |p| p.id.clone());
    assert_eq!(store.list_policies(&t, &all()).await.unwrap().items, want);
    let p1 = store.list_policies(&t, &page(1, None)).await.unwrap();
    let p2 = store
        .list_policies(&t, &page(1, p1.next_cursor.clone()))
        .await
        .unwrap();
    assert_eq!(
        (p1.items, p2.items, p2.next_cursor),
        (vec![want[0].clone()], vec![want[1].clone()], None)
    );

    // A duplicate id conflicts and leaves nothing behind.
    let (events, rev) = (chain(&store, &t).await, store.revision().await.unwrap());
    let dup = Policy {
        description: "Impostor".into(),
        ..hours.clone()
    };
    assert!(matches!(
        store
            .create_policy(&t, &dup, &record("policy.create"))
            .await,
        Err(StoreError::Conflict { .. })
    ));
    assert_eq!(store.get_policy(&t, &hours.id).await.unwrap(), hours);
    assert_eq!(chain(&store, &t).await, events);
    assert_eq!(store.revision().await.unwrap(), rev);

    // Isolation: another agency sees none of them and deletes none of them.
    let theirs = policy(&store, &other, "Theirs").await;
    let rev = store.revision().await.unwrap();
    assert!(is_not_found(store.get_policy(&other, &hours.id).await));
    assert!(is_not_found(
        store
            .delete_policy(&other, &hours.id, now(), &record("policy.delete"))
            .await
    ));
    assert_eq!(
        store.list_policies(&other, &all()).await.unwrap().items,
        vec![theirs.clone()]
    );
    assert_eq!(store.revision().await.unwrap(), rev);
    // The scope decides the agency, not the record.
    let mut stray = policy_value(&t, "Stray");
    stray.agency_id = other.agency().clone();
    store
        .create_policy(&t, &stray, &record("policy.create"))
        .await
        .unwrap();
    assert_eq!(
        &store.get_policy(&t, &stray.id).await.unwrap().agency_id,
        t.agency()
    );
    assert!(is_not_found(store.get_policy(&other, &stray.id).await));

    // Delete: gone, revision bumped, a second delete is NotFound.
    let rev = store.revision().await.unwrap();
    store
        .delete_policy(&t, &no_deletes.id, now(), &record("policy.delete"))
        .await
        .unwrap();
    assert!(store.revision().await.unwrap() > rev, "policy delete");
    assert!(is_not_found(store.get_policy(&t, &no_deletes.id).await));
    assert!(is_not_found(
        store
            .delete_policy(&t, &no_deletes.id, now(), &record("policy.delete"))
            .await
    ));
    assert_eq!(
        store.list_policies(&t, &all()).await.unwrap().items,
        sorted(
            vec![
                hours,
                Policy {
                    agency_id: t.agency().clone(),
                    ..stray
                }
            ],
            |p| p.id.clone()
        )
    );
    assert_eq!(store.get_policy(&other, &theirs.id).await.unwrap(), theirs);
}

async fn case_authz_snapshot(store: Arc<dyn Store>, mint: ScopeMint) {
    let t = agency(&store, &mint, "Acme").await;
    let other = agency(&store, &mint, "Other").await;
    let empty = store.authz_snapshot(&t, now()).await.unwrap();
    assert!(empty.roles.is_empty() && empty.bindings.is_empty() && empty.policies.is_empty());
    assert_eq!(empty.revision, store.revision().await.unwrap());

    let acc = account(&store, &t, "Main").await;
    let ann = user_principal(&user(&store, &t, "ann@example.com", None).await);
    let support = role(&store, &t, "Support", &["contacts.read"]).await;
    let sales = role(
        &store,
        &t,
        "Sales",
        &["contacts.read", "opportunities.write"],
    )
    .await;
    let mut bindings = vec![
        bind(&store, &t, &ann, support.id.as_str(), Some(&acc.id)).await,
        bind(&store, &t, &ann, "agency_viewer", None).await,
    ];
    bindings.extend(key(&store, &t, None, &[sales.id.as_str()]).await.2);
    let policies = vec![
        policy(&store, &t, "No deletes").await,
        policy(&store, &t, "Business hours").await,
    ];
    // The other agency has some of everything too.
    let their_role = role(&store, &other, "Support", &["contacts.read"]).await;
    let their_user = user(&store, &other, "ann@other.example", None).await;
    let their_binding = bind(
        &store,
        &other,
        &user_principal(&their_user),
        their_role.id.as_str(),
        None,
    )
    .await;
    let their_policy = policy(&store, &other, "Theirs").await;

    let snap = store.authz_snapshot(&t, now()).await.unwrap();
    assert_eq!(snap.roles, sorted(vec![support, sales], |r| r.id.clone()));
    assert_eq!(snap.bindings, sorted(bindings, |b| b.id.clone()));
    assert_eq!(snap.policies, sorted(policies, |p| p.id.clone()));
    assert_eq!(snap.revision, store.revision().await.unwrap());
    // It reflects every change of the agency so far, each at a revision it covers.
    let changes = feed(&store, 0, 1000).await;
    assert!(changes
        .iter()
        .filter(|c| &c.agency == t.agency())
        .all(|c| c.revision <= snap.revision));

    let theirs = store.authz_snapshot(&other, now()).await.unwrap();
    assert_eq!(
        (theirs.roles, theirs.bindings, theirs.policies),
        (vec![their_role], vec![their_binding], vec![their_policy])
    );

    // A later write is in a later snapshot, at a higher revision, and not in the earlier one.
    let late = bind(&store, &t, &ann, "account_admin", Some(&acc.id)).await;
    let next = store.authz_snapshot(&t, now()).await.unwrap();
    assert!(next.revision > snap.revision);
    assert!(next.bindings.contains(&late) && !snap.bindings.contains(&late));
    assert_eq!(next.bindings.len(), snap.bindings.len() + 1);
    // Reads do not move the revision.
    assert_eq!(store.revision().await.unwrap(), next.revision);
}

/// Snapshots taken while bindings are written in two agencies are each exactly the
/// bindings whose creation has a revision at or below the snapshot's.
async fn case_authz_snapshot_consistent_under_writes(store: Arc<dyn Store>, mint: ScopeMint) {
    let a = agency(&store, &mint, "A").await;
    let b = agency(&store, &mint, "B").await;
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (store, a, done) = (store.clone(), a.clone(), done.clone());
        tokio::spawn(async move {
            let mut snaps = Vec::new();
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                snaps.push(store.authz_snapshot(&a, now()).await.unwrap());
                tokio::task::yield_now().await;
            }
            snaps
        })
    };
    let writers: Vec<_> = (0..6)
        .map(|i| {
            let (store, t) = (
                store.clone(),
                if i % 2 == 0 { a.clone() } else { b.clone() },
            );
            tokio::spawn(async move {
                for j in 0..6 {
                    let who = PrincipalId::User(UserId::generate());
                    let role = if j % 2 == 0 {
                        "agency_viewer"
                    } else {
                        "account_viewer"
                    };
                    bind(&store, &t, &who, role, None).await;
                }
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut snaps = reader.await.unwrap();
    snaps.push(store.authz_snapshot(&a, now()).await.unwrap());

    let created: Vec<Change> = feed(&store, 0, 1000)
        .await
        .into_iter()
        .filter(|c| &c.agency == a.agency() && c.kind == "binding.create")
        .collect();
    assert_eq!(created.len(), 18);
    for snap in &snaps {
        let want: BTreeSet<&str> = created
            .iter()
            .filter(|c| c.revision <= snap.revision)
            .map(|c| c.entity.as_str())
            .collect();
        let got: BTreeSet<&str> = snap.bindings.iter().map(|b| b.id.as_str()).collect();
        assert_eq!(got, want, "snapshot at revision {}", snap.revision);
    }
    assert_eq!(snaps.last().unwrap().bindings.len(), 18);
}

async fn case_changes_since(store: Arc<dyn Store>, mint: ScopeMint) {
    let r0 = store.revision().await.unwrap();
    assert!(store.changes_since(r0, 100).await.unwrap().is_empty());
    let t = agency(&store, &mint, "A").await;
    let u = agency(&store, &mint, "B").await;
    // Writes that cannot change a decision are not in the feed.
    let acc = account(&store, &t, "Main").await;
    let ann = user(&store, &t, "ann@a.example", None).await;
    store
        .append_audit(&t, &record("auth.denied"))
        .await
        .unwrap();
    let rl = role(&store, &t, "Support", &["contacts.read"]).await;
    let bnd = bind(
        &store,
        &u,
        &PrincipalId::User(UserId::generate()),
        "agency_viewer",
        None,
    )
    .await;
    let pl = policy(&store, &t, "No deletes").await;
    store
        .delete_binding(&u, &bnd.id, now(), &record("binding.delete"))
        .await
        .unwrap();

    let change = |rev: i64, t: &TenantScope, kind: &str, entity: &str| Change {
        revision: rev,
        agency: t.agency().clone(),
        kind: kind.into(),
        entity: entity.into(),
    };
    let all_changes = store.changes_since(r0, 100).await.unwrap();
    assert_eq!(
        all_changes,
        vec![
            change(r0 + 1, &t, "agency.create", t.agency().as_str()),
            change(r0 + 2, &u, "agency.create", u.agency().as_str()),
            change(r0 + 3, &t, "role.create", rl.id.as_str()),
            change(r0 + 4, &u, "binding.create", bnd.id.as_str()),
            change(r0 + 5, &t, "policy.create", pl.id.as_str()),
            change(r0 + 6, &u, "binding.delete", bnd.id.as_str()),
        ]
    );
    assert_eq!(store.revision().await.unwrap(), r0 + 6);
    // Resuming after any revision returns exactly the rest; limits page through it.
    for (i, c) in all_changes.iter().enumerate() {
        assert_eq!(
            store.changes_since(c.revision, 100).await.unwrap(),
            all_changes[i + 1..]
        );
    }
    assert_eq!(store.changes_since(r0, 2).await.unwrap(), all_changes[..2]);
    assert_eq!(
        store.changes_since(r0, 0).await.unwrap(),
        all_changes[..1],
        "a limit of 0 is clamped to 1"
    );
    assert_eq!(feed(&store, r0, 1).await, all_changes);

    // Read your writes: the feed after the revision before a write holds that write.
    let mut seen = Vec::new();
    macro_rules! wrote {
        ($kind:literal, $entity:expr, $write:expr) => {{
            let before = store.revision().await.unwrap();
            let out = $write.await.unwrap();
            let got = store.changes_since(before, 100).await.unwrap();
            assert_eq!(
                got,
                vec![change(before + 1, &t, $kind, $entity)],
                "{}",
                $kind
            );
            seen.push($kind);
            out
        }};
    }
    let patch = RolePatch {
        description: Some("Helps".into()),
        ..RolePatch::default()
    };
    wrote!(
        "role.update",
        rl.id.as_str(),
        store.update_role(&t, &rl.id, &patch, now(), &record("role.update"))
    );
    let b = binding_value(&t, &user_principal(&ann), rl.id.as_str(), Some(&acc.id));
    wrote!(
        "binding.create",
        b.id.as_str(),
        store.create_binding(&t, &b, &record("binding.create"))
    );
    wrote!(
        "role.delete",
        rl.id.as_str(),
        store.delete_role(&t, &rl.id, true, now(), &record("role.delete"))
    );
    wrote!(
        "policy.delete",
        pl.id.as_str(),
        store.delete_policy(&t, &pl.id, now(), &record("policy.delete"))
    );
    let disable = UserPatch {
        status: Some(Status::Disabled),
        ..UserPatch::default()
    };
    wrote!(
        "user.status",
        ann.id.as_str(),
        store.update_user(&t, &ann.id, &disable, now(), &record("user.update"))
    );
    let k = key_value(&t, None);
    let kb = [binding_value(
        &t,
        &PrincipalId::Key(k.id.clone()),
        "agency_viewer",
        None,
    )];
    wrote!(
        "api_key.create",
        k.id.as_str(),
        store.create_api_key(&t, &k, &secret(), &kb, &record("api_key.create"))
    );
    wrote!(
        "api_key.rotate",
        k.id.as_str(),
        store.rotate_api_key(
            &t,
            &k.id,
            &secret(),
            now() + 1000,
            now(),
            &record("api_key.rotate")
        )
    );
    wrote!(
        "api_key.revoke",
        k.id.as_str(),
        store.revoke_api_key(&t, &k.id, now(), &record("api_key.revoke"))
    );
    wrote!(
        "user.delete",
        ann.id.as_str(),
        store.delete_user(&t, &ann.id, now(), &record("user.delete"))
    );
    wrote!(
        "account.delete",
        acc.id.as_str(),
        store.delete_account(&t, &acc.id, now(), &record("account.delete"))
    );
    assert_eq!(seen.len(), 10);
}

/// Ten tasks write bindings (and a custom role each) in two agencies while a tailer follows
/// the feed: every revision from the start appears exactly once, in order, with no gap, and
/// the tailer never sees a revision before all lower ones.
async fn case_change_feed_gap_free_under_concurrency(store: Arc<dyn Store>, mint: ScopeMint) {
    let a = agency(&store, &mint, "A").await;
    let b = agency(&store, &mint, "B").await;
    let start = store.revision().await.unwrap();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let tailer = {
        let (store, done) = (store.clone(), done.clone());
        tokio::spawn(async move {
            let (mut seen, mut last) = (Vec::new(), start);
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                for c in store.changes_since(last, 7).await.unwrap() {
                    assert_eq!(c.revision, last + 1, "the tailer saw a gap after {last}");
                    last = c.revision;
                    seen.push(c);
                }
                tokio::task::yield_now().await;
            }
            seen
        })
    };
    let writers: Vec<_> = (0..10)
        .map(|i| {
            let (store, t) = (
                store.clone(),
                if i % 2 == 0 { a.clone() } else { b.clone() },
            );
            tokio::spawn(async move {
                let who = PrincipalId::User(UserId::generate());
                let custom = role(&store, &t, &format!("Role {i}"), &["contacts.read"]).await;
                bind(&store, &t, &who, custom.id.as_str(), None).await;
                bind(&store, &t, &who, "agency_viewer", None).await;
                let gone = bind(&store, &t, &who, "account_viewer", None).await;
                store
                    .delete_binding(&t, &gone.id, now(), &record("binding.delete"))
                    .await
                    .unwrap();
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let tailed = tailer.await.unwrap();

    let all_changes = feed(&store, start, 7).await;
    let revisions: Vec<i64> = all_changes.iter().map(|c| c.revision).collect();
    assert_eq!(revisions, (start + 1..=start + 50).collect::<Vec<_>>());
    assert_eq!(store.revision().await.unwrap(), start + 50);
    assert_eq!(
        tailed[..],
        all_changes[..tailed.len()],
        "the tailer's view is a prefix"
    );
    for t in [&a, &b] {
        let kinds = |kind: &str| {
            all_changes
                .iter()
                .filter(|c| &c.agency == t.agency() && c.kind == kind)
                .count()
        };
        assert_eq!(
            (
                kinds("role.create"),
                kinds("binding.create"),
                kinds("binding.delete")
            ),
            (5, 15, 5)
        );
    }
}

/// A binding to a custom role raced against the role's deletion (without removing bindings):
/// one of the two wins, and a binding never outlives its role.
async fn case_delete_role_races_binding(store: Arc<dyn Store>, mint: ScopeMint) {
    let t = agency(&store, &mint, "Acme").await;
    let (mut bound, mut deleted) = (0, 0);
    for round in 0..40 {
        let r = role(&store, &t, &format!("Role {round}"), &["contacts.read"]).await;
        let b = binding_value(
            &t,
            &PrincipalId::User(UserId::generate()),
            r.id.as_str(),
            None,
        );
        let binder = {
            let (store, t, b) = (store.clone(), t.clone(), b.clone());
            tokio::spawn(async move {
                store
                    .create_binding(&t, &b, &record("binding.create"))
                    .await
            })
        };
        let deleter = {
            let (store, t, id) = (store.clone(), t.clone(), r.id.clone());
            tokio::spawn(async move {
                store
                    .delete_role(&t, &id, false, now(), &record("role.delete"))
                    .await
            })
        };
        let (created, removed) = (binder.await.unwrap(), deleter.await.unwrap());
        let role_left = store.get_role(&t, &r.id).await;
        let binding_left = store.get_binding(&t, &b.id).await;
        match (&created, &removed) {
            (Ok(()), Err(StoreError::Conflict { constraint })) if constraint == "role_in_use" => {
                assert_eq!(role_left.unwrap(), r);
                assert_eq!(binding_left.unwrap(), b);
                bound += 1;
            }
            (Err(StoreError::Reference), Ok(0)) => {
                assert!(is_not_found(role_left));
                assert!(is_not_found(binding_left));
                deleted += 1;
            }
            other => panic!("round {round}: both or neither won: {other:?}"),
        }
        assert_eq!(
            store.count_role_bindings(&t, &r.id).await.unwrap(),
            u64::from(created.is_ok())
        );
    }
    assert_eq!(bound + deleted, 40);
}

// ---------------------------------------------------------------------------------------
// The token-signing key ring: global rows, compare-and-set writes.
// ---------------------------------------------------------------------------------------

async fn case_signing_keys_insert_and_list(store: Arc<dyn Store>, _mint: ScopeMint) {
    assert_eq!(store.signing_keys().await.unwrap(), []);
    let t0 = 1_700_000_000;
    // Kids differing in case: the order is bytewise on both backends ("B" < "a").
    let mut retiring = signing_key_value("m", "retiring", t0 + 200);
    retiring.retires_at = Some(t0 + 250);
    retiring.expires_at = Some(t0 + 3_850);
    let mut retired = signing_key_value("0", "retired", t0 + 300);
    retired.retires_at = Some(t0 + 310);
    retired.expires_at = Some(t0 + 320);
    retired.sealed_private = Vec::new();
    let rows = [
        retiring,
        signing_key_value("z", "active", t0 + 100),
        retired,
        signing_key_value("a", "pending", t0 + 100),
        signing_key_value("B", "pending", t0 + 100),
    ];
    for r in &rows {
        store.insert_signing_key(r).await.unwrap();
    }
    let listed = store.signing_keys().await.unwrap();
    let kids: Vec<&str> = listed.iter().map(|r| r.kid.as_str()).collect();
    assert_eq!(kids, ["B", "a", "z", "m", "0"]);
    // Every field round-trips, the optional ones and an empty sealed key included.
    let want = sorted(rows.to_vec(), |r| (r.created_at, r.kid.clone()));
    assert_eq!(listed, want);
    // Global: no tenant sees or changes anything of it, and it bumps no revision.
    assert_eq!(store.revision().await.unwrap(), 0);
}

async fn case_signing_key_duplicate_kid(store: Arc<dyn Store>, _mint: ScopeMint) {
    let first = signing_key(&store, "dup", "active").await;
    let mut second = signing_key_value("dup", "pending", 1_800_000_000);
    second.alg = "ES256".into();
    assert_conflict(store.insert_signing_key(&second).await, "kid");
    // The stored key is untouched.
    assert_eq!(store.signing_keys().await.unwrap(), [first]);
}

async fn case_signing_key_compare_and_set(store: Arc<dyn Store>, _mint: ScopeMint) {
    let k = signing_key(&store, "k1", "pending").await;
    let other = signing_key(&store, "k2", "active").await;

    // From a state it is not in: false, nothing changes.
    assert!(!store
        .update_signing_key("k1", &["active"], "retiring", Some(1), Some(2), Some(&[]))
        .await
        .unwrap());
    assert!(!store
        .update_signing_key("k1", &["retiring", "retired"], "retired", None, None, None)
        .await
        .unwrap());
    // No expected state matches nothing; a missing key is not an error.
    assert!(!store
        .update_signing_key("k1", &[], "active", None, None, None)
        .await
        .unwrap());
    assert!(!store
        .update_signing_key("missing", &["pending"], "active", None, None, None)
        .await
        .unwrap());
    assert_eq!(
        store.signing_keys().await.unwrap(),
        [k.clone(), other.clone()]
    );

    // Activate: pending → active. Only the state changes.
    assert!(store
        .update_signing_key("k1", &["pending"], "active", None, None, None)
        .await
        .unwrap());
    let active = SigningKeyRow {
        state: "active".into(),
        ..k.clone()
    };
    assert_eq!(stored_key(&store, "k1").await.unwrap(), active);
    // Applying the same transition again (another node, later) loses.
    assert!(!store
        .update_signing_key("k1", &["pending"], "active", None, None, None)
        .await
        .unwrap());

    // Begin retiring, from either of two expected states: the times are set.
    assert!(store
        .update_signing_key(
            "k1",
            &["active", "pending"],
            "retiring",
            Some(1_700_000_500),
            Some(1_700_004_100),
            None
        )
        .await
        .unwrap());
    let retiring = SigningKeyRow {
        state: "retiring".into(),
        retires_at: Some(1_700_000_500),
        expires_at: Some(1_700_004_100),
        ..k.clone()
    };
    assert_eq!(stored_key(&store, "k1").await.unwrap(), retiring);

    // Retire: the sealed key is wiped; `None` times leave the stored ones.
    assert!(store
        .update_signing_key("k1", &["retiring"], "retired", None, None, Some(&[]))
        .await
        .unwrap());
    let retired = SigningKeyRow {
        state: "retired".into(),
        sealed_private: Vec::new(),
        ..retiring
    };
    assert_eq!(stored_key(&store, "k1").await.unwrap(), retired);

    // `Some` sealed key replaces it.
    assert!(store
        .update_signing_key("k2", &["active"], "active", None, None, Some(&[7, 7, 7]))
        .await
        .unwrap());
    assert_eq!(
        stored_key(&store, "k2").await.unwrap().sealed_private,
        [7, 7, 7]
    );
    // The other key changed only there, and the list still holds both.
    assert_eq!(
        store.signing_keys().await.unwrap(),
        [
            retired,
            SigningKeyRow {
                sealed_private: vec![7, 7, 7],
                ..other
            }
        ]
    );
    assert_eq!(store.revision().await.unwrap(), 0);
}

/// Ten nodes apply the same transition at once: exactly one wins, and the row holds its write.
async fn case_signing_key_concurrent_compare_and_set(store: Arc<dyn Store>, _mint: ScopeMint) {
    const N: usize = 10;
    signing_key(&store, "race", "pending").await;

    async fn race<F, Fut>(f: F) -> Vec<usize>
    where
        F: Fn(usize) -> Fut,
        Fut: std::future::Future<Output = bool> + Send + 'static,
    {
        let barrier = Arc::new(tokio::sync::Barrier::new(N));
        let tasks: Vec<_> = (0..N)
            .map(|i| {
                let (barrier, fut) = (barrier.clone(), f(i));
                tokio::spawn(async move {
                    barrier.wait().await;
                    fut.await
                })
            })
            .collect();
        let mut winners = Vec::new();
        for (i, task) in tasks.into_iter().enumerate() {
            if task.await.unwrap() {
                winners.push(i);
            }
        }
        winners
    }

    // Activate.
    let winners = race(|_| {
        let store = store.clone();
        async move {
            store
                .update_signing_key("race", &["pending"], "active", None, None, None)
                .await
                .unwrap()
        }
    })
    .await;
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    assert_eq!(stored_key(&store, "race").await.unwrap().state, "active");

    // Begin retiring, each node with its own times and sealed key: the row is the winner's.
    let winners = race(|i| {
        let store = store.clone();
        let i64_i = i64::try_from(i).unwrap();
        let sealed = vec![u8::try_from(i).unwrap(); 4];
        async move {
            store
                .update_signing_key(
                    "race",
                    &["active", "pending"],
                    "retiring",
                    Some(1_000 + i64_i),
                    Some(2_000 + i64_i),
                    Some(&sealed),
                )
                .await
                .unwrap()
        }
    })
    .await;
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    let w = winners[0];
    let row = stored_key(&store, "race").await.unwrap();
    let w64 = i64::try_from(w).unwrap();
    assert_eq!(row.state, "retiring");
    assert_eq!(
        (row.retires_at, row.expires_at),
        (Some(1_000 + w64), Some(2_000 + w64))
    );
    assert_eq!(row.sealed_private, vec![u8::try_from(w).unwrap(); 4]);

    // Drop.
    store
        .update_signing_key("race", &["retiring"], "retired", None, None, Some(&[]))
        .await
        .unwrap();
    let winners = race(|_| {
        let store = store.clone();
        async move {
            store
                .delete_signing_key("race", &["retired", "pending"])
                .await
                .unwrap()
        }
    })
    .await;
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    assert_eq!(store.signing_keys().await.unwrap(), []);
}

async fn case_signing_key_delete(store: Arc<dyn Store>, _mint: ScopeMint) {
    let k = signing_key(&store, "gone", "retired").await;
    let kept = signing_key(&store, "kept", "active").await;
    // From a state it is not in, with no expected state, or a missing key: false, nothing changes.
    assert!(!store
        .delete_signing_key("gone", &["pending"])
        .await
        .unwrap());
    assert!(!store.delete_signing_key("gone", &[]).await.unwrap());
    assert!(!store
        .delete_signing_key("missing", &["retired"])
        .await
        .unwrap());
    assert_eq!(
        store.signing_keys().await.unwrap(),
        [k.clone(), kept.clone()]
    );
    assert!(store
        .delete_signing_key("gone", &["retired", "pending"])
        .await
        .unwrap());
    assert_eq!(store.signing_keys().await.unwrap(), [kept]);
    // Once gone, again is false.
    assert!(!store
        .delete_signing_key("gone", &["retired", "pending"])
        .await
        .unwrap());
    // The kid is free again.
    store.insert_signing_key(&k).await.unwrap();
    assert!(stored_key(&store, "gone").await.is_some());
}

async fn case_signing_key_debug_hides_sealed_key(store: Arc<dyn Store>, _mint: ScopeMint) {
    let mut row = signing_key_value("dbg", "active", 1_700_000_000);
    row.sealed_private = vec![0xde, 0xad, 0xbe, 0xef, 0x13, 0x37];
    store.insert_signing_key(&row).await.unwrap();
    let stored = stored_key(&store, "dbg").await.unwrap();
    assert_eq!(stored.sealed_private, row.sealed_private);
    for text in [
        format!("{row:?}"),
        format!("{row:#?}"),
        format!("{stored:?}"),
        format!("{:?}", store.signing_keys().await.unwrap()),
    ] {
        assert!(text.contains("[sealed 6 bytes]"), "{text}");
        assert!(text.contains("dbg"), "{text}");
        for leak in ["222", "173", "190", "239", "0xde", "dead", "DEAD", "3q2+7"] {
            assert!(!text.contains(leak), "sealed bytes printed: {text}");
        }
    }
    let empty = SigningKeyRow {
        sealed_private: Vec::new(),
        ..row
    };
    assert!(format!("{empty:?}").contains("[sealed 0 bytes]"));
}

// ---------------------------------------------------------------------------------------
// Upgrading a database made by earlier migrations: the later ones apply once, data stays.
// ---------------------------------------------------------------------------------------

const MIGRATIONS_TABLE: &str = "CREATE TABLE IF NOT EXISTS tessera_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)";
const MARKS: [&str; 2] = [
    "INSERT INTO tessera_migrations (version, name, applied_at) VALUES (1, 'init', 0)",
    "INSERT INTO tessera_migrations (version, name, applied_at) VALUES (2, 'roles_policies', 0)",
];
const SQLITE_MIGRATIONS: [&str; 2] = [
    include_str!("../migrations/sqlite/0001_init.sql"),
    include_str!("../migrations/sqlite/0002_roles_policies.sql"),
];
const POSTGRES_MIGRATIONS: [&str; 2] = [
    include_str!("../migrations/postgres/0001_init.sql"),
    include_str!("../migrations/postgres/0002_roles_policies.sql"),
];
const VERSIONS: &str = "SELECT version FROM tessera_migrations ORDER BY version";

/// Opens the store on a database at version 1 holding one raw agency, and upgrades it.
async fn upgraded_from_v1(store: Arc<dyn Store>, mint: ScopeMint, agency: AgencyId) {
    assert_eq!(store.migrate().await.unwrap(), 3, "0002, 0003 and 0004 run");
    assert_eq!(store.migrate().await.unwrap(), 0);
    assert_eq!(store.get_agency(&agency).await.unwrap().name, "Raw");
    let t = mint.admit(agency);
    let r = role(&store, &t, "Support", &["contacts.read"]).await;
    let b = bind(
        &store,
        &t,
        &PrincipalId::User(UserId::generate()),
        r.id.as_str(),
        None,
    )
    .await;
    let p = policy(&store, &t, "No deletes").await;
    let snap = store.authz_snapshot(&t, now()).await.unwrap();
    assert_eq!(
        (snap.roles, snap.bindings, snap.policies),
        (vec![r], vec![b], vec![p])
    );
    let k = signing_key(&store, "upgraded", "active").await;
    assert_eq!(store.signing_keys().await.unwrap(), [k]);
}

/// Opens the store on a database at version 2 holding one raw agency, and upgrades it.
async fn upgraded_from_v2(store: Arc<dyn Store>, agency: AgencyId) {
    assert_eq!(store.migrate().await.unwrap(), 2, "0003 and 0004 run");
    assert_eq!(store.migrate().await.unwrap(), 0);
    assert_eq!(store.get_agency(&agency).await.unwrap().name, "Raw");
    assert_eq!(store.signing_keys().await.unwrap(), []);
    let k = signing_key(&store, "upgraded", "pending").await;
    assert!(store
        .update_signing_key("upgraded", &["pending"], "active", None, None, None)
        .await
        .unwrap());
    assert_eq!(store.migrate().await.unwrap(), 0);
    assert_eq!(
        store.signing_keys().await.unwrap(),
        [SigningKeyRow {
            state: "active".into(),
            ..k
        }]
    );
}

/// A SQLite database at `version`, holding one raw agency.
async fn sqlite_at(version: usize) -> (tessera_store::testing::TempDirGuard, String, AgencyId) {
    let dir = tessera_store::testing::TempDirGuard::new("tessera-upgrade").unwrap();
    let url = format!("sqlite://{}", dir.path().join(SQLITE_DB_FILE).display());
    let opts = url
        .parse::<sqlx::sqlite::SqliteConnectOptions>()
        .unwrap()
        .create_if_missing(true);
    let raw = sqlx::SqlitePool::connect_with(opts).await.unwrap();
    for sql in &SQLITE_MIGRATIONS[..version] {
        sqlx::raw_sql(sql).execute(&raw).await.unwrap();
    }
    let id = AgencyId::generate();
    for sql in std::iter::once(MIGRATIONS_TABLE).chain(MARKS[..version].iter().copied()) {
        sqlx::query(sql).execute(&raw).await.unwrap();
    }
    sqlx::query(RAW_AGENCY)
        .bind(id.as_str())
        .bind(false)
        .execute(&raw)
        .await
        .unwrap();
    raw.close().await;
    (dir, url, id)
}

/// Each migration is recorded once.
async fn sqlite_versions(url: &str) -> Vec<i64> {
    let raw = sqlx::SqlitePool::connect(url).await.unwrap();
    let versions = sqlx::query_scalar(VERSIONS).fetch_all(&raw).await.unwrap();
    raw.close().await;
    versions
}

/// The PostgreSQL test database at `version`, holding one raw agency.
async fn postgres_at(db: &PgTestDb, version: usize) -> AgencyId {
    let raw = sqlx::PgPool::connect(&db.url()).await.unwrap();
    for sql in &POSTGRES_MIGRATIONS[..version] {
        sqlx::raw_sql(sql).execute(&raw).await.unwrap();
    }
    let id = AgencyId::generate();
    for sql in std::iter::once(MIGRATIONS_TABLE).chain(MARKS[..version].iter().copied()) {
        sqlx::query(sql).execute(&raw).await.unwrap();
    }
    sqlx::query(RAW_AGENCY)
        .bind(id.as_str())
        .bind(false)
        .execute(&raw)
        .await
        .unwrap();
    raw.close().await;
    id
}

async fn postgres_versions(db: &PgTestDb) -> Vec<i64> {
    let raw = sqlx::PgPool::connect(&db.url()).await.unwrap();
    let versions = sqlx::query_scalar(VERSIONS).fetch_all(&raw).await.unwrap();
    raw.close().await;
    versions
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_upgrade_from_0001() {
    let (_dir, url, id) = sqlite_at(1).await;
    let Connected { store, mint } = tessera_store::connect(&url).await.unwrap();
    upgraded_from_v1(store, mint, id).await;
    assert_eq!(sqlite_versions(&url).await, [1, 2, 3, 4]);
    assert_eq!(
        sqlite_checksums(&url).await,
        expected_checksums(&SQLITE_ALL)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_upgrade_from_0002() {
    let (_dir, url, id) = sqlite_at(2).await;
    let Connected { store, .. } = tessera_store::connect(&url).await.unwrap();
    upgraded_from_v2(store, id).await;
    assert_eq!(sqlite_versions(&url).await, [1, 2, 3, 4]);
    assert_eq!(
        sqlite_checksums(&url).await,
        expected_checksums(&SQLITE_ALL)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_upgrade_from_0001() {
    let Some(db) = PgTestDb::create().await else {
        notice_pg_skipped();
        return;
    };
    let id = postgres_at(&db, 1).await;
    let Connected { store, mint } = tessera_store::connect(&db.url()).await.unwrap();
    upgraded_from_v1(store, mint, id).await;
    assert_eq!(postgres_versions(&db).await, [1, 2, 3, 4]);
    assert_eq!(
        postgres_checksums(&db).await,
        expected_checksums(&POSTGRES_ALL)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_upgrade_from_0002() {
    let Some(db) = PgTestDb::create().await else {
        notice_pg_skipped();
        return;
    };
    let id = postgres_at(&db, 2).await;
    let Connected { store, .. } = tessera_store::connect(&db.url()).await.unwrap();
    upgraded_from_v2(store, id).await;
    assert_eq!(postgres_versions(&db).await, [1, 2, 3, 4]);
    assert_eq!(
        postgres_checksums(&db).await,
        expected_checksums(&POSTGRES_ALL)
    );
}

// ---------------------------------------------------------------------------------------
// Migration checksums: recorded per version, backfilled on upgrade, an edited one refused.
// ---------------------------------------------------------------------------------------

const SQLITE_ALL: [&str; 4] = [
    include_str!("../migrations/sqlite/0001_init.sql"),
    include_str!("../migrations/sqlite/0002_roles_policies.sql"),
    include_str!("../migrations/sqlite/0003_signing_keys.sql"),
    include_str!("../migrations/sqlite/0004_oauth.sql"),
];
const POSTGRES_ALL: [&str; 4] = [
    include_str!("../migrations/postgres/0001_init.sql"),
    include_str!("../migrations/postgres/0002_roles_policies.sql"),
    include_str!("../migrations/postgres/0003_signing_keys.sql"),
    include_str!("../migrations/postgres/0004_oauth.sql"),
];
const CHECKSUMS: &str = "SELECT version, checksum FROM tessera_migrations ORDER BY version";
const EDIT_CHECKSUM: &str = "UPDATE tessera_migrations SET checksum = $1 WHERE version = 2";
const DROP_CHECKSUMS: &str = "ALTER TABLE tessera_migrations DROP COLUMN checksum";

/// Each version with the SHA-256 (hex) of its SQL file: what the runner records.
fn expected_checksums(files: &[&str]) -> Vec<(i64, Option<String>)> {
    use sha2::Digest as _;
    (1..)
        .zip(files)
        .map(|(v, sql)| {
            let hex = sha2::Sha256::digest(sql.as_bytes())
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            (v, Some(hex))
        })
        .collect()
}

async fn sqlite_checksums(url: &str) -> Vec<(i64, Option<String>)> {
    let raw = sqlx::SqlitePool::connect(url).await.unwrap();
    let rows = sqlx::query_as(CHECKSUMS).fetch_all(&raw).await.unwrap();
    raw.close().await;
    rows
}

async fn postgres_checksums(db: &PgTestDb) -> Vec<(i64, Option<String>)> {
    let raw = sqlx::PgPool::connect(&db.url()).await.unwrap();
    let rows = sqlx::query_as(CHECKSUMS).fetch_all(&raw).await.unwrap();
    raw.close().await;
    rows
}

/// `migrate` refused the start: migration 2 of `backend` was edited.
fn assert_edited(r: Result<usize, StoreError>, backend: &str) {
    let file = format!("migrations/{backend}/0002_roles_policies.sql");
    match r {
        Err(e @ StoreError::MigrationEdited { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("migration 2") && msg.contains(&file), "{msg}");
            assert!(matches!(e, StoreError::MigrationEdited { version: 2, file: f } if f == file));
        }
        other => panic!("an edited migration must refuse the start, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_migration_checksums_recorded_and_checked() {
    let (Connected { store, .. }, dir) = sqlite_store().await;
    let url = format!("sqlite://{}", dir.path().join(SQLITE_DB_FILE).display());
    assert_eq!(
        sqlite_checksums(&url).await,
        expected_checksums(&SQLITE_ALL)
    );
    let raw = sqlx::SqlitePool::connect(&url).await.unwrap();
    sqlx::query(EDIT_CHECKSUM)
        .bind("0".repeat(64))
        .execute(&raw)
        .await
        .unwrap();
    raw.close().await;
    assert_edited(store.migrate().await, "sqlite");
    // Refused again on the next start: nothing was repaired or applied.
    let Connected { store: again, .. } = tessera_store::connect(&url).await.unwrap();
    assert_edited(again.migrate().await, "sqlite");
    assert_eq!(sqlite_versions(&url).await, [1, 2, 3, 4]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_migration_checksums_recorded_and_checked() {
    let Some(db) = PgTestDb::create().await else {
        notice_pg_skipped();
        return;
    };
    let Connected { store, .. } = db.store().await;
    assert_eq!(
        postgres_checksums(&db).await,
        expected_checksums(&POSTGRES_ALL)
    );
    let raw = sqlx::PgPool::connect(&db.url()).await.unwrap();
    sqlx::query(EDIT_CHECKSUM)
        .bind("0".repeat(64))
        .execute(&raw)
        .await
        .unwrap();
    raw.close().await;
    assert_edited(store.migrate().await, "postgres");
    let Connected { store: again, .. } = tessera_store::connect(&db.url()).await.unwrap();
    assert_edited(again.migrate().await, "postgres");
}

/// A database the old runner brought up to date has no checksum column: the next start adds
/// it and backfills every version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_checksums_backfilled_when_up_to_date() {
    let (Connected { store, .. }, dir) = sqlite_store().await;
    let url = format!("sqlite://{}", dir.path().join(SQLITE_DB_FILE).display());
    let raw = sqlx::SqlitePool::connect(&url).await.unwrap();
    sqlx::query(DROP_CHECKSUMS).execute(&raw).await.unwrap();
    raw.close().await;
    assert_eq!(store.migrate().await.unwrap(), 0);
    assert_eq!(
        sqlite_checksums(&url).await,
        expected_checksums(&SQLITE_ALL)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_checksums_backfilled_when_up_to_date() {
    let Some(db) = PgTestDb::create().await else {
        notice_pg_skipped();
        return;
    };
    let Connected { store, .. } = db.store().await;
    let raw = sqlx::PgPool::connect(&db.url()).await.unwrap();
    sqlx::query(DROP_CHECKSUMS).execute(&raw).await.unwrap();
    raw.close().await;
    assert_eq!(store.migrate().await.unwrap(), 0);
    assert_eq!(
        postgres_checksums(&db).await,
        expected_checksums(&POSTGRES_ALL)
    );
}

// ---------------------------------------------------------------------------------------
// OAuth: apps, installations, codes, grants, refresh tokens, revocations, sign-in lookup
// ---------------------------------------------------------------------------------------

fn app_value(t: &TenantScope, kind: AppKind, confidential: bool) -> App {
    let at = now();
    App {
        id: AppId::generate(),
        agency_id: t.agency().clone(),
        name: format!("{} app", kind.as_str()),
        kind,
        confidential,
        token_signing_alg: "EdDSA".into(),
        redirect_uris: vec![
            "https://app.example/cb".into(),
            "http://127.0.0.1:8080/cb".into(),
        ],
        scopes: vec!["contacts.readonly".into(), "contacts.write".into()],
        created_by: "usr_suite".into(),
        created_at: at,
        updated_at: at,
        deleted_at: None,
    }
}

/// Creates a confidential app of `kind` with one secret.
async fn app(store: &Arc<dyn Store>, t: &TenantScope, kind: AppKind) -> (App, SecretHashRecord) {
    let a = app_value(t, kind, true);
    let s = secret();
    store
        .create_app(t, &a, Some(&s), &record("app.create"))
        .await
        .unwrap();
    (a, s)
}

fn installation_value(t: &TenantScope, app: &App, account: Option<&AccountId>) -> Installation {
    Installation {
        id: InstallationId::generate(),
        agency_id: t.agency().clone(),
        app_id: app.id.clone(),
        app_agency_id: app.agency_id.clone(),
        account: account.cloned(),
        scopes: vec!["contacts.readonly".into()],
        created_by: "usr_suite".into(),
        created_at: now(),
        revoked_at: None,
    }
}

async fn install(
    store: &Arc<dyn Store>,
    t: &TenantScope,
    app: &App,
    account: Option<&AccountId>,
) -> Installation {
    let i = installation_value(t, app, account);
    store
        .create_installation(t, &i, &record("installation.create"))
        .await
        .unwrap();
    i
}

fn grant_id() -> String {
    format!(
        "grt_{}",
        EventId::generate().as_str().trim_start_matches("evt_")
    )
}

fn grant_value(t: &TenantScope, app: &App, installation: Option<&InstallationId>) -> Grant {
    let at = now();
    Grant {
        id: grant_id(),
        agency_id: t.agency().clone(),
        kind: "authorization_code".into(),
        client_id: app.id.clone(),
        subject: UserId::generate().to_string(),
        installation: installation.cloned(),
        account: None,
        scope: "contacts.readonly".into(),
        auth_time: Some(at - 1_000),
        created_at: at,
        expires_at: at + 30 * 86_400_000,
        revoked_at: None,
    }
}

fn refresh_value(grant: &Grant) -> NewRefreshToken {
    let at = now();
    NewRefreshToken {
        hash: rand::random::<[u8; 32]>().to_vec(),
        pepper_version: 1,
        grant_id: grant.id.clone(),
        created_at: at,
        idle_expires_at: at + 86_400_000,
    }
}

/// Creates a grant with its first refresh token.
async fn grant(
    store: &Arc<dyn Store>,
    t: &TenantScope,
    app: &App,
    installation: Option<&InstallationId>,
) -> (Grant, NewRefreshToken) {
    let g = grant_value(t, app, installation);
    let r = refresh_value(&g);
    store
        .create_grant(t, &g, Some(&r), &record("token.issue"))
        .await
        .unwrap();
    (g, r)
}

fn code_value(t: &TenantScope, app: &App, user: &UserId) -> AuthCode {
    let at = now();
    AuthCode {
        hash: rand::random::<[u8; 32]>().to_vec(),
        agency_id: t.agency().clone(),
        client_id: app.id.clone(),
        user_id: user.clone(),
        installation: None,
        account: None,
        redirect_uri: "https://app.example/cb".into(),
        scope: "openid contacts.readonly".into(),
        code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into(),
        nonce: Some("n-0S6_WzA2Mj".into()),
        auth_time: at - 500,
        grant_id: grant_id(),
        created_at: at,
        expires_at: at + 60_000,
        consumed_at: None,
    }
}

async fn changes_of(store: &Arc<dyn Store>, after: i64) -> Vec<(AgencyId, String, String)> {
    feed(store, after, 1000)
        .await
        .into_iter()
        .map(|c| (c.agency, c.kind, c.entity))
        .collect()
}

fn actions(events: &[AuditEvent]) -> Vec<String> {
    events.iter().map(|e| e.action.clone()).collect()
}

async fn case_apps(store: Arc<dyn Store>, mint: ScopeMint) {
    let t = agency(&store, &mint, "Acme").await;
    let (a, s1) = app(&store, &t, AppKind::Private).await;
    assert_eq!(store.get_app(&t, &a.id).await.unwrap(), a);
    let public = app_value(&t, AppKind::Marketplace, false);
    store
        .create_app(&t, &public, None, &record("app.create"))
        .await
        .unwrap();
    assert_eq!(
        store.list_apps(&t, &all()).await.unwrap().items,
        sorted(vec![a.clone(), public.clone()], |x| x.id.clone())
    );
    // Pages.
    let first = store.list_apps(&t, &page(1, None)).await.unwrap();
    assert_eq!(first.items.len(), 1);
    let second = store
        .list_apps(&t, &page(1, first.next_cursor.clone()))
        .await
        .unwrap();
    assert_eq!(second.items.len(), 1);
    assert!(second.next_cursor.is_none());
    assert_ne!(first.items, second.items);
    // A duplicate id is a conflict.
    assert!(matches!(
        store.create_app(&t, &a, None, &record("app.create")).await,
        Err(StoreError::Conflict { .. })
    ));
    // A reused secret hash too.
    let mut dup = app_value(&t, AppKind::Private, true);
    dup.name = "dup".into();
    assert_conflict(
        store
            .create_app(&t, &dup, Some(&s1), &record("app.create"))
            .await,
        "secret",
    );
    assert!(
        is_not_found(store.get_app(&t, &dup.id).await),
        "nothing half-written"
    );

    // find_client: the app and its secrets, across tenants.
    let found = client(&store, &a.id).await.unwrap().unwrap();
    assert_eq!(found.app, a);
    assert_eq!(found.secrets.len(), 1);
    assert_eq!(found.secrets[0].hash, s1.hash);
    assert_eq!(found.secrets[0].pepper_version, 1);
    assert_eq!(found.secrets[0].valid_until, None);
    let pf = client(&store, &public.id).await.unwrap().unwrap();
    assert!(pf.secrets.is_empty());
    assert!(!pf.app.confidential);
    assert!(client(&store, &AppId::generate()).await.unwrap().is_none());

    // Rotation: newest first, the old one valid until the grace ends.
    let s2 = secret();
    let t1 = now() + 1;
    let rotated = store
        .rotate_app_secret(
            &t,
            &a.id,
            &s2,
            t1 + 60_000,
            t1,
            &record("app.rotate_secret"),
        )
        .await
        .unwrap();
    assert_eq!(rotated.updated_at, t1);
    let found = client(&store, &a.id).await.unwrap().unwrap();
    assert_eq!(
        found
            .secrets
            .iter()
            .map(|s| (s.hash.clone(), s.valid_until))
            .collect::<Vec<_>>(),
        vec![
            (s2.hash.clone(), None),
            (s1.hash.clone(), Some(t1 + 60_000))
        ]
    );
    // A second rotation in the same millisecond still lists the current secret first.
    let s3 = secret();
    store
        .rotate_app_secret(
            &t,
            &a.id,
            &s3,
            t1 + 30_000,
            t1,
            &record("app.rotate_secret"),
        )
        .await
        .unwrap();
    let found = client(&store, &a.id).await.unwrap().unwrap();
    assert_eq!(found.secrets[0].hash, s3.hash);
    assert_eq!(found.secrets[0].valid_until, None);
    assert!(found.secrets[1..]
        .iter()
        .all(|s| s.valid_until.is_some_and(|v| v <= t1 + 60_000)));
    // Rotating an unknown app is NotFound.
    assert!(is_not_found(
        store
            .rotate_app_secret(
                &t,
                &AppId::generate(),
                &secret(),
                t1,
                t1,
                &record("app.rotate_secret")
            )
            .await
    ));

    // Deletion: marked, its secrets end now, still found (the caller checks), not listed.
    let t2 = now() + 2;
    let deleted = store
        .delete_app(&t, &a.id, t2, &record("app.delete"))
        .await
        .unwrap();
    assert_eq!(deleted.deleted_at, Some(t2));
    assert_eq!(store.get_app(&t, &a.id).await.unwrap(), deleted);
    assert_eq!(
        store.list_apps(&t, &all()).await.unwrap().items,
        vec![public]
    );
    let found = client(&store, &a.id).await.unwrap().unwrap();
    assert_eq!(found.app.deleted_at, Some(t2));
    assert!(found
        .secrets
        .iter()
        .all(|s| s.valid_until.is_some_and(|v| v <= t2)));
    // Deleting again returns it as it is; rotating a deleted app is NotFound.
    assert_eq!(
        store
            .delete_app(&t, &a.id, t2 + 10, &record("app.delete"))
            .await
            .unwrap(),
        deleted
    );
    assert!(is_not_found(
        store
            .rotate_app_secret(&t, &a.id, &secret(), t2, t2, &record("app.rotate_secret"))
            .await
    ));
    assert!(is_not_found(
        store
            .delete_app(&t, &AppId::generate(), t2, &record("app.delete"))
            .await
    ));
    let acts = actions(&chain(&store, &t).await);
    for want in ["app.create", "app.rotate_secret", "app.delete"] {
        assert!(acts.iter().any(|a| a == want), "{want} audited: {acts:?}");
    }
    assert_chain_ok(&chain(&store, &t).await);
}

async fn case_installations(store: Arc<dyn Store>, mint: ScopeMint) {
    let partner = agency(&store, &mint, "Partner").await;
    let (market, _) = app(&store, &partner, AppKind::Marketplace).await;
    let t = agency(&store, &mint, "Acme").await;
    let acc = account(&store, &t, "Main").await;
    let acc2 = account(&store, &t, "Second").await;
    let wide = install(&store, &t, &market, None).await;
    let on_acc = install(&store, &t, &market, Some(&acc.id)).await;
    assert_eq!(store.get_installation(&t, &wide.id).await.unwrap(), wide);
    assert_eq!(
        store.get_installation(&t, &on_acc.id).await.unwrap(),
        on_acc
    );

    // One active installation per (agency, account or none, app).
    assert_conflict(
        store
            .create_installation(
                &t,
                &installation_value(&t, &market, None),
                &record("installation.create"),
            )
            .await,
        "installation",
    );
    assert_conflict(
        store
            .create_installation(
                &t,
                &installation_value(&t, &market, Some(&acc.id)),
                &record("installation.create"),
            )
            .await,
        "installation",
    );
    let on_acc2 = install(&store, &t, &market, Some(&acc2.id)).await;

    // Lists: active ones, optionally of one account.
    assert_eq!(
        store
            .list_installations(&t, None, &all())
            .await
            .unwrap()
            .items,
        sorted(vec![wide.clone(), on_acc.clone(), on_acc2.clone()], |i| i
            .id
            .clone())
    );
    assert_eq!(
        store
            .list_installations(&t, Some(&acc.id), &all())
            .await
            .unwrap()
            .items,
        vec![on_acc.clone()]
    );
    let p1 = store
        .list_installations(&t, None, &page(2, None))
        .await
        .unwrap();
    assert_eq!(p1.items.len(), 2);
    let p2 = store
        .list_installations(&t, None, &page(2, p1.next_cursor.clone()))
        .await
        .unwrap();
    assert_eq!(p2.items.len(), 1);
    assert!(p2.next_cursor.is_none());

    // References: another agency's account, or an unknown app.
    let other = agency(&store, &mint, "Other").await;
    let their_acc = account(&store, &other, "Theirs").await;
    assert!(matches!(
        store
            .create_installation(
                &t,
                &installation_value(&t, &market, Some(&their_acc.id)),
                &record("installation.create"),
            )
            .await,
        Err(StoreError::Reference)
    ));
    let ghost = app_value(&partner, AppKind::Marketplace, true);
    assert!(matches!(
        store
            .create_installation(
                &t,
                &installation_value(&t, &ghost, None),
                &record("installation.create")
            )
            .await,
        Err(StoreError::Reference)
    ));

    // Uninstall, then install again: allowed.
    let at = now() + 5;
    let revoked = store
        .revoke_installation(&t, &wide.id, at, &record("installation.revoke"))
        .await
        .unwrap();
    assert_eq!(revoked.revoked_at, Some(at));
    assert_eq!(store.get_installation(&t, &wide.id).await.unwrap(), revoked);
    assert_eq!(
        store
            .revoke_installation(&t, &wide.id, at + 100, &record("installation.revoke"))
            .await
            .unwrap(),
        revoked,
        "revoking again changes nothing"
    );
    assert!(!store
        .list_installations(&t, None, &all())
        .await
        .unwrap()
        .items
        .iter()
        .any(|i| i.id == wide.id));
    let again = install(&store, &t, &market, None).await;
    assert_ne!(again.id, wide.id);
    assert!(is_not_found(
        store
            .revoke_installation(
                &t,
                &InstallationId::generate(),
                at,
                &record("installation.revoke")
            )
            .await
    ));
    assert!(is_not_found(
        store
            .get_installation(&t, &InstallationId::generate())
            .await
    ));
    assert_chain_ok(&chain(&store, &t).await);
}

async fn case_client_installations(store: Arc<dyn Store>, mint: ScopeMint) {
    let partner = agency(&store, &mint, "Partner").await;
    let (market, _) = app(&store, &partner, AppKind::Marketplace).await;
    let (other_app, _) = app(&store, &partner, AppKind::Marketplace).await;
    let a = agency(&store, &mint, "A").await;
    let b = agency(&store, &mint, "B").await;
    let gone = agency(&store, &mint, "Gone").await;
    let b_acc = account(&store, &b, "Main").await;
    let ia = install(&store, &a, &market, None).await;
    let ib = install(&store, &b, &market, Some(&b_acc.id)).await;
    let ib_revoked = install(&store, &b, &market, None).await;
    store
        .revoke_installation(&b, &ib_revoked.id, now(), &record("installation.revoke"))
        .await
        .unwrap();
    install(&store, &gone, &market, None).await;
    store
        .delete_agency(gone.agency(), now(), &record("agency.delete"))
        .await
        .unwrap();
    let unrelated = install(&store, &a, &other_app, None).await;

    let mut want = vec![ia, ib];
    want.sort_by(|x, y| {
        (x.agency_id.as_str(), x.id.as_str()).cmp(&(y.agency_id.as_str(), y.id.as_str()))
    });
    assert_eq!(installations_of(&store, &market.id).await.unwrap(), want);
    assert_eq!(
        installations_of(&store, &other_app.id).await.unwrap(),
        vec![unrelated]
    );
    assert!(installations_of(&store, &AppId::generate())
        .await
        .unwrap()
        .is_empty());
}

async fn case_codes(store: Arc<dyn Store>, mint: ScopeMint) {
    let t = agency(&store, &mint, "Acme").await;
    let (a, _) = app(&store, &t, AppKind::Private).await;
    let ins = install(&store, &t, &a, None).await;
    let u = user(&store, &t, "ann@acme.example", None).await;
    let acc = account(&store, &t, "Main").await;
    let mut c = code_value(&t, &a, &u.id);
    c.installation = Some(ins.id.clone());
    c.account = Some(acc.id.clone());
    store.create_code(&t, &c).await.unwrap();
    // A second code with the same hash is refused.
    assert!(matches!(
        store.create_code(&t, &c).await,
        Err(StoreError::Conflict { .. })
    ));
    let bare = code_value(&t, &a, &u.id);
    store.create_code(&t, &bare).await.unwrap();

    let at = now() + 7;
    let consumed = AuthCode {
        consumed_at: Some(at),
        ..c.clone()
    };
    assert_eq!(
        redeem(&store, &c.hash, at).await.unwrap(),
        Some(CodeRedemption::Fresh(consumed.clone()))
    );
    assert_eq!(
        redeem(&store, &c.hash, at + 1_000).await.unwrap(),
        Some(CodeRedemption::Replayed(consumed)),
        "a second redemption is a replay, and keeps the first time"
    );
    assert_eq!(
        redeem(&store, &bare.hash, at).await.unwrap(),
        Some(CodeRedemption::Fresh(AuthCode {
            consumed_at: Some(at),
            ..bare
        }))
    );
    assert_eq!(
        redeem(&store, &rand::random::<[u8; 32]>(), at)
            .await
            .unwrap(),
        None
    );
}

async fn case_concurrent_code_redemption(store: Arc<dyn Store>, mint: ScopeMint) {
    let t = agency(&store, &mint, "Acme").await;
    let (a, _) = app(&store, &t, AppKind::Private).await;
    let u = user(&store, &t, "ann@acme.example", None).await;
    for _ in 0..3 {
        let c = code_value(&t, &a, &u.id);
        store.create_code(&t, &c).await.unwrap();
        let tasks: Vec<_> = (0..12)
            .map(|i| {
                let (store, hash) = (store.clone(), c.hash.clone());
                tokio::spawn(async move { redeem(&store, &hash, now() + i).await.unwrap() })
            })
            .collect();
        let mut fresh = 0;
        let mut replayed = 0;
        let mut first_time = None;
        for task in tasks {
            match task.await.unwrap() {
                Some(CodeRedemption::Fresh(code)) => {
                    fresh += 1;
                    first_time = code.consumed_at;
                }
                Some(CodeRedemption::Replayed(code)) => {
                    replayed += 1;
                    assert!(code.consumed_at.is_some());
                }
                None => panic!("the code exists"),
            }
        }
        assert_eq!(
            (fresh, replayed),
            (1, 11),
            "exactly one redemption is fresh"
        );
        match redeem(&store, &c.hash, now()).await.unwrap() {
            Some(CodeRedemption::Replayed(code)) => assert_eq!(code.consumed_at, first_time),
            other => panic!("expected a replay, got {other:?}"),
        }
    }
}

async fn case_grants(store: Arc<dyn Store>, mint: ScopeMint) {
    let t = agency(&store, &mint, "Acme").await;
    let (a, _) = app(&store, &t, AppKind::Private).await;
    let ins = install(&store, &t, &a, None).await;
    let (g, r) = grant(&store, &t, &a, Some(&ins.id)).await;
    assert_eq!(store.get_grant(&t, &g.id).await.unwrap(), g);
    // A grant without a refresh token (client credentials, exchange).
    let mut bare = grant_value(&t, &a, None);
    bare.kind = "token_exchange".into();
    bare.auth_time = None;
    store
        .create_grant(&t, &bare, None, &record("token.exchange"))
        .await
        .unwrap();
    assert_eq!(store.get_grant(&t, &bare.id).await.unwrap(), bare);
    assert!(matches!(
        store
            .create_grant(&t, &bare, None, &record("token.exchange"))
            .await,
        Err(StoreError::Conflict { .. })
    ));
    // An installation of another agency is a missing reference.
    let other = agency(&store, &mint, "Other").await;
    let their_ins = install(&store, &other, &a, None).await;
    let cross = grant_value(&t, &a, Some(&their_ins.id));
    assert!(matches!(
        store
            .create_grant(&t, &cross, None, &record("token.issue"))
            .await,
        Err(StoreError::Reference)
    ));
    assert!(is_not_found(store.get_grant(&t, &cross.id).await));

    // The refresh token is found with its grant, across tenants.
    let (token, found) = refresh_token(&store, &r.hash).await.unwrap().unwrap();
    assert_eq!(found, g);
    assert_eq!(token.hash, r.hash);
    assert_eq!(&token.agency_id, t.agency());
    assert_eq!(token.grant_id, g.id);
    assert_eq!(token.created_at, r.created_at);
    assert_eq!(token.idle_expires_at, r.idle_expires_at);
    assert_eq!(token.rotated_at, None);
    assert!(refresh_token(&store, &rand::random::<[u8; 32]>())
        .await
        .unwrap()
        .is_none());

    // Revocation: true once, then false; unknown is NotFound.
    let at = now() + 3;
    assert!(store
        .revoke_grant(&t, &g.id, at, &record("grant.revoke"))
        .await
        .unwrap());
    assert!(!store
        .revoke_grant(&t, &g.id, at + 1, &record("grant.revoke"))
        .await
        .unwrap());
    assert_eq!(
        store.get_grant(&t, &g.id).await.unwrap().revoked_at,
        Some(at)
    );
    assert_eq!(
        refresh_token(&store, &r.hash)
            .await
            .unwrap()
            .unwrap()
            .1
            .revoked_at,
        Some(at)
    );
    assert!(is_not_found(
        store
            .revoke_grant(&t, "grt_missing", at, &record("grant.revoke"))
            .await
    ));
    // Its refresh token no longer rotates.
    assert_eq!(
        store
            .rotate_refresh_token(
                &t,
                &r.hash,
                &refresh_value(&g),
                at + 10,
                0,
                &record("token.reuse")
            )
            .await
            .unwrap(),
        RefreshUse::Revoked
    );
    let revokes = actions(&chain(&store, &t).await)
        .into_iter()
        .filter(|a| a == "grant.revoke")
        .count();
    assert_eq!(
        revokes, 1,
        "only the revocation that changed something is audited"
    );
    assert_chain_ok(&chain(&store, &t).await);
}

async fn case_refresh_rotation(store: Arc<dyn Store>, mint: ScopeMint) {
    let t = agency(&store, &mint, "Acme").await;
    let (a, _) = app(&store, &t, AppKind::Private).await;
    let (g, r0) = grant(&store, &t, &a, None).await;
    let grace = 10_000;
    let t0 = now();

    // Current token: rotated.
    let r1 = refresh_value(&g);
    assert_eq!(
        store
            .rotate_refresh_token(&t, &r0.hash, &r1, t0, grace, &record("token.reuse"))
            .await
            .unwrap(),
        RefreshUse::Rotated
    );
    let (old, _) = refresh_token(&store, &r0.hash).await.unwrap().unwrap();
    assert_eq!(old.rotated_at, Some(t0));
    let (new, ng) = refresh_token(&store, &r1.hash).await.unwrap().unwrap();
    assert_eq!(
        (new.rotated_at, new.grant_id.as_str(), ng.revoked_at),
        (None, g.id.as_str(), None)
    );

    // The old one again within the grace window (a retry): refused, nothing stored, the
    // family left alone, the first rotation time kept.
    let r1b = refresh_value(&g);
    assert_eq!(
        store
            .rotate_refresh_token(
                &t,
                &r0.hash,
                &r1b,
                t0 + grace - 1,
                grace,
                &record("token.reuse")
            )
            .await
            .unwrap(),
        RefreshUse::RecentlyRotated
    );
    assert_eq!(
        refresh_token(&store, &r0.hash)
            .await
            .unwrap()
            .unwrap()
            .0
            .rotated_at,
        Some(t0)
    );
    assert!(refresh_token(&store, &r1b.hash).await.unwrap().is_none());
    assert_eq!(store.get_grant(&t, &g.id).await.unwrap().revoked_at, None);

    // Another scope cannot rotate it: to that agency the token does not exist.
    let other = agency(&store, &mint, "Other").await;
    assert_eq!(
        store
            .rotate_refresh_token(
                &other,
                &r1.hash,
                &refresh_value(&g),
                t0,
                grace,
                &record("token.reuse")
            )
            .await
            .unwrap(),
        RefreshUse::Revoked
    );
    assert_eq!(
        refresh_token(&store, &r1.hash)
            .await
            .unwrap()
            .unwrap()
            .0
            .rotated_at,
        None
    );

    // After the grace window: reuse, the whole grant is revoked and audited.
    let chain_before = chain(&store, &t).await.len();
    let rev_before = store.revision().await.unwrap();
    let reuse = record("token.reuse");
    let stolen = refresh_value(&g);
    assert_eq!(
        store
            .rotate_refresh_token(&t, &r0.hash, &stolen, t0 + grace, grace, &reuse)
            .await
            .unwrap(),
        RefreshUse::Reused
    );
    assert!(
        refresh_token(&store, &stolen.hash).await.unwrap().is_none(),
        "nothing stored"
    );
    assert_eq!(
        store.get_grant(&t, &g.id).await.unwrap().revoked_at,
        Some(t0 + grace)
    );
    let events = chain(&store, &t).await;
    assert_eq!(events.len(), chain_before + 1);
    assert_eq!(events.last().unwrap().id, reuse.id);
    assert_eq!(
        changes_of(&store, rev_before).await,
        vec![(t.agency().clone(), "grant.revoke".to_owned(), g.id.clone())]
    );
    // Every token of the family is now revoked, the current ones too.
    for h in [&r0.hash, &r1.hash, &r1b.hash] {
        assert_eq!(
            store
                .rotate_refresh_token(
                    &t,
                    h,
                    &refresh_value(&g),
                    t0 + grace + 1,
                    grace,
                    &record("token.reuse")
                )
                .await
                .unwrap(),
            RefreshUse::Revoked
        );
    }
    // An unknown token: Revoked, nothing stored.
    let lost = refresh_value(&g);
    assert_eq!(
        store
            .rotate_refresh_token(
                &t,
                &rand::random::<[u8; 32]>(),
                &lost,
                t0,
                grace,
                &record("token.reuse")
            )
            .await
            .unwrap(),
        RefreshUse::Revoked
    );
    assert!(refresh_token(&store, &lost.hash).await.unwrap().is_none());
    // Rotation itself writes no audit event (the server audits the issue).
    assert_eq!(chain(&store, &t).await.len(), chain_before + 1);
    assert_chain_ok(&chain(&store, &t).await);
}

async fn case_concurrent_refresh_rotation(store: Arc<dyn Store>, mint: ScopeMint) {
    let t = agency(&store, &mint, "Acme").await;
    let (a, _) = app(&store, &t, AppKind::Private).await;
    // Without a grace window, of concurrent uses of one token exactly one rotates; the
    // others are reuse, which revokes the family.
    let (g, r) = grant(&store, &t, &a, None).await;
    let at = now();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (store, t, hash, new) =
                (store.clone(), t.clone(), r.hash.clone(), refresh_value(&g));
            tokio::spawn(async move {
                store
                    .rotate_refresh_token(&t, &hash, &new, at, 0, &record("token.reuse"))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.unwrap());
    }
    let rotated = outcomes
        .iter()
        .filter(|o| **o == RefreshUse::Rotated)
        .count();
    let reused = outcomes
        .iter()
        .filter(|o| **o == RefreshUse::Reused)
        .count();
    let revoked = outcomes
        .iter()
        .filter(|o| **o == RefreshUse::Revoked)
        .count();
    assert_eq!(rotated, 1, "{outcomes:?}");
    assert_eq!(reused, 1, "the first reuse revokes the grant: {outcomes:?}");
    assert_eq!(revoked, 6, "{outcomes:?}");
    assert!(store
        .get_grant(&t, &g.id)
        .await
        .unwrap()
        .revoked_at
        .is_some());

    // With a grace window, of concurrent retries exactly one rotates; the others are refused
    // without revoking the family.
    let (g, r) = grant(&store, &t, &a, None).await;
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (store, t, hash, new) =
                (store.clone(), t.clone(), r.hash.clone(), refresh_value(&g));
            tokio::spawn(async move {
                store
                    .rotate_refresh_token(&t, &hash, &new, at, 60_000, &record("token.reuse"))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.unwrap());
    }
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| **o == RefreshUse::Rotated)
            .count(),
        1
    );
    assert!(outcomes
        .iter()
        .all(|o| matches!(o, RefreshUse::Rotated | RefreshUse::RecentlyRotated)));
    assert_eq!(store.get_grant(&t, &g.id).await.unwrap().revoked_at, None);
    assert_chain_ok(&chain(&store, &t).await);
}

async fn case_revoke_installation_revokes_grants(store: Arc<dyn Store>, mint: ScopeMint) {
    let t = agency(&store, &mint, "Acme").await;
    let (a, _) = app(&store, &t, AppKind::Private).await;
    let ins = install(&store, &t, &a, None).await;
    let acc = account(&store, &t, "Main").await;
    let keep_ins = install(&store, &t, &a, Some(&acc.id)).await;
    let (g1, r1) = grant(&store, &t, &a, Some(&ins.id)).await;
    let (g2, _) = grant(&store, &t, &a, Some(&ins.id)).await;
    let (kept, _) = grant(&store, &t, &a, Some(&keep_ins.id)).await;
    let (direct, _) = grant(&store, &t, &a, None).await;
    let at = now() + 4;
    store
        .revoke_grant(&t, &g2.id, at - 2, &record("grant.revoke"))
        .await
        .unwrap();
    store
        .revoke_installation(&t, &ins.id, at, &record("installation.revoke"))
        .await
        .unwrap();
    assert_eq!(
        store.get_grant(&t, &g1.id).await.unwrap().revoked_at,
        Some(at)
    );
    assert_eq!(
        store.get_grant(&t, &g2.id).await.unwrap().revoked_at,
        Some(at - 2),
        "an already revoked grant keeps its time"
    );
    assert_eq!(
        store.get_grant(&t, &kept.id).await.unwrap().revoked_at,
        None
    );
    assert_eq!(
        store.get_grant(&t, &direct.id).await.unwrap().revoked_at,
        None
    );
    assert_eq!(
        store
            .rotate_refresh_token(
                &t,
                &r1.hash,
                &refresh_value(&g1),
                at + 1,
                0,
                &record("token.reuse")
            )
            .await
            .unwrap(),
        RefreshUse::Revoked
    );
}

async fn case_delete_account_revokes_installations(store: Arc<dyn Store>, mint: ScopeMint) {
    let t = agency(&store, &mint, "Acme").await;
    let (a, _) = app(&store, &t, AppKind::Private).await;
    let acc = account(&store, &t, "Main").await;
    let on_acc = install(&store, &t, &a, Some(&acc.id)).await;
    let wide = install(&store, &t, &a, None).await;
    let (through, _) = grant(&store, &t, &a, Some(&on_acc.id)).await;
    let mut acting = grant_value(&t, &a, Some(&wide.id));
    acting.account = Some(acc.id.clone());
    store
        .create_grant(&t, &acting, None, &record("token.issue"))
        .await
        .unwrap();
    let (other, _) = grant(&store, &t, &a, Some(&wide.id)).await;
    let at = now() + 1;
    store
        .delete_account(&t, &acc.id, at, &record("account.delete"))
        .await
        .unwrap();
    assert_eq!(
        store
            .get_installation(&t, &on_acc.id)
            .await
            .unwrap()
            .revoked_at,
        Some(at)
    );
    assert_eq!(
        store
            .get_installation(&t, &wide.id)
            .await
            .unwrap()
            .revoked_at,
        None
    );
    assert_eq!(
        store.get_grant(&t, &through.id).await.unwrap().revoked_at,
        Some(at)
    );
    assert_eq!(
        store.get_grant(&t, &acting.id).await.unwrap().revoked_at,
        Some(at)
    );
    assert_eq!(
        store.get_grant(&t, &other.id).await.unwrap().revoked_at,
        None
    );
}

async fn case_authz_snapshot_revocations(store: Arc<dyn Store>, mint: ScopeMint) {
    let t = agency(&store, &mint, "Acme").await;
    let other = agency(&store, &mint, "Other").await;
    let (a, _) = app(&store, &t, AppKind::Private).await;
    let empty = store.authz_snapshot(&t, now()).await.unwrap();
    assert_eq!(empty.revocations, Default::default());

    let acc = account(&store, &t, "Main").await;
    let wide = install(&store, &t, &a, None).await;
    let on_acc = install(&store, &t, &a, Some(&acc.id)).await;
    let gone = install(&store, &t, &a, Some(&account(&store, &t, "Gone").await.id)).await;
    store
        .revoke_installation(&t, &gone.id, now(), &record("installation.revoke"))
        .await
        .unwrap();
    let t0 = now();
    let day = 86_400_000;
    // Grants: active; revoked and unexpired; revoked, expired less than a day ago; revoked,
    // expired more than a day ago.
    let (_active, _) = grant(&store, &t, &a, None).await;
    let mut ids = Vec::new();
    for (expires_at, listed) in [
        (t0 + day, true),
        (t0 - day + 60_000, true),
        (t0 - day - 60_000, false),
    ] {
        let mut g = grant_value(&t, &a, None);
        g.expires_at = expires_at;
        store
            .create_grant(&t, &g, None, &record("token.issue"))
            .await
            .unwrap();
        store
            .revoke_grant(&t, &g.id, t0, &record("grant.revoke"))
            .await
            .unwrap();
        if listed {
            ids.push(g.id);
        }
    }
    // The grants of the revoked installation are listed too (it had none here).
    store
        .revoke_access_token(&t, "jti-live", t0 + 60_000, &record("token.revoke"))
        .await
        .unwrap();
    store
        .revoke_access_token(&t, "jti-expired", t0 - 1, &record("token.revoke"))
        .await
        .unwrap();
    // Revoking twice is fine.
    store
        .revoke_access_token(&t, "jti-live", t0 + 60_000, &record("token.revoke"))
        .await
        .unwrap();
    // Another agency's revocations are not ours.
    let (theirs, _) = app(&store, &other, AppKind::Private).await;
    install(&store, &other, &theirs, None).await;
    store
        .revoke_access_token(&other, "jti-theirs", t0 + 60_000, &record("token.revoke"))
        .await
        .unwrap();

    let snap = store.authz_snapshot(&t, t0).await.unwrap();
    ids.sort();
    assert_eq!(
        snap.revocations.installations,
        sorted(vec![wide, on_acc], |i| i.id.clone())
    );
    assert_eq!(snap.revocations.grants, ids);
    assert_eq!(snap.revocations.access_tokens, vec!["jti-live".to_owned()]);
    assert_eq!(snap.revision, store.revision().await.unwrap());
    // Later, the expired ones drop out.
    let later = store.authz_snapshot(&t, t0 + 2 * day).await.unwrap();
    assert!(later.revocations.access_tokens.is_empty());
    assert!(later.revocations.grants.is_empty());
    let theirs_snap = store.authz_snapshot(&other, t0).await.unwrap();
    assert_eq!(
        theirs_snap.revocations.access_tokens,
        vec!["jti-theirs".to_owned()]
    );
    assert_eq!(theirs_snap.revocations.installations.len(), 1);
}

async fn case_oauth_change_log(store: Arc<dyn Store>, mint: ScopeMint) {
    let partner = agency(&store, &mint, "Partner").await;
    let t = agency(&store, &mint, "Acme").await;
    let r0 = store.revision().await.unwrap();
    let (a, _) = app(&store, &partner, AppKind::Marketplace).await;
    store
        .rotate_app_secret(
            &partner,
            &a.id,
            &secret(),
            now(),
            now(),
            &record("app.rotate_secret"),
        )
        .await
        .unwrap();
    let ins = install(&store, &t, &a, None).await;
    // Not in the feed: codes, grants, redemption, rotation.
    let u = user(&store, &t, "ann@acme.example", None).await;
    let c = code_value(&t, &a, &u.id);
    store.create_code(&t, &c).await.unwrap();
    redeem(&store, &c.hash, now()).await.unwrap();
    let (g, r) = grant(&store, &t, &a, Some(&ins.id)).await;
    store
        .rotate_refresh_token(
            &t,
            &r.hash,
            &refresh_value(&g),
            now(),
            1_000,
            &record("token.reuse"),
        )
        .await
        .unwrap();
    refresh_token(&store, &r.hash).await.unwrap();
    store
        .revoke_grant(&t, &g.id, now(), &record("grant.revoke"))
        .await
        .unwrap();
    store
        .revoke_access_token(&t, "jti-1", now() + 60_000, &record("token.revoke"))
        .await
        .unwrap();
    store
        .revoke_installation(&t, &ins.id, now(), &record("installation.revoke"))
        .await
        .unwrap();
    store
        .delete_app(&partner, &a.id, now(), &record("app.delete"))
        .await
        .unwrap();
    let (p, ta) = (partner.agency().clone(), t.agency().clone());
    let c = |agency: &AgencyId, kind: &str, entity: &str| {
        (agency.clone(), kind.to_owned(), entity.to_owned())
    };
    assert_eq!(
        changes_of(&store, r0).await,
        vec![
            c(&p, "app.create", a.id.as_str()),
            c(&p, "app.rotate_secret", a.id.as_str()),
            c(&ta, "installation.create", ins.id.as_str()),
            c(&ta, "grant.revoke", &g.id),
            c(&ta, "token.revoke", "jti-1"),
            c(&ta, "installation.revoke", ins.id.as_str()),
            c(&p, "app.delete", a.id.as_str()),
        ]
    );
    let feed_all = feed(&store, r0, 1000).await;
    assert_eq!(
        feed_all.last().unwrap().revision,
        store.revision().await.unwrap()
    );
    assert!(feed_all
        .windows(2)
        .all(|w| w[1].revision == w[0].revision + 1));
}

async fn case_oauth_tenant_isolation(store: Arc<dyn Store>, mint: ScopeMint) {
    let a = agency(&store, &mint, "A").await;
    let b = agency(&store, &mint, "B").await;
    let (app_a, _) = app(&store, &a, AppKind::Private).await;
    let ins_a = install(&store, &a, &app_a, None).await;
    let (g_a, r_a) = grant(&store, &a, &app_a, Some(&ins_a.id)).await;

    // B gets the same NotFound as for ids that do not exist, and changes nothing.
    assert!(is_not_found(store.get_app(&b, &app_a.id).await));
    assert!(is_not_found(store.get_installation(&b, &ins_a.id).await));
    assert!(is_not_found(store.get_grant(&b, &g_a.id).await));
    assert!(is_not_found(
        store
            .delete_app(&b, &app_a.id, now(), &record("app.delete"))
            .await
    ));
    assert!(is_not_found(
        store
            .rotate_app_secret(
                &b,
                &app_a.id,
                &secret(),
                now(),
                now(),
                &record("app.rotate_secret")
            )
            .await
    ));
    assert!(is_not_found(
        store
            .revoke_installation(&b, &ins_a.id, now(), &record("installation.revoke"))
            .await
    ));
    assert!(is_not_found(
        store
            .revoke_grant(&b, &g_a.id, now(), &record("grant.revoke"))
            .await
    ));
    assert_eq!(
        store
            .rotate_refresh_token(
                &b,
                &r_a.hash,
                &refresh_value(&g_a),
                now(),
                0,
                &record("token.reuse")
            )
            .await
            .unwrap(),
        RefreshUse::Revoked
    );
    assert!(store.list_apps(&b, &all()).await.unwrap().items.is_empty());
    assert!(store
        .list_installations(&b, None, &all())
        .await
        .unwrap()
        .items
        .is_empty());
    let snap = store.authz_snapshot(&b, now()).await.unwrap();
    assert!(snap.revocations.installations.is_empty());

    // A's objects are intact.
    assert_eq!(store.get_app(&a, &app_a.id).await.unwrap(), app_a);
    assert_eq!(store.get_installation(&a, &ins_a.id).await.unwrap(), ins_a);
    assert_eq!(store.get_grant(&a, &g_a.id).await.unwrap(), g_a);
    assert_eq!(
        refresh_token(&store, &r_a.hash)
            .await
            .unwrap()
            .unwrap()
            .0
            .rotated_at,
        None
    );
    // B's writes to A's things left no audit in B's chain about them either.
    assert!(chain(&store, &b)
        .await
        .iter()
        .all(|e| e.action == "agency.create"));

    // A scope's records go to the scope's agency, whatever they say.
    let mut planted = app_value(&a, AppKind::Private, false);
    planted.agency_id = a.agency().clone();
    store
        .create_app(&b, &planted, None, &record("app.create"))
        .await
        .unwrap();
    assert_eq!(
        store.get_app(&b, &planted.id).await.unwrap().agency_id,
        *b.agency()
    );
    assert!(is_not_found(store.get_app(&a, &planted.id).await));
}

async fn case_find_users_by_email(store: Arc<dyn Store>, mint: ScopeMint) {
    let a = agency(&store, &mint, "A").await;
    let b = agency(&store, &mint, "B").await;
    let gone = agency(&store, &mint, "Gone").await;
    let ua = user(&store, &a, "Ann@Example.com", Some("$argon2id$v=19$a")).await;
    let ub = user(&store, &b, "ann@example.COM", None).await;
    user(
        &store,
        &gone,
        "ann@example.com",
        Some("$argon2id$v=19$gone"),
    )
    .await;
    user(&store, &a, "bob@example.com", None).await;
    store
        .delete_agency(gone.agency(), now(), &record("agency.delete"))
        .await
        .unwrap();

    let found = users_by_email(&store, "  ANN@example.com ").await.unwrap();
    let mut want = vec![
        (ua.clone(), Some("$argon2id$v=19$a".to_owned())),
        (ub.clone(), None),
    ];
    want.sort_by(|x, y| x.0.agency_id.as_str().cmp(y.0.agency_id.as_str()));
    assert_eq!(
        found
            .iter()
            .map(|c| (c.user.clone(), c.password_hash.clone()))
            .collect::<Vec<_>>(),
        want
    );
    let debug = format!("{found:?}");
    assert!(
        !debug.contains("argon2id") && debug.contains("[redacted]"),
        "{debug}"
    );
    assert!(users_by_email(&store, "nobody@example.com")
        .await
        .unwrap()
        .is_empty());
    assert!(users_by_email(&store, "").await.unwrap().is_empty());
    // A changed email is found under the new one only.
    store
        .update_user(
            &b,
            &ub.id,
            &UserPatch {
                email: Some("ANNE@b.example".into()),
                ..Default::default()
            },
            now(),
            &record("user.update"),
        )
        .await
        .unwrap();
    assert_eq!(
        users_by_email(&store, "ann@example.com")
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        users_by_email(&store, "anne@B.example").await.unwrap()[0]
            .user
            .id,
        ub.id
    );
}

async fn case_append_audit_batch(store: Arc<dyn Store>, mint: ScopeMint) {
    let a = agency(&store, &mint, "A").await;
    let b = agency(&store, &mint, "B").await;
    store.append_audit_batch(&[]).await.unwrap();
    let before_a = chain(&store, &a).await.len();
    let before_b = chain(&store, &b).await.len();
    let batch: Vec<(TenantScope, AuditRecord)> = (0..10)
        .map(|i| {
            let t = if i % 3 == 0 { &b } else { &a };
            (t.clone(), record(&format!("token.issue.{i}")))
        })
        .collect();
    store.append_audit_batch(&batch).await.unwrap();
    // A second batch continues the chains.
    let batch2 = vec![
        (b.clone(), record("token.issue.b")),
        (a.clone(), record("token.issue.a")),
    ];
    store.append_audit_batch(&batch2).await.unwrap();

    for (t, before) in [(&a, before_a), (&b, before_b)] {
        let events = chain(&store, t).await;
        assert_chain_ok(&events);
        let want: Vec<String> = batch
            .iter()
            .chain(batch2.iter())
            .filter(|(s, _)| s == t)
            .map(|(_, r)| r.action.clone())
            .collect();
        assert_eq!(actions(&events[before..]), want, "each chain in order");
        assert!(events.iter().all(|e| &e.agency_id == t.agency()));
    }
    // Concurrent batches over the same agencies, in opposite orders, all land.
    let tasks: Vec<_> = (0..6)
        .map(|i| {
            let store = store.clone();
            let (x, y) = if i % 2 == 0 {
                (a.clone(), b.clone())
            } else {
                (b.clone(), a.clone())
            };
            tokio::spawn(async move {
                let batch = vec![
                    (x.clone(), record("concurrent")),
                    (y.clone(), record("concurrent")),
                    (x, record("concurrent")),
                ];
                store.append_audit_batch(&batch).await.unwrap();
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    for t in [&a, &b] {
        let events = chain(&store, t).await;
        assert_chain_ok(&events);
    }
    let concurrent =
        |events: Vec<AuditEvent>| events.iter().filter(|e| e.action == "concurrent").count();
    assert_eq!(
        concurrent(chain(&store, &a).await) + concurrent(chain(&store, &b).await),
        18
    );
}
