//! Storage errors, normalised in the backend so that no caller reads a driver's error code.

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No such row in this tenant (or in any).
    #[error("not found")]
    NotFound,
    /// A uniqueness rule was broken.
    #[error("conflict on `{constraint}`")]
    Conflict {
        /// What was duplicated, such as `email`.
        constraint: String,
    },
    /// A write names an object that does not exist (or belongs to another tenant).
    #[error("reference to a missing object")]
    Reference,
    /// The database refuses the server's configuration (role, url, migrations).
    #[error("{0}")]
    Config(String),
    /// An applied migration's SQL no longer matches the checksum recorded when it ran: its
    /// file was edited after release. Restore it and add a new migration instead.
    #[error("migration {version} (`{file}`) was edited after it was applied: its SQL no longer matches the checksum recorded then; restore the file and put the change in a new migration")]
    MigrationEdited {
        /// The migration's version.
        version: i64,
        /// Its SQL file, such as `migrations/sqlite/0002_roles_policies.sql`.
        file: String,
    },
    /// The database could not be reached or failed.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A stored row could not be read back (corruption or a bug).
    #[error("corrupt row: {0}")]
    Corrupt(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::RowNotFound => Self::NotFound,
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                let constraint = db.constraint().map(str::to_owned).unwrap_or_else(|| {
                    // SQLite names the columns in the message: "UNIQUE constraint failed: users.agency_id, users.email_key"
                    db.message()
                        .rsplit(": ")
                        .next()
                        .unwrap_or("unique")
                        .to_owned()
                });
                Self::Conflict {
                    constraint: normalise_constraint(&constraint),
                }
            }
            sqlx::Error::Database(db) if db.is_foreign_key_violation() => Self::Reference,
            sqlx::Error::ColumnDecode { .. }
            | sqlx::Error::Decode(_)
            | sqlx::Error::ColumnNotFound(_) => Self::Corrupt(e.to_string()),
            other => Self::Unavailable(other.to_string()),
        }
    }
}

/// Maps backend-specific constraint names to one stable name per rule.
fn normalise_constraint(raw: &str) -> String {
    let known = [
        // Before the others: SQLite names the columns, and `installations.account_key`
        // must not read as anything else.
        ("installation", "installation"),
        // A resource server's identifier (`resource_servers_identifier`, `resource_servers.identifier`).
        ("identifier", "identifier"),
        ("email", "email"),
        ("binding", "binding"),
        ("name", "name"),
        ("secret", "secret"),
    ];
    for (needle, name) in known {
        if raw.contains(needle) {
            return name.to_owned();
        }
    }
    if raw.contains("bnd") || raw.contains("principal") {
        return "binding".to_owned();
    }
    "unique".to_owned()
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        Self::Corrupt(e.to_string())
    }
}
