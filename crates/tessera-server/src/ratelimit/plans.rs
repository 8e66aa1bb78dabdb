//! Agencies' limit overrides: a plan (a named set of per-class agency quotas from the
//! configuration) and explicit per-class numbers over it, cached in memory per agency and
//! reloaded when the agency's generation moves (a local write, or the change feed).
//! INVARIANTS: a request never reads the store while its agency's entry is current; the cache
//! is bounded (`MAX_AGENCIES`, cleared beyond it).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use tessera_core::AgencyId;

use super::settings::{Class, Dim, Quota, RateLimitSettings};

const MAX_AGENCIES: usize = 100_000;

/// An agency's overrides.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AgencyLimits {
    /// The plan, if any.
    pub plan: Option<String>,
    /// Explicit per-class aggregate quotas (over the plan's).
    pub overrides: BTreeMap<Class, Quota>,
}

impl AgencyLimits {
    /// Whether nothing is set.
    pub fn is_empty(&self) -> bool {
        self.plan.is_none() && self.overrides.is_empty()
    }
}

/// The overrides as stored (unknown classes or invalid numbers in a row are ignored).
pub fn from_record(rec: Option<&tessera_store::AgencyLimitsRecord>) -> AgencyLimits {
    let Some(rec) = rec else {
        return AgencyLimits::default();
    };
    AgencyLimits {
        plan: rec.plan.clone(),
        overrides: rec
            .overrides
            .iter()
            .filter_map(|(c, q)| {
                Some((Class::from_name(c)?, Quota::new(q.limit, q.period_seconds)?))
            })
            .collect(),
    }
}

/// The agency's aggregate quota for `class`: its explicit number, else its plan's, else the
/// configured default for the `agency` dimension.
pub fn effective(
    settings: &RateLimitSettings,
    limits: Option<&AgencyLimits>,
    class: Class,
) -> Option<Quota> {
    if let Some(l) = limits {
        if let Some(q) = l.overrides.get(&class) {
            return Some(*q);
        }
        if let Some(q) = l
            .plan
            .as_ref()
            .and_then(|p| settings.plans.get(p))
            .and_then(|p| p.get(&class))
        {
            return Some(*q);
        }
    }
    settings.class(class).quotas.get(&Dim::Agency).copied()
}

/// The cache: agency → (generation loaded at, overrides).
#[derive(Debug, Default)]
pub struct Overrides {
    map: RwLock<HashMap<AgencyId, (u64, Arc<AgencyLimits>)>>,
}

impl Overrides {
    /// The cached overrides of `agency`, if loaded at `generation`.
    pub fn get(&self, agency: &AgencyId, generation: u64) -> Option<Arc<AgencyLimits>> {
        let m = self.map.read().ok()?;
        m.get(agency)
            .filter(|(g, _)| *g == generation)
            .map(|(_, l)| l.clone())
    }

    /// Caches the overrides of `agency` loaded at `generation`.
    pub fn put(&self, agency: &AgencyId, generation: u64, limits: Arc<AgencyLimits>) {
        if let Ok(mut m) = self.map.write() {
            if m.len() >= MAX_AGENCIES && !m.contains_key(agency) {
                m.clear();
            }
            m.insert(agency.clone(), (generation, limits));
        }
        crate::metrics::rate_limit_overrides(self.with_overrides());
    }

    /// Cached agencies that have overrides (the `tessera_rate_limit_agency_overrides` gauge).
    pub fn with_overrides(&self) -> usize {
        self.map
            .read()
            .map(|m| m.values().filter(|(_, l)| !l.is_empty()).count())
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_over_plan_over_default() {
        let s = RateLimitSettings::default();
        assert_eq!(effective(&s, None, Class::Check), None);
        let mut l = AgencyLimits {
            plan: Some("free".into()),
            ..AgencyLimits::default()
        };
        let free = s
            .plans
            .get("free")
            .and_then(|p| p.get(&Class::Check))
            .copied();
        assert!(free.is_some());
        assert_eq!(effective(&s, Some(&l), Class::Check), free);
        let q = Quota::new(7, 1);
        l.overrides.insert(
            Class::Check,
            Quota {
                limit: 7,
                period_seconds: 1,
            },
        );
        assert_eq!(effective(&s, Some(&l), Class::Check), q);
    }
}
