//! The claims of Tessera's tokens: access tokens (RFC 9068 §2.2, with Tessera's `tenant` and the
//! RFC 8693 §4.1 `act` chain) and OpenID Connect id tokens (OIDC Core §2).
//! INVARIANT: a verified token yields claims only if every required claim is present
//! ([`JwtError::MissingClaim`] names the first missing one); `aud` is written as a string when
//! it has one value, and read from either form.

use std::fmt;

use serde::de::{self, DeserializeOwned, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use super::error::JwtError;

/// The tenant a token acts in: an agency, and optionally one of its accounts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tenant {
    /// The agency id (`agy_…`).
    pub agency: String,
    /// The account id (`acc_…`), when the token is bound to one account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
}

/// The actor acting on behalf of the subject (RFC 8693 §4.1): the impersonator or the delegate.
/// `act` nests to record a chain of delegation, the current actor outermost.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// The acting party.
    pub sub: String,
    /// Who that actor in turn acted for (an earlier step of the chain).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Box<Actor>>,
}

/// The claims of an access token (RFC 9068 §2.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccessClaims {
    /// Issuer: the Tessera issuer URL.
    pub iss: String,
    /// Subject: the user (`usr_…`) or, for client credentials, the client.
    pub sub: String,
    /// Audiences: the resource servers meant to accept the token.
    #[serde(serialize_with = "serialize_audience")]
    pub aud: Vec<String>,
    /// Expiry, Unix seconds.
    pub exp: i64,
    /// Issued at, Unix seconds.
    pub iat: i64,
    /// Not before, Unix seconds.
    pub nbf: i64,
    /// Unique token id (for revocation).
    pub jti: String,
    /// The OAuth client the token was issued to.
    pub client_id: String,
    /// Granted scopes, space-separated (RFC 6749 §3.3).
    pub scope: String,
    /// The tenant the token acts in.
    pub tenant: Tenant,
    /// The actor, when the token was obtained by impersonation or delegation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub act: Option<Actor>,
    /// Any further claims.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl AccessClaims {
    /// The granted scopes.
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scope.split(' ').filter(|s| !s.is_empty())
    }
}

/// The claims of an OpenID Connect id token (OIDC Core §2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IdClaims {
    /// Issuer.
    pub iss: String,
    /// Subject: the user.
    pub sub: String,
    /// Audiences: the client id of the relying party.
    #[serde(serialize_with = "serialize_audience")]
    pub aud: Vec<String>,
    /// Expiry, Unix seconds.
    pub exp: i64,
    /// Issued at, Unix seconds.
    pub iat: i64,
    /// When the user authenticated, Unix seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    /// The `nonce` of the authentication request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// Authorized party: the client the token was issued to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub azp: Option<String>,
    /// Any further claims (`email`, `name`, `amr`, …).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `aud` as RFC 7519 §4.1.3 allows: a string when there is one audience, else an array.
fn serialize_audience<S: Serializer>(aud: &[String], s: S) -> Result<S::Ok, S::Error> {
    match aud {
        [one] => s.serialize_str(one),
        many => many.serialize(s),
    }
}

/// `aud` read from a string or an array of strings.
#[derive(Debug)]
pub(crate) struct Audience(Vec<String>);

impl<'de> Deserialize<'de> for Audience {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct AudienceVisitor;
        impl<'de> Visitor<'de> for AudienceVisitor {
            type Value = Audience;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an array of strings")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Audience, E> {
                Ok(Audience(vec![v.to_owned()]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Audience, A::Error> {
                let mut all = Vec::with_capacity(seq.size_hint().unwrap_or(1).min(16));
                while let Some(one) = seq.next_element::<String>()? {
                    all.push(one);
                }
                Ok(Audience(all))
            }
        }
        d.deserialize_any(AudienceVisitor)
    }
}

/// The registered claims every verified token is checked against (RFC 7519 §4.1).
pub(crate) struct Registered<'a> {
    pub(crate) iss: &'a str,
    pub(crate) aud: &'a [String],
    pub(crate) exp: i64,
    pub(crate) iat: i64,
    pub(crate) nbf: Option<i64>,
}

/// A claims type that [`super::verify`] can produce.
pub(crate) trait Claims: Sized {
    /// The wire form, with every claim optional so a missing one is reported by name.
    type Raw: DeserializeOwned;
    /// Checks that the required claims are present.
    fn from_raw(raw: Self::Raw) -> Result<Self, JwtError>;
    /// The registered claims to validate.
    fn registered(&self) -> Registered<'_>;
}

fn required<T>(value: Option<T>, name: &'static str) -> Result<T, JwtError> {
    value.ok_or(JwtError::MissingClaim(name))
}

fn required_audience(aud: Option<Audience>) -> Result<Vec<String>, JwtError> {
    match aud {
        Some(Audience(aud)) if !aud.is_empty() => Ok(aud),
        _ => Err(JwtError::MissingClaim("aud")),
    }
}

#[derive(Deserialize)]
pub(crate) struct RawAccessClaims {
    iss: Option<String>,
    sub: Option<String>,
    aud: Option<Audience>,
    exp: Option<i64>,
    iat: Option<i64>,
    nbf: Option<i64>,
    jti: Option<String>,
    client_id: Option<String>,
    scope: Option<String>,
    tenant: Option<Tenant>,
    act: Option<Actor>,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

impl Claims for AccessClaims {
    type Raw = RawAccessClaims;

    fn from_raw(raw: RawAccessClaims) -> Result<Self, JwtError> {
        Ok(AccessClaims {
            iss: required(raw.iss, "iss")?,
            sub: required(raw.sub, "sub")?,
            aud: required_audience(raw.aud)?,
            exp: required(raw.exp, "exp")?,
            iat: required(raw.iat, "iat")?,
            nbf: required(raw.nbf, "nbf")?,
            jti: required(raw.jti, "jti")?,
            client_id: required(raw.client_id, "client_id")?,
            scope: required(raw.scope, "scope")?,
            tenant: required(raw.tenant, "tenant")?,
            act: raw.act,
            extra: raw.extra,
        })
    }

    fn registered(&self) -> Registered<'_> {
        Registered {
            iss: &self.iss,
            aud: &self.aud,
            exp: self.exp,
            iat: self.iat,
            nbf: Some(self.nbf),
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct RawIdClaims {
    iss: Option<String>,
    sub: Option<String>,
    aud: Option<Audience>,
    exp: Option<i64>,
    iat: Option<i64>,
    auth_time: Option<i64>,
    nonce: Option<String>,
    azp: Option<String>,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

impl Claims for IdClaims {
    type Raw = RawIdClaims;

    fn from_raw(raw: RawIdClaims) -> Result<Self, JwtError> {
        Ok(IdClaims {
            iss: required(raw.iss, "iss")?,
            sub: required(raw.sub, "sub")?,
            aud: required_audience(raw.aud)?,
            exp: required(raw.exp, "exp")?,
            iat: required(raw.iat, "iat")?,
            auth_time: raw.auth_time,
            nonce: raw.nonce,
            azp: raw.azp,
            extra: raw.extra,
        })
    }

    fn registered(&self) -> Registered<'_> {
        Registered {
            iss: &self.iss,
            aud: &self.aud,
            exp: self.exp,
            iat: self.iat,
            nbf: None,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use serde_json::json;

    use super::*;

    #[test]
    fn audience_is_a_string_when_single() {
        let mut claims = IdClaims {
            iss: "i".into(),
            sub: "s".into(),
            aud: vec!["a".into()],
            exp: 2,
            iat: 1,
            auth_time: None,
            nonce: None,
            azp: None,
            extra: Map::new(),
        };
        assert_eq!(serde_json::to_value(&claims).unwrap()["aud"], json!("a"));
        claims.aud.push("b".into());
        assert_eq!(
            serde_json::to_value(&claims).unwrap()["aud"],
            json!(["a", "b"])
        );
        let text = serde_json::to_string(&claims).unwrap();
        assert!(
            !text.contains("nonce") && !text.contains("auth_time"),
            "{text}"
        );

        let raw: RawIdClaims = serde_json::from_value(json!({"aud": "x"})).unwrap();
        assert_eq!(raw.aud.unwrap().0, ["x"]);
        let raw: RawIdClaims = serde_json::from_value(json!({"aud": ["x", "y"]})).unwrap();
        assert_eq!(raw.aud.unwrap().0, ["x", "y"]);
        assert!(serde_json::from_value::<RawIdClaims>(json!({"aud": 5})).is_err());
        assert!(serde_json::from_value::<RawIdClaims>(json!({"aud": [5]})).is_err());
    }

    #[test]
    fn actor_chain_nests() {
        let actor = Actor {
            sub: "usr_support".into(),
            act: Some(Box::new(Actor {
                sub: "app_tool".into(),
                act: None,
            })),
        };
        let value = serde_json::to_value(&actor).unwrap();
        assert_eq!(
            value,
            json!({"sub": "usr_support", "act": {"sub": "app_tool"}})
        );
        assert_eq!(serde_json::from_value::<Actor>(value).unwrap(), actor);
    }
}
