//! The command line: the terminal peer's connection flags prefill the form.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::Parser;

use crate::app::Options;
use crate::data::form::Tab;
use crate::data::settings::{self, Problem, Settings};
use crate::i18n::Lang;

/// The p2p-chat desktop app.
///
/// Every flag is optional: the form starts as it was at the last successful connect, and
/// each flag given replaces what was saved; `--connect` then connects at once, so that a
/// script can start two windows that talk to each other.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Cli {
    /// Your username (1 to 32 characters).
    #[arg(long)]
    pub username: Option<String>,
    /// Port to listen on; 0 picks a free one.
    #[arg(long)]
    pub port: Option<u16>,
    /// The address advertised to other peers (default: automatic, the address they see).
    #[arg(long)]
    pub ip: Option<IpAddr>,
    /// The room: only peers of the same room link (default: the saved one, else lobby).
    #[arg(long)]
    pub room: Option<String>,
    /// Find the room's peers on the local network (the Local network tab).
    #[arg(long, conflicts_with_all = ["tracker", "host_tracker", "peers", "alone"])]
    pub lan: bool,
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
    /// Find the room's peers through the BitTorrent Mainline DHT: the Internet (DHT) tab,
    /// or searched too with --tracker, --host-tracker or --lan.
    #[arg(long, conflicts_with_all = ["peers", "alone"])]
    pub dht: bool,
    /// DHT nodes to join through, comma-separated HOST:PORT (default: the public ones).
    #[arg(long, value_name = "HOST:PORT,...")]
    pub dht_bootstrap: Option<String>,
    /// Connect at once with what the flags say.
    #[arg(long)]
    pub connect: bool,
    /// Language of the window: en or pt (default: the saved one, else from the locale).
    #[arg(long, value_parser = parse_lang)]
    pub lang: Option<Lang>,
    /// Where the settings and the history are kept (default: the platform's data
    /// directory, ~/.local/share/p2p-chat on Linux).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

fn parse_lang(value: &str) -> Result<Lang, String> {
    Lang::parse(value).ok_or_else(|| format!("unknown language '{value}' (en, pt)"))
}

impl Cli {
    /// The data directory: `--data-dir`, else the platform's.
    pub fn data_dir(&self) -> Option<PathBuf> {
        self.data_dir.clone().or_else(settings::default_data_dir)
    }

    /// What the app starts with: the saved settings of the data directory, with the flags
    /// given over them, and what went wrong reading them.
    pub fn options(&self) -> Options {
        let data_dir = self.data_dir();
        let (saved, problem) = match &data_dir {
            Some(dir) => {
                let stamp = chrono::Local::now().format("%Y%m%d-%H%M%S").to_string();
                Settings::load(dir, &stamp)
            }
            None => (Settings::default(), None),
        };
        let mut options = self.over(saved, problem);
        options.data_dir = data_dir;
        options
    }

    /// The flags given, over `saved`: a flag that is given wins, one that is not leaves the
    /// saved value.
    pub fn over(&self, saved: Settings, problem: Option<Problem>) -> Options {
        let mut form = saved.form.clone();
        if let Some(username) = &self.username {
            form.username = username.clone();
        }
        if let Some(port) = self.port {
            form.port = port.to_string();
        }
        if let Some(ip) = self.ip {
            form.ip = ip.to_string();
        }
        if let Some(room) = &self.room {
            form.room = room.clone();
        }
        if self.lan {
            form.tab = Tab::Lan;
            form.alone = false;
        }
        if let Some(tracker) = &self.tracker {
            let (host, port) = tracker.rsplit_once(':').unwrap_or((tracker, ""));
            form.tracker_ip = host.trim_start_matches('[').trim_end_matches(']').into();
            form.tracker_port = port.into();
            form.tab = Tab::Automatic;
            form.host_tracker = false;
            form.alone = false;
        }
        if let Some(port) = self.host_tracker {
            form.host_tracker = true;
            form.tracker_port = port.to_string();
            form.tab = Tab::Automatic;
            form.alone = false;
        }
        if let Some(peers) = &self.peers {
            form.tab = Tab::Manual;
            form.peers = peers.clone();
            form.alone = false;
        }
        if self.alone {
            form.alone = true;
        }
        if self.dht {
            form.alone = false;
            let beside = self.lan || self.tracker.is_some() || self.host_tracker.is_some();
            if beside {
                form.also_dht = true;
            } else {
                form.tab = Tab::Dht;
            }
        }
        if let Some(nodes) = &self.dht_bootstrap {
            form.dht_bootstrap = nodes.clone();
        }
        let lang = self.lang.or(saved.language).unwrap_or_else(Lang::from_env);
        Options {
            lang,
            form,
            connect: self.connect,
            settings: saved,
            settings_problem: problem,
            ..Options::default()
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
        let options = cli.over(Settings::default(), None);
        assert_eq!(options.form.username, "bob");
        assert_eq!(options.form.port, "7002");
        assert_eq!(options.form.tracker_ip, "localhost");
        assert_eq!(options.form.tracker_port, "7000");
        assert!(options.connect);
        assert_eq!(options.lang, Lang::Pt);

        let manual =
            Cli::parse_from(["p2p-gui", "--peers", "a:1 b:2"]).over(Settings::default(), None);
        assert_eq!(manual.form.tab, Tab::Manual);
        assert_eq!(manual.form.peers, "a:1 b:2");
        let lan = Cli::parse_from(["p2p-gui", "--lan", "--room", "attic"])
            .over(Settings::default(), None);
        assert_eq!((lan.form.tab, lan.form.room.as_str()), (Tab::Lan, "attic"));
        assert_eq!(lan.form.ip, "", "the IP is automatic unless given");
        assert!(Cli::try_parse_from(["p2p-gui", "--lan", "--alone"]).is_err());
        assert!(Cli::try_parse_from(["p2p-gui", "--lang", "fr"]).is_err());
        assert!(Cli::try_parse_from(["p2p-gui", "--alone", "--peers", "a:1"]).is_err());
        let dht = Cli::parse_from(["p2p-gui", "--dht", "--dht-bootstrap", "127.0.0.1:6881"])
            .over(Settings::default(), None);
        assert_eq!((dht.form.tab, dht.form.also_dht), (Tab::Dht, false));
        assert_eq!(dht.form.dht_bootstrap, "127.0.0.1:6881");
        let both = Cli::parse_from(["p2p-gui", "--lan", "--dht"]).over(Settings::default(), None);
        assert_eq!((both.form.tab, both.form.also_dht), (Tab::Lan, true));
        assert!(Cli::try_parse_from(["p2p-gui", "--dht", "--peers", "a:1"]).is_err());
    }

    #[test]
    fn flags_win_over_the_saved_form_and_the_rest_is_kept() {
        use crate::data::form::Form;
        let saved = Settings {
            language: Some(Lang::Pt),
            form: Form {
                username: "alice".into(),
                port: "7001".into(),
                tab: Tab::Manual,
                peers: "127.0.0.1:7002".into(),
                alone: true,
                ..Form::default()
            },
            ..Settings::default()
        };
        // No flag: the saved form, as it was.
        let options = Cli::parse_from(["p2p-gui", "--connect"]).over(saved.clone(), None);
        assert_eq!(options.form, saved.form);
        assert_eq!(options.lang, Lang::Pt);
        assert!(options.connect);
        // A flag replaces its field and the way of joining it implies; the rest stays.
        let options = Cli::parse_from(["p2p-gui", "--tracker", "10.0.0.1:7000", "--lang", "en"])
            .over(saved.clone(), None);
        assert_eq!(options.form.username, "alice");
        assert_eq!(options.form.port, "7001");
        assert_eq!(options.form.tab, Tab::Automatic);
        assert_eq!(options.form.tracker_ip, "10.0.0.1");
        assert!(!options.form.alone);
        assert_eq!(options.lang, Lang::En);
        let options = Cli::parse_from(["p2p-gui", "--username", "bob"]).over(saved, None);
        assert_eq!(options.form.username, "bob");
        assert!(options.form.alone);
    }
}
