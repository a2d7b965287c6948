//! The tracker's registry: who is in each room, bounded in size, with expiry.
//!
//! Entries are keyed by room and address: a peer is listed only to peers of its room, and
//! each entry remembers whether the peer is behind NAT (so that the others are told how to
//! reach it). The bounds below hold over all rooms together.
//!
//! Pure data, no sockets or clocks of its own (the caller passes `now`), so it is tested
//! directly.
//!
//! Two bounds keep one host from taking the registry: each source IP address may register
//! at most `max_per_source` peers, and once the registry is full, a newcomer from a source
//! with fewer entries than the largest source takes the place of that source's stalest
//! entry. So many flooding sources together can only shrink every source to an equal
//! share: a source that holds no more than its share is never pushed out, and a new
//! source gets in as long as some source holds two entries or more.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};

use p2p_core::protocol::{PeerEntry, Room};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Why an announce or leave was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// The announced address cannot be connected to (port 0, unspecified, multicast,
    /// broadcast, or a loopback address announced from another host).
    #[error("invalid address {0}: {1}")]
    InvalidAddress(SocketAddr, &'static str),
    /// The registry holds its maximum number of peers, and no source holds more of them
    /// than the announcing one (plus one) to make room.
    #[error("the registry is full ({0} peers)")]
    Full(usize),
    /// This source address has registered its maximum number of peers.
    #[error("too many peers registered from {0}")]
    SourceFull(IpAddr),
    /// The address is registered by another source.
    #[error("{0} is registered from another address")]
    NotOwner(SocketAddr),
}

/// Limits and timings of a [`Registry`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryLimits {
    /// How long an entry lives without a re-announce.
    pub ttl: Duration,
    /// Most entries in all.
    pub max_peers: usize,
    /// Most entries registered from one source IP address.
    pub max_per_source: usize,
    /// Most addresses in one answer.
    pub max_response: usize,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    source: IpAddr,
    expires: Instant,
    /// Where the address sits in its room's `order`.
    slot: usize,
    /// The peer is behind NAT.
    nat: bool,
}

/// An entry's key: its room and its address.
type Key = (Room, SocketAddr);

/// What an accepted announce gives back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announced {
    /// Other live peers of the room, at most `max_response` of them.
    pub peers: Vec<PeerEntry>,
    /// The entry that made room for this one when the registry was full: the stalest entry
    /// of the source with the most entries.
    pub evicted: Option<SocketAddr>,
}

/// One room's registered addresses, in no particular order, so that an answer can take a
/// window of them without walking the whole room.
#[derive(Debug, Default)]
struct RoomOrder {
    order: Vec<SocketAddr>,
    rotation: usize,
}

/// The registered peers' listening addresses, by room.
#[derive(Debug)]
pub struct Registry {
    limits: RegistryLimits,
    entries: HashMap<Key, Entry>,
    rooms: HashMap<Room, RoomOrder>,
    /// Each source's entries.
    per_source: HashMap<IpAddr, HashSet<Key>>,
    /// (number of entries, source) of every source, so the largest is found at once.
    sizes: BTreeSet<(usize, IpAddr)>,
    next_purge: Option<Instant>,
}

/// Checks that `addr`, announced from `source`, is an address other peers can connect to
/// (the rules of [`p2p_core::net::check_listen_addr`]).
pub fn check_address(addr: SocketAddr, source: IpAddr) -> Result<(), Refusal> {
    p2p_core::net::check_listen_addr(addr, source).map_err(|why| Refusal::InvalidAddress(addr, why))
}

impl Registry {
    /// An empty registry.
    pub fn new(limits: RegistryLimits) -> Self {
        Registry {
            limits,
            entries: HashMap::new(),
            rooms: HashMap::new(),
            per_source: HashMap::new(),
            sizes: BTreeSet::new(),
            next_purge: None,
        }
    }

    /// Number of live entries (expired ones may linger until the next purge).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// `true` if nothing is registered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Registers (or refreshes) `addr` in `room`, announced from `source` (`nat`: the peer
    /// is behind NAT), and returns the room's other live peers, at most `max_response` of
    /// them. When the registry is full, a new entry takes the place of the stalest entry of
    /// the source holding the most entries, if that source holds at least two more than
    /// `source` (see the module docs); the answer says which entry gave its place.
    pub fn announce(
        &mut self,
        room: &Room,
        addr: SocketAddr,
        nat: bool,
        source: IpAddr,
        now: Instant,
    ) -> Result<Announced, Refusal> {
        check_address(addr, source)?;
        self.purge(now);
        let expires = now + self.limits.ttl;
        let key = (*room, addr);
        let mut evicted = None;
        match self.entries.get_mut(&key) {
            Some(entry) if entry.expires > now => {
                if entry.source != source {
                    return Err(Refusal::NotOwner(addr));
                }
                entry.expires = expires;
                entry.nat = nat;
            }
            stale => {
                if stale.is_some() {
                    self.remove(&key);
                }
                let mine = self.count(source);
                if mine >= self.limits.max_per_source {
                    return Err(Refusal::SourceFull(source));
                }
                if self.entries.len() >= self.limits.max_peers {
                    let victim = self.stalest_of_largest_source(mine);
                    let Some(victim) = victim else {
                        return Err(Refusal::Full(self.limits.max_peers));
                    };
                    self.remove(&victim);
                    evicted = Some(victim.1);
                }
                self.insert(key, source, expires, nat);
            }
        }
        Ok(Announced {
            peers: self.others(room, addr, now),
            evicted,
        })
    }

    /// How many entries `source` holds.
    fn count(&self, source: IpAddr) -> usize {
        self.per_source.get(&source).map_or(0, HashSet::len)
    }

    /// The entry to make room with for a source holding `mine` entries: the one expiring
    /// first among the largest source's, if that source holds more than `mine + 1` (so
    /// that taking one of its places leaves it no smaller than the newcomer).
    fn stalest_of_largest_source(&self, mine: usize) -> Option<Key> {
        let &(largest, source) = self.sizes.last()?;
        if largest <= mine + 1 {
            return None;
        }
        self.per_source
            .get(&source)?
            .iter()
            .filter_map(|key| Some((self.entries.get(key)?.expires, key)))
            .min()
            .map(|(_, key)| *key)
    }

    fn insert(&mut self, key: Key, source: IpAddr, expires: Instant, nat: bool) {
        let before = self.count(source);
        self.sizes.remove(&(before, source));
        self.sizes.insert((before + 1, source));
        self.per_source.entry(source).or_default().insert(key);
        let room = self.rooms.entry(key.0).or_default();
        self.entries.insert(
            key,
            Entry {
                source,
                expires,
                slot: room.order.len(),
                nat,
            },
        );
        room.order.push(key.1);
    }

    /// Removes `addr` from `room` if `source` registered it. Returns whether it was there.
    pub fn leave(
        &mut self,
        room: &Room,
        addr: SocketAddr,
        source: IpAddr,
    ) -> Result<bool, Refusal> {
        let key = (*room, addr);
        match self.entries.get(&key) {
            None => Ok(false),
            Some(entry) if entry.source != source => Err(Refusal::NotOwner(addr)),
            Some(_) => {
                self.remove(&key);
                Ok(true)
            }
        }
    }

    /// The live addresses at `now`, of every room.
    pub fn peers(&self, now: Instant) -> Vec<SocketAddr> {
        let mut peers: Vec<SocketAddr> = self
            .entries
            .iter()
            .filter(|(_, e)| e.expires > now)
            .map(|((_, a), _)| *a)
            .collect();
        peers.sort();
        peers
    }

    /// The live entries of `room` at `now`.
    pub fn peers_in(&self, room: &Room, now: Instant) -> Vec<PeerEntry> {
        let mut peers: Vec<PeerEntry> = self
            .entries
            .iter()
            .filter(|((r, _), e)| r == room && e.expires > now)
            .map(|((_, addr), e)| PeerEntry {
                addr: *addr,
                nat: e.nat,
            })
            .collect();
        peers.sort_by_key(|p| p.addr);
        peers
    }

    /// How many entries are live at `now`.
    pub fn live(&self, now: Instant) -> usize {
        self.entries.values().filter(|e| e.expires > now).count()
    }

    /// Up to `max_response` live entries of `room` other than `requester`: a window of the
    /// room that moves on at every answer, so that over successive answers every peer is
    /// listed. It looks at no more than `max_response` + 1 entries beyond the expired ones
    /// it skips.
    fn others(&mut self, room: &Room, requester: SocketAddr, now: Instant) -> Vec<PeerEntry> {
        let max = self.limits.max_response;
        let Some(order) = self.rooms.get_mut(room) else {
            return Vec::new();
        };
        let total = order.order.len();
        let mut others = Vec::with_capacity(max.min(total));
        if total == 0 || max == 0 {
            return others;
        }
        let start = if total > max + 1 {
            order.rotation = (order.rotation + max) % total;
            order.rotation
        } else {
            0
        };
        let mut key = (*room, requester);
        for i in 0..total {
            let addr = order.order[(start + i) % total];
            if addr == requester {
                continue;
            }
            key.1 = addr;
            if let Some(e) = self.entries.get(&key).filter(|e| e.expires > now) {
                others.push(PeerEntry { addr, nat: e.nat });
                if others.len() == max {
                    break;
                }
            }
        }
        others
    }

    fn remove(&mut self, key: &Key) {
        let Some(entry) = self.entries.remove(key) else {
            return;
        };
        if let Some(room) = self.rooms.get_mut(&key.0) {
            room.order.swap_remove(entry.slot);
            if let Some(moved) = room.order.get(entry.slot)
                && let Some(e) = self.entries.get_mut(&(key.0, *moved))
            {
                e.slot = entry.slot;
            }
            if room.order.is_empty() {
                self.rooms.remove(&key.0);
            }
        }
        if let Some(keys) = self.per_source.get_mut(&entry.source) {
            self.sizes.remove(&(keys.len(), entry.source));
            keys.remove(key);
            if keys.is_empty() {
                self.per_source.remove(&entry.source);
            } else {
                self.sizes.insert((keys.len(), entry.source));
            }
        }
    }

    /// Drops expired entries, at most once a second (it walks the whole registry).
    fn purge(&mut self, now: Instant) {
        if self.next_purge.is_some_and(|t| now < t) {
            return;
        }
        self.next_purge = Some(now + Duration::from_secs(1));
        let expired: Vec<Key> = self
            .entries
            .iter()
            .filter(|(_, e)| e.expires <= now)
            .map(|(k, _)| *k)
            .collect();
        for key in expired {
            self.remove(&key);
        }
    }
}

/// The registry as the event loop (which answers requests) and the tracker's handle (which
/// lists the peers) share it: the one place its lock is taken.
#[derive(Debug)]
pub(crate) struct SharedRegistry(Mutex<Registry>);

impl SharedRegistry {
    pub(crate) fn new(registry: Registry) -> Self {
        SharedRegistry(Mutex::new(registry))
    }

    /// The registry, locked. A panic while it was held cannot leave it half-changed in a
    /// way that matters more than stopping would (each change is a few map operations),
    /// so a poisoned lock is taken over.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Registry> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> RegistryLimits {
        RegistryLimits {
            ttl: Duration::from_secs(30),
            max_peers: 4,
            max_per_source: 3,
            max_response: 2,
        }
    }

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    const LO: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    /// The room most tests use (any 16 bytes: the tracker never sees a name).
    const LOBBY: Room = Room::from_bytes([1; 16]);

    /// The tests' shorthands: the lobby, peers not behind NAT, answers as addresses.
    impl Registry {
        fn ann(
            &mut self,
            addr: SocketAddr,
            source: IpAddr,
            now: Instant,
        ) -> Result<Announced, Refusal> {
            self.announce(&LOBBY, addr, false, source, now)
        }

        fn lv(&mut self, addr: SocketAddr, source: IpAddr) -> Result<bool, Refusal> {
            self.leave(&LOBBY, addr, source)
        }
    }

    fn addrs(peers: Vec<PeerEntry>) -> Vec<SocketAddr> {
        peers.into_iter().map(|p| p.addr).collect()
    }

    #[test]
    fn announce_lists_the_others_and_registers() {
        let mut r = Registry::new(limits());
        let now = Instant::now();
        assert_eq!(
            addrs(r.ann(a("127.0.0.1:1"), LO, now).unwrap().peers),
            vec![]
        );
        assert_eq!(
            addrs(r.ann(a("127.0.0.1:2"), LO, now).unwrap().peers),
            vec![a("127.0.0.1:1")]
        );
        // Re-announcing does not duplicate.
        assert_eq!(
            addrs(r.ann(a("127.0.0.1:2"), LO, now).unwrap().peers),
            vec![a("127.0.0.1:1")]
        );
        assert_eq!(r.len(), 2);
    }

    #[test]
    fn entries_expire_and_leave_removes_at_once() {
        let mut r = Registry::new(limits());
        let t0 = Instant::now();
        r.ann(a("127.0.0.1:1"), LO, t0).unwrap();
        r.ann(a("127.0.0.1:2"), LO, t0).unwrap();
        assert_eq!(r.lv(a("127.0.0.1:2"), LO), Ok(true));
        assert_eq!(r.peers(t0), vec![a("127.0.0.1:1")]);
        let later = t0 + Duration::from_secs(31);
        assert!(r.peers(later).is_empty());
        assert_eq!((r.live(t0), r.live(later), r.len()), (1, 0, 1));
        assert!(r.ann(a("127.0.0.1:3"), LO, later).unwrap().peers.is_empty());
        assert_eq!(r.len(), 1);
    }

    #[test]
    fn bounds_hold() {
        let mut r = Registry::new(limits());
        let now = Instant::now();
        let other: IpAddr = "10.0.0.9".parse().unwrap();
        for p in 1..=3 {
            r.ann(SocketAddr::new(LO, p), LO, now).unwrap();
        }
        assert_eq!(
            r.ann(a("127.0.0.1:4"), LO, now),
            Err(Refusal::SourceFull(LO))
        );
        // Another source still gets in, and answers are capped.
        let answer = r.ann(a("10.0.0.9:1"), other, now).unwrap();
        assert_eq!((answer.peers.len(), answer.evicted), (2, None));
        // The registry is full: the larger source (3 against 1) gives up its stalest entry.
        let later = now + Duration::from_secs(1);
        r.ann(a("127.0.0.1:1"), LO, later).unwrap();
        r.ann(a("127.0.0.1:3"), LO, later).unwrap();
        let answer = r.ann(a("10.0.0.9:2"), other, later).unwrap();
        assert_eq!(answer.evicted, Some(a("127.0.0.1:2")));
        assert_eq!(r.len(), 4);
        // Two each now: nobody holds more than the newcomer plus one.
        assert_eq!(r.ann(a("10.0.0.9:3"), other, later), Err(Refusal::Full(4)));
        assert_eq!(
            r.lv(a("10.0.0.9:1"), LO),
            Err(Refusal::NotOwner(a("10.0.0.9:1")))
        );
    }

    #[test]
    fn answers_rotate_over_the_whole_registry_and_removal_keeps_it_consistent() {
        let mut r = Registry::new(RegistryLimits {
            ttl: Duration::from_secs(30),
            max_peers: 100,
            max_per_source: 100,
            max_response: 4,
        });
        let now = Instant::now();
        for p in 1..=20 {
            r.ann(SocketAddr::new(LO, p), LO, now).unwrap();
        }
        for p in (2..=20).step_by(3) {
            assert_eq!(r.lv(SocketAddr::new(LO, p), LO), Ok(true));
        }
        let live = r.peers(now);
        assert_eq!(live.len(), 13);
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..20 {
            let answer = addrs(r.ann(a("127.0.0.1:1"), LO, now).unwrap().peers);
            assert_eq!(answer.len(), 4);
            assert!(!answer.contains(&a("127.0.0.1:1")));
            assert!(answer.iter().all(|x| live.contains(x)));
            seen.extend(answer);
        }
        assert_eq!(
            seen.len(),
            12,
            "every other live peer was listed at some point"
        );
    }

    #[test]
    fn rooms_are_listed_apart_and_keep_each_entrys_nat_flag() {
        let mut r = Registry::new(RegistryLimits {
            max_peers: 10,
            max_per_source: 10,
            ..limits()
        });
        let now = Instant::now();
        let other = Room::from_bytes([2; 16]);
        r.ann(a("127.0.0.1:1"), LO, now).unwrap();
        let answer = r.announce(&other, a("127.0.0.1:2"), true, LO, now).unwrap();
        assert!(
            answer.peers.is_empty(),
            "the lobby's peer is not listed in another room"
        );
        let answer = r
            .announce(&other, a("127.0.0.1:3"), false, LO, now)
            .unwrap();
        assert_eq!(
            answer.peers,
            [PeerEntry {
                addr: a("127.0.0.1:2"),
                nat: true
            }]
        );
        // The same address may be registered in two rooms; leaving one keeps the other.
        r.announce(&other, a("127.0.0.1:1"), false, LO, now)
            .unwrap();
        assert_eq!(r.lv(a("127.0.0.1:1"), LO), Ok(true));
        assert_eq!(r.peers_in(&other, now).len(), 3);
        assert!(r.peers_in(&LOBBY, now).is_empty());
    }

    #[test]
    fn bad_addresses_are_refused() {
        let far: IpAddr = "192.0.2.1".parse().unwrap();
        for bad in [
            "127.0.0.1:0",
            "0.0.0.0:5",
            "224.0.0.1:5",
            "255.255.255.255:5",
            "[::]:5",
        ] {
            assert!(check_address(a(bad), LO).is_err(), "{bad}");
        }
        assert!(check_address(a("127.0.0.1:5"), far).is_err());
        assert!(check_address(a("192.0.2.1:5"), far).is_ok());
    }
}
