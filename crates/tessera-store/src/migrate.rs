//! The migration list shared by both backends' runners: each backend has its own SQL files.
//!
//! INVARIANT: an applied migration is never edited. `tessera_migrations` records the SHA-256
//! of the SQL each version ran; a start whose SQL no longer matches is refused
//! (`StoreError::MigrationEdited`). Versions applied before checksums existed get theirs
//! backfilled from the same text.

use sha2::{Digest, Sha256};

/// One migration: its version, name and SQL for SQLite and PostgreSQL.
pub(crate) struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sqlite: &'static str,
    pub postgres: &'static str,
}

/// Every migration, in order. Applied ones are never edited: add a new one.
pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "init",
        sqlite: include_str!("../migrations/sqlite/0001_init.sql"),
        postgres: include_str!("../migrations/postgres/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "roles_policies",
        sqlite: include_str!("../migrations/sqlite/0002_roles_policies.sql"),
        postgres: include_str!("../migrations/postgres/0002_roles_policies.sql"),
    },
    Migration {
        version: 3,
        name: "signing_keys",
        sqlite: include_str!("../migrations/sqlite/0003_signing_keys.sql"),
        postgres: include_str!("../migrations/postgres/0003_signing_keys.sql"),
    },
    Migration {
        version: 4,
        name: "oauth",
        sqlite: include_str!("../migrations/sqlite/0004_oauth.sql"),
        postgres: include_str!("../migrations/postgres/0004_oauth.sql"),
    },
    Migration {
        version: 5,
        name: "suspension_review",
        sqlite: include_str!("../migrations/sqlite/0005_suspension_review.sql"),
        postgres: include_str!("../migrations/postgres/0005_suspension_review.sql"),
    },
    Migration {
        version: 6,
        name: "rate_limits",
        sqlite: include_str!("../migrations/sqlite/0006_rate_limits.sql"),
        postgres: include_str!("../migrations/postgres/0006_rate_limits.sql"),
    },
    Migration {
        version: 7,
        name: "resource_servers",
        sqlite: include_str!("../migrations/sqlite/0007_resource_servers.sql"),
        postgres: include_str!("../migrations/postgres/0007_resource_servers.sql"),
    },
    Migration {
        version: 8,
        name: "audit_checkpoints",
        sqlite: include_str!("../migrations/sqlite/0008_audit_checkpoints.sql"),
        postgres: include_str!("../migrations/postgres/0008_audit_checkpoints.sql"),
    },
    Migration {
        version: 9,
        name: "webhooks",
        sqlite: include_str!("../migrations/sqlite/0009_webhooks.sql"),
        postgres: include_str!("../migrations/postgres/0009_webhooks.sql"),
    },
    Migration {
        version: 10,
        name: "secrets",
        sqlite: include_str!("../migrations/sqlite/0010_secrets.sql"),
        postgres: include_str!("../migrations/postgres/0010_secrets.sql"),
    },
    Migration {
        version: 11,
        name: "evidence",
        sqlite: include_str!("../migrations/sqlite/0011_evidence.sql"),
        postgres: include_str!("../migrations/postgres/0011_evidence.sql"),
    },
    Migration {
        version: 12,
        name: "person_keys",
        sqlite: include_str!("../migrations/sqlite/0012_person_keys.sql"),
        postgres: include_str!("../migrations/postgres/0012_person_keys.sql"),
    },
    Migration {
        version: 13,
        name: "cluster",
        sqlite: include_str!("../migrations/sqlite/0013_cluster.sql"),
        postgres: include_str!("../migrations/postgres/0013_cluster.sql"),
    },
    Migration {
        version: 14,
        name: "suspension_reads",
        sqlite: include_str!("../migrations/sqlite/0014_suspension_reads.sql"),
        postgres: include_str!("../migrations/postgres/0014_suspension_reads.sql"),
    },
    Migration {
        version: 15,
        name: "audit_due",
        sqlite: include_str!("../migrations/sqlite/0015_audit_due.sql"),
        postgres: include_str!("../migrations/postgres/0015_audit_due.sql"),
    },
    Migration {
        version: 16,
        name: "inactive_users",
        sqlite: include_str!("../migrations/sqlite/0016_inactive_users.sql"),
        postgres: include_str!("../migrations/postgres/0016_inactive_users.sql"),
    },
];

impl Migration {
    /// The SQL file, relative to the crate, such as `migrations/sqlite/0001_init.sql`.
    pub fn file(&self, backend: &str) -> String {
        format!("migrations/{backend}/{:04}_{}.sql", self.version, self.name)
    }
}

/// The table of applied migrations. `checksum` is `NULL` only in the rows of a database
/// migrated before checksums were kept, until the runner backfills them.
pub(crate) const CREATE_TABLE: &str =
    "CREATE TABLE IF NOT EXISTS tessera_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL, checksum TEXT)";

/// Adds the checksum column to a table made before it existed.
pub(crate) const ADD_CHECKSUM: &str = "ALTER TABLE tessera_migrations ADD COLUMN checksum TEXT";

/// The lowercase hex SHA-256 of a migration's SQL.
pub(crate) fn checksum(sql: &str) -> String {
    Sha256::digest(sql.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The version of the last migration.
pub(crate) fn latest_version() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}
