//! Key material: group secrets, sender ids, signing keys, the keyring of
//! epochs and the trust store of peers' public keys.
//!
//! Secret types zeroize on drop, print nothing secret in `Debug`, and compare
//! in constant time.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::crypto::{CryptoProvider, SecureRandom};
use crate::envelope::MAX_SENDER_ID_LEN;
use crate::error::{Error, KeyError};

/// A 32-byte group secret shared by the members of one key epoch.
///
/// Per-sender keys are derived from it (see `docs/envelope.md`), so the
/// secret itself never keys an AEAD.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct GroupSecret([u8; 32]);

impl GroupSecret {
    /// Length in bytes.
    pub const LEN: usize = 32;

    /// Generates a fresh secret from the provider's CSPRNG.
    pub fn generate(random: &dyn SecureRandom) -> Result<Self, Error> {
        let mut s = [0u8; 32];
        random
            .fill(&mut s)
            .map_err(|_| Error::Crypto("the random number generator failed"))?;
        Ok(GroupSecret(s))
    }

    /// Wraps existing secret bytes. Prefer [`GroupSecret::generate`].
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        GroupSecret(bytes)
    }

    /// Wraps a slice, checking its length.
    pub fn try_from_slice(bytes: &[u8]) -> Result<Self, KeyError> {
        let arr: [u8; 32] = bytes.try_into().map_err(|_| KeyError::Length {
            what: "group secret",
            expected: 32,
            got: bytes.len(),
        })?;
        Ok(GroupSecret(arr))
    }

    /// The secret bytes, for storage in a key file.
    pub fn expose_secret(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for GroupSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("GroupSecret(..)")
    }
}

impl PartialEq for GroupSecret {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for GroupSecret {}

/// A sender id: 1 to 16 bytes naming the device that sealed a message.
///
/// Stored inline, so copying and hashing it never allocates.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SenderId {
    len: u8,
    bytes: [u8; MAX_SENDER_ID_LEN],
}

impl SenderId {
    /// A sender id from bytes; 1 to [`MAX_SENDER_ID_LEN`] long.
    #[inline(always)]
    pub fn new(id: &[u8]) -> Result<Self, KeyError> {
        if id.is_empty() || id.len() > MAX_SENDER_ID_LEN {
            return Err(KeyError::SenderId {
                max: MAX_SENDER_ID_LEN,
                got: id.len(),
            });
        }
        let mut bytes = [0u8; MAX_SENDER_ID_LEN];
        crate::bytes::copy_short(&mut bytes[..id.len()], id);
        Ok(SenderId {
            len: id.len() as u8,
            bytes,
        })
    }

    /// The id's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl fmt::Debug for SenderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SenderId({self})")
    }
}

impl fmt::Display for SenderId {
    /// Printable ASCII ids print as text, others as hex.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.as_bytes();
        if b.iter().all(|c| c.is_ascii_graphic()) {
            f.write_str(std::str::from_utf8(b).unwrap_or_default())
        } else {
            for c in b {
                write!(f, "{c:02x}")?;
            }
            Ok(())
        }
    }
}

impl TryFrom<&str> for SenderId {
    type Error = KeyError;
    fn try_from(s: &str) -> Result<Self, KeyError> {
        SenderId::new(s.as_bytes())
    }
}

/// An Ed25519 signing key (its 32-byte seed), zeroized on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SigningKey([u8; 32]);

impl SigningKey {
    /// Generates a fresh key from the provider's CSPRNG.
    pub fn generate(random: &dyn SecureRandom) -> Result<Self, Error> {
        let mut s = [0u8; 32];
        random
            .fill(&mut s)
            .map_err(|_| Error::Crypto("the random number generator failed"))?;
        Ok(SigningKey(s))
    }

    /// A key from its seed.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        SigningKey(seed)
    }

    /// The seed, for storage in a key file.
    pub fn expose_seed(&self) -> &[u8; 32] {
        &self.0
    }

    /// The public key that verifies this key's signatures.
    pub fn public_key(&self, provider: &CryptoProvider) -> PublicKey {
        PublicKey(provider.ed25519.signing_key(&self.0).public_key())
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey(..)")
    }
}

/// An Ed25519 public key.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey(pub [u8; 32]);

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey(")?;
        for b in &self.0 {
            write!(f, "{b:02x}")?;
        }
        write!(f, ")")
    }
}

/// The state of a key epoch in a [`Keyring`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EpochState {
    /// Accepted on receipt, not used to send: a new epoch being rolled out, or
    /// the previous one during its grace period.
    AcceptOnly,
    /// Used to send, and accepted. A keyring has at most one.
    Active,
    /// Erased: its secret is gone and its messages are rejected. The number
    /// is remembered so that it can never be added again.
    Retired,
}

#[derive(Clone)]
struct Entry {
    secret: Option<GroupSecret>,
    state: EpochState,
    created_ms: u64,
    retire_at_ms: Option<u64>,
}

impl Entry {
    /// An accept-only epoch retires at `at_ms`, or earlier if it already
    /// was scheduled so.
    fn retire_by(&mut self, at_ms: u64) {
        if self.state == EpochState::AcceptOnly {
            self.retire_at_ms = Some(self.retire_at_ms.map_or(at_ms, |t| t.min(at_ms)));
        }
    }
}

/// Numbered key epochs, each with a group secret and an [`EpochState`].
///
/// Sending uses the single active epoch; receiving accepts every epoch that is
/// not retired. Rotation is staged, as in Tink: [`Keyring::add`] a new epoch
/// (accept-only) and roll it out to every receiver, then [`Keyring::promote`]
/// it, then [`Keyring::retire`] the old one after a grace period
/// ([`Keyring::promote_with_grace`] schedules that). [`Keyring::ratchet`]
/// derives the next epoch one-way from the active one, so devices can advance
/// on a schedule without any message.
///
/// ```
/// # use mqseal::*;
/// # use std::time::Duration;
/// let provider = crypto::default_provider();
/// let mut k = Keyring::new(1, GroupSecret::generate(provider.random)?);
/// k.add(2, GroupSecret::generate(provider.random)?)?;       // roll out: accept-only
/// k.promote_with_grace(2, 1_000, Duration::from_secs(600))?; // send with 2; accept 1 for 10 min
/// assert_eq!(k.state(1), Some(EpochState::AcceptOnly));
/// assert_eq!(k.retire_due(1_000 + 600_000), vec![1]);       // grace over: 1 is erased
/// assert!(k.get(1).is_none());
/// # Ok::<(), mqseal::Error>(())
/// ```
#[derive(Clone, Default)]
pub struct Keyring {
    epochs: BTreeMap<u32, Entry>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.epochs.iter().map(|(e, x)| (e, x.state)))
            .finish()
    }
}

/// Label of the ratchet derivation.
pub const RATCHET_LABEL: &[u8] = b"mqseal/v1 ratchet";

/// The secret of the epoch after `secret`'s, derived one-way:
/// `HKDF-SHA256(salt = "mqseal/v1 ratchet", IKM = secret, info = u32be(next_epoch), 32)`.
///
/// Knowing the result reveals nothing about `secret`, so once old secrets are
/// erased their traffic stays protected (forward secrecy).
pub fn ratchet_secret(
    provider: &CryptoProvider,
    secret: &GroupSecret,
    next_epoch: u32,
) -> GroupSecret {
    let mut out = Zeroizing::new([0u8; 32]);
    provider.hkdf.hkdf_sha256(
        RATCHET_LABEL,
        secret.expose_secret(),
        &[&next_epoch.to_be_bytes()],
        &mut out[..],
    );
    GroupSecret(*out)
}

fn now_ms() -> u64 {
    use crate::freshness::Clock;
    crate::freshness::SystemClock.now_ms()
}

impl Keyring {
    /// A keyring with one epoch, active, created now.
    pub fn new(epoch: u32, secret: GroupSecret) -> Self {
        Keyring::new_at(epoch, secret, now_ms())
    }

    /// A keyring with one epoch, active, created at `created_ms`.
    pub fn new_at(epoch: u32, secret: GroupSecret, created_ms: u64) -> Self {
        let mut k = Keyring::default();
        k.epochs.insert(
            epoch,
            Entry {
                secret: Some(secret),
                state: EpochState::Active,
                created_ms,
                retire_at_ms: None,
            },
        );
        k
    }

    /// Adds a new epoch, accept-only, created now.
    pub fn add(&mut self, epoch: u32, secret: GroupSecret) -> Result<(), KeyError> {
        self.add_at(epoch, secret, now_ms())
    }

    /// Adds a new epoch, accept-only, created at `created_ms`. An epoch number
    /// that is or was in the keyring (even retired) is refused.
    pub fn add_at(
        &mut self,
        epoch: u32,
        secret: GroupSecret,
        created_ms: u64,
    ) -> Result<(), KeyError> {
        if self.epochs.contains_key(&epoch) {
            return Err(KeyError::EpochExists(epoch));
        }
        self.epochs.insert(
            epoch,
            Entry {
                secret: Some(secret),
                state: EpochState::AcceptOnly,
                created_ms,
                retire_at_ms: None,
            },
        );
        Ok(())
    }

    /// Makes an accept-only epoch the one used to send. The previously active
    /// epoch becomes accept-only (retire it when the grace period is over).
    pub fn promote(&mut self, epoch: u32) -> Result<Option<u32>, KeyError> {
        match self.state(epoch) {
            None => return Err(KeyError::NoSuchEpoch(epoch)),
            Some(EpochState::Retired) => return Err(KeyError::EpochRetired(epoch)),
            Some(EpochState::Active) => return Ok(None),
            Some(EpochState::AcceptOnly) => {}
        }
        let previous = self.active_epoch();
        if let Some(p) = previous.and_then(|p| self.epochs.get_mut(&p)) {
            p.state = EpochState::AcceptOnly;
        }
        if let Some(e) = self.epochs.get_mut(&epoch) {
            e.state = EpochState::Active;
            e.retire_at_ms = None;
        }
        Ok(previous)
    }

    /// [`Keyring::promote`], and schedule the previous active epoch for
    /// retirement `grace` after `now_ms` (see [`Keyring::retire_due`]),
    /// together with the accept-only epochs this promotion skips: those
    /// between the previous active epoch and `epoch` (an epoch already
    /// scheduled earlier keeps its time). A skipped epoch was staged and
    /// never sealed, and will not on an endpoint, whose keyring moves forward
    /// only; unscheduled, it would stay accepted until retired by hand.
    /// Nothing else changes: not the epochs below the previous active one
    /// (their schedules, or their being kept by hand), not those above
    /// `epoch`, and nothing at all when `epoch` is already active or there
    /// was no active epoch.
    pub fn promote_with_grace(
        &mut self,
        epoch: u32,
        now_ms: u64,
        grace: Duration,
    ) -> Result<Option<u32>, KeyError> {
        let skipped: Vec<u32> = self.skipped_by(epoch).collect();
        let previous = self.promote(epoch)?;
        let at = now_ms.saturating_add(crate::freshness::duration_ms(grace));
        if let Some(e) = previous.and_then(|p| self.epochs.get_mut(&p)) {
            e.retire_at_ms = Some(at);
        }
        for e in skipped {
            self.retire_by(e, at);
        }
        Ok(previous)
    }

    /// The epochs a promotion to `epoch` skips: the accept-only ones between
    /// the active epoch and `epoch` (none without an active epoch, or when
    /// `epoch` is not above it). [`Keyring::promote_with_grace`] schedules
    /// them with the previous active epoch.
    pub fn skipped_by(&self, epoch: u32) -> impl Iterator<Item = u32> + '_ {
        let from = self.active_epoch().map_or(epoch, |a| a.saturating_add(1));
        self.epochs
            .range(from..epoch.max(from))
            .filter(|(_, e)| e.state == EpochState::AcceptOnly)
            .map(|(n, _)| *n)
    }

    /// Retires an epoch: its secret is zeroized and its messages are rejected
    /// from now on. The active epoch cannot be retired; promote another first.
    pub fn retire(&mut self, epoch: u32) -> Result<(), KeyError> {
        let e = self
            .epochs
            .get_mut(&epoch)
            .ok_or(KeyError::NoSuchEpoch(epoch))?;
        match e.state {
            EpochState::Active => Err(KeyError::RetireActive(epoch)),
            EpochState::Retired => Ok(()),
            EpochState::AcceptOnly => {
                e.state = EpochState::Retired;
                e.secret = None;
                e.retire_at_ms = None;
                Ok(())
            }
        }
    }

    /// Retires every accept-only epoch whose grace period ended at or before
    /// `now_ms`, and returns them.
    pub fn retire_due(&mut self, now_ms: u64) -> Vec<u32> {
        let due: Vec<u32> = self
            .epochs
            .iter()
            .filter(|(_, e)| {
                e.state == EpochState::AcceptOnly && e.retire_at_ms.is_some_and(|t| t <= now_ms)
            })
            .map(|(n, _)| *n)
            .collect();
        for n in &due {
            let _ = self.retire(*n);
        }
        due
    }

    /// Schedules every epoch other than `keep` that is not retired to retire
    /// at `at_ms` (or earlier, if it already was). Used by a rekey, so that no
    /// secret a removed device knew stays accepted after the grace period.
    pub fn retire_all_but(&mut self, keep: u32, at_ms: u64) {
        for (n, e) in &mut self.epochs {
            if *n != keep {
                e.retire_by(at_ms);
            }
        }
    }

    /// A rekey to the new `epoch`: adds it with `secret` (created at
    /// `now_ms`), makes it the active epoch, and schedules every other epoch
    /// not retired, staged ones included, to retire at `retire_at_ms` (or
    /// earlier, if one already was): a removed device may know any of them.
    /// What the admin's keyring and every device applying the rekey message
    /// do. Returns the previous active epoch.
    pub fn rekey_to(
        &mut self,
        epoch: u32,
        secret: GroupSecret,
        now_ms: u64,
        retire_at_ms: u64,
    ) -> Result<Option<u32>, KeyError> {
        self.add_at(epoch, secret, now_ms)?;
        let previous = self.promote(epoch)?;
        self.retire_all_but(epoch, retire_at_ms);
        Ok(previous)
    }

    /// Schedules an accept-only epoch to retire at `at_ms`, or keeps its
    /// earlier schedule.
    pub(crate) fn retire_by(&mut self, epoch: u32, at_ms: u64) {
        if let Some(e) = self.epochs.get_mut(&epoch) {
            e.retire_by(at_ms);
        }
    }

    /// Keeps the earlier of an epoch's creation time and `at_ms` (its age
    /// limits count from it).
    pub(crate) fn created_by(&mut self, epoch: u32, at_ms: u64) {
        if let Some(e) = self.epochs.get_mut(&epoch) {
            e.created_ms = e.created_ms.min(at_ms);
        }
    }

    /// Whether the keyring ever held an epoch.
    pub fn is_empty(&self) -> bool {
        self.epochs.is_empty()
    }

    /// The earliest scheduled retirement, if any.
    pub fn next_retirement(&self) -> Option<u64> {
        self.epochs
            .values()
            .filter(|e| e.state == EpochState::AcceptOnly)
            .filter_map(|e| e.retire_at_ms)
            .min()
    }

    /// Advances by one epoch without any message: epoch `active + 1` gets
    /// [`ratchet_secret`] of the active one, is promoted, and the previous one
    /// is retired `grace` after `now_ms`. Returns the new epoch.
    ///
    /// Refused while a higher epoch is staged (held or retired above the
    /// active one): devices that ratchet must all stay on one chain.
    pub fn ratchet(
        &mut self,
        provider: &CryptoProvider,
        now_ms: u64,
        grace: Duration,
    ) -> Result<u32, KeyError> {
        let (active, secret) = self.active().ok_or(KeyError::NoActiveEpoch)?;
        let highest = self.max_epoch().unwrap_or(active);
        if highest != active {
            return Err(KeyError::NotHighest { active, highest });
        }
        let next = active
            .checked_add(1)
            .ok_or(KeyError::EpochExists(u32::MAX))?;
        let secret = ratchet_secret(provider, secret, next);
        self.add_at(next, secret, now_ms)?;
        self.promote_with_grace(next, now_ms, grace)?;
        Ok(next)
    }

    fn active_epoch(&self) -> Option<u32> {
        self.epochs
            .iter()
            .find(|(_, e)| e.state == EpochState::Active)
            .map(|(n, _)| *n)
    }

    /// The active epoch and its secret.
    pub fn active(&self) -> Option<(u32, &GroupSecret)> {
        let n = self.active_epoch()?;
        self.epochs[&n].secret.as_ref().map(|s| (n, s))
    }

    /// The secret of an epoch that is not retired.
    pub fn get(&self, epoch: u32) -> Option<&GroupSecret> {
        self.epochs.get(&epoch).and_then(|e| e.secret.as_ref())
    }

    /// The state of an epoch the keyring holds or held.
    pub fn state(&self, epoch: u32) -> Option<EpochState> {
        self.epochs.get(&epoch).map(|e| e.state)
    }

    /// When an epoch was created (milliseconds since the Unix epoch).
    pub fn created_ms(&self, epoch: u32) -> Option<u64> {
        self.epochs.get(&epoch).map(|e| e.created_ms)
    }

    /// When an accept-only epoch is scheduled to retire.
    pub fn retire_at_ms(&self, epoch: u32) -> Option<u64> {
        self.epochs.get(&epoch).and_then(|e| e.retire_at_ms)
    }

    /// The highest epoch number ever held (retired included).
    pub fn max_epoch(&self) -> Option<u32> {
        self.epochs.keys().next_back().copied()
    }

    /// The epochs that are not retired, in order.
    pub fn epochs(&self) -> impl Iterator<Item = u32> + '_ {
        self.epochs
            .iter()
            .filter(|(_, e)| e.state != EpochState::Retired)
            .map(|(n, _)| *n)
    }

    /// Every epoch held or retired, with its state, in order.
    pub fn all_epochs(&self) -> impl Iterator<Item = (u32, EpochState)> + '_ {
        self.epochs.iter().map(|(n, e)| (*n, e.state))
    }

    pub(crate) fn restore(
        &mut self,
        epoch: u32,
        state: EpochState,
        secret: Option<GroupSecret>,
        created_ms: u64,
        retire_at_ms: Option<u64>,
    ) {
        self.epochs.insert(
            epoch,
            Entry {
                secret,
                state,
                created_ms,
                retire_at_ms,
            },
        );
    }
}

/// An X25519 private key, for receiving rekeyed group secrets. Zeroized on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct AgreementKey([u8; 32]);

impl AgreementKey {
    /// Generates a fresh key from the CSPRNG.
    pub fn generate(random: &dyn SecureRandom) -> Result<Self, Error> {
        let mut s = [0u8; 32];
        random
            .fill(&mut s)
            .map_err(|_| Error::Crypto("the random number generator failed"))?;
        Ok(AgreementKey(s))
    }

    /// A key from its bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        AgreementKey(bytes)
    }

    /// The secret bytes, for storage in a key file.
    pub fn expose_secret(&self) -> &[u8; 32] {
        &self.0
    }

    /// The public key.
    pub fn public_key(&self) -> AgreementPublicKey {
        let s = x25519_dalek::StaticSecret::from(self.0);
        AgreementPublicKey(x25519_dalek::PublicKey::from(&s).to_bytes())
    }
}

impl fmt::Debug for AgreementKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AgreementKey(..)")
    }
}

/// An X25519 public key.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct AgreementPublicKey(pub [u8; 32]);

impl fmt::Debug for AgreementPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AgreementPublicKey({})", hex::encode(self.0))
    }
}

/// A device's identity: its sender id, Ed25519 signing key and X25519 key.
#[derive(Clone, Debug)]
pub struct Identity {
    /// The sender id.
    pub sender_id: SenderId,
    /// Signs what the device sends on signed topics.
    pub signing_key: SigningKey,
    /// Receives rekeyed group secrets.
    pub agreement_key: AgreementKey,
}

impl Identity {
    /// A fresh identity for `sender_id`.
    pub fn generate(sender_id: SenderId, random: &dyn SecureRandom) -> Result<Self, Error> {
        Ok(Identity {
            sender_id,
            signing_key: SigningKey::generate(random)?,
            agreement_key: AgreementKey::generate(random)?,
        })
    }

    /// The public half, to put in peers' trust stores.
    pub fn public(&self, provider: &CryptoProvider) -> PublicIdentity {
        PublicIdentity {
            sender_id: self.sender_id,
            signing: self.signing_key.public_key(provider),
            agreement: self.agreement_key.public_key(),
        }
    }
}

/// The public keys of a device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PublicIdentity {
    /// The sender id.
    pub sender_id: SenderId,
    /// Verifies its signatures.
    pub signing: PublicKey,
    /// Wraps rekeyed secrets for it.
    pub agreement: AgreementPublicKey,
}

/// Public keys of the senders whose signatures are accepted, their X25519
/// keys (for an admin wrapping rekeyed secrets), and the admin's key.
#[derive(Clone, Debug, Default)]
pub struct TrustStore {
    keys: BTreeMap<SenderId, PublicKey>,
    agreement: BTreeMap<SenderId, AgreementPublicKey>,
    admin: Option<(SenderId, PublicKey)>,
    revoked: std::collections::BTreeSet<SenderId>,
}

impl TrustStore {
    /// An empty trust store.
    pub fn new() -> Self {
        TrustStore::default()
    }

    /// Trusts `key` for messages from `sender`.
    pub fn insert(&mut self, sender: SenderId, key: PublicKey) {
        self.keys.insert(sender, key);
    }

    /// Trusts a peer's identity: its signing key and its X25519 key.
    pub fn insert_identity(&mut self, peer: &PublicIdentity) {
        self.keys.insert(peer.sender_id, peer.signing);
        self.agreement.insert(peer.sender_id, peer.agreement);
    }

    /// Stops trusting `sender`.
    pub fn remove(&mut self, sender: &SenderId) -> Option<PublicKey> {
        self.agreement.remove(sender);
        self.keys.remove(sender)
    }

    /// The key trusted for `sender`.
    pub fn get(&self, sender: &SenderId) -> Option<&PublicKey> {
        self.keys.get(sender)
    }

    /// The trusted senders and their signing keys.
    pub fn iter(&self) -> impl Iterator<Item = (&SenderId, &PublicKey)> {
        self.keys.iter()
    }

    /// The X25519 key of `sender`, if known.
    pub fn agreement_key(&self, sender: &SenderId) -> Option<&AgreementPublicKey> {
        self.agreement.get(sender)
    }

    /// The peers whose X25519 keys are known (the recipients of a rekey).
    pub fn agreement_keys(&self) -> impl Iterator<Item = (&SenderId, &AgreementPublicKey)> {
        self.agreement.iter()
    }

    /// Revokes `sender`: its keys are removed and every message from it is
    /// rejected, whatever the epoch. Kept in the trust store file, so that a
    /// revocation survives restarts.
    pub fn revoke(&mut self, sender: SenderId) {
        self.remove(&sender);
        self.revoked.insert(sender);
    }

    /// Whether `sender` was revoked.
    pub fn is_revoked(&self, sender: &SenderId) -> bool {
        self.revoked.contains(sender)
    }

    /// The revoked senders.
    pub fn revoked(&self) -> impl Iterator<Item = &SenderId> {
        self.revoked.iter()
    }

    /// Trusts `key` to sign rekey messages as the admin `id`.
    pub fn set_admin(&mut self, id: SenderId, key: PublicKey) {
        self.admin = Some((id, key));
    }

    /// The admin's id and key.
    pub fn admin(&self) -> Option<&(SenderId, PublicKey)> {
        self.admin.as_ref()
    }

    /// Stops trusting the admin: no rekey message is accepted until
    /// [`TrustStore::set_admin`] names one. Its key as a peer, if trusted as
    /// one, is kept ([`TrustStore::remove`] drops that).
    pub fn remove_admin(&mut self) -> Option<(SenderId, PublicKey)> {
        self.admin.take()
    }

    /// Whether it holds no signing key (the admin's aside).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// 32 secret bytes that zeroize on drop, for derived keys.
pub(crate) type SecretBytes32 = Zeroizing<[u8; 32]>;

/// The changes [`Endpoint::with_keyring`](crate::Endpoint::with_keyring)
/// allows: [`Keyring`]'s own methods (reads go through `Deref`), held to
/// moving forward. It cannot replace the keyring, so a closure cannot lower
/// the highest epoch or put another secret under an epoch number already
/// used; and a new epoch must be above every epoch held or retired, and a
/// promotion must not go below the active epoch ([`KeyError::NotForward`]),
/// so a closure cannot send under an older epoch again or cancel the
/// retirement a rekey scheduled for the epochs a removed device knew.
/// [`Endpoint::set_keyring`](crate::Endpoint::set_keyring) replaces a
/// keyring and moves forward only too (it may put another secret under an
/// epoch number, as a regenerated file does); the deliberate way back is
/// [`Endpoint::danger_replace_keyring`](crate::Endpoint::danger_replace_keyring).
///
/// ```compile_fail,E0594
/// # use mqseal::*;
/// # let policy = Policy::builder().rule("t", Protection::mac()).unwrap().build();
/// # let mut ep = Endpoint::builder(policy)
/// #     .keyring(Keyring::new(2, GroupSecret::from_bytes([2; 32])))
/// #     .build().unwrap();
/// // Does not compile: the keyring behind a `KeyringEdit` is read-only.
/// ep.with_keyring(|k| **k = Keyring::new(1, GroupSecret::from_bytes([1; 32])));
/// ```
///
/// ```
/// # use mqseal::*;
/// # let policy = Policy::builder().rule("t", Protection::mac()).unwrap().build();
/// # let mut ep = Endpoint::builder(policy)
/// #     .keyring(Keyring::new(2, GroupSecret::from_bytes([2; 32])))
/// #     .build()?;
/// ep.with_keyring(|k| {
///     k.add(3, GroupSecret::from_bytes([3; 32]))?;
///     k.promote(3)
/// })?;
/// // Back to epoch 2, still held accept-only: refused.
/// assert!(matches!(
///     ep.with_keyring(|k| k.promote(2)),
///     Err(KeyError::NotForward { epoch: 2, current: 3 })
/// ));
/// // An epoch below the highest, never held: refused too.
/// assert!(matches!(
///     ep.with_keyring(|k| k.add(1, GroupSecret::from_bytes([1; 32]))),
///     Err(KeyError::NotForward { epoch: 1, current: 3 })
/// ));
/// # Ok::<(), mqseal::Error>(())
/// ```
#[derive(Debug)]
pub struct KeyringEdit<'a> {
    keyring: &'a mut Keyring,
}

impl<'a> KeyringEdit<'a> {
    pub(crate) fn new(keyring: &'a mut Keyring) -> Self {
        KeyringEdit { keyring }
    }

    /// [`Keyring::add`], for an epoch above every epoch held or retired.
    pub fn add(&mut self, epoch: u32, secret: GroupSecret) -> Result<(), KeyError> {
        self.add_at(epoch, secret, now_ms())
    }

    /// [`Keyring::add_at`], for an epoch above every epoch held or retired.
    pub fn add_at(
        &mut self,
        epoch: u32,
        secret: GroupSecret,
        created_ms: u64,
    ) -> Result<(), KeyError> {
        self.forward_add(epoch)?;
        self.keyring.add_at(epoch, secret, created_ms)
    }

    /// [`Keyring::promote`], for an epoch not below the active one.
    pub fn promote(&mut self, epoch: u32) -> Result<Option<u32>, KeyError> {
        self.forward_promote(epoch)?;
        self.keyring.promote(epoch)
    }

    /// [`Keyring::promote_with_grace`], for an epoch not below the active one.
    pub fn promote_with_grace(
        &mut self,
        epoch: u32,
        now_ms: u64,
        grace: Duration,
    ) -> Result<Option<u32>, KeyError> {
        self.forward_promote(epoch)?;
        self.keyring.promote_with_grace(epoch, now_ms, grace)
    }

    /// [`Keyring::rekey_to`], for an epoch above every epoch held or retired.
    pub fn rekey_to(
        &mut self,
        epoch: u32,
        secret: GroupSecret,
        now_ms: u64,
        retire_at_ms: u64,
    ) -> Result<Option<u32>, KeyError> {
        self.forward_add(epoch)?;
        self.keyring.rekey_to(epoch, secret, now_ms, retire_at_ms)
    }

    /// A number held or retired is left to `Keyring::add_at`, which refuses
    /// it as `EpochExists`.
    fn forward_add(&self, epoch: u32) -> Result<(), KeyError> {
        match self.keyring.max_epoch() {
            Some(current) if epoch < current && self.keyring.state(epoch).is_none() => {
                Err(KeyError::NotForward { epoch, current })
            }
            _ => Ok(()),
        }
    }

    fn forward_promote(&self, epoch: u32) -> Result<(), KeyError> {
        match self.keyring.active() {
            Some((current, _)) if epoch < current => Err(KeyError::NotForward { epoch, current }),
            _ => Ok(()),
        }
    }

    /// [`Keyring::retire`].
    pub fn retire(&mut self, epoch: u32) -> Result<(), KeyError> {
        self.keyring.retire(epoch)
    }

    /// [`Keyring::retire_due`].
    pub fn retire_due(&mut self, now_ms: u64) -> Vec<u32> {
        self.keyring.retire_due(now_ms)
    }

    /// [`Keyring::retire_all_but`].
    pub fn retire_all_but(&mut self, keep: u32, at_ms: u64) {
        self.keyring.retire_all_but(keep, at_ms)
    }

    /// [`Keyring::ratchet`].
    pub fn ratchet(
        &mut self,
        provider: &CryptoProvider,
        now_ms: u64,
        grace: Duration,
    ) -> Result<u32, KeyError> {
        self.keyring.ratchet(provider, now_ms, grace)
    }
}

impl std::ops::Deref for KeyringEdit<'_> {
    type Target = Keyring;

    fn deref(&self) -> &Keyring {
        self.keyring
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_prints_no_secret() {
        let s = GroupSecret::from_bytes([0xab; 32]);
        let k = SigningKey::from_seed([0xcd; 32]);
        let dbg = format!("{s:?} {k:?}");
        assert!(
            !dbg.contains("ab") && !dbg.contains("171") && !dbg.contains("cd"),
            "{dbg}"
        );
    }

    #[test]
    fn sender_id_bounds() {
        assert!(SenderId::new(b"").is_err());
        assert!(SenderId::new(&[1; 17]).is_err());
        let id = SenderId::new(b"dev-1").unwrap();
        assert_eq!(id.as_bytes(), b"dev-1");
        assert_eq!(id.to_string(), "dev-1");
        assert_eq!(SenderId::new(&[0, 1]).unwrap().to_string(), "0001");
    }

    #[test]
    fn keyring_staged_rotation() {
        let mut k = Keyring::new_at(1, GroupSecret::from_bytes([1; 32]), 0);
        k.add_at(2, GroupSecret::from_bytes([2; 32]), 0).unwrap();
        assert_eq!(
            k.add_at(2, GroupSecret::from_bytes([9; 32]), 0),
            Err(KeyError::EpochExists(2))
        );
        assert_eq!(k.active().map(|(e, _)| e), Some(1));
        assert_eq!(k.promote(3), Err(KeyError::NoSuchEpoch(3)));
        assert_eq!(k.promote(2), Ok(Some(1)));
        assert_eq!(k.retire(2), Err(KeyError::RetireActive(2)));
        k.retire(1).unwrap();
        assert_eq!(k.epochs().collect::<Vec<_>>(), vec![2]);
        assert!(k.get(1).is_none());
        assert_eq!(k.state(1), Some(EpochState::Retired));
        // A retired number can never come back.
        assert_eq!(
            k.add_at(1, GroupSecret::from_bytes([1; 32]), 0),
            Err(KeyError::EpochExists(1))
        );
        assert_eq!(k.promote(1), Err(KeyError::EpochRetired(1)));
    }
}
