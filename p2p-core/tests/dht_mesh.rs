//! Peers that find each other through a private Mainline DHT on loopback (`Mode::dht`): a
//! DHT node on 127.0.0.1 (what `tracker --dht` runs) is the only bootstrap node, so nothing
//! reaches the public DHT. Several peers mesh through it with no tracker; two rooms on one
//! DHT stay apart; the address of a peer that left costs a bounded number of tries; the DHT
//! and trackers at once link each pair once; a DHT nobody answers is reported, and a close
//! stays within its bound; the terminal peer's `--dht --dht-bootstrap` as real processes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use p2p_core::dht::{DhtConfig, DhtEngine, DhtEvent, DhtNode, InfoHash};
use p2p_core::protocol::Room;
use p2p_core::secure::RoomKey;
use p2p_core::{Discovery, Event, Mode, Peer, Source};
use support::*;
use tracker::{Tracker, TrackerConfig};

/// A private DHT's first node, on loopback.
fn dht_node() -> DhtNode {
    DhtNode::bootstrap_node(loopback(0)).expect("a DHT node starts")
}

/// A peer's DHT configuration for the private DHT at `bootstrap`: short request timeouts
/// (loopback answers in microseconds) and lookups every `lookups`.
fn dht(bootstrap: SocketAddr, lookups: Duration) -> DhtConfig {
    DhtConfig {
        bootstrap: vec![bootstrap.to_string()],
        request_timeout: Duration::from_millis(300),
        lookup_interval: lookups,
        ..DhtConfig::default()
    }
}

fn dht_peer(name: &str, room: &str, bootstrap: SocketAddr) -> TestPeer {
    let mut config = config(name, Mode::dht(dht(bootstrap, Duration::from_secs(2))));
    config.room = Room::new(room).unwrap();
    TestPeer::start(config)
}

/// The addresses each [`Event::Discovered`] of `log` named, with its source.
fn discovered(log: &[Event]) -> Vec<(SocketAddr, Source)> {
    log.iter()
        .filter_map(|e| match e {
            Event::Discovered { addr, via } => Some((*addr, *via)),
            _ => None,
        })
        .collect()
}

/// How many times each peer (by name) was reported as listened to.
fn links_made(log: &[Event]) -> HashMap<String, usize> {
    let mut made = HashMap::new();
    for e in log {
        if let Event::ListeningTo(p) = e {
            *made.entry(p.username.clone()).or_default() += 1;
        }
    }
    made
}

#[test]
fn several_peers_mesh_through_a_private_dht_with_no_tracker() {
    let node = dht_node();
    let names = ["ana", "bia", "caio", "duda"];
    let mut peers: Vec<TestPeer> = names
        .iter()
        .map(|n| dht_peer(n, "lobby", node.local_addr()))
        .collect();
    for p in &mut peers {
        p.wait_links(names.len() - 1);
    }
    for p in &peers {
        p.peer.send(&format!("hi from {}", p.name())).unwrap();
    }
    for p in &mut peers {
        let me = p.name().to_owned();
        for other in names.iter().filter(|n| **n != me) {
            p.wait_texts(other, 1);
        }
        let mut heard: Vec<String> = p.messages().into_iter().map(|(_, t)| t).collect();
        heard.sort();
        let expected: Vec<String> = names
            .iter()
            .filter(|n| **n != me)
            .map(|n| format!("hi from {n}"))
            .collect();
        assert_eq!(heard, expected, "{me} heard each other peer once");
    }
    // How each link came about is told before it: through the DHT, or (the other found
    // this one first) through the other's hello.
    let mut through_dht = 0;
    for p in &peers {
        let found = discovered(&p.log);
        through_dht += found.iter().filter(|(_, via)| *via == Source::Dht).count();
        for (i, e) in p.log.iter().enumerate() {
            if let Event::ListeningTo(other) = e {
                let told = p.log[..i].iter().any(|e| {
                    matches!(e, Event::Discovered { addr, via: Source::Dht | Source::Hello }
                        if *addr == other.addr)
                });
                assert!(
                    told,
                    "{}: no Discovered before listening to {other}",
                    p.name()
                );
            }
        }
        assert!(
            links_made(&p.log).values().all(|n| *n == 1),
            "{}: {:?}",
            p.name(),
            links_made(&p.log)
        );
    }
    assert!(through_dht >= names.len() - 1, "the DHT found peers");
}

#[test]
fn two_rooms_on_one_dht_stay_apart() {
    let node = dht_node();
    let mut lobby = [
        dht_peer("ana", "lobby", node.local_addr()),
        dht_peer("bia", "lobby", node.local_addr()),
    ];
    for p in &mut lobby {
        p.wait_links(1);
    }
    // The attic's peers start once the lobby's have announced: the lookups that find each
    // other would list the lobby's entries too, were the two rooms under one infohash (a
    // node lists up to 10 entries per answer; there are 4).
    let mut attic = [
        dht_peer("caio", "attic", node.local_addr()),
        dht_peer("duda", "attic", node.local_addr()),
    ];
    for p in &mut attic {
        p.wait_links(1);
    }
    let lobby_addrs: Vec<SocketAddr> = lobby.iter().map(|p| p.peer.local_addr()).collect();
    for (p, other) in attic.iter_mut().zip(["duda", "caio"]) {
        p.pump();
        assert_eq!(names(&p.peer.listening_to()), [other]);
        assert_eq!(names(&p.peer.listeners()), [other]);
        let found = discovered(&p.log);
        assert!(
            found.iter().all(|(addr, _)| !lobby_addrs.contains(addr)),
            "{} was led to a lobby peer: {found:?}",
            p.name()
        );
    }
    for (p, other) in lobby.iter_mut().zip(["bia", "ana"]) {
        p.pump();
        assert_eq!(names(&p.peer.listening_to()), [other]);
        assert_eq!(names(&p.peer.listeners()), [other]);
    }
}

/// The lobby's infohash.
fn lobby() -> InfoHash {
    InfoHash(
        *RoomKey::derive("lobby", None)
            .unwrap()
            .infohash()
            .as_bytes(),
    )
}

/// Whether the DHT at `bootstrap` lists `port` under `infohash`: a lookup by a bare
/// `mainline` client, which announces nothing itself.
fn dht_lists(bootstrap: SocketAddr, infohash: InfoHash, port: u16) -> bool {
    let client = mainline::Dht::builder()
        .bind_address(std::net::Ipv4Addr::LOCALHOST)
        .bootstrap(&[bootstrap.to_string()])
        .request_timeout(Duration::from_millis(300))
        .build()
        .unwrap()
        .as_async();
    let mut answers = client.get_peers(mainline::Id::from(infohash.0));
    futures_lite::future::block_on(async {
        while let Some(answer) = futures_lite::StreamExt::next(&mut answers).await {
            if answer.iter().any(|a| a.port() == port) {
                return true;
            }
        }
        false
    })
}

#[test]
fn a_peer_that_found_nobody_finds_one_that_announces_later_within_seconds() {
    // ana starts alone: her lookups at start find nobody. bia comes later, announces and
    // looks nobody up (as an open peer whose lookups cannot find a peer behind a NAT
    // router, which does not announce): only a lookup of ana's can bring them together.
    // Her lookup interval is 120 s; she links within PATIENCE (30 s), because a peer that
    // has found nobody looks again after 2 s, 4 s, 8 s...
    let node = dht_node();
    let mut ana = TestPeer::start(config(
        "ana",
        Mode::dht(dht(node.local_addr(), Duration::from_secs(120))),
    ));
    // ana's start is over once the DHT lists her (her second lookup follows her announce
    // at once and finds nobody either).
    let port = ana.peer.local_addr().port();
    eventually("the DHT lists ana", || {
        dht_lists(node.local_addr(), lobby(), port)
    });
    let mut bia = TestPeer::start(config("bia", Mode::Alone));
    let bia_addr = bia.peer.local_addr();
    let announcer = DhtEngine::start(
        lobby(),
        bia_addr.port(),
        DhtConfig {
            bind_ip: std::net::Ipv4Addr::LOCALHOST,
            ..dht(node.local_addr(), Duration::from_secs(120))
        },
    )
    .unwrap();
    ana.wait_links(1);
    bia.wait_links(1);
    assert!(
        discovered(&ana.log).contains(&(bia_addr, Source::Dht)),
        "{:#?}",
        ana.log
    );
    assert!(announcer.close());
}

/// A TCP listener standing for a peer that left (its address now answers, but not as a
/// peer): it counts the connections it gets and closes each at once.
struct Gone {
    addr: SocketAddr,
    tries: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Gone {
    /// Listens, and leaves an announce of its port under the lobby's infohash in the DHT
    /// at `bootstrap` (as a peer that announced and then went away).
    fn announced(bootstrap: SocketAddr) -> Gone {
        let listener = TcpListener::bind(loopback(0)).unwrap();
        let addr = listener.local_addr().unwrap();
        let (tries, stop) = (
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicBool::new(false)),
        );
        let (t, s) = (Arc::clone(&tries), Arc::clone(&stop));
        let thread = thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                drop(conn);
                t.fetch_add(1, Ordering::SeqCst);
            }
        });
        let key = RoomKey::derive("lobby", None).unwrap();
        let engine = DhtEngine::start(
            InfoHash(*key.infohash().as_bytes()),
            addr.port(),
            DhtConfig {
                bind_ip: std::net::Ipv4Addr::LOCALHOST,
                ..dht(bootstrap, Duration::from_secs(60))
            },
        )
        .unwrap();
        loop {
            match engine.events().recv_timeout(PATIENCE) {
                Ok(DhtEvent::Announced) => break,
                Ok(_) => {}
                Err(e) => panic!("the stale entry was not announced: {e}"),
            }
        }
        assert!(engine.close(), "the announcing engine closed in time");
        Gone {
            addr,
            tries,
            stop,
            thread: Some(thread),
        }
    }

    fn tries(&self) -> usize {
        self.tries.load(Ordering::SeqCst)
    }
}

impl Drop for Gone {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = std::net::TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn the_address_of_a_peer_that_left_is_tried_a_bounded_number_of_times() {
    let node = dht_node();
    let first = Gone::announced(node.local_addr());
    // Lookups every 200 ms: the DHT lists the stale entry again and again.
    let mut config = config(
        "ana",
        Mode::dht(dht(node.local_addr(), Duration::from_millis(200))),
    );
    config.timeouts = fast_timeouts();
    let mut ana = TestPeer::start(config);
    eventually("three tries of the first stale address", || {
        first.tries() >= 3
    });
    // Proof that ana kept looking up meanwhile (every lookup lists every stale entry, at
    // most 10 here): two more stale entries, each tried three times in turn, 2 then 4 s
    // apart. A mesh that kept retrying the first address, backing off, would have tried it
    // again 8 s after its third try.
    let second = Gone::announced(node.local_addr());
    eventually("three tries of the second", || second.tries() >= 3);
    let third = Gone::announced(node.local_addr());
    eventually("three tries of the third", || third.tries() >= 3);
    assert_eq!(first.tries(), 3, "the first stale address was tried again");
    assert_eq!(second.tries(), 3);
    ana.pump();
    let failed = |gone: &Gone| {
        ana.log
            .iter()
            .filter(|e| matches!(e, Event::ConnectFailed { addr, .. } if *addr == gone.addr.to_string()))
            .count()
    };
    assert_eq!(failed(&first), 3, "each try reported: {:#?}", ana.log);
    let tried = discovered(&ana.log)
        .iter()
        .filter(|(a, via)| *a == first.addr && *via == Source::Dht)
        .count();
    assert_eq!(tried, 3);
    assert!(ana.peer.listening_to().is_empty());
}

#[test]
fn the_dht_and_trackers_at_once_link_each_pair_once() {
    // Two groups, each with its own tracker, all four on one DHT: within a group peers
    // are found both ways (the tracker and the DHT); across groups only the DHT knows.
    let first = Tracker::start(TrackerConfig {
        bind_addr: loopback(0),
        dht_port: Some(0),
        ..TrackerConfig::default()
    })
    .unwrap();
    let second = start_tracker(Duration::from_secs(60));
    let bootstrap = first.dht_addr().unwrap();
    let peer = |name: &str, tracker: &Tracker| {
        TestPeer::start(config(
            name,
            Mode::Discover(Discovery {
                tracker: Some(tracker.local_addr().to_string()),
                dht: Some(dht(bootstrap, Duration::from_secs(2))),
                ..Discovery::default()
            }),
        ))
    };
    let mut peers = [
        peer("ana", &first),
        peer("bia", &first),
        peer("caio", &second),
        peer("duda", &second),
    ];
    for p in &mut peers {
        p.wait_links(3);
    }
    let mut sources = Vec::new();
    for p in &mut peers {
        p.pump();
        assert_eq!(p.peer.listening_to().len(), 3);
        assert_eq!(p.peer.listeners().len(), 3);
        let made = links_made(&p.log);
        assert!(
            made.len() == 3 && made.values().all(|n| *n == 1),
            "{}: each peer linked once: {made:?}",
            p.name()
        );
        sources.extend(discovered(&p.log).into_iter().map(|(_, via)| via));
    }
    assert!(sources.contains(&Source::Tracker), "{sources:?}");
    assert!(
        sources.contains(&Source::Dht),
        "across the groups only the DHT finds: {sources:?}"
    );
}

#[test]
fn a_dht_that_does_not_answer_is_reported_and_a_close_stays_within_its_bound() {
    // A "bootstrap node" that never answers: UDP blocked, as far as the peer can tell.
    let silent = UdpSocket::bind(loopback(0)).unwrap();
    let alone = Peer::start(config("solo", Mode::Alone)).unwrap();
    let base_threads = alone.thread_count();
    alone.shutdown();
    let mut quick = TestPeer::start(config(
        "ana",
        Mode::dht(dht(silent.local_addr().unwrap(), Duration::from_secs(60))),
    ));
    assert_eq!(
        quick.peer.thread_count(),
        base_threads + 2,
        "the DHT's threads count with the peer's: p2p-dht and mainline's node"
    );
    quick.wait("the DHT said unreachable", |p| {
        p.log
            .iter()
            .any(|e| matches!(e, Event::DhtUnreachable { .. }))
    });
    // Queries in flight, waiting up to 20 s for answers that never come.
    let mut slow_config = dht(silent.local_addr().unwrap(), Duration::from_secs(60));
    slow_config.request_timeout = Duration::from_secs(20);
    let slow = Peer::start(config("bia", Mode::dht(slow_config))).unwrap();
    for peer in [&quick.peer, &slow] {
        let started = Instant::now();
        peer.close();
        let took = started.elapsed();
        assert!(took < Duration::from_secs(2), "close took {took:?}");
        assert_eq!(peer.thread_count(), 0, "every thread ended");
    }
}

#[test]
fn terminal_peers_chat_through_a_private_dht() {
    let node = dht_node();
    let bootstrap = node.local_addr().to_string();
    let chat = |name: &str| {
        let mut cmd = Command::new(example("chat"));
        cmd.args([
            "--username",
            name,
            "--port",
            "0",
            "--dht",
            "--dht-bootstrap",
            &bootstrap,
        ])
        .env_remove("RUST_LOG");
        Proc::spawn(cmd)
    };
    let mut alice = chat("alice");
    alice.listening_addr();
    let mut bob = chat("bob");
    bob.listening_addr();
    for p in [&mut alice, &mut bob] {
        p.wait_stderr("a listener", |l| l.contains("listens to you"));
        p.wait_stderr("a link", |l| l.starts_with("* listening to"));
    }
    bob.say("hello through the DHT");
    assert_eq!(alice.wait_stdout_lines(1), ["[bob]: hello through the DHT"]);
    alice.say("/quit");
    assert_eq!(alice.finish().code(), Some(0));
    bob.say("/quit");
    assert_eq!(bob.finish().code(), Some(0));
    let said = [alice.all_stderr(), bob.all_stderr()].concat();
    assert!(
        said.iter()
            .any(|l| l.starts_with("* found ") && l.ends_with("through the DHT")),
        "{said:#?}"
    );
}

#[test]
fn dht_flags_are_checked_as_arguments() {
    let run = |args: &[&str]| {
        let mut cmd = Command::new(example("chat"));
        cmd.args(["--username", "ana", "--port", "0"])
            .args(args)
            .env_remove("RUST_LOG");
        let mut p = Proc::spawn(cmd);
        let status = p.finish();
        (status.code(), p.all_stderr())
    };
    for bad in [
        &["--dht-bootstrap", "127.0.0.1:6881"][..], // without --dht
        &["--dht", "--dht-bootstrap", "127.0.0.1"],
        &["--dht", "--dht-bootstrap", "a:1,,b:2"],
        &["--dht", "--alone"],
        &["--dht", "--peers", "127.0.0.1:9"],
    ] {
        let (code, err) = run(bad);
        assert_eq!(code, Some(2), "{bad:?}: {err:?}");
        assert_eq!(err.len(), 1, "one line: {err:?}");
    }
}
