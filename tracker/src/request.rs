//! Answering one request: a frame in, the registry consulted or changed, a frame out.
//!
//! No sockets here: the event loop reads the request and writes the answer, and logs and
//! counts the [`Outcome`].

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use p2p_core::protocol::{Frame, PeerList};

use crate::registry::{Announced, Refusal, Registry};

/// Largest request the tracker reads, kind byte and body: an announce or a leave is under
/// 100 bytes (a room id, when rooms come, adds a few dozen). A connection can make the
/// tracker hold no more than a read buffer for this before it has sent a whole request.
pub(crate) const MAX_REQUEST_BYTES: usize = 256;

/// What a request came to, for the log and the counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// An announce was taken: `listed` other peers were sent back; `evicted` gave its place
    /// in a full registry.
    Announced {
        /// The address announced.
        addr: SocketAddr,
        /// How many peers the answer lists.
        listed: usize,
        /// The entry that made room for this one.
        evicted: Option<SocketAddr>,
    },
    /// A leave was taken (`was_there`: the address was registered).
    Left {
        /// The address that left.
        addr: SocketAddr,
        /// Whether it was registered.
        was_there: bool,
    },
    /// The registry refused an announce or a leave.
    Refused(Refusal),
    /// A frame a tracker does not take (a peer's handshake, a chat text, ...).
    Unexpected(&'static str),
}

/// Answers `request`, sent from `source` at `now`.
///
/// Rooms (secure-rooms issue) will pick the room's registry from the announce here; the
/// rest stays as it is.
pub(crate) fn answer(
    registry: &mut Registry,
    request: Frame,
    source: IpAddr,
    now: Instant,
    interval_secs: u32,
) -> (Frame, Outcome) {
    let refuse = |refusal: Refusal| {
        let frame = Frame::Refuse {
            reason: refusal.to_string(),
        };
        (frame, Outcome::Refused(refusal))
    };
    match request {
        Frame::Announce(announce) => {
            let addr = announce.listen_addr;
            match registry.announce(addr, source, now) {
                Ok(Announced { peers, evicted }) => {
                    let outcome = Outcome::Announced {
                        addr,
                        listed: peers.len(),
                        evicted,
                    };
                    let list = PeerList {
                        interval_secs,
                        peers,
                    };
                    (Frame::PeerList(list), outcome)
                }
                Err(refusal) => refuse(refusal),
            }
        }
        Frame::Leave { listen_addr } => match registry.leave(listen_addr, source) {
            Ok(was_there) => (
                Frame::LeaveAck,
                Outcome::Left {
                    addr: listen_addr,
                    was_there,
                },
            ),
            Err(refusal) => refuse(refusal),
        },
        other => {
            let kind = other.name();
            let frame = Frame::Refuse {
                reason: format!("a tracker does not take {kind} frames"),
            };
            (frame, Outcome::Unexpected(kind))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use p2p_core::protocol::{Announce, PROTOCOL_VERSION};

    use super::*;
    use crate::registry::RegistryLimits;

    fn registry() -> Registry {
        Registry::new(RegistryLimits {
            ttl: Duration::from_secs(30),
            max_peers: 10,
            max_per_source: 10,
            max_response: 10,
        })
    }

    fn announce(addr: &str) -> Frame {
        Frame::Announce(Announce {
            version: PROTOCOL_VERSION,
            listen_addr: addr.parse().unwrap(),
        })
    }

    const LO: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    /// What a connection can make the tracker hold before it has sent a whole request:
    /// nothing before its first byte, one small read buffer after; a length prefix above the
    /// request limit is refused before anything is allocated for it.
    #[test]
    fn a_request_reader_holds_little_before_the_request_is_whole() {
        use p2p_core::protocol::{FrameReader, ProtocolError, ReadError};

        let reader = FrameReader::new(MAX_REQUEST_BYTES);
        assert_eq!(reader.capacity(), 0);
        // A header announcing the largest request, and one byte of it; then nothing.
        let mut stalled = FrameReader::new(MAX_REQUEST_BYTES);
        let mut src: &[u8] = &[0, 0, 1, 0, 7];
        stalled.fill(&mut src).unwrap();
        assert_eq!(stalled.next_buffered(), Ok(None));
        assert!(stalled.capacity() <= 1024, "{}", stalled.capacity());
        // A header announcing a megabyte: refused as it is read.
        let mut big = FrameReader::new(MAX_REQUEST_BYTES);
        let mut src: &[u8] = &[0, 16, 0, 0, 7];
        let err = big.read_frame(&mut src).unwrap_err();
        assert!(matches!(
            err,
            ReadError::Protocol(ProtocolError::FrameTooLarge { .. })
        ));
        assert!(big.capacity() <= 1024, "{}", big.capacity());
    }

    #[test]
    fn announces_and_leaves_are_answered_and_the_rest_refused() {
        let mut r = registry();
        let now = Instant::now();
        let (frame, outcome) = answer(&mut r, announce("127.0.0.1:5"), LO, now, 20);
        assert_eq!(
            frame,
            Frame::PeerList(PeerList {
                interval_secs: 20,
                peers: vec![]
            })
        );
        assert!(matches!(outcome, Outcome::Announced { listed: 0, .. }));
        let (frame, _) = answer(&mut r, announce("127.0.0.1:6"), LO, now, 20);
        assert!(
            matches!(frame, Frame::PeerList(l) if l.peers == vec!["127.0.0.1:5".parse().unwrap()])
        );
        let leave = Frame::Leave {
            listen_addr: "127.0.0.1:5".parse().unwrap(),
        };
        assert_eq!(answer(&mut r, leave, LO, now, 20).0, Frame::LeaveAck);
        let (frame, outcome) = answer(&mut r, announce("127.0.0.1:0"), LO, now, 20);
        assert!(matches!(frame, Frame::Refuse { reason } if reason.contains("invalid address")));
        assert!(matches!(
            outcome,
            Outcome::Refused(Refusal::InvalidAddress(..))
        ));
        let (frame, outcome) = answer(&mut r, Frame::Chat { text: "hi".into() }, LO, now, 20);
        assert!(matches!(frame, Frame::Refuse { .. }));
        assert!(matches!(outcome, Outcome::Unexpected(_)));
        assert_eq!(r.len(), 1);
    }
}
