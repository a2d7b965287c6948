//! The terminal peer: the embedding example and the headless client.
//!
//! ```text
//! chat --username NAME --port PORT [--ip IP] [--room ROOM] [--data-dir DIR]
//!      [--passphrase-file FILE]
//!      (--peers "HOST:PORT ..." | --alone
//!       | [--tracker HOST:PORT] [--lan] [--dht [--dht-bootstrap HOST:PORT,...]])
//! ```
//!
//! `--tracker`, `--lan` and `--dht` combine: the peers each finds join one mesh, and a peer
//! found twice is linked once.
//!
//! Each line of standard input is sent to every listener (a line longer than the text limit
//! is not sent: one line on standard error says so, and the next lines go on); end of
//! input, `/quit`, SIGINT (Ctrl+C) or SIGTERM leaves cleanly (goodbyes, tracker leave, every
//! thread of the peer joined, exit status 0); a second signal while leaving ends the process
//! at once. Each message received is printed to standard output as `[NAME]: TEXT`, one
//! line, flushed at once (control characters, invisible formatting characters such as
//! bidirectional overrides, and line separators in the text are escaped, so that it stays
//! one line and prints as sent). Everything else goes to standard error: the
//! `listening on IP:PORT` line (the address others should use where it is known, else the
//! bound one), the `identity FINGERPRINT` line (this installation's key, which the others
//! see beside its name), a line starting with `! ` when a known username arrives with
//! another identity key, notices and logs. Exit status: 0 after a clean leave, 1 when the
//! peer cannot start (port in use, tracker unreachable, wrong passphrase in manual mode, a
//! damaged identity key file), 2 for bad arguments (an empty or unreadable passphrase
//! included), each with one line on standard error.
//!
//! The passphrase of a closed room comes from the first line of `--passphrase-file`, else
//! from the environment variable `P2P_PASSPHRASE`; never from the command line, which other
//! users of the machine can read. The identity key and the known peers live in `--data-dir`
//! (default: the platform's data directory, such as `~/.local/share/p2p-chat`).

use std::io::{self, BufRead, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::thread;

use clap::{ArgGroup, Parser};
use crossbeam_channel::{Receiver, Sender, select};
use p2p_core::dht::{DhtConfig, parse_bootstrap};
use p2p_core::protocol::{DEFAULT_MAX_TEXT_BYTES, validate_username};
use p2p_core::secure::{Identity, Passphrase, default_data_dir};
use p2p_core::{Batch, Discovery, Error, Event, Events, Mode, Peer, PeerConfig, RoomName};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::{Handle, Signals};
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

/// A p2p-chat peer in the terminal.
#[derive(Debug, Parser)]
#[command(version, group(ArgGroup::new("mode").required(true).multiple(true).args(["tracker", "peers", "alone", "lan", "dht"])))]
struct Cli {
    /// Your username: 1 to 32 characters, no control or invisible formatting characters,
    /// no space at either end.
    #[arg(long)]
    username: String,
    /// Port to listen on; 0 picks a free one.
    #[arg(long)]
    port: u16,
    /// The address advertised to other peers (a public address with a forwarded port).
    /// Without it, others use the address they see this peer at.
    #[arg(long)]
    ip: Option<IpAddr>,
    /// The room: only peers of the same room (and passphrase) link.
    #[arg(long, default_value = RoomName::LOBBY)]
    room: RoomName,
    /// Where this installation's identity key and known peers are kept (default: the
    /// platform's data directory).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Read the room's passphrase from the first line of FILE (else from the environment
    /// variable P2P_PASSPHRASE; without either, the room is open).
    #[arg(long, value_name = "FILE")]
    passphrase_file: Option<PathBuf>,
    /// Join through the tracker at HOST:PORT (listen to everyone, and be listened to).
    #[arg(long, value_name = "HOST:PORT")]
    tracker: Option<String>,
    /// Listen to these peers, space-separated HOST:PORT addresses.
    #[arg(long, value_name = "\"HOST:PORT ...\"", conflicts_with_all = ["tracker", "lan", "dht", "alone"])]
    peers: Option<String>,
    /// Connect with no one: the first peer of a network.
    #[arg(long, conflicts_with_all = ["tracker", "lan", "dht"])]
    alone: bool,
    /// Find the room's peers on the local network (multicast DNS).
    #[arg(long)]
    lan: bool,
    /// Find the room's peers through the BitTorrent Mainline DHT (UDP).
    #[arg(long)]
    dht: bool,
    /// DHT nodes to join through, comma-separated HOST:PORT (a private DHT, such as a
    /// `tracker --dht` node); replaces the public bootstrap nodes.
    #[arg(long, value_name = "HOST:PORT,...", requires = "dht", value_parser = parse_bootstrap_list)]
    dht_bootstrap: Option<Bootstrap>,
}

/// A `--dht-bootstrap` list.
#[derive(Debug, Clone)]
struct Bootstrap(Vec<String>);

fn parse_bootstrap_list(list: &str) -> Result<Bootstrap, String> {
    parse_bootstrap(list)
        .map(Bootstrap)
        .map_err(|e| e.to_string())
}

impl Cli {
    fn config(
        &self,
        passphrase: Option<Passphrase>,
        identity: Identity,
        data_dir: PathBuf,
    ) -> PeerConfig {
        let mut config = PeerConfig::new(self.username.clone());
        config.bind_addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), self.port);
        config.advertise_ip = self.ip;
        config.room = self.room.clone();
        config.passphrase = passphrase;
        config.identity = Some(identity);
        config.data_dir = Some(data_dir);
        let dht = self.dht.then(|| DhtConfig {
            bootstrap: self.dht_bootstrap.as_ref().map_or_else(
                || DhtConfig::default().bootstrap,
                |Bootstrap(nodes)| nodes.clone(),
            ),
            ..DhtConfig::default()
        });
        let discovery = Discovery {
            tracker: self.tracker.clone(),
            lan: self.lan,
            dht,
        };
        config.mode = match &self.peers {
            Some(peers) => Mode::Manual(peers.split_whitespace().map(String::from).collect()),
            None if discovery.is_empty() => Mode::Alone,
            None => Mode::Discover(discovery),
        };
        config
    }
}

/// Escapes what would break a message's line or change how the terminal shows it: control
/// characters (Unicode Cc: newlines, escapes), invisible formatting characters (Cf: a
/// right-to-left override would turn the rest of the line around, and the next lines'
/// names with it), line and paragraph separators (Zl, Zp).
fn one_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c.general_category() {
            GeneralCategory::Control
            | GeneralCategory::Format
            | GeneralCategory::LineSeparator
            | GeneralCategory::ParagraphSeparator => out.extend(c.escape_default()),
            _ => out.push(c),
        }
    }
    out
}

/// Prints events until the peer's channel disconnects (when the peer is dropped). Messages
/// are read a batch at a time (all that one read from one link brought) and flushed once
/// per batch, so a burst costs one write to standard output, not one per line.
fn print_events(events: &Events, room: &RoomName) {
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
            Event::Unreachable { addr, reason } => eprintln!("* cannot reach {addr}: {reason}"),
            Event::IdentityChanged { peer, previous } => eprintln!(
                "! {} ({}) arrived with identity {}, not {} as first seen: another person, \
                 or the same one on another installation",
                peer.username, peer.addr, peer.fingerprint, previous
            ),
            Event::WrongPassphrase { addr } => eprintln!(
                "* wrong passphrase for room {room}: {addr} is in another room or has another \
                 passphrase"
            ),
            Event::Discovered { addr, via } => eprintln!("* found {addr} through {via}"),
            Event::DhtUnreachable { reason } => eprintln!(
                "* DHT unreachable: {reason} (UDP may be blocked here: a tracker or --lan work over TCP)"
            ),
            Event::DhtBehindNat { public_ip } => eprintln!(
                "* behind a NAT router (the DHT sees this peer at {public_ip}): peers that \
                 accept connections are reached, peers behind NAT routers too are not \
                 (the DHT gives no rendezvous to punch through; use a tracker)"
            ),
            other => eprintln!("* {other:?}"),
        }
    }
}

/// Runs the terminal peer (public so that the installable `p2p-chat` binary runs this same
/// program).
pub fn main() -> ExitCode {
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
    // SIGINT and SIGTERM leave as end of input does; a second one ends the process at once.
    // Registered before the start, so that a signal while starting is not lost.
    let (leave_tx, leave) = crossbeam_channel::bounded(1);
    let (signals, signal_thread) = match watch_signals(leave_tx) {
        Ok(watch) => watch,
        Err(e) => {
            eprintln!("error: cannot watch for signals: {e}");
            return ExitCode::FAILURE;
        }
    };
    let status = run(&cli, &leave);
    signals.close();
    let _ = signal_thread.join();
    status
}

/// Starts a thread that turns the first SIGINT or SIGTERM into a message on `leave` and ends
/// the process at once on the second (status 128 + the signal's number, as a shell reports
/// a process killed by it). The signal handlers themselves only record the signal
/// (signal-hook); everything else happens in this ordinary thread. Returns the handle that
/// ends it, and the thread.
fn watch_signals(leave: Sender<()>) -> io::Result<(Handle, thread::JoinHandle<()>)> {
    let mut signals = Signals::new([SIGINT, SIGTERM])?;
    let handle = signals.handle();
    let thread = thread::Builder::new()
        .name("chat-signals".into())
        .spawn(move || {
            let mut leaving = false;
            for signal in signals.forever() {
                if leaving {
                    eprintln!("* signal {signal} again: quitting at once");
                    std::process::exit(128 + signal);
                }
                leaving = true;
                eprintln!("* signal {signal}: leaving (again to quit at once)");
                let _ = leave.try_send(());
            }
        })?;
    Ok((handle, thread))
}

/// Runs the peer: lines of standard input to everyone, until end of input, `/quit` or a
/// signal; then a clean leave.
fn run(cli: &Cli, leave: &Receiver<()>) -> ExitCode {
    // A passphrase that cannot be read is a bad argument; an identity that cannot be
    // loaded stops the start.
    let passphrase = match Passphrase::from_file_or_env(cli.passphrase_file.as_deref()) {
        Ok(passphrase) => passphrase,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let loaded = cli
        .data_dir
        .clone()
        .map_or_else(default_data_dir, Ok)
        .and_then(|dir| Identity::load_or_create(&dir).map(|identity| (identity, dir)));
    let (identity, data_dir) = match loaded {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let peer = match Peer::start(cli.config(passphrase, identity, data_dir)) {
        Ok(peer) => peer,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!("listening on {}", peer.local_addr());
    eprintln!("identity {}", peer.fingerprint());
    let events = peer.events().clone();
    let room = cli.room.clone();
    let printer = thread::spawn(move || print_events(&events, &room));
    // Standard input is read in a thread of its own, so that a signal can end the wait for
    // the next line. (A read of standard input cannot be interrupted: that thread ends with
    // the process.)
    let lines = read_lines();
    'input: loop {
        // A signal goes before lines that are already waiting.
        if leave.try_recv().is_ok() {
            break;
        }
        let line = select! {
            recv(lines) -> line => line,
            recv(leave) -> _ => break,
        };
        let line = match line {
            Ok(Line::Text(line)) => line,
            Ok(Line::TooLong(len)) => {
                eprintln!(
                    "* not sent: a line of {len} bytes is over the limit of {} bytes",
                    peer.config().limits.max_text_bytes
                );
                continue;
            }
            Err(_) => break, // end of input
        };
        let text = line.trim_end_matches(['\n', '\r']);
        if text == "/quit" {
            break;
        }
        // A listener that is slower than the input makes `send` wait; one that takes too
        // long to make room makes it fail with QueueFull: piped input then waits its turn
        // rather than dropping lines.
        loop {
            match peer.send(text) {
                Err(Error::QueueFull) if leave.is_empty() => continue,
                Err(Error::QueueFull) => break 'input,
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

/// A line of standard input, or the length at which one was given up.
enum Line {
    Text(String),
    TooLong(usize),
}

/// The longest line read from standard input: the default text limit, its line ending and a
/// little room. A longer line is skipped, not gathered: what a paste or a pipe can make this
/// program hold stays within this.
const MAX_LINE_BYTES: usize = DEFAULT_MAX_TEXT_BYTES + 64;

/// Reads standard input line by line in a thread; the channel disconnects at its end.
fn read_lines() -> Receiver<Line> {
    let (tx, rx) = crossbeam_channel::bounded(4096);
    thread::spawn(move || {
        let mut stdin = io::stdin().lock();
        loop {
            let line = match read_line(&mut stdin, MAX_LINE_BYTES) {
                Ok(Some(line)) => line,
                Ok(None) => break,
                Err(e) => {
                    eprintln!("* cannot read standard input: {e}");
                    break;
                }
            };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Reads one line of at most `max` bytes (line ending included); a longer one is read to
/// its end and dropped. `None` at the end of input.
fn read_line(input: &mut impl BufRead, max: usize) -> io::Result<Option<Line>> {
    let mut line = Vec::new();
    let mut len = 0;
    loop {
        let available = match input.fill_buf() {
            Ok(available) => available,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            break;
        }
        let (chunk, done) = match available.iter().position(|&b| b == b'\n') {
            Some(at) => (&available[..=at], true),
            None => (available, false),
        };
        let used = chunk.len();
        len += used;
        if len <= max {
            line.extend_from_slice(chunk);
        } else {
            line = Vec::new();
        }
        input.consume(used);
        if done {
            break;
        }
    }
    Ok(match len {
        0 => None,
        len if len > max => Some(Line::TooLong(len)),
        _ => Some(Line::Text(String::from_utf8_lossy(&line).into_owned())),
    })
}
