//! The catalog as loaded, and the Cedar schema generated from it: public metadata any
//! authenticated caller may read. Pure: nothing here touches the store.

use tessera_core::catalog::CatalogFile;
use tessera_core::Catalog;

/// The catalog: resources, permissions, scopes and built-in roles. Route: any valid credential.
pub fn catalog(catalog: &Catalog) -> CatalogFile {
    catalog.file().clone()
}

/// The Cedar schema generated from the catalog, as text. Route: any valid credential.
pub fn cedar_schema(catalog: &Catalog) -> String {
    tessera_core::abac::cedar_schema_text(catalog)
}
