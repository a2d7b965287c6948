//! What the user missed while the window was not focused: the unread count (shown in the
//! window title), where the "new messages" divider goes, and when a desktop notification
//! is due. Pure rules with the clock passed in.
//!
//! - Only messages from others count; this user's own messages and notices never do.
//! - While the window is focused nothing is counted and nothing notifies.
//! - The divider goes before the first message that arrived since the window was last
//!   left; focusing the window clears the count but keeps the divider (so that the user
//!   sees where they left off) until they send a message or leave the window again and a
//!   new message comes.
//! - At most one notification per [`NOTIFY_EVERY`] per conversation.

use std::time::{Duration, Instant};

/// Shortest time between two notifications of one conversation.
pub const NOTIFY_EVERY: Duration = Duration::from_secs(5);

/// The unread state of one conversation.
#[derive(Debug, Clone)]
pub struct Attention {
    focused: bool,
    unread: usize,
    divider: Option<usize>,
    last_notified: Option<Instant>,
    every: Duration,
}

impl Default for Attention {
    fn default() -> Self {
        Attention::new(false, NOTIFY_EVERY)
    }
}

impl Attention {
    /// The state of a window that is focused or not, notifying at most once per `every`.
    pub fn new(focused: bool, every: Duration) -> Self {
        Attention {
            focused,
            unread: 0,
            divider: None,
            last_notified: None,
            every,
        }
    }

    /// The window gained or lost the focus. Gaining it clears the count.
    pub fn focus(&mut self, focused: bool) {
        self.focused = focused;
        if focused {
            self.unread = 0;
        }
    }

    /// Whether the window has the focus.
    pub fn focused(&self) -> bool {
        self.focused
    }

    /// A message from someone else arrived as the entry `id` at `now`. Returns whether to
    /// show a notification for it (when notifications are `enabled`).
    pub fn message(&mut self, id: usize, now: Instant, enabled: bool) -> bool {
        if self.focused {
            return false;
        }
        if self.unread == 0 {
            self.divider = Some(id);
        }
        self.unread += 1;
        let due = self
            .last_notified
            .is_none_or(|last| now.saturating_duration_since(last) >= self.every);
        if enabled && due {
            self.last_notified = Some(now);
            return true;
        }
        false
    }

    /// The user came to read (clicked a notification): the count is cleared, as when the
    /// window gains the focus, whether or not the desktop then gives it the focus.
    pub fn read(&mut self) {
        self.unread = 0;
    }

    /// The user sent a message: they have caught up, the divider goes.
    pub fn caught_up(&mut self) {
        self.divider = None;
    }

    /// Messages that arrived while the window was not focused, since it last was.
    pub fn unread(&self) -> usize {
        self.unread
    }

    /// The entry the "new messages" divider goes before.
    pub fn divider(&self) -> Option<usize> {
        self.divider
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_counts_while_focused() {
        let now = Instant::now();
        let mut a = Attention::new(true, NOTIFY_EVERY);
        assert!(!a.message(1, now, true));
        assert_eq!((a.unread(), a.divider()), (0, None));
    }

    #[test]
    fn messages_while_away_are_counted_from_a_divider_and_focus_clears_the_count() {
        let t0 = Instant::now();
        let mut a = Attention::new(true, NOTIFY_EVERY);
        a.focus(false);
        assert!(a.message(10, t0, true), "the first one notifies");
        assert!(
            !a.message(11, t0 + Duration::from_secs(1), true),
            "too soon"
        );
        assert!(!a.message(12, t0 + Duration::from_secs(4), true));
        assert!(
            a.message(13, t0 + Duration::from_secs(5), true),
            "due again"
        );
        assert_eq!(a.unread(), 4);
        assert_eq!(a.divider(), Some(10));

        a.focus(true);
        assert_eq!(a.unread(), 0);
        assert_eq!(a.divider(), Some(10), "kept where the user left off");
        // Away again: the divider moves to the first new message.
        a.focus(false);
        assert_eq!(a.divider(), Some(10), "until a message comes");
        assert!(!a.message(20, t0 + Duration::from_secs(6), true));
        assert_eq!((a.unread(), a.divider()), (1, Some(20)));
        a.caught_up();
        assert_eq!(a.divider(), None);
    }

    #[test]
    fn notifications_off_still_count() {
        let t0 = Instant::now();
        let mut a = Attention::new(false, NOTIFY_EVERY);
        assert!(!a.message(1, t0, false));
        assert_eq!(a.unread(), 1);
        // Turned on later: the next message notifies at once (none was shown).
        assert!(a.message(2, t0 + Duration::from_millis(10), true));
    }
}
