//! The error type of the secure-rooms building blocks.

use std::io;
use std::path::Path;

/// Why a record could not be read. Each ends the stream: the link that reads it must close.
///
/// A [`RecordReader`](super::RecordReader) returns these inside an [`io::Error`] (so that
/// code that only knows `Read`, such as the frame reader, passes them on); get them back with
/// [`RecordError::from_io`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// The record does not decrypt under its expected nonce, nor under any nearby one:
    /// its bytes were changed on the way (or were never a record).
    #[error("record {index} was tampered with (it fails authentication)")]
    Tampered {
        /// The record's place in the stream, counted from 0 (the nonce it should have had).
        index: u64,
    },
    /// The record is one the stream already carried: it decrypts only under an earlier nonce.
    #[error("record {index} is a replay of record {original}")]
    Replayed {
        /// Where the copy arrived.
        index: u64,
        /// Where the original was.
        original: u64,
    },
    /// The record belongs later in the stream: records in between were dropped or reordered.
    #[error("record {index} arrived out of order (it was sent as record {sent})")]
    OutOfOrder {
        /// Where it arrived.
        index: u64,
        /// Where it was sent.
        sent: u64,
    },
    /// The stream ended inside a record.
    #[error("connection closed inside record {index} ({received} of {expected} bytes)")]
    Truncated {
        /// The record's place in the stream.
        index: u64,
        /// Bytes of the record (length prefix included) that arrived.
        received: usize,
        /// Bytes the record needed.
        expected: usize,
    },
    /// 2^64 − 1 records were sent or received under one key (Noise forbids reusing a nonce).
    #[error("the session's nonces are exhausted")]
    NoncesExhausted,
}

impl RecordError {
    /// The [`io::ErrorKind`] a reader reports this error with: `UnexpectedEof` for a
    /// truncated record, `InvalidData` for the rest.
    pub fn kind(&self) -> io::ErrorKind {
        match self {
            RecordError::Truncated { .. } => io::ErrorKind::UnexpectedEof,
            _ => io::ErrorKind::InvalidData,
        }
    }

    /// The record error inside an I/O error returned by a
    /// [`RecordReader`](super::RecordReader), if that is what it holds.
    pub fn from_io(error: &io::Error) -> Option<RecordError> {
        error
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<RecordError>())
            .copied()
    }
}

impl From<RecordError> for io::Error {
    fn from(error: RecordError) -> io::Error {
        io::Error::new(error.kind(), error)
    }
}

/// Everything that can go wrong deriving a room key, loading an identity or the known peers,
/// running a handshake or reading records.
///
/// Messages name files, never their contents: no variant holds a passphrase or a key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecureError {
    /// A passphrase was given but is empty (an empty `P2P_PASSPHRASE`, or a passphrase file
    /// whose first line is empty). A room without a passphrase is asked for by giving none.
    #[error("the passphrase from {0} is empty (give none for a room without a passphrase)")]
    EmptyPassphrase(&'static str),
    /// A passphrase is not valid UTF-8 or is too long.
    #[error("the passphrase from {from} {problem}")]
    BadPassphrase {
        /// Where it came from (`P2P_PASSPHRASE`, a file name).
        from: Box<str>,
        /// What is wrong with it, never its content.
        problem: &'static str,
    },
    /// A file (passphrase file, identity key, known peers) or the data directory could not be
    /// read, written or created.
    #[error("{}: {source}", path.display())]
    File {
        /// The file or directory.
        path: Box<Path>,
        /// What the OS said.
        source: io::Error,
    },
    /// The identity key file exists but does not hold a key we wrote. It is left as it is.
    #[error("{}: damaged identity key file ({problem}); move it away to create a new identity", path.display())]
    DamagedIdentity {
        /// The key file.
        path: Box<Path>,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// A line of the known-peers file cannot be read. The file is left as it is.
    #[error("{}:{line}: {problem}", path.display())]
    DamagedKnownPeers {
        /// The known-peers file.
        path: Box<Path>,
        /// The line, counted from 1.
        line: usize,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// The platform has no data directory for this user (no home directory).
    #[error("no data directory: the platform names none for this user (give one explicitly)")]
    NoDataDir,
    /// The Noise library or the key derivation refused its input (a bug, or a broken build).
    #[error("cryptography failed: {0}")]
    Crypto(&'static str),
    /// The other side holds another room key: another passphrase, another room, or message 3
    /// of the handshake was altered on the way.
    #[error("room key mismatch: the other side is in another room or has another passphrase")]
    WrongRoomKey,
    /// The handshake broke off: malformed or altered messages, or not a p2p-chat peer.
    #[error("handshake failed: {0}")]
    Handshake(&'static str),
    /// A record could not be read.
    #[error(transparent)]
    Record(#[from] RecordError),
    /// The stream failed or timed out during the handshake.
    #[error(transparent)]
    Io(#[from] io::Error),
}

impl SecureError {
    pub(crate) fn file(path: &Path, source: io::Error) -> SecureError {
        SecureError::File {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn damaged_identity(path: &Path, problem: &'static str) -> SecureError {
        SecureError::DamagedIdentity {
            path: path.into(),
            problem,
        }
    }

    pub(crate) fn damaged_known_peers(
        path: &Path,
        line: usize,
        problem: &'static str,
    ) -> SecureError {
        SecureError::DamagedKnownPeers {
            path: path.into(),
            line,
            problem,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_small_send_and_sync() {
        fn assert_send_sync<T: Send + Sync + 'static>() {}
        assert_send_sync::<SecureError>();
        assert_send_sync::<RecordError>();
        assert!(std::mem::size_of::<SecureError>() <= 48);
    }

    #[test]
    fn a_record_error_survives_the_trip_through_io_error() {
        let error = RecordError::Replayed {
            index: 7,
            original: 3,
        };
        let io: io::Error = error.into();
        assert_eq!(io.kind(), io::ErrorKind::InvalidData);
        assert_eq!(RecordError::from_io(&io), Some(error));
        assert_eq!(io.to_string(), "record 7 is a replay of record 3");

        let truncated: io::Error = RecordError::Truncated {
            index: 0,
            received: 5,
            expected: 20,
        }
        .into();
        assert_eq!(truncated.kind(), io::ErrorKind::UnexpectedEof);
        assert_eq!(RecordError::from_io(&io::Error::other("x")), None);
    }
}
