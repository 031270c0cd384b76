//! Errors.
//!
//! [`Error`] is the one error type of the crate. It is built from category
//! enums, in the style of rustls:
//!
//! - [`Rejection`]: a received message failed a check. This is caused by the
//!   network or an attacker, never by a bug in the application. The receive
//!   path goes on; count and log these.
//! - [`ConfigError`]: the application asked for something inconsistent or
//!   insecure. It is never caused by untrusted input, and the message says what
//!   to change.
//! - [`CounterError`]: the sender's counter is exhausted or its store failed.
//! - [`KeyError`]: key material is missing, malformed or of the wrong kind.
//!
//! An authentication failure says *that* the message failed, never which byte
//! was wrong.

use crate::envelope::Suite;

/// The error type of every fallible operation in mqseal.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A received message was rejected.
    #[error("message rejected: {0}")]
    Rejected(#[from] Rejection),
    /// The configuration or a call is inconsistent; the message says what to change.
    #[error("configuration error: {0}")]
    Config(#[from] ConfigError),
    /// A counter is exhausted or could not be reserved.
    #[error("counter error: {0}")]
    Counter(#[from] CounterError),
    /// A key is missing, malformed or of the wrong kind.
    #[error("key error: {0}")]
    Key(#[from] KeyError),
    /// A key file could not be read or written.
    #[error("key file: {0}")]
    KeyFile(#[from] KeyFileError),
    /// The underlying publish/subscribe client failed.
    #[error("transport error: {0}")]
    Transport(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The cryptographic backend failed in a way that input cannot cause
    /// (for example, the operating system's random number generator failed).
    #[error("cryptographic backend failure: {0}")]
    Crypto(&'static str),
}

impl Error {
    /// The rejection, if this error is one.
    pub fn rejection(&self) -> Option<&Rejection> {
        match self {
            Error::Rejected(r) => Some(r),
            _ => None,
        }
    }
}

/// Why a received message was rejected.
///
/// Every variant is caused by what arrived over the network: log it, count it
/// (see [`Rejection::kind`]) and go on receiving.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Rejection {
    /// The bytes are not a well-formed envelope.
    #[error("malformed envelope: {0}")]
    Malformed(#[from] Malformed),
    /// No policy rule covers the topic, so nothing may be accepted on it.
    #[error("no policy covers this topic")]
    NoPolicy,
    /// The envelope's suite is not the one the policy requires for this topic
    /// (a downgrade, or an envelope moved from a topic with another policy).
    #[error("topic requires suite {expected}, envelope has {found}")]
    PolicyMismatch {
        /// What the policy requires.
        expected: Suite,
        /// What the envelope carries.
        found: Suite,
    },
    /// The policy requires a timestamp and the envelope has none.
    #[error("the policy requires a timestamp and the envelope has none")]
    MissingTimestamp,
    /// The envelope is larger than the receiver accepts.
    #[error("envelope of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// Length of the envelope.
        len: usize,
        /// The receiver's limit.
        max: usize,
    },
    /// The key epoch was never in the keyring.
    #[error("unknown key epoch {0}")]
    UnknownEpoch(u32),
    /// The key epoch was retired: its grace period is over.
    #[error("key epoch {0} is retired")]
    RetiredEpoch(u32),
    /// This device is not among the recipients of a rekey message (it was
    /// removed from the group, or its key is not the one the admin knows).
    #[error("this device is not a recipient of the rekey message")]
    NotARecipient,
    /// The sender is not allowed, or its public key is not in the trust store.
    #[error("unknown sender")]
    UnknownSender,
    /// The receiver tracks as many senders as it is configured to.
    #[error("too many tracked senders")]
    TooManySenders,
    /// Authentication failed: the envelope was forged or tampered with, was
    /// sealed with another key, or was moved to another topic.
    #[error("authentication failed")]
    Unauthenticated,
    /// The counter was already accepted, or is older than the replay window.
    #[error("replayed or too old for the replay window")]
    Replayed,
    /// The timestamp is older than the maximum age.
    #[error("stale: timestamp older than the maximum age")]
    Stale,
    /// The timestamp is further in the future than the allowed clock skew.
    #[error("timestamp is further in the future than the allowed clock skew")]
    FromFuture,
}

impl Rejection {
    /// A short, stable label for counting and logging (for example `"replayed"`).
    pub fn kind(&self) -> &'static str {
        match self {
            Rejection::Malformed(_) => "malformed",
            Rejection::NoPolicy => "no_policy",
            Rejection::PolicyMismatch { .. } => "policy_mismatch",
            Rejection::MissingTimestamp => "missing_timestamp",
            Rejection::TooLarge { .. } => "too_large",
            Rejection::UnknownEpoch(_) => "unknown_epoch",
            Rejection::RetiredEpoch(_) => "retired_epoch",
            Rejection::NotARecipient => "not_a_recipient",
            Rejection::UnknownSender => "unknown_sender",
            Rejection::TooManySenders => "too_many_senders",
            Rejection::Unauthenticated => "unauthenticated",
            Rejection::Replayed => "replayed",
            Rejection::Stale => "stale",
            Rejection::FromFuture => "from_future",
        }
    }
}

/// How an envelope is malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Malformed {
    /// The input ends before the envelope does.
    #[error("truncated")]
    Truncated,
    /// The version is not one this implementation reads.
    #[error("unsupported version {0}")]
    UnsupportedVersion(u8),
    /// The suite id is not defined.
    #[error("unknown suite 0x{0:02x}")]
    UnknownSuite(u8),
    /// Reserved flag bits are set.
    #[error("reserved flag bits set")]
    ReservedFlags,
    /// An integer is not in its shortest encoding, or is too long.
    #[error("non-canonical or overlong integer in field {0}")]
    BadInteger(&'static str),
    /// An integer is beyond the field's limit.
    #[error("field {0} out of range")]
    OutOfRange(&'static str),
    /// The sender id is empty or longer than the maximum.
    #[error("sender id length out of range")]
    SenderIdLength,
    /// A rekey message is malformed.
    #[error("malformed rekey message: {0}")]
    Rekey(&'static str),
}

/// The application asked for something inconsistent or insecure.
///
/// Never caused by untrusted input. Each message says what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// No policy rule covers the topic a message is sent on.
    #[error(
        "no policy rule covers topic {topic:?}: add a rule for it, or an explicit Protection::insecure_plaintext() rule"
    )]
    NoPolicy {
        /// The topic.
        topic: String,
    },
    /// A topic filter is not a valid MQTT topic filter.
    #[error("invalid topic filter {filter:?}: {reason}")]
    InvalidFilter {
        /// The filter.
        filter: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A topic is not valid for publishing or receiving.
    #[error("invalid topic {topic:?}: {reason}")]
    InvalidTopic {
        /// The topic.
        topic: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A rule can never match because an earlier rule covers every topic it covers.
    #[error(
        "rule {filter:?} is shadowed by the earlier rule {earlier:?}: put the more specific rule first"
    )]
    ShadowedRule {
        /// The rule that can never match.
        filter: String,
        /// The earlier rule that covers it.
        earlier: String,
    },
    /// The policy uses a shared-key suite but no keyring was given.
    #[error("the policy encrypts or MACs topics but no keyring was given: call .keyring(...)")]
    NoKeyring,
    /// A signing suite is used to send, but this endpoint has no signing key.
    #[error(
        "topic {topic:?} requires a signature but this endpoint has no signing key: call .signing_key(...)"
    )]
    NoSigningKey {
        /// The topic.
        topic: String,
    },
    /// The policy uses a signing suite but there is neither a signing key nor a trust store.
    #[error("the policy signs topics but there is neither a signing key nor a trust store")]
    NoSignatureKeys,
    /// A rekey message cannot be built as asked.
    #[error("rekey: {0}")]
    Rekey(&'static str),
    /// Applying a rekey message needs this device's X25519 key.
    #[error("no X25519 agreement key: build the endpoint with .identity(...)")]
    NoAgreementKey,
    /// Applying a rekey message needs the admin's public key in the trust store.
    #[error("no admin key: add it with TrustStore::set_admin(...)")]
    NoAdminKey,
    /// No sender id was given.
    #[error("no sender id: call .sender_id(...)")]
    NoSenderId,
    /// A replay window size is out of range.
    #[error("replay window of {0} bits: it must be a multiple of 64 from 64 to 8192")]
    ReplayWindow(usize),
    /// A counter block size is out of range.
    #[error("counter block of {0}: it must be from 1 to 1_000_000")]
    CounterBlock(u64),
    /// A payload is larger than the configured maximum.
    #[error("payload of {len} bytes exceeds the maximum of {max} bytes")]
    PayloadTooLarge {
        /// The payload length.
        len: usize,
        /// The maximum.
        max: usize,
    },
    /// A [`SealBuffer`](crate::SealBuffer) was sealed twice.
    #[error("the buffer is already sealed: call SealBuffer::clear() and write a new payload")]
    AlreadySealed,
    /// A transport option the secure client cannot honour (for example
    /// rumqttc's manual acknowledgements).
    #[error("unsupported option: {0}")]
    Unsupported(&'static str),
    /// An endpoint that sends has no counter store.
    #[error(
        "an endpoint with a sender id needs a counter store: call .counter_store(FileCounterStore::open(path)?) so counters survive restarts, or MemoryCounterStore::new() only if every process start uses a fresh key epoch"
    )]
    NoCounterStore,
}

/// A counter is exhausted or its store failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CounterError {
    /// The counter reached its maximum: rotate to a new key epoch.
    #[error("counter exhausted for epoch {epoch}: rotate to a new key epoch")]
    Exhausted {
        /// The epoch whose counter is exhausted.
        epoch: u32,
    },
    /// The counter store failed to read or persist.
    #[error("counter store {path}: {source}")]
    Store {
        /// The file involved.
        path: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Another counter store holds the file.
    #[error(
        "counter store {path} is in use by another endpoint or process: give each endpoint its own counter file"
    )]
    InUse {
        /// The file involved.
        path: String,
    },
    /// The counter store's file is not in the expected format.
    #[error("counter store {path} line {line}: {reason}")]
    Corrupt {
        /// The file involved.
        path: String,
        /// The 1-based line number.
        line: usize,
        /// What is wrong.
        reason: &'static str,
    },
}

/// A key is missing, malformed or of the wrong kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// A key has the wrong length.
    #[error("{what} must be {expected} bytes, got {got}")]
    Length {
        /// Which key.
        what: &'static str,
        /// The required length.
        expected: usize,
        /// The length given.
        got: usize,
    },
    /// A public key is not a valid Ed25519 point.
    #[error("invalid Ed25519 public key")]
    InvalidPublicKey,
    /// A sender id is empty or too long.
    #[error("sender id must be 1 to {max} bytes, got {got}")]
    SenderId {
        /// The maximum length.
        max: usize,
        /// The length given.
        got: usize,
    },
    /// The epoch is, or was, in the keyring: epoch numbers are never reused.
    #[error("epoch {0} is or was already in the keyring: use a new, higher epoch number")]
    EpochExists(u32),
    /// The epoch is not in the keyring.
    #[error("epoch {0} is not in the keyring")]
    NoSuchEpoch(u32),
    /// The epoch was retired and its secret erased.
    #[error("epoch {0} is retired")]
    EpochRetired(u32),
    /// The active epoch cannot be retired.
    #[error("epoch {0} is active: promote another epoch before retiring it")]
    RetireActive(u32),
    /// The active epoch is not the highest held: a ratchet would leave the chain.
    #[error("cannot ratchet from epoch {active}: epoch {highest} is higher; promote it first")]
    NotHighest {
        /// The active epoch.
        active: u32,
        /// The highest epoch held or retired.
        highest: u32,
    },
    /// An endpoint's keyring moves forward only: through
    /// [`KeyringEdit`](crate::KeyringEdit), a new epoch must be above every
    /// epoch held or retired, and a promoted one not below the active epoch;
    /// through [`Endpoint::set_keyring`](crate::Endpoint::set_keyring), the
    /// new active epoch must not be below the active one, nor an epoch below
    /// the highest held that this endpoint never held.
    #[error(
        "epoch {epoch} is below epoch {current}: an endpoint's keyring moves forward only (to go back on purpose, use Endpoint::danger_replace_keyring)"
    )]
    NotForward {
        /// The epoch given (for `set_keyring`: the new keyring's active
        /// epoch).
        epoch: u32,
        /// The highest epoch held (when adding, or for an active epoch never
        /// held) or the active one (when promoting or replacing).
        current: u32,
    },
    /// A replacement keyring's
    /// ([`Endpoint::set_keyring`](crate::Endpoint::set_keyring)) active epoch
    /// is one this endpoint retired or is retiring.
    #[error(
        "epoch {epoch} is retired or scheduled to retire here, and the new keyring would send under it: load the newest keyring (to do so on purpose, use Endpoint::danger_replace_keyring)"
    )]
    Unretired {
        /// The epoch.
        epoch: u32,
    },
    /// A replacement keyring forgets epochs this endpoint held.
    #[error(
        "the new keyring's highest epoch ({}) is below {held}, which this endpoint held (it moved ahead, through a rekey or a ratchet): load a newer keyring, or save this endpoint's",
        given.map_or_else(|| "none".to_owned(), |e| e.to_string())
    )]
    Rollback {
        /// The highest epoch held before.
        held: u32,
        /// The highest epoch of the replacement.
        given: Option<u32>,
    },
    /// The keyring has no active epoch.
    #[error("the keyring has no active epoch: promote one")]
    NoActiveEpoch,
    /// A key reached its hard usage limit: sealing is refused until rotation.
    #[error("epoch {epoch} reached its {limit}: rotate to a new epoch")]
    UsageLimit {
        /// The epoch.
        epoch: u32,
        /// Which limit.
        limit: UsageLimit,
    },
}

/// Which usage limit of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum UsageLimit {
    /// The number of messages one sender may seal under one epoch.
    Messages(u64),
    /// The age of the epoch, in milliseconds.
    AgeMs(u64),
}

impl std::fmt::Display for UsageLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UsageLimit::Messages(n) => write!(f, "limit of {n} messages per sender"),
            UsageLimit::AgeMs(ms) => write!(f, "maximum age of {} s", ms / 1000),
        }
    }
}

/// A key file could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyFileError {
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A secret key file (keyring, identity) may be read or written by
    /// group or others.
    #[error(
        "{path} is {} by others (mode {mode:o}): run `chmod 600 {path}`",
        access(mode)
    )]
    Permissions {
        /// The file.
        path: String,
        /// Its permission bits.
        mode: u32,
    },
    /// A key file may be written by group or others (for a keyring or an
    /// identity, [`KeyFileError::Permissions`] comes first).
    #[error("{path} is writable by others (mode {mode:o}): run `chmod go-w {path}`")]
    Writable {
        /// The file.
        path: String,
        /// Its permission bits.
        mode: u32,
    },
    /// The path is not a regular file: a directory, a device or a pipe.
    #[error(
        "{path} is not a regular file (a directory, a device or a pipe): give the key file itself"
    )]
    NotRegular {
        /// The path.
        path: String,
    },
    /// A key file belongs to another user than the one the process runs as,
    /// and not to root: its owner could change it.
    #[error(
        "{path} belongs to uid {owner}, neither this user (uid {user}) nor root: whoever owns a key file can change it; run as its owner, or have root give it to this user (`chown {user} {path}`)"
    )]
    Owner {
        /// The file.
        path: String,
        /// Its owner's user id.
        owner: u32,
        /// The effective user id of this process.
        user: u32,
    },
    /// The file is not a valid key file.
    #[error("{path}: {reason}")]
    Corrupt {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The file's format version is not one this version of mqseal reads.
    #[error("{path}: key file version {version} is not supported; upgrade mqseal")]
    UnsupportedVersion {
        /// The file.
        path: String,
        /// The version found.
        version: u8,
    },
    /// The file holds another kind of key.
    #[error("{path} holds another kind of key file (expected: {expected})")]
    WrongKind {
        /// The file.
        path: String,
        /// What was expected.
        expected: &'static str,
    },
}

/// How a file's mode lets group or others at it, for
/// [`KeyFileError::Permissions`].
fn access(mode: &u32) -> &'static str {
    if mode & 0o044 != 0 {
        "readable"
    } else if mode & 0o022 != 0 {
        "writable"
    } else {
        "executable"
    }
}
