//! What the unit tests of several modules share, and the integration tests too
//! (`tests/support` includes this file): counting threads by name, polling to a deadline.

use std::thread;
use std::time::{Duration, Instant};

/// How many threads of this process are named `name` (as `/proc` shows them).
pub(crate) fn threads_named(name: &str) -> usize {
    thread_names().iter().filter(|comm| *comm == name).count()
}

/// The names of this process's threads (as `/proc` shows them).
pub(crate) fn thread_names() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .expect("proc")
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .map(|comm| comm.trim().to_owned())
        .collect()
}

/// Polls `done` to a generous deadline (a thread names itself once it runs, and leaves
/// `/proc` once it has exited, so counts are waited for, not read once).
pub(crate) fn wait_until(done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !done() {
        assert!(Instant::now() < deadline, "condition not reached");
        thread::sleep(Duration::from_millis(10));
    }
}
