//! Key files on the command line: loading and saving through
//! [`mqseal::keyfile`] with errors that name the file and the fix, the public
//! identity text format, and the sender's counter store.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use mqseal::crypto::{CryptoProvider, default_provider};
use mqseal::keyfile;
use mqseal::{
    AgreementPublicKey, FileCounterStore, Identity, KeyFileError, Keyring, PublicIdentity,
    PublicKey, SenderId, TrustStore,
};

use crate::files::{self, PUBLIC};
use crate::util::{iso_seconds, note, now_ms};

/// The crypto provider of every command.
pub fn provider() -> &'static CryptoProvider {
    default_provider()
}

/// What a key file holds, for messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// A keyring.
    Keyring,
    /// A device identity.
    Identity,
    /// A trust store.
    Trust,
}

impl FileKind {
    fn name(self) -> &'static str {
        match self {
            FileKind::Keyring => "keyring",
            FileKind::Identity => "identity",
            FileKind::Trust => "trust store",
        }
    }

    fn create_hint(self, path: &Path) -> String {
        let p = path.display();
        match self {
            FileKind::Keyring => format!("create one with `mqseal keygen keyring --out {p}`"),
            FileKind::Identity => {
                format!("create one with `mqseal keygen identity --id NAME --out {p}`")
            }
            FileKind::Trust => {
                format!("create one with `mqseal trust add --trust {p} --peer PEER.pub`")
            }
        }
    }
}

/// Turns a key file error into a message that names the file and the fix.
pub fn explain(e: KeyFileError, kind: FileKind, path: &Path) -> String {
    let p = path.display();
    let what = kind.name();
    match e {
        KeyFileError::Io { source, .. } if source.kind() == io::ErrorKind::NotFound => {
            format!("the {what} {p} does not exist: {}", kind.create_hint(path))
        }
        KeyFileError::Io { source, .. } => format!("cannot read the {what} {p}: {source}"),
        e @ KeyFileError::Permissions { .. } => {
            format!("refusing to use the {what}: {e} (a key file must be private to its owner)")
        }
        e @ (KeyFileError::Writable { .. }
        | KeyFileError::Owner { .. }
        | KeyFileError::NotRegular { .. }) => {
            format!("refusing to use the {what}: {e}")
        }
        KeyFileError::WrongKind { .. } => {
            let hint = match kind {
                FileKind::Keyring => "give the file written by `mqseal keygen keyring`",
                FileKind::Identity => {
                    "give the file written by `mqseal keygen identity` (not its .pub)"
                }
                FileKind::Trust => "give the file written by `mqseal trust add`",
            };
            format!("{p} is not a {what} but another kind of mqseal key file: {hint}")
        }
        KeyFileError::Corrupt { reason, .. } => format!(
            "the {what} {p} is damaged ({reason}): restore it from a backup, or make a new one"
        ),
        e => format!("the {what} {p}: {e}"),
    }
}

fn write_error(e: KeyFileError, kind: FileKind, path: &Path) -> String {
    let p = path.display();
    match e {
        KeyFileError::Io { source, .. } if source.kind() == io::ErrorKind::NotFound => {
            let dir = path
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            format!(
                "cannot write the {} {p}: the directory {} does not exist: create it first",
                kind.name(),
                dir.display()
            )
        }
        KeyFileError::Io { source, .. } => {
            format!("cannot write the {} {p}: {source}", kind.name())
        }
        e => format!("cannot write the {} {p}: {e}", kind.name()),
    }
}

/// Loads a keyring.
pub fn load_keyring(path: &Path) -> Result<Keyring, String> {
    keyfile::load_keyring(provider(), path).map_err(|e| explain(e, FileKind::Keyring, path))
}

/// Loads a keyring for use: epochs whose grace period is over are retired
/// (their secrets erased) and the file saved, with a note on standard error.
pub fn load_keyring_for_use(path: &Path) -> Result<Keyring, String> {
    let mut keyring = load_keyring(path)?;
    retire_due(&mut keyring, path)?;
    Ok(keyring)
}

/// Retires the epochs of `keyring` whose grace period is over and saves it.
pub fn retire_due(keyring: &mut Keyring, path: &Path) -> Result<Vec<u32>, String> {
    let due: Vec<(u32, u64)> = keyring
        .all_epochs()
        .filter_map(|(e, _)| keyring.retire_at_ms(e).map(|t| (e, t)))
        .collect();
    let retired = keyring.retire_due(now_ms());
    if !retired.is_empty() {
        save_keyring(path, keyring)?;
        for e in &retired {
            let at = due.iter().find(|(d, _)| d == e).map_or(0, |(_, t)| *t);
            note(&format!(
                "retired epoch {e} in {}: its grace period ended at {} (secret erased)",
                path.display(),
                iso_seconds(at)
            ));
        }
    }
    Ok(retired)
}

/// Saves a keyring.
pub fn save_keyring(path: &Path, keyring: &Keyring) -> Result<(), String> {
    keyfile::save_keyring(provider(), path, keyring)
        .map_err(|e| write_error(e, FileKind::Keyring, path))
}

/// Loads an identity.
pub fn load_identity(path: &Path) -> Result<Identity, String> {
    keyfile::load_identity(provider(), path).map_err(|e| explain(e, FileKind::Identity, path))
}

/// Saves an identity.
pub fn save_identity(path: &Path, identity: &Identity) -> Result<(), String> {
    keyfile::save_identity(provider(), path, identity)
        .map_err(|e| write_error(e, FileKind::Identity, path))
}

/// Loads a trust store.
pub fn load_trust(path: &Path) -> Result<TrustStore, String> {
    keyfile::load_trust(provider(), path).map_err(|e| explain(e, FileKind::Trust, path))
}

/// Loads a trust store, or an empty one if the file does not exist (`true`).
pub fn load_trust_or_new(path: &Path) -> Result<(TrustStore, bool), String> {
    if path.exists() {
        Ok((load_trust(path)?, false))
    } else {
        Ok((TrustStore::new(), true))
    }
}

/// Saves a trust store.
pub fn save_trust(path: &Path, trust: &TrustStore) -> Result<(), String> {
    keyfile::save_trust(provider(), path, trust).map_err(|e| write_error(e, FileKind::Trust, path))
}

/// Refuses to overwrite `path` without `force`.
pub fn check_new(path: &Path, force: bool, what: &str) -> Result<(), String> {
    if !force && path.exists() {
        return Err(format!(
            "{} already exists, and nothing was written: replacing {what} loses it for good; \
             add --force to replace it, or choose another --out",
            path.display()
        ));
    }
    Ok(())
}

/// The first word of a public identity file.
pub const PUBLIC_MAGIC: &str = "mqseal-identity-v1";

/// `FILE.pub` of an identity file `FILE`.
pub fn public_path(identity: &Path) -> PathBuf {
    let mut s = identity.as_os_str().to_owned();
    s.push(".pub");
    PathBuf::from(s)
}

/// The text of a public identity file: one line,
/// `mqseal-identity-v1 <id hex> <ed25519 hex> <x25519 hex>`.
pub fn format_public(p: &PublicIdentity) -> String {
    format!(
        "{PUBLIC_MAGIC} {} {} {}\n",
        hex::encode(p.sender_id.as_bytes()),
        hex::encode(p.signing.0),
        hex::encode(p.agreement.0)
    )
}

/// Parses a public identity file (blank lines and `#` comments are ignored).
pub fn parse_public(text: &str) -> Result<PublicIdentity, String> {
    let mut lines = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'));
    let line = lines.next().ok_or("it is empty")?;
    if lines.next().is_some() {
        return Err("it has more than one identity line".into());
    }
    let f: Vec<&str> = line.split_whitespace().collect();
    let [magic, id, ed, x] = f[..] else {
        return Err(format!(
            "expected one line `{PUBLIC_MAGIC} <id hex> <ed25519 hex> <x25519 hex>`"
        ));
    };
    if magic != PUBLIC_MAGIC {
        return Err(format!("it does not start with {PUBLIC_MAGIC}"));
    }
    let id = hex::decode(id).map_err(|_| "the sender id is not hex")?;
    let sender_id = SenderId::new(&id).map_err(|e| e.to_string())?;
    let key = |h: &str, what: &str| -> Result<[u8; 32], String> {
        let v = hex::decode(h).map_err(|_| format!("the {what} key is not hex"))?;
        v.try_into()
            .map_err(|_| format!("the {what} key is not 32 bytes"))
    };
    let signing = key(ed, "Ed25519")?;
    provider()
        .ed25519
        .verifying_key(&signing)
        .map_err(|_| "the Ed25519 key is not a valid public key")?;
    Ok(PublicIdentity {
        sender_id,
        signing: PublicKey(signing),
        agreement: AgreementPublicKey(key(x, "X25519")?),
    })
}

/// Reads a public identity file.
pub fn read_public(path: &Path) -> Result<PublicIdentity, String> {
    let p = path.display();
    let bytes = std::fs::read(path).map_err(|e| {
        if e.kind() == io::ErrorKind::NotFound {
            format!(
                "the public identity {p} does not exist: `mqseal keygen identity --out FILE` \
                 writes it as FILE.pub"
            )
        } else {
            format!("cannot read the public identity {p}: {e}")
        }
    })?;
    if bytes.starts_with(keyfile::MAGIC) {
        return Err(format!(
            "{p} is an mqseal key file, with secrets, not a public identity: give its .pub \
             file, written next to it by `mqseal keygen identity`"
        ));
    }
    let text = String::from_utf8(bytes)
        .map_err(|_| format!("{p} is not a public identity: it is not text"))?;
    parse_public(&text).map_err(|e| format!("{p} is not a valid public identity: {e}"))
}

/// Writes a public identity file (mode 0644).
pub fn write_public(path: &Path, p: &PublicIdentity) -> Result<(), String> {
    files::write_atomic(path, format_public(p).as_bytes(), PUBLIC)
        .map_err(|e| format!("cannot write the public identity {}: {e}", path.display()))
}

/// The counter file of an identity: `IDENTITY.counters`.
pub fn counters_path(identity: &Path) -> PathBuf {
    let mut s = identity.as_os_str().to_owned();
    s.push(".counters");
    PathBuf::from(s)
}

/// The lock that makes this process the only one sealing with an identity:
/// two processes sealing with one identity at the same time would read the
/// same counter mark and reuse counters (nonces). It is an exclusive lock on
/// the identity file, released when this is dropped or the process exits;
/// a second process waits for it. ([`FileCounterStore`] also locks its own
/// file, but refuses instead of waiting.)
#[derive(Debug)]
pub struct CounterLock {
    _file: File,
}

/// Takes the identity's lock (waiting, with a note, while another process
/// holds it), then opens its counter store, `IDENTITY.counters`.
pub fn open_counters(identity: &Path) -> Result<(FileCounterStore, CounterLock), String> {
    let lock = File::open(identity)
        .map_err(|e| format!("cannot open the identity {}: {e}", identity.display()))?;
    lock_exclusive(&lock, identity)?;
    let path = counters_path(identity);
    let store = FileCounterStore::open(&path).map_err(|e| match e {
        e @ mqseal::CounterError::Corrupt { .. } => format!(
            "cannot use the counters of {}: {e}; do not delete the file (that would reuse \
             counters): make a new identity, or move to a new key epoch",
            identity.display()
        ),
        e => format!("cannot use the counters of {}: {e}", identity.display()),
    })?;
    Ok((store, CounterLock { _file: lock }))
}

fn lock_exclusive(file: &File, identity: &Path) -> Result<(), String> {
    let err = |e: io::Error| format!("cannot lock the identity {}: {e}", identity.display());
    match file.try_lock() {
        Ok(()) => Ok(()),
        Err(std::fs::TryLockError::WouldBlock) => {
            note(&format!(
                "waiting: another mqseal process is using {}",
                identity.display()
            ));
            file.lock().map_err(err)
        }
        Err(std::fs::TryLockError::Error(e)) => Err(err(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_identity_round_trip() {
        let id = Identity::generate(SenderId::new(b"robot-1").unwrap(), provider().random).unwrap();
        let p = id.public(provider());
        let text = format_public(&p);
        assert!(text.starts_with("mqseal-identity-v1 726f626f742d31 "));
        assert_eq!(text.lines().count(), 1);
        assert_eq!(parse_public(&text).unwrap(), p);
        assert_eq!(parse_public(&format!("# robot\n\n{text}")).unwrap(), p);
        assert!(parse_public("").is_err());
        assert!(parse_public(&format!("{text}{text}")).is_err());
        assert!(parse_public(&text.replace("v1", "v2")).is_err());
        assert!(parse_public(&text[..text.len() - 3]).is_err());
    }
}
