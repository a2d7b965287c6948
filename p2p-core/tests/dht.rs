//! The DHT engine on a private DHT over loopback: a tracker's DHT node (`tracker --dht`)
//! on 127.0.0.1 is the only bootstrap node, so nothing reaches the public DHT. Engines
//! announcing one infohash find each other; two infohashes stay apart; closing an engine
//! ends its threads within the bound, even with queries in flight to a node that never
//! answers; a hostile node's floods of addresses are capped.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeSet, HashMap};
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use p2p_core::dht::{CLOSE_BOUND, DhtConfig, DhtEngine, DhtEvent, InfoHash};
use tracker::{Tracker, TrackerConfig};

/// How long a test waits for something that should happen (generous: shared machine).
const PATIENCE: Duration = Duration::from_secs(60);

/// The tests count this process's threads: one test at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// Takes the lock, then waits until no DHT thread of an earlier test is left (each test
/// waits for its own when it closes them, but on a loaded machine one may take longer than
/// the close's bound: then it is logged, and ends on its own soon after).
fn serial() -> MutexGuard<'static, ()> {
    let guard = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
    eventually("the DHT threads of earlier tests to end", || {
        dht_threads() == 0
    });
    guard
}

/// A tracker with a DHT node on 127.0.0.1: the private DHT's bootstrap node.
fn bootstrap_node() -> Tracker {
    Tracker::start(TrackerConfig {
        bind_addr: "127.0.0.1:0".parse().unwrap(),
        dht_port: Some(0),
        ..TrackerConfig::default()
    })
    .expect("tracker with a DHT node starts")
}

/// An engine configuration for the private DHT at `bootstrap`, with lookups every
/// `interval`.
fn config(bootstrap: SocketAddr, interval: Duration) -> DhtConfig {
    DhtConfig {
        bootstrap: vec![bootstrap.to_string()],
        bind_ip: Ipv4Addr::LOCALHOST,
        request_timeout: Duration::from_millis(300),
        lookup_interval: interval,
        ..DhtConfig::default()
    }
}

fn infohash(n: u8) -> InfoHash {
    InfoHash([n; 20])
}

/// Names of this process's threads (Linux: `/proc/self/task/*/comm`, at most 15 bytes).
fn thread_names() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .map(|name| name.trim_end().to_owned())
        .collect()
}

/// How many threads of the DHT there are: engines' and `mainline`'s nodes'.
fn dht_threads() -> usize {
    thread_names()
        .iter()
        .filter(|n| n.as_str() == "dht-engine" || n.starts_with("Mainline Dht"))
        .count()
}

/// An engine and everything it has reported.
struct Probe {
    engine: DhtEngine,
    port: u16,
    found: BTreeSet<SocketAddr>,
    lookups: usize,
    announced: bool,
    /// Where the DHT says it sees the engine.
    seen_at: Option<SocketAddr>,
}

impl Probe {
    fn start(infohash: InfoHash, port: u16, config: DhtConfig) -> Probe {
        Probe {
            engine: DhtEngine::start(infohash, port, config).expect("engine starts"),
            port,
            found: BTreeSet::new(),
            lookups: 0,
            announced: false,
            seen_at: None,
        }
    }

    /// Takes every event waiting, without blocking.
    fn drain(&mut self) {
        while let Ok(event) = self.engine.events().try_recv() {
            match event {
                DhtEvent::Found(addrs) => self.found.extend(addrs),
                DhtEvent::LookupDone { .. } => self.lookups += 1,
                DhtEvent::Announced => self.announced = true,
                DhtEvent::SeenAt(addr) => self.seen_at = Some(addr),
                DhtEvent::AnnounceFailed(reason) => panic!("announce failed: {reason}"),
                other => panic!("unexpected event {other:?}"),
            }
        }
    }

    fn found_ports(&self) -> BTreeSet<u16> {
        self.found.iter().map(SocketAddr::port).collect()
    }
}

/// Polls every probe until `cond` holds for all of them, or fails after [`PATIENCE`].
fn wait_all(what: &str, probes: &mut [Probe], cond: impl Fn(&Probe) -> bool) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        probes.iter_mut().for_each(Probe::drain);
        if probes.iter().all(&cond) {
            return;
        }
        let state: Vec<_> = probes
            .iter()
            .map(|p| (p.port, p.found_ports(), p.lookups))
            .collect();
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {state:?}"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// Polls `cond` until it holds, failing the test after [`PATIENCE`].
fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {:?}",
            thread_names()
        );
        thread::sleep(Duration::from_millis(10));
    }
}

/// Closes an engine on another thread; how long it took (`None`: not back in 10 bounds).
fn timed_close(engine: DhtEngine) -> Option<(Duration, bool)> {
    let (tx, rx) = crossbeam_channel::bounded(1);
    thread::spawn(move || {
        let started = Instant::now();
        let ended = engine.close();
        let _ = tx.send((started.elapsed(), ended));
    });
    rx.recv_timeout(CLOSE_BOUND * 10).ok()
}

#[test]
fn five_engines_announcing_one_infohash_all_find_each_other() {
    let _serial = serial();
    let node = bootstrap_node();
    let bootstrap = node.dht_addr().unwrap();
    let ports: Vec<u16> = (0..5).map(|i| 41_000 + i).collect();
    let mut probes: Vec<Probe> = ports
        .iter()
        .map(|&port| Probe::start(infohash(1), port, config(bootstrap, Duration::from_secs(1))))
        .collect();
    wait_all("every engine to find the four others", &mut probes, |p| {
        let others: BTreeSet<u16> = ports.iter().copied().filter(|&q| q != p.port).collect();
        p.announced && p.found_ports() == others && p.seen_at.is_some()
    });
    for probe in &probes {
        let seen_at = probe.seen_at.unwrap();
        assert_eq!(
            (seen_at.ip(), seen_at.port()),
            (
                std::net::IpAddr::V4(Ipv4Addr::LOCALHOST),
                probe.engine.local_addr().unwrap().port()
            ),
            "the DHT sees each engine at its UDP socket's address"
        );
        assert!(
            probe.found.iter().all(|a| a.ip() == Ipv4Addr::LOCALHOST),
            "{:?}",
            probe.found
        );
    }
}

#[test]
fn two_infohashes_on_one_dht_stay_apart() {
    let _serial = serial();
    let node = bootstrap_node();
    let bootstrap = node.dht_addr().unwrap();
    let rooms: HashMap<u8, Vec<u16>> = [
        (1, vec![42_001, 42_002, 42_003]),
        (2, vec![42_011, 42_012, 42_013]),
    ]
    .into();
    let mut probes: Vec<(u8, Probe)> = rooms
        .iter()
        .flat_map(|(&room, ports)| {
            ports.iter().map(move |&port| {
                (
                    room,
                    Probe::start(
                        infohash(room),
                        port,
                        config(bootstrap, Duration::from_millis(500)),
                    ),
                )
            })
        })
        .collect();
    let deadline = Instant::now() + PATIENCE;
    // Each finds its room's two others; then, after two more lookups each (every engine
    // announced before they began), still nothing of the other room.
    loop {
        for (_, p) in &mut probes {
            p.drain();
        }
        let complete = probes.iter().all(|(room, p)| {
            p.found_ports().len() == 2 && p.found_ports().iter().all(|q| rooms[room].contains(q))
        });
        if complete {
            break;
        }
        assert!(Instant::now() < deadline, "rooms did not complete");
        thread::sleep(Duration::from_millis(20));
    }
    let marks: Vec<usize> = probes.iter().map(|(_, p)| p.lookups).collect();
    loop {
        for (_, p) in &mut probes {
            p.drain();
        }
        if probes
            .iter()
            .zip(&marks)
            .all(|((_, p), m)| p.lookups >= m + 2)
        {
            break;
        }
        assert!(Instant::now() < deadline, "lookups stopped");
        thread::sleep(Duration::from_millis(20));
    }
    for (room, p) in &probes {
        let expected: BTreeSet<u16> = rooms[room]
            .iter()
            .copied()
            .filter(|&q| q != p.port)
            .collect();
        assert_eq!(p.found_ports(), expected, "room {room}, engine {}", p.port);
    }
}

#[test]
fn closing_an_engine_ends_its_threads_within_the_bound() {
    let _serial = serial();
    let node = bootstrap_node();
    let bootstrap = node.dht_addr().unwrap();
    let before = dht_threads();
    let mut probe = Probe::start(
        infohash(3),
        43_000,
        config(bootstrap, Duration::from_secs(1)),
    );
    // A thread takes its name a moment after it starts.
    eventually("the engine's two threads to be named", || {
        dht_threads() == before + 2
    });
    wait_all("a lookup", std::slice::from_mut(&mut probe), |p| {
        p.lookups >= 1
    });
    let udp = probe.engine.local_addr().unwrap();

    let (took, ended) = timed_close(probe.engine).expect("close returned");
    assert!(ended, "close reported a thread still running");
    assert!(took < CLOSE_BOUND, "close took {took:?}");
    assert_eq!(dht_threads(), before, "{:?}", thread_names());
    UdpSocket::bind(udp).expect("the engine's UDP port is free again");
}

#[test]
fn closing_an_engine_with_queries_in_flight_to_a_silent_node_is_not_delayed() {
    let _serial = serial();
    // A "bootstrap node" that takes every request and never answers.
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let before = dht_threads();
    let engine = DhtEngine::start(
        infohash(4),
        44_000,
        DhtConfig {
            bootstrap: vec![silent.local_addr().unwrap().to_string()],
            bind_ip: Ipv4Addr::LOCALHOST,
            request_timeout: Duration::from_secs(30),
            ..DhtConfig::default()
        },
    )
    .unwrap();
    // Wait until it has asked: its lookup now waits 30 s for an answer.
    silent.set_read_timeout(Some(PATIENCE)).unwrap();
    silent
        .recv_from(&mut [0u8; 2048])
        .expect("the engine sent a request");

    let (took, ended) = timed_close(engine).expect("close returned");
    assert!(ended, "close reported a thread still running");
    assert!(took < CLOSE_BOUND, "close took {took:?}");
    assert_eq!(dht_threads(), before, "{:?}", thread_names());
}

/// A bencoded value (BEP 3), enough to read the requests a DHT node gets.
#[derive(Debug)]
enum Bencode {
    Int,
    Bytes(Vec<u8>),
    List,
    Dict(Vec<(Vec<u8>, Bencode)>),
}

fn decode(buf: &[u8], at: &mut usize) -> Option<Bencode> {
    let read_until = |at: &mut usize, end: u8| {
        let start = *at;
        while *buf.get(*at)? != end {
            *at += 1;
        }
        *at += 1;
        std::str::from_utf8(&buf[start..*at - 1])
            .ok()?
            .parse::<i64>()
            .ok()
    };
    match *buf.get(*at)? {
        b'i' => {
            *at += 1;
            read_until(at, b'e')?;
            Some(Bencode::Int)
        }
        b'l' => {
            *at += 1;
            while *buf.get(*at)? != b'e' {
                decode(buf, at)?;
            }
            *at += 1;
            Some(Bencode::List)
        }
        b'd' => {
            *at += 1;
            let mut entries = Vec::new();
            while *buf.get(*at)? != b'e' {
                let Bencode::Bytes(key) = decode(buf, at)? else {
                    return None;
                };
                entries.push((key, decode(buf, at)?));
            }
            *at += 1;
            Some(Bencode::Dict(entries))
        }
        _ => {
            let len = usize::try_from(read_until(at, b':')?).ok()?;
            let bytes = buf.get(*at..*at + len)?.to_vec();
            *at += len;
            Some(Bencode::Bytes(bytes))
        }
    }
}

fn field<'a>(dict: &'a [(Vec<u8>, Bencode)], key: &[u8]) -> Option<&'a [u8]> {
    dict.iter().find_map(|(k, v)| match v {
        Bencode::Bytes(b) if k == key => Some(b.as_slice()),
        _ => None,
    })
}

fn bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(format!("{}:", b.len()).as_bytes());
    out.extend_from_slice(b);
}

/// A hostile DHT node: it answers every request, sends a datagram of garbage before each
/// answer, and answers every `get_peers` with `per_answer` made-up peers (different each
/// time: a flood no honest node would send).
fn hostile_node(
    per_answer: u16,
    stop: &'static AtomicBool,
    answered: &'static AtomicU64,
) -> (SocketAddr, thread::JoinHandle<()>) {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let addr = socket.local_addr().unwrap();
    let id: [u8; 20] = [addr.port() as u8; 20];
    let handle = thread::spawn(move || {
        let mut next: u32 = u32::from(addr.port()) << 16;
        let mut buf = [0u8; 2048];
        while !stop.load(Ordering::SeqCst) {
            let Ok((len, from)) = socket.recv_from(&mut buf) else {
                continue;
            };
            let Some(Bencode::Dict(msg)) = decode(&buf[..len], &mut 0) else {
                continue;
            };
            let (Some(tid), Some(query)) = (field(&msg, b"t"), field(&msg, b"q")) else {
                continue;
            };
            let _ = socket.send_to(b"d1:y1:r1:t", from);
            let mut r = Vec::from(&b"d2:id"[..]);
            bytes(&mut r, &id);
            match query {
                b"find_node" => r.extend_from_slice(b"5:nodes0:"),
                b"get" => r.extend_from_slice(b"5:token4:tokn"),
                b"get_peers" => {
                    r.extend_from_slice(b"5:token4:tokn6:valuesl");
                    for _ in 0..per_answer {
                        next += 1;
                        let mut peer = Ipv4Addr::from(0x0a00_0000 | (next & 0x00ff_ffff))
                            .octets()
                            .to_vec();
                        peer.extend_from_slice(&9000u16.to_be_bytes());
                        bytes(&mut r, &peer);
                    }
                    r.push(b'e');
                }
                _ => {}
            }
            r.extend_from_slice(b"e");
            let mut answer = Vec::from(&b"d1:r"[..]);
            answer.extend_from_slice(&r);
            answer.extend_from_slice(b"1:t");
            bytes(&mut answer, tid);
            answer.extend_from_slice(b"1:y1:re");
            let _ = socket.send_to(&answer, from);
            answered.fetch_add(1, Ordering::SeqCst);
        }
    });
    (addr, handle)
}

#[test]
fn a_flood_of_addresses_from_hostile_nodes_is_capped_per_lookup() {
    static STOP: AtomicBool = AtomicBool::new(false);
    static ANSWERED: AtomicU64 = AtomicU64::new(0);
    let _serial = serial();
    // Four nodes, 200 made-up peers in each answer: 800 per lookup, and new ones each time.
    let nodes: Vec<_> = (0..4)
        .map(|_| hostile_node(200, &STOP, &ANSWERED))
        .collect();
    let cap = 100;
    let engine = DhtEngine::start(
        infohash(5),
        46_000,
        DhtConfig {
            bootstrap: nodes.iter().map(|(a, _)| a.to_string()).collect(),
            bind_ip: Ipv4Addr::LOCALHOST,
            request_timeout: Duration::from_millis(300),
            lookup_interval: Duration::from_millis(200),
            max_per_lookup: cap,
            event_capacity: 8,
            ..DhtConfig::default()
        },
    )
    .unwrap();
    // Read three lookups' worth: each reports exactly the cap, never more.
    let deadline = Instant::now() + PATIENCE;
    let mut in_lookup = 0;
    let mut done = Vec::new();
    while done.len() < 3 {
        let left = deadline.saturating_duration_since(Instant::now());
        match engine
            .events()
            .recv_timeout(left)
            .expect("events keep coming")
        {
            DhtEvent::Found(addrs) => {
                in_lookup += addrs.len();
                assert!(in_lookup <= cap, "a lookup reported {in_lookup} addresses");
            }
            DhtEvent::LookupDone { found } => {
                assert_eq!(found, in_lookup);
                done.push(found);
                in_lookup = 0;
            }
            _ => {}
        }
    }
    assert_eq!(done, [cap, cap, cap]);
    // Nobody reads the events now: the channel fills up, holds no more than its capacity,
    // and the engine goes on looking up (the nodes keep being asked) without waiting.
    eventually("the event channel to fill up", || engine.events().is_full());
    let asked = ANSWERED.load(Ordering::SeqCst);
    eventually("two more lookups", || {
        ANSWERED.load(Ordering::SeqCst) >= asked + 8
    });
    assert_eq!(engine.events().len(), 8);
    let (took, ended) = timed_close(engine).expect("close returned");
    assert!(ended && took < CLOSE_BOUND, "close took {took:?}");
    STOP.store(true, Ordering::SeqCst);
    for (_, handle) in nodes {
        handle.join().unwrap();
    }
}

/// A node answers with a random sample of at most 10 of the peers it holds: in a room of
/// 15 one lookup sees part of it. Lookups that find someone new are repeated after 2 s, so
/// every pair of engines is linked (one has found the other: its hello does the rest) in
/// seconds, with a lookup interval of ten minutes.
#[test]
fn a_room_larger_than_one_answer_is_found_by_quick_repeated_lookups() {
    let _serial = serial();
    let node = bootstrap_node();
    let bootstrap = node.dht_addr().unwrap();
    let ports: Vec<u16> = (0..15).map(|i| 47_000 + i).collect();
    let mut probes: Vec<Probe> = ports
        .iter()
        .map(|&port| {
            Probe::start(
                infohash(6),
                port,
                config(bootstrap, Duration::from_secs(600)),
            )
        })
        .collect();
    let deadline = Instant::now() + PATIENCE;
    loop {
        probes.iter_mut().for_each(Probe::drain);
        let missing: Vec<(u16, u16)> = probes
            .iter()
            .enumerate()
            .flat_map(|(i, a)| probes[i + 1..].iter().map(move |b| (a, b)))
            .filter(|(a, b)| {
                !a.found_ports().contains(&b.port) && !b.found_ports().contains(&a.port)
            })
            .map(|(a, b)| (a.port, b.port))
            .collect();
        if missing.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "pairs never linked: {missing:?}");
        thread::sleep(Duration::from_millis(20));
    }
}
