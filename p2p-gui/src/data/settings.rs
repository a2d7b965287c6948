//! What the app remembers between runs: the connect form as it was at the last successful
//! connect, the language, the theme and whether to notify. One small human-readable file,
//! `settings.toml` in the data directory, with a `version` field.
//!
//! Reading never fails the app: a missing file gives the defaults; a damaged one is moved
//! aside (`settings.toml.damaged-TIMESTAMP`) and reported, so that the next save does not
//! overwrite it silently; one written by a newer version is left where it is, reported, and
//! not overwritten by this version ([`Settings::writable`] is then false). Writing is
//! atomic: a temporary file beside it, flushed to disk, then renamed over the old one.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::data::form::Form;
use crate::i18n::Lang;

/// The name of the settings file in the data directory.
pub const FILE: &str = "settings.toml";

/// The version of the file this code writes. A file with a larger one is left alone.
pub const VERSION: u32 = 1;

/// The platform's data directory for p2p-chat (`~/.local/share/p2p-chat` on Linux), the one
/// the identity key and the known peers live in too, or `None` where the platform has no home
/// directory.
pub fn default_data_dir() -> Option<PathBuf> {
    p2p_core::secure::default_data_dir().ok()
}

/// Which theme the window uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ThemeChoice {
    /// The system's light or dark preference, where the desktop tells it (else light).
    #[default]
    System,
    /// Always light.
    Light,
    /// Always dark.
    Dark,
}

impl ThemeChoice {
    /// Every choice, in the order the app offers them.
    pub const ALL: [ThemeChoice; 3] = [ThemeChoice::System, ThemeChoice::Light, ThemeChoice::Dark];
}

/// Everything remembered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// The file format's version ([`VERSION`]).
    pub version: u32,
    /// The language, once chosen in the app or at a connect; `None` follows the locale.
    pub language: Option<Lang>,
    /// The theme.
    pub theme: ThemeChoice,
    /// Desktop notifications for messages that arrive while the window is not focused.
    pub notifications: bool,
    /// The connect form at the last successful connect.
    pub form: Form,
    /// False when the file on disk belongs to a newer version: it is then not overwritten.
    #[serde(skip)]
    pub writable: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            version: VERSION,
            language: None,
            theme: ThemeChoice::System,
            notifications: true,
            form: Form::default(),
            writable: true,
        }
    }
}

/// Why the saved settings were not used, as the connect screen reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The file could not be parsed; it was moved to `kept_as` (or could not be moved).
    Damaged {
        /// The parser's reason.
        reason: String,
        /// Where the damaged file now is; `None` if moving it failed (saving is then off).
        kept_as: Option<PathBuf>,
    },
    /// The file was written by a newer version of the app; it is left as it is.
    Newer {
        /// Its version.
        version: u32,
    },
    /// The file exists but cannot be read (permissions, I/O).
    Unreadable(String),
    /// The settings could not be saved.
    NotSaved(String),
}

/// Just enough of the file to learn its version, whatever else it holds.
#[derive(Deserialize)]
struct VersionOnly {
    version: Option<u32>,
}

impl Settings {
    /// Reads the settings of `dir`; `stamp` names a damaged file set aside (a time, such as
    /// `20261129-214013`). Never fails: what went wrong comes back beside the defaults.
    pub fn load(dir: &Path, stamp: &str) -> (Settings, Option<Problem>) {
        let path = dir.join(FILE);
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return (Settings::default(), None),
            Err(e) => {
                // Unreadable but present: do not write over it either.
                let settings = Settings {
                    writable: false,
                    ..Settings::default()
                };
                return (settings, Some(Problem::Unreadable(e.to_string())));
            }
        };
        match Settings::parse(&text) {
            Ok(settings) => (settings, None),
            Err(Problem::Damaged { reason, .. }) => {
                let aside = dir.join(format!("{FILE}.damaged-{stamp}"));
                let kept_as = fs::rename(&path, &aside).ok().map(|()| aside);
                let settings = Settings {
                    writable: kept_as.is_some(),
                    ..Settings::default()
                };
                (settings, Some(Problem::Damaged { reason, kept_as }))
            }
            Err(problem) => {
                let settings = Settings {
                    writable: false,
                    ..Settings::default()
                };
                (settings, Some(problem))
            }
        }
    }

    /// Parses the text of a settings file: a newer version is refused before the rest is
    /// read (its fields may mean something else), missing fields take their defaults.
    pub fn parse(text: &str) -> Result<Settings, Problem> {
        let damaged = |e: toml::de::Error| Problem::Damaged {
            reason: e.message().to_owned(),
            kept_as: None,
        };
        let version = toml::from_str::<VersionOnly>(text).map_err(damaged)?;
        match version.version {
            Some(v) if v > VERSION => return Err(Problem::Newer { version: v }),
            None => {
                return Err(Problem::Damaged {
                    reason: "no version".into(),
                    kept_as: None,
                });
            }
            Some(_) => {}
        }
        let mut settings: Settings = toml::from_str(text).map_err(damaged)?;
        settings.version = VERSION;
        settings.writable = true;
        Ok(settings)
    }

    /// The file's text.
    pub fn to_text(&self) -> String {
        // Serializing plain strings, booleans and enums cannot fail.
        toml::to_string_pretty(self).unwrap_or_default()
    }

    /// Writes the settings into `dir` (created if need be), atomically: a temporary file
    /// is written and flushed to disk, then renamed over `settings.toml`. Does nothing when
    /// the file on disk belongs to a newer version.
    pub fn save(&self, dir: &Path) -> io::Result<()> {
        if !self.writable {
            return Ok(());
        }
        fs::create_dir_all(dir)?;
        let path = dir.join(FILE);
        let temp = dir.join(format!("{FILE}.tmp-{}", std::process::id()));
        let written = (|| {
            let mut file = fs::File::create(&temp)?;
            file.write_all(self.to_text().as_bytes())?;
            file.sync_all()?;
            fs::rename(&temp, &path)
        })();
        if written.is_err() {
            let _ = fs::remove_file(&temp);
            return written;
        }
        // The rename itself is on disk once the directory is.
        if let Ok(dir) = fs::File::open(dir) {
            let _ = dir.sync_all();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::form::Tab;

    fn saved() -> Settings {
        Settings {
            language: Some(Lang::Pt),
            theme: ThemeChoice::Dark,
            notifications: false,
            form: Form {
                username: "alice".into(),
                port: "7001".into(),
                tab: Tab::Manual,
                peers: "127.0.0.1:7002 [::1]:7003".into(),
                ..Form::default()
            },
            ..Settings::default()
        }
    }

    #[test]
    fn settings_round_trip_through_a_readable_file() {
        let dir = tempfile::tempdir().unwrap();
        saved().save(dir.path()).unwrap();
        let text = fs::read_to_string(dir.path().join(FILE)).unwrap();
        assert!(text.contains("version = 1"), "{text}");
        assert!(text.contains("username = \"alice\""), "{text}");
        assert!(text.contains("tab = \"manual\""), "{text}");
        assert_eq!(Settings::load(dir.path(), "x"), (saved(), None));
        // No temporary file is left behind.
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn a_missing_file_or_missing_fields_give_the_defaults() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            Settings::load(&dir.path().join("not-yet"), "x"),
            (Settings::default(), None)
        );
        let partial = Settings::parse("version = 1\n[form]\nusername = \"bob\"\n").unwrap();
        assert_eq!(partial.form.username, "bob");
        assert_eq!(partial.form.tracker_port, Form::default().tracker_port);
        assert!(partial.notifications);
    }

    #[test]
    fn a_damaged_file_is_set_aside_and_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE);
        for damaged in [
            "version = 1\nform = [",
            "not toml at all \u{0}",
            "version = \"one\"",
            "[form]\nusername = \"no version\"",
            "version = 1\ntheme = \"purple\"",
        ] {
            fs::write(&path, damaged).unwrap();
            let (settings, problem) = Settings::load(dir.path(), "20261129-120000");
            assert_eq!(settings, Settings::default(), "{damaged}");
            let aside = dir.path().join("settings.toml.damaged-20261129-120000");
            match problem {
                Some(Problem::Damaged { kept_as, .. }) => assert_eq!(kept_as, Some(aside.clone())),
                other => panic!("{damaged}: {other:?}"),
            }
            assert_eq!(
                fs::read_to_string(&aside).unwrap(),
                damaged,
                "kept as it was"
            );
            assert!(!path.exists());
            // Saving now writes a new file and leaves the damaged one where it was put.
            saved().save(dir.path()).unwrap();
            assert_eq!(fs::read_to_string(&aside).unwrap(), damaged);
            fs::remove_file(&aside).unwrap();
        }
    }

    #[test]
    fn a_newer_file_is_reported_and_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE);
        let newer = "version = 2\nsomething = \"new\"\n";
        fs::write(&path, newer).unwrap();
        let (settings, problem) = Settings::load(dir.path(), "x");
        assert_eq!(problem, Some(Problem::Newer { version: 2 }));
        assert_eq!(settings.form, Form::default());
        assert!(!settings.writable);
        settings.save(dir.path()).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), newer);
    }

    #[test]
    fn saving_into_a_path_that_cannot_be_a_directory_fails_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a-file");
        fs::write(&file, "x").unwrap();
        assert!(saved().save(&file).is_err());
    }

    #[test]
    fn the_default_data_directory_is_named_after_the_app() {
        if let Some(dir) = default_data_dir() {
            assert!(dir.ends_with("p2p-chat"), "{}", dir.display());
        }
    }
}
