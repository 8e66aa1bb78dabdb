//! What the index tells beyond a decision: which bindings grant a permission (`explain`), a
//! principal's bindings and accounts (access reviews), a role's holders, and role names for
//! ABAC attributes. None of it is on the check's hot path.

use super::{join, AgencyIndex, PrincipalKey, Slot, EMPTY, WIDE};
use crate::authz::GrantSource;
use crate::ids::{AccountId, BindingId, PrincipalId};
use crate::permission::PermissionIndex;

impl AgencyIndex {
    /// The bindings (and their roles) that grant `permission` to the principal at `account`.
    pub fn explain(
        &self,
        principal: &PrincipalId,
        permission: PermissionIndex,
        account: Option<&AccountId>,
        agency_wide_only: bool,
    ) -> Vec<(GrantSource, String)> {
        let target = self.target(account, agency_wide_only);
        let Some(slot) = self.slot(PrincipalKey::from(principal)) else {
            return Vec::new();
        };
        let start = slot.start as usize;
        self.grants_of(slot)
            .iter()
            .enumerate()
            .filter(|(_, g)| {
                (g.account == WIDE || g.account == target)
                    && self.role_set(g.role).contains(permission)
            })
            .map(|(i, g)| {
                let binding = self.bindings.get(start + i).copied().unwrap_or([0, 0]);
                (
                    GrantSource::Binding(BindingId::from_bits(join(binding))),
                    self.role_name(g.role),
                )
            })
            .collect()
    }

    /// The principal's bindings as the index holds them: (binding, role name or custom
    /// role id, account or `None` for agency-wide), in binding id order (access reviews).
    pub fn bindings_of(
        &self,
        principal: &PrincipalId,
    ) -> Vec<(BindingId, String, Option<AccountId>)> {
        let Some(slot) = self.slot(PrincipalKey::from(principal)) else {
            return Vec::new();
        };
        let start = slot.start as usize;
        let mut out: Vec<(BindingId, String, Option<AccountId>)> = self
            .grants_of(slot)
            .iter()
            .enumerate()
            .map(|(i, g)| {
                let binding = self.bindings.get(start + i).copied().unwrap_or([0, 0]);
                (
                    BindingId::from_bits(join(binding)),
                    self.role_name(g.role),
                    (g.account != WIDE).then(|| self.account_id(g.account)),
                )
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// The accounts on which the principal holds account bindings, in id order: with the
    /// agency level, every place where its permissions can differ.
    pub fn bound_accounts(&self, principal: &PrincipalId) -> Vec<AccountId> {
        let mut out: Vec<AccountId> = self
            .grants_for(principal)
            .iter()
            .filter(|g| g.account != WIDE)
            .map(|g| self.account_id(g.account))
            .collect();
        out.sort();
        out.dedup();
        out
    }

    fn principals(&self) -> impl Iterator<Item = &Slot> {
        self.slots.iter().filter(|s| s.kind != EMPTY)
    }

    /// The principals bound to the role named `role` (a built-in name or a custom role's id),
    /// anywhere in the agency.
    pub fn holders_of(&self, role: &str) -> Vec<PrincipalId> {
        let mut out: Vec<PrincipalKey> = self
            .principals()
            .filter(|s| {
                self.grants_of(s)
                    .iter()
                    .any(|g| self.role_name(g.role) == role)
            })
            .map(Slot::key)
            .collect();
        out.sort();
        out.into_iter().map(PrincipalKey::id).collect()
    }

    /// The principals with at least one binding, in id order, after `cursor`.
    pub fn principals_after(&self, cursor: Option<&PrincipalId>) -> Vec<PrincipalId> {
        let after = cursor.map(PrincipalKey::from);
        let mut keys: Vec<PrincipalKey> = self
            .principals()
            .map(Slot::key)
            .filter(|k| after.is_none_or(|a| *k > a))
            .collect();
        keys.sort();
        keys.into_iter().map(PrincipalKey::id).collect()
    }

    /// The role names and ids a principal holds anywhere in the agency (for ABAC attributes).
    pub fn role_names(&self, principal: &PrincipalId) -> Vec<String> {
        let mut names: Vec<String> = self
            .grants_for(principal)
            .iter()
            .map(|g| self.role_name(g.role))
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// Every grant of `principal` (none if it has no binding here).
    fn grants_for(&self, principal: &PrincipalId) -> Vec<super::Grant> {
        self.slot(PrincipalKey::from(principal))
            .map(|slot| self.grants_of(slot))
            .unwrap_or_default()
    }
}
