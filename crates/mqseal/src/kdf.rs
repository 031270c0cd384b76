//! Per-sender key derivation (HKDF-SHA256), in the style of OSCORE.
//!
//! ```text
//! PRK_e   = HKDF-Extract(salt = "mqseal/v1", IKM = group secret of epoch e)
//! info(l) = l || suite id (1 B) || epoch (u32 BE) || len(sender id) (1 B) || sender id
//! key     = HKDF-Expand(PRK_e, info("mqseal/v1 key"), 32)
//! iv      = HKDF-Expand(PRK_e, info("mqseal/v1 iv"), 12)     (AEAD suites only)
//! nonce   = iv XOR (0x00000000 || u64be(counter))
//! ```
//!
//! The tuple (group secret, epoch, suite, sender id) is unique per key, and the
//! counter is unique per tuple, so (key, nonce) pairs never repeat.

use zeroize::Zeroizing;

use crate::crypto::{AeadKey, CryptoProvider, MacKey};
use crate::envelope::{Suite, Symmetric};
use crate::keys::{GroupSecret, SecretBytes32, SenderId};

/// HKDF salt.
pub const SALT: &[u8] = b"mqseal/v1";
/// Label of the key expansion.
pub const LABEL_KEY: &[u8] = b"mqseal/v1 key";
/// Label of the IV expansion.
pub const LABEL_IV: &[u8] = b"mqseal/v1 iv";

/// The pseudorandom key of one epoch; derive it once per epoch.
pub(crate) fn epoch_prk(provider: &CryptoProvider, secret: &GroupSecret) -> SecretBytes32 {
    Zeroizing::new(
        provider
            .hkdf
            .hkdf_sha256_extract(SALT, secret.expose_secret()),
    )
}

/// The prepared symmetric key of one sender.
pub(crate) enum SymKey {
    Aead(Box<dyn AeadKey>),
    Mac(Box<dyn MacKey>),
}

/// A sender's derived keys for one (epoch, suite).
pub(crate) struct SenderKeys {
    pub(crate) key: SymKey,
    pub(crate) iv: Zeroizing<[u8; 12]>,
}

/// Derives the raw key and IV bytes (exposed for test vectors and benches).
pub(crate) fn derive_raw(
    provider: &CryptoProvider,
    prk: &[u8; 32],
    suite: Suite,
    epoch: u32,
    sender: &SenderId,
) -> (SecretBytes32, Zeroizing<[u8; 12]>) {
    let sid = sender.as_bytes();
    let suite_b = [suite.id()];
    let epoch_b = epoch.to_be_bytes();
    let len_b = [sid.len() as u8];
    let mut key = Zeroizing::new([0u8; 32]);
    provider.hkdf.hkdf_sha256_expand(
        prk,
        &[LABEL_KEY, &suite_b, &epoch_b, &len_b, sid],
        &mut key[..],
    );
    let mut iv = Zeroizing::new([0u8; 12]);
    if suite.encrypts() {
        provider.hkdf.hkdf_sha256_expand(
            prk,
            &[LABEL_IV, &suite_b, &epoch_b, &len_b, sid],
            &mut iv[..],
        );
    }
    (key, iv)
}

/// Derives and prepares a sender's keys. `None` for the sign-only suite.
pub(crate) fn derive(
    provider: &CryptoProvider,
    prk: &[u8; 32],
    suite: Suite,
    epoch: u32,
    sender: &SenderId,
) -> Option<SenderKeys> {
    let sym = suite.symmetric()?;
    let (key, iv) = derive_raw(provider, prk, suite, epoch, sender);
    let key = match sym {
        Symmetric::HmacSha256 => SymKey::Mac(provider.hmac_sha256.key(&key)),
        s => SymKey::Aead(provider.aead(s)?.key(&key)),
    };
    Some(SenderKeys { key, iv })
}

/// The AEAD nonce for `counter`.
#[inline(always)]
pub(crate) fn nonce(iv: &[u8; 12], counter: u64) -> [u8; 12] {
    let mut n = *iv;
    for (b, c) in n[4..].iter_mut().zip(counter.to_be_bytes()) {
        *b ^= c;
    }
    n
}
