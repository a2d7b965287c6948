//! Honest announces during an idle-connection flood, against a quiet tracker in the same
//! run (`docs/performance.md`, `docs/reliability.md`).
//!
//! ```text
//! cargo bench -p tracker --bench idle_flood
//! ```
//!
//! Each round starts a tracker with the default configuration, then, interleaved: a quiet
//! run (announces one after another from 127.0.0.1 for 3 s, each on a new connection, as
//! peers make them) and a flooded run (the same while one host, 127.0.0.2, holds 1,000
//! connections that send nothing and re-opens each one the tracker closes; 3 s is longer
//! than the request deadline, so the flood's connections are closed and re-opened during
//! it). It prints how many announces were made and answered and the median and
//! 99th-percentile latency of the answered ones, as medians over the rounds, and the ratio
//! flooded / quiet.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{self, Read};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};
use tracker::{Tracker, TrackerConfig};

/// The room the honest peers announce in (any 16 bytes: a tracker sees only rooms' ids).
const ROOM: p2p_core::protocol::Room = p2p_core::protocol::Room::from_bytes([7; 16]);
const ROUNDS: usize = 5;
const HONEST_FOR: Duration = Duration::from_secs(3);
const FLOOD: usize = 1_000;
const ATTACKER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

fn connect_from(from: Ipv4Addr, to: SocketAddr) -> io::Result<TcpStream> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
    socket.bind(&SocketAddr::new(IpAddr::V4(from), 0).into())?;
    socket.connect_timeout(&to.into(), Duration::from_secs(5))?;
    Ok(socket.into())
}

fn closed_by_peer(stream: &TcpStream) -> bool {
    let _ = stream.set_nonblocking(true);
    let mut byte = [0u8; 1];
    let closed = match (&*stream).read(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != io::ErrorKind::WouldBlock,
    };
    let _ = stream.set_nonblocking(false);
    closed
}

/// Holds `FLOOD` idle connections until `stop`, re-opening each one the tracker closes.
/// Returns how many it re-opened.
fn flood(tracker: SocketAddr, stop: &AtomicBool, ready: &crossbeam_channel::Sender<()>) -> usize {
    let mut conns: Vec<TcpStream> = (0..FLOOD)
        .filter_map(|_| connect_from(ATTACKER, tracker).ok())
        .collect();
    let _ = ready.send(());
    let mut reopened = 0;
    while !stop.load(Ordering::SeqCst) {
        for conn in &mut conns {
            if closed_by_peer(conn)
                && let Ok(again) = connect_from(ATTACKER, tracker)
            {
                *conn = again;
                reopened += 1;
            }
        }
        thread::sleep(Duration::from_millis(20));
    }
    reopened
}

/// One run: (announces made, latencies of the answered ones, sorted).
fn honest(tracker: SocketAddr) -> (usize, Vec<Duration>) {
    let timeouts = p2p_core::Timeouts::default();
    let mut latencies = Vec::new();
    let until = Instant::now() + HONEST_FOR;
    let mut made = 0;
    while Instant::now() < until {
        // A thousand distinct peers, re-announcing in turn.
        let me = SocketAddr::new([127, 0, 0, 1].into(), 20_000 + (made % 1_000) as u16);
        made += 1;
        let started = Instant::now();
        if p2p_core::tracker_client::announce(&tracker.to_string(), ROOM, me, &timeouts).is_ok() {
            latencies.push(started.elapsed());
        }
    }
    latencies.sort();
    (made, latencies)
}

#[derive(Default)]
struct Runs {
    made: Vec<usize>,
    served: Vec<usize>,
    p50: Vec<Duration>,
    p99: Vec<Duration>,
}

impl Runs {
    fn add(&mut self, (made, latencies): (usize, Vec<Duration>)) {
        self.made.push(made);
        self.served.push(latencies.len());
        if !latencies.is_empty() {
            self.p50.push(latencies[latencies.len() / 2]);
            self.p99.push(latencies[latencies.len() * 99 / 100]);
        }
    }
}

fn median<T: Ord + Copy>(mut v: Vec<T>) -> Option<T> {
    v.sort();
    v.get(v.len() / 2).copied()
}

fn show(d: Option<Duration>) -> String {
    d.map_or("—".into(), |d| format!("{:.2} ms", d.as_secs_f64() * 1e3))
}

fn main() {
    let mut quiet = Runs::default();
    let mut flooded = Runs::default();
    let mut reopened = Vec::new();
    for _ in 0..ROUNDS {
        let start = || {
            let t = Tracker::start(TrackerConfig {
                bind_addr: "0.0.0.0:0".parse().unwrap(),
                ..TrackerConfig::default()
            })
            .unwrap();
            let addr = SocketAddr::new([127, 0, 0, 1].into(), t.local_addr().port());
            (t, addr)
        };
        {
            let (_t, addr) = start();
            quiet.add(honest(addr));
        }
        let (_t, addr) = start();
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready) = crossbeam_channel::bounded(1);
        let attacker = {
            let stop = Arc::clone(&stop);
            thread::spawn(move || flood(addr, &stop, &ready_tx))
        };
        ready.recv().unwrap();
        flooded.add(honest(addr));
        stop.store(true, Ordering::SeqCst);
        reopened.push(attacker.join().unwrap());
    }
    println!(
        "#### Tracker: honest announces for {} s, quiet and during a {FLOOD}-connection idle flood\n",
        HONEST_FOR.as_secs()
    );
    println!("|  | made | answered | p50 latency | p99 latency |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    let (qp50, fp50) = (median(quiet.p50.clone()), median(flooded.p50.clone()));
    for (name, runs) in [("quiet", &quiet), ("flooded", &flooded)] {
        println!(
            "| {name} | {} | {} | {} | {} |",
            median(runs.made.clone()).unwrap_or(0),
            median(runs.served.clone()).unwrap_or(0),
            show(median(runs.p50.clone())),
            show(median(runs.p99.clone()))
        );
    }
    if let (Some(q), Some(f)) = (qp50, fp50) {
        println!(
            "\nratio flooded / quiet (p50): **{:.2}**",
            f.as_secs_f64() / q.as_secs_f64()
        );
    }
    println!(
        "\nmedians of {ROUNDS} rounds; flood connections closed by the tracker and re-opened \
         per run (median): {}",
        median(reopened).unwrap_or(0)
    );
}
