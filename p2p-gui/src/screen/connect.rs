//! The connect screen: who I am, and how I join (through a tracker, by hand, or alone).
//!
//! The form and its rules live in [`crate::data::form`]; this screen edits the form, shows
//! it with each invalid field's reason under it, and enables Connect only when the whole
//! form is valid. Starting runs off the UI thread (the root turns [`Action::Start`] into a
//! task) and a failure comes back through [`Connect::failed`], with the form kept as it was.

use iced::widget::{
    button, center, checkbox, column, container, pick_list, row, space, text, text_input,
};
use iced::{Alignment, Element, Fill, Length};

use crate::data::form::{FieldError, Form, Join, Request, Tab, join_host_port};
use crate::data::secret::Secret;
use crate::i18n::{Lang, Strings, fill};
use crate::network::{PeerError, StartError};
use crate::screen::modal;

/// The message shown under an invalid field.
pub fn describe_field_error(error: &FieldError, s: &Strings) -> String {
    match error {
        FieldError::Required => s.err_required.into(),
        FieldError::TooLong(max) => fill(s.err_too_long, &[max]),
        FieldError::TooLongBytes(max) => fill(s.err_too_long_bytes, &[max]),
        FieldError::ControlCharacter => s.err_control.into(),
        FieldError::InvisibleCharacter(c) => {
            fill(s.err_invisible, &[&format_args!("U+{:04X}", u32::from(*c))])
        }
        FieldError::LineSeparator => s.err_line_separator.into(),
        FieldError::SurroundingSpace => s.err_surrounding_space.into(),
        FieldError::NotNumber => s.err_not_number.into(),
        FieldError::PortRange(low, high) => fill(s.err_port_range, &[low, high]),
        FieldError::BadIp => s.err_bad_ip.into(),
        FieldError::BadHost => s.err_bad_host.into(),
        FieldError::BadPeer(entry) => fill(s.err_bad_peer, &[entry]),
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
    /// Starting: the form is frozen until the start answers.
    Working,
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
    /// Picked an address (or automatic) from the list.
    PickIp(IpChoice),
    /// Typed in Room.
    Room(String),
    /// Typed in Passphrase (masked; its `Debug` shows nothing of it).
    Passphrase(Secret),
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
    /// Toggled "Also search the Internet (DHT)".
    AlsoDht(bool),
    /// Typed in the DHT's bootstrap nodes.
    DhtBootstrap(String),
    /// Toggled "Don't connect with anyone".
    Alone(bool),
    /// Pressed Connect (or Enter in a field).
    Connect,
    /// Confirmed starting alone.
    ConfirmAlone,
    /// Cancelled starting alone.
    Cancel,
    /// Cancelled a start under way: the form is editable again at once.
    CancelStart,
}

/// An entry of the IP field's list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IpChoice {
    /// Automatic: the field left empty (shown in the window's language).
    Automatic(&'static str),
    /// One of this machine's addresses.
    Address(String),
}

impl std::fmt::Display for IpChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IpChoice::Automatic(label) => f.write_str(label),
            IpChoice::Address(ip) => f.write_str(ip),
        }
    }
}

/// What the root must do after an update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Nothing.
    None,
    /// Start a peer with this request.
    Start(Request),
    /// Forget the start under way (close its session when it answers).
    Cancel,
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
        if matches!(self.status, Status::Working) {
            // The form is frozen while a start is under way; it can only be cancelled.
            if matches!(message, Message::CancelStart) {
                self.status = Status::Idle;
                return Action::Cancel;
            }
            return Action::None;
        }
        let f = &mut self.form;
        match message {
            Message::Username(v) => f.username = v,
            Message::Ip(v) | Message::PickIp(IpChoice::Address(v)) => f.ip = v,
            Message::PickIp(IpChoice::Automatic(_)) => f.ip.clear(),
            Message::Room(v) => f.room = v,
            Message::Passphrase(v) => f.passphrase = v,
            Message::Port(v) => f.port = v,
            Message::Tab(tab) => f.tab = tab,
            Message::TrackerIp(v) => f.tracker_ip = v,
            Message::TrackerPort(v) => f.tracker_port = v,
            Message::HostTracker(v) => f.host_tracker = v,
            Message::Peers(v) => f.peers = v,
            Message::AlsoDht(v) => f.also_dht = v,
            Message::DhtBootstrap(v) => f.dht_bootstrap = v,
            Message::Alone(v) => f.alone = v,
            Message::Connect | Message::ConfirmAlone => {
                let confirmed =
                    matches!(message, Message::ConfirmAlone) || self.status == Status::ConfirmAlone;
                match self.form.check().request {
                    Some(request) if request.join == Join::Alone && !confirmed => {
                        self.status = Status::ConfirmAlone;
                    }
                    Some(request) => {
                        self.status = Status::Working;
                        return Action::Start(request);
                    }
                    None => {} // Connect is disabled; Enter in a field does nothing.
                }
                return Action::None;
            }
            Message::Cancel | Message::CancelStart => {}
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
        let working = matches!(self.status, Status::Working);
        let editable = !working;
        let joining = editable && !f.alone;

        let mut choices = vec![IpChoice::Automatic(s.automatic_ip)];
        choices.extend(self.addresses.iter().cloned().map(IpChoice::Address));
        let ip_field = row![
            input("ip", s.automatic_ip, &f.ip, Message::Ip, editable),
            pick_list(choices, None::<IpChoice>, Message::PickIp)
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
        let tabs = row![
            tab(s.automatic, Tab::Automatic),
            tab(s.manual, Tab::Manual),
            tab(s.local_network, Tab::Lan),
            tab(s.internet_dht, Tab::Dht),
        ]
        .spacing(4);

        let bootstrap = || {
            field(
                s.dht_bootstrap,
                input(
                    "dht-bootstrap",
                    s.dht_bootstrap_hint,
                    &f.dht_bootstrap,
                    Message::DhtBootstrap,
                    joining,
                ),
                &checked.dht_bootstrap,
                s,
            )
        };
        // The DHT beside the tracker or the LAN: a checkbox, and its nodes once ticked.
        let also_dht = || {
            let mut also = column![
                checkbox(f.also_dht)
                    .label(s.also_dht)
                    .on_toggle_maybe(joining.then_some(Message::AlsoDht))
            ]
            .spacing(10);
            if f.also_dht {
                also = also.push(bootstrap());
            }
            also
        };
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
                    also_dht(),
                ]
                .spacing(10)
                .into()
            }
            Tab::Lan => column![text(s.lan_help).size(13).style(text::secondary), also_dht()]
                .spacing(10)
                .into(),
            Tab::Dht => column![
                text(s.dht_help).size(13).style(text::secondary),
                bootstrap()
            ]
            .spacing(10)
            .into(),
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
            Status::Working => space().into(),
            Status::Failed(e) => text(describe_start_error(e, s))
                .style(text::danger)
                .width(Fill)
                .into(),
            _ => space().into(),
        };

        let connect: Element<'_, Message> = if working {
            row![
                button(text(s.connecting)).padding([8, 32]),
                button(text(s.cancel))
                    .style(button::secondary)
                    .padding([8, 16])
                    .on_press(Message::CancelStart),
            ]
            .spacing(10)
            .into()
        } else {
            button(text(s.connect))
                .padding([8, 32])
                .on_press_maybe(checked.request.is_some().then_some(Message::Connect))
                .into()
        };

        let room = field(
            s.room,
            input("room", s.room_hint, &f.room, Message::Room, joining),
            &checked.room,
            s,
        );
        // Masked; an empty field is a room without a passphrase.
        let passphrase = field(
            s.passphrase,
            text_input(s.passphrase_hint, f.passphrase.as_str())
                .id("passphrase")
                .secure(true)
                .on_input_maybe(
                    editable.then_some(|typed: String| Message::Passphrase(Secret::new(typed))),
                )
                .on_submit(Message::Connect)
                .padding(6),
            &checked.passphrase,
            s,
        );
        let form = column![
            personal,
            heading(s.connection_details),
            room,
            passphrase,
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
                .map_or_else(String::new, |r| match r.ip {
                    Some(ip) => join_host_port(&ip.to_string(), r.port),
                    None => format!("{}:{}", s.automatic_ip, r.port),
                });
            let dialog = column![
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
            .align_x(Alignment::End);
            modal(page, dialog)
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
        right = right.push(
            text(describe_field_error(error, s))
                .size(13)
                .style(text::danger),
        );
    }
    row![container(text(label)).padding([6, 0]).width(150), right]
        .spacing(10)
        .align_y(Alignment::Start)
        .into()
}

/// The message shown for a failed start.
pub fn describe_start_error(error: &StartError, s: &Strings) -> String {
    match error {
        StartError::Identity(why) => fill(s.fail_identity, &[why]),
        StartError::HostTracker(port, why) => fill(s.fail_host_tracker, &[port, why]),
        StartError::Peer(e) => match e {
            PeerError::Bind(addr, why) => fill(s.fail_bind, &[addr, why]),
            PeerError::Tracker(addr, why) => fill(s.fail_tracker, &[addr, why]),
            PeerError::Connect(addr, why) => fill(s.fail_connect, &[addr, why]),
            PeerError::Refused(addr, why) => fill(s.fail_refused, &[addr, why]),
            PeerError::Resolve(addr, why) => fill(s.fail_resolve, &[addr, why]),
            PeerError::SelfConnection(addr) => fill(s.fail_self, &[addr]),
            PeerError::WrongPassphrase(room, addr) => fill(s.fail_wrong_passphrase, &[room, addr]),
            PeerError::Other(why) => fill(s.fail_other, &[why]),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alone_ignores_the_connection_details_and_asks_first() {
        let mut screen = Connect::new(
            Form {
                username: "alice".into(),
                tracker_ip: String::new(),
                alone: true,
                ..Form::default()
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
        // The form is frozen while the start is under way.
        assert_eq!(screen.status(), &Status::Working);
        screen.update(Message::Username("bob".into()));
        assert_eq!(screen.form().username, "alice");
    }

    #[test]
    fn a_start_under_way_can_be_cancelled_and_the_form_edited_again() {
        let mut screen = Connect::new(
            Form {
                username: "alice".into(),
                ..Form::default()
            },
            vec![],
        );
        assert!(matches!(screen.update(Message::Connect), Action::Start(_)));
        assert_eq!(screen.update(Message::CancelStart), Action::Cancel);
        assert_eq!(screen.status(), &Status::Idle);
        screen.update(Message::Username("bob".into()));
        assert_eq!(screen.form().username, "bob");
        // Cancel means nothing when nothing is under way.
        assert_eq!(screen.update(Message::CancelStart), Action::None);
    }
}
