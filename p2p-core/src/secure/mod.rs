//! Secure rooms: the building blocks that encrypt and authenticate every peer link.
//!
//! - [`room`]: the room key (argon2id of the passphrase, salted with the room name) and what
//!   is derived from it: the Noise PSK, the opaque [`RoomId`] and the DHT [`InfoHash`];
//!   [`Passphrase`] (kept out of `Debug`, zeroed on drop).
//! - [`identity`]: the installation's X25519 key pair ([`Identity`]), kept in the data
//!   directory with mode 0600, and its [`Fingerprint`].
//! - [`trust`]: trust on first use, which keys each username has been seen with.
//! - [`handshake`]: `Noise_XXpsk3_25519_AESGCM_BLAKE2s` over any `Read + Write`
//!   ([`initiate`], [`respond`]), giving a [`Secured`] session.
//! - [`record`]: the record layer the frame layer runs over once a link is secured
//!   ([`RecordWriter`], [`RecordReader`]).
//!
//! None of it opens a socket: the link code drives these over its streams. They are public
//! because the terminal peer and the app need the passphrase, identity, fingerprint and data
//! directory helpers, and because the tests, benchmarks and fuzz targets drive the handshake
//! and the record layer from outside the crate. `docs/security.md` in the repository tells
//! the design and the threat model.
//!
//! ```
//! use std::io::Read;
//! use p2p_core::secure::{Identity, Passphrase, RoomKey, Secured};
//!
//! # fn main() -> Result<(), p2p_core::secure::SecureError> {
//! let passphrase = Passphrase::new("correct horse battery staple")?;
//! let key = RoomKey::derive("lobby", Some(&passphrase))?;
//! let (alice, bob) = (Identity::generate()?, Identity::generate()?);
//!
//! // Both ends of one session (over a socket: `handshake::initiate` and `respond`).
//! let (a, b) = Secured::pair((&alice, &key), (&bob, &key))?;
//! assert_eq!(b.remote_fingerprint(), alice.fingerprint());
//!
//! let (_, mut writer) = a.into_records(std::io::empty());
//! let mut wire = Vec::new();
//! writer.seal(b"frames, many at once", &mut wire)?;
//!
//! let (mut reader, _) = b.into_records(&wire[..]);
//! let mut plaintext = Vec::new();
//! reader.read_to_end(&mut plaintext)?;
//! assert_eq!(plaintext, b"frames, many at once");
//! # Ok(())
//! # }
//! ```

mod error;
pub(crate) mod files;
mod fingerprint;
pub mod handshake;
mod hex;
pub mod identity;
mod passphrase;
pub mod record;
pub mod room;
pub mod trust;

pub use error::{RecordError, SecureError};
pub use fingerprint::{FINGERPRINT_BYTES, Fingerprint, InvalidFingerprint};
pub use handshake::{Role, Secured, initiate, respond};
pub use identity::{Identity, PublicKey, default_data_dir};
pub use passphrase::{MAX_PASSPHRASE_BYTES, PASSPHRASE_ENV, Passphrase};
pub use record::{RecordReader, RecordWriter};
pub use room::{InfoHash, RoomId, RoomKey};
pub use trust::{Remembered, Trust, TrustStore, Verdict};
