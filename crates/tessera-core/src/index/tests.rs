//! The index against the reference decision, and its layout at the edges.

use super::*;
use crate::authz::{authorize, CredentialCap, EngineConfig, Grant, GrantSource, Subject, Target};
use crate::permission::PermissionIndex;
use proptest::prelude::*;
use rand::SeedableRng;

fn catalog() -> Catalog {
    Catalog::default_catalog().unwrap()
}

proptest! {
    /// The index decides exactly as the reference engine on the same grants.
    #[test]
    fn index_matches_the_reference(
        bindings in proptest::collection::vec((0usize..3, 0usize..4, proptest::option::of(0usize..3)), 0..12),
        cap in proptest::option::of(proptest::collection::vec(0usize..40, 0..10)),
        cap_acc in proptest::option::of(0usize..3),
        own in proptest::option::of((proptest::collection::vec(0usize..40, 0..8), proptest::option::of(0usize..3))),
        who in 0usize..3, target_acc in proptest::option::of(0usize..4), cross in any::<bool>(), platform in any::<bool>(),
        perm in 0usize..40,
    ) {
        let cat = catalog();
        let cfg = EngineConfig { cross_tenant: cat.permission("platform.cross_tenant").unwrap() };
        let builtin = BuiltinRoles::new(&cat);
        let roles = ["agency_admin", "account_user", "platform_admin", "account_viewer"];
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let home = AgencyId::generate_at(1, &mut rng);
        let other = AgencyId::generate_at(2, &mut rng);
        let users: Vec<PrincipalId> = (0..3).map(|i| PrincipalId::User(crate::ids::UserId::generate_at(i, &mut rng))).collect();
        let accs: Vec<AccountId> = (0..4).map(|i| AccountId::generate_at(i, &mut rng)).collect();
        let perms: Vec<PermissionIndex> = (0..40).map(|i| PermissionIndex(u16::try_from(i * 2).unwrap())).collect();
        let set = |v: &Vec<usize>| v.iter().map(|i| perms[*i]).collect::<PermissionSet>();
        let input = IndexInput {
            roles: vec![],
            bindings: bindings.iter().map(|(u, r, a)| (BindingId::generate_at(5, &mut rng), users[*u].clone(), roles[*r].to_owned(), a.map(|i| accs[i].clone()))).collect(),
        };
        let (index, skipped) = AgencyIndex::build(home.clone(), platform, 1, builtin, input.clone());
        prop_assert!(skipped.is_empty());
        let cap = CredentialCap { permissions: cap.as_ref().map(set), account: cap_acc.map(|i| accs[i].clone()) };
        let own_set = own.as_ref().map(|(v, _)| set(v));
        let own_acc = own.as_ref().and_then(|(_, a)| a.map(|i| accs[i].clone()));
        let target_agency = if cross { &other } else { &home };
        let c = Check {
            principal: &users[who], home: &index, own_grant: own_set.as_ref().map(|s| (s, own_acc.as_ref())), cap: &cap,
            permission: perms[perm], agency: target_agency, account: target_acc.map(|i| &accs[i]),
        };
        let fast = check(&c, cfg);
        let mut grants: Vec<Grant> = input.bindings.iter().filter(|(_, p, _, _)| *p == users[who]).map(|(b, _, r, a)| Grant {
            source: GrantSource::Binding(b.clone()), account: a.clone(), permissions: cat.role(r).unwrap().1,
        }).collect();
        if let Some(s) = own_set {
            grants.push(Grant { source: GrantSource::KeyScopes(crate::ids::KeyId::generate_at(1, &mut rng)), account: own_acc.clone(), permissions: s });
        }
        let subject = Subject { agency: home.clone(), is_platform: platform, grants, cap: cap.clone() };
        let slow = authorize(&subject, perms[perm], Target { agency: target_agency, account: target_acc.map(|i| &accs[i]) }, cfg);
        prop_assert_eq!(fast.allowed, slow.allowed);
        if !fast.allowed {
            prop_assert_eq!(fast.reason, slow.reason);
        }
    }
}

/// Accounts numbered beyond what a slot's 16-bit inline grants can name make their
/// principals spill, and those still decide like the plain reading of the bindings; so do
/// principals with more grants than fit inline.
#[test]
fn large_agencies_spill_and_still_decide_exactly() {
    let cat = catalog();
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    let agy = AgencyId::generate_at(1, &mut rng);
    let accs: Vec<AccountId> = (0..40_000)
        .map(|i| AccountId::generate_at(i, &mut rng))
        .collect();
    let users: Vec<PrincipalId> = (0..200)
        .map(|i| PrincipalId::User(crate::ids::UserId::generate_at(i, &mut rng)))
        .collect();
    let roles = ["account_user", "account_viewer", "agency_admin"];
    let mut bindings = Vec::new();
    // The first user is bound on every account; the others on a few each, some wide.
    for a in &accs {
        bindings.push((
            BindingId::generate_at(1, &mut rng),
            users[0].clone(),
            "account_viewer".to_owned(),
            Some(a.clone()),
        ));
    }
    for (i, u) in users.iter().enumerate().skip(1) {
        for j in 0..(i % 12) {
            let account = (j % 5 != 4).then(|| accs[(i * 7919 + j * 104_729) % accs.len()].clone());
            bindings.push((
                BindingId::generate_at(2, &mut rng),
                u.clone(),
                roles[(i + j) % 3].to_owned(),
                account,
            ));
        }
    }
    let input = IndexInput {
        roles: vec![],
        bindings: bindings.clone(),
    };
    let (index, skipped) = AgencyIndex::build(agy, false, 1, BuiltinRoles::new(&cat), input);
    assert!(skipped.is_empty());
    let high = accs
        .iter()
        .filter(|a| {
            AgencyIndex::find_account(&index.accounts, split(a.bits())) >= u32::from(UNBOUND16)
        })
        .count();
    assert!(
        high > 1000,
        "the test needs accounts numbered beyond 16 bits, got {high}"
    );
    let spilled = index
        .slots
        .iter()
        .filter(|s| s.kind != EMPTY && s.inline == SPILLED)
        .count();
    let inline = index
        .slots
        .iter()
        .filter(|s| s.kind != EMPTY && s.inline != SPILLED)
        .count();
    assert!(
        spilled > 10 && inline > 10,
        "{spilled} spilled, {inline} inline"
    );
    let plain = |u: &PrincipalId, at: Option<&AccountId>| {
        bindings
            .iter()
            .filter(|(_, p, _, a)| p == u && (a.is_none() || (at.is_some() && a.as_ref() == at)))
            .fold(PermissionSet::EMPTY, |s, (_, _, r, _)| {
                s.union(&cat.role(r).unwrap().1)
            })
    };
    for u in &users {
        let mine: Vec<&AccountId> = bindings
            .iter()
            .filter(|(_, p, _, _)| p == u)
            .filter_map(|(_, _, _, a)| a.as_ref())
            .take(20)
            .collect();
        let targets = mine
            .into_iter()
            .map(Some)
            .chain([None, Some(&accs[3]), Some(&accs[39_999])]);
        for at in targets {
            assert_eq!(index.held(u, at, false), plain(u, at), "{u:?} at {at:?}");
            assert_eq!(index.held(u, at, true), plain(u, None), "{u:?} wide only");
        }
        let expected = bindings.iter().filter(|(_, p, _, _)| p == u).count();
        assert_eq!(index.bindings_of(u).len(), expected);
    }
}

#[test]
fn unknown_roles_are_skipped_and_custom_roles_resolve() {
    let cat = catalog();
    let mut rng = rand::rngs::StdRng::seed_from_u64(4);
    let agy = AgencyId::generate_at(1, &mut rng);
    let u = PrincipalId::User(crate::ids::UserId::generate_at(1, &mut rng));
    let role = RoleId::generate_at(1, &mut rng);
    let read = cat.permission("contacts.read").unwrap();
    let b1 = BindingId::generate_at(1, &mut rng);
    let b2 = BindingId::generate_at(1, &mut rng);
    let input = IndexInput {
        roles: vec![(role.clone(), [read].into_iter().collect())],
        bindings: vec![
            (b1.clone(), u.clone(), role.to_string(), None),
            (b2.clone(), u.clone(), "no_such_role".into(), None),
        ],
    };
    let (index, skipped) = AgencyIndex::build(agy, false, 7, BuiltinRoles::new(&cat), input);
    assert_eq!(skipped, vec![b2]);
    assert!(index.held(&u, None, false).contains(read));
    assert_eq!(
        index.explain(&u, read, None, false),
        vec![(GrantSource::Binding(b1), role.to_string())]
    );
    assert_eq!(index.role_names(&u), vec![role.to_string()]);
    assert_eq!(index.principals_after(None), vec![u.clone()]);
    assert!(index.principals_after(Some(&u)).is_empty());
    assert_eq!(index.revision(), 7);
}
