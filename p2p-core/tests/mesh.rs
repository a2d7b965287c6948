//! Tracker mode builds a full mesh, and every message reaches every other peer once, in
//! order.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use p2p_core::Mode;
use support::*;

const PER_SENDER: usize = 300;

fn send_round(peers: &[TestPeer], tag: &str) {
    for p in peers {
        for i in 0..PER_SENDER {
            p.peer.send(&format!("{tag} {} {i}", p.name())).unwrap();
        }
    }
}

fn check_round(peers: &mut [TestPeer], tag: &str, offset: usize) {
    let names: Vec<String> = peers.iter().map(|p| p.name().to_owned()).collect();
    for p in peers.iter_mut() {
        let me = p.name().to_owned();
        for other in names.iter().filter(|n| **n != me) {
            p.wait_texts(other, offset + PER_SENDER);
            let got = p.texts_from(other);
            let expected: Vec<String> = (0..PER_SENDER)
                .map(|i| format!("{tag} {other} {i}"))
                .collect();
            assert_eq!(
                got[offset..],
                expected[..],
                "{} heard {other} wrongly (lost, doubled or out of order)",
                p.name()
            );
        }
        assert!(
            p.texts_from(p.name()).is_empty(),
            "{} heard itself",
            p.name()
        );
    }
}

#[test]
fn five_peers_mesh_through_a_tracker_then_a_sixth_joins() {
    let tracker = start_tracker(Duration::from_secs(60));
    let t = tracker.local_addr().to_string();
    let mut peers: Vec<TestPeer> = Vec::new();
    for name in ["ana", "bruno", "carla", "duarte", "eva"] {
        peers.push(TestPeer::start(config(name, Mode::tracker(t.clone()))));
    }
    for p in &mut peers {
        p.wait_links(4);
    }
    assert_eq!(tracker.peers().len(), 5);

    send_round(&peers, "r1");
    check_round(&mut peers, "r1", 0);

    // A late sixth peer hears, and is heard by, everyone.
    peers.push(TestPeer::start(config("filipa", Mode::tracker(t))));
    for p in &mut peers {
        p.wait_links(5);
    }
    send_round(&peers, "r2");
    let mut late = peers.pop().unwrap();
    check_round(&mut peers, "r2", PER_SENDER);
    // The newcomer heard round two only.
    let names: Vec<String> = peers.iter().map(|p| p.name().to_owned()).collect();
    for other in &names {
        late.wait_texts(other, PER_SENDER);
        let expected: Vec<String> = (0..PER_SENDER).map(|i| format!("r2 {other} {i}")).collect();
        assert_eq!(late.texts_from(other), expected);
    }
    for p in &mut peers {
        p.wait_texts("filipa", PER_SENDER);
        let expected: Vec<String> = (0..PER_SENDER).map(|i| format!("r2 filipa {i}")).collect();
        assert_eq!(p.texts_from("filipa"), expected);
    }
}
