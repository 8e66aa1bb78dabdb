//! Connection caps: all clients together, and per client address (an IPv6 client by its /64,
//! which one host usually holds whole). A connection is admitted with a `Permit` that gives
//! its place back on drop; a refused one is counted in the metrics.
//!
//! INVARIANT: the counts only change under the lock, so neither cap is ever exceeded.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// The caps and the open connections they count.
#[derive(Debug)]
pub struct Limits {
    max_total: usize,
    max_per_ip: usize,
    open: Mutex<Open>,
}

#[derive(Debug, Default)]
struct Open {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// One admitted connection's place.
#[derive(Debug)]
pub struct Permit {
    limits: Arc<Limits>,
    client: IpAddr,
}

/// The address a per-client cap counts: IPv4 (also when mapped into IPv6) as is, IPv6 by /64.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

impl Limits {
    /// Caps of `max_total` connections, `max_per_ip` from one client.
    pub fn new(max_total: usize, max_per_ip: usize) -> Self {
        Self {
            max_total,
            max_per_ip,
            open: Mutex::default(),
        }
    }

    /// A place for a connection from `ip`, or `None` (counted) when a cap is reached. A
    /// `proxy` (a trusted one, carrying many clients) is held to the global cap only.
    pub fn admit(self: &Arc<Self>, ip: IpAddr, proxy: bool) -> Option<Permit> {
        let client = client_key(ip);
        let Ok(mut open) = self.open.lock() else {
            return None;
        };
        if open.total >= self.max_total {
            drop(open);
            crate::metrics::connection_refused("max_connections");
            return None;
        }
        let n = open.per_ip.entry(client).or_default();
        if *n >= self.max_per_ip && !proxy {
            drop(open);
            crate::metrics::connection_refused("max_connections_per_ip");
            return None;
        }
        *n += 1;
        open.total += 1;
        drop(open);
        crate::metrics::connection_opened();
        Some(Permit {
            limits: self.clone(),
            client,
        })
    }

    /// Open connections, all clients together.
    pub fn open(&self) -> usize {
        self.open.lock().map_or(0, |o| o.total)
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        crate::metrics::connection_closed();
        let Ok(mut open) = self.limits.open.lock() else {
            return;
        };
        open.total = open.total.saturating_sub(1);
        if let Some(n) = open.per_ip.get_mut(&self.client) {
            *n -= 1;
            if *n == 0 {
                open.per_ip.remove(&self.client);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_hold_and_places_come_back() {
        let limits = Arc::new(Limits::new(3, 2));
        let a: IpAddr = "10.0.0.1".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let b: IpAddr = "10.0.0.2".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let a1 = limits.admit(a, false);
        let a2 = limits.admit(a, false);
        assert!(a1.is_some() && a2.is_some());
        assert!(limits.admit(a, false).is_none(), "per-client cap");
        let b1 = limits.admit(b, false);
        assert!(b1.is_some());
        assert!(limits.admit(b, false).is_none(), "global cap");
        drop(a1);
        let b2 = limits.admit(b, false);
        assert!(b2.is_some(), "a closed connection frees its place");
        assert_eq!(limits.open(), 3);
        drop((a2, b1, b2));
        assert_eq!(limits.open(), 0);
    }

    #[test]
    fn a_trusted_proxy_is_held_to_the_global_cap_only() {
        let limits = Arc::new(Limits::new(3, 1));
        let p: IpAddr = "10.0.0.1".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let held: Vec<_> = (0..3).map(|_| limits.admit(p, true)).collect();
        assert!(held.iter().all(Option::is_some));
        assert!(limits.admit(p, true).is_none(), "global cap");
    }

    #[test]
    fn ipv6_clients_count_by_slash_64() {
        let x: IpAddr = "2001:db8:1:2::1"
            .parse()
            .unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let y: IpAddr = "2001:db8:1:2:ffff::9"
            .parse()
            .unwrap_or(IpAddr::from([0, 0, 0, 0]));
        assert_eq!(client_key(x), client_key(y));
        let mapped: IpAddr = "::ffff:10.0.0.1"
            .parse()
            .unwrap_or(IpAddr::from([0, 0, 0, 0]));
        assert_eq!(client_key(mapped), IpAddr::from([10, 0, 0, 1]));
    }
}
