//! Trust on first use for a running peer: which identity key each username was seen with,
//! in memory for this run, or kept in the `known_peers` file of a data directory
//! ([`PeerConfig::data_dir`](crate::PeerConfig)). The rules are
//! [`Trust`](crate::secure::Trust)'s.

use std::path::Path;

use log::warn;

use crate::secure::files::create_private_dir;
use crate::secure::{Fingerprint, SecureError, Trust, TrustStore, Verdict};

/// The known peers of one peer.
#[derive(Debug)]
pub(crate) enum Known {
    /// For this run only.
    Memory(Trust),
    /// Kept in a data directory, every change written at once.
    File(TrustStore),
}

impl Known {
    /// The known peers kept in `data_dir` (created, mode 0700, if it does not exist), or an
    /// empty set in memory.
    ///
    /// # Errors
    ///
    /// The directory cannot be created, or the file cannot be read or is damaged (it is
    /// never replaced).
    pub(crate) fn open(data_dir: Option<&Path>) -> Result<Known, SecureError> {
        let Some(dir) = data_dir else {
            return Ok(Known::Memory(Trust::new()));
        };
        create_private_dir(dir).map_err(|source| SecureError::File {
            path: dir.into(),
            source,
        })?;
        TrustStore::open(dir).map(Known::File)
    }

    /// Checks `username` arriving with `fingerprint`, then remembers the pair. Returns the
    /// key the name was first seen with when it was known, but never with this key.
    pub(crate) fn check_and_remember(
        &mut self,
        username: &str,
        fingerprint: Fingerprint,
    ) -> Option<Fingerprint> {
        let verdict = match self {
            Known::Memory(trust) => trust.check(username, &fingerprint),
            Known::File(store) => store.check(username, &fingerprint),
        };
        match self {
            Known::Memory(trust) => {
                trust.remember(username, fingerprint);
            }
            Known::File(store) => {
                if let Err(e) = store.remember(username, fingerprint) {
                    warn!("cannot keep the known peers: {e}");
                }
            }
        }
        match verdict {
            Verdict::Changed { previous } => Some(previous),
            Verdict::New | Verdict::Known => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secure::Identity;

    #[test]
    fn a_name_with_another_key_is_reported_once_and_kept_in_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let (first, second) = (
            Identity::generate().unwrap().fingerprint(),
            Identity::generate().unwrap().fingerprint(),
        );
        let mut known = Known::open(Some(&data)).unwrap();
        assert_eq!(known.check_and_remember("alice", first), None);
        assert_eq!(known.check_and_remember("alice", first), None);
        assert_eq!(known.check_and_remember("alice", second), Some(first));
        assert_eq!(known.check_and_remember("alice", second), None);
        // Reopened: the same memory.
        let mut known = Known::open(Some(&data)).unwrap();
        assert_eq!(known.check_and_remember("alice", second), None);
        let third = Identity::generate().unwrap().fingerprint();
        assert_eq!(known.check_and_remember("alice", third), Some(first));

        let mut memory = Known::open(None).unwrap();
        assert_eq!(memory.check_and_remember("bob", first), None);
        assert_eq!(memory.check_and_remember("bob", second), Some(first));
    }
}
