//! The `tracker` binary as a real process: its command line, its `listening on` line, its
//! exit codes, serving real announces, and its summary and stats flags.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, ChildStderr, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use p2p_core::tracker_client;

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
    let first = tracker_client::announce(&local(addr), me, &timeouts).unwrap();
    assert!(first.peers.is_empty());
    assert_eq!(first.interval_secs, 20, "a third of the default 60 s TTL");
    let second = tracker_client::announce(&local(addr), other, &timeouts).unwrap();
    assert_eq!(second.peers, vec![me]);
    tracker_client::leave(&local(addr), me, &timeouts).unwrap();
    let third = tracker_client::announce(&local(addr), other, &timeouts).unwrap();
    assert!(third.peers.is_empty(), "the leave took effect at once");

    let (_t, addr) = start(&["--port", "0", "--bind", "127.0.0.1", "--ttl", "3"]);
    assert_eq!(addr.ip().to_string(), "127.0.0.1");
    let answer = tracker_client::announce(&local(addr), me, &timeouts).unwrap();
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
        tracker_client::announce(&local(addr), me, &timeouts).unwrap();
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
