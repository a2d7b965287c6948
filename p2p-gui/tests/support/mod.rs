//! What the app's integration tests share: driving the real app through `iced_test`
//! ([`ui`]), real peers on 127.0.0.1 ([`peers`]), threads counted by name, and an X server
//! of a test's own for the tests that run the real process ([`xvfb`]). Each test file uses
//! part of it.
#![allow(dead_code)]

pub mod peers;
pub mod ui;
pub mod xvfb;

use std::time::Duration;

/// How long a test waits for anything the network or another thread does.
pub const DEADLINE: Duration = Duration::from_secs(15);

// Thread counting and polling, shared with the crate's unit tests.
#[path = "../../src/test_support.rs"]
mod shared;

#[allow(unused_imports)] // each test file uses a part
pub(crate) use shared::{thread_names, threads_named, wait_until};

/// Waits until `name` names `count` threads.
pub fn wait_threads(name: &str, count: usize) {
    wait_until(|| threads_named(name) == count);
}
