//! Answering one request: a frame in, the registry consulted or changed, a frame out.
//!
//! No sockets here: the event loop reads the request and writes the answer, and logs and
//! counts the [`Outcome`].

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use p2p_core::protocol::{Frame, How, Introduce, PeerEntry, PeerList, Room};

use crate::registry::{Announced, Refusal, Registry};

/// Largest request the tracker reads, kind byte and body: an announce or a leave is under
/// 100 bytes (with a 32-byte room id and IPv6 addresses, about 80). A connection can make the
/// tracker hold no more than a read buffer for this before it has sent a whole request.
pub(crate) const MAX_REQUEST_BYTES: usize = 256;

/// What a request came to, for the log and the counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// An announce was taken: `listed` other peers were sent back; `evicted` gave its place
    /// in a full registry.
    Announced {
        /// The address registered.
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

/// Who made a request: where it came from, and the tracker's own address on that
/// connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Requester {
    /// The connection's source address.
    pub(crate) remote: SocketAddr,
    /// The tracker's address of the connection (`local_addr()` of its socket).
    pub(crate) local: IpAddr,
}

/// The answer to one request, and what it changes beyond it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Answer {
    /// The frame to send back.
    pub(crate) frame: Frame,
    /// For the log and the counters.
    pub(crate) outcome: Outcome,
    /// The registration an announce made: the session belongs to it from now on.
    pub(crate) registered: Option<(Room, SocketAddr)>,
    /// The registration a leave removed.
    pub(crate) left: Option<(Room, SocketAddr)>,
    /// Pushes to make on other peers' sessions: each registered peer of the room with
    /// what to tell it (addresses as registered; see [`as_seen_by`]).
    pub(crate) introductions: Vec<(SocketAddr, Introduce)>,
}

/// Where a registered `addr` is reached from a connection from `requester` to the
/// tracker's `local` address: a loopback address (a peer on the tracker's own host, which
/// announced over loopback, like the desktop app's hosted tracker) is reached by other hosts
/// at the address they reached the tracker at.
pub(crate) fn as_seen_by(addr: SocketAddr, requester: IpAddr, local: IpAddr) -> SocketAddr {
    if addr.ip().is_loopback() && !requester.is_loopback() && !local.is_loopback() {
        SocketAddr::new(local, addr.port())
    } else {
        addr
    }
}

/// What the tracker tells peer `listed` when `announcer` asks to be introduced: nothing if
/// the announcer can reach it (`listed` open: the announcer's hello does), a duplex link
/// to the announcer if only `listed` is behind NAT, a punch if both are.
pub(crate) fn introduction(announcer_nat: bool, listed_nat: bool) -> Option<How> {
    match (announcer_nat, listed_nat) {
        (_, false) => None,
        (false, true) => Some(How::Connect),
        (true, true) => Some(How::Punch),
    }
}

/// Answers `request`, from `requester` at `now`.
pub(crate) fn answer(
    registry: &mut Registry,
    request: Frame,
    requester: Requester,
    now: Instant,
    interval_secs: u32,
) -> Answer {
    let source = requester.remote.ip();
    let plain = |frame, outcome| Answer {
        frame,
        outcome,
        registered: None,
        left: None,
        introductions: Vec::new(),
    };
    let refuse = |refusal: Refusal| {
        let frame = Frame::Refuse {
            reason: refusal.to_string(),
        };
        plain(frame, Outcome::Refused(refusal))
    };
    match request {
        Frame::Announce(announce) => {
            let ip = announce.explicit_ip.unwrap_or(source);
            let addr = SocketAddr::new(ip, announce.listen_port);
            // Behind NAT: said so, or seen through a translation (its own address of the
            // connection is not the one it comes from). An explicit IP is taken as one
            // others can reach.
            let nat = announce.behind_nat
                || (announce.explicit_ip.is_none() && announce.local_ip != source);
            match registry.announce(&announce.room, addr, nat, source, now) {
                Ok(Announced { peers, evicted }) => {
                    let introductions = if announce.introduce {
                        peers
                            .iter()
                            .filter_map(|p| {
                                let how = introduction(nat, p.nat)?;
                                Some((p.addr, Introduce { addr, how }))
                            })
                            .collect()
                    } else {
                        Vec::new()
                    };
                    let outcome = Outcome::Announced {
                        addr,
                        listed: peers.len(),
                        evicted,
                    };
                    let peers = peers
                        .into_iter()
                        .map(|p| PeerEntry {
                            addr: as_seen_by(p.addr, source, requester.local),
                            nat: p.nat,
                        })
                        .collect();
                    let list = PeerList {
                        interval_secs,
                        observed: addr,
                        nat,
                        peers,
                    };
                    Answer {
                        frame: Frame::PeerList(list),
                        outcome,
                        registered: Some((announce.room, addr)),
                        left: None,
                        introductions,
                    }
                }
                Err(refusal) => refuse(refusal),
            }
        }
        Frame::Leave(leave) => {
            let addr = SocketAddr::new(leave.explicit_ip.unwrap_or(source), leave.listen_port);
            match registry.leave(&leave.room, addr, source) {
                Ok(was_there) => Answer {
                    left: Some((leave.room, addr)),
                    ..plain(Frame::LeaveAck, Outcome::Left { addr, was_there })
                },
                Err(refusal) => refuse(refusal),
            }
        }
        other => {
            let kind = other.name();
            let frame = Frame::Refuse {
                reason: format!("a tracker does not take {kind} frames"),
            };
            plain(frame, Outcome::Unexpected(kind))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use p2p_core::protocol::{Announce, Leave, PROTOCOL_VERSION};

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
        let addr: SocketAddr = addr.parse().unwrap();
        Frame::Announce(Announce {
            version: PROTOCOL_VERSION,
            room: Room::from_bytes([1; 16]),
            listen_port: addr.port(),
            explicit_ip: Some(addr.ip()),
            local_ip: addr.ip(),
            behind_nat: false,
            introduce: false,
        })
    }

    /// An announce without an explicit IP, from a peer whose own address of its connection
    /// is `local_ip`.
    fn observed(port: u16, local_ip: &str, introduce: bool) -> Frame {
        Frame::Announce(Announce {
            version: PROTOCOL_VERSION,
            room: Room::from_bytes([1; 16]),
            listen_port: port,
            explicit_ip: None,
            local_ip: local_ip.parse().unwrap(),
            behind_nat: false,
            introduce,
        })
    }

    const LO: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    fn from(remote: &str, local: &str) -> Requester {
        Requester {
            remote: remote.parse().unwrap(),
            local: local.parse().unwrap(),
        }
    }

    fn lo() -> Requester {
        from("127.0.0.1:50000", "127.0.0.1")
    }

    fn list(answer: &Answer) -> &PeerList {
        match &answer.frame {
            Frame::PeerList(list) => list,
            other => panic!("not a list: {other:?}"),
        }
    }

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
        let a = answer(&mut r, announce("127.0.0.1:5"), lo(), now, 20);
        assert_eq!(
            a.frame,
            Frame::PeerList(PeerList {
                interval_secs: 20,
                observed: "127.0.0.1:5".parse().unwrap(),
                nat: false,
                peers: vec![]
            })
        );
        assert!(matches!(a.outcome, Outcome::Announced { listed: 0, .. }));
        let a = answer(&mut r, announce("127.0.0.1:6"), lo(), now, 20);
        assert_eq!(list(&a).addrs(), ["127.0.0.1:5".parse().unwrap()]);
        let leave = Frame::Leave(Leave {
            room: Room::from_bytes([1; 16]),
            listen_port: 5,
            explicit_ip: Some(LO),
        });
        assert_eq!(answer(&mut r, leave, lo(), now, 20).frame, Frame::LeaveAck);
        let a = answer(&mut r, announce("127.0.0.1:0"), lo(), now, 20);
        assert!(matches!(a.frame, Frame::Refuse { reason } if reason.contains("invalid address")));
        assert!(matches!(
            a.outcome,
            Outcome::Refused(Refusal::InvalidAddress(..))
        ));
        let a = answer(&mut r, Frame::Chat { text: "hi".into() }, lo(), now, 20);
        assert!(matches!(a.frame, Frame::Refuse { .. }));
        assert!(matches!(a.outcome, Outcome::Unexpected(_)));
        assert_eq!(r.len(), 1);
    }

    /// Without `--ip`, the tracker registers the address it sees, tells the peer, and takes
    /// a peer whose own address differs from the one it comes from to be behind NAT.
    #[test]
    fn the_observed_address_is_registered_and_a_translated_peer_is_behind_nat() {
        let mut r = registry();
        let now = Instant::now();
        let open = answer(
            &mut r,
            observed(4000, "10.0.0.2", false),
            from("10.0.0.2:5", "10.0.0.1"),
            now,
            20,
        );
        assert_eq!(list(&open).observed, "10.0.0.2:4000".parse().unwrap());
        assert!(!list(&open).nat);
        let natted = answer(
            &mut r,
            observed(4001, "192.168.1.7", false),
            from("203.0.113.9:4001", "10.0.0.1"),
            now,
            20,
        );
        assert_eq!(list(&natted).observed, "203.0.113.9:4001".parse().unwrap());
        assert!(list(&natted).nat);
        assert_eq!(
            list(&natted).peers,
            [PeerEntry {
                addr: "10.0.0.2:4000".parse().unwrap(),
                nat: false
            }]
        );
        // The open peer learns the other is behind NAT.
        let again = answer(
            &mut r,
            observed(4000, "10.0.0.2", false),
            from("10.0.0.2:5", "10.0.0.1"),
            now,
            20,
        );
        assert_eq!(
            list(&again).peers,
            [PeerEntry {
                addr: "203.0.113.9:4001".parse().unwrap(),
                nat: true
            }]
        );
    }

    /// A peer registered over loopback (on the tracker's host) is listed to a peer on
    /// another host at the tracker's own address of that peer's connection; to loopback
    /// requesters it stays as it is.
    #[test]
    fn loopback_entries_are_rewritten_for_requesters_on_other_hosts() {
        let mut r = registry();
        let now = Instant::now();
        answer(&mut r, observed(7100, "127.0.0.1", false), lo(), now, 20);
        let far = answer(
            &mut r,
            observed(7200, "10.0.0.2", false),
            from("10.0.0.2:9", "10.0.0.1"),
            now,
            20,
        );
        assert_eq!(list(&far).addrs(), ["10.0.0.1:7100".parse().unwrap()]);
        let near = answer(&mut r, observed(7300, "127.0.0.1", false), lo(), now, 20);
        let mut seen = list(&near).addrs();
        seen.sort();
        assert_eq!(
            seen,
            [
                "10.0.0.2:7200".parse().unwrap(),
                "127.0.0.1:7100".parse().unwrap()
            ]
        );
        assert_eq!(
            as_seen_by("127.0.0.1:1".parse().unwrap(), LO, LO),
            "127.0.0.1:1".parse().unwrap()
        );
    }

    /// Introductions go to the listed peers behind NAT: connect for an open announcer, punch
    /// for one behind NAT too; none unless the announce asks for them.
    #[test]
    fn introductions_follow_who_is_behind_nat() {
        assert_eq!(introduction(false, false), None);
        assert_eq!(introduction(true, false), None);
        assert_eq!(introduction(false, true), Some(How::Connect));
        assert_eq!(introduction(true, true), Some(How::Punch));
        let mut r = registry();
        let now = Instant::now();
        let home = |port: u16, ext: &str, introduce: bool| {
            (
                observed(port, "192.168.1.2", introduce),
                from(&format!("{ext}:{port}"), "10.0.0.1"),
            )
        };
        let (req, who) = home(4000, "203.0.113.1", true);
        assert!(answer(&mut r, req, who, now, 20).introductions.is_empty());
        let (req, who) = home(4001, "203.0.113.2", false);
        assert!(
            answer(&mut r, req, who, now, 20).introductions.is_empty(),
            "not asked"
        );
        let (req, who) = home(4001, "203.0.113.2", true);
        assert_eq!(
            answer(&mut r, req, who, now, 20).introductions,
            [(
                "203.0.113.1:4000".parse().unwrap(),
                Introduce {
                    addr: "203.0.113.2:4001".parse().unwrap(),
                    how: How::Punch
                }
            )]
        );
        let open = answer(
            &mut r,
            observed(5000, "10.0.0.2", true),
            from("10.0.0.2:1", "10.0.0.1"),
            now,
            20,
        );
        let mut pushed: Vec<_> = open
            .introductions
            .iter()
            .map(|(to, i)| (to.port(), i.how))
            .collect();
        pushed.sort_by_key(|p| p.0);
        assert_eq!(pushed, [(4000, How::Connect), (4001, How::Connect)]);
    }
}
