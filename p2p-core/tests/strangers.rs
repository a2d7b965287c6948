//! What strangers cost a peer before they have proved anything: a terminal peer (a real
//! process, so that its memory is its own) with a thousand connections that stall in the
//! Noise handshake. One test in this file, so that nothing else runs beside it.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![cfg(target_os = "linux")]

mod support;

use std::io::Read;
use std::net::TcpStream;

use support::*;

/// How many strangers: below the default inbound cap of 1,024, so that all of them are let
/// in at once.
const STRANGERS: usize = 1000;

/// What the issue allows 1,000 stalled strangers to cost together.
const BUDGET_KIB: u64 = 64 * 1024;

/// A figure of `/proc/PID/status`, in KiB (`VmRSS`, `VmHWM`) or a count (`Threads`).
fn status(pid: u32, key: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim_start_matches(':').split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

/// Opens `STRANGERS` connections that each send `prefix` and nothing more.
fn strangers(addr: std::net::SocketAddr, prefix: &[u8]) -> Vec<TcpStream> {
    (0..STRANGERS)
        .map(|_| {
            let mut conn = RawConn::connect(addr);
            conn.send_bytes(prefix).unwrap();
            conn.stream
        })
        .collect()
}

#[test]
fn a_thousand_stalled_strangers_cost_little() {
    let mut host = Proc::chat(&["--username", "host", "--port", "0", "--alone"]);
    let addr = host.listening_addr();
    let pid = host.child.id();
    let threads_before = status(pid, "Threads");
    let rss_before = status(pid, "VmRSS");

    // A thousand strangers announce a first handshake message of 64 KiB (the most its
    // 2-byte length can claim), send one byte of it and stall. A handshake message is 256
    // bytes at most: each is refused as soon as its length is in, and closed.
    let mut held = strangers(addr, &[0xff, 0xff, 1]);
    for conn in &mut held {
        conn.set_read_timeout(Some(PATIENCE)).unwrap();
        let mut sink = Vec::new();
        // The end of the connection (or a reset): never a timeout, and nothing said.
        match conn.read_to_end(&mut sink) {
            Ok(_) => assert!(sink.is_empty(), "a stranger was told {sink:?}"),
            Err(e) => assert_ne!(e.kind(), std::io::ErrorKind::WouldBlock, "not closed"),
        }
    }
    let peak = status(pid, "VmHWM");
    eprintln!(
        "{STRANGERS} strangers announcing 64 KiB messages: resident {rss_before} KiB before, peak {peak} KiB"
    );
    assert!(
        peak.saturating_sub(rss_before) < BUDGET_KIB,
        "{STRANGERS} strangers announcing a large message raised the peak to {peak} KiB (from {rss_before} KiB)"
    );
    drop(held);
    // (The terminal peer's own threads may still be starting: a few more are fine.)
    eventually("the strangers' threads to end", || {
        status(pid, "Threads") <= threads_before + 16
    });

    // A thousand strangers send half of a first handshake message and stall: each holds a
    // thread until the handshake timeout, and buffers what it sent.
    let rss_before = status(pid, "VmRSS");
    let held = strangers(addr, &[0, 32, 1, 2, 3, 4, 5, 6, 7, 8]);
    eventually("a thread for every stranger", || {
        status(pid, "Threads") >= threads_before + STRANGERS as u64
    });
    let rss = status(pid, "VmRSS");
    eprintln!(
        "{STRANGERS} strangers stalled in the handshake: resident {rss_before} KiB before, {rss} KiB with them ({} KiB each)",
        rss.saturating_sub(rss_before) / STRANGERS as u64
    );
    assert!(
        rss.saturating_sub(rss_before) < BUDGET_KIB,
        "{STRANGERS} strangers stalled in the handshake cost {} KiB",
        rss.saturating_sub(rss_before)
    );
    drop(held);

    // The peer still works.
    let mut guest = SecureConn::connect(addr);
    let answer = guest.handshake("guest", 7, loopback(1));
    assert!(
        matches!(answer, p2p_core::protocol::Frame::Welcome(_)),
        "{answer:?}"
    );
    drop(guest);
    assert_eq!(host.finish().code(), Some(0));
}
