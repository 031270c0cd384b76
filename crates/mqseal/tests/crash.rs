//! Crash safety of sending counters kept in a [`FileCounterStore`].
//!
//! `counters_never_repeat_across_sigkills` re-executes this test binary as a
//! child that seals forever (`child_seal_forever`), kills it with SIGKILL at
//! random moments, many times, and checks that no counter printed by any life
//! is ever printed again. `clean_restart_continues_without_gap` checks that
//! after [`Endpoint::flush`] a restart skips nothing.

use std::path::Path;

use mqseal::counter::{CounterScope, Role};
use mqseal::{
    Aead, CounterStore, Endpoint, FileCounterStore, GroupSecret, Keyring, Policy, Protection,
    SenderId,
};

/// Set (to a directory) only in the child process.
const CHILD_DIR_ENV: &str = "MQSEAL_CRASH_CHILD_DIR";
/// Overrides the random seed of the crash test, to replay a failure.
const SEED_ENV: &str = "MQSEAL_CRASH_SEED";
const TOPIC: &str = "plant/7/telemetry";
const SENDER: &[u8] = b"crash-child";
const EPOCH: u32 = 1;
/// Small, so that reservations (write, fsync, rename, fsync) happen every few
/// messages and many kills land in the middle of one.
const BLOCK: u64 = 8;

fn endpoint(counters: &Path, block: u64) -> Endpoint {
    let policy = Policy::builder()
        .rule(TOPIC, Protection::encrypt(Aead::Aes256Gcm))
        .unwrap()
        .build();
    Endpoint::builder(policy)
        .sender_id(SenderId::new(SENDER).unwrap())
        .keyring(Keyring::new(EPOCH, GroupSecret::from_bytes([0x5a; 32])))
        .counter_store(FileCounterStore::open(counters).unwrap())
        .counter_block(block)
        .build()
        .unwrap()
}

fn receiver() -> Endpoint {
    let policy = Policy::builder()
        .rule(TOPIC, Protection::encrypt(Aead::Aes256Gcm))
        .unwrap()
        .build();
    Endpoint::builder(policy)
        .keyring(Keyring::new(EPOCH, GroupSecret::from_bytes([0x5a; 32])))
        .build()
        .unwrap()
}

/// The counter a sealed envelope carries.
fn counter_of(envelope: &[u8]) -> u64 {
    mqseal::envelope::parse(envelope).unwrap().header.counter
}

/// The child: seals forever and prints each counter actually used, as one
/// line `C <counter>`, until it is killed. Does nothing unless started by the
/// crash test (the environment variable names its directory).
#[test]
#[ignore = "child process of counters_never_repeat_across_sigkills"]
fn child_seal_forever() {
    use std::io::Write;

    let Some(dir) = std::env::var_os(CHILD_DIR_ENV) else {
        return;
    };
    let mut ep = endpoint(&Path::new(&dir).join("counters"), BLOCK);
    let mut stdout = std::io::stdout().lock();
    // The harness has printed "test child_seal_forever ... " without a
    // newline: end that line so that every counter line stands alone.
    if stdout
        .write_all(b"\n")
        .and_then(|()| stdout.flush())
        .is_err()
    {
        return;
    }
    let mut envelope = Vec::new();
    let mut line = String::new();
    for i in 0u64.. {
        ep.seal_into(TOPIC, &i.to_le_bytes(), &mut envelope)
            .unwrap();
        line.clear();
        line.push_str("C ");
        line.push_str(&counter_of(&envelope).to_string());
        line.push('\n');
        // One write per line: a line in a pipe is then all there or not at
        // all, whenever the kill lands.
        if stdout
            .write_all(line.as_bytes())
            .and_then(|()| stdout.flush())
            .is_err()
        {
            return; // the parent has gone
        }
    }
}

/// xorshift64*: enough randomness for kill times, and no dependency.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Runs one life of the child: waits for its first counter, lets it seal for
/// `sleep`, SIGKILLs it, and returns every counter it printed, in order.
#[cfg(unix)]
fn one_life(dir: &Path, sleep: std::time::Duration) -> Vec<u64> {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    use std::sync::mpsc;
    use std::time::Duration;

    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_seal_forever",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR_ENV, dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (first_tx, first_rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut counters = Vec::new();
        let mut r = std::io::BufReader::new(stdout);
        let mut line = String::new();
        loop {
            line.clear();
            match r.read_line(&mut line) {
                Ok(0) | Err(_) => break,
                // A line cut short would be the last one; none is expected
                // (lines are written whole), and it would not count anyway.
                Ok(_) if !line.ends_with('\n') => break,
                Ok(_) => {}
            }
            // Other lines are the test harness talking.
            if let Some(c) = line.trim_end().strip_prefix("C ") {
                counters.push(c.parse::<u64>().unwrap());
                if counters.len() == 1 {
                    let _ = first_tx.send(());
                }
            }
        }
        counters
    });

    // Kill only once the child is sealing, not during its start-up.
    let started = first_rx.recv_timeout(Duration::from_secs(60));
    if started.is_ok() {
        std::thread::sleep(sleep);
    }
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    let counters = reader.join().unwrap();
    assert!(
        started.is_ok(),
        "the child printed no counter (exit status {status}; see its stderr above)"
    );
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            status.signal(),
            Some(9),
            "the child died otherwise: {status}"
        );
    }
    counters
}

#[cfg(unix)]
#[test]
fn counters_never_repeat_across_sigkills() {
    use std::collections::HashMap;
    use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

    const LIVES: usize = 100;
    const MAX_SLEEP_MS: u64 = 60;

    let seed = match std::env::var(SEED_ENV) {
        Ok(s) => s.parse().expect("MQSEAL_CRASH_SEED must be a u64"),
        Err(_) => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64,
    };
    // Printed so that a failing run can be replayed.
    eprintln!("crash test seed: {seed} (set {SEED_ENV} to replay)");
    let mut rng = XorShift(seed | 1);

    let dir = tempfile::tempdir().unwrap();
    let t0 = Instant::now();
    let mut seen: HashMap<u64, usize> = HashMap::new();
    let mut highest: Option<u64> = None;
    let mut total = 0;
    let mut sleeps = Vec::with_capacity(LIVES);
    for life in 0..LIVES {
        // Mostly uniform over 0..=60 ms, with some kills right after the
        // first counter.
        let sleep_ms = if rng.below(5) == 0 {
            0
        } else {
            rng.below(MAX_SLEEP_MS + 1)
        };
        sleeps.push(sleep_ms);
        let counters = one_life(dir.path(), Duration::from_millis(sleep_ms));
        assert!(!counters.is_empty(), "life {life} printed no counter");
        for w in counters.windows(2) {
            assert!(
                w[0] < w[1],
                "life {life}: counter {} came after {}",
                w[1],
                w[0]
            );
        }
        for &c in &counters {
            if let Some(earlier) = seen.insert(c, life) {
                panic!(
                    "counter {c} used twice: in life {earlier} and in life {life} (seed {seed})"
                );
            }
        }
        let first = counters[0];
        if let Some(h) = highest {
            // Every life starts above every counter ever used...
            assert!(
                first > h,
                "life {life} started at {first}, not above {h}, the highest counter so far (seed {seed})"
            );
            // ...and skips at most one block: the previous life may have used
            // one more counter than it printed (killed between sealing and
            // printing), reserving the block after it.
            assert!(
                first <= h + 1 + BLOCK,
                "life {life} started at {first}, more than a block above {h} (seed {seed})"
            );
        } else {
            assert_eq!(first, 0, "the first life must start at counter 0");
        }
        highest = counters.last().copied();
        total += counters.len();
    }
    let highest = highest.unwrap();

    // The file survived every kill, and its mark is above every counter used.
    let mut store = FileCounterStore::open(dir.path().join("counters")).unwrap();
    let scope = CounterScope {
        role: Role::Send,
        epoch: EPOCH,
        sender: SenderId::new(SENDER).unwrap(),
    };
    let mark = store.load(&scope).unwrap();
    assert!(
        mark > highest,
        "stored mark {mark} is not above the highest counter {highest}"
    );

    eprintln!(
        "crash test: {LIVES} lives, {total} counters (highest {highest}), in {:.1?}; sleeps in ms: {sleeps:?}",
        t0.elapsed()
    );
    assert!(
        total >= 1000,
        "only {total} counters in {LIVES} lives: too few to mean much"
    );
}

#[test]
fn clean_restart_continues_without_gap() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("counters");
    let mut rx = receiver();
    let mut envelope = Vec::new();
    let mut next = 0;
    // Stop inside a block, at a block boundary, and just after one.
    for (run, count) in [5, 3, 1, 20].into_iter().enumerate() {
        let mut ep = endpoint(&path, BLOCK);
        for _ in 0..count {
            ep.seal_into(TOPIC, b"21.5 C", &mut envelope).unwrap();
            assert_eq!(counter_of(&envelope), next, "run {run}");
            // A receiver that has seen every earlier message accepts it.
            let (payload, _) = rx.open(TOPIC, &envelope).unwrap();
            assert_eq!(payload, b"21.5 C");
            next += 1;
        }
        ep.flush().unwrap();
    }

    // Without flush, a restart resumes at the reserved mark: a gap, no reuse.
    {
        let mut ep = endpoint(&path, BLOCK);
        ep.seal_into(TOPIC, b"x", &mut envelope).unwrap();
        assert_eq!(counter_of(&envelope), next);
    }
    {
        let mut ep = endpoint(&path, BLOCK);
        ep.seal_into(TOPIC, b"x", &mut envelope).unwrap();
        assert_eq!(counter_of(&envelope), next + BLOCK);
    }

    // A flush with nothing sealed changes nothing.
    endpoint(&path, BLOCK).flush().unwrap();
    let mut ep = endpoint(&path, BLOCK);
    ep.seal_into(TOPIC, b"x", &mut envelope).unwrap();
    assert_eq!(counter_of(&envelope), next + 2 * BLOCK);
}
