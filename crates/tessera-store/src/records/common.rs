//! The records both halves of `records` use: a tenant object's `Status` and the `User` row
//! (the directory lists users; OAuth sign-in reads one with its credential).

use schemars::JsonSchema;
use serde::Serialize;
use tessera_core::time::serde_rfc3339;
use tessera_core::{AgencyId, UserId};

/// Whether a tenant object is usable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// In use.
    Active,
    /// Kept but unusable: its credentials do not authenticate.
    Disabled,
    /// Suspended by a higher level (the platform for an agency, the agency for an account):
    /// its data is kept, its credentials are refused until it is reinstated.
    Suspended,
    /// Gone (agencies keep their audit trail).
    Deleted,
}

impl Status {
    /// The stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Disabled => "disabled",
            Self::Suspended => "suspended",
            Self::Deleted => "deleted",
        }
    }
    /// Parses the stored text.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(Self::Active),
            "disabled" => Some(Self::Disabled),
            "suspended" => Some(Self::Suspended),
            "deleted" => Some(Self::Deleted),
            _ => None,
        }
    }
}

/// A person. The password hash is never part of this record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct User {
    /// Its id.
    pub id: UserId,
    /// The agency it belongs to.
    pub agency_id: AgencyId,
    /// Sign-in email (unique per agency, case-insensitively).
    pub email: String,
    /// Display name.
    pub name: String,
    /// `active` or `disabled`.
    pub status: Status,
    /// Whether a password is set.
    pub has_password: bool,
    /// Creation time.
    #[serde(serialize_with = "serde_rfc3339::serialize")]
    #[schemars(with = "String")]
    pub created_at: i64,
    /// Last change.
    #[serde(serialize_with = "serde_rfc3339::serialize")]
    #[schemars(with = "String")]
    pub updated_at: i64,
}
