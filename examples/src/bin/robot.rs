//! Scenario 3, the robot's side: it obeys only commands that are encrypted,
//! signed by the control station, fresh and not replayed, and reports every
//! rejection without stopping.
//!
//! Run against a broker shared with the station:
//! `cargo run -p mqseal-examples --bin robot -- --broker mqtt://127.0.0.1:1883`
//! then `cargo run -p mqseal-examples --bin control_station -- --broker mqtt://127.0.0.1:1883 --no-robot`.
//! Without `--broker` it starts an embedded broker and waits for a station.

use std::time::Duration;

use clap::Parser;
use mqseal::*;
use mqseal_examples::{BrokerArgs, demo_keys, describe, next};
use mqseal_rumqttc::QoS;

#[derive(Parser, Debug)]
#[command(about = "A robot that accepts only signed, encrypted, fresh, unreplayed commands")]
struct Cli {
    #[command(flatten)]
    broker: BrokerArgs,
    /// Stop after this many seconds without a command.
    #[arg(long, default_value_t = 60)]
    idle_seconds: u64,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let cli = Cli::parse();
    let broker = cli.broker.connect()?;
    let policy = Policy::builder()
        .rule(
            "robots/+/cmd",
            Protection::encrypt(Aead::Aes256Gcm)
                .sign()
                .freshness(Freshness::max_age(Duration::from_secs(2))),
        )?
        .build();
    let endpoint = Endpoint::builder(policy)
        .keyring(Keyring::new(1, demo_keys::group()))
        .trust(demo_keys::trust())
        .build()?;
    let (client, mut events) = broker
        .secure("robot-1", endpoint, &[("robots/1/cmd", QoS::AtLeastOnce)])
        .await?;
    println!(
        "robot-1 listening on robots/1/cmd (stops after {} s idle)",
        cli.idle_seconds
    );
    while let Some(e) = next(&mut events, cli.idle_seconds).await {
        println!("{}", describe("robot-1", &e));
    }
    let s = client.stats();
    println!(
        "robot-1: {} accepted, {} rejected {:?}",
        s.accepted,
        s.rejected_total(),
        s.rejected
    );
    Ok(())
}
