//! Fixtures made through the Store API itself: agencies (with their scope, from the mint),
//! accounts, users, bindings, keys, roles, policies, apps, grants and codes, audit records,
//! and the checked cross-tenant lookups (each asserts the scope it derives is its row's).

use super::*;

pub(crate) fn now() -> i64 {
    i64::try_from(tessera_core::ids::now_millis()).unwrap()
}

pub(crate) fn page(limit: u32, cursor: Option<String>) -> PageRequest {
    PageRequest { limit, cursor }
}

pub(crate) fn all() -> PageRequest {
    page(200, None)
}

/// An audit record by `actor` doing `action`.
pub(crate) fn record_by(actor: &str, action: &str) -> AuditRecord {
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

pub(crate) fn record(action: &str) -> AuditRecord {
    record_by("system", action)
}

pub(crate) fn secret() -> SecretHashRecord {
    SecretHashRecord {
        hash: rand::random::<[u8; 32]>().to_vec(),
        pepper_version: 1,
    }
}

pub(crate) fn agency_value(id: AgencyId, name: &str) -> Agency {
    let at = now();
    Agency {
        id,
        name: name.into(),
        status: Status::Active,
        suspended_reason: None,
        suspended_at: None,
        is_platform: false,
        created_at: at,
        updated_at: at,
    }
}

/// Creates an agency and returns its scope.
pub(crate) async fn agency(store: &Arc<dyn Store>, mint: &ScopeMint, name: &str) -> TenantScope {
    let a = agency_value(AgencyId::generate(), name);
    store
        .create_agency(&a, &record("agency.create"))
        .await
        .unwrap();
    mint.admit(a.id)
}

pub(crate) fn account_value(t: &TenantScope, name: &str) -> Account {
    let at = now();
    Account {
        id: AccountId::generate(),
        agency_id: t.agency().clone(),
        name: name.into(),
        status: Status::Active,
        suspended_reason: None,
        suspended_at: None,
        created_at: at,
        updated_at: at,
    }
}

pub(crate) async fn account(store: &Arc<dyn Store>, t: &TenantScope, name: &str) -> Account {
    let a = account_value(t, name);
    store
        .create_account(t, &a, &record("account.create"))
        .await
        .unwrap();
    a
}

pub(crate) async fn user(
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

pub(crate) fn binding_value(
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

pub(crate) async fn bind(
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

pub(crate) fn key_value(t: &TenantScope, account: Option<&AccountId>) -> ApiKey {
    ApiKey {
        rate_limit: None,
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
pub(crate) async fn key(
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

pub(crate) fn role_value(t: &TenantScope, name: &str, permissions: &[&str]) -> Role {
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

pub(crate) async fn role(
    store: &Arc<dyn Store>,
    t: &TenantScope,
    name: &str,
    permissions: &[&str],
) -> Role {
    let r = role_value(t, name, permissions);
    store
        .create_role(t, &r, &record("role.create"))
        .await
        .unwrap();
    r
}

pub(crate) fn policy_value(t: &TenantScope, description: &str) -> Policy {
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

pub(crate) async fn policy(store: &Arc<dyn Store>, t: &TenantScope, description: &str) -> Policy {
    let p = policy_value(t, description);
    store
        .create_policy(t, &p, &record("policy.create"))
        .await
        .unwrap();
    p
}

/// A signing key in `state`, created at `created_at` (epoch seconds), with a random sealed key.
pub(crate) fn signing_key_value(kid: &str, state: &str, created_at: i64) -> SigningKeyRow {
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

pub(crate) async fn signing_key(store: &Arc<dyn Store>, kid: &str, state: &str) -> SigningKeyRow {
    let row = signing_key_value(kid, state, 1_700_000_000);
    store.insert_signing_key(&row).await.unwrap();
    row
}

pub(crate) fn sorted<T, K: Ord>(mut items: Vec<T>, key: impl Fn(&T) -> K) -> Vec<T> {
    items.sort_by_key(key);
    items
}

/// The whole change feed after `after`, read in pages of `chunk`.
pub(crate) async fn feed(store: &Arc<dyn Store>, after: i64, chunk: u32) -> Vec<Change> {
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
pub(crate) async fn chain(store: &Arc<dyn Store>, t: &TenantScope) -> Vec<AuditEvent> {
    store.audit_chain(t, 0, 100_000).await.unwrap()
}

pub(crate) fn assert_chain_ok(events: &[AuditEvent]) {
    let last = verify_chain(ChainHash::GENESIS, 0, events)
        .unwrap_or_else(|seq| panic!("chain broken at seq {seq}"));
    assert_eq!(
        Some(last),
        events.last().map(|e| e.hash).or(Some(ChainHash::GENESIS))
    );
}

pub(crate) fn is_not_found<T: std::fmt::Debug>(r: Result<T, StoreError>) -> bool {
    matches!(r, Err(StoreError::NotFound))
}

pub(crate) fn assert_conflict<T: std::fmt::Debug>(r: Result<T, StoreError>, want: &str) {
    match r {
        Err(StoreError::Conflict { constraint }) => assert_eq!(constraint, want),
        other => panic!("expected a conflict on `{want}`, got {other:?}"),
    }
}

pub(crate) fn user_principal(u: &User) -> PrincipalId {
    PrincipalId::User(u.id.clone())
}

// Cross-tenant lookups, checked: each returns the scope the store derived from the row it
// found, and that scope is the row's own agency.

pub(crate) async fn key_by_secret(
    store: &Arc<dyn Store>,
    hash: &[u8],
) -> Result<Option<KeySecretMatch>, StoreError> {
    let found = store.find_key_by_secret(hash).await?;
    Ok(found.map(|(m, scope)| {
        assert_eq!(scope.agency(), &m.agency);
        m
    }))
}

pub(crate) async fn client(
    store: &Arc<dyn Store>,
    id: &AppId,
) -> Result<Option<ClientRecord>, StoreError> {
    let found = store.find_client(id).await?;
    Ok(found.map(|(c, scope)| {
        assert_eq!(scope.agency(), &c.app.agency_id);
        c
    }))
}

pub(crate) async fn refresh_token(
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

pub(crate) const RAW_AGENCY: &str = "INSERT INTO agencies (id, name, status, is_platform, created_at, updated_at) VALUES ($1, 'Raw', 'active', $2, 0, 0)";

pub(crate) fn app_value(t: &TenantScope, kind: AppKind, confidential: bool) -> App {
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
        review: AppReview::Approved,
        approved_scopes: vec!["contacts.readonly".into(), "contacts.write".into()],
        pending_scopes: vec![],
        review_reason: None,
        created_by: "usr_suite".into(),
        created_at: at,
        updated_at: at,
        deleted_at: None,
    }
}

/// Creates a confidential app of `kind` with one secret.
pub(crate) async fn app(
    store: &Arc<dyn Store>,
    t: &TenantScope,
    kind: AppKind,
) -> (App, SecretHashRecord) {
    let a = app_value(t, kind, true);
    let s = secret();
    store
        .create_app(t, &a, Some(&s), &record("app.create"))
        .await
        .unwrap();
    (a, s)
}

pub(crate) fn installation_value(
    t: &TenantScope,
    app: &App,
    account: Option<&AccountId>,
) -> Installation {
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
        resource: None,
    }
}

pub(crate) async fn install(
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

pub(crate) fn grant_id() -> String {
    format!(
        "grt_{}",
        EventId::generate().as_str().trim_start_matches("evt_")
    )
}

pub(crate) fn grant_value(
    t: &TenantScope,
    app: &App,
    installation: Option<&InstallationId>,
) -> Grant {
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
        resource: None,
    }
}

pub(crate) fn refresh_value(grant: &Grant) -> NewRefreshToken {
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
pub(crate) async fn grant(
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

pub(crate) fn actions(events: &[AuditEvent]) -> Vec<String> {
    events.iter().map(|e| e.action.clone()).collect()
}
