//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use mqseal::crypto::CryptoProvider;
use mqseal::*;

pub const SECRET: [u8; 32] = [0x42; 32];
pub const SEED: [u8; 32] = [0x07; 32];
pub const NOW_MS: u64 = 1_795_000_000_000;

/// Every backend compiled in, then the default provider when it is a third
/// one (ring with dalek's Ed25519, when both features are on), so that a
/// test builds and runs with either feature alone.
pub fn providers() -> Vec<&'static CryptoProvider> {
    let mut all: Vec<&'static CryptoProvider> = vec![
        #[cfg(feature = "ring")]
        &mqseal::crypto::ring::PROVIDER,
        #[cfg(feature = "rustcrypto")]
        &mqseal::crypto::rustcrypto::PROVIDER,
    ];
    let default = mqseal::crypto::default_provider();
    if all.iter().all(|p| p.name != default.name) {
        all.push(default);
    }
    all
}

/// A policy with one rule per suite, plus freshness and plaintext topics.
pub fn policy() -> Policy {
    Policy::builder()
        .rule("aes/#", Protection::encrypt(Aead::Aes256Gcm))
        .unwrap()
        .rule("chacha/#", Protection::encrypt(Aead::ChaCha20Poly1305))
        .unwrap()
        .rule("mac/#", Protection::mac())
        .unwrap()
        .rule("sig/#", Protection::sign())
        .unwrap()
        .rule("aes-sig/#", Protection::encrypt(Aead::Aes256Gcm).sign())
        .unwrap()
        .rule(
            "chacha-sig/#",
            Protection::encrypt(Aead::ChaCha20Poly1305).sign(),
        )
        .unwrap()
        .rule("mac-sig/#", Protection::mac().sign())
        .unwrap()
        .rule(
            "cmd/#",
            Protection::encrypt(Aead::Aes256Gcm).sign().freshness(
                Freshness::max_age(Duration::from_secs(5)).with_skew(Duration::from_secs(1)),
            ),
        )
        .unwrap()
        .rule("public/#", Protection::insecure_plaintext())
        .unwrap()
        .build()
}

/// One topic per suite, in `Suite::ALL` order, plus the freshness topic.
pub const TOPICS: [&str; 8] = [
    "aes/t",
    "chacha/t",
    "mac/t",
    "sig/t",
    "aes-sig/t",
    "chacha-sig/t",
    "mac-sig/t",
    "cmd/robot/1",
];

pub fn sender() -> SenderId {
    SenderId::new(b"dev1").unwrap()
}

pub fn trust(provider: &CryptoProvider) -> TrustStore {
    let mut t = TrustStore::new();
    t.insert(sender(), SigningKey::from_seed(SEED).public_key(provider));
    t
}

/// A builder for a sender `dev1` with the fixed secret and signing key (no
/// counter store yet).
pub fn sealer_builder(provider: &'static CryptoProvider) -> EndpointBuilder {
    Endpoint::builder(policy())
        .provider(provider)
        .sender_id(sender())
        .keyring(Keyring::new(7, GroupSecret::from_bytes(SECRET)))
        .signing_key(SigningKey::from_seed(SEED))
}

/// A builder for a receiver that holds the fixed secret and trusts `dev1`.
pub fn opener_builder(provider: &'static CryptoProvider) -> EndpointBuilder {
    Endpoint::builder(policy())
        .provider(provider)
        .keyring(Keyring::new(7, GroupSecret::from_bytes(SECRET)))
        .trust(trust(provider))
}

/// A sending endpoint with id `dev1`, the fixed secret and signing key.
pub fn sealer(provider: &'static CryptoProvider, clock: &ManualClock) -> Endpoint {
    sealer_builder(provider)
        .counter_store(MemoryCounterStore::new())
        .clock(clock.clone())
        .build()
        .unwrap()
}

/// A receiving endpoint that trusts `dev1`.
pub fn opener(provider: &'static CryptoProvider, clock: &ManualClock) -> Endpoint {
    opener_builder(provider)
        .clock(clock.clone())
        .build()
        .unwrap()
}

pub fn clock() -> ManualClock {
    ManualClock::new(NOW_MS)
}

pub fn rejection(r: Result<(Vec<u8>, Option<EnvelopeMeta>), Error>) -> Rejection {
    match r {
        Err(Error::Rejected(r)) => r,
        other => panic!("expected a rejection, got {other:?}"),
    }
}
