//! The ServerSide: the TCP listener every listener of this peer is connected to.
//!
//! Threads (all started through the peer's [`ThreadSet`](crate::threads)):
//!
//! - one **accept** thread: takes connections, refuses those past the inbound cap, and
//!   starts a listener thread for each of the others;
//! - one **listener** thread per connection: reads the handshake (within the handshake
//!   timeout), answers with a welcome, then writes to that listener every frame appended to
//!   the broadcast log until the link ends. Between writes it reads the listener's
//!   keep-alives without blocking, so a listener that vanishes is noticed.
//!
//! [`broadcast`] encodes nothing: it is handed the frame bytes once and appends them once
//! to the broadcast log ([`crate::fanout`]) that every listener thread reads at its own
//! pace, whatever the number of listeners. How far a listener may fall behind is bounded
//! by bytes; a listener past the bound is cut off and reported, never waited on.

use std::io::{BufWriter, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use log::{debug, info, warn};

use crate::event::{Batch, Departure, Event, PeerInfo};
use crate::fanout::{Bell, Cursor, Tail};
use crate::net::{AcceptWaker, Acceptor, read_frame_before, write_frame};
use crate::node::Node;
use crate::protocol::{
    Frame, FrameBytes, FrameReader, Handshake, MAX_HANDSHAKE_FRAME_BYTES, MAX_UPSTREAM_FRAME_BYTES,
    PROTOCOL_VERSION, ReadError, Welcome, validate_username,
};
use crate::threads::{Role, lock};

/// What one message in the log costs against a listener's byte limit beyond its bytes: its
/// slot and the shared pointer.
const QUEUE_ITEM_OVERHEAD: usize = 32;

/// Bytes a listener thread buffers before writing to the socket.
const WRITE_BUFFER: usize = 64 * 1024;

/// How many times an idle listener thread yields the processor before it sleeps.
const IDLE_YIELDS: usize = 2;

/// Most reads of keep-alives per check, so a listener that floods us cannot keep its
/// thread from writing.
const MAX_UPSTREAM_READS: usize = 8;

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
    bell: Bell,
    /// Inbound connections open now (handshaking or listening).
    inbound: AtomicUsize,
}

/// The sending side of the broadcast log.
#[derive(Debug, Default)]
struct LogEnd {
    tail: Tail,
    /// Bytes (with the per-message overhead) ever appended.
    appended: u64,
    /// When `appended` reaches this, `broadcast` checks how far behind each listener is.
    next_check: u64,
}

/// A counter on a cache line of its own: the listener thread adds to it after every
/// batch, and the sender reads it only at its periodic checks.
#[derive(Debug, Default)]
#[repr(align(128))]
struct TakenBytes(AtomicU64);

/// What the sending side holds of one listener.
#[derive(Debug)]
struct ListenerHandle {
    info: PeerInfo,
    peer_id: u64,
    /// Bytes of the log (with the per-message overhead) this listener's thread has written
    /// since it joined, added once per batch. Only that thread writes it.
    taken: TakenBytes,
    /// `appended` when this listener joined: `appended - joined_at - taken` is how far it
    /// is behind.
    joined_at: u64,
    overflowed: AtomicBool,
    /// Raised when the listener is taken out of the registry: its thread must stop.
    removed: AtomicBool,
    /// The socket, shared, to cut a listener off without waiting for its thread.
    stream: Arc<TcpStream>,
}

impl Listeners {
    /// The listeners now, by username and advertised address.
    pub(crate) fn snapshot(&self) -> Vec<PeerInfo> {
        lock(&self.list).iter().map(|h| h.info.clone()).collect()
    }

    pub(crate) fn has_peer(&self, peer_id: u64) -> bool {
        lock(&self.list).iter().any(|h| h.peer_id == peer_id)
    }

    fn remove(&self, handle: &Arc<ListenerHandle>) {
        {
            let mut list = lock(&self.list);
            list.retain(|h| !Arc::ptr_eq(h, handle));
            self.count.store(list.len(), Ordering::Relaxed);
        }
        handle.removed.store(true, Ordering::SeqCst);
        self.bell.ring();
    }

    /// Takes every listener out of the registry: their threads say goodbye and end.
    pub(crate) fn disconnect_all(&self) {
        {
            let mut list = lock(&self.list);
            for handle in list.drain(..) {
                handle.removed.store(true, Ordering::SeqCst);
            }
            self.count.store(0, Ordering::Relaxed);
        }
        self.bell.ring();
    }
}

/// What the ServerSide does with a hello (a handshake that asks to be listened to in
/// return), given the handshake and the address it came from. The peer wires it to the
/// ClientSide.
pub(crate) type OnHello = Arc<dyn Fn(&Handshake, SocketAddr) + Send + Sync>;

/// Appends `bytes` to the broadcast log, which every listener thread writes to its
/// listener. Returns how many listeners there are. Every `limit / 8` bytes it checks how
/// far behind each listener is, and cuts off those more than `limit` behind (their thread
/// reports the overflow).
pub(crate) fn broadcast(node: &Node, listeners: &Listeners, bytes: &FrameBytes) -> usize {
    let limit = node.config.limits.listener_queue_bytes as u64;
    let cost = (bytes.len() + QUEUE_ITEM_OVERHEAD) as u64;
    let mut overflowed = Vec::new();
    {
        let mut log = lock(&listeners.log);
        log.tail.push(FrameBytes::clone(bytes));
        log.appended += cost;
        if log.appended >= log.next_check {
            log.next_check = log.appended + (limit / 8).max(1);
            let appended = log.appended;
            overflowed.extend(lock(&listeners.list).iter().filter_map(|h| {
                let behind = appended
                    .saturating_sub(h.joined_at)
                    .saturating_sub(h.taken.0.load(Ordering::Relaxed));
                (behind > limit).then(|| Arc::clone(h))
            }));
        }
    }
    listeners.bell.ring();
    for handle in overflowed {
        if !handle.overflowed.swap(true, Ordering::SeqCst) {
            warn!(
                "listener {} fell more than {limit} bytes behind: disconnecting it",
                handle.info
            );
            listeners.remove(&handle);
            let _ = handle.stream.shutdown(Shutdown::Both);
        }
    }
    listeners.count.load(Ordering::Relaxed)
}

/// Everything a thread of the ServerSide reaches.
struct Server {
    node: Arc<Node>,
    listeners: Arc<Listeners>,
    on_hello: OnHello,
}

/// Starts the accept thread on `listener`; the waker it returns ends the thread's wait at
/// shutdown (the thread then sees the stop signal and ends).
pub(crate) fn spawn_accept(
    node: &Arc<Node>,
    listeners: &Arc<Listeners>,
    on_hello: OnHello,
    listener: TcpListener,
) -> std::io::Result<AcceptWaker> {
    let (acceptor, waker) = Acceptor::new(listener)?;
    let server = Arc::new(Server {
        node: Arc::clone(node),
        listeners: Arc::clone(listeners),
        on_hello,
    });
    node.threads
        .spawn("p2p-accept", move || accept_loop(&server, acceptor))?;
    Ok(waker)
}

fn accept_loop(server: &Arc<Server>, mut acceptor: Acceptor) {
    let node = &server.node;
    let inbound = &server.listeners.inbound;
    let max_inbound = node.config.limits.max_inbound;
    loop {
        let accepted = acceptor.accept();
        if node.stop.is_set() {
            break;
        }
        let (stream, remote) = match accepted {
            Ok(Some(conn)) => conn,
            Ok(None) => continue, // woken, but not for a stop
            Err(e) => {
                // Out of file descriptors and the like: back off a little, but wake at once
                // on shutdown.
                warn!("accept failed: {e}");
                if node.stop.wait(Duration::from_millis(100)) {
                    break;
                }
                continue;
            }
        };
        let open = inbound.fetch_add(1, Ordering::SeqCst);
        if open >= max_inbound {
            inbound.fetch_sub(1, Ordering::SeqCst);
            warn!("refused connection from {remote}: {max_inbound} inbound connections open");
            continue;
        }
        let conn_server = Arc::clone(server);
        let spawned = node.threads.spawn("p2p-listener", move || {
            serve(&conn_server, stream, remote);
            conn_server.listeners.inbound.fetch_sub(1, Ordering::SeqCst);
        });
        if let Err(e) = spawned {
            inbound.fetch_sub(1, Ordering::SeqCst);
            warn!("dropped connection from {remote}: cannot start its thread: {e}");
        }
    }
    debug!("accept thread stopped");
}

/// The life of one inbound connection: handshake, then writing to the listener.
fn serve(server: &Server, stream: TcpStream, remote: SocketAddr) {
    let Server {
        node, listeners, ..
    } = server;
    // One descriptor per connection: the socket is shared, never duplicated.
    let stream = Arc::new(stream);
    // While handshaking this thread blocks in reads: shutdown wakes it like a reader.
    let Some(handshaking) = node.threads.register(&stream, Role::Reader) else {
        return;
    };
    let _ = stream.set_nodelay(true);
    // A stranger may send a handshake and nothing larger: what it can make this thread
    // buffer is small whatever length it announces (and only what it actually sends).
    let max_frame = node.config.limits.max_frame_bytes;
    let mut reader = FrameReader::new(MAX_HANDSHAKE_FRAME_BYTES.min(max_frame));
    let deadline = Instant::now() + node.config.timeouts.handshake;
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
        peer_id: node.peer_id,
        username: node.config.username.clone(),
    });
    if hs.peer_id == node.peer_id {
        // Our own ClientSide reached us: let it see our id and close.
        debug!("connection from {remote} is this peer itself: closing it");
        let _ = write_frame(&stream, &welcome);
        return;
    }
    if listeners.has_peer(hs.peer_id) {
        return refuse(&stream, remote, "this peer already listens here");
    }
    drop(handshaking);
    // From now on the listener sends only keep-alives and a goodbye.
    reader.set_max_frame(MAX_UPSTREAM_FRAME_BYTES);
    let Some(_socket) = node.threads.register(&stream, Role::Writer) else {
        return;
    };
    // Register before the welcome: whatever is sent from now on reaches this listener,
    // after the welcome, in order.
    let (handle, cursor) = {
        let log = lock(&listeners.log);
        let mut list = lock(&listeners.list);
        if node.stop.is_set() {
            return; // shutdown has begun: the registry will not be cleared again
        }
        // Checked again under the lock: two connections with the same id may have passed
        // the first check together.
        if list.iter().any(|h| h.peer_id == hs.peer_id) {
            drop((log, list));
            return refuse(&stream, remote, "this peer already listens here");
        }
        let handle = Arc::new(ListenerHandle {
            info: PeerInfo {
                username: hs.username.clone(),
                addr: hs.listen_addr,
            },
            peer_id: hs.peer_id,
            taken: TakenBytes::default(),
            joined_at: log.appended,
            overflowed: AtomicBool::new(false),
            removed: AtomicBool::new(false),
            stream: Arc::clone(&stream),
        });
        list.push(Arc::clone(&handle));
        listeners.count.store(list.len(), Ordering::Relaxed);
        (handle, log.tail.cursor())
    };
    if let Err(e) = write_frame(&stream, &welcome) {
        listeners.remove(&handle);
        info!("closed connection from {remote}: cannot send welcome: {e}");
        return;
    }
    debug!("{} listens to us (from {remote})", handle.info);
    // Keep-alives go out while a slow embedder leaves no room for the event.
    let joined = Batch::Event(Event::ListenerJoined(handle.info.clone()));
    node.emit_batch_or(joined, node.config.timeouts.keepalive, || {
        let _ = write_frame(&stream, &Frame::Ping);
    });
    if hs.connect_back {
        (server.on_hello)(&hs, remote);
    }
    let reason = write_loop(node, listeners, &stream, &handle, cursor, reader);
    listeners.remove(&handle);
    let reason = if handle.overflowed.load(Ordering::SeqCst) {
        Departure::Overflow
    } else {
        reason
    };
    let _ = stream.shutdown(Shutdown::Both);
    debug!("listener {} gone: {reason}", handle.info);
    node.emit(Event::ListenerLeft {
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

/// Writes the log's frames to one listener until the link ends; returns why it ended.
fn write_loop(
    node: &Node,
    listeners: &Listeners,
    stream: &TcpStream,
    handle: &ListenerHandle,
    mut cursor: Cursor,
    mut upstream: FrameReader,
) -> Departure {
    let timeouts = &node.config.timeouts;
    let bell = &listeners.bell;
    let _ = stream.set_write_timeout(Some(timeouts.peer));
    let mut out = BufWriter::with_capacity(WRITE_BUFFER, stream);
    let ping = Frame::Ping.encode().unwrap_or_default();
    let mut last_write = Instant::now();
    let mut last_heard = Instant::now();
    let mut last_check = Instant::now();
    loop {
        match write_batch(&mut out, handle, &mut cursor) {
            Ok(true) => last_write = Instant::now(),
            Ok(false) => {}
            Err(e) => return Departure::Error(e.to_string()),
        }
        if handle.removed.load(Ordering::SeqCst) {
            // Taken out of the registry: cut off for overflow, or else (nothing else
            // removes a listener while its thread runs) the peer is shutting down.
            if handle.overflowed.load(Ordering::SeqCst) {
                return Departure::Overflow;
            }
            say_goodbye(&mut out);
            return Departure::Shutdown;
        }
        let now = Instant::now();
        let since_check = now.duration_since(last_check);
        if since_check < timeouts.tick {
            // Give the processor away a couple of times before sleeping: when the sender
            // is busy, the log grows meanwhile and this thread carries on without the
            // sender having to wake it (one wake-up per message otherwise, for every
            // listener that keeps up).
            for _ in 0..IDLE_YIELDS {
                if cursor.has_next() {
                    break;
                }
                std::thread::yield_now();
            }
            bell.wait(timeouts.tick - since_check, || {
                cursor.has_next() || handle.removed.load(Ordering::SeqCst)
            });
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

/// Writes every frame past the cursor, then flushes once. `Ok(true)` if anything was
/// written.
fn write_batch(
    out: &mut BufWriter<&TcpStream>,
    handle: &ListenerHandle,
    cursor: &mut Cursor,
) -> std::io::Result<bool> {
    let mut taken = 0;
    let written = (|| {
        while let Some(bytes) = cursor.next_frame() {
            taken += (bytes.len() + QUEUE_ITEM_OVERHEAD) as u64;
            out.write_all(bytes)?;
        }
        if taken > 0 { out.flush() } else { Ok(()) }
    })();
    if taken > 0 {
        handle.taken.0.fetch_add(taken, Ordering::Relaxed);
    }
    written.map(|()| taken > 0)
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
