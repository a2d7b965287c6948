//! The connect form: what it holds as typed, the rule each field follows, and the
//! [`Request`] a valid form makes.
//!
//! Each rule is a pure function from the typed text to a value or a [`FieldError`];
//! [`Form::check`] applies them all and builds the request when every field the chosen way
//! of joining needs is valid. The screen (`screen::connect`) only shows the form and the
//! errors, translated.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::data::secret::Secret;

use p2p_core::RoomName;
use p2p_core::dht::DEFAULT_BOOTSTRAP;
use p2p_core::protocol::{
    MAX_ROOM_NAME_BYTES, MAX_USERNAME_CHARS, RoomNameError, UsernameError, validate_room_name,
    validate_username,
};
use p2p_core::secure::Passphrase;

/// Which tab of the connection details is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tab {
    /// Through a tracker.
    #[default]
    Automatic,
    /// To given peers.
    Manual,
    /// The room's peers on the local network, found by multicast DNS.
    Lan,
    /// The room's peers on the Internet, found through the BitTorrent Mainline DHT.
    Dht,
}

/// What the form holds, as typed. Also what the command line prefills, and what the
/// settings file remembers (a field missing from the file takes its default), all but the
/// passphrase, which is never written anywhere.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Form {
    /// Username.
    pub username: String,
    /// The address advertised to others; empty: automatic (the address the others see).
    pub ip: String,
    /// The room: only peers of the same room link.
    pub room: String,
    /// The room's passphrase, as typed in the masked field; empty: a room without one.
    /// Never saved (skipped by serde), never shown by `Debug`.
    #[serde(skip)]
    pub passphrase: Secret,
    /// The port to listen on.
    pub port: String,
    /// The tab shown.
    pub tab: Tab,
    /// The tracker's host.
    pub tracker_ip: String,
    /// The tracker's port.
    pub tracker_port: String,
    /// Host the tracker inside the app.
    pub host_tracker: bool,
    /// Space-separated `host:port` peers.
    pub peers: String,
    /// Connect with no one.
    pub alone: bool,
    /// Also search the DHT, on the tracker and local network tabs.
    pub also_dht: bool,
    /// The DHT's bootstrap nodes, `HOST:PORT` separated by commas; empty: the public ones.
    pub dht_bootstrap: String,
}

impl Default for Form {
    fn default() -> Self {
        Form {
            username: String::new(),
            ip: String::new(),
            room: RoomName::LOBBY.into(),
            passphrase: Secret::default(),
            port: "0".into(),
            tab: Tab::Automatic,
            tracker_ip: "127.0.0.1".into(),
            tracker_port: "7000".into(),
            host_tracker: false,
            peers: String::new(),
            alone: false,
            also_dht: false,
            dht_bootstrap: String::new(),
        }
    }
}

/// How the user asked to join, as the form checked it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The username.
    pub username: String,
    /// The address advertised to the others; `None`: the one they see (automatic).
    pub ip: Option<IpAddr>,
    /// The room.
    pub room: RoomName,
    /// The room's passphrase (`None`: a room without one). Kept out of `Debug` output,
    /// zeroed when dropped.
    pub passphrase: Option<Passphrase>,
    /// The port to listen on (0: any free port).
    pub port: u16,
    /// How to join.
    pub join: Join,
    /// The DHT's bootstrap nodes when the DHT is searched too (or alone, [`Join::Dht`]);
    /// `None`: no DHT.
    pub dht: Option<Vec<String>>,
}

/// How to join the network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Join {
    /// Connect with no one.
    Alone,
    /// Listen to these `host:port` peers.
    Manual(Vec<String>),
    /// Join through the tracker at `host:port`.
    Tracker(String),
    /// Start a tracker inside the app on this port, then join through it.
    HostTracker(u16),
    /// Find the room's peers on the local network.
    Lan,
    /// Find the room's peers through the DHT only.
    Dht,
}

/// Why a field is invalid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldError {
    /// Nothing typed.
    Required,
    /// Longer than the limit, in characters.
    TooLong(usize),
    /// Holds a control character.
    ControlCharacter,
    /// Holds an invisible formatting character (zero-width, bidirectional override …).
    InvisibleCharacter(char),
    /// Holds a line or paragraph separator.
    LineSeparator,
    /// Starts or ends with white space.
    SurroundingSpace,
    /// Not a number.
    NotNumber,
    /// A number outside `low..=high`.
    PortRange(u16, u16),
    /// Not an IP address.
    BadIp,
    /// Neither a host name nor an IP address.
    BadHost,
    /// This entry is not `host:port`.
    BadPeer(String),
    /// Longer than the limit, in bytes of UTF-8.
    TooLongBytes(usize),
}

/// The result of checking the form: an error per field, or the request it makes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Checked {
    /// Username error.
    pub username: Option<FieldError>,
    /// IP error.
    pub ip: Option<FieldError>,
    /// Room error.
    pub room: Option<FieldError>,
    /// Passphrase error.
    pub passphrase: Option<FieldError>,
    /// Port error.
    pub port: Option<FieldError>,
    /// Tracker host error.
    pub tracker_ip: Option<FieldError>,
    /// Tracker port error.
    pub tracker_port: Option<FieldError>,
    /// Peers error.
    pub peers: Option<FieldError>,
    /// DHT bootstrap list error.
    pub dht_bootstrap: Option<FieldError>,
    /// The request, when every field is valid.
    pub request: Option<Request>,
}

/// A username, by the core's one rule (so the app, the terminal peer and the tracker
/// refuse the same names).
pub fn check_username(value: &str) -> Result<String, FieldError> {
    validate_username(value)
        .map(|()| value.to_owned())
        .map_err(character_error)
}

/// A username rule broken, as the field says it (room names share the character rules).
fn character_error(error: UsernameError) -> FieldError {
    match error {
        UsernameError::Empty => FieldError::Required,
        UsernameError::TooLong => FieldError::TooLong(MAX_USERNAME_CHARS),
        UsernameError::FormatCharacter(c) => FieldError::InvisibleCharacter(c),
        UsernameError::LineSeparator => FieldError::LineSeparator,
        UsernameError::SurroundingSpace => FieldError::SurroundingSpace,
        _ => FieldError::ControlCharacter,
    }
}

/// The advertised address: empty for automatic (the address the others see), or an IPv4
/// or IPv6 address, white space around it ignored.
pub fn check_ip(value: &str) -> Result<Option<IpAddr>, FieldError> {
    match value.trim() {
        "" => Ok(None),
        ip => ip.parse().map(Some).map_err(|_| FieldError::BadIp),
    }
}

/// The room, by the core's rule ([`validate_room_name`]): 1 to [`MAX_ROOM_NAME_BYTES`]
/// bytes, the characters a username may hold.
pub fn check_room(value: &str) -> Result<RoomName, FieldError> {
    match validate_room_name(value) {
        Ok(()) => RoomName::new(value).map_err(|_| FieldError::Required),
        Err(RoomNameError::Empty) => Err(FieldError::Required),
        Err(RoomNameError::TooLong) => Err(FieldError::TooLongBytes(MAX_ROOM_NAME_BYTES)),
        Err(RoomNameError::Character(e)) => Err(character_error(e)),
        Err(_) => Err(FieldError::ControlCharacter),
    }
}

/// A port number from `low` to 65535, digits only (no sign, no spaces inside).
pub fn check_port(value: &str, low: u16) -> Result<u16, FieldError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(FieldError::Required);
    }
    if !value.chars().all(|c| c.is_ascii_digit()) {
        return Err(FieldError::NotNumber);
    }
    match value.parse::<u32>() {
        Ok(port) if port >= u32::from(low) => {
            u16::try_from(port).map_err(|_| FieldError::PortRange(low, u16::MAX))
        }
        _ => Err(FieldError::PortRange(low, u16::MAX)),
    }
}

/// A host name (letters, digits, `-`, `.`; labels of 1 to 63, 253 in all) or an IP address.
pub fn is_host(host: &str) -> bool {
    if host.parse::<IpAddr>().is_ok() {
        return true;
    }
    let bare = host.strip_suffix('.').unwrap_or(host);
    !bare.is_empty()
        && bare.len() <= 253
        && bare.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// The tracker's host: a host name or an IP address.
pub fn check_host(value: &str) -> Result<String, FieldError> {
    let value = value.trim();
    if value.is_empty() {
        Err(FieldError::Required)
    } else if is_host(value) {
        Ok(value.to_owned())
    } else {
        Err(FieldError::BadHost)
    }
}

/// One peer: `host:port` or `[v6]:port`, with a port from 1.
pub fn check_peer(entry: &str) -> Result<String, FieldError> {
    let bad = || FieldError::BadPeer(entry.to_owned());
    let (host, port) = entry.rsplit_once(':').ok_or_else(bad)?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if !is_host(host) || check_port(port, 1).is_err() {
        return Err(bad());
    }
    Ok(entry.to_owned())
}

/// The peers field: at least one peer, separated by white space; the first bad entry is
/// the one reported.
pub fn check_peers(value: &str) -> Result<Vec<String>, FieldError> {
    let entries: Vec<&str> = value.split_whitespace().collect();
    if entries.is_empty() {
        return Err(FieldError::Required);
    }
    entries.into_iter().map(check_peer).collect()
}

/// The DHT bootstrap list: `HOST:PORT` entries separated by commas (spaces around them
/// allowed); empty for the public bootstrap nodes ([`DEFAULT_BOOTSTRAP`]). The first bad
/// entry is the one reported.
pub fn check_bootstrap(value: &str) -> Result<Vec<String>, FieldError> {
    if value.trim().is_empty() {
        return Ok(DEFAULT_BOOTSTRAP.map(String::from).to_vec());
    }
    value
        .split(',')
        .map(|entry| check_peer(entry.trim()))
        .collect()
}

/// `host:port`, with an IPv6 host in brackets.
pub fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

impl Request {
    /// The name the history of this conversation is kept under: the room, and where one
    /// joins it (the tracker's address, the set of peers listened to by hand, sorted so
    /// that their order does not matter, the LAN, or `alone` with the port), since one
    /// room name on two trackers is two groups of people. The lobby keeps the bare place,
    /// as histories written before rooms existed do. This is the one place that names
    /// conversations.
    pub fn conversation_key(&self) -> String {
        let key = self.place_key();
        if self.room.as_str() == RoomName::LOBBY {
            key
        } else {
            format!("{key} room {}", self.room)
        }
    }

    /// Where one joins, for [`conversation_key`](Request::conversation_key).
    fn place_key(&self) -> String {
        match &self.join {
            Join::Lan => "lan".to_owned(),
            Join::Dht => "dht".to_owned(),
            Join::Tracker(addr) => format!("tracker {addr}"),
            Join::HostTracker(port) => format!("tracker 127.0.0.1:{port}"),
            Join::Manual(peers) => {
                let mut peers: Vec<&str> = peers.iter().map(String::as_str).collect();
                peers.sort_unstable();
                peers.dedup();
                format!("peers {}", peers.join(" "))
            }
            Join::Alone if self.port == 0 => "alone".to_owned(),
            Join::Alone => format!("alone {}", self.port),
        }
    }
}

impl Form {
    /// Checks every field and builds the request when all are valid. The connection
    /// details are checked only as far as the chosen way of joining uses them.
    pub fn check(&self) -> Checked {
        let mut c = Checked::default();
        let username = check_username(&self.username)
            .map_err(|e| c.username = Some(e))
            .ok();
        let ip = check_ip(&self.ip).map_err(|e| c.ip = Some(e)).ok();
        let room = check_room(&self.room).map_err(|e| c.room = Some(e)).ok();
        let passphrase = self
            .passphrase
            .passphrase()
            .map_err(|e| c.passphrase = Some(e))
            .ok();
        let port = check_port(&self.port, 0).map_err(|e| c.port = Some(e)).ok();
        let join = if self.alone {
            Some(Join::Alone)
        } else {
            match self.tab {
                Tab::Automatic if self.host_tracker => check_port(&self.tracker_port, 1)
                    .map(Join::HostTracker)
                    .map_err(|e| c.tracker_port = Some(e))
                    .ok(),
                Tab::Automatic => {
                    let host = check_host(&self.tracker_ip).map_err(|e| c.tracker_ip = Some(e));
                    let port =
                        check_port(&self.tracker_port, 1).map_err(|e| c.tracker_port = Some(e));
                    match (host, port) {
                        (Ok(host), Ok(port)) => Some(Join::Tracker(join_host_port(&host, port))),
                        _ => None,
                    }
                }
                Tab::Manual => check_peers(&self.peers)
                    .map(Join::Manual)
                    .map_err(|e| c.peers = Some(e))
                    .ok(),
                Tab::Lan => Some(Join::Lan),
                Tab::Dht => Some(Join::Dht),
            }
        };
        // The DHT: its own tab, or searched too beside the tracker or the LAN.
        let uses_dht = match join {
            Some(Join::Dht) => true,
            Some(Join::Tracker(_) | Join::HostTracker(_) | Join::Lan) => self.also_dht,
            Some(Join::Alone | Join::Manual(_)) | None => false,
        };
        let dht = if uses_dht {
            check_bootstrap(&self.dht_bootstrap)
                .map(Some)
                .map_err(|e| c.dht_bootstrap = Some(e))
                .ok()
        } else {
            Some(None)
        };
        if let (
            Some(username),
            Some(ip),
            Some(room),
            Some(passphrase),
            Some(port),
            Some(join),
            Some(dht),
        ) = (username, ip, room, passphrase, port, join, dht)
        {
            c.request = Some(Request {
                username,
                ip,
                room,
                passphrase,
                port,
                join,
                dht,
            });
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form() -> Form {
        Form {
            username: "alice".into(),
            ..Form::default()
        }
    }

    #[test]
    fn usernames_follow_the_core_rule() {
        assert_eq!(check_username("alice"), Ok("alice".into()));
        assert_eq!(check_username(""), Err(FieldError::Required));
        assert_eq!(check_username(&"é".repeat(32)), Ok("é".repeat(32)));
        assert_eq!(
            check_username(&"x".repeat(33)),
            Err(FieldError::TooLong(MAX_USERNAME_CHARS))
        );
        assert_eq!(check_username("a\nb"), Err(FieldError::ControlCharacter));
        assert_eq!(
            check_username("ali\u{200b}ce"),
            Err(FieldError::InvisibleCharacter('\u{200b}'))
        );
        assert_eq!(check_username("a\u{2028}b"), Err(FieldError::LineSeparator));
        assert_eq!(check_username(" alice"), Err(FieldError::SurroundingSpace));
        // Braces are ordinary characters: a name may look like a placeholder.
        assert_eq!(check_username("{0}"), Ok("{0}".into()));
    }

    #[test]
    fn ips_are_addresses_of_either_family_or_automatic() {
        assert_eq!(
            check_ip(" 10.0.0.2 "),
            Ok(Some("10.0.0.2".parse().unwrap()))
        );
        assert_eq!(check_ip("::1"), Ok(Some("::1".parse().unwrap())));
        assert_eq!(check_ip("  "), Ok(None), "empty: automatic");
        assert_eq!(Form::default().ip, "", "automatic is the default");
        assert_eq!(check_ip("1.2.3"), Err(FieldError::BadIp));
        assert_eq!(check_ip("localhost"), Err(FieldError::BadIp));
    }

    #[test]
    fn ports_are_digits_within_range() {
        assert_eq!(check_port("0", 0), Ok(0));
        assert_eq!(check_port(" 7001 ", 1), Ok(7001));
        assert_eq!(check_port("65535", 1), Ok(65535));
        assert_eq!(check_port("", 0), Err(FieldError::Required));
        assert_eq!(check_port("+80", 0), Err(FieldError::NotNumber));
        assert_eq!(check_port("8 0", 0), Err(FieldError::NotNumber));
        assert_eq!(check_port("0", 1), Err(FieldError::PortRange(1, 65535)));
        assert_eq!(check_port("65536", 0), Err(FieldError::PortRange(0, 65535)));
        assert_eq!(
            check_port("99999999999999999999", 0),
            Err(FieldError::PortRange(0, 65535))
        );
    }

    #[test]
    fn hosts_are_names_or_addresses() {
        for good in [
            "localhost",
            "tracker.example.org",
            "example.org.",
            "a-b",
            "::1",
            "10.1.2.3",
        ] {
            assert!(is_host(good), "{good}");
        }
        for bad in [
            "",
            ".",
            "a..b",
            "-a",
            "a-",
            "bad host",
            "a_b",
            &"a".repeat(64),
        ] {
            assert!(!is_host(bad), "{bad}");
        }
        assert!(!is_host(&["a"; 128].join(".")), "longer than 253");
        assert_eq!(check_host(" localhost "), Ok("localhost".into()));
        assert_eq!(check_host(""), Err(FieldError::Required));
        assert_eq!(check_host("bad host!"), Err(FieldError::BadHost));
    }

    #[test]
    fn peers_are_host_port_pairs() {
        assert_eq!(check_peer("[::1]:7003"), Ok("[::1]:7003".into()));
        assert_eq!(check_peer("localhost:1"), Ok("localhost:1".into()));
        for bad in [
            "localhost",
            "host:0",
            "host:",
            ":7001",
            "[::1:7001",
            "a b:1",
        ] {
            assert_eq!(
                check_peer(bad),
                Err(FieldError::BadPeer(bad.into())),
                "{bad}"
            );
        }
        assert_eq!(check_peers(" \t "), Err(FieldError::Required));
        assert_eq!(
            check_peers("a:1 b c"),
            Err(FieldError::BadPeer("b".into())),
            "the first bad entry"
        );
    }

    #[test]
    fn a_valid_tracker_form_makes_a_request() {
        let request = form().check().request.expect("valid");
        assert_eq!(request.join, Join::Tracker("127.0.0.1:7000".into()));
        assert_eq!(request.port, 0);
        let v6 = Form {
            tracker_ip: "::1".into(),
            ..form()
        };
        assert_eq!(
            v6.check().request.map(|r| r.join),
            Some(Join::Tracker("[::1]:7000".into()))
        );
    }

    #[test]
    fn each_field_says_why_it_is_invalid() {
        let f = Form {
            username: "x".repeat(33),
            ip: "300.1.1.1".into(),
            port: "70000".into(),
            tracker_ip: "bad host!".into(),
            tracker_port: "abc".into(),
            ..Form::default()
        };
        let c = f.check();
        assert_eq!(c.username, Some(FieldError::TooLong(32)));
        assert_eq!(c.ip, Some(FieldError::BadIp));
        assert_eq!(c.port, Some(FieldError::PortRange(0, 65535)));
        assert_eq!(c.tracker_ip, Some(FieldError::BadHost));
        assert_eq!(c.tracker_port, Some(FieldError::NotNumber));
        assert_eq!(c.request, None);
    }

    #[test]
    fn manual_peers_are_host_port_pairs() {
        let mut f = form();
        f.tab = Tab::Manual;
        assert_eq!(f.check().peers, Some(FieldError::Required));
        f.peers = "localhost:7001  10.0.0.2:7002 [::1]:7003".into();
        assert_eq!(
            f.check().request.map(|r| r.join),
            Some(Join::Manual(vec![
                "localhost:7001".into(),
                "10.0.0.2:7002".into(),
                "[::1]:7003".into()
            ]))
        );
        f.peers = "localhost:7001 localhost".into();
        assert_eq!(
            f.check().peers,
            Some(FieldError::BadPeer("localhost".into()))
        );
        f.peers = "host:0".into();
        assert_eq!(f.check().peers, Some(FieldError::BadPeer("host:0".into())));
    }

    #[test]
    fn only_the_chosen_way_of_joining_is_checked() {
        // Alone: the connection details do not matter.
        let alone = Form {
            tracker_ip: String::new(),
            tracker_port: "x".into(),
            alone: true,
            ..form()
        };
        let c = alone.check();
        assert_eq!((c.tracker_ip, c.tracker_port), (None, None));
        assert_eq!(c.request.map(|r| r.join), Some(Join::Alone));
        // Manual: the tracker fields do not matter either.
        let manual = Form {
            tab: Tab::Manual,
            tracker_ip: String::new(),
            peers: "a:1".into(),
            ..form()
        };
        assert!(manual.check().request.is_some());
    }

    #[test]
    fn hosting_the_tracker_needs_only_its_port() {
        let f = Form {
            tracker_ip: String::new(),
            tracker_port: "7100".into(),
            host_tracker: true,
            ..form()
        };
        assert_eq!(
            f.check().request.map(|r| r.join),
            Some(Join::HostTracker(7100))
        );
        let f = Form {
            tracker_port: "0".into(),
            host_tracker: true,
            ..form()
        };
        assert_eq!(
            f.check().tracker_port,
            Some(FieldError::PortRange(1, 65535))
        );
    }

    #[test]
    fn rooms_are_one_to_64_bytes_without_control_characters_or_surrounding_space() {
        assert_eq!(check_room("lobby"), Ok(RoomName::lobby()));
        assert_eq!(
            check_room("sala 3 ☕"),
            Ok(RoomName::new("sala 3 ☕").unwrap())
        );
        assert_eq!(check_room(""), Err(FieldError::Required));
        assert_eq!(
            check_room(&"é".repeat(33)),
            Err(FieldError::TooLongBytes(64))
        );
        assert_eq!(check_room("a\tb"), Err(FieldError::ControlCharacter));
        assert_eq!(check_room(" a"), Err(FieldError::SurroundingSpace));
        let f = Form {
            tab: Tab::Lan,
            ..form()
        };
        let request = f.check().request.unwrap();
        assert_eq!((request.join, request.ip), (Join::Lan, None));
        let f = Form {
            room: String::new(),
            ..f
        };
        assert_eq!(f.check().room, Some(FieldError::Required));
        assert!(f.check().request.is_none());
    }

    #[test]
    fn each_way_of_joining_names_its_conversation() {
        let request = |join| Request {
            username: "alice".into(),
            ip: Some("127.0.0.1".parse().unwrap()),
            room: RoomName::lobby(),
            passphrase: None,
            port: 7001,
            join,
            dht: None,
        };
        assert_eq!(request(Join::Lan).conversation_key(), "lan");
        assert_eq!(
            Request {
                room: RoomName::new("attic").unwrap(),
                ..request(Join::Lan)
            }
            .conversation_key(),
            "lan room attic"
        );
        assert_eq!(
            request(Join::Tracker("10.0.0.1:7000".into())).conversation_key(),
            "tracker 10.0.0.1:7000"
        );
        assert_eq!(
            request(Join::HostTracker(7000)).conversation_key(),
            request(Join::Tracker("127.0.0.1:7000".into())).conversation_key(),
            "hosting a tracker and joining it from this computer is one conversation"
        );
        assert_eq!(
            request(Join::Manual(vec!["b:2".into(), "a:1".into(), "b:2".into()]))
                .conversation_key(),
            request(Join::Manual(vec!["a:1".into(), "b:2".into()])).conversation_key()
        );
        assert_eq!(request(Join::Alone).conversation_key(), "alone 7001");
        assert_eq!(
            Request {
                port: 0,
                ..request(Join::Alone)
            }
            .conversation_key(),
            "alone"
        );
    }

    #[test]
    fn the_dht_is_a_tab_of_its_own_or_searched_too_beside_the_tracker_or_the_lan() {
        let public: Vec<String> = DEFAULT_BOOTSTRAP.map(String::from).to_vec();
        let dht = Form {
            tab: Tab::Dht,
            ..form()
        };
        let request = dht.check().request.unwrap();
        assert_eq!(
            (request.join, request.dht),
            (Join::Dht, Some(public.clone()))
        );
        let private = Form {
            dht_bootstrap: " 127.0.0.1:6881 , node.example.org:7000".into(),
            ..dht.clone()
        };
        assert_eq!(
            private.check().request.unwrap().dht,
            Some(vec![
                "127.0.0.1:6881".into(),
                "node.example.org:7000".into()
            ])
        );
        let bad = Form {
            dht_bootstrap: "127.0.0.1:6881,,x".into(),
            ..dht.clone()
        };
        assert_eq!(
            bad.check().dht_bootstrap,
            Some(FieldError::BadPeer(String::new()))
        );
        assert!(bad.check().request.is_none());
        // Beside the tracker or the LAN, only when asked; never by hand or alone.
        for tab in [Tab::Automatic, Tab::Lan] {
            let f = Form { tab, ..form() };
            assert_eq!(f.check().request.unwrap().dht, None);
            let also = Form {
                also_dht: true,
                ..f
            };
            assert_eq!(also.check().request.unwrap().dht, Some(public.clone()));
        }
        let manual = Form {
            tab: Tab::Manual,
            peers: "a:1".into(),
            also_dht: true,
            ..form()
        };
        assert_eq!(manual.check().request.unwrap().dht, None);
        // The DHT alone is a conversation of its own; searched too, it is the tracker's.
        assert_eq!(dht.check().request.unwrap().conversation_key(), "dht");
        let tracker_too = Form {
            also_dht: true,
            ..form()
        };
        assert_eq!(
            tracker_too.check().request.unwrap().conversation_key(),
            "tracker 127.0.0.1:7000"
        );
    }
}
