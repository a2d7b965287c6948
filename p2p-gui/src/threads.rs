//! What the app's threads share.
//!
//! [`lock`]: the one way the app takes a mutex. A thread that panicked while holding one
//! leaves it poisoned; what it guards here (queues, join handles) stays usable, so the
//! lock is taken anyway rather than spreading the panic to the UI thread.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks `mutex`, also when a thread panicked while holding it.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
