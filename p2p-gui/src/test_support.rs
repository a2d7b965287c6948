//! What the unit tests of several modules share: counting threads by name.

use std::thread;
use std::time::{Duration, Instant};

/// How many threads of this process are named `name` (as `/proc` shows them).
pub(crate) fn threads_named(name: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("proc")
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|comm| comm.trim() == name)
        .count()
}

/// Polls `done` to a generous deadline (a thread names itself once it runs, and leaves
/// `/proc` once it has exited, so counts are waited for, not read once).
pub(crate) fn wait_until(done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "condition not reached");
        thread::sleep(Duration::from_millis(10));
    }
}
