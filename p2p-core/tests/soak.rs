//! Soak: ten peers in tracker mode exchange messages while peers leave and join at random
//! (a seeded choice). At the end, for every pair of peers that stayed connected, every
//! message sent was received exactly once and in order; no link between two peers that
//! stayed broke; and the process's threads and memory are back near where they started.
//!
//! The CI version is short (20,000 messages). The long version:
//!
//! ```text
//! SOAK_MESSAGES=1000000 cargo test --release -p p2p-core --test soak -- --nocapture
//! ```
//!
//! `SOAK_SEED` picks another sequence of joins and leaves, `SOAK_CHURN` the number of them.
//!
//! How it works. Each peer runs a *sender* thread that owns its `Peer` and sends the
//! numbers 0, 1, 2, ... in chunks, and a *collector* thread that reads its events: for
//! each sender it checks that the numbers arrive one after the other (exactly once, in
//! order), and publishes how far it got at every chunk boundary. A sender sends a chunk,
//! then waits (on a condition variable the collectors signal, with a deadline) until every
//! listener that must have the previous chunk has it: flow control that keeps queues short
//! without a single sleep. When a collector sees `ListenerJoined(R)` it writes down its
//! sender's count at that moment, plus one: from that number on, R must get everything
//! (the listener is registered before the event is emitted). The messages are released to
//! the senders a tranche at a time, one per join or leave, so that the room changes while
//! messages flow rather than after the traffic is over (the test checks that it did).
//! This file holds one test, so that the process's thread count is its own.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TryRecvError};
use p2p_core::{Event, Events, Mode, Peer};
use support::*;

/// Peers at most (and at the start).
const SLOTS: usize = 10;
/// Peers at least: below this, the next change is a join.
const MIN_ALIVE: usize = 5;
/// Messages a sender sends between two waits for its listeners.
const CHUNK: u64 = 250;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

fn proc_status(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"))
}

fn threads_now() -> u64 {
    proc_status("Threads:")
}

fn rss_kib() -> u64 {
    proc_status("VmRSS:")
}

/// xorshift64*: a seeded, reproducible choice of who leaves and when.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// What one receiver got from one sender: the numbers `first..next`, each once, in order
/// (any break in the sequence is recorded as a problem).
#[derive(Debug, Clone, Copy)]
struct Run {
    first: u64,
    next: u64,
}

/// One peer's life as the others and its own threads report it.
#[derive(Debug)]
struct Node {
    /// Messages its sender has sent (the next number to send).
    sent: Arc<AtomicU64>,
    /// The driver has decided it leaves: departures involving it are expected from now.
    leaving: bool,
    /// Its sender has stopped sending (budget spent, or told to stop).
    idle: bool,
    /// Its listeners now, each with the first number it must receive.
    listeners: HashMap<String, u64>,
    /// The peers it listens to now.
    listening: HashSet<String>,
    /// How far it has received from each sender, published at chunk boundaries.
    acked: HashMap<String, u64>,
    /// Everything it received, published when its event channel ended.
    received: Option<HashMap<String, Run>>,
    /// Messages received in all.
    delivered: u64,
    /// Background connections that failed (legitimate when racing a leave; reported).
    connect_failures: u64,
    /// What went wrong: gaps, duplicates, reordering, links between staying peers that
    /// broke, an unreachable tracker.
    problems: Vec<String>,
}

impl Node {
    fn new(sent: Arc<AtomicU64>) -> Node {
        Node {
            sent,
            leaving: false,
            idle: false,
            listeners: HashMap::new(),
            listening: HashSet::new(),
            acked: HashMap::new(),
            received: None,
            delivered: 0,
            connect_failures: 0,
            problems: Vec::new(),
        }
    }
}

#[derive(Debug, Default)]
struct State {
    nodes: HashMap<String, Node>,
    /// Names of the peers running now (started and not yet told to leave).
    live: Vec<String>,
    /// Messages sent in all.
    sent_total: u64,
    /// Messages released to the senders and not yet taken (a chunk at a time).
    budget: u64,
    /// Messages not yet released: the driver releases them a tranche per change of the
    /// room, so that the traffic cannot run ahead of the joins and leaves.
    unreleased: u64,
    /// Each peer that left, with its listeners (and the first number each must have) at
    /// the moment it was told to leave: a clean leave delivers everything already sent.
    departed: Vec<(String, HashMap<String, u64>)>,
}

impl State {
    fn node(&mut self, name: &str) -> &mut Node {
        self.nodes.get_mut(name).expect("a registered peer")
    }

    /// Every live peer listens to every other and is listened to by every other.
    fn full_mesh(&self) -> bool {
        self.live.iter().all(|me| {
            let n = &self.nodes[me];
            self.live
                .iter()
                .filter(|o| *o != me)
                .all(|o| n.listeners.contains_key(o) && n.listening.contains(o))
        })
    }

    /// Every live receiver has everything it must have from every live sender.
    fn all_delivered(&self) -> bool {
        self.live.iter().all(|s| {
            let sender = &self.nodes[s];
            let sent = sender.sent.load(Ordering::SeqCst);
            sender.listeners.iter().all(|(r, &mark)| {
                mark >= sent
                    || self.nodes[r].leaving
                    || self.nodes[r].acked.get(s).copied().unwrap_or(0) >= sent
            })
        })
    }

    fn summary(&self) -> String {
        let mut lines = vec![format!(
            "live {:?}, sent {}, budget released {}, unreleased {}",
            self.live, self.sent_total, self.budget, self.unreleased
        )];
        for name in &self.live {
            let n = &self.nodes[name];
            let mut listeners: Vec<_> = n.listeners.iter().collect();
            listeners.sort();
            let mut acked: Vec<_> = n.acked.iter().collect();
            acked.sort();
            lines.push(format!(
                "  {name}: sent {}, idle {}, listeners {listeners:?}, listening {}, acked {acked:?}, problems {:?}",
                n.sent.load(Ordering::SeqCst),
                n.idle,
                n.listening.len(),
                n.problems
            ));
        }
        lines.join("\n")
    }
}

/// The shared record, and the condition variable every change is signalled on.
#[derive(Debug, Default)]
struct World {
    state: Mutex<State>,
    changed: Condvar,
}

impl World {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn update(&self, f: impl FnOnce(&mut State)) {
        f(&mut self.lock());
        self.changed.notify_all();
    }

    /// Waits until `cond` holds, or panics after [`PATIENCE`] with the state.
    fn wait(&self, what: &str, cond: impl Fn(&State) -> bool) -> MutexGuard<'_, State> {
        let deadline = Instant::now() + PATIENCE;
        let mut state = self.lock();
        while !cond(&state) {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "timed out waiting for {what}\n{}",
                state.summary()
            );
            state = self
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        state
    }
}

/// A departure is expected when either side was told to leave; any other is a problem.
fn departure(state: &mut State, me: &str, other: &str, what: &str, reason: &p2p_core::Departure) {
    let expected = state.nodes[me].leaving || state.nodes.get(other).is_some_and(|o| o.leaving);
    if !expected {
        state
            .node(me)
            .problems
            .push(format!("{me}: {what} {other} ({reason}) while both stay"));
    }
}

/// Reads one peer's events until its channel ends (the peer was dropped).
fn collect(me: &str, events: &Events, sent: &AtomicU64, world: &World) {
    let mut runs: HashMap<String, Run> = HashMap::new();
    let mut problems = Vec::new();
    let mut delivered = 0u64;
    for event in events.iter() {
        match event {
            Event::Message { from, text } => {
                delivered += 1;
                let Ok(seq) = text.parse::<u64>() else {
                    problems.push(format!("{me}: unexpected text {text:?} from {from}"));
                    continue;
                };
                let sender = from.username.as_str();
                if !runs.contains_key(sender) {
                    runs.insert(
                        sender.to_owned(),
                        Run {
                            first: seq,
                            next: seq,
                        },
                    );
                }
                let run = runs.get_mut(sender).unwrap();
                if seq != run.next && problems.len() < 20 {
                    problems.push(format!(
                        "{me}: got {seq} from {sender} when {} was due",
                        run.next
                    ));
                }
                let before = run.next;
                run.next = seq + 1;
                if run.next / CHUNK != before / CHUNK {
                    let next = run.next;
                    world.update(|s| {
                        s.node(me).acked.insert(sender.to_owned(), next);
                    });
                }
            }
            Event::ListenerJoined(peer) => {
                // Anything numbered from here on is sent after the listener was registered.
                let mark = sent.load(Ordering::SeqCst) + 1;
                world.update(|s| {
                    s.node(me).listeners.insert(peer.username, mark);
                });
            }
            Event::ListenerLeft { peer, reason } => world.update(|s| {
                s.node(me).listeners.remove(&peer.username);
                departure(s, me, &peer.username, "lost listener", &reason);
            }),
            Event::ListeningTo(peer) => world.update(|s| {
                s.node(me).listening.insert(peer.username);
            }),
            Event::StoppedListeningTo { peer, reason } => world.update(|s| {
                s.node(me).listening.remove(&peer.username);
                departure(s, me, &peer.username, "stopped hearing", &reason);
            }),
            Event::ConnectFailed { .. } => world.update(|s| s.node(me).connect_failures += 1),
            Event::TrackerUnreachable { reason } => {
                problems.push(format!("{me}: tracker unreachable: {reason}"));
            }
            _ => {}
        }
    }
    world.update(|s| {
        let node = s.node(me);
        node.received = Some(runs);
        node.delivered = delivered;
        node.problems.extend(problems);
    });
}

/// Sends chunks of numbers while there is budget, each after the listeners that must have
/// the previous chunk have it; then waits to be told to stop, and leaves.
fn send(me: &str, peer: Peer, sent: &AtomicU64, stop: &Receiver<()>, world: &World) {
    let stopped = || matches!(stop.try_recv(), Err(TryRecvError::Disconnected));
    // Like a user, start talking once everyone in the room listens.
    drop(
        world.wait(&format!("{me} to be heard by every live peer"), |s| {
            stopped()
                || s.live
                    .iter()
                    .all(|o| o == me || s.nodes[me].listeners.contains_key(o))
        }),
    );
    let mut n = 0u64;
    while !stopped() {
        {
            let mut s = world.wait(&format!("budget for {me}"), |s| {
                stopped() || s.budget >= CHUNK || s.unreleased == 0
            });
            if s.budget < CHUNK || stopped() {
                break;
            }
            s.budget -= CHUNK;
        }
        for _ in 0..CHUNK {
            peer.send(&n.to_string()).expect("send");
            n += 1;
            sent.store(n, Ordering::SeqCst);
        }
        world.update(|s| s.sent_total += CHUNK);
        let due = n - CHUNK;
        if due > 0 {
            drop(world.wait(&format!("{me}'s listeners to have {due}"), |s| {
                stopped()
                    || s.nodes[me].listeners.iter().all(|(r, &mark)| {
                        mark >= due
                            || s.nodes[r].leaving
                            || s.nodes[r].acked.get(me).copied().unwrap_or(0) >= due
                    })
            }));
        }
    }
    world.update(|s| s.node(me).idle = true);
    // Nothing left to send: stay in the network until told to leave.
    let _ = stop.recv();
    peer.shutdown();
}

/// A running peer's two threads, and the means to stop them.
struct Running {
    name: String,
    stop: Sender<()>,
    sender: JoinHandle<()>,
    sender_done: Receiver<()>,
    collector: JoinHandle<()>,
    collector_done: Receiver<()>,
}

fn join_peer(world: &Arc<World>, tracker: &str, name: String) -> Running {
    let sent = Arc::new(AtomicU64::new(0));
    world.update(|s| {
        s.nodes.insert(name.clone(), Node::new(Arc::clone(&sent)));
        s.live.push(name.clone());
    });
    let peer = Peer::start(config(&name, Mode::tracker(tracker.to_owned()))).expect("peer starts");
    let events = peer.events().clone();
    let (stop, stop_rx) = crossbeam_channel::bounded::<()>(0);
    let (sender_done_tx, sender_done) = crossbeam_channel::bounded::<()>(0);
    let (collector_done_tx, collector_done) = crossbeam_channel::bounded::<()>(0);
    let collector = {
        let (world, name, sent) = (Arc::clone(world), name.clone(), Arc::clone(&sent));
        thread::Builder::new()
            .name(format!("collect-{name}"))
            .spawn(move || {
                let _done = collector_done_tx;
                collect(&name, &events, &sent, &world);
            })
            .unwrap()
    };
    let sender = {
        let (world, name) = (Arc::clone(world), name.clone());
        thread::Builder::new()
            .name(format!("send-{name}"))
            .spawn(move || {
                let _done = sender_done_tx;
                send(&name, peer, &sent, &stop_rx, &world);
            })
            .unwrap()
    };
    Running {
        name,
        stop,
        sender,
        sender_done,
        collector,
        collector_done,
    }
}

/// Tells a peer to leave and waits (with a deadline) until both its threads have ended.
fn leave(world: &World, running: Running) {
    let Running {
        name,
        stop,
        sender,
        sender_done,
        collector,
        collector_done,
    } = running;
    world.update(|s| {
        let listeners = s.nodes[&name].listeners.clone();
        s.departed.push((name.clone(), listeners));
        s.node(&name).leaving = true;
        s.live.retain(|n| *n != name);
    });
    drop(stop);
    world.update(|_| {}); // wakes the sender if it waits for its listeners
    for (what, done) in [("sender", &sender_done), ("collector", &collector_done)] {
        assert!(
            matches!(
                done.recv_timeout(PATIENCE),
                Err(crossbeam_channel::RecvTimeoutError::Disconnected)
            ),
            "{name}'s {what} thread did not end"
        );
    }
    sender.join().expect("sender thread");
    collector.join().expect("collector thread");
}

#[test]
fn ten_peers_chat_through_joins_and_leaves_and_every_staying_pair_gets_everything_once_in_order() {
    let messages = env_u64("SOAK_MESSAGES", 20_000).div_ceil(CHUNK) * CHUNK;
    let churn = env_u64("SOAK_CHURN", (messages / 1_000).clamp(20, 200));
    let seed = env_u64("SOAK_SEED", 0x5eed_2024);
    let mut rng = Rng(seed | 1);
    let threads_before = threads_now();
    let rss_before = rss_kib();
    let (mut threads_peak, mut rss_peak) = (threads_before, rss_before);
    let started = Instant::now();

    let world = Arc::new(World::default());
    let tranche = (messages / (churn + 1)).div_ceil(CHUNK).max(1) * CHUNK;
    let mut released = tranche.min(messages);
    world.update(|s| {
        s.budget = released;
        s.unreleased = messages - released;
    });
    let tracker = start_tracker(Duration::from_secs(60));
    let t = tracker.local_addr().to_string();
    let mut generation = [0u32; SLOTS];
    let name = |slot: usize, generation: u32| format!("p{slot}g{generation}");
    let mut slots: Vec<Option<Running>> = (0..SLOTS)
        .map(|slot| Some(join_peer(&world, &t, name(slot, 0))))
        .collect();
    drop(world.wait("the first mesh of ten", |s| {
        s.live.len() == SLOTS && s.full_mesh()
    }));

    let (mut joins, mut leaves, mut amid_traffic) = (0u32, 0u32, 0u32);
    for _ in 1..=churn {
        // Once half of what was released is sent, release the next tranche and change the
        // room while it flows.
        let threshold = released.saturating_sub(tranche / 2);
        let sent_before = {
            let mut s = world.wait(&format!("{threshold} messages sent"), |s| {
                s.sent_total >= threshold
            });
            let more = tranche.min(s.unreleased);
            s.budget += more;
            s.unreleased -= more;
            released += more;
            s.sent_total
        };
        world.changed.notify_all();
        let alive: Vec<usize> = (0..SLOTS).filter(|&i| slots[i].is_some()).collect();
        let free: Vec<usize> = (0..SLOTS).filter(|&i| slots[i].is_none()).collect();
        let join = alive.len() <= MIN_ALIVE || (!free.is_empty() && rng.below(2) == 0);
        if join {
            let slot = free[rng.below(free.len())];
            generation[slot] += 1;
            slots[slot] = Some(join_peer(&world, &t, name(slot, generation[slot])));
            joins += 1;
            // The newcomer gets into the mesh (the others keep chatting meanwhile) before
            // the next change, so that joins are more than a knock on the door.
            drop(world.wait("the mesh to take in a newcomer", State::full_mesh));
        } else {
            let slot = alive[rng.below(alive.len())];
            leave(&world, slots[slot].take().unwrap());
            leaves += 1;
        }
        if world.lock().sent_total > sent_before {
            amid_traffic += 1;
        }
        threads_peak = threads_peak.max(threads_now());
        rss_peak = rss_peak.max(rss_kib());
    }
    world.update(|s| {
        s.budget += s.unreleased;
        s.unreleased = 0;
    });

    // The budget runs out; the mesh of whoever is left settles and everything arrives.
    let stayed = {
        let s = world.wait("every message delivered to a full mesh", |s| {
            s.budget < CHUNK
                && s.live.iter().all(|n| s.nodes[n].idle)
                && s.full_mesh()
                && s.all_delivered()
        });
        // Who must have had what from whom: (receiver, sender, first number it must have
        // had at the latest, messages sent).
        let mut pairs = Vec::new();
        for sender in &s.live {
            let node = &s.nodes[sender];
            for receiver in &s.live {
                if receiver != sender {
                    pairs.push((
                        receiver.clone(),
                        sender.clone(),
                        node.listeners[receiver],
                        node.sent.load(Ordering::SeqCst),
                    ));
                }
            }
        }
        pairs
    };
    threads_peak = threads_peak.max(threads_now());
    rss_peak = rss_peak.max(rss_kib());
    let live_at_end: HashSet<String> = slots.iter().flatten().map(|r| r.name.clone()).collect();
    // Every clean leave took its peer out of the tracker at once: it lists the peers that
    // are still here, and no one once they have all left.
    assert_eq!(tracker.peers().len(), live_at_end.len());
    for running in slots.iter_mut().filter_map(Option::take) {
        leave(&world, running);
    }
    assert_eq!(
        tracker.peers(),
        Vec::new(),
        "the tracker still lists departed peers"
    );
    drop(tracker);
    let elapsed = started.elapsed();

    let s = world.lock();
    let problems: Vec<&String> = s.nodes.values().flat_map(|n| &n.problems).collect();
    assert!(
        problems.is_empty(),
        "{} problems: {problems:#?}",
        problems.len()
    );
    let mut checked = 0u64;
    for (receiver, sender, must_from, sent) in &stayed {
        let runs = s.nodes[receiver].received.as_ref().unwrap();
        match runs.get(sender) {
            Some(run) => {
                assert!(
                    run.first <= *must_from,
                    "{receiver} heard {sender} only from {} (it listened from {must_from})",
                    run.first
                );
                assert_eq!(
                    run.next, *sent,
                    "{receiver} heard {sender} up to {} of {sent}",
                    run.next
                );
                checked += run.next - run.first;
            }
            None => assert!(
                must_from >= sent,
                "{receiver} heard nothing from {sender}, who sent {sent} (from {must_from} on)"
            ),
        }
    }
    // A peer that left cleanly delivered everything it had sent to the listeners it had,
    // checked at those that stayed to the end.
    let mut flushed = 0u64;
    for (sender, listeners) in s.departed.iter().filter(|(n, _)| !live_at_end.contains(n)) {
        let sent = s.nodes[sender].sent.load(Ordering::SeqCst);
        for (receiver, &must_from) in listeners {
            if !live_at_end.contains(receiver) || must_from >= sent {
                continue;
            }
            let run = s.nodes[receiver].received.as_ref().unwrap().get(sender);
            let run = run.unwrap_or_else(|| panic!("{receiver} heard nothing from {sender}"));
            assert!(run.first <= must_from, "{receiver} heard {sender} late");
            assert_eq!(
                run.next, sent,
                "{receiver} missed the last messages {sender} sent before it left"
            );
            flushed += 1;
        }
    }
    let sent_total = s.sent_total;
    let delivered: u64 = s.nodes.values().map(|n| n.delivered).sum();
    let connect_failures: u64 = s.nodes.values().map(|n| n.connect_failures).sum();
    let peers = s.nodes.len();
    drop(s);
    assert_eq!(sent_total, messages);
    // The test's own validity: the room changed while messages were flowing, not after.
    assert!(
        u64::from(amid_traffic) * 4 >= churn,
        "only {amid_traffic} of {churn} joins and leaves happened amid traffic"
    );
    assert!(stayed.len() >= MIN_ALIVE * (MIN_ALIVE - 1));
    assert!(checked > 0);

    let threads_after = threads_now();
    let rss_after = rss_kib();
    let secs = elapsed.as_secs_f64();
    println!(
        "soak: seed {seed:#x}: {sent_total} messages sent by {peers} peers ({joins} joins, {leaves} leaves, \
         {amid_traffic} of them while messages were being sent, \
         {} peers at the end), {delivered} deliveries in {secs:.1} s \
         ({:.0} deliveries/s); {} pairs stayed connected to the end, {checked} of their \
         messages checked once and in order; {flushed} links of departed peers checked \
         complete; {connect_failures} background connects failed",
        live_at_end.len(),
        delivered as f64 / secs,
        stayed.len()
    );
    println!(
        "soak: RSS before {:.1} MiB, peak {:.1} MiB, after {:.1} MiB; threads before {threads_before}, \
         peak {threads_peak}, after {threads_after}",
        rss_before as f64 / 1024.0,
        rss_peak as f64 / 1024.0,
        rss_after as f64 / 1024.0,
    );
    assert_eq!(threads_after, threads_before, "threads left running");
    // Memory back near where it started: what the allocator keeps for reuse, not what the
    // run moved (which, in the long run, is gigabytes).
    assert!(
        rss_after <= rss_before + 48 * 1024,
        "RSS grew from {rss_before} KiB to {rss_after} KiB"
    );
}
