//! OAuth credentials: codes (single redemption), grants, refresh-token rotation with reuse
//! detection, revocations in the snapshot, and the change log of OAuth writes.

use super::*;

cases! {
    case_codes => sqlite_codes, postgres_codes;
    case_concurrent_code_redemption => sqlite_concurrent_code_redemption, postgres_concurrent_code_redemption;
    case_grants => sqlite_grants, postgres_grants;
    case_refresh_rotation => sqlite_refresh_rotation, postgres_refresh_rotation;
    case_concurrent_refresh_rotation => sqlite_concurrent_refresh_rotation, postgres_concurrent_refresh_rotation;
    case_authz_snapshot_revocations => sqlite_authz_snapshot_revocations, postgres_authz_snapshot_revocations;
    case_oauth_change_log => sqlite_oauth_change_log, postgres_oauth_change_log;
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
        resource: None,
    }
}

async fn changes_of(store: &Arc<dyn Store>, after: i64) -> Vec<(AgencyId, String, String)> {
    feed(store, after, 1000)
        .await
        .into_iter()
        .map(|c| (c.agency, c.kind, c.entity))
        .collect()
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
