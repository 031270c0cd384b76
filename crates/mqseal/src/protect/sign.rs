//! Sign: an Ed25519 signature over the whole envelope before it, bound to the topic.
//!
//! The signed message is
//!
//! ```text
//! "mqseal/v1 sig" || SHA-256(header || u16be(len(topic)) || topic || body || tag)
//! ```
//!
//! With encryption, this is encrypt-then-sign over the ciphertext and tag, so a
//! checker holding only the sender's public key verifies origin without the
//! group secret, and a group member cannot forge another member's messages.
//! Hashing first keeps large payloads from being read twice by Ed25519 and
//! lets the topic be bound without copying.

use crate::crypto::{Hash, SigningKey, VerifyingKey};
use crate::envelope::topic_len_bytes;
use crate::error::Rejection;

/// Domain separation label of the signed message.
pub const LABEL: &[u8; 13] = b"mqseal/v1 sig";

/// The message that is signed: the label and the digest.
pub(crate) fn message(
    hash: &dyn Hash,
    header: &[u8],
    topic: &str,
    body: &[u8],
    tag: &[u8],
) -> [u8; 45] {
    let digest = hash.sha256(&[header, &topic_len_bytes(topic), topic.as_bytes(), body, tag]);
    let mut m = [0u8; 45];
    m[..13].copy_from_slice(LABEL);
    m[13..].copy_from_slice(&digest);
    m
}

/// Signs.
pub(crate) fn sign(
    key: &dyn SigningKey,
    hash: &dyn Hash,
    header: &[u8],
    topic: &str,
    body: &[u8],
    tag: &[u8],
) -> [u8; 64] {
    key.sign(&message(hash, header, topic, body, tag))
}

/// Verifies.
pub(crate) fn verify(
    key: &dyn VerifyingKey,
    hash: &dyn Hash,
    header: &[u8],
    topic: &str,
    body: &[u8],
    tag: &[u8],
    sig: &[u8],
) -> Result<(), Rejection> {
    let sig: &[u8; 64] = sig.try_into().map_err(|_| Rejection::Unauthenticated)?;
    key.verify(&message(hash, header, topic, body, tag), sig)
        .map_err(|_| Rejection::Unauthenticated)
}

/// A signature checker: verifies that `sender`, whose public key is
/// `public_key`, sealed the envelope on `topic`, without the group secret and
/// without decrypting. An envelope that names another sender is rejected as
/// `unknown_sender`.
///
/// It checks the signature only: not the policy, the replay window or
/// freshness. Use it where a gateway or logger must know who sent a message
/// it cannot read.
///
/// ```
/// # use mqseal::*;
/// # let provider = crypto::default_provider();
/// # let policy = Policy::builder().rule("c/#", Protection::encrypt(Aead::Aes256Gcm).sign())?.build();
/// # let key = SigningKey::from_seed([3; 32]);
/// # let mut station = Endpoint::builder(policy)
/// #     .sender_id(SenderId::new(b"st")?)
/// #     .keyring(Keyring::new(1, GroupSecret::from_bytes([1; 32])))
/// #     .signing_key(key.clone())
/// #     .counter_store(MemoryCounterStore::new())
/// #     .build()?;
/// let envelope = station.seal("c/1", b"secret command")?;
/// let station = SenderId::new(b"st")?;
/// let pk = key.public_key(provider);
/// let header = protect::sign::check_origin(provider, &station, &pk, "c/1", &envelope)?;
/// assert_eq!(header.counter, 0);
/// assert!(protect::sign::check_origin(provider, &station, &pk, "c/2", &envelope).is_err());
/// # Ok::<(), mqseal::Error>(())
/// ```
pub fn check_origin<'a>(
    provider: &crate::crypto::CryptoProvider,
    sender: &crate::keys::SenderId,
    public_key: &crate::keys::PublicKey,
    topic: &str,
    envelope: &'a [u8],
) -> Result<crate::envelope::Header<'a>, Rejection> {
    let env = crate::envelope::parse(envelope)?;
    if env.header.sender_id != sender.as_bytes() {
        return Err(Rejection::UnknownSender);
    }
    let sig = env.signature().ok_or(Rejection::Unauthenticated)?;
    if topic.len() > usize::from(u16::MAX) {
        return Err(crate::error::Malformed::OutOfRange("topic length").into());
    }
    let key = provider
        .ed25519
        .verifying_key(&public_key.0)
        .map_err(|_| Rejection::UnknownSender)?;
    verify(
        &*key,
        provider.sha256,
        env.header_bytes(),
        topic,
        env.body(),
        env.tag(),
        sig,
    )?;
    Ok(env.header)
}
