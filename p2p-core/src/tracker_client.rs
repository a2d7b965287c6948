//! Talking to a tracker: announce (register and get the other peers), leave, and the
//! thread that re-announces at the interval the tracker asks for.
//!
//! The tracker's name is resolved once, by the caller (at [`Peer::start`](crate::Peer)):
//! the thread works with socket addresses only, so it is never stuck in a host name lookup
//! when the peer closes. Its sockets are registered with the peer's threads, so a close
//! cuts an exchange in flight at once; the leave it sends on the way out has a deadline of
//! its own, [`LEAVE_TIME`], inside the peer's shutdown grace.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, TryRecvError};

use log::{debug, info, warn};

use crate::config::{Resolver, Timeouts};
use crate::net::{read_frame_before, write_frame};
use crate::node::Node;
use crate::protocol::{Announce, Frame, FrameReader, PROTOCOL_VERSION, PeerList};
use crate::{Error, Event, PeerInfo, Result};

/// Shortest re-announce interval a peer accepts from a tracker.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);
/// Longest re-announce interval a peer accepts from a tracker.
pub const MAX_INTERVAL: Duration = Duration::from_secs(3600);

/// Most re-announce intervals a listed address that keeps failing waits before it is tried
/// again (the wait doubles with each failure: 1, 2, 4 … up to this many intervals).
pub const MAX_BACKOFF_INTERVALS: u32 = 64;

/// The longest a closing peer spends telling its tracker that it leaves (connecting,
/// sending the leave, waiting for the acknowledgement): well inside the second that a
/// close gives its threads to say goodbye, so a tracker that is frozen or unreachable
/// does not hold a close up.
pub const LEAVE_TIME: Duration = Duration::from_millis(750);

/// Frames a tracker answer may take (a list of a few thousand addresses at most). The
/// reader's buffer grows only with the bytes that arrive, whatever length is announced.
const MAX_ANSWER_BYTES: usize = 256 * 1024;

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

/// Registers `listen_addr` with the tracker at `tracker` (`host:port`) and returns its
/// answer: the other peers and how often to announce again.
pub fn announce(tracker: &str, listen_addr: SocketAddr, timeouts: &Timeouts) -> Result<PeerList> {
    let tracker = TrackerAddr::resolve(tracker, &Resolver::system())?;
    announce_to(&tracker, listen_addr, timeouts, None)
}

/// Tells the tracker at `tracker` to forget `listen_addr` now.
pub fn leave(tracker: &str, listen_addr: SocketAddr, timeouts: &Timeouts) -> Result<()> {
    let tracker = TrackerAddr::resolve(tracker, &Resolver::system())?;
    let deadline = Instant::now() + timeouts.connect + timeouts.handshake;
    leave_before(&tracker, listen_addr, timeouts, deadline)
}

/// Announces to `tracker`, on a socket registered with `node`'s threads if one is given.
pub(crate) fn announce_to(
    tracker: &TrackerAddr,
    listen_addr: SocketAddr,
    timeouts: &Timeouts,
    node: Option<&Node>,
) -> Result<PeerList> {
    let request = Frame::Announce(Announce {
        version: PROTOCOL_VERSION,
        listen_addr,
    });
    let deadline = Instant::now() + timeouts.connect + timeouts.handshake;
    match exchange(tracker, &request, timeouts, node, deadline)? {
        Frame::PeerList(list) => Ok(list),
        other => Err(unexpected(tracker, &other)),
    }
}

fn leave_before(
    tracker: &TrackerAddr,
    listen_addr: SocketAddr,
    timeouts: &Timeouts,
    deadline: Instant,
) -> Result<()> {
    match exchange(
        tracker,
        &Frame::Leave { listen_addr },
        timeouts,
        None,
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
/// that answers, all before `deadline` (and each step within its own timeout). With a
/// `node`, the socket is registered with its threads: a shutdown cuts the exchange short.
fn exchange(
    tracker: &TrackerAddr,
    request: &Frame,
    timeouts: &Timeouts,
    node: Option<&Node>,
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
        let timeout = timeouts.connect.min(left);
        let attempt = match node {
            Some(node) => node.connect(addr, timeout).map(|(s, g)| (s, Some(g))),
            None => TcpStream::connect_timeout(&addr, timeout).map(|s| (Arc::new(s), None)),
        };
        match attempt {
            Ok(conn) => {
                connected = Some(conn);
                break;
            }
            Err(e) => last = Some(e),
        }
    }
    let Some((stream, _registered)) = connected else {
        let why = last.map_or_else(|| "timed out".to_owned(), |e| e.to_string());
        return Err(tracker.fail(format!("unreachable: {why}")));
    };
    let Some(left) = left() else {
        return Err(tracker.fail("timed out".into()));
    };
    stream.set_write_timeout(Some(timeouts.handshake.min(left)))?;
    write_frame(&stream, request).map_err(|e| tracker.fail(e.to_string()))?;
    let mut reader = FrameReader::new(MAX_ANSWER_BYTES);
    let read_deadline = (Instant::now() + timeouts.handshake).min(deadline);
    read_frame_before(&stream, &mut reader, read_deadline).map_err(|e| tracker.fail(e.to_string()))
}

/// How the tracker thread reaches the peers it is told about: the peer wires it to the
/// ClientSide.
pub(crate) trait Mesh: Send + Sync + 'static {
    /// `true` if this peer listens to `addr`, or is connecting to it.
    fn knows(&self, addr: SocketAddr) -> bool;
    /// Starts listening to `addr`, greeting it with a hello; the outcome arrives on the
    /// receiver. `None` once the peer is shutting down.
    fn join(&self, addr: SocketAddr) -> Option<Receiver<Result<PeerInfo>>>;
}

/// Starts the thread that re-announces every `interval` and, on shutdown, leaves.
pub(crate) fn spawn(
    node: &Arc<Node>,
    mesh: Arc<dyn Mesh>,
    tracker: TrackerAddr,
    interval: u32,
) -> std::io::Result<()> {
    let thread_node = Arc::clone(node);
    node.threads.spawn("p2p-tracker", move || {
        reannounce_loop(&thread_node, &*mesh, &tracker, interval);
    })
}

fn clamp_interval(secs: u32) -> Duration {
    Duration::from_secs(u64::from(secs)).clamp(MIN_INTERVAL, MAX_INTERVAL)
}

/// The addresses from the tracker's lists that this peer tried to join in the background:
/// the attempts under way, and the ones that failed with when to try them again. Without
/// it, a tracker that lists dead or bogus addresses would have every peer try each of them
/// again at every re-announce.
#[derive(Default)]
struct Retries {
    pending: Vec<(SocketAddr, Receiver<Result<PeerInfo>>)>,
    failed: HashMap<SocketAddr, (u32, Instant)>,
}

impl Retries {
    /// Takes in the attempts that have ended.
    fn collect(&mut self, interval: Duration, now: Instant) {
        let failed = &mut self.failed;
        self.pending.retain(|(addr, rx)| match rx.try_recv() {
            Err(TryRecvError::Empty) => true,
            Ok(Ok(_) | Err(Error::AlreadyConnected(_) | Error::SelfConnection(_))) => {
                failed.remove(addr);
                false
            }
            Ok(Err(Error::Shutdown)) | Err(TryRecvError::Disconnected) => false,
            Ok(Err(e)) => {
                let failures = failed.get(addr).map_or(1, |(n, _)| n.saturating_add(1));
                let wait = interval * (1u32 << (failures - 1).min(MAX_BACKOFF_INTERVALS.ilog2()));
                debug!("cannot listen to {addr} ({e}); next try in {wait:?}");
                failed.insert(*addr, (failures, now + wait));
                false
            }
        });
    }

    /// Starts an attempt for every listed address not joined, not being tried, and not
    /// waiting out a failure; forgets failures of addresses no longer listed.
    fn join(&mut self, node: &Node, mesh: &dyn Mesh, list: &PeerList, now: Instant) {
        let listed = &list.peers[..list.peers.len().min(node.config.limits.max_tracker_peers)];
        self.failed.retain(|addr, _| listed.contains(addr));
        for addr in listed {
            if *addr == node.local_addr
                || mesh.knows(*addr)
                || self.pending.iter().any(|(a, _)| a == addr)
                || self.failed.get(addr).is_some_and(|(_, next)| *next > now)
            {
                continue;
            }
            let Some(rx) = mesh.join(*addr) else {
                return; // shutting down
            };
            self.pending.push((*addr, rx));
        }
    }
}

fn reannounce_loop(node: &Node, mesh: &dyn Mesh, tracker: &TrackerAddr, interval: u32) {
    let timeouts = &node.config.timeouts;
    let mut interval = clamp_interval(interval);
    let mut reachable = true;
    let mut retries = Retries::default();
    while !node.stop.wait(interval) {
        let now = Instant::now();
        retries.collect(interval, now);
        match announce_to(tracker, node.local_addr, timeouts, Some(node)) {
            Ok(list) => {
                if !reachable {
                    info!("tracker {} reachable again", tracker.name);
                }
                reachable = true;
                interval = clamp_interval(list.interval_secs);
                retries.join(node, mesh, &list, now);
            }
            Err(_) if node.stop.is_set() => break, // cut short by the close
            Err(e) => {
                warn!("re-announce failed: {e}");
                if reachable {
                    node.emit(Event::TrackerUnreachable {
                        reason: e.to_string(),
                    });
                }
                reachable = false;
            }
        }
    }
    let deadline = Instant::now() + LEAVE_TIME;
    match leave_before(tracker, node.local_addr, timeouts, deadline) {
        Ok(()) => debug!("left tracker {}", tracker.name),
        Err(e) => info!("could not tell the tracker we leave: {e}"),
    }
}
