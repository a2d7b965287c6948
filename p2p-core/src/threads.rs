//! The life of every thread a peer starts: spawned here, stopped by one signal, joined here.
//!
//! A [`ThreadSet`] names and keeps the `JoinHandle` of each thread, reaps the ones that have
//! finished (so a long-lived peer does not pile up handles), refuses new threads once
//! shutdown has begun, and joins them all at the end. A [`Stop`] is the one signal every
//! thread watches: a flag for cheap checks, and a channel that disconnects so that threads
//! blocked in `select!` wake at once.

use std::collections::HashMap;
use std::io;
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

/// Locks a mutex, recovering the data if a thread panicked while holding it: every
/// structure kept behind our mutexes stays consistent between statements.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The stop signal shared by every thread of a peer or tracker.
#[derive(Debug)]
pub(crate) struct Stop {
    flag: AtomicBool,
    tx: Mutex<Option<Sender<()>>>,
    rx: Receiver<()>,
}

impl Stop {
    pub(crate) fn new() -> Self {
        let (tx, rx) = crossbeam_channel::bounded(0);
        Stop {
            flag: AtomicBool::new(false),
            tx: Mutex::new(Some(tx)),
            rx,
        }
    }

    /// Raises the signal; returns `false` if it was already raised.
    pub(crate) fn trigger(&self) -> bool {
        let first = !self.flag.swap(true, Ordering::SeqCst);
        lock(&self.tx).take();
        first
    }

    pub(crate) fn is_set(&self) -> bool {
        self.flag.load(Ordering::Relaxed)
    }

    /// A receiver that becomes ready (disconnected) when the signal is raised.
    pub(crate) fn watch(&self) -> &Receiver<()> {
        &self.rx
    }

    /// Waits up to `timeout` for the signal; `true` if it was raised.
    pub(crate) fn wait(&self, timeout: Duration) -> bool {
        let _ = self.rx.recv_timeout(timeout);
        self.is_set()
    }
}

/// How a registered socket is woken at shutdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// Its thread blocks in `read`: shut its read half down at once.
    Reader,
    /// Its thread writes: it is told to stop (taken out of the listener registry) and says
    /// goodbye itself; the socket is shut down only if the thread has not finished within
    /// the grace period.
    Writer,
}

#[derive(Debug, Default)]
struct Inner {
    running: HashMap<u64, JoinHandle<()>>,
    sockets: HashMap<u64, (Role, Arc<TcpStream>)>,
    closed: bool,
}

/// The threads (and their sockets) of one peer or tracker.
#[derive(Debug)]
pub(crate) struct ThreadSet {
    inner: Mutex<Inner>,
    next_id: AtomicU64,
    done_tx: Sender<u64>,
    done_rx: Receiver<u64>,
}

/// Sends the thread's id on the done channel when the thread ends, however it ends.
struct DoneGuard {
    id: u64,
    tx: Sender<u64>,
}

impl Drop for DoneGuard {
    fn drop(&mut self) {
        let _ = self.tx.send(self.id);
    }
}

/// Removes a socket from the set when the connection's thread is done with it.
pub(crate) struct SocketGuard {
    set: Arc<ThreadSet>,
    id: u64,
}

impl Drop for SocketGuard {
    fn drop(&mut self) {
        lock(&self.set.inner).sockets.remove(&self.id);
    }
}

impl ThreadSet {
    pub(crate) fn new() -> Arc<Self> {
        // Unbounded, but fed only by our own threads' exits: at most one message per thread.
        let (done_tx, done_rx) = crossbeam_channel::unbounded();
        Arc::new(ThreadSet {
            inner: Mutex::new(Inner::default()),
            next_id: AtomicU64::new(1),
            done_tx,
            done_rx,
        })
    }

    /// Starts a named thread, unless shutdown has begun. Finished threads are reaped first.
    pub(crate) fn spawn<F>(&self, name: &str, f: F) -> io::Result<()>
    where
        F: FnOnce() + Send + 'static,
    {
        self.reap();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let guard = DoneGuard {
            id,
            tx: self.done_tx.clone(),
        };
        let mut inner = lock(&self.inner);
        if inner.closed {
            return Err(io::Error::other("shutting down"));
        }
        let handle = thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                let _guard = guard;
                f();
            })?;
        inner.running.insert(id, handle);
        Ok(())
    }

    /// Registers a connection's socket so that shutdown can wake its thread. Returns `None`
    /// (and the caller should drop the connection) once shutdown has begun.
    /// The set shares the socket (no second file descriptor is opened for it).
    pub(crate) fn register(
        self: &Arc<Self>,
        stream: &Arc<TcpStream>,
        role: Role,
    ) -> Option<SocketGuard> {
        let clone = Arc::clone(stream);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut inner = lock(&self.inner);
        if inner.closed {
            return None;
        }
        inner.sockets.insert(id, (role, clone));
        Some(SocketGuard {
            set: Arc::clone(self),
            id,
        })
    }

    /// Joins the threads that have finished.
    fn reap(&self) {
        let finished: Vec<JoinHandle<()>> = {
            let mut inner = lock(&self.inner);
            self.done_rx
                .try_iter()
                .filter_map(|id| inner.running.remove(&id))
                .collect()
        };
        for handle in finished {
            let _ = handle.join();
        }
    }

    /// Number of threads started and not yet reaped.
    pub(crate) fn len(&self) -> usize {
        self.reap();
        lock(&self.inner).running.len()
    }

    /// Refuses new threads, wakes the readers, gives the writers `grace` to say goodbye,
    /// then shuts every socket left down and gives the threads `cut_grace` more to end.
    /// Every thread that ended is joined; one still running after that (stuck somewhere
    /// no socket reaches, which no thread of ours should be) is left behind with a warning
    /// rather than holding up the caller. Call after raising the stop signal.
    ///
    /// So it returns within `grace + cut_grace` (and the time to join threads that have
    /// ended), whatever the network does.
    pub(crate) fn shutdown(&self, grace: Duration, cut_grace: Duration) {
        {
            let mut inner = lock(&self.inner);
            inner.closed = true;
            for (role, stream) in inner.sockets.values() {
                if *role == Role::Reader {
                    let _ = stream.shutdown(Shutdown::Read);
                }
            }
        }
        if self.join_until(Instant::now() + grace) {
            return;
        }
        // Whatever is still running is stuck in I/O: cut its sockets, then join.
        {
            let inner = lock(&self.inner);
            for (_, stream) in inner.sockets.values() {
                let _ = stream.shutdown(Shutdown::Both);
            }
        }
        if self.join_until(Instant::now() + cut_grace) {
            return;
        }
        let left: Vec<JoinHandle<()>> = lock(&self.inner).running.drain().map(|(_, h)| h).collect();
        for handle in left {
            log::warn!(
                "thread {} did not stop within {:?} of its sockets being cut: left running",
                handle.thread().name().unwrap_or("?"),
                cut_grace
            );
        }
    }

    /// Joins threads as they end until none is left (`true`) or `deadline` passes.
    fn join_until(&self, deadline: Instant) -> bool {
        loop {
            let finished: Vec<JoinHandle<()>> = {
                let mut inner = lock(&self.inner);
                let done: Vec<_> = self
                    .done_rx
                    .try_iter()
                    .filter_map(|id| inner.running.remove(&id))
                    .collect();
                if inner.running.is_empty() {
                    drop(inner);
                    done.into_iter().for_each(|h| {
                        let _ = h.join();
                    });
                    return true;
                }
                done
            };
            for handle in finished {
                let _ = handle.join();
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            // A thread's id comes on the channel as its last act: its join is immediate.
            match self.done_rx.recv_timeout(deadline - now) {
                Ok(id) => {
                    let handle = lock(&self.inner).running.remove(&id);
                    if let Some(h) = handle {
                        let _ = h.join();
                    }
                }
                Err(_) => return lock(&self.inner).running.is_empty(),
            }
        }
    }
}
