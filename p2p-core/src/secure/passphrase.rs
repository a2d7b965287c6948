//! The passphrase of a closed room: kept out of `Debug` and `Display`, zeroed when dropped,
//! read from the environment or the first line of a file (never from a command line, which
//! other users of the machine can read).

use std::fmt;
use std::path::Path;

use zeroize::Zeroizing;

use super::error::SecureError;
use super::files;

/// The environment variable a passphrase is read from.
pub const PASSPHRASE_ENV: &str = "P2P_PASSPHRASE";

/// Longest passphrase accepted, in bytes of UTF-8. Generous for any passphrase a person
/// types; it bounds what a passphrase file read costs (a file such as `/dev/zero` given by
/// mistake is refused, not read forever).
pub const MAX_PASSPHRASE_BYTES: usize = 1024;

/// A room's passphrase.
///
/// Its bytes never reach `Debug` output (which prints `Passphrase(..)`) and are zeroed when
/// it is dropped. It is never empty: an empty passphrase given anywhere is refused with
/// [`SecureError::EmptyPassphrase`], because it is almost always a mistake (an exported but
/// empty variable, an empty file) that would otherwise open a room its user means to close.
/// A room without a passphrase is asked for with `None`.
///
/// The bytes are used as they are: no Unicode normalisation and no trimming of spaces (only
/// the line ending of a passphrase file is dropped).
#[derive(Clone)]
pub struct Passphrase(Zeroizing<String>);

impl Passphrase {
    /// A passphrase from text the user typed (the app's masked field).
    ///
    /// # Errors
    ///
    /// [`SecureError::EmptyPassphrase`] for an empty text, [`SecureError::BadPassphrase`]
    /// for one over [`MAX_PASSPHRASE_BYTES`].
    pub fn new(text: impl Into<String>) -> Result<Passphrase, SecureError> {
        Passphrase::checked(Zeroizing::new(text.into()), "the input")
    }

    /// The passphrase in [`PASSPHRASE_ENV`] (`P2P_PASSPHRASE`), or `None` when it is not set.
    ///
    /// # Errors
    ///
    /// An empty, non-UTF-8 or too long value is an error, not `None`.
    pub fn from_env() -> Result<Option<Passphrase>, SecureError> {
        Passphrase::from_env_value(std::env::var_os(PASSPHRASE_ENV))
    }

    /// The first line of `path`, without its line ending (`\n` or `\r\n`).
    ///
    /// # Errors
    ///
    /// A file that cannot be read, or whose first line is empty, not UTF-8 or longer than
    /// [`MAX_PASSPHRASE_BYTES`]. The errors name the file, never its content.
    pub fn from_file(path: &Path) -> Result<Passphrase, SecureError> {
        // Room for the longest passphrase and its "\r\n".
        let (bytes, more) = files::read_bounded(path, MAX_PASSPHRASE_BYTES + 2)
            .map_err(|e| SecureError::file(path, e))?;
        let from = || path.display().to_string().into_boxed_str();
        let line = match bytes.iter().position(|&b| b == b'\n') {
            Some(end) => &bytes[..end],
            None if more => {
                return Err(SecureError::BadPassphrase {
                    from: from(),
                    problem: "is longer than 1024 bytes",
                });
            }
            None => &bytes[..],
        };
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let text = std::str::from_utf8(line).map_err(|_| SecureError::BadPassphrase {
            from: from(),
            problem: "is not valid UTF-8",
        })?;
        if text.is_empty() {
            return Err(SecureError::EmptyPassphrase("the passphrase file"));
        }
        Passphrase::checked(Zeroizing::new(text.to_owned()), "the passphrase file")
    }

    /// The passphrase given by a file if there is one, else by the environment, else none:
    /// what the terminal peer and the app do at start.
    ///
    /// # Errors
    ///
    /// As [`Passphrase::from_file`] and [`Passphrase::from_env`].
    pub fn from_file_or_env(file: Option<&Path>) -> Result<Option<Passphrase>, SecureError> {
        match file {
            Some(path) => Passphrase::from_file(path).map(Some),
            None => Passphrase::from_env(),
        }
    }

    /// The bytes the room key is derived from.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    fn from_env_value(
        value: Option<std::ffi::OsString>,
    ) -> Result<Option<Passphrase>, SecureError> {
        let Some(value) = value else {
            return Ok(None);
        };
        let text = value
            .into_string()
            .map_err(|_| SecureError::BadPassphrase {
                from: PASSPHRASE_ENV.into(),
                problem: "is not valid UTF-8",
            })?;
        Passphrase::checked(Zeroizing::new(text), PASSPHRASE_ENV).map(Some)
    }

    fn checked(text: Zeroizing<String>, from: &'static str) -> Result<Passphrase, SecureError> {
        if text.is_empty() {
            return Err(SecureError::EmptyPassphrase(from));
        }
        if text.len() > MAX_PASSPHRASE_BYTES {
            return Err(SecureError::BadPassphrase {
                from: from.into(),
                problem: "is longer than 1024 bytes",
            });
        }
        Ok(Passphrase(text))
    }
}

/// Two passphrases are equal when their bytes are (so that configurations compare).
impl PartialEq for Passphrase {
    fn eq(&self, other: &Passphrase) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Passphrase {}

impl fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Passphrase(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn debug_shows_nothing_of_the_passphrase() {
        let p = Passphrase::new("correct horse").unwrap();
        assert_eq!(format!("{p:?}"), "Passphrase(..)");
        assert_eq!(format!("{:?}", Some(p)), "Some(Passphrase(..))");
    }

    #[test]
    fn an_empty_passphrase_is_refused_everywhere() {
        assert!(matches!(
            Passphrase::new(""),
            Err(SecureError::EmptyPassphrase(_))
        ));
        assert!(matches!(
            Passphrase::from_env_value(Some("".into())),
            Err(SecureError::EmptyPassphrase(PASSPHRASE_ENV))
        ));
        let dir = tempfile::tempdir().unwrap();
        for content in ["", "\n", "\r\n", "\nsecond line"] {
            let path = dir.path().join("p");
            fs::write(&path, content).unwrap();
            assert!(
                matches!(
                    Passphrase::from_file(&path),
                    Err(SecureError::EmptyPassphrase(_))
                ),
                "{content:?}"
            );
        }
    }

    #[test]
    fn the_environment_unset_means_no_passphrase() {
        assert!(Passphrase::from_env_value(None).unwrap().is_none());
        let p = Passphrase::from_env_value(Some("s3cret".into()))
            .unwrap()
            .unwrap();
        assert_eq!(p.as_bytes(), b"s3cret");
    }

    #[test]
    fn a_file_gives_its_first_line_without_the_line_ending() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p");
        for (content, expected) in [
            ("s3cret", "s3cret"),
            ("s3cret\n", "s3cret"),
            ("s3cret\r\n", "s3cret"),
            ("s3cret\nignored\n", "s3cret"),
            ("  spaced out  \n", "  spaced out  "),
            ("olá mundo\n", "olá mundo"),
        ] {
            fs::write(&path, content).unwrap();
            let p = Passphrase::from_file(&path).unwrap();
            assert_eq!(p.as_bytes(), expected.as_bytes(), "{content:?}");
        }
        // The file takes precedence over the environment.
        let p = Passphrase::from_file_or_env(Some(&path)).unwrap().unwrap();
        assert_eq!(p.as_bytes(), "olá mundo".as_bytes());
    }

    #[test]
    fn bad_files_are_errors_that_name_the_file_and_not_the_content() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        let error = Passphrase::from_file(&missing).unwrap_err();
        assert!(error.to_string().contains("missing"), "{error}");

        let long = dir.path().join("long");
        fs::write(&long, "x".repeat(MAX_PASSPHRASE_BYTES + 1)).unwrap();
        let error = Passphrase::from_file(&long).unwrap_err();
        assert!(
            matches!(error, SecureError::BadPassphrase { .. }),
            "{error}"
        );
        assert!(!error.to_string().contains("xxx"), "{error}");

        let exactly = dir.path().join("exactly");
        fs::write(
            &exactly,
            format!("{}\r\n", "y".repeat(MAX_PASSPHRASE_BYTES)),
        )
        .unwrap();
        assert_eq!(
            Passphrase::from_file(&exactly).unwrap().as_bytes().len(),
            MAX_PASSPHRASE_BYTES
        );

        let binary = dir.path().join("binary");
        fs::write(&binary, [0xff, 0xfe, b'\n']).unwrap();
        let error = Passphrase::from_file(&binary).unwrap_err();
        assert!(error.to_string().contains("binary"), "{error}");
        assert!(error.to_string().contains("UTF-8"), "{error}");
    }

    #[cfg(unix)]
    #[test]
    fn an_endless_file_is_refused_without_reading_it_all() {
        let error = Passphrase::from_file(Path::new("/dev/zero")).unwrap_err();
        assert!(
            matches!(error, SecureError::BadPassphrase { .. }),
            "{error}"
        );
    }
}
