//! The bridge between p2p-core and the UI: starting a peer off the UI thread, and the
//! subscription that carries the peer's events into `update`.
//!
//! Nothing here blocks the UI: [`start`] runs in a thread of its own and answers with a
//! message, [`Session::send`] hands the text to the session's sender thread
//! ([`outbox`]), [`Session::connect`] hands an address to its connector thread, and
//! [`Session::events`] reads the peer's event channel in a thread of its own (the bridge),
//! handing the events over in batches through a small bounded channel (so a flood of
//! messages waits in p2p-core's bounded queue, not in memory here).
//!
//! With a history ([`Store`]), the bridge writes each batch's messages to it and waits for
//! the commit *before* handing the batch to the window: a message on screen is on disk.

use std::hash::{Hash, Hasher};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use iced::futures::channel::{mpsc, oneshot};
use iced::futures::{SinkExt, Stream};
use iced::{Subscription, Task};
use p2p_core::dht::DhtConfig;
use p2p_core::secure::Identity;
use p2p_core::{Discovery, Event, Events, Mode, Peer, PeerConfig, Resolver};
use tracker::{Tracker, TrackerConfig};

use crate::data::form::{Join, Request};
use crate::store::{self, Answer, Line, Page, Store};
use crate::threads::Threads;

pub mod outbox;

use outbox::{Done, Outbox, QueueError, Sent};

/// Lines of the past loaded when a conversation opens (and per "Show earlier messages").
pub const PAGE: usize = crate::data::history::WINDOW;

/// Most events handed to the UI in one message.
pub const MAX_BATCH: usize = 256;

/// How long closing waits for messages still queued to be sent before the peer leaves.
pub const CLOSE_DRAIN: Duration = Duration::from_secs(1);

/// How long closing waits for the connector thread once the peer is closed. A connect
/// that is resolving a name cannot be interrupted (the system's lookup takes no stop
/// signal): past this bound the thread is logged and left to end on its own.
pub const CONNECTOR_JOIN: Duration = Duration::from_secs(1);

/// A running peer (and the tracker it hosts, if any), with the threads that send and
/// connect for it, and where its conversation is kept.
#[derive(Debug, Clone)]
pub struct Session {
    id: u64,
    peer: Arc<Peer>,
    tracker: Option<Arc<Tracker>>,
    outbox: Arc<Outbox>,
    connector: Arc<Outbox<String>>,
    request: Request,
    conversation: String,
    store: Option<Store>,
    past: Option<Answer<Page>>,
    /// Where the event bridge's thread is kept (the app's set, once [`start`] made it).
    threads: Threads,
}

/// A batch of the peer's events, as the bridge hands it to the window, with what became
/// of its messages in the history: the row ids of its [`Event::Message`]s, in order (none
/// without a history), or why they could not be saved.
#[derive(Debug, Clone)]
pub struct Inbound {
    /// The events.
    pub events: Vec<Event>,
    /// The messages' row ids, or why they were not saved.
    pub saved: Answer<Vec<i64>>,
}

impl From<Vec<Event>> for Inbound {
    /// Events that were not saved because there is no history.
    fn from(events: Vec<Event>) -> Self {
        Inbound {
            events,
            saved: Ok(Vec::new()),
        }
    }
}

/// The current time, in milliseconds since the Unix epoch (what the history stores).
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Why starting failed, in terms the connect screen translates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartError {
    /// The identity key of the data directory cannot be read or created (a damaged key file
    /// is left as it is): the reason, naming the file.
    Identity(String),
    /// The tracker could not be hosted: port, OS reason.
    HostTracker(u16, String),
    /// The peer could not start.
    Peer(PeerError),
}

/// A p2p-core start failure, reduced to what the user needs to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerError {
    /// The port cannot be listened on.
    Bind(String, String),
    /// The tracker is unreachable.
    Tracker(String, String),
    /// A peer cannot be reached.
    Connect(String, String),
    /// A peer answered but refused.
    Refused(String, String),
    /// A name does not resolve.
    Resolve(String, String),
    /// The address is this peer itself.
    SelfConnection(String),
    /// The peer at the address holds another room key: room, address.
    WrongPassphrase(String, String),
    /// Anything else.
    Other(String),
}

impl From<p2p_core::Error> for PeerError {
    fn from(error: p2p_core::Error) -> Self {
        use p2p_core::Error as E;
        match error {
            E::Bind { addr, source } => PeerError::Bind(addr.to_string(), source.to_string()),
            E::Tracker { addr, reason } => PeerError::Tracker(addr, reason),
            E::Connect { addr, source } => PeerError::Connect(addr, source.to_string()),
            E::Refused { addr, reason } => PeerError::Refused(addr, reason),
            E::Resolve { addr, reason } => PeerError::Resolve(addr, reason),
            E::SelfConnection(addr) => PeerError::SelfConnection(addr),
            E::WrongPassphrase { room, addr } => PeerError::WrongPassphrase(room, addr),
            other => PeerError::Other(other.to_string()),
        }
    }
}

fn next_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

impl Session {
    /// Starts the tracker (when hosting) and the peer, blocking: call it off the UI thread.
    /// With a data directory, the peer's identity key is the one kept there (created at
    /// the first start) and so are the known peers; without one, a key of this run only.
    /// With a history, its latest page is read first, before any new line can be written.
    pub fn start_blocking(
        request: Request,
        store: Option<Store>,
        data_dir: Option<&Path>,
    ) -> Result<Session, StartError> {
        Self::start_resolving(request, store, data_dir, Resolver::system())
    }

    /// [`Session::start_blocking`], with host names resolved by `resolver`.
    fn start_resolving(
        request: Request,
        store: Option<Store>,
        data_dir: Option<&Path>,
        resolver: Resolver,
    ) -> Result<Session, StartError> {
        // Loaded at each start (a small file): a key file damaged meanwhile is reported on
        // the connect screen, never replaced.
        let identity = data_dir
            .map(|dir| {
                Identity::load_or_create(dir).map_err(|e| StartError::Identity(e.to_string()))
            })
            .transpose()?;
        let conversation = request.conversation_key();
        let past = store
            .as_ref()
            .map(|store| store.latest_blocking(&conversation, PAGE));
        let mut config = PeerConfig::new(request.username.clone());
        config.identity = identity;
        config.data_dir = data_dir.map(Path::to_path_buf);
        config.bind_addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), request.port);
        config.advertise_ip = request.ip;
        config.room = request.room.clone();
        config.passphrase = request.passphrase.clone();
        config.resolver = resolver;
        let mut tracker = None;
        // The DHT goes with the tracker or the LAN when asked, or alone on its tab.
        let dht = request.dht.clone().map(|bootstrap| DhtConfig {
            bootstrap,
            ..DhtConfig::default()
        });
        let discover = |tracker: Option<String>, lan: bool| {
            Mode::Discover(Discovery {
                tracker,
                lan,
                dht: dht.clone(),
            })
        };
        config.mode = match request.join.clone() {
            Join::Alone => Mode::Alone,
            Join::Manual(addrs) => Mode::Manual(addrs),
            Join::Tracker(addr) => discover(Some(addr), false),
            Join::Lan => discover(None, true),
            Join::Dht => discover(None, false),
            Join::HostTracker(port) => {
                let hosted = Tracker::start(TrackerConfig {
                    bind_addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port),
                    ..TrackerConfig::default()
                })
                .map_err(|e| StartError::HostTracker(port, e.to_string()))?;
                // Over loopback: the tracker lists this peer to peers on other hosts at its
                // own address of their connections, so nothing needs typing here.
                let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
                tracker = Some(Arc::new(hosted));
                discover(Some(addr.to_string()), false)
            }
        };
        let peer = Arc::new(Peer::start(config).map_err(|e| StartError::Peer(e.into()))?);
        let sender = Arc::clone(&peer);
        // The port names the thread, so that each session's sender can be told apart
        // (within the 15 bytes Linux keeps of a thread's name).
        let outbox = Outbox::spawn(
            format!("gui-send-{}", peer.local_addr().port()),
            move |text| sender.send(text).map_err(|e| e.to_string()),
        )
        .map_err(|e| StartError::Peer(PeerError::Other(e.to_string())))?;
        let connecting = Arc::clone(&peer);
        let connector = Outbox::spawn(
            format!("gui-conn-{}", peer.local_addr().port()),
            move |addr| {
                connecting
                    .connect(addr)
                    .map(|info| info.username)
                    .map_err(|e| e.to_string())
            },
        )
        .map_err(|e| StartError::Peer(PeerError::Other(e.to_string())))?;
        Ok(Session {
            id: next_id(),
            peer,
            tracker,
            outbox: Arc::new(outbox),
            connector: Arc::new(connector),
            request,
            conversation,
            store,
            past,
            threads: Threads::default(),
        })
    }

    /// Listens to one more peer at `addr`, on the session's connector thread; the receiver
    /// answers with its username, or why it failed.
    pub fn connect(&self, addr: String) -> Result<oneshot::Receiver<Done<String>>, QueueError> {
        self.connector.try_send(addr)
    }

    /// What the session was started with.
    pub fn request(&self) -> &Request {
        &self.request
    }

    /// The name its conversation is kept under ([`Request::conversation_key`]).
    pub fn conversation(&self) -> &str {
        &self.conversation
    }

    /// The history, if there is one.
    pub fn store(&self) -> Option<&Store> {
        self.store.as_ref()
    }

    /// The conversation's latest lines as they were before the session started (`None`
    /// without a history).
    pub fn past(&self) -> Option<&Answer<Page>> {
        self.past.as_ref()
    }

    /// Queues `text` for the session's sender thread, without waiting; the receiver
    /// answers with the number of listeners it was handed to, or why it was not sent.
    pub fn send(&self, text: String) -> Result<oneshot::Receiver<Sent>, QueueError> {
        self.outbox.try_send(text)
    }

    /// The running peer.
    pub fn peer(&self) -> &Peer {
        &self.peer
    }

    /// The port of the tracker this app hosts, if it hosts one.
    pub fn hosted_tracker_port(&self) -> Option<u16> {
        self.tracker.as_ref().map(|t| t.local_addr().port())
    }

    /// Leaves the network: sends what is still queued (waiting up to [`CLOSE_DRAIN`] for
    /// it), tells the listeners and the tracker, and stops and joins the peer's threads and
    /// the sender and connector threads; once the last clone of the session is dropped,
    /// the hosted tracker's threads are joined too. Blocks for a few seconds at most, plus
    /// however long `Peer::send` may still wait for a slow listener: a connector stuck in
    /// a name lookup is waited for [`CONNECTOR_JOIN`], then logged and left.
    pub fn close(self) {
        if !self.outbox.stop(CLOSE_DRAIN) {
            log::warn!("messages were still being sent after {CLOSE_DRAIN:?}: leaving anyway");
        }
        self.connector.stop(Duration::ZERO);
        // A send still waiting for a slow listener ends once the peer is closed, and so
        // does a connect under way, unless it is still resolving a name.
        self.peer.close();
        self.outbox.join();
        self.connector.join_within(CONNECTOR_JOIN);
    }

    /// The subscription that delivers this peer's events, in batches, each saved in the
    /// history first.
    pub fn events(&self) -> Subscription<Inbound> {
        Subscription::run_with(
            Inbox {
                id: self.id,
                events: self.peer.events().clone(),
                store: self.store.clone(),
                conversation: self.conversation.clone(),
                threads: self.threads.clone(),
            },
            inbox_stream,
        )
    }
}

/// Starts a session off the UI thread, in a thread of `threads` (where the session's
/// event bridge will run too); the task answers once with the result.
pub fn start(
    request: Request,
    store: Option<Store>,
    data_dir: Option<PathBuf>,
    threads: &Threads,
) -> Task<Result<Session, StartError>> {
    let (tx, rx) = oneshot::channel();
    let kept = threads.clone();
    let spawned = threads.spawn("gui-start", move || {
        let started =
            Session::start_blocking(request, store, data_dir.as_deref()).map(|mut session| {
                session.threads = kept;
                session
            });
        let _ = tx.send(started);
    });
    if let Err(e) = spawned {
        return Task::done(Err(StartError::Peer(PeerError::Other(e.to_string()))));
    }
    Task::future(async move {
        rx.await
            .unwrap_or_else(|_| Err(StartError::Peer(PeerError::Other("start failed".into()))))
    })
}

/// Closes a session off the UI thread, in a thread of `threads`; the task ends once the
/// peer has left and every thread it started (and the hosted tracker's) has been joined
/// (see [`Session::close`] for the one that may be left).
pub fn close(session: Session, threads: &Threads) -> Task<()> {
    let (tx, rx) = oneshot::channel();
    let spawned = threads.spawn("gui-close", move || {
        session.close();
        let _ = tx.send(());
    });
    if let Err(e) = spawned {
        log::error!("cannot start the closing thread: {e}");
        return Task::none();
    }
    Task::future(async move {
        let _ = rx.await;
    })
}

/// What the subscription is keyed by: the session's identity only.
#[derive(Clone)]
struct Inbox {
    id: u64,
    events: Events,
    store: Option<Store>,
    conversation: String,
    threads: Threads,
}

impl Hash for Inbox {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.id.hash(state);
    }
}

/// How often the reading thread checks that the UI still listens while the peer is quiet.
const IDLE_CHECK: Duration = Duration::from_millis(250);

fn inbox_stream(inbox: &Inbox) -> impl Stream<Item = Inbound> + use<> {
    let inbox = inbox.clone();
    iced::stream::channel(4, async move |output: mpsc::Sender<Inbound>| {
        let threads = inbox.threads.clone();
        let spawned = threads.spawn("gui-events", move || forward(&inbox, output));
        if let Err(e) = spawned {
            log::error!("cannot start the event reader: {e}");
        }
    })
}

/// Writes the messages of `events` to the history and waits for the commit.
fn save(inbox: &Inbox, events: &[Event]) -> Answer<Vec<i64>> {
    let Some(store) = &inbox.store else {
        return Ok(Vec::new());
    };
    let at_ms = now_ms();
    let lines: Vec<Line> = events
        .iter()
        .filter_map(|event| match event {
            Event::Message { from, text } => Some(Line {
                at_ms,
                kind: store::Kind::Other,
                sender: from.username.clone(),
                text: text.to_string(),
            }),
            _ => None,
        })
        .collect();
    if lines.is_empty() {
        return Ok(Vec::new());
    }
    store.append_blocking(&inbox.conversation, lines)
}

/// Hands the peer's events to the UI, each batch saved first, until the peer is gone or
/// the UI stops listening.
fn forward(inbox: &Inbox, mut output: mpsc::Sender<Inbound>) {
    use crossbeam_channel::RecvTimeoutError;
    let events = &inbox.events;
    loop {
        let first = match events.recv_timeout(IDLE_CHECK) {
            Ok(event) => event,
            Err(RecvTimeoutError::Timeout) if output.is_closed() => return,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        let mut batch = Vec::with_capacity(16);
        batch.push(first);
        batch.extend(events.try_iter().take(MAX_BATCH - 1));
        let saved = save(inbox, &batch);
        let inbound = Inbound {
            events: batch,
            saved,
        };
        if iced::futures::executor::block_on(output.send(inbound)).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {

    use std::thread;

    use iced::futures::StreamExt;
    use iced::futures::executor::block_on;

    use super::*;
    use crate::test_support::{threads_named, wait_until};

    fn alone_request(name: &str) -> Request {
        Request {
            username: name.into(),
            ip: Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            room: p2p_core::RoomName::lobby(),
            passphrase: None,
            port: 0,
            join: Join::Alone,
            dht: None,
        }
    }

    fn alone(name: &str) -> Session {
        Session::start_blocking(alone_request(name), None, None).expect("starts")
    }

    #[test]
    fn the_bridge_delivers_events_and_its_thread_ends_with_the_subscription_or_the_peer() {
        let before = threads_named("gui-events");
        let alice = alone("alice");
        let bob = alone("bob");
        let inbox = Inbox {
            id: alice.id,
            events: alice.peer().events().clone(),
            store: None,
            conversation: String::new(),
            threads: Threads::default(),
        };
        let mut stream = Box::pin(inbox_stream(&inbox));
        alice
            .peer()
            .connect(&bob.peer().local_addr().to_string())
            .expect("alice hears bob");
        for i in 0..1000 {
            bob.peer().send(&format!("m{i}")).expect("send");
        }
        let mut texts = Vec::new();
        while texts.len() < 1000 {
            let batch = block_on(stream.next()).expect("a batch").events;
            assert!(batch.len() <= MAX_BATCH);
            texts.extend(batch.into_iter().filter_map(|e| match e {
                Event::Message { text, .. } => Some(text.to_string()),
                _ => None,
            }));
        }
        let expected: Vec<String> = (0..1000).map(|i| format!("m{i}")).collect();
        assert_eq!(texts, expected);
        assert_eq!(threads_named("gui-events"), before + 1);

        // The UI drops the subscription: the thread notices and ends.
        drop(stream);
        wait_until(|| threads_named("gui-events") == before);

        // The peer goes away while the subscription lives: the thread ends too.
        let stream = Box::pin(inbox_stream(&Inbox {
            id: bob.id,
            events: bob.peer().events().clone(),
            store: None,
            conversation: String::new(),
            threads: Threads::default(),
        }));
        let mut stream = stream;
        drop(alice);
        let rest: Vec<Vec<Event>> = block_on(async {
            let mut all = Vec::new();
            // Close bob: his channel disconnects once the peer is dropped.
            drop(bob);
            while let Some(batch) = stream.next().await {
                all.push(batch.events);
            }
            all
        });
        assert!(
            rest.iter()
                .flatten()
                .all(|e| !matches!(e, Event::Message { .. }))
        );
        wait_until(|| threads_named("gui-events") == before);
    }

    #[test]
    fn closing_waits_only_so_long_for_a_connector_stuck_in_a_name_lookup() {
        // A lookup that hangs, as the system's does when the name server does not answer.
        let (entered_tx, entered) = crossbeam_channel::bounded::<()>(1);
        let (release, hang) = crossbeam_channel::bounded::<()>(0);
        let resolver = Resolver::new(move |addr| {
            if addr.starts_with("stuck.invalid") {
                let _ = entered_tx.try_send(());
                let _ = hang.recv();
                return Err(std::io::Error::other("no answer"));
            }
            std::net::ToSocketAddrs::to_socket_addrs(addr).map(Iterator::collect)
        });
        let session =
            Session::start_resolving(alone_request("alice"), None, None, resolver).expect("starts");
        let connector = format!("gui-conn-{}", session.peer().local_addr().port());
        let answer = session.connect("stuck.invalid:1".into()).expect("queued");
        entered
            .recv_timeout(Duration::from_secs(10))
            .expect("the lookup starts");

        // Close returns within its bound; the stuck thread is left, and ends once its
        // lookup returns.
        let (closed_tx, closed) = crossbeam_channel::bounded::<()>(1);
        let closing = thread::spawn(move || {
            session.close();
            let _ = closed_tx.send(());
        });
        let returned = closed.recv_timeout(CLOSE_DRAIN + CONNECTOR_JOIN + Duration::from_secs(8));
        drop(release);
        closing.join().expect("close");
        assert!(returned.is_ok(), "close waited for the stuck lookup");
        assert!(block_on(answer).expect("answered").is_err());
        wait_until(|| threads_named(&connector) == 0);
    }

    #[test]
    fn the_bridge_commits_a_batch_before_handing_it_over() {
        let dir = tempfile::tempdir().expect("dir");
        let store = Store::open(dir.path()).expect("store");
        let alice = alone("alice");
        let bob = alone("bob");
        alice
            .peer()
            .connect(&bob.peer().local_addr().to_string())
            .expect("alice hears bob");
        let mut stream = Box::pin(inbox_stream(&Inbox {
            id: alice.id,
            events: alice.peer().events().clone(),
            store: Some(store.clone()),
            conversation: "room".into(),
            threads: Threads::default(),
        }));
        for i in 0..300 {
            bob.peer().send(&format!("m{i}")).expect("send");
        }
        let mut handed = 0;
        while handed < 300 {
            let inbound = block_on(stream.next()).expect("a batch");
            let messages = inbound
                .events
                .iter()
                .filter(|e| matches!(e, Event::Message { .. }))
                .count();
            let rows = inbound.saved.expect("saved");
            assert_eq!(rows.len(), messages, "a row per message");
            handed += messages;
            // Already on disk as the window gets it (the bridge may have saved the next
            // batch too by now, never fewer).
            let page = store.latest_blocking("room", 1000).expect("page");
            assert!(
                page.rows.len() >= handed,
                "{} saved, {handed} handed",
                page.rows.len()
            );
            for id in &rows {
                assert!(
                    page.rows.iter().any(|r| r.id == *id),
                    "row {id} not on disk"
                );
            }
        }
        drop(stream);
        store.close();
    }
}
