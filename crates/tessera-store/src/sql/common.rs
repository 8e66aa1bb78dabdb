//! Row decoding and paging shared by every aggregate: typed columns, `fetch_by_id`, one
//! page of a tenant table.
//!
//! INVARIANT: a page fetches `limit + 1` rows, so `next_cursor` is `None` exactly on the last.

macro_rules! common {
    ($store:ty) => {
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
    };
}

pub(crate) use common;
