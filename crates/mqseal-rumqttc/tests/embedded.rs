//! The adapter against the embedded rumqttd broker: the blocking client, and
//! counters kept apart across clones of the async client.

mod common;

use common::*;
use mqseal_broker::EmbeddedBroker;
use mqseal_rumqttc::{QoS, SecureClient, SecureEvent};

#[test]
fn blocking_client_round_trip_and_rejection() {
    let broker = EmbeddedBroker::start().unwrap();
    let (rx_client, mut rx_conn) =
        SecureClient::new(options("rx", broker.port()), 10, endpoint("rx")).unwrap();
    let (tx_client, mut tx_conn) =
        SecureClient::new(options("tx", broker.port()), 10, endpoint("tx")).unwrap();
    std::thread::spawn(move || for _ in tx_conn.iter() {});
    rx_client.subscribe("sensors/#", QoS::AtLeastOnce).unwrap();
    // Wait for the SUBACK before publishing.
    loop {
        match rx_conn.recv().expect("connection open") {
            Ok(SecureEvent::Mqtt(mqseal_rumqttc::Event::Incoming(
                mqseal_rumqttc::Packet::SubAck(_),
            ))) => break,
            Ok(_) => {}
            Err(e) => panic!("{e}"),
        }
    }
    tx_client
        .publish("sensors/a", QoS::AtLeastOnce, false, b"blocking")
        .unwrap();
    tx_client
        .publish("nowhere/a", QoS::AtLeastOnce, false, b"x")
        .unwrap_err();
    let mut got = None;
    for event in rx_conn.iter() {
        if let SecureEvent::Message(m) = event.unwrap() {
            got = Some(m);
            break;
        }
    }
    let m = got.unwrap();
    assert_eq!(
        (m.topic.as_str(), m.payload.as_slice()),
        ("sensors/a", &b"blocking"[..])
    );
    assert_eq!(tx_client.stats().published, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clones_of_a_client_share_one_counter() {
    let broker = EmbeddedBroker::start().unwrap();
    let mut rx = peer(options("rx", broker.port()), endpoint("rx"));
    let tx = peer(options("tx", broker.port()), endpoint("tx"));
    rx.wait_connected().await;
    rx.subscribe("sensors/#", QoS::AtLeastOnce).await;
    let clones: Vec<_> = (0..4).map(|_| tx.client.clone()).collect();
    let mut tasks = Vec::new();
    for (i, c) in clones.into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            for j in 0..10u8 {
                c.publish("sensors/c", QoS::AtLeastOnce, false, [i as u8, j])
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut counters = std::collections::HashSet::new();
    while counters.len() < 40 {
        match rx.next(10).await.expect("all 40 arrive") {
            SecureEvent::Message(m) => assert!(counters.insert(m.envelope.unwrap().counter)),
            other => panic!("{other:?}"),
        }
    }
    assert!(rx.next(1).await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retained_rekey_reaches_online_and_offline_devices_through_the_broker() {
    use mqseal::rekey::RekeyBuilder;
    use mqseal::*;
    let broker = EmbeddedBroker::start().unwrap();
    let provider = crypto::default_provider();
    let admin = Identity::generate(SenderId::new(b"admin").unwrap(), provider.random).unwrap();
    let robot = Identity::generate(SenderId::new(b"robot").unwrap(), provider.random).unwrap();
    let late = Identity::generate(SenderId::new(b"late").unwrap(), provider.random).unwrap();
    let device = |id: &Identity| {
        let mut trust = TrustStore::new();
        trust.set_admin(admin.sender_id, admin.public(provider).signing);
        Endpoint::builder(policy())
            .identity(id.clone())
            .keyring(Keyring::new(1, GroupSecret::from_bytes(SECRET)))
            .trust(trust)
            .counter_store(MemoryCounterStore::new())
            .rekey_topic("mqseal/rekey")
            .build()
            .unwrap()
    };
    let mut online = peer(options("robot", broker.port()), device(&robot));
    online.wait_connected().await;
    online.subscribe("mqseal/rekey", QoS::AtLeastOnce).await;

    let secret = GroupSecret::generate(provider.random).unwrap();
    let msg = RekeyBuilder::new(2, &secret)
        .recipient(robot.public(provider))
        .recipient(late.public(provider))
        .remove(SenderId::new(b"stolen").unwrap())
        .sign(provider, &admin, Clock::now_ms(&SystemClock))
        .unwrap();
    let (raw_admin, _rx, mut up) = raw(options("admin", broker.port()));
    assert_eq!(up.recv().await, Some(true));
    raw_admin
        .publish(
            "mqseal/rekey",
            mqseal_rumqttc::rumqttc::QoS::AtLeastOnce,
            true,
            msg,
        )
        .await
        .unwrap();
    match online.next(10).await.expect("rekey arrives") {
        SecureEvent::Rekeyed(a) => assert_eq!(a.epoch, 2),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        online
            .client
            .with_endpoint(|e| e.keyring().active().unwrap().0),
        2
    );

    // A device that was offline connects later and catches up from the retained message.
    let mut offline = peer(options("late", broker.port()), device(&late));
    offline.wait_connected().await;
    offline
        .client
        .subscribe("mqseal/rekey", QoS::AtLeastOnce)
        .await
        .unwrap();
    match offline.next(10).await.expect("retained rekey arrives") {
        SecureEvent::Rekeyed(a) => assert_eq!(a.epoch, 2),
        other => panic!("{other:?}"),
    }
    offline.subscribe("sensors/#", QoS::AtLeastOnce).await;
    online
        .client
        .publish("sensors/r", QoS::AtLeastOnce, false, b"epoch 2")
        .await
        .unwrap();
    match offline.next(10).await.expect("message under the new epoch") {
        SecureEvent::Message(m) => {
            assert_eq!(m.payload, b"epoch 2");
            assert_eq!(m.envelope.unwrap().epoch, 2);
        }
        other => panic!("{other:?}"),
    }
}

/// The largest publish the adapter takes is one rumqttc writes and the
/// receiver's limit admits: at the packet limit, on an unprotected topic
/// (whose payload the endpoint does not bound) and on a sealed one, both
/// arrive. One byte more is refused at `publish` with a typed error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_largest_publish_the_adapter_takes_is_delivered() {
    use mqseal::*;
    const MAX: usize = 1000;
    let small = |id: &str| {
        let policy = Policy::builder()
            .rule("sealed/#", Protection::encrypt(Aead::Aes256Gcm))
            .unwrap()
            .rule("open/#", Protection::insecure_plaintext())
            .unwrap()
            .build();
        Endpoint::builder(policy)
            .sender_id(SenderId::new(id.as_bytes()).unwrap())
            .keyring(Keyring::new(1, GroupSecret::from_bytes(SECRET)))
            .counter_store(MemoryCounterStore::new())
            .max_payload(MAX)
            .build()
            .unwrap()
    };
    let broker = EmbeddedBroker::start().unwrap();
    let mut rx = peer(options("rx", broker.port()), small("rx"));
    let tx = peer(options("tx", broker.port()), small("tx"));
    rx.wait_connected().await;
    rx.subscribe("#", QoS::AtLeastOnce).await;
    let fits = mqseal_rumqttc::packet_limit(MAX) - 2 - "open/a".len() - 2;
    for (topic, len) in [("open/a", fits), ("sealed/a", MAX)] {
        let payload = vec![0x61u8; len];
        let too_big = tx
            .client
            .publish(
                topic,
                QoS::AtLeastOnce,
                false,
                [&payload[..], b"!"].concat(),
            )
            .await;
        assert!(
            matches!(
                too_big,
                Err(Error::Config(ConfigError::PayloadTooLarge { .. }))
            ),
            "{topic}: {too_big:?}"
        );
        tx.client
            .publish(topic, QoS::AtLeastOnce, false, &payload)
            .await
            .unwrap();
        match rx.next(10).await.expect("the largest publish arrives") {
            SecureEvent::Message(m) => {
                assert_eq!((m.topic.as_str(), m.payload.len()), (topic, len))
            }
            other => panic!("{topic}: {other:?}"),
        }
    }
}
