//! The chat screen: the conversation, who hears whom, and the text box.
//!
//! The conversation is a [`History`]: bounded in entries and in bytes, with only a window
//! of it laid out. The view follows new messages while the user is at the bottom; while
//! they read older ones it stays put, and what arrives meanwhile is counted in a
//! "N new messages" button under the conversation instead of being laid out. Once the
//! oldest entries have been dropped, the top of the conversation says so.

use std::collections::BTreeSet;
use std::net::SocketAddr;

use iced::widget::operation::{self, RelativeOffset};
use iced::widget::scrollable::Viewport;
use iced::widget::{
    Column, button, column, container, row, rule, scrollable, space, text, text_input,
};
use iced::{Alignment, Element, Fill, Length, Task, Theme};
use p2p_core::{Departure, Event, PeerInfo};

use crate::data::history::{Delivery, Entry, EntryKind, History};
use crate::i18n::{Lang, Strings, fill};
use crate::network::Session;
use crate::network::outbox::{QueueError, Sent};

/// The id of the text box.
pub const MESSAGE_BOX: &str = "message";
/// The id of the conversation.
pub const CONVERSATION: &str = "conversation";

/// The chat screen.
#[derive(Debug)]
pub struct Chat {
    session: Option<Session>,
    username: String,
    addr: SocketAddr,
    max_text_bytes: usize,
    hosted_tracker: Option<u16>,
    history: History,
    draft: String,
    error: Option<String>,
    listening_to: BTreeSet<PeerInfo>,
    listeners: BTreeSet<PeerInfo>,
}

/// What happened on the chat screen.
#[derive(Debug, Clone)]
pub enum Message {
    /// Typed in the text box.
    Draft(String),
    /// Pressed Enter or Send.
    Send,
    /// The conversation was scrolled.
    Scrolled(Viewport),
    /// Asked for earlier messages.
    ShowEarlier,
    /// Asked for the newest messages, after reading older ones.
    JumpToLatest,
    /// The sender thread sent (or could not send) the message of entry `id`.
    Sent {
        /// The entry of the message in the history.
        id: usize,
        /// To how many listeners, or why not.
        result: Sent,
    },
}

fn now() -> String {
    chrono::Local::now().format("%H:%M").to_string()
}

impl Chat {
    /// The screen of a peer that has just started.
    pub fn new(session: Session, lang: Lang) -> Self {
        let peer = session.peer();
        let mut chat = Chat {
            username: peer.username().to_owned(),
            addr: peer.local_addr(),
            max_text_bytes: peer.config().limits.max_text_bytes,
            hosted_tracker: session.hosted_tracker_port(),
            // Filled by the events, which the peer keeps from its very start.
            listening_to: BTreeSet::new(),
            listeners: BTreeSet::new(),
            session: Some(session),
            history: History::default(),
            draft: String::new(),
            error: None,
        };
        let s = lang.strings();
        chat.notice(fill(s.welcome, &[&chat.username, &chat.addr]));
        chat
    }

    /// The running session, until the screen is closed.
    pub fn session(&self) -> Option<&Session> {
        self.session.as_ref()
    }

    /// Hands the session over for closing; the screen no longer talks to the network.
    pub fn take_session(&mut self) -> Option<Session> {
        self.session.take()
    }

    /// The window title.
    pub fn title(&self, lang: Lang) -> String {
        fill(lang.strings().chat_title, &[&self.username, &self.addr])
    }

    /// The conversation.
    pub fn history(&self) -> &History {
        &self.history
    }

    /// The peers this peer hears.
    pub fn listening_to(&self) -> &BTreeSet<PeerInfo> {
        &self.listening_to
    }

    /// The peers that hear this peer.
    pub fn listeners(&self) -> &BTreeSet<PeerInfo> {
        &self.listeners
    }

    fn push(&mut self, kind: EntryKind) -> usize {
        self.history.push(Entry { time: now(), kind })
    }

    fn notice(&mut self, notice: String) {
        let _ = self.push(EntryKind::Notice(notice));
    }

    fn knows(&self, peer: &PeerInfo) -> bool {
        self.listening_to.contains(peer) || self.listeners.contains(peer)
    }

    /// Takes in events from the peer.
    pub fn network(&mut self, events: Vec<Event>, lang: Lang) -> Task<Message> {
        let s = lang.strings();
        for event in events {
            match event {
                Event::Message { from, text } => {
                    let _ = self.push(EntryKind::Other {
                        from: from.username.clone(),
                        text: text.to_string(),
                    });
                }
                Event::ListeningTo(peer) => {
                    if !self.knows(&peer) {
                        self.notice(fill(s.joined, &[&peer.username, &peer.addr]));
                    }
                    self.listening_to.insert(peer);
                }
                Event::ListenerJoined(peer) => {
                    if !self.knows(&peer) {
                        self.notice(fill(s.joined, &[&peer.username, &peer.addr]));
                    }
                    self.listeners.insert(peer);
                }
                Event::StoppedListeningTo { peer, reason } => {
                    self.listening_to.remove(&peer);
                    if !self.knows(&peer) {
                        self.notice(fill(s.left, &[&peer.username, &departure(&reason, s)]));
                    }
                }
                Event::ListenerLeft { peer, reason } => {
                    self.listeners.remove(&peer);
                    if !self.knows(&peer) {
                        self.notice(fill(s.left, &[&peer.username, &departure(&reason, s)]));
                    }
                }
                Event::ConnectFailed { addr, reason } => {
                    self.notice(fill(s.connect_failed, &[&addr, &reason]));
                }
                Event::TrackerUnreachable { reason } => {
                    self.notice(fill(s.tracker_unreachable, &[&reason]));
                }
                other => log::debug!("event not shown: {other:?}"),
            }
        }
        self.follow()
    }

    /// Keeps the view at the newest entry while the user is at the bottom.
    fn follow(&self) -> Task<Message> {
        if self.history.following() {
            operation::snap_to(CONVERSATION, RelativeOffset::END)
        } else {
            Task::none()
        }
    }

    /// Handles what the user did.
    pub fn update(&mut self, message: Message, lang: Lang) -> Task<Message> {
        let s = lang.strings();
        match message {
            Message::Draft(draft) => {
                self.draft = draft;
                self.error = None;
                Task::none()
            }
            Message::Send => self.send(s),
            Message::Scrolled(viewport) => {
                let fits = viewport.content_bounds().height <= viewport.bounds().height;
                if fits || viewport.relative_offset().y >= 0.995 {
                    // Back at the bottom: what came meanwhile is laid out and followed.
                    let unseen = self.history.unseen();
                    self.history.follow();
                    if unseen > 0 {
                        return self.follow();
                    }
                } else {
                    self.history.stop_following();
                }
                Task::none()
            }
            Message::ShowEarlier => {
                self.history.show_earlier();
                Task::none()
            }
            Message::JumpToLatest => {
                self.history.jump_to_latest();
                self.follow()
            }
            Message::Sent { id, result } => {
                let delivery = match result {
                    Ok(listeners) => Delivery::Sent(listeners),
                    Err(reason) => Delivery::Failed(reason),
                };
                self.history.set_delivery(id, delivery);
                Task::none()
            }
        }
    }

    fn send(&mut self, s: &Strings) -> Task<Message> {
        let text = self.draft.trim_end_matches(['\r', '\n']);
        if text.trim().is_empty() {
            return Task::none();
        }
        if text.len() > self.max_text_bytes {
            self.error = Some(fill(s.too_long, &[&text.len(), &self.max_text_bytes]));
            return Task::none();
        }
        let Some(session) = &self.session else {
            return Task::none();
        };
        // The sender thread sends; this thread only queues, and learns the result as a
        // message.
        match session.send(text.to_owned()) {
            Ok(answer) => {
                let text = text.to_owned();
                self.draft.clear();
                self.error = None;
                self.history.follow();
                let id = self.push(EntryKind::Own {
                    text,
                    delivery: Delivery::Sending,
                });
                let result = Task::future(async move {
                    answer
                        .await
                        .unwrap_or_else(|_| Err("the session was closed".to_owned()))
                })
                .map(move |result| Message::Sent { id, result });
                Task::batch([self.follow(), result])
            }
            Err(QueueError::Full) => {
                self.error = Some(s.send_queue_full.to_owned());
                Task::none()
            }
            Err(e @ QueueError::Closed) => {
                self.error = Some(fill(s.not_sent, &[&e]));
                Task::none()
            }
        }
    }

    /// The screen.
    pub fn view(&self, lang: Lang) -> Element<'_, Message> {
        let s = lang.strings();
        let mut lines = column![].spacing(0).width(Fill);
        // Whoever scrolls to the top learns that the oldest entries are gone, even before
        // bringing back every earlier one.
        let history = &self.history;
        if history.dropped() > 0 {
            let limits = history.limits();
            lines = lines.push(
                container(
                    text(fill(
                        s.history_dropped,
                        &[&limits.entries, &(limits.bytes / (1024 * 1024))],
                    ))
                    .size(13)
                    .style(text::secondary),
                )
                .padding(5)
                .center_x(Fill),
            );
        }
        if history.earlier() > 0 {
            lines = lines.push(
                container(
                    button(text(fill(
                        s.show_earlier,
                        &[&history.earlier().min(history.limits().window)],
                    )))
                    .style(button::text)
                    .on_press(Message::ShowEarlier),
                )
                .center_x(Fill),
            );
        }
        // Stripes count from the first entry ever, so they do not flip as the oldest go.
        let first = history.first_shown_ever();
        for (i, entry) in history.shown().enumerate() {
            lines = lines.push(line(entry, first.wrapping_add(i) % 2 == 1, s));
        }
        let conversation = scrollable(lines)
            .id(CONVERSATION)
            .on_scroll(Message::Scrolled)
            .height(Fill)
            .width(Fill);

        let can_send = !self.draft.trim().is_empty() && self.session.is_some();
        let composer = row![
            text_input(s.message_hint, &self.draft)
                .id(MESSAGE_BOX)
                .on_input(Message::Draft)
                .on_submit(Message::Send)
                .padding(10)
                .width(Fill),
            button(text(s.send).align_x(Alignment::Center))
                .padding([10, 24])
                .on_press_maybe(can_send.then_some(Message::Send)),
        ]
        .spacing(6)
        .align_y(Alignment::Center);

        let mut bottom = column![composer].spacing(4);
        if let Some(error) = &self.error {
            bottom = bottom.push(text(error).style(text::danger));
        }

        let mut main = column![conversation].spacing(6).width(Fill);
        if history.unseen() > 0 {
            main = main.push(
                container(
                    button(text(fill(s.new_messages, &[&history.unseen()])))
                        .style(button::secondary)
                        .on_press(Message::JumpToLatest),
                )
                .center_x(Fill),
            );
        }
        let main = main.push(bottom);
        row![main, rule::vertical(1), self.panel(s)]
            .spacing(6)
            .padding(6)
            .into()
    }

    fn panel(&self, s: &'static Strings) -> Element<'_, Message> {
        let list = |peers| peer_list(peers, s);
        let mut panel = column![
            text(fill(s.listening_to, &[&self.listening_to.len()])).size(15),
            list(&self.listening_to),
            space().height(12),
            text(fill(s.listeners, &[&self.listeners.len()])).size(15),
            list(&self.listeners),
        ]
        .spacing(6)
        .width(Length::Fixed(210.0));
        if let Some(port) = self.hosted_tracker {
            panel = panel.push(space().height(12)).push(
                text(fill(s.hosting, &[&port]))
                    .size(13)
                    .style(text::secondary),
            );
        }
        scrollable(panel.padding(6)).height(Fill).into()
    }
}

fn peer_list<'a>(peers: &'a BTreeSet<PeerInfo>, s: &'static Strings) -> Column<'a, Message> {
    if peers.is_empty() {
        return column![text(s.nobody).size(13).style(text::secondary)];
    }
    column(peers.iter().map(|p| {
        column![
            text(&p.username),
            text(p.addr.to_string()).size(12).style(text::secondary)
        ]
        .into()
    }))
    .spacing(6)
}

fn departure(reason: &Departure, s: &Strings) -> String {
    match reason {
        Departure::Left => s.why_left.into(),
        Departure::TimedOut => s.why_timed_out.into(),
        Departure::Closed => s.why_closed.into(),
        Departure::Overflow => s.why_overflow.into(),
        Departure::Error(e) => fill(s.why_error, &[e]),
        Departure::Shutdown => s.why_shutdown.into(),
        other => other.to_string(),
    }
}

/// One line of the conversation, striped like the original.
fn line<'a>(entry: &'a Entry, striped: bool, s: &Strings) -> Element<'a, Message> {
    let time = text(&entry.time).size(11).style(text::secondary);
    let content: Element<'_, Message> = match &entry.kind {
        EntryKind::Own { text: t, delivery } => {
            let mut line = row![space().width(Fill), text(t)];
            // Said beside the message itself: which one reached nobody, which one failed.
            match delivery {
                Delivery::Sent(0) => {
                    line = line.push(text(s.unheard).size(12).style(text::warning))
                }
                Delivery::Failed(why) => {
                    line = line.push(text(fill(s.not_sent, &[why])).size(12).style(text::danger));
                }
                Delivery::Sending | Delivery::Sent(_) => {}
            }
            line.push(time).spacing(8).align_y(Alignment::Center).into()
        }
        EntryKind::Other { from, text: t } => row![
            time,
            text(format!("[{from}] :")).style(text::primary),
            text(t).width(Fill)
        ]
        .spacing(8)
        .align_y(Alignment::Center)
        .into(),
        EntryKind::Notice(n) => row![time, text(n).size(13).style(text::secondary).width(Fill)]
            .spacing(8)
            .align_y(Alignment::Center)
            .into(),
    };
    container(content)
        .padding([5, 10])
        .width(Fill)
        .style(move |theme: &Theme| {
            if striped {
                container::Style {
                    background: Some(theme.extended_palette().background.weakest.color.into()),
                    ..container::Style::default()
                }
            } else {
                container::Style::default()
            }
        })
        .into()
}
