//! Joining the mesh: the one place every source of peer addresses feeds.
//!
//! The tracker session (its lists and its pushed introductions), the LAN discovery, the DHT
//! and the embedder ([`Peer::offer`](crate::Peer::offer)) hand what they find to [`Mesh::offer`] as [`Candidate`]s. The mesh
//! links to each candidate it does not know yet, in the way its reachability allows:
//!
//! | this peer | candidate | what the mesh does |
//! |---|---|---|
//! | open | open | a hello: it listens to the candidate, which connects back |
//! | behind NAT | open | a duplex hello from the listening port: one connection both ways |
//! | open | behind NAT | nothing: the tracker tells the candidate to open a duplex link here (without a tracker: its own duplex hello does) |
//! | behind NAT | behind NAT | a punch, when the tracker introduced both at once (without a tracker: nothing can) |
//!
//! Duplicates are refused by address and by peer id ([`Links`]); a candidate that could not
//! be joined is tried again after 1, 2, 4 … up to [`MAX_BACKOFF`] times the source's retry
//! period ([`Attempts`]), so a source that lists dead or bogus addresses does not make the
//! peer try each of them at every offer. A source whose lists keep the addresses of peers that
//! left (the DHT) also gives up on an address after a few failures ([`Retry::give_up_after`]):
//! each such address then costs a bounded number of attempts, however long it stays listed.
//!
//! Each source offers its own whole list each time; the mesh keeps one list per [`Source`],
//! so a tracker, the LAN and the DHT feed it at once and a peer found by two of them is
//! joined once. Every attempt the mesh starts is announced as an [`Event::Discovered`] with
//! its source, before the link's events.
//!
//! Punching ([`How::Punch`]): both peers connect to each other's external address from
//! their listening ports, every [`PUNCH_EVERY`], for [`Timeouts::punch`]. A SYN that meets
//! the other side's SYN makes one connection (a TCP simultaneous open); one that reaches
//! the other side's listener makes an ordinary one. Either way there is one connection per
//! pair (both attempts use the same two addresses), and the peer whose external address is
//! the lower sends the handshake ([`link::punch_role`]); the accept thread asks
//! [`Mesh::take_punched`] whether a connection it accepted is such a punch.
//!
//! [`Timeouts::punch`]: crate::Timeouts::punch

mod attempts;

use std::collections::{HashMap, HashSet};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use log::{debug, info};

use crate::client_side::{self, Link, Links, Outcome, Spec};
use crate::discovery::Source;
use crate::duplex::{self, Parts};
use crate::event::{Event, PeerInfo};
use crate::link::{self, Ask, LocalPort};
use crate::node::Node;
use crate::protocol::{How, Introduce};
use crate::secure::Role;
use crate::server_side::Listeners;
use crate::threads::{Role as SocketRole, SocketGuard, lock};
use crate::{Error, Result};
use attempts::{Attempts, Turn};

pub(crate) use attempts::Retry;

/// Most retry periods a candidate that keeps failing waits before it is tried again (the
/// wait doubles with each failure: 1, 2, 4 … up to this many periods).
pub const MAX_BACKOFF: u32 = 64;

/// How often a punch sends a fresh SYN: each attempt waits this long for an answer, then
/// the next one starts. A SYN that reaches a router before its own side has sent one is
/// dropped, so attempts must overlap in time on both sides.
pub const PUNCH_EVERY: Duration = Duration::from_millis(200);

/// A peer some source found: where it listens, and whether it is behind NAT (so that
/// nobody can connect to it unasked).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Candidate {
    /// Where it listens (its router's address and its port, behind NAT).
    pub addr: SocketAddr,
    /// It cannot be connected to directly.
    pub nat: bool,
}

impl Candidate {
    /// A candidate that can be connected to (what LAN discovery and a DHT find).
    pub fn open(addr: SocketAddr) -> Candidate {
        Candidate { addr, nat: false }
    }
}

/// A punch under way, as the accept thread sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PunchState {
    /// Still trying; this peer plays `Role` on the connection.
    Trying(Role),
    /// A connection formed (ours, or one our listener accepted): stop trying.
    Done,
}

/// The mesh of one peer: what the discovery sources feed.
pub struct Mesh {
    parts: Parts,
    attempts: Mutex<State>,
    punches: Mutex<HashMap<SocketAddr, PunchState>>,
}

#[derive(Debug, Default)]
struct State {
    attempts: Attempts,
    /// What each source offered last, with its retry rule (the tracker's list is what
    /// [`Mesh::wants_introductions`] looks at).
    lists: HashMap<Source, (Vec<Candidate>, Retry)>,
}

impl std::fmt::Debug for Mesh {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mesh").finish_non_exhaustive()
    }
}

impl Mesh {
    pub(crate) fn new(
        node: &Arc<Node>,
        links: &Arc<Links>,
        listeners: &Arc<Listeners>,
    ) -> Arc<Mesh> {
        Arc::new(Mesh {
            parts: Parts {
                node: Arc::clone(node),
                links: Arc::clone(links),
                listeners: Arc::clone(listeners),
            },
            attempts: Mutex::default(),
            punches: Mutex::default(),
        })
    }

    fn node(&self) -> &Arc<Node> {
        &self.parts.node
    }

    /// The entry point of every discovery source: `candidates` is what `source` knows now
    /// (the whole list each time: a tracker's answer, the LAN's resolved peers, the DHT's
    /// recent lookups), `retry` how its candidates are tried again. Each candidate not
    /// linked, not being tried, not waiting out a failure and not given up on is joined as
    /// the module docs say, after an [`Event::Discovered`]; `introduced` says the tracker
    /// told the candidates behind NAT to punch back now (only then does a peer behind NAT
    /// punch them).
    pub(crate) fn offer(
        self: &Arc<Self>,
        source: Source,
        candidates: &[Candidate],
        retry: Retry,
        introduced: bool,
    ) {
        let node = self.node();
        let now = Instant::now();
        let max = node.config.limits.max_tracker_peers;
        let candidates = &candidates[..candidates.len().min(max)];
        let mut state = lock(&self.attempts);
        state.attempts.collect(now);
        state.lists.insert(source, (candidates.to_vec(), retry));
        let listed: HashSet<SocketAddr> = state
            .lists
            .values()
            .flat_map(|(list, _)| list.iter().map(|c| c.addr))
            .collect();
        state.attempts.keep_only(&listed, now);
        // A source that cannot tell (the DHT) lists as open a peer that the tracker knows is
        // behind NAT: trust the tracker.
        let behind_nat: HashSet<SocketAddr> = state
            .lists
            .values()
            .flat_map(|(list, _)| list.iter().filter(|c| c.nat).map(|c| c.addr))
            .collect();
        let own = node.local_addr();
        for c in candidates {
            if c.addr == own || self.parts.links.knows(c.addr, None) {
                continue;
            }
            match state.attempts.turn(c.addr, now, retry) {
                Turn::Now => {}
                Turn::Wait | Turn::GivenUp => continue,
                Turn::GiveUp => {
                    info!(
                        "giving up on {} (found through {source}): no link after {} tries",
                        c.addr,
                        retry.give_up_after.unwrap_or_default()
                    );
                    continue;
                }
            }
            let nat = c.nat || behind_nat.contains(&c.addr);
            let started = match (nat, node.behind_nat()) {
                (false, nat) => self.hello(source, c.addr, nat),
                (true, true) if introduced => self.punch(source, c.addr),
                // It connects to us (the tracker told it to), or a later offer punches it.
                (true, _) => continue,
            };
            match started {
                Some(rx) => state.attempts.start(c.addr, rx),
                None => return, // shutting down
            }
        }
    }

    /// `true` if the next announce should ask the tracker for introductions: a candidate
    /// behind NAT that the tracker lists is neither linked nor being tried, and its retry
    /// time has come.
    pub(crate) fn wants_introductions(&self) -> bool {
        let node = self.node();
        if !node.behind_nat() {
            return false;
        }
        let now = Instant::now();
        let mut state = lock(&self.attempts);
        state.attempts.collect(now);
        let State { attempts, lists } = &mut *state;
        let Some((listed, retry)) = lists.get(&Source::Tracker) else {
            return false;
        };
        listed.iter().any(|c| {
            c.nat
                && !self.parts.links.knows(c.addr, None)
                && attempts.turn(c.addr, now, *retry) == Turn::Now
        })
    }

    /// What a tracker pushed: reach this peer now.
    pub(crate) fn introduce(self: &Arc<Self>, intro: Introduce) {
        let Introduce { addr, how } = intro;
        if addr == self.node().local_addr() || self.parts.links.knows(addr, None) {
            return;
        }
        let mut state = lock(&self.attempts);
        if state.attempts.is_pending(addr) {
            return;
        }
        // A tracker that pushes without end cannot make this peer start attempts (threads,
        // sockets) without bound.
        let max = self.node().config.limits.max_connect_backs;
        if state.attempts.pending_len() >= max {
            info!("not following the tracker's introduction of {addr}: {max} attempts under way");
            return;
        }
        debug!("the tracker introduces {addr}: {how:?}");
        let started = match how {
            How::Connect => self.hello(Source::Tracker, addr, true),
            How::Punch => self.punch(Source::Tracker, addr),
        };
        if let Some(rx) = started {
            state.attempts.start(addr, rx);
        }
    }

    /// Starts a link with a hello to `addr`: duplex (from the listening port) if this peer
    /// cannot be connected to. `None` once shutting down.
    fn hello(
        self: &Arc<Self>,
        source: Source,
        addr: SocketAddr,
        duplex: bool,
    ) -> Option<Receiver<Result<PeerInfo>>> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        let node = self.node();
        node.notify(Event::Discovered { addr, via: source });
        let spec = Spec {
            ask: Ask {
                hello: true,
                duplex,
            },
            from: if duplex {
                LocalPort::Listening
            } else {
                node.outgoing_from()
            },
            duplex: duplex.then(|| self.run_duplex()),
        };
        client_side::spawn_link(
            node,
            &self.parts.links,
            addr.into(),
            spec,
            Outcome::Mesh(tx),
        )
        .ok()
        .map(|()| rx)
    }

    /// What takes over a duplex link this peer opened.
    fn run_duplex(&self) -> Box<dyn FnOnce(Link) + Send> {
        let parts = self.parts.clone();
        Box::new(move |link| duplex::run_opened(&parts, link))
    }

    /// Starts punching `peer` (on a thread of its own). `None` once shutting down.
    fn punch(
        self: &Arc<Self>,
        source: Source,
        peer: SocketAddr,
    ) -> Option<Receiver<Result<PeerInfo>>> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.node().notify(Event::Discovered {
            addr: peer,
            via: source,
        });
        let mesh = Arc::clone(self);
        self.node()
            .threads
            .spawn("p2p-punch", move || mesh.run_punch(peer, &tx))
            .ok()
            .map(|()| rx)
    }

    fn run_punch(&self, peer: SocketAddr, outcome: &Sender<Result<PeerInfo>>) {
        let result = self.punch_until_connected(peer);
        lock(&self.punches).remove(&peer);
        match result {
            Ok(Some((connection, role))) => self.take_connection(connection, peer, role, outcome),
            Ok(None) => {
                // Our listener took the connection: it runs the link.
                let _ = outcome.send(Err(Error::AlreadyConnected(peer.to_string())));
            }
            Err(e) => {
                if !matches!(e, Error::Shutdown) {
                    info!("cannot reach {peer}: {e}");
                    self.node().emit(Event::Unreachable {
                        addr: peer,
                        reason: e.to_string(),
                    });
                }
                let _ = outcome.send(Err(e));
            }
        }
    }

    /// Connects to `peer` from the listening port every [`PUNCH_EVERY`] until a connection
    /// forms, our listener takes one (`Ok(None)`), or the punch window ends.
    fn punch_until_connected(&self, peer: SocketAddr) -> Result<Option<(link::Connection, Role)>> {
        let node = self.node();
        let own = node
            .observed()
            .ok_or_else(|| Error::Config("no tracker has told this peer its address".into()))?;
        let role =
            link::punch_role(own, peer).ok_or_else(|| Error::SelfConnection(peer.to_string()))?;
        {
            let mut punches = lock(&self.punches);
            if punches.contains_key(&peer) {
                return Err(Error::AlreadyConnected(peer.to_string()));
            }
            punches.insert(peer, PunchState::Trying(role));
        }
        let window = node.config.timeouts.punch;
        let end = Instant::now() + window;
        let mut tries = 0u32;
        loop {
            if node.stop.is_set() {
                return Err(Error::Shutdown);
            }
            // Done: our listener took the other side's connection. Linked: a connection
            // made another way (an earlier attempt of the other side's) holds the pair's
            // addresses, so no attempt of ours could complete.
            if lock(&self.punches).get(&peer) == Some(&PunchState::Done)
                || self.parts.links.knows(peer, None)
            {
                return Ok(None);
            }
            let started = Instant::now();
            if started >= end {
                return Err(Error::Refused {
                    addr: peer.to_string(),
                    reason: format!(
                        "no connection through the NAT routers after {tries} tries in {window:?} \
                         (a router that gives each destination another port cannot be punched \
                         through; there is no relay)"
                    ),
                });
            }
            tries += 1;
            match link::dial(node, peer, PUNCH_EVERY, LocalPort::ListeningOnly) {
                Ok(connection) => {
                    let mut punches = lock(&self.punches);
                    if punches.get(&peer) == Some(&PunchState::Done) {
                        return Ok(None);
                    }
                    punches.insert(peer, PunchState::Done);
                    return Ok(Some((connection, role)));
                }
                Err(e) => debug!("punch {tries} to {peer}: {e}"),
            }
            let next = started + PUNCH_EVERY;
            if node
                .stop
                .wait(next.saturating_duration_since(Instant::now()))
            {
                return Err(Error::Shutdown);
            }
        }
    }

    /// Runs a punched connection: the handshake in the role the addresses give, then the
    /// duplex link.
    fn take_connection(
        &self,
        (stream, socket): link::Connection,
        peer: SocketAddr,
        role: Role,
        outcome: &Sender<Result<PeerInfo>>,
    ) {
        let role = link::settle_punch_role(&stream, role);
        debug!("punched through to {peer}: {role:?}");
        match role {
            Role::Initiator => match self.initiate_duplex(stream, socket, peer) {
                Ok(link) => {
                    let _ = outcome.send(Ok(PeerInfo::clone(&link.info)));
                    duplex::run_opened(&self.parts, link);
                }
                Err(e) => {
                    info!("punched connection to {peer} failed: {e}");
                    let _ = outcome.send(Err(e));
                }
            },
            Role::Responder => {
                drop(socket);
                let _ = outcome.send(Err(Error::AlreadyConnected(peer.to_string())));
                self.respond_duplex(stream, peer);
            }
        }
    }

    /// Sends the handshake of a duplex link on a connection made with `peer` and registers
    /// it as a link.
    fn initiate_duplex(
        &self,
        stream: Arc<TcpStream>,
        socket: SocketGuard,
        peer: SocketAddr,
    ) -> Result<Link> {
        let Parts { node, links, .. } = &self.parts;
        if !links.reserve(peer) {
            return Err(Error::AlreadyConnected(peer.to_string()));
        }
        let ask = Ask {
            hello: true,
            duplex: true,
        };
        client_side::open_link(node, links, (stream, socket), peer, &peer.to_string(), ask)
    }

    /// Waits for the other peer's handshake on a punched connection, then runs the duplex
    /// link as if our listener had accepted it.
    fn respond_duplex(&self, stream: Arc<TcpStream>, peer: SocketAddr) {
        let node = &self.parts.node;
        let Some(handshaking) = node.threads.register(&stream, SocketRole::Reader) else {
            return;
        };
        match link::read_handshake(node, &stream) {
            Ok(accepted) if accepted.hs.duplex => {
                drop(handshaking);
                duplex::run_accepted(&self.parts, stream, accepted, peer);
            }
            Ok(mut accepted) => link::refuse(
                &stream,
                &mut accepted.outbound,
                "a punched connection is a duplex link",
            ),
            Err(link::Refusal::Refuse(reason, mut out)) => link::refuse(&stream, &mut out, &reason),
            Err(link::Refusal::Close(why)) => info!("punched connection to {peer} closed: {why}"),
            Err(link::Refusal::Stranger) => {}
        }
    }

    /// Asked by the accept thread for a connection accepted from `remote`: if it is the
    /// other end of a punch on which this peer sends the handshake, the hook that runs it
    /// (and the punch stops). A punch on which the other peer sends the handshake is
    /// marked done and left to the ordinary accept path, which reads that handshake.
    pub(crate) fn take_punched(
        self: &Arc<Self>,
        remote: SocketAddr,
    ) -> Option<Box<dyn FnOnce(Arc<std::net::TcpStream>) + Send>> {
        let mut punches = lock(&self.punches);
        let state = punches.get_mut(&remote)?;
        let PunchState::Trying(role) = *state else {
            return None;
        };
        *state = PunchState::Done;
        drop(punches);
        if role == Role::Responder {
            return None;
        }
        let mesh = Arc::clone(self);
        Some(Box::new(move |stream| {
            let node = mesh.node();
            let Some(socket) = node.threads.register(&stream, SocketRole::Reader) else {
                return;
            };
            match mesh.initiate_duplex(stream, socket, remote) {
                Ok(link) => duplex::run_opened(&mesh.parts, link),
                Err(e) => info!("punched connection from {remote} failed: {e}"),
            }
        }))
    }
}
