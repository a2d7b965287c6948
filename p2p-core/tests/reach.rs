//! Reachability on loopback: the address the tracker observes, duplex links for a peer
//! behind NAT, the tracker session's pushed introductions, punching between two peers
//! behind NAT, rooms, and the mesh fed by hand. (Other hosts, NAT routers and multicast
//! are in `scripts/netns-test.sh`.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use p2p_core::protocol::Room;
use p2p_core::{Error, Event, Mode, Peer, PeerConfig};
use support::*;

/// The TCP connections established between `a` and `b` (both on this host), counted once
/// each, from `/proc/net/tcp`.
fn connections_between(a: SocketAddr, b: SocketAddr) -> usize {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let hex = |addr: SocketAddr| match addr.ip() {
        IpAddr::V4(ip) => format!(
            "{:08X}:{:04X}",
            u32::from_le_bytes(ip.octets()),
            addr.port()
        ),
        IpAddr::V6(_) => unreachable!("IPv4 only"),
    };
    let (a, b) = (hex(a), hex(b));
    let mut seen = HashSet::new();
    for line in table.lines().skip(1) {
        let cols: Vec<&str> = line.split_whitespace().collect();
        let (local, remote, state) = (cols[1], cols[2], cols[3]);
        if state == "01" && ((local == a && remote == b) || (local == b && remote == a)) {
            let mut pair = [local.to_owned(), remote.to_owned(), cols[9].to_owned()];
            // Both ends of one connection: keyed by its two endpoints.
            pair[..2].sort();
            seen.insert((pair[0].clone(), pair[1].clone()));
        }
    }
    seen.len()
}

fn in_tracker(name: &str, tracker: SocketAddr) -> PeerConfig {
    config(name, Mode::tracker(tracker.to_string()))
}

/// Both hear each other's messages once, in order.
fn chat_both_ways(a: &mut TestPeer, b: &mut TestPeer) {
    for i in 0..50 {
        a.peer.send(&format!("a{i}")).unwrap();
        b.peer.send(&format!("b{i}")).unwrap();
    }
    let (an, bn) = (a.name().to_owned(), b.name().to_owned());
    b.wait_texts(&an, 50);
    a.wait_texts(&bn, 50);
    let expected = |p: &str| (0..50).map(|i| format!("{p}{i}")).collect::<Vec<_>>();
    assert_eq!(b.texts_from(&an), expected("a"));
    assert_eq!(a.texts_from(&bn), expected("b"));
}

/// Without an advertised IP, a peer gives the address the tracker registered for it: what
/// the tracker saw (here loopback), with its bound port.
#[test]
fn without_an_ip_a_peer_advertises_the_address_the_tracker_observed() {
    let tracker = start_tracker(Duration::from_secs(60));
    let mut c = in_tracker("alice", tracker.local_addr());
    c.bind_addr = "0.0.0.0:0".parse().unwrap();
    assert_eq!(c.advertise_ip, None);
    let alice = Peer::start(c).unwrap();
    let port = alice.bound_addr().port();
    let expected = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
    assert_eq!(alice.local_addr(), expected, "not the bound 0.0.0.0");
    assert_eq!(tracker.peers(), [expected]);
    assert!(!alice.behind_nat());
    // Alone, nobody has observed it: the bound address.
    let mut c = config("bob", Mode::Alone);
    c.bind_addr = "0.0.0.0:0".parse().unwrap();
    let bob = Peer::start(c).unwrap();
    assert_eq!(bob.local_addr(), bob.bound_addr());
}

/// A peer behind NAT (said so here) asks for a duplex link: one TCP connection between the
/// two carries both directions, and each reports the other as both listener and listened.
#[test]
fn a_peer_behind_nat_gets_one_connection_carrying_both_directions() {
    let tracker = start_tracker(Duration::from_secs(60));
    let mut alice = TestPeer::start(in_tracker("alice", tracker.local_addr()));
    let mut c = in_tracker("bob", tracker.local_addr());
    c.behind_nat = true;
    let mut bob = TestPeer::start(c);
    assert!(bob.peer.behind_nat());
    alice.wait_links(1);
    bob.wait_links(1);
    chat_both_ways(&mut alice, &mut bob);
    assert_eq!(
        connections_between(alice.peer.local_addr(), bob.peer.local_addr()),
        1,
        "one connection from bob's listening port to alice's"
    );
    // Both of alice's events name bob at his listening address.
    let bob_addr = bob.peer.local_addr();
    assert!(
        alice
            .log
            .contains(&Event::ListeningTo(alice.peer.listening_to()[0].clone()))
    );
    assert_eq!(alice.peer.listeners()[0].addr, bob_addr);
    assert_eq!(alice.peer.listening_to()[0].addr, bob_addr);

    // Bob leaves: alice sees both directions end, for the same reason.
    bob.peer.close();
    alice.wait("bob gone both ways", |p| {
        p.stopped_listening("bob").is_some() && p.listener_left("bob").is_some()
    });
    assert_eq!(
        alice.stopped_listening("bob"),
        Some(p2p_core::Departure::Left)
    );
    assert_eq!(alice.listener_left("bob"), Some(p2p_core::Departure::Left));
}

/// An open peer that joins after a peer behind NAT cannot connect to it: the tracker
/// pushes an introduction on the NAT'd peer's session, which then opens a duplex link.
#[test]
fn the_tracker_pushes_an_introduction_to_a_peer_behind_nat_on_its_session() {
    let tracker = start_tracker(Duration::from_secs(60));
    let mut c = in_tracker("bob", tracker.local_addr());
    c.behind_nat = true;
    let mut bob = TestPeer::start(c);
    // Alice comes second: her list has bob, marked behind NAT, so she does not hello him.
    let mut alice = TestPeer::start(in_tracker("alice", tracker.local_addr()));
    alice.wait_links(1);
    bob.wait_links(1);
    chat_both_ways(&mut alice, &mut bob);
    assert_eq!(
        connections_between(alice.peer.local_addr(), bob.peer.local_addr()),
        1
    );
    // Alice, who accepted the duplex link, closes within the bound; bob sees her leave
    // both ways.
    let started = std::time::Instant::now();
    alice.peer.close();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    bob.wait("alice gone both ways", |p| {
        p.stopped_listening("alice") == Some(p2p_core::Departure::Left)
            && p.listener_left("alice") == Some(p2p_core::Departure::Left)
    });
}

/// Two peers behind NAT: the tracker introduces them to each other and both connect from
/// their listening ports at once. On loopback one side's connection reaches the other's
/// listener, which must hand it to the punch (the side with the lower address sends the
/// handshake either way): one duplex link.
#[test]
fn two_peers_behind_nat_punch_one_duplex_link() {
    let tracker = start_tracker(Duration::from_secs(60));
    let mut peers = Vec::new();
    for name in ["ana", "bia"] {
        let mut c = in_tracker(name, tracker.local_addr());
        c.behind_nat = true;
        peers.push(TestPeer::start(c));
    }
    let [mut ana, mut bia] = <[TestPeer; 2]>::try_from(peers).ok().unwrap();
    ana.wait_links(1);
    bia.wait_links(1);
    chat_both_ways(&mut ana, &mut bia);
    assert_eq!(
        connections_between(ana.peer.local_addr(), bia.peer.local_addr()),
        1
    );
    for p in [&ana, &bia] {
        assert!(
            !p.log.iter().any(|e| matches!(e, Event::Unreachable { .. })),
            "{}: {:?}",
            p.name(),
            p.log
        );
    }
}

/// A peer behind NAT that cannot be punched to: the punch window ends with a plain event.
#[test]
fn a_punch_that_gets_nowhere_ends_with_an_unreachable_event() {
    // A registered "peer" behind NAT at an address where nothing listens: the tracker lists
    // it, and introduces nothing to it (it has no session).
    let tracker = start_tracker(Duration::from_secs(60));
    let nobody = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let announce = p2p_core::protocol::Frame::Announce(p2p_core::protocol::Announce {
        behind_nat: true,
        ..p2p_core::protocol::Announce::explicit(nobody)
    });
    let mut raw = RawConn::connect(tracker.local_addr());
    raw.send(&announce);
    assert!(matches!(
        raw.recv(),
        Some(p2p_core::protocol::Frame::PeerList(_))
    ));
    let mut c = in_tracker("alice", tracker.local_addr());
    c.behind_nat = true;
    c.timeouts.punch = Duration::from_millis(800);
    let mut alice = TestPeer::start(c);
    alice.wait("the punch to give up", |p| {
        p.log
            .iter()
            .any(|e| matches!(e, Event::Unreachable { addr, .. } if *addr == nobody))
    });
    let reason = alice
        .log
        .iter()
        .find_map(|e| match e {
            Event::Unreachable { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .unwrap();
    assert!(reason.contains("NAT"), "{reason}");
    drop(raw);
}

/// Peers of different rooms never link: a handshake from another room is refused with a
/// reason that says so, and a tracker lists each peer only to its room.
#[test]
fn peers_of_another_room_are_refused_and_not_listed() {
    let mut c = config("alice", Mode::Alone);
    c.room = Room::new("attic").unwrap();
    let alice = Peer::start(c).unwrap();
    let bob = Peer::start(config("bob", Mode::Alone)).unwrap();
    match bob.connect(&alice.local_addr().to_string()) {
        Err(Error::Refused { reason, .. }) => assert!(reason.contains("room"), "{reason}"),
        other => panic!("a peer of another room was not refused: {other:?}"),
    }

    let tracker = start_tracker(Duration::from_secs(60));
    let mut c = in_tracker("carol", tracker.local_addr());
    c.room = Room::new("attic").unwrap();
    let carol = Peer::start(c).unwrap();
    let mut dan = TestPeer::start(in_tracker("dan", tracker.local_addr()));
    let mut c = in_tracker("eve", tracker.local_addr());
    c.room = Room::new("attic").unwrap();
    let mut eve = TestPeer::start(c);
    eve.wait_links(1);
    assert_eq!(names(&eve.peer.listening_to()), ["carol"]);
    dan.pump();
    assert!(dan.peer.listening_to().is_empty() && dan.peer.listeners().is_empty());
    assert_eq!(tracker.peers().len(), 3);
    drop(carol);
}

/// Addresses offered by hand go through the same joining as a tracker's list: a hello, and
/// the other peer connects back.
#[test]
fn offered_addresses_join_the_mesh_with_hellos() {
    let mut alice = TestPeer::start(config("alice", Mode::Alone));
    let mut bob = TestPeer::start(config("bob", Mode::Alone));
    bob.peer
        .offer(&[alice.peer.local_addr(), bob.peer.local_addr()]);
    alice.wait_links(1);
    bob.wait_links(1);
    chat_both_ways(&mut alice, &mut bob);
    // Offering again changes nothing.
    bob.peer.offer(&[alice.peer.local_addr()]);
    assert_eq!(bob.peer.listening_to().len(), 1);
}

/// A peer behind NAT that restarts on the same port reaches the same peer again at once
/// (its connections come from its listening port; a clash with the old connection's
/// TIME_WAIT falls back to another port).
#[test]
fn a_restarted_peer_behind_nat_reconnects_from_its_port_at_once() {
    let mut alice = TestPeer::start(config("alice", Mode::Alone));
    let target = alice.peer.local_addr();
    let mut c = config("bob", Mode::Alone);
    c.behind_nat = true;
    let bob = TestPeer::start(c);
    bob.peer.offer(&[target]);
    alice.wait_links(1);
    let port = bob.peer.bound_addr().port();
    bob.peer.shutdown(); // bob closes first: his end of the connection waits in TIME_WAIT
    alice.wait("bob gone", |p| p.listener_left("bob").is_some());
    let mut c = config("bob", Mode::Alone);
    c.behind_nat = true;
    c.bind_addr = loopback(port);
    let mut bob = TestPeer::start(c);
    bob.peer.offer(&[target]);
    bob.wait_links(1);
    alice.wait_links(1);
    chat_both_ways(&mut alice, &mut bob);
}
