//! When the engine looks up and announces: the rules, with the clock passed in.
//!
//! - At start: a lookup (the peers already there stream in at once), then an announce,
//!   then a lookup again.
//! - A lookup every `lookup_interval` after the previous one ends.
//! - An announce every `announce_interval` after the previous one succeeded, or one
//!   `lookup_interval` after it failed.
//! - A lookup at once after every successful announce. Why: of two peers that start
//!   together, each announcing before looking up, at least one finds the other. If A's
//!   lookup misses B, it ended before B's announce arrived; then B's lookup, which comes
//!   after B's announce, starts after A's lookup ended, and so after A's announce.

use std::time::{Duration, Instant};

/// What to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Task {
    Lookup,
    Announce,
}

#[derive(Debug)]
pub(crate) struct Schedule {
    lookup_interval: Duration,
    announce_interval: Duration,
    next_lookup: Instant,
    next_announce: Instant,
}

impl Schedule {
    pub(crate) fn new(
        now: Instant,
        lookup_interval: Duration,
        announce_interval: Duration,
    ) -> Self {
        Schedule {
            lookup_interval,
            announce_interval,
            next_lookup: now,
            next_announce: now,
        }
    }

    /// The task due at `now`, if any (a lookup first when both are).
    pub(crate) fn due(&self, now: Instant) -> Option<Task> {
        if self.next_lookup <= now {
            Some(Task::Lookup)
        } else if self.next_announce <= now {
            Some(Task::Announce)
        } else {
            None
        }
    }

    /// How long until the next task.
    pub(crate) fn wait(&self, now: Instant) -> Duration {
        self.next_lookup
            .min(self.next_announce)
            .saturating_duration_since(now)
    }

    /// Records that a lookup ended at `now`.
    pub(crate) fn looked_up(&mut self, now: Instant) {
        self.next_lookup = now + self.lookup_interval;
    }

    /// Records that an announce ended at `now`, reaching at least one node or none.
    pub(crate) fn announced(&mut self, now: Instant, reached: bool) {
        if reached {
            self.next_announce = now + self.announce_interval;
            self.next_lookup = now;
        } else {
            self.next_announce = now + self.lookup_interval;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOOKUP: Duration = Duration::from_secs(60);
    const ANNOUNCE: Duration = Duration::from_secs(900);

    #[test]
    fn start_looks_up_announces_and_looks_up_again() {
        let t0 = Instant::now();
        let mut s = Schedule::new(t0, LOOKUP, ANNOUNCE);
        assert_eq!(s.due(t0), Some(Task::Lookup));
        let t1 = t0 + Duration::from_millis(400);
        s.looked_up(t1);
        assert_eq!(s.due(t1), Some(Task::Announce));
        let t2 = t1 + Duration::from_millis(100);
        s.announced(t2, true);
        assert_eq!(s.due(t2), Some(Task::Lookup));
        let t3 = t2 + Duration::from_millis(400);
        s.looked_up(t3);
        assert_eq!(s.due(t3), None);
        assert_eq!(s.wait(t3), LOOKUP);
        assert_eq!(s.due(t3 + LOOKUP), Some(Task::Lookup));
    }

    #[test]
    fn announces_repeat_on_their_own_interval_and_a_failed_one_is_retried_sooner() {
        let t0 = Instant::now();
        let mut s = Schedule::new(t0, LOOKUP, ANNOUNCE);
        s.looked_up(t0);
        s.announced(t0, true);
        s.looked_up(t0);
        let mut now = t0;
        let mut lookups = 0;
        while s.due(now) != Some(Task::Announce) {
            now += s.wait(now);
            if s.due(now) == Some(Task::Lookup) {
                lookups += 1;
                s.looked_up(now);
            }
        }
        assert_eq!(now, t0 + ANNOUNCE);
        assert_eq!(lookups, 15);
        s.announced(now, false);
        assert_eq!(s.due(now), None, "no lookup forced after a failed announce");
        s.looked_up(now);
        assert_eq!(s.wait(now), LOOKUP);
        assert_eq!(s.due(now + LOOKUP), Some(Task::Lookup));
        s.looked_up(now + LOOKUP);
        assert_eq!(
            s.due(now + LOOKUP),
            Some(Task::Announce),
            "retried one lookup interval on"
        );
    }
}
