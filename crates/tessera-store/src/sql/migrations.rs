//! The migration runner: applies what `tessera_migrations` does not record, with each
//! version's checksum.
//!
//! INVARIANT: an applied version whose SQL no longer matches its checksum refuses the start
//! (`MigrationEdited`) before anything is applied; rows from before checksums get backfilled.

macro_rules! migrations {
    ($store:ty, $backend:literal) => {
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
    };
}

pub(crate) use migrations;
