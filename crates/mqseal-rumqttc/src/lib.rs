//! # mqseal-rumqttc: mqseal for the rumqttc MQTT client
//!
//! [`SecureAsyncClient`] and [`SecureEventLoop`] have the shape of rumqttc's
//! `AsyncClient` and `EventLoop`: `new(options, cap, endpoint)` returns a
//! cheap `Clone` client and an event loop you `poll()` in a loop. Every publish
//! is sealed by the [`Endpoint`]; `poll()` yields only verified, opened
//! messages, and a message that fails a check comes out as
//! [`SecureEvent::Rejected`] with the topic and the typed reason, while the
//! loop keeps going. [`SecureClient`] and [`SecureConnection`] are the blocking
//! mirror.
//!
//! - QoS 1 and 2 work as in rumqttc. Acknowledgements are sent by rumqttc for
//!   every received publish, rejected or not, so the broker never redelivers a
//!   rejected message forever. They are sent when the publish is read, before
//!   the application sees it: rumqttc's manual acknowledgements are refused
//!   by `new`, since a [`SecureEvent`] carries no packet to acknowledge.
//! - A redelivered duplicate of an accepted envelope (DUP flag set) is dropped
//!   and reported as [`SecureEvent::Duplicate`], so the application sees each
//!   message once (on topics with replay protection). A publisher's own
//!   retransmission after a lost connection reaches subscribers without the
//!   DUP flag (MQTT 3.1.1 §3.3.1.1: the broker does not pass it on), so its
//!   second copy is reported as [`SecureEvent::Rejected`] with
//!   `replayed`: a rejection that is not always an attack.
//! - Packet size limits come from the endpoint: `new` sets rumqttc's
//!   limits from [`packet_limit`] of the endpoint's [`Endpoint::max_payload`]
//!   (a packet's remaining length; rumqttc's outgoing limit counts the fixed
//!   header too, so it gets 5 bytes more), replacing those of the options, so that every
//!   envelope the endpoint may seal or accept fits, and a larger one comes
//!   out as [`SecureEvent::Rejected`] (`too_large`) instead of a dropped
//!   connection. A packet above even that limit still makes rumqttc drop the
//!   connection, and a broker redelivers it on a persistent session: have the
//!   broker refuse larger packets (Mosquitto: `max_packet_size`).
//! - TLS uses rustls with the `ring` provider only (no aws-lc, no C build):
//!   see [`tls`] for a private CA, client certificates and the transport.
//!
//! ```no_run
//! use mqseal::*;
//! use mqseal_rumqttc::{MqttOptions, QoS, SecureAsyncClient, SecureEvent};
//!
//! # async fn run(endpoint: Endpoint) -> Result<(), Box<dyn std::error::Error>> {
//! let options = MqttOptions::new("robot-1", "127.0.0.1", 1883);
//! let (client, mut eventloop) = SecureAsyncClient::new(options, 10, endpoint)?;
//! client.subscribe("robots/1/cmd", QoS::AtLeastOnce).await?;
//! loop {
//!     match eventloop.poll().await? {
//!         SecureEvent::Message(m) => println!("{}: {:?}", m.topic, m.payload),
//!         SecureEvent::Rejected(r) => eprintln!("rejected on {}: {}", r.topic, r.error),
//!         _ => {}
//!     }
//! }
//! # }
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use mqseal::layer::{Delivery, Received, Rejected, Stats, open_message};
use mqseal::pubsub::Message;
use mqseal::{Endpoint, Error};
pub use rumqttc::{self, ConnectionError, Event, MqttOptions, Packet, QoS};

pub mod tls;

/// What the secure event loop yields.
#[derive(Debug)]
#[non_exhaustive]
pub enum SecureEvent {
    /// A verified, opened message.
    Message(Received),
    /// A received message that failed a check; the loop goes on.
    Rejected(Rejected),
    /// A rekey message on the endpoint's rekey topic was verified and
    /// applied: the endpoint now sends under a new epoch.
    Rekeyed(mqseal::rekey::Applied),
    /// A redelivery of an envelope already delivered; dropped.
    Duplicate {
        /// The topic.
        topic: String,
    },
    /// Any other MQTT event (connection, acknowledgements, outgoing packets).
    Mqtt(Event),
}

/// What a client and its event loop share. The counts have their own lock,
/// so that [`SecureAsyncClient::stats`] works inside
/// [`SecureAsyncClient::with_endpoint`]; the publish count is an atomic, so
/// that a publish takes one lock (the endpoint's).
struct Shared {
    endpoint: Mutex<Endpoint>,
    /// The largest remaining length of a packet, sent or received
    /// ([`packet_limit`]; rumqttc's outgoing limit adds the fixed header).
    packet_limit: usize,
    /// Every count but `published`.
    stats: Mutex<Stats>,
    published: AtomicU64,
}

impl Shared {
    fn new(endpoint: Endpoint, packet_limit: usize) -> Arc<Self> {
        Arc::new(Shared {
            packet_limit,
            endpoint: Mutex::new(endpoint),
            stats: Mutex::new(Stats::default()),
            published: AtomicU64::new(0),
        })
    }

    /// The outcome of handing a sealed publish to the client: the publish is
    /// counted once the client took it.
    fn sent(&self, result: Result<(), rumqttc::ClientError>) -> Result<(), Error> {
        result.map_err(transport)?;
        self.published.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn endpoint(&self) -> MutexGuard<'_, Endpoint> {
        self.endpoint.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn with_endpoint<R>(&self, f: impl FnOnce(&mut Endpoint) -> R) -> R {
        f(&mut self.endpoint())
    }

    fn counts(&self) -> MutexGuard<'_, Stats> {
        self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn stats(&self) -> Stats {
        let mut stats = self.counts().clone();
        stats.published = self.published.load(Ordering::Relaxed);
        stats
    }

    /// An exact-size envelope, which rumqttc turns into `Bytes` without
    /// another allocation. Sealing into a vector with room for the longest
    /// header and trailer (about 200 bytes for a 64-byte payload) cost a
    /// second allocation there, and a larger allocation on the publishing
    /// thread that the event loop's thread frees: through the embedded
    /// broker, some runs then fell into a slow mode, with seals taking about
    /// 600 ns instead of 170 ns (see `docs/performance.md`).
    ///
    /// A publish that rumqttc would refuse to write (a payload on an
    /// unprotected topic above the limit) is refused here, with a typed
    /// error: rumqttc would accept it, fail to write it, and retry it on every
    /// reconnect.
    fn seal(&self, topic: &str, payload: &[u8]) -> Result<Vec<u8>, Error> {
        let sealed = self.endpoint().seal(topic, payload)?;
        let packet = 2 + topic.len() + 2 + sealed.len();
        if packet > self.packet_limit {
            return Err(mqseal::ConfigError::PayloadTooLarge {
                len: payload.len(),
                max: self.packet_limit.saturating_sub(packet - payload.len()),
            }
            .into());
        }
        Ok(sealed)
    }

    fn event(&self, event: Event) -> SecureEvent {
        let Event::Incoming(Packet::Publish(p)) = event else {
            return SecureEvent::Mqtt(event);
        };
        let msg = Message {
            topic: p.topic,
            payload: p.payload.to_vec(),
            qos: from_qos(p.qos),
            retain: p.retain,
            dup: p.dup,
        };
        // Lock order: the endpoint, then the counts (`stats` alone takes
        // only the counts).
        let mut endpoint = self.endpoint();
        match open_message(&mut endpoint, &mut self.counts(), msg) {
            Delivery::Accepted(m) => SecureEvent::Message(m),
            Delivery::Rejected(r) => SecureEvent::Rejected(r),
            Delivery::Duplicate { topic } => SecureEvent::Duplicate { topic },
            Delivery::Rekeyed(applied) => SecureEvent::Rekeyed(applied),
        }
    }
}

fn from_qos(q: QoS) -> mqseal::pubsub::QoS {
    match q {
        QoS::AtMostOnce => mqseal::pubsub::QoS::AtMostOnce,
        QoS::AtLeastOnce => mqseal::pubsub::QoS::AtLeastOnce,
        QoS::ExactlyOnce => mqseal::pubsub::QoS::ExactlyOnce,
    }
}

fn transport(e: rumqttc::ClientError) -> Error {
    Error::Transport(Box::new(e))
}

/// An asynchronous client that seals every publish. Cheap to clone; clones
/// share one [`Endpoint`], so counters never repeat across them.
#[derive(Clone)]
pub struct SecureAsyncClient {
    client: rumqttc::AsyncClient,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for SecureAsyncClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecureAsyncClient").finish_non_exhaustive()
    }
}

/// The event loop of a [`SecureAsyncClient`]: call [`SecureEventLoop::poll`] in a loop.
pub struct SecureEventLoop {
    eventloop: rumqttc::EventLoop,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for SecureEventLoop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecureEventLoop").finish_non_exhaustive()
    }
}

/// The largest MQTT packet (as rumqttc counts it: the remaining length)
/// that carries an envelope of `max_payload` bytes of payload on the
/// longest topic: the topic length and topic, a packet id, the longest
/// header and trailer.
/// At most MQTT's largest remaining length (268 435 455 bytes), which rumqttc
/// cannot exceed either.
pub fn packet_limit(max_payload: usize) -> usize {
    const MQTT_MAX_REMAINING: usize = 268_435_455;
    (2 + usize::from(u16::MAX) + 2)
        .saturating_add(max_payload)
        .saturating_add(mqseal::envelope::MAX_HEADER_LEN + mqseal::envelope::MAX_TRAILER_LEN)
        .min(MQTT_MAX_REMAINING)
}

/// The options the secure client runs with (the endpoint's packet limits,
/// and no manual acknowledgements), and what its client and event loop share.
fn prepare(
    mut options: MqttOptions,
    endpoint: Endpoint,
) -> Result<(MqttOptions, Arc<Shared>), Error> {
    if options.manual_acks() {
        return Err(mqseal::ConfigError::Unsupported(
            "rumqttc's manual acknowledgements: the secure client has rumqttc acknowledge every \
             received publish (a SecureEvent carries no packet to acknowledge); leave \
             MqttOptions::set_manual_acks off",
        )
        .into());
    }
    // rumqttc counts an incoming packet's remaining length, and an outgoing
    // packet whole: its fixed header (at most 5 bytes) too.
    let limit = packet_limit(endpoint.max_payload());
    options.set_max_packet_size(limit, limit + 5);
    Ok((options, Shared::new(endpoint, limit)))
}

impl SecureAsyncClient {
    /// A client and its event loop, as `rumqttc::AsyncClient::new`, with the
    /// endpoint that seals and opens. The options' packet size limits are
    /// replaced by the endpoint's ([`packet_limit`], plus the fixed header
    /// for outgoing packets); options with manual
    /// acknowledgements are refused (`ConfigError::Unsupported`).
    pub fn new(
        options: MqttOptions,
        cap: usize,
        endpoint: Endpoint,
    ) -> Result<(Self, SecureEventLoop), Error> {
        let (options, shared) = prepare(options, endpoint)?;
        let (client, eventloop) = rumqttc::AsyncClient::new(options, cap);
        Ok((
            SecureAsyncClient {
                client,
                shared: shared.clone(),
            },
            SecureEventLoop { eventloop, shared },
        ))
    }

    /// Seals `payload` for `topic` and publishes it.
    pub async fn publish(
        &self,
        topic: impl Into<String>,
        qos: QoS,
        retain: bool,
        payload: impl AsRef<[u8]>,
    ) -> Result<(), Error> {
        let topic = topic.into();
        let sealed = self.shared.seal(&topic, payload.as_ref())?;
        let result = self.client.publish(topic, qos, retain, sealed).await;
        self.shared.sent(result)
    }

    /// Subscribes to a topic filter.
    pub async fn subscribe(&self, filter: impl Into<String>, qos: QoS) -> Result<(), Error> {
        self.client.subscribe(filter, qos).await.map_err(transport)
    }

    /// Disconnects from the broker.
    pub async fn disconnect(&self) -> Result<(), Error> {
        self.client.disconnect().await.map_err(transport)
    }

    /// Counts of published, accepted, duplicate and rejected messages.
    pub fn stats(&self) -> Stats {
        self.shared.stats()
    }

    /// Runs `f` with the endpoint, for key changes or a clean-shutdown
    /// [`Endpoint::flush`]. Publishing and receiving wait while `f` runs
    /// (so `f` must not publish through this client, or it waits forever);
    /// [`SecureAsyncClient::stats`] does not. Change keys with
    /// [`Endpoint::with_keyring`] or [`Endpoint::set_keyring`] (both move
    /// forward only; [`Endpoint::danger_replace_keyring`] goes back):
    /// replacing the endpoint itself (`*e = …`) starts it over, with new
    /// counters, replay windows and keyring history.
    pub fn with_endpoint<R>(&self, f: impl FnOnce(&mut Endpoint) -> R) -> R {
        self.shared.with_endpoint(f)
    }
}

impl SecureEventLoop {
    /// The next event. Incoming publishes come out opened and verified, or
    /// rejected; errors are rumqttc's connection errors, and polling again
    /// reconnects, as with rumqttc.
    pub async fn poll(&mut self) -> Result<SecureEvent, ConnectionError> {
        let event = self.eventloop.poll().await?;
        Ok(self.shared.event(event))
    }

    /// Counts of published, accepted, duplicate and rejected messages.
    pub fn stats(&self) -> Stats {
        self.shared.stats()
    }

    /// The rumqttc event loop, for its options and state. Dangerous: its
    /// own `poll` yields publishes that nothing verified, and changing its
    /// options (manual acknowledgements, packet limits) undoes what
    /// [`SecureAsyncClient::new`] set up.
    pub fn danger_eventloop_mut(&mut self) -> &mut rumqttc::EventLoop {
        &mut self.eventloop
    }
}

/// A blocking client that seals every publish; the mirror of [`SecureAsyncClient`].
#[derive(Clone)]
pub struct SecureClient {
    client: rumqttc::Client,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for SecureClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecureClient").finish_non_exhaustive()
    }
}

/// The connection of a [`SecureClient`]: iterate it to drive the client.
pub struct SecureConnection {
    connection: rumqttc::Connection,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for SecureConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecureConnection").finish_non_exhaustive()
    }
}

impl SecureClient {
    /// A client and its connection, as `rumqttc::Client::new`, set up as
    /// [`SecureAsyncClient::new`] does.
    pub fn new(
        options: MqttOptions,
        cap: usize,
        endpoint: Endpoint,
    ) -> Result<(Self, SecureConnection), Error> {
        let (options, shared) = prepare(options, endpoint)?;
        let (client, connection) = rumqttc::Client::new(options, cap);
        Ok((
            SecureClient {
                client,
                shared: shared.clone(),
            },
            SecureConnection { connection, shared },
        ))
    }

    /// Seals `payload` for `topic` and publishes it.
    pub fn publish(
        &self,
        topic: impl Into<String>,
        qos: QoS,
        retain: bool,
        payload: impl AsRef<[u8]>,
    ) -> Result<(), Error> {
        let topic = topic.into();
        let sealed = self.shared.seal(&topic, payload.as_ref())?;
        let result = self.client.publish(topic, qos, retain, sealed);
        self.shared.sent(result)
    }

    /// Subscribes to a topic filter.
    pub fn subscribe(&self, filter: impl Into<String>, qos: QoS) -> Result<(), Error> {
        self.client.subscribe(filter, qos).map_err(transport)
    }

    /// Disconnects from the broker.
    pub fn disconnect(&self) -> Result<(), Error> {
        self.client.disconnect().map_err(transport)
    }

    /// Counts of published, accepted, duplicate and rejected messages.
    pub fn stats(&self) -> Stats {
        self.shared.stats()
    }

    /// Runs `f` with the endpoint, as [`SecureAsyncClient::with_endpoint`].
    pub fn with_endpoint<R>(&self, f: impl FnOnce(&mut Endpoint) -> R) -> R {
        self.shared.with_endpoint(f)
    }
}

impl SecureConnection {
    /// Blocks for the next event; `None` once every [`SecureClient`] clone
    /// was dropped. As with rumqttc, an error is returned when the connection
    /// fails or after [`SecureClient::disconnect`], and the next call
    /// reconnects: stop calling it to stay disconnected.
    pub fn recv(&mut self) -> Option<Result<SecureEvent, ConnectionError>> {
        let event = self.connection.recv().ok()?;
        Some(event.map(|e| self.shared.event(e)))
    }

    /// Iterates over events, as `rumqttc::Connection::iter`; it ends only
    /// when every client was dropped (see [`SecureConnection::recv`]).
    pub fn iter(&mut self) -> impl Iterator<Item = Result<SecureEvent, ConnectionError>> + '_ {
        std::iter::from_fn(move || self.recv())
    }

    /// Counts of published, accepted, duplicate and rejected messages.
    pub fn stats(&self) -> Stats {
        self.shared.stats()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mqseal::{GroupSecret, Keyring, MemoryCounterStore, Policy, Protection, SenderId};
    use std::sync::mpsc;
    use std::time::Duration;

    fn endpoint() -> Endpoint {
        let policy = Policy::builder()
            .rule("t/#", Protection::mac())
            .expect("valid rule")
            .build();
        Endpoint::builder(policy)
            .sender_id(SenderId::try_from("dev").expect("short id"))
            .keyring(Keyring::new(1, GroupSecret::from_bytes([1; 32])))
            .counter_store(MemoryCounterStore::new())
            .build()
            .expect("valid endpoint")
    }

    /// Runs `f` on a thread and fails (instead of hanging) if it does not
    /// return: a deadlock guard, not a timing.
    fn returns<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(f());
        });
        rx.recv_timeout(Duration::from_secs(30))
            .expect("deadlock: did not return")
    }

    #[test]
    fn the_packet_limit_stays_within_mqtt() {
        assert_eq!(
            packet_limit(1000),
            2 + 65_535 + 2 + 1000 + mqseal::envelope::MAX_HEADER_LEN + 96
        );
        assert_eq!(packet_limit(usize::MAX), 268_435_455);
        assert_eq!(packet_limit(268_435_455), 268_435_455);
    }

    #[test]
    fn manual_acks_are_refused() {
        let mut options = MqttOptions::new("a", "127.0.0.1", 1);
        options.set_manual_acks(true);
        let err = SecureAsyncClient::new(options.clone(), 10, endpoint()).unwrap_err();
        assert!(
            matches!(err, Error::Config(mqseal::ConfigError::Unsupported(_))),
            "{err:?}"
        );
        assert!(err.to_string().contains("manual acknowledgements"), "{err}");
        assert!(SecureClient::new(options, 10, endpoint()).is_err());
    }

    /// A publish rumqttc could not write is refused with a typed error
    /// (rumqttc would take it, fail to write it and retry it forever): a
    /// payload above `max_payload` on a protected topic (the endpoint), and
    /// one above the packet limit on an unprotected topic (the adapter).
    #[test]
    fn a_publish_above_the_packet_limit_is_refused() {
        let policy = Policy::builder()
            .rule("t/#", Protection::mac())
            .unwrap()
            .rule("open/#", Protection::insecure_plaintext())
            .unwrap()
            .build();
        let endpoint = Endpoint::builder(policy)
            .sender_id(SenderId::try_from("dev").unwrap())
            .keyring(Keyring::new(1, GroupSecret::from_bytes([1; 32])))
            .counter_store(MemoryCounterStore::new())
            .max_payload(1000)
            .build()
            .unwrap();
        let limit = packet_limit(1000);
        let options = MqttOptions::new("a", "127.0.0.1", 1);
        let (client, _connection) = SecureClient::new(options, 10, endpoint).unwrap();
        let too_large = |r: Result<(), Error>| {
            matches!(
                r,
                Err(Error::Config(mqseal::ConfigError::PayloadTooLarge { .. }))
            )
        };
        assert!(too_large(client.publish(
            "t/a",
            QoS::AtMostOnce,
            false,
            [0; 1001]
        )));
        client
            .publish("t/a", QoS::AtMostOnce, false, [0; 1000])
            .unwrap();
        // On the unprotected topic, the packet: 2 + topic + 2 + payload.
        let fits = limit - 2 - "open/a".len() - 2;
        assert!(too_large(client.publish(
            "open/a",
            QoS::AtMostOnce,
            false,
            vec![0; fits + 1]
        )));
        client
            .publish("open/a", QoS::AtMostOnce, false, vec![0; fits])
            .unwrap();
        assert_eq!(client.stats().published, 2);
    }

    #[test]
    fn stats_can_be_read_inside_with_endpoint() {
        let options = MqttOptions::new("a", "127.0.0.1", 1);
        let (client, _eventloop) = SecureAsyncClient::new(options, 10, endpoint()).unwrap();
        let stats = returns(move || client.with_endpoint(|_| client.stats()));
        assert_eq!(stats.published, 0);

        let options = MqttOptions::new("b", "127.0.0.1", 1);
        let (client, _connection) = SecureClient::new(options, 10, endpoint()).unwrap();
        let stats = returns(move || client.with_endpoint(|_| client.stats()));
        assert_eq!(stats.accepted, 0);
    }
}
