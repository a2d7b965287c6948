//! The app's two screens, each with its own state, messages, `update` and `view`.

pub mod chat;
pub mod connect;
