//! Discovery through a private Mainline DHT against tracker mode, and what the DHT costs in
//! traffic. Everything on loopback: a tracker with its DHT node (`tracker --dht`) on
//! 127.0.0.1 is the only bootstrap node, and serves tracker mode in the same run.
//!
//! ```text
//! cargo bench -p p2p-core --bench dht                      # mesh, then discovery: ~10 min
//! DHT_BENCH=mesh cargo bench -p p2p-core --bench dht       # peers only, about 3 min
//! DHT_BENCH=discovery cargo bench -p p2p-core --bench dht  # engines only
//! DHT_BENCH=traffic DHT_IDLE_SECS=960 cargo bench -p p2p-core --bench dht   # root or userns
//! ```
//!
//! Mesh, for N = 3, 10, 30 peers ([`MESH_ROUNDS`] rounds each, interleaved, a fresh tracker
//! with its DHT node each round): N `Peer`s start one after another in tracker mode, then N
//! in DHT mode (default configuration but the bootstrap node). `first link` is a peer's
//! time from its `Peer::start` call to its first link (`ListeningTo`); `full mesh` the time
//! from the first peer's start until every peer listens to every other and is listened to
//! by every other; `starts` how long the N `Peer::start` calls took (a DHT peer derives its
//! room's infohash with argon2id at start).
//!
//! Discovery, for N = 3, 10, 30 peers (3 rounds each, a fresh tracker each round):
//! - tracker mode: N threads announce at once; `rtt` is each announce's round trip (the
//!   time to a peer's first list), `all` the time until every announce has returned (then
//!   every pair is linked one way: the later of the two got the earlier in its list);
//! - DHT: N engines start at once with the default configuration (500 ms request timeout,
//!   quick lookups while they find new peers); `first` is the time from an engine's start
//!   to its first found peer, `self-all` to having found all N-1 others itself, `pairs`
//!   the time until every pair is linked one way (one has found the other: the mesh's
//!   hello links the other way); then one more engine joins the complete room: `joiner
//!   first` and `joiner all` are its times to its first found peer and to all N.
//!
//! Then the request timeout's effect, N = 10: 2 s (`mainline`'s default), 1 s, 500 ms,
//! 300 ms, 150 ms.
//!
//! Traffic (`DHT_BENCH=traffic`): the bench runs itself again in a new network namespace
//! (`unshare --map-root-user --net`, loopback up), where the only traffic is the DHT's:
//! three engines in one room and the bootstrap node. It reads the namespace's counters
//! (`/proc/net/dev` for `lo`: every datagram once; `/proc/net/snmp`: UDP datagrams) around
//! (1) the start, (2) an idle period with the default configuration (`DHT_IDLE_SECS`,
//! default 120; 960 covers `mainline`'s 15 min table refresh), and (3) 60 s of lookups
//! every 2 s, to price one lookup. Per engine = total / 3 (every datagram is to or from an
//! engine).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::Command;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use p2p_core::dht::{DhtConfig, DhtEngine, DhtEvent, InfoHash};
use p2p_core::{Event, Mode, Peer, PeerConfig, Timeouts, tracker_client};
use tracker::{Tracker, TrackerConfig};

/// The room the tracker's announces are made in (any 16 bytes: a tracker sees rooms' ids).
const ROOM: p2p_core::protocol::Room = p2p_core::protocol::Room::from_bytes([7; 16]);
const ROUNDS: usize = 3;
/// Rounds of the mesh table, each mode once per round.
const MESH_ROUNDS: usize = 5;
/// How long a mesh may take to form before the bench fails.
const MESH_PATIENCE: Duration = Duration::from_secs(120);
const PATIENCE: Duration = Duration::from_secs(120);
/// How long a round waits for every engine to have found every other itself.
const SELF_ALL_WAIT: Duration = Duration::from_secs(90);

fn node() -> Tracker {
    Tracker::start(TrackerConfig {
        bind_addr: "127.0.0.1:0".parse().unwrap(),
        dht_port: Some(0),
        ..TrackerConfig::default()
    })
    .unwrap()
}

fn dht_config(node: &Tracker, request_timeout: Duration) -> DhtConfig {
    DhtConfig {
        bootstrap: vec![node.dht_addr().unwrap().to_string()],
        bind_ip: Ipv4Addr::LOCALHOST,
        request_timeout,
        ..DhtConfig::default()
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1e3;
    if ms < 10.0 {
        format!("{ms:.2} ms")
    } else {
        format!("{ms:.0} ms")
    }
}

/// Tracker mode: `n` announces at once; (round trips, time until all returned).
fn tracker_round(n: usize) -> (Vec<Duration>, Duration) {
    let t = node();
    let addr = t.local_addr().to_string();
    let barrier = Arc::new(Barrier::new(n + 1));
    let threads: Vec<_> = (0..n)
        .map(|i| {
            let (addr, barrier) = (addr.clone(), Arc::clone(&barrier));
            thread::spawn(move || {
                let me = SocketAddr::new(Ipv4Addr::LOCALHOST.into(), 50_000 + i as u16);
                barrier.wait();
                let started = Instant::now();
                tracker_client::announce(&addr, ROOM, me, &Timeouts::default()).unwrap();
                (started, started.elapsed())
            })
        })
        .collect();
    let start = Instant::now();
    barrier.wait();
    let results: Vec<(Instant, Duration)> =
        threads.into_iter().map(|h| h.join().unwrap()).collect();
    let all = results
        .iter()
        .map(|(s, d)| (*s + *d).duration_since(start))
        .max()
        .unwrap();
    (results.into_iter().map(|(_, d)| d).collect(), all)
}

/// What one DHT round measured.
struct DhtRound {
    /// A peer joining the room once it is complete: time to its first found peer, and to
    /// all N.
    joiner_first: Duration,
    /// `None`: not all N within SELF_ALL_WAIT.
    joiner_all: Option<Duration>,
    first: Vec<Duration>,
    announced: Vec<Duration>,
    /// Only the engines that found every other within SELF_ALL_WAIT.
    self_all: Vec<Duration>,
    pairs: Duration,
}

/// The median of the engines that got there, and how many of `of` did.
fn self_all_cell(v: Vec<Duration>, of: usize) -> String {
    match v.len() {
        0 => format!("none of {of} in {} s", SELF_ALL_WAIT.as_secs()),
        k if k == of => ms(median(v)),
        k => format!(
            "{} ({k} of {of} in {} s)",
            ms(median(v)),
            SELF_ALL_WAIT.as_secs()
        ),
    }
}

/// DHT: `n` engines start at once on a private DHT.
fn dht_round(n: usize, round: usize, request_timeout: Duration) -> DhtRound {
    let t = node();
    let hash = InfoHash([round as u8 + 1; 20]);
    let ports: Vec<u16> = (0..n).map(|i| 51_000 + i as u16).collect();
    let start = Instant::now();
    let engines: Vec<(DhtEngine, Instant)> = ports
        .iter()
        .map(|&p| {
            (
                DhtEngine::start(hash, p, dht_config(&t, request_timeout)).unwrap(),
                Instant::now(),
            )
        })
        .collect();
    let mut found: Vec<BTreeSet<u16>> = vec![BTreeSet::new(); n];
    let mut first = vec![None; n];
    let mut announced = vec![None; n];
    let mut self_all = vec![None; n];
    let mut pairs = None;
    // Every pair linked one way is what a mesh needs; each engine finding every other
    // itself may take a normal lookup interval (60 s) more in a large room: waited for up
    // to SELF_ALL_WAIT only.
    while pairs.is_none()
        || (self_all.iter().any(Option::is_none) && start.elapsed() < SELF_ALL_WAIT)
    {
        assert!(
            start.elapsed() < PATIENCE,
            "n = {n}: pairs never all linked"
        );
        for (i, (engine, started)) in engines.iter().enumerate() {
            while let Ok(event) = engine.events().try_recv() {
                match event {
                    DhtEvent::Found(addrs) => {
                        first[i].get_or_insert(started.elapsed());
                        found[i].extend(addrs.iter().map(SocketAddr::port));
                    }
                    DhtEvent::Announced => {
                        announced[i].get_or_insert(started.elapsed());
                    }
                    _ => {}
                }
            }
            if found[i].len() == n - 1 {
                self_all[i].get_or_insert(started.elapsed());
            }
        }
        let linked = (0..n).all(|a| {
            (a + 1..n).all(|b| found[a].contains(&ports[b]) || found[b].contains(&ports[a]))
        });
        if linked && pairs.is_none() {
            pairs = Some(start.elapsed());
        }
        if std::env::var_os("DHT_BENCH_TRACE").is_some() && start.elapsed().as_millis() % 5000 < 2 {
            let sizes: Vec<usize> = found.iter().map(BTreeSet::len).collect();
            eprintln!("{:?} found {sizes:?}", start.elapsed());
        }
        thread::sleep(Duration::from_millis(1));
    }
    // A joiner: the room is there, announced.
    let joiner = DhtEngine::start(hash, 52_999, dht_config(&t, request_timeout)).unwrap();
    let started = Instant::now();
    let mut joiner_found = BTreeSet::new();
    let mut joiner_first = None;
    while joiner_found.len() < n && started.elapsed() < SELF_ALL_WAIT {
        let left = SELF_ALL_WAIT.saturating_sub(started.elapsed());
        if let Ok(DhtEvent::Found(addrs)) = joiner.events().recv_timeout(left) {
            joiner_first.get_or_insert(started.elapsed());
            joiner_found.extend(addrs.iter().map(SocketAddr::port));
        }
    }
    let joiner_all = (joiner_found.len() == n).then(|| started.elapsed());
    assert!(joiner.close());
    for (engine, _) in engines {
        assert!(engine.close());
    }
    DhtRound {
        joiner_first: joiner_first.expect("the joiner found someone"),
        joiner_all,
        first: first.into_iter().flatten().collect(),
        announced: announced.into_iter().flatten().collect(),
        self_all: self_all.into_iter().flatten().collect(),
        pairs: pairs.unwrap(),
    }
}

/// What one mesh of peers measured.
struct MeshRound {
    /// Each peer's time from its start to its first link.
    first_link: Vec<Duration>,
    /// From the first start until every peer is linked with every other both ways.
    full: Duration,
    /// How long the `Peer::start` calls took.
    starts: Duration,
}

/// Starts `n` peers with `mode` one after another and waits for their full mesh.
fn mesh_round(n: usize, mode: &dyn Fn(usize) -> Mode) -> MeshRound {
    let start = Instant::now();
    let peers: Vec<(Peer, Instant)> = (0..n)
        .map(|i| {
            let mut config = PeerConfig::new(format!("p{i}"));
            config.bind_addr = "127.0.0.1:0".parse().unwrap();
            config.mode = mode(i);
            let started = Instant::now();
            (Peer::start(config).unwrap(), started)
        })
        .collect();
    let starts = start.elapsed();
    let mut first_link = vec![None; n];
    let mut full = None;
    // Links each way per peer, as its events tell.
    let mut links = vec![(0i64, 0i64); n];
    while full.is_none() {
        assert!(
            start.elapsed() < MESH_PATIENCE,
            "n = {n}: no full mesh in {MESH_PATIENCE:?}: (listening to, listeners) {links:?}"
        );
        for (i, (peer, started)) in peers.iter().enumerate() {
            while let Ok(event) = peer.events().try_recv() {
                match event {
                    Event::ListeningTo(_) => {
                        links[i].0 += 1;
                        first_link[i].get_or_insert(started.elapsed());
                    }
                    Event::StoppedListeningTo { .. } => links[i].0 -= 1,
                    Event::ListenerJoined(_) => links[i].1 += 1,
                    Event::ListenerLeft { .. } => links[i].1 -= 1,
                    _ => {}
                }
            }
        }
        let want = n as i64 - 1;
        if links.iter().all(|l| *l == (want, want)) {
            full = Some(start.elapsed());
        }
        thread::sleep(Duration::from_millis(1));
    }
    for (peer, _) in &peers {
        assert_eq!(peer.listening_to().len(), n - 1);
        assert_eq!(peer.listeners().len(), n - 1);
    }
    for (peer, _) in &peers {
        peer.close();
    }
    MeshRound {
        first_link: first_link.into_iter().flatten().collect(),
        full: full.unwrap(),
        starts,
    }
}

fn mesh() {
    println!(
        "## Peers meshing through a private DHT against tracker mode (loopback, medians of {MESH_ROUNDS} rounds)\n"
    );
    println!(
        "| N | tracker first link | tracker full mesh | tracker starts | DHT first link | DHT full mesh | DHT starts | full mesh DHT / tracker |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for n in [3, 10, 30] {
        let (mut tracker_rounds, mut dht_rounds) = (Vec::new(), Vec::new());
        for _ in 0..MESH_ROUNDS {
            let t = node();
            let tracker_addr = t.local_addr().to_string();
            tracker_rounds.push(mesh_round(n, &|_| Mode::tracker(tracker_addr.clone())));
            dht_rounds.push(mesh_round(n, &|_| {
                Mode::dht(DhtConfig {
                    bootstrap: vec![t.dht_addr().unwrap().to_string()],
                    ..DhtConfig::default()
                })
            }));
        }
        let cells = |rounds: Vec<MeshRound>| {
            let first = median(rounds.iter().flat_map(|r| r.first_link.clone()).collect());
            let full = median(rounds.iter().map(|r| r.full).collect());
            let starts = median(rounds.iter().map(|r| r.starts).collect());
            (first, full, starts)
        };
        let (tf, tm, ts) = cells(tracker_rounds);
        let (df, dm, ds) = cells(dht_rounds);
        println!(
            "| {n} | {} | {} | {} | {} | {} | {} | {:.1}× |",
            ms(tf),
            ms(tm),
            ms(ts),
            ms(df),
            ms(dm),
            ms(ds),
            dm.as_secs_f64() / tm.as_secs_f64()
        );
    }
    println!();
}

fn discovery() {
    println!(
        "## Discovery on a private DHT against tracker mode (loopback, medians of {ROUNDS} rounds)\n"
    );
    println!(
        "| N | tracker rtt | tracker all | DHT first | DHT announced | DHT pairs | DHT self-all | pairs / tracker all | joiner first | joiner all |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for n in [3, 10, 30] {
        let (mut rtt, mut all, mut first, mut announced, mut pairs, mut self_all) =
            (vec![], vec![], vec![], vec![], vec![], vec![]);
        let (mut joiner_first, mut joiner_all) = (vec![], vec![]);
        for round in 0..ROUNDS {
            let (r, a) = tracker_round(n);
            rtt.extend(r);
            all.push(a);
            let d = dht_round(n, round, DhtConfig::default().request_timeout);
            first.extend(d.first);
            announced.extend(d.announced);
            self_all.extend(d.self_all);
            pairs.push(d.pairs);
            joiner_first.push(d.joiner_first);
            joiner_all.extend(d.joiner_all);
        }
        let (all, pairs) = (median(all), median(pairs));
        println!(
            "| {n} | {} | {} | {} | {} | {} | {} | {:.0}× | {} | {} |",
            ms(median(rtt)),
            ms(all),
            ms(median(first)),
            ms(median(announced)),
            ms(pairs),
            self_all_cell(self_all, n * ROUNDS),
            pairs.as_secs_f64() / all.as_secs_f64(),
            ms(median(joiner_first)),
            self_all_cell(joiner_all, ROUNDS)
        );
    }
    println!("\n## The request timeout (N = 10, medians of {ROUNDS} rounds)\n");
    println!(
        "| request timeout | DHT first | DHT announced | DHT pairs | DHT self-all | joiner first | joiner all |"
    );
    println!("|---|---|---|---|---|---|---|");
    for timeout_ms in [2000, 1000, 500, 300, 150] {
        let (mut first, mut announced, mut pairs, mut self_all) = (vec![], vec![], vec![], vec![]);
        let (mut joiner_first, mut joiner_all) = (vec![], vec![]);
        for round in 0..ROUNDS {
            let d = dht_round(10, round, Duration::from_millis(timeout_ms));
            first.extend(d.first);
            announced.extend(d.announced);
            self_all.extend(d.self_all);
            pairs.push(d.pairs);
            joiner_first.push(d.joiner_first);
            joiner_all.extend(d.joiner_all);
        }
        println!(
            "| {timeout_ms} ms | {} | {} | {} | {} | {} | {} |",
            ms(median(first)),
            ms(median(announced)),
            ms(median(pairs)),
            self_all_cell(self_all, 10 * ROUNDS),
            ms(median(joiner_first)),
            self_all_cell(joiner_all, ROUNDS)
        );
    }
}

/// (bytes, packets) through `lo` (each datagram once) and UDP datagrams out, in this
/// process's network namespace.
fn counters() -> (u64, u64, u64) {
    let dev = std::fs::read_to_string("/proc/self/net/dev").unwrap();
    let lo: Vec<u64> = dev
        .lines()
        .find_map(|l| l.trim().strip_prefix("lo:"))
        .unwrap()
        .split_whitespace()
        .map(|f| f.parse().unwrap())
        .collect();
    let snmp = std::fs::read_to_string("/proc/self/net/snmp").unwrap();
    let udp: Vec<&str> = snmp.lines().filter(|l| l.starts_with("Udp:")).collect();
    let names: Vec<&str> = udp[0].split_whitespace().collect();
    let values: Vec<&str> = udp[1].split_whitespace().collect();
    let out = names.iter().position(|n| *n == "OutDatagrams").unwrap();
    // Transmit bytes and packets are fields 8 and 9 after the name.
    (lo[8], lo[9], values[out].parse().unwrap())
}

fn traffic_in_namespace() {
    let up = Command::new("ip")
        .args(["link", "set", "lo", "up"])
        .status()
        .unwrap();
    assert!(up.success(), "cannot bring lo up in the namespace");
    let idle: u64 = std::env::var("DHT_IDLE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(120);
    let engines = 3;
    let run = |config: &dyn Fn(&Tracker) -> DhtConfig, secs: u64, hash: u8| {
        let t = node();
        let before = counters();
        let started = Instant::now();
        let list: Vec<DhtEngine> = (0..engines)
            .map(|i| DhtEngine::start(InfoHash([hash; 20]), 52_000 + i, config(&t)).unwrap())
            .collect();
        let mut lookups = 0;
        let mut announces = 0;
        let mut marks = Vec::new();
        while started.elapsed() < Duration::from_secs(secs) {
            for e in &list {
                while let Ok(ev) = e.events().try_recv() {
                    match ev {
                        DhtEvent::LookupDone { .. } => lookups += 1,
                        DhtEvent::Announced => announces += 1,
                        _ => {}
                    }
                }
            }
            if marks.is_empty() && started.elapsed() > Duration::from_secs(10) {
                marks.push((counters(), lookups, announces));
            }
            thread::sleep(Duration::from_millis(50));
        }
        let after = counters();
        for e in list {
            e.close();
        }
        drop(t);
        (before, marks.pop().unwrap(), after, lookups, announces)
    };
    let per = |a: (u64, u64, u64), b: (u64, u64, u64)| {
        (
            (b.0 - a.0) / engines as u64,
            (b.1 - a.1) / engines as u64,
            (b.2 - a.2) / engines as u64,
        )
    };
    println!("## DHT traffic per engine (private DHT, {engines} engines in one room + the node)\n");
    println!("| phase | seconds | lookups | announces | bytes | packets | UDP datagrams sent |");
    println!("|---|---|---|---|---|---|---|");
    let (b, (m, ml, ma), a, l, an) = run(&|t| dht_config(t, Duration::from_millis(500)), idle, 1);
    let s = per(b, m);
    println!(
        "| start (first 10 s) | 10 | {} | {} | {} | {} | {} |",
        ml / engines as usize,
        ma / engines as usize,
        s.0,
        s.1,
        s.2
    );
    let i = per(m, a);
    println!(
        "| idle, defaults | {} | {} | {} | {} | {} | {} |",
        idle - 10,
        (l - ml) / engines as usize,
        (an - ma) / engines as usize,
        i.0,
        i.1,
        i.2
    );
    let hour = 3600.0 / (idle - 10) as f64;
    println!(
        "| idle, scaled to 1 h | 3600 | | | {:.0} | {:.0} | {:.0} |",
        i.0 as f64 * hour,
        i.1 as f64 * hour,
        i.2 as f64 * hour
    );
    let quick = |t: &Tracker| DhtConfig {
        lookup_interval: Duration::from_secs(2),
        ..dht_config(t, Duration::from_millis(500))
    };
    let (_, (m, ml, ma), a, l, an) = run(&quick, 70, 2);
    let q = per(m, a);
    let lookups = (l - ml) / engines as usize;
    println!(
        "| lookups every 2 s | 60 | {lookups} | {} | {} | {} | {} |",
        (an - ma) / engines as usize,
        q.0,
        q.1,
        q.2
    );
    println!(
        "\nOne lookup: {} bytes, {} packets per engine.",
        q.0 / lookups.max(1) as u64,
        q.1 as f64 / lookups.max(1) as f64
    );
}

fn main() {
    match std::env::var("DHT_BENCH").as_deref() {
        Ok("traffic-inner") => traffic_in_namespace(),
        Ok("traffic") => {
            let status = Command::new("unshare")
                .args(["--map-root-user", "--net", "--"])
                .arg(std::env::current_exe().unwrap())
                .arg("--bench")
                .env("DHT_BENCH", "traffic-inner")
                .status()
                .unwrap();
            assert!(status.success());
        }
        Ok("mesh") => mesh(),
        Ok("discovery") => discovery(),
        _ => {
            mesh();
            discovery();
        }
    }
}
