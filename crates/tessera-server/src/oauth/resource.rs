//! Resource indicators (RFC 8707): resolving a `resource` to a registered resource server that
//! may receive tokens of an agency, and narrowing a token's scopes to what it serves.
//!
//! INVARIANT: a resource-bound token's `aud` is exactly the resource server's identifier and
//! its scopes are a subset of both what was granted and what the server serves; an unknown
//! resource and another agency's are the same `invalid_target`; the issuer itself means
//! Tessera's own API (`aud` = the issuer, no narrowing).

use tessera_core::AgencyId;

use super::error::{OAuthError, OAuthErrorCode};
use super::tenant::is_platform;
use crate::services::Services;

/// The longest `resource` value considered (longer ones are refused unread).
pub const MAX_RESOURCE_LEN: usize = 512;

/// A resource server tokens are being bound to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// Its identifier: the token's `aud`.
    pub identifier: String,
    /// The scopes it serves.
    pub served: Vec<String>,
}

impl Target {
    /// `scopes` narrowed to what this resource serves, in their order (RFC 8707 §2: the
    /// authorization server "can use the resource to limit the scope"). Nothing left is
    /// `invalid_scope`: a token that can do nothing is not issued.
    pub fn narrow(&self, scopes: &[String]) -> Result<Vec<String>, OAuthError> {
        let out = narrow(scopes, &self.served);
        if out.is_empty() {
            return Err(OAuthError::new(
                OAuthErrorCode::InvalidScope,
                format!(
                    "none of the requested scopes is served by `{}`",
                    crate::oauth::scope::shown(&self.identifier)
                ),
            ));
        }
        Ok(out)
    }
}

/// The scopes of `scopes` that `served` lists, in `scopes`' order.
pub fn narrow(scopes: &[String], served: &[String]) -> Vec<String> {
    scopes
        .iter()
        .filter(|s| served.contains(s))
        .cloned()
        .collect()
}

/// `invalid_target` (RFC 8707 §2: "The requested resource is invalid, missing, unknown, or
/// malformed").
pub fn invalid_target(d: impl Into<String>) -> OAuthError {
    OAuthError::new(OAuthErrorCode::InvalidTarget, d)
}

/// The resource server `identifier` names for tokens of `agency`: one the platform registered,
/// or `agency` itself. `None` when `identifier` is the issuer (Tessera's own API). Unknown,
/// another agency's, or malformed: `invalid_target` (the same answer for each).
pub async fn resolve(
    state: &Services,
    agency: &AgencyId,
    identifier: &str,
) -> Result<Option<Target>, OAuthError> {
    if identifier == state.oauth.issuer() {
        return Ok(None);
    }
    let unknown = || {
        invalid_target(format!(
            "`{}` is not a resource this client's tokens can be issued for",
            crate::oauth::scope::shown(identifier)
        ))
    };
    if identifier.len() > MAX_RESOURCE_LEN || identifier.contains('#') {
        return Err(unknown());
    }
    let Some((rs, _)) = state.store.find_resource_server(identifier).await? else {
        return Err(unknown());
    };
    if rs.agency_id != *agency && !is_platform(state, &rs.agency_id).await? {
        return Err(unknown());
    }
    Ok(Some(Target {
        identifier: rs.identifier,
        served: rs.scopes,
    }))
}

/// The one resource a request names, from every `resource` value it carries (RFC 8707 §2
/// allows several; Tessera binds a token to one audience): repeats of one value are that
/// value, different values are `invalid_target`.
pub fn single<'a>(values: &[&'a str]) -> Result<Option<&'a str>, OAuthError> {
    let mut out: Option<&'a str> = None;
    for v in values.iter().copied().filter(|v| !v.is_empty()) {
        match out {
            Some(o) if o != v => {
                return Err(invalid_target(
                    "several different `resource` values: a token is bound to one resource",
                ))
            }
            _ => out = Some(v),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn narrowing_keeps_order_and_only_served() {
        assert_eq!(
            narrow(&v(&["a", "b", "c"]), &v(&["c", "a"])),
            v(&["a", "c"])
        );
        assert!(narrow(&v(&["a"]), &v(&["b"])).is_empty());
    }

    #[test]
    fn one_resource_per_request() {
        assert_eq!(single(&[]).unwrap(), None);
        assert_eq!(single(&["https://a", "https://a"]).unwrap(), Some("https://a"));
        let e = single(&["https://a", "https://b"]).unwrap_err();
        assert_eq!(e.error, OAuthErrorCode::InvalidTarget);
    }

    proptest::proptest! {
        /// The scopes of a resource-bound token are within both what was asked (granted)
        /// and what the resource serves.
        #[test]
        fn narrowed_is_within_granted_and_served(
            granted in proptest::collection::vec("[a-d]\\.(read|write)", 0..6),
            served in proptest::collection::vec("[a-d]\\.(read|write)", 0..6),
        ) {
            let out = narrow(&granted, &served);
            for s in &out {
                proptest::prop_assert!(granted.contains(s) && served.contains(s));
            }
            for s in &granted {
                proptest::prop_assert_eq!(served.contains(s), out.contains(s));
            }
        }
    }
}
