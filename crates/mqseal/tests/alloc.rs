//! Zero heap allocations per message on the hot path.
//!
//! After warm-up (the first message of a sender creates its counter state and
//! derives its keys; the first message from a sender creates its replay window
//! and key cache), sealing with `seal_in_place` (a reused `SealBuffer`) and
//! `seal_into` (a reused `Vec`), and opening with `open_in_place` and
//! `open_into` (a reused `Vec`), allocate nothing: for every suite, with the
//! provider of every backend compiled in and with the default provider, with
//! replay protection on.
//!
//! The counting allocator lives in `mqseal-alloc-counter` (under `benches/`),
//! because implementing `GlobalAlloc` needs `unsafe`, which mqseal's lints
//! forbid in every target of this crate, tests included. It counts per thread,
//! so the test harness's threads do not disturb the counts.
//!
//! Counter reservations: the main test reserves a block of 1 000 000 counters,
//! so no reservation falls in its window of 10 000 messages per suite and
//! provider. A durable reservation is a write to the counter store, whose cost
//! (for `FileCounterStore`: formatting the file, a write, two fsyncs) dwarfs an
//! allocation; [`memory_store_reservations_do_not_allocate`] shows that the
//! `MemoryCounterStore` also reserves without allocating, once its map holds
//! the sender's entry.

mod common;

use mqseal::crypto;
use mqseal::internal::fixture;
use mqseal::{Endpoint, SealBuffer, Suite};
use mqseal_alloc_counter::{CountingAlloc, count};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

const MESSAGES: usize = 10_000;

/// Allocations per API over `messages` messages, after a warm-up.
#[derive(Debug, Default, PartialEq)]
struct Counts {
    seal_in_place: u64,
    seal_into: u64,
    open_in_place: u64,
    open_into: u64,
}

fn measure(tx: &mut Endpoint, rx: &mut Endpoint, topic: &str, payload: &[u8], n: usize) -> Counts {
    let mut sbuf = SealBuffer::with_capacity(payload.len());
    let mut sealed = Vec::new();
    let mut rbuf = Vec::new();
    let mut opened = Vec::new();
    let mut counts = Counts::default();
    // Warm-up: every API once, and buffers grown to size.
    for i in 0..4 + n {
        let warm = i < 4;
        // Seal, alternating the two APIs.
        rbuf.clear();
        let a = if i % 2 == 0 {
            let (res, a) = count(|| {
                sbuf.clear();
                sbuf.extend_from_slice(payload);
                tx.seal_in_place(topic, &mut sbuf).map(|_| ())
            });
            res.unwrap();
            rbuf.extend_from_slice(sbuf.envelope().unwrap());
            a
        } else {
            let (res, a) = count(|| tx.seal_into(topic, payload, &mut sealed));
            res.unwrap();
            rbuf.extend_from_slice(&sealed);
            a
        };
        // The receive buffer stands for the network's: grown here, outside
        // the counts.
        rbuf.reserve(64);
        // Open, alternating the two APIs in the other phase.
        let (res, b) = if (i / 2) % 2 == 0 {
            count(|| {
                rx.open_in_place(topic, &mut rbuf)
                    .map(|o| assert_eq!(o.payload, payload))
            })
        } else {
            count(|| {
                rx.open_into(topic, &rbuf, &mut opened)
                    .map(|_| assert_eq!(opened, payload))
            })
        };
        res.unwrap();
        if !warm {
            *(if i % 2 == 0 {
                &mut counts.seal_in_place
            } else {
                &mut counts.seal_into
            }) += a;
            *(if (i / 2) % 2 == 0 {
                &mut counts.open_in_place
            } else {
                &mut counts.open_into
            }) += b;
        }
    }
    counts
}

#[test]
fn seal_and_open_allocate_nothing_per_message() {
    for provider in common::providers() {
        for suite in Suite::ALL {
            // Signed suites are about 100x slower; 2 000 messages still cover
            // every API 1 000 times.
            let n = if suite.signed() {
                MESSAGES / 5
            } else {
                MESSAGES
            };
            for (topic, len) in [(fixture::TOPIC, 64), (fixture::FRESH_TOPIC, 4096)] {
                let mut tx = fixture::sender(suite, provider, 1_000_000);
                let mut rx = fixture::receiver(suite, provider, false);
                let payload = vec![0xa5; len];
                let counts = measure(&mut tx, &mut rx, topic, &payload, n);
                assert_eq!(
                    counts,
                    Counts::default(),
                    "{} {suite} {topic} ({len} B): allocations over {n} messages",
                    provider.name
                );
            }
        }
    }
}

#[test]
fn memory_store_reservations_do_not_allocate() {
    // A block of 1 000: ten reservations fall in the window.
    for suite in [Suite::Aes256Gcm, Suite::HmacSha256] {
        let mut tx = fixture::sender(suite, crypto::default_provider(), 1_000);
        let mut rx = fixture::receiver(suite, crypto::default_provider(), false);
        let counts = measure(&mut tx, &mut rx, fixture::TOPIC, &[7; 64], MESSAGES);
        assert_eq!(counts, Counts::default(), "{suite}");
    }
}

#[test]
fn the_counter_counts() {
    let (v, n) = count(|| vec![1u8; 10]);
    assert_eq!((v.len(), n), (10, 1));
    let (_, n) = count(|| {
        let mut v = Vec::with_capacity(4);
        v.extend_from_slice(&[0u8; 100]);
        v
    });
    assert_eq!(n, 2, "an allocation and a reallocation");
}

/// `Endpoint::seal` makes one allocation per message, of exactly the
/// envelope's length (none for an empty plaintext message): a vector with
/// spare capacity would cost a client library that takes it over
/// (`bytes::Bytes::from`, as rumqttc does) another allocation, and the
/// allocator a larger size class.
#[test]
fn seal_allocates_the_envelope_once_and_exactly() {
    for provider in common::providers() {
        for suite in Suite::ALL {
            for topic in [fixture::TOPIC, fixture::PLAIN_TOPIC] {
                for len in [0, 1, 64, 4096] {
                    let at = format!("{} {suite} {topic} ({len} B)", provider.name);
                    let mut tx = fixture::sender(suite, provider, 1_000_000);
                    let mut rx = fixture::receiver(suite, provider, false);
                    let payload = vec![0x3c; len];
                    // The first message creates the sender's state.
                    tx.seal(topic, &payload).unwrap();
                    for _ in 0..100 {
                        let (sealed, allocations) = count(|| tx.seal(topic, &payload));
                        let mut sealed = sealed.unwrap();
                        let expected = u64::from(!sealed.is_empty());
                        assert_eq!(allocations, expected, "{at}");
                        assert_eq!(sealed.capacity(), sealed.len(), "{at}");
                        let opened = rx.open_in_place(topic, &mut sealed).unwrap();
                        assert_eq!(opened.payload, payload, "{at}");
                    }
                }
            }
        }
    }
}

/// A reused buffer grows amortized: with payloads growing by one byte per
/// message, `seal_into` reallocates a handful of times, not per message.
#[test]
fn seal_into_a_reused_buffer_settles_when_payloads_grow() {
    for topic in [fixture::TOPIC, fixture::PLAIN_TOPIC] {
        let provider = crypto::default_provider();
        let mut tx = fixture::sender(Suite::Aes256Gcm, provider, 1_000_000);
        let mut out = Vec::new();
        tx.seal_into(topic, &[], &mut out).unwrap();
        let mut allocations = 0;
        for len in 100..1100 {
            let payload = vec![0x5a; len];
            let (res, a) = count(|| tx.seal_into(topic, &payload, &mut out));
            res.unwrap();
            allocations += a;
        }
        // Doubling from about 100 to about 1 200 bytes takes 4 to 5 steps.
        assert!(allocations <= 8, "{topic}: {allocations} allocations");
        assert!(allocations >= 1, "{topic}: the buffer never grew");
    }
}
