//! The tracker under abuse, on loopback: floods of registrations of bogus addresses, from
//! one source address and from many, cannot grow the registry (or the process's memory)
//! past its bound, and cannot push out, hijack or remove the peers of other sources.
//!
//! On Linux all of 127.0.0.0/8 is loopback, so each client socket is bound to its own
//! 127.x.y.z before it connects: the tracker sees each as a different source host.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use p2p_core::net::{read_frame_before, write_frame};
use p2p_core::protocol::{Announce, Frame, FrameReader, Leave, PeerList, Room};
use socket2::{Domain, Protocol, Socket, Type};
use tracker::{Tracker, TrackerConfig};

/// The room the flood announces in (any 16 bytes: a tracker sees only rooms' opaque ids).
const ROOM: Room = Room::from_bytes([7; 16]);

/// The tests measure the whole process's memory and load the machine: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What the tracker answered one request.
#[derive(Debug)]
enum Answer {
    Listed(PeerList),
    Left,
    Refused(String),
}

/// Sends `request` to the tracker from a socket bound to `source` and reads the answer.
fn request_from(source: Ipv4Addr, tracker: SocketAddr, request: &Frame) -> io::Result<Answer> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
    socket.bind(&SocketAddr::new(IpAddr::V4(source), 0).into())?;
    socket.connect_timeout(&tracker.into(), Duration::from_secs(5))?;
    // The tracker keeps a session open after its answer: this side closes it with a reset,
    // so that thousands of requests leave no TIME_WAIT state using up this side's ports.
    socket.set_linger(Some(Duration::ZERO))?;
    let stream: TcpStream = socket.into();
    write_frame(&stream, request)?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let frame = read_frame_before(&stream, &mut FrameReader::new(1 << 20), deadline)
        .map_err(|e| io::Error::other(e.to_string()))?;
    match frame {
        Frame::PeerList(list) => Ok(Answer::Listed(list)),
        Frame::LeaveAck => Ok(Answer::Left),
        Frame::Refuse { reason } => Ok(Answer::Refused(reason)),
        other => Err(io::Error::other(format!(
            "unexpected {} frame",
            other.name()
        ))),
    }
}

fn announce(listen_addr: SocketAddr) -> Frame {
    Frame::Announce(Announce::explicit(ROOM, listen_addr))
}

/// Announces `addr` from `source` and returns the peers listed; panics on anything else.
fn register(source: Ipv4Addr, tracker: SocketAddr, addr: SocketAddr) -> Vec<SocketAddr> {
    match request_from(source, tracker, &announce(addr)).unwrap() {
        Answer::Listed(list) => list.addrs(),
        other => panic!("announce of {addr} from {source}: {other:?}"),
    }
}

/// The tally of a flood.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Tally {
    accepted: usize,
    /// Refusals, by reason.
    refused: Vec<String>,
    failed: usize,
}

/// A bogus address, distinct for every `(source, n)`: nothing listens there.
fn bogus(source: Ipv4Addr, n: u32) -> SocketAddr {
    let [_, _, b, c] = source.octets();
    SocketAddr::new(
        IpAddr::V4(Ipv4Addr::new(10, b, c, (n % 250 + 1) as u8)),
        1024 + (n / 250) as u16,
    )
}

/// `per_source` announces of bogus addresses from each of `sources`, one thread per source,
/// all at once.
fn flood(tracker: SocketAddr, sources: &[Ipv4Addr], per_source: u32) -> Tally {
    thread::scope(|scope| {
        let handles: Vec<_> = sources
            .iter()
            .map(|&source| {
                scope.spawn(move || {
                    let mut tally = Tally::default();
                    for n in 0..per_source {
                        match request_from(source, tracker, &announce(bogus(source, n))) {
                            Ok(Answer::Listed(_)) => tally.accepted += 1,
                            Ok(Answer::Refused(reason)) => tally.refused.push(reason),
                            Ok(Answer::Left) | Err(_) => tally.failed += 1,
                        }
                    }
                    tally
                })
            })
            .collect();
        let mut total = Tally::default();
        for handle in handles {
            let tally = handle.join().unwrap();
            total.accepted += tally.accepted;
            total.refused.extend(tally.refused);
            total.failed += tally.failed;
        }
        total
    })
}

fn start(config: TrackerConfig) -> (Tracker, SocketAddr) {
    // Bound to every address so that requests from any 127.x.y.z reach it.
    let tracker = Tracker::start(TrackerConfig {
        bind_addr: "0.0.0.0:0".parse().unwrap(),
        ..config
    })
    .unwrap();
    let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), tracker.local_addr().port());
    (tracker, addr)
}

fn a(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

/// Resident memory of this process, in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status")
}

#[test]
fn a_flood_from_one_source_cannot_push_out_hijack_or_remove_other_sources_peers() {
    let _serial = serial();
    let (tracker, addr) = start(TrackerConfig {
        max_peers: 1_000,
        max_per_source: 200,
        ..TrackerConfig::default()
    });
    let (alice, bob, carol) = (a("10.1.0.2:7000"), a("10.1.0.3:7000"), a("10.1.0.3:7001"));
    register(ip("127.0.0.2"), addr, alice);
    register(ip("127.0.0.3"), addr, bob);
    register(ip("127.0.0.3"), addr, carol);

    let flooder = ip("127.0.0.66");
    let started = Instant::now();
    let tally = flood(addr, &[flooder], 3_000);
    let took = started.elapsed();
    eprintln!(
        "one source, 3000 announces in {took:.2?} ({:.0}/s): {} accepted, {} refused, {} failed",
        3_000.0 / took.as_secs_f64(),
        tally.accepted,
        tally.refused.len(),
        tally.failed
    );
    assert_eq!(tally.failed, 0, "every request was answered");
    assert_eq!(tally.accepted, 200, "the source got exactly its share");
    assert_eq!(tally.refused.len(), 2_800);
    assert!(
        tally
            .refused
            .iter()
            .all(|r| r == "too many peers registered from 127.0.0.66"),
        "{:?}",
        tally.refused.first()
    );

    // The flooder can neither take over nor remove another source's entry.
    match request_from(flooder, addr, &announce(alice)).unwrap() {
        Answer::Refused(reason) => assert!(reason.contains("another address"), "{reason}"),
        other => panic!("the flooder re-registered alice's address: {other:?}"),
    }
    match request_from(flooder, addr, &Frame::Leave(Leave::explicit(ROOM, bob))).unwrap() {
        Answer::Refused(reason) => assert!(reason.contains("another address"), "{reason}"),
        other => panic!("the flooder removed bob: {other:?}"),
    }

    let peers = tracker.peers();
    assert_eq!(peers.len(), 203);
    for honest in [alice, bob, carol] {
        assert!(peers.contains(&honest), "{honest} was pushed out");
    }
    // A newcomer from yet another source still gets in and is told about the honest peers
    // (203 entries fit in one answer of at most 256).
    let dave = a("10.1.0.4:7000");
    let listed = register(ip("127.0.0.4"), addr, dave);
    assert_eq!(listed.len(), 203);
    for honest in [alice, bob, carol] {
        assert!(listed.contains(&honest), "{honest} missing from {listed:?}");
    }
    // And the honest peers' re-announces go on being answered.
    let listed = register(ip("127.0.0.2"), addr, alice);
    assert!(listed.contains(&dave) && listed.contains(&bob) && !listed.contains(&alice));
}

#[test]
fn floods_from_many_sources_fill_the_registry_to_its_bound_and_memory_stays_bounded() {
    let _serial = serial();
    let config = TrackerConfig::default();
    let (max_peers, max_per_source) = (config.max_peers, config.max_per_source);
    let (tracker, addr) = start(config);
    let honest = [a("10.1.0.2:7000"), a("10.1.0.2:7001")];
    for peer in honest {
        register(ip("127.0.0.2"), addr, peer);
    }
    // How many entries each flooding source holds (a bogus address names its source).
    let held = |sources: &[Ipv4Addr]| -> Vec<usize> {
        let peers: BTreeSet<SocketAddr> = tracker.peers().into_iter().collect();
        sources
            .iter()
            .map(|&s| {
                (0..max_per_source as u32)
                    .filter(|&n| peers.contains(&bogus(s, n)))
                    .count()
            })
            .collect()
    };
    let sources_of = |third: u8| -> Vec<Ipv4Addr> {
        (1..=12).map(|d| Ipv4Addr::new(127, 0, third, d)).collect()
    };

    // Twelve sources of a thousand announces each: 12,000 for the 9,998 places left.
    let round = |sources: &[Ipv4Addr]| -> (Tally, Duration) {
        let started = Instant::now();
        let tally = flood(addr, sources, max_per_source as u32);
        (tally, started.elapsed())
    };
    let rss_start = rss_kib();
    let (first, took) = round(&sources_of(1));
    let rss_full = rss_kib();
    eprintln!(
        "12 sources, 12000 announces in {took:.2?} ({:.0}/s): {} accepted, {} refused, {} failed; \
         RSS {rss_start} KiB -> {rss_full} KiB; held per source {:?}",
        12_000.0 / took.as_secs_f64(),
        first.accepted,
        first.refused.len(),
        first.failed,
        held(&sources_of(1))
    );
    assert_eq!(first.failed, 0);
    assert!(first.accepted >= max_peers - honest.len());
    assert_eq!(first.accepted + first.refused.len(), 12_000);
    assert!(
        first.refused.iter().all(|r| r.contains("registry is full")),
        "{:?}",
        first.refused.first()
    );
    let peers = tracker.peers();
    assert_eq!(peers.len(), max_peers);
    assert!(honest.iter().all(|p| peers.contains(p)));

    // Twelve new sources, twelve thousand more into the full registry: the registry does
    // not grow, the honest source (2 entries) keeps its place, and every newcomer gets in,
    // taking places from the largest sources until all hold about an equal share (10,000
    // among 25 sources: 400).
    let (second, took) = round(&sources_of(2));
    let rss_after = rss_kib();
    let newcomers = held(&sources_of(2));
    let old = held(&sources_of(1));
    eprintln!(
        "12 more sources, 12000 announces into a full registry in {took:.2?} ({:.0}/s): {} \
         accepted, {} refused, {} failed; RSS {rss_full} KiB -> {rss_after} KiB; held per new \
         source {newcomers:?}, per old source {old:?}",
        12_000.0 / took.as_secs_f64(),
        second.accepted,
        second.refused.len(),
        second.failed
    );
    assert_eq!(second.failed, 0);
    assert_eq!(second.accepted + second.refused.len(), 12_000);
    let peers = tracker.peers();
    assert_eq!(peers.len(), max_peers);
    assert!(honest.iter().all(|p| peers.contains(p)));
    let share = max_peers / 25;
    assert!(
        newcomers.iter().all(|&n| n + 1 >= share),
        "a newcomer holds less than its share of {share}: {newcomers:?}"
    );
    let largest = newcomers.iter().chain(&old).max().copied().unwrap_or(0);
    let smallest_new = newcomers.iter().min().copied().unwrap_or(0);
    assert!(
        largest <= smallest_new + 1,
        "a source holds more than a newcomer that was refused: {newcomers:?} {old:?}"
    );
    // The registry's 10,000 entries take a few MiB; a leak of even one answer per request
    // (a few KiB each) would add tens of MiB over 12,000 requests.
    assert!(
        rss_full.saturating_sub(rss_start) < 64 * 1024,
        "filling the registry took {} KiB",
        rss_full.saturating_sub(rss_start)
    );
    assert!(
        rss_after.saturating_sub(rss_full) < 16 * 1024,
        "12,000 announces into a full registry grew memory by {} KiB",
        rss_after.saturating_sub(rss_full)
    );

    // A full registry still refreshes the peers it holds.
    let listed = register(ip("127.0.0.2"), addr, honest[0]);
    assert_eq!(listed.len(), TrackerConfig::default().max_response);
}

#[test]
fn a_floods_entries_expire_and_give_its_room_back_while_honest_peers_stay() {
    let _serial = serial();
    let ttl = Duration::from_secs(3);
    let (tracker, addr) = start(TrackerConfig {
        ttl,
        max_per_source: 100,
        ..TrackerConfig::default()
    });
    let alice = a("10.1.0.2:7000");
    register(ip("127.0.0.2"), addr, alice);
    let flooder = ip("127.0.0.66");
    let tally = flood(addr, &[flooder], 300);
    assert_eq!((tally.accepted, tally.refused.len()), (100, 200));
    let flooded: BTreeSet<SocketAddr> = (0..100).map(|n| bogus(flooder, n)).collect();
    assert!(flooded.is_subset(&tracker.peers().into_iter().collect()));

    // Alice re-announces often, as a peer does (well inside the TTL); the flooder stops.
    let deadline = Instant::now() + ttl * 4;
    loop {
        register(ip("127.0.0.2"), addr, alice);
        let peers = tracker.peers();
        assert!(peers.contains(&alice), "alice expired while re-announcing");
        if !peers.iter().any(|p| flooded.contains(p)) {
            assert_eq!(peers, vec![alice]);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the flood's entries never expired"
        );
        thread::sleep(Duration::from_millis(200));
    }
    // The source's room is back.
    let again = flood(addr, &[flooder], 150);
    assert_eq!((again.accepted, again.refused.len()), (100, 50));
}
