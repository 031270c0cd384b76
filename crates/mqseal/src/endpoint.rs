//! The sans-IO core: an [`Endpoint`] seals what it sends and opens what it
//! receives, over caller buffers, and never touches a socket.
//!
//! Sealing looks up the topic's [`Protection`] in the [`Policy`], takes the
//! next counter (reserving a durable block first when needed), writes the
//! header, then encrypts or MACs and signs. Opening checks, in this order and
//! without changing any state until the last step: the policy and suite, the
//! key epoch and sender, the replay window (read only), the signature, the AEAD
//! tag or MAC, the timestamp; only then is the counter recorded. A message that
//! fails any check leaves the endpoint exactly as it was.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::time::Duration;

use crate::bytes::{copy_short, same_bytes};
use crate::counter::{CounterScope, CounterStore, DEFAULT_BLOCK, Role, SendCounter};
use crate::crypto::{CryptoProvider, VerifyingKey};
use crate::envelope::{
    self, FixedFields, Header, MAX_COUNTER, MAX_HEADER_LEN, MAX_TIMESTAMP_MS, MAX_TRAILER_LEN,
    Suite,
};
use crate::error::{ConfigError, CounterError, Error, KeyError, Malformed, Rejection, UsageLimit};
use crate::freshness::{Clock, SystemClock, duration_ms};
use crate::kdf::{self, SenderKeys, SymKey};
use crate::keys::{
    AgreementKey, EpochState, Identity, Keyring, KeyringEdit, SecretBytes32, SenderId, SigningKey,
    TrustStore,
};
use crate::policy::{Policy, Protection, validate_topic};
use crate::protect::{encrypt, mac, sign};
use crate::replay::{Authenticated, DEFAULT_WINDOW, ReplayWindow};

/// Times before 2020-01-01 are taken as a clock that was never set.
const PLAUSIBLE_MS: u64 = 1_577_836_800_000;

/// The default largest payload: 256 KiB.
pub const DEFAULT_MAX_PAYLOAD: usize = 256 * 1024;
/// The default largest number of (epoch, sender) pairs a receiver tracks.
pub const DEFAULT_MAX_SENDERS: usize = 4096;

/// What an authenticated envelope said about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnvelopeMeta {
    /// The suite.
    pub suite: Suite,
    /// The key epoch.
    pub epoch: u32,
    /// The sender.
    pub sender: SenderId,
    /// The sender's counter.
    pub counter: u64,
    /// The sender's timestamp, if present.
    pub timestamp_ms: Option<u64>,
}

/// An opened message: the payload, borrowed from the caller's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Opened<'a> {
    /// The verified (and decrypted) payload.
    pub payload: &'a [u8],
    /// The envelope's metadata; `None` on an insecure plaintext topic.
    pub envelope: Option<EnvelopeMeta>,
}

/// A buffer for sealing in place: it keeps room for the header in front of
/// the payload, so sealing copies nothing.
///
/// ```
/// # use mqseal::*;
/// # let policy = Policy::builder().rule("t", Protection::encrypt(Aead::Aes256Gcm))?.build();
/// # let mut ep = Endpoint::builder(policy)
/// #     .sender_id(SenderId::new(b"a")?)
/// #     .keyring(Keyring::new(1, GroupSecret::from_bytes([7; 32])))
/// #     .counter_store(MemoryCounterStore::new())
/// #     .build()?;
/// let mut buf = SealBuffer::new();
/// buf.extend_from_slice(b"21.5 C");
/// let envelope = ep.seal_in_place("t", &mut buf)?;
/// assert_eq!(envelope.len(), 6 + ep.overhead("t")?);
/// buf.clear(); // reuse for the next message without allocating
/// # Ok::<(), mqseal::Error>(())
/// ```
#[derive(Clone)]
pub struct SealBuffer {
    buf: Vec<u8>,
    sealed_at: Option<usize>,
}

/// Room for the longest header, rounded up so that the payload, which is
/// encrypted in place, starts 16-byte aligned (an unaligned AES-GCM buffer
/// costs about 5 % at 64 KiB on this class of machine).
const HEADROOM: usize = MAX_HEADER_LEN.next_multiple_of(16);

impl Default for SealBuffer {
    fn default() -> Self {
        SealBuffer::new()
    }
}

impl fmt::Debug for SealBuffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealBuffer")
            .field("payload_len", &(self.buf.len() - HEADROOM))
            .field("sealed", &self.sealed_at.is_some())
            .finish()
    }
}

impl SealBuffer {
    /// An empty buffer.
    pub fn new() -> Self {
        SealBuffer::with_capacity(0)
    }

    /// An empty buffer with room for a payload of `payload` bytes.
    pub fn with_capacity(payload: usize) -> Self {
        let mut buf = Vec::with_capacity(HEADROOM + payload + MAX_TRAILER_LEN);
        buf.resize(HEADROOM, 0);
        SealBuffer {
            buf,
            sealed_at: None,
        }
    }

    /// Empties the buffer for the next payload, keeping its capacity.
    pub fn clear(&mut self) {
        self.buf.truncate(HEADROOM);
        self.sealed_at = None;
    }

    /// Appends payload bytes.
    pub fn extend_from_slice(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Sets the payload length (new bytes are zero) and returns the payload to
    /// write into.
    pub fn resize_payload(&mut self, len: usize) -> &mut [u8] {
        self.buf.resize(HEADROOM + len, 0);
        &mut self.buf[HEADROOM..]
    }

    /// The payload written so far (before sealing).
    pub fn payload(&self) -> &[u8] {
        &self.buf[HEADROOM..]
    }

    /// The sealed envelope, once sealed.
    pub fn envelope(&self) -> Option<&[u8]> {
        self.sealed_at.map(|s| &self.buf[s..])
    }
}

impl std::io::Write for SealBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// This endpoint's sending state under one epoch.
struct SendState {
    epoch: u32,
    counter: SendCounter,
    /// The epoch and sender id, encoded once for every header.
    fixed: FixedFields,
    keys: [Option<SenderKeys>; 7],
}

/// The receiving state of one (epoch, sender).
struct RecvState {
    epoch: u32,
    sender: SenderId,
    window: ReplayWindow,
    /// Counters below this are durably marked seen (`u64::MAX` when not persisting).
    mark: u64,
    keys: [Option<SenderKeys>; 7],
}

/// The receiving states: a vector with a hash index on (epoch, sender). The
/// entry of the last message opened is checked before the index, so that a
/// stream from one sender skips hashing.
#[derive(Default)]
struct RecvTable {
    states: Vec<RecvState>,
    index: Map<(u32, SenderId), usize>,
    /// A hint only: `states[last]` may be any entry, or none.
    last: usize,
}

impl RecvTable {
    fn len(&self) -> usize {
        self.states.len()
    }

    /// The entry of (epoch, sender), the sender given as the id's bytes in
    /// the envelope. Moves the hint, which is not state: an unauthenticated
    /// message may move it. Comparing the envelope's bytes with the last hit
    /// reads only memory written long before; comparing a `SenderId` just
    /// built on the stack waits for its piecewise stores (a store-forwarding
    /// stall, docs/performance.md).
    #[inline(always)]
    fn find(&mut self, epoch: u32, sender: &[u8]) -> Option<usize> {
        if let Some(st) = self.states.get(self.last)
            && st.epoch == epoch
            && same_bytes(st.sender.as_bytes(), sender)
        {
            return Some(self.last);
        }
        self.find_indexed(epoch, sender)
    }

    /// `find` past the last hit.
    #[inline(never)]
    fn find_indexed(&mut self, epoch: u32, sender: &[u8]) -> Option<usize> {
        let sender = SenderId::new(sender).ok()?;
        let i = *self.index.get(&(epoch, sender))?;
        self.last = i;
        Some(i)
    }

    fn get(&self, epoch: u32, sender: &SenderId) -> Option<&RecvState> {
        self.index.get(&(epoch, *sender)).map(|&i| &self.states[i])
    }

    fn insert(&mut self, st: RecvState) {
        debug_assert!(!self.index.contains_key(&(st.epoch, st.sender)));
        self.last = self.states.len();
        self.index.insert((st.epoch, st.sender), self.last);
        self.states.push(st);
    }

    fn retain(&mut self, keep: impl FnMut(&RecvState) -> bool) {
        let before = self.states.len();
        self.states.retain(keep);
        if self.states.len() != before {
            self.index.clear();
            for (i, st) in self.states.iter().enumerate() {
                self.index.insert((st.epoch, st.sender), i);
            }
        }
    }
}

/// A sealing plan: everything decided before the payload is touched. The
/// header is already written, in the seal topic cache's header slot.
#[derive(Clone, Copy)]
struct Prepared {
    suite: Suite,
    /// The sender state in `Endpoint::send`.
    slot: usize,
    counter: u64,
    timestamp_ms: Option<u64>,
    header_len: usize,
}

/// Seals and opens messages under a [`Policy`]. See the [module docs](self).
pub struct Endpoint {
    provider: &'static CryptoProvider,
    policy: Policy,
    keyring: Keyring,
    sender_id: Option<SenderId>,
    signer: Option<Box<dyn crate::crypto::SigningKey>>,
    trust: Map<SenderId, Box<dyn VerifyingKey>>,
    counters: Option<Box<dyn CounterStore>>,
    send_block: u64,
    recv_block: Option<u64>,
    clock: Arc<dyn Clock>,
    window: usize,
    max_senders: usize,
    max_payload: usize,
    prks: Map<u32, SecretBytes32>,
    /// One entry per epoch this endpoint sealed under (few: retired epochs go).
    send: Vec<SendState>,
    recv: RecvTable,
    seal_topic: TopicCache,
    open_topic: TopicCache,
    limits: KeyLimits,
    rotation_due: Option<RotationDue>,
    agreement: Option<AgreementKey>,
    trust_store: TrustStore,
    revoked: HashSet<SenderId, KeyedState>,
    rekey_topic: Option<String>,
    /// What the hot path needs from the keyring, refreshed on every change.
    ring_view: RingView,
}

/// The keyring facts read on every message, so that sealing and opening do
/// not walk the keyring.
#[derive(Debug, Clone, Copy, Default)]
struct RingView {
    /// The active epoch.
    active: Option<u32>,
    /// When the active epoch reaches its soft and its hard age limit (never
    /// when its creation time is before 2020: the device's clock was not set).
    age_limits_at: (Option<u64>, Option<u64>),
    /// The earliest scheduled retirement.
    next_retirement: Option<u64>,
    /// Whether the keyring ever held an epoch.
    any: bool,
}

impl RingView {
    fn of(k: &Keyring, limits: &KeyLimits) -> Self {
        let active = k.active().map(|(e, _)| e);
        let created = active
            .and_then(|e| k.created_ms(e))
            .filter(|&c| c >= PLAUSIBLE_MS);
        // `now - created >= limit`, with `now` before `created` counting as 0.
        let at = |limit: Duration| {
            let limit = duration_ms(limit);
            created.and_then(|c| {
                if limit == 0 {
                    Some(0)
                } else {
                    c.checked_add(limit)
                }
            })
        };
        RingView {
            active,
            age_limits_at: (at(limits.soft_age), at(limits.hard_age)),
            next_retirement: k.next_retirement(),
            any: !k.is_empty(),
        }
    }
}

/// Usage limits of a sender's key under one epoch.
///
/// Past a soft limit, sealing goes on and [`Endpoint::rotation_due`] asks for
/// a rotation; at a hard limit, sealing is refused with
/// [`KeyError::UsageLimit`]. The defaults stay
/// far below the AEAD limits: 2^22 / 2^23 messages per sender and epoch
/// (OSCORE's draft limits 2^20 per key, TLS 1.3 2^24.5 records), and an age of
/// 60 / 90 days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyLimits {
    /// Messages per sender and epoch after which rotation is asked for.
    pub soft_messages: u64,
    /// Messages per sender and epoch after which sealing is refused.
    pub hard_messages: u64,
    /// Epoch age after which rotation is asked for.
    pub soft_age: Duration,
    /// Epoch age after which sealing is refused.
    pub hard_age: Duration,
}

impl Default for KeyLimits {
    fn default() -> Self {
        KeyLimits {
            soft_messages: 1 << 22,
            hard_messages: 1 << 23,
            soft_age: Duration::from_secs(60 * 86_400),
            hard_age: Duration::from_secs(90 * 86_400),
        }
    }
}

/// Why [`Endpoint::rotation_due`] asks for a new epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RotationDue {
    /// The epoch that should be replaced.
    pub epoch: u32,
    /// The soft limit that was passed.
    pub limit: UsageLimit,
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("provider", &self.provider.name)
            .field("sender_id", &self.sender_id)
            .field("epochs", &self.keyring.epochs().collect::<Vec<_>>())
            .field("trusted_senders", &self.trust.len())
            .field("tracked_senders", &self.recv.len())
            .finish_non_exhaustive()
    }
}

/// Builds an [`Endpoint`]; see [`Endpoint::builder`].
#[must_use]
pub struct EndpointBuilder {
    provider: &'static CryptoProvider,
    policy: Policy,
    keyring: Option<Keyring>,
    sender_id: Option<SenderId>,
    signing_key: Option<SigningKey>,
    trust: TrustStore,
    counters: Option<Box<dyn CounterStore>>,
    send_block: u64,
    recv_block: Option<u64>,
    clock: Arc<dyn Clock>,
    window: usize,
    max_senders: usize,
    max_payload: usize,
    limits: KeyLimits,
    agreement: Option<AgreementKey>,
    rekey_topic: Option<String>,
}

impl fmt::Debug for EndpointBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EndpointBuilder")
            .field("sender_id", &self.sender_id)
            .finish_non_exhaustive()
    }
}

impl EndpointBuilder {
    /// The crypto provider (default: [`crate::crypto::default_provider`]).
    pub fn provider(mut self, provider: &'static CryptoProvider) -> Self {
        self.provider = provider;
        self
    }

    /// This endpoint's sender id. Required to send.
    pub fn sender_id(mut self, id: SenderId) -> Self {
        self.sender_id = Some(id);
        self
    }

    /// The group keyring. Required when the policy encrypts or MACs.
    pub fn keyring(mut self, keyring: Keyring) -> Self {
        self.keyring = Some(keyring);
        self
    }

    /// This device's identity: sender id, signing key and X25519 key (which
    /// lets it receive rekey messages, see [`Endpoint::apply_rekey`]).
    pub fn identity(mut self, identity: Identity) -> Self {
        self.sender_id = Some(identity.sender_id);
        self.signing_key = Some(identity.signing_key.clone());
        self.agreement = Some(identity.agreement_key.clone());
        self
    }

    /// The topic on which rekey messages arrive. Messages received on it are
    /// applied with [`Endpoint::apply_rekey`] by the secure layer and the
    /// adapters instead of being opened as envelopes (they carry their own
    /// signature); no policy rule is needed for it.
    pub fn rekey_topic(mut self, topic: &str) -> Self {
        self.rekey_topic = Some(topic.to_owned());
        self
    }

    /// Usage limits for this sender's keys (default: [`KeyLimits::default`]).
    pub fn key_limits(mut self, limits: KeyLimits) -> Self {
        self.limits = limits;
        self
    }

    /// This endpoint's Ed25519 signing key. Required to send on signed topics.
    pub fn signing_key(mut self, key: SigningKey) -> Self {
        self.signing_key = Some(key);
        self
    }

    /// The public keys of senders whose signatures are accepted.
    pub fn trust(mut self, trust: TrustStore) -> Self {
        self.trust = trust;
        self
    }

    /// Where counter marks are kept. Required to send; use a
    /// [`FileCounterStore`](crate::FileCounterStore) so counters survive crashes.
    pub fn counter_store(mut self, store: impl CounterStore + 'static) -> Self {
        self.counters = Some(Box::new(store));
        self
    }

    /// How many counters to reserve per durable write (default 1024).
    pub fn counter_block(mut self, block: u64) -> Self {
        self.send_block = block;
        self
    }

    /// Also persist the receive replay state in the counter store, reserving
    /// `block` counters ahead. After a crash, up to `block` genuine messages
    /// per sender may be rejected; no replay is ever accepted.
    pub fn persist_replay_state(mut self, block: u64) -> Self {
        self.recv_block = Some(block);
        self
    }

    /// The clock for timestamps and freshness (default: the system clock).
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Replay window size in bits (default 256; a multiple of 64 up to 8192).
    pub fn replay_window(mut self, bits: usize) -> Self {
        self.window = bits;
        self
    }

    /// How many (epoch, sender) pairs a receiver tracks at most (default 4096).
    pub fn max_senders(mut self, n: usize) -> Self {
        self.max_senders = n;
        self
    }

    /// The largest payload sealed or accepted (default 256 KiB).
    pub fn max_payload(mut self, bytes: usize) -> Self {
        self.max_payload = bytes.min(envelope::MAX_BODY_LEN);
        self
    }

    /// Checks the configuration and builds the endpoint.
    pub fn build(self) -> Result<Endpoint, Error> {
        let revoked = self.trust.revoked().copied().collect();
        let uses =
            |f: fn(Suite) -> bool| self.policy.rules().any(|(_, p)| p.suite().is_some_and(f));
        if uses(|s| s.symmetric().is_some()) && self.keyring.is_none() {
            return Err(ConfigError::NoKeyring.into());
        }
        if uses(Suite::signed) && self.signing_key.is_none() && self.trust.is_empty() {
            return Err(ConfigError::NoSignatureKeys.into());
        }
        ReplayWindow::new(self.window)?;
        for block in std::iter::once(self.send_block).chain(self.recv_block) {
            if !(1..=1_000_000).contains(&block) {
                return Err(ConfigError::CounterBlock(block).into());
            }
        }
        if self.counters.is_none() && (self.sender_id.is_some() || self.recv_block.is_some()) {
            return Err(ConfigError::NoCounterStore.into());
        }
        let mut trust = Map::default();
        for (sender, key) in self.trust.iter() {
            let vk = self
                .provider
                .ed25519
                .verifying_key(&key.0)
                .map_err(|_| KeyError::InvalidPublicKey)?;
            trust.insert(*sender, vk);
        }
        let signer = self
            .signing_key
            .as_ref()
            .map(|k| self.provider.ed25519.signing_key(k.expose_seed()));
        Ok(Endpoint {
            provider: self.provider,
            policy: self.policy,
            keyring: self.keyring.unwrap_or_default(),
            sender_id: self.sender_id,
            signer,
            trust,
            counters: self.counters,
            send_block: self.send_block,
            recv_block: self.recv_block,
            clock: self.clock,
            window: self.window,
            max_senders: self.max_senders,
            max_payload: self.max_payload,
            prks: Map::default(),
            send: Vec::new(),
            recv: RecvTable::default(),
            seal_topic: TopicCache::default(),
            open_topic: TopicCache::default(),
            limits: self.limits,
            rotation_due: None,
            agreement: self.agreement,
            trust_store: self.trust,
            revoked,
            rekey_topic: self.rekey_topic,
            ring_view: RingView::default(),
        }
        .with_view())
    }
}

impl Endpoint {
    fn with_view(mut self) -> Self {
        self.ring_view = RingView::of(&self.keyring, &self.limits);
        self
    }
}

fn prk_for<'a>(
    prks: &'a mut Map<u32, SecretBytes32>,
    provider: &CryptoProvider,
    keyring: &Keyring,
    epoch: u32,
) -> Option<&'a [u8; 32]> {
    match prks.entry(epoch) {
        std::collections::hash_map::Entry::Occupied(o) => Some(&**o.into_mut()),
        std::collections::hash_map::Entry::Vacant(v) => {
            let secret = keyring.get(epoch)?;
            Some(&**v.insert(kdf::epoch_prk(provider, secret)))
        }
    }
}

impl Endpoint {
    /// Starts building an endpoint that applies `policy`.
    pub fn builder(policy: Policy) -> EndpointBuilder {
        EndpointBuilder {
            provider: crate::crypto::default_provider(),
            policy,
            keyring: None,
            sender_id: None,
            signing_key: None,
            trust: TrustStore::new(),
            counters: None,
            send_block: DEFAULT_BLOCK,
            recv_block: None,
            clock: Arc::new(SystemClock),
            window: DEFAULT_WINDOW,
            max_senders: DEFAULT_MAX_SENDERS,
            max_payload: DEFAULT_MAX_PAYLOAD,
            limits: KeyLimits::default(),
            agreement: None,
            rekey_topic: None,
        }
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The keyring.
    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    /// Replaces the keyring (for instance, reloaded from its file), moving
    /// forward only. Every cached key is erased, since a secret may have
    /// changed under the same epoch number (a regenerated file).
    ///
    /// This endpoint's retirements are kept: what is due by its clock is
    /// retired on loading, an epoch retired here stays retired (its secret
    /// is erased from the new keyring), one scheduled to retire here keeps
    /// the earlier of the two times, and an epoch below the highest held
    /// that this endpoint never held is retired too (a device provisioned
    /// after it does not start accepting it). An epoch held here keeps the
    /// earlier creation time, from which its age limits count. Refused, with
    /// the keyring left as it was:
    ///
    /// - a keyring whose highest epoch is below the highest this endpoint
    ///   held ([`KeyError::Rollback`]): it would reopen old rekey messages;
    /// - one without an active epoch, while this endpoint has one
    ///   ([`KeyError::NoActiveEpoch`]);
    /// - one whose active epoch is below the active one, or is an epoch
    ///   below the highest held that this endpoint never held
    ///   ([`KeyError::NotForward`]);
    /// - one whose active epoch is retired or retiring here
    ///   ([`KeyError::Unretired`]).
    ///
    /// So a keyring file written before a rekey that this endpoint applied
    /// cannot quietly undo it. To go back on purpose, use
    /// [`Endpoint::danger_replace_keyring`].
    ///
    /// ```
    /// # use mqseal::*;
    /// # use std::time::{Duration, SystemTime, UNIX_EPOCH};
    /// # let policy = Policy::builder().rule("t", Protection::mac())?.build();
    /// let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
    /// let stale = Keyring::new_at(1, GroupSecret::from_bytes([1; 32]), now);
    /// let mut ep = Endpoint::builder(policy).keyring(stale.clone()).build()?;
    /// // Epoch 2 sends from now on; epoch 1 retires in ten minutes.
    /// ep.with_keyring(|k| {
    ///     k.add_at(2, GroupSecret::from_bytes([2; 32]), now)?;
    ///     k.promote_with_grace(2, now, Duration::from_secs(600)).map(|_| ())
    /// })?;
    /// // The file as it was before the promotion is refused...
    /// let mut file = stale.clone();
    /// file.add_at(2, GroupSecret::from_bytes([2; 32]), now)?;
    /// assert!(matches!(ep.set_keyring(file.clone()), Err(KeyError::NotForward { .. })));
    /// // ...and once promoted there too, it keeps epoch 1's retirement.
    /// file.promote(2)?;
    /// ep.set_keyring(file)?;
    /// assert_eq!(ep.keyring().retire_at_ms(1), Some(now + 600_000));
    /// # Ok::<(), mqseal::Error>(())
    /// ```
    pub fn set_keyring(&mut self, keyring: Keyring) -> Result<(), KeyError> {
        self.refuse_rollback(&keyring)?;
        let keyring = self.forward(keyring)?;
        self.replace_keyring(keyring);
        Ok(())
    }

    /// Replaces the keyring as given, active epoch and retirement schedule
    /// included, refusing only one whose highest epoch is below the highest
    /// this endpoint held ([`KeyError::Rollback`]). This is the way back on
    /// purpose, which [`Endpoint::set_keyring`] refuses: sending under an
    /// older epoch again, or accepting an epoch that a rekey retired or was
    /// retiring, which a removed device may know. Load only a keyring you
    /// trust.
    pub fn danger_replace_keyring(&mut self, keyring: Keyring) -> Result<(), KeyError> {
        self.refuse_rollback(&keyring)?;
        self.replace_keyring(keyring);
        Ok(())
    }

    fn refuse_rollback(&self, keyring: &Keyring) -> Result<(), KeyError> {
        match (self.keyring.max_epoch(), keyring.max_epoch()) {
            (Some(held), given) if given.is_none_or(|n| n < held) => {
                Err(KeyError::Rollback { held, given })
            }
            _ => Ok(()),
        }
    }

    /// [`Endpoint::set_keyring`]'s forward-only rule: the keyring to install,
    /// with this endpoint's retirements kept.
    fn forward(&self, mut new: Keyring) -> Result<Keyring, KeyError> {
        let current = &self.keyring;
        // What is due by this endpoint's clock (the precise one, as for its
        // own retirements) is due in the new keyring too: before the checks,
        // by the new keyring's own schedule, and after, by this endpoint's.
        let now = self.clock.now_ms();
        new.retire_due(now);
        let new_active = new.active().map(|(e, _)| e);
        if let Some((here, _)) = current.active() {
            match new_active {
                None => return Err(KeyError::NoActiveEpoch),
                Some(epoch) if epoch < here => {
                    return Err(KeyError::NotForward {
                        epoch,
                        current: here,
                    });
                }
                Some(_) => {}
            }
        }
        let highest = current.max_epoch();
        let accepted: Vec<u32> = new.epochs().collect();
        for epoch in accepted {
            let active = new_active == Some(epoch);
            match current.state(epoch) {
                // Never held here: an epoch above the highest is new; one
                // below it is not accepted (refused if it would send).
                None if highest.is_none_or(|h| epoch > h) => {}
                None if active => {
                    return Err(KeyError::NotForward {
                        epoch,
                        current: highest.unwrap_or(epoch),
                    });
                }
                Some(EpochState::Retired) if active => {
                    return Err(KeyError::Unretired { epoch });
                }
                // Cannot fail: `epoch` is held and not the active one.
                None | Some(EpochState::Retired) => new.retire(epoch)?,
                Some(state) => {
                    let retiring = current
                        .retire_at_ms(epoch)
                        .filter(|_| state == EpochState::AcceptOnly);
                    match retiring {
                        Some(_) if active => return Err(KeyError::Unretired { epoch }),
                        Some(at) => new.retire_by(epoch, at),
                        None => {}
                    }
                    if let Some(created) = current.created_ms(epoch) {
                        new.created_by(epoch, created);
                    }
                }
            }
        }
        new.retire_due(now);
        Ok(new)
    }

    fn replace_keyring(&mut self, keyring: Keyring) {
        self.keyring = keyring;
        self.clear_key_caches();
        self.reconcile_keys();
    }

    /// Changes the keyring (add, promote, retire, ratchet) and then erases
    /// every cached key of an epoch that is no longer held, and the replay
    /// windows of retired epochs (their messages are rejected as
    /// `retired_epoch` before any window is consulted).
    ///
    /// ```
    /// # use mqseal::*;
    /// # let policy = Policy::builder().rule("t", Protection::mac())?.build();
    /// # let mut ep = Endpoint::builder(policy)
    /// #     .keyring(Keyring::new(1, GroupSecret::from_bytes([1; 32])))
    /// #     .build()?;
    /// ep.with_keyring(|k| {
    ///     k.add(2, GroupSecret::from_bytes([2; 32]))?;
    ///     k.promote(2)?;
    ///     k.retire(1)
    /// })?;
    /// assert_eq!(ep.keyring().active().unwrap().0, 2);
    /// # Ok::<(), mqseal::Error>(())
    /// ```
    ///
    /// The closure gets a [`KeyringEdit`]: the keyring's own changes, held
    /// to moving forward. It cannot replace the keyring, add an epoch below
    /// the highest held, or promote one below the active epoch, so it can
    /// neither go back to an older epoch nor put another secret under a used
    /// epoch number. To replace a keyring, use [`Endpoint::set_keyring`],
    /// which moves forward only too (and may put another secret under the
    /// same epoch number, as a reloaded file can); to go back on purpose,
    /// [`Endpoint::danger_replace_keyring`].
    ///
    /// If `f` panics, the changes it made before the panic still take effect
    /// (a retired epoch's keys are erased) before the panic goes on.
    pub fn with_keyring<R>(&mut self, f: impl FnOnce(&mut KeyringEdit<'_>) -> R) -> R {
        // The keys derived from the keyring must follow it even when `f`
        // panics halfway: an endpoint kept after the panic (behind a
        // poisoned mutex, say) must not keep accepting an epoch `f` retired.
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            f(&mut KeyringEdit::new(&mut self.keyring))
        }));
        self.reconcile_keys();
        r.unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    }

    /// The largest payload it seals or opens, in bytes (see
    /// [`EndpointBuilder::max_payload`]).
    pub fn max_payload(&self) -> usize {
        self.max_payload
    }

    /// Erases every derived key (a secret may have changed under an epoch
    /// number).
    fn clear_key_caches(&mut self) {
        self.prks.clear();
        for st in &mut self.send {
            st.keys = Default::default();
        }
        for st in &mut self.recv.states {
            st.keys = Default::default();
        }
    }

    fn reconcile_keys(&mut self) {
        self.ring_view = RingView::of(&self.keyring, &self.limits);
        let keyring = &self.keyring;
        let keep = |e: &u32| keyring.get(*e).is_some();
        self.prks.retain(|e, _| keep(e));
        self.send.retain(|s| keep(&s.epoch));
        for st in &mut self.recv.states {
            if !keep(&st.epoch) {
                st.keys = Default::default();
            }
        }
        self.recv
            .retain(|st| keyring.state(st.epoch) != Some(EpochState::Retired));
        if self
            .rotation_due
            .is_some_and(|r| self.ring_view.active != Some(r.epoch))
        {
            self.rotation_due = None;
        }
    }

    /// Retires the epochs whose grace period is over (checked on every seal
    /// and open; cheap when nothing is scheduled).
    #[inline]
    fn retire_due(&mut self) {
        if let Some(t) = self.ring_view.next_retirement {
            self.retire_due_at(t);
        }
    }

    #[cold]
    fn retire_due_at(&mut self, next_retirement: u64) {
        // The precise clock: it set the retirement time (a zero grace period
        // retires at "now"), and the coarse one may read a tick behind it.
        let now = self.clock.now_ms();
        if now >= next_retirement {
            self.keyring.retire_due(now);
            self.reconcile_keys();
        }
    }

    /// The topic rekey messages arrive on, if configured.
    pub fn rekey_topic(&self) -> Option<&str> {
        self.rekey_topic.as_deref()
    }

    /// Set when a soft usage limit of the active epoch was passed: rotate.
    pub fn rotation_due(&self) -> Option<RotationDue> {
        self.rotation_due
    }

    /// The trust store: the one the endpoint was built with, less the senders
    /// revoked since (which it records). Save it after a rekey so that the
    /// revocations survive a restart.
    pub fn trust_store(&self) -> &TrustStore {
        &self.trust_store
    }

    /// Senders removed by a rekey message: all their messages are rejected.
    pub fn is_revoked(&self, sender: &SenderId) -> bool {
        self.revoked.contains(sender)
    }

    /// Verifies a rekey message from the admin and, if it is for this device
    /// and newer than every epoch held, installs its secret as the new active
    /// epoch and revokes the senders it removes (every removal so far: see
    /// [`crate::rekey`]). Every other epoch retires after the message's grace
    /// period, counted from when the admin issued it, or from now if this
    /// device's clock is behind that: a device that applies a rekey late does
    /// not give the old epochs, which the removed devices know, a fresh
    /// grace period. A device whose clock is ahead of the admin's by more
    /// than the grace retires them at once, and refuses peers that still
    /// seal under them until they apply the rekey too: keep clocks in step
    /// (NTP) and the grace longer than their drift. A message that fails any
    /// check leaves the endpoint unchanged.
    pub fn apply_rekey(&mut self, message: &[u8]) -> Result<crate::rekey::Applied, Error> {
        let me = self.sender_id.ok_or(ConfigError::NoSenderId)?;
        let agreement = self.agreement.as_ref().ok_or(ConfigError::NoAgreementKey)?;
        let (admin_id, admin_key) = *self.trust_store.admin().ok_or(ConfigError::NoAdminKey)?;
        let opened = crate::rekey::open(
            self.provider,
            message,
            &admin_id,
            &admin_key,
            &me,
            agreement,
            self.keyring.max_epoch(),
        )?;
        let now = self.clock.now_ms();
        let epoch = opened.epoch;
        let grace = opened.grace;
        let removed = opened.removed.clone();
        let retire_at = now
            .min(opened.issued_at_ms)
            .saturating_add(duration_ms(grace));
        // Every older epoch, staged ones included, was known to the removed
        // devices: all of them go after the grace period.
        self.with_keyring(|k| k.rekey_to(epoch, opened.secret, now, retire_at))?;
        for id in &removed {
            self.trust.remove(id);
            self.trust_store.revoke(*id);
            self.revoked.insert(*id);
        }
        Ok(crate::rekey::Applied { epoch, removed })
    }

    /// The crypto provider.
    pub fn provider(&self) -> &'static CryptoProvider {
        self.provider
    }

    /// Bytes an envelope adds to a payload on `topic` with the current counter.
    pub fn overhead(&self, topic: &str) -> Result<usize, Error> {
        let p = self.protection(topic)?;
        let Some(suite) = p.suite else { return Ok(0) };
        let sender = self.sender_id.ok_or(ConfigError::NoSenderId)?;
        let epoch = self.keyring.active().map_or(0, |(e, _)| e);
        let counter = self
            .send
            .iter()
            .find(|s| s.epoch == epoch)
            .map_or(0, |s| s.counter.peek());
        let header = Header {
            suite,
            epoch,
            sender_id: sender.as_bytes(),
            counter,
            timestamp_ms: p
                .freshness
                .map(|_| self.clock.now_ms().min(MAX_TIMESTAMP_MS)),
        };
        Ok(header.encoded_len() + suite.trailer_len())
    }

    fn protection(&self, topic: &str) -> Result<Protection, Error> {
        validate_topic(topic)?;
        self.policy.lookup(topic).copied().ok_or_else(|| {
            ConfigError::NoPolicy {
                topic: topic.to_owned(),
            }
            .into()
        })
    }

    /// Seals `payload` for `topic` into `out` (cleared first). `out` is reused
    /// without allocating once it is large enough. The payload is copied once.
    pub fn seal_into(
        &mut self,
        topic: &str,
        payload: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), Error> {
        self.seal_vec(topic, payload, out, false)
    }

    /// Seals `payload` for `topic` into a new vector of exactly the
    /// envelope's length: no spare capacity, so that a client library can
    /// take it over as its buffer (`bytes::Bytes::from`, as rumqttc does)
    /// without another allocation. To reuse one buffer, use
    /// [`Endpoint::seal_into`].
    pub fn seal(&mut self, topic: &str, payload: &[u8]) -> Result<Vec<u8>, Error> {
        let mut out = Vec::new();
        self.seal_vec(topic, payload, &mut out, true)?;
        Ok(out)
    }

    /// `seal_into` (`exact` false) and `seal` (`exact` true). `out` is
    /// cleared first.
    #[inline(always)]
    fn seal_vec(
        &mut self,
        topic: &str,
        payload: &[u8],
        out: &mut Vec<u8>,
        exact: bool,
    ) -> Result<(), Error> {
        // A reused buffer grows amortized, so that it settles when payloads
        // grow; a new one gets exactly the envelope's length.
        let reserve = if exact {
            Vec::reserve_exact
        } else {
            Vec::reserve
        };
        out.clear();
        let Some(prep) = self.prepare(topic, payload.len())? else {
            reserve(out, payload.len());
            out.extend_from_slice(payload);
            return Ok(());
        };
        let extra = if exact {
            prep.header_len + prep.suite.trailer_len()
        } else {
            // Room for the longest header and trailer, so that a reused
            // buffer does not reallocate when the counter's encoding grows.
            MAX_HEADER_LEN + MAX_TRAILER_LEN
        };
        reserve(out, extra + payload.len());
        out.resize(prep.header_len, 0);
        out.extend_from_slice(payload);
        // On an error, `out` is left empty rather than holding the payload.
        self.protect(&prep, topic, out, prep.header_len)
            .inspect_err(|_| out.clear())?;
        Ok(())
    }

    /// Seals the payload in `buf` in place and returns the envelope, which is
    /// also available as [`SealBuffer::envelope`]. Copies nothing.
    pub fn seal_in_place<'b>(
        &mut self,
        topic: &str,
        buf: &'b mut SealBuffer,
    ) -> Result<&'b [u8], Error> {
        if buf.sealed_at.is_some() {
            return Err(ConfigError::AlreadySealed.into());
        }
        let start = match self.prepare(topic, buf.buf.len() - HEADROOM)? {
            None => HEADROOM,
            Some(prep) => self.protect(&prep, topic, &mut buf.buf, HEADROOM)?,
        };
        buf.sealed_at = Some(start);
        Ok(&buf.buf[start..])
    }

    /// Decides suite, epoch, counter and timestamp and writes the header;
    /// `None` for plaintext. Leaves the seal topic cache on `topic`.
    #[inline(always)]
    fn prepare(&mut self, topic: &str, payload_len: usize) -> Result<Option<Prepared>, Error> {
        let p = match self.seal_topic.get(topic) {
            Some(p) => p,
            None => {
                let p = self.protection(topic)?;
                self.seal_topic.set(topic, p);
                p
            }
        };
        let Some(suite) = p.suite else {
            return Ok(None);
        };
        let max = self
            .max_payload
            .min(envelope::MAX_BODY_LEN - suite.tag_len());
        if payload_len > max {
            return Err(ConfigError::PayloadTooLarge {
                len: payload_len,
                max,
            }
            .into());
        }
        let Some(sender) = self.sender_id else {
            return Err(ConfigError::NoSenderId.into());
        };
        self.retire_due();
        if suite.signed() && self.signer.is_none() {
            return Err(ConfigError::NoSigningKey {
                topic: topic.to_owned(),
            }
            .into());
        }
        let symmetric = suite.symmetric().is_some();
        let epoch = match (self.ring_view.active, symmetric) {
            (Some(e), _) => e,
            (None, false) => 0,
            (None, true) => return Err(ConfigError::NoKeyring.into()),
        };
        let Some(store) = self.counters.as_deref_mut() else {
            return Err(ConfigError::NoCounterStore.into());
        };
        let scope = || CounterScope {
            role: Role::Send,
            epoch,
            sender,
        };
        let slot = match self.send.iter().position(|s| s.epoch == epoch) {
            Some(i) => i,
            None => {
                self.send.push(SendState {
                    epoch,
                    counter: SendCounter::resume(store, &scope())?,
                    fixed: FixedFields::new(epoch, sender.as_bytes()),
                    keys: Default::default(),
                });
                self.send.len() - 1
            }
        };
        let state = &mut self.send[slot];
        if symmetric && state.keys[suite.index()].is_none() {
            let prk = prk_for(&mut self.prks, self.provider, &self.keyring, epoch)
                .ok_or(KeyError::NoSuchEpoch(epoch))?;
            state.keys[suite.index()] = kdf::derive(self.provider, prk, suite, epoch, &sender);
        }
        // Usage limits of this sender's key under the epoch (symmetric suites:
        // a signing key has no epoch to rotate to).
        let used = state.counter.peek();
        if symmetric {
            if used >= self.limits.hard_messages {
                return Err(KeyError::UsageLimit {
                    epoch,
                    limit: UsageLimit::Messages(self.limits.hard_messages),
                }
                .into());
            }
            // The epoch is the active one: its age limits are in the view.
            let (soft_at, hard_at) = self.ring_view.age_limits_at;
            if soft_at.is_some() || hard_at.is_some() {
                // Limits in days: a clock tick late is immaterial, and the
                // coarse clock costs a quarter of the precise one.
                let now = self.clock.coarse_now_ms();
                if hard_at.is_some_and(|t| now >= t) {
                    return Err(KeyError::UsageLimit {
                        epoch,
                        limit: UsageLimit::AgeMs(duration_ms(self.limits.hard_age)),
                    }
                    .into());
                }
                if soft_at.is_some_and(|t| now >= t) && self.rotation_due.is_none() {
                    self.rotation_due = Some(RotationDue {
                        epoch,
                        limit: UsageLimit::AgeMs(duration_ms(self.limits.soft_age)),
                    });
                }
            }
        }
        if used >= self.limits.soft_messages && self.rotation_due.is_none() {
            self.rotation_due = Some(RotationDue {
                epoch,
                limit: UsageLimit::Messages(self.limits.soft_messages),
            });
        }
        let counter = state.counter.next(store, scope, self.send_block)?;
        let timestamp_ms = p
            .freshness
            .map(|_| self.clock.now_ms().min(MAX_TIMESTAMP_MS));
        let header_len =
            state
                .fixed
                .write_header(suite, counter, timestamp_ms, self.seal_topic.header_slot());
        Ok(Some(Prepared {
            suite,
            slot,
            counter,
            timestamp_ms,
            header_len,
        }))
    }

    /// Puts the header in front of `payload_start` (written again when the
    /// buffer has room for the longest header in front, copied from the
    /// topic cache's slot otherwise), protects the payload
    /// `buf[payload_start..]`, appends the trailer, and returns where the
    /// envelope starts.
    #[inline(always)]
    fn protect(
        &mut self,
        prep: &Prepared,
        topic: &str,
        buf: &mut Vec<u8>,
        payload_start: usize,
    ) -> Result<usize, Error> {
        debug_assert!(self.seal_topic.get(topic).is_some());
        let aad = self.seal_topic.associated_data_written(prep.header_len);
        let header = &aad[..prep.header_len];
        let hstart = payload_start - header.len();
        if let Some(slot) = payload_start
            .checked_sub(MAX_HEADER_LEN)
            .and_then(|at| buf[at..].first_chunk_mut())
        {
            // Written again, right-aligned, rather than copied from the
            // cache's slot: a copy would load the bytes just stored there
            // piecewise, and wait for those stores (a store-forwarding
            // stall, docs/performance.md). What lands before `hstart` is
            // headroom, not envelope.
            let n = self.send[prep.slot].fixed.write_header(
                prep.suite,
                prep.counter,
                prep.timestamp_ms,
                slot,
            );
            debug_assert_eq!(&slot[MAX_HEADER_LEN - n..], header);
        } else {
            buf[hstart..payload_start].copy_from_slice(header);
        }
        let suite = prep.suite;
        let keys = self.send[prep.slot].keys[suite.index()].as_ref();
        let tag_len = match keys {
            Some(SenderKeys {
                key: SymKey::Aead(key),
                iv,
            }) => {
                let t = encrypt::seal(&**key, iv, prep.counter, aad, &mut buf[payload_start..])?;
                buf.extend_from_slice(&t);
                t.len()
            }
            Some(SenderKeys {
                key: SymKey::Mac(key),
                ..
            }) => {
                let t = mac::tag(&**key, header, topic, &buf[payload_start..]);
                buf.extend_from_slice(&t);
                t.len()
            }
            None if suite.symmetric().is_some() => {
                return Err(Error::Crypto("no derived key for the suite"));
            }
            None => 0,
        };
        if suite.signed() {
            // `ok_or_else`: the error's `String` must not be built (allocated)
            // on every signed message.
            let signer = self
                .signer
                .as_deref()
                .ok_or_else(|| ConfigError::NoSigningKey {
                    topic: topic.to_owned(),
                })?;
            let body_end = buf.len() - tag_len;
            let sig = sign::sign(
                signer,
                self.provider.sha256,
                header,
                topic,
                &buf[payload_start..body_end],
                &buf[body_end..],
            );
            buf.extend_from_slice(&sig);
        }
        Ok(hstart)
    }

    /// Opens an envelope received on `topic`, decrypting in place. On success
    /// the payload borrows from `envelope`; on failure the endpoint is
    /// unchanged and the contents of `envelope` are unspecified.
    pub fn open_in_place<'a>(
        &mut self,
        topic: &str,
        envelope: &'a mut [u8],
    ) -> Result<Opened<'a>, Error> {
        let (p, layout) = match self.precheck(topic, envelope)? {
            None => {
                return Ok(Opened {
                    payload: envelope,
                    envelope: None,
                });
            }
            Some(x) => x,
        };
        let (head, rest) = envelope.split_at_mut(layout.header_len);
        let (body, trailer) = rest.split_at_mut(layout.body_len);
        let meta = self.open_parts(topic, &p, &layout, head, body, trailer)?;
        Ok(Opened {
            payload: body,
            envelope: Some(meta),
        })
    }

    /// Opens an envelope received on `topic`, writing the payload to `out`
    /// (cleared first; reused without allocating once large enough). Only
    /// the body is copied.
    pub fn open_into(
        &mut self,
        topic: &str,
        envelope: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<Option<EnvelopeMeta>, Error> {
        out.clear();
        let Some((p, layout)) = self.precheck(topic, envelope)? else {
            out.extend_from_slice(envelope);
            return Ok(None);
        };
        let body_end = layout.header_len + layout.body_len;
        out.extend_from_slice(&envelope[layout.header_len..body_end]);
        let res = self.open_parts(
            topic,
            &p,
            &layout,
            &envelope[..layout.header_len],
            out,
            &envelope[body_end..],
        );
        if res.is_err() {
            out.clear();
        }
        res.map(Some)
    }

    /// Opens an envelope into a new vector.
    pub fn open(
        &mut self,
        topic: &str,
        envelope: &[u8],
    ) -> Result<(Vec<u8>, Option<EnvelopeMeta>), Error> {
        let mut out = Vec::new();
        let meta = self.open_into(topic, envelope, &mut out)?;
        Ok((out, meta))
    }

    /// Policy, size and structure checks. `None` for a plaintext topic.
    #[inline(always)]
    fn precheck(
        &mut self,
        topic: &str,
        envelope: &[u8],
    ) -> Result<Option<(Protection, Layout)>, Rejection> {
        if topic.len() > usize::from(u16::MAX) {
            return Err(Malformed::OutOfRange("topic length").into());
        }
        let p = match self.open_topic.get(topic) {
            Some(p) => p,
            None => {
                let p = *self.policy.lookup(topic).ok_or(Rejection::NoPolicy)?;
                self.open_topic.set(topic, p);
                p
            }
        };
        let Some(expected) = p.suite else {
            return Ok(None);
        };
        let max = self.max_payload + MAX_HEADER_LEN + MAX_TRAILER_LEN;
        if envelope.len() > max {
            return Err(Rejection::TooLarge {
                len: envelope.len(),
                max,
            });
        }
        let env = envelope::parse_inline(envelope)?;
        let h = env.header;
        if h.suite != expected {
            return Err(Rejection::PolicyMismatch {
                expected,
                found: h.suite,
            });
        }
        if p.freshness.is_some() && h.timestamp_ms.is_none() {
            return Err(Rejection::MissingTimestamp);
        }
        let sender = SenderId::new(h.sender_id).map_err(|_| Malformed::SenderIdLength)?;
        Ok(Some((
            p,
            Layout {
                header_len: env.header_len(),
                body_len: env.body().len(),
                sender_at: env.sender_at(),
                meta: EnvelopeMeta {
                    suite: h.suite,
                    epoch: h.epoch,
                    sender,
                    counter: h.counter,
                    timestamp_ms: h.timestamp_ms,
                },
            },
        )))
    }

    /// Authenticates, decrypts `body` in place and records the counter.
    /// Leaves every state unchanged unless it returns `Ok`.
    #[inline(always)]
    fn open_parts(
        &mut self,
        topic: &str,
        p: &Protection,
        layout: &Layout,
        header: &[u8],
        body: &mut [u8],
        trailer: &[u8],
    ) -> Result<EnvelopeMeta, Error> {
        let m = layout.meta;
        let suite = m.suite;
        let symmetric = suite.symmetric().is_some();
        let (tag, sig) = trailer.split_at(suite.tag_len());

        self.retire_due();
        // The receiving state, read only until the end.
        let raw_sender = header
            .get(layout.sender_at..layout.sender_at + m.sender.as_bytes().len())
            .ok_or(Rejection::from(Malformed::Truncated))?;
        debug_assert_eq!(raw_sender, m.sender.as_bytes());
        let slot = self.recv.find(m.epoch, raw_sender);
        let cached = slot.and_then(|i| self.recv.states[i].keys[suite.index()].as_ref());

        // Keys: the epoch must be held (for sign-only envelopes too, once the
        // endpoint has a keyring), the sender trusted and not revoked. Keys
        // cached for the epoch prove it is held: they are erased with it.
        if cached.is_none()
            && (symmetric || self.ring_view.any)
            && self.keyring.get(m.epoch).is_none()
        {
            return Err(match self.keyring.state(m.epoch) {
                Some(EpochState::Retired) => Rejection::RetiredEpoch(m.epoch),
                _ => Rejection::UnknownEpoch(m.epoch),
            }
            .into());
        }
        if !self.revoked.is_empty() && self.revoked.contains(&m.sender) {
            return Err(Rejection::UnknownSender.into());
        }
        let verifier = if suite.signed() {
            Some(self.trust.get(&m.sender).ok_or(Rejection::UnknownSender)?)
        } else {
            None
        };

        // Replay, read only: reject early what the window already rejects.
        match slot {
            Some(i) if p.replay => self.recv.states[i].window.check(m.counter)?,
            Some(_) => {}
            None if self.recv.len() >= self.max_senders => {
                return Err(Rejection::TooManySenders.into());
            }
            None => {}
        }

        // Signature over the envelope as received (encrypt-then-sign).
        if let Some(v) = verifier {
            sign::verify(&**v, self.provider.sha256, header, topic, body, tag, sig)?;
        }

        // Symmetric check; decrypts only after the tag is verified.
        let mut fresh_keys = None;
        if symmetric {
            let keys = match cached {
                Some(k) => k,
                None => {
                    let prk = prk_for(&mut self.prks, self.provider, &self.keyring, m.epoch)
                        .ok_or(Rejection::UnknownEpoch(m.epoch))?;
                    fresh_keys.insert(
                        kdf::derive(self.provider, prk, suite, m.epoch, &m.sender)
                            .ok_or(Error::Crypto("no key for suite"))?,
                    )
                }
            };
            match &keys.key {
                SymKey::Aead(k) => {
                    debug_assert!(self.open_topic.get(topic).is_some());
                    let aad = self.open_topic.associated_data(header);
                    encrypt::open(&**k, &keys.iv, m.counter, aad, body, tag)?;
                }
                SymKey::Mac(k) => mac::verify(&**k, header, topic, body, tag)?,
            }
        }
        let proof = Authenticated::new();

        // Freshness of an authenticated timestamp.
        if let (Some(f), Some(ts)) = (p.freshness, m.timestamp_ms) {
            f.check(ts, self.clock.now_ms())?;
        }

        // Only now: create or update the receiving state. A new entry is
        // inserted only once everything, including the store, succeeded.
        let mut created = None;
        let st = match slot {
            Some(i) => &mut self.recv.states[i],
            None => {
                let floor = match (self.recv_block, self.counters.as_deref_mut()) {
                    (Some(_), Some(store)) => store.load(&recv_scope(&m))?,
                    _ => 0,
                };
                created.insert(RecvState {
                    epoch: m.epoch,
                    sender: m.sender,
                    window: ReplayWindow::with_floor(self.window, floor)?,
                    mark: if self.recv_block.is_some() {
                        floor
                    } else {
                        u64::MAX
                    },
                    keys: Default::default(),
                })
            }
        };
        if p.replay {
            // An existing window was checked above and has not changed; a new
            // one can only refuse a counter below its floor, which is below
            // its mark too, so nothing is stored before `commit` refuses it.
            if let (Some(block), Some(store)) = (self.recv_block, self.counters.as_deref_mut())
                && m.counter >= st.mark
            {
                let mark = m.counter.saturating_add(block).min(MAX_COUNTER + 1);
                store.store(&recv_scope(&m), mark)?;
                st.mark = mark;
            }
            st.window.commit(m.counter, &proof)?;
        }
        if let Some(k) = fresh_keys {
            st.keys[suite.index()] = Some(k);
        }
        if let Some(st) = created {
            self.recv.insert(st);
        }
        Ok(m)
    }

    /// Durably records exact counter marks (on a clean shutdown): a restart
    /// then skips no send counter (unless another endpoint with this sender id
    /// on the same store reserved past it, which a store must not have: see
    /// [`CounterStore`]), and its receive windows start just above
    /// the highest counter accepted from each sender, instead of a whole
    /// reserved block above it. The window's record of which lower counters
    /// were seen is not kept: a message delayed behind a later one, and not
    /// yet received at the flush, is rejected after the restart.
    pub fn flush(&mut self) -> Result<(), CounterError> {
        let Some(store) = self.counters.as_deref_mut() else {
            return Ok(());
        };
        if let Some(sender) = self.sender_id {
            for st in &mut self.send {
                let scope = CounterScope {
                    role: Role::Send,
                    epoch: st.epoch,
                    sender,
                };
                st.counter.flush(store, &scope)?;
            }
        }
        if self.recv_block.is_some() {
            for st in &mut self.recv.states {
                if let Some(h) = st.window.highest() {
                    let scope = CounterScope {
                        role: Role::Receive,
                        epoch: st.epoch,
                        sender: st.sender,
                    };
                    st.mark = h + 1;
                    store.store(&scope, h + 1)?;
                }
            }
        }
        Ok(())
    }

    /// Whether this envelope's counter was accepted from its sender and is
    /// still inside the replay window: a redelivery of something the
    /// application already has, as opposed to a counter merely too old.
    pub fn was_accepted(&self, envelope: &[u8]) -> bool {
        let Ok(env) = envelope::parse(envelope) else {
            return false;
        };
        let h = env.header;
        let Ok(sender) = SenderId::new(h.sender_id) else {
            return false;
        };
        self.recv
            .get(h.epoch, &sender)
            .is_some_and(|st| st.window.contains(h.counter))
    }

    /// How many (epoch, sender) pairs this endpoint tracks for replay.
    pub fn tracked_senders(&self) -> usize {
        self.recv.len()
    }
}

fn recv_scope(m: &EnvelopeMeta) -> CounterScope {
    CounterScope {
        role: Role::Receive,
        epoch: m.epoch,
        sender: m.sender,
    }
}

struct Layout {
    header_len: usize,
    body_len: usize,
    /// Where the sender id starts in the header.
    sender_at: usize,
    meta: EnvelopeMeta,
}

/// The endpoint's maps: keyed by epochs and sender ids, and looked up several
/// times per message. SipHash (std's default) cost more than the whole
/// header handling on a 64-byte message (see docs/performance.md), so they use
/// a multiply-fold hash keyed per map with a random seed instead.
///
/// Flooding does not apply: an entry is added only for a configured peer, an
/// own epoch, or a sender whose message was authenticated; unauthenticated
/// input only looks up.
type Map<K, V> = HashMap<K, V, KeyedState>;

/// A random per-map seed for [`KeyedHasher`].
#[derive(Clone, Copy)]
struct KeyedState(u64);

impl Default for KeyedState {
    fn default() -> Self {
        KeyedState(std::collections::hash_map::RandomState::new().hash_one(0x6d71_7365_616cu64))
    }
}

impl BuildHasher for KeyedState {
    type Hasher = KeyedHasher;

    fn build_hasher(&self) -> KeyedHasher {
        KeyedHasher(self.0)
    }
}

/// Folds each word into the state with a 64×64→128-bit multiply.
struct KeyedHasher(u64);

const MULTIPLIER: u64 = 0x9e37_79b9_7f4a_7c15;

impl KeyedHasher {
    #[inline]
    fn mix(&mut self, word: u64) {
        let m = u128::from(self.0 ^ word) * u128::from(MULTIPLIER);
        self.0 = (m as u64) ^ ((m >> 64) as u64);
    }
}

impl Hasher for KeyedHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.mix(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.mix(u64::from_le_bytes(w) ^ ((rest.len() as u64) << 59));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.mix(u64::from(i));
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.mix(u64::from(i));
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.mix(i);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.mix(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        let m = u128::from(self.0) * u128::from(MULTIPLIER ^ 0xff51_afd7_ed55_8ccd);
        (m as u64) ^ ((m >> 64) as u64)
    }
}

/// The last topic sealed (or opened) on, its protection, and the tail of the
/// associated data on it behind a slot for the header, so that a stream of
/// messages on one topic skips policy matching, topic validation and
/// rebuilding the associated data. Allocation-free once long enough.
struct TopicCache {
    /// `[header slot: MAX_HEADER_LEN bytes] || u16be(len(topic)) || topic`.
    aad: Vec<u8>,
    protection: Option<Protection>,
}

impl Default for TopicCache {
    fn default() -> Self {
        let mut aad = Vec::with_capacity(MAX_HEADER_LEN + 2 + 64);
        aad.resize(MAX_HEADER_LEN + 2, 0);
        TopicCache {
            aad,
            protection: None,
        }
    }
}

impl TopicCache {
    #[inline]
    fn get(&self, topic: &str) -> Option<Protection> {
        self.protection
            .filter(|_| same_bytes(&self.aad[MAX_HEADER_LEN + 2..], topic.as_bytes()))
    }

    /// `topic` must be at most 65 535 bytes long.
    fn set(&mut self, topic: &str, protection: Protection) {
        self.aad.truncate(MAX_HEADER_LEN);
        self.aad
            .extend_from_slice(&envelope::topic_len_bytes(topic));
        self.aad.extend_from_slice(topic.as_bytes());
        self.protection = Some(protection);
    }

    /// The header slot, for a header written right-aligned into it.
    #[inline]
    fn header_slot(&mut self) -> &mut [u8; MAX_HEADER_LEN] {
        self.aad
            .first_chunk_mut()
            .expect("the cache holds the header slot")
    }

    /// The associated data of the `len`-byte header written into the slot.
    #[inline]
    fn associated_data_written(&self, len: usize) -> &[u8] {
        &self.aad[MAX_HEADER_LEN - len..]
    }

    /// The associated data of an envelope with this header on the cached
    /// topic: `header || u16be(len(topic)) || topic`.
    #[inline(always)]
    fn associated_data(&mut self, header: &[u8]) -> &[u8] {
        let start = MAX_HEADER_LEN - header.len();
        copy_short(&mut self.aad[start..MAX_HEADER_LEN], header);
        &self.aad[start..]
    }
}
