//! An X server of a test's own (Xvfb, installed by `scripts/setup.sh test`), for the tests
//! that run the real `p2p-gui` process with its window open.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// An X server on a display it picked itself; killed when dropped.
pub struct Xvfb {
    child: Child,
    /// Its display, as `DISPLAY` names it.
    pub display: String,
}

impl Xvfb {
    /// Starts the server and waits until it accepts connections.
    pub fn start() -> Xvfb {
        let mut child = Command::new("Xvfb")
            .args(["-displayfd", "1", "-nolisten", "tcp", "-screen", "0"])
            .arg("1024x768x24")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run Xvfb ({e}): `scripts/setup.sh test` installs it")
            });
        // With -displayfd, Xvfb writes the display it took once it accepts connections.
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("Xvfb's display");
        let number = line.trim();
        assert!(!number.is_empty(), "Xvfb did not start");
        let display = format!(":{number}");
        // The pointer away from where the window opens: with no window manager, the window
        // under the pointer would get the focus, and a focused window counts nothing.
        let _ = Command::new("xdotool")
            .args(["mousemove", "1020", "760"])
            .env("DISPLAY", &display)
            .status();
        Xvfb { child, display }
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
