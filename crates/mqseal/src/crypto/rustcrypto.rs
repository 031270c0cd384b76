//! The portable RustCrypto backend: aes-gcm, chacha20poly1305, hmac, sha2,
//! hkdf and ed25519-dalek. Its keys zeroize on drop.

use aes_gcm::aead::{AeadInOut, KeyInit};
use ed25519_dalek::Verifier as _;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256 as Sha256Hasher};

use super::{
    AeadAlgorithm, AeadKey, CryptoError, CryptoProvider, Hash, Kdf, MacAlgorithm, MacKey,
    SecureRandom, SignatureAlgorithm, SigningKey, VerifyingKey, has_small_order_r,
};

/// Every primitive from the RustCrypto crates.
pub static PROVIDER: CryptoProvider = CryptoProvider {
    aes_256_gcm: &Aes256Gcm,
    chacha20_poly1305: &ChaCha20Poly1305,
    hmac_sha256: &HmacSha256,
    sha256: &Sha256,
    hkdf: &HkdfSha256,
    ed25519: &Ed25519,
    random: &Random,
    name: "rustcrypto",
};

struct Aes256Gcm;
struct ChaCha20Poly1305;

struct PreparedAead<A>(A);

impl AeadAlgorithm for Aes256Gcm {
    fn key(&self, key: &[u8; 32]) -> Box<dyn AeadKey> {
        Box::new(PreparedAead(aes_gcm::Aes256Gcm::new(key.into())))
    }
}

impl AeadAlgorithm for ChaCha20Poly1305 {
    fn key(&self, key: &[u8; 32]) -> Box<dyn AeadKey> {
        Box::new(PreparedAead(chacha20poly1305::ChaCha20Poly1305::new(
            key.into(),
        )))
    }
}

impl<A> AeadKey for PreparedAead<A>
where
    A: AeadInOut<NonceSize = aes_gcm::aead::consts::U12, TagSize = aes_gcm::aead::consts::U16>
        + Send
        + Sync,
{
    fn seal_in_place(
        &self,
        nonce: &[u8; 12],
        aad: &[u8],
        buf: &mut [u8],
    ) -> Result<[u8; 16], CryptoError> {
        let tag = self
            .0
            .encrypt_inout_detached(nonce.into(), aad, buf.into())
            .map_err(|_| CryptoError)?;
        Ok(tag.into())
    }

    fn open_in_place(
        &self,
        nonce: &[u8; 12],
        aad: &[u8],
        buf: &mut [u8],
        tag: &[u8; 16],
    ) -> Result<(), CryptoError> {
        self.0
            .decrypt_inout_detached(nonce.into(), aad, buf.into(), tag.into())
            .map_err(|_| CryptoError)
    }
}

struct HmacSha256;

struct PreparedHmac(Hmac<Sha256Hasher>);

impl MacAlgorithm for HmacSha256 {
    fn key(&self, key: &[u8; 32]) -> Box<dyn MacKey> {
        Box::new(PreparedHmac(
            <Hmac<Sha256Hasher> as KeyInit>::new_from_slice(key)
                .expect("HMAC takes any key length"),
        ))
    }
}

impl MacKey for PreparedHmac {
    fn sign(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut mac = self.0.clone();
        for p in parts {
            mac.update(p);
        }
        mac.finalize().into_bytes().into()
    }
}

struct Sha256;

impl Hash for Sha256 {
    fn sha256(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut h = Sha256Hasher::new();
        for p in parts {
            h.update(p);
        }
        h.finalize().into()
    }
}

struct HkdfSha256;

impl Kdf for HkdfSha256 {
    fn hkdf_sha256(&self, salt: &[u8], ikm: &[u8], info: &[&[u8]], out: &mut [u8]) {
        hkdf::Hkdf::<Sha256Hasher>::new(Some(salt), ikm)
            .expand_multi_info(info, out)
            .expect("HKDF output of at most 255 blocks");
    }

    fn hkdf_sha256_expand(&self, prk: &[u8; 32], info: &[&[u8]], out: &mut [u8]) {
        hkdf::Hkdf::<Sha256Hasher>::from_prk(prk)
            .expect("a 32-byte PRK")
            .expand_multi_info(info, out)
            .expect("HKDF output of at most 255 blocks");
    }

    fn hkdf_sha256_extract(&self, salt: &[u8], ikm: &[u8]) -> [u8; 32] {
        let (prk, _) = hkdf::Hkdf::<Sha256Hasher>::extract(Some(salt), ikm);
        prk.into()
    }
}

struct Ed25519;

struct PreparedSigner(ed25519_dalek::SigningKey);

struct PreparedVerifier(ed25519_dalek::VerifyingKey);

impl SignatureAlgorithm for Ed25519 {
    fn signing_key(&self, seed: &[u8; 32]) -> Box<dyn SigningKey> {
        Box::new(PreparedSigner(ed25519_dalek::SigningKey::from_bytes(seed)))
    }

    fn verifying_key(&self, public: &[u8; 32]) -> Result<Box<dyn VerifyingKey>, CryptoError> {
        let key = ed25519_dalek::VerifyingKey::from_bytes(public).map_err(|_| CryptoError)?;
        // A small-order key would let anyone forge signatures that verify.
        if key.is_weak() {
            return Err(CryptoError);
        }
        Ok(Box::new(PreparedVerifier(key)))
    }
}

impl SigningKey for PreparedSigner {
    fn public_key(&self) -> [u8; 32] {
        self.0.verifying_key().to_bytes()
    }

    fn sign(&self, msg: &[u8]) -> [u8; 64] {
        use ed25519_dalek::Signer as _;
        self.0.sign(msg).to_bytes()
    }
}

impl VerifyingKey for PreparedVerifier {
    /// Strict verification, as `VerifyingKey::verify_strict`, without its
    /// per-call decompression of R (about 8 us, a fifth of a verification):
    ///
    /// - `verify` accepts only if the signature's R bytes equal the canonical
    ///   encoding of the recomputed point, so R is a canonical encoding of a
    ///   valid point, and s < L;
    /// - an R of small order is refused by [`has_small_order_r`];
    /// - a public key of small order was refused when it was loaded.
    ///
    /// `tests::matches_verify_strict` checks the equivalence.
    fn verify(&self, msg: &[u8], sig: &[u8; 64]) -> Result<(), CryptoError> {
        if has_small_order_r(sig) {
            return Err(CryptoError);
        }
        let sig = ed25519_dalek::Signature::from_bytes(sig);
        self.0.verify(msg, &sig).map_err(|_| CryptoError)
    }
}

struct Random;

impl SecureRandom for Random {
    fn fill(&self, dest: &mut [u8]) -> Result<(), CryptoError> {
        getrandom::fill(dest).map_err(|_| CryptoError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::SMALL_ORDER;
    use ed25519_dalek::Signer as _;

    #[test]
    fn small_order_table_is_the_torsion_subgroup() {
        // Eight distinct encodings, each a valid point of small order; the
        // torsion subgroup has exactly eight points, so none is missing.
        for (i, p) in SMALL_ORDER.iter().enumerate() {
            let key = ed25519_dalek::VerifyingKey::from_bytes(p).expect("a valid point");
            assert!(key.is_weak(), "entry {i} is not of small order");
            assert_eq!(&key.to_bytes(), p, "entry {i} is not canonical");
            assert!(!SMALL_ORDER[..i].contains(p), "entry {i} repeats");
        }
    }

    #[test]
    fn matches_verify_strict() {
        let mut seed = [7u8; 32];
        for round in 0..64u8 {
            seed[0] = round;
            let sk = ed25519_dalek::SigningKey::from_bytes(&seed);
            let vk = sk.verifying_key();
            let ours = PreparedVerifier(vk);
            let msg = [round; 45];
            let good = sk.sign(&msg).to_bytes();
            let mut variants = vec![good];
            for bit in [0usize, 100, 255, 256, 300, 511] {
                let mut bad = good;
                bad[bit / 8] ^= 1 << (bit % 8);
                variants.push(bad);
            }
            for r in SMALL_ORDER {
                let mut bad = good;
                bad[..32].copy_from_slice(&r);
                variants.push(bad);
            }
            // s + L: the same scalar, not reduced.
            let mut unreduced = good;
            let l: [u8; 32] = [
                0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
                0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
            ];
            let mut carry = 0u16;
            for i in 0..32 {
                let v = u16::from(unreduced[32 + i]) + u16::from(l[i]) + carry;
                unreduced[32 + i] = v as u8;
                carry = v >> 8;
            }
            variants.push(unreduced);
            for (i, sig) in variants.iter().enumerate() {
                let strict = vk
                    .verify_strict(&msg, &ed25519_dalek::Signature::from_bytes(sig))
                    .is_ok();
                assert_eq!(
                    ours.verify(&msg, sig).is_ok(),
                    strict,
                    "round {round}, variant {i}"
                );
                assert_eq!(strict, i == 0, "round {round}, variant {i}");
            }
        }
    }
}
