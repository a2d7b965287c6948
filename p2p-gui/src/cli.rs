//! The command line: the terminal peer's connection flags prefill the form.

use std::net::IpAddr;

use clap::Parser;

use crate::app::Options;
use crate::data::form::{Form, Tab};
use crate::i18n::Lang;

/// The p2p-chat desktop app.
///
/// Every flag is optional and only prefills the connect form; `--connect` then connects at
/// once, so that a script can start two windows that talk to each other.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Cli {
    /// Your username (1 to 32 characters).
    #[arg(long)]
    pub username: Option<String>,
    /// Port to listen on; 0 picks a free one.
    #[arg(long)]
    pub port: Option<u16>,
    /// The address advertised to other peers.
    #[arg(long)]
    pub ip: Option<IpAddr>,
    /// Join through the tracker at HOST:PORT.
    #[arg(long, value_name = "HOST:PORT", conflicts_with_all = ["peers", "alone"])]
    pub tracker: Option<String>,
    /// Host a tracker inside the app on this port, and join through it.
    #[arg(long, value_name = "PORT", conflicts_with_all = ["tracker", "peers", "alone"])]
    pub host_tracker: Option<u16>,
    /// Listen to these peers, space-separated HOST:PORT addresses.
    #[arg(long, value_name = "\"HOST:PORT ...\"", conflicts_with = "alone")]
    pub peers: Option<String>,
    /// Connect with no one: the first peer of a network.
    #[arg(long)]
    pub alone: bool,
    /// Connect at once with what the flags say.
    #[arg(long)]
    pub connect: bool,
    /// Language of the window: en or pt (default: from the locale).
    #[arg(long, value_parser = parse_lang)]
    pub lang: Option<Lang>,
}

fn parse_lang(value: &str) -> Result<Lang, String> {
    Lang::parse(value).ok_or_else(|| format!("unknown language '{value}' (en, pt)"))
}

impl Cli {
    /// What the app starts with.
    pub fn options(&self) -> Options {
        let mut form = Form::default();
        if let Some(username) = &self.username {
            form.username = username.clone();
        }
        if let Some(port) = self.port {
            form.port = port.to_string();
        }
        if let Some(ip) = self.ip {
            form.ip = ip.to_string();
        }
        if let Some(tracker) = &self.tracker {
            let (host, port) = tracker.rsplit_once(':').unwrap_or((tracker, ""));
            form.tracker_ip = host.trim_start_matches('[').trim_end_matches(']').into();
            form.tracker_port = port.into();
        }
        if let Some(port) = self.host_tracker {
            form.host_tracker = true;
            form.tracker_port = port.to_string();
        }
        if let Some(peers) = &self.peers {
            form.tab = Tab::Manual;
            form.peers = peers.clone();
        }
        form.alone = self.alone;
        Options {
            lang: self.lang.unwrap_or_else(Lang::from_env),
            form,
            connect: self.connect,
            signals: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_prefill_the_form() {
        let cli = Cli::parse_from([
            "p2p-gui",
            "--username",
            "bob",
            "--port",
            "7002",
            "--tracker",
            "localhost:7000",
            "--connect",
            "--lang",
            "pt",
        ]);
        let options = cli.options();
        assert_eq!(options.form.username, "bob");
        assert_eq!(options.form.port, "7002");
        assert_eq!(options.form.tracker_ip, "localhost");
        assert_eq!(options.form.tracker_port, "7000");
        assert!(options.connect);
        assert_eq!(options.lang, Lang::Pt);

        let manual = Cli::parse_from(["p2p-gui", "--peers", "a:1 b:2"]).options();
        assert_eq!(manual.form.tab, Tab::Manual);
        assert_eq!(manual.form.peers, "a:1 b:2");
        assert!(Cli::try_parse_from(["p2p-gui", "--lang", "fr"]).is_err());
        assert!(Cli::try_parse_from(["p2p-gui", "--alone", "--peers", "a:1"]).is_err());
    }
}
