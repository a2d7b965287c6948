//! Trust on first use: which identity keys each username has been seen with.
//!
//! [`Trust`] is pure data and holds the rules; [`TrustStore`] keeps it in the file
//! `known_peers` of the data directory.
//!
//! # What is kept when one name has been seen with two keys
//!
//! **Every key a name has been seen with is kept** (up to [`MAX_KEYS_PER_NAME`]), in the
//! order first seen. So:
//!
//! - The first key of a name is pinned for good: whoever comes later under that name with
//!   another key is reported as [`Verdict::Changed`], naming that first key, however many
//!   times the name has been seen since.
//! - The warning comes once per (name, new key): remembering the new key makes it `Known`
//!   from then on. Two real people who share a name in one room are each warned about once,
//!   and then told apart by the fingerprint shown beside the name, instead of warning at
//!   every reconnection, which would teach users to ignore the warning.
//! - The original owner of a name who comes back is still `Known`: nothing an impersonator
//!   does removes the first key.
//!
//! A user who has checked a new key and wants the old one forgotten deletes the old line in
//! the file. The store is per installation, not per room: a name seen with another key in
//! another room is reported too.
//!
//! Bounds: a peer can invent names and keys without end, so the store holds at most
//! [`MAX_ENTRIES`] entries and [`MAX_KEYS_PER_NAME`] keys per name; past that nothing more
//! is added (see [`Remembered::Full`]), so a flood cannot push out the keys already pinned.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::error::SecureError;
use super::files;
use super::fingerprint::Fingerprint;
use crate::protocol::validate_username;

/// The name of the known-peers file in the data directory.
pub const KNOWN_PEERS_FILE: &str = "known_peers";

/// Most (name, key) entries kept.
pub const MAX_ENTRIES: usize = 4096;

/// Most keys kept for one name.
pub const MAX_KEYS_PER_NAME: usize = 8;

/// Largest known-peers file read: room for [`MAX_ENTRIES`] entries of the longest names.
const MAX_FILE_BYTES: usize = 1 << 20;

const HEADER: &str = "\
# p2p-chat known peers (trust on first use): the identity keys each username was seen with.
# One line per key: FINGERPRINT USERNAME. The first line of a name holds the key it was first
# seen with. Delete a line to forget that key.
";

/// What [`Trust::check`] says of a name arriving with a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The name has never been seen.
    New,
    /// The name has been seen with this very key.
    Known,
    /// The name has been seen, but never with this key: another person, or the same person
    /// on another installation. Worth a warning that names the user.
    Changed {
        /// The key the name was first seen with.
        previous: Fingerprint,
    },
}

/// What [`Trust::remember`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Remembered {
    /// The key was added to the name.
    Added,
    /// The name already had this key: nothing changed.
    AlreadyKnown,
    /// The store (or this name's list) is full: nothing was added, and the name will keep
    /// being reported as it is now.
    Full,
}

/// The names seen and their keys (pure data: no files, no clock).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trust {
    names: BTreeMap<String, Vec<Fingerprint>>,
    entries: usize,
}

impl Trust {
    /// An empty store.
    pub fn new() -> Trust {
        Trust::default()
    }

    /// What to make of `username` arriving with the key of `fingerprint`.
    pub fn check(&self, username: &str, fingerprint: &Fingerprint) -> Verdict {
        match self.names.get(username) {
            None => Verdict::New,
            Some(keys) if keys.contains(fingerprint) => Verdict::Known,
            Some(keys) => match keys.first() {
                Some(first) => Verdict::Changed { previous: *first },
                None => Verdict::New,
            },
        }
    }

    /// Remembers that `username` was seen with `fingerprint` (after [`Trust::check`] and any
    /// warning). Keys already kept stay: see the module documentation.
    ///
    /// A name that breaks the username rules is not kept (links refuse such names before
    /// this point; refusing here keeps the file well-formed whatever the caller does).
    pub fn remember(&mut self, username: &str, fingerprint: Fingerprint) -> Remembered {
        if let Some(keys) = self.names.get(username) {
            if keys.contains(&fingerprint) {
                return Remembered::AlreadyKnown;
            }
            if keys.len() >= MAX_KEYS_PER_NAME {
                return Remembered::Full;
            }
        }
        if self.entries >= MAX_ENTRIES || validate_username(username).is_err() {
            return Remembered::Full;
        }
        self.names
            .entry(username.to_owned())
            .or_default()
            .push(fingerprint);
        self.entries += 1;
        Remembered::Added
    }

    /// The keys `username` has been seen with, first seen first.
    pub fn keys_of(&self, username: &str) -> &[Fingerprint] {
        self.names.get(username).map_or(&[], Vec::as_slice)
    }

    /// How many (name, key) entries are kept.
    pub fn len(&self) -> usize {
        self.entries
    }

    /// `true` when no name has been seen.
    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    /// The file's text.
    fn to_text(&self) -> String {
        let mut text = String::from(HEADER);
        for (name, keys) in &self.names {
            for key in keys {
                let _ = writeln!(text, "{key} {name}");
            }
        }
        text
    }

    /// Reads the file's text; an error gives the line (from 1) and what is wrong with it.
    fn parse(text: &str) -> Result<Trust, (usize, &'static str)> {
        let mut trust = Trust::new();
        for (number, line) in text.lines().enumerate().map(|(i, l)| (i + 1, l)) {
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let (key, name) = line
                .split_once(' ')
                .ok_or((number, "expected a fingerprint, a space and a username"))?;
            let key = key
                .parse::<Fingerprint>()
                .map_err(|_| (number, "not a fingerprint"))?;
            if validate_username(name).is_err() {
                return Err((number, "not a valid username"));
            }
            if trust.remember(name, key) == Remembered::Full {
                return Err((number, "too many entries"));
            }
        }
        Ok(trust)
    }
}

/// A [`Trust`] kept in the `known_peers` file of a data directory. Every change is written
/// at once, crash-safely (a temporary file flushed to disk, then moved into place).
#[derive(Debug)]
pub struct TrustStore {
    path: PathBuf,
    trust: Trust,
}

impl TrustStore {
    /// Opens the store of `data_dir` (empty when the file does not exist yet; the file is
    /// created by the first change).
    ///
    /// # Errors
    ///
    /// [`SecureError::File`] when the file cannot be read, [`SecureError::DamagedKnownPeers`]
    /// with the line when it does not parse. A damaged file is never replaced.
    pub fn open(data_dir: &Path) -> Result<TrustStore, SecureError> {
        let path = data_dir.join(KNOWN_PEERS_FILE);
        let trust = match files::read_bounded(&path, MAX_FILE_BYTES) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Trust::new(),
            Err(e) => return Err(SecureError::file(&path, e)),
            Ok((_, true)) => {
                return Err(SecureError::damaged_known_peers(
                    &path,
                    0,
                    "the file is too large",
                ));
            }
            Ok((bytes, false)) => {
                let text = std::str::from_utf8(&bytes).map_err(|e| {
                    let line = bytes[..e.valid_up_to()]
                        .iter()
                        .filter(|&&b| b == b'\n')
                        .count();
                    SecureError::damaged_known_peers(&path, line + 1, "not UTF-8 text")
                })?;
                Trust::parse(text).map_err(|(line, problem)| {
                    SecureError::damaged_known_peers(&path, line, problem)
                })?
            }
        };
        Ok(TrustStore { path, trust })
    }

    /// As [`Trust::check`].
    pub fn check(&self, username: &str, fingerprint: &Fingerprint) -> Verdict {
        self.trust.check(username, fingerprint)
    }

    /// As [`Trust::remember`], writing the file when something was added.
    ///
    /// # Errors
    ///
    /// [`SecureError::File`] when the file cannot be written; the entry stays remembered in
    /// memory for this run.
    pub fn remember(
        &mut self,
        username: &str,
        fingerprint: Fingerprint,
    ) -> Result<Remembered, SecureError> {
        let remembered = self.trust.remember(username, fingerprint);
        if remembered == Remembered::Added {
            files::replace_private(&self.path, self.trust.to_text().as_bytes())
                .map_err(|e| SecureError::file(&self.path, e))?;
        }
        Ok(remembered)
    }

    /// The names and keys.
    pub fn trust(&self) -> &Trust {
        &self.trust
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn fp(n: u8) -> Fingerprint {
        Fingerprint::of_key(&[n; 32])
    }

    #[test]
    fn first_use_then_known_then_changed() {
        let mut trust = Trust::new();
        assert_eq!(trust.check("alice", &fp(1)), Verdict::New);
        assert_eq!(trust.remember("alice", fp(1)), Remembered::Added);
        assert_eq!(trust.check("alice", &fp(1)), Verdict::Known);
        assert_eq!(
            trust.check("alice", &fp(2)),
            Verdict::Changed { previous: fp(1) }
        );
        assert_eq!(trust.check("bob", &fp(1)), Verdict::New);
        assert_eq!(trust.remember("alice", fp(1)), Remembered::AlreadyKnown);
        assert_eq!(trust.len(), 1);
    }

    #[test]
    fn a_second_key_for_a_name_is_kept_beside_the_first() {
        let mut trust = Trust::new();
        trust.remember("alice", fp(1));
        assert_eq!(trust.remember("alice", fp(2)), Remembered::Added);
        // Both alices are known from now on, so neither is flagged at each reconnection...
        assert_eq!(trust.check("alice", &fp(1)), Verdict::Known);
        assert_eq!(trust.check("alice", &fp(2)), Verdict::Known);
        // ...and a third key is still flagged against the first one.
        assert_eq!(
            trust.check("alice", &fp(3)),
            Verdict::Changed { previous: fp(1) }
        );
        assert_eq!(trust.keys_of("alice"), &[fp(1), fp(2)]);
        assert_eq!(trust.keys_of("nobody"), &[] as &[Fingerprint]);
    }

    #[test]
    fn a_flood_cannot_push_out_pinned_keys() {
        let mut trust = Trust::new();
        trust.remember("alice", fp(0));
        for n in 1..MAX_KEYS_PER_NAME as u8 {
            assert_eq!(trust.remember("alice", fp(n)), Remembered::Added);
        }
        assert_eq!(trust.remember("alice", fp(200)), Remembered::Full);
        assert_eq!(
            trust.check("alice", &fp(200)),
            Verdict::Changed { previous: fp(0) }
        );

        let mut i = 0u32;
        while trust.len() < MAX_ENTRIES {
            let key = Fingerprint::of_key(&[(i % 251) as u8; 32]);
            assert_eq!(trust.remember(&format!("n{i}"), key), Remembered::Added);
            i += 1;
        }
        assert_eq!(trust.remember("mallory", fp(9)), Remembered::Full);
        assert_eq!(trust.check("mallory", &fp(9)), Verdict::New);
        assert_eq!(trust.check("alice", &fp(0)), Verdict::Known);
    }

    #[test]
    fn invalid_names_are_not_kept() {
        let mut trust = Trust::new();
        for name in ["", "a\nb", "a\tb", &"x".repeat(33)] {
            assert_eq!(trust.remember(name, fp(1)), Remembered::Full, "{name:?}");
        }
        assert!(trust.is_empty());
    }

    #[test]
    fn the_store_survives_a_restart_and_is_readable() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = TrustStore::open(dir.path()).unwrap();
        assert!(!store.path().exists(), "nothing written before a change");
        store.remember("alice", fp(1)).unwrap();
        store.remember("alice", fp(2)).unwrap();
        store.remember("bob smith", fp(3)).unwrap();
        assert_eq!(
            store.remember("bob smith", fp(3)).unwrap(),
            Remembered::AlreadyKnown
        );

        let reopened = TrustStore::open(dir.path()).unwrap();
        assert_eq!(reopened.trust(), store.trust());
        assert_eq!(
            reopened.check("alice", &fp(9)),
            Verdict::Changed { previous: fp(1) }
        );
        let text = fs::read_to_string(store.path()).unwrap();
        assert!(text.contains(&format!("{} bob smith\n", fp(3))), "{text}");
        let alice_1 = text.find(&format!("{} alice", fp(1))).unwrap();
        let alice_2 = text.find(&format!("{} alice", fp(2))).unwrap();
        assert!(alice_1 < alice_2, "first seen first:\n{text}");
    }

    #[test]
    fn hand_edits_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KNOWN_PEERS_FILE);
        fs::write(
            &path,
            format!(
                "# mine\n\n{} alice\n{} alice\n",
                fp(1).to_string().to_uppercase(),
                fp(1)
            ),
        )
        .unwrap();
        let store = TrustStore::open(dir.path()).unwrap();
        assert_eq!(store.trust().keys_of("alice"), &[fp(1)]);
    }

    #[test]
    fn a_damaged_file_is_an_error_naming_the_file_and_line_and_stays() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KNOWN_PEERS_FILE);
        let good = format!("{} alice\n", fp(1));
        for (content, line) in [
            (format!("{good}{}\n", fp(2)), 2),
            (format!("{good}nonsense alice\n"), 2),
            (format!("# c\n{good}{} \n", fp(2)), 3),
            (format!("{} {}\n", fp(2), "x".repeat(40)), 1),
            (format!("{good}{good}garbage"), 3),
        ] {
            fs::write(&path, &content).unwrap();
            let error = TrustStore::open(dir.path()).unwrap_err();
            match &error {
                SecureError::DamagedKnownPeers { line: l, .. } => {
                    assert_eq!(*l, line, "{content:?}: {error}")
                }
                other => panic!("{content:?}: {other}"),
            }
            assert!(
                error
                    .to_string()
                    .contains(&format!("{KNOWN_PEERS_FILE}:{line}:")),
                "{error}"
            );
            assert_eq!(fs::read_to_string(&path).unwrap(), content);
        }
        let mut binary = good.into_bytes();
        binary.extend_from_slice(b"\xff alice\n");
        fs::write(&path, &binary).unwrap();
        let error = TrustStore::open(dir.path()).unwrap_err();
        assert!(
            matches!(error, SecureError::DamagedKnownPeers { line: 2, .. }),
            "{error}"
        );
    }

    #[test]
    fn an_unwritable_store_reports_the_file_and_keeps_the_entry_for_this_run() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = TrustStore::open(&dir.path().join("missing-dir")).unwrap();
        let error = store.remember("alice", fp(1)).unwrap_err();
        assert!(error.to_string().contains(KNOWN_PEERS_FILE), "{error}");
        assert_eq!(store.check("alice", &fp(1)), Verdict::Known);
    }
}
