//! One Mainline DHT node, and waiting for the end of the thread `mainline` runs it on.
//!
//! `mainline` starts a detached thread per node (its "actor") and gives back no handle to
//! join: the thread ends on its own once every handle to the node is dropped, after at
//! most one more turn of its loop (it reads its socket with a 50 ms timeout). To wait for
//! that end, the node is given a request filter of ours (a [`RequestFilter`] that lets
//! every request through): the actor owns the only copy, so the copy is dropped when the
//! actor drops its state, as the last thing before its thread returns. The drop sends
//! which thread it ran on, and [`DhtNode::close`] waits until the kernel no longer lists
//! that thread (Linux; elsewhere until the state is dropped, microseconds before).

use std::net::{SocketAddr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

use futures_lite::future::block_on;
use mainline::async_dht::AsyncDht;
use mainline::{Dht, RequestFilter, RequestSpecific, ServerSettings};

use crate::error::{Error, Result};

/// Most infohashes (rooms) a bootstrap node ([`DhtNode::bootstrap_node`]) keeps peers for;
/// past it the least recently announced one is forgotten.
pub const BOOTSTRAP_MAX_INFOHASHES: usize = 1_000;
/// Most peers a bootstrap node keeps per infohash (the least recently announced one goes
/// first). With [`BOOTSTRAP_MAX_INFOHASHES`], at most 100,000 entries of about 100 bytes.
pub const BOOTSTRAP_MAX_PEERS_PER_INFOHASH: usize = 100;
/// BEP 44 items (arbitrary values) a bootstrap node stores, of each kind: the chat uses
/// none, so few (`mainline` cannot turn them off; each is at most 1,000 bytes).
const BOOTSTRAP_MAX_VALUES: usize = 16;

/// How a node is set up (the engine's client or a bootstrap node).
#[derive(Debug, Clone)]
pub(crate) struct NodeOptions {
    /// Local address of the node's UDP socket.
    pub(crate) bind: SocketAddrV4,
    /// Nodes to join through; empty: this is the first node of a DHT.
    pub(crate) bootstrap: Vec<SocketAddrV4>,
    /// Answer other nodes' requests from the start (a bootstrap node); otherwise
    /// `mainline`'s adaptive mode: answer only once it has seen that it is reachable.
    pub(crate) server_mode: bool,
    pub(crate) request_timeout: Duration,
}

/// A running Mainline DHT node. Dropping it stops it like [`DhtNode::close`] with a
/// deadline of [`CLOSE_BOUND`](super::CLOSE_BOUND).
pub struct DhtNode {
    dht: Option<AsyncDht>,
    /// Receives, once, the thread id the node's state was dropped on (`None` off Linux);
    /// disconnected once it is dropped.
    ended: flume::Receiver<Option<u32>>,
    local_addr: SocketAddrV4,
}

impl std::fmt::Debug for DhtNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DhtNode")
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

impl DhtNode {
    /// Starts the first node of a private DHT on `bind` (IPv4 only): server mode (it
    /// answers requests and stores announces from the start) and no bootstrap node of its
    /// own. Peers and engines use its address as their bootstrap node. Port 0 picks a
    /// free one ([`DhtNode::local_addr`] tells which).
    ///
    /// It stores at most [`BOOTSTRAP_MAX_INFOHASHES`] ×
    /// [`BOOTSTRAP_MAX_PEERS_PER_INFOHASH`] announces, whoever sends them.
    pub fn bootstrap_node(bind: SocketAddr) -> Result<DhtNode> {
        let SocketAddr::V4(bind) = bind else {
            return Err(Error::Config(format!(
                "a DHT node needs an IPv4 address ({bind} is not): Mainline speaks IPv4 only"
            )));
        };
        DhtNode::start(&NodeOptions {
            bind,
            bootstrap: Vec::new(),
            server_mode: true,
            request_timeout: mainline::DEFAULT_REQUEST_TIMEOUT,
        })
    }

    pub(crate) fn start(options: &NodeOptions) -> Result<DhtNode> {
        let bind_error = |source| Error::Bind {
            addr: SocketAddr::V4(options.bind),
            source,
        };
        if options.bind.port() != 0 {
            // Tried here first: when `mainline` cannot bind, its thread ends on its own and
            // nothing tells when (the witness below only reports a thread that ran). UDP
            // has no TIME_WAIT: the port is free again as soon as this socket is dropped.
            drop(UdpSocket::bind(options.bind).map_err(bind_error)?);
        }
        let (witness, ended) = EndWitness::new();
        let mut builder = Dht::builder();
        builder
            .bind_address(*options.bind.ip())
            .port(options.bind.port())
            .request_timeout(options.request_timeout)
            .server_settings(ServerSettings {
                max_info_hashes: BOOTSTRAP_MAX_INFOHASHES,
                max_peers_per_info_hash: BOOTSTRAP_MAX_PEERS_PER_INFOHASH,
                max_immutable_values: BOOTSTRAP_MAX_VALUES,
                max_mutable_values: BOOTSTRAP_MAX_VALUES,
                filter: Box::new(witness),
            });
        if options.bootstrap.is_empty() {
            builder.no_bootstrap();
        } else {
            builder.bootstrap(&options.bootstrap);
        }
        if options.server_mode {
            builder.server_mode();
        }
        let built = builder.build();
        // The builder holds a copy of the witness: only the actor's copy may be left.
        drop(builder);
        let dht = built.map_err(bind_error)?.as_async();
        let local_addr = block_on(dht.info()).local_addr();
        Ok(DhtNode {
            dht: Some(dht),
            ended,
            local_addr,
        })
    }

    /// The address of the node's UDP socket (the port chosen when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        SocketAddr::V4(self.local_addr)
    }

    /// The node, for queries. `None` only once closing has begun.
    pub(crate) fn dht(&self) -> Option<&AsyncDht> {
        self.dht.as_ref()
    }

    /// Drops this handle to the node (the node stops once every handle is gone: hand out
    /// none that outlives this call) and waits until `mainline`'s thread has ended, or
    /// until `deadline`. `true` if it ended in time.
    pub fn close(mut self, deadline: Instant) -> bool {
        self.close_by(deadline)
    }

    fn close_by(&mut self, deadline: Instant) -> bool {
        if self.dht.take().is_none() {
            return true;
        }
        let ended = loop {
            match self.ended.recv_deadline(deadline) {
                // Linux: the thread's own id; it has dropped its state and is returning.
                Ok(Some(tid)) => break thread_gone(tid, deadline),
                Ok(None) => {}
                Err(flume::RecvTimeoutError::Disconnected) => break true,
                Err(flume::RecvTimeoutError::Timeout) => break false,
            }
        };
        if !ended {
            log::error!(
                "the DHT node on {} did not stop in time; its thread is left to end alone",
                self.local_addr
            );
        }
        ended
    }
}

impl Drop for DhtNode {
    fn drop(&mut self) {
        self.close_by(Instant::now() + super::CLOSE_BOUND);
    }
}

/// Polls until the kernel no longer lists thread `tid` of this process, or `deadline`.
/// The thread is past its last statement when this starts, so it takes microseconds.
#[cfg(target_os = "linux")]
fn thread_gone(tid: u32, deadline: Instant) -> bool {
    let path = format!("/proc/self/task/{tid}");
    while std::path::Path::new(&path).exists() {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    true
}

#[cfg(not(target_os = "linux"))]
fn thread_gone(_tid: u32, _deadline: Instant) -> bool {
    true
}

/// The request filter given to `mainline`: lets every request through, and tells, when
/// dropped, which thread dropped it.
#[derive(Debug, Clone)]
struct EndWitness(flume::Sender<Option<u32>>);

impl EndWitness {
    fn new() -> (EndWitness, flume::Receiver<Option<u32>>) {
        let (tx, rx) = flume::bounded(1);
        (EndWitness(tx), rx)
    }
}

impl RequestFilter for EndWitness {
    fn allow_request(&self, _request: &RequestSpecific, _from: SocketAddrV4) -> bool {
        true
    }
}

impl Drop for EndWitness {
    fn drop(&mut self) {
        // Only the last copy's drop matters (the builder's goes first); the channel holds
        // one message, so a later one replaces nothing and is dropped.
        if self.0.sender_count() == 1 {
            let _ = self.0.try_send(current_thread_id());
        }
    }
}

/// This thread's kernel id (Linux: from `/proc/thread-self`, a link to
/// `/proc/PID/task/TID`).
fn current_thread_id() -> Option<u32> {
    if !cfg!(target_os = "linux") {
        return None;
    }
    std::fs::read_link("/proc/thread-self")
        .ok()?
        .file_name()?
        .to_str()?
        .parse()
        .ok()
}
