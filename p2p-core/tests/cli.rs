//! The terminal peer (`examples/chat.rs`) as real processes: its flags, its `listening on`
//! line, its stdout format and its exit codes, chatting through pipes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::TcpListener;
use std::time::Duration;

use support::*;

fn chat(args: &[&str]) -> Proc {
    Proc::chat(args)
}

/// Runs `chat` with `args` to completion; returns (exit code, stdout lines, stderr lines).
fn run(args: &[&str]) -> (Option<i32>, Vec<String>, Vec<String>) {
    let mut p = chat(args);
    let status = p.finish();
    let err = p.all_stderr();
    let out = p.all_stdout();
    (status.code(), out, err)
}

#[test]
fn two_terminal_peers_chat_through_a_tracker() {
    let tracker = start_tracker(Duration::from_secs(60));
    let t = tracker.local_addr().to_string();
    let mut alice = chat(&["--username", "alice", "--port", "0", "--tracker", &t]);
    let a_addr = alice.listening_addr();
    assert_eq!(a_addr.ip().to_string(), "127.0.0.1");
    assert_ne!(a_addr.port(), 0);
    let mut bob = chat(&["--username", "bob", "--port", "0", "--tracker", &t]);
    bob.listening_addr();
    for p in [&mut alice, &mut bob] {
        p.wait_stderr("a listener", |l| l.contains("listens to you"));
        p.wait_stderr("a link", |l| l.starts_with("* listening to"));
    }
    alice.say("hello bob");
    alice.say("two\tcolumns");
    bob.say("hi alice: olá");
    assert_eq!(
        bob.wait_stdout_lines(2),
        ["[alice]: hello bob", "[alice]: two\\tcolumns"]
    );
    assert_eq!(alice.wait_stdout_lines(1), ["[bob]: hi alice: olá"]);

    // `/quit` leaves cleanly; bob sees alice go and ends with end of input.
    alice.say("/quit");
    assert_eq!(alice.finish().code(), Some(0));
    bob.wait_stderr("alice leaving", |l| {
        l.contains("stopped listening to alice") && l.ends_with("left")
    });
    assert_eq!(bob.finish().code(), Some(0));
    // Nothing but messages went to stdout.
    assert_eq!(alice.all_stdout(), ["[bob]: hi alice: olá"]);
    assert!(tracker.peers().is_empty(), "both left the tracker");
}

#[test]
fn manual_peers_with_host_names() {
    let mut alice = chat(&["--username", "alice", "--port", "0", "--alone"]);
    let port = alice.listening_addr().port().to_string();
    let peers = format!("localhost:{port}");
    let mut bob = chat(&[
        "--username",
        "bob",
        "--port",
        "0",
        "--ip",
        "127.0.0.1",
        "--peers",
        &peers,
    ]);
    bob.listening_addr();
    alice.wait_stderr("bob listening", |l| {
        l.contains("bob") && l.contains("listens to you")
    });
    alice.say("manual works");
    assert_eq!(bob.wait_stdout_lines(1), ["[alice]: manual works"]);
    assert_eq!(bob.finish().code(), Some(0));
    assert_eq!(alice.finish().code(), Some(0));
}

#[test]
fn bad_arguments_exit_2_with_one_line() {
    let long_room = "r".repeat(65);
    for args in [
        &["--username", "a", "--port", "0"][..],            // no mode
        &["--username", "a", "--port", "x", "--alone"],     // not a number
        &["--username", "a", "--port", "70000", "--alone"], // out of range
        &[
            "--username",
            "a",
            "--port",
            "0",
            "--alone",
            "--peers",
            "x:1",
        ], // two modes
        &["--port", "0", "--alone"],                        // no username
        &["--username", "a", "--port", "0", "--ip", "nope", "--alone"], // bad ip
        &["--username", "a", "--port", "0", "--lan", "--alone"], // two modes
        &["--username", "a", "--port", "0", "--room", "", "--lan"], // empty room
        &[
            "--username",
            "a",
            "--port",
            "0",
            "--room",
            long_room.as_str(),
            "--lan",
        ], // room over 64 bytes
    ] {
        let (code, out, err) = run(args);
        assert_eq!(code, Some(2), "{args:?}: {err:?}");
        assert_eq!(err.len(), 1, "{args:?}: {err:?}");
        assert!(out.is_empty());
    }
}

#[test]
fn start_failures_exit_1_with_one_line() {
    let taken = TcpListener::bind("0.0.0.0:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let (code, _, err) = run(&["--username", "a", "--port", &port, "--alone"]);
    assert_eq!(code, Some(1));
    assert_eq!(err.len(), 1, "{err:?}");
    assert!(err[0].contains("cannot listen"), "{err:?}");

    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = closed.local_addr().unwrap().to_string();
    drop(closed);
    let (code, _, err) = run(&["--username", "a", "--port", "0", "--tracker", &dead]);
    assert_eq!(code, Some(1));
    assert_eq!(err.len(), 1, "{err:?}");
    assert!(err[0].contains("tracker"), "{err:?}");
}

/// A username the rules refuse is a bad argument: exit 2, one line that says why.
#[test]
fn bad_usernames_exit_2_with_one_line() {
    for (name, why) in [
        ("ali\u{200b}ce", "invisible formatting character (U+200B)"),
        ("\u{202e}ecila", "invisible formatting character (U+202E)"),
        ("bad\u{1b}name", "control character"),
        ("two\nlines", "control character"),
        ("ali\u{2028}ce", "line or paragraph separator"),
        (" alice", "starts or ends with a space"),
        ("alice ", "starts or ends with a space"),
        ("", "empty"),
    ] {
        let (code, out, err) = run(&["--username", name, "--port", "0", "--alone"]);
        assert_eq!(code, Some(2), "{name:?}: {err:?}");
        assert_eq!(err.len(), 1, "{name:?}: {err:?}");
        assert!(
            err[0].contains("invalid username") && err[0].contains(why),
            "{err:?}"
        );
        assert!(out.is_empty());
    }
}
