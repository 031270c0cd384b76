//! Atomic file writes with an exact mode.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Mode of secrets: private keys, passwords, the password file.
pub const SECRET: u32 = 0o600;
/// Mode of public files: certificates, the ACL, the broker configuration.
pub const PUBLIC: u32 = 0o644;

/// Writes `data` to `path` atomically: a temporary file in the same directory,
/// created with `mode` (so a secret is never readable by others, not even for
/// a moment), synced, renamed over `path`, and the directory synced.
///
/// A reader sees the old content or the new one, never a part; after a crash
/// the file holds one of them. The temporary file is removed on failure.
pub fn write_atomic(path: &Path, data: &[u8], mode: u32) -> io::Result<()> {
    stage(path, data, mode)?.commit()
}

/// Why [`stage_keeping_owner`] could not prepare a file.
#[derive(Debug)]
pub enum StageError {
    /// The file to replace belongs to a user or group that this process cannot
    /// give a new file to (only root can give a file to another user).
    Owner {
        /// The owner of the file to replace.
        uid: u32,
        /// Its group.
        gid: u32,
        /// The refusal of `fchown`.
        source: io::Error,
    },
    /// Reading the old file's owner, or writing the new one, failed.
    Io(io::Error),
}

impl From<io::Error> for StageError {
    fn from(e: io::Error) -> StageError {
        StageError::Io(e)
    }
}

/// A new version of a file, written and synced next to it under a temporary
/// name, not yet in place: [`Staged::commit`] renames it over the target.
/// Dropped without a commit, the temporary file is removed and the target is
/// unchanged.
#[derive(Debug)]
pub struct Staged {
    tmp: PathBuf,
    path: PathBuf,
    dir: PathBuf,
    committed: bool,
}

impl Staged {
    /// Renames the new version over the target and syncs the directory.
    pub fn commit(mut self) -> io::Result<()> {
        fs::rename(&self.tmp, &self.path)?;
        self.committed = true;
        sync_dir(&self.dir)
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// Writes `data` to a temporary file next to `path`, with exactly `mode`, to
/// be renamed over `path` by [`Staged::commit`].
pub fn stage(path: &Path, data: &[u8], mode: u32) -> io::Result<Staged> {
    let (staged, mut file) = create_staged(path, mode)?;
    set_mode(&file, mode)?;
    file.write_all(data)?;
    file.sync_all()?;
    Ok(staged)
}

/// [`stage`] for a file that others may have given to another account (the
/// broker's password file, given to the user `mosquitto`): if `path` exists,
/// the new version gets its owner, group and mode (less the bits for others
/// if `mode` is private: no group or other bits), else `mode`.
///
/// Without the right to give the new file that owner and group (not root, and
/// the file is another user's or in a group this user is not in), nothing is
/// written and the error is [`StageError::Owner`]: the owner is never changed
/// silently.
pub fn stage_keeping_owner(path: &Path, data: &[u8], mode: u32) -> Result<Staged, StageError> {
    let old = match fs::metadata(path) {
        Ok(m) => Some(m),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(e.into()),
    };
    let Some(old) = old else {
        return Ok(stage(path, data, mode)?);
    };
    // Created for this user only; opened to others once it has its owner.
    let (staged, mut file) = create_staged(path, 0o600)?;
    keep_owner(&file, &old, mode & 0o077 == 0)?;
    file.write_all(data)?;
    file.sync_all()?;
    Ok(staged)
}

#[cfg(unix)]
fn keep_owner(file: &File, old: &fs::Metadata, private: bool) -> Result<(), StageError> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let (uid, gid) = (old.uid(), old.gid());
    let mine = file.metadata()?;
    if (mine.uid(), mine.gid()) != (uid, gid) {
        std::os::unix::fs::fchown(file, Some(uid), Some(gid)).map_err(|source| {
            if source.kind() == io::ErrorKind::PermissionDenied {
                StageError::Owner { uid, gid, source }
            } else {
                StageError::Io(source)
            }
        })?;
    }
    // After the chown, which may clear set-id bits. A file meant to be
    // private (asked for without group or other bits) never gets the old
    // file's bits for others: group read is kept, for the broker's group.
    let mut mode = old.mode() & 0o7777;
    if private {
        mode &= !0o007;
    }
    file.set_permissions(fs::Permissions::from_mode(mode))?;
    Ok(())
}

#[cfg(not(unix))]
fn keep_owner(_file: &File, _old: &fs::Metadata, _private: bool) -> Result<(), StageError> {
    Ok(())
}

/// Creates the temporary file of `path` with `mode`; the guard removes it
/// unless committed.
fn create_staged(path: &Path, mode: u32) -> io::Result<(Staged, File)> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
    let mut nonce = [0u8; 6];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut nonce)
        .map_err(|_| io::Error::other("the system random number generator failed"))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        hex::encode(nonce)
    ));
    let file = create_new(&tmp, mode)?;
    let staged = Staged {
        tmp,
        path: path.to_path_buf(),
        dir: dir.to_path_buf(),
        committed: false,
    };
    Ok((staged, file))
}

#[cfg(unix)]
fn create_new(path: &Path, mode: u32) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
}

#[cfg(not(unix))]
fn create_new(path: &Path, _mode: u32) -> io::Result<File> {
    OpenOptions::new().write(true).create_new(true).open(path)
}

/// Sets the mode exactly (creation applies the umask).
#[cfg(unix)]
fn set_mode(file: &File, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_file: &File, _mode: u32) -> io::Result<()> {
    Ok(())
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

/// Takes an exclusive advisory lock on the file `path`, created with exactly
/// `mode` if missing; `None` if another process holds it. The lock lasts as
/// long as the returned file. An existing file is opened read-only, which is
/// enough for the lock: the user need not own it.
pub fn try_lock(path: &Path, mode: u32) -> io::Result<Option<File>> {
    let file = match File::open(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => match create_new(path, mode) {
            Ok(file) => {
                set_mode(&file, mode)?;
                file
            }
            // Created meanwhile by the other process.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => File::open(path)?,
            Err(e) => return Err(e),
        },
        other => other?,
    };
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(fs::TryLockError::WouldBlock) => Ok(None),
        Err(fs::TryLockError::Error(e)) => Err(e),
    }
}

/// Creates `dir` (and its parents) if missing, with exactly `mode`. A
/// directory that already exists is left as it is, its mode included: it may
/// be the user's home or `/tmp`.
pub fn create_dir(dir: &Path, mode: u32) -> io::Result<()> {
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent)?;
    }
    let mut builder = fs::DirBuilder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(mode);
    }
    match builder.create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => return Ok(()),
        Err(e) => return Err(e),
    }
    // Creation applied the umask.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir, fs::Permissions::from_mode(mode))?;
    }
    #[cfg(not(unix))]
    let _ = mode;
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn writes_with_exact_mode_and_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        write_atomic(&path, b"one", SECRET).unwrap();
        write_atomic(&path, b"two", SECRET).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        write_atomic(&path, b"three", PUBLIC).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
        // No temporary file is left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    fn is_root() -> bool {
        use std::os::unix::fs::MetadataExt;
        let probe = tempfile::NamedTempFile::new().unwrap();
        probe.as_file().metadata().unwrap().uid() == 0
    }

    #[test]
    fn a_replaced_file_keeps_its_owner_group_and_mode() {
        use std::os::unix::fs::MetadataExt;
        if !is_root() {
            eprintln!("skipped: giving a file to another user needs root");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("passwd");
        write_atomic(&path, b"old", SECRET).unwrap();
        std::os::unix::fs::chown(&path, Some(4242), Some(4243)).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        stage_keeping_owner(&path, b"new", SECRET)
            .unwrap()
            .commit()
            .unwrap();
        let m = fs::metadata(&path).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new");
        assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (4242, 4243, 0o640));
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_new_file_gets_the_given_mode_and_an_uncommitted_one_vanishes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("aclfile");
        stage_keeping_owner(&path, b"one", PUBLIC)
            .unwrap()
            .commit()
            .unwrap();
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o644
        );
        // Staged but dropped: the target is unchanged, nothing is left behind.
        let staged = stage_keeping_owner(&path, b"two", PUBLIC).unwrap();
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2);
        drop(staged);
        assert_eq!(fs::read(&path).unwrap(), b"one");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn an_existing_directory_keeps_its_mode_and_a_new_one_gets_the_given_mode() {
        let dir = tempfile::tempdir().unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o711)).unwrap();
        create_dir(dir.path(), 0o755).unwrap();
        assert_eq!(
            fs::metadata(dir.path()).unwrap().permissions().mode() & 0o777,
            0o711
        );
        let new = dir.path().join("a/b");
        create_dir(&new, 0o700).unwrap();
        assert_eq!(
            fs::metadata(&new).unwrap().permissions().mode() & 0o777,
            0o700
        );
        // A file in the way is an error.
        let file = dir.path().join("file");
        fs::write(&file, b"").unwrap();
        assert!(create_dir(&file, 0o700).is_err());
    }
}
