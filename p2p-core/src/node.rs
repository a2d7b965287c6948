//! What every thread of one peer shares: its configuration and identity, the event channel
//! to the embedder, the stop signal and the set of its threads.
//!
//! The ServerSide, the ClientSide and the tracker client each take a [`Node`] and their own
//! state; none of them knows the others. [`Peer`](crate::Peer) (`peer.rs`) builds them and
//! wires them together.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossbeam_channel::{Select, Sender, TrySendError, select};

use crate::config::PeerConfig;
use crate::event::{Batch, Event};
use crate::link::LocalPort;
use crate::threads::{Stop, ThreadSet, lock};

/// The context of one peer, shared by all its threads.
#[derive(Debug)]
pub(crate) struct Node {
    pub(crate) config: PeerConfig,
    pub(crate) peer_id: u64,
    /// The address the ServerSide is bound to.
    pub(crate) bound_addr: SocketAddr,
    /// The address a tracker observed for this peer (its router's, behind NAT), once one
    /// has answered.
    observed: Mutex<Option<SocketAddr>>,
    /// Behind a NAT router (as configured, or as a tracker told): links ask for duplex
    /// and outgoing connections are made from the listening port.
    nat: AtomicBool,
    events: Sender<Batch>,
    pub(crate) stop: Stop,
    pub(crate) threads: Arc<ThreadSet>,
}

impl Node {
    pub(crate) fn new(
        config: PeerConfig,
        peer_id: u64,
        bound_addr: SocketAddr,
        events: Sender<Batch>,
    ) -> Node {
        Node {
            nat: AtomicBool::new(config.behind_nat),
            config,
            peer_id,
            bound_addr,
            observed: Mutex::new(None),
            events,
            stop: Stop::new(),
            threads: ThreadSet::new(),
        }
    }

    /// The address other peers should use: the advertised IP (`--ip`) with the listening
    /// port if one was given, else the address a tracker observed, else the bound one.
    pub(crate) fn local_addr(&self) -> SocketAddr {
        if let Some(ip) = self.config.advertise_ip {
            return SocketAddr::new(ip, self.bound_addr.port());
        }
        lock(&self.observed).unwrap_or(self.bound_addr)
    }

    /// The address a tracker observed, if one did.
    pub(crate) fn observed(&self) -> Option<SocketAddr> {
        *lock(&self.observed)
    }

    /// Takes in what a tracker answered: the address it registered, and whether it takes
    /// this peer to be behind NAT (the configuration's `behind_nat` stays in force).
    pub(crate) fn observe(&self, addr: SocketAddr, nat: bool) {
        *lock(&self.observed) = Some(addr);
        self.nat
            .store(nat || self.config.behind_nat, Ordering::Relaxed);
    }

    /// `true` if this peer cannot be connected to directly.
    pub(crate) fn behind_nat(&self) -> bool {
        self.nat.load(Ordering::Relaxed)
    }

    /// The local port outgoing peer connections are made from: the listening port behind
    /// NAT (one external port per peer), else any.
    pub(crate) fn outgoing_from(&self) -> LocalPort {
        if self.behind_nat() {
            LocalPort::Listening
        } else {
            LocalPort::Any
        }
    }

    /// Hands an event to the embedder, waiting while the channel is full, unless the peer
    /// is shutting down.
    pub(crate) fn emit(&self, event: Event) {
        self.emit_batch(Batch::Event(event));
    }

    /// Hands an advisory event ([`Event::Discovered`]) to the embedder if the channel has
    /// room now; never waits, so any thread may call it, holding any lock.
    pub(crate) fn notify(&self, event: Event) {
        if let Err(TrySendError::Full(batch)) = self.events.try_send(Batch::Event(event)) {
            log::debug!("event dropped, the embedder is behind: {batch:?}");
        }
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
}
