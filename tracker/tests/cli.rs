//! The `tracker` binary as a real process: its command line, its `listening on` line, its
//! exit codes, serving real announces, and how SIGINT and SIGTERM stop it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, ChildStderr, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use p2p_core::protocol::Room;
use p2p_core::tracker_client;

/// The room the tests announce in (any 16 bytes: a tracker sees only rooms' opaque ids).
const ROOM: Room = Room::from_bytes([7; 16]);

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the tracker and reads its `listening on` line.
fn start(args: &[&str]) -> (Running, SocketAddr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tracker"))
        .args(args)
        .env("RUST_LOG", "off")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let running = Running(child);
    let mut line = String::new();
    BufReader::new(stderr).read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .parse()
        .unwrap();
    (running, addr)
}

fn local(addr: SocketAddr) -> String {
    format!("127.0.0.1:{}", addr.port())
}

#[test]
fn serves_announces_with_a_positional_port_or_flags() {
    let (_t, addr) = start(&["0"]);
    let timeouts = p2p_core::Timeouts::default();
    let me: SocketAddr = "127.0.0.1:4100".parse().unwrap();
    let other: SocketAddr = "127.0.0.1:4101".parse().unwrap();
    let first = tracker_client::announce(&local(addr), ROOM, me, &timeouts).unwrap();
    assert!(first.peers.is_empty());
    assert_eq!(first.interval_secs, 20, "a third of the default 60 s TTL");
    let second = tracker_client::announce(&local(addr), ROOM, other, &timeouts).unwrap();
    assert_eq!(second.addrs(), vec![me]);
    tracker_client::leave(&local(addr), ROOM, me, &timeouts).unwrap();
    let third = tracker_client::announce(&local(addr), ROOM, other, &timeouts).unwrap();
    assert!(third.peers.is_empty(), "the leave took effect at once");

    let (_t, addr) = start(&["--port", "0", "--bind", "127.0.0.1", "--ttl", "3"]);
    assert_eq!(addr.ip().to_string(), "127.0.0.1");
    let answer = tracker_client::announce(&local(addr), ROOM, me, &timeouts).unwrap();
    assert_eq!(answer.interval_secs, 1);
}

fn run(args: &[&str]) -> (Option<i32>, Vec<String>) {
    let out = Command::new(env!("CARGO_BIN_EXE_tracker"))
        .args(args)
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr)
        .lines()
        .map(String::from)
        .collect();
    (out.status.code(), err)
}

#[test]
fn bad_arguments_and_a_taken_port_exit_non_zero_with_one_line() {
    for args in [
        &["abc"][..],
        &["70000"],
        &["--ttl", "0", "--port", "0"],
        &["--ttl", "2", "--port", "0"],
        &["1", "--port", "2"],
        &["--bind", "not-an-ip"],
        &["--bogus"],
    ] {
        let (code, err) = run(args);
        assert_eq!(code, Some(2), "{args:?}: {err:?}");
        assert_eq!(err.len(), 1, "{args:?}: {err:?}");
    }
    let taken = TcpListener::bind("0.0.0.0:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let (code, err) = run(&[&port]);
    assert_eq!(code, Some(1));
    assert_eq!(err.len(), 1, "{err:?}");
    assert!(err[0].contains("cannot listen"), "{err:?}");
}

/// Sends `signal` (`TERM`, `INT`, ...) to the process `pid`.
fn signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{signal} {pid}");
}

/// Waits until `child` exits, at most `limit`; returns its status and how long it took.
fn wait_exit(child: &mut Child, limit: Duration) -> Option<(ExitStatus, Duration)> {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some((status, started.elapsed()));
        }
        if started.elapsed() > limit {
            return None;
        }
        thread::sleep(Duration::from_millis(5));
    }
}

/// What `start_logging` returns: the process, its address, the log lines before its
/// `listening on` line and its stderr after it.
type Logging = (Running, SocketAddr, Vec<String>, BufReader<ChildStderr>);

/// Starts the tracker on a free port with `RUST_LOG=log`.
fn start_logging(log: &str, args: &[&str]) -> Logging {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tracker"))
        .args(["--port", "0", "--bind", "127.0.0.1"])
        .args(args)
        .env("RUST_LOG", log)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let running = Running(child);
    let mut before = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "no listening line"
        );
        match line.trim().strip_prefix("listening on ") {
            Some(addr) => return (running, addr.parse().unwrap(), before, stderr),
            None => before.push(line.trim().to_owned()),
        }
    }
}

#[test]
fn sigterm_and_sigint_stop_it_cleanly_with_a_log_line_and_status_0() {
    for (name, sig) in [("SIGTERM", "TERM"), ("SIGINT", "INT")] {
        let (mut t, addr, _, stderr) = start_logging("info", &[]);
        // Lines are read as they come, so that logging never waits for this test.
        let lines = thread::spawn(move || stderr.lines().map_while(Result::ok).collect::<Vec<_>>());
        let timeouts = p2p_core::Timeouts::default();
        let me: SocketAddr = "127.0.0.1:4100".parse().unwrap();
        tracker_client::announce(&local(addr), ROOM, me, &timeouts).unwrap();
        // Connections that send nothing are open when the signal comes.
        let idle: Vec<TcpStream> = (0..20).map(|_| TcpStream::connect(addr).unwrap()).collect();

        signal(t.0.id(), sig);
        let (status, took) = wait_exit(&mut t.0, Duration::from_secs(10)).expect("it exited");
        let lines = lines.join().unwrap();
        assert_eq!(status.code(), Some(0), "{name}: {status:?} {lines:?}");
        assert!(
            took < Duration::from_secs(2),
            "{name}: stopping took {took:.2?}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.contains(&format!("{name} received: stopping"))),
            "{name}: {lines:?}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.contains(&format!("tracker on {addr} stopped"))),
            "{name}: {lines:?}"
        );
        drop(idle);
    }
}

/// The process-wide pending signals of `pid` (`ShdPnd` in `/proc/PID/status`).
fn pending_signals(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix("ShdPnd:"))
        .unwrap()
        .trim();
    u64::from_str_radix(hex, 16).unwrap()
}

#[test]
fn a_second_signal_while_it_stops_ends_the_process_at_once() {
    // A stop that cannot finish: the tracker logs every request (debug) to a stderr that
    // nobody reads, so once the pipe is full its logging blocks, and so does the line the
    // first signal makes it log.
    let (mut t, addr, _, stderr) = start_logging("debug", &[]);
    let timeouts = p2p_core::Timeouts {
        connect: Duration::from_millis(500),
        handshake: Duration::from_millis(500),
        ..p2p_core::Timeouts::default()
    };
    let mut answered = 0;
    for port in 1_000..60_000u16 {
        let me = SocketAddr::new([127, 0, 0, 1].into(), port);
        if tracker_client::announce(&local(addr), ROOM, me, &timeouts).is_err() {
            break;
        }
        answered += 1;
    }
    assert!(answered < 50_000, "the log never filled the pipe");

    let pid = t.0.id();
    signal(pid, "TERM");
    let deadline = Instant::now() + Duration::from_secs(10);
    while pending_signals(pid) != 0 {
        assert!(Instant::now() < deadline, "SIGTERM was never taken");
        thread::sleep(Duration::from_millis(5));
    }
    assert!(
        t.0.try_wait().unwrap().is_none(),
        "it stopped with a full log pipe"
    );
    signal(pid, "INT");
    let (status, took) = wait_exit(&mut t.0, Duration::from_secs(10)).expect("it exited");
    assert_eq!(status.code(), Some(130), "{status:?}");
    assert!(
        took < Duration::from_secs(2),
        "the second signal took {took:.2?}"
    );
    let rest: Vec<String> = stderr.lines().map_while(Result::ok).collect();
    assert!(
        !rest.iter().any(|l| l.contains("stopped")),
        "it stopped cleanly after all: {rest:?}"
    );
}

#[test]
fn summary_lines_and_the_stats_endpoint_follow_their_flags() {
    let (_t, addr, before, stderr) = start_logging(
        "info",
        &["--summary-secs", "1", "--stats-addr", "127.0.0.1:0"],
    );
    let (tx, lines) = crossbeam_channel::unbounded();
    thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let timeouts = p2p_core::Timeouts::default();
    for port in [4_201, 4_202, 4_203] {
        let me = SocketAddr::new([127, 0, 0, 1].into(), port);
        tracker_client::announce(&local(addr), ROOM, me, &timeouts).unwrap();
    }
    // The stats address was logged at start; the summary comes within a second or so.
    let stats = before
        .iter()
        .find_map(|l| l.split("stats on http://").nth(1))
        .and_then(|url| url.strip_suffix("/metrics"))
        .map(|a| a.parse::<SocketAddr>().unwrap());
    let mut summary = None;
    let deadline = Instant::now() + Duration::from_secs(20);
    while summary.is_none() {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = lines
            .recv_timeout(left)
            .expect("a summary line with 3 peers");
        if line.contains("summary: 3 peers") {
            summary = Some(line);
        }
    }
    let summary = summary.unwrap();
    assert!(
        summary.contains("announces/s") && summary.contains("MiB resident"),
        "{summary}"
    );
    let stats = stats.expect("the stats address was logged");
    let mut conn = TcpStream::connect(stats).unwrap();
    conn.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
    let mut body = String::new();
    conn.read_to_string(&mut body).unwrap();
    assert!(body.lines().any(|l| l == "tracker_peers 3"), "{body}");
    assert!(
        body.lines().any(|l| l == "tracker_announces_total 3"),
        "{body}"
    );
}
