//! The p2p-chat desktop app, built with Iced on top of [`p2p_core`].
//!
//! Two screens, as in the original Java app: [`screen::connect`] (who I am and how I join:
//! through a tracker, which the app can also host, by hand, or alone) and
//! [`screen::chat`] (the conversation, who hears whom, and the text box). The peer's
//! events reach the UI through an Iced subscription ([`network`]); starting and leaving
//! run off the UI thread. Every string is in English and European Portuguese ([`i18n`]).
//! What the screens show and edit, with its rules, lives apart from the widgets in
//! [`data`] (no Iced there), as Halloy keeps its state in a crate of its own.
//!
//! The binary `p2p-gui` takes the terminal peer's connection flags to prefill the form,
//! and `--connect` to connect at once. The app can also be driven without a window, as the
//! tests do with `iced_test`:
//!
//! ```
//! use p2p_gui::app::{App, Options};
//! use p2p_gui::data::form::Form;
//!
//! let form = Form { username: "alice".into(), alone: true, ..Form::default() };
//! let (app, _task) = App::new(Options { form, ..Options::default() });
//! assert_eq!(app.title(), "P2P Messenger");
//! ```

pub mod app;
pub mod cli;
pub mod data;
pub mod i18n;
pub mod network;
pub mod notify;
pub mod screen;
pub mod signals;
pub mod store;
pub mod threads;

#[cfg(test)]
mod test_support;
