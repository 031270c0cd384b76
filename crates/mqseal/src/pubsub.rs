//! The publish/subscribe abstraction mqseal wraps, and an in-memory bus.
//!
//! [`PubSub`] is small on purpose: any MQTT client (or test double) can
//! implement it. [`MemoryBus`] implements it in memory with MQTT's topic
//! matching and retained messages, for tests and documentation.

use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::policy::filter_matches;

/// MQTT quality of service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum QoS {
    /// At most once.
    #[default]
    AtMostOnce,
    /// At least once.
    AtLeastOnce,
    /// Exactly once.
    ExactlyOnce,
}

/// A received message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The topic it was published on.
    pub topic: String,
    /// The payload as received.
    pub payload: Vec<u8>,
    /// The quality of service.
    pub qos: QoS,
    /// Whether it was delivered as a retained message.
    pub retain: bool,
    /// Whether the broker marked it as a redelivery (MQTT's DUP flag).
    pub dup: bool,
}

/// A publish/subscribe client.
pub trait PubSub {
    /// The client's error.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Publishes `payload` on `topic`.
    fn publish(
        &mut self,
        topic: &str,
        payload: &[u8],
        qos: QoS,
        retain: bool,
    ) -> Result<(), Self::Error>;

    /// Subscribes to a topic filter.
    fn subscribe(&mut self, filter: &str, qos: QoS) -> Result<(), Self::Error>;

    /// The next received message, if one is waiting.
    fn try_recv(&mut self) -> Result<Option<Message>, Self::Error>;
}

#[derive(Debug, Default)]
struct Bus {
    clients: Vec<Slot>,
    retained: BTreeMap<String, Message>,
}

#[derive(Debug, Default)]
struct Slot {
    filters: Vec<String>,
    queue: VecDeque<Message>,
}

/// An in-memory broker. Clones share it.
///
/// ```
/// use mqseal::pubsub::{MemoryBus, PubSub, QoS};
/// let bus = MemoryBus::new();
/// let mut a = bus.client();
/// let mut b = bus.client();
/// b.subscribe("t/#", QoS::AtMostOnce).unwrap();
/// a.publish("t/1", b"hi", QoS::AtMostOnce, false).unwrap();
/// assert_eq!(b.try_recv().unwrap().unwrap().payload, b"hi");
/// ```
#[derive(Debug, Clone, Default)]
pub struct MemoryBus(Arc<Mutex<Bus>>);

impl MemoryBus {
    /// An empty bus.
    pub fn new() -> Self {
        MemoryBus::default()
    }

    fn lock(&self) -> MutexGuard<'_, Bus> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Connects a new client.
    pub fn client(&self) -> MemoryClient {
        let mut bus = self.lock();
        bus.clients.push(Slot::default());
        MemoryClient {
            bus: self.clone(),
            id: bus.clients.len() - 1,
        }
    }

    fn route(&self, msg: Message) {
        let mut bus = self.lock();
        if msg.retain {
            if msg.payload.is_empty() {
                bus.retained.remove(&msg.topic);
            } else {
                bus.retained.insert(msg.topic.clone(), msg.clone());
            }
        }
        for slot in &mut bus.clients {
            if slot.filters.iter().any(|f| filter_matches(f, &msg.topic)) {
                slot.queue.push_back(Message {
                    retain: false,
                    ..msg.clone()
                });
            }
        }
    }
}

/// A client of a [`MemoryBus`].
#[derive(Debug)]
pub struct MemoryClient {
    bus: MemoryBus,
    id: usize,
}

impl PubSub for MemoryClient {
    type Error = Infallible;

    fn publish(
        &mut self,
        topic: &str,
        payload: &[u8],
        qos: QoS,
        retain: bool,
    ) -> Result<(), Infallible> {
        self.bus.route(Message {
            topic: topic.to_owned(),
            payload: payload.to_vec(),
            qos,
            retain,
            dup: false,
        });
        Ok(())
    }

    fn subscribe(&mut self, filter: &str, _qos: QoS) -> Result<(), Infallible> {
        let mut bus = self.bus.lock();
        let retained: Vec<Message> = bus
            .retained
            .values()
            .filter(|m| filter_matches(filter, &m.topic))
            .cloned()
            .collect();
        let slot = &mut bus.clients[self.id];
        slot.filters.push(filter.to_owned());
        slot.queue.extend(retained);
        Ok(())
    }

    fn try_recv(&mut self) -> Result<Option<Message>, Infallible> {
        Ok(self.bus.lock().clients[self.id].queue.pop_front())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retained_messages_reach_late_subscribers() {
        let bus = MemoryBus::new();
        let mut a = bus.client();
        a.publish("s/1", b"v", QoS::AtLeastOnce, true).unwrap();
        let mut b = bus.client();
        b.subscribe("s/+", QoS::AtLeastOnce).unwrap();
        let m = b.try_recv().unwrap().unwrap();
        assert!(m.retain);
        assert_eq!(m.payload, b"v");
        assert!(b.try_recv().unwrap().is_none());
    }
}
