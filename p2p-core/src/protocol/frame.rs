//! The frames of the protocol: what each carries. How they become bytes is `codec`'s
//! business.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// The first frame on a peer link, sent by the connecting side (the ClientSide).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handshake {
    /// Protocol version of the sender; always the first field, so any version can read it.
    pub version: u16,
    /// Random identity of the sending peer, used to refuse self-connections and duplicates.
    pub peer_id: u64,
    /// The sender's username.
    pub username: String,
    /// The address the sender's ServerSide can be reached at (what it advertises).
    pub listen_addr: SocketAddr,
    /// `true` for a *hello*: the sender asks to be listened to in return.
    pub connect_back: bool,
}

/// The ServerSide's answer to an accepted [`Handshake`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Welcome {
    /// Protocol version of the answering peer.
    pub version: u16,
    /// Random identity of the answering peer.
    pub peer_id: u64,
    /// The answering peer's username.
    pub username: String,
}

/// A peer's request to a tracker: register me and tell me who else is there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Announce {
    /// Protocol version of the sender; always the first field.
    pub version: u16,
    /// The address the announcing peer's ServerSide can be reached at.
    pub listen_addr: SocketAddr,
}

/// The tracker's answer to an [`Announce`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerList {
    /// How often, in seconds, the peer should announce again to stay registered.
    pub interval_secs: u32,
    /// Other registered peers (never the requester), at most the tracker's response limit.
    pub peers: Vec<SocketAddr>,
}

/// One frame of the protocol. See `docs/protocol.md` for who sends which and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// Kind 1: client to server, opens a peer link.
    Handshake(Handshake),
    /// Kind 2: server to client, accepts a peer link.
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
    /// Kind 16: server to client, one chat message of the server's user.
    Chat {
        /// The message text (UTF-8, at most the text limit).
        text: String,
    },
    /// Kind 32: peer to tracker, register and ask for peers.
    Announce(Announce),
    /// Kind 33: tracker to peer, answer to an announce.
    PeerList(PeerList),
    /// Kind 34: peer to tracker, remove this address now.
    Leave {
        /// The address to remove (the one announced).
        listen_addr: SocketAddr,
    },
    /// Kind 35: tracker to peer, the leave was done.
    LeaveAck,
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
            Frame::Leave { .. } => kind::LEAVE,
            Frame::LeaveAck => kind::LEAVE_ACK,
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
            Frame::Leave { .. } => "leave",
            Frame::LeaveAck => "leave ack",
        }
    }
}
