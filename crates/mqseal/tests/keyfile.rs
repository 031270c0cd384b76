//! Loading key files: who may own and change them, and what is not a key
//! file at all. (Round trips and corruption: `tests/rotation.rs`.)

#![cfg(unix)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use mqseal::keyfile;
use mqseal::{GroupSecret, Identity, KeyFileError, Keyring, SenderId, TrustStore, crypto};

/// A keyring, an identity and a trust store saved in `dir` (mode 0600).
fn files(dir: &Path) -> [PathBuf; 3] {
    let p = crypto::default_provider();
    let ring = dir.join("fleet.keyring");
    let id = dir.join("dev.identity");
    let trust = dir.join("trust");
    keyfile::save_keyring(p, &ring, &Keyring::new(1, GroupSecret::from_bytes([7; 32]))).unwrap();
    let identity = Identity::generate(SenderId::new(b"dev").unwrap(), p.random).unwrap();
    keyfile::save_identity(p, &id, &identity).unwrap();
    let mut t = TrustStore::new();
    t.insert_identity(&identity.public(p));
    keyfile::save_trust(p, &trust, &t).unwrap();
    [ring, id, trust]
}

/// Loads `path` as what it is, by its name.
fn load(path: &Path) -> Result<(), KeyFileError> {
    let p = crypto::default_provider();
    match path.file_name().and_then(|n| n.to_str()) {
        Some("fleet.keyring") => keyfile::load_keyring(p, path).map(|_| ()),
        Some("dev.identity") => keyfile::load_identity(p, path).map(|_| ()),
        _ => keyfile::load_trust(p, path).map(|_| ()),
    }
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn key_files_that_group_or_others_could_change_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let [ring, id, trust] = files(dir.path());
    for f in [&ring, &id, &trust] {
        load(f).unwrap();
    }

    // A trust store holds public keys: others may read it, not write it.
    chmod(&trust, 0o644);
    load(&trust).unwrap();
    for mode in [0o664, 0o646, 0o666, 0o622] {
        chmod(&trust, mode);
        let err = load(&trust).unwrap_err();
        assert!(
            matches!(err, KeyFileError::Writable { mode: m, .. } if m == mode),
            "{mode:o}: {err}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains("writable by others") && msg.contains("chmod go-w"),
            "{msg}"
        );
    }
    chmod(&trust, 0o600);

    // A keyring or identity: neither read nor write for group or others,
    // and the message says which.
    for f in [&ring, &id] {
        for (mode, what) in [
            (0o640, "readable"),
            (0o604, "readable"),
            (0o620, "writable"),
            (0o602, "writable"),
            (0o660, "readable"),
            (0o611, "executable"),
            (0o601, "executable"),
        ] {
            chmod(f, mode);
            let err = load(f).unwrap_err();
            assert!(
                matches!(err, KeyFileError::Permissions { mode: m, .. } if m == mode),
                "{mode:o}: {err}"
            );
            let msg = err.to_string();
            assert!(
                msg.contains(&format!("{what} by others")) && msg.contains("chmod 600"),
                "{msg}"
            );
        }
        chmod(f, 0o600);
        load(f).unwrap();
    }
}

#[test]
fn key_files_owned_by_another_user_are_refused() {
    let user = euid();
    if user != 0 {
        // Giving a file away takes root; CI runs as root.
        eprintln!("skipped: giving a file to another user needs root (running as uid {user})");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for f in files(dir.path()) {
        std::os::unix::fs::chown(&f, Some(4242), None).unwrap();
        let err = load(&f).unwrap_err();
        assert!(
            matches!(
                err,
                KeyFileError::Owner {
                    owner: 4242,
                    user: 0,
                    ..
                }
            ),
            "{}: {err}",
            f.display()
        );
        let msg = err.to_string();
        assert!(msg.contains("uid 4242") && msg.contains("chown 0"), "{msg}");
        // Root's own files are fine, as are the user's.
        std::os::unix::fs::chown(&f, Some(0), None).unwrap();
        load(&f).unwrap();
    }
}

/// The effective user id: the owner of a file this process creates.
fn euid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    let f = tempfile::NamedTempFile::new().unwrap();
    f.as_file().metadata().unwrap().uid()
}

#[test]
fn a_key_file_behind_a_symbolic_link_is_checked_where_it_points() {
    let dir = tempfile::tempdir().unwrap();
    let [ring, _, trust] = files(dir.path());
    // As mounted secrets are: the name is a link to the file.
    let links = dir.path().join("links");
    fs::create_dir(&links).unwrap();
    let ring_link = links.join("fleet.keyring");
    let trust_link = links.join("trust");
    std::os::unix::fs::symlink(&ring, &ring_link).unwrap();
    std::os::unix::fs::symlink(&trust, &trust_link).unwrap();
    load(&ring_link).unwrap();
    load(&trust_link).unwrap();
    // A link's own mode (0777) does not matter; the file's does.
    chmod(&ring, 0o644);
    assert!(matches!(
        load(&ring_link).unwrap_err(),
        KeyFileError::Permissions { mode: 0o644, .. }
    ));
    chmod(&trust, 0o666);
    assert!(matches!(
        load(&trust_link).unwrap_err(),
        KeyFileError::Writable { mode: 0o666, .. }
    ));
}

#[test]
fn what_is_not_a_key_file_is_refused_before_it_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let [ring, ..] = files(dir.path());

    // A directory.
    let d = dir.path().join("fleet.keyring.d");
    fs::create_dir(&d).unwrap();
    chmod(&d, 0o700);
    let err = keyfile::load_keyring(crypto::default_provider(), &d).unwrap_err();
    assert!(matches!(&err, KeyFileError::NotRegular { .. }), "{err}");

    // A file longer than any key file (sparse: nothing is written, and
    // nothing is read, since the length is checked first).
    let f = fs::OpenOptions::new().write(true).open(&ring).unwrap();
    f.set_len(keyfile::MAX_FILE_LEN + 1).unwrap();
    let err = load(&ring).unwrap_err();
    assert!(
        matches!(&err, KeyFileError::Corrupt { reason, .. } if reason.contains("longer than")),
        "{err}"
    );
    // At the limit it is read, and fails its checksum.
    f.set_len(keyfile::MAX_FILE_LEN).unwrap();
    let err = load(&ring).unwrap_err();
    assert!(
        matches!(&err, KeyFileError::Corrupt { reason, .. } if reason.contains("checksum")),
        "{err}"
    );
}

#[test]
fn a_fifo_is_refused_without_waiting_for_a_writer() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["fleet.keyring", "dev.identity", "trust"] {
        let fifo = dir.path().join(name);
        let st = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(st.success());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || tx.send(load(&fifo)).unwrap());
        let err = rx
            .recv_timeout(std::time::Duration::from_secs(5))
            .expect("loading a FIFO waited for a writer")
            .unwrap_err();
        assert!(matches!(&err, KeyFileError::NotRegular { .. }), "{err}");
        assert!(err.to_string().contains("not a regular file"), "{err}");
    }
}
