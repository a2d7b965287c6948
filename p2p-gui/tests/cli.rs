//! The real `p2p-gui` binary's command line: bad arguments give one line on stderr and
//! exit status 2; `--help` and `--version` print to stdout and exit 0, before any window.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};

/// Runs `p2p-gui` with `args`, with no display to open a window on (so a wrong parse
/// fails fast instead of opening one).
fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_p2p-gui"))
        .args(args)
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .env("RUST_LOG", "off")
        .output()
        .expect("p2p-gui runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn bad_arguments_give_one_line_on_stderr_and_exit_2() {
    for args in [
        &["--bogus"][..],
        &["--lang", "fr"],
        &["--port", "70000"],
        &["--alone", "--peers", "127.0.0.1:7001"],
        &["stray"],
    ] {
        let out = run(args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{args:?}: one line, got {stderr:?}");
        assert!(!lines[0].trim().is_empty(), "{args:?}: an empty line");
        assert!(out.stdout.is_empty(), "{args:?}: {}", text(&out.stdout));
    }
    let out = run(&["--bogus"]);
    assert!(text(&out.stderr).contains("--bogus"), "says which argument");
}

#[test]
fn help_and_version_print_to_stdout_and_exit_0() {
    let out = run(&["--help"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let help = text(&out.stdout);
    assert!(
        help.contains("Usage:") && help.contains("--connect"),
        "{help}"
    );
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));

    let out = run(&["--version"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with(&format!("p2p-gui {}", env!("CARGO_PKG_VERSION"))),
        "{}",
        text(&out.stdout)
    );
}
