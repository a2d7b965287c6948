//! What every thread of one peer shares: its configuration and identity, the event channel
//! to the embedder, the stop signal and the set of its threads.
//!
//! The ServerSide, the ClientSide and the tracker client each take a [`Node`] and their own
//! state; none of them knows the others. [`Peer`](crate::Peer) (`peer.rs`) builds them and
//! wires them together.

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Select, Sender, TrySendError, select};
use socket2::{Domain, Protocol, SockRef, Socket, Type};

use crate::config::PeerConfig;
use crate::event::{Batch, Event};
use crate::threads::{Role, SocketGuard, Stop, ThreadSet};

/// The context of one peer, shared by all its threads.
#[derive(Debug)]
pub(crate) struct Node {
    pub(crate) config: PeerConfig,
    pub(crate) peer_id: u64,
    /// The address other peers are told to connect to.
    pub(crate) local_addr: SocketAddr,
    /// The address the ServerSide is bound to.
    pub(crate) bound_addr: SocketAddr,
    events: Sender<Batch>,
    pub(crate) stop: Stop,
    pub(crate) threads: Arc<ThreadSet>,
}

impl Node {
    pub(crate) fn new(
        config: PeerConfig,
        peer_id: u64,
        local_addr: SocketAddr,
        bound_addr: SocketAddr,
        events: Sender<Batch>,
    ) -> Node {
        Node {
            config,
            peer_id,
            local_addr,
            bound_addr,
            events,
            stop: Stop::new(),
            threads: ThreadSet::new(),
        }
    }

    /// Hands an event to the embedder, waiting while the channel is full, unless the peer
    /// is shutting down.
    pub(crate) fn emit(&self, event: Event) {
        self.emit_batch(Batch::Event(event));
    }

    /// Hands a batch of events to the embedder.
    pub(crate) fn emit_batch(&self, batch: Batch) {
        // The common case, with room in the channel, without the cost of a select.
        let batch = match self.events.try_send(batch) {
            Err(TrySendError::Full(batch)) => batch,
            Ok(()) | Err(TrySendError::Disconnected(_)) => return,
        };
        select! {
            send(self.events, batch) -> _ => {}
            recv(self.stop.watch()) -> _ => {}
        }
    }

    /// Hands a batch of events to the embedder like [`emit_batch`](Node::emit_batch),
    /// calling `idle` every `every` while the channel stays full (a link thread keeps its
    /// connection alive that way while the embedder is slow).
    pub(crate) fn emit_batch_or(&self, mut batch: Batch, every: Duration, mut idle: impl FnMut()) {
        loop {
            // Without waiting first: the channel may have room (by now).
            batch = match self.events.try_send(batch) {
                Err(TrySendError::Full(batch)) => batch,
                Ok(()) | Err(TrySendError::Disconnected(_)) => return,
            };
            let mut sel = Select::new();
            let send = sel.send(&self.events);
            sel.recv(self.stop.watch());
            match sel.select_timeout(every) {
                Ok(op) if op.index() == send => {
                    let _ = op.send(&self.events, batch);
                    return;
                }
                Ok(op) => {
                    let _ = op.recv(self.stop.watch());
                    return;
                }
                Err(_) => idle(),
            }
        }
    }

    /// Connects to `addr` with a socket registered with the peer's threads before it
    /// connects, so that a shutdown cuts the attempt short instead of waiting out
    /// `timeout`, and later cuts a read the thread is blocked in. Fails once shutdown has
    /// begun.
    pub(crate) fn connect(
        &self,
        addr: SocketAddr,
        timeout: Duration,
    ) -> io::Result<(Arc<TcpStream>, SocketGuard)> {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        let stream = Arc::new(TcpStream::from(socket));
        let guard = self
            .threads
            .register(&stream, Role::Reader)
            .ok_or_else(|| io::Error::other("shutting down"))?;
        SockRef::from(&*stream).connect_timeout(&addr.into(), timeout)?;
        // A shutdown between `register` and the connect marks the socket's read side shut,
        // which the connect's poll takes for a completed connection: make sure it is one.
        if self.stop.is_set() {
            return Err(io::Error::other("shutting down"));
        }
        stream.peer_addr()?;
        let _ = stream.set_nodelay(true);
        Ok((stream, guard))
    }
}
