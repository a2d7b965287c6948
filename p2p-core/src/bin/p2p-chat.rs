//! `p2p-chat`: the terminal peer as a program to install
//! (`cargo install --path p2p-core --features cli`).
//!
//! The same program as `examples/chat.rs` (the embedding example, which the tests drive as
//! `target/debug/examples/chat`): one source, built twice, so the installed binary and the
//! tested one cannot drift apart. Its usage, output and exit codes are in that file.

#[path = "../../examples/chat.rs"]
mod chat;

fn main() -> std::process::ExitCode {
    chat::main()
}
