//! Who goes when: attempts on one account take turns (per lane), and one client address has
//! at most [`MAX_PER_IP_IN_FLIGHT`] attempts in progress. Both maps drop an entry as soon as
//! nobody holds it, so their memory is bounded by the attempts in progress.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use super::counters::Key;

/// The most sign-in attempts that may wait for one account's turn, per lane.
pub const MAX_WAITERS: usize = 32;
/// The most sign-in attempts one client address may have in progress at once: one address
/// can neither take the whole hashing pool nor fill an account's queue by itself.
pub const MAX_PER_IP_IN_FLIGHT: usize = 2;

/// The queue an attempt on an account waits in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lane {
    /// From an address with no failure on record: never behind a known guesser's attempts.
    Clean,
    /// From an address that failed before (or none).
    Known,
}

/// Too many attempts are already waiting for this account (or from this address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooManyWaiting;

/// One account lane's queue: whoever holds the lock has the turn.
type Queue = Arc<tokio::sync::Mutex<()>>;

/// The turn queues and the per-address counts of one node.
#[derive(Debug, Default)]
pub(super) struct Turns {
    turns: Mutex<HashMap<(Key, Lane), Queue>>,
    in_flight: Mutex<HashMap<Key, usize>>,
}

/// One attempt in progress from a client address; the count drops with it.
pub struct IpSlot<'a> {
    turns: &'a Turns,
    key: Option<Key>,
}

impl fmt::Debug for IpSlot<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IpSlot")
    }
}

impl Drop for IpSlot<'_> {
    fn drop(&mut self) {
        let Some(key) = self.key else { return };
        let mut map = self
            .turns
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = map.get_mut(&key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(&key);
            }
        }
    }
}

/// One attempt's exclusive turn on an account's lane; the next waiting attempt goes when it
/// drops.
pub struct AccountTurn<'a> {
    turns: &'a Turns,
    key: (Key, Lane),
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl fmt::Debug for AccountTurn<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccountTurn")
    }
}

impl Drop for AccountTurn<'_> {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut turns = self
            .turns
            .turns
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Only the map holds it now: nobody waits, so the entry goes (memory stays bounded).
        if turns
            .get(&self.key)
            .is_some_and(|m| Arc::strong_count(m) == 1)
        {
            turns.remove(&self.key);
        }
    }
}

impl Turns {
    pub(super) fn ip_slot(&self, key: Option<Key>) -> Result<IpSlot<'_>, TooManyWaiting> {
        let Some(key) = key else {
            return Ok(IpSlot {
                turns: self,
                key: None,
            });
        };
        let mut map = self
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let n = map.entry(key).or_insert(0);
        if *n >= MAX_PER_IP_IN_FLIGHT {
            return Err(TooManyWaiting);
        }
        *n += 1;
        Ok(IpSlot {
            turns: self,
            key: Some(key),
        })
    }

    pub(super) async fn account_turn(
        &self,
        account: Key,
        lane: Lane,
    ) -> Result<AccountTurn<'_>, TooManyWaiting> {
        let key = (account, lane);
        let lock = {
            let mut turns = self.turns.lock().unwrap_or_else(PoisonError::into_inner);
            let lock = turns.entry(key).or_default();
            // Holders: the map, and one per attempt waiting or in progress.
            if Arc::strong_count(lock) > MAX_WAITERS {
                return Err(TooManyWaiting);
            }
            lock.clone()
        };
        // Built before the wait, so a cancelled attempt still cleans up its entry.
        let mut turn = AccountTurn {
            turns: self,
            key,
            guard: None,
        };
        turn.guard = Some(lock.lock_owned().await);
        Ok(turn)
    }
}
