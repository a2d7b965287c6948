//! `tracker [PORT]` or `tracker --port PORT [--bind ADDR] [--ttl SECS] [--summary-secs SECS]
//! [--stats-addr ADDR:PORT] [--dht UDP_PORT]`: runs a p2p-chat tracker until SIGINT or
//! SIGTERM. Logs go to stderr through env_logger (`RUST_LOG`, default `info`).
//!
//! The first SIGINT or SIGTERM stops it cleanly (a log line, every thread joined, exit
//! status 0); a second one while it stops ends the process at once, with the status a
//! shell gives a process killed by that signal (130 or 143).

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use clap::Parser;
use log::info;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::flag;
use signal_hook::iterator::Signals;
use tracker::{Tracker, TrackerConfig};

/// The p2p-chat tracker: tells each peer the addresses of the others.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Port to listen on (default 7000).
    #[arg(value_name = "PORT", conflicts_with = "port_flag")]
    port: Option<u16>,
    /// Port to listen on (default 7000).
    #[arg(long = "port", value_name = "PORT")]
    port_flag: Option<u16>,
    /// Address to bind.
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0")]
    bind: IpAddr,
    /// Seconds a registration lives without a re-announce (at least 3); peers re-announce
    /// every third.
    #[arg(long, value_name = "SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(3..=86_400))]
    ttl: u64,
    /// Seconds between summary lines at `info` (peers, requests and refusals per second,
    /// connections, memory); 0 for none.
    #[arg(long, value_name = "SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(0..=86_400))]
    summary_secs: u64,
    /// Serve the same figures in the Prometheus text format at http://ADDR:PORT/metrics
    /// (off unless given; keep it on a private address).
    #[arg(long, value_name = "ADDR:PORT")]
    stats_addr: Option<SocketAddr>,
    /// Also run a Mainline DHT node on this UDP port (of the --bind address, IPv4 only): a
    /// bootstrap node for a private DHT (peers' --dht-bootstrap); 0 picks a free port.
    #[arg(long, value_name = "UDP_PORT")]
    dht: Option<u16>,
}

/// The signals that stop the tracker.
const STOP_SIGNALS: [i32; 2] = [SIGINT, SIGTERM];

/// Sets up the stop signals: the returned iterator yields the first one; a second one ends
/// the process from the handler itself, whatever the stopping tracker is doing. Handlers
/// only set a flag or write to signal-hook's pipe (no work inside them).
fn stop_signals() -> std::io::Result<Signals> {
    let stopping = Arc::new(AtomicBool::new(false));
    for signal in STOP_SIGNALS {
        // Registered first, so it sees the flag as the previous signal left it.
        flag::register_conditional_shutdown(signal, 128 + signal, Arc::clone(&stopping))?;
        flag::register(signal, Arc::clone(&stopping))?;
    }
    Signals::new(STOP_SIGNALS)
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let text = e.to_string();
            eprintln!("{}", text.lines().next().unwrap_or("invalid arguments"));
            return ExitCode::from(2);
        }
    };
    let mut signals = match stop_signals() {
        Ok(signals) => signals,
        Err(e) => {
            eprintln!("error: cannot handle SIGINT and SIGTERM: {e}");
            return ExitCode::FAILURE;
        }
    };
    let port = cli.port.or(cli.port_flag).unwrap_or(tracker::DEFAULT_PORT);
    let config = TrackerConfig {
        bind_addr: SocketAddr::new(cli.bind, port),
        ttl: Duration::from_secs(cli.ttl),
        summary_interval: (cli.summary_secs > 0).then(|| Duration::from_secs(cli.summary_secs)),
        stats_addr: cli.stats_addr,
        dht_port: cli.dht,
        ..TrackerConfig::default()
    };
    let tracker = match Tracker::start(config) {
        Ok(tracker) => tracker,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!("listening on {}", tracker.local_addr());
    if let Some(addr) = tracker.dht_addr() {
        eprintln!("dht node on {addr}");
    }
    let name = match signals.forever().next() {
        Some(SIGINT) => "SIGINT",
        Some(SIGTERM) => "SIGTERM",
        _ => "a stop signal",
    };
    info!("{name} received: stopping (a second signal ends the process at once)");
    tracker.shutdown();
    ExitCode::SUCCESS
}
