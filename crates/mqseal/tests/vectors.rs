//! Known-answer vectors in `docs/vectors/`, one file per suite.
//!
//! The test regenerates every file from fixed keys with each backend and
//! checks that the committed files are byte-for-byte what every backend
//! compiled in (and the default provider) produces, then opens every
//! committed envelope with each and checks every negative
//! vector's rejection. To rewrite the files after a deliberate format change:
//!
//! ```text
//! MQSEAL_REGENERATE_VECTORS=1 cargo test -p mqseal --test vectors
//! ```

mod common;

use std::path::PathBuf;
use std::time::Duration;

use mqseal::counter::{CounterScope, Role};
use mqseal::crypto::CryptoProvider;
use mqseal::envelope::{self, Suite};
use mqseal::*;
use serde::{Deserialize, Serialize};

const SECRET: [u8; 32] = *b"mqseal test vector group secret!";
const SEED: [u8; 32] = *b"mqseal test vector signing seed!";
const EPOCH: u32 = 7;
const SENDER: &[u8] = b"dev1";
const NOW_MS: u64 = 1_795_000_000_000;
const MAX_AGE: Duration = Duration::from_secs(30);

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct VectorFile {
    version: u8,
    suite: String,
    suite_id: u8,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    group_secret: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    signing_seed: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    public_key: Option<String>,
    epoch: u32,
    sender_id: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    derived_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    derived_iv: Option<String>,
    /// Topics under `v/fresh/` require a timestamp no older than this.
    max_age_ms: u64,
    /// The receiver's clock when the vectors are checked.
    now_ms: u64,
    cases: Vec<Case>,
    negative: Vec<Negative>,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Case {
    name: String,
    topic: String,
    counter: u64,
    timestamp_ms: Option<u64>,
    payload: String,
    envelope: String,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Negative {
    name: String,
    topic: String,
    envelope: String,
    /// Names of cases opened first (for replays).
    after: Vec<String>,
    /// The receiver's clock, when it differs from `now_ms`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    now_ms: Option<u64>,
    /// The expected `Rejection::kind()`.
    expect: String,
}

fn protection(suite: Suite, fresh: bool) -> Protection {
    let b = match suite.symmetric() {
        Some(envelope::Symmetric::Aes256Gcm) => Protection::encrypt(Aead::Aes256Gcm),
        Some(envelope::Symmetric::ChaCha20Poly1305) => Protection::encrypt(Aead::ChaCha20Poly1305),
        Some(envelope::Symmetric::HmacSha256) => Protection::mac(),
        Some(_) => unreachable!("new symmetric algorithm"),
        None => Protection::sign(),
    };
    let b = if suite.signed() { b.sign() } else { b };
    if fresh {
        b.freshness(Freshness::max_age(MAX_AGE)).build()
    } else {
        b.build()
    }
}

fn policy(suite: Suite) -> Policy {
    Policy::builder()
        .rule("v/fresh/#", protection(suite, true))
        .unwrap()
        .rule("v/#", protection(suite, false))
        .unwrap()
        .build()
}

fn sender() -> SenderId {
    SenderId::new(SENDER).unwrap()
}

fn sealer(provider: &'static CryptoProvider, suite: Suite, counter: u64) -> Endpoint {
    let mut store = MemoryCounterStore::new();
    let scope = CounterScope {
        role: Role::Send,
        epoch: EPOCH,
        sender: sender(),
    };
    store.store(&scope, counter).unwrap();
    Endpoint::builder(policy(suite))
        .provider(provider)
        .sender_id(sender())
        .keyring(Keyring::new(EPOCH, GroupSecret::from_bytes(SECRET)))
        .signing_key(SigningKey::from_seed(SEED))
        .counter_store(store)
        .clock(ManualClock::new(NOW_MS))
        .build()
        .unwrap()
}

fn opener(provider: &'static CryptoProvider, file: &VectorFile, now_ms: u64) -> Endpoint {
    let suite = Suite::from_id(file.suite_id).unwrap();
    let mut b = Endpoint::builder(policy(suite))
        .provider(provider)
        .clock(ManualClock::new(now_ms));
    if let Some(s) = &file.group_secret {
        let secret = GroupSecret::try_from_slice(&hex::decode(s).unwrap()).unwrap();
        b = b.keyring(Keyring::new(file.epoch, secret));
    }
    if let Some(pk) = &file.public_key {
        let mut trust = TrustStore::new();
        let pk: [u8; 32] = hex::decode(pk).unwrap().try_into().unwrap();
        let sid = SenderId::new(&hex::decode(&file.sender_id).unwrap()).unwrap();
        trust.insert(sid, PublicKey(pk));
        b = b.trust(trust);
    }
    b.build().unwrap()
}

fn generate(provider: &'static CryptoProvider, suite: Suite) -> VectorFile {
    let payload_64: Vec<u8> = (0u8..64).collect();
    let specs: [(&str, &str, u64, &[u8]); 4] = [
        ("empty-payload", "v/sensors/1", 0, b""),
        ("64-byte-payload", "v/sensors/1", 1, &payload_64),
        ("large-counter", "v/sensors/1", (1 << 21) + 5, b"hello"),
        (
            "with-timestamp",
            "v/fresh/robot/cmd",
            (1 << 21) + 6,
            b"move 10 20",
        ),
    ];
    let mut cases = Vec::new();
    for (name, topic, counter, payload) in specs {
        let env = sealer(provider, suite, counter)
            .seal(topic, payload)
            .unwrap();
        let h = envelope::parse(&env).unwrap().header;
        assert_eq!(h.counter, counter);
        cases.push(Case {
            name: name.into(),
            topic: topic.into(),
            counter,
            timestamp_ms: h.timestamp_ms,
            payload: hex::encode(payload),
            envelope: hex::encode(&env),
        });
    }
    let env64 = hex::decode(&cases[1].envelope).unwrap();
    let parsed = envelope::parse(&env64).unwrap();
    let hlen = parsed.header_len();
    let mut tampered = env64.clone();
    tampered[hlen] ^= 0x01; // first body byte
    let mut bad_version = env64.clone();
    bad_version[0] = 0x20 | (bad_version[0] & 0x0f);
    let truncated = env64[..hlen + suite.trailer_len() - 1].to_vec();
    let mut extended = env64.clone();
    extended.push(0);
    let neg =
        |name: &str, topic: &str, env: &[u8], after: &[&str], now_ms, expect: &str| Negative {
            name: name.into(),
            topic: topic.into(),
            envelope: hex::encode(env),
            after: after.iter().map(|s| s.to_string()).collect(),
            now_ms,
            expect: expect.into(),
        };
    let stale_at = NOW_MS + MAX_AGE.as_millis() as u64 + 1;
    let env_ts = hex::decode(&cases[3].envelope).unwrap();
    let negative = vec![
        neg(
            "tampered",
            "v/sensors/1",
            &tampered,
            &[],
            None,
            "unauthenticated",
        ),
        neg(
            "wrong_topic",
            "v/sensors/2",
            &env64,
            &[],
            None,
            "unauthenticated",
        ),
        neg(
            "replayed",
            "v/sensors/1",
            &env64,
            &["64-byte-payload"],
            None,
            "replayed",
        ),
        neg(
            "truncated",
            "v/sensors/1",
            &truncated,
            &[],
            None,
            "malformed",
        ),
        neg(
            "extended",
            "v/sensors/1",
            &extended,
            &[],
            None,
            "unauthenticated",
        ),
        neg(
            "unknown_version",
            "v/sensors/1",
            &bad_version,
            &[],
            None,
            "malformed",
        ),
        neg(
            "stale",
            "v/fresh/robot/cmd",
            &env_ts,
            &[],
            Some(stale_at),
            "stale",
        ),
        neg(
            "missing_timestamp",
            "v/fresh/robot/cmd",
            &env64,
            &[],
            None,
            "missing_timestamp",
        ),
    ];
    let (key, iv) = match suite.symmetric() {
        Some(_) => {
            let (k, iv) = mqseal::internal::derive_sender_key(
                provider,
                &GroupSecret::from_bytes(SECRET),
                suite,
                EPOCH,
                &sender(),
            );
            (
                Some(hex::encode(k)),
                suite.encrypts().then(|| hex::encode(iv)),
            )
        }
        None => (None, None),
    };
    VectorFile {
        version: envelope::VERSION,
        suite: suite.name().into(),
        suite_id: suite.id(),
        group_secret: suite.symmetric().map(|_| hex::encode(SECRET)),
        signing_seed: suite.signed().then(|| hex::encode(SEED)),
        public_key: suite
            .signed()
            .then(|| hex::encode(SigningKey::from_seed(SEED).public_key(provider).0)),
        epoch: EPOCH,
        sender_id: hex::encode(SENDER),
        derived_key: key,
        derived_iv: iv,
        max_age_ms: MAX_AGE.as_millis() as u64,
        now_ms: NOW_MS,
        cases,
        negative,
    }
}

/// Serialises the two tests: with regeneration on, one writes what the other reads.
static FILES: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn path(suite: Suite) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../docs/vectors")
        .join(format!("{}.json", suite.name()))
}

#[test]
fn committed_vectors_match_every_backend() {
    let _guard = FILES.lock().unwrap_or_else(|e| e.into_inner());
    let regenerate = std::env::var_os("MQSEAL_REGENERATE_VECTORS").is_some();
    for suite in Suite::ALL {
        let texts: Vec<String> = common::providers()
            .into_iter()
            .map(|p| serde_json::to_string_pretty(&generate(p, suite)).unwrap() + "\n")
            .collect();
        for t in &texts[1..] {
            assert_eq!(t, &texts[0], "backends disagree on {suite}");
        }
        let p = path(suite);
        if regenerate {
            std::fs::write(&p, &texts[0]).unwrap();
        }
        let committed = std::fs::read_to_string(&p).unwrap_or_else(|e| {
            panic!(
                "{}: {e}; regenerate with MQSEAL_REGENERATE_VECTORS=1",
                p.display()
            )
        });
        assert_eq!(committed, texts[0], "{} is stale", p.display());
    }
}

#[test]
fn committed_vectors_open_and_negatives_are_rejected() {
    let _guard = FILES.lock().unwrap_or_else(|e| e.into_inner());
    for suite in Suite::ALL {
        let p = path(suite);
        let file: VectorFile = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
        assert_eq!(Suite::from_id(file.suite_id), Some(suite));
        for provider in common::providers() {
            let mut rx = opener(provider, &file, file.now_ms);
            for c in &file.cases {
                let env = hex::decode(&c.envelope).unwrap();
                let (payload, meta) = rx
                    .open(&c.topic, &env)
                    .unwrap_or_else(|e| panic!("{suite} {}: {e}", c.name));
                assert_eq!(hex::encode(payload), c.payload, "{suite} {}", c.name);
                let meta = meta.unwrap();
                assert_eq!(meta.counter, c.counter);
                assert_eq!(meta.timestamp_ms, c.timestamp_ms);
                assert_eq!(hex::encode(meta.sender.as_bytes()), file.sender_id);
            }
            for n in &file.negative {
                let mut rx = opener(provider, &file, n.now_ms.unwrap_or(file.now_ms));
                for name in &n.after {
                    let c = file.cases.iter().find(|c| &c.name == name).unwrap();
                    rx.open(&c.topic, &hex::decode(&c.envelope).unwrap())
                        .unwrap();
                }
                let err = rx
                    .open(&n.topic, &hex::decode(&n.envelope).unwrap())
                    .expect_err(&format!("{suite} negative {} accepted", n.name));
                let kind = err
                    .rejection()
                    .map(|r| r.kind())
                    .unwrap_or("not a rejection");
                assert_eq!(kind, n.expect, "{suite} negative {}: {err}", n.name);
            }
        }
    }
}
