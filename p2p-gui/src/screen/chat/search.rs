//! The search box: past lines of the room found in the history (FTS5).

use iced::Task;

use super::persist::answer;
use super::{Chat, MAX_RESULTS, Message};
use crate::store::{Answer, Row};

impl Chat {
    /// Searches the history for what is typed.
    pub(super) fn search(&mut self) -> Task<Message> {
        let typed = self.search.trim().to_owned();
        let Some(store) = &self.store else {
            return Task::none();
        };
        if typed.is_empty() {
            self.found = None;
            return Task::none();
        }
        match store.search(&self.conversation, &typed, MAX_RESULTS) {
            Ok(reply) => answer(reply, Message::Found),
            Err(busy) => {
                self.found = Some((typed, Err(busy.to_string())));
                Task::none()
            }
        }
    }

    /// Search results came.
    pub(super) fn found(&mut self, rows: Answer<Vec<Row>>) -> Task<Message> {
        self.found = Some((self.search.trim().to_owned(), rows));
        Task::none()
    }

    /// Closes the search results.
    pub(super) fn close_search(&mut self) -> Task<Message> {
        self.found = None;
        self.search.clear();
        Task::none()
    }
}
