//! What every thread of one peer shares: its configuration and identity, the room's key, the
//! known peers (trust on first use), the event channel to the embedder, the stop signal and
//! the set of its threads.
//!
//! The ServerSide, the ClientSide and the tracker client each take a [`Node`] and their own
//! state; none of them knows the others. [`Peer`](crate::Peer) (`peer.rs`) builds them and
//! wires them together.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Select, Sender, TrySendError, select};
use log::warn;

use crate::config::PeerConfig;
use crate::event::{Batch, Event, PeerInfo};
use crate::known::Known;
use crate::link::LocalPort;
use crate::protocol::Room;
use crate::secure::{Identity, RoomKey};
use crate::threads::{Stop, ThreadSet, lock};

/// How often, at most, the log says that peers with another room key tried to connect.
const STRANGER_LOG_EVERY: Duration = Duration::from_secs(10);

/// Most addresses remembered as holding another room key (each reported once).
const MAX_WRONG_KEY_REPORTS: usize = 256;

/// The context of one peer, shared by all its threads.
#[derive(Debug)]
pub(crate) struct Node {
    pub(crate) config: PeerConfig,
    pub(crate) peer_id: u64,
    /// This peer's identity key (the configured one, or one made at start).
    pub(crate) identity: Identity,
    /// The room's key, derived once at start from the room's name and passphrase: every
    /// link's handshake uses it, and the room's opaque id (what trackers and LAN records
    /// see) and DHT infohash come from it.
    pub(crate) room_key: RoomKey,
    /// The room as the network sees it: [`RoomKey::room_id`].
    pub(crate) room: Room,
    /// Which key each username was seen with.
    known: Mutex<Known>,
    /// Peers with another room key that connected to us: when the log last said so, and
    /// how many it did not mention since.
    strangers: Mutex<(Option<Instant>, u64)>,
    /// Addresses already reported as holding another room key.
    wrong_keys: Mutex<HashSet<String>>,
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

/// What a peer is made of besides its configuration: set up by [`Peer::start`](crate::Peer)
/// before any thread runs.
pub(crate) struct Keys {
    pub(crate) identity: Identity,
    pub(crate) room_key: RoomKey,
    pub(crate) known: Known,
}

impl Node {
    pub(crate) fn new(
        config: PeerConfig,
        keys: Keys,
        peer_id: u64,
        bound_addr: SocketAddr,
        events: Sender<Batch>,
    ) -> Node {
        Node {
            nat: AtomicBool::new(config.behind_nat),
            config,
            peer_id,
            room: Room::from(keys.room_key.room_id()),
            identity: keys.identity,
            room_key: keys.room_key,
            known: Mutex::new(keys.known),
            strangers: Mutex::new((None, 0)),
            wrong_keys: Mutex::default(),
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

    /// Checks the key `peer` came with against the keys its username was seen with (trust
    /// on first use) and remembers it; returns the warning to give when the name was known
    /// with another key.
    pub(crate) fn vouch(&self, peer: &PeerInfo) -> Option<Event> {
        let previous = lock(&self.known).check_and_remember(&peer.username, peer.fingerprint)?;
        warn!(
            "{} arrived with identity {}, not the {} it was first seen with",
            peer.username, peer.fingerprint, previous
        );
        Some(Event::IdentityChanged {
            peer: peer.clone(),
            previous,
        })
    }

    /// Logs that a peer with another room key tried to link to this one: at most once per
    /// [`STRANGER_LOG_EVERY`], with the count of those not mentioned since.
    pub(crate) fn stranger_with_another_key(&self, from: Option<SocketAddr>) {
        let now = Instant::now();
        let mut strangers = lock(&self.strangers);
        let (last, unmentioned) = &mut *strangers;
        if last.is_some_and(|at| now.duration_since(at) < STRANGER_LOG_EVERY) {
            *unmentioned += 1;
            return;
        }
        let from = from.map_or_else(|| "a peer".to_owned(), |a| a.to_string());
        let more = match *unmentioned {
            0 => String::new(),
            n => format!(" ({n} more since the last such line)"),
        };
        warn!(
            "{from} tried to link with another room key (another passphrase, or another room): \
             refused{more}"
        );
        *last = Some(now);
        *unmentioned = 0;
    }

    /// `true` the first time `addr` is reported as holding another room key (so that a
    /// retried candidate is reported once).
    pub(crate) fn first_wrong_key_report(&self, addr: &str) -> bool {
        let mut reported = lock(&self.wrong_keys);
        reported.len() < MAX_WRONG_KEY_REPORTS && reported.insert(addr.to_owned())
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
