//! The [`Peer`]: configuration in, a running ServerSide and ClientSides out, events on one
//! channel, and a shutdown that stops and joins every thread it started.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use log::debug;

use crate::client_side::{self, Links, Outcome, Spec, Target};
use crate::config::{Mode, PeerConfig};
use crate::dht_source::{self, DhtHandle};
use crate::discovery::{Discovery, Source};
use crate::duplex;
use crate::event::{Event, Events, PeerInfo};
use crate::lan;
use crate::mesh::{Candidate, Mesh, Retry};
use crate::net::AcceptWaker;
use crate::node::Node;
use crate::protocol::{FrameReader, Handshake, encode_chat, validate_text};
use crate::server_side::{self, Listeners};
use crate::tracker_client::{self, TrackerAddr};
use crate::{Error, Result, net};

/// How often addresses offered by [`Peer::offer`] that could not be joined are tried again
/// (the first wait; it doubles with each failure).
const OFFER_RETRY: Duration = Duration::from_secs(2);

/// How long link threads get at shutdown to say goodbye before their sockets are cut.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// How long a close then waits for threads whose sockets were cut. None should need it
/// (no thread of a peer waits on anything but sockets, its own channels and the stop
/// signal); a thread still running after it is left behind, and logged, rather than
/// holding up the close.
const CUT_GRACE: Duration = Duration::from_millis(500);

/// A running peer: its ServerSide, its ClientSides and, in [`Mode::Discover`], the
/// discovery sources (tracker, LAN, DHT) that feed its mesh.
///
/// Dropping a `Peer` shuts it down like [`Peer::shutdown`]. Its event channel disconnects
/// when the `Peer` is dropped.
#[derive(Debug)]
pub struct Peer {
    node: Arc<Node>,
    listeners: Arc<Listeners>,
    links: Arc<Links>,
    mesh: Arc<Mesh>,
    events: Events,
    /// Ends the accept thread's wait at close.
    waker: Option<AcceptWaker>,
    /// The DHT source, if the peer uses the DHT.
    dht: Option<DhtHandle>,
}

/// What the ServerSide hands over, wired to the ClientSide and the mesh.
struct Wiring {
    node: Arc<Node>,
    links: Arc<Links>,
    mesh: Arc<Mesh>,
    parts: duplex::Parts,
}

impl Wiring {
    /// Tells the embedder that a peer greeted this one, unless it is linked already.
    fn greeted(&self, hs: &Handshake, remote: SocketAddr) {
        let addr = hs.listen_addr(remote.ip());
        if !self.links.knows(addr, Some(hs.peer_id)) {
            self.node.notify(Event::Discovered {
                addr,
                via: Source::Hello,
            });
        }
    }
}

impl server_side::Hooks for Wiring {
    fn hello(&self, hs: &Handshake, remote: SocketAddr) {
        self.greeted(hs, remote);
        client_side::connect_back(&self.node, &self.links, hs, remote);
    }

    fn duplex(
        &self,
        stream: Arc<TcpStream>,
        hs: Handshake,
        reader: FrameReader,
        remote: SocketAddr,
    ) {
        self.greeted(&hs, remote);
        duplex::run_accepted(&self.parts, stream, hs, reader, remote);
    }

    fn punched(&self, remote: SocketAddr) -> Option<Box<dyn FnOnce(Arc<TcpStream>) + Send>> {
        self.mesh.take_punched(remote)
    }
}

fn random_id() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    RandomState::new().hash_one((
        nanos,
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
    ))
}

impl Peer {
    /// Starts a peer: binds its ServerSide, then joins the network as `config.mode` says.
    ///
    /// Returns once the peer is reachable and, in manual mode, listens to every given peer;
    /// with a tracker, once the tracker has answered; with the DHT or the LAN, once their
    /// threads run (the links to the peers found are made in the background and reported
    /// as events). Fails, leaving nothing running, if the port cannot be bound, the tracker
    /// cannot be reached, a manual peer cannot be listened to, no DHT bootstrap node
    /// resolves, or LAN discovery cannot start.
    pub fn start(config: PeerConfig) -> Result<Peer> {
        config.validate()?;
        let backlog = u32::try_from(config.limits.max_inbound).unwrap_or(u32::MAX);
        let listener =
            net::listen_shared(config.bind_addr, backlog).map_err(|source| Error::Bind {
                addr: config.bind_addr,
                source,
            })?;
        let bound_addr = listener.local_addr()?;
        let (events_tx, events) = crossbeam_channel::bounded(config.event_capacity);
        let mode = config.mode.clone();
        let node = Arc::new(Node::new(config, random_id(), bound_addr, events_tx));
        let listeners = Arc::default();
        let links = Arc::default();
        let mesh = Mesh::new(&node, &links, &listeners);
        let mut peer = Peer {
            node,
            listeners,
            links,
            mesh,
            events: Events::new(events),
            waker: None,
            dht: None,
        };
        // From here on, an early return drops `peer`, which shuts it down.
        let wiring = Arc::new(Wiring {
            node: Arc::clone(&peer.node),
            links: Arc::clone(&peer.links),
            mesh: Arc::clone(&peer.mesh),
            parts: duplex::Parts {
                node: Arc::clone(&peer.node),
                links: Arc::clone(&peer.links),
                listeners: Arc::clone(&peer.listeners),
            },
        });
        peer.waker = Some(server_side::spawn_accept(
            &peer.node,
            &peer.listeners,
            wiring,
            listener,
        )?);
        match mode {
            Mode::Alone => {}
            Mode::Manual(addrs) => peer.connect_all(&addrs)?,
            Mode::Discover(discovery) => peer.discover(&discovery)?,
        }
        debug!(
            "peer {} started on {bound_addr}, reachable at {}",
            peer.username(),
            peer.local_addr()
        );
        Ok(peer)
    }

    /// Starts the discovery sources: the tracker first (its answer tells this peer its
    /// external address and port, which the DHT then announces), then the DHT, then the LAN.
    fn discover(&mut self, discovery: &Discovery) -> Result<()> {
        if let Some(tracker) = &discovery.tracker {
            // Resolved here, once: the tracker thread never looks a name up.
            let tracker = TrackerAddr::resolve(tracker, &self.node.config.resolver)?;
            let (session, list) = tracker_client::open_session(&self.node, &tracker)?;
            tracker_client::take_answer(&self.node, &self.mesh, &list, true);
            let mesh = Arc::clone(&self.mesh);
            tracker_client::spawn(&self.node, mesh, tracker, session, list.interval_secs)?;
        }
        if let Some(config) = &discovery.dht {
            let mesh = Arc::clone(&self.mesh);
            self.dht = Some(dht_source::spawn(&self.node, mesh, config, discovery)?);
        }
        if discovery.lan {
            lan::spawn(&self.node, Arc::clone(&self.mesh))?;
        }
        Ok(())
    }

    /// Offers this peer the addresses of other peers of its room, found by a means of the
    /// embedder's own: each one not linked yet is joined as a tracker's list would be (a
    /// hello, so that it listens back; a full mesh), with retries that back off. A failure
    /// is reported as an [`Event::ConnectFailed`](crate::Event::ConnectFailed).
    pub fn offer(&self, addrs: &[SocketAddr]) {
        let candidates: Vec<Candidate> = addrs.iter().copied().map(Candidate::open).collect();
        let retry = Retry::every(OFFER_RETRY);
        self.mesh.offer(Source::Offered, &candidates, retry, false);
    }

    /// Resolves `addr` in the caller's thread (see [`Resolver`](crate::Resolver)), and
    /// tells the embedder it was given by hand (without waiting on the events).
    fn target(&self, addr: &str) -> Result<Target> {
        let addrs = self.node.config.resolver.resolve(addr)?;
        for &addr in &addrs {
            self.node.notify(Event::Discovered {
                addr,
                via: Source::Manual,
            });
        }
        Ok(Target {
            name: addr.to_owned(),
            addrs,
        })
    }

    /// Listens to every address (in parallel, once they are resolved); fails with the
    /// first error, ignoring addresses that lead to a peer already listened to.
    fn connect_all(&self, addrs: &[String]) -> Result<()> {
        let targets = addrs
            .iter()
            .map(|addr| self.target(addr))
            .collect::<Result<Vec<_>>>()?;
        let (tx, rx) = crossbeam_channel::bounded(addrs.len());
        for target in targets {
            let outcome = Outcome::Caller(tx.clone());
            client_side::spawn_link(
                &self.node,
                &self.links,
                target,
                Spec::one_way(false),
                outcome,
            )?;
        }
        drop(tx);
        let mut first_error = None;
        for result in rx.iter() {
            match result {
                Ok(_) | Err(Error::AlreadyConnected(_)) => {}
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Listens to one more peer at `addr` (`host:port`), without asking it to listen back
    /// (manual mode). Blocks until the handshake is done or has failed, and not on the
    /// events: the thread that reads them may call it, whether or not their channel has
    /// room (the [`ListeningTo`](crate::Event::ListeningTo) event follows). A host name is
    /// resolved in the calling thread (with the configuration's
    /// [`Resolver`](crate::Resolver)), so a lookup that hangs holds up this call and
    /// nothing else: a [`close`](Peer::close) meanwhile is not delayed by it.
    pub fn connect(&self, addr: &str) -> Result<PeerInfo> {
        let target = self.target(addr)?;
        let (tx, rx) = crossbeam_channel::bounded(1);
        let outcome = Outcome::Caller(tx);
        client_side::spawn_link(
            &self.node,
            &self.links,
            target,
            Spec::one_way(false),
            outcome,
        )?;
        rx.recv().map_err(|_| Error::Shutdown)?
    }

    /// Sends a chat message to every listener. Returns how many listeners it was queued
    /// for. The text is encoded once, whatever the number of listeners.
    ///
    /// Each listener may be at most [`Limits::listener_queue_bytes`](crate::Limits) behind;
    /// when the slowest live listener would go past that, `send` waits for it to take
    /// something: a sender faster than its listeners is slowed down to their pace rather
    /// than having them cut off. It waits at most [`Timeouts::stall`](crate::Timeouts):
    /// listeners that took nothing at all in that time are then disconnected (reported as
    /// [`Departure::Overflow`](crate::Departure::Overflow)) and the message goes to the
    /// others; if a listener that is still taking, only slowly, has not made room,
    /// `send` fails with [`Error::QueueFull`] and the message is not sent. Never call it
    /// from a thread that must not wait (a user interface's): use
    /// [`try_send`](Peer::try_send) there.
    pub fn send(&self, text: &str) -> Result<usize> {
        self.send_waiting(text, Some(self.node.config.timeouts.stall))
    }

    /// Sends a chat message like [`send`](Peer::send), but never waits: if the slowest
    /// listener's queue has no room for it, fails at once with [`Error::QueueFull`] (the
    /// message is not sent; try again later). For threads that must not block, such as a
    /// user interface's.
    pub fn try_send(&self, text: &str) -> Result<usize> {
        self.send_waiting(text, None)
    }

    fn send_waiting(&self, text: &str, wait: Option<Duration>) -> Result<usize> {
        if self.node.stop.is_set() {
            return Err(Error::Shutdown);
        }
        let limits = &self.node.config.limits;
        validate_text(text, limits.max_text_bytes).map_err(|_| Error::TextTooLong {
            len: text.len(),
            max: limits.max_text_bytes,
        })?;
        let bytes = encode_chat(text)?;
        self.listeners
            .broadcast(&bytes, limits.listener_queue_bytes, wait, &self.node.stop)
    }

    /// This peer's events. Clone it to read them from another thread; it disconnects when
    /// the peer is dropped.
    pub fn events(&self) -> &Events {
        &self.events
    }

    /// The address other peers should use: the advertised IP (`--ip`) with the bound port
    /// if one was given; else the address the tracker registered for this peer, once it
    /// has answered (behind a NAT router: the router's address); else the bound one.
    pub fn local_addr(&self) -> SocketAddr {
        self.node.local_addr()
    }

    /// `true` if this peer takes itself to be behind a NAT router (configured, or as the
    /// tracker told it): it asks for duplex links.
    pub fn behind_nat(&self) -> bool {
        self.node.behind_nat()
    }

    /// The address the ServerSide is bound to.
    pub fn bound_addr(&self) -> SocketAddr {
        self.node.bound_addr
    }

    /// This peer's username.
    pub fn username(&self) -> &str {
        &self.node.config.username
    }

    /// The configuration this peer was started with.
    pub fn config(&self) -> &PeerConfig {
        &self.node.config
    }

    /// The peers this peer listens to now, sorted by username and address.
    pub fn listening_to(&self) -> Vec<PeerInfo> {
        let mut peers = self.links.snapshot();
        peers.sort();
        peers
    }

    /// The peers that listen to this peer now, sorted by username and address.
    pub fn listeners(&self) -> Vec<PeerInfo> {
        let mut peers = self.listeners.snapshot();
        peers.sort();
        peers
    }

    /// Number of threads this peer is running (accept, tracker, one per link; with the DHT,
    /// its `p2p-dht` thread and `mainline`'s node thread).
    pub fn thread_count(&self) -> usize {
        self.node.threads.len() + self.dht.as_ref().map_or(0, DhtHandle::node_threads)
    }

    /// Leaves the network now: tells the tracker and every listener and listened-to peer
    /// that this peer is leaving, then stops and joins every thread. Later calls do
    /// nothing. [`Peer::send`] fails from then on.
    pub fn close(&self) {
        if !self.node.stop.trigger() {
            return;
        }
        if let Some(waker) = &self.waker {
            waker.wake();
        }
        if let Some(dht) = &self.dht {
            dht.stop();
        }
        self.listeners.disconnect_all();
        self.node.threads.shutdown(SHUTDOWN_GRACE, CUT_GRACE);
        debug!("peer {} shut down", self.username());
    }

    /// Leaves the network (see [`Peer::close`]) and drops the peer.
    pub fn shutdown(self) {
        self.close();
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.close();
    }
}
