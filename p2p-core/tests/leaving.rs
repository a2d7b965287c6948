//! Leaving takes at most two seconds, whatever the network does: a tracker that accepts
//! and never answers while a re-announce is in flight, listeners that take nothing, a
//! host name that never resolves. For the library (`Peer::close`) and for the terminal
//! peer (end of input).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use p2p_core::protocol::Frame;
use p2p_core::{Mode, Resolver};
use support::*;

/// The bound under test.
const LEAVE_BOUND: Duration = Duration::from_secs(2);

#[test]
fn close_returns_within_the_bound_while_a_reannounce_waits_on_a_frozen_tracker() {
    let tracker = frozen_tracker(1);
    let peer = TestPeer::start(config("alice", Mode::tracker(tracker.addr.to_string())));
    // The re-announce, a second later, reaches the tracker and waits for its answer.
    tracker.frozen.recv_timeout(PATIENCE).unwrap();
    let started = Instant::now();
    peer.peer.close();
    let took = started.elapsed();
    assert!(
        took < LEAVE_BOUND,
        "close took {took:?} with a frozen tracker"
    );
    eprintln!("close with a frozen tracker: {took:?}");
}

#[test]
fn close_returns_within_the_bound_while_the_session_is_opened_again_on_a_frozen_tracker() {
    // The tracker drops the session and then answers nothing: the peer waits for the answer
    // of its new session when it closes, and its leave goes on a fresh connection that is
    // never answered either.
    let tracker = dropping_tracker();
    let peer = TestPeer::start(config("alice", Mode::tracker(tracker.addr.to_string())));
    tracker.frozen.recv_timeout(PATIENCE).unwrap();
    let started = Instant::now();
    peer.peer.close();
    let took = started.elapsed();
    assert!(
        took < LEAVE_BOUND,
        "close took {took:?} while reopening the session"
    );
    eprintln!("close while reopening the session: {took:?}");
}

#[test]
fn close_returns_within_the_bound_with_listeners_that_take_nothing() {
    let a = TestPeer::start(config("alice", Mode::Alone));
    // Three listeners that handshake, then never read: alice's writes to them block once
    // their sockets are full.
    let mut stuck = Vec::new();
    for i in 0..3 {
        let mut conn = RawConn::connect(a.peer.local_addr());
        let welcome = conn.handshake(&format!("stuck{i}"), 100 + i, loopback(9));
        assert!(matches!(welcome, Frame::Welcome(_)));
        stuck.push(conn);
    }
    eventually("three listeners", || a.peer.listeners().len() == 3);
    // 8 MiB each: far more than loopback's socket buffers hold.
    let text = "b".repeat(8192);
    for _ in 0..1024 {
        a.peer.send(&text).unwrap();
    }
    let started = Instant::now();
    a.peer.close();
    let took = started.elapsed();
    assert!(
        took < LEAVE_BOUND,
        "close took {took:?} with stuck listeners"
    );
    eprintln!("close with stuck listeners: {took:?}");
    drop(stuck);
}

#[test]
fn close_does_not_wait_for_a_host_name_that_never_resolves() {
    // A resolver that never answers for one name, as a lookup does when the name server
    // drops every query (glibc then waits its timeout for each server and attempt).
    let (entered_tx, entered) = crossbeam_channel::bounded(1);
    let (release_tx, release) = crossbeam_channel::bounded::<()>(0);
    let mut c = config("alice", Mode::Alone);
    c.resolver = Resolver::new(move |name| {
        if name.starts_with("never.invalid") {
            let _ = entered_tx.send(());
            let _ = release.recv();
            return Err(std::io::Error::other("no answer from the name server"));
        }
        std::net::ToSocketAddrs::to_socket_addrs(name).map(Iterator::collect)
    });
    let a = TestPeer::start(c);
    thread::scope(|s| {
        let attempt = s.spawn(|| a.peer.connect("never.invalid:7000"));
        entered.recv_timeout(PATIENCE).unwrap();
        // The lookup ends when the close has returned, or after twice the bound (so that a
        // close that waits for it fails this test instead of hanging it).
        let (closed_tx, closed) = crossbeam_channel::bounded::<()>(0);
        s.spawn(move || {
            let _ = closed.recv_timeout(LEAVE_BOUND * 2);
            drop(release_tx);
        });
        let started = Instant::now();
        a.peer.close();
        let took = started.elapsed();
        drop(closed_tx);
        assert!(
            took < LEAVE_BOUND,
            "close took {took:?} with a lookup hanging"
        );
        // Stricter: no thread of the peer is in the lookup, so the close has nothing to
        // wait for. (A thread stuck in it would be waited for through the goodbye grace
        // and the cut grace, 1.5 s, and then left running.)
        assert!(
            took < Duration::from_secs(1),
            "close waited {took:?} for a lookup"
        );
        eprintln!("close with a lookup hanging: {took:?}");
        // The connect fails once its lookup ends.
        assert!(attempt.join().unwrap().is_err());
    });
}

/// The terminal peer exits within the bound after end of input while its re-announce waits
/// on a frozen tracker.
#[test]
fn the_terminal_peer_leaves_within_the_bound_with_a_frozen_tracker() {
    let tracker = frozen_tracker(1);
    let mut cmd = Command::new(example("chat"));
    let t = tracker.addr.to_string();
    cmd.args(["--username", "alice", "--port", "0", "--tracker", &t])
        .env_remove("RUST_LOG");
    let mut chat = Proc::spawn(cmd);
    chat.listening_addr();
    tracker.frozen.recv_timeout(PATIENCE).unwrap();
    let started = Instant::now();
    let status = chat.finish();
    let took = started.elapsed();
    assert_eq!(status.code(), Some(0));
    assert!(
        took < LEAVE_BOUND,
        "the terminal peer took {took:?} to leave"
    );
    eprintln!("terminal peer left a frozen tracker in {took:?}");
}

/// The terminal peer exits within the bound after end of input while listeners that take
/// nothing hold its writes (their sockets full).
#[test]
fn the_terminal_peer_leaves_within_the_bound_with_listeners_that_take_nothing() {
    let mut cmd = Command::new(example("chat"));
    cmd.args(["--username", "alice", "--port", "0", "--alone"])
        .env_remove("RUST_LOG");
    let mut chat = Proc::spawn(cmd);
    let addr = chat.listening_addr();
    let mut stuck = Vec::new();
    for i in 0..3 {
        let mut conn = RawConn::connect(addr);
        let welcome = conn.handshake(&format!("stuck{i}"), 200 + i, loopback(9));
        assert!(matches!(welcome, Frame::Welcome(_)));
        chat.wait_stderr("the listener", |l| {
            l.starts_with(&format!("* stuck{i} (")) && l.contains("listens to you")
        });
        stuck.push(conn);
    }
    // 4 MiB for each: far more than their sockets hold, well within the queue limit.
    let line = "s".repeat(4000);
    for _ in 0..1000 {
        chat.say(&line);
    }
    let started = Instant::now();
    let status = chat.finish();
    let took = started.elapsed();
    assert_eq!(status.code(), Some(0));
    assert!(
        took < LEAVE_BOUND,
        "the terminal peer took {took:?} to leave"
    );
    eprintln!("terminal peer left stuck listeners in {took:?}");
    drop(stuck);
}
