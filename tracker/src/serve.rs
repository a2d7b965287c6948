//! Serving one connection: its state, reading its requests, answering them, writing the
//! answers and the introductions pushed to it. The socket is non-blocking: each step goes
//! as far as the socket allows and says whether to wait for it or to close the connection.
//!
//! A peer's connection is a *session*: it stays open after the first answer, for the
//! re-announces, the pushes and the leave. The event loop closes it when it falls silent
//! for longer than the TTL, when the peer leaves (after the acknowledgement) or closes it,
//! or after a refusal.

use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use log::{debug, warn};
use mio::net::TcpStream;
use p2p_core::protocol::{Frame, FrameReader, Introduce, ReadError, Room};

use crate::log_budget::LogBudget;
use crate::registry::SharedRegistry;
use crate::request::MAX_REQUEST_BYTES;
use crate::request::{self, Outcome, Requester};
use crate::stats::{self, Counters, Gauges};
use crate::stats_http::{self, MAX_HTTP_REQUEST_BYTES, Reply};

/// Most bytes of answers and pushes that may wait for a session's peer to read them: past
/// it, the peer is not reading, and its session is closed.
pub(crate) const MAX_SESSION_BACKLOG: usize = 64 * 1024;

/// One open connection.
#[derive(Debug)]
pub(crate) struct Conn {
    pub(crate) stream: TcpStream,
    pub(crate) remote: SocketAddr,
    /// The tracker's own address of this connection.
    pub(crate) local: IpAddr,
    pub(crate) state: State,
}

/// Where a connection is.
#[derive(Debug)]
pub(crate) enum State {
    /// A peer's session.
    Session(Session),
    /// Reading the stats endpoint's request head.
    HttpRequest(Vec<u8>),
    /// Writing the stats answer; the connection is closed once it is written.
    Answer { bytes: Vec<u8>, written: usize },
}

/// A peer's session: requests in; answers and pushes out.
#[derive(Debug, Default)]
pub(crate) struct Session {
    /// Requests as they arrive. It holds no buffer until bytes arrive.
    reader: Option<FrameReader>,
    /// Bytes to write, from `written` on.
    out: Vec<u8>,
    written: usize,
    /// The registration this session keeps alive (its latest announce).
    pub(crate) registered: Option<(Room, SocketAddr)>,
    /// Close once `out` is written (after a leave's acknowledgement or a refusal).
    closing: bool,
}

impl Session {
    /// Queues a frame to write; `false` if the peer has let too much wait already.
    pub(crate) fn queue(&mut self, frame: &Frame) -> bool {
        if self.written == self.out.len() {
            self.out.clear();
            self.written = 0;
        }
        if self.out.len() - self.written > MAX_SESSION_BACKLOG {
            return false;
        }
        match frame.encode() {
            Ok(bytes) => {
                self.out.extend_from_slice(&bytes);
                true
            }
            Err(e) => {
                warn!("cannot encode a {} frame: {e}", frame.name());
                false
            }
        }
    }
}

/// What driving a session changed beyond it, for the event loop to carry out.
#[derive(Debug, Default)]
pub(crate) struct Effects {
    /// The session made a valid announce: its silence is counted from now.
    pub(crate) renewed: bool,
    /// Introductions to push, each to the session of a registered peer of the room.
    pub(crate) pushes: Vec<(Room, SocketAddr, Introduce)>,
}

/// What to do with a connection after it was driven as far as its socket allows.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Wait for its socket to be ready again.
    Wait,
    /// Close it.
    Close,
}

/// Everything a connection's request touches, apart from the connection table (so that a
/// connection borrowed from the table can be driven with it).
pub(crate) struct Service {
    pub(crate) registry: Arc<SharedRegistry>,
    pub(crate) interval_secs: u32,
    pub(crate) counters: Counters,
    pub(crate) budget: LogBudget,
}

impl Service {
    /// Reads, answers and writes as far as `conn`'s socket allows.
    pub(crate) fn drive(
        &mut self,
        conn: &mut Conn,
        now: Instant,
        open: usize,
        effects: &mut Effects,
    ) -> Step {
        loop {
            let step = match &mut conn.state {
                State::Session(session) => {
                    let requester = Requester {
                        remote: conn.remote,
                        local: conn.local,
                    };
                    return self.drive_session(session, &mut conn.stream, requester, now, effects);
                }
                State::HttpRequest(head) => match read_http(head, &mut conn.stream) {
                    Ok(true) => match stats_http::reply(head, || self.metrics(now, open)) {
                        Reply::Incomplete => None,
                        Reply::Send(bytes) => {
                            conn.state = State::Answer { bytes, written: 0 };
                            None
                        }
                    },
                    Ok(false) => Some(Step::Wait),
                    Err(e) => {
                        debug!("stats request from {}: {e}", conn.remote);
                        Some(Step::Close)
                    }
                },
                State::Answer { bytes, written } => {
                    match write_some(&mut conn.stream, bytes, written) {
                        Ok(true) => Some(Step::Close),
                        Ok(false) => Some(Step::Wait),
                        Err(e) => {
                            debug!("could not answer {}: {e}", conn.remote);
                            Some(Step::Close)
                        }
                    }
                }
            };
            if let Some(step) = step {
                return step;
            }
        }
    }

    fn drive_session(
        &mut self,
        session: &mut Session,
        stream: &mut TcpStream,
        requester: Requester,
        now: Instant,
        effects: &mut Effects,
    ) -> Step {
        let remote = requester.remote;
        loop {
            match flush(session, stream) {
                Ok(true) if session.closing => return Step::Close,
                Ok(true) => {}
                Ok(false) => return Step::Wait,
                Err(e) => {
                    debug!("could not write to {remote}: {e}");
                    return Step::Close;
                }
            }
            let reader = session
                .reader
                .get_or_insert_with(|| FrameReader::new(MAX_REQUEST_BYTES));
            let request = match read_request(reader, stream) {
                Ok(Some(request)) => request,
                Ok(None) => return Step::Wait,
                Err(e) => {
                    self.refuse_connection(remote, now, &e);
                    return Step::Close;
                }
            };
            let answer = request::answer(
                &mut self.registry.lock(),
                request,
                requester,
                now,
                self.interval_secs,
            );
            self.note(&answer.outcome, remote, now);
            if !matches!(answer.frame, Frame::PeerList(_)) {
                // A leave's acknowledgement, or a refusal: the session ends with it.
                session.closing = true;
            }
            if let Some(registered) = answer.registered {
                effects.renewed = true;
                let room = &registered.0;
                effects.pushes.extend(
                    answer
                        .introductions
                        .iter()
                        .map(|(to, intro)| (*room, *to, *intro)),
                );
                session.registered = Some(registered);
            }
            if answer.left.is_some() {
                session.registered = None;
            }
            if !session.queue(&answer.frame) {
                return Step::Close;
            }
        }
    }

    /// Counts and logs what a request came to.
    fn note(&mut self, outcome: &Outcome, remote: SocketAddr, now: Instant) {
        match outcome {
            Outcome::Announced {
                addr,
                listed,
                evicted,
            } => {
                self.counters.announces += 1;
                debug!("announce of {addr} from {remote}: {listed} peers");
                if let Some(evicted) = evicted {
                    self.budget.log(now, log::Level::Info, || {
                        format!(
                            "registry full: {evicted} gave its place to {addr} from {remote} \
                             (its source held the most entries)"
                        )
                    });
                }
            }
            Outcome::Left { addr, was_there } => {
                self.counters.leaves += 1;
                debug!("leave of {addr} from {remote} (registered: {was_there})");
            }
            Outcome::Refused(refusal) => {
                self.counters.refused_requests += 1;
                self.budget.log(now, log::Level::Info, || {
                    format!("refused request from {remote}: {refusal}")
                });
            }
            Outcome::Unexpected(kind) => {
                self.counters.bad_requests += 1;
                self.budget.log(now, log::Level::Info, || {
                    format!("refused connection from {remote}: unexpected {kind} frame")
                });
            }
        }
    }

    /// Counts and logs a connection closed before it sent a request.
    fn refuse_connection(&mut self, remote: SocketAddr, now: Instant, e: &ReadError) {
        if matches!(e, ReadError::Closed) {
            // It left without a word (a port scan, a client that gave up): nothing wrong.
            debug!("connection from {remote} closed before a request");
            return;
        }
        self.counters.bad_requests += 1;
        self.budget.log(now, log::Level::Info, || {
            format!("closed connection from {remote}: {e}")
        });
    }

    pub(crate) fn gauges(&self, now: Instant, open_connections: usize) -> Gauges {
        Gauges {
            peers: self.registry.lock().live(now),
            open_connections,
            resident_bytes: stats::resident_bytes(),
        }
    }

    fn metrics(&self, now: Instant, open_connections: usize) -> String {
        stats::prometheus(&self.counters, &self.gauges(now, open_connections))
    }
}

/// Writes what the session has queued; `Ok(true)` once all of it is written.
fn flush(session: &mut Session, stream: &mut TcpStream) -> io::Result<bool> {
    let Session { out, written, .. } = session;
    write_some(stream, out, written)
}

/// Reads until a whole request is in (`Some`), the socket has nothing more for now
/// (`None`), or the connection must be closed (`Err`).
fn read_request(
    reader: &mut FrameReader,
    stream: &mut TcpStream,
) -> Result<Option<Frame>, ReadError> {
    loop {
        if let Some(frame) = reader.next_buffered()? {
            return Ok(Some(frame));
        }
        match reader.fill(stream) {
            Ok(_) => {}
            Err(e) if e.is_timeout() => return Ok(None),
            Err(e) => return Err(e),
        }
    }
}

/// Reads what the socket has into `head`, up to the endpoint's limit. `Ok(true)`: new bytes
/// arrived; `Ok(false)`: nothing for now.
fn read_http(head: &mut Vec<u8>, stream: &mut TcpStream) -> io::Result<bool> {
    let mut chunk = [0u8; 1024];
    let room = MAX_HTTP_REQUEST_BYTES
        .saturating_sub(head.len())
        .min(chunk.len());
    if room == 0 {
        return Ok(true); // the reply says it is too large
    }
    loop {
        return match stream.read(&mut chunk[..room]) {
            Ok(0) => Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => {
                head.extend_from_slice(&chunk[..n]);
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => Err(e),
        };
    }
}

/// Writes what the socket takes of `bytes[*written..]`. `Ok(true)`: all written.
fn write_some(stream: &mut TcpStream, bytes: &[u8], written: &mut usize) -> io::Result<bool> {
    while *written < bytes.len() {
        match stream.write(&bytes[*written..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => *written += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}
