//! The examples' client helper against a real Mosquitto (`--broker
//! mqtt://…`): after the broker restarts and forgets the session, the
//! client subscribes again and keeps receiving.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mqseal::*;
use mqseal_examples::{BrokerArgs, demo_keys, next};
use mqseal_rumqttc::{QoS, SecureEvent};

/// A `mosquitto` on `port`, killed on drop.
struct Mosquitto(Child);

impl Mosquitto {
    fn start(dir: &std::path::Path, port: u16) -> Mosquitto {
        let conf = dir.join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"),
        )
        .unwrap();
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto is installed");
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "mosquitto did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Mosquitto(child)
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn endpoint(id: &str) -> Endpoint {
    let policy = Policy::builder()
        .rule("t/#", Protection::mac())
        .unwrap()
        .build();
    Endpoint::builder(policy)
        .sender_id(SenderId::try_from(id).unwrap())
        .keyring(Keyring::new(1, demo_keys::group()))
        .counter_store(MemoryCounterStore::new())
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_subscribes_again_after_the_broker_forgot_its_session() {
    let dir = tempfile::tempdir().unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut broker = Mosquitto::start(dir.path(), port);
    let args = BrokerArgs {
        broker: Some(format!("mqtt://127.0.0.1:{port}")),
        ca: None,
        cert: None,
        key: None,
        username: None,
        password: None,
    };
    let b = args.connect().unwrap();
    let (_rx, mut events) = b
        .secure("rx", endpoint("rx"), &[("t/#", QoS::AtLeastOnce)])
        .await
        .unwrap();
    let (tx, _) = b.secure("tx", endpoint("tx"), &[]).await.unwrap();
    // Until the message arrives: the subscription may still be in flight.
    let mut received = async |what: &[u8]| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            let _ = tx.publish("t/a", QoS::AtLeastOnce, false, what).await;
            while let Some(e) = next(&mut events, 1).await {
                if matches!(&e, SecureEvent::Message(m) if m.payload == what) {
                    return true;
                }
            }
        }
        false
    };
    assert!(received(b"before").await);

    // The broker restarts with no persistence: every session is gone.
    drop(broker);
    broker = Mosquitto::start(dir.path(), port);
    assert!(
        received(b"after").await,
        "no message after the broker restarted"
    );
    drop(broker);
}

#[test]
fn tls_files_with_a_plain_mqtt_broker_are_refused() {
    let args = BrokerArgs {
        broker: Some("mqtt://127.0.0.1:1883".into()),
        ca: Some("ca.crt".into()),
        cert: None,
        key: None,
        username: Some("u".into()),
        password: Some("p".into()),
    };
    let err = args.connect().unwrap_err().to_string();
    assert!(err.contains("need an mqtts:// broker"), "{err}");
}
