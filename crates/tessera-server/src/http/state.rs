//! The state every handler receives through axum `State`: the services below HTTP, and how the
//! service faces the network. No global handle: each app built from its own state.

use std::sync::Arc;

use tessera_core::Catalog;
use tessera_store::Connected;

use crate::clock::Clock;
use crate::net::HttpSettings;
use crate::services::{EngineSettings, Services, StateError};

/// Everything a request handler needs: the services, and the HTTP layer's own settings.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The services the use cases draw on.
    pub services: Arc<Services>,
    /// How the service faces the network.
    pub http: HttpSettings,
    /// Whether the issuer is `https://`: every response then carries HSTS.
    pub hsts: bool,
}

impl std::ops::Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.services
    }
}

impl AppState {
    /// Builds the state from its parts; the pepper is derived from the master key.
    pub fn new(
        store: Connected,
        catalog: Catalog,
        master_key: &tessera_token::MasterKey,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StateError> {
        Self::with_engine(store, catalog, master_key, clock, EngineSettings::default())
    }

    /// The same, with engine settings; the secrets are the master key's derivations (what a
    /// new installation stores as their first versions), with a fixed master key.
    pub fn with_engine(
        store: Connected,
        catalog: Catalog,
        master_key: &tessera_token::MasterKey,
        clock: Arc<dyn Clock>,
        settings: EngineSettings,
    ) -> Result<Self, StateError> {
        let material = crate::secrets::Material::derived(master_key);
        Self::with_material(store, catalog, &material, clock, settings)
    }

    /// The state with the installation's stored secrets (`serve`).
    pub fn with_material(
        store: Connected,
        catalog: Catalog,
        material: &crate::secrets::Material,
        clock: Arc<dyn Clock>,
        settings: EngineSettings,
    ) -> Result<Self, StateError> {
        let http = settings.http.clone();
        let hsts = settings
            .oauth
            .issuer
            .get(..8)
            .is_some_and(|s| s.eq_ignore_ascii_case("https://"));
        let services = Services::with_engine(store, catalog, material, clock, settings)?;
        Ok(Self {
            services: Arc::new(services),
            http,
            hsts,
        })
    }
}
