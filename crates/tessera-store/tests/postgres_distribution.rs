//! PostgreSQL only: the schema can be distributed by agency. Every tenant table (every table
//! under row-level security) has a primary key, and its primary key and every index lead with
//! `agency_id`, except the named lookup indexes that serve a read made before the tenant is
//! known. And `partitioning/postgres-hash.sql` converts the largest tenant tables to hash
//! partitions by agency_id, keeping row-level security (the server's suite against it runs in
//! the server's `api::seed` tests). Skipped, with a notice, when `TESSERA_TEST_DATABASE_URL`
//! is unset.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;

use sqlx::postgres::PgPoolOptions;
use sqlx::Row;
use tessera_store::testing::{notice_pg_skipped, PgTestDb};

/// Indexes of tenant tables that do not lead with `agency_id`, on purpose: each serves a
/// lookup made before the tenant is known (through a SELECT-only lookup policy), or the
/// change feed, which every node reads across agencies in revision order. In a distributed
/// deployment each becomes a global lookup table (docs/SCALING.md).
const LOOKUP_INDEXES: [(&str, &str); 10] = [
    ("change_log", "change_log_pkey"),
    ("api_key_secrets", "api_key_secrets_secret_unique"),
    ("app_secrets", "app_secrets_secret_unique"),
    ("app_secrets", "app_secrets_by_app"),
    ("apps", "apps_id_unique"),
    ("installations", "installations_by_app"),
    ("users", "users_by_email_key"),
    ("resource_servers", "resource_servers_identifier"),
    ("oauth_codes", "oauth_codes_code_unique"),
    ("refresh_tokens", "refresh_tokens_token_unique"),
];

async fn index_rows(url: &str) -> Vec<(String, String, bool, Option<String>)> {
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await
        .unwrap();
    let rows = sqlx::query(
        "SELECT c.relname::text AS tbl, i.relname::text AS idx, ix.indisprimary AS pk, a.attname::text AS first_col \
         FROM pg_index ix \
         JOIN pg_class c ON c.oid = ix.indrelid \
         JOIN pg_class i ON i.oid = ix.indexrelid \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = ix.indkey[0] \
         WHERE n.nspname = current_schema() AND c.relrowsecurity AND c.relkind IN ('r', 'p') \
         ORDER BY 1, 2",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    pool.close().await;
    rows.iter()
        .map(|r| (r.get("tbl"), r.get("idx"), r.get("pk"), r.get("first_col")))
        .collect()
}

#[tokio::test]
async fn every_tenant_key_and_index_leads_with_agency_id() {
    let Some(db) = PgTestDb::create().await else {
        notice_pg_skipped();
        return;
    };
    let _store = db.store().await;
    let rows = index_rows(&db.url()).await;
    let tables: BTreeSet<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    assert!(
        tables.len() >= 20,
        "too few tenant tables found: {tables:?}"
    );
    let mut bad = Vec::new();
    for (tbl, idx, pk, first) in &rows {
        let allowed = LOOKUP_INDEXES.contains(&(tbl.as_str(), idx.as_str()));
        if first.as_deref() != Some("agency_id") && !allowed {
            bad.push(format!(
                "{tbl}.{idx}{} starts with {}",
                if *pk { " (primary key)" } else { "" },
                first.as_deref().unwrap_or("an expression")
            ));
        }
    }
    assert!(
        bad.is_empty(),
        "keys and indexes that do not lead with agency_id: {bad:#?}"
    );
    // Every tenant table has a primary key.
    for t in &tables {
        assert!(
            rows.iter().any(|r| r.0 == *t && r.2),
            "{t} has no primary key"
        );
    }
    // The exceptions are real (a stale entry would hide nothing, but would mislead).
    for (t, i) in LOOKUP_INDEXES {
        assert!(
            rows.iter().any(|r| r.0 == t && r.1 == i),
            "the named lookup index {t}.{i} does not exist: remove it from the list"
        );
    }
}
