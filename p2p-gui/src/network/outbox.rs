//! The session's sender thread: the UI hands it messages and never waits for the network.
//!
//! `Peer::send` may wait (for a bounded time) while the slowest listener is at its byte
//! limit; the UI thread must never be the one waiting. So each session has one thread that
//! sends, fed by a small bounded queue: [`Outbox::try_send`] only queues (or answers
//! [`QueueError::Full`] at once, which the screen shows), one thread sends in queue order,
//! so messages leave in the order they were typed, and each result comes back through the
//! receiver `try_send` returned, which the screen turns into a message.
//!
//! The same shape serves other slow calls that must stay off the UI thread and in order:
//! the session's connector (`Peer::connect` for "Add a peer" and "Reconnect") is an
//! `Outbox<String>` whose jobs are addresses.
//!
//! The thread's whole life is here: [`Outbox::spawn`] starts it, [`Outbox::stop`] stops
//! the queue (the thread sends what is queued, then ends), [`Outbox::join`] joins it;
//! dropping the outbox does both.

use std::fmt;
use std::sync::Mutex;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError, bounded};
use iced::futures::channel::oneshot;

use crate::threads::lock;

/// Messages that may wait for the sender thread. Small: the queue only absorbs a burst of
/// typing while a send waits for a slow listener; past it the user is told to wait.
pub const QUEUE: usize = 16;

/// What a send came to: to how many listeners it was handed, or why it was not sent.
pub type Sent = Done<usize>;

/// What a job came to: its result, or why it failed.
pub type Done<T> = Result<T, String>;

/// Why a message could not be queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueError {
    /// [`QUEUE`] messages are already waiting.
    Full,
    /// The session is closing.
    Closed,
}

impl fmt::Display for QueueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            QueueError::Full => "too many messages are waiting to be sent",
            QueueError::Closed => "the session is closing",
        })
    }
}

struct Job<T> {
    text: String,
    reply: oneshot::Sender<Done<T>>,
}

/// The sender thread of a session and its queue (or another worker of the same shape,
/// whose jobs answer with a `T`).
pub struct Outbox<T = usize> {
    jobs: Mutex<Option<Sender<Job<T>>>>,
    /// Disconnects when the thread ends (its sender is dropped then).
    ended: Receiver<()>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl<T> fmt::Debug for Outbox<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Outbox").finish_non_exhaustive()
    }
}

impl<T: Send + 'static> Outbox<T> {
    /// Starts a thread named `name` that sends each queued message with `send`, in order.
    pub fn spawn(
        name: String,
        mut send: impl FnMut(&str) -> Done<T> + Send + 'static,
    ) -> std::io::Result<Outbox<T>> {
        let (jobs, queue) = bounded::<Job<T>>(QUEUE);
        let (alive, ended) = bounded::<()>(0);
        let thread = thread::Builder::new().name(name).spawn(move || {
            let _alive = alive;
            for job in queue {
                // The screen may be gone (the app is closing): the result is then unread.
                let _ = job.reply.send(send(&job.text));
            }
        })?;
        Ok(Outbox {
            jobs: Mutex::new(Some(jobs)),
            ended,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Queues `text` without waiting; the receiver answers once it has been sent (or
    /// could not be). An error if the queue is full or stopped.
    pub fn try_send(&self, text: String) -> Result<oneshot::Receiver<Done<T>>, QueueError> {
        let (reply, answer) = oneshot::channel();
        let jobs = lock(&self.jobs);
        let jobs = jobs.as_ref().ok_or(QueueError::Closed)?;
        match jobs.try_send(Job { text, reply }) {
            Ok(()) => Ok(answer),
            Err(TrySendError::Full(_)) => Err(QueueError::Full),
            Err(TrySendError::Disconnected(_)) => Err(QueueError::Closed),
        }
    }

    /// Takes no more messages; the thread sends what is queued and ends. Waits up to
    /// `drain` for that and says whether the thread has ended.
    pub fn stop(&self, drain: Duration) -> bool {
        lock(&self.jobs).take();
        matches!(
            self.ended.recv_timeout(drain),
            Err(RecvTimeoutError::Disconnected)
        )
    }
}

impl<T> Outbox<T> {
    /// Waits for the thread to end (after [`Outbox::stop`]).
    pub fn join(&self) {
        if let Some(thread) = lock(&self.thread).take()
            && thread.join().is_err()
        {
            log::error!("the sender thread panicked");
        }
    }

    /// Waits up to `bound` for the thread to end (after [`Outbox::stop`]) and joins it;
    /// says whether it did. A thread still in its job then (a connect stuck in a DNS
    /// lookup, which nothing can interrupt) is logged and left to end on its own, as
    /// p2p-core's `ThreadSet` leaves a stuck thread, rather than holding the app's exit
    /// up; it ends once its job returns, since the queue is closed.
    pub fn join_within(&self, bound: Duration) -> bool {
        let Some(thread) = lock(&self.thread).take() else {
            return true;
        };
        if matches!(
            self.ended.recv_timeout(bound),
            Err(RecvTimeoutError::Disconnected)
        ) {
            let name = thread_name(&thread);
            if thread.join().is_err() {
                log::error!("thread {name:?} panicked");
            }
            true
        } else {
            log::warn!(
                "thread {:?} still busy after {bound:?}: left to end on its own",
                thread_name(&thread)
            );
            false
        }
    }
}

fn thread_name(thread: &JoinHandle<()>) -> String {
    thread.thread().name().unwrap_or("?").to_owned()
}

/// How long dropping an outbox waits for its thread (see [`Outbox::join_within`]).
const DROP_JOIN: Duration = Duration::from_secs(5);

impl<T> Drop for Outbox<T> {
    fn drop(&mut self) {
        lock(&self.jobs).take();
        self.join_within(DROP_JOIN);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Instant;

    use iced::futures::executor::block_on;

    use super::*;
    use crate::test_support::{threads_named, wait_until};

    fn wait_threads(name: &str, count: usize) {
        wait_until(|| threads_named(name) == count);
    }

    /// An outbox whose sends wait for the test to let each one go (as `Peer::send` waits
    /// for a slow listener), recording what they sent.
    fn gated(name: &str) -> (Outbox, Sender<()>, Arc<Mutex<Vec<String>>>) {
        let (go, gate) = bounded::<()>(0);
        let sent = Arc::new(Mutex::new(Vec::new()));
        let record = Arc::clone(&sent);
        let outbox = Outbox::spawn(name.into(), move |text| {
            gate.recv().map_err(|_| "stopped".to_owned())?;
            lock(&record).push(text.to_owned());
            Ok(text.len())
        })
        .expect("spawns");
        (outbox, go, sent)
    }

    #[test]
    fn a_full_queue_is_refused_at_once_while_a_send_waits_and_order_is_kept() {
        let (outbox, go, sent) = gated("gui-send-t1");
        wait_threads("gui-send-t1", 1);
        // The thread takes the first message and waits in `send`; the queue fills behind
        // it; the next message is refused without waiting.
        let mut answers = Vec::new();
        let (refusal, took) = loop {
            let started = Instant::now();
            match outbox.try_send(format!("m{}", answers.len())) {
                Ok(answer) => answers.push(answer),
                Err(e) => break (e, started.elapsed()),
            }
            assert!(answers.len() <= QUEUE + 1, "more than the queue holds");
        };
        assert_eq!(refusal, QueueError::Full);
        assert!(took < Duration::from_secs(1), "refused at once: {took:?}");
        assert!(answers.len() >= QUEUE);
        // Let them all go: every one is sent once, in order, and answered.
        for _ in 0..answers.len() {
            go.send(()).expect("the thread waits");
        }
        for (i, answer) in answers.into_iter().enumerate() {
            assert_eq!(block_on(answer), Ok(Ok(format!("m{i}").len())));
        }
        let expected: Vec<String> = (0..lock(&sent).len()).map(|i| format!("m{i}")).collect();
        assert_eq!(*lock(&sent), expected);

        assert!(
            outbox.stop(Duration::from_secs(10)),
            "an idle thread ends at once"
        );
        outbox.join();
        wait_threads("gui-send-t1", 0);
        assert_eq!(
            outbox.try_send("late".into()).err(),
            Some(QueueError::Closed)
        );
    }

    #[test]
    fn stop_sends_what_is_queued_and_waits_only_so_long_for_a_stuck_send() {
        let (outbox, go, sent) = gated("gui-send-t2");
        let first = outbox.try_send("first".into()).expect("queued");
        let second = outbox.try_send("second".into()).expect("queued");
        // The send is stuck: stop gives up after its drain time, the thread still runs.
        assert!(!outbox.stop(Duration::from_millis(100)));
        wait_threads("gui-send-t2", 1);
        // Once the send is let go (as closing the peer does), both go out and it ends.
        go.send(()).expect("first");
        go.send(()).expect("second");
        outbox.join();
        wait_threads("gui-send-t2", 0);
        assert_eq!(block_on(first), Ok(Ok(5)));
        assert_eq!(block_on(second), Ok(Ok(6)));
        assert_eq!(*lock(&sent), ["first", "second"]);
    }

    #[test]
    fn join_within_gives_up_on_a_stuck_job_after_its_bound_and_the_thread_ends_later() {
        let (outbox, go, _sent) = gated("gui-send-t4");
        let answer = outbox.try_send("stuck".into()).expect("queued");
        assert!(!outbox.stop(Duration::ZERO));
        let started = Instant::now();
        assert!(!outbox.join_within(Duration::from_millis(200)));
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(threads_named("gui-send-t4"), 1, "left running");
        // Its job returns: the thread ends on its own (the queue is closed).
        go.send(()).expect("the job waits");
        assert_eq!(block_on(answer), Ok(Ok(5)));
        wait_threads("gui-send-t4", 0);
        assert!(outbox.join_within(Duration::ZERO), "nothing left to join");
    }

    #[test]
    fn dropping_the_outbox_joins_its_thread() {
        let (outbox, go, _sent) = gated("gui-send-t3");
        drop(go); // every send fails at once from now on
        let answer = outbox.try_send("x".into()).expect("queued");
        drop(outbox);
        wait_threads("gui-send-t3", 0);
        assert_eq!(block_on(answer), Ok(Err("stopped".into())));
    }
}
