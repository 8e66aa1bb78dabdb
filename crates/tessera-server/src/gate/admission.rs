//! Admission into a tenant: the one holder of the store's `ScopeMint`. A `TenantScope` cannot
//! be built outside the store crate without it (the store's `compile_fail` doc tests), and in
//! this crate the mint is reachable only through `Admission`, which `Services` builds once.
//!
//! INVARIANT (I1): `admit` is called only for an agency the caller was authenticated in
//! (its own), the gate authorized it to act in, a verified access token names, the engine
//! loads to decide, or an operator at the console named; cross-tenant lookups before
//! authentication get their scope from the store with the row instead.

use tessera_core::AgencyId;
use tessera_store::{ScopeMint, TenantScope};

/// The capability to build tenant scopes.
#[derive(Debug)]
pub struct Admission {
    mint: ScopeMint,
}

impl Admission {
    /// Takes the store's mint (handed out once, with the store).
    pub fn new(mint: ScopeMint) -> Self {
        Self { mint }
    }

    /// The scope of `agency`, on one of the grounds the module names.
    pub fn admit(&self, agency: AgencyId) -> TenantScope {
        self.mint.admit(agency)
    }
}
