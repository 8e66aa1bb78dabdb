//! The queries both backends share, written once and instantiated per backend with its
//! concrete sqlx types (`impl_store!`). Each backend supplies `begin_tenant` (which on
//! PostgreSQL sets the row-level-security tenant for the transaction), `begin_snapshot` (the
//! same, as one consistent snapshot), `begin_feed` (the cross-tenant change-log reader),
//! `read_pool`, `write_pool` (for the global signing-key table, outside any tenant),
//! `migrate_impl`, `find_key_impl` and the `KEY_SHARE` row-lock clause (and what
//! `sql_oauth.rs` names); no query branches on the backend.
//!
//! INVARIANT: every tenant query filters on `agency_id = $1` from the `TenantScope`, and
//! every write commits its audit event (and its change-log entry) in the same transaction.
//! (The global signing-key writes are the exception: one compare-and-set statement each, no
//! tenant, no audit event or change-log entry here.)
//! Revisions come from one counter row updated inside each writing transaction, so writers
//! are serialised on it from their bump to their commit: commit order is revision order.

/// Page sizes are clamped here, whatever the caller asked.
pub(crate) const MAX_PAGE: u32 = 200;

pub(crate) fn page_limit(limit: u32) -> i64 {
    i64::from(limit.clamp(1, MAX_PAGE))
}

/// At most this many changes per `changes_since` call.
pub(crate) const MAX_FEED: u32 = 10_000;

/// Lowercased email, the uniqueness key.
pub(crate) fn email_key(email: &str) -> String {
    email.trim().to_lowercase()
}

/// `$first, $first+1, …`: `n` numbered placeholders, for a bound list in `IN (…)`. Both
/// backends accept `$N`.
pub(crate) fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

macro_rules! impl_store {
    ($store:ty, $db:ty, $backend:literal) => {
        use async_trait::async_trait;
        use sqlx::Row;
        use tessera_core::{AccountId, AgencyId, BindingId, KeyId, PolicyId, PrincipalId, RoleId, UserId};

        use $crate::audit::{chain_hash, AuditEvent, AuditRecord, ChainHash, Outcome};
        use $crate::sql::{email_key, page_limit, placeholders, MAX_FEED};
        use $crate::store::{AuditLog, ChangeFeed, KeyRing, Lookups, PlatformAdmin, TenantData};
        use $crate::{
            Account, Agency, ApiKey, AuditFilter, AuthzSnapshot, Binding, Bootstrap, Change, KeySecretMatch,
            NewUser, Page, PageRequest, Policy, Role, RolePatch, SecretHashRecord, SigningKeyRow, Status,
            StoreError, TenantScope, User, UserPatch,
        };

        type Tx = sqlx::Transaction<'static, $db>;
        type DbRow = <$db as sqlx::Database>::Row;

        $crate::sql_oauth::impl_oauth!($store);

        fn col<T: std::str::FromStr>(row: &DbRow, name: &str) -> Result<T, StoreError>
        where
            T::Err: std::fmt::Display,
        {
            let s: String = row.try_get(name)?;
            s.parse().map_err(|e: T::Err| StoreError::Corrupt(format!("column `{name}`: {e}")))
        }

        fn opt_col<T: std::str::FromStr>(row: &DbRow, name: &str) -> Result<Option<T>, StoreError>
        where
            T::Err: std::fmt::Display,
        {
            let s: Option<String> = row.try_get(name)?;
            s.map(|s| s.parse().map_err(|e: T::Err| StoreError::Corrupt(format!("column `{name}`: {e}")))).transpose()
        }

        fn status(row: &DbRow) -> Result<Status, StoreError> {
            let s: String = row.try_get("status")?;
            Status::parse(&s).ok_or_else(|| StoreError::Corrupt(format!("status `{s}`")))
        }

        const AGENCY_COLS: &str = "id, name, status, is_platform, created_at, updated_at";
        fn agency_row(row: &DbRow) -> Result<Agency, StoreError> {
            Ok(Agency {
                id: col(row, "id")?,
                name: row.try_get("name")?,
                status: status(row)?,
                is_platform: row.try_get("is_platform")?,
                created_at: row.try_get("created_at")?,
                updated_at: row.try_get("updated_at")?,
            })
        }

        const ACCOUNT_COLS: &str = "agency_id, id, name, created_at, updated_at";
        fn account_row(row: &DbRow) -> Result<Account, StoreError> {
            Ok(Account {
                id: col(row, "id")?,
                agency_id: col(row, "agency_id")?,
                name: row.try_get("name")?,
                created_at: row.try_get("created_at")?,
                updated_at: row.try_get("updated_at")?,
            })
        }

        const USER_COLS: &str = "agency_id, id, email, name, status, CAST(CASE WHEN password_hash IS NULL THEN 0 ELSE 1 END AS BIGINT) AS has_password, created_at, updated_at";
        fn user_row(row: &DbRow) -> Result<User, StoreError> {
            Ok(User {
                id: col(row, "id")?,
                agency_id: col(row, "agency_id")?,
                email: row.try_get("email")?,
                name: row.try_get("name")?,
                status: status(row)?,
                has_password: row.try_get::<i64, _>("has_password")? != 0,
                created_at: row.try_get("created_at")?,
                updated_at: row.try_get("updated_at")?,
            })
        }

        const BINDING_COLS: &str = "agency_id, id, principal, role, account_id, created_by, created_at";
        fn binding_row(row: &DbRow) -> Result<Binding, StoreError> {
            Ok(Binding {
                id: col(row, "id")?,
                agency_id: col(row, "agency_id")?,
                principal: col::<PrincipalId>(row, "principal")?,
                role: row.try_get("role")?,
                account: opt_col(row, "account_id")?,
                created_by: row.try_get("created_by")?,
                created_at: row.try_get("created_at")?,
            })
        }

        const ROLE_COLS: &str = "agency_id, id, name, description, permissions, created_by, created_at, updated_at";
        fn role_row(row: &DbRow) -> Result<Role, StoreError> {
            let permissions: String = row.try_get("permissions")?;
            Ok(Role {
                id: col(row, "id")?,
                agency_id: col(row, "agency_id")?,
                name: row.try_get("name")?,
                description: row.try_get("description")?,
                permissions: serde_json::from_str(&permissions)?,
                created_by: row.try_get("created_by")?,
                created_at: row.try_get("created_at")?,
                updated_at: row.try_get("updated_at")?,
            })
        }

        const POLICY_COLS: &str = "agency_id, id, description, cedar, created_by, created_at";
        fn policy_row(row: &DbRow) -> Result<Policy, StoreError> {
            Ok(Policy {
                id: col(row, "id")?,
                agency_id: col(row, "agency_id")?,
                description: row.try_get("description")?,
                cedar: row.try_get("cedar")?,
                created_by: row.try_get("created_by")?,
                created_at: row.try_get("created_at")?,
            })
        }

        fn change_row(row: &DbRow) -> Result<Change, StoreError> {
            Ok(Change {
                revision: row.try_get("revision")?,
                agency: col(row, "agency_id")?,
                kind: row.try_get("kind")?,
                entity: row.try_get("entity")?,
            })
        }

        const SIGNING_KEY_COLS: &str = "kid, alg, state, created_at, activates_at, retires_at, expires_at, public_jwk, sealed_private";
        fn signing_key_row(row: &DbRow) -> Result<SigningKeyRow, StoreError> {
            Ok(SigningKeyRow {
                kid: row.try_get("kid")?,
                alg: row.try_get("alg")?,
                state: row.try_get("state")?,
                created_at: row.try_get("created_at")?,
                activates_at: row.try_get("activates_at")?,
                retires_at: row.try_get("retires_at")?,
                expires_at: row.try_get("expires_at")?,
                public_jwk: row.try_get("public_jwk")?,
                sealed_private: row.try_get("sealed_private")?,
            })
        }

        const KEY_COLS: &str = "agency_id, id, name, account_id, scopes, created_by, created_at, expires_at, revoked_at, last_used_at, rotated_at";
        fn key_row(row: &DbRow) -> Result<ApiKey, StoreError> {
            let scopes: String = row.try_get("scopes")?;
            Ok(ApiKey {
                id: col(row, "id")?,
                agency_id: col(row, "agency_id")?,
                name: row.try_get("name")?,
                account: opt_col(row, "account_id")?,
                scopes: serde_json::from_str(&scopes)?,
                created_by: row.try_get("created_by")?,
                created_at: row.try_get("created_at")?,
                expires_at: row.try_get("expires_at")?,
                revoked_at: row.try_get("revoked_at")?,
                last_used_at: row.try_get("last_used_at")?,
                rotated_at: row.try_get("rotated_at")?,
            })
        }

        const EVENT_COLS: &str = "agency_id, seq, id, at, actor, on_behalf_of, action, target, outcome, request_id, ip, user_agent, detail, prev_hash, hash";
        fn event_row(row: &DbRow) -> Result<AuditEvent, StoreError> {
            let outcome: String = row.try_get("outcome")?;
            let detail: String = row.try_get("detail")?;
            let hash = |name: &str| -> Result<ChainHash, StoreError> {
                let b: Vec<u8> = row.try_get(name)?;
                ChainHash::from_slice(&b).ok_or_else(|| StoreError::Corrupt(format!("column `{name}`: not 32 bytes")))
            };
            Ok(AuditEvent {
                seq: row.try_get("seq")?,
                agency_id: col(row, "agency_id")?,
                id: col(row, "id")?,
                at: row.try_get("at")?,
                actor: row.try_get("actor")?,
                on_behalf_of: row.try_get("on_behalf_of")?,
                action: row.try_get("action")?,
                target: row.try_get("target")?,
                outcome: Outcome::parse(&outcome).ok_or_else(|| StoreError::Corrupt(format!("outcome `{outcome}`")))?,
                request_id: row.try_get("request_id")?,
                ip: row.try_get("ip")?,
                user_agent: row.try_get("user_agent")?,
                detail: serde_json::from_str(&detail)?,
                prev_hash: hash("prev_hash")?,
                hash: hash("hash")?,
            })
        }

        /// Applies the migrations not yet recorded, in `tx`, with each backend's own SQL, after
        /// checking the recorded checksum of each one applied (and backfilling those recorded
        /// before checksums were kept). An edited migration is `MigrationEdited`, and nothing
        /// is applied.
        async fn run_migrations(mut tx: Tx, sql: fn(&$crate::migrate::Migration) -> &'static str) -> Result<usize, StoreError> {
            sqlx::query($crate::migrate::CREATE_TABLE).execute(&mut *tx).await?;
            if !checksum_column(&mut tx).await? {
                sqlx::query($crate::migrate::ADD_CHECKSUM).execute(&mut *tx).await?;
            }
            let mut applied = 0;
            for m in $crate::migrate::MIGRATIONS {
                let checksum = $crate::migrate::checksum(sql(m));
                let recorded: Option<Option<String>> = sqlx::query_scalar("SELECT checksum FROM tessera_migrations WHERE version = $1")
                    .bind(m.version)
                    .fetch_optional(&mut *tx)
                    .await?;
                match recorded {
                    Some(Some(recorded)) if recorded == checksum => continue,
                    Some(Some(_)) => return Err(StoreError::MigrationEdited { version: m.version, file: m.file($backend) }),
                    Some(None) => {
                        // Applied before checksums were kept: the SQL is the same text.
                        sqlx::query("UPDATE tessera_migrations SET checksum = $2 WHERE version = $1")
                            .bind(m.version)
                            .bind(&checksum)
                            .execute(&mut *tx)
                            .await?;
                        continue;
                    }
                    None => {}
                }
                sqlx::Executor::execute(&mut *tx, sql(m))
                    .await
                    .map_err(|e| StoreError::Config(format!("migration {} `{}` failed: {e}", m.version, m.name)))?;
                sqlx::query("INSERT INTO tessera_migrations (version, name, applied_at, checksum) VALUES ($1, $2, $3, $4)")
                    .bind(m.version)
                    .bind(m.name)
                    .bind(i64::try_from(tessera_core::ids::now_millis()).unwrap_or(i64::MAX))
                    .bind(&checksum)
                    .execute(&mut *tx)
                    .await?;
                applied += 1;
            }
            tx.commit().await?;
            Ok(applied)
        }

        /// Whether `tessera_migrations` has its `checksum` column (a database migrated by an
        /// older runner has not).
        async fn checksum_column(tx: &mut Tx) -> Result<bool, StoreError> {
            let n: i64 = sqlx::query_scalar(CHECKSUM_COLUMN).fetch_one(&mut **tx).await?;
            Ok(n > 0)
        }

        /// Splits `limit + 1` fetched rows into a page and its next cursor.
        fn paginate<T>(mut items: Vec<T>, limit: i64, cursor_of: impl Fn(&T) -> String) -> Page<T> {
            let limit = usize::try_from(limit).unwrap_or(usize::MAX);
            let next_cursor = if items.len() > limit {
                items.truncate(limit);
                items.last().map(cursor_of)
            } else {
                None
            };
            Page { items, next_cursor }
        }

        /// The row of `table` with this id in the agency (`NotFound` if none), inside `tx`.
        async fn fetch_by_id<T>(
            tx: &mut Tx,
            cols: &str,
            table: &str,
            agency: &AgencyId,
            id: &str,
            row: fn(&DbRow) -> Result<T, StoreError>,
        ) -> Result<T, StoreError> {
            let found = sqlx::query(&format!("SELECT {cols} FROM {table} WHERE agency_id = $1 AND id = $2"))
                .bind(agency.as_str())
                .bind(id)
                .fetch_optional(&mut **tx)
                .await?
                .ok_or(StoreError::NotFound)?;
            row(&found)
        }

        /// Appends one event to the agency's chain, inside `tx`.
        async fn append_event(tx: &mut Tx, agency: &AgencyId, r: &AuditRecord) -> Result<AuditEvent, StoreError> {
            let links = append_events(tx, agency, &[r]).await?;
            let Some(&(seq, prev_hash, hash)) = links.first() else {
                return Err(StoreError::Corrupt("no audit event appended".into()));
            };
            Ok(AuditEvent {
                seq,
                agency_id: agency.clone(),
                id: r.id.clone(),
                at: r.at,
                actor: r.actor.clone(),
                on_behalf_of: r.on_behalf_of.clone(),
                action: r.action.clone(),
                target: r.target.clone(),
                outcome: r.outcome,
                request_id: r.request_id.clone(),
                ip: r.ip.clone(),
                user_agent: r.user_agent.clone(),
                detail: r.detail.clone(),
                prev_hash,
                hash,
            })
        }

        /// Appends events to one agency's chain inside `tx`: the head is moved once (its row
        /// lock queues concurrent writers of the agency, so the chain never forks), the hashes
        /// are chained here, and the rows go in a few multi-row inserts (group commit of
        /// hot-path events such as token issue). Returns each event's (seq, prev, hash).
        async fn append_events(tx: &mut Tx, agency: &AgencyId, records: &[&AuditRecord]) -> Result<Vec<(i64, ChainHash, ChainHash)>, StoreError> {
            let Ok(n) = i64::try_from(records.len()) else {
                return Err(StoreError::Corrupt("too many audit events in one batch".into()));
            };
            if n == 0 {
                return Ok(Vec::new());
            }
            const BUMP: &str = "UPDATE audit_heads SET seq = seq + $2 WHERE agency_id = $1 RETURNING seq, hash";
            let head = sqlx::query(BUMP).bind(agency.as_str()).bind(n).fetch_optional(&mut **tx).await?;
            let row = match head {
                Some(row) => row,
                None => {
                    sqlx::query("INSERT INTO audit_heads (agency_id, seq, hash) VALUES ($1, 0, $2) ON CONFLICT (agency_id) DO NOTHING")
                        .bind(agency.as_str())
                        .bind(ChainHash::GENESIS.0.to_vec())
                        .execute(&mut **tx)
                        .await?;
                    sqlx::query(BUMP).bind(agency.as_str()).bind(n).fetch_one(&mut **tx).await?
                }
            };
            let prev: Vec<u8> = row.try_get("hash")?;
            let mut prev = ChainHash::from_slice(&prev).ok_or_else(|| StoreError::Corrupt("audit head hash".into()))?;
            let last: i64 = row.try_get("seq")?;
            let first = last - n + 1;
            let mut chained = Vec::with_capacity(records.len());
            for (i, r) in records.iter().enumerate() {
                let seq = first + i64::try_from(i).unwrap_or(0);
                let hash = chain_hash(seq, agency, r, &prev);
                chained.push((seq, *r, prev, hash));
                prev = hash;
            }
            sqlx::query("UPDATE audit_heads SET hash = $2 WHERE agency_id = $1")
                .bind(agency.as_str())
                .bind(prev.0.to_vec())
                .execute(&mut **tx)
                .await?;
            const COLS: usize = 15;
            // Small chunks: SQLite resolves each `$n` by name, so cost grows with the square
            // of the parameters in one statement.
            for chunk in chained.chunks(8) {
                let values = (0..chunk.len())
                    .map(|i| format!("({})", placeholders(i * COLS + 1, COLS)))
                    .collect::<Vec<_>>()
                    .join(", ");
                let sql = format!(
                    "INSERT INTO audit_events (agency_id, seq, id, at, actor, on_behalf_of, action, target, outcome, request_id, ip, user_agent, detail, prev_hash, hash) VALUES {values}"
                );
                let mut q = sqlx::query(&sql);
                for (seq, r, prev, hash) in chunk {
                    q = q
                        .bind(agency.as_str())
                        .bind(*seq)
                        .bind(r.id.as_str())
                        .bind(r.at)
                        .bind(&r.actor)
                        .bind(&r.on_behalf_of)
                        .bind(&r.action)
                        .bind(&r.target)
                        .bind(r.outcome.as_str())
                        .bind(&r.request_id)
                        .bind(&r.ip)
                        .bind(&r.user_agent)
                        .bind(r.detail.to_string())
                        .bind(prev.0.to_vec())
                        .bind(hash.0.to_vec());
                }
                q.execute(&mut **tx).await?;
            }
            Ok(chained.into_iter().map(|(seq, _, prev, hash)| (seq, prev, hash)).collect())
        }

        /// Bumps the global revision and records what changed, inside `tx`.
        async fn record_change(tx: &mut Tx, agency: &AgencyId, kind: &str, entity: &str, at: i64) -> Result<i64, StoreError> {
            let rev: i64 = sqlx::query("UPDATE revision SET value = value + 1 WHERE id = 1 RETURNING value")
                .fetch_one(&mut **tx)
                .await?
                .try_get("value")?;
            sqlx::query("INSERT INTO change_log (agency_id, revision, kind, entity, at) VALUES ($1, $2, $3, $4, $5)")
                .bind(agency.as_str())
                .bind(rev)
                .bind(kind)
                .bind(entity)
                .bind(at)
                .execute(&mut **tx)
                .await?;
            Ok(rev)
        }

        /// Commits a write with its audit event and, for decision-changing writes, its change.
        async fn finish(mut tx: Tx, agency: &AgencyId, audit: &AuditRecord, change: Option<(&str, &str)>) -> Result<(), StoreError> {
            append_event(&mut tx, agency, audit).await?;
            if let Some((kind, entity)) = change {
                record_change(&mut tx, agency, kind, entity, audit.at).await?;
            }
            tx.commit().await?;
            Ok(())
        }

        /// Inserts `b` into `agency` (the scope's, never the record's own `agency_id`).
        ///
        /// A custom role (`rol_…`) must exist in the agency, else `Reference`. The role row is
        /// read under `KEY_SHARE` (a foreign-key check by hand): a concurrent `delete_role`
        /// waits for this transaction and then sees the binding, so no binding outlives its role.
        async fn insert_binding(tx: &mut Tx, agency: &AgencyId, b: &Binding) -> Result<(), StoreError> {
            if b.role.starts_with(RoleId::PREFIX) {
                sqlx::query(&format!("SELECT id FROM roles WHERE agency_id = $1 AND id = $2 {KEY_SHARE}"))
                    .bind(agency.as_str())
                    .bind(&b.role)
                    .fetch_optional(&mut **tx)
                    .await?
                    .ok_or(StoreError::Reference)?;
            }
            sqlx::query("INSERT INTO bindings (agency_id, id, principal, role, account_id, account_key, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
                .bind(agency.as_str())
                .bind(b.id.as_str())
                .bind(b.principal.as_str())
                .bind(&b.role)
                .bind(b.account.as_ref().map(AccountId::as_str))
                .bind(b.account.as_ref().map(AccountId::as_str).unwrap_or(""))
                .bind(&b.created_by)
                .bind(b.created_at)
                .execute(&mut **tx)
                .await?;
            Ok(())
        }

        /// Inserts `k` into `agency` (the scope's, never the record's own `agency_id`).
        async fn insert_key(tx: &mut Tx, agency: &AgencyId, k: &ApiKey, s: &SecretHashRecord) -> Result<(), StoreError> {
            sqlx::query(&format!("INSERT INTO api_keys ({KEY_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, NULL, NULL)"))
                .bind(agency.as_str())
                .bind(k.id.as_str())
                .bind(&k.name)
                .bind(k.account.as_ref().map(AccountId::as_str))
                .bind(serde_json::to_string(&k.scopes)?)
                .bind(&k.created_by)
                .bind(k.created_at)
                .bind(k.expires_at)
                .execute(&mut **tx)
                .await?;
            insert_secret(tx, agency, &k.id, s, k.created_at).await
        }

        async fn insert_secret(tx: &mut Tx, agency: &AgencyId, key: &KeyId, s: &SecretHashRecord, now: i64) -> Result<(), StoreError> {
            sqlx::query("INSERT INTO api_key_secrets (agency_id, key_id, secret_hash, pepper_version, valid_until, created_at) VALUES ($1, $2, $3, $4, NULL, $5)")
                .bind(agency.as_str())
                .bind(key.as_str())
                .bind(&s.hash)
                .bind(s.pepper_version)
                .bind(now)
                .execute(&mut **tx)
                .await?;
            Ok(())
        }

        async fn fetch_key(tx: &mut Tx, agency: &AgencyId, id: &KeyId) -> Result<ApiKey, StoreError> {
            fetch_by_id(tx, KEY_COLS, "api_keys", agency, id.as_str(), key_row).await
        }

        /// Removes the bindings held by, and the secrets of, keys matching `filter`.
        async fn drop_key_grants(tx: &mut Tx, agency: &AgencyId, key_filter: &str, arg: &str) -> Result<(), StoreError> {
            sqlx::query(&format!("DELETE FROM bindings WHERE agency_id = $1 AND principal IN (SELECT id FROM api_keys WHERE agency_id = $1 AND {key_filter})"))
                .bind(agency.as_str())
                .bind(arg)
                .execute(&mut **tx)
                .await?;
            sqlx::query(&format!("DELETE FROM api_key_secrets WHERE agency_id = $1 AND key_id IN (SELECT id FROM api_keys WHERE agency_id = $1 AND {key_filter})"))
                .bind(agency.as_str())
                .bind(arg)
                .execute(&mut **tx)
                .await?;
            Ok(())
        }

        impl $store {
            /// One page of a tenant table keyed by `id`, in id order after the cursor.
            async fn tenant_page<T>(
                &self,
                t: &TenantScope,
                page: &PageRequest,
                cols: &str,
                table: &str,
                row: fn(&DbRow) -> Result<T, StoreError>,
                cursor_of: fn(&T) -> String,
            ) -> Result<Page<T>, StoreError> {
                let limit = page_limit(page.limit);
                let mut tx = self.begin_tenant(t.agency(), false).await?;
                let rows = sqlx::query(&format!("SELECT {cols} FROM {table} WHERE agency_id = $1 AND id > $2 ORDER BY id LIMIT $3"))
                    .bind(t.agency().as_str())
                    .bind(page.cursor.as_deref().unwrap_or(""))
                    .bind(limit + 1)
                    .fetch_all(&mut *tx)
                    .await?;
                let items = rows.iter().map(row).collect::<Result<Vec<_>, _>>()?;
                Ok(paginate(items, limit, cursor_of))
            }
        }

        #[async_trait]
        impl PlatformAdmin for $store {
            fn backend(&self) -> &'static str {
                $backend
            }

            async fn migrate(&self) -> Result<usize, StoreError> {
                self.migrate_impl().await
            }

            async fn ping(&self) -> Result<(), StoreError> {
                sqlx::query("SELECT 1").execute(self.read_pool()).await?;
                Ok(())
            }

            async fn platform_agency(&self) -> Result<Option<Agency>, StoreError> {
                let row = sqlx::query(&format!("SELECT {AGENCY_COLS} FROM agencies WHERE is_platform"))
                    .fetch_optional(self.read_pool())
                    .await?;
                row.as_ref().map(agency_row).transpose()
            }

            async fn bootstrap(&self, b: Bootstrap) -> Result<bool, StoreError> {
                let mut tx = self.begin_tenant(&b.platform.id, true).await?;
                let existing = sqlx::query("SELECT id FROM agencies WHERE is_platform").fetch_optional(&mut *tx).await?;
                if existing.is_some() {
                    return Ok(false);
                }
                insert_agency(&mut tx, &b.platform).await?;
                insert_key(&mut tx, &b.platform.id, &b.key, &b.secret).await?;
                insert_binding(&mut tx, &b.platform.id, &b.binding).await?;
                finish(tx, &b.platform.id, &b.audit, Some(("bootstrap", b.platform.id.as_str()))).await?;
                Ok(true)
            }

            async fn create_agency(&self, a: &Agency, audit: &AuditRecord) -> Result<(), StoreError> {
                let mut tx = self.begin_tenant(&a.id, true).await?;
                insert_agency(&mut tx, a).await?;
                finish(tx, &a.id, audit, Some(("agency.create", a.id.as_str()))).await
            }

            async fn get_agency(&self, id: &AgencyId) -> Result<Agency, StoreError> {
                let row = sqlx::query(&format!("SELECT {AGENCY_COLS} FROM agencies WHERE id = $1 AND status <> 'deleted'"))
                    .bind(id.as_str())
                    .fetch_optional(self.read_pool())
                    .await?
                    .ok_or(StoreError::NotFound)?;
                agency_row(&row)
            }

            async fn list_agencies(&self, page: &PageRequest) -> Result<Page<Agency>, StoreError> {
                let limit = page_limit(page.limit);
                let rows = sqlx::query(&format!("SELECT {AGENCY_COLS} FROM agencies WHERE NOT is_platform AND status <> 'deleted' AND id > $1 ORDER BY id LIMIT $2"))
                    .bind(page.cursor.as_deref().unwrap_or(""))
                    .bind(limit + 1)
                    .fetch_all(self.read_pool())
                    .await?;
                let items = rows.iter().map(agency_row).collect::<Result<Vec<_>, _>>()?;
                Ok(paginate(items, limit, |a| a.id.to_string()))
            }

            async fn update_agency(&self, id: &AgencyId, name: &str, now: i64, audit: &AuditRecord) -> Result<Agency, StoreError> {
                let mut tx = self.begin_tenant(id, true).await?;
                let row = sqlx::query(&format!("UPDATE agencies SET name = $2, updated_at = $3 WHERE id = $1 AND status <> 'deleted' RETURNING {AGENCY_COLS}"))
                    .bind(id.as_str())
                    .bind(name)
                    .bind(now)
                    .fetch_optional(&mut *tx)
                    .await?
                    .ok_or(StoreError::NotFound)?;
                let agency = agency_row(&row)?;
                finish(tx, id, audit, None).await?;
                Ok(agency)
            }

            async fn delete_agency(&self, id: &AgencyId, now: i64, audit: &AuditRecord) -> Result<(), StoreError> {
                let mut tx = self.begin_tenant(id, true).await?;
                let done = sqlx::query("UPDATE agencies SET status = 'deleted', updated_at = $2 WHERE id = $1 AND status <> 'deleted' AND NOT is_platform")
                    .bind(id.as_str())
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound);
                }
                sqlx::query("UPDATE api_keys SET revoked_at = $2 WHERE agency_id = $1 AND revoked_at IS NULL")
                    .bind(id.as_str())
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("DELETE FROM api_key_secrets WHERE agency_id = $1").bind(id.as_str()).execute(&mut *tx).await?;
                finish(tx, id, audit, Some(("agency.delete", id.as_str()))).await
            }
        }

        #[async_trait]
        impl KeyRing for $store {
            async fn signing_keys(&self) -> Result<Vec<SigningKeyRow>, StoreError> {
                let rows = sqlx::query(&format!("SELECT {SIGNING_KEY_COLS} FROM signing_keys ORDER BY created_at, kid"))
                    .fetch_all(self.read_pool())
                    .await?;
                let mut keys = rows.iter().map(signing_key_row).collect::<Result<Vec<_>, _>>()?;
                // The database orders `kid` by its collation (PostgreSQL's may not be bytewise):
                // settle on bytewise, the same on both backends.
                keys.sort_by(|a, b| (a.created_at, a.kid.as_bytes()).cmp(&(b.created_at, b.kid.as_bytes())));
                Ok(keys)
            }

            async fn insert_signing_key(&self, row: &SigningKeyRow) -> Result<(), StoreError> {
                sqlx::query(&format!("INSERT INTO signing_keys ({SIGNING_KEY_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"))
                    .bind(&row.kid)
                    .bind(&row.alg)
                    .bind(&row.state)
                    .bind(row.created_at)
                    .bind(row.activates_at)
                    .bind(row.retires_at)
                    .bind(row.expires_at)
                    .bind(&row.public_jwk)
                    .bind(&row.sealed_private)
                    .execute(self.write_pool())
                    .await
                    .map_err(|e| match StoreError::from(e) {
                        // The primary key is the table's only uniqueness rule.
                        StoreError::Conflict { .. } => StoreError::Conflict { constraint: "kid".to_owned() },
                        other => other,
                    })?;
                Ok(())
            }

            async fn update_signing_key(
                &self,
                kid: &str,
                expected_states: &[&str],
                state: &str,
                retires_at: Option<i64>,
                expires_at: Option<i64>,
                sealed_private: Option<&[u8]>,
            ) -> Result<bool, StoreError> {
                if expected_states.is_empty() {
                    return Ok(false);
                }
                // One statement: the state check and the write are atomic. On PostgreSQL a
                // concurrent update of the row makes this one wait, then re-check the state on
                // the committed row, so of racing callers at most one matches.
                let sql = format!(
                    "UPDATE signing_keys SET state = $2, retires_at = COALESCE($3, retires_at), \
                     expires_at = COALESCE($4, expires_at), sealed_private = COALESCE($5, sealed_private) \
                     WHERE kid = $1 AND state IN ({})",
                    placeholders(6, expected_states.len())
                );
                let mut q = sqlx::query(&sql).bind(kid).bind(state).bind(retires_at).bind(expires_at).bind(sealed_private);
                for s in expected_states {
                    q = q.bind(*s);
                }
                Ok(q.execute(self.write_pool()).await?.rows_affected() > 0)
            }

            async fn delete_signing_key(&self, kid: &str, expected_states: &[&str]) -> Result<bool, StoreError> {
                if expected_states.is_empty() {
                    return Ok(false);
                }
                let sql = format!("DELETE FROM signing_keys WHERE kid = $1 AND state IN ({})", placeholders(2, expected_states.len()));
                let mut q = sqlx::query(&sql).bind(kid);
                for s in expected_states {
                    q = q.bind(*s);
                }
                Ok(q.execute(self.write_pool()).await?.rows_affected() > 0)
            }
        }

        #[async_trait]
        impl ChangeFeed for $store {
            async fn revision(&self) -> Result<i64, StoreError> {
                Ok(sqlx::query("SELECT value FROM revision WHERE id = 1").fetch_one(self.read_pool()).await?.try_get("value")?)
            }

            async fn authz_snapshot(&self, t: &TenantScope, now: i64) -> Result<AuthzSnapshot, StoreError> {
                let agency = t.agency().as_str();
                // One snapshot for every read: a write is in all of them or in none.
                let mut tx = self.begin_snapshot(t.agency()).await?;
                let revision: i64 = sqlx::query("SELECT value FROM revision WHERE id = 1")
                    .fetch_one(&mut *tx)
                    .await?
                    .try_get("value")?;
                let roles = sqlx::query(&format!("SELECT {ROLE_COLS} FROM roles WHERE agency_id = $1 ORDER BY id"))
                    .bind(agency)
                    .fetch_all(&mut *tx)
                    .await?
                    .iter()
                    .map(role_row)
                    .collect::<Result<Vec<_>, _>>()?;
                let bindings = sqlx::query(&format!("SELECT {BINDING_COLS} FROM bindings WHERE agency_id = $1 ORDER BY id"))
                    .bind(agency)
                    .fetch_all(&mut *tx)
                    .await?
                    .iter()
                    .map(binding_row)
                    .collect::<Result<Vec<_>, _>>()?;
                let policies = sqlx::query(&format!("SELECT {POLICY_COLS} FROM policies WHERE agency_id = $1 ORDER BY id"))
                    .bind(agency)
                    .fetch_all(&mut *tx)
                    .await?
                    .iter()
                    .map(policy_row)
                    .collect::<Result<Vec<_>, _>>()?;
                let revocations = revocations_in(&mut tx, t.agency(), now).await?;
                tx.commit().await?;
                Ok(AuthzSnapshot { revision, roles, bindings, policies, revocations })
            }

            async fn changes_since(&self, after_revision: i64, limit: u32) -> Result<Vec<Change>, StoreError> {
                let mut tx = self.begin_feed().await?;
                let rows = sqlx::query("SELECT agency_id, revision, kind, entity FROM change_log WHERE revision > $1 ORDER BY revision LIMIT $2")
                    .bind(after_revision)
                    .bind(i64::from(limit.clamp(1, MAX_FEED)))
                    .fetch_all(&mut *tx)
                    .await?;
                tx.commit().await?;
                rows.iter().map(change_row).collect()
            }
        }

        #[async_trait]
        impl TenantData for $store {
            async fn create_account(&self, t: &TenantScope, a: &Account, audit: &AuditRecord) -> Result<(), StoreError> {
                let mut tx = self.begin_tenant(t.agency(), true).await?;
                sqlx::query(&format!("INSERT INTO accounts ({ACCOUNT_COLS}) VALUES ($1, $2, $3, $4, $5)"))
                    .bind(t.agency().as_str())
                    .bind(a.id.as_str())
                    .bind(&a.name)
                    .bind(a.created_at)
                    .bind(a.updated_at)
                    .execute(&mut *tx)
                    .await?;
                finish(tx, t.agency(), audit, None).await
            }

            async fn get_account(&self, t: &TenantScope, id: &AccountId) -> Result<Account, StoreError> {
                let mut tx = self.begin_tenant(t.agency(), false).await?;
                fetch_by_id(&mut tx, ACCOUNT_COLS, "accounts", t.agency(), id.as_str(), account_row).await
            }

            async fn list_accounts(&self, t: &TenantScope, page: &PageRequest) -> Result<Page<Account>, StoreError> {
                self.tenant_page(t, page, ACCOUNT_COLS, "accounts", account_row, |a| a.id.to_string()).await
            }

            async fn update_account(&self, t: &TenantScope, id: &AccountId, name: &str, now: i64, audit: &AuditRecord) -> Result<Account, StoreError> {
                let mut tx = self.begin_tenant(t.agency(), true).await?;
                let row = sqlx::query(&format!("UPDATE accounts SET name = $3, updated_at = $4 WHERE agency_id = $1 AND id = $2 RETURNING {ACCOUNT_COLS}"))
                    .bind(t.agency().as_str())
                    .bind(id.as_str())
                    .bind(name)
                    .bind(now)
                    .fetch_optional(&mut *tx)
                    .await?
                    .ok_or(StoreError::NotFound)?;
                let account = account_row(&row)?;
                finish(tx, t.agency(), audit, None).await?;
                Ok(account)
            }

            async fn delete_account(&self, t: &TenantScope, id: &AccountId, now: i64, audit: &AuditRecord) -> Result<(), StoreError> {
                let agency = t.agency().as_str();
                let mut tx = self.begin_tenant(t.agency(), true).await?;
                revoke_account_oauth(&mut tx, t.agency(), id, now).await?;
                drop_key_grants(&mut tx, t.agency(), "account_id = $2", id.as_str()).await?;
                sqlx::query("DELETE FROM api_keys WHERE agency_id = $1 AND account_id = $2").bind(agency).bind(id.as_str()).execute(&mut *tx).await?;
                sqlx::query("DELETE FROM bindings WHERE agency_id = $1 AND account_id = $2").bind(agency).bind(id.as_str()).execute(&mut *tx).await?;
                let done = sqlx::query("DELETE FROM accounts WHERE agency_id = $1 AND id = $2").bind(agency).bind(id.as_str()).execute(&mut *tx).await?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound);
                }
                finish(tx, t.agency(), audit, Some(("account.delete", id.as_str()))).await
            }

            async fn create_user(&self, t: &TenantScope, u: &NewUser, audit: &AuditRecord) -> Result<User, StoreError> {
                let mut tx = self.begin_tenant(t.agency(), true).await?;
                let row = sqlx::query(&format!(
                    "INSERT INTO users (agency_id, id, email, email_key, name, status, password_hash, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, 'active', $6, $7, $7) RETURNING {USER_COLS}"
                ))
                .bind(t.agency().as_str())
                .bind(u.id.as_str())
                .bind(u.email.trim())
                .bind(email_key(&u.email))
                .bind(&u.name)
                .bind(&u.password_hash)
                .bind(u.now)
                .fetch_one(&mut *tx)
                .await?;
                let user = user_row(&row)?;
                finish(tx, t.agency(), audit, None).await?;
                Ok(user)
            }

            async fn get_user(&self, t: &TenantScope, id: &UserId) -> Result<User, StoreError> {
                let mut tx = self.begin_tenant(t.agency(), false).await?;
                fetch_by_id(&mut tx, USER_COLS, "users", t.agency(), id.as_str(), user_row).await
            }

            async fn list_users(&self, t: &TenantScope, page: &PageRequest) -> Result<Page<User>, StoreError> {
                self.tenant_page(t, page, USER_COLS, "users", user_row, |u| u.id.to_string()).await
            }

            async fn update_user(&self, t: &TenantScope, id: &UserId, p: &UserPatch, now: i64, audit: &AuditRecord) -> Result<User, StoreError> {
                let mut tx = self.begin_tenant(t.agency(), true).await?;
                let row = sqlx::query(&format!(
                    "UPDATE users SET email = COALESCE($3, email), email_key = COALESCE($4, email_key), name = COALESCE($5, name), \
                     status = COALESCE($6, status), password_hash = COALESCE($7, password_hash), updated_at = $8 \
                     WHERE agency_id = $1 AND id = $2 RETURNING {USER_COLS}"
                ))
                .bind(t.agency().as_str())
                .bind(id.as_str())
                .bind(p.email.as_deref().map(str::trim))
                .bind(p.email.as_deref().map(email_key))
                .bind(&p.name)
                .bind(p.status.map(Status::as_str))
                .bind(&p.password_hash)
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or(StoreError::NotFound)?;
                let user = user_row(&row)?;
                let change = p.status.is_some().then_some(("user.status", id.as_str()));
                finish(tx, t.agency(), audit, change).await?;
                Ok(user)
            }

            async fn delete_user(&self, t: &TenantScope, id: &UserId, _now: i64, audit: &AuditRecord) -> Result<(), StoreError> {
                let agency = t.agency().as_str();
                let mut tx = self.begin_tenant(t.agency(), true).await?;
                sqlx::query("DELETE FROM bindings WHERE agency_id = $1 AND principal = $2").bind(agency).bind(id.as_str()).execute(&mut *tx).await?;
                let done = sqlx::query("DELETE FROM users WHERE agency_id = $1 AND id = $2").bind(agency).bind(id.as_str()).execute(&mut *tx).await?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound);
                }
                finish(tx, t.agency(), audit, Some(("user.delete", id.as_str()))).await
            }

            async fn create_binding(&self, t: &TenantScope, b: &Binding, audit: &AuditRecord) -> Result<(), StoreError> {
                let mut tx = self.begin_tenant(t.agency(), true).await?;
                insert_binding(&mut tx, t.agency(), b).await?;
                finish(tx, t.agency(), audit, Some(("binding.create", b.id.as_str()))).await
            }

            async fn get_binding(&self, t: &TenantScope, id: &BindingId) -> Result<Binding, StoreError> {
                let mut tx = self.begin_tenant(t.agency(), false).await?;
                fetch_by_id(&mut tx, BINDING_COLS, "bindings", t.agency(), id.as_str(), binding_row).await
            }

            async fn list_bindings(&self, t: &TenantScope, principal: Option<&PrincipalId>, page: &PageRequest) -> Result<Page<Binding>, StoreError> {
                let limit = page_limit(page.limit);
                let mut tx = self.begin_tenant(t.agency(), false).await?;
                let rows = sqlx::query(&format!("SELECT {BINDING_COLS} FROM bindings WHERE agency_id = $1 AND id > $2 AND ($3 IS NULL OR principal = $3) ORDER BY id LIMIT $4"))
                    .bind(t.agency().as_str())
                    .bind(page.cursor.as_deref().unwrap_or(""))
                    .bind(principal.map(PrincipalId::as_str))
                    .bind(limit + 1)
                    .fetch_all(&mut *tx)
                    .await?;
                let items = rows.iter().map(binding_row).collect::<Result<Vec<_>, _>>()?;
                Ok(paginate(items, limit, |b| b.id.to_string()))
            }

            async fn principal_bindings(&self, t: &TenantScope, principal: &PrincipalId) -> Result<Vec<Binding>, StoreError> {
                let mut tx = self.begin_tenant(t.agency(), false).await?;
                let rows = sqlx::query(&format!("SELECT {BINDING_COLS} FROM bindings WHERE agency_id = $1 AND principal = $2 ORDER BY id"))
                    .bind(t.agency().as_str())
                    .bind(principal.as_str())
                    .fetch_all(&mut *tx)
                    .await?;
                rows.iter().map(binding_row).collect()
            }

            async fn delete_binding(&self, t: &TenantScope, id: &BindingId, _now: i64, audit: &AuditRecord) -> Result<(), StoreError> {
                let mut tx = self.begin_tenant(t.agency(), true).await?;
                let done = sqlx::query("DELETE FROM bindings WHERE agency_id = $1 AND id = $2")
                    .bind(t.agency().as_str())
                    .bind(id.as_str())
                    .execute(&mut *tx)
                    .await?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound);
                }
                finish(tx, t.agency(), audit, Some(("binding.delete", id.as_str()))).await
            }

            async fn create_role(&self, t: &TenantScope, r: &Role, audit: &AuditRecord) -> Result<(), StoreError> {
                let mut tx = self.begin_tenant(t.agency(), true).await?;
                sqlx::query(&format!("INSERT INTO roles ({ROLE_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"))
                    .bind(t.agency().as_str())
                    .bind(r.id.as_str())
                    .bind(&r.name)
                    .bind(&r.description)
                    .bind(serde_json::to_string(&r.permissions)?)
                    .bind(&r.created_by)
                    .bind(r.created_at)
                    .bind(r.updated_at)
                    .execute(&mut *tx)
                    .await?;
                finish(tx, t.agency(), audit, Some(("role.create", r.id.as_str()))).await
            }

            async fn get_role(&self, t: &TenantScope, id: &RoleId) -> Result<Role, StoreError> {
                let mut tx = self.begin_tenant(t.agency(), false).await?;
                fetch_by_id(&mut tx, ROLE_COLS, "roles", t.agency(), id.as_str(), role_row).await
            }

            async fn list_roles(&self, t: &TenantScope, page: &PageRequest) -> Result<Page<Role>, StoreError> {
                self.tenant_page(t, page, ROLE_COLS, "roles", role_row, |r| r.id.to_string()).await
            }

            async fn update_role(&self, t: &TenantScope, id: &RoleId, p: &RolePatch, now: i64, audit: &AuditRecord) -> Result<Role, StoreError> {
                let permissions = p.permissions.as_ref().map(serde_json::to_string).transpose()?;
                let mut tx = self.begin_tenant(t.agency(), true).await?;
                let row = sqlx::query(&format!(
                    "UPDATE roles SET name = COALESCE($3, name), description = COALESCE($4, description), \
                     permissions = COALESCE($5, permissions), updated_at = $6 \
                     WHERE agency_id = $1 AND id = $2 RETURNING {ROLE_COLS}"
                ))
                .bind(t.agency().as_str())
                .bind(id.as_str())
                .bind(&p.name)
                .bind(&p.description)
                .bind(permissions)
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or(StoreError::NotFound)?;
                let role = role_row(&row)?;
                finish(tx, t.agency(), audit, Some(("role.update", id.as_str()))).await?;
                Ok(role)
            }

            async fn delete_role(&self, t: &TenantScope, id: &RoleId, remove_bindings: bool, _now: i64, audit: &AuditRecord) -> Result<u64, StoreError> {
                let agency = t.agency().as_str();
                let mut tx = self.begin_tenant(t.agency(), true).await?;
                // The role row first: its lock makes a concurrent binding insert (which holds
                // KEY_SHARE on it) finish before the bindings are counted below.
                let done = sqlx::query("DELETE FROM roles WHERE agency_id = $1 AND id = $2")
                    .bind(agency)
                    .bind(id.as_str())
                    .execute(&mut *tx)
                    .await?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound);
                }
                let removed = if remove_bindings {
                    sqlx::query("DELETE FROM bindings WHERE agency_id = $1 AND role = $2")
                        .bind(agency)
                        .bind(id.as_str())
                        .execute(&mut *tx)
                        .await?
                        .rows_affected()
                } else {
                    let in_use: i64 = sqlx::query("SELECT count(*) AS n FROM bindings WHERE agency_id = $1 AND role = $2")
                        .bind(agency)
                        .bind(id.as_str())
                        .fetch_one(&mut *tx)
                        .await?
                        .try_get("n")?;
                    if in_use > 0 {
                        // Dropping `tx` rolls the role's deletion back.
                        return Err(StoreError::Conflict { constraint: "role_in_use".to_owned() });
                    }
                    0
                };
                finish(tx, t.agency(), audit, Some(("role.delete", id.as_str()))).await?;
                Ok(removed)
            }

            async fn count_role_bindings(&self, t: &TenantScope, id: &RoleId) -> Result<u64, StoreError> {
                let mut tx = self.begin_tenant(t.agency(), false).await?;
                let n: i64 = sqlx::query("SELECT count(*) AS n FROM bindings WHERE agency_id = $1 AND role = $2")
                    .bind(t.agency().as_str())
                    .bind(id.as_str())
                    .fetch_one(&mut *tx)
                    .await?
                    .try_get("n")?;
                u64::try_from(n).map_err(|_| StoreError::Corrupt(format!("binding count {n}")))
            }

            async fn create_policy(&self, t: &TenantScope, p: &Policy, audit: &AuditRecord) -> Result<(), StoreError> {
                let mut tx = self.begin_tenant(t.agency(), true).await?;
                sqlx::query(&format!("INSERT INTO policies ({POLICY_COLS}) VALUES ($1, $2, $3, $4, $5, $6)"))
                    .bind(t.agency().as_str())
                    .bind(p.id.as_str())
                    .bind(&p.description)
                    .bind(&p.cedar)
                    .bind(&p.created_by)
                    .bind(p.created_at)
                    .execute(&mut *tx)
                    .await?;
                finish(tx, t.agency(), audit, Some(("policy.create", p.id.as_str()))).await
            }

            async fn get_policy(&self, t: &TenantScope, id: &PolicyId) -> Result<Policy, StoreError> {
                let mut tx = self.begin_tenant(t.agency(), false).await?;
                fetch_by_id(&mut tx, POLICY_COLS, "policies", t.agency(), id.as_str(), policy_row).await
            }

            async fn list_policies(&self, t: &TenantScope, page: &PageRequest) -> Result<Page<Policy>, StoreError> {
                self.tenant_page(t, page, POLICY_COLS, "policies", policy_row, |p| p.id.to_string()).await
            }

            async fn delete_policy(&self, t: &TenantScope, id: &PolicyId, _now: i64, audit: &AuditRecord) -> Result<(), StoreError> {
                let mut tx = self.begin_tenant(t.agency(), true).await?;
                let done = sqlx::query("DELETE FROM policies WHERE agency_id = $1 AND id = $2")
                    .bind(t.agency().as_str())
                    .bind(id.as_str())
                    .execute(&mut *tx)
                    .await?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound);
                }
                finish(tx, t.agency(), audit, Some(("policy.delete", id.as_str()))).await
            }

            async fn create_api_key(&self, t: &TenantScope, k: &ApiKey, secret: &SecretHashRecord, bindings: &[Binding], audit: &AuditRecord) -> Result<(), StoreError> {
                let mut tx = self.begin_tenant(t.agency(), true).await?;
                insert_key(&mut tx, t.agency(), k, secret).await?;
                for b in bindings {
                    insert_binding(&mut tx, t.agency(), b).await?;
                }
                finish(tx, t.agency(), audit, Some(("api_key.create", k.id.as_str()))).await
            }

            async fn get_api_key(&self, t: &TenantScope, id: &KeyId) -> Result<ApiKey, StoreError> {
                let mut tx = self.begin_tenant(t.agency(), false).await?;
                fetch_key(&mut tx, t.agency(), id).await
            }

            async fn list_api_keys(&self, t: &TenantScope, page: &PageRequest) -> Result<Page<ApiKey>, StoreError> {
                self.tenant_page(t, page, KEY_COLS, "api_keys", key_row, |k| k.id.to_string()).await
            }

            async fn revoke_api_key(&self, t: &TenantScope, id: &KeyId, now: i64, audit: &AuditRecord) -> Result<ApiKey, StoreError> {
                let mut tx = self.begin_tenant(t.agency(), true).await?;
                let key = fetch_key(&mut tx, t.agency(), id).await?;
                if key.revoked_at.is_some() {
                    return Ok(key);
                }
                drop_key_grants(&mut tx, t.agency(), "id = $2", id.as_str()).await?;
                sqlx::query("UPDATE api_keys SET revoked_at = $3 WHERE agency_id = $1 AND id = $2")
                    .bind(t.agency().as_str())
                    .bind(id.as_str())
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                let key = fetch_key(&mut tx, t.agency(), id).await?;
                finish(tx, t.agency(), audit, Some(("api_key.revoke", id.as_str()))).await?;
                Ok(key)
            }

            async fn rotate_api_key(&self, t: &TenantScope, id: &KeyId, secret: &SecretHashRecord, old_valid_until: i64, now: i64, audit: &AuditRecord) -> Result<ApiKey, StoreError> {
                let agency = t.agency().as_str();
                let mut tx = self.begin_tenant(t.agency(), true).await?;
                let key = fetch_key(&mut tx, t.agency(), id).await?;
                if key.revoked_at.is_some() {
                    return Err(StoreError::NotFound);
                }
                // Secrets already past their grace are dropped; the rest end at `old_valid_until` at the latest.
                sqlx::query("DELETE FROM api_key_secrets WHERE agency_id = $1 AND key_id = $2 AND valid_until IS NOT NULL AND valid_until <= $3")
                    .bind(agency).bind(id.as_str()).bind(now).execute(&mut *tx).await?;
                sqlx::query("UPDATE api_key_secrets SET valid_until = $3 WHERE agency_id = $1 AND key_id = $2 AND (valid_until IS NULL OR valid_until > $3)")
                    .bind(agency).bind(id.as_str()).bind(old_valid_until).execute(&mut *tx).await?;
                insert_secret(&mut tx, t.agency(), id, secret, now).await?;
                sqlx::query("UPDATE api_keys SET rotated_at = $3 WHERE agency_id = $1 AND id = $2")
                    .bind(agency).bind(id.as_str()).bind(now).execute(&mut *tx).await?;
                let key = fetch_key(&mut tx, t.agency(), id).await?;
                finish(tx, t.agency(), audit, Some(("api_key.rotate", id.as_str()))).await?;
                Ok(key)
            }

            async fn touch_api_keys(&self, uses: &[(TenantScope, KeyId, i64)]) -> Result<(), StoreError> {
                for (t, key, at) in uses {
                    let agency = t.agency();
                    let mut tx = self.begin_tenant(agency, true).await?;
                    sqlx::query("UPDATE api_keys SET last_used_at = $3 WHERE agency_id = $1 AND id = $2 AND (last_used_at IS NULL OR last_used_at < $3)")
                        .bind(agency.as_str())
                        .bind(key.as_str())
                        .bind(*at)
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await?;
                }
                Ok(())
            }

            async fn create_app(&self, t: &TenantScope, app: &App, secret: Option<&SecretHashRecord>, audit: &AuditRecord) -> Result<(), StoreError> {
                self.create_app_impl(t, app, secret, audit).await
            }

            async fn get_app(&self, t: &TenantScope, id: &AppId) -> Result<App, StoreError> {
                self.get_app_impl(t, id).await
            }

            async fn list_apps(&self, t: &TenantScope, page: &PageRequest) -> Result<Page<App>, StoreError> {
                self.list_apps_impl(t, page).await
            }

            async fn delete_app(&self, t: &TenantScope, id: &AppId, now: i64, audit: &AuditRecord) -> Result<App, StoreError> {
                self.delete_app_impl(t, id, now, audit).await
            }

            async fn rotate_app_secret(&self, t: &TenantScope, id: &AppId, secret: &SecretHashRecord, old_valid_until: i64, now: i64, audit: &AuditRecord) -> Result<App, StoreError> {
                self.rotate_app_secret_impl(t, id, secret, old_valid_until, now, audit).await
            }

            async fn create_installation(&self, t: &TenantScope, ins: &Installation, audit: &AuditRecord) -> Result<(), StoreError> {
                self.create_installation_impl(t, ins, audit).await
            }

            async fn get_installation(&self, t: &TenantScope, id: &InstallationId) -> Result<Installation, StoreError> {
                self.get_installation_impl(t, id).await
            }

            async fn list_installations(&self, t: &TenantScope, account: Option<&AccountId>, page: &PageRequest) -> Result<Page<Installation>, StoreError> {
                self.list_installations_impl(t, account, page).await
            }

            async fn revoke_installation(&self, t: &TenantScope, id: &InstallationId, now: i64, audit: &AuditRecord) -> Result<Installation, StoreError> {
                self.revoke_installation_impl(t, id, now, audit).await
            }

            async fn create_code(&self, t: &TenantScope, code: &AuthCode) -> Result<(), StoreError> {
                self.create_code_impl(t, code).await
            }

            async fn create_grant(&self, t: &TenantScope, grant: &Grant, refresh: Option<&NewRefreshToken>, audit: &AuditRecord) -> Result<(), StoreError> {
                self.create_grant_impl(t, grant, refresh, audit).await
            }

            async fn get_grant(&self, t: &TenantScope, id: &str) -> Result<Grant, StoreError> {
                self.get_grant_impl(t, id).await
            }

            async fn revoke_grant(&self, t: &TenantScope, id: &str, now: i64, audit: &AuditRecord) -> Result<bool, StoreError> {
                self.revoke_grant_impl(t, id, now, audit).await
            }

            async fn rotate_refresh_token(&self, t: &TenantScope, old_hash: &[u8], new: &NewRefreshToken, now: i64, grace_ms: i64, audit: &AuditRecord) -> Result<RefreshUse, StoreError> {
                self.rotate_refresh_token_impl(t, old_hash, new, now, grace_ms, audit).await
            }

            async fn revoke_access_token(&self, t: &TenantScope, jti: &str, expires_at: i64, audit: &AuditRecord) -> Result<(), StoreError> {
                self.revoke_access_token_impl(t, jti, expires_at, audit).await
            }
        }

        #[async_trait]
        impl Lookups for $store {
            async fn find_key_by_secret(&self, hash: &[u8]) -> Result<Option<(KeySecretMatch, TenantScope)>, StoreError> {
                let Some(row) = self.find_key_impl(hash).await? else { return Ok(None) };
                let found = KeySecretMatch {
                    agency: col(&row, "agency_id")?,
                    key: col(&row, "key_id")?,
                    valid_until: row.try_get("valid_until")?,
                };
                let scope = TenantScope::derived(found.agency.clone());
                Ok(Some((found, scope)))
            }

            async fn find_client(&self, id: &AppId) -> Result<Option<(ClientRecord, TenantScope)>, StoreError> {
                self.find_client_impl(id).await
            }

            async fn client_installations(&self, app: &AppId) -> Result<Vec<(Installation, TenantScope)>, StoreError> {
                self.client_installations_impl(app).await
            }

            async fn redeem_code(&self, hash: &[u8], now: i64) -> Result<Option<(CodeRedemption, TenantScope)>, StoreError> {
                self.redeem_code_impl(hash, now).await
            }

            async fn find_refresh_token(&self, hash: &[u8]) -> Result<Option<(RefreshToken, Grant, TenantScope)>, StoreError> {
                self.find_refresh_token_impl(hash).await
            }

            async fn find_users_by_email(&self, email: &str) -> Result<Vec<(UserCredential, TenantScope)>, StoreError> {
                self.find_users_by_email_impl(email).await
            }
        }

        #[async_trait]
        impl AuditLog for $store {
            async fn append_audit(&self, t: &TenantScope, audit: &AuditRecord) -> Result<AuditEvent, StoreError> {
                let mut tx = self.begin_tenant(t.agency(), true).await?;
                let e = append_event(&mut tx, t.agency(), audit).await?;
                tx.commit().await?;
                Ok(e)
            }

            async fn list_audit(&self, t: &TenantScope, f: &AuditFilter, page: &PageRequest) -> Result<Page<AuditEvent>, StoreError> {
                let limit = page_limit(page.limit);
                let after_seq: i64 = match page.cursor.as_deref() {
                    None => 0,
                    Some(c) => c.parse().map_err(|_| StoreError::NotFound)?,
                };
                let mut tx = self.begin_tenant(t.agency(), false).await?;
                let rows = sqlx::query(&format!(
                    "SELECT {EVENT_COLS} FROM audit_events WHERE agency_id = $1 AND seq > $2 \
                     AND ($3 IS NULL OR at >= $3) AND ($4 IS NULL OR actor = $4) AND ($5 IS NULL OR action = $5) \
                     ORDER BY seq LIMIT $6"
                ))
                .bind(t.agency().as_str())
                .bind(after_seq)
                .bind(f.after)
                .bind(&f.actor)
                .bind(&f.action)
                .bind(limit + 1)
                .fetch_all(&mut *tx)
                .await?;
                let items = rows.iter().map(event_row).collect::<Result<Vec<_>, _>>()?;
                Ok(paginate(items, limit, |e| e.seq.to_string()))
            }

            async fn audit_chain(&self, t: &TenantScope, after_seq: i64, limit: u32) -> Result<Vec<AuditEvent>, StoreError> {
                let mut tx = self.begin_tenant(t.agency(), false).await?;
                let rows = sqlx::query(&format!("SELECT {EVENT_COLS} FROM audit_events WHERE agency_id = $1 AND seq > $2 ORDER BY seq LIMIT $3"))
                    .bind(t.agency().as_str())
                    .bind(after_seq)
                    .bind(i64::from(limit.max(1)))
                    .fetch_all(&mut *tx)
                    .await?;
                rows.iter().map(event_row).collect()
            }

            async fn append_audit_batch(&self, events: &[(TenantScope, AuditRecord)]) -> Result<(), StoreError> {
                self.append_audit_batch_impl(events).await
            }
        }

        async fn insert_agency(tx: &mut Tx, a: &Agency) -> Result<(), StoreError> {
            sqlx::query(&format!("INSERT INTO agencies ({AGENCY_COLS}) VALUES ($1, $2, $3, $4, $5, $6)"))
                .bind(a.id.as_str())
                .bind(&a.name)
                .bind(a.status.as_str())
                .bind(a.is_platform)
                .bind(a.created_at)
                .bind(a.updated_at)
                .execute(&mut **tx)
                .await?;
            Ok(())
        }
    };
}

pub(crate) use impl_store;
