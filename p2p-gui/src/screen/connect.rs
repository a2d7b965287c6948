//! The connect screen: who I am, and how I join (through a tracker, by hand, or alone).
//!
//! The form is checked on every change; each invalid field says why under it, and
//! Connect is enabled only when the whole form is valid. Starting runs off the UI thread
//! (the root turns [`Action::Start`] into a task) and a failure comes back through
//! [`Connect::failed`], with the form kept as it was.

use std::net::IpAddr;

use iced::widget::{
    button, center, checkbox, column, container, opaque, pick_list, row, space, stack, text,
    text_input,
};
use iced::{Alignment, Element, Fill, Length};
use p2p_core::protocol::{MAX_USERNAME_CHARS, UsernameError, validate_username};

use crate::i18n::{Lang, Strings, fill};
use crate::network::{Join, PeerError, Request, StartError};

/// Which tab of the connection details is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Tab {
    /// Through a tracker.
    #[default]
    Automatic,
    /// To given peers.
    Manual,
}

/// What the form holds, as typed. Also what the command line prefills.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Form {
    /// Username.
    pub username: String,
    /// The address advertised to others.
    pub ip: String,
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
}

impl Default for Form {
    fn default() -> Self {
        Form {
            username: String::new(),
            ip: "127.0.0.1".into(),
            port: "0".into(),
            tab: Tab::Automatic,
            tracker_ip: "127.0.0.1".into(),
            tracker_port: "7000".into(),
            host_tracker: false,
            peers: String::new(),
            alone: false,
        }
    }
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
}

impl FieldError {
    /// The message shown under the field.
    pub fn describe(&self, s: &Strings) -> String {
        match self {
            FieldError::Required => s.err_required.into(),
            FieldError::TooLong(max) => fill(s.err_too_long, &[max]),
            FieldError::ControlCharacter => s.err_control.into(),
            FieldError::NotNumber => s.err_not_number.into(),
            FieldError::PortRange(low, high) => fill(s.err_port_range, &[low, high]),
            FieldError::BadIp => s.err_bad_ip.into(),
            FieldError::BadHost => s.err_bad_host.into(),
            FieldError::BadPeer(entry) => fill(s.err_bad_peer, &[entry]),
        }
    }
}

/// The result of checking the form: an error per field, or the request it makes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Checked {
    /// Username error.
    pub username: Option<FieldError>,
    /// IP error.
    pub ip: Option<FieldError>,
    /// Port error.
    pub port: Option<FieldError>,
    /// Tracker host error.
    pub tracker_ip: Option<FieldError>,
    /// Tracker port error.
    pub tracker_port: Option<FieldError>,
    /// Peers error.
    pub peers: Option<FieldError>,
    /// The request, when every field is valid.
    pub request: Option<Request>,
}

fn check_port(value: &str, low: u16) -> Result<u16, FieldError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(FieldError::Required);
    }
    if !value.chars().all(|c| c.is_ascii_digit()) {
        return Err(FieldError::NotNumber);
    }
    match value.parse::<u32>() {
        Ok(port) if port >= u32::from(low) && port <= u32::from(u16::MAX) => Ok(port as u16),
        _ => Err(FieldError::PortRange(low, u16::MAX)),
    }
}

/// A host name (letters, digits, `-`, `.`; labels of 1 to 63) or an IP address.
fn is_host(host: &str) -> bool {
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

fn check_host(value: &str) -> Result<String, FieldError> {
    let value = value.trim();
    if value.is_empty() {
        Err(FieldError::Required)
    } else if is_host(value) {
        Ok(value.to_owned())
    } else {
        Err(FieldError::BadHost)
    }
}

/// `host:port` or `[v6]:port`.
fn check_peer(entry: &str) -> Result<String, FieldError> {
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

fn check_peers(value: &str) -> Result<Vec<String>, FieldError> {
    let entries: Vec<&str> = value.split_whitespace().collect();
    if entries.is_empty() {
        return Err(FieldError::Required);
    }
    entries.into_iter().map(check_peer).collect()
}

impl Form {
    /// Checks every field and builds the request when all are valid.
    pub fn check(&self) -> Checked {
        let mut c = Checked::default();
        let username = match validate_username(&self.username) {
            Ok(()) => Some(self.username.clone()),
            Err(e) => {
                c.username = Some(match e {
                    UsernameError::Empty => FieldError::Required,
                    UsernameError::TooLong => FieldError::TooLong(MAX_USERNAME_CHARS),
                    _ => FieldError::ControlCharacter,
                });
                None
            }
        };
        let ip = match self.ip.trim() {
            "" => Err(FieldError::Required),
            ip => ip.parse::<IpAddr>().map_err(|_| FieldError::BadIp),
        };
        let ip = ip.map_err(|e| c.ip = Some(e)).ok();
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
            }
        };
        if let (Some(username), Some(ip), Some(port), Some(join)) = (username, ip, port, join) {
            c.request = Some(Request {
                username,
                ip,
                port,
                join,
            });
        }
        c
    }
}

fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Where the screen is in starting a peer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Status {
    /// Filling the form.
    #[default]
    Idle,
    /// Asking whether to start alone.
    ConfirmAlone,
    /// Starting; the request is being carried out.
    Working(Request),
    /// The last try failed.
    Failed(StartError),
}

/// The connect screen.
#[derive(Debug, Clone)]
pub struct Connect {
    form: Form,
    addresses: Vec<String>,
    status: Status,
}

/// What the user did on the connect screen.
#[derive(Debug, Clone)]
pub enum Message {
    /// Typed in Username.
    Username(String),
    /// Typed in IP address.
    Ip(String),
    /// Picked an address from the list.
    PickIp(String),
    /// Typed in Port.
    Port(String),
    /// Chose a tab.
    Tab(Tab),
    /// Typed in Tracker IP.
    TrackerIp(String),
    /// Typed in Tracker port.
    TrackerPort(String),
    /// Toggled hosting the tracker.
    HostTracker(bool),
    /// Typed in Peers.
    Peers(String),
    /// Toggled "Don't connect with anyone".
    Alone(bool),
    /// Pressed Connect (or Enter in a field).
    Connect,
    /// Confirmed starting alone.
    ConfirmAlone,
    /// Cancelled starting alone.
    Cancel,
}

/// What the root must do after an update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Nothing.
    None,
    /// Start a peer with this request.
    Start(Request),
}

impl Connect {
    /// The screen with this form, offering these addresses for the IP field.
    pub fn new(form: Form, addresses: Vec<String>) -> Self {
        Connect {
            form,
            addresses,
            status: Status::Idle,
        }
    }

    /// The form as it stands.
    pub fn form(&self) -> &Form {
        &self.form
    }

    /// Where the screen is.
    pub fn status(&self) -> &Status {
        &self.status
    }

    /// Starting failed: show why, keep the form.
    pub fn failed(&mut self, error: StartError) {
        self.status = Status::Failed(error);
    }

    /// Handles a message; may ask the root to start a peer.
    pub fn update(&mut self, message: Message) -> Action {
        if matches!(self.status, Status::Working(_)) {
            // The form is frozen while a start is under way.
            return Action::None;
        }
        let f = &mut self.form;
        match message {
            Message::Username(v) => f.username = v,
            Message::Ip(v) | Message::PickIp(v) => f.ip = v,
            Message::Port(v) => f.port = v,
            Message::Tab(tab) => f.tab = tab,
            Message::TrackerIp(v) => f.tracker_ip = v,
            Message::TrackerPort(v) => f.tracker_port = v,
            Message::HostTracker(v) => f.host_tracker = v,
            Message::Peers(v) => f.peers = v,
            Message::Alone(v) => f.alone = v,
            Message::Connect | Message::ConfirmAlone => {
                let confirmed =
                    matches!(message, Message::ConfirmAlone) || self.status == Status::ConfirmAlone;
                match self.form.check().request {
                    Some(request) if request.join == Join::Alone && !confirmed => {
                        self.status = Status::ConfirmAlone;
                    }
                    Some(request) => {
                        self.status = Status::Working(request.clone());
                        return Action::Start(request);
                    }
                    None => {} // Connect is disabled; Enter in a field does nothing.
                }
                return Action::None;
            }
            Message::Cancel => {}
        }
        if self.status == Status::ConfirmAlone {
            self.status = Status::Idle;
        }
        Action::None
    }

    /// The screen.
    pub fn view(&self, lang: Lang) -> Element<'_, Message> {
        let s = lang.strings();
        let f = &self.form;
        let checked = f.check();
        let working = matches!(self.status, Status::Working(_));
        let editable = !working;
        let joining = editable && !f.alone;

        let ip_field = row![
            input("ip", "127.0.0.1", &f.ip, Message::Ip, editable),
            pick_list(self.addresses.as_slice(), None::<&String>, Message::PickIp)
                .placeholder(s.choose_address)
                .width(Length::Shrink),
        ]
        .spacing(6);

        let personal = column![
            heading(s.personal_details),
            field(
                s.username,
                input(
                    "username",
                    s.username_hint,
                    &f.username,
                    Message::Username,
                    editable
                ),
                &checked.username,
                s
            ),
            field(s.ip_address, ip_field, &checked.ip, s),
            field(
                s.port,
                input("port", s.port_hint, &f.port, Message::Port, editable),
                &checked.port,
                s
            ),
        ]
        .spacing(10);

        let tab = |label: &'static str, which: Tab| {
            button(text(label))
                .on_press_maybe(joining.then_some(Message::Tab(which)))
                .style(if f.tab == which {
                    button::primary
                } else {
                    button::secondary
                })
        };
        let tabs = row![tab(s.automatic, Tab::Automatic), tab(s.manual, Tab::Manual)].spacing(4);

        let details: Element<'_, Message> = match f.tab {
            Tab::Automatic => {
                let tracker_ip: Element<'_, Message> = if f.host_tracker {
                    text_input(s.this_computer, "")
                        .id("tracker-ip")
                        .padding(6)
                        .into()
                } else {
                    input(
                        "tracker-ip",
                        s.tracker_ip_hint,
                        &f.tracker_ip,
                        Message::TrackerIp,
                        joining,
                    )
                    .into()
                };
                column![
                    field(s.tracker_ip, tracker_ip, &checked.tracker_ip, s),
                    field(
                        s.tracker_port,
                        input(
                            "tracker-port",
                            s.tracker_port_hint,
                            &f.tracker_port,
                            Message::TrackerPort,
                            joining
                        ),
                        &checked.tracker_port,
                        s
                    ),
                    checkbox(f.host_tracker)
                        .label(s.host_tracker)
                        .on_toggle_maybe(joining.then_some(Message::HostTracker)),
                ]
                .spacing(10)
                .into()
            }
            Tab::Manual => column![
                field(
                    s.peers,
                    input("peers", s.peers_hint, &f.peers, Message::Peers, joining),
                    &checked.peers,
                    s
                ),
                text(s.peers_help).size(13).style(text::secondary),
            ]
            .spacing(10)
            .into(),
        };

        let status: Element<'_, Message> = match &self.status {
            Status::Working(_) => text(s.connecting).into(),
            Status::Failed(e) => text(describe_start_error(e, s))
                .style(text::danger)
                .width(Fill)
                .into(),
            _ => space().into(),
        };

        let connect = button(text(if working { s.connecting } else { s.connect }))
            .padding([8, 32])
            .on_press_maybe((checked.request.is_some() && !working).then_some(Message::Connect));

        let form = column![
            personal,
            heading(s.connection_details),
            tabs,
            container(details)
                .padding(12)
                .style(container::bordered_box)
                .width(Fill),
            checkbox(f.alone)
                .label(s.alone)
                .on_toggle_maybe(editable.then_some(Message::Alone)),
            container(connect).center_x(Fill),
            status,
        ]
        .spacing(14)
        .padding(24)
        .max_width(520);

        let page = center(iced::widget::scrollable(container(form).center_x(Fill))).padding(0);

        if self.status == Status::ConfirmAlone {
            let addr = checked
                .request
                .as_ref()
                .map_or_else(String::new, |r| join_host_port(&r.ip.to_string(), r.port));
            let dialog = container(
                column![
                    text(s.confirm_alone_title).size(18),
                    text(fill(s.confirm_alone_text, &[&addr])),
                    row![
                        button(text(s.cancel))
                            .style(button::secondary)
                            .on_press(Message::Cancel),
                        button(text(s.start_alone)).on_press(Message::ConfirmAlone),
                    ]
                    .spacing(10),
                ]
                .spacing(14)
                .align_x(Alignment::End),
            )
            .padding(20)
            .max_width(420)
            .style(container::bordered_box);
            stack![
                page,
                opaque(center(dialog).style(|_| container::Style {
                    background: Some(iced::Color::from_rgba(0.0, 0.0, 0.0, 0.35).into()),
                    ..container::Style::default()
                }))
            ]
            .into()
        } else {
            page.into()
        }
    }
}

/// A text field that submits the form on Enter; read-only unless `enabled`.
fn input<'a>(
    id: &'static str,
    hint: &str,
    value: &str,
    on_input: fn(String) -> Message,
    enabled: bool,
) -> iced::widget::TextInput<'a, Message> {
    text_input(hint, value)
        .id(id)
        .on_input_maybe(enabled.then_some(on_input))
        .on_submit(Message::Connect)
        .padding(6)
}

fn heading(label: &str) -> Element<'_, Message> {
    container(text(label).size(18)).center_x(Fill).into()
}

/// A labelled field with its error, if any, under it.
fn field<'a>(
    label: &'a str,
    input: impl Into<Element<'a, Message>>,
    error: &Option<FieldError>,
    s: &Strings,
) -> Element<'a, Message> {
    let mut right = column![input.into()].spacing(4).width(Fill);
    if let Some(error) = error {
        right = right.push(text(error.describe(s)).size(13).style(text::danger));
    }
    row![container(text(label)).padding([6, 0]).width(150), right]
        .spacing(10)
        .align_y(Alignment::Start)
        .into()
}

/// The message shown for a failed start.
pub fn describe_start_error(error: &StartError, s: &Strings) -> String {
    match error {
        StartError::HostTracker(port, why) => fill(s.fail_host_tracker, &[port, why]),
        StartError::Peer(e) => match e {
            PeerError::Bind(addr, why) => fill(s.fail_bind, &[addr, why]),
            PeerError::Tracker(addr, why) => fill(s.fail_tracker, &[addr, why]),
            PeerError::Connect(addr, why) => fill(s.fail_connect, &[addr, why]),
            PeerError::Refused(addr, why) => fill(s.fail_refused, &[addr, why]),
            PeerError::Resolve(addr, why) => fill(s.fail_resolve, &[addr, why]),
            PeerError::SelfConnection(addr) => fill(s.fail_self, &[addr]),
            PeerError::Other(why) => fill(s.fail_other, &[why]),
        },
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
    fn a_valid_tracker_form_makes_a_request() {
        let request = form().check().request.expect("valid");
        assert_eq!(request.join, Join::Tracker("127.0.0.1:7000".into()));
        assert_eq!(request.port, 0);
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
    fn alone_ignores_the_connection_details_and_asks_first() {
        let mut screen = Connect::new(
            Form {
                tracker_ip: String::new(),
                alone: true,
                ..form()
            },
            vec![],
        );
        assert_eq!(screen.update(Message::Connect), Action::None);
        assert_eq!(screen.status(), &Status::ConfirmAlone);
        assert_eq!(screen.update(Message::Cancel), Action::None);
        assert_eq!(screen.status(), &Status::Idle);
        screen.update(Message::Connect);
        match screen.update(Message::ConfirmAlone) {
            Action::Start(r) => assert_eq!(r.join, Join::Alone),
            other => panic!("expected a start, got {other:?}"),
        }
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
    }
}
