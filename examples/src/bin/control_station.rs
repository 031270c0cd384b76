//! Scenario 3: a control station commands a robot.
//!
//! The robot accepts only commands that are encrypted, signed by the station,
//! fresh (at most 2 s old) and not replayed. An attacker replays a captured
//! command, forges one with a stolen group secret, delays one past the
//! freshness age, and moves one to another robot's topic. Every attack is
//! rejected, and the robot keeps running.
//!
//! Run: `cargo run -p mqseal-examples --bin control_station`
//! (add `--broker mqtts://host:port --ca ca.crt ...` for an external broker,
//! and `--no-robot` when `robot` runs in another process).

use std::time::Duration;

use clap::Parser;
use mqseal::counter::{CounterScope, CounterStore, Role};
use mqseal::*;
use mqseal_examples::{BrokerArgs, demo_keys, describe, next};
use mqseal_rumqttc::QoS;

const MAX_AGE: Duration = Duration::from_secs(2);

#[derive(Parser, Debug)]
#[command(
    about = "A control station sends signed, encrypted, fresh commands to a robot, and an attacker fails"
)]
struct Cli {
    #[command(flatten)]
    broker: BrokerArgs,
    /// Do not run a robot in this process (run the `robot` example instead).
    #[arg(long)]
    no_robot: bool,
}

fn policy() -> Policy {
    Policy::builder()
        .rule(
            "robots/+/cmd",
            Protection::encrypt(Aead::Aes256Gcm)
                .sign()
                .freshness(Freshness::max_age(MAX_AGE)),
        )
        .expect("valid rule")
        .build()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let cli = Cli::parse();
    let broker = cli.broker.connect()?;

    let station_ep = Endpoint::builder(policy())
        .sender_id(demo_keys::station_id())
        .keyring(Keyring::new(1, demo_keys::group()))
        .signing_key(demo_keys::station())
        .counter_store(MemoryCounterStore::new())
        .build()?;
    let (station, _) = broker.secure("station", station_ep, &[]).await?;

    let mut robot = None;
    if !cli.no_robot {
        let robot_ep = Endpoint::builder(policy())
            .keyring(Keyring::new(1, demo_keys::group()))
            .trust(demo_keys::trust())
            .build()?;
        let (client, events) = broker
            .secure("robot-1", robot_ep, &[("robots/1/cmd", QoS::AtLeastOnce)])
            .await?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        robot = Some((client, events));
    }
    let (attacker, mut captured) = broker.raw("attacker").await?;
    attacker
        .subscribe("robots/#", mqseal_rumqttc::rumqttc::QoS::AtLeastOnce)
        .await?;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let mut show = async |what: &str| {
        println!("\n== {what}");
        if let Some((_, events)) = robot.as_mut() {
            match next(events, 5).await {
                Some(e) => println!("  {}", describe("robot-1", &e)),
                None => println!("  robot-1: nothing arrived"),
            }
        }
    };

    station
        .publish(
            "robots/1/cmd",
            QoS::AtLeastOnce,
            false,
            b"move arm to 10,20",
        )
        .await?;
    show("The station sends a command").await;
    let capture = tokio::time::timeout(Duration::from_secs(5), captured.recv())
        .await?
        .ok_or("the attacker saw nothing")?;
    println!(
        "  attacker captured {} bytes of ciphertext on {}",
        capture.payload.len(),
        capture.topic
    );

    attacker
        .publish(
            "robots/1/cmd",
            mqseal_rumqttc::rumqttc::QoS::AtLeastOnce,
            false,
            capture.payload.to_vec(),
        )
        .await?;
    show("Attack 1: the attacker replays the captured command").await;

    // An insider who stole the group secret, but not the station's signing
    // key, claims to be the station with a counter the robot has not seen.
    let mut counters = MemoryCounterStore::new();
    let scope = CounterScope {
        role: Role::Send,
        epoch: 1,
        sender: demo_keys::station_id(),
    };
    counters.store(&scope, 1_000_000)?;
    let mut insider = Endpoint::builder(policy())
        .sender_id(demo_keys::station_id())
        .keyring(Keyring::new(1, demo_keys::group()))
        .signing_key(SigningKey::generate(crypto::default_provider().random)?)
        .counter_store(counters)
        .build()?;
    let forged = insider.seal("robots/1/cmd", b"open the gripper")?;
    attacker
        .publish(
            "robots/1/cmd",
            mqseal_rumqttc::rumqttc::QoS::AtLeastOnce,
            false,
            forged,
        )
        .await?;
    show("Attack 2: a forged command, sealed with a stolen group secret").await;

    let late = station.with_endpoint(|ep| ep.seal("robots/1/cmd", b"move arm to 0,0"))?;
    println!(
        "\n   (the attacker holds a genuine command back for {} s)",
        MAX_AGE.as_secs_f32() + 0.5
    );
    tokio::time::sleep(MAX_AGE + Duration::from_millis(500)).await;
    attacker
        .publish(
            "robots/1/cmd",
            mqseal_rumqttc::rumqttc::QoS::AtLeastOnce,
            false,
            late,
        )
        .await?;
    show("Attack 3: the delayed command arrives too late").await;

    let for_robot_2 = station.with_endpoint(|ep| ep.seal("robots/2/cmd", b"shut down"))?;
    attacker
        .publish(
            "robots/1/cmd",
            mqseal_rumqttc::rumqttc::QoS::AtLeastOnce,
            false,
            for_robot_2,
        )
        .await?;
    show("Attack 4: a command for robot 2 is moved to robot 1's topic").await;

    station
        .publish("robots/1/cmd", QoS::AtLeastOnce, false, b"return to base")
        .await?;
    show("The robot is still running: the next genuine command").await;

    if let Some((client, _)) = &robot {
        let s = client.stats();
        println!(
            "\nrobot-1: {} accepted, {} rejected {:?}",
            s.accepted,
            s.rejected_total(),
            s.rejected
        );
    }
    Ok(())
}
