//! Helpers shared by the integration tests: peers on 127.0.0.1, an in-process tracker,
//! event logs that tests wait on, and child processes whose output is read line by line.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use p2p_core::protocol::{Frame, FrameReader, Handshake, PROTOCOL_VERSION, PeerList};
use p2p_core::secure::{
    Identity, Passphrase, PublicKey, RecordReader, RecordWriter, RoomKey, SecureError, initiate,
    respond,
};
use p2p_core::{Departure, Event, Mode, Peer, PeerConfig, PeerInfo, Timeouts};
use tracker::{Tracker, TrackerConfig};

/// How long a test waits for something that should happen at once (generous: the machine
/// is shared and noisy). Waiting ends as soon as the condition holds.
pub const PATIENCE: Duration = Duration::from_secs(30);

pub fn loopback(port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port)
}

pub fn config(name: &str, mode: Mode) -> PeerConfig {
    let mut config = PeerConfig::new(name);
    config.bind_addr = loopback(0);
    config.mode = mode;
    config
}

/// Timeouts short enough that tests of silence finish quickly.
pub fn fast_timeouts() -> Timeouts {
    Timeouts {
        connect: Duration::from_secs(2),
        handshake: Duration::from_millis(500),
        keepalive: Duration::from_millis(100),
        peer: Duration::from_millis(600),
        tick: Duration::from_millis(50),
        punch: Duration::from_secs(5),
        stall: Duration::from_secs(5),
    }
}

pub fn start_tracker(ttl: Duration) -> Tracker {
    Tracker::start(TrackerConfig {
        bind_addr: loopback(0),
        ttl,
        ..TrackerConfig::default()
    })
    .expect("tracker starts")
}

/// A peer and every event it has reported so far.
pub struct TestPeer {
    pub peer: Peer,
    pub log: Vec<Event>,
}

impl TestPeer {
    pub fn start(config: PeerConfig) -> TestPeer {
        TestPeer {
            peer: Peer::start(config).expect("peer starts"),
            log: Vec::new(),
        }
    }

    pub fn name(&self) -> &str {
        self.peer.username()
    }

    /// Reads events until `cond` holds (checked before each wait), or panics after
    /// [`PATIENCE`].
    pub fn wait(&mut self, what: &str, cond: impl Fn(&TestPeer) -> bool) {
        let deadline = Instant::now() + PATIENCE;
        while !cond(self) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.peer.events().recv_timeout(left) {
                Ok(event) => self.log.push(event),
                Err(_) => panic!(
                    "{}: timed out waiting for {what}; events: {:#?}",
                    self.name(),
                    self.log
                ),
            }
        }
    }

    /// Takes in the events already waiting, without blocking.
    pub fn pump(&mut self) {
        while let Ok(event) = self.peer.events().try_recv() {
            self.log.push(event);
        }
    }

    /// Waits until this peer listens to `n` peers and `n` peers listen to it.
    pub fn wait_links(&mut self, n: usize) {
        self.wait(&format!("{n} links each way"), |p| {
            p.peer.listening_to().len() == n && p.peer.listeners().len() == n
        });
    }

    pub fn messages(&self) -> Vec<(String, String)> {
        self.log
            .iter()
            .filter_map(|e| match e {
                Event::Message { from, text } => Some((from.username.clone(), text.to_string())),
                _ => None,
            })
            .collect()
    }

    pub fn texts_from(&self, name: &str) -> Vec<String> {
        self.log
            .iter()
            .filter_map(|e| match e {
                Event::Message { from, text } if from.username == name => Some(text.to_string()),
                _ => None,
            })
            .collect()
    }

    /// Waits until `n` messages from `from` have arrived (counted as events come in, so a
    /// long wait stays linear).
    pub fn wait_texts(&mut self, from: &str, n: usize) {
        let is_from = |e: &Event| matches!(e, Event::Message { from: f, .. } if f.username == from);
        let mut count = self.log.iter().filter(|e| is_from(e)).count();
        let deadline = Instant::now() + PATIENCE;
        while count < n {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.peer.events().recv_timeout(left) {
                Ok(event) => {
                    count += usize::from(is_from(&event));
                    self.log.push(event);
                }
                Err(_) => panic!(
                    "{}: timed out waiting for {n} messages from {from} (got {count})",
                    self.name()
                ),
            }
        }
    }

    pub fn stopped_listening(&self, name: &str) -> Option<Departure> {
        self.log.iter().find_map(|e| match e {
            Event::StoppedListeningTo { peer, reason } if peer.username == name => {
                Some(reason.clone())
            }
            _ => None,
        })
    }

    pub fn listener_left(&self, name: &str) -> Option<Departure> {
        self.log.iter().find_map(|e| match e {
            Event::ListenerLeft { peer, reason } if peer.username == name => Some(reason.clone()),
            _ => None,
        })
    }
}

/// Checks `cond` every 10 ms until it holds; panics after [`PATIENCE`]. For states that no
/// event announces (a thread count, say).
pub fn eventually(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

pub fn names(peers: &[PeerInfo]) -> Vec<String> {
    let mut names: Vec<String> = peers.iter().map(|p| p.username.clone()).collect();
    names.sort();
    names
}

/// A raw TCP connection that sends bytes and reads plaintext frames: what speaks to a
/// tracker (whose protocol is not encrypted), and what abuses a peer's port below its Noise
/// handshake.
pub struct RawConn {
    pub stream: TcpStream,
    pub reader: FrameReader,
}

impl RawConn {
    pub fn connect(addr: SocketAddr) -> RawConn {
        RawConn::from_stream(TcpStream::connect(addr).expect("raw connect"))
    }

    /// A raw end of `stream` (connected or accepted), reading with [`PATIENCE`].
    pub fn from_stream(stream: TcpStream) -> RawConn {
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        RawConn {
            stream,
            reader: FrameReader::new(p2p_core::protocol::DEFAULT_MAX_FRAME_BYTES),
        }
    }

    pub fn send_bytes(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)
    }

    pub fn send(&mut self, frame: &Frame) {
        self.send_bytes(&frame.encode().unwrap()).unwrap();
    }

    pub fn recv(&mut self) -> Option<Frame> {
        self.reader.read_frame(&mut self.stream).ok()
    }

    /// Reads and discards until the other side closes; panics if it does not within
    /// [`PATIENCE`]. Returns the frames seen.
    pub fn expect_closed(&mut self) -> Vec<Frame> {
        let mut frames = Vec::new();
        let deadline = Instant::now() + PATIENCE;
        loop {
            assert!(Instant::now() < deadline, "connection was not closed");
            match self.reader.read_frame(&mut self.stream) {
                Ok(frame) => frames.push(frame),
                Err(e) if e.is_timeout() => panic!("connection was not closed: {e}"),
                Err(_) => return frames,
            }
        }
    }

    /// Reads bytes until the other side closes (or resets); panics if it does not within
    /// [`PATIENCE`]. Returns the bytes.
    pub fn expect_closed_bytes(&mut self) -> Vec<u8> {
        let mut bytes = Vec::new();
        match self.stream.read_to_end(&mut bytes) {
            Ok(_) => {}
            Err(e) => assert!(
                !matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ),
                "connection was not closed"
            ),
        }
        bytes
    }
}

/// The key of the room every test peer is in unless told otherwise: `lobby`, without a
/// passphrase (derived once: a derivation costs an argon2id run).
pub fn lobby_key() -> &'static RoomKey {
    static KEY: OnceLock<RoomKey> = OnceLock::new();
    KEY.get_or_init(|| RoomKey::derive("lobby", None).unwrap())
}

/// The key of `room` with `passphrase`.
pub fn room_key(room: &str, passphrase: Option<&str>) -> RoomKey {
    let passphrase = passphrase.map(|p| Passphrase::new(p).unwrap());
    RoomKey::derive(room, passphrase.as_ref()).unwrap()
}

/// A connection to a peer that speaks the protocol by hand, above its Noise handshake:
/// frames are sealed into records and read out of them, as a peer's are. For fake peers,
/// listeners that never read, and peers that break the rules once they are in.
pub struct SecureConn {
    pub stream: TcpStream,
    pub reader: FrameReader,
    records: RecordReader<TcpStream>,
    writer: RecordWriter,
    /// The other side's identity key.
    pub remote: PublicKey,
    pub identity: Identity,
}

impl SecureConn {
    /// Connects to `addr` and runs the handshake as its initiator, in the lobby.
    pub fn connect(addr: SocketAddr) -> SecureConn {
        SecureConn::try_connect(addr, lobby_key(), Identity::generate().unwrap())
            .expect("the Noise handshake")
    }

    /// Connects to `addr` and runs the handshake with `key` and `identity`.
    pub fn try_connect(
        addr: SocketAddr,
        key: &RoomKey,
        identity: Identity,
    ) -> Result<SecureConn, SecureError> {
        let mut stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        stream.set_write_timeout(Some(PATIENCE)).unwrap();
        let secured = initiate(&mut stream, &identity, key)?;
        Ok(SecureConn::wrap(stream, secured, identity))
    }

    /// Runs the handshake as its responder on a connection a peer made to us, in the lobby.
    pub fn accept(mut stream: TcpStream) -> SecureConn {
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        stream.set_write_timeout(Some(PATIENCE)).unwrap();
        let identity = Identity::generate().unwrap();
        let secured = respond(&mut stream, &identity, lobby_key()).expect("the Noise handshake");
        SecureConn::wrap(stream, secured, identity)
    }

    fn wrap(stream: TcpStream, secured: p2p_core::secure::Secured, identity: Identity) -> Self {
        let remote = secured.remote_key();
        let (records, writer) = secured.into_records(stream.try_clone().unwrap());
        SecureConn {
            stream,
            reader: FrameReader::new(p2p_core::protocol::DEFAULT_MAX_FRAME_BYTES),
            records,
            writer,
            remote,
            identity,
        }
    }

    /// Seals `plaintext` (frames, or anything) into records and sends them.
    pub fn send_bytes(&mut self, plaintext: &[u8]) -> std::io::Result<()> {
        let mut sealed = Vec::new();
        self.writer
            .write_sealed(&mut self.stream, plaintext, &mut sealed)
    }

    pub fn send(&mut self, frame: &Frame) {
        self.send_bytes(&frame.encode().unwrap()).unwrap();
    }

    /// Sends a hello-less handshake as `name` listening at `listen_addr`, and returns the
    /// answer.
    pub fn handshake(&mut self, name: &str, peer_id: u64, listen_addr: SocketAddr) -> Frame {
        self.send(&Frame::Handshake(Handshake {
            version: PROTOCOL_VERSION,
            peer_id,
            username: name.into(),
            listen_ip: Some(listen_addr.ip()),
            listen_port: listen_addr.port(),
            connect_back: false,
            duplex: false,
        }));
        self.recv().expect("an answer to the handshake")
    }

    pub fn recv(&mut self) -> Option<Frame> {
        self.reader.read_frame(&mut self.records).ok()
    }

    /// Reads and discards until the other side closes; panics if it does not within
    /// [`PATIENCE`]. Returns the frames seen.
    pub fn expect_closed(&mut self) -> Vec<Frame> {
        let mut frames = Vec::new();
        let deadline = Instant::now() + PATIENCE;
        loop {
            assert!(Instant::now() < deadline, "connection was not closed");
            match self.reader.read_frame(&mut self.records) {
                Ok(frame) => frames.push(frame),
                Err(e) if e.is_timeout() => panic!("connection was not closed: {e}"),
                Err(_) => return frames,
            }
        }
    }
}

/// A child process whose standard output and error are read line by line.
pub struct Proc {
    pub child: Child,
    /// The terminal peer's data directory (its identity and known peers), removed with it.
    pub data_dir: Option<tempfile::TempDir>,
    pub stdin: Option<ChildStdin>,
    pub stdout: Receiver<String>,
    pub stderr: Receiver<String>,
    pub out_log: Vec<String>,
    pub err_log: Vec<String>,
}

fn lines<R: Read + Send + 'static>(src: R) -> Receiver<String> {
    let (tx, rx) = crossbeam_channel::unbounded();
    thread::spawn(move || {
        for line in BufReader::new(src).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

impl Proc {
    pub fn spawn(mut cmd: Command) -> Proc {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("process starts");
        let stdin = child.stdin.take();
        let stdout = lines(child.stdout.take().unwrap());
        let stderr = lines(child.stderr.take().unwrap());
        Proc {
            child,
            data_dir: None,
            stdin,
            stdout,
            stderr,
            out_log: Vec::new(),
            err_log: Vec::new(),
        }
    }

    /// The terminal peer (`examples/chat`) with `args`, and a data directory of its own (a
    /// fresh identity, no known peers), without `RUST_LOG` or `P2P_PASSPHRASE` from the
    /// test's environment.
    pub fn chat(args: &[&str]) -> Proc {
        let dir = tempfile::tempdir().unwrap();
        Proc::chat_in(args, dir.path(), |_| {}).with_data_dir(dir)
    }

    /// The terminal peer with `args` and the data directory `data_dir`; `env` sets more of
    /// its environment.
    pub fn chat_in(
        args: &[&str],
        data_dir: &std::path::Path,
        env: impl FnOnce(&mut Command),
    ) -> Proc {
        let mut cmd = Command::new(example("chat"));
        cmd.args(args)
            .arg("--data-dir")
            .arg(data_dir)
            .env_remove("RUST_LOG")
            .env_remove("P2P_PASSPHRASE");
        env(&mut cmd);
        Proc::spawn(cmd)
    }

    fn with_data_dir(mut self, dir: tempfile::TempDir) -> Proc {
        self.data_dir = Some(dir);
        self
    }

    /// The fingerprint in the `identity FINGERPRINT` line.
    pub fn identity(&mut self) -> String {
        let line = self.wait_stderr("the identity line", |l| l.starts_with("identity "));
        line["identity ".len()..].to_owned()
    }

    /// Waits for a line on standard error that satisfies `pred`, and returns it.
    pub fn wait_stderr(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + PATIENCE;
        if let Some(line) = self.err_log.iter().find(|l| pred(l)) {
            return line.clone();
        }
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(line) => {
                    self.err_log.push(line.clone());
                    if pred(&line) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "timed out waiting for {what} on stderr: {:#?}",
                    self.err_log
                ),
            }
        }
    }

    /// The address in the `listening on IP:PORT` line.
    pub fn listening_addr(&mut self) -> SocketAddr {
        let line = self.wait_stderr("the listening line", |l| l.starts_with("listening on "));
        line["listening on ".len()..].parse().expect("an address")
    }

    pub fn wait_stdout_lines(&mut self, n: usize) -> Vec<String> {
        let deadline = Instant::now() + PATIENCE;
        while self.out_log.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stdout.recv_timeout(left) {
                Ok(line) => self.out_log.push(line),
                Err(_) => panic!(
                    "timed out waiting for {n} lines on stdout: {:#?}",
                    self.out_log
                ),
            }
        }
        self.out_log.clone()
    }

    pub fn say(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    /// Closes standard input and waits for the exit status (bounded by [`PATIENCE`]).
    pub fn finish(&mut self) -> std::process::ExitStatus {
        self.stdin.take();
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "process did not exit");
            // The exit has no event to wait on; a short poll bounded by the deadline.
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// All of standard output after the process ended (waits for the pipe to close).
    pub fn all_stdout(&mut self) -> Vec<String> {
        while let Ok(line) = self.stdout.recv_timeout(PATIENCE) {
            self.out_log.push(line);
        }
        self.out_log.clone()
    }

    /// All of standard error after the process ended.
    pub fn all_stderr(&mut self) -> Vec<String> {
        while let Ok(line) = self.stderr.recv_timeout(PATIENCE) {
            self.err_log.push(line);
        }
        self.err_log.clone()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Path of an example binary built by `cargo test` next to the test binary.
pub fn example(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|d| d.parent()).unwrap();
    let path = dir.join("examples").join(name);
    assert!(
        path.exists(),
        "{} not built: run the tests with cargo test",
        path.display()
    );
    path
}

/// A tracker frozen after its first answer: it answers the first announce (asking for a
/// re-announce every `interval_secs`), then answers nothing more, on that session or on any
/// connection it accepts and holds open, as a tracker stopped with SIGSTOP does (the kernel
/// still completes its connections). Each accepted connection after the first is reported
/// on `frozen`, and so is the session's first re-announce.
pub struct FrozenTracker {
    pub addr: SocketAddr,
    pub frozen: Receiver<()>,
    _held: Arc<Mutex<Vec<TcpStream>>>,
}

pub fn frozen_tracker(interval_secs: u32) -> FrozenTracker {
    fake_tracker(interval_secs, true)
}

/// A tracker that answers a peer's first announce, then closes that session, and from then
/// on accepts connections and never answers, holding them open (each is reported on
/// `frozen`): the peer opens its session again and waits for an answer, and a leave made
/// on a fresh connection waits out its deadline.
pub fn dropping_tracker() -> FrozenTracker {
    fake_tracker(3600, false)
}

/// A tracker that answers the first announce (asking for a re-announce every
/// `interval_secs`) and nothing after: with `keep_session`, it holds that session open and
/// reports its re-announce on `frozen`; without, it closes it. Every later connection is
/// held open, unanswered, and reported.
fn fake_tracker(interval_secs: u32, keep_session: bool) -> FrozenTracker {
    let listener = TcpListener::bind(loopback(0)).unwrap();
    let addr = listener.local_addr().unwrap();
    let held = Arc::new(Mutex::new(Vec::new()));
    let (tx, frozen) = crossbeam_channel::unbounded();
    let keep = Arc::clone(&held);
    thread::spawn(move || {
        let (first, _) = listener.accept().unwrap();
        let mut reader = FrameReader::new(1024);
        first.set_read_timeout(Some(PATIENCE)).unwrap();
        let Ok(Frame::Announce(_)) = reader.read_frame(&mut &first) else {
            panic!("expected an announce");
        };
        let answer = Frame::PeerList(PeerList {
            interval_secs,
            observed: loopback(1),
            nat: false,
            peers: Vec::new(),
        });
        p2p_core::net::write_frame(&first, &answer).unwrap();
        if keep_session {
            // Unanswered from now on, as with SIGSTOP; its re-announce is reported.
            if let Ok(Frame::Announce(_)) = reader.read_frame(&mut &first) {
                let _ = tx.send(());
            }
            keep.lock().unwrap().push(first);
        } else {
            drop(first);
        }
        for conn in listener.incoming() {
            let Ok(conn) = conn else { return };
            keep.lock().unwrap().push(conn);
            let _ = tx.send(());
        }
    });
    FrozenTracker {
        addr,
        frozen,
        _held: held,
    }
}

/// Sends a signal to a process (`-STOP` freezes it with its sockets open, `-KILL` kills it,
/// `-INT` and `-TERM` ask it to leave).
pub fn signal(pid: u32, sig: &str) {
    let status = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}
