//! The in-memory authorization index of one agency: role permission bitsets and, per
//! principal, a compact list of grants (account, role), built from a consistent snapshot of the
//! store and answering checks without IO or allocation.
//!
//! INVARIANT: `AgencyIndex::check` decides exactly as the reference `authz::authorize` does on
//! the same grants (a property test holds the two together); the cost of a check depends on
//! the principal's own grants, never on the number of agencies, accounts or principals.
//!
//! Layout, for a check that touches as few cache lines as it can when 100k agencies' indexes do
//! not fit any cache (docs/BENCHMARKS.md, "The index in cache lines"):
//! - principals live in an open-addressing table of 64-byte slots, one cache line each, and a
//!   principal with at most [`INLINE`] grants carries them in its own slot: a check reads one
//!   line for the principal, with no separate control bytes and no grant vector;
//! - accounts are numbered per agency (their table is probed at the same time as the
//!   principal's, the two reads being independent), so a grant is four bytes inline;
//! - the agency is compared with its ULID text held in the index, not through its id's heap
//!   string.

use std::collections::HashMap;
use std::sync::Arc;

use crate::authz::{CredentialCap, Decision, EngineConfig, Reason};
use crate::catalog::Catalog;
use crate::ids::{AccountId, AgencyId, BindingId, PrincipalId, RoleId};
use crate::permission::{PermissionIndex, PermissionSet};

fn split(bits: u128) -> [u64; 2] {
    [(bits >> 64) as u64, bits as u64]
}

fn join(b: [u64; 2]) -> u128 {
    (u128::from(b[0]) << 64) | u128::from(b[1])
}

/// The slot of `key` in a table of `mask + 1` slots: the ULID's random low bits, mixed.
/// Keys are server-minted, so no caller can choose colliding ones.
fn home_slot(bits: [u64; 2], salt: u8, mask: usize) -> usize {
    let x =
        (bits[1] ^ bits[0].rotate_left(29) ^ u64::from(salt)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    // The product's high half mixes every input bit.
    (x >> 32) as usize & mask
}

/// A power-of-two table size at most 3/4 full, with at least one empty slot.
fn table_size(n: usize) -> usize {
    (n + n / 3 + 1).next_power_of_two()
}

/// Principals are keyed by kind and ULID bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct PrincipalKey(u8, u128);

impl From<&PrincipalId> for PrincipalKey {
    fn from(p: &PrincipalId) -> Self {
        match p {
            PrincipalId::User(u) => Self(0, u.bits()),
            PrincipalId::Key(k) => Self(1, k.bits()),
            PrincipalId::Installation(i) => Self(2, i.bits()),
        }
    }
}

impl PrincipalKey {
    fn id(self) -> PrincipalId {
        match self.0 {
            0 => PrincipalId::User(crate::ids::UserId::from_bits(self.1)),
            1 => PrincipalId::Key(crate::ids::KeyId::from_bits(self.1)),
            _ => PrincipalId::Installation(crate::ids::InstallationId::from_bits(self.1)),
        }
    }
}

/// Grants a principal's slot holds itself.
const INLINE: usize = 8;
/// A slot's `kind` when the slot is empty.
const EMPTY: u8 = u8::MAX;
/// A slot's `inline` count when its grants are in `AgencyIndex::spilled`.
const SPILLED: u8 = u8::MAX;
/// A grant's account when it covers every account of the agency.
const WIDE: u32 = u32::MAX;
/// A check's target account when no binding of the agency names it (or at the agency level).
const UNBOUND: u32 = u32::MAX - 1;
/// The same two in a slot's 16-bit inline grants; an account numbered beyond them spills.
const WIDE16: u16 = u16::MAX;
const UNBOUND16: u16 = u16::MAX - 1;

/// One principal and, when they fit, its grants: one cache line.
#[derive(Clone, Copy, Debug)]
#[repr(C, align(64))]
struct Slot {
    key: [u64; 2],
    /// Where its bindings' ids start in `AgencyIndex::bindings`, and how many it has.
    start: u32,
    len: u32,
    /// Where its grants start in `AgencyIndex::spilled`, when they do not fit inline.
    spill: u32,
    kind: u8,
    /// Grants held inline (`len` of them), or [`SPILLED`].
    inline: u8,
    accounts: [u16; INLINE],
    roles: [u16; INLINE],
}

const VACANT: Slot = Slot {
    key: [0, 0],
    start: 0,
    len: 0,
    spill: 0,
    kind: EMPTY,
    inline: 0,
    accounts: [0; INLINE],
    roles: [0; INLINE],
};

impl Slot {
    fn key(&self) -> PrincipalKey {
        PrincipalKey(self.kind, join(self.key))
    }
}

/// One binding as a check reads it: the account's number in the agency (or [`WIDE`]) and the
/// role's index (built-in roles first, then the agency's custom roles).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Grant {
    account: u32,
    role: u16,
}

/// The accounts bindings name, numbered by their slot in an open-addressing table.
#[derive(Clone, Copy, Debug)]
struct AccountSlot {
    key: [u64; 2],
    used: bool,
}

/// The built-in roles' permission sets, shared by every agency's index.
#[derive(Debug)]
pub struct BuiltinRoles {
    names: Vec<String>,
    sets: Vec<PermissionSet>,
    lookup: HashMap<String, u16>,
}

impl BuiltinRoles {
    /// From the catalog.
    pub fn new(catalog: &Catalog) -> Arc<Self> {
        let names: Vec<String> = catalog
            .file()
            .roles
            .iter()
            .map(|r| r.name.clone())
            .collect();
        let sets = names
            .iter()
            .map(|n| catalog.role(n).map(|(_, s)| s).unwrap_or_default())
            .collect();
        let lookup = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), u16::try_from(i).unwrap_or(u16::MAX)))
            .collect();
        Arc::new(Self {
            names,
            sets,
            lookup,
        })
    }
}

/// What the index is built from: one agency's roles and bindings at one revision.
#[derive(Clone, Debug, Default)]
pub struct IndexInput {
    /// Custom roles: id and permissions (already resolved against the catalog).
    pub roles: Vec<(RoleId, PermissionSet)>,
    /// Bindings: id, principal, role (built-in name or `rol_` id), account (`None`: agency-wide).
    pub bindings: Vec<(BindingId, PrincipalId, String, Option<AccountId>)>,
}

/// One agency's index.
#[derive(Debug)]
pub struct AgencyIndex {
    agency: AgencyId,
    /// The agency id's ULID text, held inline: comparing it reads no heap line.
    agency_ulid: [u8; crate::ids::ULID_LEN],
    is_platform: bool,
    revision: i64,
    builtin: Arc<BuiltinRoles>,
    custom: Vec<PermissionSet>,
    custom_ids: Vec<RoleId>,
    /// Principals, open addressing, a power of two long with at least one empty slot.
    slots: Box<[Slot]>,
    /// Accounts named by bindings, the same way; a grant names one by its position.
    accounts: Box<[AccountSlot]>,
    /// The grants of principals with too many to hold inline, grouped by principal.
    spilled: Box<[Grant]>,
    /// Every binding's id, grouped by principal (`Slot::start`) in the order of its grants.
    bindings: Box<[[u64; 2]]>,
}

impl AgencyIndex {
    /// Builds the index. Bindings naming an unknown role are skipped (deny by default) and
    /// reported in the second value.
    pub fn build(
        agency: AgencyId,
        is_platform: bool,
        revision: i64,
        builtin: Arc<BuiltinRoles>,
        input: IndexInput,
    ) -> (Self, Vec<BindingId>) {
        let nb = builtin.sets.len();
        let mut custom = Vec::with_capacity(input.roles.len());
        let mut custom_ids = Vec::with_capacity(input.roles.len());
        let mut custom_lookup = HashMap::with_capacity(input.roles.len());
        for (id, set) in input.roles {
            custom_lookup.insert(id.as_str().to_owned(), nb + custom.len());
            custom.push(set);
            custom_ids.push(id);
        }
        // The accounts first: a grant names its account by slot.
        let mut named: Vec<u128> = input
            .bindings
            .iter()
            .filter_map(|(_, _, _, a)| a.as_ref().map(AccountId::bits))
            .collect();
        named.sort_unstable();
        named.dedup();
        let mut accounts = vec![
            AccountSlot {
                key: [0, 0],
                used: false
            };
            (2 * named.len() + 1).next_power_of_two()
        ]
        .into_boxed_slice();
        let amask = accounts.len() - 1;
        for bits in named {
            let key = split(bits);
            let mut i = home_slot(key, 0, amask);
            while accounts[i].used {
                i = (i + 1) & amask;
            }
            accounts[i] = AccountSlot { key, used: true };
        }
        let mut skipped = Vec::new();
        let mut keyed: Vec<(PrincipalKey, Grant, [u64; 2])> =
            Vec::with_capacity(input.bindings.len());
        for (bid, principal, role, account) in input.bindings {
            let role_ix = builtin
                .lookup
                .get(&role)
                .map(|i| usize::from(*i))
                .or_else(|| custom_lookup.get(&role).copied());
            let Some(role) = role_ix.and_then(|i| u16::try_from(i).ok()) else {
                skipped.push(bid);
                continue;
            };
            let account = match account {
                None => WIDE,
                Some(acc) => Self::find_account(&accounts, split(acc.bits())),
            };
            keyed.push((
                PrincipalKey::from(&principal),
                Grant { account, role },
                split(bid.bits()),
            ));
        }
        keyed.sort_by_key(|(k, _, _)| *k);
        let distinct = keyed.windows(2).filter(|w| w[0].0 != w[1].0).count() + 1;
        let mut slots = vec![VACANT; table_size(distinct)].into_boxed_slice();
        let mask = slots.len() - 1;
        let bindings: Box<[[u64; 2]]> = keyed.iter().map(|(_, _, b)| *b).collect();
        let mut spilled = Vec::new();
        let mut i = 0;
        while i < keyed.len() {
            let key = keyed[i].0;
            let start = i;
            while i < keyed.len() && keyed[i].0 == key {
                i += 1;
            }
            let mine: Vec<Grant> = keyed[start..i].iter().map(|(_, g, _)| *g).collect();
            let mut slot = Slot {
                key: split(key.1),
                start: u32::try_from(start).unwrap_or(u32::MAX),
                len: u32::try_from(mine.len()).unwrap_or(0),
                kind: key.0,
                inline: SPILLED,
                ..VACANT
            };
            let fits = |g: &Grant| g.account == WIDE || g.account < u32::from(UNBOUND16);
            if mine.len() <= INLINE && mine.iter().all(fits) {
                for (j, g) in mine.iter().enumerate() {
                    slot.accounts[j] = if g.account == WIDE {
                        WIDE16
                    } else {
                        u16::try_from(g.account).unwrap_or(UNBOUND16)
                    };
                    slot.roles[j] = g.role;
                }
                slot.inline = u8::try_from(mine.len()).unwrap_or(SPILLED);
            } else {
                slot.spill = u32::try_from(spilled.len()).unwrap_or(u32::MAX);
                spilled.extend_from_slice(&mine);
            }
            let mut at = home_slot(slot.key, slot.kind, mask);
            while slots[at].kind != EMPTY {
                at = (at + 1) & mask;
            }
            slots[at] = slot;
        }
        let mut agency_ulid = [0; crate::ids::ULID_LEN];
        if let Some(text) = agency.as_str().as_bytes().get(AgencyId::PREFIX.len()..) {
            if text.len() == agency_ulid.len() {
                agency_ulid.copy_from_slice(text);
            }
        }
        let index = Self {
            agency_ulid,
            agency,
            is_platform,
            revision,
            builtin,
            custom,
            custom_ids,
            slots,
            accounts,
            spilled: spilled.into_boxed_slice(),
            bindings,
        };
        (index, skipped)
    }

    /// The agency.
    pub fn agency(&self) -> &AgencyId {
        &self.agency
    }

    /// Whether `agency` is this index's agency (its ULID compared with the text held inline;
    /// every `AgencyId` has the same prefix).
    pub fn is_agency(&self, agency: &AgencyId) -> bool {
        agency.as_str().as_bytes().get(AgencyId::PREFIX.len()..) == Some(&self.agency_ulid[..])
    }

    /// Whether this is the platform tenant.
    pub fn is_platform(&self) -> bool {
        self.is_platform
    }

    /// The store revision the index reflects.
    pub fn revision(&self) -> i64 {
        self.revision
    }

    /// A rough size in bytes, for the cache's memory budget.
    pub fn approx_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + std::mem::size_of_val(&*self.slots)
            + std::mem::size_of_val(&*self.accounts)
            + std::mem::size_of_val(&*self.spilled)
            + std::mem::size_of_val(&*self.bindings)
            + self.custom.capacity() * (std::mem::size_of::<PermissionSet>() + 40)
    }

    fn role_set(&self, role: u16) -> &PermissionSet {
        let r = usize::from(role);
        if r < self.builtin.sets.len() {
            &self.builtin.sets[r]
        } else {
            self.custom
                .get(r - self.builtin.sets.len())
                .unwrap_or(&PermissionSet::EMPTY)
        }
    }

    fn role_name(&self, role: u16) -> String {
        let r = usize::from(role);
        if r < self.builtin.names.len() {
            self.builtin.names[r].clone()
        } else {
            self.custom_ids
                .get(r - self.builtin.names.len())
                .map(|id| id.to_string())
                .unwrap_or_default()
        }
    }

    /// An account's number, or [`UNBOUND`] when no binding names it.
    fn find_account(accounts: &[AccountSlot], key: [u64; 2]) -> u32 {
        let mask = accounts.len() - 1;
        let mut i = home_slot(key, 0, mask);
        loop {
            let a = &accounts[i];
            if !a.used {
                return UNBOUND;
            }
            if a.key == key {
                return u32::try_from(i).unwrap_or(UNBOUND);
            }
            i = (i + 1) & mask;
        }
    }

    fn account_id(&self, n: u32) -> AccountId {
        let key = self.accounts.get(n as usize).map_or([0, 0], |a| a.key);
        AccountId::from_bits(join(key))
    }

    fn slot(&self, key: PrincipalKey) -> Option<&Slot> {
        let bits = split(key.1);
        let mask = self.slots.len() - 1;
        let mut i = home_slot(bits, key.0, mask);
        loop {
            let s = &self.slots[i];
            if s.kind == EMPTY {
                return None;
            }
            if s.key == bits && s.kind == key.0 {
                return Some(s);
            }
            i = (i + 1) & mask;
        }
    }

    /// The grants of a principal that has too many to hold inline.
    fn spilled_of(&self, slot: &Slot) -> &[Grant] {
        let (s, n) = (slot.spill as usize, slot.len as usize);
        self.spilled.get(s..s + n).unwrap_or(&[])
    }

    /// Every grant of the slot's principal, in the order of its bindings in `bindings`.
    fn grants_of(&self, slot: &Slot) -> Vec<Grant> {
        if slot.inline == SPILLED {
            return self.spilled_of(slot).to_vec();
        }
        let n = usize::from(slot.inline);
        slot.accounts[..n]
            .iter()
            .zip(&slot.roles[..n])
            .map(|(a, r)| Grant {
                account: if *a == WIDE16 { WIDE } else { u32::from(*a) },
                role: *r,
            })
            .collect()
    }

    /// The account a check targets, numbered (`UNBOUND`: the agency level, across tenants, or
    /// an account no binding names, where only agency-wide grants apply).
    fn target(&self, account: Option<&AccountId>, agency_wide_only: bool) -> u32 {
        match account {
            Some(a) if !agency_wide_only => Self::find_account(&self.accounts, split(a.bits())),
            _ => UNBOUND,
        }
    }

    /// The union of the role permissions of the principal's bindings covering `account`
    /// (`None`: the agency level, which only agency-wide bindings cover). With
    /// `agency_wide_only`, account bindings are ignored (cross-tenant use).
    pub fn held(
        &self,
        principal: &PrincipalId,
        account: Option<&AccountId>,
        agency_wide_only: bool,
    ) -> PermissionSet {
        // Two independent reads, so the processor overlaps them: the account's number and the
        // principal's slot.
        let target = self.target(account, agency_wide_only);
        let Some(slot) = self.slot(PrincipalKey::from(principal)) else {
            return PermissionSet::EMPTY;
        };
        let mut out = PermissionSet::EMPTY;
        if slot.inline != SPILLED {
            let t = u16::try_from(target).unwrap_or(UNBOUND16).min(UNBOUND16);
            let n = usize::from(slot.inline);
            for (a, r) in slot.accounts[..n].iter().zip(&slot.roles[..n]) {
                if *a == WIDE16 || *a == t {
                    out = out.union(self.role_set(*r));
                }
            }
        } else {
            for g in self.spilled_of(slot) {
                if g.account == WIDE || g.account == target {
                    out = out.union(self.role_set(g.role));
                }
            }
        }
        out
    }
}

/// One check against the indexes.
#[derive(Clone, Copy, Debug)]
pub struct Check<'a> {
    /// Who.
    pub principal: &'a PrincipalId,
    /// The index of the principal's own agency.
    pub home: &'a AgencyIndex,
    /// A grant the credential carries itself (an API key's scopes), with its account.
    pub own_grant: Option<(&'a PermissionSet, Option<&'a AccountId>)>,
    /// The credential's cap.
    pub cap: &'a CredentialCap,
    /// What.
    pub permission: PermissionIndex,
    /// Where: the agency.
    pub agency: &'a AgencyId,
    /// Where: the account, for account-level resources.
    pub account: Option<&'a AccountId>,
}

/// The permissions `c.principal` may exercise at the target, and whether that crosses tenants.
pub fn effective(c: &Check<'_>, cfg: EngineConfig) -> Result<(PermissionSet, bool), Reason> {
    let cap = |s: PermissionSet| match &c.cap.permissions {
        Some(cap) => s.intersect(cap),
        None => s,
    };
    let own = |account: Option<&AccountId>, agency_wide_only: bool| match c.own_grant {
        Some((set, None)) => *set,
        Some((set, Some(bound))) if !agency_wide_only && account == Some(bound) => *set,
        _ => PermissionSet::EMPTY,
    };
    let cross = !c.home.is_agency(c.agency);
    if cross {
        let platform_wide = cap(c.home.held(c.principal, None, true).union(&own(None, true)));
        if !(c.home.is_platform() && platform_wide.contains(cfg.cross_tenant)) {
            return Err(Reason::OtherTenant);
        }
    }
    if let Some(bound) = &c.cap.account {
        if c.account != Some(bound) {
            return Err(Reason::OutsideCredentialAccount);
        }
    }
    let held = c
        .home
        .held(c.principal, c.account, cross)
        .union(&own(c.account, cross));
    Ok((cap(held), cross))
}

/// Decides a check (RBAC and the credential cap; ABAC is applied by the caller after).
pub fn check(c: &Check<'_>, cfg: EngineConfig) -> Decision {
    match effective(c, cfg) {
        Err(reason) => Decision {
            allowed: false,
            reason,
        },
        Ok((set, cross_tenant)) if set.contains(c.permission) => Decision {
            allowed: true,
            reason: Reason::Granted {
                via: Vec::new(),
                cross_tenant,
            },
        },
        // Without a scope cap nothing was capped away: the permission is simply not granted.
        Ok(_) if c.cap.permissions.is_none() => Decision {
            allowed: false,
            reason: Reason::NotGranted,
        },
        Ok(_) => {
            // Say whether a grant existed but the cap removed it.
            let uncapped = Check {
                cap: &CredentialCap {
                    permissions: None,
                    account: c.cap.account.clone(),
                },
                ..*c
            };
            let reason = match effective(&uncapped, cfg) {
                Ok((set, _)) if set.contains(c.permission) => Reason::OutsideCredentialScope,
                _ => Reason::NotGranted,
            };
            Decision {
                allowed: false,
                reason,
            }
        }
    }
}

mod reviews;

#[cfg(test)]
mod tests;
