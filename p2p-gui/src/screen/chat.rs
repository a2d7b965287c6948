//! The chat screen: the conversation, who hears whom, and the message box.
//!
//! The conversation is a [`History`]: bounded in entries and in bytes, with only a window
//! of it laid out. The view follows new messages while the user is at the bottom; while
//! they read older ones it stays put, and what arrives meanwhile is counted in a
//! "N new messages" button under the conversation instead of being laid out.
//!
//! With a history on disk ([`Store`]), the screen opens with the conversation's latest
//! lines, "Show earlier messages" pages back through the database, the search box finds
//! past lines (FTS5), and "Clear this room's history" empties it. Incoming messages are
//! saved by the event bridge before they reach the screen; the lines the screen makes
//! itself (its own messages, notices) are queued to the database without waiting, and a
//! line that could not be saved says so under the box.
//!
//! While the window is not focused, messages from others are counted ([`Attention`]):
//! the count goes in the window title, a divider marks where the user left off, and
//! [`Chat::network`] says when a desktop notification is due.
//!
//! The widgets are in the `view` submodule.

mod view;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Instant;

use iced::widget::operation::{self, RelativeOffset};
use iced::widget::scrollable::Viewport;
use iced::widget::text_editor;
use iced::{Element, Task};
use p2p_core::{Departure, Event, PeerInfo};

use crate::data::attention::{Attention, NOTIFY_EVERY};
use crate::data::form::Join;
use crate::data::history::{Delivery, Entry, EntryKind, History};
use crate::i18n::{Lang, Strings, fill};
use crate::network::outbox::{Done, QueueError, Sent};
use crate::network::{Inbound, PAGE, Session, now_ms};
use crate::notify::Notification;
use crate::store::{self, Answer, Line, Page, Row, Store};

/// The id of the message box.
pub const MESSAGE_BOX: &str = "message";
/// The id of the conversation.
pub const CONVERSATION: &str = "conversation";
/// The id of the search box.
pub const SEARCH_BOX: &str = "search";
/// The id of the "Add a peer" box.
pub const ADD_PEER_BOX: &str = "add-peer";
/// Most search results shown.
pub const MAX_RESULTS: usize = 200;

/// The chat screen.
#[derive(Debug)]
pub struct Chat {
    session: Option<Session>,
    username: String,
    addr: SocketAddr,
    max_text_bytes: usize,
    hosted_tracker: Option<u16>,
    manual: bool,
    conversation: String,
    store: Option<Store>,
    history: History,
    draft: text_editor::Content,
    error: Option<String>,
    /// Why lines could not be saved, until the next one is.
    not_saved: Option<String>,
    listening_to: BTreeSet<PeerInfo>,
    listeners: BTreeSet<PeerInfo>,
    /// Peers listened to by hand that were lost, by address: "Reconnect" offers them.
    lost: BTreeMap<String, String>,
    /// The tracker stopped answering: "Reconnect" offers to start over.
    tracker_lost: bool,
    attention: Attention,
    /// The entry whose text is shown selectable, with a Copy button.
    selected: Option<(usize, text_editor::Content)>,
    search: String,
    found: Option<(String, Answer<Vec<Row>>)>,
    confirm_clear: bool,
    add_peer: String,
    loading_earlier: bool,
}

/// What happened on the chat screen.
#[derive(Debug, Clone)]
pub enum Message {
    /// An edit in the message box.
    Edit(text_editor::Action),
    /// The message box's text replaced (as pasting a whole text would).
    Draft(String),
    /// Pressed Enter or Send.
    Send,
    /// The conversation was scrolled.
    Scrolled(Viewport),
    /// Asked for earlier messages.
    ShowEarlier,
    /// A page of earlier lines came from the history.
    Earlier(Answer<Page>),
    /// Asked for the newest messages, after reading older ones.
    JumpToLatest,
    /// The sender thread sent (or could not send) the message of entry `id`.
    Sent {
        /// The entry of the message in the history.
        id: usize,
        /// To how many listeners, or why not.
        result: Sent,
    },
    /// Lines this screen made were saved as these rows (or not).
    Saved {
        /// Their entries.
        ids: Vec<usize>,
        /// Their rows, or why they were not saved.
        rows: Answer<Vec<i64>>,
    },
    /// Clicked a line: its text becomes selectable, with a Copy button.
    Select(usize),
    /// Selecting in the selected line's text.
    Selecting(text_editor::Action),
    /// Copy the selected line's text (or the part selected in it) to the clipboard.
    Copy,
    /// Close the selected line.
    Unselect,
    /// Typed in the search box.
    SearchInput(String),
    /// Pressed Enter in the search box.
    Search,
    /// Search results.
    Found(Answer<Vec<Row>>),
    /// Closed the search results.
    CloseSearch,
    /// Asked to clear the room's history.
    ClearAsk,
    /// Confirmed clearing it.
    ClearConfirm,
    /// Did not clear it after all.
    ClearCancel,
    /// The history was cleared (this many lines), or why not.
    Cleared(Answer<usize>),
    /// Typed in "Add a peer".
    AddPeerInput(String),
    /// Pressed Add (or Enter in the box).
    AddPeer,
    /// Listen again to a peer that was lost.
    Reconnect(String),
    /// A connect asked for ended.
    Connected {
        /// The address.
        addr: String,
        /// The peer's username, or why it failed.
        result: Done<String>,
    },
    /// Start over with the same settings (after the tracker was lost). The root does it.
    Restart,
}

/// The local time of a stored line: `HH:MM` today, with the date before it otherwise.
pub fn time_of(at_ms: i64) -> String {
    use chrono::{Local, TimeZone};
    let Some(at) = Local.timestamp_millis_opt(at_ms).single() else {
        return String::new();
    };
    if at.date_naive() == Local::now().date_naive() {
        at.format("%H:%M").to_string()
    } else {
        at.format("%Y-%m-%d %H:%M").to_string()
    }
}

fn entry_of(row: Row) -> Entry {
    let Line {
        at_ms,
        kind,
        sender,
        text,
    } = row.line;
    let kind = match kind {
        store::Kind::Own => EntryKind::Own {
            text,
            delivery: Delivery::Sent(1),
        },
        store::Kind::Other => EntryKind::Other { from: sender, text },
        store::Kind::Notice => EntryKind::Notice(text),
    };
    Entry {
        time: time_of(at_ms),
        kind,
        row: Some(row.id),
    }
}

fn line_of(entry: &Entry, at_ms: i64) -> Line {
    let (kind, sender) = match &entry.kind {
        EntryKind::Own { .. } => (store::Kind::Own, String::new()),
        EntryKind::Other { from, .. } => (store::Kind::Other, from.clone()),
        EntryKind::Notice(_) => (store::Kind::Notice, String::new()),
    };
    Line {
        at_ms,
        kind,
        sender,
        text: entry.text().to_owned(),
    }
}

/// Waits for a reply off the UI thread and turns it into a message.
fn answer<T: Send + 'static>(
    reply: iced::futures::channel::oneshot::Receiver<Answer<T>>,
    to: impl Fn(Answer<T>) -> Message + Send + 'static,
) -> Task<Message> {
    Task::future(async move {
        reply
            .await
            .unwrap_or_else(|_| Err("the history is closed".to_owned()))
    })
    .map(to)
}

impl Chat {
    /// The screen of a peer that has just started, with the past of its conversation when
    /// there is a history, and the window focused or not.
    pub fn new(session: Session, lang: Lang, focused: bool) -> Self {
        let peer = session.peer();
        let request = session.request();
        let mut chat = Chat {
            username: peer.username().to_owned(),
            addr: peer.local_addr(),
            max_text_bytes: peer.config().limits.max_text_bytes,
            hosted_tracker: session.hosted_tracker_port(),
            manual: matches!(request.join, Join::Manual(_)),
            conversation: session.conversation().to_owned(),
            store: session.store().cloned(),
            // Filled by the events, which the peer keeps from its very start.
            listening_to: BTreeSet::new(),
            listeners: BTreeSet::new(),
            lost: BTreeMap::new(),
            tracker_lost: false,
            history: History::default(),
            draft: text_editor::Content::new(),
            error: None,
            not_saved: None,
            attention: Attention::new(focused, NOTIFY_EVERY),
            selected: None,
            search: String::new(),
            found: None,
            confirm_clear: false,
            add_peer: String::new(),
            loading_earlier: false,
            session: None,
        };
        match session.past() {
            Some(Ok(page)) => {
                let rows = page.rows.clone();
                chat.history
                    .prepend(rows.into_iter().map(entry_of).collect(), page.more);
            }
            Some(Err(e)) => chat.not_saved = Some(e.clone()),
            None => {}
        }
        chat.session = Some(session);
        let s = lang.strings();
        let _ = chat.notice(fill(s.welcome, &[&chat.username, &chat.addr]));
        chat
    }

    /// The same conversation on a new session (after a restart): the lines stay.
    pub fn resume(&mut self, session: Session, lang: Lang) -> Task<Message> {
        self.addr = session.peer().local_addr();
        self.listening_to.clear();
        self.listeners.clear();
        self.lost.clear();
        self.tracker_lost = false;
        self.session = Some(session);
        let s = lang.strings();
        let welcome = fill(s.welcome, &[&self.username, &self.addr]);
        self.notice(welcome)
    }

    /// The history could not be opened: the screen says so, once.
    pub fn history_off(&mut self, why: String, lang: Lang) {
        self.not_saved = Some(fill(lang.strings().history_off, &[&why]));
    }

    /// Starting over failed: said in the conversation; "Reconnect" stays offered.
    pub fn restart_failed(&mut self, why: String, _lang: Lang) -> Task<Message> {
        self.tracker_lost = true;
        self.notice(why)
    }

    /// The running session, until the screen is closed.
    pub fn session(&self) -> Option<&Session> {
        self.session.as_ref()
    }

    /// Hands the session over for closing; the screen no longer talks to the network.
    pub fn take_session(&mut self) -> Option<Session> {
        self.session.take()
    }

    /// The window title: the unread count first, when there is one.
    pub fn title(&self, lang: Lang) -> String {
        let title = fill(lang.strings().chat_title, &[&self.username, &self.addr]);
        match self.attention.unread() {
            0 => title,
            n => format!("({n}) {title}"),
        }
    }

    /// The conversation.
    pub fn history(&self) -> &History {
        &self.history
    }

    /// The unread state.
    pub fn attention(&self) -> &Attention {
        &self.attention
    }

    /// The window gained or lost the focus.
    pub fn focus(&mut self, focused: bool) {
        self.attention.focus(focused);
    }

    /// The peers this peer hears.
    pub fn listening_to(&self) -> &BTreeSet<PeerInfo> {
        &self.listening_to
    }

    /// The peers that hear this peer.
    pub fn listeners(&self) -> &BTreeSet<PeerInfo> {
        &self.listeners
    }

    /// Why the last lines could not be saved, if they could not.
    pub fn not_saved(&self) -> Option<&str> {
        self.not_saved.as_deref()
    }

    /// Adds a line the screen made and queues it for the history without waiting.
    fn record(&mut self, kind: EntryKind) -> (usize, Task<Message>) {
        let entry = Entry::new(chrono::Local::now().format("%H:%M").to_string(), kind);
        let line = line_of(&entry, now_ms());
        let id = self.history.push(entry);
        let Some(store) = &self.store else {
            return (id, Task::none());
        };
        match store.try_append(&self.conversation, vec![line]) {
            Ok(reply) => {
                let task = answer(reply, move |rows| Message::Saved {
                    ids: vec![id],
                    rows,
                });
                (id, task)
            }
            Err(busy) => {
                // Shown, not lost: the line is on screen, and the screen says it is not
                // saved.
                self.not_saved = Some(busy.to_string());
                (id, Task::none())
            }
        }
    }

    fn notice(&mut self, notice: String) -> Task<Message> {
        self.record(EntryKind::Notice(notice)).1
    }

    fn knows(&self, peer: &PeerInfo) -> bool {
        self.listening_to.contains(peer) || self.listeners.contains(peer)
    }

    /// Takes in a batch of events from the peer, saved or not; returns what to do and the
    /// notification that is due, if one is (when `notify` allows them).
    pub fn network(
        &mut self,
        inbound: Inbound,
        lang: Lang,
        notify: bool,
        now: Instant,
    ) -> (Task<Message>, Option<Notification>) {
        let s = lang.strings();
        let mut tasks = Vec::new();
        let mut notification = None;
        let mut rows = match inbound.saved {
            Ok(rows) => {
                self.not_saved = None;
                rows.into_iter()
            }
            Err(e) => {
                self.not_saved = Some(e);
                Vec::new().into_iter()
            }
        };
        let time = chrono::Local::now().format("%H:%M").to_string();
        for event in inbound.events {
            match event {
                Event::Message { from, text } => {
                    let text = text.to_string();
                    let mut entry = Entry::new(
                        time.clone(),
                        EntryKind::Other {
                            from: from.username.clone(),
                            text: text.clone(),
                        },
                    );
                    entry.row = rows.next();
                    let id = self.history.push(entry);
                    if self.attention.message(id, now, notify) {
                        notification = Some(Notification::message(&from.username, &text));
                    }
                }
                Event::ListeningTo(peer) => {
                    self.lost.remove(&peer.addr.to_string());
                    if !self.knows(&peer) {
                        tasks.push(self.notice(fill(s.joined, &[&peer.username, &peer.addr])));
                    }
                    self.listening_to.insert(peer);
                }
                Event::ListenerJoined(peer) => {
                    if !self.knows(&peer) {
                        tasks.push(self.notice(fill(s.joined, &[&peer.username, &peer.addr])));
                    }
                    self.listeners.insert(peer);
                }
                Event::StoppedListeningTo { peer, reason } => {
                    self.listening_to.remove(&peer);
                    if self.manual && !matches!(reason, Departure::Shutdown) {
                        self.lost
                            .insert(peer.addr.to_string(), peer.username.clone());
                    }
                    if !self.knows(&peer) {
                        let why = departure(&reason, s);
                        tasks.push(self.notice(fill(s.left, &[&peer.username, &why])));
                    }
                }
                Event::ListenerLeft { peer, reason } => {
                    self.listeners.remove(&peer);
                    if !self.knows(&peer) {
                        let why = departure(&reason, s);
                        tasks.push(self.notice(fill(s.left, &[&peer.username, &why])));
                    }
                }
                Event::ConnectFailed { addr, reason } => {
                    tasks.push(self.notice(fill(s.connect_failed, &[&addr, &reason])));
                }
                Event::Unreachable { addr, reason } => {
                    tasks.push(self.notice(fill(s.unreachable, &[&addr, &reason])));
                }
                Event::TrackerUnreachable { reason } => {
                    self.tracker_lost = true;
                    tasks.push(self.notice(fill(s.tracker_unreachable, &[&reason])));
                }
                other => log::debug!("event not shown: {other:?}"),
            }
        }
        tasks.push(self.follow());
        (Task::batch(tasks), notification)
    }

    /// Keeps the view at the newest entry while the user is at the bottom.
    fn follow(&self) -> Task<Message> {
        if self.history.following() {
            operation::snap_to(CONVERSATION, RelativeOffset::END)
        } else {
            Task::none()
        }
    }

    /// The draft as typed.
    pub fn draft(&self) -> String {
        self.draft.text()
    }

    /// Handles what the user did.
    pub fn update(&mut self, message: Message, lang: Lang) -> Task<Message> {
        let s = lang.strings();
        match message {
            Message::Edit(action) => {
                if action.is_edit() {
                    self.error = None;
                }
                self.draft.perform(action);
                Task::none()
            }
            Message::Draft(draft) => {
                self.draft = text_editor::Content::with_text(&draft);
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
                if self.history.earlier() > 0 {
                    self.history.show_earlier();
                    return Task::none();
                }
                let Some(store) = &self.store else {
                    return Task::none();
                };
                if self.loading_earlier {
                    return Task::none();
                }
                match store.page(&self.conversation, self.history.oldest_row(), PAGE) {
                    Ok(reply) => {
                        self.loading_earlier = true;
                        answer(reply, Message::Earlier)
                    }
                    Err(busy) => {
                        self.error = Some(busy.to_string());
                        Task::none()
                    }
                }
            }
            Message::Earlier(page) => {
                self.loading_earlier = false;
                match page {
                    Ok(page) => {
                        let entries = page.rows.into_iter().map(entry_of).collect();
                        self.history.prepend(entries, page.more);
                        self.history.stop_following();
                    }
                    Err(e) => self.error = Some(e),
                }
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
            Message::Saved { ids, rows } => {
                match rows {
                    Ok(rows) => {
                        for (id, row) in ids.into_iter().zip(rows) {
                            self.history.set_row(id, row);
                        }
                        self.not_saved = None;
                    }
                    Err(e) => self.not_saved = Some(e),
                }
                Task::none()
            }
            Message::Select(id) => {
                self.selected = self
                    .history
                    .get(id)
                    .map(|entry| (id, text_editor::Content::with_text(entry.text())));
                Task::none()
            }
            Message::Selecting(action) => {
                // Read-only: selection and moves only, never an edit.
                if let Some((_, content)) = &mut self.selected
                    && !action.is_edit()
                {
                    content.perform(action);
                }
                Task::none()
            }
            Message::Copy => match &self.selected {
                Some((_, content)) => {
                    let text = content.selection().unwrap_or_else(|| content.text());
                    iced::clipboard::write(text)
                }
                None => Task::none(),
            },
            Message::Unselect => {
                self.selected = None;
                Task::none()
            }
            Message::SearchInput(search) => {
                self.search = search;
                Task::none()
            }
            Message::Search => {
                let typed = self.search.trim().to_owned();
                let Some(store) = &self.store else {
                    return Task::none();
                };
                if typed.is_empty() {
                    self.found = None;
                    return Task::none();
                }
                match store.search(&self.conversation, &typed, MAX_RESULTS) {
                    Ok(reply) => answer(reply, Message::Found),
                    Err(busy) => {
                        self.found = Some((typed, Err(busy.to_string())));
                        Task::none()
                    }
                }
            }
            Message::Found(rows) => {
                self.found = Some((self.search.trim().to_owned(), rows));
                Task::none()
            }
            Message::CloseSearch => {
                self.found = None;
                self.search.clear();
                Task::none()
            }
            Message::ClearAsk => {
                self.confirm_clear = true;
                Task::none()
            }
            Message::ClearCancel => {
                self.confirm_clear = false;
                Task::none()
            }
            Message::ClearConfirm => {
                self.confirm_clear = false;
                let Some(store) = &self.store else {
                    return Task::none();
                };
                match store.clear(&self.conversation) {
                    Ok(reply) => answer(reply, Message::Cleared),
                    Err(busy) => {
                        self.error = Some(busy.to_string());
                        Task::none()
                    }
                }
            }
            Message::Cleared(result) => match result {
                Ok(_) => {
                    self.history = History::new(self.history.limits());
                    self.selected = None;
                    self.found = None;
                    Task::none()
                }
                Err(e) => {
                    self.error = Some(e);
                    Task::none()
                }
            },
            Message::AddPeerInput(addr) => {
                self.add_peer = addr;
                Task::none()
            }
            Message::AddPeer => {
                let addr = self.add_peer.trim().to_owned();
                match crate::data::form::check_peer(&addr) {
                    Ok(addr) => {
                        self.add_peer.clear();
                        self.connect(addr, s)
                    }
                    Err(e) => {
                        self.error = Some(crate::screen::connect::describe_field_error(&e, s));
                        Task::none()
                    }
                }
            }
            Message::Reconnect(addr) => self.connect(addr, s),
            Message::Connected { addr, result } => match result {
                Ok(_) => {
                    self.lost.remove(&addr);
                    Task::none()
                }
                Err(reason) => self.notice(fill(s.connect_failed, &[&addr, &reason])),
            },
            // The root starts over; nothing to do here.
            Message::Restart => Task::none(),
        }
    }

    fn connect(&mut self, addr: String, s: &Strings) -> Task<Message> {
        let Some(session) = &self.session else {
            return Task::none();
        };
        match session.connect(addr.clone()) {
            Ok(reply) => Task::future(async move {
                let result = reply
                    .await
                    .unwrap_or_else(|_| Err("the session was closed".to_owned()));
                Message::Connected { addr, result }
            }),
            Err(e) => {
                self.error = Some(fill(s.not_sent, &[&e]));
                Task::none()
            }
        }
    }

    fn send(&mut self, s: &Strings) -> Task<Message> {
        let draft = self.draft.text();
        let text = draft.trim_end_matches(['\r', '\n']);
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
            Ok(reply) => {
                let text = text.to_owned();
                self.draft = text_editor::Content::new();
                self.error = None;
                self.history.follow();
                self.attention.caught_up();
                let (id, saved) = self.record(EntryKind::Own {
                    text,
                    delivery: Delivery::Sending,
                });
                let result = Task::future(async move {
                    reply
                        .await
                        .unwrap_or_else(|_| Err("the session was closed".to_owned()))
                })
                .map(move |result| Message::Sent { id, result });
                Task::batch([self.follow(), result, saved])
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
        view::view(self, lang.strings())
    }
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
