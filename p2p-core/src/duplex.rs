//! Duplex links: one TCP connection that carries both directions between two peers, for
//! when a second connection cannot be made (a peer behind a NAT router, a punched link).
//!
//! A duplex link is a listener and a link over one socket, run by two threads: this
//! module's caller's thread writes (the broadcast log to the socket, and the keep-alives:
//! it owns the link's [`Outbound`](crate::channel::Outbound), so it is the only thread that
//! writes, frames never interleave and a record nonce is never used twice), and a reader
//! thread reads the other peer's frames out of the records into events. The link is registered both as a listener ([`Listeners`]) and as a link
//! ([`Links`]), so the other peer is heard and hears us, and neither side opens a second
//! connection to it. It reports [`Event::ListeningTo`] and [`Event::ListenerJoined`] when it
//! starts and both left events, with one reason, when it ends.

use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use log::{debug, info};

use crate::channel::Outbound;
use crate::client_side::{self, Link, Links};
use crate::event::{Batch, Departure, Event, PeerInfo};
use crate::fanout::Cursor;
use crate::link::{self, Accepted};
use crate::node::Node;
use crate::protocol::Frame;
use crate::server_side::{self, ListenerHandle, Listeners, Refusal};
use crate::threads::{Role, lock};

/// What a duplex link reaches: the peer's node and both registries.
#[derive(Clone)]
pub(crate) struct Parts {
    pub(crate) node: Arc<Node>,
    pub(crate) links: Arc<Links>,
    pub(crate) listeners: Arc<Listeners>,
}

/// Runs a duplex link this peer opened (its handshake is done and it is registered in
/// [`Links`]): registers it as a listener too, then runs it until it ends.
pub(crate) fn run_opened(parts: &Parts, link: Link) {
    let Parts {
        node, listeners, ..
    } = parts;
    let info = PeerInfo::clone(&link.info);
    match listeners.join(info, link.peer_id, &link.stream, &node.stop) {
        Ok((handle, cursor)) => run(parts, link, handle, cursor),
        Err(refusal) => {
            if matches!(refusal, Refusal::Duplicate) {
                info!(
                    "closing the duplex link to {}: it listens here already",
                    link.info
                );
            }
            let _ = link.stream.shutdown(Shutdown::Both);
            parts.links.release(link.addr, Some(link.peer_id));
        }
    }
}

/// Takes a duplex handshake accepted from `remote` (on our listener, or on a punched
/// connection where the other peer sent the handshake): registers both directions,
/// answers with a welcome and runs the link; refuses it if either direction exists.
pub(crate) fn run_accepted(
    parts: &Parts,
    stream: Arc<TcpStream>,
    accepted: Accepted,
    remote: SocketAddr,
) {
    let Parts {
        node,
        links,
        listeners,
    } = parts;
    let Accepted {
        hs,
        key,
        mut inbound,
        mut outbound,
    } = accepted;
    // As a reader: a close shuts its read side, which wakes the link's reader thread at
    // once; the writer still says goodbye on the write side.
    let Some(socket) = node.threads.register(&stream, Role::Reader) else {
        return;
    };
    let addr = hs.listen_addr(remote.ip());
    let refuse = |out: &mut Outbound, reason: &str| {
        info!("refused duplex link from {remote} ({addr}): {reason}");
        link::refuse(&stream, out, reason);
    };
    if !links.reserve(addr) {
        return refuse(&mut outbound, "already linked to that address");
    }
    let info = PeerInfo {
        username: hs.username.clone(),
        addr,
        fingerprint: key.fingerprint(),
    };
    if !links.confirm(addr, hs.peer_id, &info) {
        links.release(addr, None);
        return refuse(&mut outbound, "already linked to that peer");
    }
    let (handle, cursor) = match listeners.join(info.clone(), hs.peer_id, &stream, &node.stop) {
        Ok(joined) => joined,
        Err(refusal) => {
            links.release(addr, Some(hs.peer_id));
            if matches!(refusal, Refusal::Duplicate) {
                refuse(&mut outbound, "this peer already listens here");
            }
            return;
        }
    };
    if let Err(e) = link::welcome(node, &stream, &mut outbound) {
        listeners.remove(&handle);
        links.release(addr, Some(hs.peer_id));
        info!("closed duplex link from {remote}: cannot send welcome: {e}");
        return;
    }
    inbound.set_max_frame(node.config.limits.max_frame_bytes);
    let link = Link {
        stream,
        inbound,
        outbound,
        addr,
        peer_id: hs.peer_id,
        info: Arc::new(info),
        socket,
    };
    run(parts, link, handle, cursor);
}

/// The life of a registered duplex link: both events, a reader thread, the writer here,
/// then both departures with the reason of whichever side ended first.
fn run(parts: &Parts, link: Link, handle: Arc<ListenerHandle>, cursor: Cursor) {
    let Parts {
        node,
        links,
        listeners,
    } = parts;
    let Link {
        stream,
        inbound,
        mut outbound,
        addr,
        peer_id,
        info,
        socket,
    } = link;
    debug!("duplex link with {info}");
    // Nothing reads yet: this thread is the only writer, keep-alives included.
    let keepalive = node.config.timeouts.keepalive;
    let warning = node.vouch(&info);
    let joined = [
        Event::ListeningTo(PeerInfo::clone(&info)),
        Event::ListenerJoined(PeerInfo::clone(&info)),
    ];
    for event in warning.into_iter().chain(joined) {
        node.emit_batch_or(Batch::Event(event), keepalive, || {
            let _ = outbound.send(&stream, &Frame::Ping);
        });
    }
    let first: Arc<Mutex<Option<Departure>>> = Arc::default();
    let (done_tx, done_rx) = crossbeam_channel::bounded::<()>(1);
    let reading = {
        let (r_node, r_listeners, r_handle) =
            (Arc::clone(node), Arc::clone(listeners), Arc::clone(&handle));
        let (r_stream, r_info, r_first) =
            (Arc::clone(&stream), Arc::clone(&info), Arc::clone(&first));
        node.threads.spawn("p2p-duplex-read", move || {
            let reason = client_side::read_loop(&r_node, &r_stream, inbound, &r_info, None);
            lock(&r_first).get_or_insert(reason);
            // Wakes the writer, which then ends the link.
            r_listeners.remove(&r_handle);
            drop(done_tx);
        })
    };
    if reading.is_ok() {
        let reason =
            server_side::write_loop(node, listeners, &stream, &handle, cursor, outbound, None);
        let reason = if handle.overflowed.load(Ordering::SeqCst) {
            Departure::Overflow
        } else {
            reason
        };
        lock(&first).get_or_insert(reason);
    } else {
        lock(&first).get_or_insert(Departure::Shutdown);
    }
    listeners.remove(&handle);
    let _ = stream.shutdown(Shutdown::Both);
    // The reader ends as its socket closes (or at the stop signal, if it waits for room in
    // the event channel).
    let _ = done_rx.recv();
    drop(socket);
    links.release(addr, Some(peer_id));
    let reason = lock(&first).take().unwrap_or(Departure::Closed);
    debug!("duplex link with {info} ended: {reason}");
    node.emit(Event::StoppedListeningTo {
        peer: PeerInfo::clone(&info),
        reason: reason.clone(),
    });
    node.emit(Event::ListenerLeft {
        peer: PeerInfo::clone(&info),
        reason,
    });
}
