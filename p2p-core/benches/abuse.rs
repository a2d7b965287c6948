//! Abuse at rate: two honest peers chat, first quietly, then while other threads, all at
//! once, open and drop thousands of connections to one honest peer's port, stream garbage
//! at it, hold handshakes that never finish, and handshake only to send garbage. The honest
//! chat must lose nothing (every message arrives once and in order, checked as it arrives);
//! the bench reports its latency quiet and under abuse, and the ratios, as markdown tables.
//!
//! ```text
//! cargo bench -p p2p-core --bench abuse                       # about 35 s
//! ABUSE_ONLY=churn,held cargo bench -p p2p-core --bench abuse # some abusers only
//! ```
//!
//! The chat: 200 rounds a second, in which Alice sends a burst of 20 messages and Bob, once
//! he has them all, answers with 20 of his own. Every message's latency (from `send` to the
//! moment the other peer's embedder reads it) is one sample. Alice's port is the one
//! abused; Bob's link to Alice goes through it, Alice's link to Bob does not.
//!
//! Phases: quiet (4 s); abuse *at rate* (12 s: 1,000 connections a second opened and
//! dropped, 2 MiB/s of garbage, 200 stalled handshakes, 4 handshakes a second followed by
//! garbage); abuse *flat out* (8 s: the same abusers as fast as they can); quiet again
//! (4 s). The baseline is both quiet phases pooled; the machine is shared, so its load
//! moves under any single phase.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use std::sync::OnceLock;

use p2p_core::protocol::{Frame, Handshake, PROTOCOL_VERSION};
use p2p_core::secure::{Identity, RoomKey, initiate};
use p2p_core::{Event, Mode, Peer, PeerConfig};

/// Messages per burst, each way.
const BURST: u64 = 20;
/// Rounds a second: the honest peers chat at a steady 8,000 messages a second (a burst of
/// 20 each way every 5 ms), not flat out, so that the CPU left for the abuse and for the
/// peer's defence is not eaten by the measurement itself.
const ROUNDS_PER_SEC: f64 = 200.0;
/// The quiet phase.
const QUIET: Duration = Duration::from_secs(4);
/// The abuse at rate: more than two handshake deadlines (5 s by default), so that held
/// handshakes are refused and opened again at least twice.
const AT_RATE: Duration = Duration::from_secs(12);
/// The abuse flat out.
const FLAT_OUT: Duration = Duration::from_secs(8);
/// Handshakes held open at once (half silent, half stopped halfway).
const HELD: usize = 200;
/// How long any one wait may take before the bench gives up.
const PATIENCE: Duration = Duration::from_secs(60);

fn loopback_config(name: &str, mode: Mode) -> PeerConfig {
    let mut config = PeerConfig::new(name);
    config.bind_addr = "127.0.0.1:0".parse().unwrap();
    config.mode = mode;
    config
}

/// xorshift64*: garbage that is the same from run to run.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let n = self.next().to_le_bytes();
            chunk.copy_from_slice(&n[..chunk.len()]);
        }
    }
}

// ---------------------------------------------------------------------------------------
// The honest chat.

struct Chat {
    alice: Peer,
    bob: Peer,
    /// The next number each expects from the other.
    alice_next: u64,
    bob_next: u64,
    /// Listeners of Alice that are not Bob: joined minus left, from her events.
    strangers: i64,
    /// Rounds completed.
    rounds: u64,
}

impl Chat {
    fn start() -> Chat {
        // Alice is bound to every address (the default), so that the abusers can reach her
        // on many loopback addresses; she advertises 127.0.0.1, where Bob connects.
        let alice = Peer::start(PeerConfig::new("alice")).unwrap();
        let bob = Peer::start(loopback_config(
            "bob",
            Mode::Manual(vec![alice.local_addr().to_string()]),
        ))
        .unwrap();
        alice.connect(&bob.local_addr().to_string()).unwrap();
        let mut chat = Chat {
            alice,
            bob,
            alice_next: 0,
            bob_next: 0,
            strangers: 0,
            rounds: 0,
        };
        // Bob listens to Alice once she has seen him join; Alice to Bob once connect returned.
        let deadline = Instant::now() + PATIENCE;
        while !chat.alice.listeners().iter().any(|p| p.username == "bob") {
            chat.alice_event(deadline);
        }
        chat
    }

    /// Handles one of Alice's events; returns a message from Bob if it was one.
    fn alice_event(&mut self, deadline: Instant) -> Option<(u64, Instant)> {
        let event = self
            .alice
            .events()
            .recv_deadline(deadline)
            .expect("alice: an event in time");
        match event {
            Event::Message { from, text } if from.username == "bob" => {
                Some((text.parse().unwrap(), Instant::now()))
            }
            Event::ListenerJoined(p) if p.username != "bob" => {
                self.strangers += 1;
                None
            }
            Event::ListenerLeft { peer, .. } if peer.username != "bob" => {
                self.strangers -= 1;
                None
            }
            Event::ListenerLeft { .. } | Event::StoppedListeningTo { .. } => {
                panic!("the honest link broke: {event:?}")
            }
            _ => None,
        }
    }

    /// One round: a burst each way. Pushes one latency sample per message.
    fn round(&mut self, samples: &mut Vec<Duration>) {
        let deadline = Instant::now() + PATIENCE;
        // Alice to Bob.
        let first = self.bob_next;
        let mut sent_at = Vec::with_capacity(BURST as usize);
        for seq in first..first + BURST {
            sent_at.push(Instant::now());
            // Bob, and whichever abuser got in as a listener for a moment.
            assert!(self.alice.send(&seq.to_string()).unwrap() >= 1);
        }
        while self.bob_next < first + BURST {
            let event = self
                .bob
                .events()
                .recv_deadline(deadline)
                .expect("bob: alice's messages in time");
            match event {
                Event::Message { from, text } if from.username == "alice" => {
                    let now = Instant::now();
                    let seq: u64 = text.parse().unwrap();
                    assert_eq!(
                        seq, self.bob_next,
                        "bob: alice's messages lost or reordered"
                    );
                    samples.push(now - sent_at[(seq - first) as usize]);
                    self.bob_next += 1;
                }
                Event::Message { .. } => panic!("bob heard someone else: {event:?}"),
                Event::StoppedListeningTo { .. } | Event::ListenerLeft { .. } => {
                    panic!("the honest link broke: {event:?}")
                }
                _ => {}
            }
        }
        // Bob to Alice.
        let first = self.alice_next;
        sent_at.clear();
        for seq in first..first + BURST {
            sent_at.push(Instant::now());
            assert_eq!(self.bob.send(&seq.to_string()).unwrap(), 1);
        }
        while self.alice_next < first + BURST {
            if let Some((seq, at)) = self.alice_event(deadline) {
                assert_eq!(
                    seq, self.alice_next,
                    "alice: bob's messages lost or reordered"
                );
                samples.push(at - sent_at[(seq - first) as usize]);
                self.alice_next += 1;
            }
        }
        self.rounds += 1;
        // Take in whatever else Alice was told meanwhile.
        while let Ok(event) = self.alice.events().try_recv() {
            if let Event::Message { .. } = event {
                panic!("alice heard an unexpected message: {event:?}");
            }
            self.count_stranger(&event);
        }
    }

    fn count_stranger(&mut self, event: &Event) {
        match event {
            Event::ListenerJoined(p) if p.username != "bob" => self.strangers += 1,
            Event::ListenerLeft { peer, .. } if peer.username != "bob" => self.strangers -= 1,
            Event::ListenerLeft { .. } | Event::StoppedListeningTo { .. } => {
                panic!("the honest link broke: {event:?}")
            }
            _ => {}
        }
    }
}

// ---------------------------------------------------------------------------------------
// The abusers.

#[derive(Default)]
struct Counts {
    /// Connections opened and dropped at once.
    churned: AtomicU64,
    /// Connections that streamed garbage until the peer closed them, and the bytes sent.
    garbage_conns: AtomicU64,
    garbage_bytes: AtomicU64,
    /// Handshakes held open (silent or half-sent) that the peer closed at its deadline.
    held_closed: AtomicU64,
    /// Handshakes held in all.
    held_opened: AtomicU64,
    /// Connections that completed a handshake and then sent garbage.
    handshake_then_garbage: AtomicU64,
}

struct Abuse {
    stop: Arc<AtomicBool>,
    counts: Arc<Counts>,
    threads: Vec<JoinHandle<()>>,
}

/// Spaces the abusers' actions at a rate (pacing, not synchronisation): `None` is flat out.
struct Pace {
    per_sec: Option<f64>,
    started: Instant,
    done: u64,
}

impl Pace {
    fn new(per_sec: Option<f64>) -> Pace {
        Pace {
            per_sec,
            started: Instant::now(),
            done: 0,
        }
    }

    /// Waits until the next action is due.
    fn tick(&mut self) {
        if let Some(rate) = self.per_sec {
            let due = self.started + Duration::from_secs_f64(self.done as f64 / rate);
            let now = Instant::now();
            if due > now {
                thread::sleep(due - now);
            }
        }
        self.done += 1;
    }
}

/// How hard each abuser pushes.
#[derive(Clone, Copy)]
struct Rates {
    /// Connections opened and dropped per second, per thread (2 threads).
    churn: Option<f64>,
    /// Garbage writes of 4 KiB per second, per thread (2 threads); a connection gets at
    /// most 64 KiB before a new one is opened.
    garbage: Option<f64>,
    /// Handshake-then-garbage connections per second.
    handshake_garbage: Option<f64>,
}

impl Rates {
    /// A busy public port: 1,000 connections opened and dropped a second, 2 MiB/s of
    /// garbage, 4 handshakes a second that turn into garbage, 200 stalled handshakes.
    const AT_RATE: Rates = Rates {
        churn: Some(500.0),
        garbage: Some(256.0),
        handshake_garbage: Some(4.0),
    };
    /// Every abuser as fast as it can: on a small machine this measures the CPU the honest
    /// peers are left with as much as anything in p2p-core.
    const FLAT_OUT: Rates = Rates {
        churn: None,
        garbage: None,
        handshake_garbage: None,
    };
}

/// Where an abuser connects: Alice's port on one of 10,000 loopback addresses in turn
/// (she is bound to every address, as a peer is by default), so that the TIME_WAIT
/// sockets thousands of dropped connections leave behind do not crowd the ephemeral ports
/// of a single address pair (the kernel's search for a free port then costs more than the
/// peer's whole handling of a connection, and the abuse measures the kernel).
struct Target {
    port: u16,
    next: u64,
}

impl Target {
    fn new(port: u16, seed: u64) -> Target {
        Target {
            port,
            next: seed * 7_919,
        }
    }

    fn next(&mut self) -> SocketAddr {
        let n = self.next;
        self.next += 1;
        let ip = Ipv4Addr::new(127, 0, ((n / 200) % 50) as u8, (n % 200 + 2) as u8);
        SocketAddr::new(IpAddr::V4(ip), self.port)
    }
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> JoinHandle<()> {
    thread::Builder::new().name(name.into()).spawn(f).unwrap()
}

impl Abuse {
    fn start(port: u16, rates: Rates) -> Abuse {
        let stop = Arc::new(AtomicBool::new(false));
        let counts = Arc::new(Counts::default());
        let mut threads = Vec::new();
        let only = std::env::var("ABUSE_ONLY").unwrap_or_default();
        let on = |kind: &str| only.is_empty() || only.split(',').any(|k| k == kind);
        for i in 0..2 {
            let (stop, counts) = (Arc::clone(&stop), Arc::clone(&counts));
            if !on("churn") {
                break;
            }
            threads.push(spawn(&format!("abuse-churn-{i}"), move || {
                let mut pace = Pace::new(rates.churn);
                let mut target = Target::new(port, i);
                while !stop.load(Ordering::Relaxed) {
                    pace.tick();
                    if TcpStream::connect(target.next()).is_ok() {
                        counts.churned.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }));
        }
        for i in 0..2 {
            let (stop, counts) = (Arc::clone(&stop), Arc::clone(&counts));
            if !on("garbage") {
                break;
            }
            threads.push(spawn(&format!("abuse-garbage-{i}"), move || {
                garbage(
                    Target::new(port, 10 + i),
                    Pace::new(rates.garbage),
                    &stop,
                    &counts,
                );
            }));
        }
        if on("held") {
            let (stop, counts) = (Arc::clone(&stop), Arc::clone(&counts));
            threads.push(spawn("abuse-held", move || {
                hold(Target::new(port, 20), &stop, &counts);
            }));
        }
        if on("hsgarbage") {
            let (stop, counts) = (Arc::clone(&stop), Arc::clone(&counts));
            threads.push(spawn("abuse-hs-garbage", move || {
                let pace = Pace::new(rates.handshake_garbage);
                handshake_then_garbage(Target::new(port, 30), pace, &stop, &counts);
            }));
        }
        Abuse {
            stop,
            counts,
            threads,
        }
    }

    fn stop(self) -> Arc<Counts> {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().unwrap();
        }
        self.counts
    }
}

/// Streams random bytes until the peer closes the connection, then does it again. Every
/// other connection starts with a small, valid-looking length prefix, so that the garbage
/// is read as a frame body rather than refused on its length alone.
fn garbage(mut target: Target, mut pace: Pace, stop: &AtomicBool, counts: &Counts) {
    let mut noise = Noise(0x9e37_79b9_7f4a_7c15 ^ target.next);
    let mut buf = [0u8; 4096];
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let Ok(mut conn) = TcpStream::connect(target.next()) else {
            continue;
        };
        n += 1;
        let mut sent = 0u64;
        while sent < 64 * 1024 {
            pace.tick();
            noise.fill(&mut buf);
            if n.is_multiple_of(2) && sent == 0 {
                buf[..4].copy_from_slice(&1000u32.to_be_bytes());
                buf[4] = (noise.next() % 40) as u8; // any kind, known or not
            }
            match conn.write(&buf) {
                Ok(k) => sent += k as u64,
                Err(_) => break,
            }
            if stop.load(Ordering::Relaxed) {
                break;
            }
        }
        counts.garbage_conns.fetch_add(1, Ordering::Relaxed);
        counts.garbage_bytes.fetch_add(sent, Ordering::Relaxed);
    }
}

/// The key of the honest peers' room (`lobby`, open), derived once.
fn lobby_key() -> &'static RoomKey {
    static KEY: OnceLock<RoomKey> = OnceLock::new();
    KEY.get_or_init(|| RoomKey::derive("lobby", None).unwrap())
}

fn handshake_bytes(n: u64) -> Vec<u8> {
    Frame::Handshake(Handshake {
        version: PROTOCOL_VERSION,
        peer_id: 0xbad0_0000_0000_0000 | n,
        username: format!("mallory{n}"),
        listen_ip: Some("127.0.0.1".parse().unwrap()),
        listen_port: 9,
        connect_back: false,
        duplex: false,
    })
    .encode()
    .unwrap()
}

/// Holds [`HELD`] handshakes that never finish: half send nothing, half send the first
/// half of the Noise handshake's first message (its 2-byte length says 48 bytes, 24
/// come). The peer closes them at its handshake deadline; each is then opened again. The
/// sockets are looked at without blocking, twenty times a second.
fn hold(mut target: Target, stop: &AtomicBool, counts: &Counts) {
    let mut half = vec![0u8, 48];
    half.extend_from_slice(&[0x42; 24]);
    let half = &half[..];
    let mut open = |i: usize| -> Option<TcpStream> {
        let mut conn = TcpStream::connect(target.next()).ok()?;
        if i % 2 == 1 {
            conn.write_all(half).ok()?;
        }
        conn.set_nonblocking(true).ok()?;
        counts.held_opened.fetch_add(1, Ordering::Relaxed);
        Some(conn)
    };
    let mut held: Vec<Option<TcpStream>> = (0..HELD).map(&mut open).collect();
    let mut buf = [0u8; 512];
    while !stop.load(Ordering::Relaxed) {
        for (i, slot) in held.iter_mut().enumerate() {
            let closed = match slot {
                // Anything (the refusal) or the end: the peer gave up on this handshake.
                Some(conn) => !matches!(
                    conn.read(&mut buf),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock
                ),
                None => false,
            };
            if closed {
                counts.held_closed.fetch_add(1, Ordering::Relaxed);
            }
            if closed || slot.is_none() {
                *slot = open(i);
            }
        }
        // Pacing, not synchronisation: the next look in 50 ms.
        thread::sleep(Duration::from_millis(50));
    }
}

/// Completes a handshake (the Noise handshake with the room key, then a hello sealed as a
/// record: the peer now counts it as a listener and sends it the chat), then sends garbage
/// upstream, which fails as a record: the peer must cut it off at its next look upstream.
/// Four at a time.
fn handshake_then_garbage(mut target: Target, mut pace: Pace, stop: &AtomicBool, counts: &Counts) {
    let mut noise = Noise(0x5151_5151);
    let mut n = 1u64;
    let identity = Identity::generate().unwrap();
    while !stop.load(Ordering::Relaxed) {
        let mut conns = Vec::new();
        for _ in 0..4 {
            pace.tick();
            let Ok(mut conn) = TcpStream::connect(target.next()) else {
                continue;
            };
            let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
            let Ok(secured) = initiate(&mut conn, &identity, lobby_key()) else {
                continue;
            };
            let (_, mut writer) = secured.into_records(std::io::empty());
            let mut sealed = Vec::new();
            if writer
                .write_sealed(&mut conn, &handshake_bytes(n), &mut sealed)
                .is_ok()
            {
                conns.push(conn);
            }
            n += 1;
        }
        for conn in &mut conns {
            let mut junk = [0u8; 256];
            noise.fill(&mut junk);
            let _ = conn.write_all(&junk);
            let _ = conn.set_read_timeout(Some(Duration::from_millis(100)));
        }
        // Read (and discard) until the peer closes each one: the welcome, chat, the end.
        let mut buf = [0u8; 4096];
        for conn in &mut conns {
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline && !stop.load(Ordering::Relaxed) {
                match conn.read(&mut buf) {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) => {}
                    Err(_) => break,
                }
            }
            let _ = conn.shutdown(Shutdown::Both);
            counts
                .handshake_then_garbage
                .fetch_add(1, Ordering::Relaxed);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Figures.

struct Figures {
    samples: usize,
    p50: Duration,
    p99: Duration,
    max: Duration,
}

fn figures(mut samples: Vec<Duration>) -> Figures {
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    Figures {
        samples: samples.len(),
        p50: at(0.50),
        p99: at(0.99),
        max: *samples.last().unwrap(),
    }
}

fn us(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us >= 10_000.0 {
        format!("{:.1} ms", us / 1000.0)
    } else {
        format!("{us:.0} µs")
    }
}

fn ratio(a: Duration, b: Duration) -> String {
    format!("{:.1}×", a.as_secs_f64() / b.as_secs_f64().max(1e-9))
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// One phase of abuse while the chat goes on; then the chat is checked to recover.
struct Phase {
    samples: Vec<Duration>,
    time: Duration,
    counts: Arc<Counts>,
    peak_threads: usize,
    /// Connections the kernel dropped at Alice's full accept queue (to be retried by the
    /// client after a second).
    overflows: Option<u64>,
}

/// Chats in paced rounds for `time`; returns the peak of Alice's threads meanwhile.
fn chat_for(chat: &mut Chat, time: Duration, samples: &mut Vec<Duration>) -> usize {
    let mut pace = Pace::new(Some(ROUNDS_PER_SEC));
    let started = Instant::now();
    let mut peak_threads = 0;
    while started.elapsed() < time {
        pace.tick();
        chat.round(samples);
        peak_threads = peak_threads.max(chat.alice.thread_count());
    }
    peak_threads
}

/// The kernel's count of connections dropped because a listening socket's accept queue
/// was full (TcpExt ListenOverflows, for this network namespace).
fn listen_overflows() -> Option<u64> {
    let netstat = std::fs::read_to_string("/proc/net/netstat").ok()?;
    let mut lines = netstat.lines().filter(|l| l.starts_with("TcpExt:"));
    let (names, values) = (lines.next()?, lines.next()?);
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(n, _)| *n == "ListenOverflows")
        .and_then(|(_, v)| v.parse().ok())
}

fn abuse_phase(chat: &mut Chat, rates: Rates, time: Duration) -> Phase {
    let overflows_before = listen_overflows();
    let abuse = Abuse::start(chat.alice.local_addr().port(), rates);
    let mut samples = Vec::new();
    let started = Instant::now();
    let peak_threads = chat_for(chat, time, &mut samples);
    let time = started.elapsed();
    let counts = abuse.stop();
    let overflows = listen_overflows()
        .zip(overflows_before)
        .map(|(after, before)| after - before);

    // Afterwards the chat goes on, and every stranger that got in as a listener is gone.
    let mut after = Vec::new();
    for _ in 0..20 {
        chat.round(&mut after);
    }
    let deadline = Instant::now() + PATIENCE;
    while chat.strangers > 0 {
        if let Some(msg) = chat.alice_event(deadline) {
            panic!("alice heard an unexpected message: {msg:?}");
        }
    }
    let listeners: Vec<String> = chat
        .alice
        .listeners()
        .into_iter()
        .map(|p| p.username)
        .collect();
    assert_eq!(
        listeners,
        ["bob"],
        "only bob listens to alice after the abuse"
    );
    Phase {
        samples,
        time,
        counts,
        peak_threads,
        overflows,
    }
}

fn main() {
    // `cargo bench` passes `--bench`. `cargo test --all-targets` runs this binary too,
    // without it: then every phase is cut short (a smoke run of a few seconds that still
    // checks every honest message) and the figures mean little.
    // ABUSE_ONLY=churn,garbage,held,hsgarbage runs only those abusers.
    let full = std::env::args().any(|a| a == "--bench");
    let scale = |d: Duration| if full { d } else { d / 8 };
    let mut chat = Chat::start();
    let threads_quiet = chat.alice.thread_count();

    // Warm up, then the quiet phase.
    chat_for(&mut chat, Duration::from_millis(200), &mut Vec::new());
    let mut quiet = Vec::new();
    let quiet_started = Instant::now();
    chat_for(&mut chat, scale(QUIET), &mut quiet);
    let quiet_time = quiet_started.elapsed();

    let at_rate = abuse_phase(&mut chat, Rates::AT_RATE, scale(AT_RATE));
    let flat_out = abuse_phase(&mut chat, Rates::FLAT_OUT, scale(FLAT_OUT));
    // Quiet again: the peer is back to its quiet self, and a second baseline shows how
    // much the machine itself moved meanwhile (it is shared).
    let mut quiet_after = Vec::new();
    let quiet_after_started = Instant::now();
    chat_for(&mut chat, scale(QUIET), &mut quiet_after);
    let quiet_after_time = quiet_after_started.elapsed();

    let total = chat.bob_next + chat.alice_next;
    assert_eq!(total, chat.rounds * BURST * 2, "honest messages lost");

    // The baseline: both quiet phases, pooled (the machine is shared and its load moves).
    let pooled: Vec<Duration> = quiet.iter().chain(&quiet_after).copied().collect();
    let q = figures(pooled.clone());
    println!();
    if !full {
        println!("(a smoke run, as under `cargo test`: `cargo bench` gives the figures)");
    }
    println!(
        "## Abuse: honest chat latency (one sample per message, from send to read by the other peer's embedder)"
    );
    println!();
    println!(
        "| phase | messages | duration | p50 | p99 | max | p50 ratio | p99 ratio | max ratio |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    let rows = [
        ("quiet, before", &quiet, quiet_time),
        ("quiet, after", &quiet_after, quiet_after_time),
        (
            "**quiet, both (the baseline)**",
            &pooled,
            quiet_time + quiet_after_time,
        ),
        ("**under abuse, at rate**", &at_rate.samples, at_rate.time),
        (
            "**under abuse, flat out**",
            &flat_out.samples,
            flat_out.time,
        ),
    ];
    for (name, samples, time) in rows {
        let a = figures(samples.clone());
        println!(
            "| {name} | {} | {:.1} s | {} | {} | {} | {} | {} | {} |",
            thousands(a.samples as u64),
            time.as_secs_f64(),
            us(a.p50),
            us(a.p99),
            us(a.max),
            ratio(a.p50, q.p50),
            ratio(a.p99, q.p99),
            ratio(a.max, q.max)
        );
    }
    println!();
    println!("| abuse against alice's port, all at once | at rate | flat out |");
    println!("|---|---:|---:|");
    let row = |what: &str, f: &dyn Fn(&Phase) -> String| {
        println!("| {what} | {} | {} |", f(&at_rate), f(&flat_out));
    };
    let c = |n: &AtomicU64| n.load(Ordering::Relaxed);
    row("duration", &|p| format!("{:.1} s", p.time.as_secs_f64()));
    row("connections opened and dropped at once (2 threads)", &|p| {
        let n = c(&p.counts.churned);
        format!(
            "{} ({:.0}/s)",
            thousands(n),
            n as f64 / p.time.as_secs_f64()
        )
    });
    row(
        "connections streaming garbage until closed (2 threads)",
        &|p| {
            format!(
                "{} ({:.1} MiB)",
                thousands(c(&p.counts.garbage_conns)),
                c(&p.counts.garbage_bytes) as f64 / f64::from(1 << 20)
            )
        },
    );
    row(
        &format!(
            "handshakes never finished ({HELD} held at once): opened / refused at the deadline"
        ),
        &|p| {
            format!(
                "{} / {}",
                thousands(c(&p.counts.held_opened)),
                thousands(c(&p.counts.held_closed))
            )
        },
    );
    row("handshakes followed by garbage, cut off", &|p| {
        thousands(c(&p.counts.handshake_then_garbage))
    });
    row("abusive connections in all", &|p| {
        thousands(
            c(&p.counts.churned)
                + c(&p.counts.garbage_conns)
                + c(&p.counts.held_opened)
                + c(&p.counts.handshake_then_garbage),
        )
    });
    row(
        "connections dropped by the kernel at alice's full accept queue (backlog: max_inbound, 1024)",
        &|p| p.overflows.map_or("—".into(), thousands),
    );
    row(
        &format!("alice's threads (quiet: {threads_quiet}), peak"),
        &|p| p.peak_threads.to_string(),
    );
    println!(
        "\nHonest messages: {} sent, every one received once and in order (checked as it arrived).",
        thousands(total)
    );
    println!();
}
