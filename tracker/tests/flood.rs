//! The tracker under connection floods, on loopback: one host that holds a thousand idle
//! connections (re-opening each one the tracker closes) keeps no other host out, and the
//! tracker holds thousands of connections open at once, each source within its cap.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use p2p_core::protocol::Frame;
use p2p_core::tracker_client;
use support::{ROOM, announce, closed_by_peer, connect_from, eventually, exchange, start};
use tracker::TrackerConfig;

/// Each test opens thousands of sockets and loads the machine: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

const ATTACKER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

/// What the flooding host did.
#[derive(Debug, Default)]
struct FloodTally {
    /// Connections opened, re-openings included.
    opened: usize,
    /// Connections the tracker closed.
    closed_by_tracker: usize,
}

/// A host holding `count` idle connections to the tracker: each one the tracker closes is
/// opened again, until `stop`; `closed` counts the closings as they are seen.
fn idle_flood(
    tracker: SocketAddr,
    count: usize,
    stop: Arc<AtomicBool>,
    closed: Arc<AtomicUsize>,
    ready: crossbeam_channel::Sender<()>,
) -> FloodTally {
    let mut tally = FloodTally::default();
    let mut conns: Vec<TcpStream> = (0..count)
        .map(|_| connect_from(ATTACKER, tracker).unwrap())
        .collect();
    tally.opened = count;
    let _ = ready.send(());
    while !stop.load(Ordering::SeqCst) {
        for conn in &mut conns {
            if closed_by_peer(conn) {
                tally.closed_by_tracker += 1;
                closed.fetch_add(1, Ordering::SeqCst);
                if let Ok(again) = connect_from(ATTACKER, tracker) {
                    *conn = again;
                    tally.opened += 1;
                }
            }
        }
        // The attacker's pace: a sweep over its connections every 20 ms.
        thread::sleep(Duration::from_millis(20));
    }
    tally
}

#[test]
fn a_host_holding_a_thousand_idle_connections_keeps_no_other_host_out() {
    let _serial = serial();
    let (tracker, addr) = start(TrackerConfig::default());
    let stop = Arc::new(AtomicBool::new(false));
    let closed = Arc::new(AtomicUsize::new(0));
    let (ready_tx, ready) = crossbeam_channel::bounded(1);
    let flood = {
        let stop = Arc::clone(&stop);
        let closed = Arc::clone(&closed);
        thread::spawn(move || idle_flood(addr, 1_000, stop, closed, ready_tx))
    };
    ready
        .recv_timeout(Duration::from_secs(60))
        .expect("the flood opened its connections");

    // Honest peers on 127.0.0.1 announce one after another while the flood goes on.
    let timeouts = p2p_core::Timeouts::default();
    let started = Instant::now();
    let mut failures = Vec::new();
    for i in 0..200u16 {
        let me: SocketAddr = SocketAddr::new([127, 0, 0, 1].into(), 20_000 + i);
        if let Err(e) = tracker_client::announce(&addr.to_string(), ROOM, me, &timeouts) {
            failures.push(e.to_string());
        }
    }
    let took = started.elapsed();
    // The tracker keeps at most its per-source share of the flood's connections and closes
    // the rest, again and again: the flood sees that (its sweeps may lag the announces).
    let cap = TrackerConfig::default().max_connections_per_source;
    eventually(
        "the tracker closing the flood's connections over its cap",
        || closed.load(Ordering::SeqCst) >= 1_000 - cap,
    );
    stop.store(true, Ordering::SeqCst);
    let tally = flood.join().unwrap();
    eprintln!("200 honest announces during the flood in {took:.2?}; flood: {tally:?}");
    assert!(
        failures.is_empty(),
        "{} of 200 honest announces failed, the first: {}",
        failures.len(),
        failures[0]
    );
    assert_eq!(tracker.peers().len(), 200);
    assert!(
        tally.closed_by_tracker >= 1_000 - cap,
        "the tracker closed only {} of the flood's connections",
        tally.closed_by_tracker
    );
}

#[test]
fn thousands_of_connections_are_held_at_once_each_source_within_its_cap() {
    let _serial = serial();
    const SOURCES: u8 = 40;
    const EACH: usize = 70;
    const CAP: usize = 64;
    let (tracker, addr) = start(TrackerConfig {
        max_connections_per_source: CAP,
        // Opening 2,800 connections and then answering each takes a while on a loaded
        // machine; this test is about how many are held, not how long.
        request_timeout: Duration::from_secs(60),
        ..TrackerConfig::default()
    });
    // Every source opens EACH connections, one after another, and sends nothing yet.
    let conns: BTreeMap<u8, Vec<TcpStream>> = (1..=SOURCES)
        .map(|s| {
            let from = Ipv4Addr::new(127, 0, 3, s);
            (
                s,
                (0..EACH)
                    .map(|_| connect_from(from, addr).unwrap())
                    .collect(),
            )
        })
        .collect();
    // Past its cap, each source's connections are closed at once: the last ones it opened.
    let closed_count = || {
        conns
            .values()
            .flat_map(|c| &c[CAP..])
            .filter(|c| closed_by_peer(c))
            .count()
    };
    let over = usize::from(SOURCES) * (EACH - CAP);
    eventually(
        "the connections over each source's cap to be closed",
        || closed_count() == over,
    );
    // The 2,560 within the caps are all open, and each gets its answer.
    let mut answered = 0;
    for (s, held) in &conns {
        for (i, conn) in held[..CAP].iter().enumerate() {
            let me = SocketAddr::new([10, 3, *s, 1].into(), 1_000 + i as u16);
            match exchange(conn, &announce(me)) {
                Ok(Frame::PeerList(_)) => answered += 1,
                other => panic!("connection {i} of source {s}: {other:?}"),
            }
        }
    }
    assert_eq!(answered, usize::from(SOURCES) * CAP);
    assert_eq!(tracker.peers().len(), answered);
}
