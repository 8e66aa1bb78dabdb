//! Forward auth (`GET /v1/forward-auth`, for nginx `auth_request` and HTTP-mode `ext_authz`):
//! the original method and path (`X-Original-Method`, `X-Original-URI`) map to a catalog
//! permission through the route table of the configuration (`[[forward_auth.routes]]`),
//! checked against the catalog when the server starts. The decision is the one `/v1/check`
//! makes (RBAC, the credential's cap, Cedar) for the presented credential.
//!
//! INVARIANT (I3): deny by default. A path that no route matches, or that is ambiguous
//! (dot segments, empty segments, encoded slashes, dots or backslashes, which an upstream
//! might normalise differently), is 403. The identity headers are produced here only: the
//! proxy must drop any `X-Tessera-*` header the client sent (see the README).

use axum::http::{HeaderMap, HeaderValue, Method};
use serde::Deserialize;
use tessera_core::{AccountId, AgencyId, Catalog, PermissionIndex};

/// `[forward_auth]` of the configuration file.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardAuthConfig {
    /// The protected service's resource identifier: access tokens whose `aud` is this are
    /// accepted (as well as tokens for the issuer itself).
    pub audience: Option<String>,
    /// The routes, matched in order; the first that matches decides.
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
}

/// One `[[forward_auth.routes]]` entry.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// An HTTP method, or `*` for any (`GET` also matches `HEAD`).
    pub method: String,
    /// A path: literal segments, `{name}` placeholders (`{agency}` and `{account}` name the
    /// tenant, `{id}` the resource), and an optional final `*` that matches any suffix.
    pub path: String,
    /// The catalog permission the route requires.
    pub permission: String,
    /// The catalog resource type (must be the permission's; defaults to it).
    pub resource: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
}

/// A validated route.
#[derive(Clone, Debug)]
pub struct Route {
    method: Option<Method>,
    segments: Vec<Segment>,
    wildcard: bool,
    /// The permission's name.
    pub permission_name: String,
    /// Its index.
    pub permission: PermissionIndex,
    /// The resource type.
    pub resource: String,
}

/// The route table and the accepted audience.
#[derive(Clone, Debug, Default)]
pub struct RouteTable {
    routes: Vec<Route>,
    /// The protected service's resource identifier.
    pub audience: Option<String>,
}

/// What a request matched.
#[derive(Clone, Debug)]
pub struct Matched<'a> {
    /// The route.
    pub route: &'a Route,
    /// `{agency}` from the path.
    pub agency: Option<AgencyId>,
    /// `{account}` from the path.
    pub account: Option<AccountId>,
    /// `{id}` from the path.
    pub id: Option<String>,
}

/// Why a request matched no route.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NoMatch {
    /// The path is ambiguous or malformed (refused whatever the table says).
    Malformed(&'static str),
    /// No route matches.
    Unmapped,
    /// A route matched, but a tenant placeholder is not a valid id.
    BadId(&'static str),
}

impl RouteTable {
    /// Validates the configured routes against the catalog.
    pub fn build(config: &ForwardAuthConfig, catalog: &Catalog) -> Result<Self, String> {
        if let Some(a) = &config.audience {
            if !(a.starts_with("https://") || a.starts_with("http://")) || a.contains('#') {
                return Err(format!(
                    "audience `{a}` must be an absolute http(s) URI without a fragment"
                ));
            }
        }
        let mut routes = Vec::with_capacity(config.routes.len());
        for r in &config.routes {
            let at = || format!("{} {}", r.method, r.path);
            let method = match r.method.as_str() {
                "*" => None,
                m => Some(
                    Method::from_bytes(m.to_ascii_uppercase().as_bytes())
                        .map_err(|_| format!("`{}`: invalid method", at()))?,
                ),
            };
            let permission = catalog
                .permission(&r.permission)
                .ok_or_else(|| format!("`{}`: unknown permission `{}`", at(), r.permission))?;
            let own = catalog
                .permission_def(permission)
                .map(|d| d.resource.clone())
                .unwrap_or_default();
            let resource = match &r.resource {
                None => own,
                Some(res) => {
                    if !catalog.file().resources.iter().any(|x| &x.name == res) {
                        return Err(format!("`{}`: unknown resource type `{res}`", at()));
                    }
                    if *res != own {
                        return Err(format!(
                            "`{}`: permission `{}` applies to `{own}`, not `{res}`",
                            at(),
                            r.permission
                        ));
                    }
                    res.clone()
                }
            };
            let (segments, wildcard) =
                parse_pattern(&r.path).map_err(|e| format!("`{}`: {e}", at()))?;
            routes.push(Route {
                method,
                segments,
                wildcard,
                permission_name: r.permission.clone(),
                permission,
                resource,
            });
        }
        Ok(Self {
            routes,
            audience: config.audience.clone(),
        })
    }

    /// The first route that matches `method` and `uri` (the original request's path and
    /// query), with its placeholders.
    pub fn find(&self, method: &str, uri: &str) -> Result<Matched<'_>, NoMatch> {
        let segments = split_uri(uri)?;
        let method =
            Method::from_bytes(method.as_bytes()).map_err(|_| NoMatch::Malformed("method"))?;
        for route in &self.routes {
            let method_ok = match &route.method {
                None => true,
                Some(m) => *m == method || (*m == Method::GET && method == Method::HEAD),
            };
            if !method_ok {
                continue;
            }
            if let Some(params) = route.matches(&segments) {
                let mut m = Matched {
                    route,
                    agency: None,
                    account: None,
                    id: None,
                };
                for (name, value) in params {
                    match name {
                        "agency" => {
                            m.agency = Some(value.parse().map_err(|_| NoMatch::BadId("agency"))?);
                        }
                        "account" => {
                            m.account = Some(value.parse().map_err(|_| NoMatch::BadId("account"))?);
                        }
                        "id" => m.id = Some(value.to_owned()),
                        _ => {}
                    }
                }
                return Ok(m);
            }
        }
        Err(NoMatch::Unmapped)
    }
}

impl Route {
    fn matches<'a>(&'a self, path: &[&'a str]) -> Option<Vec<(&'a str, &'a str)>> {
        if path.len() < self.segments.len() || (!self.wildcard && path.len() != self.segments.len())
        {
            return None;
        }
        let mut params = Vec::new();
        for (seg, value) in self.segments.iter().zip(path) {
            match seg {
                Segment::Literal(l) if l == value => {}
                Segment::Literal(_) => return None,
                Segment::Param(name) => params.push((name.as_str(), *value)),
            }
        }
        Some(params)
    }
}

fn parse_pattern(path: &str) -> Result<(Vec<Segment>, bool), String> {
    let Some(rest) = path.strip_prefix('/') else {
        return Err("the path must start with `/`".into());
    };
    let mut parts: Vec<&str> = if rest.is_empty() {
        Vec::new()
    } else {
        rest.split('/').collect()
    };
    let wildcard = parts.last() == Some(&"*");
    if wildcard {
        parts.pop();
    }
    let mut segments = Vec::with_capacity(parts.len());
    for p in parts {
        if p.is_empty() || p == "." || p == ".." || p.contains('*') {
            return Err(format!(
                "invalid segment `{p}` (a `*` is allowed only as the last segment)"
            ));
        }
        if let Some(name) = p.strip_prefix('{').and_then(|x| x.strip_suffix('}')) {
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Err(format!("invalid placeholder `{p}`"));
            }
            segments.push(Segment::Param(name.to_owned()));
        } else if p.contains(['{', '}', '%', '\\']) {
            return Err(format!("invalid segment `{p}`"));
        } else {
            segments.push(Segment::Literal(p.to_owned()));
        }
    }
    Ok((segments, wildcard))
}

/// The path segments of an original URI (query and fragment dropped), refusing what an
/// upstream could read as another path.
fn split_uri(uri: &str) -> Result<Vec<&str>, NoMatch> {
    let path = uri.split(['?', '#']).next().unwrap_or_default();
    let Some(rest) = path.strip_prefix('/') else {
        return Err(NoMatch::Malformed("the original URI must be a path"));
    };
    if path.len() > 2048 {
        return Err(NoMatch::Malformed("the original URI is too long"));
    }
    let lower = rest.to_ascii_lowercase();
    if rest.contains('\\')
        || lower.contains("%2f")
        || lower.contains("%5c")
        || lower.contains("%2e")
        || lower.contains("%00")
    {
        return Err(NoMatch::Malformed("encoded separators or dots in the path"));
    }
    if rest.is_empty() {
        return Ok(Vec::new());
    }
    let segments: Vec<&str> = rest.split('/').collect();
    // A trailing slash is one empty last segment; empty segments elsewhere are ambiguous.
    let body = match segments.split_last() {
        Some((&"", body)) => body,
        _ => &segments[..],
    };
    if body.iter().any(|s| s.is_empty() || *s == "." || *s == "..") {
        return Err(NoMatch::Malformed("empty or dot segments in the path"));
    }
    Ok(body.to_vec())
}

/// The identity headers of an allowed request.
pub const SUBJECT: &str = "x-tessera-subject";
/// The agency acted in.
pub const AGENCY: &str = "x-tessera-agency";
/// The account acted on, when one.
pub const ACCOUNT: &str = "x-tessera-account";
/// The credential's scopes, space-separated.
pub const SCOPES: &str = "x-tessera-scopes";
/// The impersonator, for an impersonation token.
pub const ACTOR: &str = "x-tessera-actor";

/// Adds a header whose value is an id or scope list (visible ASCII); skips anything else.
pub fn put(h: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        h.insert(name, v);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn table(routes: &[(&str, &str, &str)]) -> Result<RouteTable, String> {
        let catalog = Catalog::default_catalog().unwrap();
        let config = ForwardAuthConfig {
            audience: Some("https://contacts.example".into()),
            routes: routes
                .iter()
                .map(|(m, p, perm)| RouteConfig {
                    method: (*m).into(),
                    path: (*p).into(),
                    permission: (*perm).into(),
                    resource: None,
                })
                .collect(),
        };
        RouteTable::build(&config, &catalog)
    }

    #[test]
    fn matches_placeholders_and_wildcards() {
        let t = table(&[
            ("GET", "/agencies/{agency}/contacts/{id}", "contacts.read"),
            ("POST", "/agencies/{agency}/contacts", "contacts.write"),
            ("*", "/static/*", "contacts.read"),
        ])
        .unwrap();
        let m = t
            .find(
                "GET",
                "/agencies/agy_01ARZ3NDEKTSV4RRFFQ69G5FAV/contacts/c1?x=/1",
            )
            .unwrap();
        assert_eq!(m.id.as_deref(), Some("c1"));
        assert_eq!(m.agency.unwrap().as_str(), "agy_01ARZ3NDEKTSV4RRFFQ69G5FAV");
        assert_eq!(m.route.permission_name, "contacts.read");
        assert_eq!(
            t.find("GET", "/agencies/x/contacts/c1").err(),
            Some(NoMatch::BadId("agency"))
        );
        assert!(t.find("HEAD", "/static/a/b/c").is_ok());
        assert!(t.find("DELETE", "/static/").is_ok());
        assert_eq!(
            t.find("DELETE", "/agencies/a/contacts").err(),
            Some(NoMatch::Unmapped)
        );
        assert_eq!(t.find("GET", "/nothing").err(), Some(NoMatch::Unmapped));
        for bad in [
            "/static/../x",
            "/static//x",
            "/static/%2e%2e/x",
            "/static/a%2Fb",
            "static/x",
            "/static/a\\b",
        ] {
            assert!(
                matches!(t.find("GET", bad), Err(NoMatch::Malformed(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn refuses_bad_configuration() {
        assert!(table(&[("GET", "/a", "contacts.nope")])
            .unwrap_err()
            .contains("unknown permission"));
        assert!(table(&[("GET", "a", "contacts.read")]).is_err());
        assert!(table(&[("GET", "/a/*/b", "contacts.read")]).is_err());
        assert!(table(&[("G ET", "/a", "contacts.read")]).is_err());
        let catalog = Catalog::default_catalog().unwrap();
        let wrong = ForwardAuthConfig {
            audience: None,
            routes: vec![RouteConfig {
                method: "GET".into(),
                path: "/a".into(),
                permission: "contacts.read".into(),
                resource: Some("invoice".into()),
            }],
        };
        assert!(RouteTable::build(&wrong, &catalog)
            .unwrap_err()
            .contains("applies to"));
        let unknown = ForwardAuthConfig {
            routes: vec![RouteConfig {
                resource: Some("spaceship".into()),
                ..wrong.routes[0].clone()
            }],
            audience: None,
        };
        assert!(RouteTable::build(&unknown, &catalog)
            .unwrap_err()
            .contains("unknown resource"));
    }
}
