//! The ServerSide: the TCP listener every listener of this peer is connected to.
//!
//! Threads (all started through the peer's [`ThreadSet`](crate::threads)):
//!
//! - one **accept** thread: takes connections, refuses those past the inbound cap, and
//!   starts a listener thread for each of the others;
//! - one **listener** thread per connection: runs the Noise handshake and reads the hello
//!   (within the handshake timeout), answers with a welcome, then writes to that listener
//!   every frame appended to the broadcast log until the link ends, sealing each batch into
//!   records with the link's own keys. Between writes it reads the listener's keep-alives
//!   without blocking, so a listener that vanishes is noticed.
//!
//! [`Listeners::broadcast`] (in `registry`) encodes nothing: it is handed the frame bytes
//! once and appends them once to the broadcast log ([`crate::fanout`]) that every listener
//! thread reads at its own pace, whatever the number of listeners. The log holds plaintext
//! frames: each listener thread seals what it takes from it, a whole batch at a time. How far a listener may
//! fall behind is bounded by bytes: a sender that would take the slowest listener past the
//! bound waits for it, and a listener that takes nothing for the stall timeout is cut off
//! and reported.

mod registry;

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use log::{debug, info, warn};

use registry::QUEUE_ITEM_OVERHEAD;
pub(crate) use registry::{ListenerHandle, Listeners, Refusal};

use crate::channel::{Inbound, Outbound, SEAL_BATCH};
use crate::event::{Batch, Departure, Event, PeerInfo};
use crate::fanout::{Bell, Cursor};
use crate::link::{self, Accepted};
use crate::net::{AcceptWaker, Acceptor};
use crate::node::Node;
use crate::protocol::{Frame, Handshake, MAX_UPSTREAM_FRAME_BYTES, ReadError};
use crate::threads::Role;

/// How many times an idle listener thread yields the processor before it sleeps.
const IDLE_YIELDS: usize = 2;

/// Most reads of keep-alives per check, so a listener that floods us cannot keep its
/// thread from writing.
const MAX_UPSTREAM_READS: usize = 8;

/// What the ServerSide hands to the rest of the peer: the peer wires these to the
/// ClientSide and the mesh (`peer.rs`), so that this module knows neither.
pub(crate) trait Hooks: Send + Sync {
    /// A one-way listener greeted this peer with a hello (`hs`, from `remote`): listen back.
    fn hello(&self, hs: &Handshake, remote: SocketAddr);
    /// A handshake asked for a duplex link: this one connection carries both directions.
    /// The hook owns the connection from here on (and answers the handshake).
    fn duplex(&self, stream: Arc<TcpStream>, accepted: Accepted, remote: SocketAddr);
    /// `Some` hook that takes over a connection accepted from `remote` when it is the
    /// other end of a punch on which this peer sends the handshake (the other peer's
    /// connection reached our listener rather than our own attempt).
    fn punched(&self, remote: SocketAddr) -> Option<Box<dyn FnOnce(Arc<TcpStream>) + Send>>;
}

/// Everything a thread of the ServerSide reaches.
struct Server {
    node: Arc<Node>,
    listeners: Arc<Listeners>,
    hooks: Arc<dyn Hooks>,
}

/// Starts the accept thread on `listener`; the waker it returns ends the thread's wait at
/// shutdown (the thread then sees the stop signal and ends).
pub(crate) fn spawn_accept(
    node: &Arc<Node>,
    listeners: &Arc<Listeners>,
    hooks: Arc<dyn Hooks>,
    listener: TcpListener,
) -> std::io::Result<AcceptWaker> {
    let (acceptor, waker) = Acceptor::new(listener)?;
    let server = Arc::new(Server {
        node: Arc::clone(node),
        listeners: Arc::clone(listeners),
        hooks,
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
        node,
        listeners,
        hooks,
    } = server;
    // One descriptor per connection: the socket is shared, never duplicated.
    let stream = Arc::new(stream);
    let _ = stream.set_nodelay(true);
    if let Some(take) = hooks.punched(remote) {
        return take(stream);
    }
    // While handshaking this thread blocks in reads: shutdown wakes it like a reader.
    let Some(handshaking) = node.threads.register(&stream, Role::Reader) else {
        return;
    };
    let accepted = match link::read_handshake(node, &stream) {
        Ok(accepted) => accepted,
        Err(link::Refusal::Refuse(reason, mut out)) => {
            return refuse(&stream, &mut out, remote, &reason);
        }
        Err(link::Refusal::Close(why)) => {
            info!("closed connection from {remote}: {why}");
            return;
        }
        Err(link::Refusal::Stranger) => return,
    };
    drop(handshaking);
    if accepted.hs.duplex {
        return hooks.duplex(stream, accepted, remote);
    }
    let Accepted {
        hs,
        key,
        mut inbound,
        mut outbound,
    } = accepted;
    if listeners.has_peer(hs.peer_id) {
        return refuse(
            &stream,
            &mut outbound,
            remote,
            "this peer already listens here",
        );
    }
    // From now on the listener sends only keep-alives and a goodbye.
    inbound.set_max_frame(MAX_UPSTREAM_FRAME_BYTES);
    let Some(_socket) = node.threads.register(&stream, Role::Writer) else {
        return;
    };
    // Register before the welcome: whatever is sent from now on reaches this listener,
    // after the welcome, in order.
    let info = PeerInfo {
        username: hs.username.clone(),
        addr: hs.listen_addr(remote.ip()),
        fingerprint: key.fingerprint(),
    };
    let (handle, cursor) = match listeners.join(info, hs.peer_id, &stream, &node.stop) {
        Ok(joined) => joined,
        Err(Refusal::Stopping) => return,
        Err(Refusal::Duplicate) => {
            return refuse(
                &stream,
                &mut outbound,
                remote,
                "this peer already listens here",
            );
        }
    };
    if let Err(e) = link::welcome(node, &stream, &mut outbound) {
        listeners.remove(&handle);
        info!("closed connection from {remote}: cannot send welcome: {e}");
        return;
    }
    debug!("{} listens to us (from {remote})", handle.info);
    // Keep-alives go out while a slow embedder leaves no room for the events.
    let warning = node.vouch(&handle.info);
    let joined = Event::ListenerJoined(handle.info.clone());
    for event in warning.into_iter().chain([joined]) {
        node.emit_batch_or(Batch::Event(event), node.config.timeouts.keepalive, || {
            let _ = outbound.send(&stream, &Frame::Ping);
        });
    }
    if hs.connect_back {
        hooks.hello(&hs, remote);
    }
    let reason = write_loop(
        node,
        listeners,
        &stream,
        &handle,
        cursor,
        outbound,
        Some(inbound),
    );
    listeners.remove(&handle);
    let reason = if handle.overflowed.load(Ordering::SeqCst) {
        Departure::Overflow
    } else {
        reason
    };
    if matches!(reason, Departure::Shutdown) {
        end_gracefully(&stream, LINGER);
    }
    let _ = stream.shutdown(Shutdown::Both);
    debug!("listener {} gone: {reason}", handle.info);
    node.emit(Event::ListenerLeft {
        peer: handle.info.clone(),
        reason,
    });
}

/// How long a listener's connection is kept, after the goodbye, for the listener to read
/// what is still on its way (a peer's close cuts it sooner: see `ThreadSet::shutdown`).
const LINGER: Duration = Duration::from_secs(1);

/// Ends a listener's connection after the goodbye without losing what is on its way: the
/// FIN follows everything queued, and what the listener still sends up (keep-alives) is
/// read and dropped until it closes its side or `linger` passes. Closed with those bytes
/// unread, the connection would be reset, and a reset makes the listener's kernel drop
/// what the listener has not read yet (the tail of a big paste).
fn end_gracefully(stream: &TcpStream, linger: Duration) {
    let _ = stream.shutdown(Shutdown::Write);
    let deadline = Instant::now() + linger;
    let mut discard = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match (&mut &*stream).read(&mut discard) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

fn refuse(stream: &TcpStream, out: &mut Outbound, remote: SocketAddr, reason: &str) {
    info!("refused connection from {remote}: {reason}");
    link::refuse(stream, out, reason);
}

/// Writes the log's frames to one listener until the link ends, sealed with `out`; returns
/// why it ended. This thread is the link's only writer.
///
/// With `upstream`, it also reads what the listener sends up (keep-alives, a goodbye)
/// between writes and ends the link when the listener falls silent; a duplex link gives
/// none, as its reader thread reads everything that arrives.
pub(crate) fn write_loop(
    node: &Node,
    listeners: &Listeners,
    stream: &TcpStream,
    handle: &ListenerHandle,
    mut cursor: Cursor,
    mut out: Outbound,
    mut upstream: Option<Inbound>,
) -> Departure {
    let timeouts = &node.config.timeouts;
    let bell = &listeners.bell;
    // A write that takes nothing for the stall timeout ends the link: the listener is
    // stuck, however healthy its connection looks.
    let _ = stream.set_write_timeout(Some(timeouts.stall));
    let mut sink = Progress {
        stream,
        handle,
        room: &listeners.room,
    };
    let ping = Frame::Ping.encode().unwrap_or_default();
    let mut last_write = Instant::now();
    let mut last_heard = Instant::now();
    let mut last_check = Instant::now();
    let mut taken = 0;
    loop {
        match write_batch(&mut out, &mut sink, handle, &mut cursor, &mut taken) {
            Ok(true) => last_write = Instant::now(),
            Ok(false) => {}
            Err(e) if is_timeout(&e) => {
                warn!(
                    "listener {} took nothing for {:?}: disconnecting it",
                    handle.info, timeouts.stall
                );
                return Departure::Overflow;
            }
            Err(e) => return Departure::Error(e.to_string()),
        }
        if handle.removed.load(Ordering::SeqCst) {
            // Taken out of the registry: cut off for overflow, or else (nothing else
            // removes a listener while its thread runs) the peer is shutting down.
            if handle.overflowed.load(Ordering::SeqCst) {
                return Departure::Overflow;
            }
            say_goodbye(&mut out, &mut sink);
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
        if let Some(upstream) = upstream.as_mut() {
            match poll_upstream(stream, upstream) {
                Ok(true) => last_heard = now,
                Ok(false) => {}
                Err(departure) => return departure,
            }
            if now.duration_since(last_heard) > timeouts.peer {
                return Departure::TimedOut;
            }
        }
        if now.duration_since(last_write) >= timeouts.keepalive {
            out.push(&ping);
            match out.flush_to(&mut sink) {
                Ok(()) => {}
                Err(e) if is_timeout(&e) => return Departure::Overflow,
                Err(e) => return Departure::Error(e.to_string()),
            }
            last_write = now;
        }
    }
}

/// A listener's socket as its thread writes it: notes which write calls the kernel takes
/// bytes from (what tells a listener that takes slowly from one that takes nothing) and
/// wakes a sender that waits for room. Each call writes at most [`WRITE_CHUNK`] bytes, so
/// that a listener that takes slowly shows it within a sender's wait.
struct Progress<'a> {
    stream: &'a TcpStream,
    handle: &'a ListenerHandle,
    room: &'a Bell,
}

/// Most bytes one write call hands the kernel.
const WRITE_CHUNK: usize = 16 * 1024;

impl Write for Progress<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut stream = self.stream;
        let call = self.handle.writes_begun.get() + 1;
        self.handle.writes_begun.set(call);
        let n = stream.write(&buf[..buf.len().min(WRITE_CHUNK)])?;
        if n > 0 {
            self.handle.last_progress.set(call);
        }
        self.room.ring();
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        let mut stream = self.stream;
        stream.flush()
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Writes every frame past the cursor, sealed into records a batch of [`SEAL_BATCH`] bytes
/// at a time. `Ok(true)` if anything was written. `taken` counts the log's bytes this
/// thread has taken; it is published after every frame, so a sender waiting for room sees
/// it as soon as it is made.
fn write_batch(
    out: &mut Outbound,
    sink: &mut Progress<'_>,
    handle: &ListenerHandle,
    cursor: &mut Cursor,
    taken: &mut u64,
) -> io::Result<bool> {
    let mut any = false;
    while let Some(bytes) = cursor.next_frame() {
        any = true;
        out.push(bytes);
        *taken += (bytes.len() + QUEUE_ITEM_OVERHEAD) as u64;
        handle.taken.set(*taken);
        if out.pending() >= SEAL_BATCH {
            out.flush_to(sink)?;
        }
    }
    if any {
        out.flush_to(sink)?;
    }
    Ok(any)
}

fn say_goodbye(out: &mut Outbound, sink: &mut Progress<'_>) {
    let _ = sink
        .stream
        .set_write_timeout(Some(Duration::from_millis(500)));
    if let Ok(bytes) = Frame::Goodbye.encode() {
        out.push(&bytes);
        let _ = out.flush_to(sink);
    }
}

/// Reads, without blocking, what the listener sent us since the last check: keep-alives,
/// or a goodbye. `Ok(true)` if anything arrived.
fn poll_upstream(stream: &TcpStream, upstream: &mut Inbound) -> Result<bool, Departure> {
    stream
        .set_nonblocking(true)
        .map_err(|e| Departure::Error(e.to_string()))?;
    let result = read_upstream(upstream);
    let _ = stream.set_nonblocking(false);
    result
}

fn read_upstream(upstream: &mut Inbound) -> Result<bool, Departure> {
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
        match upstream.fill() {
            Ok(_) => heard = true,
            Err(e) if e.is_timeout() => return Ok(heard),
            Err(ReadError::Closed) => return Err(Departure::Closed),
            Err(e) => return Err(Departure::Error(e.to_string())),
        }
    }
    Ok(heard)
}
