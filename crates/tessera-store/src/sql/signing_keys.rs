//! The token-signing key ring: global rows, no tenant, no audit event.
//!
//! INVARIANT: each write is one compare-and-set statement on the row's state.

macro_rules! signing_keys {
    ($store:ty) => {
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
    };
}

pub(crate) use signing_keys;
