//! # mqseal: end-to-end security for MQTT payloads
//!
//! TLS protects one link, and the broker sees everything. mqseal protects the
//! payload itself, from the publishing device to every subscriber, so that the
//! broker and anyone who can subscribe to `#` see only ciphertext, and a
//! forged, moved, replayed or stale message is rejected.
//!
//! This crate is the sans-IO core: it seals and opens messages over caller
//! buffers and never touches a socket. Adapters for real clients wrap any
//! [`PubSub`](pubsub::PubSub) implementation with [`SecureLayer`](layer::SecureLayer).
//!
//! ## What it does
//! - **Encrypt** (AES-256-GCM by default, or ChaCha20-Poly1305) with per-sender
//!   keys derived from a group secret, nonces from never-repeating counters.
//! - **Mac** (HMAC-SHA256) where the payload may stay readable.
//! - **Sign** (Ed25519) where a receiver must know *which* device spoke;
//!   combined with encryption it is encrypt-then-sign.
//! - **Replay** windows per sender and epoch, updated only after
//!   authentication; **freshness** timestamps for commands.
//! - **Counters that survive crashes**, reserved in durable blocks.
//! - A **policy** maps MQTT topic filters to protections; a topic with no rule
//!   is refused.
//!
//! The header, the topic and the payload are all authenticated. The envelope
//! format is specified in `docs/envelope.md`; the threat model in
//! `docs/threat-model.md`.
//!
//! ## What it does not do
//! It does not hide topics, message sizes or timing from the broker, and it
//! does not replace TLS and broker ACLs, which still keep strangers off the
//! broker.
//!
//! ## Quick start
//!
//! ```
//! use mqseal::*;
//!
//! let policy = Policy::builder()
//!     .rule("robots/+/cmd", Protection::encrypt(Aead::Aes256Gcm).sign())?
//!     .build();
//! let provider = crypto::default_provider();
//! let group = GroupSecret::generate(provider.random)?;
//! let station_key = SigningKey::generate(provider.random)?;
//! let station_id = SenderId::new(b"station")?;
//!
//! let mut station = Endpoint::builder(policy.clone())
//!     .sender_id(station_id)
//!     .keyring(Keyring::new(1, group.clone()))
//!     .signing_key(station_key.clone())
//!     .counter_store(MemoryCounterStore::new()) // FileCounterStore in production
//!     .build()?;
//!
//! let mut trust = TrustStore::new();
//! trust.insert(station_id, station_key.public_key(provider));
//! let mut robot = Endpoint::builder(policy)
//!     .keyring(Keyring::new(1, group))
//!     .trust(trust)
//!     .build()?;
//!
//! let envelope = station.seal("robots/7/cmd", b"move 10 20")?;
//! let (payload, meta) = robot.open("robots/7/cmd", &envelope)?;
//! assert_eq!(payload, b"move 10 20");
//! assert_eq!(meta.unwrap().sender, station_id);
//!
//! // The same envelope again is a replay.
//! let err = robot.open("robots/7/cmd", &envelope).unwrap_err();
//! assert_eq!(err.rejection(), Some(&Rejection::Replayed));
//!
//! // Moved to another topic, a fresh envelope fails to authenticate.
//! let envelope = station.seal("robots/7/cmd", b"stop")?;
//! let err = robot.open("robots/8/cmd", &envelope).unwrap_err();
//! assert_eq!(err.rejection(), Some(&Rejection::Unauthenticated));
//! # Ok::<(), mqseal::Error>(())
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod bytes;
pub mod counter;
pub mod crypto;
pub mod endpoint;
pub mod envelope;
pub mod error;
pub mod freshness;
mod fsutil;
pub mod kdf;
pub mod keyfile;
pub mod keys;
pub mod layer;
pub mod policy;
pub mod protect;
pub mod pubsub;
pub mod rekey;
pub mod replay;

#[doc(hidden)]
pub mod internal;

pub use counter::{CounterStore, FileCounterStore, MemoryCounterStore};
pub use endpoint::{
    Endpoint, EndpointBuilder, EnvelopeMeta, KeyLimits, Opened, RotationDue, SealBuffer,
};
pub use envelope::Suite;
pub use error::{
    ConfigError, CounterError, Error, KeyError, KeyFileError, Malformed, Rejection, UsageLimit,
};
pub use freshness::{Clock, Freshness, ManualClock, SystemClock};
pub use keys::{
    AgreementKey, AgreementPublicKey, EpochState, GroupSecret, Identity, Keyring, KeyringEdit,
    PublicIdentity, PublicKey, SenderId, SigningKey, TrustStore,
};
pub use policy::{Aead, Policy, Protection};

/// The README's examples, compiled and run as doc tests.
#[doc = include_str!("../../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
