//! What the gate established for a request (`Authorized`): the caller, the agency and account
//! acted in, the route's permission and the request facts. Handlers extract it; its methods
//! check further permissions, refuse grants beyond the caller's own and build audit records.

use std::sync::Arc;

use serde_json::json;
use tessera_core::{AccountId, AgencyId, PermissionIndex, PermissionSet};
use tessera_store::{AuditRecord, Outcome, TenantScope};

use super::admission::Admission;
use super::decide::{decide, effective_of, request_context};
use super::deny::deny;
use super::error::AuthzError;
use crate::audit::action::AuditAction;
use crate::audit::record::{attribute, audit_record};
use crate::caller::{Caller, RequestMeta};
use crate::services::Services;

/// What the gate established; handlers extract it.
#[derive(Clone, Debug)]
pub struct Authorized {
    /// The caller.
    pub caller: Arc<Caller>,
    /// The agency acted in.
    pub agency: AgencyId,
    /// The account acted on, from the path.
    pub account: Option<AccountId>,
    pub(super) permission: Option<(PermissionIndex, &'static str)>,
    pub(super) checked: bool,
    /// The mint, for the scope of `agency` (asked for only by the routes that touch tenant
    /// data, so the check path builds none).
    pub(crate) admission: Arc<Admission>,
    /// Request facts.
    pub meta: Arc<RequestMeta>,
    /// The data keys: this caller's audit records are sealed with the acted-in agency's, which
    /// the gate loaded before the handler runs.
    pub(crate) data_keys: Arc<crate::secrets::DataKeys>,
}

impl Authorized {
    /// For routes any authenticated caller may use: no permission, the caller's own agency.
    pub fn for_caller(state: &Services, caller: Arc<Caller>, meta: Arc<RequestMeta>) -> Self {
        Self {
            admission: state.admission.clone(),
            agency: caller.agency.clone(),
            caller,
            account: None,
            permission: None,
            checked: false,
            meta,
            data_keys: state.data_keys.clone(),
        }
    }

    /// What a list or audit read for this caller must reflect when a read replica may answer
    /// it: the node's `applied` revision and this node's writes to the agency acted in and to
    /// the caller's own agency (see `cluster::replica`).
    pub fn read_floor(&self, applied: i64) -> crate::cluster::replica::Floor<'_> {
        crate::cluster::replica::Floor {
            revision: applied,
            writers: crate::cluster::replica::Writers::Agencies(
                &self.agency,
                Some(&self.caller.agency),
            ),
            untracked: true,
        }
    }

    /// The tenant scope of a route whose target came from the path (already checked).
    pub fn scope(&self) -> Result<TenantScope, AuthzError> {
        if !self.checked {
            return Err(AuthzError::Internal(
                "route declared a body target but read the path scope",
            ));
        }
        Ok(self.admission.admit(self.agency.clone()))
    }

    /// The tenant scope once the tenant gate has passed, before the permission is checked at
    /// a target read from the store (a binding's or key's account). Use it only to load what
    /// that decision needs; act only with the scope `require_at` returns.
    pub fn gate_scope(&self) -> TenantScope {
        self.admission.admit(self.agency.clone())
    }

    /// Checks the route's permission at `account` (or the whole agency) and returns the scope.
    pub async fn require_at(
        &self,
        state: &Services,
        account: Option<&AccountId>,
    ) -> Result<TenantScope, AuthzError> {
        let (ix, name) = self.permission.ok_or(AuthzError::Internal(
            "route without a permission asked for one",
        ))?;
        self.require(state, ix, name, account).await
    }

    /// Checks any permission at a target in this agency.
    pub async fn require(
        &self,
        state: &Services,
        ix: PermissionIndex,
        name: &str,
        account: Option<&AccountId>,
    ) -> Result<TenantScope, AuthzError> {
        let d = decide(
            state,
            &self.caller,
            ix,
            &self.agency,
            account,
            &request_context(state, &self.meta),
            None,
        )
        .await?;
        if d.allowed {
            return Ok(self.admission.admit(self.agency.clone()));
        }
        Err(deny(
            state,
            &self.caller,
            &self.agency,
            account,
            name,
            &d.reason,
            &self.meta,
        )
        .await)
    }

    /// What the caller may do at a target in this agency (for "grant only what you hold").
    pub async fn effective(
        &self,
        state: &Services,
        account: Option<&AccountId>,
    ) -> Result<PermissionSet, AuthzError> {
        effective_of(state, &self.caller, &self.agency, account).await
    }

    /// Refuses a grant of permissions the caller does not hold (I2), naming them, and audits it.
    pub async fn deny_missing(
        &self,
        state: &Services,
        action: AuditAction,
        missing: Vec<String>,
    ) -> AuthzError {
        let message = format!(
            "you cannot grant permissions you do not hold: {}",
            missing.join(", ")
        );
        self.refuse_missing(state, action, None, missing, message)
            .await
    }

    /// Audits and answers a refusal (403) for lacking `missing` to do `action` on `target`.
    pub async fn refuse_missing(
        &self,
        state: &Services,
        action: AuditAction,
        target: Option<&str>,
        missing: Vec<String>,
        message: String,
    ) -> AuthzError {
        let detail = json!({ "missing_permissions": missing, "attempted": action.as_str(), "target": target });
        let record = attribute(
            &self.caller,
            audit_record(
                state,
                &self.caller.principal,
                &self.meta,
                AuditAction::AuthzDenied,
                Some(target.unwrap_or(self.agency.as_str())),
                Outcome::Denied,
                detail,
            ),
        );
        if let Err(e) = crate::audit::sealed::append(state, &self.gate_scope(), &record).await {
            tracing::warn!(error = %e, "could not audit a denied request");
        }
        AuthzError::Missing { message, missing }
    }

    /// An audit record of an act by this caller.
    pub fn audit(
        &self,
        state: &Services,
        action: AuditAction,
        target: Option<&str>,
        detail: serde_json::Value,
    ) -> AuditRecord {
        self.seal(attribute(
            &self.caller,
            audit_record(
                state,
                &self.caller.principal,
                &self.meta,
                action,
                target,
                Outcome::Success,
                detail,
            ),
        ))
    }

    /// Seals a record's personal fields (the client's address and agent, emails and names)
    /// with the acted-in agency's data key, before any store call chains it.
    pub fn seal(&self, record: AuditRecord) -> AuditRecord {
        crate::secrets::personal::seal_cached(
            &self.data_keys,
            &self.admission.admit(self.agency.clone()),
            record,
        )
    }
}
