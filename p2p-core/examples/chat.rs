//! The terminal peer: the embedding example and the headless client.
//!
//! ```text
//! chat --username NAME --port PORT [--ip IP] (--tracker HOST:PORT | --peers "HOST:PORT ..." | --alone)
//! ```
//!
//! Each line of standard input is sent to every listener; end of input or `/quit` leaves
//! cleanly. Each message received is printed to standard output as `[NAME]: TEXT`, one
//! line, flushed at once (control characters in the text are escaped so that it stays one
//! line). Everything else (the `listening on IP:PORT` line, notices, logs) goes to standard
//! error. Exit status: 0 after a clean leave, 1 when the peer cannot start, 2 for bad
//! arguments, each with one line on standard error.

use std::io::{self, BufRead, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::thread;

use clap::{ArgGroup, Parser};
use p2p_core::protocol::validate_username;
use p2p_core::{Batch, Error, Event, Events, Mode, Peer, PeerConfig};

/// A p2p-chat peer in the terminal.
#[derive(Debug, Parser)]
#[command(version, about, group(ArgGroup::new("mode").required(true).args(["tracker", "peers", "alone"])))]
struct Cli {
    /// Your username: 1 to 32 characters, no control or invisible formatting characters,
    /// no space at either end.
    #[arg(long)]
    username: String,
    /// Port to listen on; 0 picks a free one.
    #[arg(long)]
    port: u16,
    /// The address advertised to other peers.
    #[arg(long, default_value = "127.0.0.1")]
    ip: IpAddr,
    /// Join through the tracker at HOST:PORT (listen to everyone, and be listened to).
    #[arg(long, value_name = "HOST:PORT")]
    tracker: Option<String>,
    /// Listen to these peers, space-separated HOST:PORT addresses.
    #[arg(long, value_name = "\"HOST:PORT ...\"")]
    peers: Option<String>,
    /// Connect with no one: the first peer of a network.
    #[arg(long)]
    alone: bool,
}

impl Cli {
    fn config(&self) -> PeerConfig {
        let mut config = PeerConfig::new(self.username.clone());
        config.bind_addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), self.port);
        config.advertise_ip = self.ip;
        config.mode = match (&self.tracker, &self.peers) {
            (Some(tracker), _) => Mode::Tracker(tracker.clone()),
            (None, Some(peers)) => {
                Mode::Manual(peers.split_whitespace().map(String::from).collect())
            }
            (None, None) => Mode::Alone,
        };
        config
    }
}

/// Escapes control characters so that a message prints as one line.
fn one_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Prints events until the peer's channel disconnects (when the peer is dropped). Messages
/// are read a batch at a time (all that one read from one link brought) and flushed once
/// per batch, so a burst costs one write to standard output, not one per line.
fn print_events(events: &Events) {
    let stdout = io::stdout();
    while let Ok(batch) = events.recv_batch() {
        let event = match batch {
            Batch::Messages(messages) => {
                // Standard output is line-buffered: gather the batch's lines first.
                let mut out = io::BufWriter::new(stdout.lock());
                let name = &messages.from().username;
                // If nobody reads our output any more, keep draining so the peer is not held.
                let _ = messages
                    .texts()
                    .try_for_each(|text| writeln!(out, "[{name}]: {}", one_line(text)))
                    .and_then(|()| out.flush());
                continue;
            }
            Batch::Event(event) => event,
        };
        match event {
            Event::ListeningTo(peer) => eprintln!("* listening to {peer}"),
            Event::StoppedListeningTo { peer, reason } => {
                eprintln!("* stopped listening to {peer}: {reason}")
            }
            Event::ListenerJoined(peer) => eprintln!("* {peer} listens to you"),
            Event::ListenerLeft { peer, reason } => {
                eprintln!("* {peer} no longer listens to you: {reason}")
            }
            Event::ConnectFailed { addr, reason } => {
                eprintln!("* could not connect to {addr}: {reason}")
            }
            Event::TrackerUnreachable { reason } => eprintln!("* tracker unreachable: {reason}"),
            other => eprintln!("* {other:?}"),
        }
    }
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
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
    // A bad username is a bad argument, with the same message as the library's.
    if let Err(e) = validate_username(&cli.username) {
        eprintln!("error: invalid username: {e}");
        return ExitCode::from(2);
    }
    let peer = match Peer::start(cli.config()) {
        Ok(peer) => peer,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!("listening on {}", peer.local_addr());
    let events = peer.events().clone();
    let printer = thread::spawn(move || print_events(&events));

    let mut line = Vec::new();
    let mut stdin = io::stdin().lock();
    loop {
        line.clear();
        match stdin.read_until(b'\n', &mut line) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                eprintln!("* cannot read standard input: {e}");
                break;
            }
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\n', '\r']);
        if text == "/quit" {
            break;
        }
        // A listener that is slower than the input makes `send` wait; one that takes too
        // long to make room makes it fail with QueueFull: piped input then waits its turn
        // rather than dropping lines.
        loop {
            match peer.send(text) {
                Err(Error::QueueFull) => continue,
                Err(e) => eprintln!("* not sent: {e}"),
                Ok(_) => {}
            }
            break;
        }
    }
    peer.shutdown();
    let _ = printer.join();
    ExitCode::SUCCESS
}
