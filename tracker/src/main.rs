//! `tracker [PORT]` or `tracker --port PORT [--bind ADDR] [--ttl SECS] [--summary-secs SECS]
//! [--stats-addr ADDR:PORT]`: runs a p2p-chat tracker until killed. Logs go to stderr
//! through env_logger (`RUST_LOG`, default `info`).

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
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
    let port = cli.port.or(cli.port_flag).unwrap_or(tracker::DEFAULT_PORT);
    let config = TrackerConfig {
        bind_addr: SocketAddr::new(cli.bind, port),
        ttl: Duration::from_secs(cli.ttl),
        summary_interval: (cli.summary_secs > 0).then(|| Duration::from_secs(cli.summary_secs)),
        stats_addr: cli.stats_addr,
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
    // Serve until the process is killed: park this thread for good.
    loop {
        std::thread::park();
    }
}
