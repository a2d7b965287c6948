//! The DHT engine: one thread that announces this peer under a room's infohash and looks
//! the others up, handing what it finds to the embedder on a bounded channel.
//!
//! The life of its threads, all here: [`DhtEngine::start`] starts a `mainline` node (its
//! own thread, see `node.rs`) and the engine's thread (`dht-engine`). That thread runs the
//! [`Schedule`]'s tasks; each one is an async query on the node, driven by `block_on` and
//! raced against the stop signal, so a query in flight never delays a stop. Between tasks
//! it waits on the stop signal. [`DhtEngine::close`] raises the signal, waits for the
//! engine's thread to end and joins it, then closes the node and waits for the node's
//! thread to end: all within [`CLOSE_BOUND`].

use std::net::{SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError};
use futures_lite::StreamExt;
use futures_lite::future::{block_on, or};
use mainline::Id;
use mainline::async_dht::AsyncDht;

use super::config::{DhtConfig, InfoHash};
use super::lookup::{Known, Lookup, Own};
use super::node::{DhtNode, NodeOptions};
use super::schedule::{Found, Schedule, Task};
use crate::config::Resolver;
use crate::error::{Error, Result};

/// How long [`DhtEngine::close`] may take at most, whatever the network does (inside the
/// peer's 2 s shutdown bound). In practice it takes one turn of `mainline`'s loop, under
/// 100 ms.
pub const CLOSE_BOUND: Duration = Duration::from_millis(1500);

/// What the engine tells its embedder.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DhtEvent {
    /// Peers announced under the infohash, as the lookup under way finds them: addresses
    /// it has not reported yet (at most [`DhtConfig::max_per_lookup`] per lookup, this
    /// peer left out). Every lookup reports every address again, including those of peers
    /// that have left and that the DHT still lists.
    Found(Vec<SocketAddr>),
    /// A lookup ended, having found `found` distinct addresses.
    LookupDone {
        /// How many distinct addresses it reported.
        found: usize,
    },
    /// This peer's port is announced: at least one DHT node took it.
    Announced,
    /// No DHT node took the announce (none answers: no bootstrap node reachable, or UDP
    /// blocked). Tried again one lookup interval later.
    AnnounceFailed(String),
    /// The address the DHT's nodes see this engine's UDP socket at (the consensus of their
    /// answers), when it becomes known or changes: after the first lookup, usually. Behind
    /// a NAT router it is the router's address, not one of this host's.
    SeenAt(SocketAddr),
}

/// A running DHT engine for one infohash. Dropping it closes it like [`DhtEngine::close`].
pub struct DhtEngine {
    node: Option<DhtNode>,
    /// Dropped to raise the stop signal.
    stop: Option<flume::Sender<()>>,
    /// Disconnected once the engine's thread has ended (however it ended).
    done: flume::Receiver<()>,
    thread: Option<JoinHandle<()>>,
    events: Receiver<DhtEvent>,
    infohash: InfoHash,
}

impl std::fmt::Debug for DhtEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DhtEngine")
            .field("infohash", &self.infohash)
            .field("local_addr", &self.local_addr())
            .finish_non_exhaustive()
    }
}

/// What the engine's thread is given.
pub(crate) struct EngineState {
    dht: AsyncDht,
    infohash: Id,
    own: Own,
    config: DhtConfig,
    stop: flume::Receiver<()>,
    /// Announces are made while it is set (the embedder clears it when nobody could
    /// connect to the announced port).
    announcing: Arc<AtomicBool>,
}

/// An engine ready to run on a thread of the caller's: its node (started), what its loop
/// needs, and the sender whose drop stops the loop.
pub(crate) struct Prepared {
    pub(crate) node: DhtNode,
    pub(crate) state: EngineState,
    pub(crate) stop: flume::Sender<()>,
    /// Set: the engine announces; cleared, it only looks up.
    pub(crate) announcing: Arc<AtomicBool>,
}

/// Starts the node of an engine that will announce `port` under `infohash`, joining the
/// DHT through `bootstrap` (resolved already), and prepares its loop ([`run`]).
pub(crate) fn prepare(
    infohash: InfoHash,
    port: u16,
    config: DhtConfig,
    bootstrap: Vec<SocketAddrV4>,
) -> Result<Prepared> {
    config.validate()?;
    if port == 0 {
        return Err(Error::Config(
            "the DHT announces a port from 1 to 65535".into(),
        ));
    }
    let node = DhtNode::start(&NodeOptions {
        bind: SocketAddrV4::new(config.bind_ip, config.udp_port),
        bootstrap,
        server_mode: false,
        request_timeout: config.request_timeout,
    })?;
    let dht = node
        .dht()
        .cloned()
        .ok_or_else(|| Error::Config("the DHT node is closed".into()))?;
    let (stop_tx, stop) = flume::bounded(0);
    let announcing = Arc::new(AtomicBool::new(true));
    log::info!(
        "DHT node on udp {} announcing port {port} under {infohash}",
        node.local_addr()
    );
    Ok(Prepared {
        node,
        state: EngineState {
            dht,
            infohash: Id::from(infohash.0),
            own: Own {
                port,
                bind_ip: config.bind_ip,
                public_ip: None,
            },
            config,
            stop,
            announcing: Arc::clone(&announcing),
        },
        stop: stop_tx,
        announcing,
    })
}

impl DhtEngine {
    /// Starts announcing `port` (the peer's listening port, or the external port its
    /// router keeps for it) under `infohash`, and looking the others up.
    ///
    /// Resolves the bootstrap host names first (this blocks on DNS when they are names:
    /// call it off any UI thread), binds the UDP socket and starts the threads; the
    /// network work happens on those threads.
    pub fn start(infohash: InfoHash, port: u16, config: DhtConfig) -> Result<DhtEngine> {
        config.validate()?;
        let bootstrap = config.resolve_bootstrap(&Resolver::system())?;
        let capacity = config.event_capacity;
        let Prepared {
            node,
            state,
            stop: stop_tx,
            ..
        } = prepare(infohash, port, config, bootstrap)?;
        let (events_tx, events) = crossbeam_channel::bounded(capacity);
        let (done_tx, done) = flume::bounded::<()>(0);
        let thread = thread::Builder::new()
            .name("dht-engine".into())
            .spawn(move || {
                let _done = done_tx;
                run(state, &mut |event| send(&events_tx, event));
            })?;
        Ok(DhtEngine {
            node: Some(node),
            stop: Some(stop_tx),
            done,
            thread: Some(thread),
            events,
            infohash,
        })
    }

    /// Everything the engine reports, in order. Bounded: read it steadily (events that do
    /// not fit are dropped; the next lookup reports every address again).
    pub fn events(&self) -> &Receiver<DhtEvent> {
        &self.events
    }

    /// The local address of the engine's UDP socket.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.node.as_ref().map(DhtNode::local_addr)
    }

    /// The infohash the engine announces under.
    pub fn infohash(&self) -> InfoHash {
        self.infohash
    }

    /// Stops the engine and waits for its threads (its own and `mainline`'s) to end, for
    /// at most [`CLOSE_BOUND`]. Returns `true` if both ended in time (a thread that did not
    /// is logged and left to end alone; that would be a bug).
    pub fn close(mut self) -> bool {
        self.close_by(Instant::now() + CLOSE_BOUND)
    }

    fn close_by(&mut self, deadline: Instant) -> bool {
        let Some(thread) = self.thread.take() else {
            return true;
        };
        self.stop.take();
        let engine_ended = match self.done.recv_deadline(deadline) {
            Err(flume::RecvTimeoutError::Disconnected) => {
                if thread.join().is_err() {
                    log::error!("the DHT engine's thread panicked");
                }
                true
            }
            Ok(()) | Err(flume::RecvTimeoutError::Timeout) => {
                log::error!("the DHT engine's thread did not stop in time; left to end alone");
                false
            }
        };
        let node_ended = self.node.take().is_none_or(|node| node.close(deadline));
        engine_ended && node_ended
    }
}

impl Drop for DhtEngine {
    fn drop(&mut self) {
        self.close_by(Instant::now() + CLOSE_BOUND);
    }
}

/// The engine's loop: the schedule's tasks until the stop signal, each event handed to
/// `sink` as it comes (found addresses as the lookup streams them).
pub(crate) fn run(task: EngineState, sink: &mut dyn FnMut(DhtEvent)) {
    // The recent lookups' addresses, to tell new ones.
    let mut known = Known::default();
    let mut schedule = Schedule::new(
        Instant::now(),
        task.config.lookup_interval,
        task.config.announce_interval,
    );
    let mut seen_at = None;
    loop {
        let now = Instant::now();
        let Some(due) = schedule.due(now) else {
            match task.stop.recv_timeout(schedule.wait(now)) {
                Err(flume::RecvTimeoutError::Timeout) => continue,
                Ok(()) | Err(flume::RecvTimeoutError::Disconnected) => return,
            }
        };
        let finished = match due {
            Task::Lookup => until_stopped(&task.stop, lookup(&task, sink)).map(|found| {
                let count = found.len();
                let found = match known.record(&found.into_found()) {
                    _ if count == 0 => Found::Nobody,
                    true => Found::New,
                    false => Found::NothingNew,
                };
                schedule.looked_up(Instant::now(), found);
                count
            }),
            Task::Announce if !task.announcing.load(Ordering::SeqCst) => {
                log::debug!("DHT: nothing to announce for now");
                schedule.skipped_announce(now);
                continue;
            }
            Task::Announce => until_stopped(&task.stop, announce(&task)).map(|result| {
                let reached = result.is_ok();
                sink(match result {
                    Ok(()) => DhtEvent::Announced,
                    Err(reason) => DhtEvent::AnnounceFailed(reason),
                });
                schedule.announced(Instant::now(), reached);
                0
            }),
        };
        let Some(found) = finished else { return };
        // Where the DHT sees this node now (what the task's answers voted), before a
        // lookup's end is reported: an embedder may wait for it to know how to link.
        let Some(public) = until_stopped(&task.stop, task.dht.info()) else {
            return;
        };
        let public = public.public_address().map(SocketAddr::V4);
        if public.is_some() && public != seen_at {
            seen_at = public;
            if let Some(addr) = public {
                sink(DhtEvent::SeenAt(addr));
            }
        }
        if due == Task::Lookup {
            sink(DhtEvent::LookupDone { found });
        }
    }
}

/// Runs `work` to its end, or until the stop signal (then `None`).
fn until_stopped<T>(stop: &flume::Receiver<()>, work: impl Future<Output = T>) -> Option<T> {
    block_on(or(async { Some(work.await) }, async {
        let _ = stop.recv_async().await;
        None
    }))
}

/// One lookup: streams the peers found to the embedder, up to the cap.
async fn lookup(task: &EngineState, sink: &mut dyn FnMut(DhtEvent)) -> Lookup {
    // Where the DHT sees this peer, to leave its own entry out.
    let own = Own {
        public_ip: task.dht.info().await.public_address().map(|a| *a.ip()),
        ..task.own
    };
    let mut found = Lookup::new(task.config.max_per_lookup, own);
    let mut answers = task.dht.get_peers(task.infohash);
    while let Some(answer) = answers.next().await {
        let fresh = found.add(answer);
        if !fresh.is_empty() {
            sink(DhtEvent::Found(fresh));
        }
        if found.is_full() {
            log::debug!("DHT lookup stopped at its cap of {} addresses", found.len());
            break;
        }
    }
    found
}

/// One announce of this peer's port.
async fn announce(task: &EngineState) -> Result<(), String> {
    task.dht
        .announce_peer(task.infohash, Some(task.own.port))
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Hands an event over without ever waiting: a full channel drops it.
fn send(events: &Sender<DhtEvent>, event: DhtEvent) {
    match events.try_send(event) {
        Ok(()) | Err(TrySendError::Disconnected(_)) => {}
        Err(TrySendError::Full(event)) => {
            log::debug!("DHT event dropped, the embedder is behind: {event:?}");
        }
    }
}
