//! The wire protocol: frames, their codec and the limits that guard it.
//!
//! This module touches no sockets: it turns [`Frame`]s into bytes and bytes back into
//! frames, and is the only place in the workspace that knows the encoding (bincode 2, kept
//! here so that it can be swapped). `docs/protocol.md` describes the same format for readers
//! who are not reading Rust.
//!
//! Every frame on the wire is
//!
//! ```text
//! +----------------+--------+---------------------------+
//! | length: u32 BE | kind:u8 | body (bincode, standard) |
//! +----------------+--------+---------------------------+
//! ```
//!
//! where `length` counts the kind byte and the body, and must be between 1 and the frame
//! limit in force. That limit follows what the connection has proved: a connection that has
//! not completed its handshake may send frames of [`MAX_HANDSHAKE_FRAME_BYTES`] at most, a
//! listener's frames upstream (keep-alives, goodbye) are [`MAX_UPSTREAM_FRAME_BYTES`] at
//! most, and only an established link may carry frames up to the configured frame limit
//! ([`DEFAULT_MAX_FRAME_BYTES`] by default). A [`FrameReader`] checks each length against
//! its limit as soon as the four bytes are in, and then buffers only the bytes that actually
//! arrive (one read at a time): a length prefix past the limit costs nothing but its
//! connection, and one within the limit costs what its sender has sent.
//!
//! The module is split by concern, in private submodules whose items are all re-exported
//! here: `frame` (the frame types), `codec` (bytes to frames and back: the only code that
//! uses bincode), `reader` (the [`FrameReader`] that cuts a byte stream into frames within a
//! limit) and `validate` (usernames and texts).

mod codec;
mod frame;
mod reader;
mod validate;

use std::sync::Arc;

pub use codec::encode_chat;
pub use frame::{
    Announce, Frame, Handshake, How, Introduce, Leave, PeerEntry, PeerList, Room, Welcome,
};
pub(crate) use reader::Unchecked;
pub use reader::{FrameReader, Incoming, READ_CHUNK, ReadError};
pub use validate::{
    MAX_ROOM_NAME_BYTES, RoomNameError, UsernameError, validate_room_name, validate_text,
    validate_username,
};

/// The protocol version this build speaks. A handshake or announce with another version is
/// refused (see `docs/protocol.md`, "Versioning"). Version 3 secures every peer link (a Noise
/// handshake, then records) and names rooms by their opaque id.
pub const PROTOCOL_VERSION: u16 = 3;

/// Default limit on one frame (kind byte and body), in bytes: 1 MiB.
pub const DEFAULT_MAX_FRAME_BYTES: usize = 1 << 20;

/// Default limit on the UTF-8 text of one chat message, in bytes: 64 KiB.
pub const DEFAULT_MAX_TEXT_BYTES: usize = 64 * 1024;

/// The largest frame limit a configuration may set: 16 MiB. It also bounds what the decoder
/// may allocate for one frame.
pub const HARD_MAX_FRAME_BYTES: usize = 16 << 20;

/// Longest username, in characters.
pub const MAX_USERNAME_CHARS: usize = 32;

/// Limit on a frame before a link is established: the handshake, and the welcome or
/// refusal that answers it (sent over the record layer once the Noise handshake is done).
/// They are under 200 bytes in this version (a 32-character username is at most 128 bytes);
/// 1 KiB leaves room for what a later version adds while keeping what a peer that has not
/// introduced itself can make this one buffer small. Tracker requests have the same limit.
pub const MAX_HANDSHAKE_FRAME_BYTES: usize = 1024;

/// Limit on a frame a listener sends upstream on an established link: keep-alives and the
/// goodbye (one byte each).
pub const MAX_UPSTREAM_FRAME_BYTES: usize = 64;

/// Bytes of the frame header: the length prefix.
pub const HEADER_BYTES: usize = 4;

/// Encoded frame bytes, shared between every writer that sends them.
pub type FrameBytes = Arc<[u8]>;

/// Why bytes could not become a frame (or a frame bytes).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// The length prefix is above the frame limit.
    #[error("frame of {len} bytes is over the limit of {max}")]
    FrameTooLarge {
        /// The announced length.
        len: u64,
        /// The limit in force.
        max: usize,
    },
    /// The length prefix is zero: there is no kind byte.
    #[error("empty frame")]
    EmptyFrame,
    /// The kind byte names no frame of this protocol.
    #[error("unknown frame type {0}")]
    UnknownKind(u8),
    /// The body does not decode as its kind says.
    #[error("malformed frame: {0}")]
    Malformed(String),
    /// The body decoded but bytes were left over.
    #[error("{0} unexpected bytes after the frame body")]
    TrailingBytes(usize),
    /// The handshake or announce speaks another protocol version.
    #[error("protocol version {got} is not supported (this peer speaks {ours})")]
    Version {
        /// The version the other side sent.
        got: u16,
        /// Ours.
        ours: u16,
    },
    /// A chat text above the text limit.
    #[error("chat text of {len} bytes is over the limit of {max}")]
    TextTooLong {
        /// Its length in bytes.
        len: usize,
        /// The limit in force.
        max: usize,
    },
    /// Encoding failed (only for values that cannot be represented).
    #[error("cannot encode frame: {0}")]
    Encode(String),
}
