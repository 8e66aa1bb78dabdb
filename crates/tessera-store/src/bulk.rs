//! Bulk loading for `tessera dev seed`: whole batches of rows into the tenant tables, on
//! PostgreSQL through `COPY … FROM STDIN` (text format) and on SQLite through prepared
//! multi-row `INSERT`s, one transaction per batch.
//!
//! INVARIANT: only the tables and columns named by [`BulkTable`] are written (no caller text
//! reaches the SQL), and the rows are the ones the store's own `INSERT`s write.
//!
//! Row-level security: PostgreSQL refuses `COPY FROM` into a table whose row-level security
//! applies to the role, and `FORCE` makes it apply to the owner. So each batch runs as the
//! tables' owner (the url `tessera migrate` uses) in one transaction that turns `FORCE` off,
//! copies, and turns it on again before it commits: `ALTER TABLE` holds the table's exclusive
//! lock until then, so no other session ever sees the table without `FORCE`, and a failed
//! batch rolls the change back with its rows. A role that owns nothing cannot seed.

use std::fmt::Write as _;
use std::str::FromStr;

use async_trait::async_trait;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use sqlx::Row as _;

use crate::StoreError;

/// One column value of a bulk row.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum BulkValue {
    /// Text.
    Text(String),
    /// A whole number (`BIGINT`).
    Int(i64),
    /// A boolean.
    Bool(bool),
    /// Bytes (`BYTEA` / `BLOB`): hashes, never secrets.
    Bytes(Vec<u8>),
    /// SQL `NULL`.
    Null,
}

/// The tables `tessera dev seed` fills, in an order that satisfies their foreign keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BulkTable {
    /// `agencies` (global, no row-level security).
    Agencies,
    /// `accounts`.
    Accounts,
    /// `users`.
    Users,
    /// `roles` (custom roles).
    Roles,
    /// `bindings`.
    Bindings,
    /// `api_keys`.
    ApiKeys,
    /// `api_key_secrets`.
    ApiKeySecrets,
    /// `apps`.
    Apps,
    /// `app_secrets`.
    AppSecrets,
    /// `installations`.
    Installations,
}

impl BulkTable {
    /// Every table, in load order.
    pub const ALL: [Self; 10] = [
        Self::Agencies,
        Self::Accounts,
        Self::Users,
        Self::Roles,
        Self::Bindings,
        Self::ApiKeys,
        Self::ApiKeySecrets,
        Self::Apps,
        Self::AppSecrets,
        Self::Installations,
    ];

    /// The table's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Agencies => "agencies",
            Self::Accounts => "accounts",
            Self::Users => "users",
            Self::Roles => "roles",
            Self::Bindings => "bindings",
            Self::ApiKeys => "api_keys",
            Self::ApiKeySecrets => "api_key_secrets",
            Self::Apps => "apps",
            Self::AppSecrets => "app_secrets",
            Self::Installations => "installations",
        }
    }

    /// The columns a row gives, in order (what the store's `INSERT` for the table names).
    pub fn columns(self) -> &'static [&'static str] {
        match self {
            Self::Agencies => &[
                "id",
                "name",
                "status",
                "is_platform",
                "created_at",
                "updated_at",
            ],
            Self::Accounts => &[
                "agency_id",
                "id",
                "name",
                "created_at",
                "updated_at",
                "status",
            ],
            Self::Users => &[
                "agency_id",
                "id",
                "email",
                "email_key",
                "name",
                "status",
                "password_hash",
                "created_at",
                "updated_at",
            ],
            Self::Roles => &[
                "agency_id",
                "id",
                "name",
                "description",
                "permissions",
                "created_by",
                "created_at",
                "updated_at",
            ],
            Self::Bindings => &[
                "agency_id",
                "id",
                "principal",
                "role",
                "account_id",
                "account_key",
                "created_by",
                "created_at",
            ],
            Self::ApiKeys => &[
                "agency_id",
                "id",
                "name",
                "account_id",
                "scopes",
                "created_by",
                "created_at",
            ],
            Self::ApiKeySecrets => &[
                "agency_id",
                "key_id",
                "secret_hash",
                "pepper_version",
                "created_at",
            ],
            Self::AppSecrets => &[
                "agency_id",
                "app_id",
                "secret_hash",
                "pepper_version",
                "created_at",
            ],
            Self::Apps => &[
                "agency_id",
                "id",
                "name",
                "kind",
                "confidential",
                "redirect_uris",
                "scopes",
                "created_by",
                "created_at",
                "updated_at",
                "token_signing_alg",
                "review",
                "approved_scopes",
            ],
            Self::Installations => &[
                "agency_id",
                "id",
                "app_id",
                "app_agency_id",
                "account_id",
                "account_key",
                "scopes",
                "created_by",
                "created_at",
            ],
        }
    }

    /// Whether the table is under (forced) row-level security on PostgreSQL.
    pub fn tenant(self) -> bool {
        self != Self::Agencies
    }
}

/// A bulk loader on one database.
#[async_trait]
pub trait BulkLoad: Send + Sync + std::fmt::Debug {
    /// `postgres` or `sqlite`.
    fn backend(&self) -> &'static str;

    /// How many agencies other than the platform's the database holds (deleted ones included).
    async fn agencies(&self) -> Result<i64, StoreError>;

    /// Writes `rows` into `table` in one transaction: all of them or none.
    async fn load(&self, table: BulkTable, rows: &[Vec<BulkValue>]) -> Result<(), StoreError>;

    /// Bumps the revision once, recording the change in `agency`'s log (so running nodes,
    /// which tail the log, drop what they cached of it). Returns the new revision.
    async fn bump_revision(
        &self,
        agency: &str,
        kind: &str,
        entity: &str,
        at: i64,
    ) -> Result<i64, StoreError>;

    /// Readies `table` for serving after a load: PostgreSQL `VACUUM (ANALYZE)` (the planner's
    /// statistics, the visibility map for index-only scans, and the hint bits that the first
    /// readers of freshly copied rows would otherwise write, while autovacuum catches up
    /// under load); SQLite `ANALYZE`.
    async fn settle(&self, table: BulkTable) -> Result<(), StoreError>;
}

/// Opens a bulk loader on the database at `url` (migrate it first: this does not).
pub async fn open_bulk(url: &str) -> Result<Box<dyn BulkLoad>, StoreError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let pool = PgPoolOptions::new().max_connections(2).connect(url).await?;
        Ok(Box::new(PgBulk { pool }))
    } else if url.starts_with("sqlite:") {
        let opts = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Config(format!("invalid sqlite url: {e}")))?
            .foreign_keys(true)
            .busy_timeout(std::time::Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(opts)
            .await?;
        Ok(Box::new(SqliteBulk { pool }))
    } else {
        Err(StoreError::Config(
            "unsupported database url scheme (expected `sqlite://PATH` or `postgres://…`)".into(),
        ))
    }
}

/// The revision bump and its change-log row, as the store's `record_change` writes them (the
/// same SQL on both backends; a macro because the transaction types differ).
macro_rules! record_change {
    ($tx:expr, $agency:expr, $kind:expr, $entity:expr, $at:expr) => {{
        let rev: i64 = sqlx::query("UPDATE revision SET value = value + 1 WHERE id = 1 RETURNING value")
            .fetch_one(&mut *$tx)
            .await?
            .try_get("value")?;
        sqlx::query("INSERT INTO change_log (agency_id, revision, kind, entity, at) VALUES ($1, $2, $3, $4, $5)")
            .bind($agency)
            .bind(rev)
            .bind($kind)
            .bind($entity)
            .bind($at)
            .execute(&mut *$tx)
            .await?;
        rev
    }};
}

const COUNT_AGENCIES: &str = "SELECT count(*) FROM agencies WHERE NOT is_platform";

/// PostgreSQL: `COPY … FROM STDIN` as the tables' owner.
#[derive(Debug)]
struct PgBulk {
    pool: PgPool,
}

/// Appends `v` in `COPY`'s text format.
fn copy_text(out: &mut String, v: &BulkValue) {
    match v {
        BulkValue::Null => out.push_str("\\N"),
        BulkValue::Int(i) => {
            let _ = write!(out, "{i}");
        }
        BulkValue::Bool(b) => out.push(if *b { 't' } else { 'f' }),
        BulkValue::Bytes(b) => {
            // bytea's hex input `\x…`, its backslash escaped for COPY.
            out.push_str("\\\\x");
            for byte in b {
                let _ = write!(out, "{byte:02x}");
            }
        }
        BulkValue::Text(s) => {
            for c in s.chars() {
                match c {
                    '\\' => out.push_str("\\\\"),
                    '\t' => out.push_str("\\t"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    c => out.push(c),
                }
            }
        }
    }
}

/// The rows as one `COPY` text payload.
pub fn copy_payload(rows: &[Vec<BulkValue>]) -> String {
    let mut out = String::with_capacity(rows.len() * 160);
    for row in rows {
        for (i, v) in row.iter().enumerate() {
            if i > 0 {
                out.push('\t');
            }
            copy_text(&mut out, v);
        }
        out.push('\n');
    }
    out
}

/// A clear message for the error PostgreSQL gives a role that does not own the table.
fn owner_needed(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(d) if d.code().as_deref() == Some("42501") => {
            StoreError::Config(format!(
                "{}: seed with the url of the tables' owner (the one `tessera migrate` runs with)",
                d.message()
            ))
        }
        _ => e.into(),
    }
}

#[async_trait]
impl BulkLoad for PgBulk {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn agencies(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(COUNT_AGENCIES)
            .fetch_one(&self.pool)
            .await?)
    }

    async fn load(&self, table: BulkTable, rows: &[Vec<BulkValue>]) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let payload = copy_payload(rows);
        let name = table.name();
        let mut tx = self.pool.begin().await?;
        if table.tenant() {
            sqlx::query(&format!("ALTER TABLE {name} NO FORCE ROW LEVEL SECURITY"))
                .execute(&mut *tx)
                .await
                .map_err(owner_needed)?;
        }
        let sql = format!("COPY {name} ({}) FROM STDIN", table.columns().join(", "));
        let mut copy = tx.copy_in_raw(&sql).await.map_err(owner_needed)?;
        copy.send(payload.as_bytes()).await?;
        copy.finish().await?;
        if table.tenant() {
            sqlx::query(&format!("ALTER TABLE {name} FORCE ROW LEVEL SECURITY"))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn bump_revision(
        &self,
        agency: &str,
        kind: &str,
        entity: &str,
        at: i64,
    ) -> Result<i64, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT set_config('tessera.agency_id', $1, true)")
            .bind(agency)
            .execute(&mut *tx)
            .await?;
        let rev = record_change!(tx, agency, kind, entity, at);
        tx.commit().await?;
        Ok(rev)
    }

    async fn settle(&self, table: BulkTable) -> Result<(), StoreError> {
        // Not in a transaction: VACUUM refuses to run inside one.
        sqlx::raw_sql(&format!("VACUUM (ANALYZE) {}", table.name()))
            .execute(&self.pool)
            .await
            .map_err(owner_needed)?;
        Ok(())
    }
}

/// SQLite: prepared multi-row `INSERT`s, the batch in one transaction.
#[derive(Debug)]
struct SqliteBulk {
    pool: SqlitePool,
}

/// SQLite's limit on bound parameters per statement (32766 since 3.32), with room to spare.
const SQLITE_MAX_PARAMS: usize = 32_000;
/// Rows per statement at most: bigger statements stop paying off.
const SQLITE_MAX_ROWS: usize = 500;

fn insert_sql(table: BulkTable, rows: usize) -> String {
    let cols = table.columns();
    let one = format!("({})", vec!["?"; cols.len()].join(", "));
    format!(
        "INSERT INTO {} ({}) VALUES {}",
        table.name(),
        cols.join(", "),
        vec![one.as_str(); rows].join(", ")
    )
}

#[async_trait]
impl BulkLoad for SqliteBulk {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn agencies(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(COUNT_AGENCIES)
            .fetch_one(&self.pool)
            .await?)
    }

    async fn load(&self, table: BulkTable, rows: &[Vec<BulkValue>]) -> Result<(), StoreError> {
        let per = (SQLITE_MAX_PARAMS / table.columns().len()).clamp(1, SQLITE_MAX_ROWS);
        let mut tx = self.pool.begin().await?;
        for chunk in rows.chunks(per) {
            let sql = insert_sql(table, chunk.len());
            let mut q = sqlx::query(&sql);
            for v in chunk.iter().flatten() {
                q = match v {
                    BulkValue::Text(s) => q.bind(s.as_str()),
                    BulkValue::Int(i) => q.bind(*i),
                    BulkValue::Bool(b) => q.bind(*b),
                    BulkValue::Bytes(b) => q.bind(b.as_slice()),
                    BulkValue::Null => q.bind(None::<String>),
                };
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn bump_revision(
        &self,
        agency: &str,
        kind: &str,
        entity: &str,
        at: i64,
    ) -> Result<i64, StoreError> {
        let mut tx = self.pool.begin().await?;
        let rev = record_change!(tx, agency, kind, entity, at);
        tx.commit().await?;
        Ok(rev)
    }

    async fn settle(&self, table: BulkTable) -> Result<(), StoreError> {
        sqlx::raw_sql(&format!("ANALYZE {}", table.name()))
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_text_escapes_what_copy_reads_specially() {
        let rows = vec![vec![
            BulkValue::Text("a\tb\\c\nd".into()),
            BulkValue::Null,
            BulkValue::Int(-5),
            BulkValue::Bool(true),
            BulkValue::Bytes(vec![0, 255]),
        ]];
        assert_eq!(
            copy_payload(&rows),
            "a\\tb\\\\c\\nd\t\\N\t-5\tt\t\\\\x00ff\n"
        );
    }

    #[test]
    fn sqlite_statements_stay_under_the_parameter_limit() {
        for t in BulkTable::ALL {
            let per = (SQLITE_MAX_PARAMS / t.columns().len()).clamp(1, SQLITE_MAX_ROWS);
            assert!(per * t.columns().len() <= SQLITE_MAX_PARAMS);
            assert_eq!(insert_sql(t, 2).matches('?').count(), 2 * t.columns().len());
        }
    }
}
