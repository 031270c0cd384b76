//! Shared code of mqseal's benchmarks: the COSE peer (built with `coset` and
//! ring's AES-256-GCM, HMAC-SHA256 and Ed25519) and the envelope overhead
//! table.
//!
//! The benchmarks themselves are in `benches/mqseal.rs`; the overhead table is
//! printed by `cargo run -p mqseal-benches --bin overhead`. See
//! `docs/performance.md`. [`alternate`] and [`median`] are the paired mode's
//! loop, shared by `profile paired` and the e2e bench's paired mode.

use coset::{
    CborSerializable, CoseEncrypt0, CoseEncrypt0Builder, CoseMac0Builder, CoseSign1Builder,
    HeaderBuilder, iana,
};
use mqseal::Suite;
use mqseal::envelope::Header;
use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};

/// Paired timing: runs `a` and `b` alternately, `warmup + rounds` times,
/// swapping which goes first every round (so that a slow change of the
/// machine's state falls on both), and returns the results of the `rounds`
/// rounds after the warm-up, as `(a, b)` pairs.
pub fn alternate<T>(
    rounds: usize,
    warmup: usize,
    mut a: impl FnMut() -> T,
    mut b: impl FnMut() -> T,
) -> Vec<(T, T)> {
    let mut out = Vec::with_capacity(rounds);
    for round in 0..rounds + warmup {
        let pair = if round % 2 == 0 {
            let ta = a();
            (ta, b())
        } else {
            let tb = b();
            (a(), tb)
        };
        if round >= warmup {
            out.push(pair);
        }
    }
    out
}

/// The median of `v`, which it sorts (the mean of the two middle values
/// when the length is even). `v` must not be empty.
pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|x, y| x.total_cmp(y));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// A number of rounds from the command line or the environment: at least
/// 1; an even number gives both orders of a pair the same count.
pub fn rounds(arg: &str) -> usize {
    match arg.parse() {
        Ok(n) if n > 0 => n,
        _ => panic!("rounds must be a number above 0, got {arg:?}"),
    }
}

/// A COSE_Encrypt0 peer: AES-256-GCM from ring, structure and CBOR from coset.
pub struct CoseEncrypt0Peer {
    key: LessSafeKey,
    kid: Option<Vec<u8>>,
}

impl CoseEncrypt0Peer {
    /// A peer with `key`; `kid` is put in the unprotected header when given.
    pub fn new(key: &[u8; 32], kid: Option<&[u8]>) -> Self {
        let unbound = UnboundKey::new(&aead::AES_256_GCM, key).expect("a 32-byte key");
        CoseEncrypt0Peer {
            key: LessSafeKey::new(unbound),
            kid: kid.map(<[u8]>::to_vec),
        }
    }

    /// Seals: a protected header with alg A256GCM, the IV in the unprotected
    /// header (RFC 9052, section 3.1), Enc_structure as AAD (built by coset),
    /// encryption, CBOR serialization.
    pub fn seal(&self, iv: [u8; 12], payload: &[u8]) -> Vec<u8> {
        let protected = HeaderBuilder::new()
            .algorithm(iana::Algorithm::A256GCM)
            .build();
        let mut unprotected = HeaderBuilder::new().iv(iv.to_vec());
        if let Some(kid) = &self.kid {
            unprotected = unprotected.key_id(kid.clone());
        }
        CoseEncrypt0Builder::new()
            .protected(protected)
            .unprotected(unprotected.build())
            .create_ciphertext(payload, b"", |pt, aad| {
                let mut buf = pt.to_vec();
                self.key
                    .seal_in_place_append_tag(
                        Nonce::assume_unique_for_key(iv),
                        Aad::from(aad),
                        &mut buf,
                    )
                    .expect("AES-GCM seal");
                buf
            })
            .build()
            .to_vec()
            .expect("CBOR serialization")
    }

    /// Opens: CBOR parse, algorithm check, Enc_structure rebuilt as AAD,
    /// decryption.
    pub fn open(&self, bytes: &[u8]) -> Result<Vec<u8>, &'static str> {
        let msg = CoseEncrypt0::from_slice(bytes).map_err(|_| "bad CBOR")?;
        if msg.protected.header.alg != Some(coset::Algorithm::Assigned(iana::Algorithm::A256GCM)) {
            return Err("unexpected algorithm");
        }
        let iv: [u8; 12] = msg
            .unprotected
            .iv
            .as_slice()
            .try_into()
            .map_err(|_| "bad IV")?;
        msg.decrypt_ciphertext(
            b"",
            || "no ciphertext",
            |ct, aad| {
                let mut buf = ct.to_vec();
                let n = self
                    .key
                    .open_in_place(Nonce::assume_unique_for_key(iv), Aad::from(aad), &mut buf)
                    .map_err(|_| "unauthenticated")?
                    .len();
                buf.truncate(n);
                Ok(buf)
            },
        )
    }
}

/// Bytes a COSE_Encrypt0 (A256GCM, 12-byte IV, untagged) adds to `len` bytes.
pub fn cose_encrypt0_overhead(len: usize, kid: Option<&[u8]>) -> usize {
    CoseEncrypt0Peer::new(&[1; 32], kid)
        .seal([2; 12], &vec![0; len])
        .len()
        - len
}

/// A protected header with `alg`, and an unprotected header with `kid` when given.
fn headers(alg: iana::Algorithm, kid: Option<&[u8]>) -> (coset::Header, coset::Header) {
    let mut unprotected = HeaderBuilder::new();
    if let Some(kid) = kid {
        unprotected = unprotected.key_id(kid.to_vec());
    }
    (
        HeaderBuilder::new().algorithm(alg).build(),
        unprotected.build(),
    )
}

/// Bytes a COSE_Mac0 (HMAC 256/256, untagged) adds to `len` bytes.
pub fn cose_mac0_overhead(len: usize, kid: Option<&[u8]>) -> usize {
    let (protected, unprotected) = headers(iana::Algorithm::HMAC_256_256, kid);
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &[1; 32]);
    CoseMac0Builder::new()
        .protected(protected)
        .unprotected(unprotected)
        .payload(vec![0; len])
        .create_tag(b"", |data| ring::hmac::sign(&key, data).as_ref().to_vec())
        .build()
        .to_vec()
        .expect("CBOR serialization")
        .len()
        - len
}

/// Bytes a COSE_Sign1 (EdDSA, untagged) adds to `len` bytes.
pub fn cose_sign1_overhead(len: usize, kid: Option<&[u8]>) -> usize {
    let (protected, unprotected) = headers(iana::Algorithm::EdDSA, kid);
    let pair = ring::signature::Ed25519KeyPair::from_seed_unchecked(&[3; 32]).expect("seed");
    CoseSign1Builder::new()
        .protected(protected)
        .unprotected(unprotected)
        .payload(vec![0; len])
        .create_signature(b"", |data| pair.sign(data).as_ref().to_vec())
        .build()
        .to_vec()
        .expect("CBOR serialization")
        .len()
        - len
}

/// Bytes an mqseal envelope of `suite` adds to a payload.
pub fn mqseal_overhead(
    suite: Suite,
    epoch: u32,
    sender_id: &[u8],
    counter: u64,
    timestamp_ms: Option<u64>,
) -> usize {
    let header = Header {
        suite,
        epoch,
        sender_id,
        counter,
        timestamp_ms,
    };
    header.encoded_len() + suite.trailer_len()
}

/// The overhead table, as Markdown: each suite for a typical header next to
/// its COSE counterpart.
pub fn overhead_table() -> String {
    use std::fmt::Write as _;
    let sid = b"dev1";
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| suite | mqseal: counter < 2^7 | counter < 2^21 | counter 2^40 + timestamp | 16 B sender id, counter < 2^21 | COSE counterpart (no kid / 4 B kid) |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|");
    for suite in Suite::ALL {
        let o = |sid: &[u8], c, ts| mqseal_overhead(suite, 7, sid, c, ts);
        let cose = match suite {
            Suite::Aes256Gcm | Suite::ChaCha20Poly1305 => format!(
                "Encrypt0: {} / {} B",
                cose_encrypt0_overhead(64, None),
                cose_encrypt0_overhead(64, Some(sid))
            ),
            Suite::HmacSha256 => format!(
                "Mac0: {} / {} B",
                cose_mac0_overhead(64, None),
                cose_mac0_overhead(64, Some(sid))
            ),
            Suite::Ed25519 => format!(
                "Sign1: {} / {} B",
                cose_sign1_overhead(64, None),
                cose_sign1_overhead(64, Some(sid))
            ),
            _ => "nested (Encrypt0 or Mac0 in Sign1): > 80 B".to_string(),
        };
        let _ = writeln!(
            out,
            "| {suite} | {} B | {} B | {} B | {} B | {cose} |",
            o(sid, 1, None),
            o(sid, 1 << 20, None),
            o(sid, 1 << 40, Some(1_795_000_000_000)),
            o(&[0x5a; 16], 1 << 20, None),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn median_of_odd_and_even_lengths() {
        assert_eq!(super::median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(super::median(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(super::median(&mut [7.0]), 7.0);
    }

    #[test]
    fn alternate_swaps_the_order_and_drops_the_warm_up() {
        let log = std::cell::RefCell::new(Vec::new());
        let out = super::alternate(
            4,
            2,
            || {
                log.borrow_mut().push('a');
                log.borrow().len()
            },
            || {
                log.borrow_mut().push('b');
                log.borrow().len()
            },
        );
        assert_eq!(log.into_inner().iter().collect::<String>(), "abbaabbaabba");
        // Rounds 2..6: a first, then b first, and so on.
        assert_eq!(out, vec![(5, 6), (8, 7), (9, 10), (12, 11)]);
    }

    use super::*;

    #[test]
    fn cose_peer_round_trips() {
        let peer = CoseEncrypt0Peer::new(&[9; 32], None);
        let sealed = peer.seal([1; 12], b"hello");
        assert_eq!(peer.open(&sealed).unwrap(), b"hello");
        let mut bad = sealed.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert!(peer.open(&bad).is_err());
    }

    #[test]
    fn aead_overhead_target() {
        // Target: at most 28 B for an AEAD suite, with a 4-byte sender id and
        // a counter below 2^21 (2 million messages per epoch).
        for suite in [Suite::Aes256Gcm, Suite::ChaCha20Poly1305] {
            assert!(mqseal_overhead(suite, 7, b"dev1", (1 << 21) - 1, None) <= 28);
        }
        // And less than COSE_Encrypt0 without a kid, which carries no counter
        // and no sender.
        assert!(
            mqseal_overhead(Suite::Aes256Gcm, 7, b"dev1", 1, None)
                < cose_encrypt0_overhead(64, None)
        );
    }
}
