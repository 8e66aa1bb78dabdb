//! The PostgreSQL backend. Row-level security is the second wall of tenant isolation (I1):
//! every transaction sets `tessera.agency_id` with `set_config(…, true)`, local to it, so a
//! pooled connection never carries a tenant into the next request. The server refuses to run
//! as a role that would bypass RLS.

use std::time::Duration;

use sqlx::postgres::{PgPool, PgPoolOptions};

/// How long a pooled connection may sit idle and still be handed out without a check: one
/// released since then passed the check sqlx makes on every release. One that died since
/// (a PostgreSQL restart within that second) fails to begin, and `begin_with` takes another.
const PING_AFTER_IDLE: Duration = Duration::from_secs(1);

/// An agency's authorization snapshot in one row (`PgStore::snapshot_reads`): `$1` the
/// agency, `$2` the cutoff for revoked grants, `$3` now. An empty set is `NULL`. Each set keeps
/// the order of the reads it replaced (`ORDER BY id`), and the columns of the records.
const SNAPSHOT: &str = "SELECT (SELECT value FROM revision WHERE id = 1) AS revision, \
    (SELECT json_agg(json_build_array(id, name, description, permissions, created_by, created_at, updated_at) ORDER BY id) \
        FROM roles WHERE agency_id = $1)::text AS roles, \
    (SELECT json_agg(json_build_array(id, principal, role, account_id, created_by, created_at) ORDER BY id) \
        FROM bindings WHERE agency_id = $1)::text AS bindings, \
    (SELECT json_agg(json_build_array(id, description, cedar, created_by, created_at) ORDER BY id) \
        FROM policies WHERE agency_id = $1)::text AS policies, \
    (SELECT json_agg(json_build_array(id, app_id, app_agency_id, account_id, scopes, created_by, created_at, revoked_at) ORDER BY id) \
        FROM installations WHERE agency_id = $1 AND revoked_at IS NULL)::text AS installations, \
    (SELECT json_agg(id ORDER BY id) FROM oauth_grants \
        WHERE agency_id = $1 AND revoked_at IS NOT NULL AND expires_at > $2)::text AS grants, \
    (SELECT json_agg(jti ORDER BY jti) FROM revoked_access_tokens \
        WHERE agency_id = $1 AND expires_at > $3)::text AS access_tokens, \
    (SELECT json_agg(id ORDER BY id) FROM users \
        WHERE agency_id = $1 AND status <> 'active')::text AS inactive_users";

/// One set of the snapshot row: a JSON array of `T` (tuples for rows), empty when `NULL`.
fn json_set<T: serde::de::DeserializeOwned>(row: &DbRow, name: &str) -> Result<Vec<T>, StoreError> {
    let text: Option<&str> = row.try_get(name)?;
    text.map_or(Ok(Vec::new()), |t| {
        serde_json::from_str(t)
            .map_err(|e| StoreError::Corrupt(format!("snapshot set `{name}`: {e}")))
    })
}

/// An id (or principal) of the snapshot, parsed as its column would be.
fn parse<T: std::str::FromStr>(s: String, what: &str) -> Result<T, StoreError>
where
    T::Err: std::fmt::Display,
{
    s.parse()
        .map_err(|e: T::Err| StoreError::Corrupt(format!("column `{what}`: {e}")))
}

/// Whether an error says the connection is gone: closed under it, or its backend terminated
/// by the server (SQLSTATE class 57, such as `57P01` on a fast shutdown).
fn connection_lost(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) => true,
        sqlx::Error::Database(d) => d.code().is_some_and(|c| c.starts_with("57P")),
        _ => false,
    }
}

/// Row-lock clause for reads that must hold a row until commit: what a foreign-key check
/// takes, so it blocks a `DELETE` of the row but not an update of its other columns.
const KEY_SHARE: &str = "FOR KEY SHARE";

/// Row-lock clause for reads a write depends on (refresh-token rotation).
const FOR_UPDATE: &str = "FOR UPDATE";

/// A claim's row lock: concurrent dispatchers on other nodes skip the rows it took instead of
/// waiting for them (and never take them twice: the claim moves them out of the due set).
const SKIP_LOCKED: &str = "FOR UPDATE SKIP LOCKED";

/// Counts the `checksum` column of `tessera_migrations` (0 in a database migrated before
/// checksums were kept).
const CHECKSUM_COLUMN: &str = "SELECT count(*) FROM information_schema.columns \
     WHERE table_schema = current_schema() AND table_name = 'tessera_migrations' AND column_name = 'checksum'";

/// A PostgreSQL-backed store.
#[derive(Clone, Debug)]
pub struct PgStore {
    pool: PgPool,
}

/// Explains how to make a role that row-level security applies to.
const ROLE_HELP: &str = "create a dedicated role, for example: \
CREATE ROLE tessera LOGIN PASSWORD '…' NOSUPERUSER NOBYPASSRLS; CREATE DATABASE tessera OWNER tessera; \
and connect as it";

impl PgStore {
    /// Connects and checks that the role is subject to row-level security; returns the store
    /// with the mint that builds scopes for it.
    pub async fn connect(url: &str) -> Result<(Self, crate::scope::ScopeMint), StoreError> {
        Ok((Self::open(url).await?, crate::scope::ScopeMint::new()))
    }

    /// Connects without handing out a mint.
    pub(crate) async fn open(url: &str) -> Result<Self, StoreError> {
        Self::open_with(url, Duration::from_secs(10)).await
    }

    /// Connects to a read replica (a hot standby): the same role checks as the primary's
    /// (row-level security must apply), and a short acquire timeout, so that a replica that
    /// stops answering costs a read about a second before it falls back to the primary.
    pub(crate) async fn open_replica(url: &str) -> Result<Self, StoreError> {
        Self::open_with(url, Duration::from_secs(1)).await
    }

    async fn open_with(url: &str, acquire: Duration) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(acquire)
            // A connection is checked (a round trip) when handed out only if it sat idle for
            // `PING_AFTER_IDLE`: one back in the pool since less than that passed the check sqlx
            // runs on every release, and on the cold path each check was one more round trip
            // in series (HikariCP skips it the same way within 500 ms).
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for >= PING_AFTER_IDLE {
                        sqlx::Connection::ping(conn).await?;
                    }
                    Ok(true)
                })
            })
            .connect(url)
            .await?;
        let row = sqlx::query("SELECT current_user::text AS name, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")
            .fetch_one(&pool)
            .await?;
        let (name, superuser, bypass): (String, bool, bool) = (
            row.try_get("name")?,
            row.try_get("rolsuper")?,
            row.try_get("rolbypassrls")?,
        );
        if superuser || bypass {
            let what = if superuser {
                "a superuser"
            } else {
                "allowed to BYPASSRLS"
            };
            return Err(StoreError::Config(format!(
                "refusing to run as PostgreSQL role `{name}`: it is {what}, which would bypass row-level security; {ROLE_HELP}"
            )));
        }
        let store = Self { pool };
        if store.owns_protected_tables().await? {
            tracing::warn!(role = %name, "this role owns tables under row-level security: it could turn `FORCE ROW LEVEL SECURITY` off. Run migrations as an owner role (`tessera migrate --database-url <owner> --grant-to <role>`) and serve as a role that owns nothing");
        }
        Ok(store)
    }

    /// Whether the connected role owns a table under row-level security (and so could
    /// disable it): the server should run as a role that owns nothing.
    pub async fn owns_protected_tables(&self) -> Result<bool, StoreError> {
        let owned: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind = 'r' AND c.relrowsecurity AND n.nspname = current_schema() \
             AND pg_get_userbyid(c.relowner) = current_user",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(owned > 0)
    }

    /// Grants `role` what the server needs on every table and sequence of the schema (rows
    /// only: no DDL, no ownership), now and for tables later migrations create. Run as the
    /// owner, after migrating.
    pub async fn grant_runtime_role(&self, role: &str) -> Result<(), StoreError> {
        let valid = role.len() <= 63
            && role.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
            && role
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !valid {
            return Err(StoreError::Config(format!(
                "`{role}` is not a plain role name (lowercase letters, digits and `_`, at most 63)"
            )));
        }
        let exists: Option<String> =
            sqlx::query_scalar("SELECT rolname::text FROM pg_roles WHERE rolname = $1")
                .bind(role)
                .fetch_optional(&self.pool)
                .await?;
        if exists.is_none() {
            return Err(StoreError::Config(format!(
                "no PostgreSQL role `{role}`: create it first (CREATE ROLE {role} LOGIN NOSUPERUSER NOBYPASSRLS)"
            )));
        }
        let mut tx = self.pool.begin().await?;
        for stmt in [
            format!("GRANT USAGE ON SCHEMA public TO \"{role}\""),
            format!("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO \"{role}\""),
            format!("GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO \"{role}\""),
            format!("ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO \"{role}\""),
            format!("ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO \"{role}\""),
        ] {
            sqlx::query(&stmt).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    fn read_pool(&self) -> &PgPool {
        &self.pool
    }

    /// For the global tables (signing keys): no tenant is set, and none is needed, as they
    /// have no row-level security.
    fn write_pool(&self) -> &PgPool {
        &self.pool
    }

    /// A transaction with one row-level-security setting made (`setting` is a constant name,
    /// `value` a tenant id, a hash or a lookup key), in one round trip where it can be: `BEGIN`
    /// and the `set_config` go as one simple query when the value is made of characters that
    /// cannot end or escape a literal (ids, hex hashes; the common case). Any other value is
    /// bound as a parameter, in a second round trip. `isolation` goes after `BEGIN`.
    /// Begins a transaction with `begin`, once more on another connection if the first one
    /// handed out turns out dead (PostgreSQL restarted within `PING_AFTER_IDLE` of its last
    /// use): nothing has happened in a transaction that failed to begin.
    async fn begin_with(&self, begin: String) -> Result<Tx, StoreError> {
        match self.pool.begin_with(begin.clone()).await {
            Err(e) if connection_lost(&e) => Ok(self.pool.begin_with(begin).await?),
            r => Ok(r?),
        }
    }

    async fn begin_set(
        &self,
        isolation: &str,
        setting: &'static str,
        value: &str,
    ) -> Result<Tx, StoreError> {
        if crate::sql::literal::literal_safe(value) {
            let begin =
                format!("BEGIN{isolation}; SELECT set_config('{setting}', '{value}', true)");
            return self.begin_with(begin).await;
        }
        let mut tx = self.begin_with(format!("BEGIN{isolation}")).await?;
        sqlx::query("SELECT set_config($1, $2, true)")
            .bind(setting)
            .bind(value)
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }

    async fn begin_tenant(&self, agency: &AgencyId, _write: bool) -> Result<Tx, StoreError> {
        self.begin_set("", "tessera.agency_id", agency.as_str())
            .await
    }

    /// Like `begin_tenant`, as one `REPEATABLE READ` snapshot.
    async fn begin_snapshot(&self, agency: &AgencyId) -> Result<Tx, StoreError> {
        self.begin_set(
            " ISOLATION LEVEL REPEATABLE READ, READ ONLY",
            "tessera.agency_id",
            agency.as_str(),
        )
        .await
    }

    /// A transaction that may read the change log of every agency (the `change_feed`
    /// policy, SELECT only), and nothing else of any tenant.
    async fn begin_feed(&self) -> Result<Tx, StoreError> {
        self.begin_set("", "tessera.change_feed", "on").await
    }

    /// A transaction in which `setting` (a SELECT-only lookup policy's key) is `value`.
    async fn begin_lookup(&self, setting: &'static str, value: &str) -> Result<Tx, StoreError> {
        self.begin_set("", setting, value).await
    }

    /// A transaction that sees the rows of client `app` in every agency (the
    /// `client_lookup` policies, SELECT only), and nothing else of any tenant.
    async fn begin_client(&self, app: &AppId) -> Result<Tx, StoreError> {
        self.begin_lookup("tessera.client_id", app.as_str()).await
    }

    /// A transaction that sees the code or refresh token with this hash, in any agency (the
    /// `credential_lookup` policies, SELECT only).
    async fn begin_credential(&self, hash: &[u8]) -> Result<Tx, StoreError> {
        let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
        self.begin_lookup("tessera.credential_hash", &hex).await
    }

    /// A transaction that sees the resource server with this identifier, in any agency (the
    /// `resource_lookup` policy, SELECT only).
    async fn begin_resource(&self, identifier: &str) -> Result<Tx, StoreError> {
        self.begin_lookup("tessera.resource_identifier", identifier)
            .await
    }

    /// A transaction that sees the users with this email key in every agency (the
    /// `login_lookup` policy, SELECT only).
    async fn begin_login(&self, email_key: &str) -> Result<Tx, StoreError> {
        self.begin_lookup("tessera.login_email", email_key).await
    }

    /// A transaction that sees every agency's webhook rows (the `webhook_dispatch` policy,
    /// SELECT only), and nothing else of any tenant.
    async fn begin_webhook_dispatch(&self) -> Result<Tx, StoreError> {
        self.begin_lookup("tessera.webhook_dispatch", "on").await
    }

    /// Moves a write transaction to another agency's rows (`append_audit_batch`).
    async fn switch_tenant(&self, tx: &mut Tx, agency: &AgencyId) -> Result<(), StoreError> {
        sqlx::query("SELECT set_config('tessera.agency_id', $1, true)")
            .bind(agency.as_str())
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    /// The reads of an authorization snapshot, inside `tx`: one prepared statement, each set
    /// aggregated into a JSON array. sqlx prepares it once per connection, so PostgreSQL plans
    /// it once; the eight statements of a multi-statement query were planned on every build,
    /// which was half of PostgreSQL's time on the cold path (`pg_stat_statements` with
    /// `track_planning`, docs/BENCHMARKS.md).
    async fn snapshot_reads(
        &self,
        tx: &mut Tx,
        agency: &AgencyId,
        grant_cutoff: i64,
        now: i64,
    ) -> Result<AuthzSnapshot, StoreError> {
        let row = sqlx::query(SNAPSHOT)
            .bind(agency.as_str())
            .bind(grant_cutoff)
            .bind(now)
            .fetch_one(&mut **tx)
            .await?;
        let roles = json_set::<(String, String, String, String, String, i64, i64)>(&row, "roles")?
            .into_iter()
            .map(
                |(id, name, description, permissions, created_by, created_at, updated_at)| {
                    Ok(Role {
                        id: parse(id, "roles.id")?,
                        agency_id: agency.clone(),
                        name,
                        description,
                        permissions: serde_json::from_str(&permissions)?,
                        created_by,
                        created_at,
                        updated_at,
                    })
                },
            )
            .collect::<Result<Vec<_>, StoreError>>()?;
        let bindings =
            json_set::<(String, String, String, Option<String>, String, i64)>(&row, "bindings")?
                .into_iter()
                .map(|(id, principal, role, account, created_by, created_at)| {
                    Ok(Binding {
                        id: parse(id, "bindings.id")?,
                        agency_id: agency.clone(),
                        principal: parse(principal, "bindings.principal")?,
                        role,
                        account: account
                            .map(|a| parse(a, "bindings.account_id"))
                            .transpose()?,
                        created_by,
                        created_at,
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
        let policies = json_set::<(String, String, String, String, i64)>(&row, "policies")?
            .into_iter()
            .map(|(id, description, cedar, created_by, created_at)| {
                Ok(Policy {
                    id: parse(id, "policies.id")?,
                    agency_id: agency.clone(),
                    description,
                    cedar,
                    created_by,
                    created_at,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        type InstallationSet = (
            String,
            String,
            String,
            Option<String>,
            String,
            String,
            i64,
            Option<i64>,
        );
        let installations = json_set::<InstallationSet>(&row, "installations")?
            .into_iter()
            .map(
                |(id, app, app_agency, account, scopes, created_by, created_at, revoked_at)| {
                    Ok(Installation {
                        id: parse(id, "installations.id")?,
                        agency_id: agency.clone(),
                        app_id: parse(app, "installations.app_id")?,
                        app_agency_id: parse(app_agency, "installations.app_agency_id")?,
                        account: account
                            .map(|a| parse(a, "installations.account_id"))
                            .transpose()?,
                        scopes: serde_json::from_str(&scopes)?,
                        created_by,
                        created_at,
                        revoked_at,
                    })
                },
            )
            .collect::<Result<Vec<_>, StoreError>>()?;
        let revocations = Revocations {
            installations,
            grants: json_set(&row, "grants")?,
            access_tokens: json_set(&row, "access_tokens")?,
        };
        let revision: Option<i64> = row.try_get("revision")?;
        Ok(AuthzSnapshot {
            revision: revision.ok_or_else(|| StoreError::Corrupt("no revision row".into()))?,
            roles,
            bindings,
            policies,
            revocations,
            inactive_users: json_set(&row, "inactive_users")?,
        })
    }

    async fn find_key_impl(&self, hash: &[u8]) -> Result<Option<DbRow>, StoreError> {
        let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
        let mut tx = self.begin_lookup("tessera.credential_hash", &hex).await?;
        let row = sqlx::query(
            "SELECT agency_id, key_id, valid_until FROM api_key_secrets WHERE secret_hash = $1",
        )
        .bind(hash)
        .fetch_optional(&mut *tx)
        .await?;
        // Read only: dropped, not committed (the `ROLLBACK` goes with the connection's return
        // to the pool, off the request's path).
        drop(tx);
        Ok(row)
    }

    async fn migrate_impl(&self) -> Result<usize, StoreError> {
        let mut tx = self.pool.begin().await?;
        // Nodes starting together migrate one at a time.
        sqlx::query("SELECT pg_advisory_xact_lock(7265637265)")
            .execute(&mut *tx)
            .await?;
        // Up to date: nothing to do, and no DDL, so a runtime role without CREATE can start.
        let table: Option<String> =
            sqlx::query_scalar("SELECT to_regclass('tessera_migrations')::text")
                .fetch_one(&mut *tx)
                .await?;
        if table.is_some() {
            let latest: Option<i64> =
                sqlx::query_scalar("SELECT max(version)::bigint FROM tessera_migrations")
                    .fetch_one(&mut *tx)
                    .await?;
            if latest.is_some_and(|v| v >= crate::migrate::latest_version()) {
                if checksum_column(&mut tx).await? {
                    verify_checksums(&mut tx).await?;
                    tx.commit().await?;
                    return Ok(0);
                }
                // Migrated before checksums were kept: the owner adds and backfills them;
                // another role (the runtime role, which may not alter the table) starts as
                // before.
                let owner: bool = sqlx::query_scalar(
                    "SELECT pg_get_userbyid(relowner) = current_user FROM pg_class WHERE oid = 'tessera_migrations'::regclass",
                )
                .fetch_one(&mut *tx)
                .await?;
                if !owner {
                    tracing::warn!("the applied migrations have no checksums yet: run `tessera migrate` as the tables' owner to record them");
                    tx.commit().await?;
                    return Ok(0);
                }
            }
        }
        run_migrations(tx, |m| m.postgres).await
    }
}

/// Refuses an applied migration whose SQL no longer matches its recorded checksum, without
/// writing (the up-to-date path, which a runtime role that may not alter tables takes too).
async fn verify_checksums(tx: &mut Tx) -> Result<(), StoreError> {
    for m in crate::migrate::MIGRATIONS {
        let recorded: Option<Option<String>> =
            sqlx::query_scalar("SELECT checksum FROM tessera_migrations WHERE version = $1")
                .bind(m.version)
                .fetch_optional(&mut **tx)
                .await?;
        if let Some(Some(recorded)) = recorded {
            if recorded != crate::migrate::checksum(m.postgres) {
                return Err(StoreError::MigrationEdited {
                    version: m.version,
                    file: m.file("postgres"),
                });
            }
        }
    }
    Ok(())
}

crate::sql::impl_store!(PgStore, sqlx::Postgres, "postgres");

impl crate::store::ChangeSignals for PgStore {
    /// `LISTEN` on a dedicated connection made with this store's options.
    fn change_signal(&self) -> Option<crate::store::ChangeSignal> {
        Some(crate::listen::spawn((*self.pool.connect_options()).clone()))
    }
}
