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
//! limit ([`DEFAULT_MAX_FRAME_BYTES`] unless configured lower). A reader checks the length
//! against the limit before it allocates anything, so a hostile length prefix costs nothing.
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
pub use frame::{Announce, Frame, Handshake, PeerList, Welcome};
pub(crate) use reader::Unchecked;
pub use reader::{FrameReader, Incoming, ReadError};
pub use validate::{UsernameError, validate_text, validate_username};

/// The protocol version this build speaks. A handshake or announce with another version is
/// refused (see `docs/protocol.md`, "Versioning").
pub const PROTOCOL_VERSION: u16 = 1;

/// Default limit on one frame (kind byte and body), in bytes: 1 MiB.
pub const DEFAULT_MAX_FRAME_BYTES: usize = 1 << 20;

/// Default limit on the UTF-8 text of one chat message, in bytes: 64 KiB.
pub const DEFAULT_MAX_TEXT_BYTES: usize = 64 * 1024;

/// The largest frame limit a configuration may set: 16 MiB. It also bounds what the decoder
/// may allocate for one frame.
pub const HARD_MAX_FRAME_BYTES: usize = 16 << 20;

/// Longest username, in characters.
pub const MAX_USERNAME_CHARS: usize = 32;

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
