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
//! messages with raw ring AES-256-GCM. Compare the two totals per message.
//!
//! `paired SIZE ROUNDS` is a timing mode for a shared machine: each round
//! times a batch of mqseal AES-256-GCM seal+open and then the same batch with
//! raw ring, back to back, refilling the buffers outside the timing as the
//! criterion benches do; it prints the median of the per-round ratios, which
//! slow changes in the machine's load cancel out of.

use mqseal::internal::fixture;
use mqseal::{SealBuffer, Suite, crypto};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};

fn paired(size: usize, rounds: usize) {
    use std::time::Instant;
    let k = (256 * 1024 / (size + 128)).clamp(4, 256);
    let provider = crypto::default_provider();
    let mut tx = fixture::sender(Suite::Aes256Gcm, provider, 1_000_000);
    let mut rx = fixture::receiver(Suite::Aes256Gcm, provider, false);
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[0x42; 32]).expect("key"));
    let payload: Vec<u8> = (0..size).map(|i| i as u8).collect();
    let mut sbufs: Vec<SealBuffer> = (0..k).map(|_| SealBuffer::with_capacity(size)).collect();
    let mut rbufs: Vec<Vec<u8>> = (0..k).map(|_| Vec::with_capacity(size + 256)).collect();
    let mut raw: Vec<Vec<u8>> = (0..k).map(|_| Vec::with_capacity(size + 16)).collect();
    let nonce = || Nonce::assume_unique_for_key([7; 12]);
    let (mut ratios, mut mq_ns, mut raw_ns) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds + 5 {
        // mqseal: seal k, then open k (copying each envelope untimed).
        let mut t = 0u128;
        for b in &mut sbufs {
            b.clear();
            b.extend_from_slice(&payload);
        }
        let start = Instant::now();
        for b in &mut sbufs {
            std::hint::black_box(tx.seal_in_place(fixture::TOPIC, b).expect("seal"));
        }
        t += start.elapsed().as_nanos();
        for (r, b) in rbufs.iter_mut().zip(&sbufs) {
            r.clear();
            r.extend_from_slice(b.envelope().expect("sealed"));
        }
        let start = Instant::now();
        for r in &mut rbufs {
            std::hint::black_box(rx.open_in_place(fixture::TOPIC, r).expect("open"));
        }
        t += start.elapsed().as_nanos();
        // raw ring: seal k, then open k.
        let mut u = 0u128;
        for r in &mut raw {
            r.clear();
            r.extend_from_slice(&payload);
        }
        let start = Instant::now();
        for r in &mut raw {
            key.seal_in_place_append_tag(nonce(), Aad::empty(), r)
                .expect("seal");
        }
        u += start.elapsed().as_nanos();
        let start = Instant::now();
        for r in &mut raw {
            std::hint::black_box(key.open_in_place(nonce(), Aad::empty(), r).expect("open"));
        }
        u += start.elapsed().as_nanos();
        if round >= 5 {
            ratios.push(t as f64 / u as f64);
            mq_ns.push(t as f64 / k as f64);
            raw_ns.push(u as f64 / k as f64);
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    println!(
        "size {size}: mqseal seal+open {:.0} ns, raw ring seal+open {:.0} ns, paired ratio {:.3} (median of {rounds} rounds of {k})",
        median(&mut mq_ns),
        median(&mut raw_ns),
        median(&mut ratios)
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: &str| args.get(i).cloned().unwrap_or_else(|| default.into());
    match arg(0, "mqseal").as_str() {
        "paired" => {
            let rounds: usize = arg(2, "2000").parse().expect("rounds");
            for size in arg(1, "64,65536").split(',') {
                paired(size.parse().expect("size"), rounds);
            }
        }
        "ring" => {
            let size: usize = arg(1, "64").parse().expect("size");
            let n: u64 = arg(2, "100000").parse().expect("count");
            let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[0x42; 32]).expect("key"));
            let mut buf = Vec::with_capacity(size + 16);
            for i in 0..n {
                buf.clear();
                buf.resize(size, i as u8);
                let mut nonce = [0u8; 12];
                nonce[4..].copy_from_slice(&i.to_be_bytes());
                key.seal_in_place_append_tag(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::empty(),
                    &mut buf,
                )
                .expect("seal");
                key.open_in_place(Nonce::assume_unique_for_key(nonce), Aad::empty(), &mut buf)
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
