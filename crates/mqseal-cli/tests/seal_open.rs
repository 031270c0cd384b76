//! `mqseal seal | mqseal open`: every protection round trips; failures say
//! why (golden); counters continue across runs and never repeat, even with
//! runs in parallel.

mod common;

use std::path::Path;

use common::*;

const MODES: [&str; 7] = [
    "encrypt",
    "chacha",
    "mac",
    "sign",
    "encrypt+sign",
    "chacha+sign",
    "mac+sign",
];

/// A keyring, an identity `dev1` and a trust store that trusts it.
fn keys(d: &Path) -> (String, String, String) {
    let (k, id, t) = (p(d, "fleet.keyring"), p(d, "dev1.identity"), p(d, "trust"));
    ok(&["keygen", "keyring", "--out", &k]);
    ok(&["keygen", "identity", "--id", "dev1", "--out", &id]);
    ok(&[
        "trust",
        "add",
        "--trust",
        &t,
        "--peer",
        &format!("{id}.pub"),
    ]);
    (k, id, t)
}

fn seal(k: &str, id: &str, topic: &str, mode: &str, payload: &[u8]) -> Vec<u8> {
    ok_bytes(
        &[
            "seal",
            "--keyring",
            k,
            "--identity",
            id,
            "--topic",
            topic,
            "--protect",
            mode,
        ],
        payload,
    )
}

/// The arguments of `mqseal open` with the keyring `k` and the trust store `t`.
fn open_args<'a>(k: &'a str, t: &'a str, topic: &'a str, mode: &'a str) -> [&'a str; 9] {
    [
        "open",
        "--keyring",
        k,
        "--trust",
        t,
        "--topic",
        topic,
        "--protect",
        mode,
    ]
}

fn counter(envelope: &[u8]) -> u64 {
    fields(&ok_with(&["inspect"], envelope))["counter"]
        .parse()
        .unwrap()
}

#[test]
fn every_protection_round_trips() {
    let tmp = tempfile::tempdir().unwrap();
    let (k, id, t) = keys(tmp.path());
    let payload = b"move 10 20\x00\xff";
    for mode in MODES {
        let env = seal(&k, &id, "robots/7/cmd", mode, payload);
        let suite = fields(&ok_with(&["inspect"], &env))["suite"].clone();
        let opened = ok_bytes(&open_args(&k, &t, "robots/7/cmd", mode), &env);
        assert_eq!(opened, payload, "{mode} ({suite})");
        // Only the encrypting modes hide the payload.
        let hidden = !env.windows(4).any(|w| w == b"move");
        assert_eq!(
            hidden,
            mode.contains("encrypt") || mode.contains("chacha"),
            "{mode}"
        );
    }
    // Hex out, hex in; freshness.
    let env = ok(&[
        "seal",
        "--keyring",
        &k,
        "--identity",
        &id,
        "-t",
        "a/b",
        "--hex",
        "--max-age",
        "5s",
    ]);
    assert!(env.ends_with('\n') && env.trim().bytes().all(|b| b.is_ascii_hexdigit()));
    let opened = ok_with(
        &[
            "open",
            "--keyring",
            &k,
            "-t",
            "a/b",
            "--hex",
            "--max-age",
            "5s",
        ],
        env.as_bytes(),
    );
    assert_eq!(opened, "");
    let f = fields(&ok_with(&["inspect", "--hex"], env.as_bytes()));
    assert!(f["timestamp"].ends_with("Z)"), "{f:?}");
}

#[test]
fn open_failures_say_why() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let (k, id, t) = keys(d);
    let env = seal(&k, &id, "robots/7/cmd", "encrypt", b"move 10 20");
    let golden = |name: &str, args: &[&str], label: &str, input: &[u8]| {
        check(name, &transcript_with(args, Some((label, input)), Some(d)));
    };
    golden(
        "error-open-wrong-topic",
        &open_args(&k, &t, "robots/8/cmd", "encrypt"),
        "sealed-for-robots-7",
        &env,
    );
    let mut tampered = env.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    golden(
        "error-open-tampered",
        &open_args(&k, &t, "robots/7/cmd", "encrypt"),
        "tampered",
        &tampered,
    );
    golden(
        "error-open-wrong-protection",
        &open_args(&k, &t, "robots/7/cmd", "encrypt+sign"),
        "sealed-with-encrypt",
        &env,
    );
    golden(
        "error-open-truncated",
        &open_args(&k, &t, "robots/7/cmd", "encrypt"),
        "truncated",
        &env[..5],
    );
    // Another keyring: the epoch is unknown.
    let other = p(d, "other.keyring");
    ok(&["keygen", "keyring", "--epoch", "9", "--out", &other]);
    let err = fails(&["open", "--keyring", &other, "-t", "robots/7/cmd"], &env);
    assert!(
        err.starts_with("error: envelope rejected (unknown_epoch): unknown key epoch 1\n"),
        "{err}"
    );
    // Signed by a sender the trust store does not know.
    ok(&[
        "keygen",
        "identity",
        "--id",
        "mallory",
        "--out",
        &p(d, "m.identity"),
    ]);
    let forged = seal(&k, &p(d, "m.identity"), "robots/7/cmd", "sign", b"stop");
    let err = fails(
        &[
            "open",
            "--trust",
            &t,
            "-t",
            "robots/7/cmd",
            "--protect",
            "sign",
        ],
        &forged,
    );
    assert!(
        err.starts_with("error: envelope rejected (unknown_sender)"),
        "{err}"
    );
    // Nothing on standard output on failure.
    let out = run(&["open", "--keyring", &k, "-t", "robots/8/cmd"], &env);
    assert!(out.stdout.is_empty());
}

#[test]
fn missing_keys_name_the_option() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let (k, id, _) = keys(d);
    check(
        "error-seal-no-identity",
        &transcript(&["seal", "--keyring", &k, "-t", "a/b"], Some(d)),
    );
    check(
        "error-seal-no-keyring",
        &transcript(&["seal", "--identity", &id, "-t", "a/b"], Some(d)),
    );
    check(
        "error-open-sign-no-trust",
        &transcript(
            &[
                "open",
                "-t",
                "a/b",
                "--protect",
                "mac+sign",
                "--keyring",
                &k,
            ],
            Some(d),
        ),
    );
    check(
        "error-keyring-missing",
        &transcript(
            &["key", "list", "--keyring", &p(d, "nope.keyring")],
            Some(d),
        ),
    );
    check(
        "error-keyring-wrong-kind",
        &transcript(
            &["seal", "--keyring", &id, "--identity", &id, "-t", "a/b"],
            Some(d),
        ),
    );
    let err = fails(
        &["seal", "--keyring", &k, "--identity", &id, "-t", "a/+"],
        b"x",
    );
    assert!(err.contains("invalid topic"), "{err}");
}

#[test]
fn counters_continue_across_runs_and_never_repeat() {
    let tmp = tempfile::tempdir().unwrap();
    let (k, id, _) = keys(tmp.path());
    let first = seal(&k, &id, "a/b", "encrypt", b"one");
    let second = seal(&k, &id, "a/b", "encrypt", b"two");
    let third = seal(&k, &id, "c/d", "mac", b"three");
    assert_eq!(
        [counter(&first), counter(&second), counter(&third)],
        [0, 1, 2]
    );
    let counters = std::fs::read_to_string(format!("{id}.counters")).unwrap();
    assert!(counters.contains("send 1 64657631 3\n"), "{counters}");

    // Eight runs at once, one identity: they take turns, and no counter repeats.
    let children: Vec<_> = (0..8)
        .map(|_| {
            mqseal()
                .args(["seal", "--keyring", &k, "--identity", &id, "-t", "a/b"])
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut seen: Vec<u64> = children
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().unwrap();
            assert!(out.status.success(), "{}", text(&out.stderr));
            counter(&out.stdout)
        })
        .collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 8, "a counter was used twice: {seen:?}");
    assert!(seen[0] >= 3);
}

#[test]
fn open_with_an_identity_remembers_what_it_opened() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let (k, id, _) = keys(d);
    ok(&[
        "keygen",
        "identity",
        "--id",
        "rx",
        "--out",
        &p(d, "rx.identity"),
    ]);
    let rx = p(d, "rx.identity");
    let env0 = seal(&k, &id, "a/b", "encrypt", b"zero");
    let env1 = seal(&k, &id, "a/b", "encrypt", b"one");
    let open = ["open", "--keyring", &k, "--identity", &rx, "-t", "a/b"];
    assert_eq!(ok_with(&open, &env0), "zero");
    let err = fails(&open, &env0);
    assert!(
        err.starts_with("error: envelope rejected (replayed)"),
        "{err}"
    );
    assert_eq!(ok_with(&open, &env1), "one");
    // Without an identity, each run is a fresh receiver.
    assert_eq!(
        ok_with(&["open", "--keyring", &k, "-t", "a/b"], &env0),
        "zero"
    );
}
