//! The performance workloads of `docs/performance.md`, each run through p2p-core and through
//! a raw baseline in the same process, with the ratio between them.
//!
//! ```text
//! cargo bench -p p2p-core --bench workloads            # all workloads
//! cargo bench -p p2p-core --bench workloads -- w1 w2   # some of them
//! scripts/bench.sh                                     # with the limits the 100-peer mesh needs
//! ```
//!
//! The baseline is written here with std::net only: length-prefixed frames of the same size
//! as p2p-core's, one writer thread per receiver fed by a channel, buffered writes flushed
//! when the queue is empty, TCP_NODELAY, one reader thread per receiver. Every run checks
//! that every message arrived once and in order before it reports a figure.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufReader, BufWriter, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use p2p_core::{Batch, Event, Mode, Peer, PeerConfig};
use tracker::{Tracker, TrackerConfig};

// ---------------------------------------------------------------------------------------
// What every workload measures: receipts, checked for order and counted.

fn named(name: &str, f: impl FnOnce() + Send + 'static) -> JoinHandle<()> {
    thread::Builder::new().name(name.into()).spawn(f).unwrap()
}

/// Called in a receiving thread for every message: (receiver index, sequence number).
type Sink = Arc<dyn Fn(usize, u64) + Send + Sync>;

/// Builds a room of `n` receivers that report to a sink.
type RoomMaker = fn(usize, &Sink) -> Box<dyn Room>;

/// Checks per-receiver order and signals when every receiver has `target` messages.
struct Tally {
    next: Vec<AtomicU64>,
    done: AtomicUsize,
    errors: AtomicUsize,
    target: u64,
    all_done: Sender<()>,
}

impl Tally {
    fn new(receivers: usize, target: u64) -> (Arc<Tally>, Receiver<()>) {
        let (tx, rx) = crossbeam_channel::bounded(1);
        (
            Arc::new(Tally {
                next: (0..receivers).map(|_| AtomicU64::new(0)).collect(),
                done: AtomicUsize::new(0),
                errors: AtomicUsize::new(0),
                target,
                all_done: tx,
            }),
            rx,
        )
    }

    fn sink(self: &Arc<Self>) -> Sink {
        let tally = Arc::clone(self);
        Arc::new(move |i, seq| tally.record(i, seq))
    }

    fn record(&self, i: usize, seq: u64) {
        let expected = self.next[i].fetch_add(1, Ordering::Relaxed);
        if seq != expected {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
        if expected + 1 == self.target
            && self.done.fetch_add(1, Ordering::AcqRel) + 1 == self.next.len()
        {
            let _ = self.all_done.try_send(());
        }
    }

    fn check(&self) {
        assert_eq!(
            self.errors.load(Ordering::Relaxed),
            0,
            "messages out of order or doubled"
        );
        for n in &self.next {
            assert_eq!(
                n.load(Ordering::Relaxed),
                self.target,
                "messages lost or doubled"
            );
        }
    }
}

/// A chat text of exactly `len` bytes that starts with its sequence number.
fn text(seq: u64, len: usize) -> String {
    let mut s = format!("{seq:020}");
    s.extend(std::iter::repeat_n('x', len.saturating_sub(s.len())));
    s
}

fn seq_of(bytes: &[u8]) -> u64 {
    std::str::from_utf8(&bytes[..20])
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(u64::MAX)
}

// ---------------------------------------------------------------------------------------
// The two implementations of "one sender, N receivers".

trait Room {
    fn send(&self, text: &str);
}

/// The raw baseline: std::net, one writer and one reader thread per receiver.
struct RawRoom {
    txs: Vec<Sender<Arc<[u8]>>>,
    threads: Vec<JoinHandle<()>>,
}

impl RawRoom {
    fn new(receivers: usize, sink: &Sink) -> RawRoom {
        RawRoom::build(receivers, sink, false)
    }

    /// The baseline whose reader threads hand each message's sequence number to an
    /// application thread through a bounded crossbeam channel, as p2p-core hands events to
    /// its embedder (here without building an event: the cheapest possible hand-off).
    fn with_handoff(receivers: usize, sink: &Sink) -> RawRoom {
        RawRoom::build(receivers, sink, true)
    }

    fn build(receivers: usize, sink: &Sink, handoff: bool) -> RawRoom {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut txs = Vec::new();
        let mut threads = Vec::new();
        for i in 0..receivers {
            let client = TcpStream::connect(addr).unwrap();
            let (server, _) = listener.accept().unwrap();
            client.set_nodelay(true).unwrap();
            server.set_nodelay(true).unwrap();
            let (tx, rx) = crossbeam_channel::unbounded::<Arc<[u8]>>();
            txs.push(tx);
            threads.push(named("raw-writer", move || {
                let mut out = BufWriter::with_capacity(64 * 1024, &server);
                while let Ok(first) = rx.recv() {
                    let mut next = Some(first);
                    while let Some(frame) = next {
                        if out.write_all(&frame).is_err() {
                            return;
                        }
                        next = rx.try_recv().ok();
                    }
                    if out.flush().is_err() {
                        return;
                    }
                }
            }));
            let deliver: Box<dyn Fn(u64) + Send> = if handoff {
                let (app_tx, app_rx) = crossbeam_channel::bounded::<u64>(4096);
                let sink = Arc::clone(sink);
                threads.push(named("raw-app", move || {
                    for seq in app_rx.iter() {
                        sink(i, seq);
                    }
                }));
                Box::new(move |seq| {
                    let _ = app_tx.send(seq);
                })
            } else {
                let sink = Arc::clone(sink);
                Box::new(move |seq| sink(i, seq))
            };
            threads.push(named("raw-reader", move || {
                let mut input = BufReader::with_capacity(16 * 1024, client);
                let mut len = [0u8; 4];
                let mut payload = Vec::new();
                while input.read_exact(&mut len).is_ok() {
                    payload.resize(u32::from_be_bytes(len) as usize, 0);
                    if input.read_exact(&mut payload).is_err() {
                        break;
                    }
                    deliver(seq_of(&payload));
                }
            }));
        }
        RawRoom { txs, threads }
    }
}

impl Room for RawRoom {
    fn send(&self, text: &str) {
        // The same frame size as p2p-core's chat frame: kind byte and string length (2 bytes
        // for short texts) before the text.
        let body_len = text.len() + 2;
        let mut frame = Vec::with_capacity(4 + body_len);
        frame.extend_from_slice(&(body_len as u32).to_be_bytes());
        frame.extend_from_slice(text.as_bytes());
        frame.extend_from_slice(&[0, 0]);
        let frame: Arc<[u8]> = frame.into();
        for tx in &self.txs {
            tx.send(frame.clone()).unwrap();
        }
    }
}

impl Drop for RawRoom {
    fn drop(&mut self) {
        self.txs.clear();
        for t in self.threads.drain(..) {
            t.join().unwrap();
        }
    }
}

/// p2p-core: one sender peer and `receivers` peers, all meshed through a tracker; one
/// thread per receiver reads its event channel.
struct P2pRoom {
    sender: Option<Peer>,
    receivers: Vec<Peer>,
    consumers: Vec<JoinHandle<()>>,
    _tracker: Tracker,
}

fn tracker() -> Tracker {
    Tracker::start(TrackerConfig {
        bind_addr: "127.0.0.1:0".parse().unwrap(),
        ..TrackerConfig::default()
    })
    .unwrap()
}

fn peer_config(name: &str, tracker: &Tracker) -> PeerConfig {
    let mut config = PeerConfig::new(name);
    config.bind_addr = "127.0.0.1:0".parse().unwrap();
    config.mode = Mode::tracker(tracker.local_addr().to_string());
    config
}

/// Waits (on the peers' snapshots, re-checked as the given channel reports link events)
/// until every peer hears and is heard by `n` others.
fn wait_mesh(peers: &[&Peer], n: usize, links: &Receiver<()>) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !peers
        .iter()
        .all(|p| p.listeners().len() == n && p.listening_to().len() == n)
    {
        if Instant::now() > deadline {
            let counts: Vec<(usize, usize)> = peers
                .iter()
                .map(|p| (p.listening_to().len(), p.listeners().len()))
                .collect();
            panic!("mesh did not form: (listening to, listeners) per peer: {counts:?}");
        }
        let _ = links.recv_timeout(Duration::from_millis(100));
    }
}

/// How the application threads of p2p-core's receivers read their events.
#[derive(Clone, Copy, PartialEq)]
enum Reading {
    /// `Events::recv_batch`: the texts of each batch as `&str`s, no event per message.
    Batches,
    /// `Events::iter`: one `Event` per message.
    OneByOne,
}

/// Reads a peer's events: messages go to the sink, link changes to `links`.
fn consume(
    peer: &Peer,
    i: usize,
    sink: Sink,
    links: Sender<()>,
    reading: Reading,
) -> JoinHandle<()> {
    let events = peer.events().clone();
    let other = move |e: Event| {
        if matches!(
            e,
            Event::ConnectFailed { .. }
                | Event::StoppedListeningTo { .. }
                | Event::ListenerLeft { .. }
                | Event::TrackerUnreachable { .. }
        ) && std::env::var("WORKLOADS_DEBUG").is_ok()
        {
            eprintln!("peer {i}: {e:?}");
        }
        let _ = links.try_send(());
    };
    named("consumer", move || match reading {
        Reading::Batches => {
            while let Ok(batch) = events.recv_batch() {
                match batch {
                    Batch::Messages(messages) => {
                        for text in messages.texts() {
                            sink(i, seq_of(text.as_bytes()));
                        }
                    }
                    Batch::Event(e) => other(e),
                }
            }
        }
        Reading::OneByOne => {
            for event in events.iter() {
                match event {
                    Event::Message { text, .. } => sink(i, seq_of(text.as_bytes())),
                    e => other(e),
                }
            }
        }
    })
}

impl P2pRoom {
    /// The sender and `receivers` peers in one full mesh through a tracker (W1, W2).
    fn new(receivers: usize, sink: &Sink) -> P2pRoom {
        P2pRoom::build(receivers, sink, true, Reading::Batches)
    }

    /// As [`P2pRoom::new`], with receivers that read one event per message.
    fn one_by_one(receivers: usize, sink: &Sink) -> P2pRoom {
        P2pRoom::build(receivers, sink, true, Reading::OneByOne)
    }

    /// The sender alone and `receivers` peers listening to it by hand: a big room where
    /// the listeners do not hear each other (W4).
    fn room(receivers: usize, sink: &Sink) -> P2pRoom {
        P2pRoom::build(receivers, sink, false, Reading::Batches)
    }

    fn build(receivers: usize, sink: &Sink, mesh: bool, reading: Reading) -> P2pRoom {
        let tracker = tracker();
        let (links_tx, links) = crossbeam_channel::bounded(1);
        let mut sender_config = peer_config("sender", &tracker);
        if !mesh {
            sender_config.mode = Mode::Alone;
        }
        let sender = Peer::start(sender_config).unwrap();
        let drain = consume(
            &sender,
            usize::MAX,
            Arc::new(|_, _| {}),
            links_tx.clone(),
            reading,
        );
        let mut peers = Vec::new();
        let mut consumers = vec![drain];
        for i in 0..receivers {
            let mut config = peer_config(&format!("r{i}"), &tracker);
            if !mesh {
                config.mode = Mode::Manual(vec![sender.local_addr().to_string()]);
            }
            let peer = Peer::start(config).unwrap();
            consumers.push(consume(
                &peer,
                i,
                Arc::clone(sink),
                links_tx.clone(),
                reading,
            ));
            peers.push(peer);
        }
        if mesh {
            let mut all: Vec<&Peer> = peers.iter().collect();
            all.push(&sender);
            wait_mesh(&all, receivers, &links);
        } else {
            let deadline = Instant::now() + Duration::from_secs(60);
            while sender.listeners().len() < receivers {
                assert!(Instant::now() < deadline, "the room did not fill");
                let _ = links.recv_timeout(Duration::from_millis(100));
            }
        }
        P2pRoom {
            sender: Some(sender),
            receivers: peers,
            consumers,
            _tracker: tracker,
        }
    }
}

impl Room for P2pRoom {
    fn send(&self, text: &str) {
        if let Some(sender) = &self.sender {
            sender.send(text).unwrap();
        }
    }
}

impl Drop for P2pRoom {
    fn drop(&mut self) {
        if let Some(sender) = &self.sender {
            sender.close();
        }
        for p in &self.receivers {
            p.close();
        }
        // The consumers end when the peers (and so their channels) are dropped.
        self.receivers.clear();
        self.sender = None;
        for c in self.consumers.drain(..) {
            c.join().unwrap();
        }
    }
}

// ---------------------------------------------------------------------------------------
// Figures.

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or_default()
}

fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

fn header(title: &str) {
    println!("\n### {title}\n");
}

fn row(cells: &[String]) {
    println!("| {} |", cells.join(" | "));
}

/// Runs `f` for p2p-core and the baseline alternately `rounds` times; returns the medians.
/// Runs each variant in turn, `rounds` times, and returns each one's median. For profiling
/// one variant alone, set `WORKLOADS_ONLY` to its name (the others then report NaN).
fn alternate(rounds: usize, variants: &mut [(&str, &mut dyn FnMut() -> f64)]) -> Vec<f64> {
    let only = std::env::var("WORKLOADS_ONLY").unwrap_or_default();
    let mut results: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
    for _ in 0..rounds {
        for (i, (name, run)) in variants.iter_mut().enumerate() {
            if only.is_empty() || only == *name {
                results[i].push(run());
            }
        }
    }
    results
        .into_iter()
        .map(|v| if v.is_empty() { f64::NAN } else { median(v) })
        .collect()
}

/// The variants every message workload compares.
const P2P: &str = "p2p-core";
const RAW: &str = "baseline";
const HANDOFF: &str = "baseline + hand-off";
/// p2p-core read through `Events::recv` (W1 only; the others read batches).
const ONE_BY_ONE: &str = "p2p-core, one event at a time";

// ---------------------------------------------------------------------------------------
// W1: throughput.

fn throughput(
    room_of: &dyn Fn(&Sink) -> Box<dyn Room>,
    receivers: usize,
    messages: u64,
    size: usize,
) -> f64 {
    let (tally, done) = Tally::new(receivers, messages);
    let room = room_of(&tally.sink());
    let texts: Vec<String> = (0..messages).map(|s| text(s, size)).collect();
    let start = Instant::now();
    for t in &texts {
        room.send(t);
    }
    if std::env::var("WORKLOADS_DEBUG").is_ok() {
        eprintln!("sent in {:?}", start.elapsed());
    }
    done.recv_timeout(Duration::from_secs(300))
        .expect("every message delivered");
    let elapsed = start.elapsed();
    if std::env::var("WORKLOADS_DEBUG").is_ok() {
        eprintln!("delivered in {elapsed:?}");
    }
    drop(room);
    tally.check();
    messages as f64 * receivers as f64 / elapsed.as_secs_f64()
}

fn w1() {
    const RECEIVERS: usize = 7;
    const MESSAGES: u64 = 100_000;
    header("W1 throughput: 1 sender, 7 listeners, 100,000 messages of 64 bytes");
    let run = |room: fn(usize, &Sink) -> Box<dyn Room>| {
        move || throughput(&|s| room(RECEIVERS, s), RECEIVERS, MESSAGES, 64)
    };
    let rates = alternate(
        5,
        &mut [
            (P2P, &mut run(|n, s| Box::new(P2pRoom::new(n, s)))),
            (RAW, &mut run(|n, s| Box::new(RawRoom::new(n, s)))),
            (
                HANDOFF,
                &mut run(|n, s| Box::new(RawRoom::with_handoff(n, s))),
            ),
            (
                ONE_BY_ONE,
                &mut run(|n, s| Box::new(P2pRoom::one_by_one(n, s))),
            ),
        ],
    );
    rate_table(&rates, RECEIVERS, "median of 5");
    println!(
        "\nratio p2p-core / baseline: **{:.2}** (target ≥ 0.9)",
        rates[0] / rates[1]
    );
    println!(
        "ratio p2p-core / baseline + hand-off: **{:.2}**",
        rates[0] / rates[2]
    );
    println!(
        "ratio p2p-core one event at a time / baseline: **{:.2}**; / baseline + hand-off: **{:.2}**",
        rates[3] / rates[1],
        rates[3] / rates[2]
    );
}

fn rate_table(rates: &[f64], receivers: usize, note: &str) {
    row(&[
        "".into(),
        format!("deliveries/s ({note})"),
        "messages/s".into(),
    ]);
    row(&["---".into(), "---:".into(), "---:".into()]);
    for (name, rate) in [P2P, RAW, HANDOFF, ONE_BY_ONE].iter().zip(rates) {
        row(&[
            (*name).into(),
            format!("{rate:.0}"),
            format!("{:.0}", rate / receivers as f64),
        ]);
    }
}

// ---------------------------------------------------------------------------------------
// W2 and W4: all-received latency.

/// Sends `count` messages one at a time, each after every receiver got the previous one.
fn latencies(
    room_of: &dyn Fn(&Sink) -> Box<dyn Room>,
    receivers: usize,
    count: u64,
) -> Vec<Duration> {
    let got = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = crossbeam_channel::bounded::<()>(1);
    let errors = Arc::new(AtomicUsize::new(0));
    let expected: Arc<Vec<AtomicU64>> =
        Arc::new((0..receivers).map(|_| AtomicU64::new(0)).collect());
    let sink: Sink = {
        let (got, errors, expected) =
            (Arc::clone(&got), Arc::clone(&errors), Arc::clone(&expected));
        Arc::new(move |i, seq| {
            if expected[i].fetch_add(1, Ordering::Relaxed) != seq {
                errors.fetch_add(1, Ordering::Relaxed);
            }
            if got.fetch_add(1, Ordering::AcqRel) + 1 == receivers {
                let _ = tx.try_send(());
            }
        })
    };
    let room = room_of(&sink);
    let mut samples = Vec::with_capacity(count as usize);
    for seq in 0..count {
        let t = text(seq, 64);
        got.store(0, Ordering::Release);
        let start = Instant::now();
        room.send(&t);
        rx.recv_timeout(Duration::from_secs(30))
            .expect("all received");
        samples.push(start.elapsed());
    }
    drop(room);
    assert_eq!(
        errors.load(Ordering::Relaxed),
        0,
        "lost, doubled or out of order"
    );
    for e in expected.iter() {
        assert_eq!(e.load(Ordering::Relaxed), count);
    }
    samples.sort();
    samples
}

fn latency_table(samples: &[Vec<Duration>]) {
    row(&["".into(), "p50".into(), "p99".into(), "max".into()]);
    row(&["---".into(), "---:".into(), "---:".into(), "---:".into()]);
    for (name, s) in [P2P, RAW, HANDOFF].iter().zip(samples) {
        if s.is_empty() {
            continue;
        }
        row(&[
            (*name).into(),
            us(percentile(s, 0.5)),
            us(percentile(s, 0.99)),
            us(*s.last().unwrap()),
        ]);
    }
}

/// Latency samples of the three variants, interleaved in `rounds` parts so that a noisy
/// moment on the machine does not land on one variant only.
fn latency_runs(receivers: usize, count: u64, rounds: u64, p2p: RoomMaker) -> Vec<Vec<Duration>> {
    let rooms: [RoomMaker; 3] = [
        p2p,
        |n, s| Box::new(RawRoom::new(n, s)),
        |n, s| Box::new(RawRoom::with_handoff(n, s)),
    ];
    let only = std::env::var("WORKLOADS_ONLY").unwrap_or_default();
    let mut samples = vec![Vec::new(); 3];
    for _ in 0..rounds {
        for (i, room) in rooms.iter().enumerate() {
            if !only.is_empty() && only != [P2P, RAW, HANDOFF][i] {
                continue;
            }
            samples[i].extend(latencies(
                &|s| room(receivers, s),
                receivers,
                count / rounds,
            ));
        }
    }
    for s in &mut samples {
        s.sort();
    }
    samples
}

fn w2() {
    const RECEIVERS: usize = 7;
    header("W2 latency: 8 peers, one sends and waits until all 7 have it, 5,000 times");
    let samples = latency_runs(RECEIVERS, 5000, 5, |n, s| Box::new(P2pRoom::new(n, s)));
    latency_table(&samples);
    let p99 = |i: usize| percentile(&samples[i], 0.99).as_secs_f64();
    println!(
        "\nratio of p99 p2p-core / baseline: **{:.2}** (target ≤ 1.3)",
        p99(0) / p99(1)
    );
    println!(
        "ratio of p99 p2p-core / baseline + hand-off: **{:.2}**",
        p99(0) / p99(2)
    );
}

fn w4() {
    const RECEIVERS: usize = 1000;
    header("W4 big room: 1 sender, 1,000 listeners");
    let run = |room: fn(usize, &Sink) -> Box<dyn Room>| {
        move || throughput(&|s| room(RECEIVERS, s), RECEIVERS, 2000, 64)
    };
    let rates = alternate(
        3,
        &mut [
            (P2P, &mut run(|n, s| Box::new(P2pRoom::room(n, s)))),
            (RAW, &mut run(|n, s| Box::new(RawRoom::new(n, s)))),
            (
                HANDOFF,
                &mut run(|n, s| Box::new(RawRoom::with_handoff(n, s))),
            ),
        ],
    );
    rate_table(&rates, RECEIVERS, "2,000 messages, median of 3");
    println!(
        "\nratio p2p-core / baseline: **{:.2}** (target ≥ 0.8)",
        rates[0] / rates[1]
    );
    println!(
        "ratio p2p-core / baseline + hand-off: **{:.2}**\n",
        rates[0] / rates[2]
    );
    println!("all-received latency, 300 messages one at a time:\n");
    let samples = latency_runs(RECEIVERS, 300, 3, |n, s| Box::new(P2pRoom::room(n, s)));
    latency_table(&samples);
}

// ---------------------------------------------------------------------------------------
// W3: mesh formation; W5: footprint.

/// Starts `n` peers one after another through a tracker and returns the time until every
/// peer hears every other, with the peers (still running).
fn p2p_mesh(n: usize) -> (Duration, Vec<Peer>, Tracker, Vec<JoinHandle<()>>) {
    let tracker = tracker();
    let (links_tx, links) = crossbeam_channel::bounded(1);
    let start = Instant::now();
    let mut peers = Vec::new();
    let mut consumers = Vec::new();
    for i in 0..n {
        let peer = Peer::start(peer_config(&format!("p{i}"), &tracker)).unwrap();
        consumers.push(consume(
            &peer,
            i,
            Arc::new(|_, _| {}),
            links_tx.clone(),
            Reading::Batches,
        ));
        peers.push(peer);
    }
    wait_mesh(&peers.iter().collect::<Vec<_>>(), n - 1, &links);
    (start.elapsed(), peers, tracker, consumers)
}

/// The baseline mesh: a registry in a mutex stands for the tracker; each newcomer connects
/// to every earlier peer and greets it; each greeted peer connects back; one thread per
/// accepted connection and per outgoing link, as in p2p-core.
fn raw_mesh(n: usize) -> Duration {
    struct RawPeer {
        addr: SocketAddr,
        links: Arc<AtomicUsize>,
        stop: Arc<AtomicBool>,
        threads: Arc<Mutex<Vec<JoinHandle<()>>>>,
        sockets: Arc<Mutex<Vec<TcpStream>>>,
    }
    fn link(to: SocketAddr, hello: Option<SocketAddr>, p: &RawPeer) {
        let mut s = TcpStream::connect(to).unwrap();
        s.set_nodelay(true).unwrap();
        let mut msg = [0u8; 8];
        if let Some(SocketAddr::V4(a)) = hello {
            msg[..4].copy_from_slice(&a.ip().octets());
            msg[4..6].copy_from_slice(&a.port().to_be_bytes());
            msg[6] = 1;
        }
        s.write_all(&msg).unwrap();
        let mut ack = [0u8; 1];
        s.read_exact(&mut ack).unwrap();
        p.links.fetch_add(1, Ordering::SeqCst);
        p.sockets.lock().unwrap().push(s.try_clone().unwrap());
        p.threads.lock().unwrap().push(thread::spawn(move || {
            let mut buf = [0u8; 1];
            let _ = s.read(&mut buf); // until the socket is shut down
        }));
    }
    let mut peers: Vec<Arc<RawPeer>> = Vec::new();
    let mut accept_threads = Vec::new();
    let start = Instant::now();
    for _ in 0..n {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let peer = Arc::new(RawPeer {
            addr: listener.local_addr().unwrap(),
            links: Arc::new(AtomicUsize::new(0)),
            stop: Arc::new(AtomicBool::new(false)),
            threads: Arc::new(Mutex::new(Vec::new())),
            sockets: Arc::new(Mutex::new(Vec::new())),
        });
        let me = Arc::clone(&peer);
        accept_threads.push(thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut s) = conn else { break };
                if me.stop.load(Ordering::SeqCst) {
                    break;
                }
                me.sockets.lock().unwrap().push(s.try_clone().unwrap());
                let me2 = Arc::clone(&me);
                me.threads.lock().unwrap().push(thread::spawn(move || {
                    let mut msg = [0u8; 8];
                    if s.read_exact(&mut msg).is_err() {
                        return;
                    }
                    s.write_all(&[1]).unwrap();
                    if msg[6] == 1 {
                        let ip = std::net::Ipv4Addr::new(msg[0], msg[1], msg[2], msg[3]);
                        let port = u16::from_be_bytes([msg[4], msg[5]]);
                        link(SocketAddr::from((ip, port)), None, &me2);
                    }
                    let mut buf = [0u8; 1];
                    let _ = s.read(&mut buf);
                }));
            }
        }));
        for other in &peers {
            link(other.addr, Some(peer.addr), &peer);
        }
        peers.push(peer);
    }
    while peers.iter().any(|p| p.links.load(Ordering::SeqCst) < n - 1) {
        thread::yield_now();
    }
    let elapsed = start.elapsed();
    // Tear down: stop accepting, shut every socket down, join every thread.
    for p in &peers {
        p.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(p.addr);
    }
    for t in accept_threads {
        t.join().unwrap();
    }
    for p in &peers {
        for s in p.sockets.lock().unwrap().iter() {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
        let threads: Vec<_> = p.threads.lock().unwrap().drain(..).collect();
        for t in threads {
            t.join().unwrap();
        }
    }
    elapsed
}

fn fmt_ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1e3)
}

fn close_all(peers: Vec<Peer>, consumers: Vec<JoinHandle<()>>) {
    for p in &peers {
        p.close();
    }
    drop(peers);
    for c in consumers {
        c.join().unwrap();
    }
}

fn w3() {
    header("W3 mesh formation: peers join one after another through a tracker");
    let mut p2p = Vec::new();
    let mut raw = Vec::new();
    for _ in 0..5 {
        let (t, peers, tracker, consumers) = p2p_mesh(32);
        close_all(peers, consumers);
        drop(tracker);
        p2p.push(t.as_secs_f64());
        raw.push(raw_mesh(32).as_secs_f64());
    }
    let (p2p, raw) = (median(p2p), median(raw));
    row(&[
        "32 peers (median of 5)".into(),
        "time until everyone hears everyone".into(),
    ]);
    row(&["---".into(), "---:".into()]);
    row(&["p2p-core".into(), fmt_ms(Duration::from_secs_f64(p2p))]);
    row(&["baseline".into(), fmt_ms(Duration::from_secs_f64(raw))]);
    println!(
        "\nratio p2p-core / baseline: **{:.2}** (target: under 500 ms)\n",
        p2p / raw
    );

    for n in [64, 100] {
        // Both ends of every link are in this process, plus a listener per peer and room
        // for the connections that come and go (tracker requests, links being made).
        let needed_files = 2 * n * (n - 1) + n + 500;
        let files = open_file_limit();
        let maps = read_num("/proc/sys/vm/max_map_count");
        let threads_needed = n * (2 * (n - 1) + 3);
        if files >= needed_files && maps >= threads_needed * 4 {
            let (t, peers, tracker, consumers) = p2p_mesh(n);
            let threads = process_threads();
            println!(
                "{n} peers in one process: meshed in {}, every peer hears the {} others; \
                 {threads} threads in the process\n",
                fmt_ms(t),
                n - 1
            );
            close_all(peers, consumers);
            drop(tracker);
        } else if files >= needed_files / 2 + 1000 && maps >= threads_needed * 2 {
            println!(
                "{n} peers in one process would need about {needed_files} open files (limit \
                 {files}) and vm.max_map_count ≥ {} (have {maps}); the open-file limit binds \
                 first here and cannot be raised, so the mesh is split over two processes:",
                threads_needed * 4
            );
            split_mesh(n);
        } else {
            println!(
                "{n} peers: skipped: needs about {needed_files} open files (have {files}) and \
                 vm.max_map_count ≥ {} (have {maps}); run scripts/bench.sh as root\n",
                threads_needed * 4
            );
        }
    }
}

/// The `n`-peer mesh over two processes: half here, half in a child process (this same
/// benchmark binary, run as `mesh-child TRACKER COUNT TOTAL`), both through one tracker.
fn split_mesh(n: usize) {
    use std::io::BufRead;
    let tracker = tracker();
    let half = n / 2;
    let start = Instant::now();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "mesh-child",
            &tracker.local_addr().to_string(),
            &(n - half).to_string(),
            &n.to_string(),
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (links_tx, links) = crossbeam_channel::bounded(1);
    let mut peers = Vec::new();
    let mut consumers = Vec::new();
    for i in 0..half {
        let peer = Peer::start(peer_config(&format!("p{i}"), &tracker)).unwrap();
        consumers.push(consume(
            &peer,
            i,
            Arc::new(|_, _| {}),
            links_tx.clone(),
            Reading::Batches,
        ));
        peers.push(peer);
    }
    wait_mesh(&peers.iter().collect::<Vec<_>>(), n - 1, &links);
    let here = start.elapsed();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let there = start.elapsed();
    assert!(
        line.starts_with("meshed"),
        "the child process did not mesh: {line:?}"
    );
    println!(
        "{n} peers over two processes: meshed in {} (this half after {}), every peer hears \
         the {} others; {} threads in this process\n",
        fmt_ms(there.max(here)),
        fmt_ms(here),
        n - 1,
        process_threads()
    );
    drop(child.stdin.take()); // the child leaves when its stdin closes
    child.wait().unwrap();
    close_all(peers, consumers);
    drop(tracker);
}

/// The child side of [`split_mesh`].
fn mesh_child(tracker: &str, count: usize, total: usize) {
    let (links_tx, links) = crossbeam_channel::bounded(1);
    let mut peers = Vec::new();
    let mut consumers = Vec::new();
    for i in 0..count {
        let mut config = PeerConfig::new(format!("c{i}"));
        config.bind_addr = "127.0.0.1:0".parse().unwrap();
        config.mode = Mode::tracker(tracker.to_owned());
        let peer = Peer::start(config).unwrap();
        consumers.push(consume(
            &peer,
            i,
            Arc::new(|_, _| {}),
            links_tx.clone(),
            Reading::Batches,
        ));
        peers.push(peer);
    }
    wait_mesh(&peers.iter().collect::<Vec<_>>(), total - 1, &links);
    println!("meshed");
    let mut rest = String::new();
    let _ = std::io::stdin().read_line(&mut rest);
    close_all(peers, consumers);
}

fn read_num(path: &str) -> usize {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

fn open_file_limit() -> usize {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

fn status_field(name: &str) -> usize {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

fn process_threads() -> usize {
    status_field("Threads:")
}

fn w5() {
    header("W5 footprint: an idle 32-peer mesh");
    let threads_before = process_threads();
    let rss_before = status_field("VmRSS:");
    let (_, peers, tracker, consumers) = p2p_mesh(32);
    let rss_after = status_field("VmRSS:");
    let threads = process_threads() - threads_before;
    let connections = 32 * 31; // links, each a socket at both ends
    row(&["measure".into(), "value".into()]);
    row(&["---".into(), "---:".into()]);
    row(&[
        "resident memory per idle link (both ends)".into(),
        format!(
            "{:.1} KiB",
            (rss_after.saturating_sub(rss_before)) as f64 / connections as f64
        ),
    ]);
    row(&[
        "threads per peer (accept, tracker, one per link, one event reader)".into(),
        format!("{:.1}", threads as f64 / 32.0),
    ]);
    let per_peer: Vec<usize> = peers.iter().map(Peer::thread_count).collect();
    row(&[
        "threads a peer runs itself".into(),
        format!("{}", per_peer[0]),
    ]);
    close_all(peers, consumers);
    drop(tracker);
}

// ---------------------------------------------------------------------------------------
// The tracker.

fn tracker_rate() {
    header("Tracker: announces answered per second, 16 concurrent clients");
    const CLIENTS: usize = 16;
    const EACH: usize = 1000;
    let run = |addr: SocketAddr| {
        let start = Instant::now();
        let handles: Vec<_> = (0..CLIENTS)
            .map(|c| {
                thread::spawn(move || {
                    let timeouts = p2p_core::Timeouts::default();
                    for i in 0..EACH {
                        let me: SocketAddr =
                            format!("127.0.{}.{}:{}", c + 1, 1 + i % 200, 1000 + i)
                                .parse()
                                .unwrap();
                        p2p_core::tracker_client::announce(&addr.to_string(), me, &timeouts)
                            .unwrap();
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        (CLIENTS * EACH) as f64 / start.elapsed().as_secs_f64()
    };
    let rates = alternate(
        3,
        &mut [
            ("tracker", &mut || {
                let t = Tracker::start(TrackerConfig {
                    bind_addr: "127.0.0.1:0".parse().unwrap(),
                    max_per_source: 100_000,
                    max_peers: 100_000,
                    ..TrackerConfig::default()
                })
                .unwrap();
                run(t.local_addr())
            }),
            ("tracker-baseline", &mut || {
                let server = RawTracker::start();
                let rate = run(server.addr);
                drop(server);
                rate
            }),
        ],
    );
    let (p2p, raw) = (rates[0], rates[1]);
    row(&["".into(), "requests/s (median of 3)".into()]);
    row(&["---".into(), "---:".into()]);
    row(&["tracker".into(), format!("{p2p:.0}")]);
    row(&[
        "baseline (same I/O, no registry)".into(),
        format!("{raw:.0}"),
    ]);
    println!("\nratio tracker / baseline: **{:.2}**", p2p / raw);
}

/// A server with the tracker's threads and I/O (accept thread, 4 workers, one frame in,
/// one frame out) that answers every announce with the same list of 256 addresses: the
/// cost of the connection handling and the answer, without a registry.
struct RawTracker {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl RawTracker {
    fn start() -> RawTracker {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = crossbeam_channel::bounded::<TcpStream>(256);
        // An answer as long as the tracker's once it holds 256 other peers.
        let answer = p2p_core::protocol::Frame::PeerList(p2p_core::protocol::PeerList {
            interval_secs: 20,
            observed: SocketAddr::from(([127, 0, 0, 1], 999)),
            nat: false,
            peers: (0..256u16)
                .map(|i| p2p_core::protocol::PeerEntry {
                    addr: SocketAddr::from(([127, 0, 1, (i % 250) as u8 + 1], 1000 + i)),
                    nat: false,
                })
                .collect(),
        })
        .encode()
        .unwrap();
        let mut threads = Vec::new();
        for _ in 0..4 {
            let (rx, answer) = (rx.clone(), answer.clone());
            threads.push(thread::spawn(move || {
                while let Ok(mut s) = rx.recv() {
                    s.set_nodelay(true).unwrap();
                    let mut reader = p2p_core::protocol::FrameReader::new(1024);
                    if reader.read_frame(&mut s).is_ok() {
                        let _ = s.write_all(&answer);
                    }
                }
            }));
        }
        let stop2 = Arc::clone(&stop);
        threads.push(thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(s) = conn {
                    let _ = tx.try_send(s);
                }
            }
        }));
        RawTracker {
            addr,
            stop,
            threads,
        }
    }
}

impl Drop for RawTracker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        for t in self.threads.drain(..) {
            t.join().unwrap();
        }
    }
}

// ---------------------------------------------------------------------------------------

fn main() {
    let all: Vec<String> = std::env::args().collect();
    if all.get(1).map(String::as_str) == Some("mesh-child") {
        let count = all[3].parse().unwrap();
        let total = all[4].parse().unwrap();
        return mesh_child(&all[2], count, total);
    }
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let want = |name: &str| args.is_empty() || args.iter().any(|a| a == name);
    println!(
        "p2p-chat workloads, {} cores; figures are medians where repeated; every run checked \
         that each message arrived once and in order.",
        thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    if want("w1") {
        w1();
    }
    if want("w2") {
        w2();
    }
    if want("w3") {
        w3();
    }
    if want("w4") {
        w4();
    }
    if want("w5") {
        w5();
    }
    if want("tracker") {
        tracker_rate();
    }
}
