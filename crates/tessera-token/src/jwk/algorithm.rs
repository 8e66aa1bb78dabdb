//! The JWS signature algorithms Tessera signs and verifies with (RFC 7518 §3.1 names):
//! `EdDSA` (RFC 8037), `ES256` (RFC 7518 §3.4) and `RS256` (RFC 7518 §3.3).
//! A leaf module: keys, key rings and JWT verification all name an algorithm, and it imports
//! nothing of the crate. INVARIANT: names compare exactly, case-sensitively (RFC 7515 §4.1.1).

use std::fmt;

use serde::{Deserialize, Serialize};

/// A JWS signature algorithm Tessera signs and verifies with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Algorithm {
    /// Ed25519 (RFC 8037 §3.1): the default.
    #[serde(rename = "EdDSA")]
    EdDsa,
    /// ECDSA with P-256 and SHA-256 (RFC 7518 §3.4).
    #[serde(rename = "ES256")]
    Es256,
    /// RSASSA-PKCS1-v1_5 with SHA-256 (RFC 7518 §3.3). OpenID Connect Core §15.1 requires
    /// every provider to support it.
    #[serde(rename = "RS256")]
    Rs256,
}

impl Algorithm {
    /// The JWS `alg` name.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::EdDsa => "EdDSA",
            Algorithm::Es256 => "ES256",
            Algorithm::Rs256 => "RS256",
        }
    }

    /// The algorithm with JWS `alg` name `name` (exact, case-sensitive as RFC 7515 requires).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "EdDSA" => Some(Algorithm::EdDsa),
            "ES256" => Some(Algorithm::Es256),
            "RS256" => Some(Algorithm::Rs256),
            _ => None,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
