//! A sender faster than its listeners is slowed down to their pace, within a bound: a
//! listener that is slow but takes is never cut off, and one that takes nothing for the
//! stall timeout is cut off and reported while the others get everything.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use p2p_core::{Batch, Departure, Error, Event, Mode, Peer};
use support::*;

#[test]
fn a_stuck_listener_is_cut_off_after_the_stall_timeout_while_the_others_get_everything() {
    let mut c = config("alice", Mode::Alone);
    c.limits.listener_queue_bytes = 2 << 20;
    c.timeouts.stall = Duration::from_secs(1);
    let mut a = TestPeer::start(c);
    let mut b = TestPeer::start(config(
        "bob",
        Mode::Manual(vec![a.peer.local_addr().to_string()]),
    ));
    // The stuck listener handshakes, then never reads again.
    let mut stuck = RawConn::connect(a.peer.local_addr());
    let welcome = stuck.handshake("stuck", 1234, loopback(9));
    assert!(matches!(welcome, p2p_core::protocol::Frame::Welcome(_)));
    a.wait("two listeners", |p| p.peer.listeners().len() == 2);

    // Rounds of 256 messages of 4 KiB (1 MiB): Bob reads each round before the next; the
    // stuck listener's queue fills (its socket buffers first, then its 2 MiB), and then the
    // sender waits for it, until it has taken nothing for the stall timeout.
    const ROUND: usize = 256;
    let body = "m".repeat(4096);
    let mut sent = 0;
    let mut full_seen = false;
    for _ in 0..200 {
        for _ in 0..ROUND {
            let text = format!("{sent:06} {body}");
            // Without waiting, a full queue is reported as such (and nothing is sent).
            if a.listener_left("stuck").is_none() && !full_seen {
                match a.peer.try_send(&text) {
                    Ok(n) => {
                        assert_eq!(n, 2);
                        sent += 1;
                        continue;
                    }
                    Err(Error::QueueFull) => full_seen = true,
                    Err(e) => panic!("{e}"),
                }
            }
            assert!(a.peer.send(&text).unwrap() >= 1);
            sent += 1;
        }
        b.wait_texts("alice", sent);
        a.pump();
        if a.listener_left("stuck").is_some() {
            break;
        }
    }
    assert!(
        full_seen,
        "try_send never found the stuck listener's queue full"
    );
    assert_eq!(a.listener_left("stuck"), Some(Departure::Overflow));
    assert_eq!(names(&a.peer.listeners()), ["bob"]);
    eprintln!("the stuck listener was cut off after {sent} messages");

    let texts = b.texts_from("alice");
    assert_eq!(texts.len(), sent);
    for (i, text) in texts.iter().enumerate() {
        assert_eq!(
            &text[..6],
            format!("{i:06}"),
            "bob got message {i} out of order"
        );
    }
    drop(stuck);
}

/// A listener whose embedder reads late (here, a pause after every batch), so that it falls
/// behind a sender that writes as fast as it can, is slowed down with, not cut off: it
/// gets every message, in order, and its link stays up.
#[test]
fn a_listener_that_is_late_but_takes_is_never_cut_off() {
    let mut c = config("alice", Mode::Alone);
    c.limits.listener_queue_bytes = 256 << 10;
    let mut a = TestPeer::start(c);
    let mut c = config("bob", Mode::Manual(vec![a.peer.local_addr().to_string()]));
    c.event_capacity = 1;
    let bob = Peer::start(c).unwrap();
    a.wait("bob to listen", |p| p.peer.listeners().len() == 1);

    const MESSAGES: usize = 20_000; // of about 200 bytes: 4 MB, sixteen times the limit
    let body = "l".repeat(192);
    let reader = std::thread::spawn({
        let events = bob.events().clone();
        move || {
            let mut got = Vec::with_capacity(MESSAGES);
            let deadline = Instant::now() + PATIENCE;
            while got.len() < MESSAGES {
                match events.recv_batch_deadline(deadline) {
                    Ok(Batch::Messages(m)) => got.extend(m.texts().map(|t| t[..5].to_owned())),
                    Ok(Batch::Event(Event::StoppedListeningTo { reason, .. })) => {
                        panic!("bob stopped listening: {reason}")
                    }
                    Ok(Batch::Event(_)) => {}
                    Err(e) => panic!("bob got {} messages, then: {e}", got.len()),
                }
                // The embedder is busy elsewhere for a moment after every batch.
                std::thread::sleep(Duration::from_millis(2));
            }
            got
        }
    });
    for i in 0..MESSAGES {
        a.peer.send(&format!("{i:05}{body}")).unwrap();
    }
    let got = reader.join().unwrap();
    let expected: Vec<String> = (0..MESSAGES).map(|i| format!("{i:05}")).collect();
    assert!(
        got == expected,
        "bob's messages are missing or out of order"
    );
    a.pump();
    assert_eq!(a.listener_left("bob"), None, "bob was cut off");
    assert_eq!(names(&a.peer.listeners()), ["bob"]);
}

/// An embedder that stops reading its events for longer than the peer timeout keeps its
/// links: the link thread, waiting to hand over messages, goes on sending keep-alives, and
/// nothing is lost once the embedder reads again.
#[test]
fn an_embedder_that_stops_reading_keeps_its_links_and_loses_nothing() {
    // Keep-alives every 250 ms against a 2 s peer timeout: a margin that a loaded machine
    // does not eat, and a stall (2.5 timeouts) that the old code did not survive.
    let timeouts = p2p_core::Timeouts {
        keepalive: Duration::from_millis(250),
        peer: Duration::from_secs(2),
        ..fast_timeouts()
    };
    let mut c = config("alice", Mode::Alone);
    c.timeouts = timeouts.clone();
    let mut a = TestPeer::start(c);
    let mut c = config("bob", Mode::Manual(vec![a.peer.local_addr().to_string()]));
    c.timeouts = timeouts.clone();
    // Bob's first event tells that Alice's address was given by hand; once it is read, his
    // next (listening to Alice) fills his channel: his link thread is left waiting with
    // the first messages from then on.
    c.event_capacity = 1;
    let bob = Peer::start(c).unwrap();
    assert!(matches!(
        bob.events().recv_timeout(PATIENCE),
        Ok(Event::Discovered {
            via: p2p_core::Source::Manual,
            ..
        })
    ));
    a.wait("bob to listen", |p| p.peer.listeners().len() == 1);
    for i in 0..50 {
        a.peer.send(&format!("m{i}")).unwrap();
    }

    // The stall under test: 2.5 peer timeouts during which Bob's embedder reads nothing.
    // Alice's events are watched all along; dropping Bob would show up as ListenerLeft.
    let stall_end = Instant::now() + timeouts.peer * 5 / 2;
    while let Some(left) = stall_end.checked_duration_since(Instant::now()) {
        if let Ok(event) = a.peer.events().recv_timeout(left) {
            assert!(
                !matches!(event, Event::ListenerLeft { .. }),
                "bob was dropped while his embedder was not reading: {event:?}"
            );
            a.log.push(event);
        }
    }
    assert_eq!(names(&a.peer.listeners()), ["bob"]);

    // Bob reads again: everything, in order, and the link still carries new messages.
    a.peer.send("after the stall").unwrap();
    let mut texts = Vec::new();
    while texts.len() < 51 {
        match bob.events().recv_timeout(PATIENCE).unwrap() {
            Event::Message { text, .. } => texts.push(text.to_string()),
            Event::ListeningTo(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    let mut expected: Vec<String> = (0..50).map(|i| format!("m{i}")).collect();
    expected.push("after the stall".into());
    assert_eq!(texts, expected);
}
