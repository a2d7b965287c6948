//! Manual mode and link bookkeeping: who hears whom, host names, no self-links, no
//! duplicate links.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use p2p_core::{Batch, Error, Event, Mode, Peer, Source};
use support::*;

#[test]
fn manual_listener_hears_but_is_not_heard_until_the_other_connects() {
    let mut a = TestPeer::start(config("alice", Mode::Alone));
    let mut b = TestPeer::start(config(
        "bob",
        Mode::Manual(vec![a.peer.local_addr().to_string()]),
    ));

    // B listens to A; A does not listen to B.
    a.wait("bob to listen", |p| names(&p.peer.listeners()) == ["bob"]);
    assert_eq!(names(&b.peer.listening_to()), ["alice"]);
    assert!(a.peer.listening_to().is_empty());
    assert!(b.peer.listeners().is_empty());

    assert_eq!(a.peer.send("hi bob").unwrap(), 1);
    assert_eq!(
        b.peer.send("hi alice").unwrap(),
        0,
        "nobody listens to bob yet"
    );
    b.wait_texts("alice", 1);
    assert_eq!(b.texts_from("alice"), ["hi bob"]);

    // Now A connects to B itself, and hears B from then on.
    let info = a.peer.connect(&b.peer.local_addr().to_string()).unwrap();
    assert_eq!(info.username, "bob");
    b.wait("alice to listen", |p| {
        names(&p.peer.listeners()) == ["alice"]
    });
    assert_eq!(b.peer.send("hi again").unwrap(), 1);
    a.wait_texts("bob", 1);
    assert_eq!(
        a.texts_from("bob"),
        ["hi again"],
        "the message sent before was not heard"
    );
    assert!(a.log.contains(&Event::ListeningTo(info)));
}

#[test]
fn host_names_resolve() {
    let mut a = TestPeer::start(config("alice", Mode::Alone));
    let port = a.peer.local_addr().port();
    let mut b = TestPeer::start(config(
        "bob",
        Mode::Manual(vec![format!("localhost:{port}")]),
    ));
    a.wait("bob to listen", |p| p.peer.listeners().len() == 1);
    a.peer.send("via localhost").unwrap();
    b.wait_texts("alice", 1);
}

#[test]
fn a_peer_never_connects_to_itself() {
    let a = Peer::start(config("alice", Mode::Alone)).unwrap();
    let own = a.local_addr().to_string();
    assert!(matches!(a.connect(&own), Err(Error::SelfConnection(_))));
    // Also under a name the peer does not know as its own.
    let other_name = format!("localhost:{}", a.local_addr().port());
    assert!(matches!(
        a.connect(&other_name),
        Err(Error::SelfConnection(_))
    ));
    assert!(a.listening_to().is_empty());
    assert!(a.listeners().is_empty());

    let mut config = config("bob", Mode::Manual(vec![]));
    config.bind_addr = loopback(0);
    let b = Peer::start(config).unwrap();
    let b_addr = b.local_addr().to_string();
    assert!(matches!(b.connect(&b_addr), Err(Error::SelfConnection(_))));
}

#[test]
fn a_second_link_to_the_same_peer_is_refused() {
    let mut a = TestPeer::start(config("alice", Mode::Alone));
    let port = a.peer.local_addr().port();
    let b = TestPeer::start(config(
        "bob",
        Mode::Manual(vec![
            format!("127.0.0.1:{port}"),
            format!("localhost:{port}"),
        ]),
    ));
    a.wait("bob to listen", |p| p.peer.listeners().len() == 1);
    assert_eq!(b.peer.listening_to().len(), 1);
    assert!(matches!(
        b.peer.connect(&format!("127.0.0.1:{port}")),
        Err(Error::AlreadyConnected(_))
    ));
    assert_eq!(a.peer.send("once").unwrap(), 1);
}

#[test]
fn a_second_hello_does_not_open_a_second_link() {
    // Alice listens to Bob with a hello, so Bob connects back. A second hello from Alice
    // (a raw handshake with her identity is not possible, so a second Alice link is made
    // by a fresh connect) leaves Bob with one link to her.
    let tracker = start_tracker(std::time::Duration::from_secs(60));
    let t = tracker.local_addr().to_string();
    let mut b = TestPeer::start(config("bob", Mode::tracker(t.clone())));
    let mut a = TestPeer::start(config("alice", Mode::tracker(t)));
    a.wait_links(1);
    b.wait_links(1);
    // Alice asks again (as she would after re-announcing): nothing new opens.
    assert!(matches!(
        a.peer.connect(&b.peer.local_addr().to_string()),
        Err(Error::AlreadyConnected(_))
    ));
    assert_eq!(a.peer.listening_to().len(), 1);
    assert_eq!(b.peer.listening_to().len(), 1);
    assert_eq!(b.peer.listeners().len(), 1);
}

#[test]
fn an_unreachable_manual_peer_fails_start() {
    let free = std::net::TcpListener::bind(loopback(0)).unwrap();
    let addr = free.local_addr().unwrap();
    drop(free);
    let err = Peer::start(config("bob", Mode::Manual(vec![addr.to_string()]))).unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err}");
    let err = Peer::start(config(
        "bob",
        Mode::Manual(vec!["no-such-host.invalid:1".into()]),
    ))
    .unwrap_err();
    assert!(matches!(err, Error::Resolve { .. }), "{err}");
}

#[test]
fn bad_usernames_and_texts_are_refused() {
    assert!(matches!(
        Peer::start(config("", Mode::Alone)),
        Err(Error::InvalidUsername(_))
    ));
    assert!(matches!(
        Peer::start(config("a\u{7}", Mode::Alone)),
        Err(Error::InvalidUsername(_))
    ));
    let a = Peer::start(config("alice", Mode::Alone)).unwrap();
    let long = "x".repeat(64 * 1024 + 1);
    assert!(matches!(a.send(&long), Err(Error::TextTooLong { .. })));
    assert!(a.send(&long[1..]).is_ok());
}

#[test]
fn port_in_use_is_an_error() {
    let a = Peer::start(config("alice", Mode::Alone)).unwrap();
    let mut c = config("bob", Mode::Alone);
    c.bind_addr = a.bound_addr();
    assert!(matches!(Peer::start(c), Err(Error::Bind { .. })));
}

#[test]
fn clones_of_the_events_share_them_and_dropping_one_loses_nothing() {
    let alice = Peer::start(config("alice", Mode::Alone)).unwrap();
    let mut cfg = config("bob", Mode::Manual(vec![alice.local_addr().to_string()]));
    cfg.event_capacity = 16;
    let bob = Peer::start(cfg).unwrap();
    let deadline = std::time::Instant::now() + PATIENCE;
    while alice.listeners().is_empty() {
        let _ = alice.events().recv_deadline(deadline).expect("bob listens");
    }
    for i in 0..1000 {
        alice.send(&format!("m{i}")).unwrap();
    }
    let texts = |events: &p2p_core::Events, n: usize| -> Vec<String> {
        let mut out = Vec::new();
        while out.len() < n {
            if let Event::Message { text, .. } = events.recv_deadline(deadline).unwrap() {
                out.push(text.to_string());
            }
        }
        out
    };
    // A clone takes the first message (and with it, internally, its whole batch), then
    // goes away: the rest of that batch still reaches the original.
    let clone = bob.events().clone();
    let mut got = texts(&clone, 1);
    drop(clone);
    got.extend(texts(bob.events(), 999));
    let expected: Vec<String> = (0..1000).map(|i| format!("m{i}")).collect();
    assert_eq!(got, expected);
}

#[test]
fn reading_whole_batches_gets_every_message_once_and_in_order() {
    let mut a = TestPeer::start(config("alice", Mode::Alone));
    let b = Peer::start(config(
        "bob",
        Mode::Manual(vec![a.peer.local_addr().to_string()]),
    ))
    .unwrap();
    a.wait("bob to listen", |p| p.peer.listeners().len() == 1);
    const COUNT: usize = 20_000;
    for i in 0..COUNT {
        a.peer.send(&format!("message {i}")).unwrap();
    }
    let mut texts = Vec::new();
    while texts.len() < COUNT {
        match b.events().recv_batch().unwrap() {
            Batch::Messages(messages) => {
                assert_eq!(messages.from().username, "alice");
                texts.extend(messages.texts().map(str::to_owned));
            }
            Batch::Event(event) => assert!(
                matches!(
                    event,
                    Event::ListeningTo(_)
                        | Event::Discovered {
                            via: Source::Manual,
                            ..
                        }
                ),
                "unexpected {event:?}"
            ),
        }
    }
    let expected: Vec<String> = (0..COUNT).map(|i| format!("message {i}")).collect();
    assert_eq!(texts, expected);
}

/// `connect` returns while nobody reads the events, even when the event channel is full:
/// the thread that reads the events can call it (as an app's event loop does) without
/// waiting on itself. The `ListeningTo` event follows once there is room.
#[test]
fn connect_returns_while_the_event_channel_is_full() {
    let a = TestPeer::start(config("alice", Mode::Alone));
    let mut c = config("bob", Mode::Alone);
    c.event_capacity = 1;
    let b = TestPeer::start(c);
    // Carol listens to Bob: his ListenerJoined fills his one-event channel.
    let _carol = TestPeer::start(config(
        "carol",
        Mode::Manual(vec![b.peer.local_addr().to_string()]),
    ));
    eventually("carol to listen to bob", || b.peer.listeners().len() == 1);
    // This thread reads Bob's events; it calls connect before reading any. (The call runs
    // in a scoped thread only so that a hang fails the test instead of stalling it.)
    let alice = a.peer.local_addr().to_string();
    std::thread::scope(|s| {
        let (tx, rx) = crossbeam_channel::bounded(1);
        let (bob, alice) = (&b.peer, &alice);
        s.spawn(move || {
            let _ = tx.send(bob.connect(alice));
        });
        let result = rx.recv_timeout(PATIENCE);
        if result.is_err() {
            b.peer.close(); // lets a hung connect end, so that the scope can
        }
        let result = result.expect("connect hung while the event channel was full");
        assert_eq!(result.unwrap().username, "alice");
        let mut seen = Vec::new();
        while seen.len() < 2 {
            seen.push(b.peer.events().recv_timeout(PATIENCE).unwrap());
        }
        assert!(matches!(&seen[0], Event::ListenerJoined(p) if p.username == "carol"));
        assert!(matches!(&seen[1], Event::ListeningTo(p) if p.username == "alice"));
    });
}

/// Starting in manual mode does not wait on the events either: more peers to listen to than
/// the event channel has room for.
#[test]
fn start_returns_with_more_manual_peers_than_room_for_events() {
    let a = TestPeer::start(config("alice", Mode::Alone));
    let b = TestPeer::start(config("bob", Mode::Alone));
    let mut c = config(
        "carol",
        Mode::Manual(vec![
            a.peer.local_addr().to_string(),
            b.peer.local_addr().to_string(),
        ]),
    );
    c.event_capacity = 1;
    let (tx, rx) = crossbeam_channel::bounded(1);
    // In a thread of its own only so that a hang fails the test instead of stalling it.
    std::thread::spawn(move || {
        let _ = tx.send(Peer::start(c));
    });
    let carol = rx
        .recv_timeout(PATIENCE)
        .expect("start hung with a full event channel")
        .unwrap();
    assert_eq!(names(&carol.listening_to()), ["alice", "bob"]);
}
