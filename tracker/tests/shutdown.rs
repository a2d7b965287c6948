//! `Tracker::shutdown` returns within 2 s whatever the network does, with its thread
//! joined: with hundreds of idle connections, clients that never read their answer and
//! connections arriving all along; on a host whose loopback interface is down; in a
//! process with no file descriptor left. In the last two a wake-up connection to itself
//! cannot be made: the event loop is woken by a `mio::Waker` instead.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::fs::File;
use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use p2p_core::net::write_frame;
use rlimit::Resource;
use support::{announce, connect_from, eventually, start};
use tracker::{Tracker, TrackerConfig};

/// The contract.
const BOUND: Duration = Duration::from_secs(2);

/// One test takes every file descriptor the process may open: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Shuts `tracker` down on another thread and returns how long it took, or `None` if it
/// had not returned after ten times the bound.
fn timed_shutdown(tracker: Tracker) -> Option<Duration> {
    let (done, took) = crossbeam_channel::bounded(1);
    thread::spawn(move || {
        let started = Instant::now();
        tracker.shutdown();
        let _ = done.send(started.elapsed());
    });
    took.recv_timeout(BOUND * 10).ok()
}

#[test]
fn shutdown_returns_within_the_bound_with_idle_silent_and_arriving_connections() {
    let _serial = serial();
    let (tracker, addr) = start(TrackerConfig {
        // Long enough that no connection is closed by its deadline before the shutdown.
        request_timeout: Duration::from_secs(60),
        ..TrackerConfig::default()
    });
    // 480 idle connections from eight hosts, each within its connection cap.
    let idle: Vec<TcpStream> = (2..10)
        .flat_map(|host| (0..60).map(move |_| Ipv4Addr::new(127, 0, 0, host)))
        .map(|from| connect_from(from, addr).unwrap())
        .collect();
    // Clients that send their request and never read the answer.
    let silent: Vec<TcpStream> = (0..20u16)
        .map(|i| {
            let conn = connect_from(Ipv4Addr::new(127, 0, 1, 1), addr).unwrap();
            write_frame(
                &conn,
                &announce(SocketAddr::new([10, 1, 0, 1].into(), 1_000 + i)),
            )
            .unwrap();
            conn
        })
        .collect();
    eventually("the silent clients' announces to be registered", || {
        tracker.peers().len() == silent.len()
    });
    // And a host that keeps connecting all along.
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicUsize::new(0));
    let arriving = {
        let (stop, count) = (Arc::clone(&stop), Arc::clone(&count));
        thread::spawn(move || {
            let mut held = Vec::new();
            while !stop.load(Ordering::SeqCst) && held.len() < 5_000 {
                match connect_from(Ipv4Addr::new(127, 0, 2, 1), addr) {
                    Ok(conn) => held.push(conn),
                    Err(_) => break, // the tracker is gone
                }
                count.store(held.len(), Ordering::SeqCst);
            }
            held.len()
        })
    };
    eventually("connections to be arriving", || {
        count.load(Ordering::SeqCst) >= 100
    });

    let took = timed_shutdown(tracker).expect("shutdown returned");
    stop.store(true, Ordering::SeqCst);
    let arrived = arriving.join().unwrap();
    eprintln!(
        "shutdown with {} idle, {} silent and {arrived} arriving connections took {took:.2?}",
        idle.len(),
        silent.len()
    );
    assert!(took < BOUND, "shutdown took {took:.2?}");
    // Every connection was closed (the silent clients' answers are still unread before
    // the end of their stream) and the port is free.
    for conn in idle.iter().chain(&silent) {
        conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let ended = (&*conn).read_to_end(&mut Vec::new());
        assert!(
            ended.is_ok(),
            "a connection outlived the tracker: {ended:?}"
        );
    }
    assert!(
        TcpStream::connect(addr).is_err(),
        "the tracker still listens"
    );
}

#[test]
fn shutdown_returns_within_the_bound_with_no_file_descriptor_left() {
    let _serial = serial();
    let (tracker, addr) = start(TrackerConfig::default());
    // Lower this process's descriptor limit to a few more than it has open, and take them.
    let (soft, hard) = rlimit::getrlimit(Resource::NOFILE).unwrap();
    let open = std::fs::read_dir("/proc/self/fd").unwrap().count() as u64;
    rlimit::setrlimit(Resource::NOFILE, open + 16, hard).unwrap();
    let mut files = Vec::new();
    while let Ok(file) = File::open("/dev/null") {
        files.push(file);
        assert!(files.len() < 1_000, "the descriptor limit did not hold");
    }
    let connect_failed = TcpStream::connect(addr).is_err();

    let took = timed_shutdown(tracker);
    drop(files);
    rlimit::setrlimit(Resource::NOFILE, soft, hard).unwrap();
    assert!(connect_failed, "a connection could still be opened");
    let took = took.expect("shutdown returned with no descriptor left");
    assert!(took < BOUND, "shutdown took {took:.2?}");
}

/// The variable that tells the inner test it runs in the namespace made for it.
const IN_NETNS: &str = "TRACKER_TEST_IN_FRESH_NETNS";

/// A tracker on a host whose loopback interface is down: nothing, not even the tracker
/// itself, can connect to it (a wake-up connection to itself fails at once). Runs the test
/// below in a new network namespace, where `lo` starts down (`unshare --net`, with a user
/// namespace so that it needs no privilege).
#[test]
fn shutdown_returns_within_the_bound_with_the_loopback_interface_down() {
    let _serial = serial();
    // Where user namespaces are not allowed (a container's seccomp profile, AppArmor), there
    // is no namespace to run in: say so in one line instead of failing.
    let allowed = std::process::Command::new("unshare")
        .args(["--map-root-user", "--net", "true"])
        .status()
        .is_ok_and(|s| s.success());
    if !allowed {
        eprintln!("skipped: unshare --map-root-user --net is not allowed here");
        return;
    }
    let out = std::process::Command::new("unshare")
        .args(["--map-root-user", "--net", "--"])
        .arg(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "shutdown_in_a_namespace_with_the_loopback_interface_down",
            "--ignored",
            "--nocapture",
        ])
        .env(IN_NETNS, "1")
        .output()
        .expect("unshare runs (util-linux)");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{report}");
    assert!(report.contains("1 passed"), "{report}");
}

/// The inner half of the test above (ignored in a normal run; it needs the namespace).
#[test]
#[ignore = "run by shutdown_returns_within_the_bound_with_the_loopback_interface_down"]
fn shutdown_in_a_namespace_with_the_loopback_interface_down() {
    assert_eq!(
        std::env::var(IN_NETNS).as_deref(),
        Ok("1"),
        "run through the test above"
    );
    let tracker = Tracker::start(TrackerConfig {
        bind_addr: "0.0.0.0:0".parse().unwrap(),
        ..TrackerConfig::default()
    })
    .unwrap();
    let port = tracker.local_addr().port();
    assert!(
        TcpStream::connect(SocketAddr::new([127, 0, 0, 1].into(), port)).is_err(),
        "the loopback interface is up"
    );
    let took = timed_shutdown(tracker).expect("shutdown returned");
    assert!(took < BOUND, "shutdown took {took:.2?}");
}
