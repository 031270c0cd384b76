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
    // The counter, big-endian, XORed into the IV's last 8 bytes, computed
    // as an 8-byte and a 4-byte word: the nonce is stored that way, which is
    // how a 12-byte copy loads it back (the AEAD wrappers copy it right
    // away). Stored as 4 + 8 bytes, the 8-byte load of bytes 0..8 spans two
    // stores, cannot be forwarded from them, and stalls until they retire:
    // that was half the wrappers' time at 64 B (docs/performance.md, sixth
    // round).
    let (hi, lo) = iv.split_at(8);
    let hi = u64::from_be_bytes(hi.try_into().expect("8 bytes")) ^ (counter >> 32);
    let lo = u32::from_be_bytes(lo.try_into().expect("4 bytes")) ^ (counter as u32);
    let mut n = [0u8; 12];
    n[..8].copy_from_slice(&hi.to_be_bytes());
    n[8..].copy_from_slice(&lo.to_be_bytes());
    n
}

#[cfg(test)]
mod tests {
    use super::nonce;

    #[test]
    fn nonce_is_the_iv_xor_the_big_endian_counter_in_its_last_8_bytes() {
        let iv: [u8; 12] = [
            0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0xf0, 0x0f, 0x5a, 0xa5,
        ];
        for counter in [0, 1, 0x7f, 0x80, 0x1234_5678, u64::MAX >> 1, u64::MAX] {
            let mut want = iv;
            for (i, c) in counter.to_be_bytes().into_iter().enumerate() {
                want[4 + i] ^= c;
            }
            assert_eq!(nonce(&iv, counter), want, "counter {counter:#x}");
        }
        // The first 4 bytes never change; the last byte moves with counter 1.
        assert_eq!(nonce(&iv, 1)[..4], iv[..4]);
        assert_eq!(nonce(&iv, 1)[11], iv[11] ^ 1);
    }

    proptest::proptest! {
        /// docs/envelope.md 7.1 for any IV and counter, against the
        /// byte-wise definition (the word split at byte 8 included).
        #[test]
        fn nonce_matches_the_spec_for_any_iv_and_counter(iv: [u8; 12], counter: u64) {
            let mut want = iv;
            for (w, c) in want[4..].iter_mut().zip(counter.to_be_bytes()) {
                *w ^= c;
            }
            proptest::prop_assert_eq!(nonce(&iv, counter), want);
        }
    }
}
