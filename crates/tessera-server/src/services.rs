//! The services every use case draws on: the store, the engine, the key rings, the clock, the
//! audit sink and the password pool, built once at start. No axum type lives here; the HTTP
//! layer (`http::state::AppState`) wraps one `Arc<Services>` with its own settings.
//! INVARIANT: nothing in this struct is global; tests build as many independent copies as
//! they need.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tessera_core::{AgencyId, Catalog, EngineConfig, KeyId};
use tessera_store::{Connected, Store, TenantScope};

use crate::clock::Clock;

/// Everything a use case may draw on.
#[derive(Debug)]
pub struct Services {
    /// The store (the primary, on PostgreSQL).
    pub store: Arc<dyn Store>,
    /// Where reads that accept staleness bounded by revision go (`--replica-url`).
    pub reads: Arc<crate::cluster::replica::Reads>,
    /// The one holder of the store's scope mint (the gate's).
    pub admission: Arc<crate::gate::admission::Admission>,
    /// The catalog.
    pub catalog: Arc<Catalog>,
    /// The engine's catalog indices.
    pub engine_cfg: EngineConfig,
    /// The authorization engine (indexes, policies, the change feed).
    pub engine: Arc<crate::engine::Engine>,
    /// The live peppers for credential hashes (the current one first, older ones on a miss).
    pub pepper: Arc<crate::secrets::Peppers>,
    /// This node's master keys (they wrap the stored secrets and the data keys).
    pub ring: Arc<crate::secrets::MasterRing>,
    /// The per-agency data keys.
    pub data_keys: Arc<crate::secrets::DataKeys>,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Key uses not yet written to the store.
    pub key_usage: Arc<KeyUsage>,
    /// The token-signing key ring.
    pub keys: Arc<crate::keys::Keys>,
    /// The OAuth authorization server.
    pub oauth: Arc<crate::oauth::settings::OAuth>,
    /// The platform tenant's id, once known.
    pub platform_id: Arc<std::sync::OnceLock<tessera_core::AgencyId>>,
    /// Group commit for hot-path audit events.
    pub audit: Arc<crate::audit::writer::AuditWriter>,
    /// The bounded pool that runs password hashing (argon2id).
    pub passwords: Arc<crate::passwords::PasswordPool>,
    /// The shared Redis handle, when `--redis-url` is set (cluster-wide state).
    pub redis: Option<Arc<crate::cluster::redis::Redis>>,
    /// Rate limits and quotas.
    pub limiter: Arc<crate::ratelimit::Limiter>,
    /// The revocation feed's waiting readers (bounded per agency) and their stop signal.
    pub feed_streams: Arc<crate::feed::Streams>,
    /// The forward-auth route table (`[[forward_auth.routes]]`), checked against the catalog.
    pub forward_auth: Arc<crate::forward_auth::RouteTable>,
    /// The audit checkpoint signing keys (`/.well-known/audit-keys.json`).
    pub audit_keys: Arc<crate::audit::keys::AuditKeys>,
    /// Signs audit checkpoints and prunes expired events.
    pub checkpointer: Arc<crate::audit::checkpoint::Checkpointer>,
    /// Signed webhooks: settings, the secrets' sealing key, the delivery transport.
    pub webhooks: Arc<crate::webhooks::Webhooks>,
    /// Cluster jobs' lease and ticks.
    pub jobs: crate::cluster::leases::JobSettings,
}

/// Batches `last_used_at` updates so authentication never writes to the store.
#[derive(Debug, Default)]
pub struct KeyUsage {
    pending: Mutex<HashMap<(AgencyId, KeyId), (TenantScope, i64)>>,
    /// When this node last wrote each key's use: a key in constant use is written once per
    /// [`KEY_USE_GRANULARITY_MS`], not at every flush (at 200k busy keys, every 15 s flush
    /// would be 200k updates).
    written: Mutex<HashMap<KeyId, i64>>,
}

/// `last_used_at` is kept to this precision: a use within it of the last one this node wrote
/// is not written again.
pub const KEY_USE_GRANULARITY_MS: i64 = 60_000;

/// Keys remembered as written before the map is cleared (then each is written once more).
const MAX_WRITTEN_KEYS: usize = 1 << 20;

impl KeyUsage {
    /// Notes a use of a key of `agency` (its authentication established the agency; the scope
    /// for the write is minted once per key and flush).
    pub fn record(
        &self,
        admission: &crate::gate::admission::Admission,
        agency: &AgencyId,
        key: &KeyId,
        at: i64,
    ) {
        if let Ok(mut p) = self.pending.lock() {
            let slot = p
                .entry((agency.clone(), key.clone()))
                .or_insert_with(|| (admission.admit(agency.clone()), at));
            slot.1 = slot.1.max(at);
        }
    }

    /// Writes the pending uses to the store: those a minute or more after the use this node
    /// last wrote for the key.
    pub async fn flush(&self, store: &dyn Store) {
        let pending: Vec<(TenantScope, KeyId, i64)> = match self.pending.lock() {
            Ok(mut p) => p.drain().map(|((_, k), (t, at))| (t, k, at)).collect(),
            Err(_) => return,
        };
        let batch: Vec<(TenantScope, KeyId, i64)> = match self.written.lock() {
            Ok(mut w) => {
                if w.len() >= MAX_WRITTEN_KEYS {
                    w.clear();
                }
                pending
                    .into_iter()
                    .filter(|(_, k, at)| {
                        let due = w
                            .get(k)
                            .is_none_or(|last| at.saturating_sub(*last) >= KEY_USE_GRANULARITY_MS);
                        if due {
                            w.insert(k.clone(), *at);
                        }
                        due
                    })
                    .collect()
            }
            Err(_) => pending,
        };
        if batch.is_empty() {
            return;
        }
        if let Err(e) = store.touch_api_keys(&batch).await {
            tracing::warn!(error = %e, keys = batch.len(), "could not record API key use");
        }
    }
}

/// Why state cannot be built from its parts.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The engine needs a permission the catalog lacks.
    #[error("the catalog must define the permission `{0}`")]
    MissingPermission(&'static str),
    /// The Cedar schema generated from the catalog is invalid.
    #[error("the catalog does not make a valid Cedar schema: {0}")]
    Schema(String),
    /// A platform policy file is invalid.
    #[error("invalid platform policies: {0}")]
    Policies(String),
    /// The Redis URL is malformed.
    #[error("{0}")]
    Redis(String),
    /// The installation's secrets are incomplete.
    #[error("invalid secrets: {0}")]
    Secrets(&'static str),
    /// A forward-auth route names an unknown permission or resource type, or is malformed.
    #[error("invalid forward_auth route: {0}")]
    ForwardAuth(String),
    /// The webhook transport cannot be built.
    #[error("webhooks: {0}")]
    Webhooks(String),
}

/// Engine settings.
#[derive(Clone, Debug, Default)]
pub struct EngineSettings {
    /// Platform-wide Cedar policies (source name, text), applied in every agency.
    pub platform_policies: Vec<(String, String)>,
    /// Memory budget of the index cache, in bytes (0: the default, 1 GiB).
    pub cache_bytes: u64,
    /// How token-signing keys rotate.
    pub rotation: tessera_token::RotationPolicy,
    /// The authorization server's settings.
    pub oauth: crate::oauth::settings::OAuthSettings,
    /// Password-hashing threads (0: half the cores, at least one).
    pub password_workers: usize,
    /// The listener's timeouts and caps, and who may read `/metrics`.
    pub http: crate::net::settings::HttpSettings,
    /// Redis, for state shared by every node (`--redis-url`).
    pub redis: Option<crate::cluster::redis::RedisSettings>,
    /// Rate limits and quotas (the shipped defaults unless configured).
    pub rate_limits: crate::ratelimit::RateLimitSettings,
    /// Forward-auth routes (`[[forward_auth.routes]]`), validated against the catalog here.
    pub forward_auth: crate::forward_auth::ForwardAuthConfig,
    /// Audit checkpoints and retention.
    pub audit: crate::audit::checkpoint::AuditSettings,
    /// Signed webhooks (`--webhook-*`).
    pub webhooks: crate::webhooks::WebhookSettings,
    /// A read replica of the PostgreSQL primary (`--replica-url`), opened by
    /// `tessera_store::connect_replica`.
    pub replica: Option<Arc<dyn Store>>,
    /// Cluster jobs' lease and ticks.
    pub jobs: crate::cluster::leases::JobSettings,
}

impl Services {
    /// Builds the services from their parts and the installation's secrets.
    pub fn with_engine(
        connected: Connected,
        catalog: Catalog,
        material: &crate::secrets::Material,
        clock: Arc<dyn Clock>,
        settings: EngineSettings,
    ) -> Result<Self, StateError> {
        let cross_tenant = catalog
            .permission("platform.cross_tenant")
            .ok_or(StateError::MissingPermission("platform.cross_tenant"))?;
        let schema = tessera_core::abac::cedar_schema(&catalog).map_err(StateError::Schema)?;
        for (name, text) in &settings.platform_policies {
            tessera_core::abac::validate_policies(&schema, text).map_err(|d| {
                StateError::Policies(format!(
                    "`{name}`: {}",
                    d.iter()
                        .map(|p| p.message.clone())
                        .collect::<Vec<_>>()
                        .join("; ")
                ))
            })?;
        }
        let redis = match &settings.redis {
            Some(r) => Some(Arc::new(
                crate::cluster::redis::Redis::connect(r)
                    .map_err(|e| StateError::Redis(e.to_string()))?,
            )),
            None => None,
        };
        let forward_auth = crate::forward_auth::RouteTable::build(&settings.forward_auth, &catalog)
            .map_err(StateError::ForwardAuth)?;
        let webhooks = crate::webhooks::Webhooks::new(settings.webhooks.clone())
            .map_err(StateError::Webhooks)?;
        let Connected { store, mint } = connected;
        let admission = Arc::new(crate::gate::admission::Admission::new(mint));
        let store_for_keys = store.clone();
        let pepper = Arc::new(
            crate::secrets::Peppers::new(material.root.peppers.clone())
                .ok_or(StateError::Secrets("no live pepper"))?,
        );
        let mut oauth = crate::oauth::settings::OAuth::new(
            settings.oauth,
            material.root.cookie_key.clone(),
            &catalog,
        );
        if let Some(r) = &redis {
            // Sign-in failures are counted for the whole cluster.
            oauth.throttle = crate::oauth_ui::throttle::SignInThrottle::with_ledger(
                crate::oauth::settings::THROTTLE_ENTRIES,
                Arc::new(crate::oauth_ui::throttle::ledger::RedisLedger::new(
                    r.clone(),
                    pepper.current(),
                )),
            );
        }
        let settings_rotation = settings.rotation;
        let audit_keys = Arc::new(crate::audit::keys::AuditKeys::new(
            store.clone(),
            material.root.signing_kek.clone(),
            crate::audit::keys::AuditKeyPolicy::default(),
            admission.clone(),
        ));
        let checkpointer = Arc::new(crate::audit::checkpoint::Checkpointer::new(
            store.clone(),
            admission.clone(),
            audit_keys.clone(),
            clock.clone(),
            settings.audit,
        ));
        let data_keys = Arc::new(crate::secrets::DataKeys::new(
            store.clone(),
            material.ring.clone(),
        ));
        let catalog = Arc::new(catalog);
        let budget = if settings.cache_bytes == 0 {
            crate::config::DEFAULT_AUTHZ_CACHE_MB << 20
        } else {
            settings.cache_bytes
        };
        let reads = Arc::new(crate::cluster::replica::Reads::new(
            store.clone(),
            settings.replica.clone(),
        ));
        let engine = crate::engine::Engine::new(
            store.clone(),
            reads.clone(),
            catalog.clone(),
            Arc::new(schema),
            settings.platform_policies,
            budget,
            clock.clone(),
            admission.clone(),
        );
        Ok(Self {
            store,
            reads,
            admission: admission.clone(),
            catalog,
            engine_cfg: EngineConfig { cross_tenant },
            engine: Arc::new(engine),
            pepper,
            ring: material.ring.clone(),
            data_keys: data_keys.clone(),
            clock,
            key_usage: Arc::default(),
            keys: Arc::new(crate::keys::Keys::new(
                store_for_keys.clone(),
                material.root.signing_kek.clone(),
                settings_rotation,
                admission,
            )),
            oauth: Arc::new(oauth),
            platform_id: Arc::default(),
            audit: Arc::new(crate::audit::writer::AuditWriter::with_data_keys(
                store_for_keys,
                data_keys.clone(),
            )),
            passwords: Arc::new(match settings.password_workers {
                0 => crate::passwords::PasswordPool::default(),
                n => crate::passwords::PasswordPool::new(n, n * 4),
            }),
            limiter: Arc::new(crate::ratelimit::Limiter::new(
                settings.rate_limits,
                redis.clone(),
            )),
            redis,
            feed_streams: Arc::default(),
            forward_auth: Arc::new(forward_auth),
            audit_keys,
            checkpointer,
            webhooks: Arc::new(webhooks),
            jobs: settings.jobs,
        })
    }
}
