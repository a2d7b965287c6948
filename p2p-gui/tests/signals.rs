//! SIGINT and SIGTERM sent to the real `p2p-gui` process, with its window open on an X
//! server of the test's own (Xvfb, installed by `scripts/setup.sh test`): the app leaves as
//! closing the window does (the other peer sees it say goodbye; exit status 0), and a
//! second signal while it leaves ends it at once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use p2p_core::{Departure, Event, Peer, PeerConfig};
use support::xvfb::Xvfb;
use tracker::{Tracker, TrackerConfig};

/// How long the app may take to open its window and connect, on a loaded machine, in a
/// debug build.
const START: Duration = Duration::from_secs(60);
/// How long leaving may take.
const LEAVE: Duration = Duration::from_secs(15);

/// The running app, with its standard error read line by line.
struct App {
    child: Child,
    stderr: Receiver<String>,
    seen: Vec<String>,
    /// Its data directory (settings, history, identity key), never the user's own.
    _data: tempfile::TempDir,
}

impl App {
    fn spawn(xvfb: &Xvfb, args: &[&str]) -> App {
        let data = tempfile::tempdir().expect("a data directory");
        let mut child = Command::new(env!("CARGO_BIN_EXE_p2p-gui"))
            .arg("--data-dir")
            .arg(data.path())
            .args([
                "--lang",
                "en",
                "--ip",
                "127.0.0.1",
                "--port",
                "0",
                "--connect",
            ])
            .args(args)
            .env("DISPLAY", &xvfb.display)
            .env_remove("WAYLAND_DISPLAY")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("p2p-gui runs");
        let (lines, stderr) = crossbeam_channel::unbounded();
        let pipe = child.stderr.take().expect("stderr");
        // Ends at the end of the app's standard error, that is when it exits.
        thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        App {
            child,
            stderr,
            seen: Vec::new(),
            _data: data,
        }
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{name}");
    }

    /// Whether the app has ended (and then, reads what it said).
    fn ended(&mut self) -> Option<ExitStatus> {
        let status = self.child.try_wait().expect("try_wait")?;
        self.seen.extend(self.stderr.iter());
        Some(status)
    }

    fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.ended() {
                return status;
            }
            assert!(Instant::now() < deadline, "still running: {:?}", self.seen);
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for a line of standard error that contains `text`.
    fn wait_line(&mut self, text: &str) {
        let deadline = Instant::now() + LEAVE;
        while !self.seen.iter().any(|line| line.contains(text)) {
            match self.stderr.recv_deadline(deadline) {
                Ok(line) => self.seen.push(line),
                Err(_) => panic!("no line with {text:?} in {:?}", self.seen),
            }
        }
    }

    /// Whether it could not open its window (an X server under load sometimes refuses a
    /// client): such a start is tried again.
    fn failed_to_open(&mut self) -> bool {
        self.ended().is_some_and(|status| !status.success())
            && self
                .seen
                .iter()
                .any(|l| l.contains("cannot open the window"))
    }
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the app with `args` until `ready` holds (three tries if the window cannot open).
fn start_app(xvfb: &Xvfb, args: &[&str], ready: impl Fn() -> bool) -> App {
    for _ in 0..3 {
        let mut app = App::spawn(xvfb, args);
        let deadline = Instant::now() + START;
        loop {
            if ready() {
                return app;
            }
            if app.failed_to_open() {
                break;
            }
            if let Some(status) = app.ended() {
                panic!("the app ended ({status}): {:?}", app.seen);
            }
            assert!(Instant::now() < deadline, "not ready: {:?}", app.seen);
            thread::sleep(Duration::from_millis(20));
        }
    }
    panic!("the window could not open three times");
}

fn bob() -> Peer {
    let mut config = PeerConfig::new("bob");
    config.bind_addr = "127.0.0.1:0".parse().expect("addr");
    Peer::start(config).expect("bob starts")
}

#[test]
fn sigterm_and_sigint_leave_as_closing_the_window_does() {
    let xvfb = Xvfb::start();
    for signal in ["TERM", "INT"] {
        let bob = bob();
        let joined = Mutex::new(false);
        let addr = bob.local_addr().to_string();
        // Alice listens to bob: she is one of his listeners once her window is up.
        let mut app = start_app(&xvfb, &["--username", "alice", "--peers", &addr], || {
            let mut joined = joined.lock().unwrap();
            *joined |= bob
                .events()
                .try_iter()
                .any(|e| matches!(e, Event::ListenerJoined(p) if p.username == "alice"));
            *joined
        });

        app.signal(signal);
        let deadline = Instant::now() + LEAVE;
        let reason = loop {
            match bob.events().recv_deadline(deadline) {
                Ok(Event::ListenerLeft { peer, reason }) if peer.username == "alice" => {
                    break reason;
                }
                Ok(_) => {}
                Err(e) => panic!(
                    "SIG{signal}: bob never saw alice leave ({e}): {:?}",
                    app.seen
                ),
            }
        };
        assert_eq!(
            reason,
            Departure::Left,
            "SIG{signal}: a goodbye, not a time-out"
        );
        let status = app.wait_exit(LEAVE);
        assert_eq!(status.code(), Some(0), "SIG{signal}: {:?}", app.seen);
        assert!(
            app.seen
                .iter()
                .any(|l| l.contains(&format!("SIG{signal} received: leaving"))),
            "{:?}",
            app.seen
        );
    }
}

/// A TCP relay in front of a tracker that can be frozen: once frozen, it accepts
/// connections and never answers, as a stopped tracker does.
struct Relay {
    addr: SocketAddr,
    frozen: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Relay {
    fn start(target: SocketAddr) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let frozen = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let (frozen_, stop_) = (Arc::clone(&frozen), Arc::clone(&stop));
        let thread = thread::spawn(move || {
            let mut streams: Vec<TcpStream> = Vec::new();
            let mut pipes: Vec<JoinHandle<()>> = Vec::new();
            while !stop_.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        client.set_nonblocking(false).expect("blocking");
                        if frozen_.load(Ordering::SeqCst) {
                            streams.push(client); // held open, never answered
                            continue;
                        }
                        let Ok(server) = TcpStream::connect(target) else {
                            continue;
                        };
                        for (from, to) in [(&client, &server), (&server, &client)] {
                            let (mut from, mut to) =
                                (from.try_clone().unwrap(), to.try_clone().unwrap());
                            pipes.push(thread::spawn(move || {
                                let mut buf = [0u8; 4096];
                                while let Ok(n @ 1..) = from.read(&mut buf) {
                                    if to.write_all(&buf[..n]).is_err() {
                                        break;
                                    }
                                }
                                let _ = to.shutdown(Shutdown::Write);
                            }));
                        }
                        streams.extend([client, server]);
                    }
                    Err(_) => thread::sleep(Duration::from_millis(10)),
                }
            }
            for stream in &streams {
                let _ = stream.shutdown(Shutdown::Both);
            }
            for pipe in pipes {
                let _ = pipe.join();
            }
        });
        Relay {
            addr,
            frozen,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[test]
fn a_second_signal_while_leaving_ends_the_app_at_once() {
    let xvfb = Xvfb::start();
    let tracker = Tracker::start(TrackerConfig {
        bind_addr: "127.0.0.1:0".parse().expect("addr"),
        ..TrackerConfig::default()
    })
    .expect("tracker starts");
    let relay = Relay::start(tracker.local_addr());
    let through = relay.addr.to_string();
    let mut app = start_app(
        &xvfb,
        &["--username", "carol", "--tracker", &through],
        || !tracker.peers().is_empty(),
    );

    // The tracker stops answering: leaving now waits for its answer to the leave request.
    relay.frozen.store(true, Ordering::SeqCst);
    app.signal("TERM");
    app.wait_line("SIGTERM received: leaving");
    assert!(app.ended().is_none(), "already left: {:?}", app.seen);
    let second = Instant::now();
    app.signal("TERM");
    let status = app.wait_exit(LEAVE);
    eprintln!("ended {:?} after the second signal", second.elapsed());
    assert_eq!(
        status.code(),
        Some(128 + 15),
        "ended by the second signal, not by the leave: {:?}",
        app.seen
    );
}
