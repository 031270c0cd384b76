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
