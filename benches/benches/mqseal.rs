//! mqseal's benchmarks, with the raw primitives and a COSE peer measured in
//! the same run so that ratios can be read directly. See docs/performance.md.
//!
//! ```text
//! cargo bench -p mqseal-benches --bench mqseal -- --warm-up-time 1 --measurement-time 2
//! python3 benches/report.py      # the tables of docs/performance.md
//! ```
//!
//! Method: every seal and open benchmark, mqseal's and the baselines', runs on
//! a pool of reused buffers. Before each timed batch the pool is refilled
//! outside the timing (the payload written into each buffer; for opens, a
//! fresh envelope sealed into each), then the batch is timed. So neither side
//! pays for writing its input, which on this VM can make a 64 KiB `memcpy`
//! erratic (see shared/BASELINES.md).
//!
//! Opens run with replay protection on: each timed open is of a different,
//! freshly sealed envelope with a higher counter, as in a real stream (the
//! "pre-seal a batch" method). Senders use a `MemoryCounterStore` with a block
//! of 1 000 000, so no counter reservation falls in a measurement.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{
    BenchmarkId, Criterion, Throughput, criterion_group, criterion_main, measurement::WallTime,
};
use ed25519_dalek::{Signer as _, Verifier as _};
use mqseal::internal::{self, fixture};
use mqseal::replay::ReplayWindow;
use mqseal::{Endpoint, GroupSecret, SealBuffer, SenderId, Suite, crypto};
use mqseal_benches::CoseEncrypt0Peer;
use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};

const SIZES: [usize; 5] = [32, 64, 1024, 16 * 1024, 64 * 1024];
const KEY: [u8; 32] = [0x42; 32];
const NONCE: [u8; 12] = [7; 12];
const SEED: [u8; 32] = [3; 32];

type Group<'a> = criterion::BenchmarkGroup<'a, WallTime>;

/// How many buffers a pool holds: about 256 KiB in all, 4 to 256 buffers.
fn pool_len(size: usize) -> usize {
    (256 * 1024 / (size + 128)).clamp(4, 256)
}

/// Times `routine` over a pool of reused buffers that `refill` prepares
/// outside the timing before each batch.
fn batched<T>(
    b: &mut criterion::Bencher<'_>,
    pool: &mut [T],
    mut refill: impl FnMut(&mut T),
    mut routine: impl FnMut(&mut T),
) {
    b.iter_custom(|iters| {
        let mut total = Duration::ZERO;
        let mut left = iters;
        while left > 0 {
            let k = usize::try_from(left).unwrap_or(usize::MAX).min(pool.len());
            pool[..k].iter_mut().for_each(&mut refill);
            let start = Instant::now();
            pool[..k].iter_mut().for_each(&mut routine);
            total += start.elapsed();
            left -= k as u64;
        }
        total
    });
}

/// Times mqseal opens of `data` on the fixture topic: before each batch, `tx`
/// seals a fresh envelope (a higher counter) into every buffer of the pool.
fn batched_open(
    b: &mut criterion::Bencher<'_>,
    pool: &mut [Vec<u8>],
    tx: &mut Endpoint,
    rx: &mut Endpoint,
    data: &[u8],
) {
    batched(
        b,
        pool,
        |buf| tx.seal_into(fixture::TOPIC, data, buf).unwrap(),
        |buf| {
            black_box(rx.open_in_place(fixture::TOPIC, buf).unwrap());
        },
    )
}

fn payload(size: usize) -> Vec<u8> {
    (0..size).map(|i| i as u8).collect()
}

fn ring_key(alg: &'static aead::Algorithm) -> LessSafeKey {
    LessSafeKey::new(UnboundKey::new(alg, &KEY).unwrap())
}

fn sender(suite: Suite) -> Endpoint {
    fixture::sender(suite, crypto::default_provider(), 1_000_000)
}

fn receiver(suite: Suite) -> Endpoint {
    fixture::receiver(suite, crypto::default_provider(), false)
}

fn seal_benches(g: &mut Group<'_>, size: usize) {
    let data = payload(size);
    let n = pool_len(size);
    g.throughput(Throughput::Bytes(size as u64));
    for suite in Suite::ALL {
        let mut tx = sender(suite);
        let mut pool: Vec<SealBuffer> = (0..n).map(|_| SealBuffer::with_capacity(size)).collect();
        g.bench_function(BenchmarkId::new(suite.name(), size), |b| {
            batched(
                b,
                &mut pool,
                |buf| {
                    buf.clear();
                    buf.extend_from_slice(&data);
                },
                |buf| {
                    black_box(tx.seal_in_place(fixture::TOPIC, buf).unwrap());
                },
            )
        });
    }
    for (name, alg) in [
        ("raw-ring-aes256gcm", &aead::AES_256_GCM),
        ("raw-ring-chacha20poly1305", &aead::CHACHA20_POLY1305),
    ] {
        let key = ring_key(alg);
        let mut pool: Vec<Vec<u8>> = (0..n).map(|_| Vec::with_capacity(size + 16)).collect();
        g.bench_function(BenchmarkId::new(name, size), |b| {
            batched(
                b,
                &mut pool,
                |buf| {
                    buf.clear();
                    buf.extend_from_slice(&data);
                },
                |buf| {
                    key.seal_in_place_append_tag(
                        Nonce::assume_unique_for_key(NONCE),
                        Aad::empty(),
                        buf,
                    )
                    .unwrap();
                },
            )
        });
    }
    let hmac = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &KEY);
    g.bench_function(BenchmarkId::new("raw-ring-hmacsha256", size), |b| {
        b.iter(|| ring::hmac::sign(&hmac, black_box(&data)))
    });
    let ring_pair = ring::signature::Ed25519KeyPair::from_seed_unchecked(&SEED).unwrap();
    g.bench_function(BenchmarkId::new("raw-ring-ed25519", size), |b| {
        b.iter(|| ring_pair.sign(black_box(&data)))
    });
    let dalek = ed25519_dalek::SigningKey::from_bytes(&SEED);
    g.bench_function(BenchmarkId::new("raw-dalek-ed25519", size), |b| {
        b.iter(|| dalek.sign(black_box(&data)))
    });
    let cose = CoseEncrypt0Peer::new(&KEY, None);
    g.bench_function(BenchmarkId::new("cose-encrypt0-aes256gcm", size), |b| {
        b.iter(|| cose.seal(NONCE, black_box(&data)))
    });
}

fn open_benches(g: &mut Group<'_>, size: usize) {
    let data = payload(size);
    let n = pool_len(size);
    g.throughput(Throughput::Bytes(size as u64));
    for suite in Suite::ALL {
        let mut tx = sender(suite);
        let mut rx = receiver(suite);
        let mut pool: Vec<Vec<u8>> = (0..n).map(|_| Vec::with_capacity(size + 128)).collect();
        g.bench_function(BenchmarkId::new(suite.name(), size), |b| {
            batched_open(b, &mut pool, &mut tx, &mut rx, &data)
        });
    }
    for (name, alg) in [
        ("raw-ring-aes256gcm", &aead::AES_256_GCM),
        ("raw-ring-chacha20poly1305", &aead::CHACHA20_POLY1305),
    ] {
        let key = ring_key(alg);
        let mut sealed = data.clone();
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(NONCE),
            Aad::empty(),
            &mut sealed,
        )
        .unwrap();
        let mut pool: Vec<Vec<u8>> = (0..n).map(|_| Vec::with_capacity(size + 16)).collect();
        g.bench_function(BenchmarkId::new(name, size), |b| {
            batched(
                b,
                &mut pool,
                |buf| {
                    buf.clear();
                    buf.extend_from_slice(&sealed);
                },
                |buf| {
                    black_box(
                        key.open_in_place(Nonce::assume_unique_for_key(NONCE), Aad::empty(), buf)
                            .unwrap(),
                    );
                },
            )
        });
    }
    let hmac = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &KEY);
    let tag = ring::hmac::sign(&hmac, &data);
    g.bench_function(BenchmarkId::new("raw-ring-hmacsha256", size), |b| {
        b.iter(|| ring::hmac::verify(&hmac, black_box(&data), tag.as_ref()).unwrap())
    });
    let ring_pair = ring::signature::Ed25519KeyPair::from_seed_unchecked(&SEED).unwrap();
    let ring_sig = ring_pair.sign(&data);
    let ring_pk = {
        use ring::signature::KeyPair as _;
        ring_pair.public_key().as_ref().to_vec()
    };
    g.bench_function(BenchmarkId::new("raw-ring-ed25519", size), |b| {
        b.iter(|| {
            ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, &ring_pk)
                .verify(black_box(&data), ring_sig.as_ref())
                .unwrap()
        })
    });
    let dalek = ed25519_dalek::SigningKey::from_bytes(&SEED);
    let vk = dalek.verifying_key(); // decoded once, as mqseal's trust store does
    let dalek_sig = dalek.sign(&data);
    g.bench_function(BenchmarkId::new("raw-dalek-ed25519", size), |b| {
        b.iter(|| vk.verify(black_box(&data), &dalek_sig).unwrap())
    });
    // What mqseal's dalek verification guarantees (no small-order R or key).
    g.bench_function(BenchmarkId::new("raw-dalek-ed25519-strict", size), |b| {
        b.iter(|| vk.verify_strict(black_box(&data), &dalek_sig).unwrap())
    });
    let cose = CoseEncrypt0Peer::new(&KEY, None);
    let sealed = cose.seal(NONCE, &data);
    g.bench_function(BenchmarkId::new("cose-encrypt0-aes256gcm", size), |b| {
        b.iter(|| cose.open(black_box(&sealed)).unwrap())
    });
}

fn seal(c: &mut Criterion) {
    let mut g = c.benchmark_group("seal");
    for size in SIZES {
        seal_benches(&mut g, size);
    }
    g.finish();
}

fn open(c: &mut Criterion) {
    let mut g = c.benchmark_group("open");
    for size in SIZES {
        open_benches(&mut g, size);
    }
    g.finish();
}

fn replay(c: &mut Criterion) {
    let mut g = c.benchmark_group("replay");
    let mut w = ReplayWindow::new(mqseal::replay::DEFAULT_WINDOW).unwrap();
    let mut counter = 0u64;
    g.bench_function("accept-in-order", |b| {
        b.iter(|| {
            counter += 1;
            internal::replay_accept_for_testing_only(&mut w, black_box(counter)).unwrap()
        })
    });
    // Pairs swapped: 2, 1, 4, 3, ... (every other one is below the highest).
    let mut w = ReplayWindow::new(mqseal::replay::DEFAULT_WINDOW).unwrap();
    let mut i = 0u64;
    g.bench_function("accept-reordered", |b| {
        b.iter(|| {
            i += 1;
            let c = if i % 2 == 1 { i + 1 } else { i - 1 };
            internal::replay_accept_for_testing_only(&mut w, black_box(c)).unwrap()
        })
    });
    let w = ReplayWindow::new(mqseal::replay::DEFAULT_WINDOW).unwrap();
    let mut w2 = w.clone();
    internal::replay_accept_for_testing_only(&mut w2, 1000).unwrap();
    g.bench_function("check-replayed", |b| {
        b.iter(|| w2.check(black_box(1000)).unwrap_err())
    });
    g.finish();
}

fn kdf(c: &mut Criterion) {
    let mut g = c.benchmark_group("kdf");
    let secret = GroupSecret::from_bytes(fixture::GROUP_SECRET);
    let sender = SenderId::new(fixture::SENDER).unwrap();
    for provider in [&crypto::ring::PROVIDER, &crypto::rustcrypto::PROVIDER] {
        g.bench_function(
            BenchmarkId::new("derive-sender-key-uncached", provider.name),
            |b| {
                b.iter(|| {
                    internal::derive_sender_key(
                        provider,
                        black_box(&secret),
                        Suite::Aes256Gcm,
                        fixture::EPOCH,
                        &sender,
                    )
                })
            },
        );
    }
    // The cached path: open on an already-known sender (the per-sender keys
    // are cached in the receiver state), as in the "open" group.
    let mut tx = sender_for_kdf();
    let mut rx = receiver(Suite::Aes256Gcm);
    let data = payload(64);
    let mut pool: Vec<Vec<u8>> = (0..256).map(|_| Vec::with_capacity(256)).collect();
    g.bench_function("open-aes256gcm-64-cached-keys", |b| {
        batched_open(b, &mut pool, &mut tx, &mut rx, &data)
    });
    g.finish();
}

fn sender_for_kdf() -> Endpoint {
    sender(Suite::Aes256Gcm)
}

criterion_group!(benches, seal, open, replay, kdf);
criterion_main!(benches);
