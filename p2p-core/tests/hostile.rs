//! Bad input never takes a peer or the tracker down, and honest users keep chatting while
//! it happens. Each bad connection is closed (with one logged reason, see the logs with
//! RUST_LOG=info).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use p2p_core::protocol::{
    Announce, Frame, Handshake, PROTOCOL_VERSION, Room, Welcome, encode_chat,
};
use p2p_core::{Departure, Mode, Peer, PeerConfig};
use support::*;

/// Alice (alone) and Bob (listening to her): the honest chat that must go on.
fn honest_pair(tweak: impl Fn(&mut PeerConfig)) -> (TestPeer, TestPeer) {
    let mut c = config("alice", Mode::Alone);
    tweak(&mut c);
    let mut a = TestPeer::start(c);
    let b = TestPeer::start(config(
        "bob",
        Mode::Manual(vec![a.peer.local_addr().to_string()]),
    ));
    a.wait("bob to listen", |p| p.peer.listeners().len() == 1);
    (a, b)
}

/// Alice says something and Bob hears it: the chat is still alive.
fn still_chatting(a: &TestPeer, b: &mut TestPeer, text: &str) {
    let before = b.texts_from("alice").len();
    assert!(a.peer.send(text).unwrap() >= 1, "bob still listens");
    b.wait_texts("alice", before + 1);
    assert_eq!(b.texts_from("alice").last().map(String::as_str), Some(text));
}

/// Deterministic pseudo-random bytes.
fn noise(n: usize, mut seed: u64) -> Vec<u8> {
    (0..n)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect()
}

#[test]
fn bad_bytes_and_bad_handshakes_close_only_their_connection() {
    let (a, mut b) = honest_pair(|c| c.timeouts.handshake = Duration::from_millis(300));
    let target = a.peer.local_addr();

    // Random bytes.
    for seed in 1..=20 {
        let mut conn = RawConn::connect(target);
        let _ = conn.send_bytes(&noise(4096, seed));
        conn.expect_closed();
    }
    still_chatting(&a, &mut b, "after noise");

    // A length prefix of 4 GiB.
    let mut conn = RawConn::connect(target);
    conn.send_bytes(&[0xff, 0xff, 0xff, 0xff, 1, 0, 0]).unwrap();
    conn.expect_closed();

    // A frame of the wrong protocol version: refused with a reason, then closed.
    let mut conn = RawConn::connect(target);
    let mut hs = Frame::Handshake(Handshake {
        version: PROTOCOL_VERSION,
        peer_id: 9,
        username: "mallory".into(),
        room: Room::lobby(),
        listen_ip: None,
        listen_port: 1,
        connect_back: false,
        duplex: false,
    })
    .encode()
    .unwrap();
    hs[5] = 1; // the version byte: version 1, which this build no longer speaks
    conn.send_bytes(&hs).unwrap();
    match conn.expect_closed().first() {
        Some(Frame::Refuse { reason }) => assert!(reason.contains("version"), "{reason}"),
        other => panic!("expected a refusal, got {other:?}"),
    }

    // A frame of the wrong type (a chat instead of a handshake), and an unknown type.
    let mut conn = RawConn::connect(target);
    conn.send_bytes(&encode_chat("let me in").unwrap()).unwrap();
    assert!(matches!(
        conn.expect_closed().first(),
        Some(Frame::Refuse { .. })
    ));
    let mut conn = RawConn::connect(target);
    conn.send_bytes(&[0, 0, 0, 1, 200]).unwrap();
    conn.expect_closed();

    // A handshake that never comes: closed after the handshake timeout.
    let mut conn = RawConn::connect(target);
    conn.send_bytes(&[0, 0]).unwrap(); // half a length prefix, then nothing
    assert!(matches!(
        conn.expect_closed().first(),
        Some(Frame::Refuse { .. })
    ));

    // A bad username, and names that would print like another one.
    let mut conn = RawConn::connect(target);
    let answer = conn.handshake("bad\nname", 10, loopback(1));
    assert!(matches!(answer, Frame::Refuse { .. }), "{answer:?}");
    for (i, name) in ["ali\u{200b}ce", "\u{202e}bob", "bob ", "a\u{2029}b"]
        .into_iter()
        .enumerate()
    {
        let mut conn = RawConn::connect(target);
        let answer = conn.handshake(name, 11 + i as u64, loopback(1));
        assert!(
            matches!(&answer, Frame::Refuse { reason } if reason.contains("invalid username")),
            "{name:?}: {answer:?}"
        );
    }

    still_chatting(&a, &mut b, "after all of it");
    assert_eq!(a.peer.listeners().len(), 1);
}

/// A fake peer called mallory that Bob listens to: it answers Bob's handshake, then sends
/// `bytes` and waits for Bob to close the link. Returns when Bob has closed it (and
/// reported it as an error); `expected` are the texts Bob must have heard from it first.
fn mallory_sends(b: &mut TestPeer, peer_id: u64, bytes: Vec<u8>, expected: &[&str]) {
    let fake = TcpListener::bind(loopback(0)).unwrap();
    let fake_addr = fake.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let mut conn = RawConn::from_stream(fake.accept().unwrap().0);
        assert!(matches!(conn.recv(), Some(Frame::Handshake(_))));
        conn.send(&Frame::Welcome(Welcome {
            version: PROTOCOL_VERSION,
            peer_id,
            username: "mallory".into(),
        }));
        let _ = conn.send_bytes(&bytes);
        conn.expect_closed();
    });
    b.peer.connect(&fake_addr.to_string()).unwrap();
    b.wait("the mallory link to be closed", |p| {
        p.stopped_listening("mallory").is_some()
    });
    assert!(matches!(
        b.stopped_listening("mallory"),
        Some(Departure::Error(_))
    ));
    assert_eq!(b.texts_from("mallory"), expected);
    server.join().unwrap();
    b.log.clear();
}

#[test]
fn oversized_text_and_frames_from_a_peer_close_that_link_only() {
    let (a, mut b) = honest_pair(|_| {});
    // A chat text over 64 KiB, then a frame that announces 2 MiB.
    let text = encode_chat(&"x".repeat(64 * 1024 + 1)).unwrap().to_vec();
    mallory_sends(&mut b, 77, text, &[]);
    still_chatting(&a, &mut b, "after an oversized text");
    mallory_sends(&mut b, 77, vec![0, 0x20, 0, 0, 16], &[]);
    still_chatting(&a, &mut b, "after an oversized frame");
}

#[test]
fn a_text_that_is_not_utf8_closes_the_link_after_the_texts_before_it() {
    let (a, mut b) = honest_pair(|_| {});
    // In one write: two good texts (one of them multi-byte), a chat frame whose text is
    // not UTF-8 (a lone continuation byte), then a good text that must not arrive.
    let mut bytes = Vec::new();
    bytes.extend_from_slice(&encode_chat("first").unwrap());
    bytes.extend_from_slice(&encode_chat("ação").unwrap());
    bytes.extend_from_slice(&[0, 0, 0, 4, 16, 2, b'a', 0x80]);
    bytes.extend_from_slice(&encode_chat("after").unwrap());
    mallory_sends(&mut b, 78, bytes, &["first", "ação"]);
    still_chatting(&a, &mut b, "after a text that is not UTF-8");
}

#[test]
fn a_flood_past_the_inbound_cap_is_refused_and_the_chat_goes_on() {
    const CAP: usize = 8;
    let (a, mut b) = honest_pair(|c| {
        c.limits.max_inbound = CAP;
        c.timeouts.handshake = Duration::from_secs(60);
    });
    // Bob's link holds one slot; the first CAP - 1 flood connections hold the rest (they
    // never handshake, and the handshake timeout is long), every later one is closed at once.
    let mut held = Vec::new();
    for _ in 0..CAP - 1 {
        held.push(RawConn::connect(a.peer.local_addr()));
    }
    for _ in 0..50 {
        let mut conn = RawConn::connect(a.peer.local_addr());
        assert!(conn.expect_closed().is_empty());
    }
    still_chatting(&a, &mut b, "during the flood");

    // The flood ends; the slots come back and a new peer gets in.
    drop(held);
    let addr = a.peer.local_addr().to_string();
    let mut joined = None;
    for _ in 0..200 {
        // The flood's threads notice their peers left as their reads end; retry until a
        // slot is free (each attempt is refused at once while none is).
        match Peer::start(config("carol", Mode::Manual(vec![addr.clone()]))) {
            Ok(p) => {
                joined = Some(p);
                break;
            }
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    assert!(joined.is_some(), "no slot came back after the flood");
    still_chatting(&a, &mut b, "after the flood");
}

#[test]
fn the_tracker_refuses_bad_requests_and_keeps_serving() {
    let tracker = start_tracker(Duration::from_secs(60));
    let t = tracker.local_addr();
    let ask = |listen: SocketAddr| {
        let mut conn = RawConn::connect(t);
        conn.send(&Frame::Announce(Announce {
            version: PROTOCOL_VERSION,
            room: Room::lobby(),
            listen_port: listen.port(),
            explicit_ip: Some(listen.ip()),
            local_ip: listen.ip(),
            behind_nat: false,
            introduce: false,
        }));
        conn.expect_closed()
    };
    for bad in [
        "0.0.0.0:4000",
        "127.0.0.1:0",
        "224.0.0.1:4000",
        "255.255.255.255:1",
    ] {
        let frames = ask(bad.parse().unwrap());
        assert!(
            matches!(frames.first(), Some(Frame::Refuse { reason }) if reason.contains("invalid address")),
            "{bad}: {frames:?}"
        );
    }
    // Garbage, a huge length, a peer handshake, a wrong version: each closed.
    let mut conn = RawConn::connect(t);
    let _ = conn.send_bytes(&noise(2048, 5));
    conn.expect_closed();
    let mut conn = RawConn::connect(t);
    conn.send_bytes(&[0xff; 8]).unwrap();
    conn.expect_closed();
    let mut conn = RawConn::connect(t);
    let answer = conn.handshake("mallory", 1, loopback(5));
    assert!(matches!(answer, Frame::Refuse { .. }));
    let mut conn = RawConn::connect(t);
    let mut announce = Frame::Announce(Announce {
        version: PROTOCOL_VERSION,
        room: Room::lobby(),
        listen_port: 4000,
        explicit_ip: None,
        local_ip: loopback(0).ip(),
        behind_nat: false,
        introduce: false,
    })
    .encode()
    .unwrap();
    announce[5] = 9;
    conn.send_bytes(&announce).unwrap();
    conn.expect_closed();
    assert!(tracker.peers().is_empty());

    // Honest peers still mesh through it.
    let mut a = TestPeer::start(config("alice", Mode::tracker(t.to_string())));
    let mut b = TestPeer::start(config("bob", Mode::tracker(t.to_string())));
    a.wait_links(1);
    b.wait_links(1);
    assert_eq!(tracker.peers().len(), 2);
}

/// Hellos ask a peer to connect back to the address they give. Hellos naming addresses
/// that cannot be peers are not answered, and however many hellos name addresses that
/// never complete a handshake, at most `max_connect_backs` answers are under way at once:
/// a stream of hellos cannot make a peer spend threads and sockets without bound, nor
/// connect out to any number of other hosts.
#[test]
fn hellos_are_answered_only_for_valid_addresses_and_a_bounded_number_at_once() {
    const CAP: usize = 4;
    let mut c = config("alice", Mode::Alone);
    c.limits.max_connect_backs = CAP;
    // Answers stay under way (waiting for a welcome) for the whole test.
    c.timeouts.handshake = Duration::from_secs(60);
    let mut a = TestPeer::start(c);
    let before = a.peer.thread_count();

    // Twenty listeners that never say a word (the kernel completes their connections),
    // and two addresses no peer can have.
    let silent: Vec<TcpListener> = (0..20)
        .map(|_| TcpListener::bind(loopback(0)).unwrap())
        .collect();
    let mut named: Vec<SocketAddr> = vec!["0.0.0.0:7".parse().unwrap(), loopback(0)];
    named.extend(silent.iter().map(|l| l.local_addr().unwrap()));
    for (i, addr) in named.iter().enumerate() {
        let mut mallory = RawConn::connect(a.peer.local_addr());
        mallory.send(&Frame::Handshake(Handshake {
            version: PROTOCOL_VERSION,
            peer_id: 9000 + i as u64,
            username: format!("m{i}"),
            room: Room::lobby(),
            listen_ip: Some(addr.ip()),
            listen_port: addr.port(),
            connect_back: true,
            duplex: false,
        }));
        assert!(matches!(mallory.recv(), Some(Frame::Welcome(_))));
        // Dropped: its listener thread ends once it has (or has not) started an answer.
    }
    a.wait("every hello's connection to end", |p| {
        p.log
            .iter()
            .filter(|e| matches!(e, p2p_core::Event::ListenerLeft { .. }))
            .count()
            == named.len()
    });
    // The listener threads of the hellos are done (reaped soon after their last event);
    // what stays is one thread per answer under way: {CAP}, not twenty.
    eventually(&format!("{} threads", before + CAP), || {
        a.peer.thread_count() == before + CAP
    });
    // Those answers reach {CAP} of the silent listeners (each connects in its own thread).
    for l in &silent {
        l.set_nonblocking(true).unwrap();
    }
    // (Accepted and kept open: closing one would end its answer.)
    let connected = std::cell::RefCell::new(Vec::new());
    eventually(&format!("{CAP} answers to arrive"), || {
        let mut connected = connected.borrow_mut();
        connected.extend(silent.iter().filter_map(|l| l.accept().ok()));
        connected.len() >= CAP
    });
    assert_eq!(connected.borrow().len(), CAP);
    assert_eq!(a.peer.thread_count(), before + CAP);
    // No answer was tried for the two invalid addresses (it would have failed at once).
    a.pump();
    let failed: Vec<&p2p_core::Event> = a
        .log
        .iter()
        .filter(|e| matches!(e, p2p_core::Event::ConnectFailed { .. }))
        .collect();
    assert!(failed.is_empty(), "{failed:?}");
}
