//! A tracker test tool (used by `scripts/netns-test.sh`): floods a tracker with announces
//! of bogus addresses, or probes which peers it lists.
//!
//! ```text
//! flood --tracker HOST:PORT [--room NAME] --count N [--threads T] [--net A.B] [--for-secs S]
//! flood --tracker HOST:PORT [--room NAME] --probe IP:PORT [--rounds R]
//! ```
//!
//! Both speak in the room NAME (default `lobby`) without a passphrase: the tracker sees the
//! room's opaque id, derived as a peer derives it.
//!
//! Flood: announces the addresses `A.B.x.y:port` (default `10.200`), N distinct ones, from
//! T threads; with `--for-secs` it keeps announcing the same N over and over for that long
//! (a sustained flood that keeps its entries alive). Prints one line on stdout:
//! `requests=… registered=… refused=… failed=… secs=… rate=…`, where `registered` counts the
//! distinct addresses the tracker ever accepted, and the first refusal's reason on stderr.
//!
//! Probe: announces `IP:PORT` R times (answers are a window of at most 256 addresses that
//! moves on at each answer), prints every address listed, one per line, then leaves.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use clap::Parser;
use p2p_core::RoomName;
use p2p_core::net::{connect, read_frame_before, write_frame};
use p2p_core::protocol::{Announce, Frame, FrameReader, Leave, Room};
use p2p_core::secure::RoomKey;

/// Floods a tracker with announces of bogus addresses, or lists what it answers.
#[derive(Debug, Parser)]
struct Cli {
    /// The tracker, HOST:PORT.
    #[arg(long)]
    tracker: String,
    /// The room to announce in (without a passphrase).
    #[arg(long, default_value = RoomName::LOBBY)]
    room: RoomName,
    /// Distinct bogus addresses to announce.
    #[arg(long, default_value_t = 1000)]
    count: u32,
    /// Threads announcing at once.
    #[arg(long, default_value_t = 4)]
    threads: u32,
    /// First two octets of the bogus addresses.
    #[arg(long, default_value = "10.200")]
    net: String,
    /// Keep announcing the same addresses for this many seconds (0: once each).
    #[arg(long, default_value_t = 0.0)]
    for_secs: f64,
    /// Instead of flooding, announce this address and print the peers listed.
    #[arg(long, value_name = "IP:PORT")]
    probe: Option<SocketAddr>,
    /// Announces made by a probe.
    #[arg(long, default_value_t = 1)]
    rounds: u32,
}

/// What the tracker answered.
enum Answer {
    Listed(Vec<SocketAddr>),
    Left,
    Refused(String),
}

fn request(tracker: &str, frame: &Frame) -> Result<Answer, String> {
    let timeout = Duration::from_secs(5);
    let (stream, _) = connect(tracker, timeout).map_err(|e| e.to_string())?;
    // The tracker keeps a session open after its answer: close it with a reset, so that
    // thousands of requests leave no TIME_WAIT state using up this side's ports.
    socket2::SockRef::from(&stream)
        .set_linger(Some(Duration::ZERO))
        .map_err(|e| e.to_string())?;
    stream
        .set_write_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    write_frame(&stream, frame).map_err(|e| e.to_string())?;
    let answer = read_frame_before(
        &stream,
        &mut FrameReader::new(1 << 20),
        Instant::now() + timeout,
    )
    .map_err(|e| e.to_string())?;
    match answer {
        Frame::PeerList(list) => Ok(Answer::Listed(list.addrs())),
        Frame::LeaveAck => Ok(Answer::Left),
        Frame::Refuse { reason } => Ok(Answer::Refused(reason)),
        other => Err(format!("unexpected {} frame", other.name())),
    }
}

fn announce(room: Room, listen_addr: SocketAddr) -> Frame {
    Frame::Announce(Announce::explicit(room, listen_addr))
}

fn probe(cli: &Cli, room: Room, me: SocketAddr) -> ExitCode {
    let mut seen = BTreeSet::new();
    for _ in 0..cli.rounds.max(1) {
        match request(&cli.tracker, &announce(room, me)) {
            Ok(Answer::Listed(peers)) => seen.extend(peers),
            Ok(Answer::Refused(reason)) => {
                eprintln!("probe refused: {reason}");
                return ExitCode::FAILURE;
            }
            Ok(Answer::Left) => {
                eprintln!("probe: unexpected answer");
                return ExitCode::FAILURE;
            }
            Err(e) => {
                eprintln!("probe failed: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let _ = request(&cli.tracker, &Frame::Leave(Leave::explicit(room, me)));
    for addr in seen {
        println!("{addr}");
    }
    ExitCode::SUCCESS
}

#[derive(Default)]
struct Tally {
    requests: u64,
    registered: BTreeSet<SocketAddr>,
    refused: u64,
    failed: u64,
    first_refusal: Option<String>,
    first_failure: Option<String>,
}

fn flood(cli: &Cli, room: Room, net: [u8; 2]) -> ExitCode {
    let tally = Mutex::new(Tally::default());
    let started = Instant::now();
    let until = started + Duration::from_secs_f64(cli.for_secs.max(0.0));
    let threads = cli.threads.max(1);
    thread::scope(|scope| {
        for t in 0..threads {
            let tally = &tally;
            scope.spawn(move || {
                let mut mine = Tally::default();
                loop {
                    for n in (t..cli.count).step_by(threads as usize) {
                        let addr = SocketAddr::new(
                            IpAddr::V4(Ipv4Addr::new(net[0], net[1], (n >> 8) as u8, n as u8)),
                            1024 + (n >> 16) as u16,
                        );
                        mine.requests += 1;
                        match request(&cli.tracker, &announce(room, addr)) {
                            Ok(Answer::Listed(_)) => {
                                mine.registered.insert(addr);
                            }
                            Ok(Answer::Refused(reason)) => {
                                mine.refused += 1;
                                mine.first_refusal.get_or_insert(reason);
                            }
                            Ok(Answer::Left) => mine.failed += 1,
                            Err(e) => {
                                mine.failed += 1;
                                mine.first_failure.get_or_insert(e);
                            }
                        }
                    }
                    if Instant::now() >= until {
                        break;
                    }
                }
                let mut total = tally.lock().unwrap_or_else(|e| e.into_inner());
                total.requests += mine.requests;
                total.registered.extend(mine.registered);
                total.refused += mine.refused;
                total.failed += mine.failed;
                total.first_refusal = total.first_refusal.take().or(mine.first_refusal);
                total.first_failure = total.first_failure.take().or(mine.first_failure);
            });
        }
    });
    let secs = started.elapsed().as_secs_f64();
    let tally = tally.into_inner().unwrap_or_else(|e| e.into_inner());
    println!(
        "requests={} registered={} refused={} failed={} secs={secs:.2} rate={:.0}",
        tally.requests,
        tally.registered.len(),
        tally.refused,
        tally.failed,
        tally.requests as f64 / secs.max(1e-9)
    );
    if let Some(reason) = tally.first_refusal {
        eprintln!("first refusal: {reason}");
    }
    if let Some(e) = tally.first_failure {
        eprintln!("first failure: {e}");
    }
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let room = match RoomKey::derive(cli.room.as_str(), None) {
        Ok(key) => Room::from(key.room_id()),
        Err(e) => {
            eprintln!("cannot derive the room's id: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(me) = cli.probe {
        return probe(&cli, room, me);
    }
    let net: Vec<u8> = cli.net.split('.').filter_map(|o| o.parse().ok()).collect();
    let Ok(net) = <[u8; 2]>::try_from(net) else {
        eprintln!("--net must be two octets, such as 10.200");
        return ExitCode::from(2);
    };
    flood(&cli, room, net)
}
