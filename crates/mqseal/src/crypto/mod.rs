//! Pluggable cryptography.
//!
//! mqseal implements no primitive itself. A [`CryptoProvider`] is a plain
//! struct of `&'static dyn` entries, one per primitive, in the style of rustls.
//! Two backends ship:
//!
//! - [`ring`](mod@self::ring) (feature `ring`): `ring::PROVIDER`;
//! - [`rustcrypto`] (feature `rustcrypto`): the portable RustCrypto crates,
//!   `rustcrypto::PROVIDER`.
//!
//! Both produce byte-identical envelopes and open each other's; the test suite
//! runs against each. Mixing is a struct update:
//!
//! ```
//! # #[cfg(all(feature = "ring", feature = "rustcrypto"))] {
//! use mqseal::crypto::{CryptoProvider, ring, rustcrypto};
//! // ring's AEADs with ed25519-dalek's faster verification.
//! static MIXED: CryptoProvider = CryptoProvider {
//!     ed25519: rustcrypto::PROVIDER.ed25519,
//!     ..ring::PROVIDER
//! };
//! # }
//! ```
//!
//! [`default_provider`] is exactly that mix when both features are on.

use std::fmt;

#[cfg(feature = "ring")]
pub mod ring;
#[cfg(feature = "rustcrypto")]
pub mod rustcrypto;

/// A backend failure that carries no detail: authentication failed, or a key
/// was rejected. Deliberately opaque.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CryptoError;

impl fmt::Display for CryptoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("cryptographic operation failed")
    }
}

impl std::error::Error for CryptoError {}

/// An AEAD algorithm with a 32-byte key, 12-byte nonce and 16-byte tag.
pub trait AeadAlgorithm: Send + Sync {
    /// Prepares a key for repeated use.
    fn key(&self, key: &[u8; 32]) -> Box<dyn AeadKey>;
}

/// A prepared AEAD key.
pub trait AeadKey: Send + Sync {
    /// Encrypts `buf` in place and returns the tag.
    fn seal_in_place(
        &self,
        nonce: &[u8; 12],
        aad: &[u8],
        buf: &mut [u8],
    ) -> Result<[u8; 16], CryptoError>;

    /// Checks `tag` and decrypts `buf` in place. On failure the contents of
    /// `buf` are unspecified.
    fn open_in_place(
        &self,
        nonce: &[u8; 12],
        aad: &[u8],
        buf: &mut [u8],
        tag: &[u8; 16],
    ) -> Result<(), CryptoError>;
}

/// HMAC-SHA256.
pub trait MacAlgorithm: Send + Sync {
    /// Prepares a key for repeated use.
    fn key(&self, key: &[u8; 32]) -> Box<dyn MacKey>;
}

/// A prepared HMAC key.
pub trait MacKey: Send + Sync {
    /// The tag over the concatenation of `parts`.
    fn sign(&self, parts: &[&[u8]]) -> [u8; 32];
}

/// SHA-256.
pub trait Hash: Send + Sync {
    /// The digest of the concatenation of `parts`.
    fn sha256(&self, parts: &[&[u8]]) -> [u8; 32];
}

/// HKDF-SHA256 (RFC 5869).
pub trait Kdf: Send + Sync {
    /// Extract, then expand `info` (the concatenation of its parts) to fill `out`
    /// (at most 255 × 32 bytes).
    fn hkdf_sha256(&self, salt: &[u8], ikm: &[u8], info: &[&[u8]], out: &mut [u8]);

    /// Expand only, from a pseudorandom key produced by extraction.
    fn hkdf_sha256_expand(&self, prk: &[u8; 32], info: &[&[u8]], out: &mut [u8]);

    /// Extract only: the pseudorandom key.
    fn hkdf_sha256_extract(&self, salt: &[u8], ikm: &[u8]) -> [u8; 32];
}

/// Ed25519 (RFC 8032).
pub trait SignatureAlgorithm: Send + Sync {
    /// A signing key from its 32-byte seed.
    fn signing_key(&self, seed: &[u8; 32]) -> Box<dyn SigningKey>;
    /// A verifying key from its 32-byte encoding, decoded once.
    fn verifying_key(&self, public: &[u8; 32]) -> Result<Box<dyn VerifyingKey>, CryptoError>;
}

/// A prepared Ed25519 signing key.
pub trait SigningKey: Send + Sync {
    /// The public key.
    fn public_key(&self) -> [u8; 32];
    /// Signs `msg`.
    fn sign(&self, msg: &[u8]) -> [u8; 64];
}

/// A prepared Ed25519 verifying key.
pub trait VerifyingKey: Send + Sync {
    /// Verifies `sig` over `msg`.
    fn verify(&self, msg: &[u8], sig: &[u8; 64]) -> Result<(), CryptoError>;
}

/// A cryptographically secure random number generator.
pub trait SecureRandom: Send + Sync {
    /// Fills `dest` with random bytes.
    fn fill(&self, dest: &mut [u8]) -> Result<(), CryptoError>;
}

/// The primitives mqseal uses, one entry each.
///
/// Build variants with struct update syntax from a backend's `PROVIDER`.
#[derive(Clone, Copy)]
pub struct CryptoProvider {
    /// AES-256-GCM.
    pub aes_256_gcm: &'static dyn AeadAlgorithm,
    /// ChaCha20-Poly1305.
    pub chacha20_poly1305: &'static dyn AeadAlgorithm,
    /// HMAC-SHA256.
    pub hmac_sha256: &'static dyn MacAlgorithm,
    /// SHA-256.
    pub sha256: &'static dyn Hash,
    /// HKDF-SHA256.
    pub hkdf: &'static dyn Kdf,
    /// Ed25519.
    pub ed25519: &'static dyn SignatureAlgorithm,
    /// Randomness for key generation.
    pub random: &'static dyn SecureRandom,
    /// A name for diagnostics.
    pub name: &'static str,
}

impl fmt::Debug for CryptoProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CryptoProvider")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl CryptoProvider {
    pub(crate) fn aead(&self, s: crate::envelope::Symmetric) -> Option<&'static dyn AeadAlgorithm> {
        use crate::envelope::Symmetric;
        match s {
            Symmetric::Aes256Gcm => Some(self.aes_256_gcm),
            Symmetric::ChaCha20Poly1305 => Some(self.chacha20_poly1305),
            Symmetric::HmacSha256 => None,
        }
    }
}

/// The canonical encodings of the eight points of small order (the torsion
/// subgroup of edwards25519), as in libsodium's blacklist.
pub(crate) const SMALL_ORDER: [[u8; 32]; 8] = {
    let mut t = [[0u8; 32]; 8];
    // (0, 1): the identity.
    t[0][0] = 1;
    // (0, -1): y = p - 1.
    t[1] = [0xff; 32];
    t[1][0] = 0xec;
    t[1][31] = 0x7f;
    // (+-sqrt(-1), 0): y = 0, either sign of x.
    t[3][31] = 0x80;
    // The four points of order 8: y and -y, either sign of x.
    t[4] = [
        0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98,
        0xf0, 0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53,
        0xfc, 0x05,
    ];
    t[5] = t[4];
    t[5][31] |= 0x80;
    t[6] = [
        0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67,
        0x0f, 0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac,
        0x03, 0x7a,
    ];
    t[7] = t[6];
    t[7][31] |= 0x80;
    t
};

/// Whether a signature's R is one of the points of small order (canonical
/// encodings only: both providers' verification compares R's bytes with the
/// canonical encoding of the recomputed point, so no other encoding passes).
pub(crate) fn has_small_order_r(sig: &[u8; 64]) -> bool {
    SMALL_ORDER.iter().any(|p| p[..] == sig[..32])
}

/// The y coordinates of the points of small order, as 255-bit values: the
/// canonical ones (1, p - 1, 0 and the two of the order-8 points) and the
/// non-canonical aliases p and p + 1 of 0 and 1. A public key whose bytes,
/// sign bit cleared, are one of these decodes (in a decoder that does not
/// insist on canonical encodings, as ring's does not) to a point of small
/// order, whatever its sign bit. The list of libsodium's
/// `has_small_order`.
#[cfg(feature = "ring")]
const SMALL_ORDER_Y: [[u8; 32]; 7] = {
    let t = SMALL_ORDER;
    // p = 2^255 - 19 and p + 1, little-endian.
    let mut p = [0xff; 32];
    p[0] = 0xed;
    p[31] = 0x7f;
    let mut p1 = p;
    p1[0] = 0xee;
    [t[0], t[1], t[2], t[4], t[6], p, p1]
};

/// Whether an Ed25519 public key encodes a point of small order (with which
/// anyone can make signatures that verify), canonically or not.
#[cfg(feature = "ring")]
pub(crate) fn has_small_order(public: &[u8; 32]) -> bool {
    let mut y = *public;
    y[31] &= 0x7f;
    SMALL_ORDER_Y.contains(&y)
}

/// The default provider: ring's AEADs, HMAC and HKDF with ed25519-dalek's
/// Ed25519 (about 1.5× faster to verify with a pre-decoded key) when both
/// backends are compiled in; otherwise whichever backend is.
pub const fn default_provider() -> &'static CryptoProvider {
    #[cfg(all(feature = "ring", feature = "rustcrypto"))]
    {
        static MIXED: CryptoProvider = CryptoProvider {
            ed25519: rustcrypto::PROVIDER.ed25519,
            name: "ring+dalek",
            ..ring::PROVIDER
        };
        &MIXED
    }
    #[cfg(all(feature = "ring", not(feature = "rustcrypto")))]
    {
        &ring::PROVIDER
    }
    #[cfg(all(not(feature = "ring"), feature = "rustcrypto"))]
    {
        &rustcrypto::PROVIDER
    }
}

#[cfg(not(any(feature = "ring", feature = "rustcrypto")))]
compile_error!("mqseal needs a crypto backend: enable the `ring` or `rustcrypto` feature");

#[cfg(all(test, feature = "ring", feature = "rustcrypto"))]
mod tests {
    use super::*;

    /// Every encoding of a point of small order that a lenient decoder
    /// takes, built from the canonical table alone: each point's y (sign bit
    /// cleared), its alias y + p where that is below 2^255 (y < 19), and
    /// either sign bit.
    fn small_order_encodings() -> Vec<[u8; 32]> {
        let mut ys: Vec<[u8; 32]> = Vec::new();
        for point in SMALL_ORDER {
            let mut y = point;
            y[31] &= 0x7f;
            if !ys.contains(&y) {
                ys.push(y);
            }
        }
        // y + p, for the y below 19: p = 2^255 - 19 is ed ff .. ff 7f.
        for y in ys.clone() {
            if y[1..].iter().all(|&b| b == 0) && y[0] < 19 {
                let mut alias = [0xff; 32];
                alias[0] = 0xed + y[0];
                alias[31] = 0x7f;
                ys.push(alias);
            }
        }
        ys.iter()
            .flat_map(|y| {
                let mut neg = *y;
                neg[31] |= 0x80;
                [*y, neg]
            })
            .collect()
    }

    #[test]
    fn has_small_order_is_exactly_the_small_order_encodings() {
        let all = small_order_encodings();
        assert_eq!(all.len(), 14);
        for k in &all {
            assert!(has_small_order(k), "{k:02x?} not refused");
            // Dangerous in ring: with s = 0, sB - hA = -hA is a point of
            // small order, and h (a hash of R, A and the message) makes it
            // equal R for about one (R, message) pair in eight.
            let key = ::ring::signature::UnparsedPublicKey::new(&::ring::signature::ED25519, k);
            let forgeable = (0..64u8).any(|m| {
                SMALL_ORDER.iter().any(|r| {
                    let mut forged = [0u8; 64];
                    forged[..32].copy_from_slice(r);
                    key.verify(&[m], &forged).is_ok()
                })
            });
            assert!(forgeable, "{k:02x?}");
            // And small order for dalek too (refused or weak).
            if let Ok(key) = ed25519_dalek::VerifyingKey::from_bytes(k) {
                assert!(key.is_weak(), "{k:02x?} decodes to a point of large order");
            }
        }
        // Neighbours of every listed value are not refused.
        for k in &all {
            for delta in [1u8, 2] {
                let mut n = *k;
                n[0] = n[0].wrapping_add(delta);
                if !all.contains(&n) {
                    assert!(!has_small_order(&n), "{n:02x?} refused");
                }
            }
        }
        // Real keys are never refused.
        for seed in 0..500u16 {
            let mut s = [0u8; 32];
            s[..2].copy_from_slice(&seed.to_le_bytes());
            let public = ed25519_dalek::SigningKey::from_bytes(&s)
                .verifying_key()
                .to_bytes();
            assert!(!has_small_order(&public));
        }
    }

    #[test]
    fn both_providers_refuse_every_small_order_key() {
        for k in small_order_encodings() {
            assert!(ring::PROVIDER.ed25519.verifying_key(&k).is_err());
            assert!(rustcrypto::PROVIDER.ed25519.verifying_key(&k).is_err());
            assert!(default_provider().ed25519.verifying_key(&k).is_err());
        }
    }
}
