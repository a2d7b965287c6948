//! What a DHT engine is given: the room's infohash, and a plain configuration struct with
//! defaults (bootstrap nodes, timeouts, intervals, caps).

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use crate::config::Resolver;
use crate::error::{Error, Result};

/// The public Mainline bootstrap nodes, used when no `--dht-bootstrap` list is given (the
/// list the `mainline` crate uses). Tests and private networks replace them.
pub const DEFAULT_BOOTSTRAP: [&str; 4] = [
    "router.bittorrent.com:6881",
    "dht.transmissionbt.com:6881",
    "dht.libtorrent.org:25401",
    "relay.pkarr.org:6881",
];

/// The 20 bytes a room is announced under in the DHT. Derive them from the room's secret
/// (see "The DHT" in `docs/networking.md`): the DHT sees only these bytes, never the
/// room's name.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct InfoHash(pub [u8; 20]);

impl fmt::Debug for InfoHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InfoHash({self})")
    }
}

impl fmt::Display for InfoHash {
    /// Lower-case hex, as BitTorrent tools print infohashes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// Configuration of a [`DhtEngine`](super::DhtEngine): a plain struct with defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DhtConfig {
    /// Nodes to join the DHT through, as `HOST:PORT` (default [`DEFAULT_BOOTSTRAP`]).
    /// Host names are resolved by [`DhtEngine::start`](super::DhtEngine::start) (by
    /// [`Peer::start`](crate::Peer::start) with the peer's [`Resolver`]); only
    /// IPv4 addresses are used (`mainline` speaks IPv4 only).
    pub bootstrap: Vec<String>,
    /// Local address of the engine's UDP socket (default `0.0.0.0`, every interface).
    pub bind_ip: Ipv4Addr,
    /// Local UDP port (default 0: any free one, so several peers can run on one host).
    pub udp_port: u16,
    /// How long a DHT request waits for its answer (default 500 ms; `mainline`'s own is
    /// 2 s). A lookup or an announce ends when every node asked has answered or timed out,
    /// so this bounds how long each takes; a shorter one misses slow nodes. Answers that
    /// come stream out at once whatever it is.
    pub request_timeout: Duration,
    /// Time between lookups (default 60 s). A newcomer finds the peers already there with
    /// its first lookups and greets them, so the repeats only catch what those missed and
    /// heal splits. While lookups keep finding new addresses (a node answers with a random
    /// sample of at most 10 of its peers), the next comes after 2 s instead, until two in a
    /// row find nothing new, at most 15 in a row. While lookups find nobody at all, the
    /// next comes after 2 s, then 4 s, 8 s... up to this interval: a peer that nobody
    /// greets (it started first, or it does not announce) finds a later one in seconds.
    pub lookup_interval: Duration,
    /// Time between announces (default 15 min, well inside the 30 min public nodes keep an
    /// announce). A lookup follows each announce at once.
    pub announce_interval: Duration,
    /// Most distinct addresses one lookup reports (default 256); the rest of its answers
    /// are dropped.
    pub max_per_lookup: usize,
    /// Capacity of the event channel, in events (default 64). When the embedder falls
    /// behind, new events are dropped (and logged): the next lookup reports every address
    /// again.
    pub event_capacity: usize,
}

impl Default for DhtConfig {
    fn default() -> Self {
        DhtConfig {
            bootstrap: DEFAULT_BOOTSTRAP.iter().map(|s| (*s).to_owned()).collect(),
            bind_ip: Ipv4Addr::UNSPECIFIED,
            udp_port: 0,
            request_timeout: Duration::from_millis(500),
            lookup_interval: Duration::from_secs(60),
            announce_interval: Duration::from_secs(15 * 60),
            max_per_lookup: 256,
            event_capacity: 64,
        }
    }
}

impl DhtConfig {
    /// Checks that every value is in range.
    pub fn validate(&self) -> Result<()> {
        let bad = |what: &str| Err(Error::Config(what.to_owned()));
        if self.bootstrap.is_empty() {
            return bad("the DHT needs at least one bootstrap node");
        }
        if self.request_timeout.is_zero() || self.request_timeout > Duration::from_secs(30) {
            return bad("the DHT request timeout must be between 1 ms and 30 s");
        }
        if self.lookup_interval < Duration::from_millis(100) {
            return bad("the DHT lookup interval must be at least 100 ms");
        }
        if self.announce_interval < Duration::from_millis(100) {
            return bad("the DHT announce interval must be at least 100 ms");
        }
        if self.max_per_lookup == 0 || self.event_capacity == 0 {
            return bad("max_per_lookup and event_capacity must be positive");
        }
        Ok(())
    }

    /// The bootstrap nodes' IPv4 addresses, as `resolver` finds them. A name that does not
    /// resolve is logged and skipped; none at all is an error. Blocks while names resolve
    /// (DNS).
    pub(crate) fn resolve_bootstrap(&self, resolver: &Resolver) -> Result<Vec<SocketAddrV4>> {
        let mut found = Vec::new();
        let mut last_error = String::from("no IPv4 address");
        for host in &self.bootstrap {
            match resolver.resolve(host) {
                Ok(addrs) => {
                    let before = found.len();
                    found.extend(addrs.into_iter().filter_map(|a| match a {
                        SocketAddr::V4(v4) => Some(v4),
                        SocketAddr::V6(_) => None,
                    }));
                    if found.len() == before {
                        log::warn!("DHT bootstrap node {host} has no IPv4 address");
                    }
                }
                Err(e) => {
                    log::warn!("{e}");
                    last_error = match e {
                        Error::Resolve { reason, .. } => reason,
                        other => other.to_string(),
                    };
                }
            }
        }
        found.sort_unstable();
        found.dedup();
        if found.is_empty() {
            return Err(Error::Resolve {
                addr: self.bootstrap.join(","),
                reason: last_error,
            });
        }
        Ok(found)
    }
}

/// Parses a `--dht-bootstrap` value: `HOST:PORT` items separated by commas (spaces around
/// them allowed). Each item needs a host and a port from 1 to 65535; names are not
/// resolved here.
pub fn parse_bootstrap(list: &str) -> Result<Vec<String>> {
    let bad = |item: &str, why: &str| {
        Err(Error::Config(format!(
            "DHT bootstrap node {item:?}: {why} (expected HOST:PORT)"
        )))
    };
    let mut nodes = Vec::new();
    for item in list.split(',').map(str::trim) {
        if item.is_empty() {
            return bad(item, "empty");
        }
        let Some((host, port)) = item.rsplit_once(':') else {
            return bad(item, "no port");
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return bad(item, "no host");
        }
        match port.parse::<u16>() {
            Ok(p) if p > 0 => nodes.push(item.to_owned()),
            _ => return bad(item, "bad port"),
        }
    }
    Ok(nodes)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_default_bootstrap_list_is_the_public_mainline_one() {
        let config = DhtConfig::default();
        assert_eq!(
            config.bootstrap,
            [
                "router.bittorrent.com:6881",
                "dht.transmissionbt.com:6881",
                "dht.libtorrent.org:25401",
                "relay.pkarr.org:6881",
            ]
        );
        // The same list as the crate's, so that a change there is noticed here.
        assert_eq!(DEFAULT_BOOTSTRAP, mainline::DEFAULT_BOOTSTRAP_NODES);
        assert_eq!(
            parse_bootstrap(&config.bootstrap.join(",")).unwrap(),
            config.bootstrap
        );
        config.validate().unwrap();
    }

    #[test]
    fn a_bootstrap_list_replaces_the_default_one() {
        assert_eq!(
            parse_bootstrap("10.77.0.1:6881, localhost:7000,[::1]:9").unwrap(),
            ["10.77.0.1:6881", "localhost:7000", "[::1]:9"]
        );
        for bad in [
            "",
            "10.0.0.1",
            "10.0.0.1:0",
            "10.0.0.1:70000",
            ":6881",
            "a:1,,b:2",
            "a:x",
        ] {
            let err = parse_bootstrap(bad).unwrap_err();
            assert!(matches!(err, Error::Config(_)), "{bad:?}: {err}");
        }
    }

    #[test]
    fn literal_addresses_resolve_without_dns_and_ipv6_is_left_out() {
        let config = DhtConfig {
            bootstrap: vec![
                "127.0.0.1:6881".into(),
                "127.0.0.1:6881".into(),
                "[::1]:6881".into(),
            ],
            ..DhtConfig::default()
        };
        assert_eq!(
            config.resolve_bootstrap(&Resolver::system()).unwrap(),
            ["127.0.0.1:6881".parse::<SocketAddrV4>().unwrap()]
        );
        let only_v6 = DhtConfig {
            bootstrap: vec!["[::1]:6881".into()],
            ..DhtConfig::default()
        };
        assert!(matches!(
            only_v6.resolve_bootstrap(&Resolver::system()),
            Err(Error::Resolve { .. })
        ));
    }

    #[test]
    fn out_of_range_values_are_refused() {
        let ok = DhtConfig::default();
        let cases = [
            DhtConfig {
                bootstrap: vec![],
                ..ok.clone()
            },
            DhtConfig {
                request_timeout: Duration::ZERO,
                ..ok.clone()
            },
            DhtConfig {
                request_timeout: Duration::from_secs(31),
                ..ok.clone()
            },
            DhtConfig {
                lookup_interval: Duration::from_millis(10),
                ..ok.clone()
            },
            DhtConfig {
                announce_interval: Duration::ZERO,
                ..ok.clone()
            },
            DhtConfig {
                max_per_lookup: 0,
                ..ok.clone()
            },
            DhtConfig {
                event_capacity: 0,
                ..ok.clone()
            },
        ];
        for config in cases {
            assert!(
                matches!(config.validate(), Err(Error::Config(_))),
                "{config:?}"
            );
        }
    }

    #[test]
    fn an_infohash_prints_as_hex() {
        let mut bytes = [0u8; 20];
        bytes[0] = 0xab;
        bytes[19] = 0x01;
        let hash = InfoHash(bytes);
        assert_eq!(hash.to_string(), format!("ab{}01", "00".repeat(18)));
        assert_eq!(format!("{hash:?}"), format!("InfoHash({hash})"));
    }
}
