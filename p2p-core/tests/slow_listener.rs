//! A listener that stops reading cannot slow the sender or the other listeners: its queue
//! overflows and it is cut off and reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use p2p_core::{Departure, Mode};
use support::*;

#[test]
fn a_stuck_listener_overflows_and_is_cut_off_while_the_others_get_everything() {
    let mut c = config("alice", Mode::Alone);
    c.limits.listener_queue_bytes = 2 << 20;
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

    // Rounds of 256 messages of 4 KiB (1 MiB): Bob reads each round before the next, so
    // his queue never holds more than a round; the stuck listener's queue grows by a round
    // each time once its socket buffers are full, until it overflows its 2 MiB.
    const ROUND: usize = 256;
    let body = "m".repeat(4096);
    let mut sent = 0;
    for _ in 0..200 {
        for _ in 0..ROUND {
            assert!(a.peer.send(&format!("{sent:06} {body}")).unwrap() >= 1);
            sent += 1;
        }
        b.wait_texts("alice", sent);
        a.pump();
        if a.listener_left("stuck").is_some() {
            break;
        }
    }
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
