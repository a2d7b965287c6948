//! What the app's threads share, and the life of the short-lived ones.
//!
//! `lock`: the one way the app takes a mutex. A thread that panicked while holding one
//! leaves it poisoned; what it guards here (queues, join handles) stays usable, so the
//! lock is taken anyway rather than spreading the panic to the UI thread.
//!
//! [`Threads`]: the app's own threads that no other owner joins (`gui-start`, `gui-close`,
//! `gui-events`) are spawned through one set, which the app joins as it exits
//! ([`Threads::join_within`]). The threads that have an owner of their own are joined by
//! it: a session's sender and connector by `Session::close`, the history's by
//! `Store::close`, the notifier's and the signal listener's by `main`.

use std::io;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// Locks `mutex`, also when a thread panicked while holding it.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// How often [`Threads::join_within`] looks for threads that have ended.
const JOIN_POLL: Duration = Duration::from_millis(5);

/// A set of named threads, joined together at the end. Clones share the set.
#[derive(Debug, Clone, Default)]
pub struct Threads {
    running: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Threads {
    /// Starts a thread named `name` running `f`, kept in the set (threads that have ended
    /// are joined first, so a long session does not pile up handles).
    pub fn spawn(&self, name: &str, f: impl FnOnce() + Send + 'static) -> io::Result<()> {
        self.reap();
        let handle = thread::Builder::new().name(name.to_owned()).spawn(f)?;
        lock(&self.running).push(handle);
        Ok(())
    }

    /// Joins the threads that have ended.
    fn reap(&self) {
        let ended: Vec<JoinHandle<()>> = {
            let mut running = lock(&self.running);
            let (ended, alive) = running.drain(..).partition(|h| h.is_finished());
            *running = alive;
            ended
        };
        for handle in ended {
            join(handle);
        }
    }

    /// Threads started and not yet joined.
    pub fn len(&self) -> usize {
        self.reap();
        lock(&self.running).len()
    }

    /// Whether every thread started has been joined.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Joins every thread as it ends, waiting up to `bound` in all; says whether all were
    /// joined. A thread still running then (a connect stuck in a DNS lookup, which nothing
    /// can interrupt) is logged and left to end on its own, as p2p-core's `ThreadSet`
    /// does, rather than holding the app's exit up.
    pub fn join_within(&self, bound: Duration) -> bool {
        let deadline = Instant::now() + bound;
        loop {
            self.reap();
            if lock(&self.running).is_empty() {
                return true;
            }
            if Instant::now() >= deadline {
                for handle in lock(&self.running).drain(..) {
                    log::warn!(
                        "thread {} did not end within {bound:?}: left running",
                        handle.thread().name().unwrap_or("?")
                    );
                }
                return false;
            }
            thread::sleep(JOIN_POLL);
        }
    }
}

fn join(handle: JoinHandle<()>) {
    let name = handle.thread().name().unwrap_or("?").to_owned();
    if handle.join().is_err() {
        log::error!("thread {name} panicked");
    }
}

#[cfg(test)]
mod tests {
    use crossbeam_channel::bounded;

    use super::*;
    use crate::test_support::{threads_named, wait_until};

    #[test]
    fn join_within_joins_what_ends_and_leaves_what_is_stuck_after_the_bound() {
        let threads = Threads::default();
        threads.spawn("gui-t-quick", || {}).expect("spawns");
        let (release, stuck) = bounded::<()>(0);
        threads
            .spawn("gui-t-stuck", move || {
                let _ = stuck.recv();
            })
            .expect("spawns");
        let started = Instant::now();
        assert!(!threads.join_within(Duration::from_millis(200)));
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(200),
            "waited the bound: {took:?}"
        );
        assert!(took < Duration::from_secs(5), "not much longer: {took:?}");
        assert_eq!(threads_named("gui-t-quick"), 0);
        assert_eq!(threads_named("gui-t-stuck"), 1, "left running");
        assert!(threads.is_empty(), "the stuck one is no longer waited for");
        drop(release);
        wait_until(|| threads_named("gui-t-stuck") == 0);

        threads.spawn("gui-t-quick", || {}).expect("spawns");
        assert!(threads.join_within(Duration::from_secs(10)));
        assert_eq!(threads_named("gui-t-quick"), 0);
    }
}
