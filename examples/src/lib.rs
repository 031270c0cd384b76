//! Shared pieces of the scenario programs: broker selection (embedded by
//! default, external with `--broker`), demo keys, and a client driver.

use std::time::Duration;

use clap::Args;
use mqseal::*;
use mqseal_rumqttc::{MqttOptions, QoS, SecureAsyncClient, SecureEvent, tls};
use tokio::sync::mpsc;

/// Where the broker is.
#[derive(Args, Debug, Clone)]
pub struct BrokerArgs {
    /// An external broker, `mqtt://host:port` or `mqtts://host:port`.
    /// Without it, an embedded broker starts on a free loopback port.
    #[arg(long)]
    pub broker: Option<String>,
    /// CA certificate (PEM) for `mqtts://`.
    #[arg(long)]
    pub ca: Option<String>,
    /// Client certificate (PEM) for mutual TLS.
    #[arg(long, requires = "key")]
    pub cert: Option<String>,
    /// Client private key (PEM) for mutual TLS.
    #[arg(long, requires = "cert")]
    pub key: Option<String>,
    /// Broker username.
    #[arg(long)]
    pub username: Option<String>,
    /// Broker password.
    #[arg(long, requires = "username")]
    pub password: Option<String>,
}

/// A connected broker: where it is and how to log in.
#[derive(Debug, Clone)]
pub struct Broker {
    host: String,
    port: u16,
    tls: Option<TlsFiles>,
    credentials: Option<(String, String)>,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A CA certificate and an optional client certificate and key, as PEM.
type TlsFiles = (Vec<u8>, Option<(Vec<u8>, Vec<u8>)>);

impl BrokerArgs {
    /// Starts the embedded broker, or parses the external one.
    pub fn connect(&self) -> Result<Broker, BoxError> {
        let credentials = self
            .username
            .clone()
            .map(|u| (u, self.password.clone().unwrap_or_default()));
        let Some(url) = &self.broker else {
            let b = mqseal_broker::EmbeddedBroker::start()?;
            println!("(embedded broker on 127.0.0.1:{})", b.port());
            return Ok(Broker {
                host: "127.0.0.1".into(),
                port: b.port(),
                tls: None,
                credentials,
            });
        };
        let (scheme, rest) = url
            .split_once("://")
            .ok_or("--broker must look like mqtts://host:port")?;
        let (host, port) = rest.rsplit_once(':').ok_or("--broker needs a port")?;
        let port: u16 = port.parse().map_err(|_| "bad port in --broker")?;
        let tls = match scheme {
            "mqtt" if self.ca.is_some() || self.cert.is_some() => {
                return Err(
                    "--ca, --cert and --key need an mqtts:// broker: with mqtt:// they would be \
                     ignored, and the connection (password included) would be in the clear"
                        .into(),
                );
            }
            "mqtt" => None,
            "mqtts" => {
                let ca = std::fs::read(self.ca.as_ref().ok_or("mqtts:// needs --ca")?)?;
                let client = match (&self.cert, &self.key) {
                    (Some(c), Some(k)) => Some((std::fs::read(c)?, std::fs::read(k)?)),
                    _ => None,
                };
                Some((ca, client))
            }
            other => return Err(format!("unknown scheme {other}: use mqtt or mqtts").into()),
        };
        println!("(broker {url})");
        Ok(Broker {
            host: host.into(),
            port,
            tls,
            credentials,
        })
    }
}

impl Broker {
    /// rumqttc options for `client_id`.
    pub fn options(&self, client_id: &str) -> Result<MqttOptions, BoxError> {
        let mut o = MqttOptions::new(client_id, &self.host, self.port);
        o.set_keep_alive(Duration::from_secs(10));
        o.set_max_packet_size(1024 * 1024, 1024 * 1024);
        if let Some((ca, client)) = &self.tls {
            let client = client.as_ref().map(|(c, k)| (&c[..], &k[..]));
            o.set_transport(tls::transport(ca, client)?);
        }
        if let Some((u, p)) = &self.credentials {
            o.set_credentials(u, p);
        }
        Ok(o)
    }

    /// A secure client subscribed to `subscriptions`, whose event loop runs
    /// on a task; its verified and rejected messages arrive on the returned
    /// channel. It subscribes again whenever it connects to a broker that
    /// kept no session for it (after a broker restart, say), so a
    /// long-running device does not go deaf.
    pub async fn secure(
        &self,
        client_id: &str,
        endpoint: Endpoint,
        subscriptions: &[(&str, QoS)],
    ) -> Result<(SecureAsyncClient, mpsc::UnboundedReceiver<SecureEvent>), BoxError> {
        let (client, mut eventloop) =
            SecureAsyncClient::new(self.options(client_id)?, 100, endpoint)?;
        let (tx, rx) = mpsc::unbounded_channel();
        let (up_tx, mut up) = mpsc::channel(1);
        let subscriber = client.clone();
        let subscriptions: Vec<(String, QoS)> = subscriptions
            .iter()
            .map(|(f, q)| ((*f).to_owned(), *q))
            .collect();
        tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(SecureEvent::Mqtt(mqseal_rumqttc::Event::Incoming(
                        mqseal_rumqttc::Packet::ConnAck(ack),
                    ))) => {
                        if ack.session_present {
                            let _ = up_tx.try_send(());
                        } else {
                            // On its own task: the request channel may be
                            // full, and only this loop empties it. `secure`
                            // returns once the requests are queued.
                            let (c, subs) = (subscriber.clone(), subscriptions.clone());
                            let up_tx = up_tx.clone();
                            tokio::spawn(async move {
                                for (filter, qos) in subs {
                                    if let Err(e) = c.subscribe(filter, qos).await {
                                        eprintln!("cannot subscribe: {e}");
                                    }
                                }
                                let _ = up_tx.try_send(());
                            });
                        }
                    }
                    Ok(SecureEvent::Mqtt(_)) => {}
                    Ok(e) => {
                        if tx.send(e).is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        eprintln!("connection error: {e}; retrying");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(10), up.recv())
            .await
            .map_err(|_| "could not connect to the broker within 10 s")?;
        Ok((client, rx))
    }

    /// A plain rumqttc client with no keys (an attacker or a spy); received
    /// publishes arrive on the channel.
    pub async fn raw(
        &self,
        client_id: &str,
    ) -> Result<
        (
            mqseal_rumqttc::rumqttc::AsyncClient,
            mpsc::UnboundedReceiver<mqseal_rumqttc::rumqttc::Publish>,
        ),
        BoxError,
    > {
        use mqseal_rumqttc::rumqttc::{AsyncClient, Event, Packet};
        let (client, mut eventloop) = AsyncClient::new(self.options(client_id)?, 100);
        let (tx, rx) = mpsc::unbounded_channel();
        let (up_tx, mut up) = mpsc::channel(1);
        tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let _ = tx.send(p);
                    }
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        let _ = up_tx.try_send(());
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(10), up.recv())
            .await
            .map_err(|_| "could not connect to the broker within 10 s")?;
        Ok((client, rx))
    }
}

/// Fixed demonstration keys, so that separate processes (a station and a
/// robot against an external broker) share them. Never use them for real:
/// generate keys with `GroupSecret::generate` and `SigningKey::generate`.
pub mod demo_keys {
    use mqseal::*;

    /// The fleet's group secret.
    pub fn group() -> GroupSecret {
        GroupSecret::from_bytes(*b"mqseal demo group secret: public")
    }

    /// The control station's signing key.
    pub fn station() -> SigningKey {
        SigningKey::from_seed(*b"mqseal demo station key: public!")
    }

    /// The station's sender id.
    pub fn station_id() -> SenderId {
        SenderId::new(b"station").expect("valid id")
    }

    /// A trust store holding the station's public key.
    pub fn trust() -> TrustStore {
        let mut t = TrustStore::new();
        t.insert(
            station_id(),
            station().public_key(crypto::default_provider()),
        );
        t
    }
}

/// Receives the next event within `secs` seconds.
pub async fn next(rx: &mut mpsc::UnboundedReceiver<SecureEvent>, secs: u64) -> Option<SecureEvent> {
    tokio::time::timeout(Duration::from_secs(secs), rx.recv())
        .await
        .ok()
        .flatten()
}

/// One line describing an event.
pub fn describe(who: &str, e: &SecureEvent) -> String {
    match e {
        SecureEvent::Message(m) => format!(
            "{who}: ACCEPTED {} from {}: {}",
            m.topic,
            m.envelope
                .map(|e| e.sender.to_string())
                .unwrap_or_else(|| "?".into()),
            String::from_utf8_lossy(&m.payload)
        ),
        SecureEvent::Rejected(r) => format!("{who}: REJECTED {} ({})", r.topic, r.error),
        SecureEvent::Duplicate { topic } => {
            format!("{who}: dropped a redelivered duplicate on {topic}")
        }
        other => format!("{who}: {other:?}"),
    }
}
