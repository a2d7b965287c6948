//! Fuzz target: arbitrary bytes, delivered in an arbitrary chunking (with interrupted and
//! timed-out reads in between), through `FrameReader`'s two read paths.
//!
//! Input layout (every input is valid; the fuzzer learns the layout from coverage):
//!
//! ```text
//! byte 0      bit 0: frame limit 64 bytes (else the default 1 MiB)
//!             bit 1: also cut the stream at the position in byte 1 of the body
//! byte 1      number of chunk-plan entries - 1 (low 4 bits)
//! next k      the plan, repeated: 0 = WouldBlock, 1 = Interrupted, 2..=199 = that many
//!             bytes, 200..=255 = (b - 199) KiB
//! the rest    the byte stream
//! ```
//!
//! Checked on every input: no panic; the reader's buffer never exceeds one frame at the
//! limit, its header and one read, nor the bytes delivered so far plus one read (the
//! growth rule: a frame's announced length is never set aside before its bytes arrive); both read paths (`read_frame` and `fill` +
//! `next_incoming`) give the same frames and end the same way; every frame that comes out
//! re-encodes to bytes that decode to the same frame; no more frames than the bytes could
//! hold.
#![no_main]

use libfuzzer_sys::fuzz_target;
use p2p_core::protocol::{
    DEFAULT_MAX_FRAME_BYTES, Frame, FrameReader, HEADER_BYTES, Incoming, READ_CHUNK, ReadError,
};

#[path = "../../tests/support/chunked.rs"]
mod chunked;
use chunked::{Chunked, Step};

/// How a stream ended, comparable between the two paths.
#[derive(Debug, PartialEq)]
enum End {
    Closed,
    Truncated,
    Protocol(String),
}

fn end_of(e: ReadError) -> End {
    match e {
        ReadError::Closed => End::Closed,
        ReadError::Truncated => End::Truncated,
        ReadError::Protocol(p) => End::Protocol(p.to_string()),
        ReadError::Io(e) => panic!("the source never fails but with timeouts: {e}"),
    }
}

fn check_capacity(reader: &FrameReader, src: &Chunked, max_frame: usize) {
    let bound = HEADER_BYTES + max_frame + READ_CHUNK;
    assert!(
        reader.capacity() <= bound,
        "buffer of {} bytes past the bound of {bound}",
        reader.capacity()
    );
    assert!(
        reader.capacity() <= src.delivered() + READ_CHUNK,
        "buffer of {} bytes after {} bytes delivered",
        reader.capacity(),
        src.delivered()
    );
}

fn via_read_frame(bytes: &[u8], plan: &[Step], max_frame: usize) -> (Vec<Frame>, End) {
    let mut src = Chunked::new(bytes, plan);
    let mut reader = FrameReader::new(max_frame);
    let mut frames = Vec::new();
    loop {
        let result = reader.read_frame(&mut src);
        check_capacity(&reader, &src, max_frame);
        match result {
            Ok(frame) => frames.push(frame),
            Err(e) if e.is_timeout() => {}
            Err(e) => return (frames, end_of(e)),
        }
    }
}

fn via_next_incoming(bytes: &[u8], plan: &[Step], max_frame: usize) -> (Vec<Frame>, End) {
    let mut src = Chunked::new(bytes, plan);
    let mut reader = FrameReader::new(max_frame);
    let mut frames = Vec::new();
    loop {
        let next = reader.next_incoming();
        match next {
            Ok(Some(Incoming::Chat(text))) => frames.push(Frame::Chat {
                text: text.to_owned(),
            }),
            Ok(Some(Incoming::Frame(frame))) => frames.push(frame),
            Ok(None) => match reader.fill(&mut src) {
                Ok(n) => assert!(n > 0),
                Err(e) if e.is_timeout() => {}
                Err(e) => return (frames, end_of(e)),
            },
            Err(e) => return (frames, End::Protocol(e.to_string())),
        }
        check_capacity(&reader, &src, max_frame);
    }
}

fuzz_target!(|data: &[u8]| {
    let [flags, count, rest @ ..] = data else {
        return;
    };
    let k = usize::from(count & 15) + 1;
    if rest.len() < k {
        return;
    }
    let (plan_bytes, mut stream) = rest.split_at(k);
    let mut plan: Vec<Step> = plan_bytes
        .iter()
        .map(|&b| match b {
            0 => Step::WouldBlock,
            1 => Step::Interrupted,
            2..=199 => Step::Bytes(usize::from(b)),
            _ => Step::Bytes(usize::from(b - 199) * 1024),
        })
        .collect();
    // A plan must deliver now and then, or the source would stall forever.
    if !plan.iter().any(|s| matches!(s, Step::Bytes(_))) {
        plan.push(Step::Bytes(1));
    }
    let max_frame = if flags & 1 == 1 {
        64
    } else {
        DEFAULT_MAX_FRAME_BYTES
    };
    if flags & 2 == 2 && !stream.is_empty() {
        let cut = usize::from(stream[0]) % stream.len();
        stream = &stream[..cut];
    }

    let (frames, end) = via_read_frame(stream, &plan, max_frame);
    let (lent, lent_end) = via_next_incoming(stream, &plan, max_frame);
    assert_eq!(frames, lent, "the two read paths disagree on the frames");
    assert_eq!(end, lent_end, "the two read paths disagree on the end");
    assert!(frames.len() * (HEADER_BYTES + 1) <= stream.len());
    for frame in &frames {
        let bytes = frame.encode().expect("a decoded frame re-encodes");
        assert!(bytes.len() - HEADER_BYTES <= max_frame);
        assert_eq!(
            Frame::decode(&bytes[HEADER_BYTES..]).as_ref(),
            Ok(frame),
            "a decoded frame re-encodes to something else"
        );
    }
});
