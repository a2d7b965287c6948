//! Property tests of the codec and the `FrameReader`: every frame type round-trips with
//! arbitrary field values, and any byte sequence (valid frames, corrupted frames, random
//! bytes), cut anywhere and delivered in any chunking (with interrupted and timed-out reads
//! in between), either yields exactly the frames that were encoded or ends in an error:
//! never a panic, never a buffer past one frame at the limit plus one read, and never a
//! buffer larger than the bytes that have arrived plus one read (whatever length a frame
//! announces).
//!
//! Case counts are modest so the file runs in a few seconds; `PROPTEST_CASES=N` overrides
//! them all (for example `PROPTEST_CASES=20000 cargo test --release -p p2p-core --test
//! codec_props`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use p2p_core::protocol::{
    Announce, DEFAULT_MAX_FRAME_BYTES, Frame, FrameReader, HARD_MAX_FRAME_BYTES, HEADER_BYTES,
    Handshake, How, Incoming, Introduce, Leave, PROTOCOL_VERSION, PeerEntry, PeerList,
    ProtocolError, READ_CHUNK, ReadError, Room, Welcome, encode_chat,
};
use proptest::prelude::*;
use proptest::test_runner::Config;

#[path = "support/chunked.rs"]
mod chunked;
use chunked::{Chunked, Step};

/// The most a reader's buffer may hold: one frame at the limit, its header, one read.
fn capacity_bound(max_frame: usize) -> usize {
    HEADER_BYTES + max_frame + READ_CHUNK
}

/// `cases` unless `PROPTEST_CASES` is set; no regression files are written into the tree
/// (a failure prints its seed and the shrunk input).
fn config(cases: u32) -> Config {
    let mut config = Config {
        failure_persistence: None,
        ..Config::default()
    };
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = cases;
    }
    config
}

// ---------------------------------------------------------------------------------------
// Strategies: frames with arbitrary field values.

fn socket_addr() -> impl Strategy<Value = SocketAddr> {
    // The wire carries the IP and the port of an address; an IPv6 flow label and scope id
    // are not part of the protocol (serde's encoding of SocketAddrV6 drops them), so the
    // generated addresses leave them at zero.
    prop_oneof![
        (any::<u32>(), any::<u16>())
            .prop_map(|(ip, port)| SocketAddr::new(IpAddr::V4(Ipv4Addr::from(ip)), port)),
        (any::<u128>(), any::<u16>())
            .prop_map(|(ip, port)| SocketAddr::new(IpAddr::V6(Ipv6Addr::from(ip)), port)),
    ]
}

/// Short strings of any Unicode, and now and then one long enough to need a 3-byte varint
/// length or a buffer past one read.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => any::<String>(),
        2 => "[a-zé👋\\x00-\\x1f]{240,260}",
        1 => (0usize..70_000).prop_map(|n| "x".repeat(n)),
    ]
}

/// A version: ours most of the time, any other now and then.
fn version() -> impl Strategy<Value = u16> {
    prop_oneof![4 => Just(PROTOCOL_VERSION), 1 => any::<u16>()]
}

/// A room: any 16-byte id.
fn room() -> impl Strategy<Value = Room> {
    any::<[u8; 16]>().prop_map(Room::from_bytes)
}

fn ip() -> impl Strategy<Value = IpAddr> {
    socket_addr().prop_map(|a| a.ip())
}

fn frame() -> impl Strategy<Value = Frame> {
    prop_oneof![
        (
            (version(), any::<u64>(), any::<String>()),
            (
                prop::option::of(ip()),
                any::<u16>(),
                any::<bool>(),
                any::<bool>()
            )
        )
            .prop_map(
                |((version, peer_id, username), (listen_ip, listen_port, connect_back, duplex))| {
                    Frame::Handshake(Handshake {
                        version,
                        peer_id,
                        username,
                        listen_ip,
                        listen_port,
                        connect_back,
                        duplex,
                    })
                }
            ),
        (version(), any::<u64>(), any::<String>()).prop_map(|(version, peer_id, username)| {
            Frame::Welcome(Welcome {
                version,
                peer_id,
                username,
            })
        }),
        any::<String>().prop_map(|reason| Frame::Refuse { reason }),
        Just(Frame::Ping),
        Just(Frame::Goodbye),
        text().prop_map(|text| Frame::Chat { text }),
        (
            (version(), room(), any::<u16>()),
            (prop::option::of(ip()), ip(), any::<bool>(), any::<bool>())
        )
            .prop_map(
                |((version, room, listen_port), (explicit_ip, local_ip, behind_nat, introduce))| {
                    Frame::Announce(Announce {
                        version,
                        room,
                        listen_port,
                        explicit_ip,
                        local_ip,
                        behind_nat,
                        introduce,
                    })
                }
            ),
        (
            any::<u32>(),
            socket_addr(),
            any::<bool>(),
            prop::collection::vec((socket_addr(), any::<bool>()), 0..40)
        )
            .prop_map(
                |(interval_secs, observed, nat, peers)| Frame::PeerList(PeerList {
                    interval_secs,
                    observed,
                    nat,
                    peers: peers
                        .into_iter()
                        .map(|(addr, nat)| PeerEntry { addr, nat })
                        .collect(),
                })
            ),
        (room(), any::<u16>(), prop::option::of(ip())).prop_map(
            |(room, listen_port, explicit_ip)| Frame::Leave(Leave {
                room,
                listen_port,
                explicit_ip
            })
        ),
        Just(Frame::LeaveAck),
        (socket_addr(), any::<bool>()).prop_map(|(addr, punch)| Frame::Introduce(Introduce {
            addr,
            how: if punch { How::Punch } else { How::Connect },
        })),
    ]
}

/// A frame the decoder accepts: the version-carrying frames speak our version.
fn valid_frame() -> impl Strategy<Value = Frame> {
    frame().prop_map(|mut f| {
        match &mut f {
            Frame::Handshake(h) => h.version = PROTOCOL_VERSION,
            Frame::Welcome(w) => w.version = PROTOCOL_VERSION,
            Frame::Announce(a) => a.version = PROTOCOL_VERSION,
            _ => {}
        }
        f
    })
}

fn version_of(frame: &Frame) -> Option<u16> {
    match frame {
        Frame::Handshake(h) => Some(h.version),
        Frame::Welcome(w) => Some(w.version),
        Frame::Announce(a) => Some(a.version),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------
// A real `Read` source that hands its bytes out in a given chunking.

fn plan() -> impl Strategy<Value = Vec<Step>> {
    let step = prop_oneof![
        10 => (1usize..=8).prop_map(Step::Bytes),
        6 => (1usize..=4096).prop_map(Step::Bytes),
        2 => (4096usize..=70_000).prop_map(Step::Bytes),
        1 => Just(Step::Interrupted),
        1 => Just(Step::WouldBlock),
    ];
    // The plan repeats; its first step always delivers, so a source never stalls forever.
    (
        (1usize..=4096).prop_map(Step::Bytes),
        prop::collection::vec(step, 0..16),
    )
        .prop_map(|(first, mut rest)| {
            rest.insert(0, first);
            rest
        })
}

/// How a stream read to its end went.
#[derive(Debug)]
struct Outcome {
    frames: Vec<Frame>,
    end: ReadError,
    /// The reader's buffer after each call: it only grows, so the last is the largest.
    max_capacity: usize,
    /// The most the buffer ever held beyond the bytes delivered so far (the growth rule:
    /// at most one read).
    max_ahead: usize,
}

/// Reads `bytes` through `read_frame` until an error other than a timeout.
fn read_all(bytes: &[u8], plan: &[Step], max_frame: usize) -> Outcome {
    let mut src = Chunked::new(bytes, plan);
    let mut reader = FrameReader::new(max_frame);
    let mut frames = Vec::new();
    let mut max_capacity = 0;
    let mut max_ahead = 0;
    loop {
        let result = reader.read_frame(&mut src);
        max_capacity = max_capacity.max(reader.capacity());
        max_ahead = max_ahead.max(reader.capacity().saturating_sub(src.delivered()));
        match result {
            Ok(frame) => frames.push(frame),
            Err(e) if e.is_timeout() => {}
            Err(end) => {
                return Outcome {
                    frames,
                    end,
                    max_capacity,
                    max_ahead,
                };
            }
        }
    }
}

/// Reads `bytes` through `fill` and `next_incoming` (the receiving hot path, where chat
/// texts are lent from the buffer), until an error other than a timeout.
fn read_all_incoming(bytes: &[u8], plan: &[Step], max_frame: usize) -> Outcome {
    let mut src = Chunked::new(bytes, plan);
    let mut reader = FrameReader::new(max_frame);
    let mut frames = Vec::new();
    let mut max_capacity = 0;
    let mut max_ahead = 0;
    let end = loop {
        match reader.next_incoming() {
            Ok(Some(Incoming::Chat(text))) => frames.push(Frame::Chat {
                text: text.to_owned(),
            }),
            Ok(Some(Incoming::Frame(frame))) => frames.push(frame),
            Ok(None) => match reader.fill(&mut src) {
                Ok(n) => assert!(n > 0, "fill returned 0 bytes without an error"),
                Err(e) if e.is_timeout() => {}
                Err(e) => break e,
            },
            Err(e) => break ReadError::Protocol(e),
        }
        max_capacity = max_capacity.max(reader.capacity());
        max_ahead = max_ahead.max(reader.capacity().saturating_sub(src.delivered()));
    };
    Outcome {
        frames,
        end,
        max_capacity: max_capacity.max(reader.capacity()),
        max_ahead: max_ahead.max(reader.capacity().saturating_sub(src.delivered())),
    }
}

/// Encodes `frames` back to back; returns the bytes and where each frame ends.
fn encode_all(frames: &[Frame]) -> (Vec<u8>, Vec<usize>) {
    let mut wire = Vec::new();
    let mut ends = Vec::new();
    for f in frames {
        wire.extend(f.encode().unwrap());
        ends.push(wire.len());
    }
    (wire, ends)
}

fn same_end(a: &ReadError, b: &ReadError) -> bool {
    match (a, b) {
        (ReadError::Closed, ReadError::Closed) | (ReadError::Truncated, ReadError::Truncated) => {
            true
        }
        (ReadError::Protocol(x), ReadError::Protocol(y)) => x == y,
        _ => false,
    }
}

// ---------------------------------------------------------------------------------------
// Round trips.

proptest! {
    #![proptest_config(config(512))]

    /// Every frame type, arbitrary fields: encode then decode gives the frame back (or, for
    /// a version other than ours, the version error and nothing else); the length prefix
    /// counts exactly the kind byte and the body; the hand-written chat encoder gives the
    /// same bytes as the generic one.
    #[test]
    fn every_frame_round_trips(frame in frame()) {
        let bytes = frame.encode().unwrap();
        prop_assert!(bytes.len() > HEADER_BYTES);
        let len = u32::from_be_bytes(bytes[..HEADER_BYTES].try_into().unwrap()) as usize;
        prop_assert_eq!(len, bytes.len() - HEADER_BYTES);
        prop_assert_eq!(bytes[HEADER_BYTES], frame.kind());
        let decoded = Frame::decode(&bytes[HEADER_BYTES..]);
        match version_of(&frame) {
            Some(v) if v != PROTOCOL_VERSION => prop_assert_eq!(
                decoded,
                Err(ProtocolError::Version { got: v, ours: PROTOCOL_VERSION })
            ),
            _ => prop_assert_eq!(decoded, Ok(frame.clone())),
        }
        prop_assert_eq!(&*frame.encode_shared().unwrap(), &bytes[..]);
        if let Frame::Chat { text } = &frame {
            prop_assert_eq!(&*encode_chat(text).unwrap(), &bytes[..]);
        }
    }

    /// Whatever `Frame::decode` accepts, it accepts again after re-encoding, as the same
    /// frame: the decoder never produces a frame the encoder cannot write.
    #[test]
    fn decode_of_any_body_never_panics_and_what_it_accepts_re_encodes(
        kind in prop_oneof![
            Just(1u8), Just(2), Just(3), Just(4), Just(5), Just(16),
            Just(32), Just(33), Just(34), Just(35), any::<u8>(),
        ],
        body in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut kind_and_body = vec![kind];
        kind_and_body.extend(&body);
        if let Ok(frame) = Frame::decode(&kind_and_body) {
            prop_assert_eq!(frame.kind(), kind);
            let again = frame.encode().unwrap();
            prop_assert_eq!(Frame::decode(&again[HEADER_BYTES..]), Ok(frame));
        }
    }

    /// The hand-written chat decoder (the receiving hot path) accepts exactly the bodies
    /// bincode accepts as one string, with the same text. bincode is the oracle here; the
    /// product uses it only inside `protocol.rs`.
    #[test]
    fn the_chat_fast_path_agrees_with_bincode(
        body in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..40),
            // A length in each varint width, minimal or not, then a few bytes.
            (prop_oneof![Just(251u8), Just(252), Just(253), 0u8..=250], 0u64..300,
             prop::collection::vec(any::<u8>(), 0..12))
                .prop_map(|(tag, len, tail)| {
                    let mut body = vec![tag];
                    match tag {
                        251 => body.extend(u16::try_from(len).unwrap().to_be_bytes()),
                        252 => body.extend(u32::try_from(len).unwrap().to_be_bytes()),
                        253 => body.extend(len.to_be_bytes()),
                        _ => {}
                    }
                    body.extend(tail);
                    body
                }),
            // A valid string with a few bytes changed.
            (any::<String>(), prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..3))
                .prop_map(|(s, edits)| {
                    let mut body = Frame::Chat { text: s }.encode().unwrap()[HEADER_BYTES + 1..].to_vec();
                    for (i, b) in edits {
                        if !body.is_empty() {
                            let at = i.index(body.len());
                            body[at] = b;
                        }
                    }
                    body
                }),
        ],
    ) {
        let oracle = bincode::serde::decode_from_slice::<String, _>(
            &body,
            bincode::config::standard()
                .with_big_endian()
                .with_variable_int_encoding()
                .with_limit::<{ 16 << 20 }>(),
        );
        let oracle = match oracle {
            Ok((text, used)) if used == body.len() => Some(text),
            _ => None,
        };
        let mut kind_and_body = vec![16u8];
        kind_and_body.extend(&body);
        let decoded = match Frame::decode(&kind_and_body) {
            Ok(Frame::Chat { text }) => Some(text),
            Ok(other) => panic!("a chat body decoded as {other:?}"),
            Err(_) => None,
        };
        prop_assert_eq!(&decoded, &oracle);

        // The reader's lending path says the same.
        let mut wire = u32::try_from(kind_and_body.len()).unwrap().to_be_bytes().to_vec();
        wire.extend(&kind_and_body);
        let lent = read_all_incoming(&wire, &[Step::Bytes(usize::MAX)], DEFAULT_MAX_FRAME_BYTES);
        match &oracle {
            Some(text) => {
                prop_assert_eq!(&lent.frames, &vec![Frame::Chat { text: text.clone() }]);
                prop_assert!(matches!(lent.end, ReadError::Closed));
            }
            None => {
                prop_assert!(lent.frames.is_empty());
                prop_assert!(matches!(lent.end, ReadError::Protocol(_)), "{:?}", lent.end);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Streams through a real reader.

proptest! {
    #![proptest_config(config(256))]

    /// Valid frames, cut anywhere, in any chunking: exactly the frames wholly before the
    /// cut come out, in order, then `Closed` (cut on a boundary) or `Truncated` (cut inside
    /// a frame). Both read paths agree, and the buffer stays within its bound.
    #[test]
    fn valid_frames_cut_anywhere_in_any_chunking(
        frames in prop::collection::vec(valid_frame(), 0..8),
        cut in any::<prop::sample::Index>(),
        plan in plan(),
    ) {
        let (wire, ends) = encode_all(&frames);
        let cut = cut.index(wire.len() + 1);
        let whole = ends.iter().take_while(|&&e| e <= cut).count();
        let on_boundary = cut == 0 || ends.contains(&cut);

        for outcome in [
            read_all(&wire[..cut], &plan, DEFAULT_MAX_FRAME_BYTES),
            read_all_incoming(&wire[..cut], &plan, DEFAULT_MAX_FRAME_BYTES),
        ] {
            prop_assert_eq!(&outcome.frames[..], &frames[..whole]);
            if on_boundary {
                prop_assert!(matches!(outcome.end, ReadError::Closed), "{:?}", outcome.end);
            } else {
                prop_assert!(matches!(outcome.end, ReadError::Truncated), "{:?}", outcome.end);
            }
            prop_assert!(outcome.max_capacity <= capacity_bound(DEFAULT_MAX_FRAME_BYTES));
            prop_assert!(outcome.max_ahead <= READ_CHUNK, "{} ahead", outcome.max_ahead);
        }
    }

    /// Valid frames with bytes overwritten, inserted or removed, cut anywhere, in any
    /// chunking, under the default limit or a small one: no panic; the frames that lie
    /// wholly before the first damaged byte come out unchanged and first; the stream ends in
    /// an error; both read paths give the same frames and the same end; the buffer stays
    /// within one frame at the limit plus one read.
    #[test]
    fn corrupted_frames_yield_the_intact_prefix_then_anything_but_a_panic(
        frames in prop::collection::vec(valid_frame(), 1..8),
        damage in prop::collection::vec(
            (any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..6),
        cut in any::<prop::sample::Index>(),
        plan in plan(),
        small_limit in any::<bool>(),
    ) {
        let (mut wire, ends) = encode_all(&frames);
        let mut first_damage = wire.len();
        for (at, byte, how) in damage {
            let at = at.index(wire.len() + 1);
            match how {
                0 if at < wire.len() => {
                    if wire[at] == byte { continue; }
                    wire[at] = byte;
                }
                1 => wire.insert(at, byte),
                _ if at < wire.len() => { wire.remove(at); }
                _ => continue,
            }
            first_damage = first_damage.min(at);
        }
        let cut = cut.index(wire.len() + 1);
        let max_frame = if small_limit { 64 } else { DEFAULT_MAX_FRAME_BYTES };
        let intact = ends
            .iter()
            .zip(&frames)
            .take_while(|(e, f)| {
                **e <= first_damage.min(cut)
                    && f.encode().unwrap().len() - HEADER_BYTES <= max_frame
            })
            .count();

        let plain = read_all(&wire[..cut], &plan, max_frame);
        let lent = read_all_incoming(&wire[..cut], &plan, max_frame);
        for outcome in [&plain, &lent] {
            prop_assert!(outcome.frames.len() >= intact, "{} < {intact}", outcome.frames.len());
            prop_assert_eq!(&outcome.frames[..intact], &frames[..intact]);
            prop_assert!(outcome.frames.len() * (HEADER_BYTES + 1) <= cut);
            prop_assert!(
                outcome.max_capacity <= capacity_bound(max_frame),
                "buffer of {} bytes with a limit of {max_frame}", outcome.max_capacity
            );
            prop_assert!(outcome.max_ahead <= READ_CHUNK, "{} ahead", outcome.max_ahead);
        }
        prop_assert_eq!(&plain.frames, &lent.frames);
        prop_assert!(same_end(&plain.end, &lent.end), "{:?} vs {:?}", plain.end, lent.end);
    }

    /// Random bytes, in any chunking, under limits from tiny to the default: no panic,
    /// an error at the end, every frame that came out re-encodes to a frame that decodes
    /// the same, and the buffer stays within its bound.
    #[test]
    fn random_bytes_in_any_chunking_decode_or_fail_the_same_way_within_the_bound(
        bytes in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..256),
            // Small length prefixes, so that frames of random content get decoded often.
            prop::collection::vec(
                (0u8..40, prop::collection::vec(any::<u8>(), 0..40)).prop_map(|(len, body)| {
                    let mut f = vec![0, 0, 0, len];
                    f.extend(body);
                    f
                }),
                0..12,
            ).prop_map(|parts| parts.concat()),
            prop::collection::vec(any::<u8>(), 0..20_000),
        ],
        plan in plan(),
        max_frame in prop_oneof![Just(DEFAULT_MAX_FRAME_BYTES), 1usize..300],
    ) {
        let plain = read_all(&bytes, &plan, max_frame);
        let lent = read_all_incoming(&bytes, &plan, max_frame);
        for outcome in [&plain, &lent] {
            prop_assert!(outcome.max_capacity <= capacity_bound(max_frame));
            prop_assert!(outcome.max_ahead <= READ_CHUNK, "{} ahead", outcome.max_ahead);
            for f in &outcome.frames {
                let again = f.encode().unwrap();
                let decoded = Frame::decode(&again[HEADER_BYTES..]);
                prop_assert_eq!(decoded.as_ref(), Ok(f));
            }
        }
        prop_assert_eq!(&plain.frames, &lent.frames);
        prop_assert!(same_end(&plain.end, &lent.end), "{:?} vs {:?}", plain.end, lent.end);
    }

    /// A length prefix past the limit is refused as soon as its four bytes are in, whatever
    /// follows, before any of the announced body is buffered.
    #[test]
    fn a_length_past_the_limit_is_refused_before_buffering(
        max_frame in 1usize..=DEFAULT_MAX_FRAME_BYTES,
        over in 1u64..=u64::from(u32::MAX),
        tail in prop::collection::vec(any::<u8>(), 0..64),
        plan in plan(),
    ) {
        let len = (max_frame as u64).saturating_add(over).min(u64::from(u32::MAX));
        let mut wire = u32::try_from(len).unwrap().to_be_bytes().to_vec();
        wire.extend(&tail);
        let outcome = read_all(&wire, &plan, max_frame);
        prop_assert!(outcome.frames.is_empty());
        let refused = matches!(
            &outcome.end,
            ReadError::Protocol(ProtocolError::FrameTooLarge { len: l, max }) if *l == len && *max == max_frame
        );
        prop_assert!(refused, "{:?}", outcome.end);
        prop_assert!(outcome.max_capacity <= HEADER_BYTES + 64 + READ_CHUNK);
    }

    /// A frame announced within the limit, of which only some bytes arrive before the
    /// stream ends: the reader holds the bytes that arrived and one read, never the length
    /// announced (up to the largest limit a configuration may set).
    #[test]
    fn an_announced_frame_costs_only_the_bytes_that_arrived(
        max_frame in prop_oneof![
            Just(DEFAULT_MAX_FRAME_BYTES),
            Just(HARD_MAX_FRAME_BYTES),
            2usize..=HARD_MAX_FRAME_BYTES,
        ],
        announced in any::<prop::sample::Index>(),
        sent in 0usize..100_000,
        plan in plan(),
    ) {
        // At least the kind byte and one more; at least one byte short of the frame.
        let len = announced.index(max_frame - 1) + 2;
        let sent = sent.min(len - 2);
        let mut wire = u32::try_from(len).unwrap().to_be_bytes().to_vec();
        // A chat frame whose text would fill the frame: nothing decodes before the end.
        wire.push(16);
        wire.resize(HEADER_BYTES + 1 + sent, b'a');
        for outcome in [
            read_all(&wire, &plan, max_frame),
            read_all_incoming(&wire, &plan, max_frame),
        ] {
            prop_assert!(outcome.frames.is_empty());
            prop_assert!(matches!(outcome.end, ReadError::Truncated), "{:?}", outcome.end);
            prop_assert!(outcome.max_ahead <= READ_CHUNK, "{} ahead", outcome.max_ahead);
            prop_assert!(
                outcome.max_capacity <= wire.len() + READ_CHUNK,
                "a {len}-byte frame of which {} bytes came took {} bytes",
                wire.len(), outcome.max_capacity
            );
        }
    }
}

/// A frame exactly at the limit is read and one byte over is refused, through a chunked
/// source, with the buffer within its bound both times.
#[test]
fn frames_at_and_past_a_limit_through_a_chunked_source() {
    let plan = [Step::Bytes(1000), Step::WouldBlock, Step::Bytes(3)];
    for size in [0usize, 250, 251, 16 * 1024, 65_535, 65_536, 200_000] {
        let frame = Frame::Chat {
            text: "y".repeat(size),
        };
        let wire = frame.encode().unwrap();
        let limit = wire.len() - HEADER_BYTES;
        let ok = read_all(&wire, &plan, limit);
        assert_eq!(ok.frames, [frame], "size {size}");
        assert!(matches!(ok.end, ReadError::Closed));
        assert!(ok.max_capacity <= capacity_bound(limit));
        let over = read_all(&wire, &plan, limit - 1);
        assert!(over.frames.is_empty());
        assert!(
            matches!(
                over.end,
                ReadError::Protocol(ProtocolError::FrameTooLarge { .. })
            ),
            "{:?}",
            over.end
        );
        assert!(over.max_capacity <= READ_CHUNK);
    }
}
