//! The route table of `/v1`: each route's method, path, required permission, target and
//! schemas in one place. The router, the authorization gate and `/openapi.json` are all
//! built from it, so a route cannot exist without declaring its permission (I3).

mod accounts;
mod agencies;
mod api_keys;
pub mod apps;
mod audit;
mod bindings;
mod catalog;
pub mod check;
mod policies;
mod roles;
mod users;
pub mod validate;

use axum::http::Method;
use axum::routing::MethodRouter;
use schemars::{JsonSchema, Schema, SchemaGenerator};

use crate::gate::TargetFrom;
use crate::http::list::List;
use crate::http::state::AppState;

/// What a route requires of its caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// This catalog permission, at the route's target.
    Permission(&'static str, TargetFrom),
    /// This catalog permission, held by a platform principal in the platform tenant.
    Platform(&'static str),
    /// Any valid credential (public metadata such as the catalog).
    Authenticated,
}

/// A schema generator for a request or response body.
pub type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

fn schema_of<T: JsonSchema>(g: &mut SchemaGenerator) -> Schema {
    g.subschema_for::<T>()
}

/// One `/v1` route.
#[derive(Debug)]
pub struct RouteSpec {
    /// HTTP method.
    pub method: Method,
    /// axum path, with `{param}` segments.
    pub path: &'static str,
    /// What it requires.
    pub access: Access,
    /// One line for the OpenAPI document.
    pub summary: &'static str,
    /// The request body's schema.
    pub request: Option<SchemaFn>,
    /// The success body's schema.
    pub response: Option<SchemaFn>,
    /// The success status.
    pub status: u16,
    /// Whether its success body carries a secret (an API key, a client secret): the app
    /// answers it with `Cache-Control: no-store` and `Pragma: no-cache` (RFC 6749 §5.1,
    /// RFC 9111 §5.2.2.5), so no cache keeps it.
    pub secret: bool,
    /// The handler.
    pub handler: MethodRouter<AppState>,
}

impl RouteSpec {
    fn new(
        method: Method,
        path: &'static str,
        access: Access,
        summary: &'static str,
        handler: MethodRouter<AppState>,
    ) -> Self {
        Self {
            method,
            path,
            access,
            summary,
            request: None,
            response: None,
            status: 200,
            secret: false,
            handler,
        }
    }
    fn carries_secret(mut self) -> Self {
        self.secret = true;
        self
    }
    fn body<T: JsonSchema>(mut self) -> Self {
        self.request = Some(schema_of::<T>);
        self
    }
    fn returns<T: JsonSchema>(mut self, status: u16) -> Self {
        self.response = Some(schema_of::<T>);
        self.status = status;
        self
    }
    fn empty(mut self) -> Self {
        self.status = 204;
        self
    }
}

/// Every `/v1` route.
pub fn table() -> Vec<RouteSpec> {
    use axum::routing::{delete, get, patch, post};
    use Access::{Authenticated, Permission as P, Platform};
    use TargetFrom::{Body, Path};
    vec![
        RouteSpec::new(
            Method::GET,
            "/v1/catalog",
            Authenticated,
            "The catalog: resources, permissions, scopes and built-in roles",
            get(catalog::get),
        )
        .returns::<tessera_core::catalog::CatalogFile>(200),
        RouteSpec::new(
            Method::POST,
            "/v1/agencies",
            Platform("agencies.create"),
            "Create an agency",
            post(agencies::create),
        )
        .body::<agencies::CreateAgency>()
        .returns::<tessera_store::Agency>(201),
        RouteSpec::new(
            Method::GET,
            "/v1/agencies",
            Platform("agencies.read"),
            "List agencies",
            get(agencies::list),
        )
        .returns::<List<tessera_store::Agency>>(200),
        RouteSpec::new(
            Method::GET,
            "/v1/agencies/{agy}",
            P("agencies.read", Path),
            "Read an agency",
            get(agencies::get),
        )
        .returns::<tessera_store::Agency>(200),
        RouteSpec::new(
            Method::PATCH,
            "/v1/agencies/{agy}",
            P("agencies.update", Path),
            "Rename an agency",
            patch(agencies::update),
        )
        .body::<agencies::UpdateAgency>()
        .returns::<tessera_store::Agency>(200),
        RouteSpec::new(
            Method::DELETE,
            "/v1/agencies/{agy}",
            P("agencies.delete", Path),
            "Delete an agency (its credentials stop working; its audit trail stays)",
            delete(agencies::remove),
        )
        .empty(),
        RouteSpec::new(
            Method::POST,
            "/v1/agencies/{agy}/accounts",
            P("accounts.create", Path),
            "Create an account",
            post(accounts::create),
        )
        .body::<accounts::CreateAccount>()
        .returns::<tessera_store::Account>(201),
        RouteSpec::new(
            Method::GET,
            "/v1/agencies/{agy}/accounts",
            P("accounts.read", Path),
            "List accounts",
            get(accounts::list),
        )
        .returns::<List<tessera_store::Account>>(200),
        RouteSpec::new(
            Method::GET,
            "/v1/agencies/{agy}/accounts/{acc}",
            P("accounts.read", Path),
            "Read an account",
            get(accounts::get),
        )
        .returns::<tessera_store::Account>(200),
        RouteSpec::new(
            Method::PATCH,
            "/v1/agencies/{agy}/accounts/{acc}",
            P("accounts.update", Path),
            "Rename an account",
            patch(accounts::update),
        )
        .body::<accounts::UpdateAccount>()
        .returns::<tessera_store::Account>(200),
        RouteSpec::new(
            Method::DELETE,
            "/v1/agencies/{agy}/accounts/{acc}",
            P("accounts.delete", Path),
            "Delete an account, its bindings and its keys",
            delete(accounts::remove),
        )
        .empty(),
        RouteSpec::new(
            Method::POST,
            "/v1/agencies/{agy}/users",
            P("users.create", Path),
            "Create a user",
            post(users::create),
        )
        .body::<users::CreateUser>()
        .returns::<tessera_store::User>(201),
        RouteSpec::new(
            Method::GET,
            "/v1/agencies/{agy}/users",
            P("users.read", Path),
            "List users",
            get(users::list),
        )
        .returns::<List<tessera_store::User>>(200),
        RouteSpec::new(
            Method::GET,
            "/v1/agencies/{agy}/users/{usr}",
            P("users.read", Path),
            "Read a user",
            get(users::get),
        )
        .returns::<tessera_store::User>(200),
        RouteSpec::new(
            Method::PATCH,
            "/v1/agencies/{agy}/users/{usr}",
            P("users.update", Path),
            "Change a user",
            patch(users::update),
        )
        .body::<users::UpdateUser>()
        .returns::<tessera_store::User>(200),
        RouteSpec::new(
            Method::DELETE,
            "/v1/agencies/{agy}/users/{usr}",
            P("users.delete", Path),
            "Delete a user and their bindings",
            delete(users::remove),
        )
        .empty(),
        RouteSpec::new(
            Method::POST,
            "/v1/agencies/{agy}/bindings",
            P("bindings.write", Body),
            "Grant a role to a user or key, agency-wide or on one account",
            post(bindings::create),
        )
        .body::<bindings::CreateBinding>()
        .returns::<tessera_store::Binding>(201),
        RouteSpec::new(
            Method::GET,
            "/v1/agencies/{agy}/bindings",
            P("bindings.read", Path),
            "List bindings (`?principal=` to filter)",
            get(bindings::list),
        )
        .returns::<List<tessera_store::Binding>>(200),
        RouteSpec::new(
            Method::GET,
            "/v1/agencies/{agy}/bindings/{bnd}",
            P("bindings.read", Body),
            "Read a binding",
            get(bindings::get),
        )
        .returns::<tessera_store::Binding>(200),
        RouteSpec::new(
            Method::DELETE,
            "/v1/agencies/{agy}/bindings/{bnd}",
            P("bindings.write", Body),
            "Remove a binding",
            delete(bindings::remove),
        )
        .empty(),
        RouteSpec::new(
            Method::POST,
            "/v1/agencies/{agy}/api-keys",
            P("api_keys.write", Body),
            "Create an API key; the secret is shown once",
            post(api_keys::create),
        )
        .body::<api_keys::CreateKey>()
        .returns::<api_keys::KeyWithSecret>(201)
        .carries_secret(),
        RouteSpec::new(
            Method::GET,
            "/v1/agencies/{agy}/api-keys",
            P("api_keys.read", Path),
            "List API keys (never their secrets)",
            get(api_keys::list),
        )
        .returns::<List<tessera_store::ApiKey>>(200),
        RouteSpec::new(
            Method::GET,
            "/v1/agencies/{agy}/api-keys/{key}",
            P("api_keys.read", Body),
            "Read an API key",
            get(api_keys::get),
        )
        .returns::<tessera_store::ApiKey>(200),
        RouteSpec::new(
            Method::DELETE,
            "/v1/agencies/{agy}/api-keys/{key}",
            P("api_keys.write", Body),
            "Revoke an API key, at once",
            delete(api_keys::revoke),
        )
        .empty(),
        RouteSpec::new(
            Method::POST,
            "/v1/agencies/{agy}/api-keys/{key}/rotate",
            P("api_keys.write", Body),
            "Rotate an API key: a new secret, the old one valid for a grace period",
            post(api_keys::rotate),
        )
        .body::<api_keys::RotateKey>()
        .returns::<api_keys::KeyWithSecret>(200)
        .carries_secret(),
        RouteSpec::new(
            Method::POST,
            "/v1/agencies/{agy}/apps",
            P("apps.write", Path),
            "Register an OAuth client; a confidential client's secret is shown once",
            post(apps::create),
        )
        .body::<apps::CreateApp>()
        .returns::<apps::AppWithSecret>(201)
        .carries_secret(),
        RouteSpec::new(
            Method::GET,
            "/v1/agencies/{agy}/apps",
            P("apps.read", Path),
            "List the agency's apps",
            get(apps::list),
        )
        .returns::<List<tessera_store::App>>(200),
        RouteSpec::new(
            Method::GET,
            "/v1/agencies/{agy}/apps/{app}",
            P("apps.read", Path),
            "Read an app",
            get(apps::get),
        )
        .returns::<tessera_store::App>(200),
        RouteSpec::new(
            Method::DELETE,
            "/v1/agencies/{agy}/apps/{app}",
            P("apps.write", Path),
            "Delete an app: its client stops authenticating and its tokens become inactive",
            delete(apps::remove),
        )
        .empty(),
        RouteSpec::new(
            Method::POST,
            "/v1/agencies/{agy}/apps/{app}/rotate-secret",
            P("apps.write", Path),
            "Rotate a client secret: a new one, the old one valid for a grace period",
            post(apps::rotate_secret),
        )
        .body::<apps::RotateSecret>()
        .returns::<apps::AppWithSecret>(200)
        .carries_secret(),
        RouteSpec::new(
            Method::POST,
            "/v1/agencies/{agy}/installations",
            P("installations.write", Path),
            "Install an app on the whole agency",
            post(apps::install),
        )
        .body::<apps::CreateInstallation>()
        .returns::<tessera_store::Installation>(201),
        RouteSpec::new(
            Method::GET,
            "/v1/agencies/{agy}/installations",
            P("installations.read", Path),
            "List the apps installed on the whole agency",
            get(apps::installations),
        )
        .returns::<List<tessera_store::Installation>>(200),
        RouteSpec::new(
            Method::GET,
            "/v1/agencies/{agy}/installations/{ins}",
            P("installations.read", Path),
            "Read an agency-wide installation",
            get(apps::installation),
        )
        .returns::<tessera_store::Installation>(200),
        RouteSpec::new(
            Method::DELETE,
            "/v1/agencies/{agy}/installations/{ins}",
            P("installations.write", Path),
            "Uninstall an agency-wide installation: every token of it is revoked",
            delete(apps::uninstall),
        )
        .empty(),
        RouteSpec::new(
            Method::POST,
            "/v1/agencies/{agy}/accounts/{acc}/installations",
            P("installations.write", Path),
            "Install an app on an account",
            post(apps::install),
        )
        .body::<apps::CreateInstallation>()
        .returns::<tessera_store::Installation>(201),
        RouteSpec::new(
            Method::GET,
            "/v1/agencies/{agy}/accounts/{acc}/installations",
            P("installations.read", Path),
            "List the apps installed on an account",
            get(apps::installations),
        )
        .returns::<List<tessera_store::Installation>>(200),
        RouteSpec::new(
            Method::GET,
            "/v1/agencies/{agy}/accounts/{acc}/installations/{ins}",
            P("installations.read", Path),
            "Read an installation",
            get(apps::installation),
        )
        .returns::<tessera_store::Installation>(200),
        RouteSpec::new(
            Method::DELETE,
            "/v1/agencies/{agy}/accounts/{acc}/installations/{ins}",
            P("installations.write", Path),
            "Uninstall: every token of the installation is revoked",
            delete(apps::uninstall),
        )
        .empty(),
        RouteSpec::new(
            Method::GET,
            "/v1/agencies/{agy}/audit",
            P("audit_log.read", Path),
            "Audit events (`?after=&actor=&action=`)",
            get(audit::list),
        )
        .returns::<List<tessera_store::AuditEvent>>(200),
        RouteSpec::new(
            Method::GET,
            "/v1/agencies/{agy}/audit/export",
            P("audit_log.read", Path),
            "The whole audit chain as JSON Lines",
            get(audit::export),
        ),
        RouteSpec::new(
            Method::GET,
            "/v1/agencies/{agy}/audit/verify",
            P("audit_log.read", Path),
            "Verify the agency's audit hash chain",
            get(audit::verify),
        )
        .returns::<audit::Verification>(200),
        RouteSpec::new(
            Method::GET,
            "/v1/catalog/cedar-schema",
            Authenticated,
            "The Cedar schema generated from the catalog (text)",
            get(policies::schema),
        ),
        RouteSpec::new(
            Method::POST,
            "/v1/check",
            Authenticated,
            "May a principal (default: the caller) exercise a permission on a resource?",
            post(check::check),
        )
        .body::<check::CheckRequest>()
        .returns::<check::CheckResponse>(200),
        RouteSpec::new(
            Method::POST,
            "/v1/check/batch",
            Authenticated,
            "Up to 1,000 checks at one revision",
            post(check::batch),
        )
        .body::<check::BatchRequest>()
        .returns::<check::BatchResponse>(200),
        RouteSpec::new(
            Method::POST,
            "/v1/agencies/{agy}/roles",
            P("roles.write", Path),
            "Create a custom role",
            post(roles::create),
        )
        .body::<roles::CreateRole>()
        .returns::<tessera_store::Role>(201),
        RouteSpec::new(
            Method::GET,
            "/v1/agencies/{agy}/roles",
            P("roles.read", Path),
            "List custom roles",
            get(roles::list),
        )
        .returns::<List<tessera_store::Role>>(200),
        RouteSpec::new(
            Method::GET,
            "/v1/agencies/{agy}/roles/{rol}",
            P("roles.read", Path),
            "Read a custom role",
            get(roles::get),
        )
        .returns::<tessera_store::Role>(200),
        RouteSpec::new(
            Method::PATCH,
            "/v1/agencies/{agy}/roles/{rol}",
            P("roles.write", Path),
            "Change a custom role",
            patch(roles::update),
        )
        .body::<roles::UpdateRole>()
        .returns::<tessera_store::Role>(200),
        RouteSpec::new(
            Method::DELETE,
            "/v1/agencies/{agy}/roles/{rol}",
            P("roles.write", Path),
            "Delete a custom role (`?remove_bindings=true` if still bound)",
            delete(roles::remove),
        )
        .empty(),
        RouteSpec::new(
            Method::POST,
            "/v1/agencies/{agy}/policies",
            P("policies.write", Path),
            "Add Cedar policies (validated against the catalog's schema)",
            post(policies::create),
        )
        .body::<policies::CreatePolicy>()
        .returns::<tessera_store::Policy>(201),
        RouteSpec::new(
            Method::GET,
            "/v1/agencies/{agy}/policies",
            P("policies.read", Path),
            "List policies",
            get(policies::list),
        )
        .returns::<List<tessera_store::Policy>>(200),
        RouteSpec::new(
            Method::GET,
            "/v1/agencies/{agy}/policies/{pol}",
            P("policies.read", Path),
            "Read a policy",
            get(policies::get),
        )
        .returns::<tessera_store::Policy>(200),
        RouteSpec::new(
            Method::DELETE,
            "/v1/agencies/{agy}/policies/{pol}",
            P("policies.write", Path),
            "Delete a policy",
            delete(policies::remove),
        )
        .empty(),
        RouteSpec::new(
            Method::GET,
            "/v1/agencies/{agy}/principals/{id}/permissions",
            P("bindings.read", Body),
            "Effective permissions of a principal (`?account=`)",
            get(check::permissions),
        )
        .returns::<check::EffectivePermissions>(200),
        RouteSpec::new(
            Method::GET,
            "/v1/agencies/{agy}/accounts/{acc}/principals",
            P("bindings.read", Path),
            "Principals that hold `?permission=` on the account",
            get(check::principals),
        )
        .returns::<check::Holders>(200),
    ]
}
