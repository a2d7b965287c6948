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
//! This module holds the screen's state, its messages and their dispatch; the rest is in
//! submodules named for what they hold: `network` (the peer's events), `persist` (the
//! history on disk: stored lines and entries, pages, clearing), `search`, `send`, `peers`
//! ("Add a peer", "Reconnect") and `view` (the widgets).

mod network;
mod peers;
mod persist;
mod search;
mod send;
mod view;

pub use persist::time_of;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;

use iced::widget::operation::{self, RelativeOffset};
use iced::widget::scrollable::Viewport;
use iced::widget::text_editor;
use iced::{Element, Task};
use p2p_core::secure::Fingerprint;
use p2p_core::{PeerInfo, Source};

use crate::data::attention::{Attention, NOTIFY_EVERY};
use crate::data::form::Join;
use crate::data::history::History;
use crate::i18n::{Lang, fill};
use crate::network::Session;
use crate::network::outbox::{Done, Sent};
use crate::store::{Answer, Page, Row, Store};
use persist::entry_of;

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
/// Most addresses whose discovery source is remembered: past it, only those of the peers
/// linked now are kept (a DHT can list many addresses of peers that are gone).
pub const MAX_FOUND: usize = 1024;

/// The chat screen.
#[derive(Debug)]
pub struct Chat {
    session: Option<Session>,
    username: String,
    /// This installation's identity, as the others see it beside the name.
    fingerprint: Fingerprint,
    room: String,
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
    /// How each address was found (tracker, LAN, DHT, by hand, its hello), as the peer's
    /// `Discovered` events said; bounded by [`MAX_FOUND`].
    sources: HashMap<SocketAddr, Source>,
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

impl Chat {
    /// The screen of a peer that has just started, with the past of its conversation when
    /// there is a history, and the window focused or not.
    pub fn new(session: Session, lang: Lang, focused: bool) -> Self {
        let peer = session.peer();
        let request = session.request();
        let mut chat = Chat {
            username: peer.username().to_owned(),
            fingerprint: peer.fingerprint(),
            room: request.room.to_string(),
            addr: peer.local_addr(),
            max_text_bytes: peer.config().limits.max_text_bytes,
            hosted_tracker: session.hosted_tracker_port(),
            manual: matches!(request.join, Join::Manual(_)),
            conversation: session.conversation().to_owned(),
            store: session.store().cloned(),
            // Filled by the events, which the peer keeps from its very start.
            listening_to: BTreeSet::new(),
            listeners: BTreeSet::new(),
            sources: HashMap::new(),
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
        self.sources.clear();
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

    /// Starting over failed: `why` (already in the app's language) is said in the
    /// conversation; "Reconnect" stays offered.
    pub fn restart_failed(&mut self, why: String) -> Task<Message> {
        self.tracker_lost = true;
        self.notice(why)
    }

    /// The user came to read this conversation (clicked its notification): its unread
    /// count is cleared.
    pub fn read(&mut self) {
        self.attention.read();
    }

    /// The running session, until the screen is closed.
    pub fn session(&self) -> Option<&Session> {
        self.session.as_ref()
    }

    /// Hands the session over for closing; the screen no longer talks to the network.
    pub fn take_session(&mut self) -> Option<Session> {
        self.session.take()
    }

    /// The window title: the unread count first, when there is one, then the user with
    /// their identity's fingerprint, the room and the address.
    pub fn title(&self, lang: Lang) -> String {
        let title = fill(
            lang.strings().chat_title,
            &[&self.username, &self.fingerprint, &self.room, &self.addr],
        );
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

    /// This installation's identity fingerprint.
    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }

    /// The peers this peer hears.
    pub fn listening_to(&self) -> &BTreeSet<PeerInfo> {
        &self.listening_to
    }

    /// How the peer at `addr` was found, if its `Discovered` event said so.
    pub fn source(&self, addr: &SocketAddr) -> Option<Source> {
        self.sources.get(addr).copied()
    }

    /// The peers that hear this peer.
    pub fn listeners(&self) -> &BTreeSet<PeerInfo> {
        &self.listeners
    }

    /// Why the last lines could not be saved, if they could not.
    pub fn not_saved(&self) -> Option<&str> {
        self.not_saved.as_deref()
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
            Message::ShowEarlier => self.show_earlier(),
            Message::Earlier(page) => self.earlier(page),
            Message::JumpToLatest => {
                self.history.jump_to_latest();
                self.follow()
            }
            Message::Sent { id, result } => self.sent(id, result),
            Message::Saved { ids, rows } => self.saved(ids, rows),
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
            Message::Search => self.search(),
            Message::Found(rows) => self.found(rows),
            Message::CloseSearch => self.close_search(),
            Message::ClearAsk => {
                self.confirm_clear = true;
                Task::none()
            }
            Message::ClearCancel => {
                self.confirm_clear = false;
                Task::none()
            }
            Message::ClearConfirm => self.clear(),
            Message::Cleared(result) => self.cleared(result),
            Message::AddPeerInput(addr) => {
                self.add_peer = addr;
                Task::none()
            }
            Message::AddPeer => self.add_peer(s),
            Message::Reconnect(addr) => self.connect(addr, s),
            Message::Connected { addr, result } => self.connected(addr, result, s),
            // The root starts over; nothing to do here.
            Message::Restart => Task::none(),
        }
    }

    /// The screen.
    pub fn view(&self, lang: Lang) -> Element<'_, Message> {
        view::view(self, lang.strings())
    }
}
