//! The listener's settings: timeouts and connection caps, and who may read `/metrics`.

use std::time::Duration;

/// Timeouts and connection caps of the HTTP listener.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetSettings {
    /// A request's head (request line and headers) must arrive within this time from the
    /// connection's start or the request's first byte.
    pub header_timeout: Duration,
    /// A request's whole body must arrive within this time from the end of its head.
    pub body_timeout: Duration,
    /// A kept-alive connection may wait this long for its next request, and a response may
    /// stall this long on a client that does not read it.
    pub idle_timeout: Duration,
    /// Open connections, all clients together.
    pub max_connections: usize,
    /// Open connections from one client address (an IPv6 client: its /64).
    pub max_connections_per_ip: usize,
}

impl Default for NetSettings {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            max_connections: 10_000,
            max_connections_per_ip: 256,
        }
    }
}

/// How the service faces the network: the listener's timeouts and caps, and who may read
/// `/metrics`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HttpSettings {
    /// Timeouts and connection caps.
    pub net: NetSettings,
    /// `/metrics` without a credential (for a scraper on a private network).
    pub metrics_public: bool,
    /// The proxies whose forwarding headers name the client (`--trusted-proxies`).
    pub proxies: std::sync::Arc<super::forwarded::TrustedProxies>,
}
