//! `mqseal rekey` and `mqseal rekey apply`: the admin removes a device; the
//! others apply the message and open what the admin seals under the new
//! epoch; the removed device cannot; a message applies once.

mod common;

use std::fs;
use std::path::Path;

use common::*;
use mqseal::crypto::default_provider;
use mqseal::{EpochState, SenderId, keyfile};

/// The admin and devices `robot-1..3`, each with its own copy of the fleet
/// keyring and of the trust store (which names the admin).
fn fleet(d: &Path) {
    ok(&["keygen", "keyring", "--out", &p(d, "admin.keyring")]);
    for id in ["admin", "robot-1", "robot-2", "robot-3"] {
        ok(&[
            "keygen",
            "identity",
            "--id",
            id,
            "--out",
            &p(d, &format!("{id}.identity")),
        ]);
        ok(&[
            "trust",
            "add",
            "--trust",
            &p(d, "admin.trust"),
            "--peer",
            &p(d, &format!("{id}.identity.pub")),
        ]);
    }
    ok(&[
        "trust",
        "admin",
        "--trust",
        &p(d, "admin.trust"),
        "--peer",
        &p(d, "admin.identity.pub"),
    ]);
    for id in ["robot-1", "robot-2", "robot-3"] {
        fs::copy(d.join("admin.keyring"), d.join(format!("{id}.keyring"))).unwrap();
        fs::copy(d.join("admin.trust"), d.join(format!("{id}.trust"))).unwrap();
    }
}

/// Calls `f` with the arguments of `mqseal rekey apply` for device `id`, with
/// its own identity, trust store and keyring.
fn with_apply_args<R>(d: &Path, id: &str, message: &str, f: impl FnOnce(&[&str]) -> R) -> R {
    let file = |ext: &str| p(d, &format!("{id}.{ext}"));
    f(&[
        "rekey",
        "apply",
        "--identity",
        &file("identity"),
        "--trust",
        &file("trust"),
        "--keyring",
        &file("keyring"),
        "--message",
        message,
    ])
}

fn apply(d: &Path, id: &str, message: &str) -> std::process::Output {
    with_apply_args(d, id, message, |args| run(args, b""))
}

/// The arguments of the admin's `mqseal rekey`, writing `rekey.msg`, then
/// `extra`.
fn rekey_args(d: &Path, extra: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = [
        "rekey",
        "--admin",
        &p(d, "admin.identity"),
        "--trust",
        &p(d, "admin.trust"),
        "--keyring",
        &p(d, "admin.keyring"),
        "--out",
        &p(d, "rekey.msg"),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

/// Runs the admin's `mqseal rekey` with `extra`.
fn rekey(d: &Path, extra: &[&str]) -> std::process::Output {
    let args = rekey_args(d, extra);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run(&args, b"")
}

#[test]
fn removing_a_device() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    fleet(d);
    let msg = p(d, "rekey.msg");
    let out = rekey(d, &["--remove", "robot-2", "--grace", "30s"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let progress = text(&out.stderr);
    assert!(
        progress.contains("[1/4] epoch 2: a fresh secret wrapped for 2 devices (robot-1, robot-3)"),
        "{progress}"
    );
    assert!(text(&out.stdout).starts_with("Rekeyed to epoch 2, removing robot-2.\n"));

    // The admin: epoch 2 active, robot-2 gone from its trust store.
    let p_ = default_provider();
    let k = keyfile::load_keyring(p_, d.join("admin.keyring")).unwrap();
    assert_eq!(k.active().unwrap().0, 2);
    assert_eq!(k.state(1), Some(EpochState::AcceptOnly));
    let grace = k.retire_at_ms(1).unwrap() - k.created_ms(2).unwrap();
    assert_eq!(grace, 30_000);
    let t = keyfile::load_trust(p_, d.join("admin.trust")).unwrap();
    assert!(t.get(&SenderId::new(b"robot-2").unwrap()).is_none());
    let message = fs::read(&msg).unwrap();
    let parsed = mqseal::rekey::parse(&message).unwrap();
    assert_eq!(parsed.removed, [SenderId::new(b"robot-2").unwrap()]);

    // robot-1 applies it, and opens what the admin seals under epoch 2.
    let out = apply(d, "robot-1", &msg);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout)
            .starts_with("Applied the rekey for robot-1: epoch 2 is now the active epoch"),
        "{}",
        text(&out.stdout)
    );
    let env = ok_bytes(
        &[
            "seal",
            "--keyring",
            &p(d, "admin.keyring"),
            "--identity",
            &p(d, "admin.identity"),
            "-t",
            "commands/robot-1/go",
            "--protect",
            "encrypt+sign",
        ],
        b"go",
    );
    assert_eq!(fields(&ok_with(&["inspect"], &env))["epoch"], "2");
    let opened = ok_with(
        &[
            "open",
            "--keyring",
            &p(d, "robot-1.keyring"),
            "--trust",
            &p(d, "robot-1.trust"),
            "-t",
            "commands/robot-1/go",
            "--protect",
            "encrypt+sign",
        ],
        &env,
    );
    assert_eq!(opened, "go");
    // robot-1's trust store no longer lists robot-2.
    let t1 = keyfile::load_trust(p_, d.join("robot-1.trust")).unwrap();
    assert!(t1.get(&SenderId::new(b"robot-2").unwrap()).is_none());

    // The same message again: replayed, and nothing changes.
    let before = fs::read(d.join("robot-1.keyring")).unwrap();
    check(
        "error-rekey-replayed",
        &with_apply_args(d, "robot-1", &msg, |args| transcript(args, Some(d))),
    );
    assert_eq!(fs::read(d.join("robot-1.keyring")).unwrap(), before);

    // robot-2 is not a recipient: its keyring is unchanged, and it cannot open
    // what is sealed under epoch 2.
    let before = fs::read(d.join("robot-2.keyring")).unwrap();
    check(
        "error-rekey-not-a-recipient",
        &with_apply_args(d, "robot-2", &msg, |args| transcript(args, Some(d))),
    );
    assert_eq!(fs::read(d.join("robot-2.keyring")).unwrap(), before);
    let err = fails(
        &[
            "open",
            "--keyring",
            &p(d, "robot-2.keyring"),
            "--trust",
            &p(d, "robot-2.trust"),
            "-t",
            "commands/robot-1/go",
            "--protect",
            "encrypt+sign",
        ],
        &env,
    );
    assert!(
        err.starts_with("error: envelope rejected (unknown_epoch): unknown key epoch 2"),
        "{err}"
    );

    // A message altered in transit is refused, and changes nothing.
    let mut forged = message.clone();
    forged[20] ^= 1;
    let forged_path = d.join("forged.msg");
    fs::write(&forged_path, &forged).unwrap();
    let out = apply(d, "robot-3", &forged_path.display().to_string());
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("was refused (unauthenticated)"),
        "{}",
        text(&out.stderr)
    );
    // robot-3 then applies the genuine one, from standard input.
    let out = with_apply_args(d, "robot-3", "-", |args| run(args, &message));
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn rekey_refusals() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    fleet(d);
    let base = |extra: &[&str]| rekey_args(d, extra);
    let before = fs::read(d.join("admin.keyring")).unwrap();
    for (extra, want) in [
        (&["--remove", "robot-9"][..], "robot-9 is not in"),
        (&["--remove", "admin"][..], "cannot remove itself"),
    ] {
        let args = base(extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let err = fails(&args, b"");
        assert!(err.contains(want), "{extra:?}: {err}");
    }
    // Signed by an identity the trust store does not name as the admin.
    let args = base(&[]);
    let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
    let r1 = p(d, "robot-1.identity");
    args[2] = &r1;
    let err = fails(&args, b"");
    assert!(err.contains("names admin as the admin"), "{err}");
    assert_eq!(fs::read(d.join("admin.keyring")).unwrap(), before);
    assert!(!d.join("rekey.msg").exists());

    // To standard output, no removal: a rotation for everyone.
    let args = base(&[]);
    let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
    let n = args.len();
    args[n - 1] = "-";
    let out = run(&args, b"");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(out.stdout.starts_with(b"MQRK"));
    assert!(
        text(&out.stderr).contains("Rekeyed to epoch 2."),
        "{}",
        text(&out.stderr)
    );
    let parsed = mqseal::rekey::parse(&out.stdout).unwrap();
    assert_eq!(parsed.recipients.len(), 3);
}

/// A rekey retires every other epoch after the grace period, staged ones
/// too (a removed device may know them), in the admin's keyring as on the
/// devices that apply the message.
#[test]
fn a_rekey_retires_staged_epochs_too() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    fleet(d);
    // Epoch 2 staged everywhere (accept-only), before the removal.
    for id in ["admin", "robot-1", "robot-2", "robot-3"] {
        ok(&["key", "add", "--keyring", &p(d, &format!("{id}.keyring"))]);
    }
    let msg = p(d, "rekey.msg");
    let out = rekey(d, &["--remove", "robot-2", "--grace", "30s"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = apply(d, "robot-1", &msg);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let p_ = default_provider();
    // The grace counts from when the admin issued the message, on the devices
    // too (robot-1 applies it a little later).
    let issued = mqseal::rekey::parse(&fs::read(&msg).unwrap())
        .unwrap()
        .issued_at_ms;
    for id in ["admin", "robot-1"] {
        let k = keyfile::load_keyring(p_, d.join(format!("{id}.keyring"))).unwrap();
        assert_eq!(k.active().unwrap().0, 3, "{id}");
        for old in [1, 2] {
            assert_eq!(k.state(old), Some(EpochState::AcceptOnly), "{id} {old}");
            assert_eq!(k.retire_at_ms(old).unwrap(), issued + 30_000, "{id} {old}");
        }
    }
}

/// A device offline across a removal sees only the newest rekey (the broker
/// retains one): that one lists the earlier removal again, and the device
/// revokes the removed sender from it.
#[test]
fn a_device_that_missed_a_removal_revokes_it_from_the_next_rekey() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    fleet(d);
    let p_ = default_provider();
    let robot2 = SenderId::new(b"robot-2").unwrap();
    // An envelope robot-2 sealed under epoch 1 before it was removed.
    fs::copy(d.join("admin.keyring"), d.join("robot-2.keyring")).unwrap();
    let from_robot2 = ok_bytes(
        &[
            "seal",
            "--keyring",
            &p(d, "robot-2.keyring"),
            "--identity",
            &p(d, "robot-2.identity"),
            "-t",
            "devices/robot-2/t",
            "--protect",
            "encrypt+sign",
        ],
        b"from robot-2",
    );
    let open_on_robot3 = |env: &[u8]| {
        run(
            &[
                "open",
                "--keyring",
                &p(d, "robot-3.keyring"),
                "--trust",
                &p(d, "robot-3.trust"),
                "-t",
                "devices/robot-2/t",
                "--protect",
                "encrypt+sign",
            ],
            env,
        )
    };
    assert!(open_on_robot3(&from_robot2).status.success());

    // First rekey: robot-2 removed; robot-1 applies it, robot-3 is offline.
    let out = rekey(d, &["--remove", "robot-2", "--grace", "1h"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = apply(d, "robot-1", &p(d, "rekey.msg"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    // The admin's trust store keeps robot-2 as revoked, not merely dropped.
    let t = keyfile::load_trust(p_, d.join("admin.trust")).unwrap();
    assert!(t.is_revoked(&robot2) && t.get(&robot2).is_none());
    let listed = ok(&["trust", "list", "--trust", &p(d, "admin.trust")]);
    assert!(
        listed.contains("revoked (every rekey lists them): robot-2"),
        "{listed}"
    );

    // Second rekey, removing nobody new: it still lists robot-2.
    fs::remove_file(d.join("rekey.msg")).unwrap();
    let out = rekey(d, &["--grace", "1h"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains(
            "It lists again the senders earlier rekeys removed, for devices that missed them: \
             robot-2."
        ),
        "{}",
        text(&out.stdout)
    );
    let second = fs::read(d.join("rekey.msg")).unwrap();
    let parsed = mqseal::rekey::parse(&second).unwrap();
    assert_eq!(parsed.epoch, 3);
    assert_eq!(parsed.removed, [robot2]);

    // robot-3 comes back and finds only the second message: robot-2 is
    // revoked, and its envelope under epoch 1 (still in its grace) refused.
    let out = apply(d, "robot-3", &p(d, "rekey.msg"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let t3 = keyfile::load_trust(p_, d.join("robot-3.trust")).unwrap();
    assert!(t3.is_revoked(&robot2));
    let k3 = keyfile::load_keyring(p_, d.join("robot-3.keyring")).unwrap();
    assert_eq!(k3.state(1), Some(EpochState::AcceptOnly));
    let out = open_on_robot3(&from_robot2);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("(unknown_sender)"),
        "{}",
        text(&out.stderr)
    );

    // Removing robot-2 again is a note, not an error; re-trusting it is refused.
    fs::remove_file(d.join("rekey.msg")).unwrap();
    let out = rekey(d, &["--remove", "robot-2"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("robot-2 was removed by an earlier rekey"),
        "{}",
        text(&out.stderr)
    );
    let err = fails(
        &[
            "trust",
            "add",
            "--trust",
            &p(d, "admin.trust"),
            "--peer",
            &p(d, "robot-2.identity.pub"),
        ],
        b"",
    );
    assert!(err.contains("robot-2 is revoked in"), "{err}");
}

/// `trust revoke` records a revocation without a rekey (for an id an older
/// version dropped from the trust store, say): the next rekey lists it.
#[test]
fn trust_revoke_is_listed_by_the_next_rekey() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    fleet(d);
    let t = p(d, "admin.trust");
    let out = ok(&["trust", "revoke", "--trust", &t, "--id", "robot-2"]);
    assert!(
        out.starts_with(&format!("Revoked robot-2 in {t}. Its keys were dropped.")),
        "{out}"
    );
    // An id the trust store no longer holds can be revoked too.
    let out = ok(&["trust", "revoke", "--trust", &t, "--id", "old-9"]);
    assert!(
        out.starts_with(&format!("Revoked old-9 in {t}. The next")),
        "{out}"
    );
    let out = ok(&["trust", "revoke", "--trust", &t, "--id", "old-9"]);
    assert!(out.contains("already revoked"), "{out}");
    let err = fails(&["trust", "revoke", "--trust", &t, "--id", "admin"], b"");
    assert!(err.contains("admin is the admin"), "{err}");

    let out = rekey(d, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let message = fs::read(d.join("rekey.msg")).unwrap();
    let parsed = mqseal::rekey::parse(&message).unwrap();
    let mut removed: Vec<String> = parsed.removed.iter().map(ToString::to_string).collect();
    removed.sort();
    assert_eq!(removed, ["old-9", "robot-2"]);
    let recipients: Vec<String> = parsed
        .recipients
        .iter()
        .map(|(id, _)| id.to_string())
        .collect();
    assert_eq!(recipients, ["robot-1", "robot-3"]);
}
