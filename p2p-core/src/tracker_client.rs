//! Talking to a tracker: the session a peer keeps open with it (announce, re-announce at
//! the interval the tracker asks for, the introductions it pushes, leave), and one-shot
//! announce and leave for tools and tests.
//!
//! A peer opens its session at start (an unreachable tracker fails the start), from its
//! listening port where it can (so that a port-preserving NAT router maps it to the same
//! external port as its other connections). The tracker answers each announce with the
//! room's peers and the address it registered for this peer (what the peer then gives as
//! its address), and may push `Introduce` frames at any time: peers behind NAT that this
//! one must reach, or punch through to. Everything found goes to the peer's
//! mesh (`mesh.rs`). A session that breaks is opened again, after 1, 2, 4 … seconds
//! up to the re-announce interval.
//!
//! The tracker's name is resolved once, by the caller (at [`Peer::start`](crate::Peer)):
//! the thread works with socket addresses only, so it is never stuck in a host name lookup
//! when the peer closes. Its sockets are registered with the peer's threads, so a close
//! cuts an exchange in flight at once; the leave it sends on the way out has a deadline of
//! its own, [`LEAVE_TIME`], inside the peer's shutdown grace.

use std::net::{IpAddr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use log::{debug, info, warn};

use crate::config::{Resolver, Timeouts};
use crate::discovery::Source;
use crate::link::{self, LocalPort};
use crate::mesh::{Candidate, Mesh, Retry};
use crate::net::{read_frame_before, write_frame};
use crate::node::Node;
use crate::protocol::{
    Announce, Frame, FrameReader, Leave, PROTOCOL_VERSION, PeerList, ReadError, Room,
};
use crate::threads::SocketGuard;
use crate::{Error, Event, Result};

/// Shortest re-announce interval a peer accepts from a tracker.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);
/// Longest re-announce interval a peer accepts from a tracker.
pub const MAX_INTERVAL: Duration = Duration::from_secs(3600);

/// The longest a closing peer spends telling its tracker that it leaves (connecting,
/// sending the leave, waiting for the acknowledgement): well inside the second that a
/// close gives its threads to say goodbye, so a tracker that is frozen or unreachable
/// does not hold a close up.
pub const LEAVE_TIME: Duration = Duration::from_millis(750);

/// Frames a tracker answer may take (a list of a few thousand addresses at most). The
/// reader's buffer grows only with the bytes that arrive, whatever length is announced.
pub const MAX_ANSWER_BYTES: usize = 256 * 1024;

/// A tracker: its address as given (`host:port`, for messages) and the socket addresses
/// that resolved from it.
#[derive(Debug, Clone)]
pub(crate) struct TrackerAddr {
    name: String,
    addrs: Vec<SocketAddr>,
}

impl TrackerAddr {
    /// Resolves `tracker` with `resolver`; a failure is reported as the tracker's.
    pub(crate) fn resolve(tracker: &str, resolver: &Resolver) -> Result<TrackerAddr> {
        let addrs = resolver.resolve(tracker).map_err(|e| Error::Tracker {
            addr: tracker.to_owned(),
            reason: e.to_string(),
        })?;
        Ok(TrackerAddr {
            name: tracker.to_owned(),
            addrs,
        })
    }

    fn fail(&self, reason: String) -> Error {
        Error::Tracker {
            addr: self.name.clone(),
            reason,
        }
    }
}

/// Registers `listen_addr` (its IP given explicitly) in the room `lobby` of the tracker at
/// `tracker` (`host:port`) and returns its answer: the other peers and how often to announce
/// again. One request on a fresh connection, closed after the answer.
pub fn announce(tracker: &str, listen_addr: SocketAddr, timeouts: &Timeouts) -> Result<PeerList> {
    let tracker = TrackerAddr::resolve(tracker, &Resolver::system())?;
    let request = |local_ip| {
        Frame::Announce(Announce {
            version: PROTOCOL_VERSION,
            room: Room::lobby(),
            listen_port: listen_addr.port(),
            explicit_ip: Some(listen_addr.ip()),
            local_ip,
            behind_nat: false,
            introduce: false,
        })
    };
    let deadline = Instant::now() + timeouts.connect + timeouts.handshake;
    match exchange(&tracker, request, timeouts, deadline)? {
        Frame::PeerList(list) => Ok(list),
        other => Err(unexpected(&tracker, &other)),
    }
}

/// Tells the tracker at `tracker` to forget `listen_addr` (announced with [`announce`]) now.
pub fn leave(tracker: &str, listen_addr: SocketAddr, timeouts: &Timeouts) -> Result<()> {
    let tracker = TrackerAddr::resolve(tracker, &Resolver::system())?;
    let deadline = Instant::now() + timeouts.connect + timeouts.handshake;
    let request = Leave {
        room: Room::lobby(),
        listen_port: listen_addr.port(),
        explicit_ip: Some(listen_addr.ip()),
    };
    leave_before(&tracker, request, timeouts, deadline)
}

fn leave_before(
    tracker: &TrackerAddr,
    request: Leave,
    timeouts: &Timeouts,
    deadline: Instant,
) -> Result<()> {
    match exchange(
        tracker,
        |_| Frame::Leave(request.clone()),
        timeouts,
        deadline,
    )? {
        Frame::LeaveAck => Ok(()),
        other => Err(unexpected(tracker, &other)),
    }
}

fn unexpected(tracker: &TrackerAddr, frame: &Frame) -> Error {
    tracker.fail(match frame {
        Frame::Refuse { reason } => format!("refused: {reason}"),
        other => format!("answered with a {} frame", other.name()),
    })
}

/// One request, one answer, on a fresh connection to the first of the tracker's addresses
/// that answers, all before `deadline` (and each step within its own timeout). The request
/// is made from the connection's local IP address.
fn exchange(
    tracker: &TrackerAddr,
    request: impl Fn(IpAddr) -> Frame,
    timeouts: &Timeouts,
    deadline: Instant,
) -> Result<Frame> {
    let left = || {
        let left = deadline.saturating_duration_since(Instant::now());
        (!left.is_zero()).then_some(left)
    };
    let mut last = None;
    let mut connected = None;
    for &addr in &tracker.addrs {
        let Some(left) = left() else { break };
        match TcpStream::connect_timeout(&addr, timeouts.connect.min(left)) {
            Ok(stream) => {
                connected = Some(stream);
                break;
            }
            Err(e) => last = Some(e),
        }
    }
    let Some(stream) = connected else {
        let why = last.map_or_else(|| "timed out".to_owned(), |e| e.to_string());
        return Err(tracker.fail(format!("unreachable: {why}")));
    };
    let Some(left) = left() else {
        return Err(tracker.fail("timed out".into()));
    };
    stream.set_write_timeout(Some(timeouts.handshake.min(left)))?;
    // The tracker keeps the connection open as a session after its answer; this one-shot
    // exchange closes it with a reset, so that many of them leave no TIME_WAIT state
    // using up this side's ports.
    socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO))?;
    let local_ip = stream.local_addr()?.ip();
    write_frame(&stream, &request(local_ip)).map_err(|e| tracker.fail(e.to_string()))?;
    let mut reader = FrameReader::new(MAX_ANSWER_BYTES);
    let read_deadline = (Instant::now() + timeouts.handshake).min(deadline);
    read_frame_before(&stream, &mut reader, read_deadline).map_err(|e| tracker.fail(e.to_string()))
}

fn clamp_interval(secs: u32) -> Duration {
    Duration::from_secs(u64::from(secs)).clamp(MIN_INTERVAL, MAX_INTERVAL)
}

/// An open tracker session.
pub(crate) struct Session {
    stream: Arc<TcpStream>,
    _socket: SocketGuard,
    reader: FrameReader,
    /// The session's local IP, which every announce on it reports.
    local_ip: IpAddr,
}

/// This peer's announce on a session.
fn announce_frame(node: &Node, local_ip: IpAddr, introduce: bool) -> Frame {
    Frame::Announce(Announce {
        version: PROTOCOL_VERSION,
        room: node.config.room.clone(),
        listen_port: node.bound_addr.port(),
        explicit_ip: node.config.advertise_ip,
        local_ip,
        behind_nat: node.config.behind_nat,
        introduce,
    })
}

/// Opens a session with the first of the tracker's addresses that answers and announces
/// on it (asking for introductions); returns it with the tracker's answer.
pub(crate) fn open_session(node: &Node, tracker: &TrackerAddr) -> Result<(Session, PeerList)> {
    let timeouts = &node.config.timeouts;
    let mut last = None;
    for &addr in &tracker.addrs {
        // Registered as a reader: a close shuts its read side, which wakes the session
        // thread at once wherever it waits (connecting, or reading).
        let dialed = link::dial(node, addr, timeouts.connect, LocalPort::Listening);
        let (stream, socket) = match dialed {
            Ok(connection) => connection,
            Err(_) if node.stop.is_set() => return Err(Error::Shutdown),
            Err(e) => {
                last = Some(e);
                continue;
            }
        };
        let mut session = Session {
            local_ip: stream.local_addr()?.ip(),
            stream,
            _socket: socket,
            reader: FrameReader::new(MAX_ANSWER_BYTES),
        };
        session.stream.set_write_timeout(Some(timeouts.handshake))?;
        write_frame(
            &session.stream,
            &announce_frame(node, session.local_ip, true),
        )
        .map_err(|e| tracker.fail(e.to_string()))?;
        let deadline = Instant::now() + timeouts.handshake;
        let answer = match read_frame_before(&session.stream, &mut session.reader, deadline) {
            Ok(frame) => frame,
            Err(_) if node.stop.is_set() => return Err(Error::Shutdown),
            Err(e) => return Err(tracker.fail(e.to_string())),
        };
        return match answer {
            Frame::PeerList(list) => Ok((session, list)),
            other => Err(unexpected(tracker, &other)),
        };
    }
    let why = last.map_or_else(|| "no address".to_owned(), |e| e.to_string());
    Err(tracker.fail(format!("unreachable: {why}")))
}

/// Takes in a tracker's answer: the address it registered for this peer, and the peers.
pub(crate) fn take_answer(node: &Node, mesh: &Arc<Mesh>, list: &PeerList, introduced: bool) {
    if node.observed() != Some(list.observed) {
        debug!(
            "the tracker registered this peer as {} (behind NAT: {})",
            list.observed, list.nat
        );
    }
    node.observe(list.observed, list.nat);
    let candidates: Vec<Candidate> = list
        .peers
        .iter()
        .map(|p| Candidate {
            addr: p.addr,
            nat: p.nat,
        })
        .collect();
    let retry = Retry::every(clamp_interval(list.interval_secs));
    mesh.offer(Source::Tracker, &candidates, retry, introduced);
}

/// Starts the thread that keeps the session: re-announces every interval, takes the
/// introductions the tracker pushes, opens the session again when it breaks, and leaves on
/// shutdown.
pub(crate) fn spawn(
    node: &Arc<Node>,
    mesh: Arc<Mesh>,
    tracker: TrackerAddr,
    session: Session,
    interval: u32,
) -> std::io::Result<()> {
    let thread_node = Arc::clone(node);
    node.threads.spawn("p2p-tracker", move || {
        session_loop(&thread_node, &mesh, &tracker, session, interval);
    })
}

/// Why a session ended.
enum Broken {
    Stop,
    Failed(String),
}

fn session_loop(
    node: &Node,
    mesh: &Arc<Mesh>,
    tracker: &TrackerAddr,
    first: Session,
    interval: u32,
) {
    let mut interval = clamp_interval(interval);
    let mut session = Some(first);
    let mut reachable = true;
    let mut pause = MIN_INTERVAL;
    let mut reconnect_at = Instant::now();
    loop {
        if node.stop.is_set() {
            break;
        }
        if let Some(open) = session.as_mut() {
            match keep(node, mesh, open, &mut interval) {
                Broken::Stop => break,
                Broken::Failed(why) => {
                    warn!("tracker session with {} broke: {why}", tracker.name);
                    if reachable {
                        node.emit(Event::TrackerUnreachable { reason: why });
                    }
                    reachable = false;
                    session = None;
                    pause = MIN_INTERVAL;
                    reconnect_at = Instant::now() + pause;
                }
            }
            continue;
        }
        if node
            .stop
            .wait(reconnect_at.saturating_duration_since(Instant::now()))
        {
            break;
        }
        match open_session(node, tracker) {
            Ok((open, list)) => {
                info!("tracker {} reachable again", tracker.name);
                reachable = true;
                interval = clamp_interval(list.interval_secs);
                take_answer(node, mesh, &list, true);
                session = Some(open);
            }
            Err(_) if node.stop.is_set() => break,
            Err(e) => {
                warn!("cannot reach the tracker: {e}");
                if reachable {
                    node.emit(Event::TrackerUnreachable {
                        reason: e.to_string(),
                    });
                }
                reachable = false;
                pause = (pause * 2).min(interval);
                reconnect_at = Instant::now() + pause;
            }
        }
    }
    let deadline = Instant::now() + LEAVE_TIME;
    let left = match session {
        Some(open) => leave_on(node, &open, deadline),
        None => leave_before(tracker, our_leave(node), &node.config.timeouts, deadline),
    };
    match left {
        Ok(()) => debug!("left tracker {}", tracker.name),
        Err(e) => info!("could not tell the tracker we leave: {e}"),
    }
}

fn our_leave(node: &Node) -> Leave {
    Leave {
        room: node.config.room.clone(),
        listen_port: node.bound_addr.port(),
        explicit_ip: node.config.advertise_ip,
    }
}

/// Serves an open session until it breaks or the peer closes: announces at the interval,
/// takes answers and introductions.
fn keep(node: &Node, mesh: &Arc<Mesh>, session: &mut Session, interval: &mut Duration) -> Broken {
    let timeouts = &node.config.timeouts;
    let mut next_announce = Instant::now() + *interval;
    // An announce waiting for its answer: when it must come by, and whether it asked for
    // introductions.
    let mut waiting: Option<(Instant, bool)> = None;
    loop {
        if node.stop.is_set() {
            return Broken::Stop;
        }
        loop {
            match session.reader.next_buffered() {
                Ok(Some(Frame::PeerList(list))) => {
                    let introduced = waiting.take().is_some_and(|(_, asked)| asked);
                    *interval = clamp_interval(list.interval_secs);
                    take_answer(node, mesh, &list, introduced);
                }
                Ok(Some(Frame::Introduce(intro))) => mesh.introduce(intro),
                Ok(Some(Frame::Refuse { reason })) => {
                    return Broken::Failed(format!("refused: {reason}"));
                }
                Ok(Some(other)) => {
                    return Broken::Failed(format!("sent a {} frame", other.name()));
                }
                Ok(None) => break,
                Err(e) => return Broken::Failed(e.to_string()),
            }
        }
        let now = Instant::now();
        if let Some((by, _)) = waiting
            && now >= by
        {
            return Broken::Failed("no answer to the announce".into());
        }
        if now >= next_announce && waiting.is_none() {
            let asked = mesh.wants_introductions();
            let frame = announce_frame(node, session.local_ip, asked);
            if let Err(e) = write_frame(&session.stream, &frame) {
                return Broken::Failed(e.to_string());
            }
            waiting = Some((now + timeouts.handshake, asked));
            next_announce = now + *interval;
        }
        let until = waiting.map_or(next_announce, |(by, _)| by.min(next_announce));
        // Until the next announce or answer is due: a close wakes the read at once (it shuts
        // the session's read side).
        let wait = until
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1));
        if let Err(e) = session.stream.set_read_timeout(Some(wait)) {
            return Broken::Failed(e.to_string());
        }
        let mut src = &*session.stream;
        match session.reader.fill(&mut src) {
            Ok(_) => {}
            Err(e) if e.is_timeout() => {}
            Err(_) if node.stop.is_set() => return Broken::Stop,
            Err(ReadError::Closed) => {
                return Broken::Failed("the tracker closed the session".into());
            }
            Err(e) => return Broken::Failed(e.to_string()),
        }
    }
}

/// Sends the leave on the session, before `deadline`. Its acknowledgement is not read: the
/// close that ends the session has shut its read side (which is how it woke the session
/// thread); the tracker removes the entry as it reads the leave.
fn leave_on(node: &Node, session: &Session, deadline: Instant) -> Result<()> {
    let left = deadline.saturating_duration_since(Instant::now());
    session
        .stream
        .set_write_timeout(Some(left.max(Duration::from_millis(1))))?;
    write_frame(&session.stream, &Frame::Leave(our_leave(node)))?;
    let _ = session.stream.shutdown(std::net::Shutdown::Write);
    Ok(())
}
