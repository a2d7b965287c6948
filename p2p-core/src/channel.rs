//! A secured link's two halves, once its Noise handshake is done: [`Inbound`] takes frames
//! out of the records that arrive, [`Outbound`] seals frames into records.
//!
//! Every peer link carries only records after its handshake (`link.rs` makes both halves),
//! so the rest of the peer reads and writes frames through these and never touches the
//! socket's bytes itself. The frame layer is unchanged: [`Inbound`] runs the
//! [`FrameReader`] over a [`RecordReader`]'s plaintext, and [`Outbound`] seals a whole batch
//! of encoded frames at once (a record holds many frames, a frame may span records), so the
//! cost per message stays small and the frame limits stay what they were.
//!
//! **One writer per direction.** Each half holds its direction's nonce counter and neither
//! can be cloned: the thread that owns an [`Outbound`] is the only one that writes to the
//! link (a duplex link's writer thread; a one-way link's single thread), so a nonce is never
//! used twice.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::protocol::{Frame, FrameReader, ProtocolError, ReadError, Unchecked};
use crate::secure::record::MAX_RECORD_PLAINTEXT;
use crate::secure::{RecordReader, RecordWriter, Secured};

/// Plaintext an [`Outbound`] gathers before it seals and writes: one full record.
pub(crate) const SEAL_BATCH: usize = MAX_RECORD_PLAINTEXT;

/// Buffer capacity an [`Outbound`] keeps between batches; a larger one (after a frame of a
/// megabyte, say) is given back.
const KEEP_CAPACITY: usize = 2 * MAX_RECORD_PLAINTEXT;

/// Splits a secured connection into its two halves; the reader starts with a frame limit of
/// `max_frame`.
pub(crate) fn halves(
    stream: &Arc<TcpStream>,
    secured: Secured,
    max_frame: usize,
) -> (Inbound, Outbound) {
    let (records, writer) = secured.into_records(Socket {
        stream: Arc::clone(stream),
        deadline: None,
    });
    (
        Inbound {
            records,
            frames: FrameReader::new(max_frame),
        },
        Outbound {
            writer,
            plain: Vec::new(),
            sealed: Vec::new(),
        },
    )
}

/// The socket as the record reader reads it, with an optional deadline for the whole of a
/// read that may take several (see [`Deadline`]).
pub(crate) struct Socket {
    stream: Arc<TcpStream>,
    deadline: Option<Instant>,
}

impl Read for Socket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(deadline) = self.deadline {
            self.stream.set_read_timeout(Some(left(deadline)?))?;
        }
        (&*self.stream).read(buf)
    }
}

/// The time left before `deadline` (at least a millisecond: a zero timeout means none), or a
/// `TimedOut` error once it has passed.
fn left(deadline: Instant) -> io::Result<Duration> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(io::ErrorKind::TimedOut.into());
    }
    Ok(left.max(Duration::from_millis(1)))
}

/// A stream whose every read and write must end by one deadline: each sets the socket's
/// timeout to the time left. A peer that sends a byte now and then cannot stretch a
/// handshake past its deadline, however many reads it takes.
pub(crate) struct Deadline<'a> {
    stream: &'a TcpStream,
    deadline: Instant,
}

impl<'a> Deadline<'a> {
    pub(crate) fn new(stream: &'a TcpStream, deadline: Instant) -> Deadline<'a> {
        Deadline { stream, deadline }
    }
}

impl Read for Deadline<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.stream.set_read_timeout(Some(left(self.deadline)?))?;
        let mut stream = self.stream;
        stream.read(buf)
    }
}

impl Write for Deadline<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.stream.set_write_timeout(Some(left(self.deadline)?))?;
        let mut stream = self.stream;
        stream.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        let mut stream = self.stream;
        stream.flush()
    }
}

/// The reading half of a secured link: frames out of records.
///
/// A record that fails (tampered with, replayed, reordered, cut short) ends the stream: the
/// read returns a [`ReadError::Io`] whose message names the fault, and the link closes.
/// Read timeouts of the socket leave both the record and the frame reader as they were, so
/// the link threads use them for keep-alives.
pub(crate) struct Inbound {
    records: RecordReader<Socket>,
    frames: FrameReader,
}

impl Inbound {
    /// Changes the frame limit (see [`FrameReader::set_max_frame`]).
    pub(crate) fn set_max_frame(&mut self, max_frame: usize) {
        self.frames.set_max_frame(max_frame);
    }

    /// The next complete frame already received, if there is one.
    pub(crate) fn next_buffered(&mut self) -> Result<Option<Frame>, ProtocolError> {
        self.frames.next_buffered()
    }

    /// As [`Inbound::next_buffered`], with a chat text lent as unchecked bytes.
    pub(crate) fn next_unchecked(&mut self) -> Result<Option<Unchecked<'_>>, ProtocolError> {
        self.frames.next_unchecked()
    }

    /// Reads once from the socket (only if nothing already received is left to open), and
    /// takes in the plaintext of every record that has arrived whole, up to the frame
    /// reader's room.
    pub(crate) fn fill(&mut self) -> Result<usize, ReadError> {
        self.frames.fill(&mut self.records)
    }

    /// Reads one frame, giving up with a `TimedOut` error at `deadline` (however the bytes
    /// arrive). Frames already received are returned first.
    pub(crate) fn read_frame_before(&mut self, deadline: Instant) -> Result<Frame, ReadError> {
        self.records.get_mut().deadline = Some(deadline);
        let frame = self.read_frame();
        self.records.get_mut().deadline = None;
        frame
    }

    fn read_frame(&mut self) -> Result<Frame, ReadError> {
        loop {
            if let Some(frame) = self.frames.next_buffered()? {
                return Ok(frame);
            }
            self.fill()?;
        }
    }
}

/// The writing half of a secured link: frames sealed into records, a batch at a time.
pub(crate) struct Outbound {
    writer: RecordWriter,
    /// Encoded frames not sealed yet.
    plain: Vec<u8>,
    /// The records of the batch being written (kept to reuse its memory).
    sealed: Vec<u8>,
}

impl Outbound {
    /// Adds encoded frame bytes to the batch; [`Outbound::flush_to`] seals and writes it.
    pub(crate) fn push(&mut self, frame: &[u8]) {
        self.plain.extend_from_slice(frame);
    }

    /// Bytes in the batch, not yet sealed.
    pub(crate) fn pending(&self) -> usize {
        self.plain.len()
    }

    /// Seals the batch into records and writes them all to `sink`. After an error the link
    /// cannot go on (the other side expects every record in turn): close it.
    pub(crate) fn flush_to<W: Write + ?Sized>(&mut self, sink: &mut W) -> io::Result<()> {
        if self.plain.is_empty() {
            return Ok(());
        }
        let written = self
            .writer
            .write_sealed(sink, &self.plain, &mut self.sealed)
            .and_then(|()| sink.flush());
        self.plain.clear();
        if self.plain.capacity() > KEEP_CAPACITY {
            self.plain = Vec::new();
        }
        if self.sealed.capacity() > KEEP_CAPACITY {
            self.sealed = Vec::new();
        }
        written
    }

    /// Encodes, seals and writes one frame (with whatever the batch held before it).
    pub(crate) fn send(&mut self, stream: &TcpStream, frame: &Frame) -> io::Result<()> {
        let bytes = frame.encode().map_err(io::Error::other)?;
        self.push(&bytes);
        let mut sink = stream;
        self.flush_to(&mut sink)
    }
}
