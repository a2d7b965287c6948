//! The Mainline DHT as a discovery source of a peer ([`Discovery::dht`]): the DHT engine
//! (`dht/`) run on a thread of the peer's, feeding its mesh.
//!
//! At start, after the ServerSide is bound (and after the tracker has answered, when there
//! is one), [`spawn`] derives the room's infohash ([`room_infohash`], the one place it is
//! derived), resolves the bootstrap nodes with the peer's resolver, starts the engine's
//! `mainline` node and the `p2p-dht` thread (in the peer's `ThreadSet`). That thread runs
//! the engine's schedule: it announces the listening port under the infohash (an explicit
//! port, never `implied_port`: that would be the DHT's UDP port, not the TCP one peers
//! connect to), looks up at once, again after the announce, and then at the lookup
//! interval (sooner while lookups find nobody, or keep finding new peers). The addresses of the recent lookups go to the mesh ([`Source::Dht`]) as they
//! stream in: hellos, a full mesh, as from a tracker.
//!
//! - **Peers that left** stay listed in the DHT. The mesh tries each address at most
//!   [`TRIES`] times (at the next lookups, 2 s apart at first) and then gives up on it while
//!   the DHT lists it ([`RETRY`]); a peer that comes back at that address greets this one
//!   itself (its own lookups find it), and is linked through its hello.
//! - **NAT.** The DHT's nodes tell each node the address they see it at. Until the first
//!   lookup has ended (and so that address is known), found addresses are held back. If it
//!   is not an address of this host and no tracker is in use, this peer is behind a NAT
//!   router: it says so once ([`Event::DhtBehindNat`]), greets with duplex hellos from
//!   its listening port, so it links with every peer that accepts connections, and stops
//!   announcing its port (nobody could connect to it; see [`reachable`]). A peer behind NAT
//!   that a tracker in use says so of does not announce either. Two peers behind NAT
//!   routers cannot link through the DHT alone: punching through both needs a rendezvous
//!   introducing them at once (a tracker), and there is no relay.
//! - **UDP blocked**, or no bootstrap node answering: the first announce fails and the peer
//!   says so once ([`Event::DhtUnreachable`]); the engine keeps trying.
//!
//! Close: [`DhtHandle::stop`] (called by [`Peer::close`](crate::Peer::close) right after it
//! raises the peer's stop signal) stops the engine's loop at once, even in the middle of a
//! query; the `p2p-dht` thread then closes the node and waits for `mainline`'s thread to
//! end (bounded by [`CLOSE_WAIT`]), so both are gone when the peer's close returns.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use log::{debug, info, warn};

use crate::dht::{self, DhtConfig, DhtEvent, InfoHash};
use crate::discovery::{Discovery, Source};
use crate::event::Event;
use crate::mesh::{Candidate, Mesh, Retry};
use crate::node::Node;
use crate::protocol::Room;
use crate::secure::RoomKey;
use crate::threads::lock;
use crate::{Error, Result};

/// Tries of an address found through the DHT before the mesh gives up on it while the DHT
/// keeps listing it.
pub(crate) const TRIES: u32 = 3;

/// How the DHT's candidates are retried: the first wait is the quick lookups' interval
/// (so a retry comes with one of the next lookups), doubling; [`TRIES`] at most.
pub(crate) const RETRY: Retry = Retry {
    base: Duration::from_secs(2),
    give_up_after: Some(TRIES),
};

/// Lookups in a row an address may be missing from and still be offered. A DHT node
/// answers with a random sample of at most 10 of a room's entries, so in a larger room an
/// address is often missing from one lookup or two.
const MISSED_LOOKUPS: u64 = 4;

/// How long the `p2p-dht` thread waits, at close, for `mainline`'s thread to end (in
/// practice one turn of its loop, under 100 ms): inside the second a peer's close gives its
/// threads.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// The infohash a room's peers meet under in the DHT: 20 bytes from the room key, which
/// say nothing about the room's name (nor, for a closed room, let anyone find it without
/// the passphrase). The one place it is derived.
///
/// Derived here, once per [`spawn`] (one argon2id run, tens of milliseconds), from the room
/// key of the room's name with no passphrase. With secure rooms, the peer's own room key
/// (name and passphrase, derived once at `Peer::start`) gives it instead.
pub(crate) fn room_infohash(room: &Room) -> Result<InfoHash> {
    let name = String::from_utf8_lossy(room.as_bytes());
    let key = RoomKey::derive(&name, None)
        .map_err(|e| Error::Config(format!("cannot derive the room's DHT infohash: {e}")))?;
    Ok(InfoHash(*key.infohash().as_bytes()))
}

/// The peer's hold on its DHT source.
#[derive(Debug)]
pub(crate) struct DhtHandle {
    /// Dropped to stop the engine's loop.
    stop: Mutex<Option<flume::Sender<()>>>,
    /// `mainline`'s node thread is running (it is not in the peer's `ThreadSet`: the
    /// `p2p-dht` thread owns it and waits for its end).
    node_running: Arc<AtomicBool>,
}

impl DhtHandle {
    /// Stops the engine's loop now (its query in flight included).
    pub(crate) fn stop(&self) {
        lock(&self.stop).take();
    }

    /// The threads of the DHT outside the peer's `ThreadSet`: `mainline`'s node, while it
    /// runs.
    pub(crate) fn node_threads(&self) -> usize {
        usize::from(self.node_running.load(Ordering::SeqCst))
    }
}

/// Starts the DHT source of `node`'s peer: see the module docs. Fails (and leaves nothing
/// running) if no bootstrap node resolves or the UDP socket cannot be bound.
pub(crate) fn spawn(
    node: &Arc<Node>,
    mesh: Arc<Mesh>,
    config: &DhtConfig,
    discovery: &Discovery,
) -> Result<DhtHandle> {
    let infohash = room_infohash(&node.config.room)?;
    let bootstrap = config.resolve_bootstrap(&node.config.resolver)?;
    let mut config = config.clone();
    if let IpAddr::V4(ip) = node.bound_addr.ip()
        && config.bind_ip.is_unspecified()
    {
        // A peer bound to one address keeps its DHT traffic there too.
        config.bind_ip = ip;
    }
    // The port other peers connect to: the listening port, or the external port a tracker
    // saw this peer behind its router at.
    let port = node
        .observed()
        .filter(|_| node.behind_nat())
        .map_or(node.bound_addr.port(), |addr| addr.port());
    let dht::Prepared {
        node: dht_node,
        state,
        stop,
        announcing,
    } = dht::prepare(infohash, port, config, bootstrap)?;
    announcing.store(reachable(node), Ordering::SeqCst);
    let node_running = Arc::new(AtomicBool::new(true));
    let mut source = DhtSource {
        node: Arc::clone(node),
        mesh,
        listed: Listed::default(),
        announcing,
        ready: false,
        nat_from_tracker: discovery.tracker.is_some(),
        unreachable: false,
        behind_nat: false,
    };
    let running = Arc::clone(&node_running);
    node.threads
        .spawn("p2p-dht", move || {
            dht::run(state, &mut |event| source.take(event));
            if dht_node.close(Instant::now() + CLOSE_WAIT) {
                running.store(false, Ordering::SeqCst);
            }
            debug!("DHT source stopped");
        })
        .map_err(|_| Error::Shutdown)?;
    Ok(DhtHandle {
        stop: Mutex::new(Some(stop)),
        node_running,
    })
}

/// What the `p2p-dht` thread keeps between the engine's events.
struct DhtSource {
    node: Arc<Node>,
    mesh: Arc<Mesh>,
    listed: Listed,
    /// Cleared while this peer cannot be connected to: the engine then only looks up.
    announcing: Arc<AtomicBool>,
    /// The DHT has said where it sees this peer, or the first lookup has ended: found
    /// addresses may go to the mesh (before, this peer might not know yet that it is
    /// behind NAT, and its hellos would make links the other side cannot answer).
    ready: bool,
    /// A tracker is in use: it tells this peer whether it is behind NAT (it sees the TCP
    /// connection, and introduces peers behind NAT to each other), not the DHT.
    nat_from_tracker: bool,
    /// [`Event::DhtUnreachable`] was said and no announce got through since.
    unreachable: bool,
    /// [`Event::DhtBehindNat`] was said.
    behind_nat: bool,
}

impl DhtSource {
    fn take(&mut self, event: DhtEvent) {
        self.take_event(event);
        // Before the engine's next task: a tracker's answers may have changed it too.
        self.announcing
            .store(reachable(&self.node), Ordering::SeqCst);
    }

    fn take_event(&mut self, event: DhtEvent) {
        match event {
            DhtEvent::Found(addrs) => {
                self.listed.found(&addrs);
                if self.ready {
                    self.offer();
                }
            }
            DhtEvent::LookupDone { found } => {
                debug!("DHT lookup found {found} addresses");
                self.listed.lookup_done();
                self.ready = true;
                self.offer();
            }
            DhtEvent::SeenAt(addr) => {
                self.seen_at(addr.ip());
                self.ready = true;
            }
            DhtEvent::Announced => {
                if std::mem::take(&mut self.unreachable) {
                    info!("the DHT answers again");
                }
            }
            DhtEvent::AnnounceFailed(reason) => {
                if !self.unreachable {
                    self.unreachable = true;
                    warn!("DHT unreachable: {reason}");
                    self.node.emit(Event::DhtUnreachable { reason });
                }
            }
        }
    }

    fn offer(&self) {
        self.mesh
            .offer(Source::Dht, &self.listed.candidates(), RETRY, false);
    }

    /// Takes in where the DHT sees this peer: behind NAT if that is not an address of this
    /// host (and no tracker says otherwise).
    fn seen_at(&mut self, ip: IpAddr) {
        let told = self.nat_from_tracker || self.node.config.advertise_ip.is_some();
        if told || self.behind_nat || is_local(ip) {
            debug!("the DHT sees this peer at {ip}");
            return;
        }
        self.behind_nat = true;
        info!("the DHT sees this peer at {ip}, not an address of this host: behind NAT");
        self.node
            .observe(SocketAddr::new(ip, self.node.bound_addr.port()), true);
        self.node.emit(Event::DhtBehindNat { public_ip: ip });
    }
}

/// `true` if other peers can connect to this one: it gives its address (`--ip`, a
/// forwarded port), or neither a tracker nor the DHT found it behind NAT. Only then is its
/// port announced: the address of a peer behind NAT would only send others into attempts
/// that cannot succeed (its router drops them), and while one of them is under way the
/// other's own duplex hello to it is refused (one link per address).
fn reachable(node: &Node) -> bool {
    node.config.advertise_ip.is_some() || !node.behind_nat()
}

/// `true` if `ip` is an address of this host (a socket can be bound to it).
fn is_local(ip: IpAddr) -> bool {
    ip.is_loopback() || UdpSocket::bind(SocketAddr::new(ip, 0)).is_ok()
}

/// The addresses the recent lookups found: what the DHT source offers the mesh. Bounded:
/// an address is dropped once [`MISSED_LOOKUPS`] lookups in a row have not found it, and
/// each lookup reports at most its cap.
#[derive(Debug, Default)]
struct Listed {
    /// Address -> number of the last lookup that found it.
    last_found: HashMap<SocketAddr, u64>,
    /// Number of the lookup under way.
    lookup: u64,
}

impl Listed {
    fn found(&mut self, addrs: &[SocketAddr]) {
        for addr in addrs {
            self.last_found.insert(*addr, self.lookup);
        }
    }

    fn lookup_done(&mut self) {
        // Lookup `n` has ended: an address last found by lookup `m` was missing from the
        // `n - m` since.
        let ended = self.lookup;
        self.last_found.retain(|_, m| ended - *m <= MISSED_LOOKUPS);
        self.lookup += 1;
    }

    /// The addresses, those found most recently first.
    fn candidates(&self) -> Vec<Candidate> {
        let mut found: Vec<(&SocketAddr, &u64)> = self.last_found.iter().collect();
        found.sort_unstable_by(|(a, m), (b, n)| n.cmp(m).then(a.cmp(b)));
        found
            .into_iter()
            .map(|(addr, _)| Candidate::open(*addr))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn addresses_missing_from_several_lookups_in_a_row_are_dropped() {
        let mut listed = Listed::default();
        let (a, b) = (addr("10.0.0.1:1"), addr("10.0.0.2:1"));
        listed.found(&[a, b]);
        listed.lookup_done();
        for _ in 0..MISSED_LOOKUPS {
            listed.found(&[b]);
            listed.lookup_done();
            assert_eq!(listed.candidates().len(), 2, "a is still offered");
        }
        listed.lookup_done();
        assert_eq!(listed.candidates(), [Candidate::open(b)]);
        listed.found(&[a]);
        assert_eq!(
            listed.candidates(),
            [Candidate::open(a), Candidate::open(b)],
            "the most recent first"
        );
    }

    #[test]
    fn a_room_maps_to_one_infohash_that_hides_its_name() {
        let lobby = room_infohash(&Room::lobby()).unwrap();
        let again = room_infohash(&Room::lobby()).unwrap();
        let attic = Room::new("attic").unwrap();
        let other = room_infohash(&attic).unwrap();
        assert_eq!(lobby, again);
        assert_ne!(lobby, other);
        let key = RoomKey::derive("lobby", None).unwrap();
        assert_eq!(
            lobby.0,
            *key.infohash().as_bytes(),
            "the room key's infohash"
        );
        assert!(!lobby.0.windows(5).any(|w| w == b"lobby"));
    }

    #[test]
    fn loopback_and_own_addresses_are_local_others_are_not() {
        assert!(is_local("127.0.0.1".parse().unwrap()));
        // TEST-NET-3 (RFC 5737): never an address of this host.
        assert!(!is_local("203.0.113.7".parse().unwrap()));
    }
}
