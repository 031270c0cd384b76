//! Golden tests: the help texts and the main error messages, compared exactly
//! with `tests/golden/*.txt`. After a deliberate change, rewrite them with
//!
//! ```sh
//! MQSEAL_UPDATE_GOLDEN=1 cargo test -p mqseal-cli --test golden
//! ```
//!
//! and review the diff.

mod common;

use std::path::{Path, PathBuf};

use common::*;

/// Runs `mqseal args` and renders the command, its exit status and output;
/// `dir` (if any) is shown as `<DIR>`.
fn transcript(args: &[&str], dir: Option<&Path>) -> String {
    let out = mqseal().args(args).output().unwrap();
    let command = format!("$ mqseal {}", args.join(" "));
    let mut s = format!(
        "{}\nexit status: {}\n",
        command.trim_end(),
        out.status.code().unwrap()
    );
    for (name, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        if !bytes.is_empty() {
            s.push_str(&format!("--- {name}\n{}", text(bytes)));
        }
    }
    match dir {
        Some(d) => s.replace(&d.display().to_string(), "<DIR>"),
        None => s,
    }
}

fn check(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{name}.txt"));
    if std::env::var_os("MQSEAL_UPDATE_GOLDEN").is_some_and(|v| v == "1") {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; create it with MQSEAL_UPDATE_GOLDEN=1",
            path.display()
        )
    });
    if expected != actual {
        panic!(
            "{} differs from the output (rewrite with MQSEAL_UPDATE_GOLDEN=1 after a deliberate \
             change).\n--- expected\n{expected}\n--- actual\n{actual}",
            path.display()
        );
    }
}

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
            "error-add-client-missing-dir",
            &["provision", "add-client", "--client", "x"],
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
