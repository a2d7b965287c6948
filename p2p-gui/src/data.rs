//! What the screens show and edit, and the rules that govern it, kept apart from the
//! widgets: nothing here depends on Iced, so every rule is a plain unit test.
//!
//! - [`attention`]: the unread count, the divider, and when a notification is due.
//! - [`form`]: the connect form as typed, its validation, and the [`form::Request`] a valid
//!   form makes.
//! - [`history`]: the conversation, bounded in entries and in bytes, and the window of it
//!   that is laid out.
//! - [`secret`]: the passphrase as typed, out of `Debug` and files, zeroed when dropped.
//! - [`settings`]: what is remembered between runs, and where (the data directory).

pub mod attention;
pub mod form;
pub mod history;
pub mod secret;
pub mod settings;
