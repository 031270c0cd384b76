//! Key material: group secrets, sender ids, signing keys, the keyring of
//! epochs and the trust store of peers' public keys.
//!
//! Secret types zeroize on drop, print nothing secret in `Debug`, and compare
//! in constant time.

use std::collections::BTreeMap;
use std::fmt;

use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::crypto::{CryptoProvider, SecureRandom};
use crate::envelope::MAX_SENDER_ID_LEN;
use crate::error::{ConfigError, Error, KeyError};

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
    pub fn new(id: &[u8]) -> Result<Self, KeyError> {
        if id.is_empty() || id.len() > MAX_SENDER_ID_LEN {
            return Err(KeyError::SenderId {
                max: MAX_SENDER_ID_LEN,
                got: id.len(),
            });
        }
        let mut bytes = [0u8; MAX_SENDER_ID_LEN];
        bytes[..id.len()].copy_from_slice(id);
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

/// The group secrets of numbered key epochs, and which one is used to send.
///
/// Sending uses the active epoch. Receiving accepts every epoch in the
/// keyring; remove an epoch to stop accepting it.
#[derive(Clone, Debug, Default)]
pub struct Keyring {
    epochs: BTreeMap<u32, GroupSecret>,
    active: Option<u32>,
}

impl Keyring {
    /// A keyring with one epoch, active.
    pub fn new(epoch: u32, secret: GroupSecret) -> Self {
        let mut k = Keyring::default();
        k.epochs.insert(epoch, secret);
        k.active = Some(epoch);
        k
    }

    /// Adds an epoch that is accepted on receipt but not used to send.
    pub fn insert(&mut self, epoch: u32, secret: GroupSecret) {
        self.epochs.insert(epoch, secret);
    }

    /// Makes an epoch the one used to send.
    pub fn set_active(&mut self, epoch: u32) -> Result<(), ConfigError> {
        if !self.epochs.contains_key(&epoch) {
            return Err(ConfigError::NoSuchEpoch(epoch));
        }
        self.active = Some(epoch);
        Ok(())
    }

    /// Removes an epoch; its secret is zeroized. Removing the active epoch
    /// leaves the keyring with none until another is made active.
    pub fn remove(&mut self, epoch: u32) -> bool {
        if self.active == Some(epoch) {
            self.active = None;
        }
        self.epochs.remove(&epoch).is_some()
    }

    /// The active epoch and its secret.
    pub fn active(&self) -> Option<(u32, &GroupSecret)> {
        let e = self.active?;
        self.epochs.get(&e).map(|s| (e, s))
    }

    /// The secret of an epoch.
    pub fn get(&self, epoch: u32) -> Option<&GroupSecret> {
        self.epochs.get(&epoch)
    }

    /// The epochs held, in order.
    pub fn epochs(&self) -> impl Iterator<Item = u32> + '_ {
        self.epochs.keys().copied()
    }
}

/// Public keys of the senders whose signatures are accepted.
#[derive(Clone, Debug, Default)]
pub struct TrustStore {
    keys: BTreeMap<SenderId, PublicKey>,
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

    /// Stops trusting `sender`.
    pub fn remove(&mut self, sender: &SenderId) -> Option<PublicKey> {
        self.keys.remove(sender)
    }

    /// The key trusted for `sender`.
    pub fn get(&self, sender: &SenderId) -> Option<&PublicKey> {
        self.keys.get(sender)
    }

    /// The trusted senders and their keys.
    pub fn iter(&self) -> impl Iterator<Item = (&SenderId, &PublicKey)> {
        self.keys.iter()
    }

    /// Whether it holds no key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// 32 secret bytes that zeroize on drop, for derived keys.
pub(crate) type SecretBytes32 = Zeroizing<[u8; 32]>;

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
    fn keyring_active_and_removal() {
        let mut k = Keyring::new(1, GroupSecret::from_bytes([1; 32]));
        k.insert(2, GroupSecret::from_bytes([2; 32]));
        assert_eq!(k.active().map(|(e, _)| e), Some(1));
        assert!(k.set_active(3).is_err());
        k.set_active(2).unwrap();
        assert!(k.remove(1));
        assert_eq!(k.epochs().collect::<Vec<_>>(), vec![2]);
        assert!(k.remove(2));
        assert!(k.active().is_none());
    }
}
