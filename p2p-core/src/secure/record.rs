//! The record layer: what a secured link carries once its handshake is done.
//!
//! A record on the wire is a 2-byte big-endian length and that many bytes of Noise
//! ciphertext (AES-256-GCM: the plaintext and a 16-byte tag), so a record holds at most
//! [`MAX_RECORD_PLAINTEXT`] bytes of plaintext. The frame layer runs on top unchanged: the
//! writer seals whole batches of encoded frames (a frame may span records, a record may hold
//! many frames), and the reader is an [`io::Read`] of the plaintext for the frame reader.
//!
//! Nonces are implicit: the n-th record of a direction is sealed with nonce n. A replayed,
//! dropped or reordered record therefore fails to decrypt, and the reader ends the stream.
//!
//! # One writer per direction
//!
//! The two directions share one session (one [`snow::StatelessTransportState`]), but each
//! direction has its own nonce counter, held by exactly one [`RecordWriter`] on one side and
//! one [`RecordReader`] on the other. Neither is `Clone`, and a session splits into exactly
//! one of each ([`Secured::into_records`](super::Secured::into_records)), so a nonce can
//! never be used twice: a reader thread and a writer thread share the session, but two
//! threads must never write one direction (wrap the writer in a `Mutex` if they must).

use std::io::{self, Read, Write};
use std::sync::Arc;

use snow::StatelessTransportState;

use super::error::{RecordError, SecureError};

/// Bytes of a record's length prefix.
pub const RECORD_HEADER_BYTES: usize = 2;
/// Bytes of the authentication tag each record's ciphertext carries.
pub const TAG_BYTES: usize = 16;
/// Most bytes of ciphertext in a record (a Noise message is at most 65,535 bytes).
pub const MAX_RECORD_CIPHERTEXT: usize = 65_535;
/// Most bytes of plaintext in a record.
pub const MAX_RECORD_PLAINTEXT: usize = MAX_RECORD_CIPHERTEXT - TAG_BYTES;
/// Most bytes of a record on the wire, length prefix included.
pub const MAX_RECORD_BYTES: usize = RECORD_HEADER_BYTES + MAX_RECORD_CIPHERTEXT;

/// How many earlier and later nonces a reader tries on a record that fails, to tell a
/// replayed or reordered record from a tampered one (only once, as the stream ends).
const DIAGNOSIS_WINDOW: u64 = 32;

/// Bytes asked of the source by the first read; doubled each time a read fills all the room
/// it was given, up to a whole record.
const FIRST_READ: usize = 4096;

/// Seals plaintext into records. Holds the sending nonce of its direction: see the module
/// documentation for the one-writer rule.
pub struct RecordWriter {
    session: Arc<StatelessTransportState>,
    nonce: u64,
}

impl RecordWriter {
    pub(crate) fn new(session: Arc<StatelessTransportState>, nonce: u64) -> RecordWriter {
        RecordWriter { session, nonce }
    }

    /// Bytes [`RecordWriter::seal`] appends for `plaintext_len` bytes of plaintext.
    pub fn sealed_len(plaintext_len: usize) -> usize {
        let records = plaintext_len.div_ceil(MAX_RECORD_PLAINTEXT);
        plaintext_len + records * (RECORD_HEADER_BYTES + TAG_BYTES)
    }

    /// Seals all of `plaintext` into as few records as possible, appended to `out` (which
    /// grows once, by [`RecordWriter::sealed_len`]). Empty plaintext adds nothing.
    ///
    /// Every record sealed must reach the stream, in order: the other side expects each
    /// nonce in turn. On an error `out` is left as it was, but the link cannot go on.
    ///
    /// # Errors
    ///
    /// [`RecordError::NoncesExhausted`] after 2^64 − 1 records; [`SecureError::Crypto`] if
    /// the cipher refuses (a bug).
    pub fn seal(&mut self, plaintext: &[u8], out: &mut Vec<u8>) -> Result<(), SecureError> {
        let start = out.len();
        out.reserve_exact(Self::sealed_len(plaintext.len()));
        for chunk in plaintext.chunks(MAX_RECORD_PLAINTEXT) {
            if self.nonce == u64::MAX {
                out.truncate(start);
                return Err(RecordError::NoncesExhausted.into());
            }
            let len = chunk.len() + TAG_BYTES;
            let at = out.len();
            out.resize(at + RECORD_HEADER_BYTES + len, 0);
            // `len` is at most MAX_RECORD_CIPHERTEXT, which fits in a u16.
            out[at..at + RECORD_HEADER_BYTES].copy_from_slice(&(len as u16).to_be_bytes());
            match self.session.write_message(
                self.nonce,
                chunk,
                &mut out[at + RECORD_HEADER_BYTES..],
            ) {
                Ok(n) if n == len => self.nonce += 1,
                _ => {
                    out.truncate(start);
                    return Err(SecureError::Crypto("record encryption"));
                }
            }
        }
        Ok(())
    }

    /// Seals `plaintext` into `scratch` (cleared first, kept for the next call so its memory
    /// is reused) and writes the records to `out`.
    ///
    /// # Errors
    ///
    /// What [`RecordWriter::seal`] or the write fails with, as an [`io::Error`].
    pub fn write_sealed<W: Write + ?Sized>(
        &mut self,
        out: &mut W,
        plaintext: &[u8],
        scratch: &mut Vec<u8>,
    ) -> io::Result<()> {
        scratch.clear();
        self.seal(plaintext, scratch).map_err(|e| match e {
            SecureError::Record(r) => io::Error::from(r),
            other => io::Error::other(other),
        })?;
        out.write_all(scratch)
    }

    /// Records sealed so far.
    pub fn records_sealed(&self) -> u64 {
        self.nonce
    }
}

impl std::fmt::Debug for RecordWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordWriter")
            .field("records_sealed", &self.nonce)
            .finish_non_exhaustive()
    }
}

/// Reads records from `inner` and yields their plaintext through [`io::Read`].
///
/// It buffers at most one record's worth of ciphertext ([`MAX_RECORD_BYTES`]) and one
/// record's plaintext, and grows those buffers only as bytes arrive (never because a length
/// prefix claims a big record).
///
/// `Ok(0)` means the stream ended cleanly between two records. A read timeout of the source
/// (`WouldBlock`, `TimedOut`) is returned as it is and leaves the reader ready to go on. A
/// record that fails ends the stream: that read and every later one return an
/// [`io::Error`] holding a [`RecordError`] (get it back with [`RecordError::from_io`]):
/// `InvalidData` for a tampered, replayed or reordered record, `UnexpectedEof` for a stream
/// that ends inside a record.
pub struct RecordReader<R> {
    inner: R,
    session: Arc<StatelessTransportState>,
    /// The nonce (and index) of the next record.
    nonce: u64,
    /// Bytes received, not yet opened: `raw[raw_start..raw_end]`; `raw.len()` is the room.
    raw: Vec<u8>,
    raw_start: usize,
    raw_end: usize,
    /// The plaintext of the last record opened, not yet returned: `plain[plain_start..]`.
    plain: Vec<u8>,
    plain_start: usize,
    read_size: usize,
    failed: Option<RecordError>,
}

impl<R: Read> RecordReader<R> {
    pub(crate) fn new(
        inner: R,
        session: Arc<StatelessTransportState>,
        nonce: u64,
    ) -> RecordReader<R> {
        RecordReader {
            inner,
            session,
            nonce,
            raw: Vec::new(),
            raw_start: 0,
            raw_end: 0,
            plain: Vec::new(),
            plain_start: 0,
            read_size: FIRST_READ,
            failed: None,
        }
    }

    /// Opens the record at the front of `raw` into `plain`, if it has arrived whole.
    fn open_buffered(&mut self) -> Result<bool, RecordError> {
        let available = &self.raw[self.raw_start..self.raw_end];
        let Some(header) = available.get(..RECORD_HEADER_BYTES) else {
            return Ok(false);
        };
        let len = usize::from(u16::from_be_bytes([header[0], header[1]]));
        let Some(ciphertext) = available.get(RECORD_HEADER_BYTES..RECORD_HEADER_BYTES + len) else {
            return Ok(false);
        };
        if len < TAG_BYTES {
            return Err(RecordError::Tampered { index: self.nonce });
        }
        let plain_len = len - TAG_BYTES;
        self.plain.clear();
        self.plain_start = 0;
        self.plain.reserve_exact(plain_len);
        self.plain.resize(plain_len, 0);
        if self
            .session
            .read_message(self.nonce, ciphertext, &mut self.plain)
            .is_err()
        {
            return Err(self.diagnose(self.raw_start + RECORD_HEADER_BYTES, len));
        }
        self.opened(len);
        Ok(true)
    }

    /// Counts the record of `len` bytes at the front of `raw` as opened: the next nonce,
    /// and `raw` emptied once all it held is read.
    fn opened(&mut self, len: usize) {
        self.nonce += 1;
        self.raw_start += RECORD_HEADER_BYTES + len;
        if self.raw_start == self.raw_end {
            self.raw_start = 0;
            self.raw_end = 0;
        }
    }

    /// Opens the record at the front of `raw` straight into `out` (sparing a copy through
    /// `plain`), if it has arrived whole and its plaintext fits; returns the plaintext's
    /// length, or `None` to take the way through `plain`. On a failure nothing in `out`
    /// is counted as read.
    fn open_into(&mut self, out: &mut [u8]) -> Result<Option<usize>, RecordError> {
        let available = &self.raw[self.raw_start..self.raw_end];
        let Some(header) = available.get(..RECORD_HEADER_BYTES) else {
            return Ok(None);
        };
        let len = usize::from(u16::from_be_bytes([header[0], header[1]]));
        let Some(ciphertext) = available.get(RECORD_HEADER_BYTES..RECORD_HEADER_BYTES + len) else {
            return Ok(None);
        };
        let Some(plain_len) = len.checked_sub(TAG_BYTES) else {
            return Err(RecordError::Tampered { index: self.nonce });
        };
        let Some(dest) = out.get_mut(..plain_len) else {
            return Ok(None);
        };
        if self
            .session
            .read_message(self.nonce, ciphertext, dest)
            .is_err()
        {
            return Err(self.diagnose(self.raw_start + RECORD_HEADER_BYTES, len));
        }
        self.opened(len);
        Ok(Some(plain_len))
    }

    /// Why the record at `raw[at..at + len]` failed: it opens under an earlier nonce (a
    /// replay), under a later one (records dropped or reordered), or under none nearby.
    fn diagnose(&mut self, at: usize, len: usize) -> RecordError {
        let index = self.nonce;
        if index == u64::MAX {
            return RecordError::NoncesExhausted;
        }
        // Room for the plaintext of the tries (the record may have been opened straight
        // into a caller's buffer, leaving `plain` empty).
        self.plain.clear();
        self.plain_start = 0;
        self.plain.resize(len.saturating_sub(TAG_BYTES), 0);
        let ciphertext = &self.raw[at..at + len];
        let opens = |nonce: u64, plain: &mut Vec<u8>| {
            self.session.read_message(nonce, ciphertext, plain).is_ok()
        };
        let earlier = index.saturating_sub(DIAGNOSIS_WINDOW)..index;
        if let Some(original) = earlier.rev().find(|&n| opens(n, &mut self.plain)) {
            return RecordError::Replayed { index, original };
        }
        let later = index + 1..=index.saturating_add(DIAGNOSIS_WINDOW).min(u64::MAX - 1);
        if let Some(sent) = later.into_iter().find(|&n| opens(n, &mut self.plain)) {
            return RecordError::OutOfOrder { index, sent };
        }
        RecordError::Tampered { index }
    }

    /// Reads once from the source into `raw`, making room first. `Ok(0)` at the end of the
    /// source.
    fn fill(&mut self) -> io::Result<usize> {
        if self.raw_start > 0 {
            self.raw.copy_within(self.raw_start..self.raw_end, 0);
            self.raw_end -= self.raw_start;
            self.raw_start = 0;
        }
        // Grow only when the room is used up, and by what reads have been bringing: the
        // length a record claims plays no part.
        let target = (self.raw_end + self.read_size).min(MAX_RECORD_BYTES);
        if self.raw_end == self.raw.len() && self.raw.len() < target {
            self.raw.reserve_exact(target - self.raw.len());
            self.raw.resize(target, 0);
        }
        let room = self.raw.len() - self.raw_end;
        let n = loop {
            match self.inner.read(&mut self.raw[self.raw_end..]) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                result => break result?,
            }
        };
        if n == room {
            self.read_size = (self.read_size * 2).min(MAX_RECORD_BYTES);
        }
        self.raw_end += n;
        Ok(n)
    }

    fn fail(&mut self, error: RecordError) -> io::Error {
        self.failed = Some(error);
        // Whatever a failed decryption left in `plain` must never be returned.
        self.plain.clear();
        self.plain_start = 0;
        error.into()
    }

    /// The source.
    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    /// The source, to set its read timeout for example. Reading from it directly breaks the
    /// stream of records.
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    /// Records opened so far.
    pub fn records_opened(&self) -> u64 {
        self.nonce
    }

    /// Bytes held: ciphertext received and not yet opened, plus plaintext not yet returned.
    pub fn buffered(&self) -> usize {
        (self.raw_end - self.raw_start) + (self.plain.len() - self.plain_start)
    }

    /// Bytes of memory the reader's buffers hold: never more than [`MAX_RECORD_BYTES`] +
    /// [`MAX_RECORD_PLAINTEXT`].
    pub fn capacity(&self) -> usize {
        self.raw.capacity() + self.plain.capacity()
    }
}

impl<R: Read> Read for RecordReader<R> {
    /// Fills `out` with the plaintext of as many records as have already arrived whole
    /// (opening each in turn), and reads from the source only when it has nothing at all
    /// to return: a stream of small records comes out in reads as large as `out`, as a
    /// plaintext stream would, and the frame reader above hands them on as one batch.
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        let mut n = 0;
        loop {
            if let Some(error) = self.failed {
                // What came before the failed record goes out first; the error next.
                return if n > 0 { Ok(n) } else { Err(error.into()) };
            }
            let pending = &self.plain[self.plain_start..];
            if !pending.is_empty() {
                let k = pending.len().min(out.len() - n);
                out[n..n + k].copy_from_slice(&pending[..k]);
                self.plain_start += k;
                n += k;
                if n == out.len() {
                    return Ok(n);
                }
            }
            // Nothing pending: the next record goes straight into `out` if it fits.
            match self.open_into(&mut out[n..]) {
                Ok(Some(k)) => {
                    n += k;
                    if n == out.len() {
                        return Ok(n);
                    }
                    continue;
                }
                Ok(None) => {}
                Err(error) => {
                    let error = self.fail(error);
                    return if n > 0 { Ok(n) } else { Err(error) };
                }
            }
            match self.open_buffered() {
                Ok(true) => continue,
                Ok(false) => {}
                Err(error) => {
                    let error = self.fail(error);
                    return if n > 0 { Ok(n) } else { Err(error) };
                }
            }
            if n > 0 {
                return Ok(n);
            }
            if self.fill()? == 0 {
                let received = self.raw_end - self.raw_start;
                if received == 0 {
                    return Ok(0);
                }
                let expected = match self.raw[self.raw_start..self.raw_end].get(..2) {
                    Some(h) => RECORD_HEADER_BYTES + usize::from(u16::from_be_bytes([h[0], h[1]])),
                    None => RECORD_HEADER_BYTES,
                };
                let error = RecordError::Truncated {
                    index: self.nonce,
                    received,
                    expected,
                };
                return Err(self.fail(error));
            }
        }
    }
}

impl<R> std::fmt::Debug for RecordReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordReader")
            .field("records_opened", &self.nonce)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secure::{Identity, RoomKey, Secured};
    use std::collections::VecDeque;

    /// A writer, and the far end of its session, whose reader is made once the bytes it
    /// will read are known.
    fn session() -> (RecordWriter, Secured) {
        let key = RoomKey::derive("record tests", None).unwrap();
        let (a, b) = (Identity::generate().unwrap(), Identity::generate().unwrap());
        let (sa, sb) = Secured::pair((&a, &key), (&b, &key)).unwrap();
        let (_, writer) = sa.into_records(io::empty());
        (writer, sb)
    }

    fn sealed(writer: &mut RecordWriter, plaintext: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        writer.seal(plaintext, &mut out).unwrap();
        out
    }

    /// A source that hands out scripted reads: bytes (at most what the caller asks; the
    /// rest stays for the next read) or an error of the given kind. Then the end.
    struct Script(VecDeque<Result<Vec<u8>, io::ErrorKind>>);

    impl Read for Script {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match self.0.pop_front() {
                None => Ok(0),
                Some(Err(kind)) => Err(kind.into()),
                Some(Ok(mut bytes)) => {
                    let n = bytes.len().min(buf.len());
                    buf[..n].copy_from_slice(&bytes[..n]);
                    if n < bytes.len() {
                        self.0.push_front(Ok(bytes.split_off(n)));
                    }
                    Ok(n)
                }
            }
        }
    }

    fn record_error(result: io::Result<usize>) -> RecordError {
        let error = result.expect_err("the read fails");
        RecordError::from_io(&error).unwrap_or_else(|| panic!("not a record error: {error}"))
    }

    #[test]
    fn sealed_len_is_exact_and_records_are_as_full_as_they_can_be() {
        let (mut writer, _) = session();
        for len in [
            0,
            1,
            MAX_RECORD_PLAINTEXT,
            MAX_RECORD_PLAINTEXT + 1,
            200_000,
        ] {
            let before = writer.records_sealed();
            let out = sealed(&mut writer, &vec![7u8; len]);
            assert_eq!(out.len(), RecordWriter::sealed_len(len), "{len}");
            let records = writer.records_sealed() - before;
            assert_eq!(
                records as usize,
                len.div_ceil(MAX_RECORD_PLAINTEXT),
                "{len}"
            );
            if len > 0 {
                let first = usize::from(u16::from_be_bytes([out[0], out[1]]));
                assert_eq!(first, len.min(MAX_RECORD_PLAINTEXT) + TAG_BYTES);
            }
        }
        assert_eq!(
            RecordWriter::sealed_len(MAX_RECORD_PLAINTEXT),
            MAX_RECORD_BYTES
        );
    }

    #[test]
    fn seal_appends_to_what_out_holds() {
        let (mut writer, far) = session();
        let mut out = b"kept".to_vec();
        writer.seal(b"appended", &mut out).unwrap();
        assert_eq!(&out[..4], b"kept");
        let (mut reader, _) = far.into_records(&out[4..]);
        let mut text = Vec::new();
        reader.read_to_end(&mut text).unwrap();
        assert_eq!(text, b"appended");
    }

    #[test]
    fn read_timeouts_leave_the_reader_ready_to_go_on() {
        let (mut writer, far) = session();
        let wire = [
            sealed(&mut writer, b"first"),
            sealed(&mut writer, b"second"),
        ]
        .concat();
        // Cut inside the first header, inside the first record and inside the second, with
        // timeouts (and an interrupted read, which is retried) at each cut.
        let mut script = VecDeque::new();
        let mut at = 0;
        for cut in [1, 9, wire.len() - 3] {
            script.push_back(Ok(wire[at..cut].to_vec()));
            script.push_back(Err(io::ErrorKind::WouldBlock));
            script.push_back(Err(io::ErrorKind::Interrupted));
            script.push_back(Err(io::ErrorKind::TimedOut));
            at = cut;
        }
        script.push_back(Ok(wire[at..].to_vec()));
        let (mut reader, _) = far.into_records(Script(script));

        let mut got = Vec::new();
        let mut timeouts = 0;
        let mut buf = [0u8; 3];
        loop {
            match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    timeouts += 1
                }
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(got, b"firstsecond");
        assert_eq!(timeouts, 6);
        assert_eq!(reader.records_opened(), 2);
    }

    #[test]
    fn a_failure_is_final_and_returns_no_bytes_of_the_bad_record() {
        let (mut writer, far) = session();
        let mut wire = [sealed(&mut writer, b"good"), sealed(&mut writer, b"evil")].concat();
        let last = wire.len() - 1;
        wire[last] ^= 1;
        let (mut reader, _) = far.into_records(&wire[..]);
        let mut buf = [0u8; 64];
        assert_eq!(reader.read(&mut buf).unwrap(), 4);
        assert_eq!(&buf[..4], b"good");
        for _ in 0..3 {
            assert_eq!(
                record_error(reader.read(&mut buf)),
                RecordError::Tampered { index: 1 }
            );
        }
        assert_eq!(reader.buffered() - (reader.raw_end - reader.raw_start), 0);
    }

    #[test]
    fn records_too_short_for_a_tag_are_tampered() {
        for len in [0u16, 1, 15] {
            let (_, far) = session();
            let mut wire = len.to_be_bytes().to_vec();
            wire.resize(2 + usize::from(len), 0);
            let (mut reader, _) = far.into_records(&wire[..]);
            assert_eq!(
                record_error(reader.read(&mut [0u8; 8])),
                RecordError::Tampered { index: 0 },
                "{len}"
            );
        }
    }

    #[test]
    fn empty_records_are_skipped_and_never_read_as_the_end() {
        let (mut writer, far) = session();
        // The confirmation of the handshake is such a record; a peer may send more.
        let mut empty = vec![0u8, TAG_BYTES as u8];
        empty.resize(RECORD_HEADER_BYTES + TAG_BYTES, 0);
        let nonce = writer.nonce;
        writer
            .session
            .write_message(nonce, &[], &mut empty[RECORD_HEADER_BYTES..])
            .unwrap();
        writer.nonce += 1;
        let wire = [empty, sealed(&mut writer, b"after")].concat();
        let (mut reader, _) = far.into_records(&wire[..]);
        let mut text = Vec::new();
        reader.read_to_end(&mut text).unwrap();
        assert_eq!(text, b"after");
        assert_eq!(reader.records_opened(), 2);
    }

    #[test]
    fn a_stream_cut_inside_a_record_is_truncated() {
        let sealed_len = RecordWriter::sealed_len(10);
        for cut in [1, 2, 10, sealed_len - 1, sealed_len] {
            let (mut writer, far) = session();
            let wire = sealed(&mut writer, b"0123456789");
            let (mut reader, _) = far.into_records(&wire[..cut]);
            if cut == sealed_len {
                assert_eq!(reader.read(&mut [0u8; 64]).unwrap(), 10);
                assert_eq!(reader.read(&mut [0u8; 64]).unwrap(), 0, "a clean end");
                continue;
            }
            let expected = if cut < 2 { 2 } else { sealed_len };
            assert_eq!(
                record_error(reader.read(&mut [0u8; 64])),
                RecordError::Truncated {
                    index: 0,
                    received: cut,
                    expected
                },
                "{cut}"
            );
        }
    }

    #[test]
    fn the_buffers_stay_within_one_record_however_the_bytes_arrive() {
        let (mut writer, far) = session();
        let wire = sealed(&mut writer, &vec![1u8; 5 * MAX_RECORD_PLAINTEXT + 77]);
        let (mut reader, _) = far.into_records(&wire[..]);
        let mut total = 0;
        let mut buf = vec![0u8; 100_000];
        loop {
            let n = reader.read(&mut buf).unwrap();
            assert!(reader.capacity() <= MAX_RECORD_BYTES + MAX_RECORD_PLAINTEXT);
            if n == 0 {
                break;
            }
            total += n;
        }
        assert_eq!(total, 5 * MAX_RECORD_PLAINTEXT + 77);
    }

    #[test]
    fn a_length_prefix_alone_allocates_nothing_big() {
        let (_, far) = session();
        // Claims a full record, sends three bytes of it, then times out.
        let script = Script(VecDeque::from([
            Ok(vec![0xff, 0xff, 1, 2, 3]),
            Err(io::ErrorKind::WouldBlock),
        ]));
        let (mut reader, _) = far.into_records(script);
        assert!(reader.read(&mut [0u8; 8]).is_err());
        assert!(reader.capacity() <= FIRST_READ, "{}", reader.capacity());
    }
}
