//! What the chat screen keeps on disk: stored lines turned into entries and back, the lines
//! the screen makes queued for the history without waiting, earlier pages read back, and
//! clearing a room.

use iced::Task;

use super::{Chat, Message};
use crate::data::history::{Delivery, Entry, EntryKind, History};
use crate::network::{PAGE, now_ms};
use crate::store::{self, Answer, Line, Page, Row};

/// The local time of a stored line: `HH:MM` today, with the date before it otherwise.
pub fn time_of(at_ms: i64) -> String {
    use chrono::{Local, TimeZone};
    let Some(at) = Local.timestamp_millis_opt(at_ms).single() else {
        return String::new();
    };
    if at.date_naive() == Local::now().date_naive() {
        at.format("%H:%M").to_string()
    } else {
        at.format("%Y-%m-%d %H:%M").to_string()
    }
}

pub(super) fn entry_of(row: Row) -> Entry {
    let Line {
        at_ms,
        kind,
        sender,
        text,
    } = row.line;
    let kind = match kind {
        store::Kind::Own => EntryKind::Own {
            text,
            delivery: Delivery::Sent(1),
        },
        store::Kind::Other => EntryKind::Other { from: sender, text },
        store::Kind::Notice => EntryKind::Notice(text),
        store::Kind::Warning => EntryKind::Warning(text),
    };
    Entry {
        time: time_of(at_ms),
        kind,
        row: Some(row.id),
    }
}

fn line_of(entry: &Entry, at_ms: i64) -> Line {
    let (kind, sender) = match &entry.kind {
        EntryKind::Own { .. } => (store::Kind::Own, String::new()),
        EntryKind::Other { from, .. } => (store::Kind::Other, from.clone()),
        EntryKind::Notice(_) => (store::Kind::Notice, String::new()),
        EntryKind::Warning(_) => (store::Kind::Warning, String::new()),
    };
    Line {
        at_ms,
        kind,
        sender,
        text: entry.text().to_owned(),
    }
}

/// Waits for a reply off the UI thread and turns it into a message.
pub(super) fn answer<T: Send + 'static>(
    reply: iced::futures::channel::oneshot::Receiver<Answer<T>>,
    to: impl Fn(Answer<T>) -> Message + Send + 'static,
) -> Task<Message> {
    Task::future(async move {
        reply
            .await
            .unwrap_or_else(|_| Err("the history is closed".to_owned()))
    })
    .map(to)
}

impl Chat {
    /// Adds a line the screen made and queues it for the history without waiting.
    pub(super) fn record(&mut self, kind: EntryKind) -> (usize, Task<Message>) {
        let entry = Entry::new(chrono::Local::now().format("%H:%M").to_string(), kind);
        let line = line_of(&entry, now_ms());
        let id = self.history.push(entry);
        let Some(store) = &self.store else {
            return (id, Task::none());
        };
        match store.try_append(&self.conversation, vec![line]) {
            Ok(reply) => {
                let task = answer(reply, move |rows| Message::Saved {
                    ids: vec![id],
                    rows,
                });
                (id, task)
            }
            Err(busy) => {
                // Shown, not lost: the line is on screen, and the screen says it is not
                // saved.
                self.not_saved = Some(busy.to_string());
                (id, Task::none())
            }
        }
    }

    pub(super) fn notice(&mut self, notice: String) -> Task<Message> {
        self.record(EntryKind::Notice(notice)).1
    }

    pub(super) fn warning(&mut self, warning: String) -> Task<Message> {
        self.record(EntryKind::Warning(warning)).1
    }

    /// Shows earlier lines: those in memory first, then a page from the history.
    pub(super) fn show_earlier(&mut self) -> Task<Message> {
        if self.history.earlier() > 0 {
            self.history.show_earlier();
            return Task::none();
        }
        let Some(store) = &self.store else {
            return Task::none();
        };
        if self.loading_earlier {
            return Task::none();
        }
        match store.page(&self.conversation, self.history.oldest_row(), PAGE) {
            Ok(reply) => {
                self.loading_earlier = true;
                answer(reply, Message::Earlier)
            }
            Err(busy) => {
                self.error = Some(busy.to_string());
                Task::none()
            }
        }
    }

    /// A page of earlier lines came from the history.
    pub(super) fn earlier(&mut self, page: Answer<Page>) -> Task<Message> {
        self.loading_earlier = false;
        match page {
            Ok(page) => {
                let entries = page.rows.into_iter().map(entry_of).collect();
                self.history.prepend(entries, page.more);
                self.history.stop_following();
            }
            Err(e) => self.error = Some(e),
        }
        Task::none()
    }

    /// Lines this screen made were saved as `rows` (or not).
    pub(super) fn saved(&mut self, ids: Vec<usize>, rows: Answer<Vec<i64>>) -> Task<Message> {
        match rows {
            Ok(rows) => {
                for (id, row) in ids.into_iter().zip(rows) {
                    self.history.set_row(id, row);
                }
                self.not_saved = None;
            }
            Err(e) => self.not_saved = Some(e),
        }
        Task::none()
    }

    /// Clears the room's history (confirmed).
    pub(super) fn clear(&mut self) -> Task<Message> {
        self.confirm_clear = false;
        let Some(store) = &self.store else {
            return Task::none();
        };
        match store.clear(&self.conversation) {
            Ok(reply) => answer(reply, Message::Cleared),
            Err(busy) => {
                self.error = Some(busy.to_string());
                Task::none()
            }
        }
    }

    /// The history was cleared, or why not.
    pub(super) fn cleared(&mut self, result: Answer<usize>) -> Task<Message> {
        match result {
            Ok(_) => {
                self.history = History::new(self.history.limits());
                self.selected = None;
                self.found = None;
                Task::none()
            }
            Err(e) => {
                self.error = Some(e);
                Task::none()
            }
        }
    }
}
