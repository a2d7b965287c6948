//! Private files (the identity key, the known peers) written so that a crash or a power cut
//! never leaves a half-written one: the bytes go to a temporary file in the same directory
//! (mode 0600), which is flushed to disk and then moved into place, and the directory itself
//! is flushed so that the move survives.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use zeroize::Zeroizing;

/// Creates `dir` and its missing parents. New directories get mode 0700 on Unix (they hold
/// the identity key); an existing directory is left as it is.
pub(crate) fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Writes `contents` to `path` only if no file is there. Returns `false`, leaving the file
/// that is there untouched, when one already was (another process may have created it a
/// moment ago).
///
/// The file is linked into place (`link(2)` refuses to replace a name that exists, so even
/// two processes racing cannot overwrite each other). Where the filesystem has no hard links
/// it falls back to a rename after checking the name is free, which leaves only that small
/// window open.
pub(crate) fn create_new_private(path: &Path, contents: &[u8]) -> io::Result<bool> {
    let temp = write_temp(path, contents)?;
    let created = match fs::hard_link(&temp, path) {
        Ok(()) => true,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => false,
        Err(_) if path.exists() => false,
        Err(_) => match fs::rename(&temp, path) {
            Ok(()) => {
                sync_parent(path)?;
                return Ok(true);
            }
            Err(e) => {
                let _ = fs::remove_file(&temp);
                return Err(e);
            }
        },
    };
    fs::remove_file(&temp)?;
    sync_parent(path)?;
    Ok(created)
}

/// Replaces `path` with `contents` (or creates it), atomically: a reader sees the old file or
/// the new one, never a mix, whatever happens midway.
pub(crate) fn replace_private(path: &Path, contents: &[u8]) -> io::Result<()> {
    let temp = write_temp(path, contents)?;
    if let Err(e) = fs::rename(&temp, path) {
        let _ = fs::remove_file(&temp);
        return Err(e);
    }
    sync_parent(path)
}

/// Reads at most `max` bytes of `path`. Returns the bytes and whether the file holds more.
/// The buffer is allocated once (it never moves, so a secret read into it leaves no copy
/// behind) and zeroed when dropped.
pub(crate) fn read_bounded(path: &Path, max: usize) -> io::Result<(Zeroizing<Vec<u8>>, bool)> {
    let file = File::open(path)?;
    let limit = max.saturating_add(1);
    let mut bytes = Zeroizing::new(Vec::with_capacity(limit));
    file.take(limit as u64).read_to_end(&mut bytes)?;
    let more = bytes.len() > max;
    if more {
        // Drop the excess byte without reallocating.
        bytes.truncate(max);
    }
    Ok((bytes, more))
}

/// Creates a uniquely named temporary file beside `path` with mode 0600, writes `contents`
/// and flushes them to disk.
fn write_temp(path: &Path, contents: &[u8]) -> io::Result<PathBuf> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let temp = path.with_file_name(format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&temp)?;
    let written = file.write_all(contents).and_then(|()| file.sync_all());
    if let Err(e) = written {
        drop(file);
        let _ = fs::remove_file(&temp);
        return Err(e);
    }
    Ok(temp)
}

/// Flushes the directory holding `path`, so that a rename or link into it is on disk.
fn sync_parent(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        File::open(parent)?.sync_all()?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_new_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        assert!(create_new_private(&path, b"first").unwrap());
        assert!(!create_new_private(&path, b"second").unwrap());
        assert_eq!(fs::read(&path).unwrap(), b"first");
        // No temporary file is left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[cfg(unix)]
    #[test]
    fn private_files_and_directories_have_owner_only_modes() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("a/b");
        create_private_dir(&nested).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&nested), 0o700);
        let path = nested.join("f");
        create_new_private(&path, b"x").unwrap();
        assert_eq!(mode(&path), 0o600);
        replace_private(&path, b"y").unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(fs::read(&path).unwrap(), b"y");
        assert_eq!(fs::read_dir(&nested).unwrap().count(), 1);
    }

    #[test]
    fn read_bounded_says_when_there_is_more() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        fs::write(&path, b"12345").unwrap();
        let (bytes, more) = read_bounded(&path, 5).unwrap();
        assert_eq!((&bytes[..], more), (&b"12345"[..], false));
        let (bytes, more) = read_bounded(&path, 4).unwrap();
        assert_eq!((&bytes[..], more), (&b"1234"[..], true));
    }
}
