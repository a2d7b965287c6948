//! What a peer does with the addresses a tracker lists: an address that cannot be joined
//! is tried again less and less often, not at every re-announce.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

use crossbeam_channel::{Receiver, bounded};
use p2p_core::protocol::{DEFAULT_MAX_FRAME_BYTES, Frame, FrameReader, PeerEntry, PeerList};
use p2p_core::{Mode, Peer};
use support::{PATIENCE, config};

/// A tracker by hand that answers every announce with `listed` and a 1 s interval, and
/// reports each announce it answered.
fn fake_tracker(listed: SocketAddr) -> (SocketAddr, Receiver<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = bounded(1024);
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = FrameReader::new(DEFAULT_MAX_FRAME_BYTES);
            // Every announce of the session is answered; anything else (the leave at the
            // end) goes unanswered.
            while let Ok(Frame::Announce(_)) = reader.read_frame(&mut stream) {
                let answer = Frame::PeerList(PeerList {
                    interval_secs: 1,
                    observed: "127.0.0.1:1".parse().unwrap(),
                    nat: false,
                    peers: vec![PeerEntry {
                        addr: listed,
                        nat: false,
                    }],
                });
                let _ = p2p_core::net::write_frame(&stream, &answer);
                if tx.send(()).is_err() {
                    return;
                }
            }
        }
    });
    (addr, rx)
}

#[test]
fn a_listed_address_that_keeps_failing_is_tried_less_and_less_often() {
    // Something that accepts connections and closes them at once: not a peer.
    let bogus = TcpListener::bind("127.0.0.1:0").unwrap();
    let bogus_addr = bogus.local_addr().unwrap();
    let tries = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&tries);
    thread::spawn(move || {
        for stream in bogus.incoming() {
            drop(stream);
            counter.fetch_add(1, Ordering::SeqCst);
        }
    });

    let (tracker, announces) = fake_tracker(bogus_addr);
    let peer = Peer::start(config("alice", Mode::tracker(tracker.to_string()))).unwrap();
    // The first announce, then eight re-announces a second apart.
    for _ in 0..9 {
        announces.recv_timeout(PATIENCE).expect("an announce");
    }
    let tried = tries.load(Ordering::SeqCst);
    // Without backing off: once at the start and once per re-announce (9). With it: at the
    // start, then after 1, 2 and 4 more intervals.
    assert!(
        (2..=6).contains(&tried),
        "tried {tried} times in 9 announces"
    );
    assert!(peer.listening_to().is_empty());
    peer.shutdown();
}
