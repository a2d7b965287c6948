//! The stats endpoint over real HTTP on 127.0.0.1: its counters move while peers
//! announce, leave and get refused, and it answers nothing but `GET /metrics`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::Duration;

use p2p_core::tracker_client;
use support::{ROOM, eventually};
use tracker::{Tracker, TrackerConfig};

/// One HTTP request to `addr`; returns the status line and the body.
fn http(addr: SocketAddr, request: &str) -> (String, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("a head and a body");
    (head.lines().next().unwrap().to_owned(), body.to_owned())
}

/// The samples of `GET /metrics`, by name with labels.
fn scrape(addr: SocketAddr) -> BTreeMap<String, f64> {
    let (status, body) = http(
        addr,
        "GET /metrics HTTP/1.1\r\nHost: tracker\r\nAccept: text/plain\r\n\r\n",
    );
    assert_eq!(status, "HTTP/1.1 200 OK");
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let (name, value) = l.rsplit_once(' ').unwrap();
            (name.to_owned(), value.parse().unwrap())
        })
        .collect()
}

#[test]
fn the_stats_endpoint_counts_announces_leaves_and_refusals_as_they_happen() {
    let tracker = Tracker::start(TrackerConfig {
        bind_addr: "127.0.0.1:0".parse().unwrap(),
        stats_addr: Some("127.0.0.1:0".parse().unwrap()),
        ..TrackerConfig::default()
    })
    .unwrap();
    let stats = tracker.stats_addr().expect("the stats endpoint is bound");
    let at_start = scrape(stats);
    assert_eq!(at_start["tracker_peers"], 0.0);
    assert_eq!(at_start["tracker_announces_total"], 0.0);
    assert!(at_start["process_resident_memory_bytes"] > 1e6);

    // Peers announce (and re-announce) from another thread while the endpoint is read.
    let target = tracker.local_addr().to_string();
    let announcer = thread::spawn(move || {
        let timeouts = p2p_core::Timeouts::default();
        for round in 0..20 {
            for port in 5_001..=5_005 {
                let me = SocketAddr::new([127, 0, 0, 1].into(), port);
                tracker_client::announce(&target, ROOM, me, &timeouts).unwrap();
            }
            if round == 0 {
                // One refused announce: port 0 is no address to list.
                let bad = SocketAddr::new([127, 0, 0, 1].into(), 0);
                assert!(tracker_client::announce(&target, ROOM, bad, &timeouts).is_err());
            }
        }
        let me = SocketAddr::new([127, 0, 0, 1].into(), 5_001);
        tracker_client::leave(&target, ROOM, me, &timeouts).unwrap();
    });
    let mut seen = Vec::new();
    eventually("the announces to be counted", || {
        let now = scrape(stats);
        let announces = now["tracker_announces_total"];
        if seen.last() != Some(&announces) {
            seen.push(announces);
        }
        announces == 100.0
    });
    announcer.join().unwrap();
    let done = scrape(stats);
    eprintln!("announces counted at each scrape: {seen:?}");
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
    assert_eq!(done["tracker_peers"], 4.0, "five registered, one left");
    assert_eq!(done["tracker_leaves_total"], 1.0);
    assert_eq!(done["tracker_refusals_total{reason=\"registry\"}"], 1.0);
    // The scrape's own connection is the one open.
    assert_eq!(done["tracker_open_connections"], 1.0);

    // Nothing but GET (or HEAD) /metrics.
    let (status, _) = http(stats, "GET / HTTP/1.1\r\n\r\n");
    assert!(status.starts_with("HTTP/1.1 404"), "{status}");
    let (status, _) = http(stats, "DELETE /metrics HTTP/1.1\r\n\r\n");
    assert!(status.starts_with("HTTP/1.1 405"), "{status}");
    tracker.shutdown();
    assert!(
        TcpStream::connect(stats).is_err(),
        "the endpoint outlived the tracker"
    );
}
