//! Golden tests: the help texts and the main error messages, compared exactly
//! with `tests/golden/*.txt`. After a deliberate change, rewrite them with
//!
//! ```sh
//! MQSEAL_UPDATE_GOLDEN=1 cargo test -p mqseal-cli --test golden
//! ```
//!
//! and review the diff.

mod common;

use common::*;

#[test]
fn help_texts() {
    let cases: &[(&str, &[&str])] = &[
        ("help", &["--help"]),
        ("help-short", &["-h"]),
        ("inspect-help", &["inspect", "--help"]),
        ("provision-help", &["provision", "--help"]),
        (
            "provision-mosquitto-help",
            &["provision", "mosquitto", "--help"],
        ),
        (
            "provision-add-client-help",
            &["provision", "add-client", "--help"],
        ),
        ("provision-renew-help", &["provision", "renew", "--help"]),
        ("keygen-help", &["keygen", "--help"]),
        ("keygen-identity-help", &["keygen", "identity", "--help"]),
        ("keygen-keyring-help", &["keygen", "keyring", "--help"]),
        ("key-help", &["key", "--help"]),
        ("key-add-help", &["key", "add", "--help"]),
        ("key-promote-help", &["key", "promote", "--help"]),
        ("key-retire-help", &["key", "retire", "--help"]),
        ("key-list-help", &["key", "list", "--help"]),
        ("key-ratchet-help", &["key", "ratchet", "--help"]),
        ("trust-help", &["trust", "--help"]),
        ("trust-add-help", &["trust", "add", "--help"]),
        ("trust-admin-help", &["trust", "admin", "--help"]),
        ("trust-remove-help", &["trust", "remove", "--help"]),
        ("trust-revoke-help", &["trust", "revoke", "--help"]),
        ("trust-list-help", &["trust", "list", "--help"]),
        ("rekey-help", &["rekey", "--help"]),
        ("rekey-apply-help", &["rekey", "apply", "--help"]),
        ("seal-help", &["seal", "--help"]),
        ("open-help", &["open", "--help"]),
        ("pub-help", &["pub", "--help"]),
        ("sub-help", &["sub", "--help"]),
    ];
    for (name, args) in cases {
        check(name, &transcript(args, None));
    }
}

#[test]
fn usage_errors() {
    let cases: &[(&str, &[&str])] = &[
        ("error-no-command", &[]),
        ("error-missing-args", &["provision", "mosquitto"]),
        (
            "error-bad-ip",
            &[
                "provision",
                "mosquitto",
                "--out",
                "x",
                "--server-name",
                "localhost",
                "--server-ip",
                "10.0.0.300",
                "--client",
                "alice",
            ],
        ),
        (
            "error-bad-client-name",
            &[
                "provision",
                "mosquitto",
                "--out",
                "x",
                "--server-name",
                "localhost",
                "--client",
                "a/b",
            ],
        ),
        (
            "error-bad-server-name",
            &[
                "provision",
                "mosquitto",
                "--out",
                "x",
                "--server-name",
                "my broker",
                "--client",
                "a",
            ],
        ),
        (
            "error-server-name-ip",
            &[
                "provision",
                "mosquitto",
                "--out",
                "x",
                "--server-name",
                "127.0.0.1",
                "--client",
                "a",
            ],
        ),
        (
            "error-bad-user",
            &[
                "provision",
                "mosquitto",
                "--out",
                "x",
                "--server-name",
                "localhost",
                "--client",
                "a",
                "--user",
                "root\nlistener 1883",
            ],
        ),
        (
            "error-bad-days",
            &[
                "provision",
                "mosquitto",
                "--out",
                "x",
                "--server-name",
                "localhost",
                "--client",
                "a",
                "--days",
                "0",
            ],
        ),
        (
            "error-add-client-missing-dir",
            &["provision", "add-client", "--client", "x"],
        ),
        (
            "error-renew-nothing",
            &["provision", "renew", "--dir", "x", "--days", "30"],
        ),
        ("error-pub-no-message", &["pub", "-t", "a/b"]),
        (
            "error-rekey-missing-args",
            &["rekey", "--remove", "robot-2"],
        ),
        (
            "error-bad-duration",
            &[
                "key",
                "promote",
                "--keyring",
                "k",
                "--epoch",
                "2",
                "--grace",
                "10 minutes",
            ],
        ),
        (
            "error-keygen-long-id",
            &[
                "keygen",
                "identity",
                "--id",
                "a-name-longer-than-16",
                "--out",
                "x",
            ],
        ),
        (
            "error-inspect-keys-without-topic",
            &["inspect", "--keyring", "k"],
        ),
    ];
    for (name, args) in cases {
        check(name, &transcript(args, None));
    }
}

#[test]
fn deployment_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("dep");
    let d = dir.display().to_string();
    let provision = |extra: &[&str]| {
        let mut a = vec![
            "provision",
            "mosquitto",
            "--out",
            &d,
            "--server-name",
            "localhost",
        ];
        a.extend_from_slice(extra);
        transcript(&a, Some(&dir))
    };
    check(
        "error-duplicate-client",
        &provision(&["--client", "a", "--admin", "a"]),
    );
    let ok = mqseal()
        .args([
            "provision",
            "mosquitto",
            "--out",
            &d,
            "--server-name",
            "localhost",
        ])
        .args(["--client", "alice"])
        .output()
        .unwrap();
    assert!(ok.status.success(), "{}", text(&ok.stderr));
    check(
        "error-existing-deployment",
        &provision(&["--client", "bob"]),
    );
    check(
        "error-add-client-exists",
        &transcript(
            &["provision", "add-client", "--dir", &d, "--client", "alice"],
            Some(&dir),
        ),
    );
    check(
        "error-renew-unknown-client",
        &transcript(
            &[
                "provision",
                "renew",
                "--dir",
                &d,
                "--server",
                "--client",
                "bob",
            ],
            Some(&dir),
        ),
    );
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    check(
        "error-add-client-not-a-deployment",
        &transcript(
            &[
                "provision",
                "add-client",
                "--dir",
                &empty.display().to_string(),
                "--client",
                "x",
            ],
            Some(&empty),
        ),
    );
}
