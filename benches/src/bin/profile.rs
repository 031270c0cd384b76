//! A fixed workload for `valgrind --tool=callgrind` (instruction counts are
//! repeatable, unlike times on a shared 2-core VM):
//!
//! ```text
//! cargo build --release -p mqseal-benches --bin profile
//! valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out \
//!     target/release/profile mqseal aes256gcm 64 100000
//! callgrind_annotate /tmp/cg.out | head -40
//! ```
//!
//! Modes: `mqseal SUITE SIZE N` seals and opens N messages (seal_in_place,
//! open_in_place, replay protection on); `ring SIZE N` seals and opens N
//! messages with raw ring AES-256-GCM, `ring-aad SIZE N` the same with a
//! 24-byte AAD (the fixture's). Compare the totals per message.
//!
//! `paired [ROUNDS]` is the timing mode for a shared machine: each round
//! times a batch of mqseal seal+open and a batch of its baseline back to back
//! (alternating which goes first), refilling buffers outside the timing as
//! the criterion benches do, and it prints the median of the per-round
//! ratios, which slow changes in the machine's load cancel out of. Pairs:
//! AES-256-GCM vs raw ring (64 B, 1 KiB, 64 KiB), COSE_Encrypt0 vs mqseal
//! (64 B, without and with a kid), and the signing suites vs raw
//! ed25519-dalek sign + verify.
//!
//! `aad-sweep [ROUNDS]` (15 by default) times raw ring seal+open at 64 B
//! with associated data of 0, 8, …, 48 bytes, to show what its length costs
//! inside ring.
//!
//! `split [ROUNDS]` times seal and open apart at 64 B, each next to raw ring
//! with the fixture's 24-byte AAD, so that what mqseal adds to each side
//! can be read off (medians of per-round times per message).

use mqseal::internal::fixture;
use mqseal::{SealBuffer, Suite, crypto};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};

/// A batch of `k` mqseal seals then `k` opens (refills untimed); returns ns.
struct MqBatch {
    tx: mqseal::Endpoint,
    rx: mqseal::Endpoint,
    payload: Vec<u8>,
    sbufs: Vec<SealBuffer>,
    rbufs: Vec<Vec<u8>>,
}

impl MqBatch {
    fn new(suite: Suite, size: usize, k: usize) -> Self {
        let provider = crypto::default_provider();
        MqBatch {
            tx: fixture::sender(suite, provider, 1_000_000),
            rx: fixture::receiver(suite, provider, false),
            payload: (0..size).map(|i| i as u8).collect(),
            sbufs: (0..k).map(|_| SealBuffer::with_capacity(size)).collect(),
            rbufs: (0..k).map(|_| Vec::with_capacity(size + 256)).collect(),
        }
    }

    fn run(&mut self) -> u128 {
        use std::time::Instant;
        for b in &mut self.sbufs {
            b.clear();
            b.extend_from_slice(&self.payload);
        }
        let start = Instant::now();
        for b in &mut self.sbufs {
            std::hint::black_box(self.tx.seal_in_place(fixture::TOPIC, b).expect("seal"));
        }
        let mut t = start.elapsed().as_nanos();
        for (r, b) in self.rbufs.iter_mut().zip(&self.sbufs) {
            r.clear();
            r.extend_from_slice(b.envelope().expect("sealed"));
        }
        let start = Instant::now();
        for r in &mut self.rbufs {
            std::hint::black_box(self.rx.open_in_place(fixture::TOPIC, r).expect("open"));
        }
        t += start.elapsed().as_nanos();
        t
    }
}

/// Runs `a` and `b` alternately (swapping which goes first every round) and
/// prints the medians per message and the median of the per-round ratios.
fn pair(label: &str, k: usize, rounds: usize, a: impl FnMut() -> u128, b: impl FnMut() -> u128) {
    let samples = mqseal_benches::alternate(rounds, 5, a, b);
    let per_msg = |t: u128| t as f64 / k as f64;
    let mut ra: Vec<f64> = samples.iter().map(|&(ta, _)| per_msg(ta)).collect();
    let mut rb: Vec<f64> = samples.iter().map(|&(_, tb)| per_msg(tb)).collect();
    let mut ratio: Vec<f64> = samples
        .iter()
        .map(|&(ta, tb)| ta as f64 / tb as f64)
        .collect();
    let median = mqseal_benches::median;
    let fmt = |ns: f64| {
        if ns >= 10_000.0 {
            format!("{:.1} us", ns / 1000.0)
        } else {
            format!("{ns:.0} ns")
        }
    };
    println!(
        "| {label} | {} | {} | {:.3}x |",
        fmt(median(&mut ra)),
        fmt(median(&mut rb)),
        median(&mut ratio)
    );
}

fn paired(rounds: usize) {
    use ed25519_dalek::{Signer as _, Verifier as _};
    use std::hint::black_box;
    use std::time::Instant;
    println!(
        "| pair (per message, seal+open) | A | B | time A / time B (median of {rounds} rounds) |"
    );
    println!("|---|---|---|---|");
    // AES-256-GCM against raw ring, in place, empty AAD for ring.
    for size in [64usize, 1024, 65536] {
        let k = (256 * 1024 / (size + 128)).clamp(4, 256);
        let mut mq = MqBatch::new(Suite::Aes256Gcm, size, k);
        let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[0x42; 32]).expect("key"));
        let payload: Vec<u8> = (0..size).map(|i| i as u8).collect();
        let mut raw: Vec<Vec<u8>> = (0..k).map(|_| Vec::with_capacity(size + 16)).collect();
        let nonce = || Nonce::assume_unique_for_key([7; 12]);
        pair(
            &format!("A mqseal aes256gcm / B raw ring AES-256-GCM, {size} B"),
            k,
            rounds,
            || mq.run(),
            || {
                for r in &mut raw {
                    r.clear();
                    r.extend_from_slice(&payload);
                }
                let start = Instant::now();
                for r in &mut raw {
                    key.seal_in_place_append_tag(nonce(), Aad::empty(), r)
                        .expect("seal");
                }
                for r in &mut raw {
                    black_box(key.open_in_place(nonce(), Aad::empty(), r).expect("open"));
                }
                start.elapsed().as_nanos()
            },
        );
    }
    // What the envelope's associated data alone costs ring: the same raw
    // seal+open at 64 B with and without a 24-byte AAD (the size of the
    // fixture's header, topic length and topic).
    {
        let k = 256;
        let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[0x42; 32]).expect("key"));
        let payload = [5u8; 64];
        let aad = [0x33u8; 24];
        let mut bufs: Vec<Vec<u8>> = (0..k).map(|_| Vec::with_capacity(64 + 16)).collect();
        let mut run = |ad: &[u8]| {
            for r in &mut bufs {
                r.clear();
                r.extend_from_slice(&payload);
            }
            let nonce = || Nonce::assume_unique_for_key([7; 12]);
            let start = Instant::now();
            for r in &mut bufs {
                key.seal_in_place_append_tag(nonce(), Aad::from(ad), r)
                    .expect("seal");
            }
            for r in &mut bufs {
                black_box(key.open_in_place(nonce(), Aad::from(ad), r).expect("open"));
            }
            start.elapsed().as_nanos()
        };
        // `pair` takes two closures; share one runner through a cell.
        let cell = std::cell::RefCell::new(&mut run);
        pair(
            "A raw ring AES-256-GCM with a 24-byte AAD / B with none, 64 B",
            k,
            rounds,
            || (cell.borrow_mut())(&aad),
            || (cell.borrow_mut())(&[]),
        );
    }
    // COSE_Encrypt0 (coset + ring) against mqseal, 64 B: as the target
    // states it (no kid), and carrying the fixture's sender id as its kid,
    // as an mqseal envelope always does.
    for (kid, label) in [(None, "no kid"), (Some(fixture::SENDER), "kid `dev1`")] {
        let k = 64;
        let mut mq = MqBatch::new(Suite::Aes256Gcm, 64, k);
        let cose = mqseal_benches::CoseEncrypt0Peer::new(&[0x42; 32], kid);
        let payload = [5u8; 64];
        pair(
            &format!("A COSE_Encrypt0 (coset + ring), {label} / B mqseal aes256gcm, 64 B"),
            k,
            rounds,
            || {
                let start = Instant::now();
                for _ in 0..k {
                    let sealed = cose.seal([7; 12], black_box(&payload));
                    black_box(cose.open(&sealed).expect("open"));
                }
                start.elapsed().as_nanos()
            },
            || mq.run(),
        );
    }
    // Signing suites against raw ed25519-dalek sign + verify (pre-decoded
    // key), plus raw ring AES-256-GCM seal + open for aes256gcm+ed25519.
    let sk = ed25519_dalek::SigningKey::from_bytes(&[3; 32]);
    let vk = sk.verifying_key();
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[0x42; 32]).expect("key"));
    let msg = [9u8; 64];
    for (suite, strict) in [
        (Suite::Ed25519, false),
        (Suite::Ed25519, true),
        (Suite::Aes256GcmEd25519, false),
        (Suite::Aes256GcmEd25519, true),
    ] {
        let k = 8;
        let mut mq = MqBatch::new(suite, 64, k);
        let aead = suite.encrypts();
        let label = format!(
            "A mqseal {suite} / B raw {}dalek sign + {}, 64 B",
            if aead { "ring AES-GCM + " } else { "" },
            if strict { "verify_strict" } else { "verify" },
        );
        let mut buf = Vec::with_capacity(64 + 16);
        pair(
            &label,
            k,
            rounds / 10,
            || mq.run(),
            || {
                let start = Instant::now();
                for _ in 0..k {
                    if aead {
                        buf.clear();
                        buf.extend_from_slice(&msg);
                        let n = || Nonce::assume_unique_for_key([7; 12]);
                        key.seal_in_place_append_tag(n(), Aad::empty(), &mut buf)
                            .expect("seal");
                        black_box(
                            key.open_in_place(n(), Aad::empty(), &mut buf)
                                .expect("open"),
                        );
                    }
                    let sig = sk.sign(black_box(&msg));
                    if strict {
                        vk.verify_strict(&msg, &sig).expect("verify");
                    } else {
                        vk.verify(&msg, &sig).expect("verify");
                    }
                }
                start.elapsed().as_nanos()
            },
        );
    }
}

/// Raw ring AES-256-GCM seal+open of 64 B with associated data of 0 to 48
/// bytes in steps of 8 (ring hashes it one 16-byte chunk per call). Prints
/// the median time per seal+open of each length over `rounds` rounds of
/// 100 000 (lengths interleaved per round).
fn aad_sweep(rounds: usize) {
    use std::time::Instant;
    const LENS: [usize; 7] = [0, 8, 16, 24, 32, 40, 48];
    const N: u32 = 100_000;
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[0x42; 32]).expect("key"));
    let aad = [0x33u8; 48];
    let mut times = vec![Vec::with_capacity(rounds); LENS.len()];
    for _ in 0..rounds {
        for (len, t) in LENS.iter().zip(&mut times) {
            let mut buf = [0u8; 64];
            let start = Instant::now();
            for i in 0..N {
                let mut nonce = [0u8; 12];
                nonce[8..].copy_from_slice(&i.to_be_bytes());
                let nonce = || Nonce::assume_unique_for_key(nonce);
                let aad = || Aad::from(&aad[..*len]);
                let tag = key
                    .seal_in_place_separate_tag(nonce(), aad(), &mut buf)
                    .expect("seal");
                let tag = std::hint::black_box(tag);
                key.open_in_place_separate_tag(nonce(), aad(), tag, &mut buf, 0..)
                    .expect("open");
            }
            t.push(start.elapsed().as_nanos() as f64 / f64::from(N));
        }
    }
    println!("| AAD bytes | ns per seal+open, 64 B (median of {rounds}) |\n|---|---|");
    for (len, t) in LENS.iter().zip(&mut times) {
        println!("| {len} | {:.1} |", mqseal_benches::median(t));
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: &str| args.get(i).cloned().unwrap_or_else(|| default.into());
    match arg(0, "mqseal").as_str() {
        "paired" => paired(mqseal_benches::rounds(&arg(1, "2000"))),
        "split" => split(mqseal_benches::rounds(&arg(1, "2000"))),
        "aad-sweep" => aad_sweep(mqseal_benches::rounds(&arg(1, "15"))),
        mode @ ("ring" | "ring-aad") => {
            let size: usize = arg(1, "64").parse().expect("size");
            let n: u64 = arg(2, "100000").parse().expect("count");
            // `ring-aad`: with a 24-byte AAD, the size of the fixture's
            // header, topic length and topic.
            let aad = if mode == "ring-aad" {
                &[0x33u8; 24][..]
            } else {
                &[]
            };
            let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[0x42; 32]).expect("key"));
            let mut buf = Vec::with_capacity(size + 16);
            for i in 0..n {
                buf.clear();
                buf.resize(size, i as u8);
                let mut nonce = [0u8; 12];
                nonce[4..].copy_from_slice(&i.to_be_bytes());
                key.seal_in_place_append_tag(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(aad),
                    &mut buf,
                )
                .expect("seal");
                key.open_in_place(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(aad),
                    &mut buf,
                )
                .expect("open");
            }
        }
        _ => {
            let name = arg(1, "aes256gcm");
            let suite = Suite::ALL
                .into_iter()
                .find(|s| s.name() == name)
                .expect("a suite name, e.g. aes256gcm");
            let size: usize = arg(2, "64").parse().expect("size");
            let n: u64 = arg(3, "100000").parse().expect("count");
            let provider = crypto::default_provider();
            let mut tx = fixture::sender(suite, provider, 1_000_000);
            let mut rx = fixture::receiver(suite, provider, false);
            let mut sbuf = SealBuffer::with_capacity(size);
            let mut rbuf = Vec::with_capacity(size + 256);
            for i in 0..n {
                sbuf.clear();
                sbuf.resize_payload(size).fill(i as u8);
                let env = tx.seal_in_place(fixture::TOPIC, &mut sbuf).expect("seal");
                rbuf.clear();
                rbuf.extend_from_slice(env);
                rx.open_in_place(fixture::TOPIC, &mut rbuf).expect("open");
            }
        }
    }
}

/// Per-side times: mqseal seal, mqseal open, raw ring seal and open with a
/// 24-byte AAD, 64 B, batches of 256 (refills untimed), always in that order,
/// after five warm-up rounds; medians of the per-round times per message.
fn split(rounds: usize) {
    use std::hint::black_box;
    use std::time::Instant;
    let k = 256;
    let mut mq = MqBatch::new(Suite::Aes256Gcm, 64, k);
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[0x42; 32]).expect("key"));
    let aad = [0x33u8; 24];
    let mut raw: Vec<Vec<u8>> = (0..k).map(|_| Vec::with_capacity(64 + 16)).collect();
    let (mut s1, mut s2, mut s3, mut s4) = (vec![], vec![], vec![], vec![]);
    const WARMUP: usize = 5;
    for _ in 0..rounds + WARMUP {
        for b in &mut mq.sbufs {
            b.clear();
            b.extend_from_slice(&mq.payload);
        }
        let start = Instant::now();
        for b in &mut mq.sbufs {
            black_box(mq.tx.seal_in_place(fixture::TOPIC, b).expect("seal"));
        }
        s1.push(start.elapsed().as_nanos() as f64 / k as f64);
        for (r, b) in mq.rbufs.iter_mut().zip(&mq.sbufs) {
            r.clear();
            r.extend_from_slice(b.envelope().expect("sealed"));
        }
        let start = Instant::now();
        for r in &mut mq.rbufs {
            black_box(mq.rx.open_in_place(fixture::TOPIC, r).expect("open"));
        }
        s2.push(start.elapsed().as_nanos() as f64 / k as f64);
        for r in &mut raw {
            r.clear();
            r.extend_from_slice(&[5u8; 64]);
        }
        let nonce = || Nonce::assume_unique_for_key([7; 12]);
        let start = Instant::now();
        for r in &mut raw {
            key.seal_in_place_append_tag(nonce(), Aad::from(&aad), r)
                .expect("seal");
        }
        s3.push(start.elapsed().as_nanos() as f64 / k as f64);
        let start = Instant::now();
        for r in &mut raw {
            black_box(
                key.open_in_place(nonce(), Aad::from(&aad), r)
                    .expect("open"),
            );
        }
        s4.push(start.elapsed().as_nanos() as f64 / k as f64);
    }
    for v in [&mut s1, &mut s2, &mut s3, &mut s4] {
        v.drain(..WARMUP);
    }
    for (n, v) in [
        ("mq seal", &mut s1),
        ("mq open", &mut s2),
        ("ring-aad seal", &mut s3),
        ("ring-aad open", &mut s4),
    ] {
        println!("{n}: {:.1} ns", mqseal_benches::median(v));
    }
}
