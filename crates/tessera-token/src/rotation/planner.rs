//! The rotation planner: a pure function from the stored key records and the time to the
//! transitions that keep one issuer's keys rotating without downtime (DESIGN.md I6).
//! INVARIANTS (property-tested below): after bootstrap exactly one key is active; a new key is
//! published `publish_ahead` before it signs (only the very first key signs at once); a key
//! stays published until every token it may have signed has expired.

use super::policy::RotationPolicy;
use super::transition::Transition;
use crate::keyring::{signing_order, KeyRecord, KeyState};

/// What to do at `now` so that the keys follow `policy`:
/// - no key to sign with → create one, active at once (bootstrap; the only key that signs
///   without having been published first) — or, if a pending key exists, promote it early;
/// - a pending key whose `activates_at` has come → activate it, and the active key begins
///   retiring, to stay published for `token_lifetime` more;
/// - the active key is `period − publish_ahead` old and has no successor → create a pending key
///   that activates when the active one is `period` old (never sooner than `publish_ahead` from
///   now);
/// - a retiring key whose tokens have all expired → retire it; a retired key → drop it.
///
/// Planning again before applying the plan gives the same plan; applying it and planning again
/// at the same `now` gives at most the drop of the keys it just retired.
pub fn plan_rotation(records: &[KeyRecord], now: i64, policy: &RotationPolicy) -> Vec<Transition> {
    let mut plan = Vec::new();
    let lifetime = policy.token_lifetime_secs;
    let begin_retiring = |r: &KeyRecord| Transition::BeginRetiring {
        kid: r.kid.clone(),
        retires_at: now,
        expires_at: now.saturating_add(lifetime),
    };
    let in_state = |state| {
        records
            .iter()
            .filter(move |r: &&KeyRecord| r.state == state)
    };
    let newest = |a: &&KeyRecord, b: &&KeyRecord| signing_order(a).cmp(&signing_order(b));

    // 1. The key that signs from now on: the newest due pending key, else the newest active.
    let due_pending = in_state(KeyState::Pending).filter(|r| r.activates_at <= now);
    let mut promoted = due_pending.clone().max_by(newest);
    let newest_active = in_state(KeyState::Active).max_by(newest);
    if promoted.is_none() && newest_active.is_none() {
        // Recovery: nothing signs. A pending key has at least been published for a while.
        promoted = in_state(KeyState::Pending).min_by_key(|r| (r.created_at, &r.kid));
    }
    let current: Option<(&KeyRecord, i64)> = match (promoted, newest_active) {
        (Some(p), _) => {
            plan.push(Transition::Activate { kid: p.kid.clone() });
            plan.extend(in_state(KeyState::Active).map(begin_retiring));
            // Due pending keys that lost to a newer one may have signed in between: retire them.
            plan.extend(due_pending.filter(|r| r.kid != p.kid).map(begin_retiring));
            Some((p, p.activates_at.min(now)))
        }
        (None, Some(a)) => {
            // Two active keys (a race between nodes): keep the newest.
            plan.extend(
                in_state(KeyState::Active)
                    .filter(|r| r.kid != a.kid)
                    .map(begin_retiring),
            );
            Some((a, a.activates_at))
        }
        (None, None) => {
            plan.push(Transition::Create {
                alg: policy.alg,
                state: KeyState::Active,
                activates_at: now,
            });
            None
        }
    };

    // 2. Keys waiting to activate: one is enough; extra ones (a race) never signed, drop them.
    let mut waiting: Vec<&KeyRecord> = in_state(KeyState::Pending)
        .filter(|r| r.activates_at > now && promoted.is_none_or(|p| p.kid != r.kid))
        .collect();
    waiting.sort_by(|a, b| newest(a, b));
    if let Some((_, extra)) = waiting.split_first() {
        plan.extend(
            extra
                .iter()
                .map(|r| Transition::Drop { kid: r.kid.clone() }),
        );
    }

    // 3. The successor of the current key, published ahead.
    if let (Some((_, activated_at)), true) = (current, waiting.is_empty()) {
        let rotate_at = activated_at.saturating_add(policy.period_secs);
        if now >= rotate_at.saturating_sub(policy.publish_ahead_secs) {
            plan.push(Transition::Create {
                alg: policy.alg,
                state: KeyState::Pending,
                activates_at: rotate_at.max(now.saturating_add(policy.publish_ahead_secs)),
            });
        }
    }

    // 4. Retiring keys whose every token has expired; retired keys.
    for r in in_state(KeyState::Retiring) {
        // A retiring record without `retires_at` was not written by this planner: keep it
        // published rather than guess.
        if let Some(retires_at) = r.retires_at {
            let until = retires_at
                .saturating_add(lifetime)
                .max(r.expires_at.unwrap_or(i64::MIN));
            if now >= until {
                plan.push(Transition::Retire { kid: r.kid.clone() });
            }
        }
    }
    plan.extend(in_state(KeyState::Retired).map(|r| Transition::Drop { kid: r.kid.clone() }));
    plan
}

/// A rotation started by hand at `now`: publish a new key that signs after `publish_ahead`.
/// Nothing to do while a key is already pending (it activates within `publish_ahead`) or
/// before bootstrap (the scheduled plan creates the first key).
pub fn plan_manual_rotation(
    records: &[KeyRecord],
    now: i64,
    policy: &RotationPolicy,
) -> Vec<Transition> {
    let has = |state| records.iter().any(|r| r.state == state);
    if has(KeyState::Pending) || !has(KeyState::Active) {
        return Vec::new();
    }
    vec![Transition::Create {
        alg: policy.alg,
        state: KeyState::Pending,
        activates_at: now.saturating_add(policy.publish_ahead_secs),
    }]
}

#[cfg(test)]
pub(super) mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::collections::HashSet;

    use proptest::prelude::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::*;
    use crate::jwk::Algorithm;
    use crate::keyring::KeyRing;
    use crate::rotation::transition::{apply_plan, StaleTransition};
    use crate::secret::SecretBytes;

    fn ek() -> SecretBytes<32> {
        SecretBytes::new([8u8; 32])
    }

    pub(in crate::rotation) const POLICY: RotationPolicy = RotationPolicy {
        alg: Algorithm::EdDsa,
        period_secs: 1000,
        publish_ahead_secs: 100,
        token_lifetime_secs: 50,
    };

    fn step(records: &mut Vec<KeyRecord>, now: i64, rng: &mut StdRng) -> Vec<Transition> {
        let plan = plan_rotation(records, now, &POLICY);
        apply_plan(records, &plan, now, &ek(), rng).unwrap();
        plan
    }

    fn states(records: &[KeyRecord]) -> Vec<KeyState> {
        records.iter().map(|r| r.state).collect()
    }

    #[test]
    fn one_full_rotation() {
        use KeyState::*;
        let mut rng = StdRng::seed_from_u64(1);
        let mut records = Vec::new();

        // Bootstrap: one key, active at once.
        let plan = step(&mut records, 0, &mut rng);
        assert!(matches!(
            plan[..],
            [Transition::Create {
                state: Active,
                activates_at: 0,
                ..
            }]
        ));
        let first = records[0].kid.clone();
        assert!(step(&mut records, 0, &mut rng).is_empty());
        assert!(step(&mut records, 899, &mut rng).is_empty());

        // `publish_ahead` before the period ends, the successor is published.
        let plan = step(&mut records, 900, &mut rng);
        assert!(matches!(
            plan[..],
            [Transition::Create {
                state: Pending,
                activates_at: 1000,
                ..
            }]
        ));
        assert_eq!(states(&records), [Active, Pending]);
        let second = records[1].kid.clone();
        assert!(step(&mut records, 999, &mut rng).is_empty());

        // At the end of the period it takes over; the old key starts retiring.
        let plan = step(&mut records, 1000, &mut rng);
        assert_eq!(
            plan,
            [
                Transition::Activate {
                    kid: second.clone()
                },
                Transition::BeginRetiring {
                    kid: first.clone(),
                    retires_at: 1000,
                    expires_at: 1050
                },
            ]
        );
        assert_eq!(states(&records), [Retiring, Active]);
        assert!(step(&mut records, 1049, &mut rng).is_empty());

        // Once its last token has expired it is retired (private key destroyed), then dropped.
        let plan = step(&mut records, 1050, &mut rng);
        assert_eq!(plan, [Transition::Retire { kid: first.clone() }]);
        assert!(records[0].sealed_private.is_empty());
        let plan = step(&mut records, 1051, &mut rng);
        assert_eq!(plan, [Transition::Drop { kid: first }]);
        assert_eq!(states(&records), [Active]);
        assert_eq!(records[0].kid, second);
    }

    #[test]
    fn late_planner_still_publishes_ahead() {
        // The planner did not run for a long time: the successor still gets `publish_ahead`.
        let mut rng = StdRng::seed_from_u64(2);
        let mut records = Vec::new();
        step(&mut records, 0, &mut rng);
        let plan = step(&mut records, 5000, &mut rng);
        assert!(matches!(
            plan[..],
            [Transition::Create {
                state: KeyState::Pending,
                activates_at: 5100,
                ..
            }]
        ));
    }

    #[test]
    fn races_between_nodes_converge() {
        let mut rng = StdRng::seed_from_u64(3);
        // Two nodes bootstrapped at once: two active keys.
        let mut records = Vec::new();
        let boot = plan_rotation(&records, 0, &POLICY);
        apply_plan(&mut records, &boot, 0, &ek(), &mut rng).unwrap();
        apply_plan(&mut records, &boot, 0, &ek(), &mut rng).unwrap();
        let plan = step(&mut records, 1, &mut rng);
        assert!(
            matches!(plan[..], [Transition::BeginRetiring { .. }]),
            "{plan:?}"
        );
        assert_eq!(
            records
                .iter()
                .filter(|r| r.state == KeyState::Active)
                .count(),
            1
        );

        // Two nodes created a successor at once: one is dropped before it ever signs.
        let create: Vec<Transition> = plan_rotation(&records, 900, &POLICY)
            .into_iter()
            .filter(|t| matches!(t, Transition::Create { .. }))
            .collect();
        assert_eq!(create.len(), 1);
        apply_plan(&mut records, &create, 900, &ek(), &mut rng).unwrap();
        apply_plan(&mut records, &create, 900, &ek(), &mut rng).unwrap();
        let plan = step(&mut records, 901, &mut rng);
        let drops = plan.iter().filter(|t| matches!(t, Transition::Drop { .. }));
        assert_eq!(drops.count(), 1, "{plan:?}");
        assert_eq!(
            records
                .iter()
                .filter(|r| r.state == KeyState::Pending)
                .count(),
            1
        );

        // A transition another node already applied is stale.
        let plan = plan_rotation(&records, 1000, &POLICY);
        let mut other = records.clone();
        apply_plan(&mut other, &plan, 1000, &ek(), &mut rng).unwrap();
        assert!(apply_plan(&mut other, &plan[..1], 1000, &ek(), &mut rng).is_err());
        assert!(StaleTransition { kid: "k".into() }
            .to_string()
            .starts_with("signing key"));
    }

    #[test]
    fn recovery_promotes_a_pending_key() {
        let mut rng = StdRng::seed_from_u64(4);
        let (pending, _) =
            KeyRecord::generate(Algorithm::EdDsa, KeyState::Pending, 0, 100, &ek(), &mut rng);
        let mut records = vec![pending];
        let plan = step(&mut records, 10, &mut rng);
        assert!(
            matches!(plan[..], [Transition::Activate { .. }]),
            "{plan:?}"
        );
        assert_eq!(records[0].state, KeyState::Active);
        assert_eq!(records[0].activates_at, 10);
    }

    #[test]
    fn manual_rotation() {
        let mut rng = StdRng::seed_from_u64(5);
        let mut records = Vec::new();
        assert!(plan_manual_rotation(&records, 0, &POLICY).is_empty());
        step(&mut records, 0, &mut rng);
        let plan = plan_manual_rotation(&records, 10, &POLICY);
        assert!(matches!(
            plan[..],
            [Transition::Create {
                state: KeyState::Pending,
                activates_at: 110,
                ..
            }]
        ));
        apply_plan(&mut records, &plan, 10, &ek(), &mut rng).unwrap();
        assert!(plan_manual_rotation(&records, 20, &POLICY).is_empty());
        // The scheduled planner then carries it through.
        assert!(step(&mut records, 109, &mut rng).is_empty());
        assert!(matches!(
            step(&mut records, 110, &mut rng)[0],
            Transition::Activate { .. }
        ));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Simulated time: the planner runs at irregular instants; after each run a token is
        /// issued with the ring's signing key.
        #[test]
        fn rotation_invariants_hold_over_time(
            period in 20i64..5_000,
            ahead_percent in 1i64..100,
            lifetime in 1i64..8_000,
            steps in proptest::collection::vec(1i64..400, 1..250),
            seed in any::<u64>(),
        ) {
            let policy = RotationPolicy {
                alg: Algorithm::EdDsa,
                period_secs: period,
                publish_ahead_secs: (period * ahead_percent / 100).clamp(1, period - 1),
                token_lifetime_secs: lifetime,
            };
            prop_assert_eq!(policy.validate(), Ok(()));
            let max_step = steps.iter().copied().max().unwrap_or(0);
            let mut rng = StdRng::seed_from_u64(seed);
            let mut records: Vec<KeyRecord> = Vec::new();
            let mut tokens: Vec<(String, i64)> = Vec::new(); // (kid, exp)
            let mut bootstrap_kid: Option<String> = None;
            let mut now = 1_700_000_000i64;
            for dt in steps {
                now += dt;
                let plan = plan_rotation(&records, now, &policy);
                apply_plan(&mut records, &plan, now, &ek(), &mut rng).unwrap();
                // Planning again at the same instant only drops the keys just retired.
                let again = plan_rotation(&records, now, &policy);
                prop_assert!(again.iter().all(|t| matches!(t, Transition::Drop { .. })), "{again:?}");
                apply_plan(&mut records, &again, now, &ek(), &mut rng).unwrap();
                prop_assert_eq!(plan_rotation(&records, now, &policy), Vec::<Transition>::new());

                let active: Vec<&KeyRecord> =
                    records.iter().filter(|r| r.state == KeyState::Active).collect();
                prop_assert_eq!(active.len(), 1, "exactly one active key");
                prop_assert!(records.iter().filter(|r| r.state == KeyState::Pending).count() <= 1);
                let bootstrap = bootstrap_kid.get_or_insert_with(|| active[0].kid.clone()).clone();

                let ring = KeyRing::new(&records, &ek()).unwrap();
                let key = ring.signing_key(now).unwrap();
                prop_assert_eq!(key.kid(), active[0].kid.as_str());
                // Published `publish_ahead` before signing (except the bootstrap key).
                if key.kid() != bootstrap {
                    prop_assert!(now - active[0].created_at >= policy.publish_ahead_secs);
                }
                // Rotated on time (the planner only runs every `max_step` at worst).
                prop_assert!(now - active[0].activates_at <= period + 2 * max_step);

                tokens.push((key.kid().to_owned(), now + lifetime));
                tokens.retain(|(_, exp)| *exp > now);
                let jwks = ring.jwks(now);
                let published: HashSet<&str> = jwks["keys"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|k| k["kid"].as_str().unwrap())
                    .collect();
                for (kid, _) in &tokens {
                    prop_assert!(published.contains(kid.as_str()), "signer of a live token unpublished");
                    prop_assert!(ring.verification_key(kid).is_some());
                }
                // Keys without a live token and not current eventually leave: at most the
                // active, the pending and the retiring keys are kept.
                prop_assert!(records.len() <= 3 + tokens.len());
            }
        }
    }
}
