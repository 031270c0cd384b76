//! A chat over MQTT: per-user topics `chats/<id>/messages`, each with its own
//! random key (as a browser chat would hand out per conversation).
//!
//! A spy with valid broker credentials subscribes to `#` and sees only
//! ciphertext; a user holding one chat's key cannot read another chat.
//!
//! Run: `cargo run -p mqseal-examples --bin chat`

use std::collections::BTreeMap;
use std::time::Duration;

use clap::Parser;
use mqseal::*;
use mqseal_examples::{BrokerArgs, describe, next};
use mqseal_rumqttc::{QoS, SecureAsyncClient, SecureEvent};
use tokio::sync::mpsc::UnboundedReceiver;

#[derive(Parser, Debug)]
#[command(about = "Per-user encrypted chat topics; a spy subscribed to # sees only ciphertext")]
struct Cli {
    #[command(flatten)]
    broker: BrokerArgs,
}

/// The policy of one chat: its topic, encrypted.
fn chat_policy(user: &str) -> Policy {
    Policy::builder()
        .rule(
            &format!("chats/{user}/messages"),
            Protection::encrypt(Aead::ChaCha20Poly1305),
        )
        .expect("valid rule")
        .build()
}

fn endpoint(me: &str, chat: &str, key: &GroupSecret) -> Result<Endpoint, Error> {
    Endpoint::builder(chat_policy(chat))
        .sender_id(SenderId::try_from(me)?)
        .keyring(Keyring::new(1, key.clone()))
        .counter_store(MemoryCounterStore::new())
        .build()
}

type Conn = (SecureAsyncClient, UnboundedReceiver<SecureEvent>);

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let cli = Cli::parse();
    let broker = cli.broker.connect()?;
    let random = crypto::default_provider().random;
    let users = ["alice", "bob", "carol"];
    // One random key per chat, known to its owner and to those allowed to write to it.
    let keys: BTreeMap<&str, GroupSecret> = users
        .iter()
        .map(|u| Ok((*u, GroupSecret::generate(random)?)))
        .collect::<Result<_, Error>>()?;

    let (spy, mut spied) = broker.raw("spy").await?;
    spy.subscribe("#", mqseal_rumqttc::rumqttc::QoS::AtLeastOnce)
        .await?;

    // Each user reads their own chat.
    let mut inboxes: BTreeMap<&str, Conn> = BTreeMap::new();
    for u in users {
        let inbox = format!("chats/{u}/messages");
        let conn = broker
            .secure(
                &format!("{u}-inbox"),
                endpoint(u, u, &keys[u])?,
                &[(&inbox, QoS::AtLeastOnce)],
            )
            .await?;
        inboxes.insert(u, conn);
    }
    // Carol also tries to read Alice's chat with the key she has (her own).
    let (_carol_snoop, mut snooped) = broker
        .secure(
            "carol-snoop",
            endpoint("carol", "alice", &keys["carol"])?,
            &[("chats/alice/messages", QoS::AtLeastOnce)],
        )
        .await?;
    tokio::time::sleep(Duration::from_millis(300)).await;

    println!("== Bob writes to Alice, Alice writes to Bob");
    let (bob_to_alice, _) = broker
        .secure("bob-out", endpoint("bob", "alice", &keys["alice"])?, &[])
        .await?;
    let (alice_to_bob, _) = broker
        .secure("alice-out", endpoint("alice", "bob", &keys["bob"])?, &[])
        .await?;
    bob_to_alice
        .publish(
            "chats/alice/messages",
            QoS::AtLeastOnce,
            false,
            "Lunch at noon?",
        )
        .await?;
    alice_to_bob
        .publish(
            "chats/bob/messages",
            QoS::AtLeastOnce,
            false,
            "Yes, see you there",
        )
        .await?;
    for u in ["alice", "bob"] {
        let (_, rx) = inboxes.get_mut(u).expect("user");
        match next(rx, 5).await {
            Some(e) => println!("  {}", describe(u, &e)),
            None => println!("  {u}: nothing arrived"),
        }
    }

    println!("\n== Carol reads Alice's chat with the wrong key");
    match next(&mut snooped, 3).await {
        Some(e) => println!("  {}", describe("carol", &e)),
        None => println!("  carol: nothing arrived"),
    }

    println!("\n== What the spy subscribed to # saw");
    while let Ok(Some(p)) = tokio::time::timeout(Duration::from_secs(1), spied.recv()).await {
        let readable = ["Lunch", "noon", "see you"]
            .iter()
            .any(|w| p.payload.windows(w.len()).any(|x| x == w.as_bytes()));
        println!(
            "  {:<22} {:>3} bytes: {}",
            p.topic,
            p.payload.len(),
            if readable {
                "PLAINTEXT VISIBLE"
            } else {
                "ciphertext only"
            }
        );
    }
    Ok(())
}
