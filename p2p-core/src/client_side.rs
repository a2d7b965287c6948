//! The ClientSide: one link per remote peer this peer listens to.
//!
//! Each link is one thread (started through the peer's [`ThreadSet`](crate::threads)) that
//! connects, runs the Noise handshake, sends the hello, waits for the welcome, and then
//! reads the remote peer's frames out of the link's records until the link ends, turning
//! chat frames into [`Event::Message`]s. The same thread (the link's one writer) sends the
//! keep-alives upstream, and a goodbye when this peer shuts down.
//!
//! [`Links`] keeps one entry per remote listening address and per remote peer id, so a peer
//! is never listened to twice (a second hello, or the same peer under another address).

use std::collections::HashMap;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use log::{debug, info};

use crate::channel::{Inbound, Outbound};
use crate::event::{Batch, Departure, Event, PeerInfo};
use crate::link::{self, Ask, LocalPort, Opened};
use crate::net::check_listen_addr;
use crate::node::Node;
use crate::protocol::{Frame, Handshake, ProtocolError, ReadError, Unchecked};
use crate::threads::{SocketGuard, lock};
use crate::{Error, Result};

/// The registry of links: who this peer listens to, or is connecting to.
#[derive(Debug, Default)]
pub(crate) struct Links {
    inner: Mutex<LinksInner>,
    /// Link attempts answering hellos that have not finished their handshake.
    connect_backs: AtomicUsize,
}

#[derive(Debug, Default)]
struct LinksInner {
    by_addr: HashMap<SocketAddr, Option<PeerInfo>>,
    ids: HashMap<u64, SocketAddr>,
}

impl Links {
    /// The peers this peer listens to now.
    pub(crate) fn snapshot(&self) -> Vec<PeerInfo> {
        lock(&self.inner)
            .by_addr
            .values()
            .filter_map(Clone::clone)
            .collect()
    }

    /// `true` if a link to this address or this peer exists or is being made.
    pub(crate) fn knows(&self, addr: SocketAddr, peer_id: Option<u64>) -> bool {
        let inner = lock(&self.inner);
        inner.by_addr.contains_key(&addr) || peer_id.is_some_and(|id| inner.ids.contains_key(&id))
    }

    pub(crate) fn reserve(&self, addr: SocketAddr) -> bool {
        let mut inner = lock(&self.inner);
        if inner.by_addr.contains_key(&addr) {
            return false;
        }
        inner.by_addr.insert(addr, None);
        true
    }

    pub(crate) fn confirm(&self, addr: SocketAddr, peer_id: u64, info: &PeerInfo) -> bool {
        let mut inner = lock(&self.inner);
        if inner.ids.contains_key(&peer_id) {
            return false;
        }
        inner.ids.insert(peer_id, addr);
        inner.by_addr.insert(addr, Some(info.clone()));
        true
    }

    pub(crate) fn release(&self, addr: SocketAddr, peer_id: Option<u64>) {
        let mut inner = lock(&self.inner);
        inner.by_addr.remove(&addr);
        if let Some(id) = peer_id
            && inner.ids.get(&id) == Some(&addr)
        {
            inner.ids.remove(&id);
        }
    }
}

/// Where the outcome of a link's handshake goes.
pub(crate) enum Outcome {
    /// Back to a caller waiting for it.
    Caller(Sender<Result<PeerInfo>>),
    /// Back to the mesh, which tracks its attempts; a failure also becomes an
    /// [`Event::ConnectFailed`].
    Mesh(Sender<Result<PeerInfo>>),
    /// As `Report`, for an attempt answering a hello: it holds one of the
    /// `max_connect_backs` places until its handshake is over.
    ConnectBack,
}

/// Where a link goes: the address as it was given (for errors and events), and the socket
/// addresses it stands for. Names are resolved by the caller before a link thread starts:
/// a link thread never waits on a host name lookup, which nothing can interrupt.
pub(crate) struct Target {
    pub(crate) name: String,
    pub(crate) addrs: Vec<SocketAddr>,
}

impl From<SocketAddr> for Target {
    fn from(addr: SocketAddr) -> Target {
        Target {
            name: addr.to_string(),
            addrs: vec![addr],
        }
    }
}

/// How a link is opened, and what runs on it once it is.
pub(crate) struct Spec {
    /// What the handshake asks for.
    pub(crate) ask: Ask,
    /// Which local port it is made from.
    pub(crate) from: LocalPort,
    /// For a duplex link: what takes it over once its handshake is done (it runs both
    /// directions; this module reads only one-way links).
    pub(crate) duplex: Option<Box<dyn FnOnce(Link) + Send>>,
}

impl Spec {
    /// A one-way link from an ephemeral port; with `hello`, the remote peer is asked to
    /// listen back on a connection of its own.
    pub(crate) fn one_way(hello: bool) -> Spec {
        Spec {
            ask: Ask {
                hello,
                duplex: false,
            },
            from: LocalPort::Any,
            duplex: None,
        }
    }
}

/// Starts a link thread to `target`.
pub(crate) fn spawn_link(
    node: &Arc<Node>,
    links: &Arc<Links>,
    target: Target,
    spec: Spec,
    outcome: Outcome,
) -> Result<()> {
    let (link_node, link_links) = (Arc::clone(node), Arc::clone(links));
    node.threads
        .spawn("p2p-client", move || {
            run_link(&link_node, &link_links, &target, spec, outcome)
        })
        .map_err(|_| Error::Shutdown)
}

/// Answers a hello that came from `remote`: listen back to the greeting peer unless a link
/// to it exists, its address is not one to connect to, or `max_connect_backs` answers are
/// already under way.
pub(crate) fn connect_back(
    node: &Arc<Node>,
    links: &Arc<Links>,
    hs: &Handshake,
    remote: SocketAddr,
) {
    let addr = hs.listen_addr(remote.ip());
    if links.knows(addr, Some(hs.peer_id)) {
        debug!("hello from {addr}: already listening to it");
        return;
    }
    if let Err(why) = check_listen_addr(addr, remote.ip()) {
        info!("not answering the hello from {remote}: it gave {addr} ({why})");
        return;
    }
    let max = node.config.limits.max_connect_backs;
    let under_way = &links.connect_backs;
    if under_way.fetch_add(1, Ordering::SeqCst) >= max {
        under_way.fetch_sub(1, Ordering::SeqCst);
        info!("not answering the hello from {remote} ({addr}): {max} answers already under way");
        return;
    }
    let spec = Spec {
        from: node.outgoing_from(),
        ..Spec::one_way(false)
    };
    if let Err(e) = spawn_link(node, links, addr.into(), spec, Outcome::ConnectBack) {
        under_way.fetch_sub(1, Ordering::SeqCst);
        debug!("cannot answer hello from {addr}: {e}");
    }
}

/// An open link after a successful handshake.
pub(crate) struct Link {
    pub(crate) stream: Arc<TcpStream>,
    pub(crate) inbound: Inbound,
    pub(crate) outbound: Outbound,
    /// The address the other peer listens on (the key of this link in [`Links`]).
    pub(crate) addr: SocketAddr,
    pub(crate) peer_id: u64,
    pub(crate) info: Arc<PeerInfo>,
    pub(crate) socket: SocketGuard,
}

/// The life of one link: connect, handshake, read until it ends.
fn run_link(node: &Node, links: &Links, target: &Target, spec: Spec, outcome: Outcome) {
    let Spec { ask, from, duplex } = spec;
    let opened = open(node, links, target, ask, from);
    let target = target.name.as_str();
    if matches!(outcome, Outcome::ConnectBack) {
        links.connect_backs.fetch_sub(1, Ordering::SeqCst);
    }
    let link = match opened {
        Ok(link) => link,
        Err(e) => {
            let quiet = matches!(
                e,
                Error::AlreadyConnected(_) | Error::SelfConnection(_) | Error::Shutdown
            );
            match &outcome {
                Outcome::Caller(_) => {}
                _ if quiet => debug!("not connecting to {target}: {e}"),
                Outcome::Mesh(_) | Outcome::ConnectBack
                    if matches!(e, Error::WrongPassphrase { .. }) =>
                {
                    if node.first_wrong_key_report(target) {
                        info!("cannot listen to {target}: {e}");
                        node.emit(Event::WrongPassphrase {
                            addr: target.to_owned(),
                        });
                    }
                }
                Outcome::Mesh(_) | Outcome::ConnectBack => {
                    info!("cannot listen to {target}: {e}");
                    node.emit(Event::ConnectFailed {
                        addr: target.to_owned(),
                        reason: e.to_string(),
                    });
                }
            }
            if let Outcome::Caller(tx) | Outcome::Mesh(tx) = outcome {
                let _ = tx.send(Err(e));
            }
            return;
        }
    };
    debug!("listening to {}", link.info);
    // The caller first: it may be the very thread that reads the events, which would
    // otherwise wait for this one while this one waits for room in the channel.
    if let Outcome::Caller(tx) | Outcome::Mesh(tx) = outcome {
        let _ = tx.send(Ok(PeerInfo::clone(&link.info)));
    }
    if let Some(duplex) = duplex {
        return duplex(link);
    }
    run_one_way(node, links, link);
}

/// Reads a one-way link until it ends, and reports it.
fn run_one_way(node: &Node, links: &Links, link: Link) {
    let Link {
        stream,
        inbound,
        mut outbound,
        addr,
        peer_id,
        info,
        socket: _socket,
    } = link;
    // Keep-alives go out while a slow embedder leaves no room for the events.
    let warning = node.vouch(&info);
    let joined = Event::ListeningTo(PeerInfo::clone(&info));
    for event in warning.into_iter().chain([joined]) {
        node.emit_batch_or(Batch::Event(event), node.config.timeouts.keepalive, || {
            let _ = outbound.send(&stream, &Frame::Ping);
        });
    }
    let reason = read_loop(node, &stream, inbound, &info, Some(&mut outbound));
    if reason == Departure::Shutdown {
        let _ = stream.set_write_timeout(Some(Duration::from_millis(500)));
        let _ = outbound.send(&stream, &Frame::Goodbye);
    }
    let _ = stream.shutdown(Shutdown::Both);
    links.release(addr, Some(peer_id));
    debug!("stopped listening to {info}: {reason}");
    node.emit(Event::StoppedListeningTo {
        peer: PeerInfo::clone(&info),
        reason,
    });
}

/// Connects and handshakes. The link's address is reserved in [`Links`] for the whole
/// attempt, so two attempts to one peer cannot both succeed.
fn open(node: &Node, links: &Links, target: &Target, ask: Ask, from: LocalPort) -> Result<Link> {
    let Target {
        name: target,
        addrs: candidates,
    } = target;
    if candidates
        .iter()
        .any(|a| *a == node.local_addr() || links.knows(*a, None))
    {
        if candidates.contains(&node.local_addr()) {
            return Err(Error::SelfConnection(target.to_owned()));
        }
        return Err(Error::AlreadyConnected(target.to_owned()));
    }
    let timeouts = &node.config.timeouts;
    let mut last_err = None;
    let mut connected = None;
    for &addr in candidates {
        if !links.reserve(addr) {
            return Err(Error::AlreadyConnected(target.to_owned()));
        }
        match link::dial(node, addr, timeouts.connect, from) {
            Ok(connection) => {
                connected = Some((connection, addr));
                break;
            }
            Err(e) => {
                links.release(addr, None);
                if node.stop.is_set() {
                    return Err(Error::Shutdown);
                }
                last_err = Some(e);
            }
        }
    }
    let Some(((stream, socket), addr)) = connected else {
        return Err(Error::Connect {
            addr: target.to_owned(),
            source: last_err.unwrap_or_else(|| std::io::ErrorKind::NotFound.into()),
        });
    };
    open_link(node, links, (stream, socket), addr, target, ask)
}

/// Runs the handshake `ask` on `stream`, connected to `addr` (reserved in `links` by the
/// caller), and registers the link under `addr`; `target` names the peer in errors. A
/// failed handshake, or a link to that peer made meanwhile, releases the reservation.
pub(crate) fn open_link(
    node: &Node,
    links: &Links,
    (stream, socket): (Arc<TcpStream>, SocketGuard),
    addr: SocketAddr,
    target: &str,
    ask: Ask,
) -> Result<Link> {
    let result = link::initiate(node, &stream, target, ask).and_then(|opened| {
        let Opened {
            remote,
            inbound,
            outbound,
        } = opened;
        let info = PeerInfo {
            username: remote.username,
            addr,
            fingerprint: remote.key.fingerprint(),
        };
        if !links.confirm(addr, remote.peer_id, &info) {
            return Err(Error::AlreadyConnected(target.to_owned()));
        }
        Ok(Link {
            stream,
            inbound,
            outbound,
            addr,
            peer_id: remote.peer_id,
            info: Arc::new(info),
            socket,
        })
    });
    if result.is_err() {
        links.release(addr, None);
    }
    result
}

/// Hands over the texts before the first that is not UTF-8, and returns that text's error.
fn deliver_valid_prefix(
    node: &Node,
    from: &Arc<PeerInfo>,
    texts: &[u8],
    ends: &mut Vec<usize>,
) -> ProtocolError {
    let mut start = 0;
    let mut error = ProtocolError::Malformed("invalid UTF-8".into());
    for (i, &end) in ends.iter().enumerate() {
        if let Err(e) = std::str::from_utf8(texts.get(start..end).unwrap_or_default()) {
            error = ProtocolError::Malformed(e.to_string());
            ends.truncate(i);
            break;
        }
        start = end;
    }
    let valid = ends.last().copied().unwrap_or(0);
    if let (Some(_), Ok(prefix)) = (
        ends.last(),
        std::str::from_utf8(texts.get(..valid).unwrap_or_default()),
    ) {
        node.emit_batch(Batch::messages(from, prefix, ends));
    }
    error
}

/// Reads the remote peer's frames until the link ends; returns why it ended. A record that
/// fails (tampered with, replayed, cut short) ends the link with the fault as the reason.
///
/// With `pings`, the link's writing half, it also keeps the link alive upstream (a ping
/// every keep-alive interval); on a duplex link the writer thread does that, as it is the
/// only one that writes.
pub(crate) fn read_loop(
    node: &Node,
    stream: &TcpStream,
    mut reader: Inbound,
    from: &Arc<PeerInfo>,
    mut pings: Option<&mut Outbound>,
) -> Departure {
    let timeouts = &node.config.timeouts;
    let max_text = node.config.limits.max_text_bytes;
    let ping = Frame::Ping;
    let _ = stream.set_read_timeout(Some(timeouts.tick));
    let _ = stream.set_write_timeout(Some(timeouts.peer));
    let mut last_heard = Instant::now();
    let mut last_ping = Instant::now();
    let mut texts: Vec<u8> = Vec::new();
    let mut ends: Vec<usize> = Vec::new();
    loop {
        // Everything already buffered first, handed over as one batch, then one read.
        let mut ended = loop {
            match reader.next_unchecked() {
                Ok(Some(Unchecked::Chat(text))) => {
                    if text.len() > max_text {
                        let e = ProtocolError::TextTooLong {
                            len: text.len(),
                            max: max_text,
                        };
                        info!("closing link to {from}: {e}");
                        break Some(Departure::Error(e.to_string()));
                    }
                    texts.extend_from_slice(text);
                    ends.push(texts.len());
                }
                Ok(Some(Unchecked::Frame(Frame::Ping))) => {}
                Ok(Some(Unchecked::Frame(Frame::Goodbye))) => break Some(Departure::Left),
                Ok(Some(Unchecked::Frame(other))) => {
                    info!("closing link to {from}: unexpected {} frame", other.name());
                    break Some(Departure::Error(format!(
                        "unexpected {} frame",
                        other.name()
                    )));
                }
                Ok(None) => break None,
                Err(e) => {
                    info!("closing link to {from}: {e}");
                    break Some(Departure::Error(e.to_string()));
                }
            }
        };
        if !ends.is_empty() {
            // The UTF-8 of the whole read is checked at once (far cheaper than text by
            // text); texts that are valid on their own are valid together and end on
            // character boundaries.
            match std::str::from_utf8(&texts) {
                Ok(all) if ends.iter().all(|&end| all.is_char_boundary(end)) => {
                    // While the embedder does not make room, keep the link alive: the
                    // other side would otherwise drop it as timed out. (Its listener
                    // queue fills meanwhile, up to its byte limit.)
                    let batch = Batch::messages(from, all, &mut ends);
                    let mut stalled = false;
                    node.emit_batch_or(batch, timeouts.keepalive, || {
                        stalled = true;
                        if let Some(out) = pings.as_deref_mut()
                            && out.send(stream, &ping).is_ok()
                        {
                            last_ping = Instant::now();
                        }
                    });
                    if stalled {
                        // Nothing was read while waiting: the other side's silence is
                        // counted from now.
                        last_heard = Instant::now();
                    }
                }
                _ => {
                    let e = deliver_valid_prefix(node, from, &texts, &mut ends);
                    info!("closing link to {from}: {e}");
                    ended = Some(Departure::Error(e.to_string()));
                }
            }
            texts.clear();
            ends.clear();
        }
        if let Some(departure) = ended {
            return departure;
        }
        if node.stop.is_set() {
            return Departure::Shutdown;
        }
        let now = match reader.fill() {
            Ok(_) => {
                let now = Instant::now();
                last_heard = now;
                now
            }
            Err(e) if e.is_timeout() => {
                let now = Instant::now();
                if now.duration_since(last_heard) > timeouts.peer {
                    info!("link to {from} timed out");
                    return Departure::TimedOut;
                }
                now
            }
            Err(_) if node.stop.is_set() => return Departure::Shutdown,
            Err(ReadError::Closed) => return Departure::Closed,
            Err(e) => {
                info!("closing link to {from}: {e}");
                return Departure::Error(e.to_string());
            }
        };
        if let Some(out) = pings.as_deref_mut()
            && now.duration_since(last_ping) >= timeouts.keepalive
        {
            if let Err(e) = out.send(stream, &ping) {
                return Departure::Error(e.to_string());
            }
            last_ping = now;
        }
    }
}
