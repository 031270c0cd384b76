//! Encrypt: AES-256-GCM (default) or ChaCha20-Poly1305, in place.
//!
//! The associated data is `header || u16be(len(topic)) || topic`, so the
//! header and the topic are authenticated, and the nonce is the sender's IV
//! XOR its counter. The payload is encrypted in place and the 16-byte tag
//! follows it.

use crate::crypto::AeadKey;
use crate::error::Rejection;
use crate::kdf;

/// Encrypts `buf` in place under the sender's key and returns the tag.
#[inline(always)]
pub(crate) fn seal(
    key: &dyn AeadKey,
    iv: &[u8; 12],
    counter: u64,
    aad: &[u8],
    buf: &mut [u8],
) -> Result<[u8; 16], crate::Error> {
    key.seal_in_place(&kdf::nonce(iv, counter), aad, buf)
        .map_err(|_| crate::Error::Crypto("AEAD seal failed"))
}

/// Checks the tag and decrypts `buf` in place.
#[inline(always)]
pub(crate) fn open(
    key: &dyn AeadKey,
    iv: &[u8; 12],
    counter: u64,
    aad: &[u8],
    buf: &mut [u8],
    tag: &[u8],
) -> Result<(), Rejection> {
    let tag: &[u8; 16] = tag.try_into().map_err(|_| Rejection::Unauthenticated)?;
    key.open_in_place(&kdf::nonce(iv, counter), aad, buf, tag)
        .map_err(|_| Rejection::Unauthenticated)
}
