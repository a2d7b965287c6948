//! The tracker's server: accept thread, worker pool, and the request handling.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError};
use log::{debug, info, warn};
use p2p_core::net::{read_frame_before, write_frame};
use p2p_core::protocol::{Frame, FrameReader, PeerList};

use crate::registry::{Announced, Registry, RegistryLimits};

/// Largest request the tracker reads: an announce or leave is a few dozen bytes.
const MAX_REQUEST_BYTES: usize = 1024;

/// Configuration of a [`Tracker`]: a plain struct with defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackerConfig {
    /// Where to listen (default `0.0.0.0:7000`).
    pub bind_addr: SocketAddr,
    /// How long a registration lives without a re-announce (default 60 s). Peers are told
    /// to re-announce every third of it.
    pub ttl: Duration,
    /// Most peers registered at once (default 10,000).
    pub max_peers: usize,
    /// Most peers registered from one source IP address (default 1,000), so one host
    /// cannot fill the registry.
    pub max_per_source: usize,
    /// Most addresses in one answer (default 256).
    pub max_response: usize,
    /// Worker threads answering requests (default 4).
    pub workers: usize,
    /// Connections accepted but not yet taken by a worker (default 256); past it, new
    /// connections are closed at once.
    pub max_pending: usize,
    /// Time a client has to send its whole request (default 5 s).
    pub request_timeout: Duration,
}

/// The port a tracker listens on when none is given.
pub const DEFAULT_PORT: u16 = 7000;

impl Default for TrackerConfig {
    fn default() -> Self {
        TrackerConfig {
            bind_addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), DEFAULT_PORT),
            ttl: Duration::from_secs(60),
            max_peers: 10_000,
            max_per_source: 1_000,
            max_response: 256,
            workers: 4,
            max_pending: 256,
            request_timeout: Duration::from_secs(5),
        }
    }
}

/// The shortest TTL a tracker takes: peers re-announce at most once a second, and every
/// third of the TTL, so a 3 s TTL leaves room for two late re-announces.
pub const MIN_TTL: Duration = Duration::from_secs(3);

impl TrackerConfig {
    /// The re-announce interval peers are told, in seconds: a third of the TTL, at least 1.
    pub fn interval_secs(&self) -> u32 {
        u32::try_from((self.ttl.as_secs() / 3).max(1)).unwrap_or(u32::MAX)
    }
}

/// What can stop a tracker from starting.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The listening socket could not be opened.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// What the OS said.
        source: io::Error,
    },
    /// A configuration value is out of range.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// Another I/O failure (starting a thread, reading the bound address).
    #[error(transparent)]
    Io(#[from] io::Error),
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

struct Shared {
    config: TrackerConfig,
    registry: Mutex<Registry>,
    stopping: AtomicBool,
    /// The connection each worker is serving, so shutdown can cut it.
    serving: Mutex<Vec<Option<TcpStream>>>,
    /// How many refusal lines may still be logged this second.
    refusals: LogBudget,
}

/// Refusal lines logged per second at most. Past it, refusals are counted and summed up in
/// one line the next second, so a flood of bad requests cannot fill the operator's log.
const REFUSALS_LOGGED_PER_SEC: u32 = 20;

/// A per-second budget of log lines.
#[derive(Debug, Default)]
struct LogBudget {
    inner: Mutex<Budget>,
}

#[derive(Debug, Default)]
struct Budget {
    window: Option<Instant>,
    logged: u32,
    suppressed: u64,
}

/// What to do with one more line.
#[derive(Debug, PartialEq, Eq)]
enum Admit {
    /// Log it.
    Log,
    /// Log it, after a line saying how many were left out in the last window.
    LogAfter(u64),
    /// Leave it out (it is counted).
    Suppress,
}

impl LogBudget {
    fn admit(&self, now: Instant) -> Admit {
        let mut b = lock(&self.inner);
        let mut left_out = 0;
        if b.window
            .is_none_or(|w| now.duration_since(w) >= Duration::from_secs(1))
        {
            left_out = b.suppressed;
            *b = Budget {
                window: Some(now),
                ..Budget::default()
            };
        }
        if b.logged >= REFUSALS_LOGGED_PER_SEC {
            b.suppressed += 1;
            return Admit::Suppress;
        }
        b.logged += 1;
        if left_out > 0 {
            Admit::LogAfter(left_out)
        } else {
            Admit::Log
        }
    }

    /// Logs a refusal within the budget.
    fn log(&self, level: log::Level, line: impl FnOnce() -> String) {
        if !log::log_enabled!(level) {
            return;
        }
        match self.admit(Instant::now()) {
            Admit::Suppress => {}
            Admit::LogAfter(n) => {
                log::log!(
                    level,
                    "({n} more refusals were not logged in the last second)"
                );
                log::log!(level, "{}", line());
            }
            Admit::Log => log::log!(level, "{}", line()),
        }
    }
}

/// A running tracker. Dropping it shuts it down like [`Tracker::shutdown`].
pub struct Tracker {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    threads: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Tracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracker")
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

impl Tracker {
    /// Binds and starts the accept thread and the workers.
    pub fn start(config: TrackerConfig) -> Result<Tracker, Error> {
        if config.workers == 0 || config.max_pending == 0 {
            return Err(Error::Config(
                "workers and max_pending must be positive".into(),
            ));
        }
        if config.ttl < MIN_TTL {
            // Peers re-announce every whole second at the fastest: a shorter TTL would
            // expire live peers between two re-announces.
            return Err(Error::Config(format!(
                "ttl must be at least {} s",
                MIN_TTL.as_secs()
            )));
        }
        let backlog = u32::try_from(config.max_pending.max(1024)).unwrap_or(u32::MAX);
        let listener =
            p2p_core::net::listen(config.bind_addr, backlog).map_err(|source| Error::Bind {
                addr: config.bind_addr,
                source,
            })?;
        let local_addr = listener.local_addr()?;
        let registry = Registry::new(RegistryLimits {
            ttl: config.ttl,
            max_peers: config.max_peers,
            max_per_source: config.max_per_source,
            max_response: config.max_response,
        });
        let shared = Arc::new(Shared {
            serving: Mutex::new((0..config.workers).map(|_| None).collect()),
            registry: Mutex::new(registry),
            stopping: AtomicBool::new(false),
            refusals: LogBudget::default(),
            config,
        });
        let mut tracker = Tracker {
            shared: Arc::clone(&shared),
            local_addr,
            threads: Vec::new(),
        };
        // From here on an early return drops `tracker`, which joins what was started.
        let (tx, rx) = crossbeam_channel::bounded(shared.config.max_pending);
        for worker in 0..shared.config.workers {
            let (shared, rx) = (Arc::clone(&shared), rx.clone());
            tracker.threads.push(
                thread::Builder::new()
                    .name(format!("tracker-worker-{worker}"))
                    .spawn(move || work(&shared, &rx, worker))?,
            );
        }
        let accept_shared = Arc::clone(&shared);
        tracker.threads.push(
            thread::Builder::new()
                .name("tracker-accept".into())
                .spawn(move || accept(&accept_shared, &listener, tx))?,
        );
        info!(
            "tracker listening on {local_addr} (ttl {}s, re-announce every {}s)",
            shared.config.ttl.as_secs(),
            shared.config.interval_secs()
        );
        Ok(tracker)
    }

    /// The address the tracker is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The peers registered now (expired ones left out), sorted.
    pub fn peers(&self) -> Vec<SocketAddr> {
        lock(&self.shared.registry).peers(Instant::now())
    }

    /// Stops accepting, cuts the connections being served, and joins every thread.
    pub fn shutdown(self) {}

    fn stop(&mut self) {
        if self.shared.stopping.swap(true, Ordering::SeqCst) {
            return;
        }
        let wake = match self.local_addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        let _ = TcpStream::connect_timeout(
            &SocketAddr::new(wake, self.local_addr.port()),
            Duration::from_secs(1),
        );
        for stream in lock(&self.shared.serving).iter().flatten() {
            let _ = stream.shutdown(Shutdown::Both);
        }
        for handle in self.threads.drain(..) {
            let _ = handle.join();
        }
        info!("tracker on {} stopped", self.local_addr);
    }
}

impl Drop for Tracker {
    fn drop(&mut self) {
        self.stop();
    }
}

fn accept(shared: &Shared, listener: &TcpListener, tx: Sender<(TcpStream, SocketAddr)>) {
    loop {
        let accepted = listener.accept();
        if shared.stopping.load(Ordering::SeqCst) {
            break;
        }
        match accepted {
            Ok(conn) => {
                match tx.try_send(conn) {
                    Ok(()) => {}
                    Err(TrySendError::Full((_, remote))) => {
                        shared.refusals.log(log::Level::Warn, || {
                        format!("closed connection from {remote}: all workers busy and the queue full")
                    });
                    }
                    Err(TrySendError::Disconnected(_)) => break,
                }
            }
            Err(e) => {
                warn!("accept failed: {e}");
                // Out of descriptors: give the workers a moment to close some.
                thread::sleep(Duration::from_millis(50));
            }
        }
    }
    // Dropping `tx` here lets the workers finish the queue and stop.
}

fn work(shared: &Shared, rx: &Receiver<(TcpStream, SocketAddr)>, worker: usize) {
    while let Ok((stream, remote)) = rx.recv() {
        // Registered before the flag is checked: `stop` raises the flag and then cuts the
        // registered connections, so either it cuts this one or this worker sees the flag.
        if let Ok(clone) = stream.try_clone() {
            lock(&shared.serving)[worker] = Some(clone);
        }
        if !shared.stopping.load(Ordering::SeqCst) {
            serve(shared, &stream, remote);
        } // else: drain and close what is queued
        lock(&shared.serving)[worker] = None;
    }
}

/// Answers one request on one connection.
fn serve(shared: &Shared, stream: &TcpStream, remote: SocketAddr) {
    let _ = stream.set_nodelay(true);
    let _ = stream.set_write_timeout(Some(shared.config.request_timeout));
    let mut reader = FrameReader::new(MAX_REQUEST_BYTES);
    let deadline = Instant::now() + shared.config.request_timeout;
    let request = match read_frame_before(stream, &mut reader, deadline) {
        Ok(frame) => frame,
        Err(e) => {
            shared.refusals.log(log::Level::Info, || {
                format!("closed connection from {remote}: {e}")
            });
            return;
        }
    };
    let source = remote.ip();
    let answer = match request {
        Frame::Announce(announce) => {
            let result =
                lock(&shared.registry).announce(announce.listen_addr, source, Instant::now());
            match result {
                Ok(Announced { peers, evicted }) => {
                    debug!(
                        "announce of {} from {remote}: {} peers",
                        announce.listen_addr,
                        peers.len()
                    );
                    if let Some(evicted) = evicted {
                        shared.refusals.log(log::Level::Info, || {
                            format!(
                                "registry full: {evicted} gave its place to {} from {remote} \
                                 (its source held the most entries)",
                                announce.listen_addr
                            )
                        });
                    }
                    Frame::PeerList(PeerList {
                        interval_secs: shared.config.interval_secs(),
                        peers,
                    })
                }
                Err(refusal) => {
                    shared.refusals.log(log::Level::Info, || {
                        format!("refused announce from {remote}: {refusal}")
                    });
                    Frame::Refuse {
                        reason: refusal.to_string(),
                    }
                }
            }
        }
        Frame::Leave { listen_addr } => {
            let result = lock(&shared.registry).leave(listen_addr, source);
            match result {
                Ok(was_there) => {
                    debug!("leave of {listen_addr} from {remote} (registered: {was_there})");
                    Frame::LeaveAck
                }
                Err(refusal) => {
                    shared.refusals.log(log::Level::Info, || {
                        format!("refused leave from {remote}: {refusal}")
                    });
                    Frame::Refuse {
                        reason: refusal.to_string(),
                    }
                }
            }
        }
        other => {
            shared.refusals.log(log::Level::Info, || {
                format!(
                    "closed connection from {remote}: unexpected {} frame",
                    other.name()
                )
            });
            Frame::Refuse {
                reason: format!("a tracker does not take {} frames", other.name()),
            }
        }
    };
    if let Err(e) = write_frame(stream, &answer) {
        debug!("could not answer {remote}: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_logged_within_a_budget_per_second_and_summed_up_after() {
        let budget = LogBudget::default();
        let start = Instant::now();
        for _ in 0..REFUSALS_LOGGED_PER_SEC {
            assert_eq!(budget.admit(start), Admit::Log);
        }
        for i in 0..100 {
            assert_eq!(
                budget.admit(start + Duration::from_millis(i)),
                Admit::Suppress
            );
        }
        let next = start + Duration::from_secs(1);
        assert_eq!(budget.admit(next), Admit::LogAfter(100));
        assert_eq!(budget.admit(next), Admit::Log);
    }
}
