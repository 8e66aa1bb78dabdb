//! The address ranges a webhook must not reach unless private targets are allowed (SSRF):
//! pure classification, shared by the check at creation (`target`) and at delivery (`client`).
//!
//! INVARIANT: an IPv4 address embedded in an IPv6 one (mapped, compatible, NAT64, 6to4) is
//! judged as that IPv4 address or refused outright.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Whether an address is one a webhook must not reach (with private targets refused).
pub fn forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => forbidden_v4(a),
        IpAddr::V6(a) => forbidden_v6(a),
    }
}

fn forbidden_v4(a: Ipv4Addr) -> bool {
    let [o0, o1, o2, _] = a.octets();
    a.is_unspecified()
        || a.is_loopback()
        || a.is_private()
        || a.is_link_local()
        || a.is_multicast()
        || a.is_broadcast()
        || a.is_documentation()
        || o0 == 0 // "this network"
        || (o0 == 100 && (64..=127).contains(&o1)) // CGNAT 100.64/10
        || (o0 == 192 && o1 == 0 && o2 == 0) // IETF protocol assignments 192.0.0/24
        || (o0 == 198 && (o1 == 18 || o1 == 19)) // benchmarking 198.18/15
        || o0 >= 240 // reserved 240/4
}

fn forbidden_v6(a: Ipv6Addr) -> bool {
    if let Some(v4) = a.to_ipv4_mapped() {
        return forbidden_v4(v4);
    }
    let s = a.segments();
    a.is_unspecified()
        || a.is_loopback()
        || a.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
        || (s[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
        || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated) fec0::/10
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] == 0x0064 && s[1] == 0xff9b) // NAT64: embeds an IPv4 address
        || (s[0] == 0x2002) // 6to4: embeds an IPv4 address
        || (s[0] == 0 && s[1] == 0 && s[2] == 0 && s[3] == 0 && s[4] == 0 && s[5] == 0)
    // IPv4-compatible ::a.b.c.d
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn internal_addresses_are_forbidden() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "ff02::1",
            "64:ff9b::7f00:1",
            "2002:7f00:1::1",
        ] {
            assert!(forbidden(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "1.1.1.1"] {
            assert!(!forbidden(ip.parse().unwrap()), "{ip}");
        }
    }
}
