//! Key files: keyrings, identities and trust stores on disk.
//!
//! # Format (version 1)
//!
//! ```text
//! "MQSEAL" (6 bytes) | version (1 byte, = 1) | kind (1 byte) | body | SHA-256 of all before (32 bytes)
//! ```
//!
//! `kind` is 1 for a keyring, 2 for an identity, 3 for a trust store. The body
//! is the [postcard](https://docs.rs/postcard) encoding of:
//!
//! ```text
//! keyring:  { epochs: [ { epoch: u32, state: u8 (0 accept-only, 1 active, 2 retired),
//!                         created_ms: u64, retire_at_ms: Option<u64>,
//!                         secret: Option<[u8; 32]> (None when retired) } ] }
//! identity: { sender_id: bytes, ed25519_seed: [u8; 32], x25519_secret: [u8; 32] }
//! trust:    { admin: Option<(bytes, [u8; 32])>,
//!             peers: [ { id: bytes, ed25519: [u8; 32], x25519: Option<[u8; 32]> } ],
//!             revoked: [ bytes ] }
//! ```
//!
//! Files are written atomically (a temporary file with mode 0600, synced, then
//! renamed). On Unix, loading checks the file it opened (so the check and
//! the read concern the same file, a symbolic link being followed):
//!
//! - it must belong to the user the process runs as, or to root: whoever
//!   owns a key file can change it, trust store included
//!   ([`KeyFileError::Owner`]);
//! - a keyring or identity must not be readable or writable by group or
//!   others ([`KeyFileError::Permissions`]), and a trust store, which holds
//!   only public keys, not writable by them ([`KeyFileError::Writable`]);
//!   each error names the `chown` or `chmod` that fixes it.
//!
//! A key file is a regular file of at most [`MAX_FILE_LEN`] bytes: a
//! directory, a device or a pipe (process substitution included) is refused
//! ([`KeyFileError::NotRegular`]), without waiting for a pipe's writer. The
//! checks do not cover the directory: keep it writable only by its owner,
//! since whoever can write it can put another key file in its place. A
//! truncated or corrupted file fails its checksum and gives a clear error,
//! never a panic. Secret bytes are zeroized after use.

use std::fs;
use std::io::Read as _;
use std::path::Path;

use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::crypto::CryptoProvider;
use crate::error::KeyFileError;
use crate::keys::{
    AgreementKey, AgreementPublicKey, EpochState, GroupSecret, Identity, Keyring, PublicIdentity,
    PublicKey, SenderId, SigningKey, TrustStore,
};

/// The magic bytes of a key file.
pub const MAGIC: &[u8; 6] = b"MQSEAL";
/// The key file format version.
pub const VERSION: u8 = 1;
/// The longest key file read: 16 MiB. A trust store of 10 000 peers takes
/// about 1 MiB.
pub const MAX_FILE_LEN: u64 = 16 << 20;

/// What a key file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Kind {
    /// A [`Keyring`].
    Keyring = 1,
    /// An [`Identity`].
    Identity = 2,
    /// A [`TrustStore`].
    Trust = 3,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Keyring => "keyring",
            Kind::Identity => "identity",
            Kind::Trust => "trust store",
        }
    }
}

#[derive(Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
struct EpochRecord {
    epoch: u32,
    state: u8,
    created_ms: u64,
    retire_at_ms: Option<u64>,
    secret: Option<[u8; 32]>,
}

#[derive(Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
struct KeyringBody {
    epochs: Vec<EpochRecord>,
}

#[derive(Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
struct IdentityBody {
    sender_id: Vec<u8>,
    ed25519_seed: [u8; 32],
    x25519_secret: [u8; 32],
}

#[derive(Serialize, Deserialize)]
struct PeerRecord {
    id: Vec<u8>,
    ed25519: [u8; 32],
    x25519: Option<[u8; 32]>,
}

#[derive(Serialize, Deserialize)]
struct TrustBody {
    admin: Option<(Vec<u8>, [u8; 32])>,
    peers: Vec<PeerRecord>,
    revoked: Vec<Vec<u8>>,
}

fn corrupt(path: &Path, reason: impl Into<String>) -> KeyFileError {
    KeyFileError::Corrupt {
        path: path.display().to_string(),
        reason: reason.into(),
    }
}

fn encode<T: Serialize>(provider: &CryptoProvider, kind: Kind, body: &T) -> Zeroizing<Vec<u8>> {
    let body = Zeroizing::new(postcard::to_allocvec(body).expect("postcard encodes plain structs"));
    let mut out = Zeroizing::new(Vec::with_capacity(8 + body.len() + 32));
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.push(kind as u8);
    out.extend_from_slice(&body);
    let digest = provider.sha256.sha256(&[&out]);
    out.extend_from_slice(&digest);
    out
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), KeyFileError> {
    let io = |source| KeyFileError::Io {
        path: path.display().to_string(),
        source,
    };
    crate::fsutil::replace_private(path, bytes).map_err(io)?;
    crate::fsutil::sync_parent(path).map_err(io)
}

/// Reads and checks a key file; returns its body.
fn read(
    provider: &CryptoProvider,
    path: &Path,
    kind: Kind,
    secret: bool,
) -> Result<Zeroizing<Vec<u8>>, KeyFileError> {
    let io = |source| KeyFileError::Io {
        path: path.display().to_string(),
        source,
    };
    // Checked on the open file, which is the one read below.
    let mut file = open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(KeyFileError::NotRegular {
            path: path.display().to_string(),
        });
    }
    if meta.len() > MAX_FILE_LEN {
        return Err(corrupt(
            path,
            format!("longer than {MAX_FILE_LEN} bytes: not an mqseal key file"),
        ));
    }
    #[cfg(unix)]
    check_access(path, &meta, secret)?;
    let _ = secret;
    // Room for the whole file and one byte more, and at most that much read
    // (a file that grew meanwhile fills it exactly): reading never
    // reallocates, which would leave a copy of secret bytes in freed memory.
    let mut bytes = Zeroizing::new(Vec::with_capacity(
        usize::try_from(meta.len()).unwrap_or(0).saturating_add(1),
    ));
    (&mut file)
        .take(meta.len() + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 != meta.len() {
        return Err(io(std::io::Error::other(
            "the file changed while it was read: try again",
        )));
    }
    check(provider, path, kind, &bytes)
}

/// Opens a key file without waiting: a FIFO (or a device) given by mistake
/// is opened at once, then refused as not a regular file, instead of
/// blocking until a writer appears. (O_NONBLOCK does not change reads of a
/// regular file.)
fn open(path: &Path) -> std::io::Result<fs::File> {
    let mut o = fs::OpenOptions::new();
    o.read(true);
    #[cfg(unix)]
    {
        use rustix::fs::OFlags;
        use std::os::unix::fs::OpenOptionsExt;
        o.custom_flags((OFlags::NONBLOCK | OFlags::NOCTTY).bits() as i32);
    }
    o.open(path)
}

/// Owner and mode of an open key file: see the module docs.
#[cfg(unix)]
fn check_access(path: &Path, meta: &fs::Metadata, secret: bool) -> Result<(), KeyFileError> {
    use std::os::unix::fs::MetadataExt;
    let mode = meta.mode() & 0o777;
    let owner = meta.uid();
    let user = rustix::process::geteuid().as_raw();
    if owner != user && owner != 0 {
        return Err(KeyFileError::Owner {
            path: path.display().to_string(),
            owner,
            user,
        });
    }
    if secret && mode & 0o077 != 0 {
        return Err(KeyFileError::Permissions {
            path: path.display().to_string(),
            mode,
        });
    }
    if mode & 0o022 != 0 {
        return Err(KeyFileError::Writable {
            path: path.display().to_string(),
            mode,
        });
    }
    Ok(())
}

fn check(
    provider: &CryptoProvider,
    path: &Path,
    kind: Kind,
    bytes: &[u8],
) -> Result<Zeroizing<Vec<u8>>, KeyFileError> {
    if bytes.len() < 8 + 32 || &bytes[..6] != MAGIC {
        return Err(corrupt(
            path,
            "not an mqseal key file (too short or wrong magic bytes)",
        ));
    }
    if bytes[6] != VERSION {
        return Err(KeyFileError::UnsupportedVersion {
            path: path.display().to_string(),
            version: bytes[6],
        });
    }
    let (content, digest) = bytes.split_at(bytes.len() - 32);
    if provider.sha256.sha256(&[content]) != digest {
        return Err(corrupt(
            path,
            "checksum mismatch: the file is truncated or damaged",
        ));
    }
    if bytes[7] != kind as u8 {
        return Err(KeyFileError::WrongKind {
            path: path.display().to_string(),
            expected: kind.name(),
        });
    }
    Ok(Zeroizing::new(content[8..].to_vec()))
}

fn state_code(s: EpochState) -> u8 {
    match s {
        EpochState::AcceptOnly => 0,
        EpochState::Active => 1,
        EpochState::Retired => 2,
    }
}

/// Writes a keyring to `path` (mode 0600, atomically).
pub fn save_keyring(
    provider: &CryptoProvider,
    path: impl AsRef<Path>,
    keyring: &Keyring,
) -> Result<(), KeyFileError> {
    let body = KeyringBody {
        epochs: keyring
            .all_epochs()
            .map(|(epoch, state)| EpochRecord {
                epoch,
                state: state_code(state),
                created_ms: keyring.created_ms(epoch).unwrap_or(0),
                retire_at_ms: keyring.retire_at_ms(epoch),
                secret: keyring.get(epoch).map(|s| *s.expose_secret()),
            })
            .collect(),
    };
    write(path.as_ref(), &encode(provider, Kind::Keyring, &body))
}

/// Reads a keyring from `path`.
pub fn load_keyring(
    provider: &CryptoProvider,
    path: impl AsRef<Path>,
) -> Result<Keyring, KeyFileError> {
    let path = path.as_ref();
    let body = read(provider, path, Kind::Keyring, true)?;
    let body: KeyringBody =
        postcard::from_bytes(&body).map_err(|e| corrupt(path, format!("keyring body: {e}")))?;
    let mut k = Keyring::default();
    let mut active = 0;
    for r in &body.epochs {
        let state = match r.state {
            0 => EpochState::AcceptOnly,
            1 => EpochState::Active,
            2 => EpochState::Retired,
            _ => {
                return Err(corrupt(
                    path,
                    format!("epoch {}: unknown state {}", r.epoch, r.state),
                ));
            }
        };
        if (state == EpochState::Retired) != r.secret.is_none() {
            return Err(corrupt(
                path,
                format!("epoch {}: secret present iff not retired", r.epoch),
            ));
        }
        if k.state(r.epoch).is_some() {
            return Err(corrupt(path, format!("epoch {} appears twice", r.epoch)));
        }
        active += usize::from(state == EpochState::Active);
        k.restore(
            r.epoch,
            state,
            r.secret.map(GroupSecret::from_bytes),
            r.created_ms,
            r.retire_at_ms,
        );
    }
    if active > 1 {
        return Err(corrupt(path, "more than one active epoch"));
    }
    Ok(k)
}

/// Writes an identity to `path` (mode 0600, atomically).
pub fn save_identity(
    provider: &CryptoProvider,
    path: impl AsRef<Path>,
    identity: &Identity,
) -> Result<(), KeyFileError> {
    let body = IdentityBody {
        sender_id: identity.sender_id.as_bytes().to_vec(),
        ed25519_seed: *identity.signing_key.expose_seed(),
        x25519_secret: *identity.agreement_key.expose_secret(),
    };
    write(path.as_ref(), &encode(provider, Kind::Identity, &body))
}

/// Reads an identity from `path`.
pub fn load_identity(
    provider: &CryptoProvider,
    path: impl AsRef<Path>,
) -> Result<Identity, KeyFileError> {
    let path = path.as_ref();
    let body = read(provider, path, Kind::Identity, true)?;
    let body: IdentityBody =
        postcard::from_bytes(&body).map_err(|e| corrupt(path, format!("identity body: {e}")))?;
    Ok(Identity {
        sender_id: SenderId::new(&body.sender_id).map_err(|e| corrupt(path, e.to_string()))?,
        signing_key: SigningKey::from_seed(body.ed25519_seed),
        agreement_key: AgreementKey::from_bytes(body.x25519_secret),
    })
}

/// Writes a trust store to `path` (mode 0600, atomically).
pub fn save_trust(
    provider: &CryptoProvider,
    path: impl AsRef<Path>,
    trust: &TrustStore,
) -> Result<(), KeyFileError> {
    let body = TrustBody {
        admin: trust.admin().map(|(id, k)| (id.as_bytes().to_vec(), k.0)),
        peers: trust
            .iter()
            .map(|(id, k)| PeerRecord {
                id: id.as_bytes().to_vec(),
                ed25519: k.0,
                x25519: trust.agreement_key(id).map(|a| a.0),
            })
            .collect(),
        revoked: trust.revoked().map(|id| id.as_bytes().to_vec()).collect(),
    };
    write(path.as_ref(), &encode(provider, Kind::Trust, &body))
}

/// Reads a trust store from `path`. It holds only public keys, so others may
/// read it; it must not be writable by them, and must belong to this user
/// or root (see the module docs).
pub fn load_trust(
    provider: &CryptoProvider,
    path: impl AsRef<Path>,
) -> Result<TrustStore, KeyFileError> {
    let path = path.as_ref();
    let body = read(provider, path, Kind::Trust, false)?;
    let body: TrustBody =
        postcard::from_bytes(&body).map_err(|e| corrupt(path, format!("trust store body: {e}")))?;
    let id = |b: &[u8]| SenderId::new(b).map_err(|e| corrupt(path, e.to_string()));
    let mut t = TrustStore::new();
    if let Some((admin, key)) = &body.admin {
        t.set_admin(id(admin)?, PublicKey(*key));
    }
    for p in &body.peers {
        let sender = id(&p.id)?;
        match p.x25519 {
            Some(x) => t.insert_identity(&PublicIdentity {
                sender_id: sender,
                signing: PublicKey(p.ed25519),
                agreement: AgreementPublicKey(x),
            }),
            None => t.insert(sender, PublicKey(p.ed25519)),
        }
    }
    for r in &body.revoked {
        t.revoke(id(r)?);
    }
    Ok(t)
}

/// Checks a key file's bytes (for fuzzing): magic, version, checksum and kind.
#[doc(hidden)]
pub fn check_bytes(
    provider: &CryptoProvider,
    kind: Kind,
    bytes: &[u8],
) -> Result<(), KeyFileError> {
    check(provider, Path::new("<bytes>"), kind, bytes).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::default_provider;

    #[test]
    fn keyring_round_trip_keeps_states_and_times() {
        let p = default_provider();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ring.key");
        let mut k = Keyring::new_at(1, GroupSecret::from_bytes([1; 32]), 10);
        k.add_at(2, GroupSecret::from_bytes([2; 32]), 20).unwrap();
        k.promote_with_grace(2, 30, std::time::Duration::from_millis(5))
            .unwrap();
        k.add_at(3, GroupSecret::from_bytes([3; 32]), 40).unwrap();
        k.retire(3).unwrap();
        save_keyring(p, &path, &k).unwrap();
        let l = load_keyring(p, &path).unwrap();
        assert_eq!(
            l.all_epochs().collect::<Vec<_>>(),
            k.all_epochs().collect::<Vec<_>>()
        );
        assert_eq!(l.get(2), k.get(2));
        assert_eq!(l.retire_at_ms(1), Some(35));
        assert_eq!(l.created_ms(3), Some(40));
        assert!(l.get(3).is_none());
    }
}
