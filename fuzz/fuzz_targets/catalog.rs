//! A catalog TOML file (`tessera --catalog`, `tessera catalog check`): parsed and validated by
//! `Catalog::from_toml`; a valid catalog then makes its Cedar schema, as the server does at
//! start-up.
//! INVARIANT: every input is a catalog or a `CatalogError`, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_core::abac::cedar_schema;
use tessera_core::Catalog;

fuzz_target!(init: tessera_fuzz::catch_stack_overflow(), |data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(catalog) = Catalog::from_toml("fuzz.toml", text) {
        let _ = cedar_schema(&catalog);
    }
});
