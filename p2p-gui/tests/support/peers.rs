//! Real peers of p2p-core on 127.0.0.1, as the app's counterparts.

use std::net::TcpListener;
use std::time::Instant;

use p2p_core::{Event, Peer, PeerConfig};

use super::DEADLINE;

/// A peer named `name` on a free port of 127.0.0.1, listening to nobody.
pub fn alone_peer(name: &str) -> Peer {
    let mut config = PeerConfig::new(name);
    config.bind_addr = "127.0.0.1:0".parse().expect("addr");
    Peer::start(config).expect("peer starts")
}

/// A port of 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// Waits until `listener` of `peer` leaves, and checks that it said goodbye.
pub fn sees_goodbye(peer: &Peer, listener: &str) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        match peer.events().recv_deadline(deadline) {
            Ok(Event::ListenerLeft { peer, reason }) if peer.username == listener => {
                assert_eq!(reason, p2p_core::Departure::Left);
                return;
            }
            Ok(_) => {}
            Err(e) => panic!("{listener} was never seen leaving: {e}"),
        }
    }
}

/// The next chat message `peer` receives: sender and text.
pub fn recv_message(peer: &Peer) -> (String, String) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        match peer.events().recv_deadline(deadline) {
            Ok(Event::Message { from, text }) => return (from.username.clone(), text.to_string()),
            Ok(_) => {}
            Err(e) => panic!("no message: {e}"),
        }
    }
}
