//! Typed, prefixed identifiers (`agy_…`, `acc_…`, …) with a ULID inside.
//!
//! INVARIANT: a value of `AgencyId` always holds a well-formed `agy_` id; parsing an id of
//! another type fails, so mixing ids up is a type error in Rust and a 400 at the API.

use std::fmt;
use std::str::FromStr;

use rand::RngCore;

/// Crockford base32, as ULID uses it.
const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// Crockford digit values by byte (0xFF: not a digit).
const DECODE: [u8; 256] = {
    let mut t = [0xFFu8; 256];
    let mut i = 0;
    while i < 32 {
        t[CROCKFORD[i] as usize] = i as u8;
        i += 1;
    }
    t
};

/// Length of the ULID part of an id.
pub const ULID_LEN: usize = 26;

/// Why a string is not an id of the wanted type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The prefix names another type, or none.
    #[error("`{value}` is not a {kind} id (expected the `{prefix}` prefix)")]
    WrongPrefix {
        value: String,
        kind: &'static str,
        prefix: &'static str,
    },
    /// The part after the prefix is not a ULID.
    #[error("`{value}` is not a well-formed {kind} id")]
    Malformed { value: String, kind: &'static str },
}

/// Encodes 128 bits (48-bit milliseconds, 80 random bits) as a 26-character ULID.
pub fn ulid_string(millis: u64, rng: &mut dyn RngCore) -> String {
    let mut out = String::with_capacity(ULID_LEN);
    push_ulid(&mut out, millis, rng);
    out
}

/// Appends a new ULID (as [`ulid_string`]) to `out`, which can then hold a prefix too.
pub fn push_ulid(out: &mut String, millis: u64, rng: &mut dyn RngCore) {
    let mut random = [0u8; 10];
    rng.fill_bytes(&mut random);
    let mut value: u128 = u128::from(millis & 0xFFFF_FFFF_FFFF) << 80;
    for (i, b) in random.iter().enumerate() {
        value |= u128::from(*b) << (8 * (9 - i));
    }
    let mut text = [0u8; ULID_LEN];
    for slot in text.iter_mut().rev() {
        *slot = CROCKFORD[(value & 0x1F) as usize];
        value >>= 5;
    }
    out.extend(text.iter().map(|&c| char::from(c)));
}

/// The 128 bits of a ULID string (26 Crockford characters), if it is one.
pub fn ulid_bits(s: &str) -> Option<u128> {
    // One pass: validate and decode with the table (no per-character search).
    let b = s.as_bytes();
    if b.len() != ULID_LEN || b[0] > b'7' {
        return None;
    }
    let mut v: u128 = 0;
    for &c in b {
        let d = DECODE[usize::from(c)];
        if d == 0xFF {
            return None;
        }
        v = (v << 5) | u128::from(d);
    }
    Some(v)
}

/// The ULID string of 128 bits.
pub fn ulid_from_bits(mut value: u128) -> String {
    let mut out = [0u8; ULID_LEN];
    for slot in out.iter_mut().rev() {
        *slot = CROCKFORD[(value & 0x1F) as usize];
        value >>= 5;
    }
    out.iter().map(|&c| c as char).collect()
}

fn is_ulid(s: &str) -> bool {
    ulid_bits(s).is_some()
}

/// Milliseconds since the Unix epoch, from the system clock. Callers that want a testable
/// clock pass their own milliseconds to `generate_at`.
pub fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

macro_rules! define_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// The type prefix, with its underscore.
            pub const PREFIX: &'static str = $prefix;
            /// What the id names, for messages.
            pub const KIND: &'static str = $kind;

            /// A new id from the given time and randomness.
            pub fn generate_at(millis: u64, rng: &mut dyn RngCore) -> Self {
                Self(format!("{}{}", $prefix, ulid_string(millis, rng)))
            }

            /// A new id from the system clock and the thread RNG.
            pub fn generate() -> Self {
                Self::generate_at(now_millis(), &mut rand::thread_rng())
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The 128 bits of the ULID inside (compact keys for in-memory indexes).
            pub fn bits(&self) -> u128 {
                // INVARIANT: the value was parsed or generated, so the ULID part is valid.
                ulid_bits(&self.0[$prefix.len()..]).unwrap_or(0)
            }

            /// The id with these ULID bits.
            pub fn from_bits(bits: u128) -> Self {
                Self(format!("{}{}", $prefix, ulid_from_bits(bits)))
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                let Some(rest) = s.strip_prefix($prefix) else {
                    return Err(IdError::WrongPrefix {
                        value: s.chars().take(64).collect(),
                        kind: $kind,
                        prefix: $prefix,
                    });
                };
                if !is_ulid(rest) {
                    return Err(IdError::Malformed { value: s.chars().take(64).collect(), kind: $kind });
                }
                Ok(Self(s.to_owned()))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }

        impl schemars::JsonSchema for $name {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }
            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({
                    "type": "string",
                    "pattern": concat!("^", $prefix, "[0-7][0-9A-HJKMNP-TV-Z]{25}$"),
                    "description": concat!("A ", $kind, " id"),
                })
            }
        }
    };
}

define_id!(/// An agency: the top-level tenant.
    AgencyId, "agy_", "agency");
define_id!(/// An account inside one agency.
    AccountId, "acc_", "account");
define_id!(/// A user of one agency (or of the platform).
    UserId, "usr_", "user");
define_id!(/// An OAuth client.
    AppId, "app_", "app");
define_id!(/// An app installed on an agency or account.
    InstallationId, "ins_", "installation");
define_id!(/// An API key.
    KeyId, "key_", "API key");
define_id!(/// A custom role.
    RoleId, "rol_", "role");
define_id!(/// A role binding.
    BindingId, "bnd_", "binding");
define_id!(/// A Cedar policy.
    PolicyId, "pol_", "policy");
define_id!(/// An audit event.
    EventId, "evt_", "audit event");
define_id!(/// An OAuth grant: one consent, the refresh-token family and the sessions it issues (the
    /// `sid` of its tokens).
    GrantId, "grt_", "grant");
define_id!(/// A resource server (RFC 8707): a service tokens can be bound to.
    ResourceServerId, "rsv_", "resource server");
define_id!(/// A webhook endpoint of an agency (a SIEM feed).
    WebhookId, "whk_", "webhook");
define_id!(/// A webhook message: one event for one webhook (the Standard Webhooks `webhook-id`,
    /// the same on every attempt).
    MessageId, "msg_", "webhook message");

/// Who acts: a user, an API key, or an app acting through an installation (client
/// credentials). Only users and keys can be named in bindings and parsed from input: an
/// installation holds its consented scopes, never a role.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum PrincipalId {
    /// A person.
    User(UserId),
    /// A machine credential.
    Key(KeyId),
    /// An app, through one installation.
    Installation(InstallationId),
}

impl PrincipalId {
    /// The id as text, with its prefix.
    pub fn as_str(&self) -> &str {
        match self {
            Self::User(u) => u.as_str(),
            Self::Key(k) => k.as_str(),
            Self::Installation(i) => i.as_str(),
        }
    }
}

impl FromStr for PrincipalId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        if s.starts_with(UserId::PREFIX) {
            s.parse().map(Self::User)
        } else if s.starts_with(KeyId::PREFIX) {
            s.parse().map(Self::Key)
        } else {
            Err(IdError::WrongPrefix {
                value: s.chars().take(64).collect(),
                kind: "principal",
                prefix: "usr_` or `key_",
            })
        }
    }
}

impl fmt::Display for PrincipalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for PrincipalId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for PrincipalId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl schemars::JsonSchema for PrincipalId {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "PrincipalId".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^(usr|key)_[0-7][0-9A-HJKMNP-TV-Z]{25}$",
            "description": "A user (`usr_`) or API key (`key_`) id",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;

    #[test]
    fn generated_ids_parse_and_keep_their_prefix() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let id = AccountId::generate_at(1_700_000_000_000, &mut rng);
        assert!(id.as_str().starts_with("acc_"));
        assert_eq!(id.as_str().len(), 4 + ULID_LEN);
        assert_eq!(id.as_str().parse::<AccountId>(), Ok(id.clone()));
    }

    #[test]
    fn bits_roundtrip() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(9);
        for _ in 0..100 {
            let id = BindingId::generate_at(1_800_000_000_000, &mut rng);
            assert_eq!(BindingId::from_bits(id.bits()), id);
        }
    }

    #[test]
    fn ids_sort_by_time() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let a = AgencyId::generate_at(1_000, &mut rng);
        let b = AgencyId::generate_at(2_000, &mut rng);
        assert!(a < b);
    }

    #[test]
    fn wrong_prefix_is_rejected() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let acc = AccountId::generate_at(1, &mut rng);
        let err = acc.as_str().parse::<AgencyId>().unwrap_err();
        assert!(matches!(err, IdError::WrongPrefix { .. }));
        assert!(err.to_string().contains("agy_"));
        assert!("agy_notaulid".parse::<AgencyId>().is_err());
        assert!(
            "agy_81ARZ3NDEKTSV4RRFFQ69G5FAV"
                .parse::<AgencyId>()
                .is_err(),
            "overflowing ULID"
        );
    }

    #[test]
    fn principal_parses_users_and_keys_only() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let u = UserId::generate_at(1, &mut rng);
        assert_eq!(
            u.as_str().parse::<PrincipalId>(),
            Ok(PrincipalId::User(u.clone()))
        );
        let a = AgencyId::generate_at(1, &mut rng);
        assert!(a.as_str().parse::<PrincipalId>().is_err());
    }

    proptest! {
        #[test]
        fn parse_never_panics_and_roundtrips(s in "\\PC{0,40}") {
            if let Ok(id) = s.parse::<UserId>() {
                prop_assert_eq!(id.as_str(), s.as_str());
            }
        }
    }
}
