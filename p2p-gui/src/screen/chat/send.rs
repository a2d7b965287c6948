//! Sending: the message box's text queued for the session's sender thread, and what
//! became of it.

use iced::Task;
use iced::widget::text_editor;

use super::{Chat, Message};
use crate::data::history::{Delivery, EntryKind};
use crate::i18n::{Strings, fill};
use crate::network::outbox::{QueueError, Sent};

impl Chat {
    pub(super) fn send(&mut self, s: &Strings) -> Task<Message> {
        let draft = self.draft.text();
        let text = draft.trim_end_matches(['\r', '\n']);
        if text.trim().is_empty() {
            return Task::none();
        }
        if text.len() > self.max_text_bytes {
            self.error = Some(fill(s.too_long, &[&text.len(), &self.max_text_bytes]));
            return Task::none();
        }
        let Some(session) = &self.session else {
            return Task::none();
        };
        // The sender thread sends; this thread only queues, and learns the result as a
        // message.
        match session.send(text.to_owned()) {
            Ok(reply) => {
                let text = text.to_owned();
                self.draft = text_editor::Content::new();
                self.error = None;
                self.history.follow();
                self.attention.caught_up();
                let (id, saved) = self.record(EntryKind::Own {
                    text,
                    delivery: Delivery::Sending,
                });
                let result = Task::future(async move {
                    reply
                        .await
                        .unwrap_or_else(|_| Err("the session was closed".to_owned()))
                })
                .map(move |result| Message::Sent { id, result });
                Task::batch([self.follow(), result, saved])
            }
            Err(QueueError::Full) => {
                self.error = Some(s.send_queue_full.to_owned());
                Task::none()
            }
            Err(e @ QueueError::Closed) => {
                self.error = Some(fill(s.not_sent, &[&e]));
                Task::none()
            }
        }
    }

    /// The sender thread sent (or could not send) the message of entry `id`.
    pub(super) fn sent(&mut self, id: usize, result: Sent) -> Task<Message> {
        let delivery = match result {
            Ok(listeners) => Delivery::Sent(listeners),
            Err(reason) => Delivery::Failed(reason),
        };
        self.history.set_delivery(id, delivery);
        Task::none()
    }
}
