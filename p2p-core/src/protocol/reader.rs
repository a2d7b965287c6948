//! [`FrameReader`]: a byte stream cut into frames, within a limit on what it buffers.

use std::io::{self, Read};

use super::codec::chat_bytes;
use super::frame::kind;
use super::{Frame, HARD_MAX_FRAME_BYTES, HEADER_BYTES, ProtocolError};

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
/// What a reader holds follows what the other side has sent, never what it claims: a
/// length prefix is checked against the limit as soon as its four bytes are in, and the
/// buffer then grows by at most one read ([`READ_CHUNK`] bytes) past the bytes that have
/// arrived, so a peer that announces a large frame and sends a few bytes of it costs those
/// few bytes plus one read. The buffer never holds more than one frame at the limit, its
/// header and one read. The limit can change as a connection proves itself
/// ([`set_max_frame`](FrameReader::set_max_frame)): small for a handshake, large once a
/// link is established.
///
/// Reads that time out keep the partial frame, so a reader with a read timeout can do other
/// work (send a keep-alive) and resume.
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

/// Most bytes asked of the source per read, and the most the buffer grows by at a time: it
/// holds at most the bytes received and not yet taken out as frames, plus one read.
pub const READ_CHUNK: usize = 16 * 1024;

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

    /// Bytes of buffer the reader has filled or zeroed: at most the bytes received so far
    /// plus one read ([`READ_CHUNK`]), and never more than one frame at the limit, its
    /// header and one read.
    pub fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// The frame limit in force, in bytes (kind byte and body).
    pub fn max_frame(&self) -> usize {
        self.max_frame
    }

    /// Changes the frame limit, for the frames whose header has not been checked yet (every
    /// frame not returned so far). A connection starts with a small limit and gets a larger
    /// one once it has proved what it is: see `docs/protocol.md`, "Limits".
    pub fn set_max_frame(&mut self, max_frame: usize) {
        self.max_frame = max_frame.min(HARD_MAX_FRAME_BYTES);
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
        // Room for a read: compact, then grow by one read at most, whatever length the
        // pending frame announces (a large frame is taken in as its bytes arrive).
        if self.start > 0 && (self.end == self.buf.len() || self.start > self.buf.len() / 2) {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let cap = HEADER_BYTES + self.max_frame + READ_CHUNK;
        let target = (self.end + self.chunk).min(cap.max(self.end + 1));
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::codec::tests::all_frames;
    use crate::protocol::{DEFAULT_MAX_FRAME_BYTES, DEFAULT_MAX_TEXT_BYTES, encode_chat};

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

    /// A frame announced at the limit costs the bytes that arrived, not the length it
    /// announces: the buffer grows one read at a time as the bytes come.
    #[test]
    fn an_announced_frame_costs_only_the_bytes_that_arrived() {
        let mut reader = FrameReader::new(DEFAULT_MAX_FRAME_BYTES);
        let header = u32::try_from(DEFAULT_MAX_FRAME_BYTES)
            .unwrap()
            .to_be_bytes();
        let mut src: &[u8] = &header;
        reader.fill(&mut src).unwrap();
        assert!(reader.next_buffered().unwrap().is_none());
        // One byte of the megabyte, then another: nothing like the announced length is
        // set aside.
        for _ in 0..2 {
            let mut src: &[u8] = &[kind::CHAT];
            reader.fill(&mut src).unwrap();
            assert!(reader.next_buffered().unwrap().is_none());
            assert!(reader.capacity() <= 1024, "buffer of {}", reader.capacity());
        }
        // Then the bytes come: the buffer follows them, one read at a time.
        let body = vec![b'x'; 100_000];
        let mut src: &[u8] = &body;
        reader.fill(&mut src).unwrap();
        let received = HEADER_BYTES + 2 + (100_000 - src.len());
        assert!(reader.capacity() <= received + READ_CHUNK);
        while !src.is_empty() {
            reader.fill(&mut src).unwrap();
            let received = HEADER_BYTES + 2 + (100_000 - src.len());
            assert!(
                reader.capacity() <= received + READ_CHUNK,
                "{}",
                reader.capacity()
            );
        }
    }

    #[test]
    fn the_limit_can_be_raised_once_a_connection_has_proved_itself() {
        let big = encode_chat(&"z".repeat(5000)).unwrap();
        let mut wire = Frame::Ping.encode().unwrap();
        wire.extend_from_slice(&big);
        let mut reader = FrameReader::new(64);
        let mut src: &[u8] = &wire;
        assert_eq!(reader.read_frame(&mut src).unwrap(), Frame::Ping);
        reader.set_max_frame(DEFAULT_MAX_FRAME_BYTES);
        assert!(matches!(
            reader.read_frame(&mut src),
            Ok(Frame::Chat { .. })
        ));

        let mut reader = FrameReader::new(64);
        let mut src: &[u8] = &wire;
        assert_eq!(reader.read_frame(&mut src).unwrap(), Frame::Ping);
        assert!(matches!(
            reader.read_frame(&mut src),
            Err(ReadError::Protocol(ProtocolError::FrameTooLarge {
                max: 64,
                ..
            }))
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
}
