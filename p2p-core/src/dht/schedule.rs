//! When the engine looks up and announces: the rules, with the clock passed in.
//!
//! - At start: a lookup (the peers already there stream in at once), then an announce,
//!   then a lookup again.
//! - A lookup every `lookup_interval` after the previous one ends; but sooner in two cases.
//! - After a lookup that found nobody: [`QUICK_INTERVAL`] after the first such lookup in a
//!   row, doubling with each next one, up to `lookup_interval`. Why: a peer that does not
//!   announce (behind a NAT router nobody can connect through) is greeted by nobody, so it
//!   finds a peer that announces after its own start only by looking again; and of peers
//!   that start together, the first lookups often run before anybody's announce has
//!   landed. A peer alone in its room costs a few more lookups in its first minute, then
//!   one per interval.
//! - [`QUICK_INTERVAL`] after a lookup that found an address the recent lookups had not,
//!   and so on until
//!   [`DRY_LOOKUPS`] in a row find nothing new, at most [`QUICK_LOOKUPS`] in a row. Why: a
//!   DHT node answers with a random sample of at most 10 of the peers it
//!   holds, so in a room larger than that one lookup sees part of it; looking again while
//!   lookups keep finding new peers completes the picture in seconds, not minutes, and
//!   the cap keeps a DHT that keeps inventing addresses from making it look up forever.
//! - An announce every `announce_interval` after the previous one succeeded, or one
//!   `lookup_interval` after it failed.
//! - A lookup at once after every successful announce. Why: of two peers that start
//!   together, each announcing before looking up, at least one finds the other. If A's
//!   lookup misses B, it ended before B's announce arrived; then B's lookup, which comes
//!   after B's announce, starts after A's lookup ended, and so after A's announce.

use std::time::{Duration, Instant};

/// The wait after a lookup that found new addresses (or the lookup interval if shorter).
pub(crate) const QUICK_INTERVAL: Duration = Duration::from_secs(2);
/// Most quick lookups in a row.
pub(crate) const QUICK_LOOKUPS: u32 = 15;
/// Lookups in a row that find nothing new before a quick series ends (one is not enough:
/// once most of a room is known, a sample of 10 often holds nothing new by chance).
pub(crate) const DRY_LOOKUPS: u32 = 2;

/// What a lookup found, as the schedule needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Found {
    /// No address at all.
    Nobody,
    /// Addresses, all of which the recent lookups had found.
    NothingNew,
    /// At least one address the recent lookups had not found.
    New,
}

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
    quick_in_a_row: u32,
    dry_in_a_row: u32,
    /// Lookups in a row that found nobody.
    empty_in_a_row: u32,
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
            quick_in_a_row: 0,
            dry_in_a_row: 0,
            empty_in_a_row: 0,
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

    /// Records that a lookup ended at `now`, and what it found.
    pub(crate) fn looked_up(&mut self, now: Instant, found: Found) {
        if found == Found::Nobody {
            // Backing off: 2 s, 4 s, 8 s... up to the interval (the shift saturates long
            // before any exponent could overflow).
            self.empty_in_a_row = self.empty_in_a_row.saturating_add(1);
            self.quick_in_a_row = 0;
            self.dry_in_a_row = 0;
            let doublings = (self.empty_in_a_row - 1).min(16);
            let wait = QUICK_INTERVAL.saturating_mul(1 << doublings);
            self.next_lookup = now + wait.min(self.lookup_interval);
            return;
        }
        self.empty_in_a_row = 0;
        let found_new = found == Found::New;
        self.dry_in_a_row = if found_new { 0 } else { self.dry_in_a_row + 1 };
        let in_series = self.quick_in_a_row > 0;
        let quick = (found_new || (in_series && self.dry_in_a_row < DRY_LOOKUPS))
            && self.quick_in_a_row < QUICK_LOOKUPS;
        self.quick_in_a_row = if quick { self.quick_in_a_row + 1 } else { 0 };
        let wait = if quick {
            QUICK_INTERVAL.min(self.lookup_interval)
        } else {
            self.lookup_interval
        };
        self.next_lookup = now + wait;
    }

    /// Records that an announce due at `now` was left out (the embedder has nothing to
    /// announce for now): it is considered again one lookup interval later, and no lookup
    /// follows it.
    pub(crate) fn skipped_announce(&mut self, now: Instant) {
        self.next_announce = now + self.lookup_interval;
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
        s.looked_up(t1, Found::NothingNew);
        assert_eq!(s.due(t1), Some(Task::Announce));
        let t2 = t1 + Duration::from_millis(100);
        s.announced(t2, true);
        assert_eq!(s.due(t2), Some(Task::Lookup));
        let t3 = t2 + Duration::from_millis(400);
        s.looked_up(t3, Found::NothingNew);
        assert_eq!(s.due(t3), None);
        assert_eq!(s.wait(t3), LOOKUP);
        assert_eq!(s.due(t3 + LOOKUP), Some(Task::Lookup));
    }

    #[test]
    fn announces_repeat_on_their_own_interval_and_a_failed_one_is_retried_sooner() {
        let t0 = Instant::now();
        let mut s = Schedule::new(t0, LOOKUP, ANNOUNCE);
        s.looked_up(t0, Found::NothingNew);
        s.announced(t0, true);
        s.looked_up(t0, Found::NothingNew);
        let mut now = t0;
        let mut lookups = 0;
        while s.due(now) != Some(Task::Announce) {
            now += s.wait(now);
            if s.due(now) == Some(Task::Lookup) {
                lookups += 1;
                s.looked_up(now, Found::NothingNew);
            }
        }
        assert_eq!(now, t0 + ANNOUNCE);
        assert_eq!(lookups, 15);
        s.announced(now, false);
        assert_eq!(s.due(now), None, "no lookup forced after a failed announce");
        s.looked_up(now, Found::NothingNew);
        assert_eq!(s.wait(now), LOOKUP);
        assert_eq!(s.due(now + LOOKUP), Some(Task::Lookup));
        s.looked_up(now + LOOKUP, Found::NothingNew);
        assert_eq!(
            s.due(now + LOOKUP),
            Some(Task::Announce),
            "retried one lookup interval on"
        );
    }

    #[test]
    fn an_announce_left_out_is_considered_again_a_lookup_interval_later() {
        let t0 = Instant::now();
        let mut s = Schedule::new(t0, LOOKUP, ANNOUNCE);
        s.looked_up(t0, Found::NothingNew);
        assert_eq!(s.due(t0), Some(Task::Announce));
        s.skipped_announce(t0);
        assert_eq!(s.due(t0), None, "no lookup forced");
        assert_eq!(s.wait(t0), LOOKUP);
        s.looked_up(t0 + LOOKUP, Found::NothingNew);
        assert_eq!(s.due(t0 + LOOKUP), Some(Task::Announce));
    }

    /// The waits between lookups from `now` on, each lookup finding what `found` says.
    fn waits(s: &mut Schedule, mut now: Instant, found: &[Found]) -> Vec<u64> {
        let mut waits = Vec::new();
        for f in found {
            assert_eq!(s.due(now), Some(Task::Lookup));
            s.looked_up(now, *f);
            let wait = s.wait(now);
            waits.push(wait.as_secs());
            now += wait;
        }
        waits
    }

    #[test]
    fn a_peer_that_finds_nobody_looks_again_soon_backing_off_to_the_interval() {
        // Started before anybody announced: its start lookups find nobody.
        let t0 = Instant::now();
        let mut s = Schedule::new(t0, LOOKUP, ANNOUNCE);
        s.looked_up(t0, Found::Nobody);
        assert_eq!(s.due(t0), Some(Task::Announce));
        s.announced(t0, true);
        assert_eq!(
            waits(&mut s, t0, &[Found::Nobody; 7]),
            [4, 8, 16, 32, 60, 60, 60],
            "the lookup after the announce was the second to find nobody"
        );
        // A peer that announces nothing (behind NAT): lookups 2, 6, 14... s after its start.
        let mut silent = Schedule::new(t0, LOOKUP, ANNOUNCE);
        silent.looked_up(t0, Found::Nobody);
        assert_eq!(silent.due(t0), Some(Task::Announce));
        silent.skipped_announce(t0);
        assert_eq!(silent.wait(t0), QUICK_INTERVAL, "not the lookup interval");
        assert_eq!(
            waits(&mut silent, t0 + QUICK_INTERVAL, &[Found::Nobody; 3]),
            [4, 8, 16]
        );
        // Never slower than a short interval, and no overflow after a long time alone.
        let mut short = Schedule::new(t0, Duration::from_secs(5), ANNOUNCE);
        short.announced(t0, true);
        assert_eq!(waits(&mut short, t0, &[Found::Nobody; 4]), [2, 4, 5, 5]);
        let mut long = Schedule::new(t0, LOOKUP, ANNOUNCE);
        long.announced(t0, true);
        for _ in 0..100 {
            long.looked_up(t0, Found::Nobody);
        }
        assert_eq!(long.wait(t0), LOOKUP);
    }

    #[test]
    fn finding_somebody_ends_the_back_off_and_a_room_that_empties_starts_it_again() {
        let t0 = Instant::now();
        let mut s = Schedule::new(t0, LOOKUP, ANNOUNCE);
        s.announced(t0, true);
        assert_eq!(
            waits(&mut s, t0, &[Found::Nobody, Found::Nobody, Found::Nobody]),
            [2, 4, 8]
        );
        assert_eq!(
            waits(
                &mut s,
                t0 + Duration::from_secs(14),
                &[
                    Found::New,
                    Found::NothingNew,
                    Found::NothingNew,
                    Found::NothingNew
                ]
            ),
            [2, 2, 60, 60],
            "a quick series, then the interval"
        );
        let later = t0 + Duration::from_secs(3600);
        s.announced(later, true);
        assert_eq!(
            waits(&mut s, later, &[Found::Nobody, Found::Nobody, Found::New]),
            [2, 4, 2],
            "everybody's entry expired: looking soon again, and a new peer starts a series"
        );
    }

    #[test]
    fn lookups_that_find_new_peers_are_repeated_quickly_a_bounded_number_of_times() {
        let t0 = Instant::now();
        let mut s = Schedule::new(t0, LOOKUP, ANNOUNCE);
        s.announced(t0, true);
        let mut now = t0;
        let mut quick = 0;
        loop {
            assert_eq!(s.due(now), Some(Task::Lookup));
            s.looked_up(now, Found::New);
            if s.wait(now) != QUICK_INTERVAL {
                break;
            }
            quick += 1;
            now += QUICK_INTERVAL;
        }
        assert_eq!(quick, QUICK_LOOKUPS, "a DHT inventing addresses forever");
        assert_eq!(s.wait(now), LOOKUP);
        now += LOOKUP;
        s.looked_up(now, Found::New);
        assert_eq!(
            s.wait(now),
            QUICK_INTERVAL,
            "quick again after a normal one"
        );
        s.looked_up(now, Found::NothingNew);
        assert_eq!(
            s.wait(now),
            QUICK_INTERVAL,
            "one lookup with nothing new goes on"
        );
        s.looked_up(now, Found::NothingNew);
        assert_eq!(s.wait(now), LOOKUP, "two: the normal interval");
        s.looked_up(now, Found::NothingNew);
        assert_eq!(
            s.wait(now),
            LOOKUP,
            "a normal lookup with nothing new starts no series"
        );
        let mut short = Schedule::new(t0, Duration::from_millis(500), ANNOUNCE);
        short.announced(t0, true);
        short.looked_up(t0, Found::New);
        assert_eq!(
            short.wait(t0),
            Duration::from_millis(500),
            "never slower than the interval"
        );
    }
}
