//! Scenarios 1 and 2: a fleet of sensors and a control station.
//!
//! Many simulated sensors (100 by default) publish readings under a MAC or
//! encryption policy. The control station changes their reporting rate with
//! a signed, encrypted command. A rogue client with broker access but no keys
//! injects fake readings and a fake rate command: all are rejected.
//!
//! Run: `cargo run -p mqseal-examples --bin sensor` (options: `--sensors 100
//! --mode mac|encrypt --seconds 4`, and `--broker ...` for an external broker).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use mqseal::*;
use mqseal_examples::{BrokerArgs, demo_keys};
use mqseal_rumqttc::{QoS, SecureEvent};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Mode {
    /// Readings stay readable, with an HMAC-SHA256 tag.
    Mac,
    /// Readings are encrypted with AES-256-GCM.
    Encrypt,
}

#[derive(Parser, Debug)]
#[command(
    about = "A sensor fleet whose reporting rate a control station changes with signed commands"
)]
struct Cli {
    #[command(flatten)]
    broker: BrokerArgs,
    /// How many sensors.
    #[arg(long, default_value_t = 100)]
    sensors: usize,
    /// How readings are protected.
    #[arg(long, value_enum, default_value_t = Mode::Mac)]
    mode: Mode,
    /// How long each phase lasts, in seconds.
    #[arg(long, default_value_t = 2.0)]
    seconds: f64,
}

fn policy(mode: Mode) -> Policy {
    let readings: Protection = match mode {
        Mode::Mac => Protection::mac().into(),
        Mode::Encrypt => Protection::encrypt(Aead::Aes256Gcm).into(),
    };
    Policy::builder()
        .rule(
            "control/sensors/rate",
            Protection::encrypt(Aead::Aes256Gcm)
                .sign()
                .freshness(Freshness::max_age(Duration::from_secs(5))),
        )
        .expect("valid rule")
        .rule("sensors/#", readings)
        .expect("valid rule")
        .build()
}

#[derive(Default)]
struct Counts {
    rate_changes: AtomicU64,
    rejected_commands: AtomicU64,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let cli = Cli::parse();
    let broker = cli.broker.connect()?;
    let phase = Duration::from_secs_f64(cli.seconds);
    let endpoint = |id: &str| {
        Endpoint::builder(policy(cli.mode))
            .sender_id(SenderId::try_from(id).expect("short id"))
            .keyring(Keyring::new(1, demo_keys::group()))
            .trust(demo_keys::trust())
            .counter_store(MemoryCounterStore::new())
            .build()
    };

    let station_ep = Endpoint::builder(policy(cli.mode))
        .sender_id(demo_keys::station_id())
        .keyring(Keyring::new(1, demo_keys::group()))
        .signing_key(demo_keys::station())
        .counter_store(MemoryCounterStore::new())
        .build()?;
    let (station, mut readings) = broker
        .secure("station", station_ep, &[("sensors/#", QoS::AtMostOnce)])
        .await?;

    println!(
        "connecting {} sensors ({:?} readings)...",
        cli.sensors, cli.mode
    );
    let counts = Arc::new(Counts::default());
    let stop_at = Instant::now() + phase * 2 + Duration::from_millis(500);
    for i in 0..cli.sensors {
        let id = format!("s{i}");
        let (client, mut events) = broker
            .secure(
                &id,
                endpoint(&id)?,
                &[("control/sensors/rate", QoS::AtLeastOnce)],
            )
            .await?;
        let counts = counts.clone();
        tokio::spawn(async move {
            let mut interval = Duration::from_millis(1000);
            let mut n = 0u32;
            let mut next =
                tokio::time::Instant::now() + Duration::from_millis(i as u64 * 1000 / 100 % 1000);
            while Instant::now() < stop_at {
                tokio::select! {
                    _ = tokio::time::sleep_until(next) => {
                        n += 1;
                        let reading = format!("{{\"t\":{:.1},\"n\":{n}}}", 20.0 + (i % 10) as f64 / 10.0);
                        if client.publish(format!("sensors/{id}/temp"), QoS::AtMostOnce, false, reading).await.is_err() {
                            return;
                        }
                        next += interval;
                    }
                    Some(e) = events.recv() => match e {
                        SecureEvent::Message(m) => {
                            if let Some(ms) = std::str::from_utf8(&m.payload).ok().and_then(|s| s.strip_prefix("interval_ms=")).and_then(|s| s.parse().ok()) {
                                interval = Duration::from_millis(ms);
                                counts.rate_changes.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        SecureEvent::Rejected(_) => {
                            counts.rejected_commands.fetch_add(1, Ordering::Relaxed);
                        }
                        _ => {}
                    }
                }
            }
        });
    }
    // Let the subscriptions settle.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let (rogue, _) = broker.raw("rogue").await?;
    let count_phase = async |readings: &mut tokio::sync::mpsc::UnboundedReceiver<SecureEvent>,
                             d: Duration| {
        let (mut ok, mut bad) = (0u64, Vec::new());
        let end = tokio::time::Instant::now() + d;
        while let Ok(Some(e)) = tokio::time::timeout_at(end, readings.recv()).await {
            match e {
                SecureEvent::Message(_) => ok += 1,
                SecureEvent::Rejected(r) => bad.push(format!("{} ({})", r.topic, r.error)),
                _ => {}
            }
        }
        (ok, bad)
    };

    println!("\n== Phase 1: every sensor reports once a second");
    use mqseal_rumqttc::rumqttc::QoS as RawQoS;
    for k in 0..3 {
        rogue
            .publish(
                format!("sensors/s{k}/temp"),
                RawQoS::AtMostOnce,
                false,
                "{\"t\":99.9}",
            )
            .await?;
    }
    let (ok, bad) = count_phase(&mut readings, phase).await;
    println!(
        "  station accepted {ok} readings in {:.1} s",
        phase.as_secs_f64()
    );
    println!("  rogue client (broker access, no keys) injected 3 fake readings:");
    for b in &bad {
        println!("    REJECTED {b}");
    }

    println!("\n== Phase 2: the station orders a reporting interval of 250 ms (signed command)");
    rogue
        .publish(
            "control/sensors/rate",
            RawQoS::AtLeastOnce,
            false,
            "interval_ms=1",
        )
        .await?;
    station
        .publish(
            "control/sensors/rate",
            QoS::AtLeastOnce,
            false,
            "interval_ms=250",
        )
        .await?;
    let (ok2, _) = count_phase(&mut readings, phase).await;
    println!(
        "  {} of {} sensors changed their rate; {} fake rate commands were rejected by the sensors",
        counts.rate_changes.load(Ordering::Relaxed),
        cli.sensors,
        counts.rejected_commands.load(Ordering::Relaxed)
    );
    println!(
        "  station accepted {ok2} readings in {:.1} s (was {ok})",
        phase.as_secs_f64()
    );
    let s = station.stats();
    println!(
        "\nstation: {} accepted, {} rejected {:?}",
        s.accepted,
        s.rejected_total(),
        s.rejected
    );
    Ok(())
}
