//! SIGINT (Ctrl+C) and SIGTERM make the terminal peer leave as end of input does: the
//! others see it leave (not time out), the tracker forgets it, and it exits with status 0.
//! A second signal while it leaves ends it at once. Real processes, real signals.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![cfg(unix)]

mod support;

use std::time::Duration;

use support::*;

fn chat(name: &str, tracker: &str) -> Proc {
    Proc::chat(&["--username", name, "--port", "0", "--tracker", tracker])
}

#[test]
fn sigint_and_sigterm_leave_cleanly() {
    let tracker = start_tracker(Duration::from_secs(60));
    let t = tracker.local_addr().to_string();
    let mut alice = chat("alice", &t);
    alice.listening_addr();
    for (name, sig) in [("bob", "-INT"), ("carol", "-TERM")] {
        let mut other = chat(name, &t);
        let addr = other.listening_addr();
        alice.wait_stderr("the other to listen", |l| {
            l.contains(&format!("{name} (")) && l.contains("listens to you")
        });
        alice.wait_stderr("alice to listen back", |l| {
            l.starts_with(&format!("* listening to {name} ("))
        });
        other.wait_stderr("a link to alice", |l| l.starts_with("* listening to alice"));
        assert!(tracker.peers().contains(&addr));

        signal(other.child.id(), sig);
        let status = other.finish();
        assert_eq!(status.code(), Some(0), "{name} after {sig}");
        // Alice hears the goodbyes: "left", both ways, not a time-out.
        alice.wait_stderr("the link from the other to end", |l| {
            l.starts_with(&format!("* stopped listening to {name} ("))
        });
        alice.wait_stderr("the other to stop listening", |l| {
            l.contains(&format!("{name} (")) && l.contains("no longer listens to you")
        });
        for line in alice
            .err_log
            .iter()
            .filter(|l| l.contains(&format!("{name} (")))
        {
            if line.contains("stopped listening") || line.contains("no longer listens") {
                assert!(line.ends_with(": left"), "{line}");
            }
        }
        // It told the tracker it left (before it exited).
        assert!(!tracker.peers().contains(&addr), "{name} is still listed");
    }
    alice.say("still here");
    assert_eq!(alice.finish().code(), Some(0));
}

#[test]
fn a_second_signal_while_leaving_ends_the_process_at_once() {
    // A tracker that answers the first announce, closes that session and never answers
    // again: zed opens the session again and waits; once it leaves, it sends its leave on
    // a fresh connection and waits for the acknowledgement (up to 750 ms).
    let tracker = dropping_tracker();
    let addr = tracker.addr;
    let mut zed = chat("zed", &addr.to_string());
    zed.listening_addr();
    tracker
        .frozen
        .recv_timeout(PATIENCE)
        .expect("zed opens its session again");
    signal(zed.child.id(), "-INT");
    zed.wait_stderr("the first signal", |l| l.contains("leaving"));
    signal(zed.child.id(), "-INT");
    let status = zed.finish();
    // 128 + SIGINT: ended by the second signal, not by a completed leave (status 0).
    assert_eq!(status.code(), Some(130));
}
