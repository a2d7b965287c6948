//! Property tests of the record layer (`p2p_core::secure::record`): any plaintext, sealed in
//! any batches and delivered in any chunking (with interrupted and timed-out reads between),
//! reads back exactly, through plain reads and through the frame reader; a flipped byte
//! anywhere, a replayed record, a dropped or reordered record and a stream cut inside a
//! record each end the stream with their own error, never a panic and never a byte of the
//! bad record; the reader's buffers never hold more than one record.
//!
//! Case counts are modest so the file runs in seconds; `PROPTEST_CASES=N` overrides them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{self, Read};
use std::sync::OnceLock;

use p2p_core::protocol::{DEFAULT_MAX_FRAME_BYTES, Frame, FrameReader, ReadError, encode_chat};
use p2p_core::secure::record::{
    MAX_RECORD_BYTES, MAX_RECORD_PLAINTEXT, RECORD_HEADER_BYTES, TAG_BYTES,
};
use p2p_core::secure::{Identity, RecordError, RecordReader, RecordWriter, RoomKey, Secured};
use proptest::prelude::*;
use proptest::test_runner::Config;

#[path = "support/chunked.rs"]
mod chunked;
use chunked::{Chunked, Step};

/// The most a reader's buffers may hold: one record on the wire and one record's plaintext.
const CAPACITY_BOUND: usize = MAX_RECORD_BYTES + MAX_RECORD_PLAINTEXT;

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

/// A fresh session: the writer of one direction and the far end, whose reader is made once
/// the bytes it reads are known. The room key is derived once (argon2id is slow on purpose).
fn session() -> (RecordWriter, Secured) {
    static KEY: OnceLock<RoomKey> = OnceLock::new();
    let key = KEY.get_or_init(|| RoomKey::derive("record properties", None).unwrap());
    let (a, b) = (Identity::generate().unwrap(), Identity::generate().unwrap());
    let (near, far) = Secured::pair((&a, key), (&b, key)).unwrap();
    let (_, writer) = near.into_records(io::empty());
    (writer, far)
}

/// `len` bytes that differ from record to record (cheap to make, unlike a proptest Vec of
/// hundreds of KiB).
fn plaintext(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Seals `plaintext` in batches cut at `cuts` (fractions of the length), one seal call each;
/// returns the wire bytes and where each record starts.
fn seal_in_batches(writer: &mut RecordWriter, plaintext: &[u8], cuts: &[f64]) -> Vec<u8> {
    let mut points: Vec<usize> = cuts
        .iter()
        .map(|f| (f * plaintext.len() as f64) as usize)
        .collect();
    points.push(0);
    points.push(plaintext.len());
    points.sort_unstable();
    let mut wire = Vec::new();
    for pair in points.windows(2) {
        writer
            .seal(&plaintext[pair[0]..pair[1]], &mut wire)
            .unwrap();
    }
    wire
}

/// Where each record of `wire` starts, and its length on the wire.
fn records(wire: &[u8]) -> Vec<(usize, usize)> {
    let mut at = 0;
    let mut out = Vec::new();
    while at < wire.len() {
        let len = RECORD_HEADER_BYTES + usize::from(u16::from_be_bytes([wire[at], wire[at + 1]]));
        out.push((at, len));
        at += len;
    }
    out
}

/// Reads `reader` to its end or first failure with reads of `read_size` bytes, retrying
/// timeouts, checking the buffer bound after every read. Returns the bytes and the error.
fn drain<R: Read>(reader: &mut RecordReader<R>, read_size: usize) -> (Vec<u8>, Option<io::Error>) {
    let mut got = Vec::new();
    let mut buf = vec![0u8; read_size];
    loop {
        let result = reader.read(&mut buf);
        assert!(
            reader.capacity() <= CAPACITY_BOUND,
            "buffers hold {} bytes",
            reader.capacity()
        );
        match result {
            Ok(0) => return (got, None),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return (got, Some(e)),
        }
    }
}

fn plan() -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec(
        prop_oneof![
            8 => (1usize..70_000).prop_map(Step::Bytes),
            4 => (1usize..64).prop_map(Step::Bytes),
            1 => Just(Step::Interrupted),
            1 => Just(Step::WouldBlock),
        ],
        1..12,
    )
    .prop_filter("bytes must flow", |p| {
        p.iter().any(|s| matches!(s, Step::Bytes(_)))
    })
}

/// `count` records, each sealed on its own: "record 0", "record 1", ...
fn numbered_records(writer: &mut RecordWriter, count: usize) -> Vec<Vec<u8>> {
    (0..count)
        .map(|i| {
            let mut wire = Vec::new();
            writer
                .seal(format!("record {i}").as_bytes(), &mut wire)
                .unwrap();
            wire
        })
        .collect()
}

fn record_error(error: Option<io::Error>) -> RecordError {
    let error = error.expect("the stream fails");
    RecordError::from_io(&error).unwrap_or_else(|| panic!("not a record error: {error}"))
}

proptest! {
    #![proptest_config(config(64))]

    #[test]
    fn any_plaintext_in_any_batches_and_chunking_round_trips(
        len in prop_oneof![0usize..300, 0usize..3 * MAX_RECORD_PLAINTEXT + 100],
        seed in any::<u64>(),
        cuts in prop::collection::vec(0.0f64..1.0, 0..6),
        plan in plan(),
        read_size in prop_oneof![1usize..40, 1usize..200_000],
    ) {
        let (mut writer, far) = session();
        let plaintext = plaintext(len, seed);
        let wire = seal_in_batches(&mut writer, &plaintext, &cuts);
        let (mut reader, _) = far.into_records(Chunked::new(&wire, &plan));
        let (got, error) = drain(&mut reader, read_size);
        prop_assert!(error.is_none(), "{:?}", error);
        prop_assert_eq!(got, plaintext);
        prop_assert_eq!(reader.records_opened(), writer.records_sealed());
    }

    #[test]
    fn frames_read_through_the_record_layer_unchanged(
        texts in prop::collection::vec(
            prop_oneof![8 => ".{0,40}", 1 => Just("x".repeat(65_536))], 1..20),
        batch in 1usize..8,
        plan in plan(),
    ) {
        let (mut writer, far) = session();
        // The link's writer: encode frames, seal each batch of them at once.
        let mut wire = Vec::new();
        for group in texts.chunks(batch) {
            let mut plaintext = Vec::new();
            for text in group {
                plaintext.extend_from_slice(&encode_chat(text).unwrap());
            }
            plaintext.extend_from_slice(&Frame::Ping.encode().unwrap());
            writer.seal(&plaintext, &mut wire).unwrap();
        }
        let (mut reader, _) = far.into_records(Chunked::new(&wire, &plan));
        let mut frames = FrameReader::new(DEFAULT_MAX_FRAME_BYTES);
        let mut got = Vec::new();
        loop {
            match frames.read_frame(&mut reader) {
                Ok(Frame::Chat { text }) => got.push(text),
                Ok(Frame::Ping) => {}
                Ok(other) => prop_assert!(false, "unexpected {:?}", other),
                Err(ReadError::Closed) => break,
                Err(e) if e.is_timeout() => continue,
                Err(e) => prop_assert!(false, "{}", e),
            }
        }
        prop_assert_eq!(got, texts);
    }

    #[test]
    fn a_flipped_byte_anywhere_ends_the_stream_at_its_record(
        len in 1usize..3 * MAX_RECORD_PLAINTEXT,
        seed in any::<u64>(),
        cuts in prop::collection::vec(0.0f64..1.0, 0..6),
        at in any::<prop::sample::Index>(),
        mask in 1u8..=255,
        plan in plan(),
    ) {
        let (mut writer, far) = session();
        let plaintext = plaintext(len, seed);
        let mut wire = seal_in_batches(&mut writer, &plaintext, &cuts);
        let records = records(&wire);
        let at = at.index(wire.len());
        wire[at] ^= mask;
        let (index, &(start, _)) = records
            .iter()
            .enumerate()
            .rev()
            .find(|(_, (start, _))| *start <= at)
            .unwrap();
        let (mut reader, _) = far.into_records(Chunked::new(&wire, &plan));
        let (got, error) = drain(&mut reader, 4096);
        // Exactly the plaintext of the records before the damaged one came through.
        let before: usize = records[..index].iter().map(|(_, l)| l - RECORD_HEADER_BYTES - TAG_BYTES).sum();
        prop_assert_eq!(&got[..], &plaintext[..before]);
        match record_error(error) {
            RecordError::Tampered { index: i } => prop_assert_eq!(i, index as u64),
            // A length prefix changed to claim more than the stream holds.
            RecordError::Truncated { index: i, .. } => {
                prop_assert_eq!(i, index as u64);
                prop_assert!(at < start + RECORD_HEADER_BYTES);
            }
            other => prop_assert!(false, "flip at {} gave {:?}", at, other),
        }
    }

    #[test]
    fn a_replayed_record_is_named_a_replay(
        // Within the reader's diagnosis window (32 records back).
        count in 2usize..30,
        original in any::<prop::sample::Index>(),
        later in any::<prop::sample::Index>(),
    ) {
        let (mut writer, far) = session();
        let sealed = numbered_records(&mut writer, count);
        // Record `original` is sent again right after record `copy_after`.
        let original = original.index(count - 1);
        let copy_after = original + later.index(count - original);
        let mut wire = Vec::new();
        for (i, record) in sealed.iter().enumerate() {
            wire.extend_from_slice(record);
            if i == copy_after {
                wire.extend_from_slice(&sealed[original]);
            }
        }
        let (mut reader, _) = far.into_records(&wire[..]);
        let (got, error) = drain(&mut reader, 7);
        let expected: String = (0..=copy_after).map(|i| format!("record {i}")).collect();
        prop_assert_eq!(String::from_utf8(got).unwrap(), expected);
        prop_assert_eq!(
            record_error(error),
            RecordError::Replayed { index: copy_after as u64 + 1, original: original as u64 }
        );
    }

    #[test]
    fn a_dropped_or_reordered_record_is_named_out_of_order(
        count in 2usize..40,
        first in any::<prop::sample::Index>(),
        swap in any::<bool>(),
    ) {
        let (mut writer, far) = session();
        let mut sealed = numbered_records(&mut writer, count);
        let first = first.index(count - 1);
        if swap {
            sealed.swap(first, first + 1);
        } else {
            sealed.remove(first);
        }
        let wire = sealed.concat();
        let (mut reader, _) = far.into_records(&wire[..]);
        let (got, error) = drain(&mut reader, 64);
        let expected: String = (0..first).map(|i| format!("record {i}")).collect();
        prop_assert_eq!(String::from_utf8(got).unwrap(), expected);
        prop_assert_eq!(
            record_error(error),
            RecordError::OutOfOrder { index: first as u64, sent: first as u64 + 1 }
        );
    }

    #[test]
    fn a_stream_cut_anywhere_ends_cleanly_or_as_truncated(
        len in 1usize..3 * MAX_RECORD_PLAINTEXT,
        seed in any::<u64>(),
        cuts in prop::collection::vec(0.0f64..1.0, 0..6),
        at in any::<prop::sample::Index>(),
        plan in plan(),
    ) {
        let (mut writer, far) = session();
        let plaintext = plaintext(len, seed);
        let wire = seal_in_batches(&mut writer, &plaintext, &cuts);
        let records = records(&wire);
        let cut = at.index(wire.len());
        let (mut reader, _) = far.into_records(Chunked::new(&wire[..cut], &plan));
        let (got, error) = drain(&mut reader, 9000);
        let whole: Vec<_> = records.iter().take_while(|(s, l)| s + l <= cut).collect();
        let before: usize = whole.iter().map(|(_, l)| l - RECORD_HEADER_BYTES - TAG_BYTES).sum();
        prop_assert_eq!(&got[..], &plaintext[..before]);
        if whole.iter().map(|(_, l)| l).sum::<usize>() == cut {
            prop_assert!(error.is_none(), "cut on a record boundary: {:?}", error);
        } else {
            match record_error(error) {
                RecordError::Truncated { index, received, .. } => {
                    prop_assert_eq!(index, whole.len() as u64);
                    prop_assert_eq!(received, cut - records[whole.len()].0);
                }
                other => prop_assert!(false, "{:?}", other),
            }
        }
    }

    #[test]
    fn random_bytes_never_panic_and_never_yield_plaintext(
        bytes in prop::collection::vec(any::<u8>(), 0..2000),
        plan in plan(),
    ) {
        let (_, far) = session();
        let (mut reader, _) = far.into_records(Chunked::new(&bytes, &plan));
        let (got, error) = drain(&mut reader, 100);
        prop_assert!(got.is_empty());
        prop_assert_eq!(error.is_none(), bytes.is_empty());
    }
}

#[test]
fn a_replay_from_beyond_the_diagnosis_window_is_still_refused() {
    let (mut writer, far) = session();
    let sealed = numbered_records(&mut writer, 100);
    let mut wire = sealed.concat();
    wire.extend_from_slice(&sealed[0]);
    let (mut reader, _) = far.into_records(&wire[..]);
    let (got, error) = drain(&mut reader, 64);
    assert_eq!(
        got.len(),
        (0..100).map(|i| format!("record {i}").len()).sum()
    );
    // Too far back to be recognised as a copy: still refused.
    assert_eq!(record_error(error), RecordError::Tampered { index: 100 });
}
