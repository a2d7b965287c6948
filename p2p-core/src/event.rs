//! What a peer tells its embedder: the [`Event`]s on its channel.

use std::borrow::Borrow;
use std::collections::VecDeque;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::net::{IpAddr, SocketAddr};
use std::ops::Deref;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvError, RecvTimeoutError, TryRecvError};

use crate::discovery::Source;
use crate::threads::lock;

/// Who a remote peer is: its username and the address its ServerSide listens on.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerInfo {
    /// The username it gave in its handshake.
    pub username: String,
    /// The address it listens on (for a listener, the address it advertised).
    pub addr: SocketAddr,
}

impl fmt::Display for PeerInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.username, self.addr)
    }
}

/// Why a link ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Departure {
    /// The other peer said goodbye: it is leaving the network.
    Left,
    /// Nothing was heard from the other peer for longer than the peer timeout.
    TimedOut,
    /// The connection closed without a goodbye.
    Closed,
    /// The listener took nothing for the stall timeout
    /// ([`Timeouts::stall`](crate::Timeouts::stall)) while messages waited for it (its
    /// queue full, or its connection stuck). A listener that is slow but takes is never cut
    /// off: the sender waits for it instead.
    Overflow,
    /// The other side broke the protocol or the connection failed; the text says how.
    Error(String),
    /// This peer is shutting down.
    Shutdown,
}

impl fmt::Display for Departure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Departure::Left => f.write_str("left"),
            Departure::TimedOut => f.write_str("timed out"),
            Departure::Closed => f.write_str("connection closed"),
            Departure::Overflow => f.write_str("stalled: took nothing with its queue full"),
            Departure::Error(e) => write!(f, "error: {e}"),
            Departure::Shutdown => f.write_str("shut down"),
        }
    }
}

/// The text of a chat message. It reads as a `str` (it derefs to one) and shares its
/// storage with the other messages that arrived in the same read, so receiving a busy
/// stream of messages allocates per batch, not per message. `String::from(text)` or
/// `text.to_string()` makes an owned copy.
#[derive(Clone)]
pub struct Text {
    buf: Arc<str>,
    start: usize,
    end: usize,
}

impl Text {
    /// A text that shares `buf` (between `start` and `end`, on character boundaries).
    pub(crate) fn shared(buf: &Arc<str>, start: usize, end: usize) -> Text {
        Text {
            buf: Arc::clone(buf),
            start,
            end,
        }
    }

    /// The text as a `str`.
    pub fn as_str(&self) -> &str {
        self.buf.get(self.start..self.end).unwrap_or_default()
    }
}

impl Deref for Text {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Text {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for Text {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl PartialEq for Text {
    fn eq(&self, other: &Text) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Text {}

impl Hash for Text {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl PartialEq<str> for Text {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Text {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for Text {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other.as_str()
    }
}

impl From<&str> for Text {
    fn from(text: &str) -> Text {
        Text {
            end: text.len(),
            buf: Arc::from(text),
            start: 0,
        }
    }
}

impl From<String> for Text {
    fn from(text: String) -> Text {
        Text::from(text.as_str())
    }
}

impl From<Text> for String {
    fn from(text: Text) -> String {
        text.as_str().to_owned()
    }
}

/// Something that happened to a peer, in the order it happened on each link.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A chat message from a peer this peer listens to.
    Message {
        /// The sender (shared by every message on the same link).
        from: Arc<PeerInfo>,
        /// The text.
        text: Text,
    },
    /// This peer now listens to (hears) that peer.
    ListeningTo(PeerInfo),
    /// This peer no longer hears that peer.
    StoppedListeningTo {
        /// Who.
        peer: PeerInfo,
        /// Why.
        reason: Departure,
    },
    /// That peer now listens to this peer: it receives what this peer sends.
    ListenerJoined(PeerInfo),
    /// That peer no longer listens to this peer.
    ListenerLeft {
        /// Who.
        peer: PeerInfo,
        /// Why.
        reason: Departure,
    },
    /// A connection this peer tried in the background failed (a peer from the tracker's
    /// list, or one that greeted this peer with a hello).
    ConnectFailed {
        /// The address tried.
        addr: String,
        /// Why it failed.
        reason: String,
    },
    /// The tracker session broke (or a re-announce failed); the peer keeps its links and
    /// reconnects, with a growing pause, up to the re-announce interval.
    TrackerUnreachable {
        /// Why.
        reason: String,
    },
    /// A discovery source led this peer to an address, and it tries to link with it now
    /// (or, [`Source::Hello`], to listen back to a peer that greeted it). The link's
    /// [`ListeningTo`](Event::ListeningTo) follows, or a
    /// [`ConnectFailed`](Event::ConnectFailed) with this address. This is how an embedder
    /// tells how each peer was found.
    ///
    /// Advisory: it is handed over without waiting, so it is dropped (and logged) when the
    /// event channel is full at that moment, that is when the embedder is a whole
    /// [`event_capacity`](crate::PeerConfig::event_capacity) behind.
    Discovered {
        /// The address tried (where the other peer listens).
        addr: SocketAddr,
        /// How it was found.
        via: Source,
    },
    /// No DHT node answers this peer (no bootstrap node reachable, or UDP blocked on this
    /// network): the DHT finds nobody. Said once until the DHT answers again; the peer keeps
    /// trying at each lookup interval. A tracker, the LAN mode or addresses given by hand
    /// work over TCP where UDP does not.
    DhtUnreachable {
        /// Why, as the DHT node reported it.
        reason: String,
    },
    /// The DHT sees this peer at `public_ip`, which is not an address of this host: it is
    /// behind a NAT router, and it uses no tracker. It links to the peers that accept
    /// connections (it opens one duplex link to each, from its listening port) and stops
    /// announcing itself (nobody could connect to it), but it cannot link to peers that are
    /// behind NAT routers too: getting through two routers needs a rendezvous that
    /// introduces both peers at once (a tracker does), which the DHT does not give, and
    /// there is no relay.
    DhtBehindNat {
        /// The address the DHT's nodes see this peer at (its router's).
        public_ip: IpAddr,
    },
    /// A peer the tracker introduced could not be reached: both are behind NAT routers and
    /// connecting to each other at once (hole punching) did not get through within
    /// [`Timeouts::punch`](crate::Timeouts::punch), most likely because a router gives each
    /// destination another port. There is no relay: the two do not hear each other.
    Unreachable {
        /// The other peer's address (its router's).
        addr: SocketAddr,
        /// Why, in plain words.
        reason: String,
    },
}

/// What a peer puts on its event channel, and what [`Events::recv_batch`] hands out: either
/// one event, or every chat message that one read from one link produced.
///
/// Messages travel in a compact form (one shared text buffer and where each text ends) and
/// become [`Event`]s only when the embedder asks for them, so the network thread builds no
/// events. An embedder that reads whole batches can go through the texts without building
/// an event per message at all ([`Messages::texts`]).
#[derive(Debug, Clone)]
pub enum Batch {
    /// One event of any kind but a chat message.
    Event(Event),
    /// Chat messages from one peer, in the order it sent them.
    Messages(Messages),
}

impl Batch {
    /// The batch of messages whose texts are `texts`, each ending at its entry of
    /// `ends` (copied at its exact size, then cleared: the caller keeps reusing its
    /// buffer rather than growing a new one for every read). `ends` must not be empty.
    pub(crate) fn messages(from: &Arc<PeerInfo>, texts: &str, ends: &mut Vec<usize>) -> Batch {
        ends.pop(); // the last text ends where the buffer does
        let batch = Batch::Messages(Messages {
            from: Arc::clone(from),
            buf: Arc::from(texts),
            ends: ends.as_slice().to_vec(),
            next: 0,
        });
        ends.clear();
        batch
    }
}

impl IntoIterator for Batch {
    type Item = Event;
    type IntoIter = BatchEvents;

    /// The batch's events, one by one.
    fn into_iter(self) -> BatchEvents {
        BatchEvents(match self {
            Batch::Event(event) => Either::One(Some(event)),
            Batch::Messages(messages) => Either::Messages(messages),
        })
    }
}

/// The events of a [`Batch`], one by one.
#[derive(Debug)]
pub struct BatchEvents(Either);

#[derive(Debug)]
enum Either {
    One(Option<Event>),
    Messages(Messages),
}

impl Iterator for BatchEvents {
    type Item = Event;

    fn next(&mut self) -> Option<Event> {
        match &mut self.0 {
            Either::One(event) => event.take(),
            Either::Messages(messages) => messages.next(),
        }
    }
}

/// Chat messages from one peer, in order: all the messages one read from its link brought.
///
/// Go through them as `&str`s with [`texts`](Messages::texts) (no allocation, no reference
/// counting per message), or as [`Event::Message`]s by iterating (each event shares the
/// batch's text buffer).
#[derive(Debug, Clone)]
pub struct Messages {
    from: Arc<PeerInfo>,
    buf: Arc<str>,
    /// Where each text but the last ends in `buf` (the last ends at `buf`'s end), so a
    /// batch of one message allocates nothing here.
    ends: Vec<usize>,
    /// The index of the first text not handed out yet.
    next: usize,
}

impl Messages {
    /// Who sent them.
    pub fn from(&self) -> &Arc<PeerInfo> {
        &self.from
    }

    /// How many messages are left in the batch.
    pub fn len(&self) -> usize {
        (self.ends.len() + 1).saturating_sub(self.next)
    }

    /// `true` once every message was handed out.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Where text `i` lies in `buf`.
    fn span(&self, i: usize) -> Option<(usize, usize)> {
        let start = match i.checked_sub(1) {
            None => 0,
            Some(j) => *self.ends.get(j)?,
        };
        let end = match self.ends.get(i) {
            Some(&end) => end,
            None if i == self.ends.len() => self.buf.len(),
            None => return None,
        };
        Some((start, end))
    }

    /// The texts left in the batch, in order, borrowed from it.
    pub fn texts(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        (self.next..self.ends.len() + 1).map(|i| {
            self.span(i)
                .and_then(|(start, end)| self.buf.get(start..end))
                .unwrap_or_default()
        })
    }
}

impl Iterator for Messages {
    type Item = Event;

    /// The next message as an event.
    fn next(&mut self) -> Option<Event> {
        let (start, end) = self.span(self.next)?;
        self.next += 1;
        Some(Event::Message {
            from: Arc::clone(&self.from),
            text: Text::shared(&self.buf, start, end),
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.len(), Some(self.len()))
    }
}

impl ExactSizeIterator for Messages {}

/// The batches an [`Events`] has taken off the channel and not yet handed out entirely:
/// the messages being handed out one by one, then the other batches in order.
#[derive(Debug, Default)]
struct Pending {
    current: Option<Messages>,
    queued: VecDeque<Batch>,
}

impl Pending {
    #[inline]
    fn take(&mut self) -> Option<Event> {
        loop {
            if let Some(messages) = &mut self.current {
                if let Some(event) = messages.next() {
                    return Some(event);
                }
                self.current = None;
            }
            match self.queued.pop_front()? {
                Batch::Event(event) => return Some(event),
                Batch::Messages(messages) => self.current = Some(messages),
            }
        }
    }

    /// What is left of the batch being handed out, or the next queued batch.
    fn take_batch(&mut self) -> Option<Batch> {
        match self.current.take() {
            Some(messages) if !messages.is_empty() => Some(Batch::Messages(messages)),
            _ => self.queued.pop_front(),
        }
    }
}

/// The receiving end of a peer's events: every [`Event`], in the order it happened on each
/// link. Reading blocks; there is no need to poll.
///
/// Internally the peer hands over events in [`Batch`]es (all the messages one read from one
/// link produced), which keeps the cost of a busy link per batch rather than per message.
/// [`recv`](Events::recv) and the iterators hand them out one event at a time;
/// [`recv_batch`](Events::recv_batch) hands out whole batches, the cheapest way to read a
/// busy stream. Clone it to read from several threads: the clones share one channel and
/// one buffer of the batch being handed out, so each event goes to exactly one reader and
/// dropping a clone loses nothing. It disconnects (every `recv` fails) once the peer is
/// dropped and every event has been read.
#[derive(Debug, Clone)]
pub struct Events {
    rx: Receiver<Batch>,
    pending: Arc<Mutex<Pending>>,
}

impl Events {
    pub(crate) fn new(rx: Receiver<Batch>) -> Self {
        Events {
            rx,
            pending: Arc::new(Mutex::new(Pending::default())),
        }
    }

    #[inline]
    fn take_pending(&self) -> Option<Event> {
        lock(&self.pending).take()
    }

    fn unpack(&self, batch: Batch) -> Option<Event> {
        // If another thread reading this same `Events` queued a batch meanwhile, this one
        // goes after it.
        let mut pending = lock(&self.pending);
        pending.queued.push_back(batch);
        pending.take()
    }

    /// Waits for the next event. Fails once the peer is gone and every event was read.
    pub fn recv(&self) -> Result<Event, RecvError> {
        loop {
            if let Some(event) = self.take_pending() {
                return Ok(event);
            }
            if let Some(event) = self.unpack(self.rx.recv()?) {
                return Ok(event);
            }
        }
    }

    /// The next event if there is one now.
    pub fn try_recv(&self) -> Result<Event, TryRecvError> {
        loop {
            if let Some(event) = self.take_pending() {
                return Ok(event);
            }
            if let Some(event) = self.unpack(self.rx.try_recv()?) {
                return Ok(event);
            }
        }
    }

    /// Waits up to `timeout` for the next event.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Event, RecvTimeoutError> {
        self.recv_deadline(Instant::now() + timeout)
    }

    /// Waits until `deadline` for the next event.
    pub fn recv_deadline(&self, deadline: Instant) -> Result<Event, RecvTimeoutError> {
        loop {
            if let Some(event) = self.take_pending() {
                return Ok(event);
            }
            if let Some(event) = self.unpack(self.rx.recv_deadline(deadline)?) {
                return Ok(event);
            }
        }
    }

    /// Waits for the next batch: one event, or the chat messages one read from one link
    /// brought (what is left of them, if [`recv`](Events::recv) handed out some already).
    /// Fails once the peer is gone and every event was read.
    ///
    /// ```
    /// # use p2p_core::{Batch, Events};
    /// fn print_all(events: &Events) {
    ///     while let Ok(batch) = events.recv_batch() {
    ///         match batch {
    ///             Batch::Messages(messages) => {
    ///                 for text in messages.texts() {
    ///                     println!("[{}] : {text}", messages.from().username);
    ///                 }
    ///             }
    ///             Batch::Event(event) => println!("{event:?}"),
    ///         }
    ///     }
    /// }
    /// ```
    pub fn recv_batch(&self) -> Result<Batch, RecvError> {
        match lock(&self.pending).take_batch() {
            Some(batch) => Ok(batch),
            None => self.rx.recv(),
        }
    }

    /// The next batch if there is one now (see [`recv_batch`](Events::recv_batch)).
    pub fn try_recv_batch(&self) -> Result<Batch, TryRecvError> {
        match lock(&self.pending).take_batch() {
            Some(batch) => Ok(batch),
            None => self.rx.try_recv(),
        }
    }

    /// Waits until `deadline` for the next batch (see [`recv_batch`](Events::recv_batch)).
    pub fn recv_batch_deadline(&self, deadline: Instant) -> Result<Batch, RecvTimeoutError> {
        match lock(&self.pending).take_batch() {
            Some(batch) => Ok(batch),
            None => self.rx.recv_deadline(deadline),
        }
    }

    /// A blocking iterator over the events; it ends when the peer is gone.
    pub fn iter(&self) -> impl Iterator<Item = Event> + '_ {
        std::iter::from_fn(move || self.recv().ok())
    }

    /// An iterator over the events available now, without blocking.
    pub fn try_iter(&self) -> impl Iterator<Item = Event> + '_ {
        std::iter::from_fn(move || self.try_recv().ok())
    }
}

impl<'a> IntoIterator for &'a Events {
    type Item = Event;
    type IntoIter = Box<dyn Iterator<Item = Event> + 'a>;

    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(events: &Events) -> Vec<String> {
        events
            .try_iter()
            .map(|e| match e {
                Event::Message { text, .. } => text.to_string(),
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn batches_of_messages_unpack_in_order_between_other_events() {
        let (tx, rx) = crossbeam_channel::bounded(8);
        let events = Events::new(rx);
        let from = Arc::new(PeerInfo {
            username: "a".into(),
            addr: "127.0.0.1:1".parse().unwrap_or_else(|_| unreachable!()),
        });
        let mut ends = Vec::new();
        let mut buf = String::new();
        for t in ["one", "", "three"] {
            buf.push_str(t);
            ends.push(buf.len());
        }
        let _ = tx.send(Batch::messages(&from, &buf, &mut ends));
        let _ = tx.send(Batch::Event(Event::TrackerUnreachable {
            reason: "x".into(),
        }));
        ends.push(4);
        let _ = tx.send(Batch::messages(&from, "solo", &mut ends));
        ends.push(0);
        let _ = tx.send(Batch::messages(&from, "", &mut ends));
        assert_eq!(
            texts(&events),
            [
                "one",
                "",
                "three",
                "TrackerUnreachable { reason: \"x\" }",
                "solo",
                ""
            ]
        );
        drop(tx);
        assert!(events.recv().is_err());
    }

    fn alice() -> Arc<PeerInfo> {
        Arc::new(PeerInfo {
            username: "alice".into(),
            addr: "127.0.0.1:1".parse().unwrap_or_else(|_| unreachable!()),
        })
    }

    fn messages_batch(from: &Arc<PeerInfo>, texts: &[&str]) -> Batch {
        let mut ends = Vec::new();
        let mut buf = String::new();
        for t in texts {
            buf.push_str(t);
            ends.push(buf.len());
        }
        Batch::messages(from, &buf, &mut ends)
    }

    #[test]
    fn whole_batches_hand_out_what_one_by_one_reading_left() {
        let (tx, rx) = crossbeam_channel::bounded(8);
        let events = Events::new(rx);
        let from = alice();
        let _ = tx.send(messages_batch(&from, &["one", "two", "thrée"]));
        let _ = tx.send(Batch::Event(Event::ListenerJoined(PeerInfo::clone(&from))));
        let _ = tx.send(messages_batch(&from, &["four"]));

        // One event read one by one; the rest of its batch comes as a batch.
        assert!(matches!(events.recv(), Ok(Event::Message { text, .. }) if text == "one"));
        let Ok(Batch::Messages(rest)) = events.recv_batch() else {
            panic!("expected the rest of the first batch");
        };
        assert_eq!(rest.from().username, "alice");
        assert_eq!((rest.len(), rest.is_empty()), (2, false));
        assert_eq!(rest.texts().collect::<Vec<_>>(), ["two", "thrée"]);
        let as_events: Vec<Event> = rest.collect();
        assert_eq!(
            as_events,
            [
                Event::Message {
                    from: Arc::clone(&from),
                    text: Text::from("two")
                },
                Event::Message {
                    from: Arc::clone(&from),
                    text: Text::from("thrée")
                },
            ]
        );

        let Ok(batch) = events.try_recv_batch() else {
            panic!("expected the listener event");
        };
        assert_eq!(
            batch.into_iter().collect::<Vec<_>>(),
            [Event::ListenerJoined(PeerInfo::clone(&from))]
        );
        let deadline = Instant::now() + Duration::from_secs(5);
        let Ok(Batch::Messages(last)) = events.recv_batch_deadline(deadline) else {
            panic!("expected the last batch");
        };
        assert_eq!(last.texts().collect::<Vec<_>>(), ["four"]);
        assert!(matches!(events.try_recv_batch(), Err(TryRecvError::Empty)));
        drop(tx);
        assert!(events.recv_batch().is_err());
    }

    #[test]
    fn a_batch_read_by_one_clone_is_not_handed_out_again_by_another() {
        let (tx, rx) = crossbeam_channel::bounded(8);
        let events = Events::new(rx);
        let other = events.clone();
        let from = alice();
        let _ = tx.send(messages_batch(&from, &["a", "b", "c"]));
        let _ = tx.send(messages_batch(&from, &["d"]));
        assert!(matches!(other.recv(), Ok(Event::Message { text, .. }) if text == "a"));
        drop(other);
        let mut seen = Vec::new();
        while let Ok(batch) = events.try_recv_batch() {
            seen.extend(batch.into_iter().map(|e| match e {
                Event::Message { text, .. } => text.to_string(),
                e => format!("{e:?}"),
            }));
        }
        assert_eq!(seen, ["b", "c", "d"]);
    }
}
