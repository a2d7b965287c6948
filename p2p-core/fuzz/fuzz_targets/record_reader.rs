//! Fuzz target: the record layer (`p2p_core::secure::RecordReader`) reading real records of
//! a real session, broken in the ways a network or an attacker breaks them, or bytes that
//! were never records, delivered in an arbitrary chunking (with interrupted and timed-out
//! reads in between).
//!
//! Input layout (every input is valid; the fuzzer learns the layout from coverage):
//!
//! ```text
//! byte 0      bits 0-1: what reaches the reader: 0 = the records as sealed; 1 = one bit
//!             flipped; 2 = one record sent twice (a replay) or, if bit 2, dropped; 3 = the
//!             rest of the input as raw bytes (never records)
//!             bit 3: cut the stream at a position (a truncation)
//! bytes 1-2   where: the byte to flip or to cut at, the record to replay or drop
//!             (big-endian, taken modulo the length or count)
//! byte 3      number of chunk-plan entries - 1 (low 4 bits)
//! next k      the plan: 0 = WouldBlock, 1 = Interrupted, 2..=199 = that many bytes,
//!             200..=255 = (b - 199) KiB
//! the rest    the plaintext, sealed in batches: each byte 0xff in it ends a batch (so the
//!             fuzzer picks the record boundaries); batches above a record's 65,519 bytes
//!             of plaintext span several records
//! ```
//!
//! Checked on every input: no panic; the reader's buffers never hold more than one record
//! on the wire and one record's plaintext; what comes out is always a prefix of the
//! plaintext sealed (never a byte of a broken, replayed or foreign record); the records as
//! sealed read back whole and end cleanly; a broken stream ends with an error that is a
//! `RecordError` of the right kind (a replay is `Replayed`, a drop `OutOfOrder`, a cut
//! inside a record `Truncated`), never with success past the break.
#![no_main]

use std::io::{self, Read};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use p2p_core::secure::record::{MAX_RECORD_BYTES, MAX_RECORD_PLAINTEXT, RECORD_HEADER_BYTES};
use p2p_core::secure::{Identity, RecordError, RoomKey, Secured};

#[path = "../../tests/support/chunked.rs"]
mod chunked;
use chunked::{Chunked, Step};

/// The room key, derived once (argon2id is slow on purpose); and one pair of identities.
fn keys() -> &'static (RoomKey, Identity, Identity) {
    static KEYS: OnceLock<(RoomKey, Identity, Identity)> = OnceLock::new();
    KEYS.get_or_init(|| {
        (
            RoomKey::derive("fuzz", None).unwrap(),
            Identity::generate().unwrap(),
            Identity::generate().unwrap(),
        )
    })
}

fn plan_of(bytes: &[u8]) -> Vec<Step> {
    bytes
        .iter()
        .map(|&b| match b {
            0 => Step::WouldBlock,
            1 => Step::Interrupted,
            2..=199 => Step::Bytes(usize::from(b)),
            _ => Step::Bytes(usize::from(b - 199) * 1024),
        })
        .collect()
}

/// Where each record of `wire` starts, and its length on the wire.
fn records(wire: &[u8]) -> Vec<(usize, usize)> {
    let mut at = 0;
    let mut out = Vec::new();
    while at + RECORD_HEADER_BYTES <= wire.len() {
        let len = RECORD_HEADER_BYTES + usize::from(u16::from_be_bytes([wire[at], wire[at + 1]]));
        out.push((at, len));
        at += len;
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Break {
    None,
    Flip,
    Replay,
    Drop,
    Foreign,
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let (mode, at, plan_len) = (
        data[0],
        usize::from(u16::from_be_bytes([data[1], data[2]])),
        usize::from(data[3] & 0x0f) + 1,
    );
    let Some(plan_bytes) = data.get(4..4 + plan_len) else {
        return;
    };
    let plan = plan_of(plan_bytes);
    if !plan.iter().any(|s| matches!(s, Step::Bytes(_))) {
        return;
    }
    let body = &data[4 + plan_len..];
    let brk = match (mode & 0b11, mode & 0b100 != 0) {
        (0, _) => Break::None,
        (1, _) => Break::Flip,
        (2, false) => Break::Replay,
        (2, true) => Break::Drop,
        _ => Break::Foreign,
    };
    let cut = mode & 0b1000 != 0;

    // The plaintext, and the wire: sealed in the batches the 0xff bytes mark.
    let (key, a, b) = keys();
    let (near, far) = Secured::pair((a, key), (b, key)).unwrap();
    let (_, mut writer) = near.into_records(io::empty());
    let plaintext: Vec<u8> = body.iter().copied().filter(|&b| b != 0xff).collect();
    let mut wire = Vec::new();
    if brk == Break::Foreign {
        wire.extend_from_slice(body);
    } else {
        for batch in body.split(|&b| b == 0xff) {
            writer.seal(batch, &mut wire).unwrap();
        }
    }
    let sealed = records(&wire);
    match brk {
        Break::Flip if !wire.is_empty() => {
            let i = at % wire.len();
            wire[i] ^= 1 << (data[1] % 8);
        }
        Break::Replay if !sealed.is_empty() => {
            let (start, len) = sealed[at % sealed.len()];
            let copy = wire[start..start + len].to_vec();
            let end = start + len;
            wire.splice(end..end, copy);
        }
        Break::Drop if sealed.len() > 1 => {
            // Not the last one: a dropped last record is a clean end (nothing can tell).
            let (start, len) = sealed[at % (sealed.len() - 1)];
            wire.drain(start..start + len);
        }
        _ => {}
    }
    let mut cut_at = None;
    if cut && !wire.is_empty() {
        let i = at % wire.len();
        wire.truncate(i);
        cut_at = Some(i);
    }
    let broken = match brk {
        Break::None => false,
        Break::Flip | Break::Foreign => !wire.is_empty() || cut_at.is_some(),
        Break::Replay => !sealed.is_empty(),
        Break::Drop => sealed.len() > 1,
    };

    // Read it all, in the plan's chunking and in reads of a size the input chooses.
    let (mut reader, _) = far.into_records(Chunked::new(&wire, &plan));
    let mut got = Vec::new();
    let mut buf = vec![0u8; 1 + usize::from(data[2]) * 64];
    let end = loop {
        let result = reader.read(&mut buf);
        assert!(
            reader.capacity() <= MAX_RECORD_BYTES + MAX_RECORD_PLAINTEXT,
            "the reader's buffers hold {} bytes",
            reader.capacity()
        );
        match result {
            Ok(0) => break None,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => break Some(e),
        }
    };
    assert!(
        plaintext.starts_with(&got),
        "out came bytes that were not sealed ({} of {})",
        got.len(),
        plaintext.len()
    );
    let error = end.as_ref().map(|e| {
        RecordError::from_io(e).unwrap_or_else(|| panic!("not a record error: {e}"))
    });
    if let Some(e) = &error {
        assert_eq!(end.as_ref().map(io::Error::kind), Some(e.kind()));
    }
    match (brk, cut_at, error) {
        // Untouched and whole: everything, then a clean end.
        (Break::None, None, e) => {
            assert_eq!(e, None);
            assert_eq!(got, plaintext);
        }
        // Cut: a clean end only at a record boundary, else Truncated.
        (Break::None, Some(i), e) => {
            let at_boundary = i == 0 || sealed.iter().any(|&(s, l)| s + l == i);
            match e {
                None => assert!(at_boundary, "a cut inside a record read as a clean end"),
                Some(RecordError::Truncated { .. }) => assert!(!at_boundary),
                Some(other) => panic!("a cut stream ended with {other:?}"),
            }
        }
        (Break::Replay, None, e) if broken => {
            assert!(matches!(e, Some(RecordError::Replayed { .. })), "{e:?}")
        }
        (Break::Drop, None, e) if broken => {
            assert!(matches!(e, Some(RecordError::OutOfOrder { .. })), "{e:?}")
        }
        // A flipped bit, wherever it lands (a length prefix included), ends in an error.
        (Break::Flip, None, e) if broken => assert!(e.is_some(), "a flipped bit went unseen"),
        // Bytes that were never records give nothing, whatever they claim.
        (Break::Foreign, _, _) => assert!(got.is_empty()),
        _ => {}
    }
});
