//! The p2p-chat desktop app (work in progress).
fn main() {}
