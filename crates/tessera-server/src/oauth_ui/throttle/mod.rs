//! Sign-in slow-down: after a few failed passwords, each further attempt on the same account or
//! from the same IP waits longer (exponential backoff, capped) before its password is checked.
//! INVARIANT: this only delays, it never refuses a lone attempt: the right password still signs
//! in after the delay, so an attacker who knows a victim's email cannot lock the victim out.
//! Memory is bounded (at most `max_entries` keys of each kind), and failures are forgotten after
//! [`WINDOW_MS`] without one.
//!
//! Why backoff and not lockout: a lockout turns every known email into a denial-of-service
//! switch. A capped delay costs a real user at most a few seconds, yet cuts an online guesser
//! to one guess per cap per account. Three counters, each over [`WINDOW_MS`]:
//! - the account (every address): stops guessing one account from many IPs;
//! - the address (every account), with a higher threshold: slows one IP spraying many accounts;
//! - the pair (this address on this account): the full backoff for whoever keeps failing.
//!
//! **Clean addresses.** An attempt from an address with no failure on record anywhere (a clean
//! IP) feels the account's counter at most [`CLEAN`]'s cap (1 s), and queues in its own lane:
//! however hard an attacker hammers the victim's account, the victim, signing in from their own
//! clean address, waits at most about a second behind other clean first attempts. An attacker
//! gets one such attempt per fresh address; its failure makes the address known at once.
//!
//! Attempts on one account take turns per lane ([`SignInThrottle::account_turn`]): each waits
//! for the previous one to finish, then for the backoff its failure earned, so 40 parallel
//! guesses at the cap take 40 × 5 s, not 5 s. At most [`MAX_WAITERS`] attempts wait per lane;
//! more are refused at once (503), which bounds what a flood of one email can hold.
//!
//! **Cluster-wide.** With a [`FailureLedger`] (Redis, `--redis-url`), the counters are shared by
//! every node, so spreading guesses over nodes gains nothing; this node's own counters are kept
//! too and answer while the ledger is unreachable. Turns stay per node.
//! A success clears the account's and the pair's counters (the owner is back), but not the
//! address's (an attacker must not launder an IP by signing in to their own account).

mod counters;
pub mod ledger;
mod turns;

use std::fmt;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use sha2::{Digest, Sha256};

use counters::Counters;
pub use counters::{Key, WINDOW_MS};
pub use turns::{AccountTurn, IpSlot, Lane, TooManyWaiting, MAX_PER_IP_IN_FLIGHT, MAX_WAITERS};

/// The backoff of one kind of key.
#[derive(Debug, Clone, Copy)]
struct Backoff {
    /// Failures that cost nothing (typos).
    free: u32,
    /// The delay once `free` is used up; it doubles with each further failure.
    base_ms: u64,
    /// The longest delay.
    cap_ms: u64,
}

impl Backoff {
    fn delay_ms(self, failures: u32) -> u64 {
        let extra = failures.saturating_sub(self.free);
        if extra == 0 {
            return 0;
        }
        // 2^16 × base is far past any cap; stopping there keeps the shift in range.
        let doubled = self.base_ms.saturating_mul(1u64 << (extra - 1).min(16));
        doubled.min(self.cap_ms)
    }
}

/// Per account, and per address on an account: 3 free failures, then 250 ms after the 4th,
/// 500 ms after the 5th, … up to 5 s.
const ACCOUNT: Backoff = Backoff {
    free: 3,
    base_ms: 250,
    cap_ms: 5_000,
};
/// Per IP (many users may share one, e.g. behind a NAT): 10 free failures, then up to 10 s.
const IP: Backoff = Backoff {
    free: 10,
    base_ms: 250,
    cap_ms: 10_000,
};
/// What an account's failures cost an attempt from a clean address: at most 1 s.
const CLEAN: Backoff = Backoff {
    free: 3,
    base_ms: 250,
    cap_ms: 1_000,
};

/// The failures on record for one attempt, and the delay they impose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Assessment {
    /// Wait this long before checking the password.
    pub delay: Duration,
    /// Failures on the account, from every address.
    pub account_failures: u32,
    /// Failures from the address, on every account.
    pub ip_failures: u32,
    /// Failures from this address on this account.
    pub pair_failures: u32,
    /// The lane the attempt queues in.
    pub lane: Lane,
    /// Whether the counts came from the cluster-wide ledger.
    pub shared: bool,
}

/// A boxed future (the ledger is an object: its backend lives outside this module).
pub type LedgerFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Failure counts shared by every node (Redis). Each call is bounded by the backend's timeout;
/// an error means "unreachable", and the caller falls back to this node's counters.
pub trait FailureLedger: Send + Sync + fmt::Debug {
    /// The live failures of each key (0 for an unknown one).
    fn counts<'a>(&'a self, keys: &'a [Key]) -> LedgerFuture<'a, Result<Vec<u32>, ()>>;
    /// One more failure for each key; each is forgotten [`WINDOW_MS`] after its last failure.
    fn record_failure<'a>(&'a self, keys: &'a [Key]) -> LedgerFuture<'a, Result<(), ()>>;
    /// Forgets these keys.
    fn clear<'a>(&'a self, keys: &'a [Key]) -> LedgerFuture<'a, Result<(), ()>>;
}

#[derive(Debug, Default)]
struct Inner {
    accounts: Counters,
    ips: Counters,
    pairs: Counters,
}

/// Failed sign-ins per account, per IP and per pair, and the delay they impose. Thread-safe;
/// share one per process (e.g. in an `Arc` in the app state).
pub struct SignInThrottle {
    inner: Mutex<Inner>,
    turns: turns::Turns,
    max_entries: usize,
    ledger: Option<Arc<dyn FailureLedger>>,
}

/// The keys of one attempt: account, address, pair.
struct Keys {
    account: Key,
    ip: Option<Key>,
    pair: Option<Key>,
}

impl Keys {
    fn of(email: &str, ip: Option<IpAddr>) -> Self {
        let account = account_key(email);
        let ip = ip.map(ip_key);
        Self {
            account,
            pair: ip.map(|ip| {
                let mut h = Sha256::new();
                h.update(b"pair\0");
                h.update(account);
                h.update(ip);
                h.finalize().into()
            }),
            ip,
        }
    }
}

impl SignInThrottle {
    /// A throttle remembering at most `max_entries` keys of each kind (at least one), on this
    /// node only.
    pub fn new(max_entries: usize) -> SignInThrottle {
        SignInThrottle {
            inner: Mutex::new(Inner::default()),
            turns: turns::Turns::default(),
            max_entries: max_entries.max(1),
            ledger: None,
        }
    }

    /// The same, sharing its counts with every node through `ledger`.
    pub fn with_ledger(max_entries: usize, ledger: Arc<dyn FailureLedger>) -> SignInThrottle {
        SignInThrottle {
            ledger: Some(ledger),
            ..Self::new(max_entries)
        }
    }

    /// Counts an attempt from `ip` in progress, or refuses when [`MAX_PER_IP_IN_FLIGHT`] already
    /// are. Without an address (not served from a socket) nothing is counted.
    pub fn ip_slot(&self, ip: Option<IpAddr>) -> Result<IpSlot<'_>, TooManyWaiting> {
        self.turns.ip_slot(ip.map(ip_key))
    }

    /// Waits until no other attempt on this account in `lane` is in progress, then holds it
    /// until the returned turn drops. Refuses at once when [`MAX_WAITERS`] already wait.
    pub async fn account_turn(
        &self,
        email: &str,
        lane: Lane,
    ) -> Result<AccountTurn<'_>, TooManyWaiting> {
        self.turns.account_turn(account_key(email), lane).await
    }

    /// The failures on record for an attempt on `email` from `ip` at `now_ms` (epoch ms), and
    /// the delay they impose: the largest of the pair's, the address's and the account's
    /// backoff, the last at most [`CLEAN`]'s cap from a clean address. Without an address
    /// (not served from a socket) the account's full backoff applies.
    pub async fn assess(&self, email: &str, ip: Option<IpAddr>, now_ms: i64) -> Assessment {
        let keys = Keys::of(email, ip);
        let shared = match &self.ledger {
            Some(ledger) => {
                let list: Vec<Key> = [Some(keys.account), keys.ip, keys.pair]
                    .into_iter()
                    .flatten()
                    .collect();
                match ledger.counts(&list).await {
                    Ok(c) if c.len() == list.len() => Some((
                        c[0],
                        c.get(1).copied().unwrap_or(0),
                        c.get(2).copied().unwrap_or(0),
                    )),
                    _ => None,
                }
            }
            None => None,
        };
        let (account, ip_f, pair) = shared.unwrap_or_else(|| {
            let inner = self.lock();
            (
                inner.accounts.failures(&keys.account, now_ms),
                keys.ip.map_or(0, |k| inner.ips.failures(&k, now_ms)),
                keys.pair.map_or(0, |k| inner.pairs.failures(&k, now_ms)),
            )
        });
        let lane = if keys.ip.is_some() && ip_f == 0 {
            Lane::Clean
        } else {
            Lane::Known
        };
        let account_ms = match lane {
            Lane::Clean => CLEAN.delay_ms(account),
            Lane::Known => ACCOUNT.delay_ms(account),
        };
        let ms = account_ms
            .max(ACCOUNT.delay_ms(pair))
            .max(IP.delay_ms(ip_f));
        Assessment {
            delay: Duration::from_millis(ms),
            account_failures: account,
            ip_failures: ip_f,
            pair_failures: pair,
            lane,
            shared: shared.is_some(),
        }
    }

    /// Counts a wrong password (or unknown email: both count alike, so the delay reveals
    /// nothing about which accounts exist), on this node and in the ledger.
    pub async fn record_failure(&self, email: &str, ip: Option<IpAddr>, now_ms: i64) {
        let keys = Keys::of(email, ip);
        {
            let max = self.max_entries;
            let mut inner = self.lock();
            inner.accounts.record_failure(keys.account, now_ms, max);
            if let (Some(ip), Some(pair)) = (keys.ip, keys.pair) {
                inner.ips.record_failure(ip, now_ms, max);
                inner.pairs.record_failure(pair, now_ms, max);
            }
        }
        if let Some(ledger) = &self.ledger {
            let list: Vec<Key> = [Some(keys.account), keys.ip, keys.pair]
                .into_iter()
                .flatten()
                .collect();
            // Unreachable: this node's counters hold the failure (logged by the backend).
            let _ = ledger.record_failure(&list).await;
        }
    }

    /// A successful sign-in: forgets the account's and the pair's failures. The address's only
    /// decay.
    pub async fn record_success(&self, email: &str, ip: Option<IpAddr>) {
        let keys = Keys::of(email, ip);
        {
            let mut inner = self.lock();
            inner.accounts.remove(&keys.account);
            if let Some(pair) = &keys.pair {
                inner.pairs.remove(pair);
            }
        }
        if let Some(ledger) = &self.ledger {
            let list: Vec<Key> = [Some(keys.account), keys.pair]
                .into_iter()
                .flatten()
                .collect();
            let _ = ledger.clear(&list).await;
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The counters stay consistent even if a holder panicked: every update is one step.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for SignInThrottle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.lock();
        f.debug_struct("SignInThrottle")
            .field("max_entries", &self.max_entries)
            .field("accounts", &inner.accounts.len())
            .field("ips", &inner.ips.len())
            .field("shared", &self.ledger.is_some())
            .finish()
    }
}

/// The account key: the email trimmed and lowercased, hashed.
fn account_key(email: &str) -> Key {
    hash(b"account\0", email.trim().to_lowercase().as_bytes())
}

/// The address key: an IPv4 address, or an IPv6 client's /64.
fn ip_key(ip: IpAddr) -> Key {
    hash(b"ip\0", crate::net::client_key(ip).to_string().as_bytes())
}

fn hash(kind: &[u8], value: &[u8]) -> Key {
    let mut h = Sha256::new();
    h.update(kind);
    h.update(value);
    h.finalize().into()
}

#[cfg(test)]
mod tests;
