//! Resource servers (RFC 8707): registered per agency, read and listed in their tenant only,
//! identifiers unique across every agency, found by identifier across tenants with the scope
//! of their agency, each write on the change log; codes and grants keep their resource.

use tessera_core::ResourceServerId;
use tessera_store::ResourceServer;

use super::*;

cases! {
    case_resource_servers => sqlite_resource_servers, postgres_resource_servers;
    case_codes_and_grants_keep_their_resource => sqlite_code_grant_resource, postgres_code_grant_resource;
}

fn rsv(t: &TenantScope, identifier: &str) -> ResourceServer {
    ResourceServer {
        id: ResourceServerId::generate(),
        agency_id: t.agency().clone(),
        identifier: identifier.to_owned(),
        name: "Contacts".into(),
        scopes: vec!["contacts.readonly".into(), "contacts.write".into()],
        created_by: "usr_x".into(),
        created_at: now(),
    }
}

async fn case_resource_servers(store: Arc<dyn Store>, mint: ScopeMint) {
    let a = agency(&store, &mint, "Acme").await;
    let b = agency(&store, &mint, "Other").await;
    let before = store.revision().await.unwrap();
    let r = rsv(&a, "https://contacts.acme.example");
    store
        .create_resource_server(&a, &r, &record("resource_server.create"))
        .await
        .unwrap();
    assert!(store.revision().await.unwrap() > before);
    let kinds: Vec<String> = feed(&store, before, 100)
        .await
        .into_iter()
        .map(|c| c.kind)
        .collect();
    assert!(kinds.contains(&"resource_server.create".to_owned()), "{kinds:?}");
    assert_eq!(store.get_resource_server(&a, &r.id).await.unwrap(), r);
    // Another tenant sees nothing of it.
    assert!(matches!(
        store.get_resource_server(&b, &r.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(store
        .list_resource_servers(&b, &page(50, None))
        .await
        .unwrap()
        .items
        .is_empty());
    assert!(matches!(
        store
            .delete_resource_server(&b, &r.id, &record("resource_server.delete"))
            .await,
        Err(StoreError::NotFound)
    ));
    // The identifier is unique across agencies.
    let dup = rsv(&b, "https://contacts.acme.example");
    match store
        .create_resource_server(&b, &dup, &record("resource_server.create"))
        .await
    {
        Err(StoreError::Conflict { constraint }) => assert_eq!(constraint, "identifier"),
        other => panic!("expected a conflict on the identifier, got {other:?}"),
    }
    // Found by identifier across tenants, with its agency's scope.
    let (found, scope) = store
        .find_resource_server("https://contacts.acme.example")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found, r);
    assert_eq!(scope, a);
    assert!(store
        .find_resource_server("https://contacts.acme.example/")
        .await
        .unwrap()
        .is_none());
    // Paging.
    let r2 = rsv(&a, "https://billing.acme.example");
    store
        .create_resource_server(&a, &r2, &record("resource_server.create"))
        .await
        .unwrap();
    let first = store
        .list_resource_servers(&a, &page(1, None))
        .await
        .unwrap();
    assert_eq!(first.items.len(), 1);
    let rest = store
        .list_resource_servers(&a, &page(10, first.next_cursor.clone()))
        .await
        .unwrap();
    assert_eq!(rest.items.len(), 1);
    assert!(rest.next_cursor.is_none());
    // Deleted: gone, and the identifier is free again.
    let before = store.revision().await.unwrap();
    store
        .delete_resource_server(&a, &r.id, &record("resource_server.delete"))
        .await
        .unwrap();
    assert!(store.revision().await.unwrap() > before);
    assert!(store
        .find_resource_server("https://contacts.acme.example")
        .await
        .unwrap()
        .is_none());
    store
        .create_resource_server(&b, &dup, &record("resource_server.create"))
        .await
        .unwrap();
    assert_eq!(
        store
            .find_resource_server("https://contacts.acme.example")
            .await
            .unwrap()
            .unwrap()
            .1,
        b
    );
}

async fn case_codes_and_grants_keep_their_resource(store: Arc<dyn Store>, mint: ScopeMint) {
    let t = agency(&store, &mint, "Acme").await;
    let (a, _) = app(&store, &t, AppKind::Private).await;
    let mut g = grant_value(&t, &a, None);
    g.resource = Some("https://contacts.acme.example".into());
    store
        .create_grant(&t, &g, None, &record("token.issue"))
        .await
        .unwrap();
    assert_eq!(store.get_grant(&t, &g.id).await.unwrap(), g);
}
