//! Layers over any [`PubSub`] client, composed like tower's `Layer`.
//!
//! A [`Layer`] wraps a client in another client. [`ClientBuilder`] stacks
//! layers; the first added is the outermost. [`SecureLayer`] is mqseal's: it
//! seals every publish and opens every received message through an
//! [`Endpoint`].
//!
//! # Order
//!
//! The order of the protections *inside* the secure layer is fixed and cannot
//! be configured (see [`crate::protect`]): authentication always comes before
//! the replay window is updated, encryption before the signature, and
//! encryption and MAC are never combined. Layers stacked around it see only
//! plaintext above it and only envelopes below it:
//!
//! ```text
//! application ─ outer layers ─ SecureLayer ─ inner layers ─ client ─ broker
//!              (plaintext)                  (envelopes)
//! ```
//!
//! Unlike tower, [`Layer::layer`] takes the layer by value: a secure layer
//! owns the sender's counters, and a copy of it would reuse nonces.
//!
//! ```
//! use mqseal::pubsub::{MemoryBus, PubSub, QoS};
//! use mqseal::layer::{ClientBuilder, Delivery, SecureLayer};
//! use mqseal::*;
//!
//! let policy = Policy::builder().rule("sensors/#", Protection::mac())?.build();
//! let keyring = Keyring::new(1, GroupSecret::from_bytes([9; 32]));
//! let endpoint = |id: &[u8]| {
//!     Endpoint::builder(policy.clone())
//!         .sender_id(SenderId::new(id).unwrap())
//!         .keyring(keyring.clone())
//!         .counter_store(MemoryCounterStore::new())
//!         .build()
//! };
//! let bus = MemoryBus::new();
//! let mut sensor = ClientBuilder::new().layer(SecureLayer::new(endpoint(b"s1")?)).service(bus.client());
//! let mut station = ClientBuilder::new().layer(SecureLayer::new(endpoint(b"st")?)).service(bus.client());
//! station.subscribe("sensors/#", QoS::AtLeastOnce)?;
//! sensor.publish("sensors/s1/temp", b"21.5", QoS::AtLeastOnce, false)?;
//! let Some(Delivery::Accepted(m)) = station.recv()? else { panic!() };
//! assert_eq!(m.payload, b"21.5");
//! # Ok::<(), mqseal::Error>(())
//! ```

use std::collections::BTreeMap;
use std::fmt;

use crate::endpoint::{Endpoint, EnvelopeMeta};
use crate::error::Error;
use crate::pubsub::{Message, PubSub, QoS};

/// Wraps a client in another client.
pub trait Layer<S> {
    /// The wrapped client.
    type Client;
    /// Wraps `inner`. Takes the layer by value: layers may own unique state.
    fn layer(self, inner: S) -> Self::Client;
}

/// The layer that wraps nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Identity;

impl<S> Layer<S> for Identity {
    type Client = S;
    fn layer(self, inner: S) -> S {
        inner
    }
}

/// Two layers: `outer` wraps what `inner` produced.
#[derive(Debug, Clone, Copy)]
pub struct Stack<Inner, Outer> {
    inner: Inner,
    outer: Outer,
}

impl<S, Inner, Outer> Layer<S> for Stack<Inner, Outer>
where
    Inner: Layer<S>,
    Outer: Layer<Inner::Client>,
{
    type Client = Outer::Client;
    fn layer(self, s: S) -> Self::Client {
        self.outer.layer(self.inner.layer(s))
    }
}

/// Stacks layers: the first added is the outermost, as in tower's `ServiceBuilder`.
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct ClientBuilder<L> {
    layer: L,
}

impl ClientBuilder<Identity> {
    /// A builder with no layers.
    pub fn new() -> Self {
        ClientBuilder { layer: Identity }
    }
}

impl<L> ClientBuilder<L> {
    /// Adds a layer inside those already added.
    pub fn layer<T>(self, layer: T) -> ClientBuilder<Stack<T, L>> {
        ClientBuilder {
            layer: Stack {
                inner: layer,
                outer: self.layer,
            },
        }
    }

    /// Wraps `client` in the layers.
    pub fn service<S>(self, client: S) -> L::Client
    where
        L: Layer<S>,
    {
        self.layer.layer(client)
    }
}

/// The layer that seals and opens through an [`Endpoint`].
#[derive(Debug)]
pub struct SecureLayer {
    endpoint: Endpoint,
}

impl SecureLayer {
    /// A secure layer using `endpoint`.
    pub fn new(endpoint: Endpoint) -> Self {
        SecureLayer { endpoint }
    }
}

impl<S: PubSub> Layer<S> for SecureLayer {
    type Client = Secure<S>;
    fn layer(self, inner: S) -> Secure<S> {
        Secure {
            inner,
            endpoint: self.endpoint,
            stats: Stats::default(),
            scratch: Vec::new(),
        }
    }
}

/// A verified message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The topic.
    pub topic: String,
    /// The verified, decrypted payload.
    pub payload: Vec<u8>,
    /// The quality of service.
    pub qos: QoS,
    /// Whether it was delivered as retained.
    pub retain: bool,
    /// The envelope's metadata (`None` on an insecure plaintext topic).
    pub envelope: Option<EnvelopeMeta>,
}

/// A message that failed a check, with the reason.
#[derive(Debug)]
pub struct Rejected {
    /// The topic it arrived on.
    pub topic: String,
    /// Why it was rejected: usually [`Error::Rejected`].
    pub error: Error,
}

/// What the secure layer makes of one received message.
#[derive(Debug)]
pub enum Delivery {
    /// Verified and opened.
    Accepted(Received),
    /// Rejected; the receive path goes on.
    Rejected(Rejected),
    /// A rekey message on the endpoint's rekey topic was verified and applied.
    Rekeyed(crate::rekey::Applied),
    /// A redelivery (DUP flag set) of an envelope that was already accepted:
    /// the application already has it. Counted in [`Stats::duplicates`].
    Duplicate {
        /// The topic.
        topic: String,
    },
}

/// Counts of accepted and rejected messages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Messages sealed and published.
    pub published: u64,
    /// Messages verified and delivered.
    pub accepted: u64,
    /// Redeliveries of accepted envelopes, dropped.
    pub duplicates: u64,
    /// Rejected messages by [`Rejection::kind`](crate::Rejection::kind)
    /// (`"local_error"` for local failures such as a counter store error).
    pub rejected: BTreeMap<&'static str, u64>,
}

impl Stats {
    /// All rejected messages.
    pub fn rejected_total(&self) -> u64 {
        self.rejected.values().sum()
    }
}

/// A client wrapped by [`SecureLayer`].
pub struct Secure<S> {
    inner: S,
    endpoint: Endpoint,
    stats: Stats,
    scratch: Vec<u8>,
}

impl<S> fmt::Debug for Secure<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Secure")
            .field("endpoint", &self.endpoint)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl<S: PubSub> Secure<S> {
    /// Seals `payload` and publishes it.
    pub fn publish(
        &mut self,
        topic: &str,
        payload: &[u8],
        qos: QoS,
        retain: bool,
    ) -> Result<(), Error> {
        self.endpoint.seal_into(topic, payload, &mut self.scratch)?;
        self.inner
            .publish(topic, &self.scratch, qos, retain)
            .map_err(|e| Error::Transport(Box::new(e)))?;
        self.stats.published += 1;
        Ok(())
    }

    /// Subscribes to a topic filter.
    pub fn subscribe(&mut self, filter: &str, qos: QoS) -> Result<(), Error> {
        self.inner
            .subscribe(filter, qos)
            .map_err(|e| Error::Transport(Box::new(e)))
    }

    /// The next received message, verified or rejected, if one is waiting.
    /// A rejection never ends the receive path: call again.
    pub fn recv(&mut self) -> Result<Option<Delivery>, Error> {
        let Some(msg) = self
            .inner
            .try_recv()
            .map_err(|e| Error::Transport(Box::new(e)))?
        else {
            return Ok(None);
        };
        Ok(Some(self.open(msg)))
    }

    /// Opens a message received by other means.
    pub fn open(&mut self, msg: Message) -> Delivery {
        open_message(&mut self.endpoint, &mut self.stats, msg)
    }

    /// The counts of published, accepted and rejected messages.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The endpoint, for key changes.
    pub fn endpoint_mut(&mut self) -> &mut Endpoint {
        &mut self.endpoint
    }

    /// The wrapped client.
    pub fn inner_mut(&mut self) -> &mut S {
        &mut self.inner
    }
}

/// Opens one received message with `endpoint` and counts the outcome in
/// `stats`. The building block of every adapter: the payload is decrypted in
/// place and moved to the front of its own buffer, without another allocation.
pub fn open_message(endpoint: &mut Endpoint, stats: &mut Stats, mut msg: Message) -> Delivery {
    if endpoint.rekey_topic() == Some(msg.topic.as_str()) {
        return match endpoint.apply_rekey(&msg.payload) {
            Ok(applied) => Delivery::Rekeyed(applied),
            // The retained rekey comes again on every reconnect: already applied.
            Err(Error::Rejected(crate::Rejection::Replayed)) => duplicate(stats, msg.topic),
            Err(error) => rejected(stats, msg.topic, error),
        };
    }
    // Where the payload lies in the buffer; the borrow ends here.
    let base = msg.payload.as_ptr() as usize;
    let opened = endpoint
        .open_in_place(&msg.topic, &mut msg.payload)
        .map(|o| {
            (
                o.envelope,
                o.payload.as_ptr() as usize - base,
                o.payload.len(),
            )
        });
    match opened {
        Ok((envelope, start, len)) => {
            // The payload is a sub-slice of the envelope: move it to the front.
            msg.payload.copy_within(start..start + len, 0);
            msg.payload.truncate(len);
            stats.accepted += 1;
            Delivery::Accepted(Received {
                topic: msg.topic,
                payload: msg.payload,
                qos: msg.qos,
                retain: msg.retain,
                envelope,
            })
        }
        // A redelivery (DUP) of a counter this endpoint accepted: the
        // application has it. A DUP-flagged counter that is merely too old is
        // a replay like any other.
        Err(Error::Rejected(crate::Rejection::Replayed))
            if msg.dup && endpoint.was_accepted(&msg.payload) =>
        {
            duplicate(stats, msg.topic)
        }
        Err(error) => rejected(stats, msg.topic, error),
    }
}

/// Counts a redelivery of an already accepted message and drops it.
fn duplicate(stats: &mut Stats, topic: String) -> Delivery {
    stats.duplicates += 1;
    Delivery::Duplicate { topic }
}

/// Counts a rejection under its [`Rejection::kind`](crate::Rejection::kind)
/// (`"local_error"` for a local failure).
fn rejected(stats: &mut Stats, topic: String, error: Error) -> Delivery {
    let kind = error.rejection().map_or("local_error", |r| r.kind());
    *stats.rejected.entry(kind).or_default() += 1;
    Delivery::Rejected(Rejected { topic, error })
}

/// The secure client is itself a client of plaintext: layers stacked outside
/// it see verified payloads. Rejected messages are counted in [`Secure::stats`]
/// and skipped.
impl<S: PubSub> PubSub for Secure<S> {
    type Error = Error;

    fn publish(
        &mut self,
        topic: &str,
        payload: &[u8],
        qos: QoS,
        retain: bool,
    ) -> Result<(), Error> {
        Secure::publish(self, topic, payload, qos, retain)
    }

    fn subscribe(&mut self, filter: &str, qos: QoS) -> Result<(), Error> {
        Secure::subscribe(self, filter, qos)
    }

    fn try_recv(&mut self) -> Result<Option<Message>, Error> {
        while let Some(d) = self.recv()? {
            if let Delivery::Accepted(r) = d {
                return Ok(Some(Message {
                    topic: r.topic,
                    payload: r.payload,
                    qos: r.qos,
                    retain: r.retain,
                    dup: false,
                }));
            }
        }
        Ok(None)
    }
}
