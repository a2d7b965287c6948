//! The tracker's registry: who is in the network, bounded in size, with expiry.
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
    /// Where the address sits in `Registry::order`.
    slot: usize,
}

/// What an accepted announce gives back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announced {
    /// Other live peers, at most `max_response` of them.
    pub peers: Vec<SocketAddr>,
    /// The entry that made room for this one when the registry was full: the stalest entry
    /// of the source with the most entries.
    pub evicted: Option<SocketAddr>,
}

/// The set of registered peers' listening addresses.
#[derive(Debug)]
pub struct Registry {
    limits: RegistryLimits,
    entries: HashMap<SocketAddr, Entry>,
    /// The registered addresses in no particular order, so that an answer can take a
    /// window of them without walking the whole registry.
    order: Vec<SocketAddr>,
    /// Each source's entries.
    per_source: HashMap<IpAddr, HashSet<SocketAddr>>,
    /// (number of entries, source) of every source, so the largest is found at once.
    sizes: BTreeSet<(usize, IpAddr)>,
    next_purge: Option<Instant>,
    rotation: usize,
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
            order: Vec::new(),
            per_source: HashMap::new(),
            sizes: BTreeSet::new(),
            next_purge: None,
            rotation: 0,
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

    /// Registers (or refreshes) `addr`, announced from `source`, and returns the other
    /// live peers, at most `max_response` of them. When the registry is full, a new entry
    /// takes the place of the stalest entry of the source holding the most entries, if that
    /// source holds at least two more than `source` (see the module docs); the answer says
    /// which entry gave its place.
    pub fn announce(
        &mut self,
        addr: SocketAddr,
        source: IpAddr,
        now: Instant,
    ) -> Result<Announced, Refusal> {
        check_address(addr, source)?;
        self.purge(now);
        let expires = now + self.limits.ttl;
        let mut evicted = None;
        match self.entries.get_mut(&addr) {
            Some(entry) if entry.expires > now => {
                if entry.source != source {
                    return Err(Refusal::NotOwner(addr));
                }
                entry.expires = expires;
            }
            stale => {
                if stale.is_some() {
                    self.remove(addr);
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
                    self.remove(victim);
                    evicted = Some(victim);
                }
                self.insert(addr, source, expires);
            }
        }
        Ok(Announced {
            peers: self.others(addr, now),
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
    fn stalest_of_largest_source(&self, mine: usize) -> Option<SocketAddr> {
        let &(largest, source) = self.sizes.last()?;
        if largest <= mine + 1 {
            return None;
        }
        self.per_source
            .get(&source)?
            .iter()
            .filter_map(|addr| Some((self.entries.get(addr)?.expires, *addr)))
            .min()
            .map(|(_, addr)| addr)
    }

    fn insert(&mut self, addr: SocketAddr, source: IpAddr, expires: Instant) {
        let before = self.count(source);
        self.sizes.remove(&(before, source));
        self.sizes.insert((before + 1, source));
        self.per_source.entry(source).or_default().insert(addr);
        self.entries.insert(
            addr,
            Entry {
                source,
                expires,
                slot: self.order.len(),
            },
        );
        self.order.push(addr);
    }

    /// Removes `addr` if `source` registered it. Returns whether it was there.
    pub fn leave(&mut self, addr: SocketAddr, source: IpAddr) -> Result<bool, Refusal> {
        match self.entries.get(&addr) {
            None => Ok(false),
            Some(entry) if entry.source != source => Err(Refusal::NotOwner(addr)),
            Some(_) => {
                self.remove(addr);
                Ok(true)
            }
        }
    }

    /// The live entries at `now`.
    pub fn peers(&self, now: Instant) -> Vec<SocketAddr> {
        let mut peers: Vec<SocketAddr> = self
            .entries
            .iter()
            .filter(|(_, e)| e.expires > now)
            .map(|(a, _)| *a)
            .collect();
        peers.sort();
        peers
    }

    /// How many entries are live at `now`.
    pub fn live(&self, now: Instant) -> usize {
        self.entries.values().filter(|e| e.expires > now).count()
    }

    /// Up to `max_response` live addresses other than `requester`: a window of the registry
    /// that moves on at every answer, so that over successive answers every peer is listed.
    /// It looks at no more than `max_response` + 1 entries beyond the expired ones it skips.
    fn others(&mut self, requester: SocketAddr, now: Instant) -> Vec<SocketAddr> {
        let total = self.order.len();
        let max = self.limits.max_response;
        let mut others = Vec::with_capacity(max.min(total));
        if total == 0 || max == 0 {
            return others;
        }
        let start = if total > max + 1 {
            self.rotation = (self.rotation + max) % total;
            self.rotation
        } else {
            0
        };
        for i in 0..total {
            let addr = self.order[(start + i) % total];
            if addr == requester {
                continue;
            }
            if self.entries.get(&addr).is_some_and(|e| e.expires > now) {
                others.push(addr);
                if others.len() == max {
                    break;
                }
            }
        }
        others
    }

    fn remove(&mut self, addr: SocketAddr) {
        let Some(entry) = self.entries.remove(&addr) else {
            return;
        };
        self.order.swap_remove(entry.slot);
        if let Some(moved) = self.order.get(entry.slot)
            && let Some(e) = self.entries.get_mut(moved)
        {
            e.slot = entry.slot;
        }
        if let Some(addrs) = self.per_source.get_mut(&entry.source) {
            self.sizes.remove(&(addrs.len(), entry.source));
            addrs.remove(&addr);
            if addrs.is_empty() {
                self.per_source.remove(&entry.source);
            } else {
                self.sizes.insert((addrs.len(), entry.source));
            }
        }
    }

    /// Drops expired entries, at most once a second (it walks the whole registry).
    fn purge(&mut self, now: Instant) {
        if self.next_purge.is_some_and(|t| now < t) {
            return;
        }
        self.next_purge = Some(now + Duration::from_secs(1));
        let expired: Vec<SocketAddr> = self
            .entries
            .iter()
            .filter(|(_, e)| e.expires <= now)
            .map(|(a, _)| *a)
            .collect();
        for addr in expired {
            self.remove(addr);
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

    #[test]
    fn announce_lists_the_others_and_registers() {
        let mut r = Registry::new(limits());
        let now = Instant::now();
        assert_eq!(r.announce(a("127.0.0.1:1"), LO, now).unwrap().peers, vec![]);
        assert_eq!(
            r.announce(a("127.0.0.1:2"), LO, now).unwrap().peers,
            vec![a("127.0.0.1:1")]
        );
        // Re-announcing does not duplicate.
        assert_eq!(
            r.announce(a("127.0.0.1:2"), LO, now).unwrap().peers,
            vec![a("127.0.0.1:1")]
        );
        assert_eq!(r.len(), 2);
    }

    #[test]
    fn entries_expire_and_leave_removes_at_once() {
        let mut r = Registry::new(limits());
        let t0 = Instant::now();
        r.announce(a("127.0.0.1:1"), LO, t0).unwrap();
        r.announce(a("127.0.0.1:2"), LO, t0).unwrap();
        assert_eq!(r.leave(a("127.0.0.1:2"), LO), Ok(true));
        assert_eq!(r.peers(t0), vec![a("127.0.0.1:1")]);
        let later = t0 + Duration::from_secs(31);
        assert!(r.peers(later).is_empty());
        assert_eq!((r.live(t0), r.live(later), r.len()), (1, 0, 1));
        assert!(
            r.announce(a("127.0.0.1:3"), LO, later)
                .unwrap()
                .peers
                .is_empty()
        );
        assert_eq!(r.len(), 1);
    }

    #[test]
    fn bounds_hold() {
        let mut r = Registry::new(limits());
        let now = Instant::now();
        let other: IpAddr = "10.0.0.9".parse().unwrap();
        for p in 1..=3 {
            r.announce(SocketAddr::new(LO, p), LO, now).unwrap();
        }
        assert_eq!(
            r.announce(a("127.0.0.1:4"), LO, now),
            Err(Refusal::SourceFull(LO))
        );
        // Another source still gets in, and answers are capped.
        let answer = r.announce(a("10.0.0.9:1"), other, now).unwrap();
        assert_eq!((answer.peers.len(), answer.evicted), (2, None));
        // The registry is full: the larger source (3 against 1) gives up its stalest entry.
        let later = now + Duration::from_secs(1);
        r.announce(a("127.0.0.1:1"), LO, later).unwrap();
        r.announce(a("127.0.0.1:3"), LO, later).unwrap();
        let answer = r.announce(a("10.0.0.9:2"), other, later).unwrap();
        assert_eq!(answer.evicted, Some(a("127.0.0.1:2")));
        assert_eq!(r.len(), 4);
        // Two each now: nobody holds more than the newcomer plus one.
        assert_eq!(
            r.announce(a("10.0.0.9:3"), other, later),
            Err(Refusal::Full(4))
        );
        assert_eq!(
            r.leave(a("10.0.0.9:1"), LO),
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
            r.announce(SocketAddr::new(LO, p), LO, now).unwrap();
        }
        for p in (2..=20).step_by(3) {
            assert_eq!(r.leave(SocketAddr::new(LO, p), LO), Ok(true));
        }
        let live = r.peers(now);
        assert_eq!(live.len(), 13);
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..20 {
            let answer = r.announce(a("127.0.0.1:1"), LO, now).unwrap().peers;
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
