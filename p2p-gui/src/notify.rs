//! Desktop notifications (freedesktop notifications over the session's D-Bus, through
//! `notify-rust`, which speaks D-Bus in Rust with zbus: no system library).
//!
//! Showing one is a D-Bus call that may wait for the notification daemon, so it never
//! runs on the UI thread: [`Notifier::start`] starts the thread `gui-notify`, which shows
//! what [`Notifier::notify`] queues; the queue is small, and a notification that finds it
//! full is dropped and logged (they come at most one per few seconds per conversation, so
//! a full queue means the daemon is stuck, and more would not help). [`Notifier::stop`]
//! joins the thread. Without a session bus or a daemon, each attempt logs why and the app
//! goes on.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};

use crossbeam_channel::{Sender, TrySendError, bounded};

use crate::threads::lock;

/// Notifications that may wait for the thread.
pub const QUEUE: usize = 4;

/// Longest body shown, in characters; a longer message is cut with an ellipsis.
pub const MAX_BODY_CHARS: usize = 200;

/// The name the notifications are shown under.
pub const APP_NAME: &str = "P2P Messenger";

/// One notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// The title: who wrote.
    pub summary: String,
    /// What they wrote, cut to [`MAX_BODY_CHARS`].
    pub body: String,
}

impl Notification {
    /// The notification of a message from `sender`.
    pub fn message(sender: &str, text: &str) -> Self {
        let mut body: String = text.chars().take(MAX_BODY_CHARS).collect();
        if text.chars().nth(MAX_BODY_CHARS).is_some() {
            body.push('…');
        }
        Notification {
            summary: sender.to_owned(),
            body,
        }
    }
}

struct Inner {
    queue: Mutex<Option<Sender<Notification>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// The notification thread. Clones share it.
#[derive(Clone)]
pub struct Notifier {
    inner: Arc<Inner>,
}

impl fmt::Debug for Notifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Notifier")
    }
}

fn show(notification: &Notification) -> Result<(), String> {
    notify_rust::Notification::new()
        .appname(APP_NAME)
        .summary(&notification.summary)
        .body(&notification.body)
        .show()
        .map(drop)
        .map_err(|e| e.to_string())
}

impl Notifier {
    /// Starts the thread that shows notifications.
    pub fn start() -> std::io::Result<Notifier> {
        let (queue, jobs) = bounded::<Notification>(QUEUE);
        let thread = thread::Builder::new()
            .name("gui-notify".into())
            .spawn(move || {
                for notification in jobs {
                    if let Err(e) = show(&notification) {
                        log::warn!("cannot show a desktop notification: {e}");
                    }
                }
            })?;
        Ok(Notifier {
            inner: Arc::new(Inner {
                queue: Mutex::new(Some(queue)),
                thread: Mutex::new(Some(thread)),
            }),
        })
    }

    /// Queues a notification without waiting.
    pub fn notify(&self, notification: Notification) {
        let queue = lock(&self.inner.queue);
        let Some(queue) = queue.as_ref() else {
            return;
        };
        match queue.try_send(notification) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                log::warn!("the notification daemon is not keeping up: a notification dropped");
            }
            Err(TrySendError::Disconnected(_)) => {}
        }
    }

    /// Shows what is queued, then stops and joins the thread.
    pub fn stop(&self) {
        lock(&self.inner.queue).take();
        if let Some(thread) = lock(&self.inner.thread).take()
            && thread.join().is_err()
        {
            log::error!("the notification thread panicked");
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        lock(&self.queue).take();
        if let Some(thread) = lock(&self.thread).take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_message_is_cut_with_an_ellipsis() {
        let n = Notification::message("bob", &"é".repeat(MAX_BODY_CHARS));
        assert_eq!(n.body.chars().count(), MAX_BODY_CHARS);
        let n = Notification::message("bob", &"é".repeat(MAX_BODY_CHARS + 1));
        assert_eq!(n.body.chars().count(), MAX_BODY_CHARS + 1);
        assert!(n.body.ends_with('…'));
        assert_eq!(n.summary, "bob");
    }
}
