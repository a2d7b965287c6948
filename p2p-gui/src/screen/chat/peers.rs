//! "Add a peer" and "Reconnect": one more address listened to, on the session's
//! connector thread.

use iced::Task;

use super::{Chat, Message};
use crate::i18n::{Strings, fill};
use crate::network::outbox::Done;

impl Chat {
    /// Listens to the address typed in "Add a peer", if it is one.
    pub(super) fn add_peer(&mut self, s: &Strings) -> Task<Message> {
        let addr = self.add_peer.trim().to_owned();
        match crate::data::form::check_peer(&addr) {
            Ok(addr) => {
                self.add_peer.clear();
                self.connect(addr, s)
            }
            Err(e) => {
                self.error = Some(crate::screen::connect::describe_field_error(&e, s));
                Task::none()
            }
        }
    }

    pub(super) fn connect(&mut self, addr: String, s: &Strings) -> Task<Message> {
        let Some(session) = &self.session else {
            return Task::none();
        };
        match session.connect(addr.clone()) {
            Ok(reply) => Task::future(async move {
                let result = reply
                    .await
                    .unwrap_or_else(|_| Err("the session was closed".to_owned()));
                Message::Connected { addr, result }
            }),
            Err(e) => {
                self.error = Some(fill(s.not_sent, &[&e]));
                Task::none()
            }
        }
    }

    /// A connect asked for ended.
    pub(super) fn connected(
        &mut self,
        addr: String,
        result: Done<String>,
        s: &Strings,
    ) -> Task<Message> {
        match result {
            Ok(_) => {
                self.lost.remove(&addr);
                Task::none()
            }
            Err(reason) => self.notice(fill(s.connect_failed, &[&addr, &reason])),
        }
    }
}
