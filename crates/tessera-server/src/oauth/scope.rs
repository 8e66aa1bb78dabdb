//! Scope strings (RFC 6749 §3.3): splitting, the OpenID Connect protocol scopes (which map to
//! no permission), which app kinds may hold which catalog audiences, and the permissions a
//! list of scopes stands for.
//!
//! INVARIANT: an unknown scope grants nothing (deny by default).

use tessera_core::catalog::Audience;
use tessera_core::{Catalog, PermissionSet};
use tessera_store::AppKind;

/// Scopes of the OpenID Connect protocol: they map to no permission.
pub const PROTOCOL_SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];

/// Whether `s` is a protocol scope.
pub fn is_protocol_scope(s: &str) -> bool {
    PROTOCOL_SCOPES.contains(&s)
}

/// Splits a space-separated scope string into distinct names, in order.
pub fn split_scopes(s: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for part in s.split(' ').filter(|p| !p.is_empty()) {
        if !out.iter().any(|o| o == part) {
            out.push(part.to_owned());
        }
    }
    out
}

/// Whether an app of `kind` may hold a scope of `audience` (DESIGN.md §1): public scopes any
/// app; partner scopes marketplace and first-party apps; internal scopes first-party apps.
pub fn audience_allows(kind: AppKind, audience: Audience) -> bool {
    match audience {
        Audience::Public => true,
        Audience::Partner => matches!(kind, AppKind::Marketplace | AppKind::FirstParty),
        Audience::Internal => kind == AppKind::FirstParty,
    }
}

/// The catalog permissions of a token's scopes (protocol scopes grant none; unknown ones
/// none either: deny by default).
pub fn scope_permissions(catalog: &Catalog, scopes: &[String]) -> PermissionSet {
    scopes
        .iter()
        .filter_map(|s| catalog.scope(s).map(|(_, p)| p))
        .fold(PermissionSet::default(), |a, p| a.union(&p))
}

/// The first 100 characters of a client-supplied scope, for an error description.
pub fn shown(s: &str) -> String {
    s.chars().take(100).collect()
}
