//! The listener registry and the sending side of the broadcast log: who listens, how far
//! behind each listener is, and the back-pressure that keeps a sender within the
//! listeners' byte limit.
//!
//! Every listener may be at most `listener_queue_bytes` behind the end of the log. A
//! sender that would take the slowest live listener past that waits for it to take
//! something (that is how a sender faster than its listeners is slowed down), for at most
//! the stall timeout; a listener that took nothing at all during such a wait is cut off
//! ([`Departure::Overflow`](crate::Departure::Overflow)) and the message goes to the others.
//! A slower listener that is still taking is never cut off: if it has not made room by the
//! end of the wait, `send` fails with [`Error::QueueFull`] and the message is not sent.
//!
//! The sender does not look at the listeners for every message: it keeps a credit, the room
//! the slowest listener had when it last looked, and looks again only once the credit is
//! spent. While listeners keep up that is once per limit's worth of bytes.

use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use log::warn;

use crate::event::PeerInfo;
use crate::fanout::{Bell, Cursor, Tail};
use crate::protocol::FrameBytes;
use crate::threads::{Stop, lock};
use crate::{Error, Result};

/// What one message in the log costs against a listener's byte limit beyond its frame
/// bytes: its slot in the log (24 bytes), the shared pointer's counts (16) and the
/// allocator's header and rounding, so that the limit bounds the sender's memory rather
/// than only the bytes of the texts.
pub(super) const QUEUE_ITEM_OVERHEAD: usize = 64;

/// A sender waiting for room looks at the listeners again at least this often, even when
/// no listener thread has rung (one that made a little room and then stopped taking).
const WAIT_SLICE: Duration = Duration::from_millis(100);

/// The registry of this peer's listeners, and the broadcast log they read.
#[derive(Debug, Default)]
pub(crate) struct Listeners {
    /// The listeners now. Removing one (or clearing the registry at shutdown) also raises
    /// its `removed` flag and rings the bell: that is how its thread learns it must stop.
    list: Mutex<Vec<Arc<ListenerHandle>>>,
    /// How many listeners `list` holds, for `broadcast` to report without its lock.
    count: AtomicUsize,
    /// The end of the broadcast log, and the sender's accounting. Lock order: `log`, then
    /// `list`.
    log: Mutex<LogEnd>,
    /// Rung when the log grows or a listener must stop.
    pub(super) bell: Bell,
    /// Rung when a listener takes from the log or leaves: wakes a sender waiting for room.
    pub(super) room: Bell,
    /// Inbound connections open now (handshaking or listening).
    pub(super) inbound: AtomicUsize,
}

/// The sending side of the broadcast log.
#[derive(Debug, Default)]
struct LogEnd {
    tail: Tail,
    /// Bytes (with the per-message overhead) ever appended.
    appended: u64,
    /// Bytes that may be appended before the sender must look at the listeners again.
    credit: u64,
}

/// A counter on a cache line of its own: only the listener's thread writes it, the sender
/// reads it when its credit is spent.
#[derive(Debug, Default)]
#[repr(align(128))]
pub(super) struct Counter(AtomicU64);

impl Counter {
    pub(super) fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    pub(super) fn set(&self, n: u64) {
        self.0.store(n, Ordering::Relaxed);
    }
}

/// What the sending side holds of one listener.
#[derive(Debug)]
pub(crate) struct ListenerHandle {
    pub(crate) info: PeerInfo,
    peer_id: u64,
    /// Bytes of the log (with the per-message overhead) this listener's thread has taken
    /// since it joined.
    pub(super) taken: Counter,
    /// Write calls begun on this listener's socket.
    pub(super) writes_begun: Counter,
    /// The number (as counted by `writes_begun`) of the last write call that the kernel
    /// took bytes from: what tells a listener that takes slowly from one that takes
    /// nothing. A blocking write that is cut short by its timeout returns the bytes it took
    /// before, maybe long before, so only a call begun after a sender started waiting shows
    /// that the listener took something meanwhile.
    pub(super) last_progress: Counter,
    /// `appended` when this listener joined: `appended - joined_at - taken` is how far it
    /// is behind.
    joined_at: u64,
    pub(crate) overflowed: AtomicBool,
    /// Raised when the listener is taken out of the registry: its thread must stop.
    pub(super) removed: AtomicBool,
    /// The socket, shared, to cut a listener off without waiting for its thread.
    stream: Arc<TcpStream>,
}

impl ListenerHandle {
    fn behind(&self, appended: u64) -> u64 {
        appended
            .saturating_sub(self.joined_at)
            .saturating_sub(self.taken.get())
    }
}

/// A listener and the number of write calls begun on its socket when it was looked at.
type Taking = (Arc<ListenerHandle>, u64);

/// Why a listener could not be registered.
pub(crate) enum Refusal {
    /// A listener with this peer id is registered already.
    Duplicate,
    /// The peer is shutting down.
    Stopping,
}

impl Listeners {
    /// The listeners now, by username and advertised address.
    pub(crate) fn snapshot(&self) -> Vec<PeerInfo> {
        lock(&self.list).iter().map(|h| h.info.clone()).collect()
    }

    pub(crate) fn has_peer(&self, peer_id: u64) -> bool {
        lock(&self.list).iter().any(|h| h.peer_id == peer_id)
    }

    /// Registers a listener, with a cursor at the end of the log: whatever is sent from now
    /// on reaches it, in order.
    pub(crate) fn join(
        &self,
        info: PeerInfo,
        peer_id: u64,
        stream: &Arc<TcpStream>,
        stop: &Stop,
    ) -> std::result::Result<(Arc<ListenerHandle>, Cursor), Refusal> {
        let log = lock(&self.log);
        let mut list = lock(&self.list);
        if stop.is_set() {
            return Err(Refusal::Stopping); // the registry will not be cleared again
        }
        // Checked under the lock: two connections with the same id may have passed an
        // earlier check together.
        if list.iter().any(|h| h.peer_id == peer_id) {
            return Err(Refusal::Duplicate);
        }
        let handle = Arc::new(ListenerHandle {
            info,
            peer_id,
            taken: Counter::default(),
            writes_begun: Counter::default(),
            last_progress: Counter::default(),
            joined_at: log.appended,
            overflowed: AtomicBool::new(false),
            removed: AtomicBool::new(false),
            stream: Arc::clone(stream),
        });
        list.push(Arc::clone(&handle));
        self.count.store(list.len(), Ordering::Relaxed);
        Ok((handle, log.tail.cursor()))
    }

    pub(crate) fn remove(&self, handle: &Arc<ListenerHandle>) {
        {
            let mut list = lock(&self.list);
            list.retain(|h| !Arc::ptr_eq(h, handle));
            self.count.store(list.len(), Ordering::Relaxed);
        }
        handle.removed.store(true, Ordering::SeqCst);
        self.bell.ring();
        self.room.ring();
    }

    /// Takes every listener out of the registry: their threads say goodbye and end, and a
    /// sender waiting for room stops waiting.
    pub(crate) fn disconnect_all(&self) {
        {
            let mut list = lock(&self.list);
            for handle in list.drain(..) {
                handle.removed.store(true, Ordering::SeqCst);
            }
            self.count.store(0, Ordering::Relaxed);
        }
        self.bell.ring();
        self.room.ring();
    }

    /// The room the slowest listener has left under `limit`, given `appended`.
    fn room_left(&self, appended: u64, limit: u64) -> u64 {
        let behind = lock(&self.list)
            .iter()
            .map(|h| h.behind(appended))
            .max()
            .unwrap_or(0);
        limit.saturating_sub(behind)
    }

    /// The listeners that leave less than `needed` of room under `limit`, with the write
    /// calls begun on their sockets so far.
    fn blocking(&self, appended: u64, limit: u64, needed: u64) -> Vec<Taking> {
        lock(&self.list)
            .iter()
            .filter(|h| limit.saturating_sub(h.behind(appended)) < needed)
            .map(|h| (Arc::clone(h), h.writes_begun.get()))
            .collect()
    }

    /// Appends `bytes` to the broadcast log, which every listener thread writes to its
    /// listener, and returns how many listeners there are. If the slowest listener has no
    /// room for it under `limit`, it waits for room up to `wait` (not at all for `None`),
    /// cuts off the listeners that took nothing in all that time, and fails with
    /// [`Error::QueueFull`] if a listener that is still taking has not made room.
    pub(crate) fn broadcast(
        &self,
        bytes: &FrameBytes,
        limit: usize,
        wait: Option<Duration>,
        stop: &Stop,
    ) -> Result<usize> {
        let limit = limit as u64;
        let cost = (bytes.len() + QUEUE_ITEM_OVERHEAD) as u64;
        // A message larger than the limit goes once every listener has taken everything.
        let needed = cost.min(limit);
        let mut waiting: Option<(Instant, Vec<Taking>)> = None;
        let mut cut = false;
        loop {
            {
                let mut log = lock(&self.log);
                if log.credit < needed {
                    log.credit = self.room_left(log.appended, limit);
                }
                if log.credit >= needed {
                    log.credit = log.credit.saturating_sub(cost);
                    log.tail.push(FrameBytes::clone(bytes));
                    log.appended += cost;
                    drop(log);
                    self.bell.ring();
                    return Ok(self.count.load(Ordering::Relaxed));
                }
            }
            if stop.is_set() {
                return Err(Error::Shutdown);
            }
            let Some(wait) = wait else {
                return Err(Error::QueueFull);
            };
            let appended = lock(&self.log).appended;
            let (since, before) = waiting
                .get_or_insert_with(|| (Instant::now(), self.blocking(appended, limit, needed)));
            let waited = since.elapsed();
            if waited >= wait {
                // Still no room: cut off the listeners that took nothing at all meanwhile,
                // once; if a listener that is taking still leaves no room, give up.
                let stalled: Vec<_> = self
                    .blocking(appended, limit, needed)
                    .into_iter()
                    .filter(|(h, _)| {
                        before
                            .iter()
                            .any(|(b, begun)| Arc::ptr_eq(b, h) && h.last_progress.get() <= *begun)
                    })
                    .collect();
                if cut || stalled.is_empty() {
                    return Err(Error::QueueFull);
                }
                for (handle, _) in stalled {
                    self.cut_off(&handle, wait);
                }
                cut = true;
                continue;
            }
            // Wake when a listener has made room for a good part of the limit, so that a
            // sender held back by a slow listener wakes once per eighth of the limit, not
            // once per message.
            let enough = needed.max(limit / 8);
            self.room.wait((wait - waited).min(WAIT_SLICE), || {
                stop.is_set() || self.room_left(lock(&self.log).appended, limit) >= enough
            });
        }
    }

    /// Cuts off a listener that took nothing while the sender waited `waited` for it: its
    /// thread reports the overflow.
    fn cut_off(&self, handle: &Arc<ListenerHandle>, waited: Duration) {
        if !handle.overflowed.swap(true, Ordering::SeqCst) {
            warn!(
                "listener {} took nothing for {waited:?} with its queue full: disconnecting it",
                handle.info
            );
            self.remove(handle);
            let _ = handle.stream.shutdown(Shutdown::Both);
        }
    }
}
