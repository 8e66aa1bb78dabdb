//! One step of a rotation plan and its application to the stored records.
//! INVARIANT: every transition but `Create` names the states it expects its key in, and applying
//! it to a record in any other state fails ([`StaleTransition`]), so of many nodes applying the
//! same plan conditionally exactly one wins.

use rand::{CryptoRng, RngCore};

use crate::jwk::Algorithm;
use crate::keyring::{KeyRecord, KeyState};
use crate::secret::SecretBytes;

/// One step of a rotation plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    /// Generate a new key in `state` (`Pending`, or `Active` only when the issuer has no key to
    /// sign with: bootstrap), to sign from `activates_at`.
    Create {
        alg: Algorithm,
        state: KeyState,
        activates_at: i64,
    },
    /// `Pending → Active`: the key signs from now on.
    Activate { kid: String },
    /// `Active → Retiring` (or `Pending → Retiring` for a pending key that may have signed but
    /// lost to a newer one): it stops signing at `retires_at` and stays published until
    /// `expires_at`.
    BeginRetiring {
        kid: String,
        retires_at: i64,
        expires_at: i64,
    },
    /// `Retiring → Retired`: every token it signed has expired; unpublish it and destroy its
    /// private key.
    Retire { kid: String },
    /// Remove the record: a retired key, or a pending key that never signed and never will.
    /// A store may keep the (private-key-less) row for audit instead.
    Drop { kid: String },
}

/// A transition that no longer fits the records: another node got there first.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("signing key `{kid}` is not in the state the rotation expected; re-plan")]
pub struct StaleTransition {
    /// The key concerned.
    pub kid: String,
}

impl Transition {
    /// The state the transition expects its key in (`None` for [`Transition::Create`]).
    pub fn expected_states(&self) -> &'static [KeyState] {
        match self {
            Transition::Create { .. } => &[],
            Transition::Activate { .. } => &[KeyState::Pending],
            Transition::BeginRetiring { .. } => &[KeyState::Active, KeyState::Pending],
            Transition::Retire { .. } => &[KeyState::Retiring],
            Transition::Drop { .. } => &[KeyState::Retired, KeyState::Pending],
        }
    }

    /// Applies the transition to `records` at `now`, generating and sealing the key of a
    /// [`Transition::Create`] under `envelope_key`.
    pub fn apply(
        &self,
        records: &mut Vec<KeyRecord>,
        now: i64,
        envelope_key: &SecretBytes<32>,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<(), StaleTransition> {
        let kid = match self {
            Transition::Create {
                alg,
                state,
                activates_at,
            } => {
                let (record, _key) =
                    KeyRecord::generate(*alg, *state, now, *activates_at, envelope_key, rng);
                records.push(record);
                return Ok(());
            }
            Transition::Activate { kid }
            | Transition::BeginRetiring { kid, .. }
            | Transition::Retire { kid }
            | Transition::Drop { kid } => kid,
        };
        let stale = || StaleTransition { kid: kid.clone() };
        let index = records
            .iter()
            .position(|r| &r.kid == kid && self.expected_states().contains(&r.state))
            .ok_or_else(stale)?;
        let record = &mut records[index];
        match self {
            Transition::Create { .. } => {}
            Transition::Activate { .. } => {
                record.state = KeyState::Active;
                // A pending key promoted early (recovery) signs from now.
                record.activates_at = record.activates_at.min(now);
            }
            Transition::BeginRetiring {
                retires_at,
                expires_at,
                ..
            } => {
                record.state = KeyState::Retiring;
                record.retires_at = Some(*retires_at);
                record.expires_at = Some(*expires_at);
            }
            Transition::Retire { .. } => {
                record.state = KeyState::Retired;
                zeroize::Zeroize::zeroize(&mut record.sealed_private);
            }
            Transition::Drop { .. } => {
                records.remove(index);
            }
        }
        Ok(())
    }
}

/// Applies `plan` in order (see [`Transition::apply`]).
pub fn apply_plan(
    records: &mut Vec<KeyRecord>,
    plan: &[Transition],
    now: i64,
    envelope_key: &SecretBytes<32>,
    rng: &mut (impl RngCore + CryptoRng),
) -> Result<(), StaleTransition> {
    plan.iter()
        .try_for_each(|t| t.apply(records, now, envelope_key, rng))
}
