//! Quick start: sensors, a control station and a robot on an in-memory bus.
//!
//! Sensors publish MAC-protected readings; the station sends the robot an
//! encrypted, signed, timestamped command. An attacker who can subscribe to
//! `#` and publish anything captures, replays, forges and moves messages, and
//! every attack is rejected while the receivers keep running.
//!
//! Run: `cargo run -p mqseal-examples --bin quickstart`

use std::time::Duration;

use mqseal::layer::{ClientBuilder, Delivery, Secure, SecureLayer};
use mqseal::pubsub::{MemoryBus, MemoryClient, PubSub, QoS};
use mqseal::*;

fn main() -> Result<(), Error> {
    let provider = crypto::default_provider();
    let policy = Policy::builder()
        .rule(
            "robots/+/cmd",
            Protection::encrypt(Aead::Aes256Gcm)
                .sign()
                .freshness(Freshness::max_age(Duration::from_secs(5))),
        )?
        .rule("sensors/#", Protection::mac())?
        .build();

    // Keys: one group secret for the fleet, one signing key for the station.
    let group = GroupSecret::generate(provider.random)?;
    let station_key = SigningKey::generate(provider.random)?;
    let station_id = SenderId::new(b"station")?;
    let mut trust = TrustStore::new();
    trust.insert(station_id, station_key.public_key(provider));

    let bus = MemoryBus::new();
    let connect = |id: &[u8], signing: Option<SigningKey>| -> Result<Secure<MemoryClient>, Error> {
        let mut b = Endpoint::builder(policy.clone())
            .sender_id(SenderId::new(id)?)
            .keyring(Keyring::new(1, group.clone()))
            .trust(trust.clone())
            .counter_store(MemoryCounterStore::new());
        if let Some(k) = signing {
            b = b.signing_key(k);
        }
        Ok(ClientBuilder::new()
            .layer(SecureLayer::new(b.build()?))
            .service(bus.client()))
    };

    let mut station = connect(b"station", Some(station_key))?;
    let mut robot = connect(b"robot-1", None)?;
    let mut sensors: Vec<_> = (1..=3)
        .map(|i| connect(format!("s{i}").as_bytes(), None))
        .collect::<Result<_, _>>()?;
    let mut attacker = bus.client();
    attacker
        .subscribe("#", QoS::AtMostOnce)
        .expect("in-memory bus");
    station.subscribe("sensors/#", QoS::AtLeastOnce)?;
    robot.subscribe("robots/1/cmd", QoS::AtLeastOnce)?;

    println!("== Sensors publish MAC-protected readings");
    for (i, s) in sensors.iter_mut().enumerate() {
        s.publish(
            &format!("sensors/s{}/temp", i + 1),
            format!("{}.5", 20 + i).as_bytes(),
            QoS::AtLeastOnce,
            false,
        )?;
    }
    drain("station", &mut station);

    println!("\n== The station commands the robot (encrypted, signed, fresh)");
    station.publish("robots/1/cmd", b"move 10 20", QoS::AtLeastOnce, false)?;
    drain("robot", &mut robot);

    println!("\n== What an attacker subscribed to '#' saw");
    let mut captured = None;
    while let Some(m) = attacker.try_recv().expect("in-memory bus") {
        let shown = if m.payload.windows(4).any(|w| w == b"move") {
            "PLAINTEXT VISIBLE"
        } else {
            "ciphertext only"
        };
        println!("  {:<20} {:>3} bytes: {shown}", m.topic, m.payload.len());
        if m.topic == "robots/1/cmd" {
            captured = Some(m.payload);
        }
    }
    let captured = captured.expect("the command was published");

    println!("\n== Attacks on the robot");
    println!("  replaying the captured command");
    attacker
        .publish("robots/1/cmd", &captured, QoS::AtLeastOnce, false)
        .expect("in-memory bus");
    println!("  moving the captured command to robots/2/cmd, which robot-1 also obeys");
    robot.subscribe("robots/2/cmd", QoS::AtLeastOnce)?;
    attacker
        .publish("robots/2/cmd", &captured, QoS::AtLeastOnce, false)
        .expect("in-memory bus");
    println!("  forging a command with no keys");
    attacker
        .publish(
            "robots/1/cmd",
            b"\x10\x11\x01\x07stationXmove 99 99",
            QoS::AtLeastOnce,
            false,
        )
        .expect("in-memory bus");
    println!("  injecting a fake sensor reading");
    attacker
        .publish("sensors/s1/temp", b"99.9", QoS::AtLeastOnce, false)
        .expect("in-memory bus");
    drain("robot", &mut robot);
    drain("station", &mut station);

    println!("\n== The robot is still running: a new command is accepted");
    station.publish("robots/1/cmd", b"stop", QoS::AtLeastOnce, false)?;
    drain("robot", &mut robot);

    let r = robot.stats();
    println!(
        "\nrobot: {} accepted, {} rejected {:?}",
        r.accepted,
        r.rejected_total(),
        r.rejected
    );
    Ok(())
}

fn drain(name: &str, client: &mut Secure<MemoryClient>) {
    while let Ok(Some(d)) = client.recv() {
        match d {
            Delivery::Accepted(m) => {
                let from = m.envelope.map(|e| e.sender.to_string()).unwrap_or_default();
                println!(
                    "  {name} ACCEPTED {:<16} from {from}: {}",
                    m.topic,
                    String::from_utf8_lossy(&m.payload)
                );
            }
            Delivery::Rejected(r) => println!("  {name} REJECTED {:<16} {}", r.topic, r.error),
            Delivery::Rekeyed(a) => println!("  {name} moved to key epoch {}", a.epoch),
            Delivery::Duplicate { topic } => {
                println!("  {name} dropped a redelivered duplicate on {topic}")
            }
        }
    }
}
