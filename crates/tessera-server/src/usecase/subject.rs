//! The subject of a check: the caller, or another principal of an agency that the caller may
//! ask about (`bindings.read` there, else the gate's 403/404). Resolved principals are cached in
//! the agency's engine entry, dropped with it on any change of the agency. A user's state comes
//! from the snapshot the entry was built from (its inactive users); a key's from its row.
//! INVARIANT: an inactive principal (disabled user, revoked or expired key) resolves to `None`.

use std::sync::Arc;

use tessera_core::{AccountId, AgencyId, PrincipalId};
use tessera_store::StoreError;

use crate::authn::key_grant;
use crate::caller::Caller;
use crate::engine::{CachedSubject, Engine};
use crate::error::ApiError;
use crate::gate::authorized::Authorized;
use crate::gate::decide::{decide, request_context};
use crate::gate::deny::deny;
use crate::services::Services;

/// The subject of a check about `principal` (default: the caller) in `agency`: checks
/// `bindings.read` there (at `account`) when it is someone else; `None` if inactive. A user's
/// state comes from the agency's index, brought to `at_least` when the caller names one.
pub async fn resolve(
    s: &Services,
    auth: &Authorized,
    principal: Option<&PrincipalId>,
    agency: &AgencyId,
    account: Option<&AccountId>,
    at_least: Option<i64>,
) -> Result<Option<Arc<Caller>>, ApiError> {
    let caller = &auth.caller;
    let Some(p) = principal.filter(|p| **p != caller.principal) else {
        return Ok(Some(caller.clone()));
    };
    let read = s
        .catalog
        .permission("bindings.read")
        .ok_or_else(|| ApiError::internal("catalog lacks `bindings.read`"))?;
    let d = decide(
        s,
        caller,
        read,
        agency,
        account,
        &request_context(s, &auth.meta),
        None,
    )
    .await?;
    if !d.allowed {
        return Err(deny(
            s,
            caller,
            agency,
            account,
            "bindings.read",
            &d.reason,
            &auth.meta,
        )
        .await
        .into());
    }
    let now = s.clock.now();
    let generation = s.engine.generation_of(agency);
    // Same agency as the caller: it exists and its kind is known; across tenants, look it up.
    let is_platform = if *agency == caller.agency {
        caller.is_platform
    } else {
        s.store.get_agency(agency).await?.is_platform
    };
    let entry = s.engine.entry(agency, is_platform, at_least).await?;
    if let Some(hit) = Engine::cached_subject(&entry, p.as_str(), now) {
        return Ok(hit.caller.clone());
    }
    let mut valid_until = None;
    let resolved = match p {
        // From the snapshot the index was built from: no read on the check's path.
        PrincipalId::User(u) => entry.user_active(u.as_str()).then_some((None, None, None)),
        // The gate let the caller ask about principals of `agency`.
        PrincipalId::Key(k) => match s
            .store
            .get_api_key(&s.admission.admit(agency.clone()), k)
            .await
        {
            Ok(key) if key.revoked_at.is_none() && key.expires_at.is_none_or(|at| at > now) => {
                valid_until = key.expires_at;
                key_grant(s, &key).map(|(own, cap)| (Some(key), own, cap))
            }
            Ok(_) => None,
            Err(StoreError::NotFound) => Some((None, None, None)),
            Err(e) => return Err(e.into()),
        },
        // Installations hold no bindings; checks about them answer from nothing (deny).
        PrincipalId::Installation(_) => Some((None, None, None)),
    };
    let subject = resolved.map(|(key, own, cap)| {
        let account_cap = key
            .as_ref()
            .and_then(|k: &tessera_store::ApiKey| k.account.clone());
        Arc::new(Caller {
            principal: p.clone(),
            agency: agency.clone(),
            is_platform,
            credential: key.map_or(
                crate::caller::Credential::None,
                crate::caller::Credential::ApiKey,
            ),
            cap: tessera_core::CredentialCap {
                permissions: cap,
                account: account_cap,
            },
            own,
        })
    });
    s.engine.remember_subject(
        agency,
        &entry,
        p.as_str(),
        CachedSubject {
            caller: subject.clone(),
            valid_until,
        },
        generation,
    );
    Ok(subject)
}
