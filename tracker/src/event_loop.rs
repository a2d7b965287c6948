//! The tracker's one serving thread: an event loop over non-blocking sockets (`mio`).
//!
//! Why one event loop: a tracker request is one small frame in and one frame out, so the
//! work per connection is tiny and the cost of a connection is what it holds while it
//! waits. Here a waiting connection is a socket and a small state in a table (no thread, no
//! stack, no read buffer until its first bytes arrive), so thousands can be open at once
//! while every other host is served, as opentracker serves them. A pool of blocking
//! workers, however large, is held by as many idle connections as it has workers.
//!
//! A peer's connection is a session: requests (announces, a leave) in, answers and pushed
//! introductions out, until the peer leaves or closes it, or falls silent for longer than
//! the TTL; a connection that has sent no valid announce within the request timeout is
//! closed. A stats connection reads an HTTP request head, writes its answer and is closed.
//! The [`Connections`] table holds them with their deadline and enforces the per-source and
//! total caps; `sessions` finds the session of a registered peer, to push to it. Shutdown sets the stop flag and wakes the poll through a `mio::Waker`; the
//! loop returns and every socket it holds is closed as it is dropped.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use log::{debug, info, warn};
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token};
use p2p_core::protocol::{Frame, Room};

use crate::config::TrackerConfig;
use crate::connections::{Admission, ConnectionLimits, Connections, Crowded};
use crate::log_budget::LogBudget;
use crate::registry::SharedRegistry;
use crate::request::as_seen_by;
use crate::serve::{Conn, Effects, Service, Session, State, Step};
use crate::stats::{self, Counters};

/// The peers' listener.
const LISTENER: Token = Token(usize::MAX);
/// The stats endpoint's listener.
const STATS_LISTENER: Token = Token(usize::MAX - 1);
/// The waker that shutdown uses. Connections' tokens are table keys, far below these.
pub(crate) const WAKER: Token = Token(usize::MAX - 2);

/// Connections accepted in one go before the loop serves the others (a connect flood
/// cannot keep it accepting).
const ACCEPT_BATCH: usize = 256;
/// How long accepting pauses when the OS refuses to accept (out of file descriptors).
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);
/// Longest sleep of the loop, so the stop flag is seen even if a wake-up were lost.
const MAX_SLEEP: Duration = Duration::from_secs(1);

/// The periodic summary's state.
#[derive(Debug)]
struct Summary {
    every: Duration,
    next: Instant,
    last: Counters,
    last_at: Instant,
}

/// The loop and everything it owns.
pub(crate) struct EventLoop {
    poll: Poll,
    listener: TcpListener,
    stats_listener: Option<TcpListener>,
    conns: Connections<Conn>,
    /// The session of each registered peer, by its registration.
    sessions: HashMap<(Room, SocketAddr), usize>,
    /// How long a session may stay silent.
    ttl: Duration,
    service: Service,
    stop: Arc<AtomicBool>,
    summary: Option<Summary>,
    /// Set when accepting failed for want of resources: try again then.
    accept_paused_until: Option<Instant>,
    /// Set when a listener may still hold connections after a full batch.
    accept_more: bool,
}

impl EventLoop {
    /// Registers the listeners (non-blocking already) with `poll`.
    pub(crate) fn new(
        poll: Poll,
        listener: std::net::TcpListener,
        stats_listener: Option<std::net::TcpListener>,
        config: &TrackerConfig,
        registry: Arc<SharedRegistry>,
        stop: Arc<AtomicBool>,
    ) -> io::Result<EventLoop> {
        let mut listener = TcpListener::from_std(listener);
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let stats_listener = match stats_listener {
            Some(l) => {
                let mut l = TcpListener::from_std(l);
                poll.registry()
                    .register(&mut l, STATS_LISTENER, Interest::READABLE)?;
                Some(l)
            }
            None => None,
        };
        let now = Instant::now();
        Ok(EventLoop {
            poll,
            listener,
            stats_listener,
            conns: Connections::new(ConnectionLimits {
                max_open: config.max_connections,
                max_per_source: config.max_connections_per_source,
                timeout: config.request_timeout,
            }),
            sessions: HashMap::new(),
            ttl: config.ttl,
            service: Service {
                registry,
                interval_secs: config.interval_secs(),
                counters: Counters::default(),
                budget: LogBudget::default(),
            },
            stop,
            summary: config.summary_interval.map(|every| Summary {
                every,
                next: now + every,
                last: Counters::default(),
                last_at: now,
            }),
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
                    LISTENER | STATS_LISTENER => self.accept_more = true,
                    Token(key) => self.drive(key, now),
                }
            }
            if self.accept_more && self.accept_paused_until.is_none_or(|t| now >= t) {
                self.accept_paused_until = None;
                self.accept(now);
            }
            self.expire(now);
            self.summarize(now);
        }
        debug!(
            "tracker event loop stopped, closing {} connections",
            self.conns.len()
        );
    }

    /// How long the poll may sleep: until the next deadline, summary or accept retry.
    fn sleep(&self, now: Instant) -> Duration {
        if self.accept_more && self.accept_paused_until.is_none() {
            return Duration::ZERO;
        }
        [
            self.conns.next_deadline(),
            self.summary.as_ref().map(|s| s.next),
            self.accept_paused_until,
        ]
        .into_iter()
        .flatten()
        .map(|t| t.saturating_duration_since(now))
        .fold(MAX_SLEEP, Duration::min)
    }

    /// Accepts up to a batch from each listener; admits each under the caps or closes it.
    fn accept(&mut self, now: Instant) {
        self.accept_more = false;
        let listeners = [
            (Some(&self.listener), false),
            (self.stats_listener.as_ref(), true),
        ];
        for (listener, is_stats) in listeners {
            let Some(listener) = listener else { continue };
            for n in 0.. {
                if n == ACCEPT_BATCH {
                    self.accept_more = true;
                    break;
                }
                match listener.accept() {
                    Ok((stream, remote)) => {
                        let state = if is_stats {
                            State::HttpRequest(Vec::new())
                        } else {
                            State::Session(Session::default())
                        };
                        let local = stream
                            .local_addr()
                            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |a| a.ip());
                        let conn = Conn {
                            stream,
                            remote,
                            local,
                            state,
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
    }

    /// Moves connection `key` on after its socket reported readiness, then carries out
    /// what that changed: the session's deadline, its registration, and the introductions
    /// to push to other sessions (which are driven in turn to write them).
    fn drive(&mut self, key: usize, now: Instant) {
        let mut due = vec![key];
        while let Some(key) = due.pop() {
            let open = self.conns.len();
            let Some(conn) = self.conns.get_mut(key) else {
                continue; // closed earlier in this round
            };
            let before = registration(conn);
            let mut effects = Effects::default();
            let step = self.service.drive(conn, now, open, &mut effects);
            let after = registration(conn);
            if before != after {
                if let Some(old) = before {
                    self.forget(&old, key);
                }
                if let Some(new) = after {
                    self.sessions.insert(new, key);
                }
            }
            if effects.renewed {
                self.conns.renew(key, now + self.ttl);
            }
            if step == Step::Close {
                self.close(key);
            }
            for (room, to, mut intro) in effects.pushes {
                let registered = (room, to);
                let Some(&target) = self.sessions.get(&registered) else {
                    continue; // registered without a session open now
                };
                let Some(conn) = self.conns.get_mut(target) else {
                    continue;
                };
                if registration(conn).as_ref() != Some(&registered) {
                    continue; // the place of a session closed meanwhile
                }
                intro.addr = as_seen_by(intro.addr, conn.remote.ip(), conn.local);
                if let State::Session(session) = &mut conn.state {
                    if session.queue(&Frame::Introduce(intro)) {
                        due.push(target);
                    } else {
                        self.service.budget.log(now, log::Level::Info, || {
                            format!("closed session of {}: it reads nothing", conn.remote)
                        });
                        self.close(target);
                    }
                }
            }
        }
    }

    /// Removes connection `key` (its socket closes as it is dropped).
    fn close(&mut self, key: usize) {
        if let Some(conn) = self.conns.remove(key)
            && let Some(registered) = registration(&conn)
        {
            self.forget(&registered, key);
        }
    }

    /// Forgets that `registered`'s session is `key`.
    fn forget(&mut self, registered: &(Room, SocketAddr), key: usize) {
        if self.sessions.get(registered) == Some(&key) {
            self.sessions.remove(registered);
        }
    }

    /// Closes the connections whose deadline has come.
    fn expire(&mut self, now: Instant) {
        while let Some((key, conn)) = self.conns.pop_expired(now) {
            if let Some(registered) = registration(&conn) {
                self.forget(&registered, key);
            }
            self.service.counters.timed_out += 1;
            let what = match conn.state {
                State::Session(ref s) if s.registered.is_some() => "session silent for the TTL",
                State::Answer { .. } => "did not take its answer",
                _ => "sent no whole request",
            };
            self.service.budget.log(now, log::Level::Info, || {
                format!("closed connection from {}: {what}", conn.remote)
            });
        }
    }

    /// Logs the summary line when it is due.
    fn summarize(&mut self, now: Instant) {
        let Some(summary) = self.summary.as_mut() else {
            return;
        };
        if now < summary.next {
            return;
        }
        let counters = self.service.counters;
        let gauges = self.service.gauges(now, self.conns.len());
        info!(
            "{}",
            stats::summary_line(&summary.last, &counters, now - summary.last_at, &gauges)
        );
        summary.last = counters;
        summary.last_at = now;
        summary.next = now + summary.every;
    }
}

/// The registration a connection's session keeps alive.
fn registration(conn: &Conn) -> Option<(Room, SocketAddr)> {
    match &conn.state {
        State::Session(session) => session.registered,
        _ => None,
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
                service.counters.evicted += 1;
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
                Crowded::Source => {
                    service.counters.over_source_cap += 1;
                    "its source holds its most connections already"
                }
                Crowded::Full => {
                    service.counters.over_total_cap += 1;
                    "the tracker holds its most connections"
                }
            };
            service.budget.log(now, log::Level::Info, || {
                format!("closed connection from {remote}: {reason}")
            });
        }
    }
}
