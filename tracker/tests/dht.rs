//! `--dht UDP_PORT`: the tracker also runs a Mainline DHT node, the bootstrap node of a
//! private DHT. Peers find each other through it; it binds the tracker's address; it stops
//! with the tracker, its thread gone when `shutdown` returns (counted), within the 2 s
//! bound; the binary prints its address and refuses what cannot work.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use p2p_core::dht::{DhtConfig, DhtEngine, DhtEvent, InfoHash};
use tracker::{Error, Tracker, TrackerConfig};

/// The shutdown contract.
const BOUND: Duration = Duration::from_secs(2);
const PATIENCE: Duration = Duration::from_secs(60);

/// The tests count this process's threads: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// Takes the lock, then waits until no DHT thread of an earlier test is left (each test
/// waits for its own when it closes them, but on a loaded machine one may take longer than
/// the close's bound: then it is logged, and ends on its own soon after).
fn serial() -> MutexGuard<'static, ()> {
    let guard = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
    eventually("the DHT threads of earlier tests to end", || {
        node_threads() == 0
    });
    guard
}

/// How many `mainline` node threads this process has (Linux thread names are cut to 15
/// bytes: "Mainline Dht ac").
fn node_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|name| name.starts_with("Mainline Dht"))
        .count()
}

fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(10));
    }
}

fn with_dht(bind: &str) -> TrackerConfig {
    TrackerConfig {
        bind_addr: bind.parse().unwrap(),
        dht_port: Some(0),
        ..TrackerConfig::default()
    }
}

/// An engine on 127.0.0.1 bootstrapping from `node`, announcing `port` under `room`.
fn engine(node: SocketAddr, room: u8, port: u16) -> DhtEngine {
    DhtEngine::start(
        InfoHash([room; 20]),
        port,
        DhtConfig {
            bootstrap: vec![node.to_string()],
            bind_ip: Ipv4Addr::LOCALHOST,
            request_timeout: Duration::from_millis(300),
            lookup_interval: Duration::from_millis(500),
            ..DhtConfig::default()
        },
    )
    .unwrap()
}

/// Reads `engine`'s events until it has found every port of `ports`.
fn finds(engine: &DhtEngine, ports: &[u16]) {
    let deadline = Instant::now() + PATIENCE;
    let mut found = BTreeSet::new();
    while !ports.iter().all(|p| found.contains(p)) {
        let left = deadline.saturating_duration_since(Instant::now());
        match engine.events().recv_timeout(left) {
            Ok(DhtEvent::Found(addrs)) => found.extend(addrs.iter().map(SocketAddr::port)),
            Ok(_) => {}
            Err(e) => panic!("found {found:?} of {ports:?}: {e}"),
        }
    }
}

#[test]
fn peers_find_each_other_through_the_trackers_dht_node() {
    let _serial = serial();
    let tracker = Tracker::start(with_dht("127.0.0.1:0")).unwrap();
    let node = tracker.dht_addr().expect("a DHT node runs");
    assert_eq!(
        node.ip(),
        Ipv4Addr::LOCALHOST,
        "bound to the tracker's address"
    );
    assert_ne!(node.port(), 0);
    let a = engine(node, 7, 45_001);
    let b = engine(node, 7, 45_002);
    finds(&a, &[45_002]);
    finds(&b, &[45_001]);
}

#[test]
fn shutdown_stops_the_dht_node_and_its_thread_within_the_bound() {
    let _serial = serial();
    let before = node_threads();
    let tracker = Tracker::start(with_dht("127.0.0.1:0")).unwrap();
    let node = tracker.dht_addr().unwrap();
    eventually("the node's thread to be named", || {
        node_threads() == before + 1
    });
    // Engines keep querying it while it stops.
    let a = engine(node, 8, 45_011);
    let b = engine(node, 8, 45_012);
    finds(&b, &[45_011]);
    let with_engines = node_threads();

    let started = Instant::now();
    tracker.shutdown();
    let took = started.elapsed();
    assert!(took < BOUND, "shutdown took {took:.2?}");
    assert_eq!(
        node_threads(),
        with_engines - 1,
        "the node's thread outlived shutdown"
    );
    UdpSocket::bind(node).expect("the node's UDP port is free again");
    assert!(a.close() && b.close());
    assert_eq!(node_threads(), before);
}

#[test]
fn without_the_option_there_is_no_node() {
    let _serial = serial();
    let before = node_threads();
    let tracker = Tracker::start(TrackerConfig {
        bind_addr: "127.0.0.1:0".parse().unwrap(),
        ..TrackerConfig::default()
    })
    .unwrap();
    assert_eq!(tracker.dht_addr(), None);
    assert_eq!(node_threads(), before);
}

#[test]
fn a_taken_udp_port_or_an_ipv6_address_is_refused() {
    let _serial = serial();
    let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
    let err = Tracker::start(TrackerConfig {
        dht_port: Some(taken.local_addr().unwrap().port()),
        ..with_dht("127.0.0.1:0")
    })
    .unwrap_err();
    assert!(
        matches!(err, Error::Bind { addr, .. } if addr == taken.local_addr().unwrap()),
        "{err}"
    );
    assert_eq!(
        node_threads(),
        0,
        "a node that could not bind left a thread behind"
    );
    let err = Tracker::start(with_dht("[::1]:0")).unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err}");
}

/// The binary: `--dht 0` prints `dht node on ADDR` after its `listening on` line, serves
/// as a bootstrap node, and SIGTERM stops it within the bound with status 0.
#[test]
fn the_binary_runs_a_node_with_dht_and_stops_it_on_sigterm() {
    let _serial = serial();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tracker"))
        .args(["--port", "0", "--bind", "127.0.0.1", "--dht", "0"])
        .env("RUST_LOG", "off")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    assert!(line.starts_with("listening on 127.0.0.1:"), "{line:?}");
    line.clear();
    stderr.read_line(&mut line).unwrap();
    let node: SocketAddr = line
        .trim()
        .strip_prefix("dht node on ")
        .unwrap_or_else(|| panic!("unexpected line {line:?}"))
        .parse()
        .unwrap();
    let a = engine(node, 9, 45_021);
    let b = engine(node, 9, 45_022);
    finds(&b, &[45_021]);

    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    assert!(kill.unwrap().success());
    let (code, took) = wait_exit(&mut child);
    assert_eq!(code, Some(0));
    assert!(took < BOUND, "stopping took {took:.2?}");
    drop((a, b));
}

fn wait_exit(child: &mut Child) -> (Option<i32>, Duration) {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return (status.code(), started.elapsed());
        }
        if started.elapsed() > PATIENCE {
            let _ = child.kill();
            panic!("the tracker did not exit");
        }
        thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn the_binary_refuses_a_bad_dht_port_a_taken_one_and_ipv6() {
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_tracker"))
            .args(args)
            .env("RUST_LOG", "off")
            .output()
            .unwrap();
        let lines: Vec<String> = String::from_utf8_lossy(&out.stderr)
            .lines()
            .map(String::from)
            .collect();
        (out.status.code(), lines)
    };
    for bad in ["x", "70000", "-1"] {
        let (code, lines) = run(&["--port", "0", "--dht", bad]);
        assert_eq!(code, Some(2), "{bad}: {lines:?}");
        assert_eq!(lines.len(), 1, "{bad}: {lines:?}");
    }
    let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let (code, lines) = run(&["--port", "0", "--bind", "127.0.0.1", "--dht", &port]);
    assert_eq!(code, Some(1), "{lines:?}");
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("cannot listen"), "{lines:?}");
    let (code, lines) = run(&["--port", "0", "--bind", "::1", "--dht", "0"]);
    assert_eq!(code, Some(1), "{lines:?}");
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("IPv4"), "{lines:?}");
}
