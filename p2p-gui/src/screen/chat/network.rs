//! The peer's events on the chat screen: messages, who joined and left, failures, and
//! whether a desktop notification is due.

use std::time::Instant;

use iced::Task;
use p2p_core::secure::Fingerprint;
use p2p_core::{Departure, Event, PeerInfo};

use super::{Chat, Message};
use crate::data::history::{Entry, EntryKind};
use crate::i18n::{Lang, Strings, fill};
use crate::network::Inbound;
use crate::notify::Notification;

impl Chat {
    fn knows(&self, peer: &PeerInfo) -> bool {
        self.listening_to.contains(peer) || self.listeners.contains(peer)
    }

    /// The name a message of `from` is shown under: the username, with the start of its
    /// fingerprint when another peer linked now has the same name and another key, so
    /// that the two are told apart.
    fn sender_label(&self, from: &PeerInfo) -> String {
        let shared = self
            .listening_to
            .iter()
            .chain(&self.listeners)
            .any(|p| p.username == from.username && p.fingerprint != from.fingerprint);
        if shared {
            format!(
                "{} ({})",
                from.username,
                short_fingerprint(&from.fingerprint)
            )
        } else {
            from.username.clone()
        }
    }

    /// Takes in a batch of events from the peer, saved or not; returns what to do and the
    /// notification that is due, if one is (when `notify` allows them).
    pub fn network(
        &mut self,
        inbound: Inbound,
        lang: Lang,
        notify: bool,
        now: Instant,
    ) -> (Task<Message>, Option<Notification>) {
        let s = lang.strings();
        let mut tasks = Vec::new();
        let mut notification = None;
        let mut rows = match inbound.saved {
            Ok(rows) => {
                self.not_saved = None;
                rows.into_iter()
            }
            Err(e) => {
                self.not_saved = Some(e);
                Vec::new().into_iter()
            }
        };
        let time = chrono::Local::now().format("%H:%M").to_string();
        for event in inbound.events {
            match event {
                Event::Message { from, text } => {
                    let text = text.to_string();
                    let mut entry = Entry::new(
                        time.clone(),
                        EntryKind::Other {
                            from: self.sender_label(&from),
                            text: text.clone(),
                        },
                    );
                    entry.row = rows.next();
                    let id = self.history.push(entry);
                    if self.attention.message(id, now, notify) {
                        let conversation = self.session.as_ref().map_or("", |s| s.conversation());
                        notification =
                            Some(Notification::message(conversation, &from.username, &text));
                    }
                }
                Event::ListeningTo(peer) => {
                    self.lost.remove(&peer.addr.to_string());
                    if !self.knows(&peer) {
                        tasks.push(self.notice(fill(s.joined, &[&peer.username, &peer.addr])));
                    }
                    self.listening_to.insert(peer);
                }
                Event::ListenerJoined(peer) => {
                    if !self.knows(&peer) {
                        tasks.push(self.notice(fill(s.joined, &[&peer.username, &peer.addr])));
                    }
                    self.listeners.insert(peer);
                }
                Event::StoppedListeningTo { peer, reason } => {
                    self.listening_to.remove(&peer);
                    if self.manual && !matches!(reason, Departure::Shutdown) {
                        self.lost
                            .insert(peer.addr.to_string(), peer.username.clone());
                    }
                    if !self.knows(&peer) {
                        let why = departure(&reason, s);
                        tasks.push(self.notice(fill(s.left, &[&peer.username, &why])));
                    }
                }
                Event::ListenerLeft { peer, reason } => {
                    self.listeners.remove(&peer);
                    if !self.knows(&peer) {
                        let why = departure(&reason, s);
                        tasks.push(self.notice(fill(s.left, &[&peer.username, &why])));
                    }
                }
                Event::ConnectFailed { addr, reason } => {
                    tasks.push(self.notice(fill(s.connect_failed, &[&addr, &reason])));
                }
                Event::Unreachable { addr, reason } => {
                    tasks.push(self.notice(fill(s.unreachable, &[&addr, &reason])));
                }
                Event::TrackerUnreachable { reason } => {
                    self.tracker_lost = true;
                    tasks.push(self.notice(fill(s.tracker_unreachable, &[&reason])));
                }
                Event::IdentityChanged { peer, previous } => {
                    let warning = fill(
                        s.identity_changed,
                        &[&peer.username, &peer.addr, &peer.fingerprint, &previous],
                    );
                    tasks.push(self.warning(warning));
                }
                Event::Discovered { addr, via } => {
                    if self.sources.len() >= super::MAX_FOUND {
                        let linked: std::collections::HashSet<_> = self
                            .listening_to
                            .iter()
                            .chain(&self.listeners)
                            .map(|p| p.addr)
                            .collect();
                        self.sources.retain(|addr, _| linked.contains(addr));
                    }
                    self.sources.insert(addr, via);
                }
                Event::DhtUnreachable { reason } => {
                    tasks.push(self.warning(fill(s.dht_unreachable, &[&reason])));
                }
                Event::DhtBehindNat { public_ip } => {
                    tasks.push(self.warning(fill(s.dht_behind_nat, &[&public_ip])));
                }
                Event::WrongPassphrase { addr } => {
                    tasks.push(self.warning(fill(s.wrong_passphrase, &[&self.room, &addr])));
                }
                other => log::debug!("event not shown: {other:?}"),
            }
        }
        tasks.push(self.follow());
        (Task::batch(tasks), notification)
    }
}

/// The first two groups of a fingerprint, `gifv-5km6…`: enough to tell two peers of one
/// name apart at a glance (the full one is in the peers panel).
pub fn short_fingerprint(fingerprint: &Fingerprint) -> String {
    let full = fingerprint.to_string();
    let cut = full.char_indices().nth(9).map_or(full.len(), |(i, _)| i);
    format!("{}…", &full[..cut])
}

fn departure(reason: &Departure, s: &Strings) -> String {
    match reason {
        Departure::Left => s.why_left.into(),
        Departure::TimedOut => s.why_timed_out.into(),
        Departure::Closed => s.why_closed.into(),
        Departure::Overflow => s.why_overflow.into(),
        Departure::Error(e) => fill(s.why_error, &[e]),
        Departure::Shutdown => s.why_shutdown.into(),
        other => other.to_string(),
    }
}
