//! `shutdown()` and Drop stop and join every thread a peer started. This file holds one
//! test so that the process's thread count is not disturbed by other tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use p2p_core::Mode;
use support::*;

fn process_threads() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap()
}

#[test]
fn every_thread_is_joined_by_shutdown_and_drop() {
    let before = process_threads();
    {
        let tracker = start_tracker(Duration::from_secs(60));
        let t = tracker.local_addr().to_string();
        let mut peers: Vec<TestPeer> = ["a", "b", "c", "d"]
            .iter()
            .map(|n| TestPeer::start(config(n, Mode::tracker(t.clone()))))
            .collect();
        for p in &mut peers {
            p.wait_links(3);
        }
        for p in &peers {
            p.peer.send("bye soon").unwrap();
        }
        for p in &mut peers {
            let me = p.name().to_owned();
            for other in ["a", "b", "c", "d"].iter().filter(|o| **o != me) {
                p.wait_texts(other, 1);
            }
        }
        // accept + tracker + 3 links each way.
        assert_eq!(peers[0].peer.thread_count(), 8);
        // A connection that never handshakes, and one stuck mid-frame: shutdown must not
        // wait for their timeouts.
        let _idle = RawConn::connect(peers[0].peer.local_addr());
        let mut half = RawConn::connect(peers[1].peer.local_addr());
        half.send_bytes(&[0, 0, 1]).unwrap();
        assert!(process_threads() > before + 4 * 8);

        let first = peers.remove(0);
        first.peer.shutdown();
        for p in &mut peers {
            p.wait_links(2);
        }
        // The rest are dropped without an explicit shutdown, then the tracker.
        drop(peers);
        drop(tracker);
    }
    assert_eq!(process_threads(), before, "threads left running");
}
