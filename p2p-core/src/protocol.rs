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

use std::io::{self, Read};
use std::net::SocketAddr;
use std::sync::Arc;

use bincode::config::{BigEndian, Configuration, Limit, Varint};
use serde::{Deserialize, Serialize};

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

type Config = Configuration<BigEndian, Varint, Limit<HARD_MAX_FRAME_BYTES>>;

const fn config() -> Config {
    bincode::config::standard()
        .with_big_endian()
        .with_variable_int_encoding()
        .with_limit::<HARD_MAX_FRAME_BYTES>()
}

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

mod kind {
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

    /// Encodes this frame, header included, into a new buffer.
    pub fn encode(&self) -> Result<Vec<u8>, ProtocolError> {
        let mut out = vec![0u8; HEADER_BYTES];
        out.push(self.kind());
        let body = match self {
            Frame::Handshake(h) => encode_body(h, &mut out),
            Frame::Welcome(w) => encode_body(w, &mut out),
            Frame::Refuse { reason } => encode_body(reason, &mut out),
            Frame::Chat { text } => encode_body(text, &mut out),
            Frame::Announce(a) => encode_body(a, &mut out),
            Frame::PeerList(p) => encode_body(p, &mut out),
            Frame::Leave { listen_addr } => encode_body(listen_addr, &mut out),
            Frame::Ping | Frame::Goodbye | Frame::LeaveAck => Ok(()),
        };
        body?;
        let len = out.len() - HEADER_BYTES;
        if len > HARD_MAX_FRAME_BYTES {
            return Err(ProtocolError::FrameTooLarge {
                len: len as u64,
                max: HARD_MAX_FRAME_BYTES,
            });
        }
        // The check above keeps `len` well inside u32.
        out[..HEADER_BYTES].copy_from_slice(&(len as u32).to_be_bytes());
        Ok(out)
    }

    /// Encodes this frame into bytes that many writers can share.
    pub fn encode_shared(&self) -> Result<FrameBytes, ProtocolError> {
        self.encode().map(FrameBytes::from)
    }

    /// Decodes one frame from its kind byte and body (the bytes after the length prefix).
    pub fn decode(kind_and_body: &[u8]) -> Result<Frame, ProtocolError> {
        let (&kind, body) = kind_and_body
            .split_first()
            .ok_or(ProtocolError::EmptyFrame)?;
        let frame = match kind {
            kind::HANDSHAKE => {
                check_version(body)?;
                Frame::Handshake(decode_body(body)?)
            }
            kind::WELCOME => {
                check_version(body)?;
                Frame::Welcome(decode_body(body)?)
            }
            kind::REFUSE => Frame::Refuse {
                reason: decode_body(body)?,
            },
            kind::PING => empty(body, Frame::Ping)?,
            kind::GOODBYE => empty(body, Frame::Goodbye)?,
            kind::CHAT => Frame::Chat {
                text: decode_chat_text(body)?,
            },
            kind::ANNOUNCE => {
                check_version(body)?;
                Frame::Announce(decode_body(body)?)
            }
            kind::PEER_LIST => Frame::PeerList(decode_body(body)?),
            kind::LEAVE => Frame::Leave {
                listen_addr: decode_body(body)?,
            },
            kind::LEAVE_ACK => empty(body, Frame::LeaveAck)?,
            other => return Err(ProtocolError::UnknownKind(other)),
        };
        Ok(frame)
    }
}

/// Encodes a chat frame for `text` once, ready to be shared by every writer.
///
/// This is the hot path of sending, so the frame is assembled by hand, with two copies of
/// the text at most. Its bytes are exactly those of `Frame::Chat { text }.encode()`:
/// the header, the kind, then bincode's string (varint length, UTF-8); a test holds the two
/// together.
pub fn encode_chat(text: &str) -> Result<FrameBytes, ProtocolError> {
    let mut prefix = [0u8; HEADER_BYTES + 1 + 9];
    let varint = encode_varint(text.len() as u64, &mut prefix[HEADER_BYTES + 1..]);
    let len = 1 + varint + text.len();
    if len > HARD_MAX_FRAME_BYTES {
        return Err(ProtocolError::FrameTooLarge {
            len: len as u64,
            max: HARD_MAX_FRAME_BYTES,
        });
    }
    // The check above keeps `len` well inside u32.
    prefix[..HEADER_BYTES].copy_from_slice(&(len as u32).to_be_bytes());
    prefix[HEADER_BYTES] = kind::CHAT;
    let head = &prefix[..HEADER_BYTES + 1 + varint];
    // The frame is assembled in a buffer this thread keeps (so a send allocates once: the
    // shared bytes), unless the text is large, where keeping the buffer would cost memory.
    thread_local! {
        static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    let assemble = |frame: &mut Vec<u8>| -> FrameBytes {
        frame.clear();
        frame.extend_from_slice(head);
        frame.extend_from_slice(text.as_bytes());
        FrameBytes::from(&frame[..])
    };
    if text.len() <= SCRATCH_TEXT_BYTES
        && let Ok(Ok(bytes)) =
            SCRATCH.try_with(|scratch| scratch.try_borrow_mut().map(|mut s| assemble(&mut s)))
    {
        return Ok(bytes);
    }
    Ok(assemble(&mut Vec::with_capacity(head.len() + text.len())))
}

/// Longest text whose chat frame [`encode_chat`] assembles in its per-thread buffer.
const SCRATCH_TEXT_BYTES: usize = 4096;

/// Writes `n` as bincode's variable-length integer (big endian) into `out`; returns its
/// length.
fn encode_varint(n: u64, out: &mut [u8]) -> usize {
    if n < 251 {
        out[0] = n as u8;
        1
    } else if let Ok(n) = u16::try_from(n) {
        out[0] = 251;
        out[1..3].copy_from_slice(&n.to_be_bytes());
        3
    } else if let Ok(n) = u32::try_from(n) {
        out[0] = 252;
        out[1..5].copy_from_slice(&n.to_be_bytes());
        5
    } else {
        out[0] = 253;
        out[1..9].copy_from_slice(&n.to_be_bytes());
        9
    }
}

/// Decodes the text of a chat body: bincode's string, read without zeroing a buffer first
/// (the hot path of receiving). Refuses exactly what bincode refuses.
fn decode_chat_text(body: &[u8]) -> Result<String, ProtocolError> {
    chat_text(body).map(str::to_owned)
}

/// Reads the text of a chat body in place.
fn chat_text(body: &[u8]) -> Result<&str, ProtocolError> {
    let text = chat_bytes(body)?;
    std::str::from_utf8(text).map_err(|e| ProtocolError::Malformed(e.to_string()))
}

/// The text of a chat body, with its length checked but its UTF-8 not yet.
fn chat_bytes(body: &[u8]) -> Result<&[u8], ProtocolError> {
    let malformed = |what: &str| ProtocolError::Malformed(what.to_owned());
    let (&tag, rest) = body
        .split_first()
        .ok_or_else(|| malformed("missing string length"))?;
    let (len, rest) = match tag {
        0..=250 => (u64::from(tag), rest),
        251 => take_be::<2>(rest).map(|(b, r)| (u64::from(u16::from_be_bytes(b)), r))?,
        252 => take_be::<4>(rest).map(|(b, r)| (u64::from(u32::from_be_bytes(b)), r))?,
        253 => take_be::<8>(rest).map(|(b, r)| (u64::from_be_bytes(b), r))?,
        _ => return Err(malformed("invalid string length")),
    };
    let len = usize::try_from(len).map_err(|_| malformed("string length too large"))?;
    if len > rest.len() {
        return Err(malformed("string longer than the frame"));
    }
    if len < rest.len() {
        return Err(ProtocolError::TrailingBytes(rest.len() - len));
    }
    Ok(rest)
}

fn take_be<const N: usize>(bytes: &[u8]) -> Result<([u8; N], &[u8]), ProtocolError> {
    let head = bytes
        .get(..N)
        .ok_or_else(|| ProtocolError::Malformed("truncated string length".into()))?;
    let mut out = [0u8; N];
    out.copy_from_slice(head);
    Ok((out, &bytes[N..]))
}

fn encode_body<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> Result<(), ProtocolError> {
    bincode::serde::encode_into_std_write(value, out, config())
        .map(|_| ())
        .map_err(|e| ProtocolError::Encode(e.to_string()))
}

fn decode_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ProtocolError> {
    let (value, used) = bincode::serde::decode_from_slice::<T, _>(body, config())
        .map_err(|e| ProtocolError::Malformed(e.to_string()))?;
    if used != body.len() {
        return Err(ProtocolError::TrailingBytes(body.len() - used));
    }
    Ok(value)
}

fn empty(body: &[u8], frame: Frame) -> Result<Frame, ProtocolError> {
    if body.is_empty() {
        Ok(frame)
    } else {
        Err(ProtocolError::TrailingBytes(body.len()))
    }
}

/// Reads the version that starts a handshake, welcome or announce body, and refuses any
/// version but ours before the rest of the body is looked at.
fn check_version(body: &[u8]) -> Result<(), ProtocolError> {
    let (version, _) = bincode::serde::decode_from_slice::<u16, _>(body, config())
        .map_err(|e| ProtocolError::Malformed(e.to_string()))?;
    if version != PROTOCOL_VERSION {
        return Err(ProtocolError::Version {
            got: version,
            ours: PROTOCOL_VERSION,
        });
    }
    Ok(())
}

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
    /// A frame that is valid but not allowed at this point of the conversation.
    #[error("unexpected {0} frame")]
    Unexpected(&'static str),
    /// A chat text above the text limit.
    #[error("chat text of {len} bytes is over the limit of {max}")]
    TextTooLong {
        /// Its length in bytes.
        len: usize,
        /// The limit in force.
        max: usize,
    },
    /// A username that breaks the rules of [`validate_username`].
    #[error("invalid username: {0}")]
    Username(UsernameError),
    /// Encoding failed (only for values that cannot be represented).
    #[error("cannot encode frame: {0}")]
    Encode(String),
}

/// Why a username is not acceptable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UsernameError {
    /// No characters.
    #[error("it is empty")]
    Empty,
    /// More than [`MAX_USERNAME_CHARS`] characters.
    #[error("it has more than {MAX_USERNAME_CHARS} characters")]
    TooLong,
    /// It holds a control character (newline, tab, escape, ...).
    #[error("it contains a control character")]
    ControlCharacter,
}

/// Checks the username rules: 1 to [`MAX_USERNAME_CHARS`] characters, none of them a control
/// character.
pub fn validate_username(name: &str) -> Result<(), UsernameError> {
    if name.is_empty() {
        return Err(UsernameError::Empty);
    }
    if name.chars().count() > MAX_USERNAME_CHARS {
        return Err(UsernameError::TooLong);
    }
    if name.chars().any(char::is_control) {
        return Err(UsernameError::ControlCharacter);
    }
    Ok(())
}

/// Checks a chat text against the text limit.
pub fn validate_text(text: &str, max_text_bytes: usize) -> Result<(), ProtocolError> {
    if text.len() > max_text_bytes {
        return Err(ProtocolError::TextTooLong {
            len: text.len(),
            max: max_text_bytes,
        });
    }
    Ok(())
}

/// A frame from [`FrameReader::next_incoming`]: a chat text lent from the reader's buffer,
/// or any other frame.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming<'a> {
    /// The text of a chat frame.
    Chat(&'a str),
    /// Any other frame.
    Frame(Frame),
}

/// A frame from [`FrameReader::next_unchecked`]: a chat text's bytes, not yet checked to be
/// UTF-8, or any other frame.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Unchecked<'a> {
    /// The bytes of a chat frame's text.
    Chat(&'a [u8]),
    /// Any other frame.
    Frame(Frame),
}

/// What reading a frame from a byte source can end in, besides a frame.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The source ended cleanly between two frames.
    #[error("connection closed")]
    Closed,
    /// The source ended in the middle of a frame.
    #[error("connection closed in the middle of a frame")]
    Truncated,
    /// The bytes broke the protocol; the connection must be closed.
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// The source failed. `WouldBlock` and `TimedOut` leave the reader's state intact, so
    /// reading may resume later.
    #[error(transparent)]
    Io(#[from] io::Error),
}

impl ReadError {
    /// `true` for a read timeout (or a non-blocking source with nothing to read): the reader
    /// kept what it had and can be called again.
    pub fn is_timeout(&self) -> bool {
        matches!(self, ReadError::Io(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut))
    }
}

/// Reads frames from a byte stream, buffering partial frames between calls.
///
/// The buffer grows only to hold one frame whose length was checked against the limit, so
/// memory stays bounded whatever the other side sends. Reads that time out keep the partial
/// frame, so a reader with a read timeout can do other work (send a keep-alive) and resume.
#[derive(Debug)]
pub struct FrameReader {
    buf: Vec<u8>,
    start: usize,
    end: usize,
    max_frame: usize,
    /// Bytes asked of the source per read: starts small (an idle link costs little memory)
    /// and doubles, up to `READ_CHUNK`, each time a read fills all the room it was given.
    chunk: usize,
}

/// Most bytes asked of the source per read (the buffer grows past this only for big
/// frames).
const READ_CHUNK: usize = 16 * 1024;

/// Bytes asked of the source by the first read.
const FIRST_CHUNK: usize = 512;

impl FrameReader {
    /// A reader that refuses frames longer than `max_frame` bytes (kind byte and body).
    pub fn new(max_frame: usize) -> Self {
        FrameReader {
            buf: Vec::new(),
            start: 0,
            end: 0,
            max_frame: max_frame.min(HARD_MAX_FRAME_BYTES),
            chunk: FIRST_CHUNK,
        }
    }

    /// Bytes the reader's buffer holds room for: never more than one frame at the limit
    /// plus one read.
    pub fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// Bytes received but not yet returned as frames.
    pub fn buffered(&self) -> usize {
        self.end - self.start
    }

    /// Returns the next complete frame already in the buffer, if there is one.
    pub fn next_buffered(&mut self) -> Result<Option<Frame>, ProtocolError> {
        match self.take_frame()? {
            Some((start, end)) => Frame::decode(&self.buf[start..end]).map(Some),
            None => Ok(None),
        }
    }

    /// Like [`FrameReader::next_buffered`], but a chat frame's text is lent from the
    /// reader's buffer instead of copied into a new `String`: the receiving hot path.
    pub fn next_incoming(&mut self) -> Result<Option<Incoming<'_>>, ProtocolError> {
        Ok(match self.next_unchecked()? {
            None => None,
            Some(Unchecked::Chat(text)) => Some(Incoming::Chat(
                std::str::from_utf8(text).map_err(|e| ProtocolError::Malformed(e.to_string()))?,
            )),
            Some(Unchecked::Frame(frame)) => Some(Incoming::Frame(frame)),
        })
    }

    /// Like [`FrameReader::next_incoming`], but a chat text is lent as bytes whose UTF-8 the
    /// caller must still check (the receiving hot path checks a whole read's texts at once).
    pub(crate) fn next_unchecked(&mut self) -> Result<Option<Unchecked<'_>>, ProtocolError> {
        let Some((start, end)) = self.take_frame()? else {
            return Ok(None);
        };
        let frame = &self.buf[start..end];
        if frame[0] == kind::CHAT {
            return chat_bytes(&frame[1..]).map(|t| Some(Unchecked::Chat(t)));
        }
        Frame::decode(frame).map(|f| Some(Unchecked::Frame(f)))
    }

    /// Finds the next complete frame in the buffer, checks its length, consumes it and
    /// returns where its kind byte and body lie in the buffer (valid until the next fill).
    fn take_frame(&mut self) -> Result<Option<(usize, usize)>, ProtocolError> {
        let available = &self.buf[self.start..self.end];
        let Some(header) = available.get(..HEADER_BYTES) else {
            return Ok(None);
        };
        let mut len_bytes = [0u8; HEADER_BYTES];
        len_bytes.copy_from_slice(header);
        let len = u32::from_be_bytes(len_bytes) as usize;
        if len == 0 {
            return Err(ProtocolError::EmptyFrame);
        }
        if len > self.max_frame {
            return Err(ProtocolError::FrameTooLarge {
                len: len as u64,
                max: self.max_frame,
            });
        }
        if available.len() < HEADER_BYTES + len {
            return Ok(None);
        }
        let start = self.start + HEADER_BYTES;
        let end = start + len;
        self.start = end;
        if self.start == self.end {
            // Nothing left: the next fill starts at the front (the bytes stay until then).
            self.start = 0;
            self.end = 0;
        }
        Ok(Some((start, end)))
    }

    /// Returns the next frame, reading from `src` as needed.
    pub fn read_frame<R: Read + ?Sized>(&mut self, src: &mut R) -> Result<Frame, ReadError> {
        loop {
            if let Some(frame) = self.next_buffered()? {
                return Ok(frame);
            }
            self.fill(src)?;
        }
    }

    /// Reads once from `src` into the buffer (making room first).
    pub fn fill<R: Read + ?Sized>(&mut self, src: &mut R) -> Result<usize, ReadError> {
        // Room for a read: compact, then grow only up to what the pending frame needs.
        if self.start > 0 && (self.end == self.buf.len() || self.start > self.buf.len() / 2) {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let pending = self.pending_frame_len();
        let want = (self.end + self.chunk).max(pending);
        let cap = HEADER_BYTES + self.max_frame + READ_CHUNK;
        let target = want.min(cap.max(self.end + 1));
        if self.buf.len() < target {
            self.buf.resize(target, 0);
        }
        let n = loop {
            match src.read(&mut self.buf[self.end..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(ReadError::Io(e)),
            }
        };
        if n == 0 {
            return Err(if self.buffered() == 0 {
                ReadError::Closed
            } else {
                ReadError::Truncated
            });
        }
        if self.end + n == self.buf.len() {
            self.chunk = (self.chunk * 2).min(READ_CHUNK);
        }
        self.end += n;
        Ok(n)
    }

    /// Bytes (from `start`) the frame being received needs, once its header is in; the
    /// header has been checked against the limit by `next_buffered` before we get here.
    fn pending_frame_len(&self) -> usize {
        let available = &self.buf[self.start..self.end];
        match available.get(..HEADER_BYTES) {
            Some(h) => {
                let len = u32::from_be_bytes([h[0], h[1], h[2], h[3]]) as usize;
                self.start + HEADER_BYTES + len.min(self.max_frame)
            }
            None => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn all_frames() -> Vec<Frame> {
        vec![
            Frame::Handshake(Handshake {
                version: PROTOCOL_VERSION,
                peer_id: 42,
                username: "alice".into(),
                listen_addr: addr("127.0.0.1:4000"),
                connect_back: true,
            }),
            Frame::Welcome(Welcome {
                version: PROTOCOL_VERSION,
                peer_id: u64::MAX,
                username: "bó".into(),
            }),
            Frame::Refuse {
                reason: "no".into(),
            },
            Frame::Ping,
            Frame::Goodbye,
            Frame::Chat {
                text: "olá 👋".into(),
            },
            Frame::Announce(Announce {
                version: PROTOCOL_VERSION,
                listen_addr: addr("[::1]:9"),
            }),
            Frame::PeerList(PeerList {
                interval_secs: 30,
                peers: vec![addr("10.0.0.1:1"), addr("[fe80::1]:65535")],
            }),
            Frame::Leave {
                listen_addr: addr("127.0.0.1:1"),
            },
            Frame::LeaveAck,
        ]
    }

    #[test]
    fn every_frame_round_trips() {
        for frame in all_frames() {
            let bytes = frame.encode().unwrap();
            let len = u32::from_be_bytes(bytes[..4].try_into().unwrap()) as usize;
            assert_eq!(len, bytes.len() - 4);
            assert_eq!(Frame::decode(&bytes[4..]).unwrap(), frame);
        }
    }

    /// Golden bytes: the wire format must not change by accident.
    #[test]
    fn golden_bytes() {
        assert_eq!(Frame::Ping.encode().unwrap(), [0, 0, 0, 1, 4]);
        assert_eq!(
            &*encode_chat("hi").unwrap(),
            &[0, 0, 0, 4, 16, 2, b'h', b'i']
        );
        let hs = Frame::Handshake(Handshake {
            version: 1,
            peer_id: 7,
            username: "a".into(),
            listen_addr: addr("127.0.0.1:258"),
            connect_back: true,
        });
        assert_eq!(
            hs.encode().unwrap(),
            [0, 0, 0, 14, 1, 1, 7, 1, b'a', 0, 127, 0, 0, 1, 251, 1, 2, 1]
        );
    }

    #[test]
    fn encode_chat_matches_frame_encode() {
        let text = "x".repeat(300);
        let frame = Frame::Chat { text: text.clone() };
        assert_eq!(&*encode_chat(&text).unwrap(), &frame.encode().unwrap()[..]);
    }

    #[test]
    fn hand_written_chat_codec_agrees_with_bincode() {
        for len in [0, 1, 250, 251, 252, 65_535, 65_536, 70_000] {
            let text = "a".repeat(len);
            let mut body = Vec::new();
            encode_body(&text, &mut body).unwrap();
            let framed = encode_chat(&text).unwrap();
            assert_eq!(&framed[5..], &body[..], "encode, length {len}");
            assert_eq!(
                decode_chat_text(&body).unwrap(),
                text,
                "decode, length {len}"
            );
            assert_eq!(decode_body::<String>(&body).unwrap(), text);
        }
        // What bincode refuses, the hand-written decoder refuses.
        for bad in [
            &[][..],
            &[3, b'a'],
            &[1, 0xff],
            &[254],
            &[251, 0],
            &[1, b'a', b'b'],
        ] {
            assert!(decode_chat_text(bad).is_err(), "{bad:?}");
            assert!(decode_body::<String>(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn wrong_version_is_refused_before_the_body() {
        // version 2 followed by garbage: the version is what gets reported.
        let body = [kind::HANDSHAKE, 2, 0xff, 0xff];
        assert_eq!(
            Frame::decode(&body),
            Err(ProtocolError::Version { got: 2, ours: 1 })
        );
    }

    #[test]
    fn unknown_kind_and_trailing_bytes_are_refused() {
        assert_eq!(Frame::decode(&[99]), Err(ProtocolError::UnknownKind(99)));
        assert_eq!(
            Frame::decode(&[kind::PING, 0]),
            Err(ProtocolError::TrailingBytes(1))
        );
        assert_eq!(Frame::decode(&[]), Err(ProtocolError::EmptyFrame));
    }

    #[test]
    fn huge_length_prefix_is_refused_without_allocating() {
        let mut reader = FrameReader::new(DEFAULT_MAX_FRAME_BYTES);
        let mut src: &[u8] = &[0xff, 0xff, 0xff, 0xff, 1, 2, 3];
        let err = reader.read_frame(&mut src).unwrap_err();
        assert!(matches!(
            err,
            ReadError::Protocol(ProtocolError::FrameTooLarge { .. })
        ));
        assert!(
            reader.buf.len() <= READ_CHUNK,
            "buffer grew to {}",
            reader.buf.len()
        );
    }

    #[test]
    fn string_length_claim_beyond_body_is_malformed() {
        // A chat body that claims a 4 GiB string (varint 0xfc + u32) but holds 2 bytes.
        let body = [kind::CHAT, 252, 0xff, 0xff, 0xff, 0xff, b'a', b'b'];
        assert!(matches!(
            Frame::decode(&body),
            Err(ProtocolError::Malformed(_))
        ));
    }

    #[test]
    fn reader_handles_byte_by_byte_delivery_and_eof() {
        let frames = all_frames();
        let mut wire = Vec::new();
        for f in &frames {
            wire.extend(f.encode().unwrap());
        }
        struct OneByte<'a>(&'a [u8]);
        impl Read for OneByte<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                match self.0.split_first() {
                    Some((b, rest)) => {
                        buf[0] = *b;
                        self.0 = rest;
                        Ok(1)
                    }
                    None => Ok(0),
                }
            }
        }
        let mut src = OneByte(&wire);
        let mut reader = FrameReader::new(DEFAULT_MAX_FRAME_BYTES);
        for f in &frames {
            assert_eq!(&reader.read_frame(&mut src).unwrap(), f);
        }
        assert!(matches!(
            reader.read_frame(&mut src),
            Err(ReadError::Closed)
        ));

        let mut cut: &[u8] = &wire[..wire.len() - 1];
        let mut reader = FrameReader::new(DEFAULT_MAX_FRAME_BYTES);
        for f in &frames[..frames.len() - 1] {
            assert_eq!(&reader.read_frame(&mut cut).unwrap(), f);
        }
        assert!(matches!(
            reader.read_frame(&mut cut),
            Err(ReadError::Truncated)
        ));
    }

    #[test]
    fn big_frame_at_the_limit_is_read() {
        let text = "é".repeat(DEFAULT_MAX_TEXT_BYTES / 2);
        let bytes = encode_chat(&text).unwrap();
        let mut reader = FrameReader::new(bytes.len() - 4);
        let mut src: &[u8] = &bytes;
        assert_eq!(reader.read_frame(&mut src).unwrap(), Frame::Chat { text });
        let mut reader = FrameReader::new(bytes.len() - 5);
        let mut src: &[u8] = &bytes;
        assert!(reader.read_frame(&mut src).is_err());
    }

    #[test]
    fn usernames() {
        assert_eq!(validate_username(""), Err(UsernameError::Empty));
        assert_eq!(
            validate_username("a\nb"),
            Err(UsernameError::ControlCharacter)
        );
        assert_eq!(validate_username(&"ã".repeat(32)), Ok(()));
        assert_eq!(
            validate_username(&"a".repeat(33)),
            Err(UsernameError::TooLong)
        );
    }
}
