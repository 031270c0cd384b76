// The test suite every crypto backend must pass. Included by `tests/backends.rs`
// once per backend, inside a module that defines `PROVIDER`.

use std::time::Duration;

use mqseal::envelope::{self, Suite};
use mqseal::layer::{ClientBuilder, Delivery, SecureLayer};
use mqseal::pubsub::{MemoryBus, PubSub, QoS};
use mqseal::*;
use proptest::prelude::*;

use crate::common::*;

/// A sender like `sealer`'s, with the id `id`.
fn sealer_with_id(id: &[u8], clock: &ManualClock) -> Endpoint {
    sealer_builder(PROVIDER)
        .sender_id(SenderId::new(id).unwrap())
        .counter_store(MemoryCounterStore::new())
        .clock(clock.clone())
        .build()
        .unwrap()
}

fn pair() -> (Endpoint, Endpoint, ManualClock) {
    let c = clock();
    (sealer(PROVIDER, &c), opener(PROVIDER, &c), c)
}

#[test]
fn round_trip_every_suite_and_api() {
    let (mut tx, mut rx, _) = pair();
    for (i, topic) in TOPICS.iter().enumerate() {
        let payload = format!("payload for {topic}").into_bytes();
        let env = tx.seal(topic, &payload).unwrap();
        let parsed = envelope::parse(&env).unwrap();
        if i < Suite::ALL.len() {
            assert_eq!(parsed.header.suite, Suite::ALL[i]);
        }
        if parsed.header.suite.encrypts() {
            assert!(!env.windows(payload.len()).any(|w| w == payload), "plaintext visible in {topic}");
        }
        let (out, meta) = rx.open(topic, &env).unwrap();
        assert_eq!(out, payload);
        let meta = meta.unwrap();
        assert_eq!(meta.sender, sender());
        assert_eq!(meta.epoch, 7);
        assert_eq!(meta.counter, 3 * i as u64);

        // The in-place paths give the same result.
        let mut buf = SealBuffer::new();
        buf.extend_from_slice(&payload);
        let mut env2 = tx.seal_in_place(topic, &mut buf).unwrap().to_vec();
        let opened = rx.open_in_place(topic, &mut env2).unwrap();
        assert_eq!(opened.payload, &payload[..]);
        assert_eq!(opened.envelope.unwrap().counter, meta.counter + 1);
        let _ = tx.seal(topic, b"keep counters apart").unwrap();
    }
}

#[test]
fn sealing_a_buffer_twice_is_refused() {
    let (mut tx, _, _) = pair();
    let mut buf = SealBuffer::new();
    buf.extend_from_slice(b"x");
    tx.seal_in_place("aes/t", &mut buf).unwrap();
    let err = tx.seal_in_place("aes/t", &mut buf).unwrap_err();
    assert!(matches!(err, Error::Config(ConfigError::AlreadySealed)));
}

#[test]
fn every_bit_flip_truncation_and_extension_is_rejected_and_changes_nothing() {
    let (mut tx, mut rx, _) = pair();
    for topic in TOPICS {
        let env = tx.seal(topic, b"twenty bytes payload").unwrap();
        for bit in 0..env.len() * 8 {
            let mut bad = env.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(rx.open(topic, &bad).is_err(), "{topic}: flip of bit {bit} accepted");
        }
        for len in 0..env.len() {
            assert!(rx.open(topic, &env[..len]).is_err(), "{topic}: truncation to {len} accepted");
        }
        for extra in [&[0u8][..], &[0, 0], &[0xff; 7]] {
            let mut long = env.clone();
            long.extend_from_slice(extra);
            assert_eq!(rejection(rx.open(topic, &long)), Rejection::Unauthenticated, "{topic}");
        }
        // None of the rejected variants touched the receiver's state.
        assert_eq!(rx.open(topic, &env).unwrap().0, b"twenty bytes payload");
    }
}

#[test]
fn moved_envelopes_are_rejected() {
    let (mut tx, mut rx, _) = pair();
    let env = tx.seal("aes/a", b"x").unwrap();
    assert_eq!(rejection(rx.open("aes/b", &env)), Rejection::Unauthenticated);
    assert_eq!(
        rejection(rx.open("mac/a", &env)),
        Rejection::PolicyMismatch {
            expected: Suite::HmacSha256,
            found: Suite::Aes256Gcm
        }
    );
    assert_eq!(rejection(rx.open("nowhere", &env)), Rejection::NoPolicy);
    assert_eq!(rx.open("aes/a", &env).unwrap().0, b"x");
}

#[test]
fn replay_and_reorder() {
    let c = clock();
    let mut tx = sealer(PROVIDER, &c);
    let mut rx = opener_builder(PROVIDER)
        .replay_window(64)
        .build()
        .unwrap();
    let envs: Vec<Vec<u8>> = (0..100).map(|i| tx.seal("mac/t", &[i]).unwrap()).collect();
    for i in [3usize, 1, 2, 5, 4, 0] {
        assert_eq!(rx.open("mac/t", &envs[i]).unwrap().0, [i as u8]);
    }
    for env in &envs[..6] {
        assert_eq!(rejection(rx.open("mac/t", env)), Rejection::Replayed);
    }
    rx.open("mac/t", &envs[99]).unwrap();
    // 99 - 36 = 63: inside a 64-bit window; 99 - 35 = 64: outside.
    rx.open("mac/t", &envs[36]).unwrap();
    assert_eq!(rejection(rx.open("mac/t", &envs[35])), Rejection::Replayed);
}

#[test]
fn replacing_the_keyring_does_not_reopen_replays() {
    let (mut tx, mut rx, _) = pair();
    let a = tx.seal("aes/t", b"a").unwrap();
    let s = tx.seal("sig/t", b"s").unwrap();
    rx.open("aes/t", &a).unwrap();
    rx.open("sig/t", &s).unwrap();
    // A keyring that forgets newer epochs is refused.
    let old = Keyring::new(6, GroupSecret::from_bytes([1; 32]));
    assert!(matches!(rx.set_keyring(old), Err(KeyError::Rollback { held: 7, .. })));
    rx.set_keyring(Keyring::new(8, GroupSecret::from_bytes([1; 32])))
        .unwrap();
    // Once a keyring is held, sign-only envelopes must carry one of its epochs too.
    assert_eq!(rejection(rx.open("sig/t", &s)), Rejection::UnknownEpoch(7));
    assert_eq!(rejection(rx.open("aes/t", &a)), Rejection::UnknownEpoch(7));
}

#[test]
fn tracked_senders_are_bounded() {
    let c = clock();
    let mut rx = opener_builder(PROVIDER)
        .max_senders(2)
        .build()
        .unwrap();
    for (i, id) in [&b"a"[..], b"b", b"c"].into_iter().enumerate() {
        let mut tx = sealer_with_id(id, &c);
        let r = rx.open("mac/t", &tx.seal("mac/t", b"x").unwrap());
        if i < 2 {
            r.unwrap();
        } else {
            assert_eq!(rejection(r), Rejection::TooManySenders);
        }
    }
    assert_eq!(rx.tracked_senders(), 2);
}

/// Senders whose ids are prefixes of each other or differ in one byte, for
/// every id length, interleaved: each keeps its own replay state (the
/// receiver's last-hit check compares the envelope's id bytes).
#[test]
fn senders_with_similar_ids_keep_separate_replay_state() {
    let c = clock();
    let mut rx = opener(PROVIDER, &c);
    let mut ids: Vec<Vec<u8>> = Vec::new();
    for n in 1..=16u8 {
        let id: Vec<u8> = (1..=n).collect();
        // One byte flipped: the middle, and the first and last where they
        // differ from it (the last lies in the tail word of same_bytes'
        // overlapping loads, the first in the head word).
        let flipped = |at: usize| {
            let mut v = id.clone();
            v[at] ^= 0x80;
            v
        };
        let (first, middle, last) = (0, usize::from(n / 2), usize::from(n - 1));
        ids.push(flipped(middle));
        for at in [first, last] {
            if at != middle {
                ids.push(flipped(at));
            }
        }
        ids.push(id);
    }
    let mut senders: Vec<Endpoint> = ids
        .iter()
        .map(|id| sealer_with_id(id, &c))
        .collect();
    for topic in ["aes/t", "mac/t"] {
        // Every sender's first two messages share their counters with the
        // others', so a state found for the wrong sender shows as a replay.
        let envs: Vec<[Vec<u8>; 2]> = senders
            .iter_mut()
            .map(|tx| [tx.seal(topic, b"0").unwrap(), tx.seal(topic, b"1").unwrap()])
            .collect();
        for (i, [first, second]) in envs.iter().enumerate() {
            let (_, meta) = rx.open(topic, second).unwrap();
            assert_eq!(meta.unwrap().sender.as_bytes(), ids[i]);
            assert_eq!(rx.open(topic, first).unwrap().0, b"0", "sender {i}");
        }
        for (i, [first, second]) in envs.iter().enumerate() {
            assert_eq!(rejection(rx.open(topic, first)), Rejection::Replayed, "sender {i}");
            assert_eq!(rejection(rx.open(topic, second)), Rejection::Replayed, "sender {i}");
        }
    }
    assert_eq!(rx.tracked_senders(), ids.len());
}

#[test]
fn freshness_rejects_stale_and_future_commands() {
    let (mut tx, mut rx, c) = pair();
    let env = tx.seal("cmd/robot/1", b"move").unwrap();
    assert!(envelope::parse(&env).unwrap().header.timestamp_ms == Some(NOW_MS));
    c.advance(Duration::from_secs(6));
    assert_eq!(rejection(rx.open("cmd/robot/1", &env)), Rejection::Stale);
    // Stale did not consume the counter: the same envelope, delivered in time, is accepted.
    c.set(NOW_MS + 4_000);
    rx.open("cmd/robot/1", &env).unwrap();

    // A sender whose clock runs 10 s ahead of the receiver's.
    let mut tx2 = sealer(PROVIDER, &ManualClock::new(NOW_MS + 10_000));
    let mut rx2 = opener(PROVIDER, &clock());
    let env = tx2.seal("cmd/robot/1", b"move").unwrap();
    assert_eq!(rejection(rx2.open("cmd/robot/1", &env)), Rejection::FromFuture);
}

#[test]
fn missing_timestamp_is_rejected_where_freshness_is_required() {
    let (mut tx, _, c) = pair();
    let env = tx.seal("aes-sig/t", b"no timestamp").unwrap();
    let strict = Policy::builder()
        .rule(
            "aes-sig/#",
            Protection::encrypt(Aead::Aes256Gcm).sign().freshness(Freshness::max_age(Duration::from_secs(5))),
        )
        .unwrap()
        .build();
    let mut rx = Endpoint::builder(strict)
        .provider(PROVIDER)
        .keyring(Keyring::new(7, GroupSecret::from_bytes(SECRET)))
        .trust(trust(PROVIDER))
        .clock(c)
        .build()
        .unwrap();
    assert_eq!(rejection(rx.open("aes-sig/t", &env)), Rejection::MissingTimestamp);
}

#[test]
fn unknown_epoch_and_sender() {
    let (mut tx, _, c) = pair();
    let env = tx.seal("aes/t", b"x").unwrap();
    let mut rx = Endpoint::builder(policy())
        .provider(PROVIDER)
        .keyring(Keyring::new(8, GroupSecret::from_bytes([1; 32])))
        .trust(trust(PROVIDER))
        .clock(c.clone())
        .build()
        .unwrap();
    assert_eq!(rejection(rx.open("aes/t", &env)), Rejection::UnknownEpoch(7));

    let mut other = TrustStore::new();
    other.insert(SenderId::new(b"else").unwrap(), SigningKey::from_seed([9; 32]).public_key(PROVIDER));
    let mut rx = Endpoint::builder(policy())
        .provider(PROVIDER)
        .keyring(Keyring::new(7, GroupSecret::from_bytes(SECRET)))
        .trust(other)
        .clock(c)
        .build()
        .unwrap();
    let env = tx.seal("sig/t", b"x").unwrap();
    assert_eq!(rejection(rx.open("sig/t", &env)), Rejection::UnknownSender);
}

#[test]
fn a_group_member_cannot_forge_another_members_signature() {
    let (_, mut rx, c) = pair();
    // Holds the group secret and claims to be dev1, but signs with its own key.
    let mut impostor = Endpoint::builder(policy())
        .provider(PROVIDER)
        .sender_id(sender())
        .keyring(Keyring::new(7, GroupSecret::from_bytes(SECRET)))
        .signing_key(SigningKey::from_seed([0x66; 32]))
        .counter_store(MemoryCounterStore::new())
        .clock(c)
        .build()
        .unwrap();
    for topic in ["sig/t", "aes-sig/t", "chacha-sig/t", "mac-sig/t", "cmd/robot/1"] {
        let env = impostor.seal(topic, b"forged").unwrap();
        assert_eq!(rejection(rx.open(topic, &env)), Rejection::Unauthenticated, "{topic}");
    }
    // Without a signature it can, which is why commands are signed.
    let env = impostor.seal("aes/t", b"group members can do this").unwrap();
    assert!(rx.open("aes/t", &env).is_ok());
}

#[test]
fn origin_is_checked_without_the_group_secret() {
    let (mut tx, _, _) = pair();
    let env = tx.seal("aes-sig/t", b"secret").unwrap();
    let pk = SigningKey::from_seed(SEED).public_key(PROVIDER);
    let me = sender();
    let h = protect::sign::check_origin(PROVIDER, &me, &pk, "aes-sig/t", &env).unwrap();
    assert_eq!(h.sender_id, b"dev1");
    let wrong = SigningKey::from_seed([1; 32]).public_key(PROVIDER);
    assert!(protect::sign::check_origin(PROVIDER, &me, &wrong, "aes-sig/t", &env).is_err());
    let other = SenderId::new(b"dev2").unwrap();
    assert_eq!(
        protect::sign::check_origin(PROVIDER, &other, &pk, "aes-sig/t", &env).unwrap_err(),
        Rejection::UnknownSender
    );
    let mut bad = env.clone();
    let n = bad.len();
    bad[n - 70] ^= 1;
    assert!(protect::sign::check_origin(PROVIDER, &me, &pk, "aes-sig/t", &bad).is_err());
}

#[test]
fn plaintext_only_where_explicit() {
    let (mut tx, mut rx, _) = pair();
    assert_eq!(tx.seal("public/x", b"hello").unwrap(), b"hello");
    assert_eq!(rx.open("public/x", b"anything").unwrap(), (b"anything".to_vec(), None));
    assert!(matches!(
        tx.seal("unlisted/x", b"hello"),
        Err(Error::Config(ConfigError::NoPolicy { .. }))
    ));
    assert!(matches!(
        tx.seal("aes/+", b"hello"),
        Err(Error::Config(ConfigError::InvalidTopic { .. }))
    ));
}

#[test]
fn size_limits() {
    let c = clock();
    let mut tx = sealer(PROVIDER, &c);
    let mut rx = opener_builder(PROVIDER)
        .max_payload(100)
        .build()
        .unwrap();
    let env = tx.seal("aes/t", &[0u8; 400]).unwrap();
    assert!(matches!(rejection(rx.open("aes/t", &env)), Rejection::TooLarge { .. }));
    let mut small = sealer_builder(PROVIDER)
        .counter_store(MemoryCounterStore::new())
        .max_payload(10)
        .build()
        .unwrap();
    assert!(matches!(
        small.seal("aes/t", &[0u8; 11]),
        Err(Error::Config(ConfigError::PayloadTooLarge { len: 11, max: 10 }))
    ));
}

#[test]
fn the_counter_never_wraps() {
    let mut store = MemoryCounterStore::new();
    let scope = counter::CounterScope {
        role: counter::Role::Send,
        epoch: 7,
        sender: sender(),
    };
    store.store(&scope, envelope::MAX_COUNTER).unwrap();
    let mut tx = sealer_builder(PROVIDER)
        .counter_store(store)
        .key_limits(KeyLimits {
            soft_messages: u64::MAX,
            hard_messages: u64::MAX,
            ..KeyLimits::default()
        })
        .build()
        .unwrap();
    let env = tx.seal("aes/t", b"last").unwrap();
    assert_eq!(envelope::parse(&env).unwrap().header.counter, envelope::MAX_COUNTER);
    assert!(matches!(
        tx.seal("aes/t", b"one too many"),
        Err(Error::Counter(CounterError::Exhausted { epoch: 7 }))
    ));
}

#[test]
fn persisted_replay_state_survives_a_receiver_crash() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rx-counters");
    let c = clock();
    let mut tx = sealer(PROVIDER, &c);
    let envs: Vec<Vec<u8>> = (0..10).map(|i| tx.seal("mac/t", &[i]).unwrap()).collect();
    let rx = |store| {
        opener_builder(PROVIDER)
            .counter_store(store)
            .persist_replay_state(4)
            .build()
            .unwrap()
    };
    {
        let mut r = rx(FileCounterStore::open(&path).unwrap());
        for e in &envs[..3] {
            r.open("mac/t", e).unwrap();
        }
        // Dropped without flush: a crash.
    }
    let mut r = rx(FileCounterStore::open(&path).unwrap());
    for e in &envs[..3] {
        assert_eq!(rejection(r.open("mac/t", e)), Rejection::Replayed);
    }
    // Accepting counter 0 marked 0..4 as seen: counter 3 is lost, 4 and later pass.
    assert_eq!(rejection(r.open("mac/t", &envs[3])), Rejection::Replayed);
    r.open("mac/t", &envs[4]).unwrap();
    r.flush().unwrap();
    drop(r);
    // After a clean shutdown the next counter is accepted at once.
    let mut r = rx(FileCounterStore::open(&path).unwrap());
    assert_eq!(rejection(r.open("mac/t", &envs[4])), Rejection::Replayed);
    r.open("mac/t", &envs[5]).unwrap();
}

#[test]
fn a_sender_restart_never_reuses_a_counter() {
    let store = MemoryCounterStore::new();
    let c = clock();
    let build = || {
        sealer_builder(PROVIDER)
            .counter_store(store.clone())
            .counter_block(16)
            .clock(c.clone())
            .build()
            .unwrap()
    };
    let mut rx = opener(PROVIDER, &c);
    let mut tx = build();
    for _ in 0..20 {
        rx.open("aes/t", &tx.seal("aes/t", b"a").unwrap()).unwrap();
    }
    drop(tx);
    let mut tx = build();
    let env = tx.seal("aes/t", b"b").unwrap();
    assert_eq!(envelope::parse(&env).unwrap().header.counter, 32);
    rx.open("aes/t", &env).unwrap();
}

#[test]
fn insecure_configurations_are_refused() {
    let err = Endpoint::builder(policy()).provider(PROVIDER).build().unwrap_err();
    assert!(matches!(err, Error::Config(ConfigError::NoKeyring)), "{err}");
    let err = Endpoint::builder(policy())
        .provider(PROVIDER)
        .keyring(Keyring::new(1, GroupSecret::from_bytes(SECRET)))
        .build()
        .unwrap_err();
    assert!(matches!(err, Error::Config(ConfigError::NoSignatureKeys)), "{err}");
    let err = Endpoint::builder(policy())
        .provider(PROVIDER)
        .sender_id(sender())
        .keyring(Keyring::new(1, GroupSecret::from_bytes(SECRET)))
        .signing_key(SigningKey::from_seed(SEED))
        .build()
        .unwrap_err();
    assert!(matches!(err, Error::Config(ConfigError::NoCounterStore)), "{err}");
    let err = Endpoint::builder(policy())
        .provider(PROVIDER)
        .keyring(Keyring::new(1, GroupSecret::from_bytes(SECRET)))
        .trust(trust(PROVIDER))
        .replay_window(100)
        .build()
        .unwrap_err();
    assert!(matches!(err, Error::Config(ConfigError::ReplayWindow(100))), "{err}");
    // A receive-only endpoint cannot send.
    let mut rx = opener(PROVIDER, &clock());
    assert!(matches!(rx.seal("aes/t", b"x"), Err(Error::Config(ConfigError::NoSenderId))));
}

#[test]
fn secure_layer_keeps_receiving_after_rejections() {
    let c = clock();
    let bus = MemoryBus::new();
    let mut device = ClientBuilder::new().layer(SecureLayer::new(sealer(PROVIDER, &c))).service(bus.client());
    let mut station = ClientBuilder::new().layer(SecureLayer::new(opener(PROVIDER, &c))).service(bus.client());
    let mut rogue = bus.client();
    let mut tap = bus.client();
    station.subscribe("#", QoS::AtLeastOnce).unwrap();
    tap.subscribe("#", QoS::AtLeastOnce).unwrap();

    device.publish("aes/t", b"one", QoS::AtLeastOnce, false).unwrap();
    let captured = tap.try_recv().unwrap().unwrap();
    rogue.publish("aes/t", b"garbage", QoS::AtLeastOnce, false).unwrap();
    rogue.publish("aes/t", &captured.payload, QoS::AtLeastOnce, false).unwrap();
    rogue.publish("unlisted", b"x", QoS::AtLeastOnce, false).unwrap();
    device.publish("aes-sig/t", b"two", QoS::AtLeastOnce, false).unwrap();

    let mut accepted = Vec::new();
    let mut rejected = Vec::new();
    while let Some(d) = station.recv().unwrap() {
        match d {
            Delivery::Accepted(m) => accepted.push(m.payload),
            Delivery::Rejected(r) => rejected.push(r.error.rejection().unwrap().kind()),
            Delivery::Duplicate { .. } => panic!("no redelivery on the memory bus"),
            Delivery::Rekeyed(_) => panic!("no rekey topic configured"),
        }
    }
    assert_eq!(accepted, vec![b"one".to_vec(), b"two".to_vec()]);
    assert_eq!(rejected, vec!["malformed", "replayed", "no_policy"]);
    let stats = station.stats();
    assert_eq!(stats.accepted, 2);
    assert_eq!(stats.rejected_total(), 3);
    assert_eq!(stats.rejected.get("replayed"), Some(&1));
}

fn suite_topic() -> impl Strategy<Value = (usize, String)> {
    (0usize..TOPICS.len(), "[a-z0-9]{1,12}(/[a-z0-9_]{0,8}){0,3}").prop_map(|(i, t)| {
        let prefix = TOPICS[i].split('/').next().unwrap();
        (i, format!("{prefix}/{t}"))
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    #[test]
    fn prop_round_trip(payload in prop::collection::vec(any::<u8>(), 0..=65_536), (_, topic) in suite_topic()) {
        let (mut tx, mut rx, _) = pair();
        let env = tx.seal(&topic, &payload).unwrap();
        let (out, meta) = rx.open(&topic, &env).unwrap();
        prop_assert_eq!(out, payload);
        prop_assert_eq!(meta.unwrap().sender, sender());
    }

    #[test]
    fn prop_any_change_is_rejected(
        payload in prop::collection::vec(any::<u8>(), 0..300),
        (_, topic) in suite_topic(),
        bit in any::<prop::sample::Index>(),
        cut in any::<prop::sample::Index>(),
        extra in prop::collection::vec(any::<u8>(), 1..20),
        other in "[a-z0-9]{1,8}",
        epoch in 0u8..128,
        sid in any::<[u8; 4]>(),
    ) {
        let (mut tx, mut rx, _) = pair();
        let env = tx.seal(&topic, &payload).unwrap();

        let mut flipped = env.clone();
        let b = bit.index(env.len() * 8);
        flipped[b / 8] ^= 1 << (b % 8);
        prop_assert!(rx.open(&topic, &flipped).is_err());

        prop_assert!(rx.open(&topic, &env[..cut.index(env.len())]).is_err());

        let mut longer = env.clone();
        longer.extend_from_slice(&extra);
        prop_assert!(rx.open(&topic, &longer).is_err());

        let moved = format!("{topic}/{other}");
        prop_assert!(rx.open(&moved, &env).is_err());

        // Header layout with epoch 7 and a 4-byte sender id: [vf, suite, epoch, 4, id0..id3, ...].
        if epoch != 7 {
            let mut e = env.clone();
            e[2] = epoch;
            prop_assert!(rx.open(&topic, &e).is_err());
        }
        if sid != *b"dev1" {
            let mut e = env.clone();
            e[4..8].copy_from_slice(&sid);
            prop_assert!(rx.open(&topic, &e).is_err());
        }

        // Nothing above changed the receiver: the original opens once, then is a replay.
        prop_assert_eq!(rx.open(&topic, &env).unwrap().0, payload);
        prop_assert_eq!(rejection(rx.open(&topic, &env)), Rejection::Replayed);
    }

    #[test]
    fn prop_reorder_within_window_accepted_exactly_once(
        order in prop::collection::vec(0usize..64, 1..200),
        late in 0usize..64,
    ) {
        let c = clock();
        let mut tx = sealer(PROVIDER, &c);
        let mut rx = opener_builder(PROVIDER)
            .replay_window(64)
            .build()
            .unwrap();
        let envs: Vec<Vec<u8>> = (0..200).map(|i| tx.seal("mac/t", &(i as u32).to_be_bytes()).unwrap()).collect();
        let mut seen = std::collections::HashSet::new();
        for &i in &order {
            let r = rx.open("mac/t", &envs[i]);
            if seen.insert(i) {
                prop_assert!(r.is_ok(), "first delivery of {} rejected", i);
            } else {
                prop_assert_eq!(rejection(r), Rejection::Replayed);
            }
        }
        // Move the window far ahead: everything 64 or more behind is rejected.
        rx.open("mac/t", &envs[199]).unwrap();
        let old = 199 - 64 - late;
        prop_assert_eq!(rejection(rx.open("mac/t", &envs[old])), Rejection::Replayed);
    }
}

/// `seal`, `seal_into` and `seal_in_place` write byte-identical envelopes
/// (AEAD and Ed25519 are deterministic) for every suite and every header
/// length up to MAX_HEADER_LEN: a 16-byte sender id, a 5-byte epoch, a
/// 7-byte counter and a 7-byte timestamp make a 38-byte header, where
/// `seal` too goes through protect's write-into-the-buffer branch.
#[test]
fn seal_paths_write_identical_envelopes_for_every_header_length() {
    let long: Vec<u8> = (0xa0..0xb0).collect();
    let cases: [(u32, &[u8], u64, u64); 4] = [
        (7, b"d", 0, NOW_MS),
        (7, b"dev1", 200, NOW_MS),
        (1 << 28, &long[..15], (1 << 42) + 3, 1 << 42),
        (u32::MAX, &long, envelope::MAX_COUNTER - 20, envelope::MAX_TIMESTAMP_MS),
    ];
    let limits = KeyLimits {
        soft_messages: u64::MAX,
        hard_messages: u64::MAX,
        // The clock runs up to 2^48 ms, past the default age limits.
        soft_age: Duration::from_secs(1 << 40),
        hard_age: Duration::from_secs(1 << 40),
    };
    for (epoch, sid, counter, now) in cases {
        let sid = SenderId::new(sid).unwrap();
        let c = ManualClock::new(now);
        let make = || {
            let mut store = MemoryCounterStore::new();
            let scope = counter::CounterScope {
                role: counter::Role::Send,
                epoch,
                sender: sid,
            };
            store.store(&scope, counter).unwrap();
            Endpoint::builder(policy())
                .provider(PROVIDER)
                .sender_id(sid)
                .keyring(Keyring::new(epoch, GroupSecret::from_bytes(SECRET)))
                .signing_key(SigningKey::from_seed(SEED))
                .counter_store(store)
                .key_limits(limits)
                .clock(c.clone())
                .build()
                .unwrap()
        };
        let mut trust = TrustStore::new();
        trust.insert(sid, SigningKey::from_seed(SEED).public_key(PROVIDER));
        let mut rx = Endpoint::builder(policy())
            .provider(PROVIDER)
            .keyring(Keyring::new(epoch, GroupSecret::from_bytes(SECRET)))
            .trust(trust)
            .clock(c.clone())
            .build()
            .unwrap();
        let (mut a, mut b, mut d) = (make(), make(), make());
        let mut out = Vec::new();
        let mut buf = SealBuffer::new();
        for topic in TOPICS {
            // Twice: the second message on a topic finds it cached.
            for payload in [&b"payload"[..], b"payload 2"] {
                let x = a.seal(topic, payload).unwrap();
                b.seal_into(topic, payload, &mut out).unwrap();
                buf.clear();
                buf.extend_from_slice(payload);
                let y = d.seal_in_place(topic, &mut buf).unwrap();
                assert_eq!(x, out, "seal_into, {topic}, epoch {epoch}");
                assert_eq!(x, y, "seal_in_place, {topic}, epoch {epoch}");
                let env = envelope::parse(&x).unwrap();
                let h = env.header;
                assert_eq!((h.epoch, h.sender_id), (epoch, sid.as_bytes()));
                let fresh = topic.starts_with("cmd/");
                assert_eq!(h.timestamp_ms, fresh.then_some(now), "{topic}");
                if fresh && epoch == u32::MAX {
                    assert_eq!(env.header_len(), envelope::MAX_HEADER_LEN);
                }
                assert_eq!(rx.open(topic, &x).unwrap().0, payload, "{topic}");
            }
        }
    }
}
