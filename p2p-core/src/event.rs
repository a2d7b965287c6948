//! What a peer tells its embedder: the [`Event`]s on its channel.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

/// Who a remote peer is: its username and the address its ServerSide listens on.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerInfo {
    /// The username it gave in its handshake.
    pub username: String,
    /// The address it listens on (for a listener, the address it advertised).
    pub addr: SocketAddr,
}

impl fmt::Display for PeerInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.username, self.addr)
    }
}

/// Why a link ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Departure {
    /// The other peer said goodbye: it is leaving the network.
    Left,
    /// Nothing was heard from the other peer for longer than the peer timeout.
    TimedOut,
    /// The connection closed without a goodbye.
    Closed,
    /// The listener did not keep up: its queue went over its byte limit.
    Overflow,
    /// The other side broke the protocol or the connection failed; the text says how.
    Error(String),
    /// This peer is shutting down.
    Shutdown,
}

impl fmt::Display for Departure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Departure::Left => f.write_str("left"),
            Departure::TimedOut => f.write_str("timed out"),
            Departure::Closed => f.write_str("connection closed"),
            Departure::Overflow => f.write_str("too slow: its queue overflowed"),
            Departure::Error(e) => write!(f, "error: {e}"),
            Departure::Shutdown => f.write_str("shut down"),
        }
    }
}

/// Something that happened to a peer, in the order it happened on each link.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A chat message from a peer this peer listens to.
    Message {
        /// The sender (shared by every message on the same link).
        from: Arc<PeerInfo>,
        /// The text.
        text: String,
    },
    /// This peer now listens to (hears) that peer.
    ListeningTo(PeerInfo),
    /// This peer no longer hears that peer.
    StoppedListeningTo {
        /// Who.
        peer: PeerInfo,
        /// Why.
        reason: Departure,
    },
    /// That peer now listens to this peer: it receives what this peer sends.
    ListenerJoined(PeerInfo),
    /// That peer no longer listens to this peer.
    ListenerLeft {
        /// Who.
        peer: PeerInfo,
        /// Why.
        reason: Departure,
    },
    /// A connection this peer tried in the background failed (a peer from the tracker's
    /// list, or one that greeted this peer with a hello).
    ConnectFailed {
        /// The address tried.
        addr: String,
        /// Why it failed.
        reason: String,
    },
    /// A periodic re-announce to the tracker failed; the peer keeps its links and tries
    /// again at the next interval.
    TrackerUnreachable {
        /// Why.
        reason: String,
    },
}
