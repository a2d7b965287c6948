//! Configuration of a peer: a plain struct with defaults.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::dht::DhtConfig;
use crate::discovery::Discovery;
use crate::protocol::{
    DEFAULT_MAX_FRAME_BYTES, DEFAULT_MAX_TEXT_BYTES, HARD_MAX_FRAME_BYTES, Room,
};
use crate::{Error, Result};

/// How a peer joins the network when it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Start the ServerSide and connect to nobody: the first peer of a network.
    Alone,
    /// Listen to these peers (`host:port` each) without asking them to listen back.
    /// Starting fails if any of them cannot be reached.
    Manual(Vec<String>),
    /// Find the room's peers through one or more discovery sources (a tracker, the local
    /// network, the Mainline DHT) and link to each: a hello so that it listens back (a
    /// full mesh), retries with back-off, keep-alive. [`Mode::tracker`], [`Mode::lan`] and
    /// [`Mode::dht`] make the one-source modes.
    Discover(Discovery),
}

impl Mode {
    /// Tracker mode: ask the tracker at this `host:port` for the peers, register, listen to
    /// each of them and greet each with a hello so that it listens back. The tracker
    /// session stays open: the tracker introduces peers behind NAT routers on it.
    pub fn tracker(addr: impl Into<String>) -> Mode {
        Mode::Discover(Discovery {
            tracker: Some(addr.into()),
            ..Discovery::default()
        })
    }

    /// LAN mode: find the peers of this room on the local network by multicast DNS
    /// (DNS-SD service `_p2pchat._tcp`) and form the same full mesh as through a tracker.
    pub fn lan() -> Mode {
        Mode::Discover(Discovery {
            lan: true,
            ..Discovery::default()
        })
    }

    /// DHT mode: find the peers of this room through the Mainline DHT (`config` says
    /// which bootstrap nodes, and how often to look up) and form the same full mesh.
    pub fn dht(config: DhtConfig) -> Mode {
        Mode::Discover(Discovery {
            dht: Some(config),
            ..Discovery::default()
        })
    }

    /// The discovery sources, in [`Mode::Discover`].
    pub fn discovery(&self) -> Option<&Discovery> {
        match self {
            Mode::Discover(discovery) => Some(discovery),
            Mode::Alone | Mode::Manual(_) => None,
        }
    }
}

/// Limits that protect a peer from its network. The defaults are the ones the design pins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Longest chat text, in bytes of UTF-8 (default 64 KiB). Longer texts are refused by
    /// [`Peer::send`](crate::Peer::send), and a link that delivers one is closed.
    pub max_text_bytes: usize,
    /// Longest frame on the wire, in bytes (default 1 MiB, at most 16 MiB).
    pub max_frame_bytes: usize,
    /// Most inbound connections at once, handshaking or listening (default 1024). Past it,
    /// new connections are closed at once.
    pub max_inbound: usize,
    /// Bytes that may wait in one listener's queue (default 16 MiB): how far a listener may
    /// fall behind the sender. A [`send`](crate::Peer::send) that would take the slowest
    /// listener past it waits for that listener (at most [`Timeouts::stall`]); a listener
    /// that takes nothing for that long is disconnected and reported with
    /// [`Departure::Overflow`](crate::Departure::Overflow). The sender's memory for queued
    /// messages stays within this bound.
    pub listener_queue_bytes: usize,
    /// Most peers taken from one discovery source's list at a time: a tracker answer, the
    /// addresses of the DHT's recent lookups, the LAN's (default 256).
    pub max_tracker_peers: usize,
    /// Most connections being made at once to answer other peers' hellos (default 64).
    /// Past it a hello is not answered; in tracker mode the next announce's list brings
    /// that peer again. This bounds the threads and sockets that hellos naming addresses
    /// that never answer can make a peer spend.
    pub max_connect_backs: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_text_bytes: DEFAULT_MAX_TEXT_BYTES,
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
            max_inbound: 1024,
            listener_queue_bytes: 16 << 20,
            max_tracker_peers: 256,
            max_connect_backs: 64,
        }
    }
}

/// Timings of a peer. Defaults detect a vanished peer within about 11 s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeouts {
    /// Time allowed to open a TCP connection (default 5 s).
    pub connect: Duration,
    /// Time allowed for the other side's whole handshake (default 5 s).
    pub handshake: Duration,
    /// A link idle this long gets a keep-alive ping (default 3 s).
    pub keepalive: Duration,
    /// A link silent this long is declared dead (default 10 s).
    pub peer: Duration,
    /// How often idle link threads wake to check the above (default 1 s).
    pub tick: Duration,
    /// How long two peers behind NAT routers keep trying to connect to each other when a
    /// tracker introduces them (default 5 s); past it, [`Event::Unreachable`] says so.
    ///
    /// [`Event::Unreachable`]: crate::Event::Unreachable
    pub punch: Duration,
    /// A listener that takes nothing for this long while messages wait for it is
    /// disconnected ([`Departure::Overflow`](crate::Departure::Overflow)); and the longest
    /// [`Peer::send`](crate::Peer::send) waits for room in the slowest listener's queue
    /// (default 10 s).
    pub stall: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(5),
            handshake: Duration::from_secs(5),
            keepalive: Duration::from_secs(3),
            peer: Duration::from_secs(10),
            tick: Duration::from_secs(1),
            punch: Duration::from_secs(5),
            stall: Duration::from_secs(10),
        }
    }
}

/// Turns a `host:port` into socket addresses: the system's resolver (std's
/// `ToSocketAddrs`, that is `getaddrinfo`) unless a program or a test gives its own.
///
/// A peer calls it only from the thread that calls [`Peer::start`](crate::Peer::start) or
/// [`Peer::connect`](crate::Peer::connect), never from a thread of its own: a host name
/// lookup cannot be interrupted, so none of the peer's threads is ever blocked in one when
/// it closes. (The tracker's name is looked up once, at start.)
///
/// ```
/// use p2p_core::{PeerConfig, Resolver};
/// let mut config = PeerConfig::new("alice");
/// // Every name leads to one test peer.
/// config.resolver = Resolver::new(|_name| Ok(vec!["127.0.0.1:7001".parse().unwrap()]));
/// ```
#[derive(Clone)]
pub struct Resolver(Arc<ResolveFn>);

type ResolveFn = dyn Fn(&str) -> std::io::Result<Vec<SocketAddr>> + Send + Sync;

impl Resolver {
    /// The system's resolver (one value shared by every configuration that uses it, so
    /// that such configurations compare equal).
    pub fn system() -> Resolver {
        static SYSTEM: OnceLock<Resolver> = OnceLock::new();
        SYSTEM
            .get_or_init(|| Resolver::new(|addr| addr.to_socket_addrs().map(Iterator::collect)))
            .clone()
    }

    /// A resolver that calls `f` with the `host:port` to resolve.
    pub fn new(
        f: impl Fn(&str) -> std::io::Result<Vec<SocketAddr>> + Send + Sync + 'static,
    ) -> Resolver {
        Resolver(Arc::new(f))
    }

    /// Resolves `addr`; fails with [`Error::Resolve`] if the lookup fails or finds nothing.
    pub fn resolve(&self, addr: &str) -> Result<Vec<SocketAddr>> {
        match (self.0)(addr) {
            Ok(addrs) if !addrs.is_empty() => Ok(addrs),
            Ok(_) => Err(Error::Resolve {
                addr: addr.to_owned(),
                reason: "no address found".into(),
            }),
            Err(e) => Err(Error::Resolve {
                addr: addr.to_owned(),
                reason: e.to_string(),
            }),
        }
    }
}

impl Default for Resolver {
    fn default() -> Self {
        Resolver::system()
    }
}

impl fmt::Debug for Resolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Resolver")
    }
}

/// Two resolvers are equal when they are the same one (clones of one another).
impl PartialEq for Resolver {
    fn eq(&self, other: &Resolver) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Resolver {}

/// Everything needed to start a [`Peer`](crate::Peer).
///
/// ```
/// use p2p_core::{Mode, PeerConfig};
/// let mut config = PeerConfig::new("alice");
/// config.mode = Mode::Manual(vec!["localhost:7001".into()]);
/// assert_eq!(config.bind_addr.port(), 0); // any free port
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerConfig {
    /// This peer's username (see [`validate_username`](crate::protocol::validate_username)).
    pub username: String,
    /// Where the ServerSide listens (default `0.0.0.0:0`: every interface, a free port).
    pub bind_addr: SocketAddr,
    /// The IP address other peers are told to connect to (`--ip`), with the port actually
    /// bound: for a public address with a forwarded port. Default `None`: other peers use
    /// the address they observe (the tracker reports the one it sees; a greeted peer
    /// connects back to the hello's source address), so peers on one network need nothing
    /// typed.
    pub advertise_ip: Option<IpAddr>,
    /// The room: peers of different rooms never link (default `lobby`).
    pub room: Room,
    /// Act as a peer that cannot be connected to even when no tracker says so (a firewall
    /// that drops incoming connections): links ask for duplex and the tracker is told
    /// (default `false`; a tracker that sees this peer's address translated sets it too).
    pub behind_nat: bool,
    /// How to join (default [`Mode::Alone`]).
    pub mode: Mode,
    /// Limits against a hostile or broken network.
    pub limits: Limits,
    /// Timings.
    pub timeouts: Timeouts,
    /// Capacity of the event channel, in batches (default 1024). A batch holds the events
    /// one read from one link produced (at most 16 KiB of frames, or one large message).
    /// When the embedder does not read events, links stop reading from the network (TCP
    /// pushes back on the senders) rather than letting memory grow.
    pub event_capacity: usize,
    /// How `host:port` addresses (manual peers, the tracker) are resolved (default: the
    /// system's resolver).
    pub resolver: Resolver,
}

impl PeerConfig {
    /// A configuration with the defaults and this username.
    pub fn new(username: impl Into<String>) -> Self {
        PeerConfig {
            username: username.into(),
            bind_addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
            advertise_ip: None,
            room: Room::lobby(),
            behind_nat: false,
            mode: Mode::Alone,
            limits: Limits::default(),
            timeouts: Timeouts::default(),
            event_capacity: 1024,
            resolver: Resolver::system(),
        }
    }

    /// Checks the values that have a valid range.
    pub fn validate(&self) -> Result<()> {
        crate::protocol::validate_username(&self.username)?;
        if let Mode::Discover(discovery) = &self.mode {
            discovery.validate()?;
        }
        let l = &self.limits;
        if l.max_frame_bytes < 64 || l.max_frame_bytes > HARD_MAX_FRAME_BYTES {
            return Err(Error::Config(format!(
                "max_frame_bytes must be between 64 and {HARD_MAX_FRAME_BYTES}"
            )));
        }
        if l.max_text_bytes.saturating_add(16) > l.max_frame_bytes {
            return Err(Error::Config(
                "max_text_bytes must leave room for the frame header under max_frame_bytes".into(),
            ));
        }
        if l.max_inbound == 0 || self.event_capacity == 0 {
            return Err(Error::Config(
                "max_inbound and event_capacity must be at least 1".into(),
            ));
        }
        let t = &self.timeouts;
        if t.tick.is_zero()
            || t.keepalive.is_zero()
            || t.peer <= t.keepalive
            || t.stall.is_zero()
            || t.punch.is_zero()
        {
            return Err(Error::Config(
                "timeouts: tick, keepalive, stall and punch must be positive and peer longer than keepalive"
                    .into(),
            ));
        }
        Ok(())
    }
}
