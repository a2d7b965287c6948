//! The conversation as the chat screen holds it, and the part of it that is laid out.
//!
//! Memory stays bounded however long the conversation or however fast a peer floods it:
//! the history keeps at most [`Limits::entries`] entries and [`Limits::bytes`] bytes of
//! text (20,000 and 32 MiB by default, whichever is reached first) and drops the oldest,
//! counting them, so that the screen can say that older messages are gone.
//!
//! Only a window of the history is laid out, so that a long conversation stays responsive:
//! - while the user follows the conversation (at the bottom), the window holds the latest
//!   [`Limits::window`] entries and slides as new ones come (with some slack, so that it
//!   does not move at every message);
//! - while the user reads older entries, the window stays where it is: new entries are
//!   kept and counted ([`History::unseen`]) but not laid out, so what the user reads does
//!   not move and the laid-out window does not grow with the traffic;
//! - "Show earlier" widens the window upwards by [`Limits::window`] entries; reaching the
//!   bottom again, or jumping to the latest, brings the window back to the newest entries.
//!
//! With a history on disk, what is in memory is the end of a longer conversation: the
//! screen loads pages of older lines from the database and [`History::prepend`]s them, as
//! far as the limits allow ([`History::more_saved`] says whether older lines are on disk).
//! Each entry read from or written to the database carries its row id, so that the next
//! page starts just before the oldest one in memory.
//!
//! No clock and no widgets here: the time of an entry is given with it, and every rule is
//! a unit test.

use std::collections::{VecDeque, vec_deque};

/// How much the history keeps and lays out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most entries kept.
    pub entries: usize,
    /// Most bytes of text kept (see [`Entry::bytes`]).
    pub bytes: usize,
    /// Entries laid out while following, and how many "Show earlier" adds.
    pub window: usize,
}

/// Most entries kept by default.
pub const MAX_ENTRIES: usize = 20_000;
/// Most bytes of text kept by default: 32 MiB, that is 512 messages of the largest size
/// (64 KiB) or the 20,000 entries of ordinary chat.
pub const MAX_BYTES: usize = 32 * 1024 * 1024;
/// Entries laid out by default while following.
pub const WINDOW: usize = 300;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            entries: MAX_ENTRIES,
            bytes: MAX_BYTES,
            window: WINDOW,
        }
    }
}

impl Limits {
    /// How far a following window may grow before it slides back to `window` entries.
    fn slack(&self) -> usize {
        self.window / 4
    }
}

/// One line of the conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Local time it happened, `HH:MM` (with the date before it when not today).
    pub time: String,
    /// What it is.
    pub kind: EntryKind,
    /// Its row in the history on disk, once saved.
    pub row: Option<i64>,
}

impl Entry {
    /// An entry not saved (yet).
    pub fn new(time: impl Into<String>, kind: EntryKind) -> Self {
        Entry {
            time: time.into(),
            kind,
            row: None,
        }
    }

    /// The text of the entry.
    pub fn text(&self) -> &str {
        match &self.kind {
            EntryKind::Own { text, .. } | EntryKind::Other { text, .. } => text,
            EntryKind::Notice(text) | EntryKind::Warning(text) => text,
        }
    }
}

/// What a line of the conversation is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// A message this user sent.
    Own {
        /// What it says.
        text: String,
        /// Whether it went out, and to how many.
        delivery: Delivery,
    },
    /// A message from another user.
    Other {
        /// Who sent it.
        from: String,
        /// What it says.
        text: String,
    },
    /// Something that happened (a peer joined or left, a connection failed).
    Notice(String),
    /// Something the user should look at: a known name with another identity key, a peer
    /// with another passphrase, a discovery source that cannot work here.
    Warning(String),
}

/// What became of a message this user sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Waiting to be sent.
    Sending,
    /// Handed to this many listeners; with 0, nobody heard it.
    Sent(usize),
    /// Not sent, for this reason.
    Failed(String),
}

impl Entry {
    /// The bytes of text the entry holds (what it says, who said it, when), which is what
    /// the history's byte limit counts.
    pub fn bytes(&self) -> usize {
        self.time.len()
            + match &self.kind {
                EntryKind::Own { text, .. }
                | EntryKind::Notice(text)
                | EntryKind::Warning(text) => text.len(),
                EntryKind::Other { from, text } => from.len() + text.len(),
            }
    }
}

/// The conversation: the kept entries, oldest first, and the laid-out window.
#[derive(Debug, Clone)]
pub struct History {
    limits: Limits,
    entries: VecDeque<Entry>,
    /// The sum of [`Entry::bytes`] over `entries`.
    bytes: usize,
    /// Entries dropped from the front, in all.
    dropped: usize,
    /// The id of `entries[0]` (ids count from the first entry pushed; entries prepended
    /// from the database take the ids before it, wrapping).
    first_id: usize,
    /// Whether the database holds lines older than the oldest entry.
    more_saved: bool,
    /// The window laid out: `entries[start..end]`.
    start: usize,
    end: usize,
    following: bool,
}

impl Default for History {
    fn default() -> Self {
        History::new(Limits::default())
    }
}

impl History {
    /// An empty conversation, followed.
    pub fn new(limits: Limits) -> Self {
        History {
            limits,
            entries: VecDeque::new(),
            bytes: 0,
            dropped: 0,
            first_id: 0,
            more_saved: false,
            start: 0,
            end: 0,
            following: true,
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Adds an entry at the end, dropping the oldest ones beyond the limits (the newest
    /// entry is always kept). Returns the entry's id: its position counted from the first
    /// entry ever, which stays its name as older entries are dropped.
    pub fn push(&mut self, entry: Entry) -> usize {
        self.bytes += entry.bytes();
        self.entries.push_back(entry);
        while self.entries.len() > self.limits.entries
            || (self.bytes > self.limits.bytes && self.entries.len() > 1)
        {
            let Some(oldest) = self.entries.pop_front() else {
                break;
            };
            self.bytes -= oldest.bytes();
            self.dropped = self.dropped.saturating_add(1);
            self.first_id = self.first_id.wrapping_add(1);
            if oldest.row.is_some() {
                // It is still on disk: a page can bring it back.
                self.more_saved = true;
            }
            // The same entries stay laid out; only a dropped one leaves the window.
            self.start = self.start.saturating_sub(1);
            self.end = self.end.saturating_sub(1);
        }
        if self.following {
            self.catch_up();
        }
        self.first_id.wrapping_add(self.entries.len() - 1)
    }

    /// Puts `page` (older lines from the database, oldest first) before the oldest entry,
    /// as much of it as fits in the limits (its newest lines first); `more` says whether
    /// the database holds lines older than the page. The window widens over them. Returns
    /// how many were added.
    pub fn prepend(&mut self, page: Vec<Entry>, more: bool) -> usize {
        let mut added = 0;
        for entry in page.into_iter().rev() {
            let bytes = entry.bytes();
            if self.entries.len() >= self.limits.entries || self.bytes + bytes > self.limits.bytes {
                // No room: what is left stays on disk.
                self.more_saved = true;
                return added;
            }
            self.bytes += bytes;
            self.entries.push_front(entry);
            self.first_id = self.first_id.wrapping_sub(1);
            self.end += 1;
            added += 1;
        }
        self.more_saved = more;
        added
    }

    /// Whether the database holds lines older than the oldest entry in memory.
    pub fn more_saved(&self) -> bool {
        self.more_saved
    }

    /// The row of the oldest entry that has been saved: the next page starts before it.
    pub fn oldest_row(&self) -> Option<i64> {
        self.entries.iter().find_map(|e| e.row)
    }

    /// Records the row the entry `id` was saved as, unless it has been dropped meanwhile.
    pub fn set_row(&mut self, id: usize, row: i64) {
        if let Some(entry) = self.entries.get_mut(id.wrapping_sub(self.first_id)) {
            entry.row = Some(row);
        }
    }

    /// The entry `id`, while it is kept.
    pub fn get(&self, id: usize) -> Option<&Entry> {
        self.entries.get(id.wrapping_sub(self.first_id))
    }

    /// The id of the first entry laid out (ids of the following ones count on from it).
    pub fn first_shown_id(&self) -> usize {
        self.first_id.wrapping_add(self.start)
    }

    /// Records what became of the message this user sent as entry `id`, unless it has
    /// been dropped meanwhile. The entry's size does not change: the byte count stays true.
    pub fn set_delivery(&mut self, id: usize, delivery: Delivery) {
        let index = id.wrapping_sub(self.first_id);
        if let Some(Entry {
            kind: EntryKind::Own { delivery: d, .. },
            ..
        }) = self.entries.get_mut(index)
        {
            *d = delivery;
        }
    }

    /// Brings the window's end to the newest entry, sliding it back to `window` entries
    /// once it has grown past the slack.
    fn catch_up(&mut self) {
        self.end = self.entries.len();
        if self.end - self.start > self.limits.window + self.limits.slack() {
            self.start = self.end - self.limits.window;
        }
    }

    /// The user is at the bottom: the window takes in what came while they read, and
    /// follows new entries from now on.
    pub fn follow(&mut self) {
        self.following = true;
        self.catch_up();
    }

    /// The user reads older entries: the window stays where it is.
    pub fn stop_following(&mut self) {
        self.following = false;
    }

    /// Widens the window upwards by `window` entries; the user is reading.
    pub fn show_earlier(&mut self) {
        self.start = self.start.saturating_sub(self.limits.window);
        self.following = false;
    }

    /// Back to the newest entries, following.
    pub fn jump_to_latest(&mut self) {
        self.following = true;
        self.end = self.entries.len();
        self.start = self.end.saturating_sub(self.limits.window);
    }

    /// Whether the window follows new entries.
    pub fn following(&self) -> bool {
        self.following
    }

    /// Every kept entry, oldest first.
    pub fn entries(&self) -> &VecDeque<Entry> {
        &self.entries
    }

    /// The bytes of text kept (at most [`Limits::bytes`], or the newest entry alone).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// How many of the oldest entries were dropped to stay within the limits.
    pub fn dropped(&self) -> usize {
        self.dropped
    }

    /// The entries laid out, oldest first.
    pub fn shown(&self) -> vec_deque::Iter<'_, Entry> {
        self.entries.range(self.start..self.end)
    }

    /// How many kept entries are above the window ("Show earlier" brings them back).
    pub fn earlier(&self) -> usize {
        self.start
    }

    /// How many entries came after the window while the user was reading.
    pub fn unseen(&self) -> usize {
        self.entries.len() - self.end
    }

    /// The position of the first laid-out entry counted from the first entry ever, so that
    /// alternate lines can be striped without flipping as the oldest are dropped.
    pub fn first_shown_ever(&self) -> usize {
        self.first_shown_id()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: Limits = Limits {
        entries: 100,
        bytes: 1000,
        window: 20,
    };

    fn note(text: impl Into<String>) -> Entry {
        Entry::new("12:00", EntryKind::Notice(text.into()))
    }

    fn texts<'a>(entries: impl Iterator<Item = &'a Entry>) -> Vec<String> {
        entries
            .map(|e| match &e.kind {
                EntryKind::Notice(t)
                | EntryKind::Warning(t)
                | EntryKind::Own { text: t, .. }
                | EntryKind::Other { text: t, .. } => t.clone(),
            })
            .collect()
    }

    fn numbered(range: std::ops::Range<usize>) -> Vec<String> {
        range.map(|i| format!("{i:03}")).collect()
    }

    /// A history of `SMALL` limits holding entries "000" .. `n`, three bytes each (and
    /// five for the time).
    fn filled(n: usize) -> History {
        let mut h = History::new(SMALL);
        for i in 0..n {
            h.push(note(format!("{i:03}")));
        }
        h
    }

    #[test]
    fn entry_bytes_count_every_string() {
        assert_eq!(note("abc").bytes(), 8);
        let other = Entry::new(
            "09:30",
            EntryKind::Other {
                from: "bob".into(),
                text: "olá".into(),
            },
        );
        assert_eq!(other.bytes(), 5 + 3 + 4);
    }

    #[test]
    fn the_oldest_go_beyond_the_entry_limit() {
        let mut h = History::new(Limits {
            bytes: usize::MAX,
            ..SMALL
        });
        for i in 0..105 {
            h.push(note(format!("{i:03}")));
        }
        assert_eq!(h.entries().len(), 100);
        assert_eq!(h.dropped(), 5);
        assert_eq!(texts(h.entries().iter()), numbered(5..105));
        assert_eq!(h.bytes(), 100 * 8);
    }

    #[test]
    fn the_oldest_go_beyond_the_byte_limit() {
        // 8 bytes an entry: 125 fit in 1000 bytes, but only 100 entries are kept; with
        // 30-byte entries the bytes bind first.
        let mut h = History::new(SMALL);
        for i in 0..50 {
            h.push(note(format!("{i:025}")));
        }
        assert_eq!(h.entries().len(), 33, "33 × 30 = 990 bytes");
        assert_eq!(h.bytes(), 990);
        assert_eq!(h.dropped(), 17);
        // A smaller entry after them frees only what it needs.
        h.push(note("x".repeat(15)));
        assert_eq!(h.bytes(), 32 * 30 + 20);
        assert_eq!(h.dropped(), 18);
        // An entry larger than the whole limit is still kept, alone.
        h.push(note("y".repeat(2000)));
        assert_eq!(h.entries().len(), 1);
        assert_eq!(h.bytes(), 2005);
        assert_eq!(h.dropped(), 51);
    }

    #[test]
    fn the_default_limits_hold_512_of_the_largest_messages() {
        let mut h = History::default();
        let big = "x".repeat(64 * 1024 - 5);
        for _ in 0..600 {
            h.push(note(big.clone()));
        }
        assert_eq!(h.entries().len(), 512);
        assert_eq!(h.bytes(), MAX_BYTES);
        assert_eq!(h.dropped(), 88);
    }

    #[test]
    fn a_following_window_slides_with_the_newest() {
        let h = filled(15);
        assert_eq!(h.shown().len(), 15);
        assert_eq!(h.earlier(), 0);
        let h = filled(25);
        assert_eq!(h.shown().len(), 25, "within the slack of 5");
        let h = filled(26);
        assert_eq!(texts(h.shown()), numbered(6..26));
        assert_eq!((h.earlier(), h.unseen()), (6, 0));
        assert_eq!(h.first_shown_ever(), 6);
        let h = filled(250);
        assert!(h.shown().len() <= 25);
        assert_eq!(h.shown().next_back(), h.entries().back());
        assert_eq!(h.first_shown_ever(), h.dropped() + h.earlier());
    }

    #[test]
    fn a_reader_s_window_stays_put_and_new_entries_are_counted_not_laid_out() {
        let mut h = filled(40);
        h.stop_following();
        let before = texts(h.shown());
        for i in 40..90 {
            h.push(note(format!("{i:03}")));
        }
        assert_eq!(
            texts(h.shown()),
            before,
            "what the user reads does not move"
        );
        assert_eq!(h.unseen(), 50);
        assert!(!h.following());

        // Reaching the bottom again takes them in, back to a window of the newest.
        h.follow();
        assert_eq!(h.unseen(), 0);
        assert_eq!(texts(h.shown()), numbered(70..90));
        assert!(h.following());
    }

    #[test]
    fn drops_under_a_reader_s_window_take_its_oldest_lines_then_all_of_it() {
        let mut h = filled(100);
        h.jump_to_latest();
        h.stop_following();
        assert_eq!(texts(h.shown()), numbered(80..100));
        for i in 100..190 {
            h.push(note(format!("{i:03}")));
        }
        // 90 dropped: the window has lost the ten of its lines that were among them.
        assert_eq!(h.dropped(), 90);
        assert_eq!(texts(h.shown()), numbered(90..100));
        assert_eq!(h.unseen(), 90);
        for i in 190..300 {
            h.push(note(format!("{i:03}")));
        }
        assert_eq!(h.shown().len(), 0);
        assert_eq!(h.unseen(), 100, "everything kept is new to the reader");
        h.jump_to_latest();
        assert_eq!(texts(h.shown()), numbered(280..300));
    }

    #[test]
    fn show_earlier_widens_the_window_upwards_and_stops_following() {
        let mut h = filled(100);
        h.jump_to_latest();
        assert_eq!(h.earlier(), 80);
        h.show_earlier();
        assert_eq!(texts(h.shown()), numbered(60..100));
        assert!(!h.following());
        for _ in 0..5 {
            h.show_earlier();
        }
        assert_eq!(h.earlier(), 0);
        assert_eq!(h.shown().len(), 100);
        // Back at the bottom, the window slides back to its size and follows.
        h.follow();
        assert_eq!(texts(h.shown()), numbered(80..100));
        h.push(note("100"));
        assert_eq!(texts(h.shown()), numbered(80..101));
    }

    #[test]
    fn a_sent_message_is_found_by_its_id_while_it_is_kept() {
        let mut h = History::new(SMALL);
        let own = |text: &str| {
            Entry::new(
                "12:00",
                EntryKind::Own {
                    text: text.into(),
                    delivery: Delivery::Sending,
                },
            )
        };
        let delivery = |h: &History, i: usize| match &h.entries()[i].kind {
            EntryKind::Own { delivery, .. } => delivery.clone(),
            other => panic!("not own: {other:?}"),
        };
        assert_eq!(h.push(note("0")), 0);
        let first = h.push(own("a"));
        assert_eq!(first, 1);
        for i in 2..100 {
            assert_eq!(h.push(note(format!("{i:03}"))), i);
        }
        h.set_delivery(first, Delivery::Sent(0));
        assert_eq!(delivery(&h, 1), Delivery::Sent(0));
        let bytes = h.bytes();
        h.set_delivery(first, Delivery::Failed("a long reason".repeat(10)));
        assert_eq!(h.bytes(), bytes, "the size counted stays the same");
        // Ten more: the first ten entries go, and with them the message.
        let second = h.push(own("b"));
        for i in 101..110 {
            h.push(note(format!("{i:03}")));
        }
        assert_eq!(h.dropped(), 10);
        h.set_delivery(first, Delivery::Sent(3)); // gone: nothing happens
        h.set_delivery(second, Delivery::Sent(3));
        assert_eq!(delivery(&h, second - 10), Delivery::Sent(3));
        // An id that is not a message of this user changes nothing.
        h.set_delivery(50, Delivery::Sent(1));
        h.set_delivery(5000, Delivery::Sent(1));
        assert!(matches!(h.entries()[40].kind, EntryKind::Notice(_)));
    }

    #[test]
    fn jump_to_latest_lays_out_the_newest_window() {
        let mut h = filled(30);
        h.show_earlier();
        for i in 30..60 {
            h.push(note(format!("{i:03}")));
        }
        assert_eq!(h.unseen(), 30);
        h.jump_to_latest();
        assert!(h.following());
        assert_eq!((h.unseen(), h.earlier()), (0, 40));
        assert_eq!(texts(h.shown()), numbered(40..60));
    }

    fn saved(range: std::ops::Range<usize>) -> Vec<Entry> {
        range
            .map(|i| Entry {
                row: Some(i as i64),
                ..note(format!("{i:03}"))
            })
            .collect()
    }

    #[test]
    fn pages_from_disk_go_before_the_oldest_and_ids_stay_names() {
        let mut h = History::new(SMALL);
        let live = h.push(Entry {
            row: Some(50),
            ..note("050")
        });
        h.prepend(saved(30..50), true);
        assert_eq!(h.entries().len(), 21);
        assert!(h.more_saved());
        assert_eq!(h.oldest_row(), Some(30));
        assert_eq!(
            texts(h.shown()),
            numbered(30..51),
            "the window widens over them"
        );
        // The live entry keeps its id.
        assert_eq!(h.get(live).map(Entry::text), Some("050"));
        h.set_row(live, 77);
        assert_eq!(h.get(live).and_then(|e| e.row), Some(77));
        h.prepend(saved(0..30), false);
        assert!(!h.more_saved());
        assert_eq!(texts(h.entries().iter()), numbered(0..51));
        assert_eq!(h.get(live).map(Entry::text), Some("050"));
        assert_eq!(h.first_shown_ever(), h.first_shown_id());
    }

    #[test]
    fn a_page_fills_only_what_the_limits_leave() {
        let mut h = History::new(SMALL);
        for i in 0..95 {
            h.push(note(format!("{i:03}")));
        }
        assert_eq!(h.prepend(saved(0..20), false), 5, "100 entries at most");
        assert_eq!(h.entries().len(), 100);
        assert!(h.more_saved(), "the rest stays on disk");
        assert_eq!(h.entries()[0].row, Some(15));
        // Dropping a saved entry from memory leaves it on disk, to page back.
        let mut h = History::new(SMALL);
        h.push(Entry {
            row: Some(1),
            ..note("first")
        });
        for i in 0..100 {
            h.push(note(format!("{i:03}")));
        }
        assert!(h.more_saved());
    }
}
