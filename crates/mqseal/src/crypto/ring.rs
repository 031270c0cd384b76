//! The `ring` backend.
//!
//! ring's prepared keys (AES key schedules, HMAC states) are not zeroized when
//! dropped; mqseal's own copies of secret bytes are.

use ring::{aead, digest, hkdf, hmac, rand, signature};

use super::{
    AeadAlgorithm, AeadKey, CryptoError, CryptoProvider, Hash, Kdf, MacAlgorithm, MacKey,
    SecureRandom, SignatureAlgorithm, SigningKey, VerifyingKey, has_small_order, has_small_order_r,
};

/// Every primitive from ring.
pub static PROVIDER: CryptoProvider = CryptoProvider {
    aes_256_gcm: &Aead(&aead::AES_256_GCM),
    chacha20_poly1305: &Aead(&aead::CHACHA20_POLY1305),
    hmac_sha256: &HmacSha256,
    sha256: &Sha256,
    hkdf: &HkdfSha256,
    ed25519: &Ed25519,
    random: &Random,
    name: "ring",
};

struct Aead(&'static aead::Algorithm);

struct PreparedAead(aead::LessSafeKey);

impl AeadAlgorithm for Aead {
    fn key(&self, key: &[u8; 32]) -> Box<dyn AeadKey> {
        // The only failure is a wrong key length, and the type fixes it.
        let unbound = aead::UnboundKey::new(self.0, key).expect("32-byte key for a 256-bit AEAD");
        Box::new(PreparedAead(aead::LessSafeKey::new(unbound)))
    }
}

impl AeadKey for PreparedAead {
    fn seal_in_place(
        &self,
        nonce: &[u8; 12],
        aad: &[u8],
        buf: &mut [u8],
    ) -> Result<[u8; 16], CryptoError> {
        let tag = self
            .0
            .seal_in_place_separate_tag(
                aead::Nonce::assume_unique_for_key(*nonce),
                aead::Aad::from(aad),
                buf,
            )
            .map_err(|_| CryptoError)?;
        let mut out = [0u8; 16];
        out.copy_from_slice(tag.as_ref());
        Ok(out)
    }

    fn open_in_place(
        &self,
        nonce: &[u8; 12],
        aad: &[u8],
        buf: &mut [u8],
        tag: &[u8; 16],
    ) -> Result<(), CryptoError> {
        self.0
            .open_in_place_separate_tag(
                aead::Nonce::assume_unique_for_key(*nonce),
                aead::Aad::from(aad),
                aead::Tag::from(*tag),
                buf,
                0..,
            )
            .map(|_| ())
            .map_err(|_| CryptoError)
    }
}

struct HmacSha256;

struct PreparedHmac(hmac::Key);

impl MacAlgorithm for HmacSha256 {
    fn key(&self, key: &[u8; 32]) -> Box<dyn MacKey> {
        Box::new(PreparedHmac(hmac::Key::new(hmac::HMAC_SHA256, key)))
    }
}

impl MacKey for PreparedHmac {
    fn sign(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut ctx = hmac::Context::with_key(&self.0);
        for p in parts {
            ctx.update(p);
        }
        let tag = ctx.sign();
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }
}

struct Sha256;

impl Hash for Sha256 {
    fn sha256(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut ctx = digest::Context::new(&digest::SHA256);
        for p in parts {
            ctx.update(p);
        }
        let d = ctx.finish();
        let mut out = [0u8; 32];
        out.copy_from_slice(d.as_ref());
        out
    }
}

struct HkdfSha256;

struct Len(usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

impl Kdf for HkdfSha256 {
    fn hkdf_sha256(&self, salt: &[u8], ikm: &[u8], info: &[&[u8]], out: &mut [u8]) {
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(ikm);
        prk.expand(info, Len(out.len()))
            .and_then(|okm| okm.fill(out))
            .expect("HKDF output of at most 255 blocks");
    }

    fn hkdf_sha256_expand(&self, prk: &[u8; 32], info: &[&[u8]], out: &mut [u8]) {
        let prk = hkdf::Prk::new_less_safe(hkdf::HKDF_SHA256, prk);
        prk.expand(info, Len(out.len()))
            .and_then(|okm| okm.fill(out))
            .expect("HKDF output of at most 255 blocks");
    }

    fn hkdf_sha256_extract(&self, salt: &[u8], ikm: &[u8]) -> [u8; 32] {
        // ring does not expose the PRK bytes; HKDF-Extract is HMAC(salt, ikm).
        let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, salt), ikm);
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }
}

struct Ed25519;

struct PreparedSigner {
    pair: signature::Ed25519KeyPair,
}

struct PreparedVerifier([u8; 32]);

impl SignatureAlgorithm for Ed25519 {
    fn signing_key(&self, seed: &[u8; 32]) -> Box<dyn SigningKey> {
        let pair = signature::Ed25519KeyPair::from_seed_unchecked(seed)
            .expect("every 32-byte seed is a valid Ed25519 key");
        Box::new(PreparedSigner { pair })
    }

    fn verifying_key(&self, public: &[u8; 32]) -> Result<Box<dyn VerifyingKey>, CryptoError> {
        // ring decodes the point on every verification and offers no separate
        // check, so an undecodable key fails at its first verification. It
        // does not refuse a key of small order, with which anyone can make
        // signatures that verify (R = identity, s = 0 verifies any message
        // under the identity key): refused here, as the default provider's
        // ed25519-dalek path does.
        if has_small_order(public) {
            return Err(CryptoError);
        }
        Ok(Box::new(PreparedVerifier(*public)))
    }
}

impl SigningKey for PreparedSigner {
    fn public_key(&self) -> [u8; 32] {
        use signature::KeyPair;
        let mut out = [0u8; 32];
        out.copy_from_slice(self.pair.public_key().as_ref());
        out
    }

    fn sign(&self, msg: &[u8]) -> [u8; 64] {
        let sig = self.pair.sign(msg);
        let mut out = [0u8; 64];
        out.copy_from_slice(sig.as_ref());
        out
    }
}

impl VerifyingKey for PreparedVerifier {
    /// ring's verification (s < L, and R's bytes equal to the canonical
    /// encoding of the recomputed point), with an R of small order refused,
    /// as the default provider does: the two providers accept the same
    /// signatures.
    fn verify(&self, msg: &[u8], sig: &[u8; 64]) -> Result<(), CryptoError> {
        if has_small_order_r(sig) {
            return Err(CryptoError);
        }
        signature::UnparsedPublicKey::new(&signature::ED25519, &self.0)
            .verify(msg, sig)
            .map_err(|_| CryptoError)
    }
}

struct Random;

impl SecureRandom for Random {
    fn fill(&self, dest: &mut [u8]) -> Result<(), CryptoError> {
        use ring::rand::SecureRandom as _;
        rand::SystemRandom::new()
            .fill(dest)
            .map_err(|_| CryptoError)
    }
}

#[cfg(test)]
mod small_order_tests {
    use super::*;
    use crate::crypto::SMALL_ORDER;

    /// The identity's encoding, and a signature R = identity, s = 0: it
    /// verifies any message under the identity key.
    const IDENTITY: [u8; 32] = {
        let mut t = [0u8; 32];
        t[0] = 1;
        t
    };

    #[test]
    fn a_small_order_key_is_refused_though_raw_ring_accepts_its_forgeries() {
        let mut forged = [0u8; 64];
        forged[..32].copy_from_slice(&IDENTITY);
        // What the check prevents: raw ring verifies the forgery.
        for msg in [&b"open the valve"[..], b"anything else"] {
            assert!(
                signature::UnparsedPublicKey::new(&signature::ED25519, &IDENTITY)
                    .verify(msg, &forged)
                    .is_ok()
            );
        }
        assert!(PROVIDER.ed25519.verifying_key(&IDENTITY).is_err());
    }

    #[test]
    fn the_r_check_refuses_a_forgery_that_raw_ring_accepts() {
        // A verifier built around the identity key, past the load check: raw
        // ring accepts R = identity, s = 0 under it; the R check refuses.
        let mut forged = [0u8; 64];
        forged[..32].copy_from_slice(&IDENTITY);
        assert!(
            signature::UnparsedPublicKey::new(&signature::ED25519, &IDENTITY)
                .verify(b"msg", &forged)
                .is_ok()
        );
        assert!(PreparedVerifier(IDENTITY).verify(b"msg", &forged).is_err());
    }

    #[test]
    fn an_r_of_small_order_is_refused_and_honest_signatures_verify() {
        let signer = PROVIDER.ed25519.signing_key(&[7; 32]);
        let verifier = PROVIDER
            .ed25519
            .verifying_key(&signer.public_key())
            .expect("an honest key");
        let sig = signer.sign(b"msg");
        assert!(verifier.verify(b"msg", &sig).is_ok());
        for r in SMALL_ORDER {
            let mut bad = sig;
            bad[..32].copy_from_slice(&r);
            assert!(verifier.verify(b"msg", &bad).is_err());
        }
    }
}
