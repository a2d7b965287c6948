//! The installation's identity: a long-lived X25519 key pair (the Noise static key), created
//! on first start in the data directory and reloaded on later starts.
//!
//! The key file, `identity.key`, is text:
//!
//! ```text
//! # p2p-chat identity key of this installation: keep it secret, never share this file.
//! # fingerprint gifv-5km6-mu54-fnmt
//! private 64 hex digits
//! public 64 hex digits
//! ```
//!
//! The public line is checked against the private key on every load, so a damaged file is
//! caught rather than turned into another identity. A file that cannot be read or does not
//! parse is an error naming it; it is never replaced (moving it away is the user's choice).

use std::fmt;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use snow::params::DHChoice;
use snow::resolvers::{CryptoResolver, DefaultResolver};
use zeroize::Zeroizing;

use super::error::SecureError;
use super::files;
use super::fingerprint::Fingerprint;
use super::hex;

/// The name of the identity key file in the data directory.
pub const IDENTITY_FILE: &str = "identity.key";

/// Largest identity key file read (the real one is under 300 bytes).
const MAX_KEY_FILE_BYTES: usize = 4096;

/// The data directory of p2p-chat for this user: where the identity key and the known peers
/// live (the app keeps its settings and history there too). For example
/// `~/.local/share/p2p-chat` on Linux.
///
/// # Errors
///
/// [`SecureError::NoDataDir`] when the platform names none (no home directory).
pub fn default_data_dir() -> Result<PathBuf, SecureError> {
    directories::ProjectDirs::from("", "", "p2p-chat")
        .map(|dirs| dirs.data_local_dir().to_path_buf())
        .ok_or(SecureError::NoDataDir)
}

/// An X25519 public key: the identity of a peer. `Debug` shows its fingerprint.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicKey([u8; 32]);

impl PublicKey {
    /// A public key from its 32 bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> PublicKey {
        PublicKey(bytes)
    }

    /// Its 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Its fingerprint, the short form people compare.
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of_key(&self.0)
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.fingerprint())
    }
}

/// The installation's key pair. The private key never reaches `Debug` output (which shows
/// the fingerprint) and is zeroed when dropped; cloning copies it (each copy is zeroed).
#[derive(Clone)]
pub struct Identity {
    private: Zeroizing<[u8; 32]>,
    public: PublicKey,
}

impl Identity {
    /// A new random identity, kept in memory only (tests, or a peer told not to keep one).
    ///
    /// # Errors
    ///
    /// [`SecureError::Crypto`] if the operating system's random number generator fails.
    pub fn generate() -> Result<Identity, SecureError> {
        let mut rng = DefaultResolver
            .resolve_rng()
            .ok_or(SecureError::Crypto("no random number generator"))?;
        let mut private = Zeroizing::new([0u8; 32]);
        rng.try_fill_bytes(&mut private[..])
            .map_err(|_| SecureError::Crypto("the random number generator failed"))?;
        Identity::from_private(private)
    }

    /// Loads the identity kept in `dir`, or creates it there on first use.
    ///
    /// Creates `dir` (mode 0700 on Unix) if needed; a new key file is written with mode 0600,
    /// flushed to disk and moved into place, and an existing one is never overwritten (if two
    /// processes start at once, both end up with the identity the first one wrote).
    ///
    /// # Errors
    ///
    /// [`SecureError::File`] when the directory or the file cannot be created or read,
    /// [`SecureError::DamagedIdentity`] when the file holds no valid key; both name the path.
    pub fn load_or_create(dir: &Path) -> Result<Identity, SecureError> {
        files::create_private_dir(dir).map_err(|e| SecureError::file(dir, e))?;
        let path = dir.join(IDENTITY_FILE);
        match Identity::load(&path) {
            Err(SecureError::File { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound => {}
            loaded => return loaded,
        }
        let identity = Identity::generate()?;
        let created = files::create_new_private(&path, identity.file_contents().as_bytes())
            .map_err(|e| SecureError::file(&path, e))?;
        if created {
            log::debug!(
                "created identity {} in {}",
                identity.fingerprint(),
                path.display()
            );
            Ok(identity)
        } else {
            // Another process created it between our look and our write: use theirs.
            Identity::load(&path)
        }
    }

    /// Loads the identity key file at `path`.
    ///
    /// # Errors
    ///
    /// As [`Identity::load_or_create`]; a missing file is [`SecureError::File`] with
    /// `NotFound`.
    pub fn load(path: &Path) -> Result<Identity, SecureError> {
        let (bytes, more) = files::read_bounded(path, MAX_KEY_FILE_BYTES)
            .map_err(|e| SecureError::file(path, e))?;
        if more {
            return Err(SecureError::damaged_identity(path, "the file is too large"));
        }
        warn_if_readable_by_others(path);
        let damaged = |problem| SecureError::damaged_identity(path, problem);
        let text = std::str::from_utf8(&bytes).map_err(|_| damaged("the file is not text"))?;
        let mut private = None;
        let mut public = None;
        for line in text.lines() {
            let line = line.trim_end();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (slot, value) = match line.split_once(' ') {
                Some(("private", value)) => (&mut private, value),
                Some(("public", value)) => (&mut public, value),
                _ => return Err(damaged("a line is neither a comment nor a key")),
            };
            if slot.is_some() {
                return Err(damaged("a key is given twice"));
            }
            let mut key = Zeroizing::new([0u8; 32]);
            if !hex::decode_into(value.trim(), &mut key[..]) {
                return Err(damaged("a key is not 64 hex digits"));
            }
            *slot = Some(key);
        }
        let private = private.ok_or_else(|| damaged("the private key is missing"))?;
        let public = public.ok_or_else(|| damaged("the public key is missing"))?;
        let identity = Identity::from_private(private)?;
        if identity.public.0 != *public {
            return Err(damaged("the public key does not match the private key"));
        }
        Ok(identity)
    }

    /// The public key, which peers see in the handshake.
    pub fn public_key(&self) -> PublicKey {
        self.public
    }

    /// The fingerprint of the public key.
    pub fn fingerprint(&self) -> Fingerprint {
        self.public.fingerprint()
    }

    /// The private key, for the handshake.
    pub(crate) fn private_key(&self) -> &[u8; 32] {
        &self.private
    }

    fn from_private(private: Zeroizing<[u8; 32]>) -> Result<Identity, SecureError> {
        let mut dh = DefaultResolver
            .resolve_dh(&DHChoice::Curve25519)
            .ok_or(SecureError::Crypto("no X25519 implementation"))?;
        dh.set(&private[..]);
        let mut public = [0u8; 32];
        public.copy_from_slice(dh.pubkey());
        // snow keeps a copy of the private key in `dh` and does not zero it on drop.
        dh.set(&[0u8; 32]);
        Ok(Identity {
            private,
            public: PublicKey(public),
        })
    }

    fn file_contents(&self) -> Zeroizing<String> {
        let mut text = Zeroizing::new(String::with_capacity(256));
        let _ = writeln!(
            text,
            "# p2p-chat identity key of this installation: keep it secret, never share this file."
        );
        let _ = writeln!(text, "# fingerprint {}", self.fingerprint());
        text.push_str("private ");
        let _ = hex::write(&mut *text, &self.private[..]);
        text.push_str("\npublic ");
        let _ = hex::write(&mut *text, &self.public.0);
        text.push('\n');
        text
    }
}

/// Two identities are equal when their public keys are (the public key follows from the
/// private one).
impl PartialEq for Identity {
    fn eq(&self, other: &Identity) -> bool {
        self.public == other.public
    }
}

impl Eq for Identity {}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("fingerprint", &self.fingerprint())
            .finish_non_exhaustive()
    }
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            log::warn!(
                "{}: identity key file has mode {mode:o}; others may read it (chmod 600 it)",
                path.display()
            );
        }
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn created_once_then_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("nested/data");
        let first = Identity::load_or_create(&data).unwrap();
        let again = Identity::load_or_create(&data).unwrap();
        assert_eq!(first.public_key(), again.public_key());
        assert_eq!(first.private_key(), again.private_key());
        let text = fs::read_to_string(data.join(IDENTITY_FILE)).unwrap();
        assert!(text.contains(&first.fingerprint().to_string()));
    }

    #[cfg(unix)]
    #[test]
    fn the_key_file_has_mode_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        Identity::load_or_create(dir.path()).unwrap();
        let mode = fs::metadata(dir.path().join(IDENTITY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn the_public_key_is_the_x25519_public_key_of_the_private_one() {
        // RFC 7748, section 6.1: Alice's private and public keys.
        let mut private = Zeroizing::new([0u8; 32]);
        assert!(hex::decode_into(
            "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
            &mut private[..]
        ));
        let identity = Identity::from_private(private).unwrap();
        let mut public = String::new();
        hex::write(&mut public, identity.public_key().as_bytes()).unwrap();
        assert_eq!(
            public,
            "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
        );
    }

    #[test]
    fn damaged_files_are_errors_that_name_the_file_and_stay() {
        let dir = tempfile::tempdir().unwrap();
        let good = Identity::generate().unwrap().file_contents();
        let path = dir.path().join(IDENTITY_FILE);
        let flip = |text: &str, from: &str, to: &str| text.replacen(from, to, 1);
        let private_at = good.find("private ").unwrap() + "private ".len();
        let digit = &good[private_at..private_at + 1];
        let other = if digit == "0" { "1" } else { "0" };
        let mut changed_digit = good.to_string();
        changed_digit.replace_range(private_at..private_at + 1, other);
        let cases = [
            String::new(),
            "garbage\n".to_string(),
            good[..good.len() / 2].to_string(),
            changed_digit,
            flip(&good, "public ", "public 00"),
            flip(&good, "public ", "# public "),
            format!("{}{}", &*good, &*good),
            "x".repeat(MAX_KEY_FILE_BYTES + 1),
        ];
        for content in cases {
            fs::write(&path, &content).unwrap();
            let error = Identity::load_or_create(dir.path()).unwrap_err();
            assert!(
                matches!(error, SecureError::DamagedIdentity { .. }),
                "{content:?}: {error}"
            );
            assert!(error.to_string().contains(IDENTITY_FILE), "{error}");
            // Never replaced.
            assert_eq!(fs::read_to_string(&path).unwrap(), content);
        }
        fs::write(&path, [0xff, 0xfe]).unwrap();
        assert!(matches!(
            Identity::load_or_create(dir.path()),
            Err(SecureError::DamagedIdentity { .. })
        ));
    }

    #[test]
    fn an_unreadable_key_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        // A directory where the file should be cannot be read as one.
        fs::create_dir(dir.path().join(IDENTITY_FILE)).unwrap();
        let error = Identity::load_or_create(dir.path()).unwrap_err();
        assert!(matches!(error, SecureError::File { .. }), "{error}");
        assert!(error.to_string().contains(IDENTITY_FILE), "{error}");
    }

    #[test]
    fn processes_racing_to_create_end_with_one_identity() {
        let dir = tempfile::tempdir().unwrap();
        let keys: Vec<PublicKey> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| s.spawn(|| Identity::load_or_create(dir.path()).unwrap().public_key()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(keys.iter().all(|k| *k == keys[0]), "{keys:?}");
        let on_disk = Identity::load(&dir.path().join(IDENTITY_FILE)).unwrap();
        assert_eq!(on_disk.public_key(), keys[0]);
        // Only the key file: every temporary file was removed.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn debug_shows_no_private_key() {
        let identity = Identity::generate().unwrap();
        let shown = format!("{identity:?}");
        let mut private = String::new();
        hex::write(&mut private, identity.private_key()).unwrap();
        assert!(!shown.contains(&private[..8]), "{shown}");
        assert!(
            shown.contains(&identity.fingerprint().to_string()),
            "{shown}"
        );
        assert_eq!(
            format!("{:?}", identity.public_key()),
            format!("PublicKey({})", identity.fingerprint())
        );
    }

    #[test]
    fn the_default_data_dir_is_named_for_the_app() {
        // The test machine has a home directory.
        let dir = default_data_dir().unwrap();
        assert!(dir.ends_with("p2p-chat"), "{}", dir.display());
    }
}
