use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};

use super::*;

const T0: i64 = 1_700_000_000_000;
const IP1: Option<IpAddr> = Some(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7)));

fn addr(n: u32) -> Option<IpAddr> {
    Some(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n)))
}

fn run<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

fn ms(t: &SignInThrottle, email: &str, ip: Option<IpAddr>, now: i64) -> u128 {
    run(t.assess(email, ip, now)).delay.as_millis()
}

fn fail(t: &SignInThrottle, email: &str, ip: Option<IpAddr>, now: i64) {
    run(t.record_failure(email, ip, now));
}

#[test]
fn no_delay_at_first() {
    let t = SignInThrottle::new(100);
    assert_eq!(ms(&t, "ann@example.com", IP1, T0), 0);
    assert_eq!(ms(&t, "ann@example.com", None, T0), 0);
    for i in 0..3 {
        fail(&t, "ann@example.com", IP1, T0 + i);
    }
    // Three typos are free.
    assert_eq!(ms(&t, "ann@example.com", IP1, T0 + 3), 0);
}

#[test]
fn account_delay_grows_then_caps() {
    let t = SignInThrottle::new(100);
    let mut seen = Vec::new();
    for i in 0..12 {
        fail(&t, "ann@example.com", None, T0 + i);
        seen.push(ms(&t, "ann@example.com", None, T0 + i));
    }
    assert_eq!(
        seen,
        [0, 0, 0, 250, 500, 1000, 2000, 4000, 5000, 5000, 5000, 5000]
    );
    // Normalised: case and surrounding space do not dodge it.
    assert_eq!(ms(&t, " ANN@Example.COM ", None, T0 + 20), 5000);
    // Another account from nowhere in particular is unaffected.
    assert_eq!(ms(&t, "bob@example.com", None, T0 + 20), 0);
    // Many more failures: no overflow, still the cap.
    for i in 0..100 {
        fail(&t, "ann@example.com", None, T0 + 100 + i);
    }
    assert_eq!(ms(&t, "ann@example.com", None, T0 + 300), 5000);
}

#[test]
fn ip_delay_spans_accounts_and_is_capped_higher() {
    let t = SignInThrottle::new(100);
    // Spraying one password over many accounts from one IP.
    for i in 0..10 {
        fail(&t, &format!("user{i}@example.com"), IP1, T0 + i);
    }
    assert_eq!(ms(&t, "new@example.com", IP1, T0 + 10), 0);
    fail(&t, "user10@example.com", IP1, T0 + 10);
    assert_eq!(ms(&t, "new@example.com", IP1, T0 + 11), 250);
    assert_eq!(ms(&t, "new@example.com", addr(1), T0 + 11), 0);
    assert_eq!(ms(&t, "new@example.com", None, T0 + 11), 0);
    for i in 11..40 {
        fail(&t, &format!("user{i}@example.com"), IP1, T0 + i);
    }
    assert_eq!(ms(&t, "new@example.com", IP1, T0 + 40), 10_000);
}

#[test]
fn ipv6_clients_count_by_slash_64() {
    let t = SignInThrottle::new(100);
    let a: Option<IpAddr> = "2001:db8:1:2::1".parse().ok();
    let b: Option<IpAddr> = "2001:db8:1:2:ffff::9".parse().ok();
    for i in 0..12 {
        fail(&t, &format!("user{i}@example.com"), a, T0 + i);
    }
    // Another address of the same /64 is the same client.
    assert_eq!(ms(&t, "new@example.com", b, T0 + 12), 500);
}

#[test]
fn a_clean_address_feels_the_account_at_most_a_second() {
    let t = SignInThrottle::new(100);
    // An attacker hammers the victim's account from one address, then from many.
    for i in 0..20 {
        fail(&t, "victim@example.com", IP1, T0 + i);
    }
    for i in 0..20 {
        fail(
            &t,
            "victim@example.com",
            addr(100 + i),
            T0 + 20 + i64::from(i),
        );
    }
    let attacker = run(t.assess("victim@example.com", IP1, T0 + 50));
    // Its own address's 20 failures: the address's backoff (10 s) beats the account's.
    assert_eq!(attacker.delay.as_millis(), 10_000);
    assert_eq!(attacker.lane, Lane::Known);
    // Each address that failed once is known now, whatever else it does.
    let used = run(t.assess("victim@example.com", addr(100), T0 + 50));
    assert_eq!((used.delay.as_millis(), used.lane), (5000, Lane::Known));
    // The victim, from their own clean address: in their own lane, at most a second.
    let victim = run(t.assess("victim@example.com", addr(7), T0 + 50));
    assert_eq!(victim.account_failures, 40);
    assert_eq!((victim.delay.as_millis(), victim.lane), (1000, Lane::Clean));
    // No address at all (not from a socket): the full account backoff.
    assert_eq!(ms(&t, "victim@example.com", None, T0 + 50), 5000);
}

#[test]
fn the_larger_delay_wins() {
    let t = SignInThrottle::new(100);
    for i in 0..5 {
        fail(&t, "ann@example.com", addr(i), T0 + i64::from(i));
    }
    // Account: 5 failures → 500 ms; a fresh IP adds nothing.
    assert_eq!(ms(&t, "ann@example.com", IP1, T0 + 5), 500);
    // The pair's own failures cost the full backoff even with few account-wide ones.
    let t = SignInThrottle::new(100);
    for i in 0..6 {
        fail(&t, "ann@example.com", IP1, T0 + i);
    }
    run(t.record_success("ann@example.com", addr(1)));
    // The owner signed in elsewhere: the account is clear, the guesser's pair is not.
    let seen = run(t.assess("ann@example.com", IP1, T0 + 6));
    assert_eq!((seen.account_failures, seen.pair_failures), (0, 6));
    assert_eq!(seen.delay.as_millis(), 1000);
}

#[test]
fn failures_decay_after_the_window() {
    let t = SignInThrottle::new(100);
    for i in 0..6 {
        fail(&t, "ann@example.com", IP1, T0 + i);
    }
    let last = T0 + 5;
    assert_eq!(ms(&t, "ann@example.com", IP1, last + WINDOW_MS - 1), 1000);
    assert_eq!(ms(&t, "ann@example.com", IP1, last + WINDOW_MS), 0);
    // A failure after the window starts a fresh count.
    fail(&t, "ann@example.com", IP1, last + WINDOW_MS);
    assert_eq!(ms(&t, "ann@example.com", IP1, last + WINDOW_MS), 0);
    // The window slides: each failure keeps the count alive.
    let t = SignInThrottle::new(100);
    for i in 0..6 {
        fail(&t, "bob@example.com", None, T0 + i * (WINDOW_MS - 1));
    }
    let last = T0 + 5 * (WINDOW_MS - 1);
    assert!(last - T0 > WINDOW_MS);
    assert_eq!(ms(&t, "bob@example.com", None, last + 1), 1000);
}

#[test]
fn success_clears_the_account_but_not_the_ip() {
    let t = SignInThrottle::new(100);
    for i in 0..12 {
        fail(&t, "ann@example.com", IP1, T0 + i);
    }
    assert_eq!(ms(&t, "ann@example.com", None, T0 + 12), 5000);
    assert_eq!(ms(&t, "zed@example.com", IP1, T0 + 12), 500);
    run(t.record_success("Ann@example.com", IP1));
    assert_eq!(ms(&t, "ann@example.com", None, T0 + 14), 0);
    assert_eq!(ms(&t, "ann@example.com", IP1, T0 + 14), 500);
}

#[test]
fn memory_is_bounded() {
    let t = SignInThrottle::new(64);
    for i in 0..10_000 {
        fail(
            &t,
            &format!("spray{i}@example.com"),
            addr(i),
            T0 + i64::from(i),
        );
        let inner = t.lock();
        assert!(inner.accounts.len() <= 64);
        assert!(inner.ips.len() <= 64);
        assert!(inner.pairs.len() <= 64);
    }
    // The most recently failed keys are the ones kept.
    for _ in 0..4 {
        fail(&t, "spray9999@example.com", None, T0 + 10_000);
    }
    assert!(ms(&t, "spray9999@example.com", None, T0 + 10_001) > 0);
    let inner = t.lock();
    assert!(!inner.accounts.contains(&account_key("spray0@example.com")));
    assert!(inner
        .accounts
        .contains(&account_key("spray9998@example.com")));
}

#[test]
fn an_attacked_account_survives_a_flood_of_new_keys() {
    let t = SignInThrottle::new(16);
    for i in 0..200 {
        // The attacked account fails again between every few sprayed ones.
        if i % 4 == 0 {
            fail(&t, "victim@example.com", None, T0 + i);
        }
        fail(&t, &format!("spray{i}@example.com"), None, T0 + i);
    }
    assert_eq!(ms(&t, "victim@example.com", None, T0 + 200), 5000);
}

#[test]
fn debug_shows_no_keys() {
    let t = SignInThrottle::new(8);
    fail(&t, "ann@example.com", IP1, T0);
    let s = format!("{t:?}");
    assert_eq!(
        s,
        "SignInThrottle { max_entries: 8, accounts: 1, ips: 1, shared: false }"
    );
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
                    fail(&t, "ann@example.com", None, T0 + i);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    // 20 failures: at the cap.
    assert_eq!(ms(&t, "ann@example.com", None, T0 + 10), 5000);
}

/// A ledger in memory (what Redis holds for every node), which can be made unreachable.
#[derive(Debug, Default)]
struct FakeLedger {
    counts: Mutex<HashMap<Key, u32>>,
    down: std::sync::atomic::AtomicBool,
}

impl FakeLedger {
    fn up(&self) -> Result<(), ()> {
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            Err(())
        } else {
            Ok(())
        }
    }
}

impl FailureLedger for FakeLedger {
    fn counts<'a>(&'a self, keys: &'a [Key]) -> LedgerFuture<'a, Result<Vec<u32>, ()>> {
        Box::pin(async move {
            self.up()?;
            let c = self.counts.lock().unwrap();
            Ok(keys
                .iter()
                .map(|k| c.get(k).copied().unwrap_or(0))
                .collect())
        })
    }
    fn record_failure<'a>(&'a self, keys: &'a [Key]) -> LedgerFuture<'a, Result<(), ()>> {
        Box::pin(async move {
            self.up()?;
            let mut c = self.counts.lock().unwrap();
            for k in keys {
                *c.entry(*k).or_default() += 1;
            }
            Ok(())
        })
    }
    fn clear<'a>(&'a self, keys: &'a [Key]) -> LedgerFuture<'a, Result<(), ()>> {
        Box::pin(async move {
            self.up()?;
            let mut c = self.counts.lock().unwrap();
            for k in keys {
                c.remove(k);
            }
            Ok(())
        })
    }
}

#[test]
fn nodes_sharing_a_ledger_count_together_and_fall_back_alone() {
    let ledger = Arc::new(FakeLedger::default());
    let node1 = SignInThrottle::with_ledger(100, ledger.clone());
    let node2 = SignInThrottle::with_ledger(100, ledger.clone());
    // Guesses spread over two nodes add up.
    for i in 0..6 {
        let node = if i % 2 == 0 { &node1 } else { &node2 };
        fail(node, "ann@example.com", IP1, T0 + i);
    }
    let seen = run(node2.assess("ann@example.com", IP1, T0 + 6));
    assert!(seen.shared);
    assert_eq!((seen.account_failures, seen.delay.as_millis()), (6, 1000));
    // The ledger down: each node answers from what it saw itself (3 failures each: free).
    ledger.down.store(true, std::sync::atomic::Ordering::SeqCst);
    let alone = run(node2.assess("ann@example.com", IP1, T0 + 6));
    assert!(!alone.shared);
    assert_eq!((alone.account_failures, alone.delay.as_millis()), (3, 0));
    // Back up: a success on one node clears the account for every node.
    ledger
        .down
        .store(false, std::sync::atomic::Ordering::SeqCst);
    run(node1.record_success("ann@example.com", IP1));
    let after = run(node2.assess("ann@example.com", IP1, T0 + 7));
    assert_eq!((after.account_failures, after.pair_failures), (0, 0));
    assert_eq!(after.ip_failures, 6, "the address's failures only decay");
}
