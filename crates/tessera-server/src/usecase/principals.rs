//! Who holds what: the effective permissions of one principal, and the principals that hold a
//! permission on an account. Both answer from the engine at a stated revision; policies may
//! still narrow a permission per resource.
//! INVARIANT: only principals the caller may ask about are resolved (`subject::resolve`).

use schemars::JsonSchema;
use serde::Serialize;
use tessera_core::{AccountId, AgencyId, PermissionSet, PrincipalId};
use tessera_store::PageRequest;

use super::subject;
use crate::error::ApiError;
use crate::gate::authorized::Authorized;
use crate::gate::decide::{decide, effective_of, ResourceDesc};
use crate::services::Services;

/// A principal's effective permissions.
#[derive(Debug, Serialize, JsonSchema)]
pub struct EffectivePermissions {
    /// Who.
    pub principal: PrincipalId,
    /// Where.
    pub agency: AgencyId,
    /// Where, if one account.
    pub account: Option<AccountId>,
    /// Permission names, in catalog order (policies may still narrow them per resource).
    pub permissions: Vec<String>,
    /// The revision they are valid at.
    pub revision: i64,
}

/// What `principal` holds in the agency acted in (or on `account`). Route: `bindings.read`,
/// checked here at the agency (or `account`).
pub async fn effective(
    s: &Services,
    auth: &Authorized,
    principal: PrincipalId,
    account: Option<AccountId>,
) -> Result<EffectivePermissions, ApiError> {
    auth.require_at(s, account.as_ref()).await?;
    let agency = auth.agency.clone();
    let subject =
        subject::resolve(s, auth, Some(&principal), &agency, account.as_ref(), None).await?;
    let set = match &subject {
        Some(sub) => effective_of(s, sub, &agency, account.as_ref()).await?,
        None => PermissionSet::EMPTY,
    };
    let entry = s.engine.entry(&agency, false, None).await?;
    Ok(EffectivePermissions {
        principal,
        agency,
        account,
        permissions: s.catalog.permission_names(&set),
        revision: s.engine.valid_at(&entry),
    })
}

/// A principal that holds a permission.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Holder {
    /// Who.
    pub principal: PrincipalId,
}

/// A page of holders.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Holders {
    /// The principals, in id order.
    pub items: Vec<Holder>,
    /// The next page.
    pub next_cursor: Option<String>,
    /// The revision the answer is valid at.
    pub revision: i64,
}

/// The principals that hold `permission` on the account acted on, `limit` at a time after
/// `cursor` (a principal id). Route: `bindings.read` on the account. Further: the permission
/// is a catalog one (400 otherwise).
pub async fn holders(
    s: &Services,
    auth: &Authorized,
    permission: &str,
    cursor: Option<&str>,
    limit: u32,
) -> Result<Holders, ApiError> {
    let scope = auth.scope()?;
    let permission_ix = s
        .catalog
        .permission(permission)
        .ok_or_else(|| ApiError::invalid(format!("unknown permission `{permission}`")))?;
    let cursor = cursor
        .map(str::parse::<PrincipalId>)
        .transpose()
        .map_err(|_| ApiError::invalid("`cursor` is not a cursor this list returned"))?;
    let agency = auth.agency.clone();
    let account = auth.account.clone();
    let entry = s.engine.entry(&agency, false, None).await?;
    // Principals with bindings, and keys whose own scopes grant something.
    let mut candidates: Vec<PrincipalId> = entry.index.principals_after(cursor.as_ref());
    let mut page = PageRequest {
        limit: 200,
        cursor: None,
    };
    loop {
        let keys = s.store.list_api_keys(&scope, &page).await?;
        for k in &keys.items {
            let p = PrincipalId::Key(k.id.clone());
            if !k.scopes.is_empty()
                && k.revoked_at.is_none()
                && cursor.as_ref().is_none_or(|c| p.as_str() > c.as_str())
            {
                candidates.push(p);
            }
        }
        match keys.next_cursor {
            Some(c) => page.cursor = Some(c),
            None => break,
        }
    }
    candidates.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    candidates.dedup();
    let mut items = Vec::new();
    let mut next_cursor = None;
    for p in candidates {
        if items.len() == limit as usize {
            next_cursor = items.last().map(|h: &Holder| h.principal.to_string());
            break;
        }
        let Some(sub) =
            subject::resolve(s, auth, Some(&p), &agency, account.as_ref(), None).await?
        else {
            continue;
        };
        let d = decide(
            s,
            &sub,
            permission_ix,
            &agency,
            account.as_ref(),
            &ResourceDesc::default(),
            None,
        )
        .await?;
        if d.allowed {
            items.push(Holder { principal: p });
        }
    }
    Ok(Holders {
        items,
        next_cursor,
        revision: s.engine.valid_at(&entry),
    })
}
