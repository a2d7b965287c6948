//! The frames of the protocol: what each carries. How they become bytes is `codec`'s
//! business.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

use crate::secure::RoomId;
use crate::secure::room::ROOM_ID_BYTES;

/// The room a peer is in, as the network sees it: the opaque room id of
/// [`RoomKey::room_id`](crate::secure::RoomKey::room_id) (16 bytes derived from the room's name
/// and passphrase), never the name. A tracker keys its registry by it and lists a peer only
/// to peers of its room; the LAN discovery record carries it. Peers of different rooms never
/// link: their room keys differ, so their handshakes fail.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Room([u8; ROOM_ID_BYTES]);

impl Room {
    /// A room from the bytes of its id.
    pub const fn from_bytes(bytes: [u8; ROOM_ID_BYTES]) -> Room {
        Room(bytes)
    }

    /// The room's id bytes.
    pub fn as_bytes(&self) -> &[u8; ROOM_ID_BYTES] {
        &self.0
    }
}

impl From<RoomId> for Room {
    fn from(id: RoomId) -> Room {
        Room(*id.as_bytes())
    }
}

/// A room prints as its id in hex (32 digits).
impl fmt::Display for Room {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for Room {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Room({self})")
    }
}

/// The first frame on a peer link, sent by the side that opens it, once the link's Noise
/// handshake is done (so only the other peer of the room reads it). No room: the handshake
/// already proved that both sides hold the room's key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handshake {
    /// Protocol version of the sender; always the first field, so any version can read it.
    pub version: u16,
    /// Random identity of the sending peer, used to refuse self-connections and duplicates.
    pub peer_id: u64,
    /// The sender's username.
    pub username: String,
    /// The IP address the sender was told to advertise (`--ip`), if any. Without one, the
    /// receiver takes the connection's source address.
    pub listen_ip: Option<IpAddr>,
    /// The port the sender's ServerSide listens on.
    pub listen_port: u16,
    /// `true` for a *hello*: the sender asks to be listened to in return (on a connection
    /// of the receiver's own, or on this one if `duplex`).
    pub connect_back: bool,
    /// `true` for a *duplex* link: this one connection carries both directions (the sender
    /// cannot be connected to: it is behind a NAT router, or the link was punched).
    pub duplex: bool,
}

impl Handshake {
    /// The address the sender listens on, as seen from a connection that came from
    /// `source`: its explicit IP if it gave one, else the source IP, with its port.
    pub fn listen_addr(&self, source: IpAddr) -> SocketAddr {
        SocketAddr::new(self.listen_ip.unwrap_or(source), self.listen_port)
    }
}

/// The answer to an accepted [`Handshake`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Welcome {
    /// Protocol version of the answering peer.
    pub version: u16,
    /// Random identity of the answering peer.
    pub peer_id: u64,
    /// The answering peer's username.
    pub username: String,
}

/// A peer's request to a tracker: register me in my room and tell me who else is there.
/// It opens (or refreshes) a tracker session: the connection stays open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Announce {
    /// Protocol version of the sender; always the first field.
    pub version: u16,
    /// The room to register in and list.
    pub room: Room,
    /// The port the announcing peer's ServerSide listens on.
    pub listen_port: u16,
    /// The IP address the peer was told to advertise (`--ip`), if any: it wins over the
    /// address the tracker observes.
    pub explicit_ip: Option<IpAddr>,
    /// The peer's own address of this connection (`local_addr()` of its socket): when the
    /// tracker sees another source address, the peer is behind a NAT router.
    pub local_ip: IpAddr,
    /// The peer says it cannot be connected to (behind NAT or a firewall) whatever the
    /// addresses say.
    pub behind_nat: bool,
    /// Ask the tracker to introduce this peer to the listed peers that cannot be connected
    /// to (an [`Introduce`] pushed to each): set on a session's first announce and when the
    /// peer wants to try such peers again.
    pub introduce: bool,
}

impl Announce {
    /// An announce of `addr` in `room`, its IP given explicitly (so the tracker registers
    /// exactly `addr`): what tools and tests that speak for a peer send.
    pub fn explicit(room: Room, addr: SocketAddr) -> Announce {
        Announce {
            version: super::PROTOCOL_VERSION,
            room,
            listen_port: addr.port(),
            explicit_ip: Some(addr.ip()),
            local_ip: addr.ip(),
            behind_nat: false,
            introduce: false,
        }
    }
}

/// One registered peer in a [`PeerList`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PeerEntry {
    /// Where it listens (for a peer behind NAT: its router's address and its port).
    pub addr: SocketAddr,
    /// It cannot be connected to directly: it is behind a NAT router.
    pub nat: bool,
}

/// The tracker's answer to an [`Announce`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerList {
    /// How often, in seconds, the peer should announce again to stay registered.
    pub interval_secs: u32,
    /// The address the tracker registered for the requester: the address others should use.
    pub observed: SocketAddr,
    /// The tracker takes the requester to be behind NAT.
    pub nat: bool,
    /// Other registered peers of the room (never the requester), at most the tracker's
    /// response limit.
    pub peers: Vec<PeerEntry>,
}

impl PeerList {
    /// The listed addresses.
    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.peers.iter().map(|p| p.addr).collect()
    }
}

/// How a peer that is told about another should reach it ([`Introduce`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum How {
    /// Open a duplex link to it (this peer is behind NAT, the other is not).
    Connect,
    /// Both are behind NAT: connect to it at once, from the listening port, while it
    /// connects here (TCP simultaneous open).
    Punch,
}

/// A tracker's push on a session: a peer this one cannot be reached by on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Introduce {
    /// The other peer's address (its router's, when behind NAT).
    pub addr: SocketAddr,
    /// What to do.
    pub how: How,
}

/// A peer's request to a tracker to forget it now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Leave {
    /// The room it announced in.
    pub room: Room,
    /// The port it announced.
    pub listen_port: u16,
    /// The explicit IP it announced, if any (else the source address names it).
    pub explicit_ip: Option<IpAddr>,
}

impl Leave {
    /// The leave of an [`Announce::explicit`] of `addr` in `room`.
    pub fn explicit(room: Room, addr: SocketAddr) -> Leave {
        Leave {
            room,
            listen_port: addr.port(),
            explicit_ip: Some(addr.ip()),
        }
    }
}

/// One frame of the protocol. See `docs/protocol.md` for who sends which and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// Kind 1: opens a peer link.
    Handshake(Handshake),
    /// Kind 2: accepts a peer link.
    Welcome(Welcome),
    /// Kind 3: either direction, refuses a link or request; the sender then closes.
    Refuse {
        /// Why, for the log of the other side.
        reason: String,
    },
    /// Kind 4: either direction, keep-alive on an idle link.
    Ping,
    /// Kind 5: either direction, the sender is leaving; the link then closes.
    Goodbye,
    /// Kind 16: one chat message of the sender's user.
    Chat {
        /// The message text (UTF-8, at most the text limit).
        text: String,
    },
    /// Kind 32: peer to tracker, register and ask for peers.
    Announce(Announce),
    /// Kind 33: tracker to peer, answer to an announce.
    PeerList(PeerList),
    /// Kind 34: peer to tracker, remove this registration now.
    Leave(Leave),
    /// Kind 35: tracker to peer, the leave was done.
    LeaveAck,
    /// Kind 36: tracker to peer, pushed on a session: reach this peer.
    Introduce(Introduce),
}

pub(super) mod kind {
    pub const HANDSHAKE: u8 = 1;
    pub const WELCOME: u8 = 2;
    pub const REFUSE: u8 = 3;
    pub const PING: u8 = 4;
    pub const GOODBYE: u8 = 5;
    pub const CHAT: u8 = 16;
    pub const ANNOUNCE: u8 = 32;
    pub const PEER_LIST: u8 = 33;
    pub const LEAVE: u8 = 34;
    pub const LEAVE_ACK: u8 = 35;
    pub const INTRODUCE: u8 = 36;
}

impl Frame {
    /// The kind byte of this frame on the wire.
    pub fn kind(&self) -> u8 {
        match self {
            Frame::Handshake(_) => kind::HANDSHAKE,
            Frame::Welcome(_) => kind::WELCOME,
            Frame::Refuse { .. } => kind::REFUSE,
            Frame::Ping => kind::PING,
            Frame::Goodbye => kind::GOODBYE,
            Frame::Chat { .. } => kind::CHAT,
            Frame::Announce(_) => kind::ANNOUNCE,
            Frame::PeerList(_) => kind::PEER_LIST,
            Frame::Leave(_) => kind::LEAVE,
            Frame::LeaveAck => kind::LEAVE_ACK,
            Frame::Introduce(_) => kind::INTRODUCE,
        }
    }

    /// A short name for logs.
    pub fn name(&self) -> &'static str {
        match self {
            Frame::Handshake(_) => "handshake",
            Frame::Welcome(_) => "welcome",
            Frame::Refuse { .. } => "refuse",
            Frame::Ping => "ping",
            Frame::Goodbye => "goodbye",
            Frame::Chat { .. } => "chat",
            Frame::Announce(_) => "announce",
            Frame::PeerList(_) => "peer list",
            Frame::Leave(_) => "leave",
            Frame::LeaveAck => "leave ack",
            Frame::Introduce(_) => "introduce",
        }
    }
}
