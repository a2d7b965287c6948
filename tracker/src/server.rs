//! The running tracker's handle: binds, starts the event loop's thread, and stops and
//! joins it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use log::info;
use mio::{Poll, Waker};
use p2p_core::dht::DhtNode;

use crate::config::TrackerConfig;
use crate::error::Error;
use crate::event_loop::{EventLoop, WAKER};
use crate::registry::{Registry, SharedRegistry};

/// Connections the kernel may hold for the tracker before it accepts them (std's default
/// of 128 would drop SYNs during a burst). The kernel caps it at `net.core.somaxconn`.
const LISTEN_BACKLOG: u32 = 1024;

/// How long [`Tracker::shutdown`] waits for the DHT node's thread (inside the tracker's 2 s
/// bound; it takes one turn of the node's loop, under 100 ms).
const DHT_CLOSE_BOUND: Duration = Duration::from_millis(1500);

/// A running tracker. Dropping it shuts it down like [`Tracker::shutdown`].
///
/// It runs one thread, the event loop, which serves every connection (see the crate docs),
/// and with [`TrackerConfig::dht_port`] a second one, the DHT node's (the `mainline`
/// crate's).
pub struct Tracker {
    local_addr: SocketAddr,
    stats_addr: Option<SocketAddr>,
    dht: Option<DhtNode>,
    registry: Arc<SharedRegistry>,
    stop: Arc<AtomicBool>,
    waker: Waker,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Tracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracker")
            .field("local_addr", &self.local_addr)
            .field("stats_addr", &self.stats_addr)
            .field("dht_addr", &self.dht_addr())
            .finish_non_exhaustive()
    }
}

impl Tracker {
    /// Checks the configuration, binds the listener (and the stats endpoint's, if asked
    /// for), starts the DHT node if asked for, and starts the event loop.
    pub fn start(config: TrackerConfig) -> Result<Tracker, Error> {
        config.validate()?;
        let bind = |addr: SocketAddr, backlog: u32| {
            let listener = p2p_core::net::listen(addr, backlog)
                .and_then(|l| l.set_nonblocking(true).map(|()| l))
                .map_err(|source| Error::Bind { addr, source })?;
            let local = listener.local_addr()?;
            Ok::<_, Error>((listener, local))
        };
        let (listener, local_addr) = bind(config.bind_addr, LISTEN_BACKLOG)?;
        let (stats_listener, stats_addr) = match config.stats_addr {
            Some(addr) => {
                let (listener, local) = bind(addr, 128)?;
                (Some(listener), Some(local))
            }
            None => (None, None),
        };
        let dht = match config.dht_port {
            Some(port) => {
                let addr = SocketAddr::new(config.bind_addr.ip(), port);
                let node = DhtNode::bootstrap_node(addr).map_err(|e| match e {
                    p2p_core::Error::Bind { addr, source } => Error::Bind { addr, source },
                    other => Error::Config(other.to_string()),
                })?;
                info!(
                    "DHT node (private bootstrap node) on udp {}",
                    node.local_addr()
                );
                Some(node)
            }
            None => None,
        };
        let registry = Arc::new(SharedRegistry::new(Registry::new(config.registry_limits())));
        let stop = Arc::new(AtomicBool::new(false));
        let poll = Poll::new()?;
        let waker = Waker::new(poll.registry(), WAKER)?;
        let event_loop = EventLoop::new(
            poll,
            listener,
            stats_listener,
            &config,
            Arc::clone(&registry),
            Arc::clone(&stop),
        )?;
        let thread = thread::Builder::new()
            .name("tracker".into())
            .spawn(move || event_loop.run())?;
        info!(
            "tracker listening on {local_addr} (ttl {}s, re-announce every {}s)",
            config.ttl.as_secs(),
            config.interval_secs()
        );
        if let Some(addr) = stats_addr {
            info!("tracker stats on http://{addr}/metrics");
        }
        Ok(Tracker {
            local_addr,
            stats_addr,
            dht,
            registry,
            stop,
            waker,
            thread: Some(thread),
        })
    }

    /// The address the tracker is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The address the stats endpoint is bound to, if it was asked for.
    pub fn stats_addr(&self) -> Option<SocketAddr> {
        self.stats_addr
    }

    /// The address of the DHT node's UDP socket, if one runs
    /// ([`TrackerConfig::dht_port`]).
    pub fn dht_addr(&self) -> Option<SocketAddr> {
        self.dht.as_ref().map(DhtNode::local_addr)
    }

    /// The peers registered now (expired ones left out), sorted.
    pub fn peers(&self) -> Vec<SocketAddr> {
        self.registry.lock().peers(Instant::now())
    }

    /// Stops the event loop, which closes every connection and listener, and joins its
    /// thread; stops the DHT node, if one runs, and waits for its thread to end. It returns
    /// at once whatever the network does (within 2 s): the loop never blocks on a socket,
    /// the waker interrupts its wait, and the DHT node's thread reads its socket with a
    /// 50 ms timeout.
    pub fn shutdown(self) {}

    fn stop(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        let started = Instant::now();
        self.stop.store(true, Ordering::SeqCst);
        if let Err(e) = self.waker.wake() {
            // The loop still sees the flag within its longest sleep (1 s).
            log::warn!("cannot wake the tracker's event loop: {e}");
        }
        let _ = thread.join();
        if let Some(dht) = self.dht.take() {
            // Logs it if the node's thread is late.
            dht.close(started + DHT_CLOSE_BOUND);
        }
        info!("tracker on {} stopped", self.local_addr);
    }
}

impl Drop for Tracker {
    fn drop(&mut self) {
        self.stop();
    }
}
