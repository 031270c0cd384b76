//! Keys and rotation: staged rotation with a grace period, the ratchet, usage
//! limits, rekey on member removal, key files, and the keyring state machine
//! against a model.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use mqseal::pubsub::{MemoryBus, PubSub, QoS};
use mqseal::rekey::RekeyBuilder;
use mqseal::*;
use proptest::prelude::*;

const T0: u64 = 1_795_000_000_000;
const GRACE: Duration = Duration::from_secs(60);

fn provider() -> &'static crypto::CryptoProvider {
    crypto::default_provider()
}

fn policy() -> Policy {
    Policy::builder()
        .rule("fleet/#", Protection::encrypt(Aead::Aes256Gcm))
        .unwrap()
        .build()
}

fn device<C: Clock + Clone + 'static>(id: &str, keyring: Keyring, clock: &C) -> Endpoint {
    Endpoint::builder(policy())
        .sender_id(SenderId::try_from(id).unwrap())
        .keyring(keyring)
        .counter_store(MemoryCounterStore::new())
        .clock(clock.clone())
        .build()
        .unwrap()
}

fn secret(b: u8) -> GroupSecret {
    GroupSecret::from_bytes([b; 32])
}

fn rejection<T: std::fmt::Debug>(r: Result<T, Error>) -> Rejection {
    match r {
        Err(Error::Rejected(r)) => r,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[test]
fn staged_rotation_accepts_in_flight_messages_until_the_grace_period_ends() {
    let clock = ManualClock::new(T0);
    let mut tx = device("tx", Keyring::new_at(1, secret(1), T0), &clock);
    let mut rx = device("rx", Keyring::new_at(1, secret(1), T0), &clock);

    // In flight under epoch 1 when the rotation happens.
    let in_flight: Vec<Vec<u8>> = (0..3).map(|i| tx.seal("fleet/a", &[i]).unwrap()).collect();

    // Roll out epoch 2 everywhere (accept-only), then promote it.
    for ep in [&mut tx, &mut rx] {
        ep.with_keyring(|k| k.add_at(2, secret(2), T0)).unwrap();
    }
    let early = tx.seal("fleet/a", b"still epoch 1").unwrap();
    assert_eq!(envelope::parse(&early).unwrap().header.epoch, 1);
    for ep in [&mut tx, &mut rx] {
        ep.with_keyring(|k| k.promote_with_grace(2, T0, GRACE))
            .unwrap();
    }
    let new = tx.seal("fleet/a", b"epoch 2").unwrap();
    assert_eq!(envelope::parse(&new).unwrap().header.epoch, 2);
    assert_eq!(rx.open("fleet/a", &new).unwrap().0, b"epoch 2");

    // Within the grace period the old epoch's messages are accepted.
    clock.set(T0 + 30_000);
    rx.open("fleet/a", &in_flight[0]).unwrap();
    rx.open("fleet/a", &early).unwrap();
    // Once it is over, the old epoch is retired and its messages rejected.
    clock.set(T0 + 60_000);
    assert_eq!(
        rejection(rx.open("fleet/a", &in_flight[1])),
        Rejection::RetiredEpoch(1)
    );
    assert_eq!(rx.keyring().state(1), Some(EpochState::Retired));
    assert!(
        rx.keyring().get(1).is_none(),
        "the retired secret is erased"
    );
    // The new epoch goes on.
    rx.open("fleet/a", &tx.seal("fleet/a", b"x").unwrap())
        .unwrap();
}

#[test]
fn ratchet_is_deterministic_and_devices_advance_on_their_own() {
    let clock = ManualClock::new(T0);
    let mut a = device("a", Keyring::new_at(5, secret(9), T0), &clock);
    let mut b = device("b", Keyring::new_at(5, secret(9), T0), &clock);
    let old = a.seal("fleet/x", b"epoch 5").unwrap();
    // Each device ratchets on its own schedule, with no message between them.
    let ea = a
        .with_keyring(|k| k.ratchet(provider(), T0, GRACE))
        .unwrap();
    let eb = b
        .with_keyring(|k| k.ratchet(provider(), T0, GRACE))
        .unwrap();
    assert_eq!((ea, eb), (6, 6));
    assert_eq!(a.keyring().get(6), b.keyring().get(6));
    assert_eq!(
        a.keyring().get(6),
        Some(&keys::ratchet_secret(provider(), &secret(9), 6))
    );
    let m = a.seal("fleet/x", b"epoch 6").unwrap();
    assert_eq!(b.open("fleet/x", &m).unwrap().0, b"epoch 6");
    b.open("fleet/x", &old).unwrap();
    // Forward secrecy: the new secret does not give the old one back, and
    // once the old one is retired its traffic cannot be opened.
    clock.set(T0 + GRACE.as_millis() as u64);
    let old2 = {
        let mut c = device(
            "c",
            Keyring::new_at(5, secret(9), T0),
            &ManualClock::new(T0),
        );
        c.seal("fleet/x", b"late epoch 5").unwrap()
    };
    assert_eq!(
        rejection(b.open("fleet/x", &old2)),
        Rejection::RetiredEpoch(5)
    );
    let mut only_new = device(
        "d",
        Keyring::new_at(6, b.keyring().get(6).unwrap().clone(), T0),
        &clock,
    );
    assert_eq!(
        rejection(only_new.open("fleet/x", &old2)),
        Rejection::UnknownEpoch(5)
    );
}

#[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
struct RatchetVectors {
    description: String,
    label: String,
    start_epoch: u32,
    start_secret: String,
    chain: Vec<(u32, String)>,
}

#[test]
fn ratchet_vectors_match() {
    let start = *b"mqseal ratchet vector: epoch 1!!";
    let mut s = GroupSecret::from_bytes(start);
    let mut chain = Vec::new();
    for e in 2..=5u32 {
        s = keys::ratchet_secret(provider(), &s, e);
        chain.push((e, hex::encode(s.expose_secret())));
    }
    // Every backend agrees.
    for p in common::providers() {
        let mut r = GroupSecret::from_bytes(start);
        for (e, hexed) in &chain {
            r = keys::ratchet_secret(p, &r, *e);
            assert_eq!(&hex::encode(r.expose_secret()), hexed, "{}", p.name);
        }
    }
    let v = RatchetVectors {
        description: "secret(e) = HKDF-SHA256(salt = \"mqseal/v1 ratchet\", IKM = secret(e-1), info = u32be(e), L = 32)".into(),
        label: "mqseal/v1 ratchet".into(),
        start_epoch: 1,
        start_secret: hex::encode(start),
        chain,
    };
    let text = serde_json::to_string_pretty(&v).unwrap() + "\n";
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/vectors/ratchet.json");
    if std::env::var_os("MQSEAL_REGENERATE_VECTORS").is_some() {
        std::fs::write(&path, &text).unwrap();
    }
    let committed = std::fs::read_to_string(&path)
        .expect("docs/vectors/ratchet.json; regenerate with MQSEAL_REGENERATE_VECTORS=1");
    assert_eq!(committed, text);
}

#[test]
fn usage_limits_ask_for_rotation_then_refuse_to_seal() {
    let clock = ManualClock::new(T0);
    let limits = KeyLimits {
        soft_messages: 3,
        hard_messages: 5,
        soft_age: Duration::from_secs(100),
        hard_age: Duration::from_secs(200),
    };
    let build = |clock: &ManualClock| {
        Endpoint::builder(policy())
            .sender_id(SenderId::new(b"s").unwrap())
            .keyring(Keyring::new_at(1, secret(1), T0))
            .counter_store(MemoryCounterStore::new())
            .clock(clock.clone())
            .key_limits(limits)
            .build()
            .unwrap()
    };
    let mut ep = build(&clock);
    for _ in 0..3 {
        ep.seal("fleet/a", b"x").unwrap();
        assert!(ep.rotation_due().is_none());
    }
    ep.seal("fleet/a", b"x").unwrap();
    assert_eq!(
        ep.rotation_due(),
        Some(RotationDue {
            epoch: 1,
            limit: UsageLimit::Messages(3)
        })
    );
    ep.seal("fleet/a", b"x").unwrap();
    let err = ep.seal("fleet/a", b"x").unwrap_err();
    assert!(
        matches!(
            err,
            Error::Key(KeyError::UsageLimit {
                epoch: 1,
                limit: UsageLimit::Messages(5)
            })
        ),
        "{err}"
    );
    // Rotating clears the request and sealing resumes.
    ep.with_keyring(|k| {
        k.add_at(2, secret(2), T0)?;
        k.promote(2)
    })
    .unwrap();
    assert!(ep.rotation_due().is_none());
    ep.seal("fleet/a", b"x").unwrap();

    // Age.
    let mut ep = build(&clock);
    clock.set(T0 + 150_000);
    ep.seal("fleet/a", b"x").unwrap();
    assert_eq!(ep.rotation_due().unwrap().limit, UsageLimit::AgeMs(100_000));
    clock.set(T0 + 200_000);
    assert!(matches!(
        ep.seal("fleet/a", b"x"),
        Err(Error::Key(KeyError::UsageLimit {
            limit: UsageLimit::AgeMs(200_000),
            ..
        }))
    ));
}

struct Fleet {
    admin: Identity,
    members: BTreeMap<&'static str, Identity>,
}

impl Fleet {
    fn new() -> Fleet {
        let id = |s: &str| {
            Identity::generate(SenderId::try_from(s).unwrap(), provider().random).unwrap()
        };
        Fleet {
            admin: id("admin"),
            members: ["robot", "sensor", "offline", "stolen"]
                .into_iter()
                .map(|n| (n, id(n)))
                .collect(),
        }
    }

    fn trust(&self) -> TrustStore {
        let mut t = TrustStore::new();
        t.set_admin(self.admin.sender_id, self.admin.public(provider()).signing);
        t
    }

    fn endpoint(&self, name: &str, clock: &ManualClock) -> Endpoint {
        Endpoint::builder(policy())
            .identity(self.members[name].clone())
            .keyring(Keyring::new_at(1, secret(1), T0))
            .trust(self.trust())
            .counter_store(MemoryCounterStore::new())
            .clock(clock.clone())
            .build()
            .unwrap()
    }

    fn rekey(&self, epoch: u32, s: &GroupSecret, recipients: &[&str], removed: &[&str]) -> Vec<u8> {
        let mut b = RekeyBuilder::new(epoch, s).grace(GRACE);
        for r in recipients {
            b = b.recipient(self.members[r].public(provider()));
        }
        for r in removed {
            b = b.remove(SenderId::try_from(*r).unwrap());
        }
        b.sign(provider(), &self.admin, T0).unwrap()
    }
}

#[test]
fn rekey_on_removal_locks_out_the_removed_member_and_the_offline_one_catches_up() {
    let fleet = Fleet::new();
    let clock = ManualClock::new(T0);
    let bus = MemoryBus::new();
    let mut robot = fleet.endpoint("robot", &clock);
    let mut sensor = fleet.endpoint("sensor", &clock);
    let mut stolen = fleet.endpoint("stolen", &clock);

    // The station publishes one rekey message, retained, on the control topic.
    let new_secret = GroupSecret::generate(provider().random).unwrap();
    let msg = fleet.rekey(2, &new_secret, &["robot", "sensor", "offline"], &["stolen"]);
    bus.client()
        .publish("mqseal/rekey", &msg, QoS::AtLeastOnce, true)
        .unwrap();

    // The online members apply it.
    for ep in [&mut robot, &mut sensor] {
        let applied = ep.apply_rekey(&msg).unwrap();
        assert_eq!(applied.epoch, 2);
        assert_eq!(applied.removed, vec![SenderId::new(b"stolen").unwrap()]);
        assert_eq!(ep.keyring().active().unwrap().0, 2);
    }
    // The removed member holds every old key but is not a recipient.
    assert_eq!(
        rejection(stolen.apply_rekey(&msg)),
        Rejection::NotARecipient
    );
    let m = robot.seal("fleet/cmd", b"after the rekey").unwrap();
    assert_eq!(
        rejection(stolen.open("fleet/cmd", &m)),
        Rejection::UnknownEpoch(2)
    );
    assert_eq!(sensor.open("fleet/cmd", &m).unwrap().0, b"after the rekey");
    // What the removed member still sends under the old epoch is refused: it is revoked.
    let from_stolen = stolen.seal("fleet/cmd", b"forged").unwrap();
    assert_eq!(
        rejection(robot.open("fleet/cmd", &from_stolen)),
        Rejection::UnknownSender
    );

    // The offline member connects later and finds the retained message.
    let mut offline = fleet.endpoint("offline", &clock);
    let mut client = bus.client();
    client.subscribe("mqseal/rekey", QoS::AtLeastOnce).unwrap();
    let retained = client.try_recv().unwrap().expect("retained rekey");
    assert!(retained.retain);
    offline.apply_rekey(&retained.payload).unwrap();
    assert_eq!(offline.open("fleet/cmd", &m).unwrap().0, b"after the rekey");
}

#[test]
fn forged_replayed_and_tampered_rekeys_are_rejected_and_change_nothing() {
    let fleet = Fleet::new();
    let clock = ManualClock::new(T0);
    let mut robot = fleet.endpoint("robot", &clock);
    let s2 = GroupSecret::generate(provider().random).unwrap();
    let good = fleet.rekey(2, &s2, &["robot", "sensor"], &["stolen"]);

    let snapshot = |ep: &Endpoint| {
        (
            ep.keyring().all_epochs().collect::<Vec<_>>(),
            ep.keyring().get(1).cloned(),
        )
    };
    let before = snapshot(&robot);

    // Signed by someone who is not the admin.
    let impostor = Identity::generate(SenderId::new(b"admin").unwrap(), provider().random).unwrap();
    let forged = RekeyBuilder::new(2, &s2)
        .recipient(fleet.members["robot"].public(provider()))
        .sign(provider(), &impostor, T0)
        .unwrap();
    assert_eq!(
        rejection(robot.apply_rekey(&forged)),
        Rejection::Unauthenticated
    );

    // Any flipped bit: in the header, a wrapping or the signature.
    for i in (0..good.len()).step_by(7) {
        let mut bad = good.clone();
        bad[i] ^= 0x10;
        assert!(
            robot.apply_rekey(&bad).is_err(),
            "flip at byte {i} accepted"
        );
    }
    // Truncated or extended.
    assert!(robot.apply_rekey(&good[..good.len() - 1]).is_err());
    let mut long = good.clone();
    long.push(0);
    assert!(robot.apply_rekey(&long).is_err());
    assert_eq!(
        snapshot(&robot),
        before,
        "a rejected rekey changed the keyring"
    );

    // The real one is applied; replaying it, or an older one, is refused.
    robot.apply_rekey(&good).unwrap();
    let after = snapshot(&robot);
    assert_eq!(rejection(robot.apply_rekey(&good)), Rejection::Replayed);
    let older = fleet.rekey(
        2,
        &GroupSecret::generate(provider().random).unwrap(),
        &["robot"],
        &[],
    );
    assert_eq!(rejection(robot.apply_rekey(&older)), Rejection::Replayed);
    assert_eq!(snapshot(&robot), after);
}

#[test]
fn key_files_round_trip_are_private_and_corruption_is_a_clear_error() {
    let p = provider();
    let dir = tempfile::tempdir().unwrap();
    let fleet = Fleet::new();
    let id = &fleet.members["robot"];
    let ring_path = dir.path().join("fleet.keyring");
    let id_path = dir.path().join("robot.identity");
    let trust_path = dir.path().join("trust");

    let mut ring = Keyring::new_at(1, secret(1), T0);
    ring.add_at(2, secret(2), T0 + 1).unwrap();
    keyfile::save_keyring(p, &ring_path, &ring).unwrap();
    keyfile::save_identity(p, &id_path, id).unwrap();
    let mut trust = fleet.trust();
    trust.insert_identity(&fleet.members["sensor"].public(p));
    keyfile::save_trust(p, &trust_path, &trust).unwrap();

    let r = keyfile::load_keyring(p, &ring_path).unwrap();
    assert_eq!(
        r.all_epochs().collect::<Vec<_>>(),
        ring.all_epochs().collect::<Vec<_>>()
    );
    assert_eq!(r.get(2), ring.get(2));
    let i = keyfile::load_identity(p, &id_path).unwrap();
    assert_eq!(i.public(p), id.public(p));
    let t = keyfile::load_trust(p, &trust_path).unwrap();
    assert_eq!(t.admin(), trust.admin());
    let sensor = SenderId::new(b"sensor").unwrap();
    assert_eq!(t.agreement_key(&sensor), trust.agreement_key(&sensor));

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for path in [&ring_path, &id_path, &trust_path] {
            let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", path.display());
        }
        std::fs::set_permissions(&ring_path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = keyfile::load_keyring(p, &ring_path)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("readable by others") && err.contains("chmod 600"),
            "{err}"
        );
        std::fs::set_permissions(&ring_path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }

    // A keyring file is not an identity file.
    let err = keyfile::load_identity(p, &ring_path)
        .unwrap_err()
        .to_string();
    assert!(err.contains("expected: identity"), "{err}");

    let bytes = std::fs::read(&ring_path).unwrap();
    let bad_path = dir.path().join("bad.keyring");
    let write_bad = |b: &[u8]| {
        std::fs::write(&bad_path, b).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&bad_path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        keyfile::load_keyring(p, &bad_path).map(|_| ())
    };
    for len in [0, 5, 8, 39, bytes.len() - 1] {
        let err = write_bad(&bytes[..len]).unwrap_err().to_string();
        assert!(err.contains("bad.keyring"), "{err}");
    }
    for i in 0..bytes.len() {
        let mut b = bytes.clone();
        b[i] ^= 0x01;
        assert!(write_bad(&b).is_err(), "flip at {i} accepted");
    }
}

/// The model: epoch -> state, plus which is active.
#[derive(Debug, Clone, Default)]
struct Model {
    epochs: BTreeMap<u32, EpochState>,
}

#[derive(Debug, Clone)]
enum Op {
    Add(u32),
    Promote(u32),
    Retire(u32),
    Ratchet,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u32..8).prop_map(Op::Add),
        (0u32..8).prop_map(Op::Promote),
        (0u32..8).prop_map(Op::Retire),
        Just(Op::Ratchet),
    ]
}

proptest! {
    #[test]
    fn keyring_matches_its_model(ops in prop::collection::vec(op(), 0..40)) {
        let mut k = Keyring::new_at(0, secret(0), T0);
        let mut m = Model::default();
        m.epochs.insert(0, EpochState::Active);
        for op in ops {
            match op {
                Op::Add(e) => {
                    let ok = k.add_at(e, secret(e as u8 + 1), T0).is_ok();
                    prop_assert_eq!(ok, !m.epochs.contains_key(&e));
                    if ok { m.epochs.insert(e, EpochState::AcceptOnly); }
                }
                Op::Promote(e) => {
                    let r = k.promote(e);
                    match m.epochs.get(&e).copied() {
                        None | Some(EpochState::Retired) => prop_assert!(r.is_err()),
                        Some(_) => {
                            prop_assert!(r.is_ok());
                            for s in m.epochs.values_mut() {
                                if *s == EpochState::Active { *s = EpochState::AcceptOnly; }
                            }
                            m.epochs.insert(e, EpochState::Active);
                        }
                    }
                }
                Op::Retire(e) => {
                    let r = k.retire(e);
                    match m.epochs.get(&e).copied() {
                        None | Some(EpochState::Active) => prop_assert!(r.is_err()),
                        Some(_) => { prop_assert!(r.is_ok()); m.epochs.insert(e, EpochState::Retired); }
                    }
                }
                Op::Ratchet => {
                    // Only from an active epoch that is also the highest ever held.
                    let active = m.epochs.iter().find(|(_, s)| **s == EpochState::Active).map(|(e, _)| *e);
                    let highest = m.epochs.keys().next_back().copied();
                    let r = k.ratchet(provider(), T0, GRACE);
                    prop_assert_eq!(r.is_ok(), active.is_some() && active == highest);
                    if let Ok(e) = r {
                        prop_assert_eq!(e, active.unwrap() + 1);
                        for s in m.epochs.values_mut() {
                            if *s == EpochState::Active { *s = EpochState::AcceptOnly; }
                        }
                        m.epochs.insert(e, EpochState::Active);
                    }
                }
            }
            // The keyring agrees with the model after every step.
            prop_assert_eq!(k.all_epochs().collect::<BTreeMap<_, _>>(), m.epochs.clone());
            prop_assert!(m.epochs.values().filter(|s| **s == EpochState::Active).count() <= 1);
            for (e, s) in &m.epochs {
                prop_assert_eq!(k.get(*e).is_some(), *s != EpochState::Retired);
            }
            prop_assert_eq!(k.active().map(|a| a.0), m.epochs.iter().find(|(_, s)| **s == EpochState::Active).map(|(e, _)| *e));
        }
    }

    #[test]
    fn damaged_key_files_never_load(cut in any::<prop::sample::Index>(), flip in any::<prop::sample::Index>(), byte in 1u8..=255) {
        let p = provider();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        keyfile::save_keyring(p, &path, &Keyring::new_at(3, secret(3), T0)).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let mut b = bytes.clone();
        let i = flip.index(b.len());
        b[i] ^= byte;
        std::fs::write(&path, &b).unwrap();
        prop_assert!(keyfile::load_keyring(p, &path).is_err());
        std::fs::write(&path, &bytes[..cut.index(bytes.len())]).unwrap();
        prop_assert!(keyfile::load_keyring(p, &path).is_err());
    }
}

#[test]
fn a_rekey_retires_staged_epochs_too_and_revocations_survive_a_restart() {
    let fleet = Fleet::new();
    let clock = ManualClock::new(T0);
    let mut robot = fleet.endpoint("robot", &clock);
    // Epoch 2 was staged (accept-only) before the stolen device was removed: it knows it.
    robot.with_keyring(|k| k.add_at(2, secret(2), T0)).unwrap();
    let mut stolen = Endpoint::builder(policy())
        .sender_id(SenderId::new(b"stolen").unwrap())
        .keyring({
            let mut k = Keyring::new_at(2, secret(2), T0);
            k.add_at(1, secret(1), T0).unwrap();
            k
        })
        .counter_store(MemoryCounterStore::new())
        .clock(clock.clone())
        .build()
        .unwrap();
    let msg = fleet.rekey(
        3,
        &GroupSecret::generate(provider().random).unwrap(),
        &["robot"],
        &["stolen"],
    );
    robot.apply_rekey(&msg).unwrap();
    // Under another sender id, the stolen secret of epoch 2 works only until the grace ends.
    let mut spoof = Endpoint::builder(policy())
        .sender_id(SenderId::new(b"sensor").unwrap())
        .keyring(Keyring::new_at(2, secret(2), T0))
        .counter_store(MemoryCounterStore::new())
        .clock(clock.clone())
        .build()
        .unwrap();
    assert!(
        robot
            .open("fleet/x", &spoof.seal("fleet/x", b"in grace").unwrap())
            .is_ok()
    );
    clock.set(T0 + GRACE.as_millis() as u64);
    assert_eq!(
        rejection(robot.open("fleet/x", &spoof.seal("fleet/x", b"after").unwrap())),
        Rejection::RetiredEpoch(2)
    );
    assert_eq!(robot.keyring().state(1), Some(EpochState::Retired));
    assert_eq!(robot.keyring().state(2), Some(EpochState::Retired));
    // Replay windows of retired epochs are dropped.
    assert_eq!(robot.tracked_senders(), 0);

    // The revocation is in the trust store, which survives a restart.
    assert!(
        robot
            .trust_store()
            .is_revoked(&SenderId::new(b"stolen").unwrap())
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trust");
    keyfile::save_trust(provider(), &path, robot.trust_store()).unwrap();
    let trust = keyfile::load_trust(provider(), &path).unwrap();
    let mut restarted = Endpoint::builder(policy())
        .keyring(Keyring::new_at(2, secret(2), T0))
        .trust(trust)
        .clock(clock.clone())
        .build()
        .unwrap();
    let from_stolen = stolen.seal("fleet/x", b"still here").unwrap();
    assert_eq!(
        rejection(restarted.open("fleet/x", &from_stolen)),
        Rejection::UnknownSender
    );
}

#[test]
fn only_redeliveries_of_accepted_counters_count_as_duplicates() {
    use mqseal::layer::{Delivery, Stats, open_message};
    use mqseal::pubsub::Message;
    let clock = ManualClock::new(T0);
    let mut tx = device("tx", Keyring::new_at(1, secret(1), T0), &clock);
    let mut rx = Endpoint::builder(policy())
        .keyring(Keyring::new_at(1, secret(1), T0))
        .replay_window(64)
        .clock(clock.clone())
        .build()
        .unwrap();
    let old = tx.seal("fleet/a", b"old").unwrap();
    let first = tx.seal("fleet/a", b"first").unwrap();
    let msg = |payload: &[u8], dup| Message {
        topic: "fleet/a".into(),
        payload: payload.to_vec(),
        qos: QoS::AtLeastOnce,
        retain: false,
        dup,
    };
    let mut stats = Stats::default();
    assert!(matches!(
        open_message(&mut rx, &mut stats, msg(&first, false)),
        Delivery::Accepted(_)
    ));
    assert!(matches!(
        open_message(&mut rx, &mut stats, msg(&first, true)),
        Delivery::Duplicate { .. }
    ));
    // Push the window past `old`, never accepted: with DUP set it is still a replay.
    for _ in 0..100 {
        rx.open("fleet/a", &tx.seal("fleet/a", b"x").unwrap())
            .unwrap();
    }
    assert!(matches!(
        open_message(&mut rx, &mut stats, msg(&old, true)),
        Delivery::Rejected(_)
    ));
    assert_eq!(
        (stats.duplicates, stats.rejected.get("replayed")),
        (1, Some(&1))
    );
}

#[test]
fn a_persisted_receive_mark_never_exceeds_the_counter_range() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rx.counters");
    let clock = ManualClock::new(T0);
    let mut store = MemoryCounterStore::new();
    let scope = counter::CounterScope {
        role: counter::Role::Send,
        epoch: 1,
        sender: SenderId::new(b"tx").unwrap(),
    };
    store.store(&scope, envelope::MAX_COUNTER).unwrap();
    let mut tx = Endpoint::builder(policy())
        .sender_id(SenderId::new(b"tx").unwrap())
        .keyring(Keyring::new_at(1, secret(1), T0))
        .counter_store(store)
        .clock(clock.clone())
        .key_limits(KeyLimits {
            soft_messages: u64::MAX,
            hard_messages: u64::MAX,
            ..KeyLimits::default()
        })
        .build()
        .unwrap();
    let env = tx.seal("fleet/a", b"last counter").unwrap();
    {
        let mut rx = Endpoint::builder(policy())
            .keyring(Keyring::new_at(1, secret(1), T0))
            .counter_store(FileCounterStore::open(&path).unwrap())
            .persist_replay_state(1000)
            .clock(clock.clone())
            .build()
            .unwrap();
        rx.open("fleet/a", &env).unwrap();
    }
    // The file still loads after a restart.
    FileCounterStore::open(&path).unwrap();
}

/// `with_keyring` cannot replace a keyring (its closure gets a
/// `KeyringEdit`: see the `compile_fail` example there); `set_keyring` can,
/// and a new secret under an epoch number already used must not leave keys
/// derived from the old one in the caches.
#[test]
fn a_keyring_replaced_with_another_secret_under_the_same_epoch_drops_the_cached_keys() {
    let clock = ManualClock::new(T0);
    let mut tx = device("tx", Keyring::new_at(1, secret(1), T0), &clock);
    let mut old_rx = device("rx", Keyring::new_at(1, secret(1), T0), &clock);
    let mut new_rx = device("rx", Keyring::new_at(1, secret(9), T0), &clock);
    // Seal and open once, so that both sides cache keys derived from epoch 1.
    let env = tx.seal("fleet/a", b"before").unwrap();
    assert_eq!(old_rx.open("fleet/a", &env).unwrap().0, b"before");

    // Replace the keyring wholesale: epoch 1 now holds another secret (not
    // a rollback: the highest epoch stays 1).
    tx.set_keyring(Keyring::new_at(1, secret(9), T0)).unwrap();
    old_rx
        .set_keyring(Keyring::new_at(1, secret(9), T0))
        .unwrap();
    let env = tx.seal("fleet/a", b"after").unwrap();
    assert_eq!(new_rx.open("fleet/a", &env).unwrap().0, b"after");
    assert_eq!(old_rx.open("fleet/a", &env).unwrap().0, b"after");
    // And a message under the old secret no longer opens.
    let mut stale = device("tx2", Keyring::new_at(1, secret(1), T0), &clock);
    let env = stale.seal("fleet/a", b"old").unwrap();
    assert_eq!(
        rejection(old_rx.open("fleet/a", &env)),
        Rejection::Unauthenticated
    );
}

#[test]
fn promoting_with_grace_retires_the_epochs_it_skips_and_nothing_else() {
    let g = |d: Duration| u64::try_from(d.as_millis()).unwrap();
    let long = GRACE * 10;
    let mut k = Keyring::new_at(1, secret(1), T0);
    for e in 2..=5 {
        k.add_at(e, secret(e as u8), T0).unwrap();
    }
    // 2 goes live with a long grace: 1 is scheduled, 3 to 5 stay staged.
    assert_eq!(k.promote_with_grace(2, T0, long).unwrap(), Some(1));
    assert_eq!(k.retire_at_ms(1), Some(T0 + g(long)));
    assert_eq!(k.retire_at_ms(3), None);
    // 4 goes live, skipping 3: 2 and 3 retire after the short grace; 1
    // keeps the long one it was given; 5, above, stays staged.
    assert_eq!(k.skipped_by(4).collect::<Vec<_>>(), [3]);
    assert_eq!(k.skipped_by(2).count() + k.skipped_by(1).count(), 0);
    assert_eq!(k.promote_with_grace(4, T0 + 1, GRACE).unwrap(), Some(2));
    let at = T0 + 1 + g(GRACE);
    assert_eq!(k.retire_at_ms(1), Some(T0 + g(long)));
    for e in [2, 3] {
        assert_eq!(k.retire_at_ms(e), Some(at), "epoch {e}");
        assert_eq!(k.state(e), Some(EpochState::AcceptOnly), "epoch {e}");
    }
    assert_eq!(k.retire_at_ms(5), None);
    assert_eq!(k.retire_due(at - 1), Vec::<u32>::new());
    assert_eq!(k.retire_due(at), vec![2, 3]);
    assert_eq!(k.retire_due(T0 + g(long)), vec![1]);
    assert_eq!(k.state(4), Some(EpochState::Active));
    assert_eq!(k.state(5), Some(EpochState::AcceptOnly));

    // A skipped epoch already scheduled earlier keeps its time.
    let mut k = Keyring::new_at(1, secret(1), T0);
    k.add_at(2, secret(2), T0).unwrap();
    k.add_at(3, secret(3), T0).unwrap();
    k.retire_all_but(1, T0 + 5);
    k.promote_with_grace(3, T0, long).unwrap();
    assert_eq!(k.retire_at_ms(2), Some(T0 + 5));
    assert_eq!(k.retire_at_ms(1), Some(T0 + g(long)));
    assert_eq!(k.retire_at_ms(3), None);

    // An epoch kept accept-only by a plain promotion, to retire by hand, is
    // left so by a later promotion with grace and by a ratchet.
    let mut k = Keyring::new_at(1, secret(1), T0);
    k.add_at(2, secret(2), T0).unwrap();
    k.add_at(3, secret(3), T0).unwrap();
    k.promote(2).unwrap();
    k.promote_with_grace(3, T0, GRACE).unwrap();
    assert_eq!(k.retire_at_ms(1), None);
    k.ratchet(provider(), T0, GRACE).unwrap();
    assert_eq!(k.retire_at_ms(1), None);

    // Promoting the active epoch again changes nothing.
    let before: Vec<_> = (1..=3).map(|e| (k.state(e), k.retire_at_ms(e))).collect();
    let active = k.active().unwrap().0;
    assert_eq!(k.promote_with_grace(active, T0 + 9, GRACE).unwrap(), None);
    let after: Vec<_> = (1..=3).map(|e| (k.state(e), k.retire_at_ms(e))).collect();
    assert_eq!(before, after);

    // Without an active epoch (a receive-only keyring), the accept-only
    // epochs are what others seal under: none is scheduled.
    let mut k = Keyring::default();
    k.add_at(1, secret(1), T0).unwrap();
    k.add_at(2, secret(2), T0).unwrap();
    assert_eq!(k.promote_with_grace(2, T0, GRACE).unwrap(), None);
    assert_eq!(k.retire_at_ms(1), None);
}

/// An endpoint that promotes past a staged epoch accepts it (from a device
/// that did promote it) until the grace period ends, then rejects it; an
/// epoch staged above stays.
#[test]
fn an_endpoint_stops_accepting_a_skipped_epoch_after_the_grace_only() {
    let clock = ManualClock::new(T0);
    let mut ring = Keyring::new_at(1, secret(1), T0);
    for e in 2..=4 {
        ring.add_at(e, secret(e as u8), T0).unwrap();
    }
    let mut rx = device("rx", ring.clone(), &clock);
    let mut under2 = ring.clone();
    under2.promote(2).unwrap();
    let mut tx2 = device("tx", under2, &clock);
    let msgs: Vec<Vec<u8>> = (0..2).map(|i| tx2.seal("fleet/a", &[i]).unwrap()).collect();
    rx.with_keyring(|k| k.promote_with_grace(3, T0, GRACE))
        .unwrap();
    clock.set(T0 + 59_999);
    rx.open("fleet/a", &msgs[0]).unwrap();
    clock.set(T0 + 60_000);
    assert_eq!(
        rejection(rx.open("fleet/a", &msgs[1])),
        Rejection::RetiredEpoch(2)
    );
    assert_eq!(rx.keyring().state(4), Some(EpochState::AcceptOnly));
    assert!(rx.keyring().get(4).is_some());
}

#[test]
fn a_closure_cannot_promote_an_older_epoch_or_cancel_its_retirement() {
    let clock = ManualClock::new(T0);
    let mut ep = device("dev", Keyring::new_at(1, secret(1), T0), &clock);
    ep.with_keyring(|k| k.add_at(2, secret(2), T0)).unwrap();
    ep.with_keyring(|k| k.promote_with_grace(2, T0, GRACE))
        .unwrap();
    let retire_at = ep.keyring().next_retirement();
    assert!(retire_at.is_some());
    // Back to epoch 1, still held accept-only during its grace period.
    match ep.with_keyring(|k| k.promote(1)) {
        Err(KeyError::NotForward { epoch, current }) => assert_eq!((epoch, current), (1, 2)),
        other => panic!("expected NotForward, got {other:?}"),
    }
    match ep.with_keyring(|k| k.promote_with_grace(1, T0, GRACE)) {
        Err(KeyError::NotForward { epoch, current }) => assert_eq!((epoch, current), (1, 2)),
        other => panic!("expected NotForward, got {other:?}"),
    }
    // Nothing changed: epoch 2 sends, epoch 1 still retires on time.
    assert_eq!(ep.keyring().active().unwrap().0, 2);
    assert_eq!(ep.keyring().next_retirement(), retire_at);
    let env = ep.seal("fleet/a", b"x").unwrap();
    assert_eq!(
        mqseal::internal::parse_envelope(&env).unwrap().header.epoch,
        2
    );
}

#[test]
fn set_keyring_refuses_a_rollback_and_keeps_the_keyring() {
    let clock = ManualClock::new(T0);
    let mut tx = device("tx", Keyring::new_at(2, secret(2), T0), &clock);
    let mut rx = device("rx", Keyring::new_at(1, secret(1), T0), &clock);
    rx.with_keyring(|k| k.add_at(2, secret(2), T0)).unwrap();
    rx.with_keyring(|k| k.promote(2)).unwrap();
    // An older keyring, whose highest epoch is below the one held.
    match rx.set_keyring(Keyring::new_at(1, secret(1), T0)) {
        Err(KeyError::Rollback { held, given }) => {
            assert_eq!((held, given), (2, Some(1)));
        }
        other => panic!("expected a rollback refusal, got {other:?}"),
    }
    // Nothing changed: epoch 2 is still active and opens.
    assert_eq!(rx.keyring().active().unwrap().0, 2);
    let env = tx.seal("fleet/a", b"epoch 2").unwrap();
    assert_eq!(rx.open("fleet/a", &env).unwrap().0, b"epoch 2");
}

/// The keyring files an operator would reload: epochs 1 and 2, with epoch 2
/// staged (`promoted` false) or promoted, epoch 1 then kept without a
/// retirement schedule.
fn file_keyring(promoted: bool) -> Keyring {
    let mut k = Keyring::new_at(1, secret(1), T0);
    k.add_at(2, secret(2), T0).unwrap();
    if promoted {
        k.promote(2).unwrap();
    }
    k
}

/// An endpoint after a rekey: epoch 2 sends, epoch 1 retires after `GRACE`.
fn rekeyed(clock: &ManualClock) -> Endpoint {
    let mut ep = device("dev", Keyring::new_at(1, secret(1), T0), clock);
    ep.with_keyring(|k| {
        k.add_at(2, secret(2), T0)?;
        k.promote_with_grace(2, T0, GRACE).map(|_| ())
    })
    .unwrap();
    ep
}

fn sends_under(ep: &mut Endpoint) -> u32 {
    let env = ep.seal("fleet/a", b"x").unwrap();
    mqseal::internal::parse_envelope(&env).unwrap().header.epoch
}

#[test]
fn set_keyring_refuses_an_older_active_epoch_and_keeps_the_keyring() {
    let clock = ManualClock::new(T0);
    let mut ep = rekeyed(&clock);
    let retire_at = ep.keyring().retire_at_ms(1);
    // The file as it was before the promotion: epoch 1 active, 2 staged.
    match ep.set_keyring(file_keyring(false)) {
        Err(KeyError::NotForward { epoch, current }) => assert_eq!((epoch, current), (1, 2)),
        other => panic!("expected NotForward, got {other:?}"),
    }
    assert_eq!(ep.keyring().active().unwrap().0, 2);
    assert_eq!(ep.keyring().retire_at_ms(1), retire_at);
    assert_eq!(sends_under(&mut ep), 2);
}

#[test]
fn set_keyring_keeps_the_endpoints_retirements() {
    let clock = ManualClock::new(T0);
    let mut ep = rekeyed(&clock);
    let grace_end = T0 + GRACE.as_millis() as u64;
    // Epoch 2 promoted, but epoch 1 without its retirement, or with a later
    // one: the endpoint's earlier schedule stays.
    let mut later = file_keyring(false);
    later.promote_with_grace(2, T0 + 1, GRACE).unwrap();
    for file in [file_keyring(true), later] {
        ep.set_keyring(file).unwrap();
        assert_eq!(ep.keyring().retire_at_ms(1), Some(grace_end));
    }
    // An earlier schedule, or epoch 1 retired, is forward: taken.
    let mut earlier = file_keyring(false);
    earlier.promote_with_grace(2, T0 - 1, GRACE).unwrap();
    ep.set_keyring(earlier).unwrap();
    assert_eq!(ep.keyring().retire_at_ms(1), Some(grace_end - 1));
    let mut retired = file_keyring(true);
    retired.retire(1).unwrap();
    ep.set_keyring(retired).unwrap();
    assert_eq!(ep.keyring().state(1), Some(EpochState::Retired));

    // Once epoch 1 is retired here, reloading the same file (which still
    // holds its secret) keeps it retired.
    let mut ep = rekeyed(&clock);
    let mut file = file_keyring(false);
    file.promote_with_grace(2, T0, GRACE).unwrap();
    ep.set_keyring(file.clone()).unwrap();
    clock.set(grace_end);
    assert_eq!(sends_under(&mut ep), 2);
    assert_eq!(ep.keyring().state(1), Some(EpochState::Retired));
    ep.set_keyring(file.clone()).unwrap();
    assert_eq!(ep.keyring().state(1), Some(EpochState::Retired));
    assert!(ep.keyring().get(1).is_none());
    // And a file whose epoch 1 is not even scheduled: retired all the same.
    ep.set_keyring(file_keyring(true)).unwrap();
    assert_eq!(ep.keyring().state(1), Some(EpochState::Retired));
    let mut old = device("old", Keyring::new_at(1, secret(1), T0), &clock);
    let env = old.seal("fleet/a", b"under epoch 1").unwrap();
    assert_eq!(
        rejection(ep.open("fleet/a", &env)),
        Rejection::RetiredEpoch(1)
    );
}

#[test]
fn set_keyring_does_not_accept_an_epoch_it_never_held_below_the_highest() {
    let clock = ManualClock::new(T0);
    let mut ep = device("dev", Keyring::new_at(5, secret(5), T0), &clock);
    // A fleet file with epoch 3 still in its grace period: this device
    // never held 3, so it takes the file with 3 retired.
    let mut file = Keyring::new_at(3, secret(3), T0);
    file.add_at(5, secret(5), T0).unwrap();
    file.promote_with_grace(5, T0, GRACE).unwrap();
    ep.set_keyring(file).unwrap();
    assert_eq!(ep.keyring().state(3), Some(EpochState::Retired));
    assert!(ep.keyring().get(3).is_none());
    assert_eq!(sends_under(&mut ep), 5);
    // Sending under an epoch never held, below the highest, is refused.
    ep.with_keyring(|k| k.add_at(7, secret(7), T0)).unwrap();
    let mut file = Keyring::new_at(5, secret(5), T0);
    file.add_at(6, secret(6), T0).unwrap();
    file.add_at(7, secret(7), T0).unwrap();
    file.promote(6).unwrap();
    match ep.set_keyring(file) {
        Err(KeyError::NotForward { epoch, current }) => assert_eq!((epoch, current), (6, 7)),
        other => panic!("expected NotForward, got {other:?}"),
    }
    assert_eq!(sends_under(&mut ep), 5);
}

#[test]
fn set_keyring_refuses_a_keyring_without_an_active_epoch() {
    let clock = ManualClock::new(T0);
    let mut ep = device("dev", Keyring::new_at(5, secret(5), T0), &clock);
    let mut inactive = Keyring::default();
    inactive.add_at(5, secret(5), T0).unwrap();
    inactive.add_at(6, secret(6), T0).unwrap();
    assert!(inactive.active().is_none());
    assert!(matches!(
        ep.set_keyring(inactive),
        Err(KeyError::NoActiveEpoch)
    ));
    // Nothing changed.
    assert_eq!(ep.keyring().epochs().collect::<Vec<_>>(), vec![5]);
    assert_eq!(sends_under(&mut ep), 5);
    // A forward file is taken: epoch 6 sends, 5 is retired.
    let mut file = Keyring::new_at(5, secret(5), T0);
    file.add_at(6, secret(6), T0).unwrap();
    file.promote(6).unwrap();
    file.retire(5).unwrap();
    ep.set_keyring(file).unwrap();
    assert_eq!(sends_under(&mut ep), 6);
}

#[test]
fn set_keyring_retires_what_is_due_here_on_loading_and_keeps_creation_times() {
    let clock = ManualClock::new(T0);
    let mut ep = rekeyed(&clock);
    // Epoch 1's retirement is due, but nothing was sealed or opened since.
    clock.set(T0 + GRACE.as_millis() as u64);
    assert_eq!(ep.keyring().state(1), Some(EpochState::AcceptOnly));
    // A file that promoted epoch 2 later, without scheduling epoch 1.
    let mut file = Keyring::new_at(1, secret(1), T0 + 5);
    file.add_at(2, secret(2), T0 + 5).unwrap();
    file.promote(2).unwrap();
    ep.set_keyring(file).unwrap();
    assert_eq!(ep.keyring().state(1), Some(EpochState::Retired));
    assert!(ep.keyring().get(1).is_none());
    // Epoch 2's age counts from when this endpoint created it.
    assert_eq!(ep.keyring().created_ms(2), Some(T0));
}

#[test]
fn set_keyring_refuses_to_send_under_an_epoch_retiring_here() {
    let clock = ManualClock::new(T0);
    // Epoch 2 staged, then scheduled to retire (a rekey that kept epoch 1).
    let mut ep = device("dev", Keyring::new_at(1, secret(1), T0), &clock);
    ep.with_keyring(|k| {
        k.add_at(2, secret(2), T0)?;
        k.retire_all_but(1, T0 + GRACE.as_millis() as u64);
        Ok::<_, KeyError>(())
    })
    .unwrap();
    match ep.set_keyring(file_keyring(true)) {
        Err(KeyError::Unretired { epoch }) => assert_eq!(epoch, 2),
        other => panic!("expected Unretired, got {other:?}"),
    }
    assert_eq!(sends_under(&mut ep), 1);
    assert!(ep.keyring().retire_at_ms(2).is_some());
}

#[test]
fn set_keyring_refuses_to_send_under_an_epoch_retired_here() {
    let clock = ManualClock::new(T0);
    // Epoch 2 was staged here, then its roll-out cancelled (retired).
    let mut ep = device("dev", Keyring::new_at(1, secret(1), T0), &clock);
    ep.with_keyring(|k| {
        k.add_at(2, secret(2), T0)?;
        k.retire(2)
    })
    .unwrap();
    // A file that promoted epoch 2 anyway.
    match ep.set_keyring(file_keyring(true)) {
        Err(KeyError::Unretired { epoch }) => assert_eq!(epoch, 2),
        other => panic!("expected Unretired, got {other:?}"),
    }
    assert_eq!(sends_under(&mut ep), 1);
    // One that keeps epoch 2 staged is taken, and epoch 2 stays retired.
    ep.set_keyring(file_keyring(false)).unwrap();
    assert_eq!(ep.keyring().state(2), Some(EpochState::Retired));
}

#[test]
fn danger_replace_keyring_goes_back_on_purpose_but_not_below_the_highest_epoch() {
    let clock = ManualClock::new(T0);
    let mut ep = rekeyed(&clock);
    ep.danger_replace_keyring(file_keyring(false)).unwrap();
    assert_eq!(ep.keyring().active().unwrap().0, 1);
    assert_eq!(ep.keyring().retire_at_ms(1), None);
    assert_eq!(sends_under(&mut ep), 1);
    match ep.danger_replace_keyring(Keyring::new_at(1, secret(1), T0)) {
        Err(KeyError::Rollback { held, given }) => assert_eq!((held, given), (2, Some(1))),
        other => panic!("expected Rollback, got {other:?}"),
    }
}

/// A clock whose coarse reading is a tick behind its precise one, as
/// `SystemClock`'s (`CLOCK_REALTIME_COARSE`) can be.
#[derive(Clone)]
struct LaggingCoarseClock(ManualClock);

impl Clock for LaggingCoarseClock {
    fn now_ms(&self) -> u64 {
        self.0.now_ms()
    }

    fn coarse_now_ms(&self) -> u64 {
        self.0.now_ms() - 4
    }
}

#[test]
fn a_zero_grace_promotion_retires_the_old_epoch_at_once_even_if_the_coarse_clock_lags() {
    let clock = ManualClock::new(T0);
    let mut tx = device("tx", Keyring::new_at(1, secret(1), T0), &clock);
    let old = tx.seal("fleet/a", b"epoch 1").unwrap();
    let lagging = LaggingCoarseClock(clock.clone());
    let mut rx = device("rx", Keyring::new_at(1, secret(1), T0), &lagging);
    rx.with_keyring(|k| k.add_at(2, secret(2), T0)).unwrap();
    // Retire epoch 1 now (what a rekey with no grace period does): the
    // retirement time comes from the precise clock, and the coarse reading
    // is still before it.
    rx.with_keyring(|k| k.promote_with_grace(2, T0, Duration::ZERO))
        .unwrap();
    assert_eq!(
        rejection(rx.open("fleet/a", &old)),
        Rejection::RetiredEpoch(1)
    );
    assert_eq!(rx.keyring().state(1), Some(EpochState::Retired));
    // A retirement far ahead is left to the coarse clock (not due yet).
    let mut rx2 = device("rx2", Keyring::new_at(1, secret(1), T0), &lagging);
    rx2.with_keyring(|k| k.add_at(2, secret(2), T0)).unwrap();
    rx2.with_keyring(|k| k.promote_with_grace(2, T0, GRACE))
        .unwrap();
    rx2.open("fleet/a", &old).unwrap();
    clock.set(T0 + GRACE.as_millis() as u64);
    let old2 = tx.seal("fleet/a", b"epoch 1 again").unwrap();
    assert_eq!(
        rejection(rx2.open("fleet/a", &old2)),
        Rejection::RetiredEpoch(1)
    );
}

/// A change made to an endpoint's keyring or to a keyring file, for
/// `set_keyring_only_moves_forward`.
#[derive(Clone, Debug)]
enum Change {
    Add(u32),
    Promote(u32),
    PromoteWithGrace(u32, u64),
    Retire(u32),
    RetireAllBut(u32, u64),
}

fn change() -> impl Strategy<Value = Change> {
    let at = 0u64..120_000;
    prop_oneof![
        (0u32..6).prop_map(Change::Add),
        (0u32..6).prop_map(Change::Promote),
        ((0u32..6), at.clone()).prop_map(|(e, t)| Change::PromoteWithGrace(e, t)),
        (0u32..6).prop_map(Change::Retire),
        ((0u32..6), at).prop_map(|(e, t)| Change::RetireAllBut(e, t)),
    ]
}

/// Applies `c` to a keyring through `add`, `promote`, … (errors ignored:
/// a refused change changes nothing).
macro_rules! apply_change {
    ($k:expr, $c:expr) => {
        match $c {
            Change::Add(e) => drop($k.add_at(e, secret(e as u8 + 1), T0)),
            Change::Promote(e) => drop($k.promote(e)),
            Change::PromoteWithGrace(e, t) => drop($k.promote_with_grace(e, T0 + t, GRACE)),
            Change::Retire(e) => drop($k.retire(e)),
            Change::RetireAllBut(e, t) => $k.retire_all_but(e, T0 + t),
        }
    };
}

/// Everything `set_keyring` must not lose: per epoch, its state, its
/// retirement time and its creation time.
fn snapshot(k: &Keyring) -> Vec<(u32, EpochState, Option<u64>, Option<u64>)> {
    k.all_epochs()
        .map(|(e, s)| (e, s, k.retire_at_ms(e), k.created_ms(e)))
        .collect()
}

proptest! {
    /// Whatever an endpoint and a keyring file went through, `set_keyring`
    /// either leaves the endpoint's keyring as it was, or installs one that
    /// is no step back: the highest epoch not lower, an active epoch not
    /// lower, nothing retired here accepted again, nothing retiring here
    /// accepted longer, and nothing below the highest accepted that was not
    /// accepted here.
    #[test]
    fn set_keyring_only_moves_forward(
        here in prop::collection::vec(change(), 0..12),
        file in prop::collection::vec(change(), 0..12),
        now in 0u64..240_000,
    ) {
        let clock = ManualClock::new(T0);
        let mut ep = device("dev", Keyring::new_at(0, secret(1), T0), &clock);
        for c in here {
            ep.with_keyring(|k| apply_change!(k, c));
        }
        let mut f = Keyring::new_at(0, secret(1), T0);
        for c in file {
            apply_change!(f, c);
        }
        clock.set(T0 + now);
        let before = ep.keyring().clone();
        let result = ep.set_keyring(f);
        let after = ep.keyring();
        if result.is_err() {
            prop_assert_eq!(snapshot(after), snapshot(&before));
            return Ok(());
        }
        prop_assert!(after.max_epoch() >= before.max_epoch());
        if let Some((old, _)) = before.active() {
            let new = after.active().map(|(e, _)| e);
            prop_assert!(new.is_some_and(|n| n >= old), "active {:?} after {}", new, old);
        }
        let highest = before.max_epoch();
        for e in after.epochs() {
            match before.state(e) {
                Some(EpochState::Retired) => prop_assert!(false, "epoch {} accepted again", e),
                None => prop_assert!(highest.is_none_or(|h| e > h), "epoch {} never held", e),
                Some(_) => {
                    if let Some(t) = before.retire_at_ms(e)
                        && before.state(e) == Some(EpochState::AcceptOnly)
                    {
                        let later = after.retire_at_ms(e).is_none_or(|t2| t2 > t);
                        prop_assert!(!later, "epoch {} retires later", e);
                    }
                }
            }
            // What is due is retired on loading.
            prop_assert!(after.retire_at_ms(e).is_none_or(|t| t > T0 + now), "epoch {} due", e);
        }
    }
}

proptest! {
    /// `promote_with_grace` changes the new active epoch (active, no
    /// schedule), the previous one (scheduled at now + grace), the epochs it
    /// skips (staged between the two: scheduled by now + grace), and
    /// nothing else.
    #[test]
    fn promote_with_grace_schedules_only_what_it_skips(
        changes in prop::collection::vec(change(), 0..16),
        epoch in 0u32..6,
        t in 0u64..120_000,
    ) {
        let mut k = Keyring::new_at(0, secret(1), T0);
        for c in changes {
            apply_change!(k, c);
        }
        let before = k.clone();
        let prev = before.active().map(|(a, _)| a);
        let at = T0 + t + u64::try_from(GRACE.as_millis()).unwrap();
        if k.promote_with_grace(epoch, T0 + t, GRACE).is_err() {
            prop_assert_eq!(snapshot(&k), snapshot(&before));
            return Ok(());
        }
        let moved = prev != Some(epoch);
        for (n, s) in before.all_epochs() {
            let now = (k.state(n).unwrap(), k.retire_at_ms(n));
            let was = before.retire_at_ms(n);
            if n == epoch {
                prop_assert_eq!(now, (EpochState::Active, None));
            } else if moved && Some(n) == prev {
                prop_assert_eq!(now, (EpochState::AcceptOnly, Some(at)));
            } else if moved
                && s == EpochState::AcceptOnly
                && prev.is_some_and(|p| p < n)
                && n < epoch
            {
                prop_assert_eq!(now, (s, Some(was.map_or(at, |w| w.min(at)))), "skipped {}", n);
            } else {
                prop_assert_eq!(now, (s, was), "epoch {} changed", n);
            }
        }
    }
}

/// The broker retains only the newest rekey. A device offline across the
/// removal of `stolen` applies only a later rekey; because the admin lists
/// every removal so far (its trust store keeps them as revoked), the device
/// still revokes `stolen`: neither its sealed messages under the old epoch
/// (in their grace period) nor its signatures under the new one are accepted.
#[test]
fn a_device_that_missed_a_removal_revokes_it_from_the_newest_rekey() {
    let fleet = Fleet::new();
    let clock = ManualClock::new(T0);
    let stolen_id = SenderId::new(b"stolen").unwrap();
    let sign_policy = || {
        Policy::builder()
            .rule("fleet/#", Protection::encrypt(Aead::Aes256Gcm))
            .unwrap()
            .rule("signed/#", Protection::sign())
            .unwrap()
            .build()
    };
    let mut all = fleet.trust();
    for m in fleet.members.values() {
        all.insert_identity(&m.public(provider()));
    }
    let endpoint = |name: &str| {
        Endpoint::builder(sign_policy())
            .identity(fleet.members[name].clone())
            .keyring(Keyring::new_at(1, secret(1), T0))
            .trust(all.clone())
            .counter_store(MemoryCounterStore::new())
            .clock(clock.clone())
            .build()
            .unwrap()
    };
    let mut stolen = endpoint("stolen");
    let mut offline = endpoint("offline");
    let old_epoch = stolen.seal("fleet/cmd", b"forged").unwrap();

    // The admin's side: the first rekey removes `stolen`, which its trust
    // store then keeps as revoked; the second removes nobody new.
    let mut admin_trust = all.clone();
    let s2 = GroupSecret::generate(provider().random).unwrap();
    let first = RekeyBuilder::new(2, &s2)
        .grace(GRACE)
        .recipient(fleet.members["offline"].public(provider()))
        .remove(stolen_id)
        .sign(provider(), &fleet.admin, T0)
        .unwrap();
    admin_trust.revoke(stolen_id);
    let s3 = GroupSecret::generate(provider().random).unwrap();
    let second = RekeyBuilder::new(3, &s3)
        .grace(GRACE)
        .recipient(fleet.members["offline"].public(provider()))
        .remove_all(admin_trust.revoked().copied())
        .sign(provider(), &fleet.admin, T0)
        .unwrap();
    assert_eq!(rekey::parse(&first).unwrap().removed, [stolen_id]);
    assert_eq!(rekey::parse(&second).unwrap().removed, [stolen_id]);

    // `offline` finds only the retained, newest message.
    let applied = offline.apply_rekey(&second).unwrap();
    assert_eq!(applied.removed, [stolen_id]);
    assert!(offline.is_revoked(&stolen_id));
    assert!(offline.trust_store().is_revoked(&stolen_id));
    assert_eq!(offline.keyring().state(1), Some(EpochState::AcceptOnly));
    assert_eq!(
        rejection(offline.open("fleet/cmd", &old_epoch)),
        Rejection::UnknownSender
    );
    // A sign-only envelope needs no group secret: `stolen` labels it with
    // epoch 3 and signs it with its own key, long after the grace.
    clock.advance(Duration::from_secs(86_400));
    let mut ring = Keyring::new_at(1, secret(1), T0);
    ring.add_at(3, secret(99), T0).unwrap();
    ring.promote(3).unwrap();
    stolen.set_keyring(ring).unwrap();
    let signed = stolen.seal("signed/cmd", b"open the valve").unwrap();
    assert_eq!(
        rejection(offline.open("signed/cmd", &signed)),
        Rejection::UnknownSender
    );
}

/// The grace period counts from when the admin issued the rekey: a device
/// that applies it late gives the old epochs (which a removed device knows)
/// only what is left of it; a device whose clock is behind the admin's
/// counts from its own clock.
#[test]
fn the_grace_of_a_rekey_counts_from_when_it_was_issued() {
    let fleet = Fleet::new();
    let s2 = GroupSecret::generate(provider().random).unwrap();
    let msg = fleet.rekey(2, &s2, &["robot", "sensor"], &["stolen"]);
    let grace_ms = u64::try_from(GRACE.as_millis()).unwrap();

    // Applied 40 s after it was issued: epoch 1 retires 20 s later.
    let clock = ManualClock::new(T0 + 40_000);
    let mut robot = fleet.endpoint("robot", &clock);
    let mut sender = fleet.endpoint("sensor", &clock);
    let m1 = sender.seal("fleet/cmd", b"epoch 1").unwrap();
    robot.apply_rekey(&msg).unwrap();
    assert_eq!(robot.keyring().retire_at_ms(1), Some(T0 + grace_ms));
    clock.set(T0 + grace_ms - 1);
    assert_eq!(robot.open("fleet/cmd", &m1).unwrap().0, b"epoch 1");
    let m1b = sender.seal("fleet/cmd", b"epoch 1 again").unwrap();
    clock.set(T0 + grace_ms);
    assert_eq!(
        rejection(robot.open("fleet/cmd", &m1b)),
        Rejection::RetiredEpoch(1)
    );

    // Applied a day late: epoch 1 is retired at once.
    let clock = ManualClock::new(T0 + 86_400_000);
    let mut late = fleet.endpoint("robot", &clock);
    let mut sender = fleet.endpoint("sensor", &clock);
    let m1 = sender.seal("fleet/cmd", b"epoch 1").unwrap();
    late.apply_rekey(&msg).unwrap();
    assert_eq!(
        rejection(late.open("fleet/cmd", &m1)),
        Rejection::RetiredEpoch(1)
    );

    // A clock 10 minutes behind the admin's: the full grace from its own now.
    let behind = T0 - 600_000;
    let clock = ManualClock::new(behind);
    let mut slow = fleet.endpoint("robot", &clock);
    slow.apply_rekey(&msg).unwrap();
    assert_eq!(slow.keyring().retire_at_ms(1), Some(behind + grace_ms));
}

#[test]
fn a_rekey_lists_every_removal_once_and_more_than_255() {
    let fleet = Fleet::new();
    let s2 = GroupSecret::generate(provider().random).unwrap();
    let ids: Vec<SenderId> = (0..300u32)
        .map(|i| SenderId::try_from(format!("gone-{i}").as_str()).unwrap())
        .collect();
    let msg = RekeyBuilder::new(2, &s2)
        .recipient(fleet.members["robot"].public(provider()))
        .remove_all(ids.iter().copied())
        .remove(ids[7])
        .remove_all(ids[..10].iter().copied())
        .sign(provider(), &fleet.admin, T0)
        .unwrap();
    let parsed = rekey::parse(&msg).unwrap();
    assert_eq!(parsed.removed, ids);
    let clock = ManualClock::new(T0);
    let mut robot = fleet.endpoint("robot", &clock);
    let applied = robot.apply_rekey(&msg).unwrap();
    assert_eq!(applied.removed.len(), 300);
    assert!(ids.iter().all(|id| robot.is_revoked(id)));

    // A version-1 message (one-byte removed count) is refused as such.
    let mut v1 = msg.clone();
    v1[4] = 1;
    let err = rekey::parse(&v1).unwrap_err();
    assert!(err.to_string().contains("unsupported version"), "{err}");
}

/// A closure given to `with_keyring` that panics halfway still leaves the
/// endpoint consistent with the keyring: an epoch it retired before the
/// panic is no longer accepted (an endpoint behind a poisoned mutex may be
/// used after the panic).
#[test]
fn a_panic_inside_with_keyring_leaves_no_retired_epoch_accepted() {
    let clock = ManualClock::new(T0);
    let ring = || {
        let mut k = Keyring::new_at(1, secret(1), T0);
        k.add_at(2, secret(2), T0).unwrap();
        k
    };
    let mut tx = device("tx", ring(), &clock);
    let mut rx = device("rx", ring(), &clock);
    let m1 = tx.seal("fleet/a", b"one").unwrap();
    let m2 = tx.seal("fleet/a", b"two").unwrap();
    rx.open("fleet/a", &m1).unwrap();
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rx.with_keyring(|k| {
            k.promote(2).unwrap();
            k.retire(1).unwrap();
            panic!("a later step of the caller fails");
        })
    }));
    assert!(caught.is_err());
    assert_eq!(rx.keyring().state(1), Some(EpochState::Retired));
    assert_eq!(
        rejection(rx.open("fleet/a", &m2)),
        Rejection::RetiredEpoch(1)
    );
    // And it seals under the epoch promoted before the panic.
    let sealed = rx.seal("fleet/a", b"three").unwrap();
    assert_eq!(envelope::parse(&sealed).unwrap().header.epoch, 2);
}
