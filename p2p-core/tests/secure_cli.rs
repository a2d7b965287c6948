//! Secure rooms in the terminal peer (`examples/chat.rs`), as real processes: the
//! passphrase from `--passphrase-file` or `P2P_PASSPHRASE`, the one stderr line of a wrong
//! passphrase, the `identity` line and its key file (created with mode 0600, reloaded, a
//! damaged one an error that leaves it as it is), and the `! ` line of a known username
//! that comes with another key.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use support::*;

/// A file holding `passphrase` on its first line.
fn passphrase_file(dir: &Path, passphrase: &str) -> String {
    let path = dir.join("passphrase");
    std::fs::write(&path, format!("{passphrase}\n")).unwrap();
    path.to_str().unwrap().to_owned()
}

/// Runs the terminal peer to its end with `data_dir` and `P2P_PASSPHRASE` set to `env` if
/// given; returns (exit code, stdout lines, stderr lines).
fn run_in(
    args: &[&str],
    data_dir: &Path,
    env: Option<&str>,
) -> (Option<i32>, Vec<String>, Vec<String>) {
    let mut p = Proc::chat_in(args, data_dir, |cmd| {
        if let Some(passphrase) = env {
            cmd.env("P2P_PASSPHRASE", passphrase);
        }
    });
    let status = p.finish();
    (status.code(), p.all_stdout(), p.all_stderr())
}

/// Alice's room has a passphrase (from a file). Mallory comes by hand with another one
/// (from the environment): it cannot start, and says so in one line naming the room, with
/// nothing on stdout. Bob comes with the right one from the environment and chats.
#[test]
fn the_wrong_passphrase_is_one_line_and_exit_1_and_the_right_one_chats() {
    let dir = tempfile::tempdir().unwrap();
    let file = passphrase_file(dir.path(), "marmalade sky");
    let args = [
        "--username",
        "alice",
        "--port",
        "0",
        "--alone",
        "--room",
        "attic",
        "--passphrase-file",
        &file,
    ];
    let mut alice = Proc::chat(&args);
    let addr = alice.listening_addr().port();
    let target = format!("127.0.0.1:{addr}");
    let mallory_dir = tempfile::tempdir().unwrap();
    let by_hand = [
        "--username",
        "mallory",
        "--port",
        "0",
        "--room",
        "attic",
        "--peers",
        &target,
    ];
    let (code, out, err) = run_in(&by_hand, mallory_dir.path(), Some("marmalade skies"));
    assert_eq!(code, Some(1), "{err:?}");
    assert_eq!(err.len(), 1, "one line: {err:?}");
    assert!(
        err[0].contains("wrong passphrase for room attic"),
        "{err:?}"
    );
    assert!(
        !err[0].contains("marmalade"),
        "the passphrase is never printed"
    );
    assert!(out.is_empty());
    // No passphrase at all: the same.
    let (code, _, err) = run_in(&by_hand, mallory_dir.path(), None);
    assert_eq!(code, Some(1), "{err:?}");
    assert!(
        err[0].contains("wrong passphrase for room attic"),
        "{err:?}"
    );

    let bob_dir = tempfile::tempdir().unwrap();
    let mut bob = Proc::chat_in(
        &[
            "--username",
            "bob",
            "--port",
            "0",
            "--room",
            "attic",
            "--peers",
            &target,
        ],
        bob_dir.path(),
        |cmd| {
            cmd.env("P2P_PASSPHRASE", "marmalade sky");
        },
    );
    bob.listening_addr();
    alice.wait_stderr("bob listening", |l| {
        l.starts_with("* bob") && l.contains("listens to you")
    });
    alice.say("only for the attic");
    assert_eq!(bob.wait_stdout_lines(1), ["[alice]: only for the attic"]);
    alice.say("/quit");
    assert_eq!(alice.finish().code(), Some(0));
    assert_eq!(bob.finish().code(), Some(0));
    // Mallory was never a listener.
    assert!(!alice.all_stderr().iter().any(|l| l.contains("mallory")));
}

/// The identity key: created at the first start in the data directory with mode 0600 and
/// printed as `identity FINGERPRINT`; the same at the next start; a damaged key file stops
/// the start with one line naming it, and is left exactly as it was.
#[test]
fn the_identity_key_is_created_0600_reloaded_and_a_damaged_one_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let args = ["--username", "ann", "--port", "0", "--alone"];
    let start = || {
        let mut p = Proc::chat_in(&args, &data, |_| {});
        let fingerprint = p.identity();
        p.say("/quit");
        assert_eq!(p.finish().code(), Some(0));
        fingerprint
    };
    let first = start();
    let key = data.join("identity.key");
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "key file mode {mode:o}");
    let again = start();
    assert_eq!(first, again, "reloaded, not replaced");

    let mut damaged = std::fs::read(&key).unwrap();
    let at = damaged.len() - 10;
    damaged[at] = if damaged[at] == b'0' { b'1' } else { b'0' };
    damaged.truncate(damaged.len() - 3);
    std::fs::write(&key, &damaged).unwrap();
    let (code, out, err) = run_in(&args, &data, None);
    assert_eq!(code, Some(1), "{err:?}");
    assert_eq!(err.len(), 1, "one line: {err:?}");
    assert!(
        err[0].contains(key.to_str().unwrap()) && err[0].contains("damaged"),
        "{err:?}"
    );
    assert!(out.is_empty());
    assert_eq!(std::fs::read(&key).unwrap(), damaged, "left as it was");
}

/// Bob knows "alice" by her first key. Another installation (another data directory, so
/// another key) comes as "alice": Bob's terminal prints a line starting with `! ` that
/// names her. The first Alice coming back is no warning.
#[test]
fn a_known_username_with_another_key_gets_a_bang_line() {
    let mut bob = Proc::chat(&["--username", "bob", "--port", "0", "--alone"]);
    let target = bob.listening_addr().to_string();
    let first_dir = tempfile::tempdir().unwrap();
    let alice = |dir: &Path| {
        let args = ["--username", "alice", "--port", "0", "--peers", &target];
        let mut p = Proc::chat_in(&args, dir, |_| {});
        let fingerprint = p.identity();
        p.say("/quit");
        assert_eq!(p.finish().code(), Some(0));
        fingerprint
    };
    let first = alice(first_dir.path());
    bob.wait_stderr("the first alice", |l| {
        l.starts_with("* alice") && l.contains("listens to you") && l.contains(&first)
    });
    assert!(!bob.err_log.iter().any(|l| l.starts_with("! ")));

    let other_dir = tempfile::tempdir().unwrap();
    let other = alice(other_dir.path());
    assert_ne!(first, other);
    let warning = bob.wait_stderr("the warning", |l| l.starts_with("! "));
    assert!(
        warning.contains("alice") && warning.contains(&other) && warning.contains(&first),
        "{warning}"
    );

    assert_eq!(alice(first_dir.path()), first);
    bob.say("/quit");
    assert_eq!(bob.finish().code(), Some(0));
    let said = bob.all_stderr();
    let joined_first = said
        .iter()
        .filter(|l| l.ends_with("listens to you") && l.contains(&first))
        .count();
    assert_eq!(joined_first, 2, "{said:#?}");
    let warnings: Vec<&String> = said.iter().filter(|l| l.starts_with("! ")).collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
}
