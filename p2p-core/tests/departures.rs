//! Peers that leave cleanly, vanish, or stay: what the others and the tracker see.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use p2p_core::{Departure, Mode};
use support::*;

#[test]
fn a_clean_leave_is_reported_at_once_and_removed_from_the_tracker() {
    let tracker = start_tracker(Duration::from_secs(60));
    let t = tracker.local_addr().to_string();
    let mut a = TestPeer::start(config("alice", Mode::tracker(t.clone())));
    let mut b = TestPeer::start(config("bob", Mode::tracker(t.clone())));
    let mut c = TestPeer::start(config("carol", Mode::tracker(t)));
    for p in [&mut a, &mut b, &mut c] {
        p.wait_links(2);
    }
    let carol_addr = c.peer.local_addr();
    assert!(tracker.peers().contains(&carol_addr));

    c.peer.shutdown();
    // The tracker forgot carol before shutdown returned.
    assert!(!tracker.peers().contains(&carol_addr));
    assert_eq!(tracker.peers().len(), 2);
    for p in [&mut a, &mut b] {
        p.wait("carol to be gone both ways", |p| {
            p.stopped_listening("carol").is_some() && p.listener_left("carol").is_some()
        });
        assert_eq!(p.stopped_listening("carol"), Some(Departure::Left));
        assert_eq!(p.listener_left("carol"), Some(Departure::Left));
        assert_eq!(p.peer.listening_to().len(), 1);
        assert_eq!(p.peer.listeners().len(), 1);
    }
    // The others chat on.
    a.peer.send("still here").unwrap();
    b.wait_texts("alice", 1);
}

fn chat_process(name: &str, tracker: &str) -> Proc {
    let mut cmd = Command::new(example("chat"));
    cmd.args(["--username", name, "--port", "0", "--tracker", tracker]);
    Proc::spawn(cmd)
}

#[test]
fn a_frozen_peer_is_detected_by_keepalive_with_default_timeouts_and_expires_at_the_tracker() {
    let tracker = start_tracker(Duration::from_secs(3));
    let t = tracker.local_addr().to_string();
    let mut a = TestPeer::start(config("alice", Mode::tracker(t.clone())));
    let mut frozen = chat_process("zed", &t);
    let zed_addr = frozen.listening_addr();
    a.wait_links(1);

    signal(frozen.child.id(), "-STOP");
    let frozen_at = Instant::now();
    a.wait("zed to time out both ways", |p| {
        p.stopped_listening("zed").is_some() && p.listener_left("zed").is_some()
    });
    let detected = frozen_at.elapsed();
    assert_eq!(a.stopped_listening("zed"), Some(Departure::TimedOut));
    assert_eq!(a.listener_left("zed"), Some(Departure::TimedOut));
    // The design bound: a vanished peer is detected within 15 s by default.
    assert!(detected < Duration::from_secs(15), "took {detected:?}");
    eprintln!("frozen peer detected after {detected:?}");

    // Alice kept re-announcing (every second with a 3 s TTL), zed could not: the tracker
    // lists alice only. The TTL has long passed, so this holds already.
    assert_eq!(tracker.peers(), vec![a.peer.local_addr()]);
    assert!(!tracker.peers().contains(&zed_addr));
    signal(frozen.child.id(), "-KILL");
}

#[test]
fn a_killed_peer_is_reported_gone() {
    let tracker = start_tracker(Duration::from_secs(60));
    let t = tracker.local_addr().to_string();
    let mut a = TestPeer::start(config("alice", Mode::tracker(t.clone())));
    let mut victim = chat_process("victim", &t);
    victim.listening_addr();
    a.wait_links(1);
    signal(victim.child.id(), "-KILL");
    a.wait("victim to be gone both ways", |p| {
        p.stopped_listening("victim").is_some() && p.listener_left("victim").is_some()
    });
    assert_eq!(a.stopped_listening("victim"), Some(Departure::Closed));
}

#[test]
fn a_silent_link_times_out_with_short_timeouts() {
    // A raw "peer" that answers the handshake and then never sends a byte again, with its
    // socket left open: only the keep-alive can tell.
    let server = std::net::TcpListener::bind(loopback(0)).unwrap();
    let addr = server.local_addr().unwrap();
    let silent = std::thread::spawn(move || {
        let mut conn = RawConn::from_stream(server.accept().unwrap().0);
        let Some(p2p_core::protocol::Frame::Handshake(_)) = conn.recv() else {
            panic!("expected a handshake");
        };
        conn.send(&p2p_core::protocol::Frame::Welcome(
            p2p_core::protocol::Welcome {
                version: p2p_core::protocol::PROTOCOL_VERSION,
                peer_id: 1,
                username: "silent".into(),
            },
        ));
        // Keep reading (pings) until alice closes the link.
        conn.expect_closed()
    });
    let mut c = config("alice", Mode::Manual(vec![addr.to_string()]));
    c.timeouts = fast_timeouts();
    let mut a = TestPeer::start(c);
    a.wait("the silent link to time out", |p| {
        p.stopped_listening("silent").is_some()
    });
    assert_eq!(a.stopped_listening("silent"), Some(Departure::TimedOut));
    let frames = silent.join().unwrap();
    assert!(
        frames.contains(&p2p_core::protocol::Frame::Ping),
        "alice sent keep-alives upstream"
    );
}

#[test]
fn live_peers_stay_registered_with_a_short_ttl() {
    // Re-announces every second against a 3 s TTL: two may come late without an expiry.
    let tracker = start_tracker(Duration::from_secs(3));
    let t = tracker.local_addr().to_string();
    let mut a = TestPeer::start(config("alice", Mode::tracker(t.clone())));
    let mut b = TestPeer::start(config("bob", Mode::tracker(t)));
    a.wait_links(1);
    b.wait_links(1);
    // Two TTLs pass; both re-announce every second and stay listed all along. (This
    // watches the clock on purpose: the property is about time passing.)
    let end = std::time::Instant::now() + Duration::from_secs(6);
    while std::time::Instant::now() < end {
        assert_eq!(tracker.peers().len(), 2, "a live peer expired");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(a.peer.listening_to().len(), 1);
}

/// Closing a peer does not wait for its connection attempts to time out: a peer trying to
/// reach a host that never answers (here a listener whose accept queue is full, so the
/// kernel drops the connection requests) is stopped at once.
#[test]
fn closing_does_not_wait_for_a_connection_attempt_to_time_out() {
    use socket2::{Domain, Socket, Type};
    let full = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    full.bind(&loopback(0).into()).unwrap();
    full.listen(0).unwrap();
    let target = full.local_addr().unwrap().as_socket().unwrap();
    // Fill the accept queue (one connection with a backlog of 0, never accepted): further
    // connection requests are dropped.
    let _queued = std::net::TcpStream::connect(target).unwrap();

    let mut c = config("alice", Mode::Alone);
    c.timeouts.connect = Duration::from_secs(60);
    let a = TestPeer::start(c);
    let before = a.peer.thread_count();
    std::thread::scope(|s| {
        let attempt = s.spawn(|| a.peer.connect(&target.to_string()));
        eventually("the link thread to start", || {
            a.peer.thread_count() > before
        });
        let started = std::time::Instant::now();
        a.peer.close();
        let took = started.elapsed();
        assert!(
            took < Duration::from_secs(30),
            "close waited {took:?} for a connection attempt (connect timeout 60 s)"
        );
        assert!(attempt.join().unwrap().is_err());
    });
}
