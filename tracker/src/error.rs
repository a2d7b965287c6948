//! The tracker's one error enum.

use std::io;
use std::net::SocketAddr;

/// What can stop a tracker from starting.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A listening socket (the tracker's or the stats endpoint's) could not be opened.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// What the OS said.
        source: io::Error,
    },
    /// A configuration value is out of range.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// Another I/O failure (the event queue, starting the thread, reading the bound
    /// address).
    #[error(transparent)]
    Io(#[from] io::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_stays_small_and_can_cross_threads() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<Error>();
        assert!(std::mem::size_of::<Error>() <= 48);
    }
}
