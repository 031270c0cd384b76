//! Key files: `keyfile::check_bytes` (magic, version, checksum, kind) on the
//! raw input, then the input framed as a valid file of each kind (magic,
//! version, kind, body, SHA-256) and loaded with `load_keyring`,
//! `load_identity` and `load_trust`, so the body decoders are reached
//! despite the checksum. Nothing may panic, and a well-framed file must pass
//! the checks.
#![no_main]

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use mqseal::crypto;
use mqseal::keyfile::{self, Kind, MAGIC, VERSION, check_bytes};

fn path() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        std::env::temp_dir().join(format!("mqseal-fuzz-{}.key", std::process::id()))
    })
}

fuzz_target!(|data: &[u8]| {
    let p = crypto::default_provider();
    for kind in [Kind::Keyring, Kind::Identity, Kind::Trust] {
        let _ = check_bytes(p, kind, data);
    }
    let Some((&k, body)) = data.split_first() else {
        return;
    };
    let kind = [Kind::Keyring, Kind::Identity, Kind::Trust][usize::from(k % 3)];
    let mut file = MAGIC.to_vec();
    file.extend_from_slice(&[VERSION, kind as u8]);
    file.extend_from_slice(body);
    let digest = p.sha256.sha256(&[&file]);
    file.extend_from_slice(&digest);
    assert!(
        check_bytes(p, kind, &file).is_ok(),
        "a well-framed file failed its checks"
    );
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path())
        .expect("temporary key file");
    f.write_all(&file).expect("write");
    drop(f);
    match kind {
        Kind::Keyring => drop(keyfile::load_keyring(p, path())),
        Kind::Identity => drop(keyfile::load_identity(p, path())),
        _ => drop(keyfile::load_trust(p, path())),
    }
});
