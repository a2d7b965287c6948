//! Talking to a tracker: announce (register and get the other peers), leave, and the
//! thread that re-announces at the interval the tracker asks for.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, TryRecvError};

use log::{debug, info, warn};

use crate::config::Timeouts;
use crate::net::{connect, read_frame_before, write_frame};
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

/// Frames a tracker answer may take (a list of a few thousand addresses at most). The
/// reader's buffer grows only with the bytes that arrive, whatever length is announced.
const MAX_ANSWER_BYTES: usize = 256 * 1024;

/// Registers `listen_addr` with the tracker at `tracker` (`host:port`) and returns its
/// answer: the other peers and how often to announce again.
pub fn announce(tracker: &str, listen_addr: SocketAddr, timeouts: &Timeouts) -> Result<PeerList> {
    let request = Frame::Announce(Announce {
        version: PROTOCOL_VERSION,
        listen_addr,
    });
    match exchange(tracker, &request, timeouts)? {
        Frame::PeerList(list) => Ok(list),
        other => Err(unexpected(tracker, &other)),
    }
}

/// Tells the tracker at `tracker` to forget `listen_addr` now.
pub fn leave(tracker: &str, listen_addr: SocketAddr, timeouts: &Timeouts) -> Result<()> {
    match exchange(tracker, &Frame::Leave { listen_addr }, timeouts)? {
        Frame::LeaveAck => Ok(()),
        other => Err(unexpected(tracker, &other)),
    }
}

fn unexpected(tracker: &str, frame: &Frame) -> Error {
    let reason = match frame {
        Frame::Refuse { reason } => format!("refused: {reason}"),
        other => format!("answered with a {} frame", other.name()),
    };
    Error::Tracker {
        addr: tracker.to_owned(),
        reason,
    }
}

/// One request, one answer, on a fresh connection.
fn exchange(tracker: &str, request: &Frame, timeouts: &Timeouts) -> Result<Frame> {
    let fail = |reason: String| Error::Tracker {
        addr: tracker.to_owned(),
        reason,
    };
    let (stream, _) = connect(tracker, timeouts.connect).map_err(|e| match e {
        Error::Connect { source, .. } => fail(format!("unreachable: {source}")),
        other => fail(other.to_string()),
    })?;
    stream.set_write_timeout(Some(timeouts.handshake))?;
    write_frame(&stream, request).map_err(|e| fail(e.to_string()))?;
    let mut reader = FrameReader::new(MAX_ANSWER_BYTES);
    let deadline = Instant::now() + timeouts.handshake;
    read_frame_before(&stream, &mut reader, deadline).map_err(|e| fail(e.to_string()))
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
    tracker: String,
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

fn reannounce_loop(node: &Node, mesh: &dyn Mesh, tracker: &str, interval: u32) {
    let timeouts = &node.config.timeouts;
    let mut interval = clamp_interval(interval);
    let mut reachable = true;
    let mut retries = Retries::default();
    while !node.stop.wait(interval) {
        let now = Instant::now();
        retries.collect(interval, now);
        match announce(tracker, node.local_addr, timeouts) {
            Ok(list) => {
                if !reachable {
                    info!("tracker {tracker} reachable again");
                }
                reachable = true;
                interval = clamp_interval(list.interval_secs);
                retries.join(node, mesh, &list, now);
            }
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
    let quick = Timeouts {
        connect: Duration::from_secs(1),
        handshake: Duration::from_secs(1),
        ..timeouts.clone()
    };
    match leave(tracker, node.local_addr, &quick) {
        Ok(()) => debug!("left tracker {tracker}"),
        Err(e) => info!("could not tell the tracker we leave: {e}"),
    }
}
