//! Sign-in slow-down: after a few failed passwords, each further attempt on the same account or
//! from the same IP waits longer (exponential backoff, capped) before its password is checked.
//! INVARIANT: this only delays, it never refuses: the right password still signs in after the
//! delay, so an attacker who knows a victim's email cannot lock the victim out. Memory is
//! bounded (at most `max_entries` accounts and as many IPs), and failures are forgotten after
//! [`WINDOW_MS`] without one.
//!
//! Why backoff and not lockout: a lockout turns every known email into a denial-of-service
//! switch. A capped delay costs a real user at most a few seconds, yet cuts an online guesser
//! to one guess per cap per account (per node, per concurrent request). The account counter
//! stops guessing one account from many IPs; the IP counter, with a higher threshold, slows one
//! IP spraying many accounts. A success clears the account's counter (the owner is back), but
//! not the IP's (an attacker must not launder an IP by signing in to their own account).
//! Attempts on one account take turns ([`SignInThrottle::account_turn`]): each waits for the
//! previous one to finish, then for the backoff its failure earned, so 40 parallel guesses at
//! the cap take 40 × 5 s, not 5 s. At most [`MAX_WAITERS`] attempts wait per account; more are
//! refused at once (503), which bounds what a flood of one email can hold.
//! Limits: counters live in this process (each node counts on its own).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use sha2::{Digest, Sha256};

/// The most sign-in attempts that may wait for one account's turn.
pub const MAX_WAITERS: usize = 32;
/// The most sign-in attempts one client address may have in progress at once: one address
/// can neither take the whole hashing pool nor fill an account's queue by itself.
pub const MAX_PER_IP_IN_FLIGHT: usize = 2;

/// Failures are forgotten after this long without a new one.
pub const WINDOW_MS: i64 = 15 * 60 * 1000;

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

/// Per account: 3 free failures, then 250 ms after the 4th, 500 ms after the 5th, … up to 5 s.
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

/// A key as stored: SHA-256 of its normalised form, so every entry has the same small size
/// whatever a client sends, and no email address sits in memory.
type Key = [u8; 32];

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    last_failure_ms: i64,
}

impl Entry {
    fn is_live(&self, now_ms: i64) -> bool {
        now_ms.saturating_sub(self.last_failure_ms) < WINDOW_MS
    }
}

/// Failure counters of one kind, at most `max` entries.
#[derive(Debug, Default)]
struct Counters(HashMap<Key, Entry>);

impl Counters {
    fn failures(&self, key: &Key, now_ms: i64) -> u32 {
        self.0
            .get(key)
            .filter(|e| e.is_live(now_ms))
            .map_or(0, |e| e.failures)
    }

    fn record_failure(&mut self, key: Key, now_ms: i64, max: usize) {
        if !self.0.contains_key(&key) && self.0.len() >= max {
            self.make_room(now_ms, max);
        }
        let entry = self.0.entry(key).or_insert(Entry {
            failures: 0,
            last_failure_ms: now_ms,
        });
        if !entry.is_live(now_ms) {
            entry.failures = 0;
        }
        entry.failures = entry.failures.saturating_add(1);
        entry.last_failure_ms = entry.last_failure_ms.max(now_ms);
    }

    /// Drops decayed entries, then, if still full, the least recently failed eighth (at least
    /// one), so a flood of new keys costs amortised O(1) per insertion rather than a scan each.
    fn make_room(&mut self, now_ms: i64, max: usize) {
        self.0.retain(|_, e| e.is_live(now_ms));
        if self.0.len() < max {
            return;
        }
        let mut times: Vec<i64> = self.0.values().map(|e| e.last_failure_ms).collect();
        let evict = (times.len() / 8).max(1);
        let (_, &mut threshold, _) = times.select_nth_unstable(evict - 1);
        self.0.retain(|_, e| e.last_failure_ms > threshold);
    }
}

#[derive(Debug, Default)]
struct Inner {
    accounts: Counters,
    ips: Counters,
}

/// Failed sign-ins per account and per IP, and the delay they impose. Thread-safe; share one
/// per process (e.g. in an `Arc` in the app state).
pub struct SignInThrottle {
    inner: Mutex<Inner>,
    turns: Mutex<HashMap<Key, Arc<tokio::sync::Mutex<()>>>>,
    in_flight: Mutex<HashMap<Key, usize>>,
    max_entries: usize,
}

/// One attempt in progress from a client address; the count drops with it.
pub struct IpSlot<'a> {
    throttle: &'a SignInThrottle,
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
            .throttle
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

/// Too many attempts are already waiting for this account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooManyWaiting;

/// One attempt's exclusive turn on an account; the next waiting attempt goes when it drops.
pub struct AccountTurn<'a> {
    throttle: &'a SignInThrottle,
    key: Key,
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
            .throttle
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

impl SignInThrottle {
    /// A throttle remembering at most `max_entries` accounts and as many IPs (at least one).
    pub fn new(max_entries: usize) -> SignInThrottle {
        SignInThrottle {
            inner: Mutex::new(Inner::default()),
            turns: Mutex::default(),
            in_flight: Mutex::default(),
            max_entries: max_entries.max(1),
        }
    }

    /// Counts an attempt from `ip` in progress, or refuses when [`MAX_PER_IP_IN_FLIGHT`] already
    /// are. Without an address (not served from a socket) nothing is counted.
    pub fn ip_slot(&self, ip: Option<&str>) -> Result<IpSlot<'_>, TooManyWaiting> {
        let Some(ip) = ip else {
            return Ok(IpSlot {
                throttle: self,
                key: None,
            });
        };
        let key = ip_key(ip);
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
            throttle: self,
            key: Some(key),
        })
    }

    /// Waits until no other attempt on this account is in progress, then holds the account
    /// until the returned turn drops. Refuses at once when [`MAX_WAITERS`] already wait.
    pub async fn account_turn(&self, email: &str) -> Result<AccountTurn<'_>, TooManyWaiting> {
        let key = account_key(email);
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
            throttle: self,
            key,
            guard: None,
        };
        turn.guard = Some(lock.lock_owned().await);
        Ok(turn)
    }

    /// How long to wait before checking the password of this attempt: the larger of the
    /// account's and the IP's backoff at `now_ms` (epoch milliseconds).
    pub fn delay(&self, email: &str, ip: Option<&str>, now_ms: i64) -> Duration {
        let inner = self.lock();
        let account = ACCOUNT.delay_ms(inner.accounts.failures(&account_key(email), now_ms));
        let ip = ip.map_or(0, |ip| IP.delay_ms(inner.ips.failures(&ip_key(ip), now_ms)));
        Duration::from_millis(account.max(ip))
    }

    /// Counts a wrong password (or unknown email: both count alike, so the delay reveals
    /// nothing about which accounts exist).
    pub fn record_failure(&self, email: &str, ip: Option<&str>, now_ms: i64) {
        let max = self.max_entries;
        let mut inner = self.lock();
        inner
            .accounts
            .record_failure(account_key(email), now_ms, max);
        if let Some(ip) = ip {
            inner.ips.record_failure(ip_key(ip), now_ms, max);
        }
    }

    /// A successful sign-in: forgets the account's failures. The IP's only decay.
    pub fn record_success(&self, email: &str, ip: Option<&str>, now_ms: i64) {
        let mut inner = self.lock();
        inner.accounts.0.remove(&account_key(email));
        if let Some(ip) = ip {
            let key = ip_key(ip);
            if inner.ips.0.get(&key).is_some_and(|e| !e.is_live(now_ms)) {
                inner.ips.0.remove(&key);
            }
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
            .field("accounts", &inner.accounts.0.len())
            .field("ips", &inner.ips.0.len())
            .finish()
    }
}

/// The account key: the email trimmed and lowercased, hashed.
fn account_key(email: &str) -> Key {
    hash(b"account\0", email.trim().to_lowercase().as_bytes())
}

fn ip_key(ip: &str) -> Key {
    hash(b"ip\0", ip.trim().to_ascii_lowercase().as_bytes())
}

fn hash(kind: &[u8], value: &[u8]) -> Key {
    let mut h = Sha256::new();
    h.update(kind);
    h.update(value);
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_700_000_000_000;
    const IP1: Option<&str> = Some("203.0.113.7");

    fn ms(d: Duration) -> u128 {
        d.as_millis()
    }

    #[test]
    fn no_delay_at_first() {
        let t = SignInThrottle::new(100);
        assert_eq!(t.delay("ann@example.com", IP1, T0), Duration::ZERO);
        assert_eq!(t.delay("ann@example.com", None, T0), Duration::ZERO);
        for i in 0..3 {
            t.record_failure("ann@example.com", IP1, T0 + i);
        }
        // Three typos are free.
        assert_eq!(t.delay("ann@example.com", IP1, T0 + 3), Duration::ZERO);
    }

    #[test]
    fn account_delay_grows_then_caps() {
        let t = SignInThrottle::new(100);
        let mut seen = Vec::new();
        for i in 0..12 {
            t.record_failure("ann@example.com", None, T0 + i);
            seen.push(ms(t.delay("ann@example.com", None, T0 + i)));
        }
        assert_eq!(
            seen,
            [0, 0, 0, 250, 500, 1000, 2000, 4000, 5000, 5000, 5000, 5000]
        );
        // Normalised: case and surrounding space do not dodge it.
        assert_eq!(ms(t.delay(" ANN@Example.COM ", None, T0 + 20)), 5000);
        // Another account from nowhere in particular is unaffected.
        assert_eq!(t.delay("bob@example.com", None, T0 + 20), Duration::ZERO);
        // Many more failures: no overflow, still the cap.
        for i in 0..100 {
            t.record_failure("ann@example.com", None, T0 + 100 + i);
        }
        assert_eq!(ms(t.delay("ann@example.com", None, T0 + 300)), 5000);
    }

    #[test]
    fn ip_delay_spans_accounts_and_is_capped_higher() {
        let t = SignInThrottle::new(100);
        // Spraying one password over many accounts from one IP.
        for i in 0..10 {
            t.record_failure(&format!("user{i}@example.com"), IP1, T0 + i);
        }
        assert_eq!(t.delay("new@example.com", IP1, T0 + 10), Duration::ZERO);
        t.record_failure("user10@example.com", IP1, T0 + 10);
        assert_eq!(ms(t.delay("new@example.com", IP1, T0 + 11)), 250);
        assert_eq!(
            t.delay("new@example.com", Some("198.51.100.1"), T0 + 11),
            Duration::ZERO
        );
        assert_eq!(t.delay("new@example.com", None, T0 + 11), Duration::ZERO);
        for i in 11..40 {
            t.record_failure(&format!("user{i}@example.com"), IP1, T0 + i);
        }
        assert_eq!(ms(t.delay("new@example.com", IP1, T0 + 40)), 10_000);
    }

    #[test]
    fn the_larger_delay_wins() {
        let t = SignInThrottle::new(100);
        for i in 0..5 {
            t.record_failure("ann@example.com", Some(&format!("198.51.100.{i}")), T0 + i);
        }
        // Account: 5 failures → 500 ms; a fresh IP adds nothing.
        assert_eq!(ms(t.delay("ann@example.com", IP1, T0 + 5)), 500);
    }

    #[test]
    fn failures_decay_after_the_window() {
        let t = SignInThrottle::new(100);
        for i in 0..6 {
            t.record_failure("ann@example.com", IP1, T0 + i);
        }
        let last = T0 + 5;
        assert_eq!(
            ms(t.delay("ann@example.com", IP1, last + WINDOW_MS - 1)),
            1000
        );
        assert_eq!(
            t.delay("ann@example.com", IP1, last + WINDOW_MS),
            Duration::ZERO
        );
        // A failure after the window starts a fresh count.
        t.record_failure("ann@example.com", IP1, last + WINDOW_MS);
        assert_eq!(
            t.delay("ann@example.com", IP1, last + WINDOW_MS),
            Duration::ZERO
        );
        // The window slides: each failure keeps the count alive.
        let t = SignInThrottle::new(100);
        for i in 0..6 {
            t.record_failure("bob@example.com", None, T0 + i * (WINDOW_MS - 1));
        }
        let last = T0 + 5 * (WINDOW_MS - 1);
        assert!(last - T0 > WINDOW_MS);
        assert_eq!(ms(t.delay("bob@example.com", None, last + 1)), 1000);
    }

    #[test]
    fn success_clears_the_account_but_not_the_ip() {
        let t = SignInThrottle::new(100);
        for i in 0..12 {
            t.record_failure("ann@example.com", IP1, T0 + i);
        }
        assert_eq!(ms(t.delay("ann@example.com", None, T0 + 12)), 5000);
        assert_eq!(ms(t.delay("zed@example.com", IP1, T0 + 12)), 500);
        t.record_success("Ann@example.com", IP1, T0 + 13);
        assert_eq!(t.delay("ann@example.com", None, T0 + 14), Duration::ZERO);
        assert_eq!(ms(t.delay("ann@example.com", IP1, T0 + 14)), 500);
    }

    #[test]
    fn memory_is_bounded() {
        let t = SignInThrottle::new(64);
        for i in 0..10_000 {
            t.record_failure(
                &format!("spray{i}@example.com"),
                Some(&format!("ip{i}")),
                T0 + i,
            );
            let inner = t.lock();
            assert!(inner.accounts.0.len() <= 64);
            assert!(inner.ips.0.len() <= 64);
        }
        // The most recently failed keys are the ones kept.
        for _ in 0..4 {
            t.record_failure("spray9999@example.com", None, T0 + 10_000);
        }
        assert!(t.delay("spray9999@example.com", None, T0 + 10_001) > Duration::ZERO);
        let inner = t.lock();
        assert!(!inner
            .accounts
            .0
            .contains_key(&account_key("spray0@example.com")));
        assert!(inner
            .accounts
            .0
            .contains_key(&account_key("spray9998@example.com")));
    }

    #[test]
    fn an_attacked_account_survives_a_flood_of_new_keys() {
        let t = SignInThrottle::new(16);
        for i in 0..200 {
            // The attacked account fails again between every few sprayed ones.
            if i % 4 == 0 {
                t.record_failure("victim@example.com", None, T0 + i);
            }
            t.record_failure(&format!("spray{i}@example.com"), None, T0 + i);
        }
        assert_eq!(ms(t.delay("victim@example.com", None, T0 + 200)), 5000);
    }

    #[test]
    fn debug_shows_no_keys() {
        let t = SignInThrottle::new(8);
        t.record_failure("ann@example.com", IP1, T0);
        let s = format!("{t:?}");
        assert_eq!(s, "SignInThrottle { max_entries: 8, accounts: 1, ips: 1 }");
        assert!(SignInThrottle::new(0).max_entries == 1);
    }

    #[test]
    fn shared_between_threads() {
        let t = std::sync::Arc::new(SignInThrottle::new(1000));
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let t = t.clone();
                std::thread::spawn(move || {
                    for i in 0..5 {
                        t.record_failure("ann@example.com", None, T0 + i);
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        // 20 failures: at the cap.
        assert_eq!(ms(t.delay("ann@example.com", None, T0 + 10)), 5000);
    }
}
