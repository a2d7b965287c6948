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
//!
//! A click on a notification (its default action, which the freedesktop daemon sends as
//! the `ActionInvoked` signal) comes back as the conversation it was about, through
//! [`clicks`], a subscription: the app then raises its window and clears that
//! conversation's unread count. The thread waits for the clicks of the latest
//! [`PENDING`] notifications (notify-rust's `wait_for_action_async`, one future each,
//! polled together with the queue on the same thread); an older one's click is ignored.

use std::collections::VecDeque;
use std::fmt;
use std::future::poll_fn;
use std::hash::{Hash, Hasher};
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::thread::{self, JoinHandle};

use iced::Subscription;
use iced::futures::channel::mpsc;
use iced::futures::future::BoxFuture;
use iced::futures::stream;
use iced::futures::{FutureExt, Stream, StreamExt};
use notify_rust::ActionResponse;

use crate::threads::lock;

/// Notifications that may wait for the thread.
pub const QUEUE: usize = 4;

/// Longest body shown, in characters; a longer message is cut with an ellipsis.
pub const MAX_BODY_CHARS: usize = 200;

/// The name the notifications are shown under.
pub const APP_NAME: &str = "P2P Messenger";

/// Notifications whose click is still waited for; past it the oldest is no longer.
pub const PENDING: usize = 8;

/// Clicks that may wait for the window.
const CLICKS: usize = 4;

/// The action a click on the notification's body invokes (freedesktop's default action).
const DEFAULT_ACTION: &str = "default";

/// One notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// The title: who wrote.
    pub summary: String,
    /// What they wrote, cut to [`MAX_BODY_CHARS`].
    pub body: String,
    /// The conversation it is about ([`crate::network::Session::conversation`]), which a
    /// click on it brings back.
    pub conversation: String,
}

impl Notification {
    /// The notification of a message from `sender` in `conversation`.
    pub fn message(conversation: &str, sender: &str, text: &str) -> Self {
        let mut body: String = text.chars().take(MAX_BODY_CHARS).collect();
        if text.chars().nth(MAX_BODY_CHARS).is_some() {
            body.push('…');
        }
        Notification {
            summary: sender.to_owned(),
            body,
            conversation: conversation.to_owned(),
        }
    }
}

struct Inner {
    queue: Mutex<Option<mpsc::Sender<Notification>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    clicks: Clicks,
}

/// The window's end of the clicks: what [`clicks`] reads. The subscription takes the
/// receiver once.
#[derive(Clone)]
pub struct Clicks {
    receiver: Arc<Mutex<Option<mpsc::Receiver<String>>>>,
}

impl Hash for Clicks {
    /// There is one notifier per process: every handle is the same subscription.
    fn hash<H: Hasher>(&self, state: &mut H) {
        "notification clicks".hash(state);
    }
}

/// The conversations whose notification was clicked, as a subscription.
pub fn clicks(notifier: &Notifier) -> Subscription<String> {
    Subscription::run_with(notifier.inner.clicks.clone(), click_stream)
}

fn click_stream(clicks: &Clicks) -> impl Stream<Item = String> + use<> {
    match lock(&clicks.receiver).take() {
        Some(receiver) => receiver.left_stream(),
        None => stream::empty().right_stream(),
    }
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

/// Shows `notification`; the future it returns ends with its conversation if it is
/// clicked, or `None` once it is closed.
async fn show(notification: Notification) -> Result<BoxFuture<'static, Option<String>>, String> {
    let handle = notify_rust::Notification::new()
        .appname(APP_NAME)
        .summary(&notification.summary)
        .body(&notification.body)
        .action(DEFAULT_ACTION, "Open")
        .show_async()
        .await
        .map_err(|e| e.to_string())?;
    let conversation = notification.conversation;
    Ok(async move {
        let mut clicked = false;
        // notify-rust panics if the bus fails while it waits: that one wait is given up.
        let waited = AssertUnwindSafe(handle.wait_for_action_async(|action| {
            clicked = matches!(action, ActionResponse::Custom(a) if *a == DEFAULT_ACTION);
        }))
        .catch_unwind()
        .await;
        if waited.is_err() {
            log::warn!("lost the notification daemon while waiting for a click");
        }
        clicked.then_some(conversation)
    }
    .boxed())
}

/// What the thread does next.
enum Step {
    Show(Notification),
    Clicked(Option<String>),
    Stop,
}

/// The thread's life: shows what is queued and passes clicks on, until the queue closes.
async fn serve(mut jobs: mpsc::Receiver<Notification>, mut clicks: mpsc::Sender<String>) {
    // Oldest first.
    let mut pending: VecDeque<BoxFuture<'static, Option<String>>> = VecDeque::new();
    loop {
        let step = poll_fn(|cx| {
            if let Poll::Ready(job) = jobs.poll_next_unpin(cx) {
                return Poll::Ready(job.map_or(Step::Stop, Step::Show));
            }
            for i in 0..pending.len() {
                if let Poll::Ready(clicked) = pending[i].poll_unpin(cx) {
                    pending.remove(i);
                    return Poll::Ready(Step::Clicked(clicked));
                }
            }
            Poll::Pending
        })
        .await;
        match step {
            Step::Stop => return,
            Step::Show(notification) => match show(notification).await {
                Ok(click) => {
                    if pending.len() >= PENDING {
                        pending.pop_front();
                    }
                    pending.push_back(click);
                }
                Err(e) => log::warn!("cannot show a desktop notification: {e}"),
            },
            Step::Clicked(Some(conversation)) => {
                if clicks.try_send(conversation).is_err() {
                    log::debug!("a notification click not passed on: the window is behind");
                }
            }
            Step::Clicked(None) => {}
        }
    }
}

impl Notifier {
    /// Starts the thread that shows notifications.
    pub fn start() -> std::io::Result<Notifier> {
        let (queue, jobs) = mpsc::channel::<Notification>(QUEUE);
        let (clicked, clicks) = mpsc::channel::<String>(CLICKS);
        let thread = thread::Builder::new()
            .name("gui-notify".into())
            .spawn(move || iced::futures::executor::block_on(serve(jobs, clicked)))?;
        Ok(Notifier {
            inner: Arc::new(Inner {
                queue: Mutex::new(Some(queue)),
                thread: Mutex::new(Some(thread)),
                clicks: Clicks {
                    receiver: Arc::new(Mutex::new(Some(clicks))),
                },
            }),
        })
    }

    /// Queues a notification without waiting.
    pub fn notify(&self, notification: Notification) {
        let mut queue = lock(&self.inner.queue);
        let Some(queue) = queue.as_mut() else {
            return;
        };
        if let Err(e) = queue.try_send(notification)
            && e.is_full()
        {
            log::warn!("the notification daemon is not keeping up: a notification dropped");
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
        let n = Notification::message("room", "bob", &"é".repeat(MAX_BODY_CHARS));
        assert_eq!(n.body.chars().count(), MAX_BODY_CHARS);
        let n = Notification::message("room", "bob", &"é".repeat(MAX_BODY_CHARS + 1));
        assert_eq!(n.body.chars().count(), MAX_BODY_CHARS + 1);
        assert!(n.body.ends_with('…'));
        assert_eq!(n.summary, "bob");
    }
}
