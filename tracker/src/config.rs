//! The tracker's configuration: a plain struct with defaults, checked by `validate`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use crate::error::Error;
use crate::registry::RegistryLimits;

/// The port a tracker listens on when none is given.
pub const DEFAULT_PORT: u16 = 7000;

/// The shortest TTL a tracker takes: peers re-announce at most once a second, and every
/// third of the TTL, so a 3 s TTL leaves room for two late re-announces.
pub const MIN_TTL: Duration = Duration::from_secs(3);

/// Configuration of a [`Tracker`](crate::Tracker): a plain struct with defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackerConfig {
    /// Where to listen (default `0.0.0.0:7000`).
    pub bind_addr: SocketAddr,
    /// How long a registration lives without a re-announce (default 60 s, at least
    /// [`MIN_TTL`]). Peers are told to re-announce every third of it.
    pub ttl: Duration,
    /// Most peers registered at once (default 10,000).
    pub max_peers: usize,
    /// Most peers registered from one source IP address (default 1,000), so one host
    /// cannot fill the registry.
    pub max_per_source: usize,
    /// Most addresses in one answer (default 256).
    pub max_response: usize,
    /// Most connections open at once (default 4,096). Past it, a connection from a source
    /// holding fewer connections than the busiest source takes the place of that source's
    /// oldest one; otherwise it is closed at once. The process needs a file-descriptor
    /// limit above this (see `docs/tracker.md`).
    pub max_connections: usize,
    /// Most connections open at once from one source IP address (default 256): one host
    /// holding idle connections cannot keep the others out (it holds at most a sixteenth of
    /// `max_connections`). Each peer keeps one session open, so this is also how many peers
    /// one address can have online through this tracker: a household or an office behind
    /// one NAT router, or a host running many peers.
    pub max_connections_per_source: usize,
    /// Time a connection has, from being accepted, to send its whole request (a request is
    /// under 100 bytes) and take its whole answer (default 2 s). Past it, it is closed.
    pub request_timeout: Duration,
    /// How often a one-line summary (peers, requests and refusals per second, open
    /// connections, resident memory) is logged at `info` (default every 60 s; `None`:
    /// never).
    pub summary_interval: Option<Duration>,
    /// Where to serve the same figures in the Prometheus text format, over HTTP at
    /// `/metrics` (default `None`: not served). Keep it on a private address: the figures
    /// are harmless, but they are nobody else's business.
    pub stats_addr: Option<SocketAddr>,
    /// Also run a Mainline DHT node (BEP 5) on this UDP port of `bind_addr`'s address, in
    /// server mode with no bootstrap node of its own: the first node of a private DHT that
    /// peers bootstrap from (`--dht-bootstrap`). Default `None`: no node. Port 0 picks a
    /// free one ([`Tracker::dht_addr`](crate::Tracker::dht_addr)). IPv4 only. See
    /// `docs/tracker.md` for what it costs.
    pub dht_port: Option<u16>,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        TrackerConfig {
            bind_addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), DEFAULT_PORT),
            ttl: Duration::from_secs(60),
            max_peers: 10_000,
            max_per_source: 1_000,
            max_response: 256,
            max_connections: 4_096,
            max_connections_per_source: 256,
            request_timeout: Duration::from_secs(2),
            summary_interval: Some(Duration::from_secs(60)),
            stats_addr: None,
            dht_port: None,
        }
    }
}

impl TrackerConfig {
    /// The re-announce interval peers are told, in seconds: a third of the TTL, at least 1.
    pub fn interval_secs(&self) -> u32 {
        u32::try_from((self.ttl.as_secs() / 3).max(1)).unwrap_or(u32::MAX)
    }

    /// Checks that every value is in range.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |what: String| Err(Error::Config(what));
        if self.ttl < MIN_TTL {
            // Peers re-announce every whole second at the fastest: a shorter TTL would
            // expire live peers between two re-announces.
            return bad(format!("ttl must be at least {} s", MIN_TTL.as_secs()));
        }
        if self.max_connections == 0 || self.max_connections_per_source == 0 {
            return bad("max_connections and max_connections_per_source must be positive".into());
        }
        if self.request_timeout.is_zero() {
            return bad("request_timeout must be positive".into());
        }
        if self.dht_port.is_some() && !self.bind_addr.is_ipv4() {
            // The `mainline` crate speaks IPv4 only.
            return bad(format!(
                "the DHT node needs an IPv4 bind address, not {}",
                self.bind_addr.ip()
            ));
        }
        if self.summary_interval.is_some_and(|i| i.is_zero()) {
            return bad("summary_interval must be positive (None turns the summary off)".into());
        }
        Ok(())
    }

    pub(crate) fn registry_limits(&self) -> RegistryLimits {
        RegistryLimits {
            ttl: self.ttl,
            max_peers: self.max_peers,
            max_per_source: self.max_per_source,
            max_response: self.max_response,
        }
    }
}
