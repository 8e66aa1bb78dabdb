//! The client's address behind trusted proxies. `X-Forwarded-For` and `Forwarded` (RFC 7239)
//! are read only when the peer itself is a trusted proxy; the hops are then walked from the
//! right, and the first address that is not a trusted proxy is the client.
//! INVARIANT: a peer outside the trusted ranges can never change its own address: its headers
//! are not read at all. Every use of the client address (rate limits, sign-in backoff, audit,
//! Cedar's `context.ip`) reads the one address this module gives.
//!
//! Which header: `X-Forwarded-For` when the request has one, else `Forwarded`. A proxy that
//! appends to one header does not strip the other, so a client could put a forged address in
//! the header its proxy does not write; set `trusted_proxy_header` to the one your proxies
//! write and the other is ignored.

use std::net::IpAddr;
use std::str::FromStr;

use axum::http::HeaderMap;
use ipnet::IpNet;

/// Which forwarding header the trusted proxies write.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum ForwardedHeader {
    /// `X-Forwarded-For` when present, else `Forwarded`.
    #[default]
    Auto,
    /// Only `X-Forwarded-For`.
    XForwardedFor,
    /// Only `Forwarded` (RFC 7239).
    Forwarded,
}

/// The proxies whose forwarding headers are believed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    nets: Vec<IpNet>,
    header: ForwardedHeader,
}

/// A range that is not a CIDR or an address.
#[derive(Debug, thiserror::Error)]
#[error("`{0}` is not an IP address or a CIDR range (such as 10.0.0.0/8 or fd00::/8)")]
pub struct BadRange(pub String);

impl TrustedProxies {
    /// No proxy is trusted: every client is its peer address.
    pub fn none() -> Self {
        Self::default()
    }

    /// Parses comma- or space-separated CIDRs (a bare address is its own /32 or /128).
    pub fn parse(list: &str, header: ForwardedHeader) -> Result<Self, BadRange> {
        let mut nets = Vec::new();
        for item in list
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
        {
            let net = IpNet::from_str(item)
                .or_else(|_| IpAddr::from_str(item).map(IpNet::from))
                .map_err(|_| BadRange(item.to_owned()))?;
            nets.push(net.trunc());
        }
        Ok(Self { nets, header })
    }

    /// Whether any proxy is trusted.
    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }

    /// The ranges, for the log at start.
    pub fn ranges(&self) -> &[IpNet] {
        &self.nets
    }

    /// Whether `ip` is a trusted proxy.
    pub fn trusts(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.nets.iter().any(|n| n.contains(&ip))
    }

    /// The client's address: the peer's, unless the peer is a trusted proxy; then the
    /// right-most hop of the forwarding header that is not itself a trusted proxy.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.trusts(peer) {
            return peer;
        }
        let xff = headers.get_all("x-forwarded-for").iter().next().is_some();
        let hops = match (self.header, xff) {
            (ForwardedHeader::XForwardedFor, _) | (ForwardedHeader::Auto, true) => {
                x_forwarded_for(headers)
            }
            (ForwardedHeader::Forwarded, _) | (ForwardedHeader::Auto, false) => {
                forwarded_for(headers)
            }
        };
        let mut client = peer;
        for hop in hops.iter().rev() {
            match hop {
                // A hop we cannot read (`unknown`, an obfuscated name, garbage): the proxy that
                // reported it is the last address we know.
                None => return client,
                Some(ip) => {
                    client = ip.to_canonical();
                    if !self.trusts(client) {
                        return client;
                    }
                }
            }
        }
        client
    }
}

/// The hops of every `X-Forwarded-For` line, left to right (`None`: unreadable).
fn x_forwarded_for(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let mut hops = Vec::new();
    for line in headers.get_all("x-forwarded-for") {
        let Ok(text) = line.to_str() else {
            hops.push(None);
            continue;
        };
        hops.extend(text.split(',').map(|h| node(h.trim())));
    }
    hops
}

/// The `for=` of every element of every `Forwarded` line, left to right (RFC 7239 §4).
fn forwarded_for(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let mut hops = Vec::new();
    for line in headers.get_all("forwarded") {
        let Ok(text) = line.to_str() else {
            hops.push(None);
            continue;
        };
        for element in text.split(',') {
            let found = element.split(';').find_map(|pair| {
                let (k, v) = pair.split_once('=')?;
                k.trim()
                    .eq_ignore_ascii_case("for")
                    .then(|| v.trim().trim_matches('"'))
            });
            // An element without `for=` says nothing about the client: not a hop.
            if let Some(v) = found {
                hops.push(node(v));
            }
        }
    }
    hops
}

/// One node: `1.2.3.4`, `1.2.3.4:80`, `::1`, `[::1]`, `[::1]:80` (RFC 7239 §6).
fn node(text: &str) -> Option<IpAddr> {
    if let Ok(ip) = IpAddr::from_str(text) {
        return Some(ip);
    }
    if let Some(rest) = text.strip_prefix('[') {
        let (ip, _) = rest.split_once(']')?;
        return IpAddr::from_str(ip).ok();
    }
    let (ip, port) = text.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    ip.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            if let Ok(v) = HeaderValue::from_str(v) {
                h.append(*k, v);
            }
        }
        h
    }

    fn proxies(list: &str) -> TrustedProxies {
        TrustedProxies::parse(list, ForwardedHeader::Auto).unwrap_or_default()
    }

    #[test]
    fn an_untrusted_peer_cannot_forge_its_address() {
        let t = proxies("10.0.0.0/8");
        let h = headers(&[("x-forwarded-for", "1.2.3.4"), ("forwarded", "for=5.6.7.8")]);
        assert_eq!(t.client_ip(ip("203.0.113.9"), &h), ip("203.0.113.9"));
        assert_eq!(
            TrustedProxies::none().client_ip(ip("10.0.0.1"), &h),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn the_right_most_untrusted_hop_is_the_client() {
        let t = proxies("10.0.0.0/8, 192.168.1.1");
        // The client forged the first entry; the proxies appended the rest.
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 198.51.100.7, 10.1.1.1")]);
        assert_eq!(t.client_ip(ip("10.0.0.2"), &h), ip("198.51.100.7"));
        // Several header lines are one list.
        let h = headers(&[
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-for", "198.51.100.7:5555"),
        ]);
        assert_eq!(t.client_ip(ip("192.168.1.1"), &h), ip("198.51.100.7"));
        // Every hop trusted: the left-most.
        let h = headers(&[("x-forwarded-for", "10.9.9.9, 10.1.1.1")]);
        assert_eq!(t.client_ip(ip("10.0.0.2"), &h), ip("10.9.9.9"));
        // No header: the proxy itself.
        assert_eq!(
            t.client_ip(ip("10.0.0.2"), &HeaderMap::new()),
            ip("10.0.0.2")
        );
        // An unreadable hop stops the walk at the proxy that reported it.
        let h = headers(&[("x-forwarded-for", "198.51.100.7, unknown, 10.1.1.1")]);
        assert_eq!(t.client_ip(ip("10.0.0.2"), &h), ip("10.1.1.1"));
    }

    #[test]
    fn forwarded_is_read_per_rfc_7239() {
        let t = proxies("10.0.0.0/8,::1");
        let h = headers(&[(
            "forwarded",
            "for=6.6.6.6, For=\"[2001:db8:cafe::17]:4711\";proto=https;by=10.0.0.1",
        )]);
        assert_eq!(t.client_ip(ip("10.0.0.2"), &h), ip("2001:db8:cafe::17"));
        assert_eq!(t.client_ip(ip("::1"), &h), ip("2001:db8:cafe::17"));
        let h = headers(&[("forwarded", "for=_hidden, for=10.3.3.3")]);
        assert_eq!(t.client_ip(ip("10.0.0.2"), &h), ip("10.3.3.3"));
    }

    #[test]
    fn the_configured_header_is_the_only_one_read() {
        let t = TrustedProxies::parse("10.0.0.0/8", ForwardedHeader::Forwarded).unwrap_or_default();
        let h = headers(&[
            ("x-forwarded-for", "6.6.6.6"),
            ("forwarded", "for=198.51.100.7"),
        ]);
        assert_eq!(t.client_ip(ip("10.0.0.2"), &h), ip("198.51.100.7"));
        let t =
            TrustedProxies::parse("10.0.0.0/8", ForwardedHeader::XForwardedFor).unwrap_or_default();
        assert_eq!(t.client_ip(ip("10.0.0.2"), &h), ip("6.6.6.6"));
    }

    #[test]
    fn ipv4_mapped_peers_and_bad_ranges() {
        let t = proxies("127.0.0.1");
        let h = headers(&[("x-forwarded-for", "198.51.100.7")]);
        assert_eq!(t.client_ip(ip("::ffff:127.0.0.1"), &h), ip("198.51.100.7"));
        assert!(TrustedProxies::parse("10.0.0.0/33", ForwardedHeader::Auto).is_err());
        assert!(TrustedProxies::parse("nope", ForwardedHeader::Auto).is_err());
        assert!(TrustedProxies::parse("", ForwardedHeader::Auto).is_ok_and(|t| t.is_empty()));
    }
}
