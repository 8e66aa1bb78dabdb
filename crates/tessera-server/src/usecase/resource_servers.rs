//! Resource servers (RFC 8707): the services access tokens can be bound to with `resource=`,
//! registered platform-wide (in the platform tenant, by platform principals) or per agency.
//!
//! INVARIANT (I2): a resource server serves only catalog scopes whose every permission its
//! creator holds where it is registered, and an agency's never serves an `internal` scope.
//! Its identifier is an absolute https URI (http on loopback), without fragment or query,
//! never the issuer, and unique across every agency.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tessera_core::catalog::Audience;
use tessera_core::{AgencyId, ResourceServerId};
use tessera_store::{Page, PageRequest, ResourceServer, StoreError};

use crate::audit::action::AuditAction;
use crate::error::{ApiError, ErrorCode};
use crate::gate::authorized::Authorized;
use crate::services::Services;

/// The longest identifier accepted, in bytes.
pub const MAX_IDENTIFIER: usize = crate::oauth::resource::MAX_RESOURCE_LEN;
/// The most scopes one resource server serves.
pub const MAX_SCOPES: usize = 100;
/// The most resource servers an agency (or the platform) registers.
pub const MAX_PER_AGENCY: usize = 200;

/// `POST /v1/resource-servers` and `POST /v1/agencies/{agy}/resource-servers`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateResourceServer {
    /// The resource's URI (RFC 8707 §2): absolute, https (http only on `127.0.0.1`, `[::1]`
    /// or `localhost`), no fragment, no query. Tokens for it carry it as `aud`.
    #[schemars(extend("minLength" = 1, "maxLength" = 512, "pattern" = "^(https://[A-Za-z0-9._~%:\\[\\]-]+|http://(localhost|127\\.0\\.0\\.1|\\[::1\\])(:[0-9]{1,5})?)(/[A-Za-z0-9._~%:/!$&'()+,;=@-]*)?$"))]
    pub identifier: String,
    /// The catalog scopes it serves: a token for it carries at most these (you must hold
    /// every permission they grant).
    #[schemars(extend("maxItems" = 100))]
    pub scopes: Vec<String>,
    /// A display name (default: the identifier).
    #[serde(default)]
    #[schemars(extend("minLength" = 1, "maxLength" = 200, "pattern" = super::validate::NAME_PATTERN))]
    pub name: Option<String>,
}

/// A resource server, as the API shows it.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct ResourceServerView {
    /// Its id.
    pub id: ResourceServerId,
    /// Its URI: the `aud` of tokens issued for it.
    pub identifier: String,
    /// The scopes it serves.
    pub scopes: Vec<String>,
    /// The agency it belongs to; `null` for a platform-wide one (it serves every agency).
    pub agency: Option<AgencyId>,
    /// Display name.
    pub name: String,
    /// Who registered it.
    pub created_by: String,
    /// Creation time.
    #[serde(serialize_with = "tessera_core::time::serde_rfc3339::serialize")]
    #[schemars(with = "String")]
    pub created_at: i64,
}

async fn view(s: &Services, r: ResourceServer) -> Result<ResourceServerView, ApiError> {
    let platform = crate::oauth::tenant::is_platform(s, &r.agency_id).await?;
    Ok(ResourceServerView {
        id: r.id,
        identifier: r.identifier,
        scopes: r.scopes,
        agency: (!platform).then_some(r.agency_id),
        name: r.name,
        created_by: r.created_by,
        created_at: r.created_at,
    })
}

/// Checks an identifier: an absolute https URI (http on loopback), no fragment, query,
/// credentials or wildcard, at most `MAX_IDENTIFIER` bytes, and not the issuer itself.
pub fn identifier(value: &str, issuer: &str) -> Result<String, ApiError> {
    if value.len() > MAX_IDENTIFIER {
        return Err(ApiError::invalid(format!(
            "`identifier` must be at most {MAX_IDENTIFIER} bytes"
        )));
    }
    super::apps::redirect_uri(value).map_err(|e| ApiError::invalid(format!("identifier: {e}")))?;
    if value.contains('?') {
        return Err(ApiError::invalid(
            "identifier: a resource URI must not have a query (RFC 8707 §2)",
        ));
    }
    let bare = |u: &str| u.trim_end_matches('/').to_ascii_lowercase();
    if bare(value) == bare(issuer) {
        return Err(ApiError::invalid(
            "identifier: the issuer is Tessera's own API, the default audience; register another service",
        ));
    }
    Ok(value.to_owned())
}

/// Registers a resource server. Route: `resource_servers.write` in the agency (platform-wide:
/// in the platform tenant). Further: a valid identifier, known non-protocol scopes, no
/// `internal` scope for an agency's, the caller holding every permission of the scopes
/// (I2, 403 naming the missing ones), a bounded number per agency, and a unique identifier
/// (409 `conflict`).
pub async fn create(
    s: &Services,
    auth: &Authorized,
    input: CreateResourceServer,
) -> Result<ResourceServerView, ApiError> {
    let scope = auth.scope()?;
    let identifier = identifier(&input.identifier, s.oauth.issuer())?;
    let name = match &input.name {
        Some(n) => super::validate::name("name", n)?,
        None => identifier.clone(),
    };
    if input.scopes.len() > MAX_SCOPES {
        return Err(ApiError::invalid(format!(
            "`scopes` lists at most {MAX_SCOPES} scopes"
        )));
    }
    let mut scopes = input.scopes;
    scopes.sort();
    scopes.dedup();
    if scopes.is_empty() {
        return Err(ApiError::invalid(
            "`scopes` must name at least one scope the resource serves",
        ));
    }
    let permissions = s.catalog.scopes_permissions(&scopes).map_err(|unknown| {
        ApiError::invalid(format!("unknown scopes: {}", unknown.join(", ")))
            .with_extra(json!({ "unknown_scopes": unknown }))
    })?;
    let platform = crate::oauth::tenant::is_platform(s, &auth.agency).await?;
    if !platform {
        let internal: Vec<&String> = scopes
            .iter()
            .filter(|n| {
                s.catalog
                    .scope(n)
                    .is_some_and(|(a, _)| a == Audience::Internal)
            })
            .collect();
        if !internal.is_empty() {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                format!(
                    "an agency's resource server cannot serve internal scopes: {}",
                    internal
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
    }
    let missing = permissions.difference(&auth.effective(s, None).await?);
    if !missing.is_empty() {
        return Err(auth
            .deny_missing(
                s,
                AuditAction::ResourceServerCreate,
                s.catalog.permission_names(&missing),
            )
            .await
            .into());
    }
    let existing = s
        .store
        .list_resource_servers(
            &scope,
            &PageRequest {
                limit: 200,
                cursor: None,
            },
        )
        .await?;
    if existing.items.len() >= MAX_PER_AGENCY {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!("at most {MAX_PER_AGENCY} resource servers per agency"),
        ));
    }
    let now = s.clock.now();
    let r = ResourceServer {
        id: ResourceServerId::generate_at(u64::try_from(now).unwrap_or(0), &mut rand::thread_rng()),
        agency_id: auth.agency.clone(),
        identifier,
        name,
        scopes,
        created_by: auth.caller.principal.to_string(),
        created_at: now,
    };
    let detail = json!({ "identifier": r.identifier, "scopes": r.scopes, "name": r.name });
    let audit = auth.audit(
        s,
        AuditAction::ResourceServerCreate,
        Some(r.id.as_str()),
        detail,
    );
    match s.store.create_resource_server(&scope, &r, &audit).await {
        Ok(()) => {}
        Err(StoreError::Conflict { .. }) => {
            return Err(ApiError::new(
                ErrorCode::Conflict,
                "a resource server with this identifier is already registered",
            )
            .with_extra(json!({ "constraint": "identifier" })))
        }
        Err(e) => return Err(e.into()),
    }
    view(s, r).await
}

/// A page of the agency's (or the platform's) resource servers. Route:
/// `resource_servers.read`.
pub async fn list(
    s: &Services,
    auth: &Authorized,
    page: &PageRequest,
) -> Result<Page<ResourceServerView>, ApiError> {
    let p = s.store.list_resource_servers(&auth.scope()?, page).await?;
    let mut items = Vec::with_capacity(p.items.len());
    for r in p.items {
        items.push(view(s, r).await?);
    }
    Ok(Page {
        items,
        next_cursor: p.next_cursor,
    })
}

/// One resource server. Route: `resource_servers.read`.
pub async fn get(
    s: &Services,
    auth: &Authorized,
    id: &ResourceServerId,
) -> Result<ResourceServerView, ApiError> {
    let r = s.store.get_resource_server(&auth.scope()?, id).await?;
    view(s, r).await
}

/// Deletes a resource server: `resource=` naming it is refused from then on. Route:
/// `resource_servers.write`.
pub async fn remove(
    s: &Services,
    auth: &Authorized,
    id: &ResourceServerId,
) -> Result<(), ApiError> {
    let scope = auth.scope()?;
    let r = s.store.get_resource_server(&scope, id).await?;
    let audit = auth.audit(
        s,
        AuditAction::ResourceServerDelete,
        Some(id.as_str()),
        json!({ "identifier": r.identifier }),
    );
    s.store.delete_resource_server(&scope, id, &audit).await?;
    Ok(())
}
