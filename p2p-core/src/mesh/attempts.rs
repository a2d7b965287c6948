//! The mesh's record of its attempts to join candidates: which are under way, which failed
//! and when each may be tried again, which a source gave up on, and which addresses turned
//! out to be this peer itself. Pure bookkeeping; the clock is passed in.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, TryRecvError};
use log::debug;

use super::MAX_BACKOFF;
use crate::event::PeerInfo;
use crate::{Error, Result};

/// How long an address given up on is remembered once no source lists it any more: a
/// source that lists it again within that time (a DHT node answers with a random sample of
/// a room's entries, so an address comes and goes) does not get more tries.
pub(crate) const GIVE_UP_MEMORY: Duration = Duration::from_secs(30 * 60);

/// Most failed addresses remembered; past it the one that failed longest ago is forgotten
/// (a source inventing addresses cannot make the record grow without bound).
pub(crate) const MAX_REMEMBERED: usize = 4096;

/// How a source's candidates are tried again after a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Retry {
    /// The first wait after a failure; it doubles with each failure in a row, up to
    /// [`MAX_BACKOFF`] times this.
    pub(crate) base: Duration,
    /// After this many failures in a row the source's offers no longer try the address
    /// (`None`: they keep trying, backing off). For a source whose lists keep the
    /// addresses of peers that left.
    pub(crate) give_up_after: Option<u32>,
}

impl Retry {
    /// Retries every `base`, backing off, never giving up (a source whose list is of live
    /// peers: a tracker's, the LAN's).
    pub(crate) fn every(base: Duration) -> Retry {
        Retry {
            base,
            give_up_after: None,
        }
    }

    /// The wait after `failures` failures in a row (at least 1).
    fn wait(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(MAX_BACKOFF.ilog2());
        self.base * (1u32 << doublings)
    }

    fn gives_up(&self, failures: u32) -> bool {
        self.give_up_after.is_some_and(|n| failures >= n)
    }
}

/// Whether a candidate may be tried now, as one source's offer sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Turn {
    /// Try it now.
    Now,
    /// Not now: an attempt is under way, a failure's wait is not over, or it is this peer.
    Wait,
    /// The source's retries are used up, and this is the first offer to find it so.
    GiveUp,
    /// The source's retries were used up before.
    GivenUp,
}

#[derive(Debug, Clone, Copy)]
struct Failed {
    /// Failures in a row.
    failures: u32,
    /// When the last one ended.
    last: Instant,
    /// A source has given up on it (reported once).
    given_up: bool,
}

/// The attempts of one peer's mesh.
#[derive(Debug, Default)]
pub(crate) struct Attempts {
    pending: HashMap<SocketAddr, Receiver<Result<PeerInfo>>>,
    failed: HashMap<SocketAddr, Failed>,
    /// Addresses that led to this peer itself (its own entry in a source's list, under an
    /// address it does not know as its own): never tried again while listed.
    itself: HashSet<SocketAddr>,
}

impl Attempts {
    /// Takes in the attempts that have ended at `now`.
    pub(crate) fn collect(&mut self, now: Instant) {
        let Attempts {
            pending,
            failed,
            itself,
        } = self;
        pending.retain(|addr, rx| match rx.try_recv() {
            Err(TryRecvError::Empty) => true,
            Ok(Ok(_) | Err(Error::AlreadyConnected(_))) => {
                failed.remove(addr);
                false
            }
            Ok(Err(Error::SelfConnection(_))) => {
                failed.remove(addr);
                itself.insert(*addr);
                false
            }
            Ok(Err(Error::Shutdown)) | Err(TryRecvError::Disconnected) => false,
            Ok(Err(e)) => {
                let entry = failed.entry(*addr).or_insert(Failed {
                    failures: 0,
                    last: now,
                    given_up: false,
                });
                entry.failures = entry.failures.saturating_add(1);
                entry.last = now;
                debug!("cannot join {addr} ({e}): {} failures", entry.failures);
                false
            }
        });
        if failed.len() > MAX_REMEMBERED {
            let mut by_age: Vec<(Instant, SocketAddr)> =
                failed.iter().map(|(addr, f)| (f.last, *addr)).collect();
            by_age.sort_unstable();
            let excess = failed.len() - MAX_REMEMBERED;
            for (_, addr) in by_age.into_iter().take(excess) {
                failed.remove(&addr);
            }
        }
    }

    /// Whether `addr` may be tried now under `retry` (the offering source's rule).
    pub(crate) fn turn(&mut self, addr: SocketAddr, now: Instant, retry: Retry) -> Turn {
        if self.pending.contains_key(&addr) || self.itself.contains(&addr) {
            return Turn::Wait;
        }
        let Some(failed) = self.failed.get_mut(&addr) else {
            return Turn::Now;
        };
        if retry.gives_up(failed.failures) {
            if failed.given_up {
                return Turn::GivenUp;
            }
            failed.given_up = true;
            return Turn::GiveUp;
        }
        if failed.last + retry.wait(failed.failures) <= now {
            Turn::Now
        } else {
            Turn::Wait
        }
    }

    /// Records an attempt under way.
    pub(crate) fn start(&mut self, addr: SocketAddr, outcome: Receiver<Result<PeerInfo>>) {
        self.pending.insert(addr, outcome);
    }

    /// `true` if an attempt to `addr` is under way.
    pub(crate) fn is_pending(&self, addr: SocketAddr) -> bool {
        self.pending.contains_key(&addr)
    }

    /// How many attempts are under way.
    pub(crate) fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Forgets what no source lists any more (`listed` is every source's addresses): its
    /// failures, unless a source gave up on it less than [`GIVE_UP_MEMORY`] ago, and that
    /// it was this peer.
    pub(crate) fn keep_only(&mut self, listed: &HashSet<SocketAddr>, now: Instant) {
        self.failed.retain(|addr, f| {
            listed.contains(addr) || (f.given_up && now.duration_since(f.last) < GIVE_UP_MEMORY)
        });
        self.itself.retain(|addr| listed.contains(addr));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn refused(addr: SocketAddr) -> Result<PeerInfo> {
        Err(Error::Refused {
            addr: addr.to_string(),
            reason: "no".into(),
        })
    }

    /// Starts an attempt at `now` that ends with `result`, and takes it in.
    fn attempt(a: &mut Attempts, to: SocketAddr, now: Instant, result: Result<PeerInfo>) {
        let (tx, rx) = crossbeam_channel::bounded(1);
        a.start(to, rx);
        assert_eq!(
            a.turn(to, now, Retry::every(Duration::from_secs(1))),
            Turn::Wait,
            "an attempt under way is not started twice"
        );
        let _ = tx.send(result);
        a.collect(now);
    }

    #[test]
    fn a_failing_candidate_waits_longer_each_time_and_success_forgets_it() {
        let mut a = Attempts::default();
        let retry = Retry::every(Duration::from_secs(1));
        let bad = addr("10.0.0.1:1");
        let mut now = Instant::now();
        let mut waits = Vec::new();
        for _ in 0..9 {
            assert_eq!(a.turn(bad, now, retry), Turn::Now);
            attempt(&mut a, bad, now, refused(bad));
            let failed_at = now;
            while a.turn(bad, now, retry) == Turn::Wait {
                now += Duration::from_secs(1);
            }
            waits.push((now - failed_at).as_secs());
        }
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 64, 64, 64]);
        attempt(
            &mut a,
            bad,
            now,
            Err(Error::AlreadyConnected(bad.to_string())),
        );
        assert!(a.failed.is_empty() && a.turn(bad, now, retry) == Turn::Now);
    }

    #[test]
    fn a_source_that_gives_up_stops_after_its_tries_and_says_so_once() {
        let mut a = Attempts::default();
        let dht = Retry {
            base: Duration::from_secs(2),
            give_up_after: Some(3),
        };
        let gone = addr("10.0.0.1:1");
        let mut now = Instant::now();
        let mut tries = 0;
        let mut turns = Vec::new();
        // An hour of offers every second: three tries, then nothing.
        for _ in 0..3600 {
            match a.turn(gone, now, dht) {
                Turn::Now => {
                    tries += 1;
                    attempt(&mut a, gone, now, refused(gone));
                }
                Turn::Wait => {}
                turn => turns.push(turn),
            }
            now += Duration::from_secs(1);
        }
        assert_eq!(tries, 3);
        assert_eq!(turns[0], Turn::GiveUp);
        assert!(turns[1..].iter().all(|t| *t == Turn::GivenUp));
        // A source that never gives up (a tracker listing it) still tries it, backing off.
        assert_eq!(
            a.turn(gone, now, Retry::every(Duration::from_secs(2))),
            Turn::Now
        );
    }

    #[test]
    fn failures_of_candidates_no_longer_listed_are_forgotten_unless_given_up_lately() {
        let mut a = Attempts::default();
        let dht = Retry {
            base: Duration::from_secs(1),
            give_up_after: Some(1),
        };
        let (gone, kept, given_up) = (addr("10.0.0.1:1"), addr("10.0.0.2:1"), addr("10.0.0.3:1"));
        let now = Instant::now();
        for x in [gone, kept, given_up] {
            attempt(&mut a, x, now, refused(x));
        }
        assert_eq!(a.turn(given_up, now, dht), Turn::GiveUp);
        a.keep_only(&HashSet::from([kept]), now);
        assert_eq!(a.turn(gone, now, dht), Turn::Now, "forgotten");
        assert_eq!(a.turn(kept, now, dht), Turn::GiveUp);
        assert_eq!(
            a.turn(given_up, now, dht),
            Turn::GivenUp,
            "unlisted, but given up on lately: a lookup that lists it again gets no new tries"
        );
        a.keep_only(&HashSet::new(), now + GIVE_UP_MEMORY);
        assert_eq!(a.turn(given_up, now + GIVE_UP_MEMORY, dht), Turn::Now);
    }

    #[test]
    fn an_address_that_is_this_peer_is_not_tried_again_while_listed() {
        let mut a = Attempts::default();
        let retry = Retry::every(Duration::from_secs(1));
        let own = addr("10.0.0.9:7000");
        let now = Instant::now();
        attempt(
            &mut a,
            own,
            now,
            Err(Error::SelfConnection(own.to_string())),
        );
        let later = now + Duration::from_secs(3600);
        assert_eq!(a.turn(own, later, retry), Turn::Wait);
        a.keep_only(&HashSet::from([own]), later);
        assert_eq!(a.turn(own, later, retry), Turn::Wait);
        a.keep_only(&HashSet::new(), later);
        assert_eq!(a.turn(own, later, retry), Turn::Now);
    }

    #[test]
    fn the_record_of_failures_is_bounded() {
        let mut a = Attempts::default();
        let start = Instant::now();
        for i in 0..(MAX_REMEMBERED + 100) {
            let x = SocketAddr::from(([10, 1, (i >> 8) as u8, i as u8], 1));
            let now = start + Duration::from_millis(i as u64);
            attempt(&mut a, x, now, refused(x));
        }
        assert_eq!(a.failed.len(), MAX_REMEMBERED);
        let first = SocketAddr::from(([10, 1, 0, 0], 1));
        assert!(!a.failed.contains_key(&first), "the oldest went first");
    }
}
