//! Secure rooms end to end, with real peers on 127.0.0.1: rooms and passphrases keep peers
//! apart however they meet (one tracker, addresses found or given by hand); the wrong
//! passphrase gets nothing and is told why; a relay in the middle of a link or between a
//! peer and its tracker learns no message, no username, no room name and no passphrase; a
//! flipped byte, a replayed record and a truncated record each close the one link they hit,
//! with the reason, while every other link goes on.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/relay.rs"]
mod relay;
mod support;

use std::net::SocketAddr;
use std::time::Duration;

use p2p_core::secure::Passphrase;
use p2p_core::{Departure, Error, Event, Mode, Peer, PeerConfig, RoomName};
use relay::{Fault, Relay};
use support::*;

/// A peer's configuration in `room`, with `passphrase` if any.
fn in_room(name: &str, mode: Mode, room: &str, passphrase: Option<&str>) -> PeerConfig {
    let mut c = config(name, mode);
    c.room = RoomName::new(room).unwrap();
    c.passphrase = passphrase.map(|p| Passphrase::new(p).unwrap());
    c
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The addresses this peer was told hold another room key.
fn wrong_keys(p: &TestPeer) -> Vec<String> {
    p.log
        .iter()
        .filter_map(|e| match e {
            Event::WrongPassphrase { addr } => Some(addr.clone()),
            _ => None,
        })
        .collect()
}

/// One tracker, three rooms: `attic` with one passphrase, `attic` with another, and the
/// open `lobby`. The tracker lists each peer only to its own room (its registry is keyed by
/// the room id, which the passphrase changes), so each pair meshes alone. Then every peer
/// is offered every other's address, as the LAN or the DHT would find them: the peers of
/// other rooms fail their handshakes (each reported once as `WrongPassphrase`), and no link
/// crosses a room.
#[test]
fn rooms_and_passphrases_on_one_tracker_stay_apart_also_when_offered_each_other() {
    let tracker = start_tracker(Duration::from_secs(60));
    let t = tracker.local_addr().to_string();
    let rooms = [
        ("attic", Some("first passphrase")),
        ("attic", Some("second passphrase")),
        ("lobby", None),
    ];
    let mut peers: Vec<(usize, TestPeer)> = Vec::new();
    for (r, (room, passphrase)) in rooms.iter().enumerate() {
        for i in 0..2 {
            let c = in_room(
                &format!("p{r}{i}"),
                Mode::tracker(t.clone()),
                room,
                *passphrase,
            );
            peers.push((r, TestPeer::start(c)));
        }
    }
    // Three room ids, one per (name, passphrase).
    let ids: Vec<_> = peers.iter().map(|(_, p)| p.peer.room()).collect();
    assert_eq!(ids[0], ids[1]);
    assert_ne!(ids[0], ids[2]);
    assert_ne!(ids[2], ids[4]);
    for (_, p) in &mut peers {
        p.wait_links(1);
    }
    let addrs: Vec<SocketAddr> = peers.iter().map(|(_, p)| p.peer.local_addr()).collect();
    for (_, p) in &peers {
        p.peer.offer(&addrs);
    }
    for (r, p) in &mut peers {
        let strangers: Vec<String> = peers_not_in(*r, &rooms, &addrs);
        p.wait("a WrongPassphrase for each peer of another room", |p| {
            let told = wrong_keys(p);
            strangers.iter().all(|s| told.contains(s))
        });
    }
    for (i, (r, p)) in peers.iter_mut().enumerate() {
        p.pump();
        let mate = format!("p{r}{}", 1 - i % 2);
        assert_eq!(
            names(&p.peer.listening_to()),
            std::slice::from_ref(&mate),
            "{}",
            p.name()
        );
        assert_eq!(names(&p.peer.listeners()), [mate], "{}", p.name());
        let told = wrong_keys(p);
        let mut unique = told.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(
            told.len(),
            unique.len(),
            "each address reported once: {told:?}"
        );
        assert!(
            !p.log.iter().any(|e| matches!(e, Event::Message { .. })),
            "nothing crossed"
        );
    }
}

/// The addresses of the peers (two per room, in order) outside room `r`.
fn peers_not_in(r: usize, rooms: &[(&str, Option<&str>)], addrs: &[SocketAddr]) -> Vec<String> {
    (0..rooms.len())
        .filter(|&other| other != r)
        .flat_map(|other| [addrs[2 * other], addrs[2 * other + 1]])
        .map(|a| a.to_string())
        .collect()
}

/// The wrong passphrase, by hand: the start fails with `WrongPassphrase` naming the room,
/// and nothing was exchanged (the room's peer sees no listener, the stranger no message).
/// Offered the address instead (as a tracker, the LAN or the DHT would), the stranger is
/// told by an event, once.
#[test]
fn the_wrong_passphrase_gets_nothing_and_says_why() {
    let mut alice = TestPeer::start(in_room("alice", Mode::Alone, "attic", Some("right")));
    let target = alice.peer.local_addr();
    let manual = Mode::Manual(vec![target.to_string()]);
    match Peer::start(in_room("mallory", manual, "attic", Some("wrong"))) {
        Err(e @ Error::WrongPassphrase { .. }) => {
            let text = e.to_string();
            assert!(text.contains("wrong passphrase for room attic"), "{text}");
            assert!(text.contains(&target.to_string()), "{text}");
            assert!(
                !text.contains("wrong:"),
                "no passphrase in the message: {text}"
            );
        }
        other => panic!("the wrong passphrase was not refused: {other:?}"),
    }
    // No passphrase at all is another key too.
    let manual = Mode::Manual(vec![target.to_string()]);
    assert!(matches!(
        Peer::start(in_room("mallory", manual, "attic", None)),
        Err(Error::WrongPassphrase { .. })
    ));

    let mut mallory = TestPeer::start(in_room("mallory", Mode::Alone, "attic", Some("wrong")));
    mallory.peer.offer(&[target]);
    mallory.wait("the WrongPassphrase event", |p| {
        wrong_keys(p) == [target.to_string()]
    });
    alice.peer.send("for the room only").unwrap();
    // The right passphrase links (and so receives what alice sends from now on): the
    // wrong ones have had their turn.
    let manual = Mode::Manual(vec![target.to_string()]);
    let mut bob = TestPeer::start(in_room("bob", manual, "attic", Some("right")));
    alice.wait("bob as the only listener", |p| {
        names(&p.peer.listeners()) == ["bob"]
    });
    alice.peer.send("welcome, bob").unwrap();
    bob.wait_texts("alice", 1);
    mallory.pump();
    assert!(mallory.peer.listening_to().is_empty());
    assert!(
        !mallory.log.iter().any(|e| matches!(
            e,
            Event::Message { .. } | Event::ListeningTo(_) | Event::ListenerJoined(_)
        )),
        "{:#?}",
        mallory.log
    );
    assert_eq!(wrong_keys(&mallory).len(), 1, "reported once");
    assert!(!alice.log.iter().any(
        |e| matches!(e, Event::ListenerJoined(p) | Event::ListeningTo(p) if p.username == "mallory")
    ));
}

/// A relay between two peers records every byte of their link, both ways: the handshake,
/// the hello and the welcome (which carry both usernames) and the messages. None of the
/// texts, usernames, the room's name or its passphrase is in it.
#[test]
fn a_relay_in_the_middle_finds_no_message_text_and_no_username() {
    let room = "attic-of-secrets";
    let passphrase = "violet kumquat harmonica";
    let alice = TestPeer::start(in_room("alice-zq7", Mode::Alone, room, Some(passphrase)));
    let relay = Relay::recording(alice.peer.local_addr());
    let manual = Mode::Manual(vec![relay.addr.to_string()]);
    let mut bob = TestPeer::start(in_room("bob-xk3", manual, room, Some(passphrase)));
    eventually("bob listening", || alice.peer.listeners().len() == 1);
    let texts: Vec<String> = (0..50)
        .map(|i| format!("the plan is hidden under stone {i}"))
        .collect();
    for t in &texts {
        alice.peer.send(t).unwrap();
    }
    let long = "lighthouse ".repeat(5_000);
    alice.peer.send(&long).unwrap();
    bob.wait_texts("alice-zq7", texts.len() + 1);
    assert_eq!(bob.texts_from("alice-zq7")[..texts.len()], texts[..]);
    let recorded = relay.recorded();
    let (down, up) = relay.recorded_sizes();
    assert!(
        down > 55_000 && up > 0,
        "the relay saw the link: {down} + {up} bytes"
    );
    for secret in [
        "the plan is hidden",
        "lighthouse",
        "alice-zq7",
        "bob-xk3",
        room,
        passphrase,
    ] {
        assert!(
            !contains(&recorded, secret.as_bytes()),
            "the relay read {secret:?}"
        );
    }
}

/// A relay between the peers and their tracker sees the room id (what the tracker needs),
/// never the room's name or its passphrase.
#[test]
fn the_tracker_learns_an_opaque_room_id_and_nothing_of_the_name_or_passphrase() {
    let tracker = start_tracker(Duration::from_secs(60));
    let relay = Relay::recording(tracker.local_addr());
    let (room, passphrase) = ("gazebo-nine", "saffron teapot");
    let mode = || Mode::tracker(relay.addr.to_string());
    let mut a = TestPeer::start(in_room("ann", mode(), room, Some(passphrase)));
    let mut b = TestPeer::start(in_room("ben", mode(), room, Some(passphrase)));
    a.wait_links(1);
    b.wait_links(1);
    let recorded = relay.recorded();
    assert!(contains(&recorded, a.peer.room().as_bytes()), "the room id");
    assert!(!contains(&recorded, room.as_bytes()), "the room's name");
    assert!(
        !contains(&recorded, passphrase.as_bytes()),
        "the passphrase"
    );
}

/// Alice, her listener Carol, and one Bob per fault: each Bob listens to Alice through a
/// relay that breaks one record of Alice's (a flipped bit, a replay, a cut inside the
/// record), and to Carol directly. Each fault closes that Bob's link to Alice with a
/// reason that names it; Alice keeps chatting with Carol, and every Bob keeps hearing Carol.
#[test]
fn a_flipped_replayed_or_truncated_record_closes_only_that_link() {
    let mut alice = TestPeer::start(config("alice", Mode::Alone));
    let mut carol = TestPeer::start(config(
        "carol",
        Mode::Manual(vec![alice.peer.local_addr().to_string()]),
    ));
    let faults = [
        (Fault::Flip, "tampered"),
        (Fault::Replay, "replay"),
        (Fault::Truncate, "closed inside record"),
    ];
    let mut bobs = Vec::new();
    for (i, (fault, _)) in faults.iter().enumerate() {
        let relay = Relay::breaking(alice.peer.local_addr());
        let mode = Mode::Manual(vec![
            relay.addr.to_string(),
            carol.peer.local_addr().to_string(),
        ]);
        let bob = TestPeer::start(config(&format!("bob{i}"), mode));
        bobs.push((*fault, relay, bob));
    }
    alice.wait("four listeners", |p| p.peer.listeners().len() == 4);
    carol.wait("three listeners", |p| p.peer.listeners().len() == 3);
    for (_, _, bob) in &mut bobs {
        bob.wait("two links", |p| p.peer.listening_to().len() == 2);
    }
    alice.peer.send("before").unwrap();
    for (_, _, bob) in &mut bobs {
        bob.wait_texts("alice", 1);
    }
    for (fault, relay, _) in &bobs {
        relay.arm(*fault);
    }
    alice.peer.send("broken on the way").unwrap();
    for ((fault, relay, bob), (_, reason)) in bobs.iter_mut().zip(faults) {
        bob.wait("the link to alice closed", |p| {
            p.stopped_listening("alice").is_some()
        });
        assert_eq!(relay.applied(), [*fault]);
        match bob.stopped_listening("alice") {
            Some(Departure::Error(why)) => {
                assert!(why.contains(reason), "{fault:?} closed with {why:?}");
            }
            other => panic!("{fault:?}: the link ended with {other:?}"),
        }
        // Not a byte of the broken record was delivered as a message; a replayed one,
        // once only (the original).
        let delivered = match fault {
            Fault::Replay => &["before", "broken on the way"][..],
            Fault::Flip | Fault::Truncate => &["before"][..],
        };
        assert_eq!(bob.texts_from("alice"), delivered, "{fault:?}");
    }
    alice.wait("the three bobs gone", |p| {
        names(&p.peer.listeners()) == ["carol"]
    });
    // Every other link goes on.
    alice.peer.send("still here").unwrap();
    carol.wait_texts("alice", 3);
    assert_eq!(
        carol.texts_from("alice"),
        ["before", "broken on the way", "still here"]
    );
    carol.peer.send("and so is carol").unwrap();
    for (fault, _, bob) in &mut bobs {
        bob.wait_texts("carol", 1);
        assert_eq!(names(&bob.peer.listening_to()), ["carol"], "{fault:?}");
    }
}

/// The `IdentityChanged` events a peer has seen: (name, new fingerprint, previous).
fn identity_warnings(p: &TestPeer) -> Vec<(String, String, String)> {
    p.log
        .iter()
        .filter_map(|e| match e {
            Event::IdentityChanged { peer, previous } => Some((
                peer.username.clone(),
                peer.fingerprint.to_string(),
                previous.to_string(),
            )),
            _ => None,
        })
        .collect()
}

/// Trust on first use, in a data directory: "alice" links to Bob with one key, leaves, and
/// comes back with another key: Bob is warned (before the link's `ListenerJoined`), with
/// both fingerprints. Bob started again remembers the first key; the first Alice coming
/// back is no warning, and each new key is warned about once.
#[test]
fn a_reused_username_with_another_key_is_flagged() {
    use p2p_core::secure::Identity;
    let dir = tempfile::tempdir().unwrap();
    let bob_config = || {
        let mut c = config("bob", Mode::Alone);
        c.data_dir = Some(dir.path().to_owned());
        c
    };
    let alice = |bob: &TestPeer, identity: &Identity| {
        let mut c = config(
            "alice",
            Mode::Manual(vec![bob.peer.local_addr().to_string()]),
        );
        c.identity = Some(identity.clone());
        Peer::start(c).unwrap()
    };
    let joined = |p: &TestPeer| {
        p.log
            .iter()
            .filter(|e| matches!(e, Event::ListenerJoined(p) if p.username == "alice"))
            .count()
    };
    let (first, second, third) = (
        Identity::generate().unwrap(),
        Identity::generate().unwrap(),
        Identity::generate().unwrap(),
    );
    let mut bob = TestPeer::start(bob_config());
    alice(&bob, &first).shutdown();
    bob.wait("the first alice", |p| joined(p) == 1);
    assert!(
        identity_warnings(&bob).is_empty(),
        "a new name is no warning"
    );
    alice(&bob, &second).shutdown();
    bob.wait("the second alice", |p| joined(p) == 2);
    let warning = (
        "alice".to_owned(),
        second.fingerprint().to_string(),
        first.fingerprint().to_string(),
    );
    assert_eq!(identity_warnings(&bob), [warning]);
    let warned_at = bob
        .log
        .iter()
        .position(|e| matches!(e, Event::IdentityChanged { .. }))
        .unwrap();
    let second_joined = bob
        .log
        .iter()
        .rposition(
            |e| matches!(e, Event::ListenerJoined(p) if p.fingerprint == second.fingerprint()),
        )
        .unwrap();
    assert!(
        warned_at < second_joined,
        "the warning comes before the link"
    );
    // The same second key again: warned once, not at every link.
    alice(&bob, &second).shutdown();
    bob.wait("the second alice again", |p| joined(p) == 3);
    assert_eq!(identity_warnings(&bob).len(), 1);
    bob.peer.shutdown();

    // Started again on the same data directory: the keys are remembered.
    let mut bob = TestPeer::start(bob_config());
    alice(&bob, &first).shutdown();
    bob.wait("the first alice back", |p| joined(p) == 1);
    assert!(identity_warnings(&bob).is_empty(), "the first key is known");
    alice(&bob, &third).shutdown();
    bob.wait("a third alice", |p| joined(p) == 2);
    assert_eq!(
        identity_warnings(&bob),
        [(
            "alice".to_owned(),
            third.fingerprint().to_string(),
            first.fingerprint().to_string()
        )],
        "flagged against the first key seen"
    );
}
