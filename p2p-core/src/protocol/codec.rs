//! Frames to bytes and back: bincode 2 for the bodies (kept here so that it can be
//! swapped), and a hand-written chat frame for the hot paths of sending and receiving.

use bincode::config::{BigEndian, Configuration, Limit, Varint};
use serde::Serialize;

use super::frame::{Announce, Handshake, Leave, kind};
use super::{
    Frame, FrameBytes, HARD_MAX_FRAME_BYTES, HEADER_BYTES, PROTOCOL_VERSION, ProtocolError,
};

type Config<const LIMIT: usize> = Configuration<BigEndian, Varint, Limit<LIMIT>>;

const fn config<const LIMIT: usize>() -> Config<LIMIT> {
    bincode::config::standard()
        .with_big_endian()
        .with_variable_int_encoding()
        .with_limit::<LIMIT>()
}

/// What bincode may set aside while decoding a body, as a multiple of the body's length.
/// bincode counts what a body claims (a string's bytes, each decoded value's size in
/// memory) against its limit, and allocates a string's claimed length before it reads the
/// bytes: the limit therefore follows the body's size, so that a small body cannot make it
/// set aside more than this many times what was received. An honest body claims at most
/// its own length for a string, and for a list of peer entries (7 bytes each at least on
/// the wire, about 40 in memory) less than 6 times it. (serde sets aside room for a list's
/// claimed count of items, at most 1 MiB of them, before decoding them one by one: only a
/// tracker's answer holds a list.)
const CLAIM_FACTOR: usize = 8;

impl Frame {
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
            Frame::Leave(l) => encode_body(l, &mut out),
            Frame::Introduce(i) => encode_body(i, &mut out),
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
                Frame::Handshake(decode_body::<Handshake>(body)?)
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
                Frame::Announce(decode_body::<Announce>(body)?)
            }
            kind::PEER_LIST => Frame::PeerList(decode_body(body)?),
            kind::LEAVE => Frame::Leave(decode_body::<Leave>(body)?),
            kind::LEAVE_ACK => empty(body, Frame::LeaveAck)?,
            kind::INTRODUCE => Frame::Introduce(decode_body(body)?),
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
pub(super) fn chat_bytes(body: &[u8]) -> Result<&[u8], ProtocolError> {
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
    bincode::serde::encode_into_std_write(value, out, config::<HARD_MAX_FRAME_BYTES>())
        .map(|_| ())
        .map_err(|e| ProtocolError::Encode(e.to_string()))
}

/// Decodes a body with a limit on what bincode may set aside that follows the body's length
/// (see [`CLAIM_FACTOR`]): the smallest of a few fixed limits (bincode takes its limit as a
/// constant) that is at least [`CLAIM_FACTOR`] times the body.
fn decode_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ProtocolError> {
    const KIB: usize = 1024;
    let claimable = body.len().saturating_mul(CLAIM_FACTOR);
    if claimable <= KIB {
        decode_within::<T, KIB>(body)
    } else if claimable <= 16 * KIB {
        decode_within::<T, { 16 * KIB }>(body)
    } else if claimable <= 256 * KIB {
        decode_within::<T, { 256 * KIB }>(body)
    } else if claimable <= 4096 * KIB {
        decode_within::<T, { 4096 * KIB }>(body)
    } else {
        decode_within::<T, { CLAIM_FACTOR * HARD_MAX_FRAME_BYTES }>(body)
    }
}

fn decode_within<T: serde::de::DeserializeOwned, const LIMIT: usize>(
    body: &[u8],
) -> Result<T, ProtocolError> {
    let (value, used) = bincode::serde::decode_from_slice::<T, _>(body, config::<LIMIT>())
        .map_err(|e| match e {
            bincode::error::DecodeError::LimitExceeded => {
                ProtocolError::Malformed("a length claims more than the frame holds".into())
            }
            e => ProtocolError::Malformed(e.to_string()),
        })?;
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
    let (version, _) = bincode::serde::decode_from_slice::<u16, _>(body, config::<16>())
        .map_err(|e| ProtocolError::Malformed(e.to_string()))?;
    if version != PROTOCOL_VERSION {
        return Err(ProtocolError::Version {
            got: version,
            ours: PROTOCOL_VERSION,
        });
    }
    Ok(())
}

#[cfg(test)]
pub(super) mod tests {
    use std::net::SocketAddr;

    use super::*;
    use crate::protocol::{How, Introduce, PeerEntry, PeerList, Room, Welcome};

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    pub(crate) fn all_frames() -> Vec<Frame> {
        vec![
            Frame::Handshake(Handshake {
                version: PROTOCOL_VERSION,
                peer_id: 42,
                username: "alice".into(),
                listen_ip: Some("127.0.0.1".parse().unwrap()),
                listen_port: 4000,
                connect_back: true,
                duplex: false,
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
                room: Room::from_bytes([0, 255, 7, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]),
                listen_port: 9,
                explicit_ip: None,
                local_ip: "::1".parse().unwrap(),
                behind_nat: true,
                introduce: false,
            }),
            Frame::PeerList(PeerList {
                interval_secs: 30,
                observed: addr("192.0.2.1:9"),
                nat: true,
                peers: vec![
                    PeerEntry {
                        addr: addr("10.0.0.1:1"),
                        nat: false,
                    },
                    PeerEntry {
                        addr: addr("[fe80::1]:65535"),
                        nat: true,
                    },
                ],
            }),
            Frame::Leave(Leave {
                room: Room::from_bytes([9; 16]),
                listen_port: 1,
                explicit_ip: Some("127.0.0.1".parse().unwrap()),
            }),
            Frame::LeaveAck,
            Frame::Introduce(Introduce {
                addr: addr("192.0.2.7:4000"),
                how: How::Punch,
            }),
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
            version: 3,
            peer_id: 7,
            username: "a".into(),
            listen_ip: None,
            listen_port: 258,
            connect_back: true,
            duplex: true,
        });
        assert_eq!(
            hs.encode().unwrap(),
            [0, 0, 0, 11, 1, 3, 7, 1, b'a', 0, 251, 1, 2, 1, 1]
        );
        // A room is its 16 id bytes, without a length.
        let leave = Frame::Leave(Leave {
            room: Room::from_bytes([0xab; 16]),
            listen_port: 1,
            explicit_ip: None,
        });
        let mut expected = vec![0, 0, 0, 19, 34];
        expected.extend_from_slice(&[0xab; 16]);
        expected.extend_from_slice(&[1, 0]);
        assert_eq!(leave.encode().unwrap(), expected);
        let introduce = Frame::Introduce(Introduce {
            addr: addr("10.0.0.1:258"),
            how: How::Punch,
        });
        assert_eq!(
            introduce.encode().unwrap(),
            [0, 0, 0, 10, 36, 0, 10, 0, 0, 1, 251, 1, 2, 1]
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
        // version 1 followed by garbage: the version is what gets reported.
        let body = [kind::HANDSHAKE, 1, 0xff, 0xff];
        assert_eq!(
            Frame::decode(&body),
            Err(ProtocolError::Version { got: 1, ours: 3 })
        );
    }

    /// The tracker reads requests of at most 256 bytes; an announce stays under 100 even
    /// with IPv6 addresses.
    #[test]
    fn an_announce_is_under_100_bytes() {
        let v6 = "2001:db8::1".parse().unwrap();
        let announce = Frame::Announce(Announce {
            version: PROTOCOL_VERSION,
            room: Room::from_bytes([0xab; 16]),
            listen_port: 65535,
            explicit_ip: Some(v6),
            local_ip: v6,
            behind_nat: true,
            introduce: true,
        });
        let len = announce.encode().unwrap().len();
        assert!(len < 100, "{len} bytes");
    }

    /// A small body cannot make the decoder set aside what a length in it claims: the claim
    /// is refused against a limit that follows the body's size, before anything is
    /// allocated (bincode allocates what a length claims before it reads the bytes).
    #[test]
    fn a_small_body_claiming_a_huge_string_is_refused_before_allocating() {
        // A handshake whose username claims 16 MiB - 1 (varint 252 + u32), in a 20-byte body.
        let mut body = vec![kind::HANDSHAKE, 3, 7, 252];
        body.extend_from_slice(&((16u32 << 20) - 1).to_be_bytes());
        body.extend_from_slice(b"alice");
        body.extend_from_slice(&[0, 1, 0, 0]);
        assert_eq!(
            Frame::decode(&body),
            Err(ProtocolError::Malformed(
                "a length claims more than the frame holds".into()
            ))
        );
        // The same for a refusal's reason (15 MiB claimed in a 6-byte body).
        let refuse = [kind::REFUSE, 252, 0, 0xf0, 0, 0, b'x'];
        assert_eq!(
            Frame::decode(&refuse),
            Err(ProtocolError::Malformed(
                "a length claims more than the frame holds".into()
            ))
        );
        // Honest frames near each limit's edge still decode.
        let name = "é".repeat(32);
        let hs = Frame::Handshake(Handshake {
            version: PROTOCOL_VERSION,
            peer_id: u64::MAX,
            username: name,
            listen_ip: Some("2001:db8::1".parse().unwrap()),
            listen_port: 65535,
            connect_back: true,
            duplex: true,
        });
        let bytes = hs.encode().unwrap();
        assert_eq!(Frame::decode(&bytes[4..]), Ok(hs));
        let many = Frame::PeerList(PeerList {
            interval_secs: 1,
            observed: addr("10.0.0.1:1"),
            nat: false,
            peers: (0..5000u16)
                .map(|i| PeerEntry {
                    addr: SocketAddr::from(([10, 0, (i >> 8) as u8, i as u8], 1)),
                    nat: false,
                })
                .collect(),
        });
        let bytes = many.encode().unwrap();
        assert_eq!(Frame::decode(&bytes[4..]), Ok(many));
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
    fn string_length_claim_beyond_body_is_malformed() {
        // A chat body that claims a 4 GiB string (varint 0xfc + u32) but holds 2 bytes.
        let body = [kind::CHAT, 252, 0xff, 0xff, 0xff, 0xff, b'a', b'b'];
        assert!(matches!(
            Frame::decode(&body),
            Err(ProtocolError::Malformed(_))
        ));
    }
}
