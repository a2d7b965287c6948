//! The running tracker's handle: binds, starts the event loop's thread, and stops and
//! joins it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Instant;

use log::info;
use mio::{Poll, Waker};

use crate::config::TrackerConfig;
use crate::error::Error;
use crate::event_loop::{EventLoop, WAKER};
use crate::registry::{Registry, SharedRegistry};

/// Connections the kernel may hold for the tracker before it accepts them (std's default
/// of 128 would drop SYNs during a burst). The kernel caps it at `net.core.somaxconn`.
const LISTEN_BACKLOG: u32 = 1024;

/// A running tracker. Dropping it shuts it down like [`Tracker::shutdown`].
///
/// It runs one thread, the event loop, which serves every connection (see the crate docs).
pub struct Tracker {
    local_addr: SocketAddr,
    stats_addr: Option<SocketAddr>,
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
            .finish_non_exhaustive()
    }
}

impl Tracker {
    /// Checks the configuration, binds the listener (and the stats endpoint's, if asked
    /// for) and starts the event loop.
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

    /// The peers registered now (expired ones left out), sorted.
    pub fn peers(&self) -> Vec<SocketAddr> {
        self.registry.lock().peers(Instant::now())
    }

    /// Stops the event loop, which closes every connection and listener, and joins its
    /// thread. It returns at once whatever the network does: the loop never blocks on a
    /// socket, and the waker interrupts its wait.
    pub fn shutdown(self) {}

    fn stop(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        self.stop.store(true, Ordering::SeqCst);
        if let Err(e) = self.waker.wake() {
            // The loop still sees the flag within its longest sleep (1 s).
            log::warn!("cannot wake the tracker's event loop: {e}");
        }
        let _ = thread.join();
        info!("tracker on {} stopped", self.local_addr);
    }
}

impl Drop for Tracker {
    fn drop(&mut self) {
        self.stop();
    }
}
