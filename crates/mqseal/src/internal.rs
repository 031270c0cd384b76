//! Entry points for fuzzing and benchmarks. Not part of the stable API.

use crate::crypto::CryptoProvider;
use crate::envelope::{self, Envelope, Header, Suite};
use crate::error::{Malformed, Rejection};
use crate::keys::{GroupSecret, SenderId};
use crate::replay::{Authenticated, ReplayWindow};

/// Parses an envelope (the fuzz target's entry point).
pub fn parse_envelope(bytes: &[u8]) -> Result<Envelope<'_>, Malformed> {
    envelope::parse(bytes)
}

/// Encodes `header` into `out` (at least [`envelope::MAX_HEADER_LEN`] bytes)
/// and returns its length: the inverse of the parser, for round-trip checks.
/// The fields must be in range, as they are in a parsed header.
pub fn encode_header(header: &Header<'_>, out: &mut [u8]) -> usize {
    header.write(out)
}

/// Derives a sender's raw key and IV from a group secret, without any cache:
/// extract and expand, as on a cache miss.
pub fn derive_sender_key(
    provider: &CryptoProvider,
    secret: &GroupSecret,
    suite: Suite,
    epoch: u32,
    sender: &SenderId,
) -> ([u8; 32], [u8; 12]) {
    let prk = crate::kdf::epoch_prk(provider, secret);
    let (k, iv) = crate::kdf::derive_raw(provider, &prk, suite, epoch, sender);
    (*k, *iv)
}

/// Checks and, if accepted, commits a counter in a replay window, as if the
/// message had been authenticated. For fuzzing the window only.
pub fn replay_accept_for_testing_only(
    window: &mut ReplayWindow,
    counter: u64,
) -> Result<(), Rejection> {
    window.check(counter)?;
    window.commit(counter, &Authenticated::new())
}

/// Fixed endpoints for the fuzz targets and benchmarks.
///
/// The keys, epoch, sender, topics and clock are those of the known-answer
/// vectors in `docs/vectors/`, so every committed vector envelope opens with
/// [`fixture::receiver`] of its suite: a fuzzer seeded with them starts past
/// authentication.
pub mod fixture {
    use std::sync::OnceLock;
    use std::time::Duration;

    use crate::counter::{CounterStore, MemoryCounterStore};
    use crate::crypto::CryptoProvider;
    use crate::endpoint::{Endpoint, KeyLimits};
    use crate::envelope::{Suite, Symmetric};
    use crate::freshness::{Freshness, ManualClock};
    use crate::keys::{GroupSecret, Keyring, PublicKey, SenderId, SigningKey, TrustStore};
    use crate::policy::{Aead, Policy, Protection};

    /// The vectors' group secret.
    pub const GROUP_SECRET: [u8; 32] = *b"mqseal test vector group secret!";
    /// The vectors' Ed25519 seed.
    pub const SIGNING_SEED: [u8; 32] = *b"mqseal test vector signing seed!";
    /// The vectors' key epoch.
    pub const EPOCH: u32 = 7;
    /// The vectors' sender id.
    pub const SENDER: &[u8] = b"dev1";
    /// The vectors' receiver clock, in ms since the Unix epoch.
    pub const NOW_MS: u64 = 1_795_000_000_000;
    /// The maximum age on `v/fresh/#`.
    pub const MAX_AGE: Duration = Duration::from_secs(30);
    /// A topic protected by the suite without freshness.
    pub const TOPIC: &str = "v/sensors/1";
    /// A topic protected by the suite with freshness.
    pub const FRESH_TOPIC: &str = "v/fresh/robot/cmd";
    /// A plaintext topic.
    pub const PLAIN_TOPIC: &str = "public/x";

    /// The protection of `suite` (with replay protection unless `no_replay`).
    pub fn protection(suite: Suite, fresh: bool, no_replay: bool) -> Protection {
        let b = match suite.symmetric() {
            Some(Symmetric::Aes256Gcm) => Protection::encrypt(Aead::Aes256Gcm),
            Some(Symmetric::ChaCha20Poly1305) => Protection::encrypt(Aead::ChaCha20Poly1305),
            Some(Symmetric::HmacSha256) => Protection::mac(),
            None => Protection::sign(),
        };
        let b = if suite.signed() && suite.symmetric().is_some() {
            b.sign()
        } else {
            b
        };
        let b = if fresh {
            b.freshness(Freshness::max_age(MAX_AGE))
        } else {
            b
        };
        if no_replay {
            b.danger_disable_replay_protection().build()
        } else {
            b.build()
        }
    }

    /// The vectors' policy for `suite`: `v/fresh/#` with freshness, `v/#`
    /// without, and `public/#` in plaintext.
    pub fn policy(suite: Suite, no_replay: bool) -> Policy {
        Policy::builder()
            .rule("v/fresh/#", protection(suite, true, no_replay))
            .and_then(|b| b.rule("v/#", protection(suite, false, no_replay)))
            .and_then(|b| b.rule("public/#", Protection::insecure_plaintext()))
            .map(|b| b.build())
            .unwrap_or_default()
    }

    /// The vectors' sender id.
    pub fn sender_id() -> SenderId {
        SenderId::new(SENDER).unwrap_or_else(|_| unreachable!("a 4-byte id"))
    }

    /// The public key of [`SIGNING_SEED`], computed once.
    pub fn public_key() -> PublicKey {
        static KEY: OnceLock<PublicKey> = OnceLock::new();
        *KEY.get_or_init(|| {
            SigningKey::from_seed(SIGNING_SEED).public_key(crate::crypto::default_provider())
        })
    }

    /// A receiver for `suite` that trusts the vectors' sender.
    pub fn receiver(suite: Suite, provider: &'static CryptoProvider, no_replay: bool) -> Endpoint {
        let mut trust = TrustStore::new();
        trust.insert(sender_id(), public_key());
        Endpoint::builder(policy(suite, no_replay))
            .provider(provider)
            .keyring(Keyring::new(EPOCH, GroupSecret::from_bytes(GROUP_SECRET)))
            .trust(trust)
            .clock(ManualClock::new(NOW_MS))
            .build()
            .unwrap_or_else(|e| unreachable!("fixture receiver: {e}"))
    }

    /// The vectors' sender for `suite`, with a fresh memory counter store
    /// that reserves `block` counters at a time.
    pub fn sender(suite: Suite, provider: &'static CryptoProvider, block: u64) -> Endpoint {
        sender_with_store(suite, provider, block, MemoryCounterStore::new())
    }

    /// The vectors' sender for `suite` over `store`.
    pub fn sender_with_store(
        suite: Suite,
        provider: &'static CryptoProvider,
        block: u64,
        store: impl CounterStore + 'static,
    ) -> Endpoint {
        Endpoint::builder(policy(suite, false))
            .provider(provider)
            .sender_id(sender_id())
            .keyring(Keyring::new(EPOCH, GroupSecret::from_bytes(GROUP_SECRET)))
            .signing_key(SigningKey::from_seed(SIGNING_SEED))
            .counter_store(store)
            .counter_block(block)
            // Benchmarks seal billions of messages under one epoch: keep the
            // limit checks, but out of reach.
            .key_limits(KeyLimits {
                soft_messages: u64::MAX,
                hard_messages: u64::MAX,
                ..KeyLimits::default()
            })
            .clock(ManualClock::new(NOW_MS))
            .build()
            .unwrap_or_else(|e| unreachable!("fixture sender: {e}"))
    }
}
