//! Compact permission sets: one bit per catalog permission.
//!
//! INVARIANT: bit `i` means the catalog permission with index `i`; sets from different
//! catalogs are never mixed (a server holds exactly one catalog).

/// The most permissions one catalog may declare.
pub const MAX_PERMISSIONS: usize = 256;
const WORDS: usize = MAX_PERMISSIONS / 64;

/// Index of a permission in its catalog.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PermissionIndex(pub(crate) u16);

impl PermissionIndex {
    /// The raw index.
    pub fn get(self) -> usize {
        usize::from(self.0)
    }
}

/// A set of catalog permissions, as a fixed-size bitset (32 bytes, `Copy`).
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct PermissionSet([u64; WORDS]);

impl PermissionSet {
    /// The empty set.
    pub const EMPTY: Self = Self([0; WORDS]);

    /// Adds one permission.
    pub fn insert(&mut self, p: PermissionIndex) {
        let i = p.get();
        self.0[i / 64] |= 1 << (i % 64);
    }

    /// Whether the set holds `p`.
    pub fn contains(&self, p: PermissionIndex) -> bool {
        let i = p.get();
        self.0[i / 64] & (1 << (i % 64)) != 0
    }

    /// Union.
    #[must_use]
    pub fn union(&self, other: &Self) -> Self {
        let mut out = *self;
        for (a, b) in out.0.iter_mut().zip(other.0) {
            *a |= b;
        }
        out
    }

    /// Intersection.
    #[must_use]
    pub fn intersect(&self, other: &Self) -> Self {
        let mut out = *self;
        for (a, b) in out.0.iter_mut().zip(other.0) {
            *a &= b;
        }
        out
    }

    /// The permissions of `self` that `other` lacks.
    #[must_use]
    pub fn difference(&self, other: &Self) -> Self {
        let mut out = *self;
        for (a, b) in out.0.iter_mut().zip(other.0) {
            *a &= !b;
        }
        out
    }

    /// Whether every permission of `self` is in `other`.
    pub fn is_subset(&self, other: &Self) -> bool {
        self.difference(other).is_empty()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|w| *w == 0)
    }

    /// The indices in the set, in order.
    pub fn iter(&self) -> impl Iterator<Item = PermissionIndex> + '_ {
        (0..MAX_PERMISSIONS)
            .filter(|i| self.0[i / 64] & (1 << (i % 64)) != 0)
            .filter_map(|i| u16::try_from(i).ok().map(PermissionIndex))
    }

    /// How many permissions the set holds.
    pub fn len(&self) -> usize {
        self.0.iter().map(|w| w.count_ones() as usize).sum()
    }
}

impl std::fmt::Debug for PermissionSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set()
            .entries(self.iter().map(PermissionIndex::get))
            .finish()
    }
}

impl FromIterator<PermissionIndex> for PermissionSet {
    fn from_iter<T: IntoIterator<Item = PermissionIndex>>(iter: T) -> Self {
        let mut s = Self::EMPTY;
        for p in iter {
            s.insert(p);
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn set(ix: &[u16]) -> PermissionSet {
        ix.iter().map(|i| PermissionIndex(*i)).collect()
    }

    proptest! {
        #[test]
        fn algebra_holds(a in proptest::collection::vec(0u16..256, 0..40),
                         b in proptest::collection::vec(0u16..256, 0..40)) {
            let (a, b) = (set(&a), set(&b));
            prop_assert!(a.intersect(&b).is_subset(&a));
            prop_assert!(a.is_subset(&a.union(&b)));
            prop_assert!(a.difference(&b).intersect(&b).is_empty());
            prop_assert_eq!(a.difference(&b).union(&a.intersect(&b)), a);
            prop_assert_eq!(a.iter().count(), a.len());
            prop_assert_eq!(a.iter().collect::<PermissionSet>(), a);
        }
    }

    #[test]
    fn edges_of_the_bitset() {
        let s = set(&[0, 63, 64, 255]);
        assert!(s.contains(PermissionIndex(255)));
        assert!(!s.contains(PermissionIndex(1)));
        assert_eq!(s.len(), 4);
        assert!(PermissionSet::EMPTY.is_empty());
    }
}
