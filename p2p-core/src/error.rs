//! The one error type of p2p-core.

use std::io;

use crate::protocol::{ProtocolError, UsernameError};
use crate::secure::SecureError;

/// Everything that can go wrong when starting a peer, connecting, sending or talking to a
/// tracker.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The username breaks the rules of
    /// [`validate_username`](crate::protocol::validate_username).
    #[error("invalid username: {0}")]
    InvalidUsername(#[from] UsernameError),
    /// A configuration value is out of range.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The chat text is longer than the configured limit.
    #[error("message of {len} bytes is over the limit of {max} bytes")]
    TextTooLong {
        /// Its length in bytes.
        len: usize,
        /// The limit in force.
        max: usize,
    },
    /// The listening socket could not be opened (port in use, no permission, bad address).
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: std::net::SocketAddr,
        /// What the OS said.
        source: io::Error,
    },
    /// A `host:port` could not be turned into a socket address.
    #[error("cannot resolve {addr}: {reason}")]
    Resolve {
        /// The address as given.
        addr: String,
        /// Why.
        reason: String,
    },
    /// A TCP connection to a peer or tracker could not be made.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// The address as given.
        addr: String,
        /// What the OS said.
        source: io::Error,
    },
    /// The other side answered, but not with a handshake we accept (refused, wrong version,
    /// not a p2p-chat peer, timed out).
    #[error("{addr} refused the connection: {reason}")]
    Refused {
        /// The address as given.
        addr: String,
        /// Why.
        reason: String,
    },
    /// The peer at `addr` holds another room key: another passphrase for this room, or
    /// another room. Its handshake failed before anything was exchanged.
    #[error(
        "wrong passphrase for room {room}: {addr} is in another room or has another passphrase"
    )]
    WrongPassphrase {
        /// This peer's room name.
        room: String,
        /// The address as given.
        addr: String,
    },
    /// The room key could not be derived, or the known-peers file cannot be read.
    #[error(transparent)]
    Secure(#[from] SecureError),
    /// The address leads back to this very peer.
    #[error("{0} is this peer itself")]
    SelfConnection(String),
    /// This peer already listens to that peer.
    #[error("already listening to {0}")]
    AlreadyConnected(String),
    /// The tracker could not be reached or answered badly.
    #[error("tracker {addr}: {reason}")]
    Tracker {
        /// The tracker's address as given.
        addr: String,
        /// Why.
        reason: String,
    },
    /// LAN discovery (multicast DNS) could not start: no usable network interface, or
    /// multicast refused.
    #[error("LAN discovery: {0}")]
    Discovery(String),
    /// The slowest listener's queue is full ([`Limits::listener_queue_bytes`]): the message
    /// was not sent. [`Peer::try_send`] returns it at once instead of waiting;
    /// [`Peer::send`] after waiting [`Timeouts::stall`] for a listener that is still taking,
    /// only slowly. Sending again later is the remedy.
    ///
    /// [`Limits::listener_queue_bytes`]: crate::Limits::listener_queue_bytes
    /// [`Peer::try_send`]: crate::Peer::try_send
    /// [`Peer::send`]: crate::Peer::send
    /// [`Timeouts::stall`]: crate::Timeouts::stall
    #[error("a listener's queue is full: the message was not sent")]
    QueueFull,
    /// The peer has been shut down.
    #[error("the peer has been shut down")]
    Shutdown,
    /// A protocol violation.
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// Another I/O failure.
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Short for `std::result::Result<T, p2p_core::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_is_small_send_and_sync() {
        fn assert_send_sync<T: Send + Sync + 'static>() {}
        assert_send_sync::<Error>();
        assert!(std::mem::size_of::<Error>() <= 64);
    }
}
