//! Tessera's pure domain: typed ids, the catalog, permission sets and the authorization
//! decision. No IO, no async: storage loads what a decision needs before calling in here.

pub mod abac;
pub mod authz;
pub mod catalog;
pub mod decision;
pub mod fastmap;
pub mod ids;
pub mod index;
pub mod permission;
pub mod scope;
pub mod time;

pub use authz::{
    authorize, CredentialCap, Decision, EngineConfig, Grant, GrantSource, Reason, Subject, Target,
};
pub use catalog::{Audience, Catalog, CatalogError, Level};
pub use decision::{
    decide, evaluate_policies, Outcome, Policies, PolicyInput, BREAK_GLASS_PERMISSIONS,
};
pub use ids::{
    AccountId, AgencyId, AppId, BindingId, EventId, GrantId, IdError, InstallationId, KeyId,
    MessageId, PolicyId, PrincipalId, ResourceServerId, RoleId, UserId, WebhookId,
};
pub use permission::{PermissionIndex, PermissionSet};
pub use scope::{ScopeError, Scopes};
