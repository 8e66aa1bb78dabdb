//! The credentials file of `tessera dev seed --emit FILE`: JSON Lines, one per agency (or per
//! sampled agency), mode 0600 (it holds live secrets). The format (docs/SEEDING.md):
//!
//! ```text
//! {"agency":"agy_…","api_key":"tsk_…","api_key_id":"key_…","account":"acc_…","user":"usr_…",
//!  "client_id":"app_…","client_secret":"tcs_…","installation":"ins_…",
//!  "checks":[{"principal":"usr_…","permission":"contacts.read",
//!             "resource":{"type":"contact","agency":"agy_…","account":"acc_…"},"allowed":true}, …]}
//! ```
//!
//! `api_key` is the agency-wide key (scopes `plan::ADMIN_KEY_SCOPES`: `/v1/check` about the
//! agency's principals, admin reads, renaming an account); `account` is an account of the
//! agency to rename or list under; `user` is its admin. `client_id`, `client_secret` and
//! `installation` are a confidential client with an installation in the agency (its own private
//! app, else a marketplace app installed on an account; all three `null` when it has none):
//! `grant_type=client_credentials&installation=ins_…`. `checks` are four questions with the
//! answer the seeded bindings give, allowed and denied mixed where the bindings allow.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use serde_json::{json, Value};
use tessera_core::{Catalog, PermissionSet};

use super::plan::{Grant, Plan, CUSTOM_ROLE_PERMISSIONS};

/// The permissions the checks ask about, each on its catalog resource type.
const CHECK_PERMISSIONS: [&str; 5] = [
    "contacts.read",
    "contacts.delete",
    "conversations.send",
    "billing.write",
    "contacts.write",
];

/// Which agencies to write: all, or `sample` spread evenly.
pub fn chosen(agencies: u64, sample: Option<u64>) -> Vec<u64> {
    match sample {
        Some(k) if k < agencies => (0..k)
            .map(|n| {
                u64::try_from(u128::from(n) * u128::from(agencies) / u128::from(k)).unwrap_or(0)
            })
            .collect(),
        _ => (0..agencies).collect(),
    }
}

/// What user `u`'s bindings grant on account `x`.
fn permissions_on(catalog: &Catalog, grants: &[Grant], x: u64) -> PermissionSet {
    let mut set = PermissionSet::default();
    for g in grants {
        let add = match g {
            Grant::AgencyAdmin => catalog.role("agency_admin").map(|r| r.1),
            Grant::Account(role, y) if *y == x => catalog.role(role).map(|r| r.1),
            Grant::Custom(y) if *y == x => catalog
                .permission_set(&CUSTOM_ROLE_PERMISSIONS.map(String::from))
                .ok(),
            _ => None,
        };
        if let Some(p) = add {
            set = set.union(&p);
        }
    }
    set
}

/// Agency `i`'s four checks: two allowed and two denied where its bindings have both.
pub fn checks(plan: &Plan, catalog: &Catalog, i: u64) -> Vec<Value> {
    let u = u64::from(plan.users_of(i) > 1);
    let grants = plan.grants(i, u);
    let a = plan.accounts_of(i);
    // The accounts of the user's first bindings, then one it has no binding on (if any).
    let mut accounts: Vec<u64> = grants
        .iter()
        .filter_map(|g| match g {
            Grant::Account(_, x) | Grant::Custom(x) => Some(*x),
            Grant::AgencyAdmin => None,
        })
        .take(2)
        .collect();
    if let Some(x) = (0..a).find(|x| {
        !accounts.contains(x)
            && !grants
                .iter()
                .any(|g| matches!(g, Grant::Account(_, y) | Grant::Custom(y) if y == x))
    }) {
        accounts.push(x);
    }
    if accounts.is_empty() {
        accounts.push(0);
    }
    let (mut allowed, mut denied) = (Vec::new(), Vec::new());
    for x in &accounts {
        let held = permissions_on(catalog, &grants, *x);
        for p in CHECK_PERMISSIONS {
            let (Some(ix), Some(def)) = (
                catalog.permission(p),
                catalog
                    .permission(p)
                    .and_then(|ix| catalog.permission_def(ix)),
            ) else {
                continue;
            };
            let is = held.contains(ix);
            let check = json!({
                "principal": plan.user_id(i, u),
                "permission": p,
                "resource": { "type": def.resource, "agency": plan.agency_id(i), "account": plan.account_id(i, *x) },
                "allowed": is,
            });
            if is {
                allowed.push(check)
            } else {
                denied.push(check)
            }
        }
    }
    let mut out = Vec::with_capacity(4);
    let (mut a_it, mut d_it) = (allowed.into_iter(), denied.into_iter());
    while out.len() < 4 {
        let next = if out.len() % 2 == 0 {
            a_it.next().or_else(|| d_it.next())
        } else {
            d_it.next().or_else(|| a_it.next())
        };
        match next {
            Some(c) => out.push(c),
            None => break,
        }
    }
    out
}

/// Agency `i`'s line.
pub fn line(plan: &Plan, catalog: &Catalog, i: u64) -> Value {
    let client = match plan.installations_of(i) {
        0 => None,
        _ => Some((plan.installation(i, 0).0, plan.installation_id(i, 0))),
    };
    json!({
        "agency": plan.agency_id(i),
        "api_key": plan.key_secret(i, 0).expose(),
        "api_key_id": plan.key_id(i, 0),
        "account": plan.account_id(i, 0),
        "user": plan.user_id(i, 0),
        "client_id": client.as_ref().map(|(j, _)| plan.app_id(*j)),
        "client_secret": client.as_ref().map(|(j, _)| plan.app_secret(*j).expose().to_owned()),
        "installation": client.map(|(_, ins)| ins),
        "checks": checks(plan, catalog, i),
    })
}

/// Writes the lines for `agencies` to `path` (mode 0600, replaced atomically).
pub fn write(path: &Path, plan: &Plan, catalog: &Catalog, agencies: &[u64]) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| anyhow::anyhow!("cannot create `{}`: {e}", tmp.display()))?;
    let mut out = std::io::BufWriter::new(file);
    for i in agencies {
        serde_json::to_writer(&mut out, &line(plan, catalog, *i))?;
        out.write_all(b"\n")?;
    }
    out.into_inner()
        .map_err(|e| anyhow::anyhow!("cannot write `{}`: {e}", tmp.display()))?
        .sync_all()?;
    std::fs::rename(&tmp, path)
        .map_err(|e| anyhow::anyhow!("cannot write `{}`: {e}", path.display()))?;
    Ok(())
}
