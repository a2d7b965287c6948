//! The tracker's one serving thread: an event loop over non-blocking sockets (`mio`).
//!
//! Why one event loop: a tracker request is one small frame in and one frame out, so the
//! work per connection is tiny and the cost of a connection is what it holds while it
//! waits. Here a waiting connection is a socket and a small state in a table (no thread, no
//! stack, no read buffer until its first bytes arrive), so thousands can be open at once
//! while every other host is served, as opentracker serves them. A pool of blocking
//! workers, however large, is held by as many idle connections as it has workers.
//!
//! Each connection goes through: reading its request, then writing its answer, then it is
//! closed. The
//! [`Connections`] table holds them with their deadline and enforces the per-source and
//! total caps. Shutdown sets the stop flag and wakes the poll through a `mio::Waker`; the
//! loop returns and every socket it holds is closed as it is dropped.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use log::{debug, warn};
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token};
use p2p_core::protocol::FrameReader;

use crate::config::TrackerConfig;
use crate::connections::{Admission, ConnectionLimits, Connections, Crowded};
use crate::log_budget::LogBudget;
use crate::registry::SharedRegistry;
use crate::request::MAX_REQUEST_BYTES;
use crate::serve::{Conn, Service, State, Step};

/// The peers' listener.
const LISTENER: Token = Token(usize::MAX);
/// The waker that shutdown uses. Connections' tokens are table keys, far below these.
pub(crate) const WAKER: Token = Token(usize::MAX - 2);

/// Connections accepted in one go before the loop serves the others (a connect flood
/// cannot keep it accepting).
const ACCEPT_BATCH: usize = 256;
/// How long accepting pauses when the OS refuses to accept (out of file descriptors).
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);
/// Longest sleep of the loop, so the stop flag is seen even if a wake-up were lost.
const MAX_SLEEP: Duration = Duration::from_secs(1);

/// The loop and everything it owns.
pub(crate) struct EventLoop {
    poll: Poll,
    listener: TcpListener,
    conns: Connections<Conn>,
    service: Service,
    stop: Arc<AtomicBool>,
    /// Set when accepting failed for want of resources: try again then.
    accept_paused_until: Option<Instant>,
    /// Set when a listener may still hold connections after a full batch.
    accept_more: bool,
}

impl EventLoop {
    /// Registers the listener (non-blocking already) with `poll`.
    pub(crate) fn new(
        poll: Poll,
        listener: std::net::TcpListener,
        config: &TrackerConfig,
        registry: Arc<SharedRegistry>,
        stop: Arc<AtomicBool>,
    ) -> io::Result<EventLoop> {
        let mut listener = TcpListener::from_std(listener);
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        Ok(EventLoop {
            poll,
            listener,
            conns: Connections::new(ConnectionLimits {
                max_open: config.max_connections,
                max_per_source: config.max_connections_per_source,
                timeout: config.request_timeout,
            }),
            service: Service {
                registry,
                interval_secs: config.interval_secs(),
                budget: LogBudget::default(),
            },
            stop,
            accept_paused_until: None,
            accept_more: false,
        })
    }

    /// Serves until the stop flag is raised; every socket is closed when it returns.
    pub(crate) fn run(mut self) {
        let mut events = Events::with_capacity(1024);
        while !self.stop.load(Ordering::SeqCst) {
            let timeout = self.sleep(Instant::now());
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                if e.kind() != io::ErrorKind::Interrupted {
                    warn!("tracker event loop: poll failed: {e}");
                    std::thread::sleep(ACCEPT_PAUSE);
                }
                continue;
            }
            let now = Instant::now();
            for event in &events {
                match event.token() {
                    WAKER => {}
                    LISTENER => self.accept_more = true,
                    Token(key) => self.drive(key, now),
                }
            }
            if self.accept_more && self.accept_paused_until.is_none_or(|t| now >= t) {
                self.accept_paused_until = None;
                self.accept(now);
            }
            self.expire(now);
        }
        debug!(
            "tracker event loop stopped, closing {} connections",
            self.conns.len()
        );
    }

    /// How long the poll may sleep: until the next deadline or accept retry.
    fn sleep(&self, now: Instant) -> Duration {
        if self.accept_more && self.accept_paused_until.is_none() {
            return Duration::ZERO;
        }
        [self.conns.next_deadline(), self.accept_paused_until]
            .into_iter()
            .flatten()
            .map(|t| t.saturating_duration_since(now))
            .fold(MAX_SLEEP, Duration::min)
    }

    /// Accepts up to a batch of connections; admits each under the caps or closes it.
    fn accept(&mut self, now: Instant) {
        self.accept_more = false;
        for n in 0.. {
            if n == ACCEPT_BATCH {
                self.accept_more = true;
                break;
            }
            match self.listener.accept() {
                Ok((stream, remote)) => {
                    let conn = Conn {
                        stream,
                        remote,
                        state: State::Request(FrameReader::new(MAX_REQUEST_BYTES)),
                    };
                    admit(
                        &mut self.conns,
                        &mut self.service,
                        self.poll.registry(),
                        conn,
                        now,
                    );
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted
                    ) => {}
                Err(e) => {
                    // Out of file descriptors (or memory): the connections stay in the
                    // kernel's backlog until some are closed.
                    self.service.budget.log(now, log::Level::Warn, || {
                        format!("accept failed: {e}; trying again shortly")
                    });
                    self.accept_more = true;
                    self.accept_paused_until = Some(now + ACCEPT_PAUSE);
                    return;
                }
            }
        }
    }

    /// Moves connection `key` on after its socket reported readiness.
    fn drive(&mut self, key: usize, now: Instant) {
        let Some(conn) = self.conns.get_mut(key) else {
            return; // closed earlier in this round
        };
        if self.service.drive(conn, now) == Step::Close {
            self.conns.remove(key);
        }
    }

    /// Closes the connections whose deadline has come.
    fn expire(&mut self, now: Instant) {
        while let Some((_, conn)) = self.conns.pop_expired(now) {
            let what = match conn.state {
                State::Answer { .. } => "did not take its answer",
                _ => "sent no whole request",
            };
            self.service.budget.log(now, log::Level::Info, || {
                format!("closed connection from {}: {what} in time", conn.remote)
            });
        }
    }
}

/// Puts `conn` in the table and registers it, or closes it if its source or the tracker
/// is at its cap.
fn admit(
    conns: &mut Connections<Conn>,
    service: &mut Service,
    registry: &mio::Registry,
    conn: Conn,
    now: Instant,
) {
    let remote = conn.remote;
    match conns.admit(conn, remote.ip(), now) {
        Admission::Admitted { key, evicted } => {
            if let Some((_, old)) = evicted {
                service.budget.log(now, log::Level::Info, || {
                    format!(
                        "closed connection from {}: it gave its place to {remote} (all {} \
                         places taken; its source held the most)",
                        old.remote,
                        conns.len()
                    )
                });
            }
            let registered = conns.get_mut(key).map(|c| {
                registry.register(
                    &mut c.stream,
                    Token(key),
                    Interest::READABLE | Interest::WRITABLE,
                )
            });
            if let Some(Err(e)) = registered {
                warn!("cannot watch the connection from {remote}: {e}");
                conns.remove(key);
            }
        }
        Admission::Refused(_conn, why) => {
            let reason = match why {
                Crowded::Source => "its source holds its most connections already",
                Crowded::Full => "the tracker holds its most connections",
            };
            service.budget.log(now, log::Level::Info, || {
                format!("closed connection from {remote}: {reason}")
            });
        }
    }
}
