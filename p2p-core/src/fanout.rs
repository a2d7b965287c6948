//! The broadcast log: how one sent frame reaches every listener thread.
//!
//! Every listener of a peer receives every frame the peer sends, in the same order, so
//! instead of one queue per listener (a push per listener per message, and a wake-up per
//! listener) there is one append-only log of frames. A send appends the frame once, in
//! constant time whatever the number of listeners; each listener thread keeps its own
//! [`Cursor`] into the log and writes everything between it and the end. One [`Bell`]
//! wakes the listener threads that wait for more, with a single system call.
//!
//! The log is a chain of [`Segment`]s of [`SEGMENT_SLOTS`] slots, each slot filled once
//! (a `OnceLock`, so readers need no lock). A segment lives as long as a cursor or the
//! previous segment points at it: once the slowest listener has passed it, it is freed.
//! How far a listener may fall behind is bounded by the caller (see
//! `server_side::broadcast`), so the log is bounded too.

use std::sync::atomic::{AtomicUsize, Ordering, fence};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::Duration;

use crate::protocol::FrameBytes;
use crate::threads::lock;

/// Frames per segment.
pub(crate) const SEGMENT_SLOTS: usize = 64;

/// A run of the log: slots filled once, in order, by the sender.
#[derive(Debug)]
pub(crate) struct Segment {
    slots: Box<[OnceLock<FrameBytes>]>,
    next: OnceLock<Arc<Segment>>,
}

impl Segment {
    fn new() -> Arc<Segment> {
        Arc::new(Segment {
            slots: (0..SEGMENT_SLOTS).map(|_| OnceLock::new()).collect(),
            next: OnceLock::new(),
        })
    }
}

impl Drop for Segment {
    /// Frees the chain behind this segment without recursing once per segment.
    fn drop(&mut self) {
        let mut next = self.next.take();
        while let Some(segment) = next {
            next = match Arc::into_inner(segment) {
                Some(mut segment) => segment.next.take(),
                None => None,
            };
        }
    }
}

/// The end of the log, where the sender appends. Kept behind the sender's lock.
#[derive(Debug)]
pub(crate) struct Tail {
    segment: Arc<Segment>,
    index: usize,
}

impl Default for Tail {
    fn default() -> Self {
        Tail {
            segment: Segment::new(),
            index: 0,
        }
    }
}

impl Tail {
    /// Appends one frame.
    pub(crate) fn push(&mut self, frame: FrameBytes) {
        if self.index == SEGMENT_SLOTS {
            let next = Segment::new();
            // Only the holder of the tail sets `next`, once per segment.
            let _ = self.segment.next.set(Arc::clone(&next));
            self.segment = next;
            self.index = 0;
        }
        if let Some(slot) = self.segment.slots.get(self.index) {
            let _ = slot.set(frame);
        }
        self.index += 1;
    }

    /// A cursor that will read every frame appended from now on.
    pub(crate) fn cursor(&self) -> Cursor {
        Cursor {
            segment: Arc::clone(&self.segment),
            index: self.index,
        }
    }
}

/// A listener thread's position in the log.
#[derive(Debug)]
pub(crate) struct Cursor {
    segment: Arc<Segment>,
    index: usize,
}

impl Cursor {
    /// The next frame if it has been appended; the cursor then moves past it.
    pub(crate) fn next_frame(&mut self) -> Option<&FrameBytes> {
        if self.index == SEGMENT_SLOTS {
            let next = Arc::clone(self.segment.next.get()?);
            self.segment = next;
            self.index = 0;
        }
        let frame = self.segment.slots.get(self.index)?.get()?;
        self.index += 1;
        Some(frame)
    }

    /// `true` if a frame waits past the cursor.
    pub(crate) fn has_next(&self) -> bool {
        if self.index == SEGMENT_SLOTS {
            return self
                .segment
                .next
                .get()
                .is_some_and(|next| next.slots.first().is_some_and(|s| s.get().is_some()));
        }
        self.segment
            .slots
            .get(self.index)
            .is_some_and(|s| s.get().is_some())
    }
}

/// Wakes every thread waiting for the log to grow (or for a stop), with one system call,
/// and costs a sender nothing but a fence and a load when nobody sleeps or every sleeper
/// has already been woken.
#[derive(Debug, Default)]
pub(crate) struct Bell {
    /// How many times the bell rang with someone to wake.
    rings: Mutex<u64>,
    ringing: Condvar,
    /// Threads asleep that no ring has woken yet.
    sleepers: AtomicUsize,
}

impl Bell {
    /// Wakes every waiting thread. Call after making the change they wait for visible.
    pub(crate) fn ring(&self) {
        // Pairs with the fence in `wait`: either the waiter sees the change, or this sees
        // the waiter.
        fence(Ordering::SeqCst);
        if self.sleepers.load(Ordering::Relaxed) > 0 {
            let woken = {
                let mut rings = lock(&self.rings);
                let woken = self.sleepers.swap(0, Ordering::Relaxed) > 0;
                *rings += u64::from(woken);
                woken
            };
            // Notified after the lock is released: the threads it wakes take the lock on
            // their way out of `wait`, and must not find it held by a ringer that their
            // own wake-up preempted. (A sleeper counted above is already waiting, or
            // about to, on this condition variable, which does not lose a notification
            // that comes after its registration.)
            if woken {
                self.ringing.notify_all();
            }
        }
    }

    /// Waits until rung or `timeout`, unless `ready()` already holds.
    pub(crate) fn wait(&self, timeout: Duration, ready: impl Fn() -> bool) {
        let rings = lock(&self.rings);
        let seen = *rings;
        self.sleepers.fetch_add(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        let rings = if ready() {
            rings
        } else {
            match self.ringing.wait_timeout(rings, timeout) {
                Ok((rings, _)) => rings,
                Err(poisoned) => poisoned.into_inner().0,
            }
        };
        if *rings == seen {
            // Not woken by a ring: still counted as a sleeper.
            self.sleepers.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(i: usize) -> FrameBytes {
        FrameBytes::from(i.to_be_bytes().to_vec())
    }

    #[test]
    fn cursors_read_what_was_appended_after_them_in_order_across_segments() {
        let mut tail = Tail::default();
        tail.push(frame(0));
        let mut early = tail.cursor();
        let n = 3 * SEGMENT_SLOTS + 5;
        for i in 1..n {
            if i == 2 * SEGMENT_SLOTS {
                // A cursor made exactly at a segment boundary.
                let mut late = tail.cursor();
                assert!(!late.has_next());
                tail.push(frame(i));
                assert!(late.has_next());
                assert_eq!(late.next_frame(), Some(&frame(i)));
                continue;
            }
            tail.push(frame(i));
        }
        for i in 1..n {
            assert!(early.has_next());
            assert_eq!(early.next_frame(), Some(&frame(i)), "frame {i}");
        }
        assert!(!early.has_next());
        assert_eq!(early.next_frame(), None);
    }

    #[test]
    fn a_long_chain_is_freed_without_deep_recursion() {
        let mut tail = Tail::default();
        let cursor = tail.cursor();
        let one = frame(1);
        for _ in 0..20_000 * SEGMENT_SLOTS {
            tail.push(FrameBytes::clone(&one));
        }
        drop(tail);
        drop(cursor); // frees 20,000 segments one after another
    }
}
