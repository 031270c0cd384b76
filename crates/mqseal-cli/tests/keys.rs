//! `mqseal keygen`, `mqseal key` and `mqseal trust`: the files they write,
//! staged rotation, the listing (golden), no secret ever printed, and key
//! files that others may read refused with the chmod that fixes them.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::*;
use mqseal::crypto::default_provider;
use mqseal::keyfile;
use mqseal::{EpochState, SenderId};

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Every secret of the keyring and identities in `dir`, as lowercase hex.
fn secrets(keyring: &Path, identities: &[&Path]) -> Vec<String> {
    let p = default_provider();
    let k = keyfile::load_keyring(p, keyring).unwrap();
    let mut out: Vec<String> = k
        .epochs()
        .map(|e| hex::encode(k.get(e).unwrap().expose_secret()))
        .collect();
    for id in identities {
        let i = keyfile::load_identity(p, id).unwrap();
        out.push(hex::encode(i.signing_key.expose_seed()));
        out.push(hex::encode(i.agreement_key.expose_secret()));
    }
    out
}

#[test]
fn keygen_writes_private_files_and_public_identities() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let out = ok(&[
        "keygen",
        "identity",
        "--id",
        "robot-1",
        "--out",
        &p(d, "r1.identity"),
    ]);
    assert!(out.contains("r1.identity.pub"), "{out}");
    ok(&["keygen", "keyring", "--out", &p(d, "fleet.keyring")]);
    assert_eq!(mode(&d.join("r1.identity")), 0o600);
    assert_eq!(mode(&d.join("fleet.keyring")), 0o600);
    assert_eq!(mode(&d.join("r1.identity.pub")), 0o644);

    // The public file is the documented one line, and matches the identity.
    let public = fs::read_to_string(d.join("r1.identity.pub")).unwrap();
    let identity = keyfile::load_identity(default_provider(), d.join("r1.identity")).unwrap();
    let pi = identity.public(default_provider());
    assert_eq!(
        public,
        format!(
            "mqseal-identity-v1 {} {} {}\n",
            hex::encode("robot-1"),
            hex::encode(pi.signing.0),
            hex::encode(pi.agreement.0)
        )
    );
    assert_eq!(identity.sender_id, SenderId::new(b"robot-1").unwrap());
    let k = keyfile::load_keyring(default_provider(), d.join("fleet.keyring")).unwrap();
    assert_eq!(
        k.all_epochs().collect::<Vec<_>>(),
        [(1, EpochState::Active)]
    );

    // Nothing is overwritten without --force; with it, a new key.
    let before = fs::read(d.join("fleet.keyring")).unwrap();
    let err = fails(&["keygen", "keyring", "--out", &p(d, "fleet.keyring")], b"");
    assert!(
        err.contains("already exists") && err.contains("--force"),
        "{err}"
    );
    let err = fails(
        &[
            "keygen",
            "identity",
            "--id",
            "x",
            "--out",
            &p(d, "r1.identity"),
        ],
        b"",
    );
    assert!(err.contains("r1.identity already exists"), "{err}");
    assert_eq!(fs::read(d.join("fleet.keyring")).unwrap(), before);
    ok(&[
        "keygen",
        "keyring",
        "--epoch",
        "5",
        "--out",
        &p(d, "fleet.keyring"),
        "--force",
    ]);
    let k = keyfile::load_keyring(default_provider(), d.join("fleet.keyring")).unwrap();
    assert_eq!(
        k.all_epochs().collect::<Vec<_>>(),
        [(5, EpochState::Active)]
    );
}

#[test]
fn staged_rotation_and_ratchet_never_print_a_secret() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let k = p(d, "fleet.keyring");
    let mut printed = String::new();
    let mut step = |args: &[&str]| {
        let out = run(args, b"");
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        printed.push_str(&text(&out.stdout));
        printed.push_str(&text(&out.stderr));
        text(&out.stdout)
    };
    step(&["keygen", "keyring", "--out", &k]);
    let add = step(&["key", "add", "--keyring", &k]);
    assert!(
        add.contains("Added epoch 2") && add.contains("accept-only"),
        "{add}"
    );
    let promote = step(&[
        "key",
        "promote",
        "--keyring",
        &k,
        "--epoch",
        "2",
        "--grace",
        "10m",
    ]);
    assert!(
        promote.contains("Epoch 1 is accept-only until"),
        "{promote}"
    );
    let secrets_before_ratchet = secrets(Path::new(&k), &[]);
    let ratchet = step(&["key", "ratchet", "--keyring", &k, "--grace", "1h"]);
    assert!(ratchet.contains("epoch 3"), "{ratchet}");
    step(&["key", "add", "--keyring", &k, "--epoch", "7"]);
    step(&["key", "retire", "--keyring", &k, "--epoch", "7"]);
    let list = step(&["key", "list", "--keyring", &k]);

    let ring = keyfile::load_keyring(default_provider(), &k).unwrap();
    assert_eq!(
        ring.all_epochs().collect::<Vec<_>>(),
        [
            (1, EpochState::AcceptOnly),
            (2, EpochState::AcceptOnly),
            (3, EpochState::Active),
            (7, EpochState::Retired),
        ]
    );
    // The ratchet derived epoch 3 from epoch 2, one-way.
    assert_eq!(
        ring.get(3).unwrap(),
        &mqseal::keys::ratchet_secret(default_provider(), ring.get(2).unwrap(), 3)
    );
    // Grace periods: 10 min for epoch 1 (from promote), 1 h for epoch 2.
    let created = ring.created_ms(3).unwrap();
    let r1 = ring.retire_at_ms(1).unwrap();
    let r2 = ring.retire_at_ms(2).unwrap();
    assert!(r2 - created >= 3_600_000 && r2 - created < 3_660_000);
    assert!(r2 - r1 >= 3_000_000, "{r1} {r2}");
    // A ratchet above a staged (here retired) epoch would leave the chain.
    check(
        "error-ratchet-not-highest",
        &transcript(&["key", "ratchet", "--keyring", &k], Some(d)),
    );

    check(
        "key-list",
        &without_times(&transcript(&["key", "list", "--keyring", &k], Some(d))),
    );
    assert!(list.contains("accept-only"), "{list}");
    for s in secrets(Path::new(&k), &[])
        .iter()
        .chain(&secrets_before_ratchet)
    {
        assert!(!printed.contains(s.as_str()), "a secret was printed");
    }
}

/// `mqseal key promote` of `epoch` in `k` with a grace; its output.
fn promote(k: &str, epoch: &str, grace: &str) -> String {
    ok(&[
        "key",
        "promote",
        "--keyring",
        k,
        "--epoch",
        epoch,
        "--grace",
        grace,
    ])
}

#[test]
fn promoting_past_a_staged_epoch_retires_it_with_the_grace() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let k = p(d, "fleet.keyring");
    ok(&["keygen", "keyring", "--out", &k]);
    for _ in 0..3 {
        ok(&["key", "add", "--keyring", &k]);
    }
    // 3 goes live, skipping 2; 4 stays staged.
    let out = promote(&k, "3", "10m");
    assert!(out.contains("Epoch 1 is accept-only until"), "{out}");
    assert!(
        out.contains("Epoch 2, staged below 3 and skipped, is retired at"),
        "{out}"
    );
    assert!(!out.contains("Epoch 4"), "{out}");
    let ring = keyfile::load_keyring(default_provider(), &k).unwrap();
    assert!(ring.retire_at_ms(1).is_some());
    assert_eq!(ring.retire_at_ms(2), ring.retire_at_ms(1));
    assert_eq!(ring.retire_at_ms(4), None);
    assert_eq!(ring.state(4), Some(EpochState::AcceptOnly));

    // The usual rotation, one step after another: the epoch in its grace
    // period was not skipped, and keeps the grace it was given.
    let k = p(d, "other.keyring");
    ok(&["keygen", "keyring", "--out", &k]);
    ok(&["key", "add", "--keyring", &k]);
    promote(&k, "2", "7d");
    let week = keyfile::load_keyring(default_provider(), &k)
        .unwrap()
        .retire_at_ms(1);
    ok(&["key", "add", "--keyring", &k]);
    let out = promote(&k, "3", "10m");
    assert!(!out.contains("skipped"), "{out}");
    let ring = keyfile::load_keyring(default_provider(), &k).unwrap();
    assert_eq!(ring.retire_at_ms(1), week);
    assert!(ring.retire_at_ms(2) < week, "{out}");
}

#[test]
fn rotation_mistakes_are_refused_with_the_fix() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let k = p(d, "fleet.keyring");
    ok(&["keygen", "keyring", "--out", &k]);
    let before = fs::read(&k).unwrap();
    let cases: &[(&[&str], &str)] = &[
        (
            &["key", "retire", "--keyring", &k, "--epoch", "1"],
            "epoch 1 is the active epoch",
        ),
        (
            &["key", "promote", "--keyring", &k, "--epoch", "9"],
            "epoch 9 is not in",
        ),
        (
            &["key", "add", "--keyring", &k, "--epoch", "1"],
            "never reused",
        ),
    ];
    for (args, want) in cases {
        let err = fails(args, b"");
        assert!(err.contains(want), "{args:?}: {err}");
        assert_eq!(fs::read(&k).unwrap(), before, "{args:?} changed the file");
    }
    // A retired number never comes back.
    ok(&["key", "add", "--keyring", &k]);
    ok(&["key", "retire", "--keyring", &k, "--epoch", "2"]);
    let err = fails(&["key", "add", "--keyring", &k, "--epoch", "2"], b"");
    assert!(err.contains("never reused"), "{err}");
    assert!(ok(&["key", "add", "--keyring", &k]).contains("Added epoch 3"));
}

#[test]
fn an_expired_grace_period_retires_on_next_use() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let k = p(d, "fleet.keyring");
    let id = p(d, "dev.identity");
    ok(&["keygen", "keyring", "--out", &k]);
    ok(&["keygen", "identity", "--id", "dev", "--out", &id]);
    let env = ok_bytes(
        &["seal", "--keyring", &k, "--identity", &id, "-t", "a"],
        b"old",
    );
    ok(&["key", "add", "--keyring", &k]);
    ok(&[
        "key",
        "promote",
        "--keyring",
        &k,
        "--epoch",
        "2",
        "--grace",
        "0s",
    ]);
    let list = ok(&["key", "list", "--keyring", &k]);
    assert!(list.contains("accept-only (grace over)"), "{list}");
    // inspect judges as a receiver would (epoch 1 is over), and writes nothing.
    let before = fs::read(&k).unwrap();
    let out = run(
        &[
            "inspect",
            "--keyring",
            &k,
            "--topic",
            "a",
            "--protect",
            "encrypt",
        ],
        &env,
    );
    assert!(
        text(&out.stdout).contains("verdict     rejected (retired_epoch): key epoch 1 is retired"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(fs::read(&k).unwrap(), before);
    let out = run(&["key", "add", "--keyring", &k], b"");
    assert!(out.status.success());
    assert!(
        text(&out.stderr).contains("retired epoch 1")
            && text(&out.stderr).contains("secret erased"),
        "{}",
        text(&out.stderr)
    );
    let ring = keyfile::load_keyring(default_provider(), &k).unwrap();
    assert_eq!(ring.state(1), Some(EpochState::Retired));
    assert!(ring.get(1).is_none());
}

#[test]
fn key_files_readable_by_others_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let k = d.join("fleet.keyring");
    let id = d.join("dev.identity");
    ok(&["keygen", "keyring", "--out", &k.display().to_string()]);
    ok(&[
        "keygen",
        "identity",
        "--id",
        "dev",
        "--out",
        &id.display().to_string(),
    ]);
    fs::set_permissions(&k, fs::Permissions::from_mode(0o644)).unwrap();
    fs::set_permissions(&id, fs::Permissions::from_mode(0o640)).unwrap();
    check(
        "error-keyring-world-readable",
        &transcript(
            &["key", "list", "--keyring", &k.display().to_string()],
            Some(d),
        ),
    );
    // `seal` refuses a key file readable by others, and names it.
    let seal = || {
        fails(
            &[
                "seal",
                "--keyring",
                &k.display().to_string(),
                "--identity",
                &id.display().to_string(),
                "-t",
                "a",
            ],
            b"x",
        )
    };
    let err = seal();
    assert!(err.contains(&format!("chmod 600 {}", k.display())), "{err}");
    fs::set_permissions(&k, fs::Permissions::from_mode(0o600)).unwrap();
    let err = seal();
    assert!(
        err.contains(&format!("chmod 600 {}", id.display())),
        "{err}"
    );
}

#[test]
fn trust_store_management() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let t = p(d, "trust");
    for id in ["admin", "robot-1", "robot-2"] {
        ok(&[
            "keygen",
            "identity",
            "--id",
            id,
            "--out",
            &p(d, &format!("{id}.identity")),
        ]);
    }
    let pubf = |id: &str| p(d, &format!("{id}.identity.pub"));
    assert!(
        ok(&["trust", "add", "--trust", &t, "--peer", &pubf("robot-1")]).starts_with("Created")
    );
    ok(&["trust", "add", "--trust", &t, "--peer", &pubf("robot-2")]);
    ok(&["trust", "admin", "--trust", &t, "--peer", &pubf("admin")]);
    // Again: nothing changes.
    assert!(
        ok(&["trust", "add", "--trust", &t, "--peer", &pubf("robot-1")])
            .contains("nothing changed")
    );

    let store = keyfile::load_trust(default_provider(), &t).unwrap();
    let admin = keyfile::load_identity(default_provider(), d.join("admin.identity")).unwrap();
    assert_eq!(
        store.admin(),
        Some(&(admin.sender_id, admin.public(default_provider()).signing))
    );
    assert_eq!(store.agreement_keys().count(), 3);

    // Another identity under a known name is refused.
    ok(&[
        "keygen",
        "identity",
        "--id",
        "robot-1",
        "--out",
        &p(d, "impostor.identity"),
    ]);
    let err = fails(
        &[
            "trust",
            "add",
            "--trust",
            &t,
            "--peer",
            &p(d, "impostor.identity.pub"),
        ],
        b"",
    );
    assert!(
        err.contains("already trusts robot-1 with other keys"),
        "{err}"
    );
    // The secret file instead of the public one is refused, and named.
    check(
        "error-trust-add-secret-file",
        &transcript(
            &[
                "trust",
                "add",
                "--trust",
                &t,
                "--peer",
                &p(d, "robot-2.identity"),
            ],
            Some(d),
        ),
    );

    let list = ok(&["trust", "list", "--trust", &t]);
    assert!(
        list.starts_with(&format!("Trust store {t}: 3 peers, admin: admin\n")),
        "{list}"
    );
    assert!(list.contains("admin (admin)\n"), "{list}");
    let r1 = keyfile::load_identity(default_provider(), d.join("robot-1.identity")).unwrap();
    assert!(list.contains(&hex::encode(r1.public(default_provider()).agreement.0)));
    assert!(!list.contains(&hex::encode(r1.signing_key.expose_seed())));

    ok(&["trust", "remove", "--trust", &t, "--id", "robot-2"]);
    let err = fails(&["trust", "remove", "--trust", &t, "--id", "robot-2"], b"");
    assert!(err.contains("does not trust robot-2"), "{err}");
    let out = ok(&["trust", "remove", "--trust", &t, "--id", "admin"]);
    assert!(out.contains("It was the admin"), "{out}");
    let store = keyfile::load_trust(default_provider(), &t).unwrap();
    assert!(store.admin().is_none());
    assert_eq!(store.iter().count(), 1);

    // Others may read a trust store (public keys), not change it.
    fs::set_permissions(&t, fs::Permissions::from_mode(0o644)).unwrap();
    ok(&["trust", "list", "--trust", &t]);
    fs::set_permissions(&t, fs::Permissions::from_mode(0o666)).unwrap();
    let err = fails(&["trust", "list", "--trust", &t], b"");
    assert!(
        err.contains("refusing to use the trust store")
            && err.contains("writable by others (mode 666)")
            && err.contains(&format!("chmod go-w {t}")),
        "{err}"
    );
}

#[test]
fn a_key_file_of_root_is_used_by_another_user_and_one_of_a_third_user_is_not() {
    if !is_root() {
        eprintln!("skipped: running as another user needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let d = dir.path();
    ok(&[
        "keygen",
        "identity",
        "--id",
        "robot-1",
        "--out",
        &p(d, "r1.identity"),
    ]);
    let t = p(d, "trust");
    ok(&[
        "trust",
        "add",
        "--trust",
        &t,
        "--peer",
        &p(d, "r1.identity.pub"),
    ]);
    fs::set_permissions(&t, fs::Permissions::from_mode(0o644)).unwrap();
    // Root's: fine for uid 4242.
    let Some(out) = run_as_uid_4242(d, &["trust", "list", "--trust", &t]) else {
        eprintln!("skipped: setpriv (util-linux) is not installed");
        return;
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A third user's: refused, naming both uids.
    std::os::unix::fs::chown(&t, Some(4243), None).unwrap();
    let out = run_as_uid_4242(d, &["trust", "list", "--trust", &t]).unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("refusing to use the trust store")
            && err.contains("belongs to uid 4243, neither this user (uid 4242) nor root")
            && err.contains("chown 4242"),
        "{err}"
    );
    // Its own: fine.
    std::os::unix::fs::chown(&t, Some(4242), None).unwrap();
    let out = run_as_uid_4242(d, &["trust", "list", "--trust", &t]).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
