//! Rekey on member removal: one signed message carries a fresh group secret,
//! wrapped separately for each remaining device.
//!
//! When a device leaves (or is lost or stolen), the control station creates a
//! fresh random secret for a new epoch and publishes a single rekey message,
//! retained, on a control topic. The message is signed by the admin's Ed25519
//! key, lists the removed sender ids, and carries the secret wrapped for each
//! remaining device with X25519 key agreement, HKDF-SHA256 and AES-256-GCM.
//! A removed device finds no wrapping for itself and cannot read the new
//! secret, nor anything sealed under it. A device that was offline receives
//! the retained message when it reconnects and catches up.
//!
//! # Every message lists every removal so far
//!
//! The broker retains only the newest rekey message, so a device that was
//! offline across several rekeys sees only the last one, and revokes only the
//! senders that one lists. The removed list is therefore **cumulative**: each
//! rekey lists every sender removed by any earlier rekey as well as the new
//! ones. Otherwise a device removed two rekeys ago stays trusted by every
//! device that missed that rekey: its signatures are accepted, and during
//! the grace period so are its messages under the old epochs. Keep the
//! admin's removals in its [`TrustStore`](crate::TrustStore) with
//! [`TrustStore::revoke`](crate::TrustStore::revoke) and pass them all with
//! [`RekeyBuilder::remove_all`]; `mqseal rekey` does both.
//!
//! # Format (version 2)
//!
//! ```text
//! "MQRK" | 0x02 | epoch u32 BE | issued_at_ms u64 BE | grace_ms u32 BE
//! | admin id: len u8 (1..=16) | id
//! | removed: count u16 BE | count × (len u8 | id)
//! | ephemeral X25519 public key (32)
//! | recipients: count u16 BE (1..=4096) | count × (len u8 | id | wrapped secret (32) | tag (16))
//! | Ed25519 signature (64) over "mqseal/v1 rekey" || SHA-256(every byte before it)
//! ```
//!
//! For each recipient `R` with X25519 public key `P_R`, and the ephemeral key
//! pair `(e, E)`:
//!
//! ```text
//! kek     = HKDF-SHA256(salt = "mqseal/v1 rekey", IKM = X25519(e, P_R),
//!                       info = E || P_R || u32be(epoch) || len(R) || R, 32)
//! wrapped = AES-256-GCM(kek, nonce = 0^12, aad = every byte before the recipient count, secret)
//! ```
//!
//! The key-encryption key is unique to the (ephemeral key, recipient) pair,
//! so the fixed nonce never repeats under one key. A device accepts a rekey
//! only if the admin's signature verifies and its epoch is higher than every
//! epoch it ever held; an old rekey message replayed is therefore refused.
//!
//! ```
//! use std::time::Duration;
//! use mqseal::*;
//! use mqseal::rekey::RekeyBuilder;
//!
//! let provider = crypto::default_provider();
//! let admin = Identity::generate(SenderId::new(b"admin")?, provider.random)?;
//! let robot = Identity::generate(SenderId::new(b"robot")?, provider.random)?;
//! let secret = GroupSecret::generate(provider.random)?;
//! let now_ms = std::time::SystemTime::now()
//!     .duration_since(std::time::UNIX_EPOCH)
//!     .map_or(0, |d| d.as_millis() as u64);
//! let message = RekeyBuilder::new(2, &secret)
//!     .recipient(robot.public(provider))
//!     .remove(SenderId::new(b"lost-sensor")?)
//!     .grace(Duration::from_secs(60))
//!     .sign(provider, &admin, now_ms)?;
//!
//! let mut trust = TrustStore::new();
//! trust.set_admin(admin.sender_id, admin.public(provider).signing);
//! let policy = Policy::builder().rule("t/#", Protection::encrypt(Aead::Aes256Gcm))?.build();
//! let mut ep = Endpoint::builder(policy)
//!     .identity(robot)
//!     .keyring(Keyring::new(1, GroupSecret::generate(provider.random)?))
//!     .trust(trust)
//!     .counter_store(MemoryCounterStore::new())
//!     .build()?;
//! let applied = ep.apply_rekey(&message)?;
//! assert_eq!(applied.epoch, 2);
//! assert_eq!(ep.keyring().active().unwrap().0, 2);
//! // Epoch 1 is still accepted, for the 60 s grace counted from `now_ms`.
//! assert_eq!(ep.keyring().state(1), Some(EpochState::AcceptOnly));
//! // The same message again is a replay.
//! assert!(ep.apply_rekey(&message).is_err());
//! # Ok::<(), mqseal::Error>(())
//! ```

use std::time::Duration;

use zeroize::Zeroizing;

use crate::crypto::CryptoProvider;
use crate::envelope::MAX_SENDER_ID_LEN;
use crate::error::{Error, Malformed, Rejection};
use crate::keys::{AgreementKey, GroupSecret, Identity, PublicIdentity, PublicKey, SenderId};

/// The magic bytes that start a rekey message.
pub const MAGIC: &[u8; 4] = b"MQRK";
/// The rekey message version. Version 1, whose removed list had a one-byte
/// count, is refused.
pub const VERSION: u8 = 2;
/// The most recipients one message carries.
pub const MAX_RECIPIENTS: usize = 4096;
/// The most removed senders one message lists (all removals so far).
pub const MAX_REMOVED: usize = u16::MAX as usize;
/// Label of the signature.
pub const SIGNATURE_LABEL: &[u8] = b"mqseal/v1 rekey";
/// HKDF salt of the key-encryption key.
pub const WRAP_SALT: &[u8] = b"mqseal/v1 rekey";

const WRAPPED_LEN: usize = 48;

/// What [`Endpoint::apply_rekey`](crate::Endpoint::apply_rekey) installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The new active epoch.
    pub epoch: u32,
    /// The senders the message removed (now revoked).
    pub removed: Vec<SenderId>,
}

/// Builds and signs a rekey message (the admin's side).
#[derive(Debug)]
#[must_use]
pub struct RekeyBuilder<'a> {
    epoch: u32,
    secret: &'a GroupSecret,
    grace: Duration,
    recipients: Vec<PublicIdentity>,
    /// In the order given; [`RekeyBuilder::sign`] lists each once.
    removed: Vec<SenderId>,
}

impl<'a> RekeyBuilder<'a> {
    /// A rekey to `epoch` with `secret` (generate it fresh with
    /// [`GroupSecret::generate`]). The default grace period is zero: the old
    /// epoch is retired as soon as the message is applied.
    pub fn new(epoch: u32, secret: &'a GroupSecret) -> Self {
        RekeyBuilder {
            epoch,
            secret,
            grace: Duration::ZERO,
            recipients: Vec::new(),
            removed: Vec::new(),
        }
    }

    /// How long receivers keep accepting the previous epoch.
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// A device that receives the new secret.
    pub fn recipient(mut self, device: PublicIdentity) -> Self {
        self.recipients.push(device);
        self
    }

    /// A device removed from the group: receivers revoke it. List every
    /// sender removed so far, not only this rekey's: a device that missed an
    /// earlier rekey sees only the newest (see [the module
    /// documentation](self#every-message-lists-every-removal-so-far)). A sender
    /// listed twice is listed once.
    pub fn remove(mut self, sender: SenderId) -> Self {
        self.removed.push(sender);
        self
    }

    /// Every sender in `senders` is removed, as by [`remove`](Self::remove):
    /// pass the admin's earlier removals, for example
    /// `trust.revoked().copied()`.
    pub fn remove_all(mut self, senders: impl IntoIterator<Item = SenderId>) -> Self {
        self.removed.extend(senders);
        self
    }

    /// Wraps the secret for every recipient and signs the message as
    /// `admin`, issued at `issued_at_ms` (milliseconds since the Unix epoch:
    /// pass the current time). Devices count the grace period from it, so an
    /// older time shortens the grace, and a time more than the grace in the
    /// past retires the old epochs as soon as the message is applied.
    pub fn sign(
        self,
        provider: &CryptoProvider,
        admin: &Identity,
        issued_at_ms: u64,
    ) -> Result<Vec<u8>, Error> {
        let bad = |what| Error::Config(crate::ConfigError::Rekey(what));
        if self.recipients.is_empty() || self.recipients.len() > MAX_RECIPIENTS {
            return Err(bad("a rekey needs 1 to 4096 recipients"));
        }
        // Each removed sender once, in the order given.
        let mut listed = std::collections::BTreeSet::new();
        let removed: Vec<SenderId> = self
            .removed
            .iter()
            .copied()
            .filter(|id| listed.insert(*id))
            .collect();
        if removed.len() > MAX_REMOVED {
            return Err(bad("a rekey lists at most 65535 removed senders"));
        }
        if self
            .recipients
            .iter()
            .any(|r| listed.contains(&r.sender_id))
        {
            return Err(bad("a removed sender cannot also be a recipient"));
        }
        let grace_ms = u32::try_from(self.grace.as_millis())
            .map_err(|_| bad("grace period longer than 49 days"))?;
        let mut m = Vec::with_capacity(64 + self.recipients.len() * 70);
        m.extend_from_slice(MAGIC);
        m.push(VERSION);
        m.extend_from_slice(&self.epoch.to_be_bytes());
        m.extend_from_slice(&issued_at_ms.to_be_bytes());
        m.extend_from_slice(&grace_ms.to_be_bytes());
        push_id(&mut m, &admin.sender_id);
        m.extend_from_slice(&(removed.len() as u16).to_be_bytes());
        for id in &removed {
            push_id(&mut m, id);
        }
        let eph = AgreementKey::generate(provider.random)?;
        let eph_secret = x25519_dalek::StaticSecret::from(*eph.expose_secret());
        let eph_public = eph.public_key().0;
        m.extend_from_slice(&eph_public);
        let aad_end = m.len();
        m.extend_from_slice(&(self.recipients.len() as u16).to_be_bytes());
        for r in &self.recipients {
            let shared = eph_secret.diffie_hellman(&x25519_dalek::PublicKey::from(r.agreement.0));
            if !shared.was_contributory() {
                return Err(Error::Key(crate::KeyError::InvalidPublicKey));
            }
            let kek = kek(
                provider,
                shared.as_bytes(),
                &eph_public,
                &r.agreement.0,
                self.epoch,
                &r.sender_id,
            );
            let mut wrapped = Zeroizing::new(*self.secret.expose_secret());
            let tag = provider
                .aes_256_gcm
                .key(&kek)
                .seal_in_place(&[0u8; 12], &m[..aad_end], &mut wrapped[..])
                .map_err(|_| Error::Crypto("AEAD seal failed"))?;
            push_id(&mut m, &r.sender_id);
            m.extend_from_slice(&wrapped[..]);
            m.extend_from_slice(&tag);
        }
        let digest = provider.sha256.sha256(&[&m]);
        let signer = provider
            .ed25519
            .signing_key(admin.signing_key.expose_seed());
        let sig = signer.sign(&[SIGNATURE_LABEL, &digest].concat());
        m.extend_from_slice(&sig);
        Ok(m)
    }
}

fn push_id(m: &mut Vec<u8>, id: &SenderId) {
    m.push(id.as_bytes().len() as u8);
    m.extend_from_slice(id.as_bytes());
}

fn kek(
    provider: &CryptoProvider,
    shared: &[u8; 32],
    eph_public: &[u8; 32],
    recipient_public: &[u8; 32],
    epoch: u32,
    recipient: &SenderId,
) -> Zeroizing<[u8; 32]> {
    let mut out = Zeroizing::new([0u8; 32]);
    let id = recipient.as_bytes();
    provider.hkdf.hkdf_sha256(
        WRAP_SALT,
        shared,
        &[
            eph_public,
            recipient_public,
            &epoch.to_be_bytes(),
            &[id.len() as u8],
            id,
        ],
        &mut out[..],
    );
    out
}

/// A parsed rekey message, borrowing from its bytes. Nothing in it is
/// trusted until [`Endpoint::apply_rekey`](crate::Endpoint::apply_rekey)
/// verified the signature.
#[derive(Debug, Clone)]
pub struct RekeyMessage<'a> {
    /// The new epoch.
    pub epoch: u32,
    /// When the admin issued it.
    pub issued_at_ms: u64,
    /// How long the previous epoch stays accepted.
    pub grace: Duration,
    /// Who signed it.
    pub admin: SenderId,
    /// The removed senders.
    pub removed: Vec<SenderId>,
    /// The ephemeral X25519 public key.
    pub ephemeral: [u8; 32],
    /// Each recipient and its wrapped secret (48 bytes).
    pub recipients: Vec<(SenderId, &'a [u8])>,
    /// The bytes covered by the signature.
    pub signed: &'a [u8],
    /// The associated data of every wrapping.
    pub aad: &'a [u8],
    /// The signature.
    pub signature: &'a [u8],
}

/// Parses a rekey message without verifying it. Bounds every length and
/// never panics.
pub fn parse(bytes: &[u8]) -> Result<RekeyMessage<'_>, Malformed> {
    let bad = Malformed::Rekey;
    let mut r = Cursor { b: bytes, pos: 0 };
    if r.take(4)? != MAGIC {
        return Err(bad("not a rekey message (magic)"));
    }
    if r.byte()? != VERSION {
        return Err(bad("unsupported version"));
    }
    let epoch = u32::from_be_bytes(r.array()?);
    let issued_at_ms = u64::from_be_bytes(r.array()?);
    let grace = Duration::from_millis(u64::from(u32::from_be_bytes(r.array()?)));
    let admin = r.id()?;
    let n_removed = usize::from(u16::from_be_bytes(r.array()?));
    // Each listed id takes at least two bytes: the capacity is bounded by the
    // input, not by the count it claims.
    let mut removed = Vec::with_capacity(n_removed.min(bytes.len() / 2));
    for _ in 0..n_removed {
        removed.push(r.id()?);
    }
    let ephemeral: [u8; 32] = r.array()?;
    let aad_end = r.pos;
    let n = usize::from(u16::from_be_bytes(r.array()?));
    if n == 0 || n > MAX_RECIPIENTS {
        return Err(bad("recipient count out of range"));
    }
    let mut recipients = Vec::with_capacity(n.min(bytes.len() / 50 + 1));
    for _ in 0..n {
        let id = r.id()?;
        recipients.push((id, r.take(WRAPPED_LEN)?));
    }
    let signed_end = r.pos;
    let signature = r.take(64)?;
    if r.pos != bytes.len() {
        return Err(bad("trailing bytes"));
    }
    Ok(RekeyMessage {
        epoch,
        issued_at_ms,
        grace,
        admin,
        removed,
        ephemeral,
        recipients,
        signed: &bytes[..signed_end],
        aad: &bytes[..aad_end],
        signature,
    })
}

struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Malformed> {
        let end = self.pos.checked_add(n).ok_or(Malformed::Truncated)?;
        let s = self.b.get(self.pos..end).ok_or(Malformed::Truncated)?;
        self.pos = end;
        Ok(s)
    }

    fn byte(&mut self) -> Result<u8, Malformed> {
        Ok(self.take(1)?[0])
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Malformed> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn id(&mut self) -> Result<SenderId, Malformed> {
        let len = usize::from(self.byte()?);
        if len == 0 || len > MAX_SENDER_ID_LEN {
            return Err(Malformed::SenderIdLength);
        }
        SenderId::new(self.take(len)?).map_err(|_| Malformed::SenderIdLength)
    }
}

/// A verified and unwrapped rekey.
pub(crate) struct OpenedRekey {
    pub(crate) epoch: u32,
    pub(crate) issued_at_ms: u64,
    pub(crate) grace: Duration,
    pub(crate) secret: GroupSecret,
    pub(crate) removed: Vec<SenderId>,
}

/// Verifies and unwraps a rekey message for device `me`. Changes nothing.
pub(crate) fn open(
    provider: &CryptoProvider,
    bytes: &[u8],
    admin_id: &SenderId,
    admin_key: &PublicKey,
    me: &SenderId,
    agreement: &AgreementKey,
    newest_epoch: Option<u32>,
) -> Result<OpenedRekey, Error> {
    let msg = parse(bytes).map_err(Rejection::from)?;
    if msg.admin != *admin_id {
        return Err(Rejection::UnknownSender.into());
    }
    let verifier = provider
        .ed25519
        .verifying_key(&admin_key.0)
        .map_err(|_| crate::KeyError::InvalidPublicKey)?;
    let digest = provider.sha256.sha256(&[msg.signed]);
    let sig: &[u8; 64] = msg
        .signature
        .try_into()
        .map_err(|_| Rejection::Unauthenticated)?;
    verifier
        .verify(&[SIGNATURE_LABEL, &digest].concat(), sig)
        .map_err(|_| Rejection::Unauthenticated)?;
    if newest_epoch.is_some_and(|n| msg.epoch <= n) {
        return Err(Rejection::Replayed.into());
    }
    let (_, wrapped) = msg
        .recipients
        .iter()
        .find(|(id, _)| id == me)
        .ok_or(Rejection::NotARecipient)?;
    let my_public = agreement.public_key().0;
    let shared = x25519_dalek::StaticSecret::from(*agreement.expose_secret())
        .diffie_hellman(&x25519_dalek::PublicKey::from(msg.ephemeral));
    if !shared.was_contributory() {
        return Err(Rejection::Unauthenticated.into());
    }
    let kek = kek(
        provider,
        shared.as_bytes(),
        &msg.ephemeral,
        &my_public,
        msg.epoch,
        me,
    );
    let mut secret = Zeroizing::new([0u8; 32]);
    secret.copy_from_slice(&wrapped[..32]);
    let tag: &[u8; 16] = wrapped[32..]
        .try_into()
        .map_err(|_| Rejection::Unauthenticated)?;
    provider
        .aes_256_gcm
        .key(&kek)
        .open_in_place(&[0u8; 12], msg.aad, &mut secret[..], tag)
        .map_err(|_| Rejection::Unauthenticated)?;
    Ok(OpenedRekey {
        epoch: msg.epoch,
        issued_at_ms: msg.issued_at_ms,
        grace: msg.grace,
        secret: GroupSecret::from_bytes(*secret),
        removed: msg.removed,
    })
}
