//! One lookup's addresses: what the DHT's answers contain, minus duplicates, this peer
//! itself and addresses nobody can connect to, up to a cap. Pure data, no sockets.

use std::collections::{HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

/// The addresses found so far by one lookup.
#[derive(Debug)]
pub(crate) struct Lookup {
    /// At most `cap`.
    seen: HashSet<SocketAddrV4>,
    cap: usize,
    own: Own,
}

/// What this peer's own entry looks like: its announced port on an address that is this
/// host (loopback, the address it is bound to, or the one the DHT sees it at).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Own {
    pub(crate) port: u16,
    pub(crate) bind_ip: Ipv4Addr,
    pub(crate) public_ip: Option<Ipv4Addr>,
}

impl Own {
    fn is(&self, addr: &SocketAddrV4) -> bool {
        let ip = *addr.ip();
        addr.port() == self.port
            && (ip.is_loopback() || ip == self.bind_ip || Some(ip) == self.public_ip)
    }
}

impl Lookup {
    /// A lookup that keeps at most `cap` addresses (at least 1).
    pub(crate) fn new(cap: usize, own: Own) -> Lookup {
        Lookup {
            seen: HashSet::new(),
            cap: cap.max(1),
            own,
        }
    }

    /// Takes one node's answer and returns the addresses it adds: not seen before in this
    /// lookup, not this peer, not port 0 nor an address no peer listens on (unspecified,
    /// broadcast, multicast), and only as many as the cap leaves room for.
    pub(crate) fn add(
        &mut self,
        answer: impl IntoIterator<Item = SocketAddrV4>,
    ) -> Vec<SocketAddr> {
        let mut fresh = Vec::new();
        for addr in answer {
            if self.is_full() {
                break;
            }
            let ip = addr.ip();
            if addr.port() == 0
                || ip.is_unspecified()
                || ip.is_broadcast()
                || ip.is_multicast()
                || self.own.is(&addr)
            {
                continue;
            }
            if self.seen.insert(addr) {
                fresh.push(SocketAddr::V4(addr));
            }
        }
        fresh
    }

    /// `true` once the cap is reached: the rest of the lookup's answers are not read.
    pub(crate) fn is_full(&self) -> bool {
        self.seen.len() >= self.cap
    }

    /// How many distinct addresses the lookup found.
    pub(crate) fn len(&self) -> usize {
        self.seen.len()
    }

    /// The addresses this lookup found.
    pub(crate) fn into_found(self) -> HashSet<SocketAddrV4> {
        self.seen
    }
}

/// The addresses the recent lookups found, to tell whether a lookup found someone new.
/// Bounded: an address is forgotten after [`Known::MEMORY`] lookups that did not find it,
/// so it holds at most `MEMORY` lookups' worth (each at most its cap).
#[derive(Debug, Default)]
pub(crate) struct Known {
    /// Address -> number of the last lookup that found it.
    last_found: HashMap<SocketAddrV4, u64>,
    lookups: u64,
}

impl Known {
    /// How many lookups an address is remembered for.
    pub(crate) const MEMORY: u64 = 16;

    /// Records a lookup's addresses; `true` if one of them was not known.
    pub(crate) fn record(&mut self, found: &HashSet<SocketAddrV4>) -> bool {
        self.lookups += 1;
        let mut new = false;
        for addr in found {
            new |= self.last_found.insert(*addr, self.lookups).is_none();
        }
        let now = self.lookups;
        self.last_found.retain(|_, n| now - *n < Self::MEMORY);
        new
    }

    /// How many addresses are remembered.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.last_found.len()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn a(s: &str) -> SocketAddrV4 {
        s.parse().unwrap()
    }

    fn own() -> Own {
        Own {
            port: 7000,
            bind_ip: Ipv4Addr::UNSPECIFIED,
            public_ip: Some(Ipv4Addr::new(203, 0, 113, 5)),
        }
    }

    #[test]
    fn duplicates_self_and_unusable_addresses_are_left_out() {
        let mut lookup = Lookup::new(100, own());
        let fresh = lookup.add([
            a("10.0.0.2:7000"),
            a("10.0.0.2:7000"),
            a("127.0.0.1:7000"),   // this peer over loopback
            a("203.0.113.5:7000"), // this peer as the DHT sees it
            a("203.0.113.5:7001"), // another peer behind the same address
            a("0.0.0.0:7002"),
            a("10.0.0.3:0"),
            a("255.255.255.255:7003"),
            a("224.0.0.1:7004"),
        ]);
        assert_eq!(
            fresh,
            [
                SocketAddr::from(a("10.0.0.2:7000")),
                SocketAddr::from(a("203.0.113.5:7001"))
            ]
        );
        assert!(
            lookup.add([a("10.0.0.2:7000")]).is_empty(),
            "reported once per lookup"
        );
        assert_eq!(lookup.len(), 2);
    }

    #[test]
    fn a_lookup_keeps_no_more_than_its_cap_whatever_the_dht_sends() {
        let mut lookup = Lookup::new(50, own());
        let flood = (0..10_000u32).map(|i| SocketAddrV4::new(Ipv4Addr::from(0x0a00_0000 + i), 1));
        let fresh = lookup.add(flood);
        assert_eq!(fresh.len(), 50);
        assert!(lookup.is_full());
        assert!(lookup.add([a("10.9.9.9:9")]).is_empty());
        assert_eq!(lookup.len(), 50);
    }

    #[test]
    fn known_addresses_tell_new_ones_and_are_forgotten_after_a_while() {
        let set = |addrs: &[&str]| addrs.iter().map(|s| a(s)).collect::<HashSet<_>>();
        let mut known = Known::default();
        assert!(known.record(&set(&["10.0.0.1:1", "10.0.0.2:1"])));
        assert!(
            !known.record(&set(&["10.0.0.2:1"])),
            "a sample of known ones"
        );
        assert!(known.record(&set(&["10.0.0.3:1"])));
        assert!(!known.record(&set(&["10.0.0.1:1", "10.0.0.3:1"])));
        for _ in 0..Known::MEMORY {
            known.record(&set(&["10.0.0.3:1"]));
        }
        assert_eq!(known.len(), 1, "the others are forgotten");
        assert!(known.record(&set(&["10.0.0.1:1"])), "and new again");
    }
}
