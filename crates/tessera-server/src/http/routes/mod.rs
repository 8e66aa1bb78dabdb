//! The route table of `/v1`: THE one place each route declares the permission it requires
//! (`Access`), its target and its schemas. The router, the authorization gate and
//! `/openapi.json` are all built from it, so a route cannot exist without declaring its
//! permission (I3). Handlers (one file per area) only extract, call the use case in
//! `crate::usecase` that implements the operation and its further checks (I2, …), and answer.

mod accounts;
mod agencies;
mod api_keys;
mod apps;
mod audit;
mod bindings;
mod catalog;
mod check;
mod forward_auth;
mod installations;
mod limits;
mod policies;
mod reports;
mod resource_servers;
mod revocations;
mod roles;
mod spec;
mod suspension;
mod users;
pub mod validate;
mod webhooks;

use axum::http::Method;

pub use spec::{Access, RouteSpec, SchemaFn};

use crate::gate::TargetFrom;
use crate::http::list::List;
use crate::usecase as uc;

/// Every `/v1` route.
pub fn table() -> Vec<RouteSpec> {
    use axum::routing::{delete, get, patch, post, put};
    use Access::{Authenticated, Permission as P, Platform};
    use TargetFrom::{Body, Path};
    let mut routes = vec![
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
        .body::<uc::agencies::CreateAgency>()
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
        .body::<uc::agencies::UpdateAgency>()
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
            Method::GET,
            "/v1/agencies/{agy}/limits",
            P("agencies.read", Path),
            "Read an agency's rate-limit plan, overrides and effective quotas",
            get(limits::get),
        )
        .returns::<uc::limits::AgencyLimitsView>(200),
        RouteSpec::new(
            Method::PUT,
            "/v1/agencies/{agy}/limits",
            P("agencies.write", Path),
            "Set an agency's rate-limit plan and per-class quotas (platform only)",
            put(limits::put),
        )
        .body::<uc::limits::PutLimits>()
        .returns::<uc::limits::AgencyLimitsView>(200),
        RouteSpec::new(
            Method::POST,
            "/v1/agencies/{agy}/accounts",
            P("accounts.create", Path),
            "Create an account",
            post(accounts::create),
        )
        .body::<uc::accounts::CreateAccount>()
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
        .body::<uc::accounts::UpdateAccount>()
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
            "/v1/agencies/{agy}/suspend",
            P("agencies.suspend", Path),
            "Suspend an agency: its data is kept, every credential of it is refused (403 `agency_suspended`) until it is reinstated (idempotent)",
            post(suspension::suspend_agency),
        )
        .body::<uc::suspension::Reason>()
        .returns::<tessera_store::Agency>(200),
        RouteSpec::new(
            Method::POST,
            "/v1/agencies/{agy}/reinstate",
            P("agencies.suspend", Path),
            "Reinstate a suspended agency: its credentials work again (idempotent)",
            post(suspension::reinstate_agency),
        )
        .body::<uc::suspension::Reason>()
        .returns::<tessera_store::Agency>(200),
        RouteSpec::new(
            Method::POST,
            "/v1/agencies/{agy}/accounts/{acc}/suspend",
            P("accounts.suspend", Path),
            "Suspend an account: credentials bound to it are refused (403 `account_suspended`) until it is reinstated (idempotent)",
            post(suspension::suspend_account),
        )
        .body::<uc::suspension::Reason>()
        .returns::<tessera_store::Account>(200),
        RouteSpec::new(
            Method::POST,
            "/v1/agencies/{agy}/accounts/{acc}/reinstate",
            P("accounts.suspend", Path),
            "Reinstate a suspended account (idempotent)",
            post(suspension::reinstate_account),
        )
        .body::<uc::suspension::Reason>()
        .returns::<tessera_store::Account>(200),
        RouteSpec::new(
            Method::POST,
            "/v1/agencies/{agy}/users",
            P("users.create", Path),
            "Create a user",
            post(users::create),
        )
        .body::<uc::users::CreateUser>()
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
        .body::<uc::users::UpdateUser>()
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
            "/v1/agencies/{agy}/users/{usr}/erase",
            P("users.erase", Path),
            "Erase a person's personal data in audit events (crypto-shredding; idempotent)",
            post(users::erase),
        )
        .returns::<uc::users::UserErased>(200),
        RouteSpec::new(
            Method::POST,
            "/v1/agencies/{agy}/bindings",
            P("bindings.write", Body),
            "Grant a role to a user or key, agency-wide or on one account",
            post(bindings::create),
        )
        .body::<uc::bindings::CreateBinding>()
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
        .body::<uc::api_keys::CreateKey>()
        .returns::<uc::api_keys::KeyWithSecret>(201)
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
        .body::<uc::api_keys::RotateKey>()
        .returns::<uc::api_keys::KeyWithSecret>(200)
        .carries_secret(),
        RouteSpec::new(
            Method::POST,
            "/v1/agencies/{agy}/apps",
            P("apps.write", Path),
            "Register an OAuth client; a confidential client's secret is shown once",
            post(apps::create),
        )
        .body::<uc::apps::CreateApp>()
        .returns::<uc::apps::AppWithSecret>(201)
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
            Method::PATCH,
            "/v1/agencies/{agy}/apps/{app}",
            P("apps.write", Path),
            "Change an app's name, redirect URIs or scopes (a new partner scope sends a marketplace app back to review)",
            patch(suspension::update_app),
        )
        .body::<uc::app_review::UpdateApp>()
        .returns::<tessera_store::App>(200),
        RouteSpec::new(
            Method::POST,
            "/v1/agencies/{agy}/apps/{app}/review",
            P("apps.review", Path),
            "Approve or reject a marketplace app's pending partner scopes (platform reviewers)",
            post(suspension::review_app),
        )
        .body::<uc::app_review::Review>()
        .returns::<tessera_store::App>(200),
        RouteSpec::new(
            Method::POST,
            "/v1/agencies/{agy}/apps/{app}/rotate-secret",
            P("apps.write", Path),
            "Rotate a client secret: a new one, the old one valid for a grace period",
            post(apps::rotate_secret),
        )
        .body::<uc::apps::RotateSecret>()
        .returns::<uc::apps::AppWithSecret>(200)
        .carries_secret(),
        RouteSpec::new(
            Method::POST,
            "/v1/agencies/{agy}/installations",
            P("installations.write", Path),
            "Install an app on the whole agency",
            post(installations::install),
        )
        .body::<uc::installations::CreateInstallation>()
        .returns::<tessera_store::Installation>(201),
        RouteSpec::new(
            Method::GET,
            "/v1/agencies/{agy}/installations",
            P("installations.read", Path),
            "List the apps installed on the whole agency",
            get(installations::list),
        )
        .returns::<List<tessera_store::Installation>>(200),
        RouteSpec::new(
            Method::GET,
            "/v1/agencies/{agy}/installations/{ins}",
            P("installations.read", Path),
            "Read an agency-wide installation",
            get(installations::get),
        )
        .returns::<tessera_store::Installation>(200),
        RouteSpec::new(
            Method::DELETE,
            "/v1/agencies/{agy}/installations/{ins}",
            P("installations.write", Path),
            "Uninstall an agency-wide installation: every token of it is revoked",
            delete(installations::uninstall),
        )
        .empty(),
        RouteSpec::new(
            Method::POST,
            "/v1/agencies/{agy}/accounts/{acc}/installations",
            P("installations.write", Path),
            "Install an app on an account",
            post(installations::install),
        )
        .body::<uc::installations::CreateInstallation>()
        .returns::<tessera_store::Installation>(201),
        RouteSpec::new(
            Method::GET,
            "/v1/agencies/{agy}/accounts/{acc}/installations",
            P("installations.read", Path),
            "List the apps installed on an account",
            get(installations::list),
        )
        .returns::<List<tessera_store::Installation>>(200),
        RouteSpec::new(
            Method::GET,
            "/v1/agencies/{agy}/accounts/{acc}/installations/{ins}",
            P("installations.read", Path),
            "Read an installation",
            get(installations::get),
        )
        .returns::<tessera_store::Installation>(200),
        RouteSpec::new(
            Method::DELETE,
            "/v1/agencies/{agy}/accounts/{acc}/installations/{ins}",
            P("installations.write", Path),
            "Uninstall: every token of the installation is revoked",
            delete(installations::uninstall),
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
            "Export the audit chain as streamed JSON Lines (`application/jsonl`): events and signed checkpoints in chain order, then an `end` line (`?from=&to=` RFC 3339, `?cursor=` to resume; an export not starting at seq 1 starts with its anchoring checkpoint)",
            get(audit::export),
        ),
        RouteSpec::new(
            Method::GET,
            "/v1/agencies/{agy}/audit/verify",
            P("audit_log.read", Path),
            "Verify the agency's audit hash chain against its signed checkpoints and head",
            get(audit::verify),
        )
        .returns::<uc::audit::Verification>(200),
        RouteSpec::new(
            Method::GET,
            "/v1/agencies/{agy}/audit/retention",
            P("audit_log.read", Path),
            "Read the agency's audit retention (days events are kept before pruning)",
            get(audit::retention),
        )
        .returns::<uc::audit::Retention>(200),
        RouteSpec::new(
            Method::PUT,
            "/v1/agencies/{agy}/audit/retention",
            P("audit_log.retention", Path),
            "Set the agency's audit retention, 90 to 36500 days, or null for the default (platform only)",
            put(audit::set_retention),
        )
        .body::<uc::audit::SetRetention>()
        .returns::<uc::audit::Retention>(200),
        RouteSpec::new(
            Method::GET,
            "/v1/catalog/cedar-schema",
            Authenticated,
            "The Cedar schema generated from the catalog (text)",
            get(catalog::schema),
        ),
        RouteSpec::new(
            Method::POST,
            "/v1/check",
            Authenticated,
            "May a principal (default: the caller) exercise a permission on a resource?",
            post(check::check),
        )
        .body::<uc::check::CheckRequest>()
        .returns::<uc::check::CheckResponse>(200),
        RouteSpec::new(
            Method::POST,
            "/v1/check/batch",
            Authenticated,
            "Up to 1,000 checks at one revision",
            post(check::batch),
        )
        .body::<uc::check::BatchRequest>()
        .returns::<uc::check::BatchResponse>(200),
        RouteSpec::new(
            Method::POST,
            "/v1/agencies/{agy}/roles",
            P("roles.write", Path),
            "Create a custom role",
            post(roles::create),
        )
        .body::<uc::roles::CreateRole>()
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
        .body::<uc::roles::UpdateRole>()
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
        .body::<uc::policies::CreatePolicy>()
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
        .returns::<uc::principals::EffectivePermissions>(200),
        RouteSpec::new(
            Method::GET,
            "/v1/agencies/{agy}/accounts/{acc}/principals",
            P("bindings.read", Path),
            "Principals that hold `?permission=` on the account",
            get(check::principals),
        )
        .returns::<uc::principals::Holders>(200),
        RouteSpec::new(
            Method::GET,
            "/v1/revocations",
            P("revocations.read", Path),
            "The revocation feed after `?since=` (`limit`, long-poll `wait`; SSE with `Accept: text/event-stream`, `Last-Event-ID`; 410 `cursor_expired`)",
            get(revocations::list),
        )
        .returns::<uc::revocations::RevocationPage>(200),
        RouteSpec::new(
            Method::GET,
            "/v1/forward-auth",
            Authenticated,
            "Forward auth for a proxy (`X-Original-Method`, `X-Original-URI`): 200 with `X-Tessera-*` identity headers, 401 or 403",
            get(forward_auth::check),
        ),
    ];
    routes.extend(resource_servers::routes());
    routes.extend(reports::routes());
    routes.extend(webhooks::routes());
    routes
}
