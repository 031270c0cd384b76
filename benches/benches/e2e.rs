//! End to end through the embedded rumqttd broker: messages per second from
//! one publisher to one subscriber, 64-byte payloads, with and without mqseal
//! (AES-256-GCM, replay protection on), at QoS 0 and QoS 1.
//!
//! Each measured batch publishes `BATCH` messages and stops when the
//! subscriber has received (and, with mqseal, verified and opened) all of
//! them. Connections are set up before the clock starts.
//!
//! `cargo bench -p mqseal-benches --bench e2e -- --warm-up-time 1 --measurement-time 5`
//!
//! Criterion times each cell for seconds, one after the other, and on a
//! shared 2-core machine the broker's throughput moves between cells by more
//! than mqseal's cost. With `MQSEAL_E2E_PAIRED=ROUNDS` the bench instead
//! runs ROUNDS pairs of 100 000-message batches (A and B back to back,
//! alternating which goes first, after two warm-up rounds) and prints, per
//! row, the median messages per second of each side and the median of the
//! per-round ratios of the rates with its quartiles. Rows: mqseal against
//! plain rumqttc at QoS 0 and 1, and two controls: mqseal's clients with an
//! `insecure_plaintext` policy (the adapter alone), and plain rumqttc with a
//! payload the size of an envelope (the extra bytes alone). Large batches
//! matter: the last segments of a batch can wait for a delayed TCP
//! acknowledgement (up to 40 ms on Linux), which at 2 000 messages is most of
//! a batch's time. An even ROUNDS gives both orders the same count:
//!
//! `MQSEAL_E2E_PAIRED=20 cargo bench -p mqseal-benches --bench e2e`

use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};
use mqseal::*;
use mqseal_broker::EmbeddedBroker;
use mqseal_rumqttc::rumqttc::{AsyncClient, Event, MqttOptions, Packet};
use mqseal_rumqttc::{QoS, SecureAsyncClient, SecureEvent};
use tokio::runtime::Runtime;
use tokio::sync::mpsc;

const BATCH: u64 = 2_000;
/// Messages per batch in the paired mode.
const PAIRED_BATCH: u64 = 100_000;
const PAYLOAD: [u8; 64] = [0x5a; 64];
/// The QoS levels measured (mqseal-rumqttc's `QoS` is rumqttc's).
const QOS_LEVELS: [(&str, QoS); 2] = [("0", QoS::AtMostOnce), ("1", QoS::AtLeastOnce)];
const TOPIC: &str = "bench/e2e";

fn options(id: &str, port: u16) -> MqttOptions {
    let mut o = MqttOptions::new(id, "127.0.0.1", port);
    o.set_keep_alive(Duration::from_secs(30));
    o.set_inflight(200);
    o
}

fn endpoint(id: &str) -> Endpoint {
    endpoint_with(id, Protection::encrypt(Aead::Aes256Gcm).build())
}

fn endpoint_with(id: &str, protection: Protection) -> Endpoint {
    let policy = Policy::builder()
        .rule("bench/#", protection)
        .expect("valid rule")
        .build();
    Endpoint::builder(policy)
        .sender_id(SenderId::try_from(id).expect("short id"))
        .keyring(Keyring::new(1, GroupSecret::from_bytes([7; 32])))
        .counter_store(MemoryCounterStore::new())
        .build()
        .expect("valid endpoint")
}

/// Sends `n` messages and returns the time until the subscriber has them all.
async fn plain(port: u16, qos: QoS, n: u64, run: u64, payload: &[u8]) -> Duration {
    let (sub, mut sub_loop) = AsyncClient::new(options(&format!("ps{run}"), port), 1000);
    let (tx, mut done) = mpsc::channel(1);
    let (ready_tx, mut ready) = mpsc::channel(1);
    sub.subscribe(TOPIC, qos).await.expect("subscribe");
    tokio::spawn(async move {
        let mut got = 0;
        while let Ok(e) = sub_loop.poll().await {
            match e {
                Event::Incoming(Packet::SubAck(_)) => {
                    let _ = ready_tx.send(()).await;
                }
                Event::Incoming(Packet::Publish(_)) => {
                    got += 1;
                    if got == n {
                        let _ = tx.send(()).await;
                        return;
                    }
                }
                _ => {}
            }
        }
    });
    ready.recv().await.expect("subscribed");
    let (publ, mut pub_loop) = AsyncClient::new(options(&format!("pp{run}"), port), 1000);
    tokio::spawn(async move { while pub_loop.poll().await.is_ok() {} });
    let start = Instant::now();
    for _ in 0..n {
        publ.publish(TOPIC, qos, false, payload.to_vec())
            .await
            .expect("publish");
    }
    done.recv().await.expect("all received");
    let elapsed = start.elapsed();
    let _ = publ.disconnect().await;
    let _ = sub.disconnect().await;
    elapsed
}

/// The same through mqseal: sealed on publish, verified and opened on receipt.
async fn sealed(port: u16, qos: QoS, n: u64, run: u64) -> Duration {
    through_adapter(port, qos, n, run, endpoint).await
}

/// The mqseal clients with endpoints made by `endpoint` (by id).
async fn through_adapter(
    port: u16,
    qos: QoS,
    n: u64,
    run: u64,
    endpoint: fn(&str) -> Endpoint,
) -> Duration {
    let (sub, mut sub_loop) =
        SecureAsyncClient::new(options(&format!("ss{run}"), port), 1000, endpoint("sub"))
            .expect("secure client");
    let (tx, mut done) = mpsc::channel(1);
    let (ready_tx, mut ready) = mpsc::channel(1);
    sub.subscribe(TOPIC, qos).await.expect("subscribe");
    tokio::spawn(async move {
        let mut got = 0;
        while let Ok(e) = sub_loop.poll().await {
            match e {
                SecureEvent::Mqtt(Event::Incoming(Packet::SubAck(_))) => {
                    let _ = ready_tx.send(()).await;
                }
                SecureEvent::Message(_) => {
                    got += 1;
                    if got == n {
                        let _ = tx.send(()).await;
                        return;
                    }
                }
                SecureEvent::Rejected(r) => panic!("rejected: {}", r.error),
                _ => {}
            }
        }
    });
    ready.recv().await.expect("subscribed");
    let (publ, mut pub_loop) = SecureAsyncClient::new(
        options(&format!("sp{run}"), port),
        1000,
        // Fixed width, so that every run's envelopes have the same size.
        endpoint(&format!("p{run:05}")),
    )
    .expect("secure client");
    tokio::spawn(async move { while pub_loop.poll().await.is_ok() {} });
    let start = Instant::now();
    for _ in 0..n {
        publ.publish(TOPIC, qos, false, PAYLOAD)
            .await
            .expect("publish");
    }
    done.recv().await.expect("all received");
    let elapsed = start.elapsed();
    let _ = publ.disconnect().await;
    let _ = sub.disconnect().await;
    elapsed
}

fn e2e(c: &mut Criterion) {
    let broker = EmbeddedBroker::start().expect("embedded broker");
    let port = broker.port();
    let rt = Runtime::new().expect("tokio runtime");
    let mut group = c.benchmark_group("e2e_64B");
    group.throughput(Throughput::Elements(BATCH));
    group.sample_size(10);
    let mut run = 0u64;
    for (level, qos) in QOS_LEVELS {
        let name = format!("qos{level}");
        group.bench_function(BenchmarkId::new("plain", &name), |b| {
            b.iter_custom(|iters| {
                run += 1;
                rt.block_on(plain(port, qos, BATCH * iters, run, &PAYLOAD))
            })
        });
        group.bench_function(BenchmarkId::new("mqseal", &name), |b| {
            b.iter_custom(|iters| {
                run += 1;
                rt.block_on(sealed(port, qos, BATCH * iters, run))
            })
        });
    }
    group.finish();
}

/// Paired mode: per round, batch A and batch B of `PAIRED_BATCH` messages,
/// alternating which goes first; medians of messages per second and of the
/// per-round ratios. Rows: mqseal against plain rumqttc (64 B payload), and
/// plain rumqttc with a payload the size of the envelope against 64 B, which
/// is what the extra bytes alone cost the broker and the clients.
fn paired(rounds: usize) {
    let broker = EmbeddedBroker::start().expect("embedded broker");
    let port = broker.port();
    let rt = Runtime::new().expect("tokio runtime");
    // An envelope as the runs send them: a 6-byte sender id, and a counter
    // in the middle of a batch (its varint grows with the count).
    let mut sizer = endpoint("p00000");
    let envelope_len = (0..PAIRED_BATCH / 2)
        .map(|_| sizer.seal(TOPIC, &PAYLOAD).expect("seal").len())
        .last()
        .expect("sealed");
    let padded = vec![0x5a; envelope_len];
    // Each batch connects new clients, with new client ids.
    let run = std::cell::Cell::new(0u64);
    let next = || {
        run.set(run.get() + 1);
        run.get()
    };
    println!(
        "| pair, {PAIRED_BATCH} messages per batch | A msgs/s | B msgs/s | rate A / rate B: median of {rounds} rounds (quartiles) |"
    );
    println!("|---|---|---|---|");
    for (name, qos) in QOS_LEVELS {
        pair_rows(
            &format!("QoS {name}: A mqseal / B plain rumqttc, 64 B"),
            rounds,
            || rt.block_on(sealed(port, qos, PAIRED_BATCH, next())),
            || rt.block_on(plain(port, qos, PAIRED_BATCH, next(), &PAYLOAD)),
        );
    }
    // The adapter alone: mqseal's clients with a plaintext policy.
    let adapter_only = |id: &str| endpoint_with(id, Protection::insecure_plaintext());
    for (name, qos) in QOS_LEVELS {
        pair_rows(
            &format!(
                "QoS {name}: A mqseal's clients with an insecure_plaintext policy / B plain rumqttc, 64 B"
            ),
            rounds,
            || {
                rt.block_on(through_adapter(
                    port,
                    qos,
                    PAIRED_BATCH,
                    next(),
                    adapter_only,
                ))
            },
            || rt.block_on(plain(port, qos, PAIRED_BATCH, next(), &PAYLOAD)),
        );
        pair_rows(
            &format!(
                "QoS {name}: A plain rumqttc, {envelope_len} B (the envelope's size) / B plain, 64 B"
            ),
            rounds,
            || rt.block_on(plain(port, qos, PAIRED_BATCH, next(), &padded)),
            || rt.block_on(plain(port, qos, PAIRED_BATCH, next(), &PAYLOAD)),
        );
    }
}

/// Runs `a` and `b` alternately (two warm-up rounds first) and prints a row.
fn pair_rows(label: &str, rounds: usize, a: impl FnMut() -> Duration, b: impl FnMut() -> Duration) {
    let rate = |t: Duration| PAIRED_BATCH as f64 / t.as_secs_f64();
    let samples = mqseal_benches::alternate(rounds, 2, a, b);
    let mut ra: Vec<f64> = samples.iter().map(|&(ta, _)| rate(ta)).collect();
    let mut rb: Vec<f64> = samples.iter().map(|&(_, tb)| rate(tb)).collect();
    let mut ratio: Vec<f64> = samples
        .iter()
        .map(|&(ta, tb)| rate(ta) / rate(tb))
        .collect();
    let median = mqseal_benches::median;
    let m = median(&mut ratio);
    println!(
        "| {label} | {:.1} k | {:.1} k | {m:.3} ({:.2}–{:.2}) |",
        median(&mut ra) / 1e3,
        median(&mut rb) / 1e3,
        ratio[ratio.len() / 4],
        ratio[ratio.len() * 3 / 4],
    );
}

criterion_group!(benches, e2e);

fn main() {
    match std::env::var("MQSEAL_E2E_PAIRED") {
        Ok(r) => paired(mqseal_benches::rounds(&r)),
        Err(_) => {
            benches();
            Criterion::default().configure_from_args().final_summary();
        }
    }
}
