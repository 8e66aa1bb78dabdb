//! The Cedar schema generated from the catalog (namespace `Tessera`): principals, tenancy
//! entities, one entity type per catalog resource and one action per catalog permission.
//! INVARIANT: the request fields own `id`, `agency` and `account`; a catalog attribute of that
//! name is left out of the schema, and an attribute type Cedar lacks is left out, never guessed.

use std::fmt::Write as _;

use cedar_policy::Schema;

use super::diagnostic::with_position;
use crate::catalog::Catalog;

/// The Cedar namespace of every generated type and action.
pub const NAMESPACE: &str = "Tessera";

/// Resource attributes the request fields set; the catalog and the caller cannot override them.
pub(super) const RESERVED_RESOURCE_ATTRS: [&str; 3] = ["id", "agency", "account"];

/// The Cedar schema type of a catalog attribute type (the catalog admits these five only).
fn cedar_type(catalog_type: &str) -> Option<&'static str> {
    match catalog_type {
        "String" => Some("String"),
        "Long" => Some("Long"),
        "Bool" => Some("Bool"),
        "Set<String>" => Some("Set<String>"),
        "Set<Long>" => Some("Set<Long>"),
        _ => None,
    }
}

/// The Cedar schema (human-readable syntax, namespace `Tessera`) generated from the catalog.
///
/// Principals `User` and `ApiKey` carry `id`, `agency` and `roles`; every catalog resource is an
/// entity type `in [Account, Agency]` whose catalog attributes are optional, beside `agency` and
/// the optional `id` and `account` (a catalog attribute named like one of these three is left
/// out: the request fields own them). Every permission is an action on its resource.
/// `Context`: `time` (epoch seconds), `mfa` and `impersonating` are always set by the server, so
/// policies read them without `has`; `ip` and `account` are optional.
pub fn cedar_schema_text(catalog: &Catalog) -> String {
    let file = catalog.file();
    let principal_attrs =
        "{\n    \"id\": String,\n    \"agency\": String,\n    \"roles\": Set<String>,\n  };\n";
    let mut s = String::with_capacity(256 * (file.resources.len() + file.permissions.len()));
    s.push_str("// Generated from the catalog by tessera-core (abac.rs): do not edit.\n");
    let _ = writeln!(s, "namespace {NAMESPACE} {{");
    s.push_str(
        "  type Context = {\n    \"ip\"?: ipaddr,\n    \"time\": Long,\n    \"mfa\": Bool,\n    \
         \"impersonating\": Bool,\n    \"account\"?: String,\n  };\n",
    );
    s.push_str("  entity Agency;\n  entity Account in [Agency];\n");
    let _ = write!(s, "  entity User in [Agency, Account] = {principal_attrs}");
    let _ = write!(
        s,
        "  entity ApiKey in [Agency, Account] = {principal_attrs}"
    );
    for r in &file.resources {
        let _ = writeln!(s, "  entity {} in [Account, Agency] = {{", r.name);
        s.push_str("    \"id\"?: String,\n    \"agency\": String,\n    \"account\"?: String,\n");
        for (attr, ty) in &r.attributes {
            if RESERVED_RESOURCE_ATTRS.contains(&attr.as_str()) {
                continue;
            }
            // The catalog rejects other types; an unknown one is left out rather than guessed.
            if let Some(ty) = cedar_type(ty) {
                let _ = writeln!(s, "    \"{attr}\"?: {ty},");
            }
        }
        s.push_str("  };\n");
    }
    for p in &file.permissions {
        let _ = writeln!(
            s,
            "  action \"{}\" appliesTo {{ principal: [User, ApiKey], resource: [{}], context: Context }};",
            p.name, p.resource
        );
    }
    s.push_str("}\n");
    s
}

/// The parsed Cedar schema of the catalog (see [`cedar_schema_text`]).
pub fn cedar_schema(catalog: &Catalog) -> Result<Schema, String> {
    let text = cedar_schema_text(catalog);
    match Schema::from_cedarschema_str(&text) {
        Ok((schema, _warnings)) => Ok(schema),
        Err(e) => Err(format!(
            "the catalog does not make a valid cedar schema: {}",
            with_position(&e, &text)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_catalog_makes_a_valid_schema() {
        let catalog = Catalog::default_catalog().unwrap();
        let text = cedar_schema_text(&catalog);
        assert!(text.contains("namespace Tessera {"), "{text}");
        assert!(text.contains(r#"action "contacts.read" appliesTo { principal: [User, ApiKey], resource: [contact], context: Context };"#), "{text}");
        let schema = cedar_schema(&catalog).unwrap();
        let actions = schema.actions().count();
        assert_eq!(actions, catalog.file().permissions.len());
        assert!(schema
            .entity_types()
            .any(|t| t.to_string() == "Tessera::opportunity"));
    }
}
