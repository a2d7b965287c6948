//! The ServerSide: the TCP listener every listener of this peer is connected to.
//!
//! Threads (all started through the peer's [`ThreadSet`](crate::threads)):
//!
//! - one **accept** thread: takes connections, refuses those past the inbound cap, and
//!   starts a listener thread for each of the others;
//! - one **listener** thread per connection: reads the handshake (within the handshake
//!   timeout), answers with a welcome, then writes to that listener whatever its queue
//!   holds until the link ends. Between writes it reads the listener's keep-alives without
//!   blocking, so a listener that vanishes is noticed.
//!
//! [`broadcast`] encodes nothing: it is handed the frame bytes once and offers the same
//! `Arc` to every listener's queue. A queue is bounded by bytes; a listener whose queue
//! would overflow is cut off and reported, never waited on.

use std::io::{BufWriter, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use log::{debug, info, warn};

use crate::event::{Departure, Event, PeerInfo};
use crate::net::{read_frame_before, write_frame};
use crate::peer::Shared;
use crate::protocol::{
    Frame, FrameBytes, FrameReader, PROTOCOL_VERSION, ReadError, Welcome, validate_username,
};
use crate::threads::{Role, lock};

/// What one queued message costs against a listener's byte limit beyond its bytes: the
/// queue slot and the shared pointer.
const QUEUE_ITEM_OVERHEAD: usize = 32;

/// Bytes a listener thread buffers before writing to the socket.
const WRITE_BUFFER: usize = 64 * 1024;

/// Most reads of keep-alives per check, so a listener that floods us cannot keep its
/// thread from writing.
const MAX_UPSTREAM_READS: usize = 8;

/// The registry of this peer's listeners.
#[derive(Debug, Default)]
pub(crate) struct Listeners {
    /// Each listener with the sending end of its queue. Only this registry holds the
    /// senders: removing an entry (or clearing the registry at shutdown) disconnects the
    /// queue, which is how a listener thread learns it must stop, without every thread
    /// waiting on one shared stop channel.
    list: Mutex<Vec<Entry>>,
    /// Inbound connections open now (handshaking or listening).
    inbound: AtomicUsize,
}

/// One listener in the registry.
#[derive(Debug)]
struct Entry {
    handle: Arc<ListenerHandle>,
    tx: Sender<FrameBytes>,
    /// Bytes `broadcast` has ever queued for this listener (changed only under the
    /// registry's lock, so a plain number).
    charged: usize,
    /// The listener's `written` counter as `broadcast` last read it. `charged - seen` is
    /// at least what waits in the queue now; `broadcast` reads `written` again only when
    /// that estimate would pass the limit, so the sender does not touch the listener
    /// thread's counter on every message.
    seen: usize,
}

/// A counter on a cache line of its own: the listener thread adds to it after every
/// batch, and the sender reads it only when a queue looks full.
#[derive(Debug, Default)]
#[repr(align(128))]
struct WrittenBytes(AtomicUsize);

/// What the sending side holds of one listener.
#[derive(Debug)]
struct ListenerHandle {
    info: PeerInfo,
    peer_id: u64,
    /// Bytes this listener's thread has ever taken off its queue (written or dropped),
    /// added once per batch. Only that thread writes it.
    written: WrittenBytes,
    overflowed: AtomicBool,
    /// The socket, shared, to cut a listener off without waiting for its thread.
    stream: Arc<TcpStream>,
}

impl Listeners {
    /// The listeners now, by username and advertised address.
    pub(crate) fn snapshot(&self) -> Vec<PeerInfo> {
        lock(&self.list)
            .iter()
            .map(|e| e.handle.info.clone())
            .collect()
    }

    pub(crate) fn has_peer(&self, peer_id: u64) -> bool {
        lock(&self.list).iter().any(|e| e.handle.peer_id == peer_id)
    }

    fn remove(&self, handle: &Arc<ListenerHandle>) {
        lock(&self.list).retain(|e| !Arc::ptr_eq(&e.handle, handle));
    }

    /// Disconnects every listener's queue: their threads say goodbye and end.
    pub(crate) fn disconnect_all(&self) {
        lock(&self.list).clear();
    }
}

/// Offers `bytes` to every listener's queue. Returns how many listeners took it; those
/// whose queue is over its byte limit are cut off (their thread reports the overflow).
pub(crate) fn broadcast(shared: &Shared, bytes: &FrameBytes) -> usize {
    let limit = shared.config.limits.listener_queue_bytes;
    let cost = bytes.len() + QUEUE_ITEM_OVERHEAD;
    let mut taken = 0;
    let mut overflowed = Vec::new();
    {
        let mut list = lock(&shared.listeners.list);
        for entry in list.iter_mut() {
            if entry.charged.saturating_sub(entry.seen) + cost > limit {
                // The estimate says full: look at what the listener has really taken.
                entry.seen = entry.handle.written.0.load(Ordering::Relaxed);
                if entry.charged.saturating_sub(entry.seen) + cost > limit {
                    overflowed.push(Arc::clone(&entry.handle));
                    continue;
                }
            }
            if entry.tx.send(bytes.clone()).is_ok() {
                entry.charged += cost;
                taken += 1;
            }
        }
    }
    for handle in overflowed {
        if !handle.overflowed.swap(true, Ordering::SeqCst) {
            warn!(
                "listener {} overflowed its queue of {limit} bytes: disconnecting it",
                handle.info
            );
            shared.listeners.remove(&handle);
            let _ = handle.stream.shutdown(Shutdown::Both);
        }
    }
    taken
}

/// Starts the accept thread on `listener`.
pub(crate) fn spawn_accept(shared: &Arc<Shared>, listener: TcpListener) -> std::io::Result<()> {
    let shared = Arc::clone(shared);
    let threads = Arc::clone(&shared.threads);
    threads.spawn("p2p-accept", move || accept_loop(&shared, &listener))
}

/// Wakes an accept thread blocked in `accept()` by connecting to it.
pub(crate) fn wake_accept(bound: SocketAddr) {
    let ip = match bound.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    if let Err(e) =
        TcpStream::connect_timeout(&SocketAddr::new(ip, bound.port()), Duration::from_secs(1))
    {
        debug!("could not wake the accept thread on {bound}: {e}");
    }
}

fn accept_loop(shared: &Arc<Shared>, listener: &TcpListener) {
    let max_inbound = shared.config.limits.max_inbound;
    loop {
        let accepted = listener.accept();
        if shared.stop.is_set() {
            break;
        }
        let (stream, remote) = match accepted {
            Ok(conn) => conn,
            Err(e) => {
                // Out of file descriptors and the like: back off a little, but wake at once
                // on shutdown.
                warn!("accept failed: {e}");
                if shared.stop.wait(Duration::from_millis(100)) {
                    break;
                }
                continue;
            }
        };
        let open = shared.listeners.inbound.fetch_add(1, Ordering::SeqCst);
        if open >= max_inbound {
            shared.listeners.inbound.fetch_sub(1, Ordering::SeqCst);
            warn!("refused connection from {remote}: {max_inbound} inbound connections open");
            continue;
        }
        let conn_shared = Arc::clone(shared);
        let spawned = shared.threads.spawn("p2p-listener", move || {
            serve(&conn_shared, stream, remote);
            conn_shared.listeners.inbound.fetch_sub(1, Ordering::SeqCst);
        });
        if let Err(e) = spawned {
            shared.listeners.inbound.fetch_sub(1, Ordering::SeqCst);
            warn!("dropped connection from {remote}: cannot start its thread: {e}");
        }
    }
    debug!("accept thread stopped");
}

/// The life of one inbound connection: handshake, then writing to the listener.
fn serve(shared: &Arc<Shared>, stream: TcpStream, remote: SocketAddr) {
    // One descriptor per connection: the socket is shared, never duplicated.
    let stream = Arc::new(stream);
    // While handshaking this thread blocks in reads: shutdown wakes it like a reader.
    let Some(handshaking) = shared.threads.register(&stream, Role::Reader) else {
        return;
    };
    let _ = stream.set_nodelay(true);
    let mut reader = FrameReader::new(shared.config.limits.max_frame_bytes);
    let deadline = Instant::now() + shared.config.timeouts.handshake;
    let hs = match read_frame_before(&stream, &mut reader, deadline) {
        Ok(Frame::Handshake(hs)) => hs,
        Ok(other) => {
            return refuse(
                &stream,
                remote,
                &format!("expected a handshake, got a {} frame", other.name()),
            );
        }
        Err(e) if e.is_timeout() => {
            return refuse(&stream, remote, "no handshake within the handshake timeout");
        }
        Err(ReadError::Protocol(e)) => {
            return refuse(&stream, remote, &e.to_string());
        }
        Err(e) => {
            info!("closed connection from {remote}: {e}");
            return;
        }
    };
    if let Err(e) = validate_username(&hs.username) {
        return refuse(&stream, remote, &format!("invalid username: {e}"));
    }
    let welcome = Frame::Welcome(Welcome {
        version: PROTOCOL_VERSION,
        peer_id: shared.peer_id,
        username: shared.config.username.clone(),
    });
    if hs.peer_id == shared.peer_id {
        // Our own ClientSide reached us: let it see our id and close.
        debug!("connection from {remote} is this peer itself: closing it");
        let _ = write_frame(&stream, &welcome);
        return;
    }
    if shared.listeners.has_peer(hs.peer_id) {
        return refuse(&stream, remote, "this peer already listens here");
    }
    drop(handshaking);
    let Some(_socket) = shared.threads.register(&stream, Role::Writer) else {
        return;
    };
    let (tx, rx) = crossbeam_channel::unbounded();
    let handle = Arc::new(ListenerHandle {
        info: PeerInfo {
            username: hs.username.clone(),
            addr: hs.listen_addr,
        },
        peer_id: hs.peer_id,
        written: WrittenBytes::default(),
        overflowed: AtomicBool::new(false),
        stream: Arc::clone(&stream),
    });
    // Register before the welcome: whatever is sent from now on reaches this listener,
    // after the welcome, in order.
    {
        let mut list = lock(&shared.listeners.list);
        if shared.stop.is_set() {
            return; // shutdown has begun: the registry will not be cleared again
        }
        list.push(Entry {
            handle: Arc::clone(&handle),
            tx,
            charged: 0,
            seen: 0,
        });
    }
    if let Err(e) = write_frame(&stream, &welcome) {
        shared.listeners.remove(&handle);
        info!("closed connection from {remote}: cannot send welcome: {e}");
        return;
    }
    debug!("{} listens to us (from {remote})", handle.info);
    shared.emit(Event::ListenerJoined(handle.info.clone()));
    if hs.connect_back {
        crate::client_side::connect_back(shared, &hs);
    }
    let reason = write_loop(shared, &stream, &handle, &rx, reader);
    shared.listeners.remove(&handle);
    let reason = if handle.overflowed.load(Ordering::SeqCst) {
        Departure::Overflow
    } else {
        reason
    };
    let _ = stream.shutdown(Shutdown::Both);
    debug!("listener {} gone: {reason}", handle.info);
    shared.emit(Event::ListenerLeft {
        peer: handle.info.clone(),
        reason,
    });
}

fn refuse(stream: &TcpStream, remote: SocketAddr, reason: &str) {
    info!("refused connection from {remote}: {reason}");
    let _ = stream.set_write_timeout(Some(Duration::from_millis(500)));
    let _ = write_frame(
        stream,
        &Frame::Refuse {
            reason: reason.to_owned(),
        },
    );
}

/// Writes queued frames to one listener until the link ends; returns why it ended.
fn write_loop(
    shared: &Shared,
    stream: &TcpStream,
    handle: &ListenerHandle,
    rx: &Receiver<FrameBytes>,
    mut upstream: FrameReader,
) -> Departure {
    let timeouts = &shared.config.timeouts;
    let _ = stream.set_write_timeout(Some(timeouts.peer));
    let mut out = BufWriter::with_capacity(WRITE_BUFFER, stream);
    let ping = Frame::Ping.encode().unwrap_or_default();
    let mut last_write = Instant::now();
    let mut last_heard = Instant::now();
    let mut last_check = Instant::now();
    loop {
        match rx.recv_timeout(timeouts.tick) {
            Ok(bytes) => {
                if let Err(e) = write_batch(&mut out, handle, rx, bytes) {
                    return Departure::Error(e.to_string());
                }
                last_write = Instant::now();
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                // Removed from the registry: cut off for overflow, or shutting down.
                if shared.stop.is_set() {
                    say_goodbye(&mut out);
                    return Departure::Shutdown;
                }
                return Departure::Overflow;
            }
        }
        if handle.overflowed.load(Ordering::Relaxed) {
            return Departure::Overflow;
        }
        let now = Instant::now();
        if now.duration_since(last_check) < timeouts.tick {
            continue;
        }
        last_check = now;
        match poll_upstream(stream, &mut upstream) {
            Ok(true) => last_heard = now,
            Ok(false) => {}
            Err(departure) => return departure,
        }
        if now.duration_since(last_heard) > timeouts.peer {
            return Departure::TimedOut;
        }
        if now.duration_since(last_write) >= timeouts.keepalive {
            if let Err(e) = out.write_all(&ping).and_then(|()| out.flush()) {
                return Departure::Error(e.to_string());
            }
            last_write = now;
        }
    }
}

/// Writes `first` and everything else already queued, then flushes once.
fn write_batch(
    out: &mut BufWriter<&TcpStream>,
    handle: &ListenerHandle,
    rx: &Receiver<FrameBytes>,
    first: FrameBytes,
) -> std::io::Result<()> {
    let mut next = Some(first);
    let mut taken = 0;
    let written = (|| {
        while let Some(bytes) = next.take() {
            taken += bytes.len() + QUEUE_ITEM_OVERHEAD;
            out.write_all(&bytes)?;
            next = rx.try_recv().ok();
        }
        out.flush()
    })();
    handle.written.0.fetch_add(taken, Ordering::Relaxed);
    written
}

fn say_goodbye(out: &mut BufWriter<&TcpStream>) {
    let stream = *out.get_ref();
    let _ = stream.set_write_timeout(Some(Duration::from_millis(500)));
    if let Ok(bytes) = Frame::Goodbye.encode() {
        let _ = out.write_all(&bytes).and_then(|()| out.flush());
    }
}

/// Reads, without blocking, what the listener sent us since the last check: keep-alives,
/// or a goodbye. `Ok(true)` if anything arrived.
fn poll_upstream(stream: &TcpStream, upstream: &mut FrameReader) -> Result<bool, Departure> {
    stream
        .set_nonblocking(true)
        .map_err(|e| Departure::Error(e.to_string()))?;
    let result = read_upstream(stream, upstream);
    let _ = stream.set_nonblocking(false);
    result
}

fn read_upstream(stream: &TcpStream, upstream: &mut FrameReader) -> Result<bool, Departure> {
    let mut heard = false;
    for _ in 0..MAX_UPSTREAM_READS {
        loop {
            match upstream.next_buffered() {
                Ok(Some(Frame::Ping)) => heard = true,
                Ok(Some(Frame::Goodbye)) => return Err(Departure::Left),
                Ok(Some(other)) => {
                    return Err(Departure::Error(format!(
                        "unexpected {} frame from a listener",
                        other.name()
                    )));
                }
                Ok(None) => break,
                Err(e) => return Err(Departure::Error(e.to_string())),
            }
        }
        let mut src = stream;
        match upstream.fill(&mut src) {
            Ok(_) => heard = true,
            Err(e) if e.is_timeout() => return Ok(heard),
            Err(ReadError::Closed) => return Err(Departure::Closed),
            Err(e) => return Err(Departure::Error(e.to_string())),
        }
    }
    Ok(heard)
}
