//! The real `p2p-gui` process with its window on an X server of the test's own (Xvfb):
//! a `kill -9` loses none of the messages the window had shown (the unread count in its
//! title says how many it had taken in), and desktop notifications reach a mock
//! notification daemon on a real session bus, and a click on one (the daemon's
//! `ActionInvoked`) clears the unread count (`dbus-run-session` and python3-dbusmock,
//! installed by `scripts/setup.sh test`; the notification tests fail without them).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use p2p_core::{Event, Peer, PeerConfig};
use p2p_gui::data::attention::NOTIFY_EVERY;
use p2p_gui::store::Store;
use support::xvfb::Xvfb;

/// How long the app may take to open its window and connect (debug build, loaded machine).
const START: Duration = Duration::from_secs(60);

struct Gui(Child);

impl Drop for Gui {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_gui(xvfb: &Xvfb, data: &Path, peer: &str, env: &[(&str, &str)]) -> Gui {
    let mut command = Command::new(env!("CARGO_BIN_EXE_p2p-gui"));
    command
        .args([
            "--lang",
            "en",
            "--username",
            "alice",
            "--port",
            "0",
            "--connect",
        ])
        .args(["--peers", peer, "--data-dir"])
        .arg(data)
        .env("DISPLAY", &xvfb.display)
        .env_remove("WAYLAND_DISPLAY")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in env {
        command.env(k, v);
    }
    Gui(command.spawn().expect("p2p-gui runs"))
}

fn bob() -> Peer {
    let mut config = PeerConfig::new("bob");
    config.bind_addr = "127.0.0.1:0".parse().expect("addr");
    Peer::start(config).expect("bob starts")
}

/// Waits until alice listens to bob (she is one of his listeners).
fn wait_for_alice(bob: &Peer) {
    let deadline = Instant::now() + START;
    loop {
        match bob.events().recv_deadline(deadline) {
            Ok(Event::ListenerJoined(p)) if p.username == "alice" => return,
            Ok(_) => {}
            Err(e) => panic!("alice never listened to bob: {e}"),
        }
    }
}

/// The title of alice's window, read with xdotool.
fn title(xvfb: &Xvfb) -> Option<String> {
    let out = Command::new("xdotool")
        .args(["search", "--name", "P2P Messenger"])
        .env("DISPLAY", &xvfb.display)
        .output()
        .ok()?;
    let id = String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()?
        .to_owned();
    let out = Command::new("xdotool")
        .args(["getwindowname", &id])
        .env("DISPLAY", &xvfb.display)
        .output()
        .ok()?;
    Some(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// The unread count in the title, once the title has one.
fn unread(xvfb: &Xvfb) -> usize {
    title(xvfb)
        .and_then(|t| {
            let rest = t.strip_prefix('(')?;
            rest[..rest.find(')')?].parse().ok()
        })
        .unwrap_or(0)
}

#[test]
fn kill_9_loses_none_of_the_messages_the_window_had_shown() {
    let xvfb = Xvfb::start();
    let data = tempfile::tempdir().unwrap();
    let bob = bob();
    let addr = bob.local_addr().to_string();
    let mut gui = spawn_gui(&xvfb, data.path(), &addr, &[]);
    wait_for_alice(&bob);

    // Bob talks without pause; once the window has counted at least 200 of his messages
    // (and while more are still arriving), the app is killed outright.
    let talking = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let speaker = {
        let talking = std::sync::Arc::clone(&talking);
        let bob = std::sync::Arc::new(bob);
        let b = std::sync::Arc::clone(&bob);
        (
            thread::spawn(move || {
                let mut i = 0;
                while talking.load(std::sync::atomic::Ordering::SeqCst) && i < 200_000 {
                    if b.send(&format!("m{i}")).is_err() {
                        break;
                    }
                    i += 1;
                    if i % 100 == 0 {
                        thread::sleep(Duration::from_millis(5));
                    }
                }
            }),
            bob,
        )
    };
    let deadline = Instant::now() + START;
    let shown = loop {
        let n = unread(&xvfb);
        if n >= 200 {
            break n;
        }
        assert!(
            Instant::now() < deadline,
            "the title never counted 200: {:?}",
            title(&xvfb)
        );
        thread::sleep(Duration::from_millis(20));
    };
    let status = Command::new("kill")
        .args(["-9", &gui.0.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let _ = gui.0.wait();
    talking.store(false, std::sync::atomic::Ordering::SeqCst);
    let (speaker, _bob) = speaker;
    speaker.join().unwrap();

    // Every message the window had counted is in the history, in order, with no gap.
    let store = Store::open(data.path()).expect("the history opens after a kill -9");
    let page = store
        .latest_blocking(&format!("peers {addr}"), 1_000_000)
        .unwrap();
    let texts: Vec<String> = page
        .rows
        .iter()
        .filter(|r| r.line.sender == "bob")
        .map(|r| r.line.text.clone())
        .collect();
    assert!(
        texts.len() >= shown,
        "{} saved, {shown} shown before the kill",
        texts.len()
    );
    eprintln!(
        "{shown} messages counted in the title before the kill; {} saved",
        texts.len()
    );
    let expected: Vec<String> = (0..texts.len()).map(|i| format!("m{i}")).collect();
    assert_eq!(texts, expected);
    store.close();
}

/// The session bus of a `dbus-run-session` running python3-dbusmock's notification
/// daemon, which logs each call to a file.
struct MockDaemon {
    child: Child,
    address: String,
}

impl Drop for MockDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const PYTHON: &str = "/usr/bin/python3";

fn mock_daemon(log: &Path) -> Option<MockDaemon> {
    let runs = |cmd: &mut Command| {
        cmd.stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !runs(Command::new("dbus-run-session").args(["--", "true"]))
        || !runs(Command::new(PYTHON).args(["-c", "import dbusmock"]))
    {
        return None;
    }
    let script = format!(
        "echo \"$DBUS_SESSION_BUS_ADDRESS\"; exec {PYTHON} -m dbusmock --template notification_daemon -l '{}'",
        log.display()
    );
    let mut child = Command::new("dbus-run-session")
        .args(["--", "sh", "-c", &script])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let mut address = String::new();
    BufReader::new(child.stdout.take()?)
        .read_line(&mut address)
        .ok()?;
    Some(MockDaemon {
        child,
        address: address.trim().to_owned(),
    })
}

fn notifications(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("Notify"))
        .map(str::to_owned)
        .collect()
}

/// Alice's app with its window unfocused, listening to bob, with a mock notification
/// daemon on its session bus that logs what it is told.
struct Away {
    log: std::path::PathBuf,
    daemon: MockDaemon,
    xvfb: Xvfb,
    bob: Peer,
    _gui: Gui,
    _dir: tempfile::TempDir,
}

impl Away {
    fn start() -> Away {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("notifications.log");
        // scripts/setup.sh test installs both: a machine without them is a broken set-up,
        // not a reason to pass without looking.
        let daemon = mock_daemon(&log)
            .expect("dbus-run-session and python3-dbusmock (installed by scripts/setup.sh test)");
        // The mock is on the bus once it has written its log.
        let deadline = Instant::now() + START;
        while !log.exists() {
            assert!(Instant::now() < deadline, "the mock daemon did not start");
            thread::sleep(Duration::from_millis(20));
        }
        let xvfb = Xvfb::start();
        let bob = bob();
        let addr = bob.local_addr().to_string();
        let gui = spawn_gui(
            &xvfb,
            &dir.path().join("data"),
            &addr,
            &[("DBUS_SESSION_BUS_ADDRESS", &daemon.address)],
        );
        wait_for_alice(&bob);
        Away {
            log,
            daemon,
            xvfb,
            bob,
            _gui: gui,
            _dir: dir,
        }
    }
}

#[test]
fn a_message_while_away_notifies_once_per_few_seconds_through_the_session_bus() {
    let away = Away::start();
    let (log, xvfb, bob) = (&away.log, &away.xvfb, &away.bob);
    bob.send("Shall we meet at five?").unwrap();
    let deadline = Instant::now() + START;
    while notifications(log).is_empty() {
        assert!(
            Instant::now() < deadline,
            "no notification reached the daemon"
        );
        thread::sleep(Duration::from_millis(20));
    }
    let first_seen = Instant::now();
    let first = notifications(log);
    assert_eq!(first.len(), 1, "{first:?}");
    assert!(first[0].contains("bob"), "the sender: {first:?}");
    assert!(
        first[0].contains("Shall we meet at five?"),
        "the text: {first:?}"
    );

    // Four more at once: counted in the title, but no second notification so soon.
    for i in 0..4 {
        bob.send(&format!("and {i}")).unwrap();
    }
    let deadline = Instant::now() + START;
    while unread(xvfb) < 5 {
        assert!(Instant::now() < deadline, "not counted: {:?}", title(xvfb));
        thread::sleep(Duration::from_millis(20));
    }
    // Once the few seconds have passed, one more message is notified. Notifications
    // reach the daemon in the order they were asked for, so had any of the four asked for
    // one, it would be in the log before this one: the log holds exactly the first and
    // this one.
    let since = first_seen.elapsed();
    if since < NOTIFY_EVERY {
        thread::sleep(NOTIFY_EVERY - since);
    }
    bob.send("Five it is").unwrap();
    let deadline = Instant::now() + START;
    while notifications(log).len() < 2 {
        assert!(
            Instant::now() < deadline,
            "the message after the pause was not notified: {:?}",
            notifications(log)
        );
        thread::sleep(Duration::from_millis(20));
    }
    let all = notifications(log);
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!(all[0], first[0]);
    assert!(all[1].contains("Five it is"), "{all:?}");
    assert!(all.iter().all(|n| !n.contains("and ")), "{all:?}");
}

/// Has the mock daemon say that notification `id`'s body was clicked, as a desktop's
/// daemon does (freedesktop's `ActionInvoked` with the default action).
fn click_notification(daemon: &MockDaemon, id: u32) {
    let status = Command::new("gdbus")
        .args([
            "call",
            "--session",
            "--dest",
            "org.freedesktop.Notifications",
            "--object-path",
            "/org/freedesktop/Notifications",
            "--method",
            "org.freedesktop.DBus.Mock.EmitSignal",
            "",
            "ActionInvoked",
            "us",
            &format!("[<uint32 {id}>, <'default'>]"),
        ])
        .env("DBUS_SESSION_BUS_ADDRESS", &daemon.address)
        .stdout(Stdio::null())
        .status()
        .expect("gdbus runs");
    assert!(status.success(), "the mock daemon emits the click");
}

#[test]
fn clicking_a_notification_clears_the_conversation_s_unread_count() {
    let away = Away::start();
    let (log, daemon, xvfb, bob) = (&away.log, &away.daemon, &away.xvfb, &away.bob);
    bob.send("Are you there?").unwrap();
    bob.send("Hello?").unwrap();
    let deadline = Instant::now() + START;
    while notifications(log).is_empty() || unread(xvfb) < 2 {
        assert!(
            Instant::now() < deadline,
            "no notification: {:?}",
            title(xvfb)
        );
        thread::sleep(Duration::from_millis(20));
    }

    // The daemon numbers notifications from 1. The app starts waiting for the click just
    // after the daemon shows the notification, so the click is repeated until it is seen,
    // as a user clicks again when nothing happens.
    let deadline = Instant::now() + START;
    loop {
        click_notification(daemon, 1);
        let counted = title(xvfb).is_some_and(|t| t.starts_with('('));
        if !counted {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the click did not clear the count: {:?}",
            title(xvfb)
        );
        thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        title(xvfb)
            .as_deref()
            .map(|t| t.starts_with("P2P Messenger")),
        Some(true)
    );
    // The app also asks for the focus (`window::gain_focus`), but on X11 that is a request
    // to the window manager (`_NET_ACTIVE_WINDOW`), and this X server runs none: nothing
    // here can give the window the focus, so that part is not checked.
}
