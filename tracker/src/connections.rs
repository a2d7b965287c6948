//! The open connections: who holds how many, and by when each must be done.
//!
//! Pure data, no sockets or clocks of its own (the caller passes `now`), so every rule is a
//! unit test. The value stored for each connection is the caller's (the event loop keeps
//! the socket and its buffers there); the key is what the event loop registers the socket
//! under.
//!
//! Three rules keep one host from taking the tracker's connections:
//! - each source IP address holds at most `max_per_source` connections at once; past it
//!   its new connections are refused;
//! - every connection has a deadline (`timeout` after it was admitted);
//! - once `max_open` connections are open, a newcomer from a source holding fewer
//!   connections than the busiest source takes the place of that source's oldest one
//!   (the rule the registry follows for its entries), otherwise it is refused. So hosts
//!   flooding together can at most bring every source down to an equal share, and a host
//!   with no connection open always gets one.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use slab::Slab;

/// Limits of a [`Connections`] table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ConnectionLimits {
    /// Most connections open at once.
    pub max_open: usize,
    /// Most connections open at once from one source address.
    pub max_per_source: usize,
    /// Time a connection has, from its admission, before it is closed.
    pub timeout: Duration,
}

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Crowded {
    /// Its source holds `max_per_source` connections already.
    Source,
    /// `max_open` connections are open and no source holds two more than this one.
    Full,
}

/// The outcome of [`Connections::admit`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Admission<T> {
    /// Stored under `key`; `evicted` is the connection that gave its place, if the table
    /// was full.
    Admitted {
        /// Where the connection is stored.
        key: usize,
        /// The oldest connection of the busiest source, removed to make room.
        evicted: Option<(usize, T)>,
    },
    /// Not stored: the value is handed back to be closed.
    Refused(T, Crowded),
}

#[derive(Debug)]
struct Slot<T> {
    value: T,
    source: IpAddr,
    deadline: Instant,
}

/// The table of open connections.
#[derive(Debug)]
pub(crate) struct Connections<T> {
    limits: ConnectionLimits,
    slots: Slab<Slot<T>>,
    /// Every connection, by deadline (then key): the next to expire is the first.
    deadlines: BTreeSet<(Instant, usize)>,
    /// Each source's connections, by deadline: its oldest is the first.
    by_source: HashMap<IpAddr, BTreeSet<(Instant, usize)>>,
    /// (connections held, source) of every source, so the busiest is found at once.
    sizes: BTreeSet<(usize, IpAddr)>,
}

impl<T> Connections<T> {
    /// An empty table.
    pub(crate) fn new(limits: ConnectionLimits) -> Self {
        Connections {
            limits,
            slots: Slab::new(),
            deadlines: BTreeSet::new(),
            by_source: HashMap::new(),
            sizes: BTreeSet::new(),
        }
    }

    /// Connections open now.
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    /// Connections open now from `source`.
    pub(crate) fn held_by(&self, source: IpAddr) -> usize {
        self.by_source.get(&source).map_or(0, BTreeSet::len)
    }

    /// Stores a connection from `source` accepted at `now`, under the rules of the module
    /// docs.
    pub(crate) fn admit(&mut self, value: T, source: IpAddr, now: Instant) -> Admission<T> {
        let mine = self.held_by(source);
        if mine >= self.limits.max_per_source {
            return Admission::Refused(value, Crowded::Source);
        }
        let mut evicted = None;
        if self.slots.len() >= self.limits.max_open {
            let Some(victim) = self.oldest_of_busiest_source(mine) else {
                return Admission::Refused(value, Crowded::Full);
            };
            evicted = self.remove(victim).map(|v| (victim, v));
        }
        let deadline = now + self.limits.timeout;
        let key = self.slots.insert(Slot {
            value,
            source,
            deadline,
        });
        self.deadlines.insert((deadline, key));
        self.sizes.remove(&(mine, source));
        self.sizes.insert((mine + 1, source));
        self.by_source
            .entry(source)
            .or_default()
            .insert((deadline, key));
        Admission::Admitted { key, evicted }
    }

    /// The connection to make room with for a source holding `mine`: the oldest of the
    /// busiest source's, if that source holds at least two more (so that it is left no
    /// smaller than the newcomer).
    fn oldest_of_busiest_source(&self, mine: usize) -> Option<usize> {
        let &(busiest, source) = self.sizes.last()?;
        if busiest < mine + 2 {
            return None;
        }
        self.by_source.get(&source)?.first().map(|&(_, key)| key)
    }

    /// The connection stored under `key`.
    pub(crate) fn get_mut(&mut self, key: usize) -> Option<&mut T> {
        self.slots.get_mut(key).map(|slot| &mut slot.value)
    }

    /// Removes the connection stored under `key` and hands it back.
    pub(crate) fn remove(&mut self, key: usize) -> Option<T> {
        let slot = self.slots.try_remove(key)?;
        self.deadlines.remove(&(slot.deadline, key));
        if let Some(held) = self.by_source.get_mut(&slot.source) {
            self.sizes.remove(&(held.len(), slot.source));
            held.remove(&(slot.deadline, key));
            if held.is_empty() {
                self.by_source.remove(&slot.source);
            } else {
                self.sizes.insert((held.len(), slot.source));
            }
        }
        Some(slot.value)
    }

    /// Moves connection `key`'s deadline to `deadline` (a session that made a valid
    /// announce gets the TTL from then on).
    pub(crate) fn renew(&mut self, key: usize, deadline: Instant) {
        let Some(slot) = self.slots.get_mut(key) else {
            return;
        };
        let old = std::mem::replace(&mut slot.deadline, deadline);
        self.deadlines.remove(&(old, key));
        self.deadlines.insert((deadline, key));
        if let Some(held) = self.by_source.get_mut(&slot.source) {
            held.remove(&(old, key));
            held.insert((deadline, key));
        }
    }

    /// The earliest deadline of the open connections.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.first().map(|&(deadline, _)| deadline)
    }

    /// Removes and hands back one connection whose deadline has come by `now`, if any.
    pub(crate) fn pop_expired(&mut self, now: Instant) -> Option<(usize, T)> {
        let &(deadline, key) = self.deadlines.first()?;
        if deadline > now {
            return None;
        }
        self.remove(key).map(|value| (key, value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(max_open: usize, max_per_source: usize) -> Connections<&'static str> {
        Connections::new(ConnectionLimits {
            max_open,
            max_per_source,
            timeout: Duration::from_secs(2),
        })
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn admitted<T: std::fmt::Debug>(a: Admission<T>) -> (usize, Option<(usize, T)>) {
        match a {
            Admission::Admitted { key, evicted } => (key, evicted),
            other => panic!("refused: {other:?}"),
        }
    }

    #[test]
    fn a_source_holds_at_most_its_cap_and_gets_room_back_as_its_connections_close() {
        let mut t = table(100, 2);
        let now = Instant::now();
        let (a, _) = admitted(t.admit("a", ip("10.0.0.1"), now));
        admitted(t.admit("b", ip("10.0.0.1"), now));
        assert_eq!(
            t.admit("c", ip("10.0.0.1"), now),
            Admission::Refused("c", Crowded::Source)
        );
        // Another source is not affected.
        admitted(t.admit("d", ip("10.0.0.2"), now));
        assert_eq!(t.remove(a), Some("a"));
        admitted(t.admit("e", ip("10.0.0.1"), now));
        assert_eq!((t.len(), t.held_by(ip("10.0.0.1"))), (3, 2));
    }

    #[test]
    fn connections_expire_in_deadline_order() {
        let mut t = table(100, 100);
        let t0 = Instant::now();
        let (first, _) = admitted(t.admit("first", ip("10.0.0.1"), t0));
        let t1 = t0 + Duration::from_millis(500);
        admitted(t.admit("second", ip("10.0.0.2"), t1));
        assert_eq!(t.next_deadline(), Some(t0 + Duration::from_secs(2)));
        assert_eq!(t.pop_expired(t0 + Duration::from_millis(1999)), None);
        assert_eq!(
            t.pop_expired(t0 + Duration::from_secs(2)),
            Some((first, "first"))
        );
        assert_eq!(t.pop_expired(t0 + Duration::from_secs(2)), None);
        assert_eq!(t.next_deadline(), Some(t1 + Duration::from_secs(2)));
        assert!(t.pop_expired(t1 + Duration::from_secs(3)).is_some());
        assert_eq!((t.len(), t.next_deadline()), (0, None));
        assert_eq!(t.held_by(ip("10.0.0.2")), 0);
    }

    #[test]
    fn a_renewed_connection_expires_at_its_new_deadline() {
        let mut t = table(100, 100);
        let t0 = Instant::now();
        let (key, _) = admitted(t.admit("session", ip("10.0.0.1"), t0));
        t.renew(key, t0 + Duration::from_secs(60));
        assert_eq!(t.pop_expired(t0 + Duration::from_secs(59)), None);
        assert_eq!(t.next_deadline(), Some(t0 + Duration::from_secs(60)));
        assert_eq!(
            t.pop_expired(t0 + Duration::from_secs(60)),
            Some((key, "session"))
        );
        assert_eq!(t.held_by(ip("10.0.0.1")), 0);
    }

    #[test]
    fn a_full_table_takes_a_newcomers_place_from_the_busiest_sources_oldest() {
        let mut t = table(4, 10);
        let now = Instant::now();
        let later = now + Duration::from_millis(1);
        let (oldest, _) = admitted(t.admit("m1", ip("10.0.0.66"), now));
        for name in ["m2", "m3"] {
            admitted(t.admit(name, ip("10.0.0.66"), later));
        }
        admitted(t.admit("h1", ip("10.0.0.1"), now));
        // Full: the honest source holds 1, the flooder 3: the flooder's oldest goes.
        let (_, evicted) = admitted(t.admit("h2", ip("10.0.0.1"), later));
        assert_eq!(evicted, Some((oldest, "m1")));
        assert_eq!(t.held_by(ip("10.0.0.66")), 2);
        // Two each: nobody holds two more than a newcomer from either source.
        assert_eq!(
            t.admit("m4", ip("10.0.0.66"), later),
            Admission::Refused("m4", Crowded::Full)
        );
        assert_eq!(
            t.admit("h3", ip("10.0.0.1"), later),
            Admission::Refused("h3", Crowded::Full)
        );
        // A source with none gets in.
        let (_, evicted) = admitted(t.admit("n1", ip("10.0.0.9"), later));
        assert!(evicted.is_some());
        assert_eq!(t.len(), 4);
    }
}
