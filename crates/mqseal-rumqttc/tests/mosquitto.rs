//! Integration tests against a real Mosquitto broker (Debian package
//! `mosquitto`), started on free loopback ports with configs written here.
//! Every broker is stopped when its test ends, even on failure.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;
use mqseal_rumqttc::{MqttOptions, QoS, SecureEvent};

/// Global settings of a broker with a mutual-TLS listener and a password
/// listener, and no anonymous access anywhere.
fn secured_config(
    dir: &std::path::Path,
    pki: &Pki,
    tls_port: u16,
    pw_port: u16,
    acl: &str,
) -> String {
    std::fs::write(dir.join("acl"), acl).unwrap();
    format!(
        "per_listener_settings false\n\
         allow_anonymous false\n\
         password_file {dir}/passwd\n\
         acl_file {dir}/acl\n\
         listener {tls_port} 127.0.0.1\n\
         cafile {ca}\n\
         certfile {cert}\n\
         keyfile {key}\n\
         require_certificate true\n\
         use_identity_as_username true\n\
         listener {pw_port} 127.0.0.1\n",
        dir = dir.display(),
        ca = pki.path("test-ca.crt"),
        cert = pki.path("test-server.crt"),
        key = pki.path("test-server.key"),
    )
}

fn payload(e: SecureEvent) -> (String, Vec<u8>) {
    match e {
        SecureEvent::Message(m) => (m.topic, m.payload),
        other => panic!("expected a message, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sealed_round_trip_over_mutual_tls_and_password_listeners() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "test");
    pki.issue("station", &[]);
    password_file(&dir.path().join("passwd"), &[("sensor-1", "pw-1")]);
    let (tls_port, pw_port) = (free_port(), free_port());
    let acl = "user station\ntopic readwrite #\n\nuser sensor-1\ntopic write sensors/#\ntopic read control/#\n";
    let _broker = Mosquitto::start(
        dir.path(),
        "b",
        &secured_config(dir.path(), &pki, tls_port, pw_port, acl),
        &[tls_port, pw_port],
    );

    // The station authenticates with its certificate (its CN is its username).
    let mut station = peer(
        tls_options("station", tls_port, &pki, "test-ca.crt", Some("station")),
        endpoint("station"),
    );
    let mut o = options("sensor-1", pw_port);
    o.set_credentials("sensor-1", "pw-1");
    let mut sensor = peer(o, endpoint("sensor-1"));
    station.wait_connected().await;
    sensor.wait_connected().await;
    station.subscribe("sensors/#", QoS::ExactlyOnce).await;
    sensor.subscribe("control/#", QoS::AtLeastOnce).await;

    sensor
        .client
        .publish("sensors/sensor-1/temp", QoS::ExactlyOnce, false, b"21.5")
        .await
        .unwrap();
    let (topic, p) = payload(station.next(10).await.expect("reading arrives"));
    assert_eq!(
        (topic.as_str(), p.as_slice()),
        ("sensors/sensor-1/temp", &b"21.5"[..])
    );

    station
        .client
        .publish(
            "control/sensor-1/rate",
            QoS::AtLeastOnce,
            false,
            b"every 5 s",
        )
        .await
        .unwrap();
    match sensor.next(10).await.expect("command arrives") {
        SecureEvent::Message(m) => {
            assert_eq!(m.payload, b"every 5 s");
            assert_eq!(m.envelope.unwrap().sender.as_bytes(), b"station");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(station.client.stats().accepted, 1);
    assert_eq!(sensor.client.stats().rejected_total(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_listener_refuses_clients_without_a_certificate_from_the_ca() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "test");
    let other = Pki::new(dir.path(), "other");
    other.issue("intruder", &[]);
    pki.issue("station", &[]);
    password_file(&dir.path().join("passwd"), &[("sensor-1", "pw-1")]);
    let (tls_port, pw_port) = (free_port(), free_port());
    let _broker = Mosquitto::start(
        dir.path(),
        "b",
        &secured_config(
            dir.path(),
            &pki,
            tls_port,
            pw_port,
            "user station\ntopic readwrite #\n",
        ),
        &[tls_port, pw_port],
    );
    let try_connect = |o| async move {
        let (_c, _rx, mut connected) = raw(o);
        tokio::time::timeout(Duration::from_secs(5), connected.recv())
            .await
            .ok()
            .flatten()
    };
    // Control: the right certificate connects.
    assert_eq!(
        try_connect(tls_options(
            "station",
            tls_port,
            &pki,
            "test-ca.crt",
            Some("station")
        ))
        .await,
        Some(true)
    );
    // No client certificate.
    assert_eq!(
        try_connect(tls_options("anon", tls_port, &pki, "test-ca.crt", None)).await,
        Some(false)
    );
    // A certificate from another CA.
    assert_eq!(
        try_connect(tls_options(
            "intruder",
            tls_port,
            &other,
            "test-ca.crt",
            Some("intruder")
        ))
        .await,
        Some(false)
    );
    // The password listener refuses anonymous clients and wrong passwords.
    assert_eq!(try_connect(options("anon", pw_port)).await, Some(false));
    let mut o = options("sensor-1", pw_port);
    o.set_credentials("sensor-1", "wrong");
    assert_eq!(try_connect(o).await, Some(false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acl_pattern_isolates_chat_users_and_a_spy_on_hash_sees_only_ciphertext() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "test");
    password_file(
        &dir.path().join("passwd"),
        &[
            ("alice", "pw-a"),
            ("bob", "pw-b"),
            ("writer", "pw-w"),
            ("spy", "pw-s"),
        ],
    );
    let (tls_port, pw_port) = (free_port(), free_port());
    let acl = "user writer\ntopic write chats/#\n\nuser spy\ntopic read #\n\npattern read chats/%c/messages\n";
    let _broker = Mosquitto::start(
        dir.path(),
        "b",
        &secured_config(dir.path(), &pki, tls_port, pw_port, acl),
        &[tls_port, pw_port],
    );

    let login = |id: &str, pw: &str| {
        let mut o = options(id, pw_port);
        o.set_credentials(id, pw);
        o
    };
    let mut alice = peer(login("alice", "pw-a"), endpoint("alice"));
    let mut bob = peer(login("bob", "pw-b"), endpoint("bob"));
    let mut writer = peer(login("writer", "pw-w"), endpoint("writer"));
    let (spy, mut spied, mut spy_up) = raw(login("spy", "pw-s"));
    for p in [&mut alice, &mut bob, &mut writer] {
        p.wait_connected().await;
    }
    assert_eq!(spy_up.recv().await, Some(true));
    spy.subscribe("#", rumqttc_qos()).await.unwrap();
    // Both try to read every chat.
    alice.subscribe("chats/+/messages", QoS::AtLeastOnce).await;
    bob.subscribe("chats/+/messages", QoS::AtLeastOnce).await;

    let secret_a = b"alice: the launch code is 0000";
    let secret_b = b"bob: meet at the usual place";
    writer
        .client
        .publish("chats/alice/messages", QoS::AtLeastOnce, false, secret_a)
        .await
        .unwrap();
    writer
        .client
        .publish("chats/bob/messages", QoS::AtLeastOnce, false, secret_b)
        .await
        .unwrap();

    assert_eq!(
        payload(alice.next(10).await.unwrap()),
        ("chats/alice/messages".into(), secret_a.to_vec())
    );
    assert_eq!(
        payload(bob.next(10).await.unwrap()),
        ("chats/bob/messages".into(), secret_b.to_vec())
    );
    assert!(alice.next(1).await.is_none(), "alice received bob's chat");
    assert!(bob.next(1).await.is_none(), "bob received alice's chat");

    // The spy holds valid broker credentials and reads everything: ciphertext only.
    let mut seen = Vec::new();
    while let Ok(Some(p)) = tokio::time::timeout(Duration::from_secs(2), spied.recv()).await {
        seen.push(p);
    }
    assert_eq!(seen.len(), 2, "the spy saw both envelopes");
    for p in &seen {
        for secret in [&secret_a[..], &secret_b[..]] {
            assert!(
                !p.payload
                    .windows(6)
                    .any(|w| secret.windows(6).any(|s| s == w)),
                "plaintext visible to the spy"
            );
        }
        assert!(mqseal::envelope::parse(&p.payload).is_ok());
    }
}

fn rumqttc_qos() -> mqseal_rumqttc::rumqttc::QoS {
    mqseal_rumqttc::rumqttc::QoS::AtLeastOnce
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_restart_during_a_qos1_stream_loses_and_repeats_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = format!(
        "listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location {}/\nautosave_interval 1\n",
        dir.path().display()
    );
    let mut broker = Mosquitto::start(dir.path(), "b", &config, &[port]);

    let persistent = |id: &str| {
        let mut o = options(id, port);
        o.set_clean_session(false);
        o
    };
    let mut sub = peer(persistent("restart-sub"), endpoint("sub"));
    let mut pubr = peer(persistent("restart-pub"), endpoint("pub"));
    sub.wait_connected().await;
    pubr.wait_connected().await;
    sub.subscribe("sensors/stream", QoS::AtLeastOnce).await;

    const N: u32 = 60;
    let mut got: HashMap<u32, u32> = HashMap::new();
    let record = |e: SecureEvent, got: &mut HashMap<u32, u32>| {
        if let SecureEvent::Message(m) = e {
            let i = u32::from_be_bytes(m.payload.try_into().unwrap());
            *got.entry(i).or_default() += 1;
        }
    };
    for i in 0..N / 2 {
        pubr.client
            .publish("sensors/stream", QoS::AtLeastOnce, false, i.to_be_bytes())
            .await
            .unwrap();
    }
    while got.len() < 10 {
        let e = sub.next(10).await.expect("first messages arrive");
        record(e, &mut got);
    }
    broker.stop();
    for i in N / 2..N {
        pubr.client
            .publish("sensors/stream", QoS::AtLeastOnce, false, i.to_be_bytes())
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    broker.restart();
    while got.len() < N as usize {
        let Some(e) = sub.next(30).await else { break };
        record(e, &mut got);
    }
    // Let any late redelivery arrive.
    while let Some(e) = sub.next(2).await {
        record(e, &mut got);
    }
    let missing: Vec<u32> = (0..N).filter(|i| !got.contains_key(i)).collect();
    assert!(
        missing.is_empty(),
        "missing {missing:?}; log:\n{}",
        broker.log()
    );
    let repeated: Vec<_> = got.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        repeated.is_empty(),
        "delivered more than once: {repeated:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bridge_carries_sealed_messages_unchanged_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let (local_port, remote_port) = (free_port(), free_port());
    let remote = Mosquitto::start(
        dir.path(),
        "remote",
        &format!("listener {remote_port} 127.0.0.1\nallow_anonymous true\n"),
        &[remote_port],
    );
    let local = Mosquitto::start(
        dir.path(),
        "local",
        &format!(
            "listener {local_port} 127.0.0.1\nallow_anonymous true\n\
             connection to-remote\naddress 127.0.0.1:{remote_port}\ntopic sensors/# out 1\ncleansession true\n"
        ),
        &[local_port],
    );
    // Wait until the bridge is connected.
    for _ in 0..100 {
        if remote.log().contains("to-remote") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        remote.log().contains("to-remote"),
        "bridge did not connect; local log:\n{}",
        local.log()
    );

    let (tap_l, mut local_seen, mut up) = raw(options("tap-local", local_port));
    assert_eq!(up.recv().await, Some(true));
    tap_l.subscribe("sensors/#", rumqttc_qos()).await.unwrap();
    let (tap_r, mut remote_seen, mut up) = raw(options("tap-remote", remote_port));
    assert_eq!(up.recv().await, Some(true));
    tap_r.subscribe("sensors/#", rumqttc_qos()).await.unwrap();
    let mut cloud = peer(options("cloud", remote_port), endpoint("cloud"));
    cloud.wait_connected().await;
    cloud.subscribe("sensors/#", QoS::AtLeastOnce).await;
    let mut device = peer(options("device", local_port), endpoint("device"));
    device.wait_connected().await;

    device
        .client
        .publish("sensors/plant-7/flow", QoS::AtLeastOnce, false, b"3.2 l/s")
        .await
        .unwrap();
    assert_eq!(
        payload(cloud.next(10).await.expect("bridged")),
        ("sensors/plant-7/flow".into(), b"3.2 l/s".to_vec())
    );
    let at_local = tokio::time::timeout(Duration::from_secs(5), local_seen.recv())
        .await
        .unwrap()
        .unwrap();
    let at_remote = tokio::time::timeout(Duration::from_secs(5), remote_seen.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        at_local.payload, at_remote.payload,
        "the bridge changed the envelope"
    );
    assert_eq!(at_local.topic, at_remote.topic);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_from_mosquitto_pub_is_rejected_and_acked() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let (_broker, persistent, mut victim) = persistent_victim(dir.path(), port).await;

    let random: Vec<u8> = (0..200u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let random_file = dir.path().join("random.bin");
    std::fs::write(&random_file, &random).unwrap();
    let inject = |extra: &[&str]| inject(port, extra);
    inject(&["-m", "garbage"]);
    inject(&["-n"]);
    inject(&["-f", random_file.to_str().unwrap()]);
    inject(&["-m", "\u{10}\u{02}\u{01}\u{04}fake"]);

    let kinds = rejection_kinds(&mut victim, 4).await;
    assert!(
        kinds
            .iter()
            .all(|k| *k == "malformed" || *k == "policy_mismatch"),
        "{kinds:?}"
    );

    // The loop is alive: a real message is accepted after the garbage.
    let sender = peer(options("sender", port), endpoint("sender"));
    sender
        .client
        .publish("sensors/x", QoS::AtLeastOnce, false, b"real")
        .await
        .unwrap();
    assert_eq!(payload(victim.next(10).await.unwrap()).1, b"real");
    assert_eq!(victim.client.stats().rejected_total(), 4);

    // The rejected messages were acknowledged: reconnecting the persistent
    // session brings no redelivery.
    assert_no_redelivery(victim, persistent).await;
}

/// A message larger than rumqttc's default 10 KiB packet limit, and one larger
/// than the endpoint accepts, come out as rejections (malformed, too_large)
/// on a persistent QoS 1 session, are acknowledged, and the loop goes on.
/// With rumqttc's own limit, the first would drop the connection, and the
/// broker would send it again on every reconnect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_messages_are_rejected_and_the_receive_loop_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let (_broker, persistent, mut victim) = persistent_victim(dir.path(), port).await;

    let big = mqseal::endpoint::DEFAULT_MAX_PAYLOAD + 4096;
    for (name, len) in [("11k.bin", 11 * 1024), ("big.bin", big)] {
        let file = dir.path().join(name);
        std::fs::write(&file, vec![0x42u8; len]).unwrap();
        inject(port, &["-f", file.to_str().unwrap()]);
    }
    assert_eq!(
        rejection_kinds(&mut victim, 2).await,
        ["malformed", "too_large"]
    );

    let sender = peer(options("sender", port), endpoint("sender"));
    sender
        .client
        .publish("sensors/x", QoS::AtLeastOnce, false, b"real")
        .await
        .unwrap();
    assert_eq!(payload(victim.next(10).await.unwrap()).1, b"real");

    // Acknowledged: the persistent session brings nothing back.
    assert_no_redelivery(victim, persistent).await;
}

/// A Mosquitto on `port`, and a secure client `victim` with a persistent
/// session subscribed to `sensors/#` at QoS 1 (and its options, to connect
/// the session again).
async fn persistent_victim(dir: &Path, port: u16) -> (Mosquitto, MqttOptions, Peer) {
    let broker = Mosquitto::start(
        dir,
        "b",
        &format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"),
        &[port],
    );
    let mut persistent = options("victim", port);
    persistent.set_clean_session(false);
    let mut victim = peer(persistent.clone(), endpoint("victim"));
    victim.wait_connected().await;
    victim.subscribe("sensors/#", QoS::AtLeastOnce).await;
    (broker, persistent, victim)
}

/// Publishes raw bytes on `sensors/x` at QoS 1 with `mosquitto_pub` and
/// `extra` (the payload's arguments).
fn inject(port: u16, extra: &[&str]) {
    let status = Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q", "1"])
        .args(["-t", "sensors/x"])
        .args(extra)
        .status()
        .expect("mosquitto_pub is installed");
    assert!(status.success());
}

/// The kinds of the next `n` events of `victim`, each of which must be a
/// rejection.
async fn rejection_kinds(victim: &mut Peer, n: usize) -> Vec<&'static str> {
    let mut kinds = Vec::new();
    for _ in 0..n {
        match victim.next(10).await.expect("each message surfaces") {
            SecureEvent::Rejected(r) => {
                kinds.push(r.error.rejection().expect("a rejection").kind())
            }
            other => panic!("accepted a message it should reject: {other:?}"),
        }
    }
    kinds
}

/// Disconnects `victim` and connects its persistent session again: nothing
/// it received (accepted or rejected) comes back, so all of it was acked.
async fn assert_no_redelivery(victim: Peer, persistent: MqttOptions) {
    victim.client.disconnect().await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut again = peer(persistent, endpoint("victim"));
    again.wait_connected().await;
    if let Some(e) = again.next(2).await {
        panic!("a message was redelivered to the persistent session: {e:?}");
    }
}
