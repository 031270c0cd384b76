//! `mqseal pub` → `mqseal sub` through a real Mosquitto broker provisioned by
//! `mqseal provision mosquitto` (TLS client certificates, the generated ACL),
//! with the provisioned mqseal keys.

mod common;

use std::fs;

use common::*;

fn strings(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

#[test]
fn sealed_messages_cross_the_broker_and_garbage_is_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    let d = Deployment::provision(
        &tmp.path().join("dep"),
        &["--client", "robot-1", "--admin", "station"],
    );
    let _broker = d.start();
    let keyring = d.path("mqseal/fleet.keyring");
    let trust = d.path("mqseal/trust");

    // The station subscribes to every device, checking signatures.
    let mut sub_args = d.mqseal_client("station");
    sub_args.extend(strings(&[
        "--keyring",
        &keyring,
        "--trust",
        &trust,
        "--protect",
        "encrypt+sign",
        "-t",
        "devices/#",
        "-v",
        "-C",
        "1",
        "-W",
        "10",
        "-q",
        "1",
    ]));
    let sub = SealedSub::start(&sub_args, 1);

    // Garbage from a raw client on the same topic: reported, and sub goes on.
    let raw = d.client_args(Some("robot-1"), None);
    assert!(publish(&raw, "devices/robot-1/temp", "garbage").0);
    let line = sub.next_err().expect("no rejection reported");
    assert_eq!(
        line,
        "rejected on devices/robot-1/temp (malformed): malformed envelope: unsupported version 6"
    );

    // robot-1 publishes, sealed and signed with its provisioned identity.
    let mut pub_args = d.mqseal_client("robot-1");
    pub_args.extend(strings(&[
        "pub",
        "--keyring",
        &keyring,
        "--identity",
        &d.path("clients/robot-1.identity"),
        "--protect",
        "encrypt+sign",
        "-t",
        "devices/robot-1/temp",
        "-m",
        "21.5 C",
        "-q",
        "1",
    ]));
    // `pub` goes first on the command line.
    let i = pub_args.iter().position(|a| a == "pub").unwrap();
    let cmd = pub_args.remove(i);
    pub_args.insert(0, cmd);
    let args: Vec<&str> = pub_args.iter().map(String::as_str).collect();
    let out = run(&args, b"");
    assert!(out.status.success(), "{}", text(&out.stderr));

    let (code, lines) = sub.finish();
    assert_eq!(code, Some(0));
    assert_eq!(lines, ["devices/robot-1/temp 21.5 C"]);
    // The counter was recorded.
    let counters = fs::read_to_string(d.path("clients/robot-1.identity.counters")).unwrap();
    assert!(counters.contains("send 1 "), "{counters}");
}

#[test]
fn the_broker_sees_only_ciphertext_and_lines_stream() {
    let tmp = tempfile::tempdir().unwrap();
    // Two admins: one connection per client name at a time.
    let d = Deployment::provision(
        &tmp.path().join("dep"),
        &[
            "--client", "robot-1", "--admin", "station", "--admin", "spy",
        ],
    );
    let _broker = d.start();
    let keyring = d.path("mqseal/fleet.keyring");
    // A raw spy on the broker (payloads in hex), and a sealed subscriber.
    let mut spy_args = d.client_args(Some("spy"), None);
    spy_args.extend(strings(&["-F", "%t %x"]));
    let spy = Subscriber::start(&spy_args, &["devices/robot-1/#"]);
    spy.wait_ready(
        &d.client_args(Some("robot-1"), None),
        "devices/robot-1/probe",
    );
    let mut sub_args = d.mqseal_client("station");
    sub_args.extend(strings(&[
        "--keyring",
        &keyring,
        "-t",
        "devices/robot-1/log",
        "-C",
        "3",
    ]));
    let sub = SealedSub::start(&sub_args, 1);

    let mut args = vec!["pub".to_string()];
    args.extend(d.mqseal_client("robot-1"));
    args.extend(strings(&[
        "--keyring",
        &keyring,
        "--identity",
        &d.path("clients/robot-1.identity"),
        "-t",
        "devices/robot-1/log",
        "-l",
        "-q",
        "1",
    ]));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run(&args, b"secret one\nsecret two\nsecret three\n");
    assert!(out.status.success(), "{}", text(&out.stderr));

    let (code, lines) = sub.finish();
    assert_eq!(code, Some(0));
    assert_eq!(lines, ["secret one", "secret two", "secret three"]);
    for _ in 0..3 {
        let raw = spy.next_except("devices/robot-1/probe").unwrap();
        assert!(raw.starts_with("devices/robot-1/log "), "{raw}");
        assert!(
            !raw.contains(&hex::encode("secret")),
            "the broker saw plaintext: {raw}"
        );
    }
}

#[test]
fn connection_problems_say_what_to_fix() {
    let tmp = tempfile::tempdir().unwrap();
    let d = Deployment::provision(&tmp.path().join("dep"), &["--client", "robot-1"]);
    let keyring = d.path("mqseal/fleet.keyring");
    let identity = d.path("clients/robot-1.identity");
    let base = |conn: Vec<String>| {
        let mut a = vec!["pub".to_string()];
        a.extend(conn);
        a.extend(strings(&[
            "--keyring",
            &keyring,
            "--identity",
            &identity,
            "-t",
            "devices/robot-1/x",
            "-m",
            "x",
            "-q",
            "1",
        ]));
        a
    };
    let err = |conn: Vec<String>| {
        let args = base(conn);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        fails(&args, b"")
    };
    // No broker yet.
    let e = err(d.mqseal_client("robot-1"));
    assert!(
        e.contains("connection refused; is the broker running there?"),
        "{e}"
    );
    let _broker = d.start();
    // No client certificate.
    let e = err(d.client_args(None, None));
    assert!(
        e.contains("requires a client certificate: add --cert and --key"),
        "{e}"
    );
    // The wrong CA file.
    let mut conn = d.mqseal_client("robot-1");
    let i = conn.iter().position(|a| a == "--cafile").unwrap();
    conn[i + 1] = d.path("server.crt");
    let e = err(conn);
    assert!(e.contains("check that --cafile is the CA"), "{e}");
    // And it works.
    let args = base(d.mqseal_client("robot-1"));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ok(&args);
}

/// A device follows the admin's rekeys from the retained rekey topic.
#[test]
fn sub_applies_rekeys_from_the_rekey_topic() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("dep");
    let d = Deployment::provision(&dir, &["--client", "robot-1", "--admin", "station"]);
    let _broker = d.start();
    // robot-1's own copies of the fleet files.
    let k1 = tmp.path().join("robot-1.keyring");
    let t1 = tmp.path().join("robot-1.trust");
    fs::copy(d.path("mqseal/fleet.keyring"), &k1).unwrap();
    fs::copy(d.path("mqseal/trust"), &t1).unwrap();
    let (k1, t1) = (k1.display().to_string(), t1.display().to_string());

    // The admin rotates (no removal) and publishes the message, retained.
    let msg = tmp.path().join("rekey.msg").display().to_string();
    ok(&[
        "rekey",
        "--admin",
        &d.path("mqseal/admin.identity"),
        "--trust",
        &d.path("mqseal/trust"),
        "--keyring",
        &d.path("mqseal/fleet.keyring"),
        "--out",
        &msg,
    ]);
    let mut raw = d.client_args(Some("station"), None);
    raw.extend(strings(&["-r", "-f", &msg]));
    let out = std::process::Command::new("mosquitto_pub")
        .args(&raw)
        .args(["-q", "1", "-t", "mqseal/rekey"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));

    // robot-1 subscribes with the rekey topic: it applies the retained message.
    let mut sub_args = d.mqseal_client("robot-1");
    sub_args.extend(strings(&[
        "--keyring",
        &k1,
        "--trust",
        &t1,
        "--identity",
        &d.path("clients/robot-1.identity"),
        "--rekey-topic",
        "mqseal/rekey",
        "-t",
        "commands/robot-1/#",
        "-v",
        "-C",
        "1",
        "-W",
        "10",
    ]));
    let sub = SealedSub::start(&sub_args, 2);
    assert_eq!(sub.next_err().unwrap(), "rekeyed: epoch 2 is active");

    // The station seals under epoch 2; robot-1 opens it.
    let mut args = vec!["pub".to_string()];
    args.extend(d.mqseal_client("station"));
    args.extend(strings(&[
        "--keyring",
        &d.path("mqseal/fleet.keyring"),
        "--identity",
        &d.path("clients/station.identity"),
        "-t",
        "commands/robot-1/go",
        "-m",
        "go",
        "-q",
        "1",
    ]));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ok(&args);
    let (code, lines) = sub.finish();
    assert_eq!(
        (code, lines),
        (Some(0), vec!["commands/robot-1/go go".to_string()])
    );
    // robot-1's keyring was saved with epoch 2 active.
    let ring = mqseal::keyfile::load_keyring(mqseal::crypto::default_provider(), &k1).unwrap();
    assert_eq!(ring.active().unwrap().0, 2);

    // Again: the retained message is recognised as already applied.
    let mut again = sub_args.clone();
    let i = again.iter().position(|a| a == "-W").unwrap();
    again[i + 1] = "1".into();
    let i = again.iter().position(|a| a == "-C").unwrap();
    again.drain(i..i + 2);
    let sub = SealedSub::start(&again, 2);
    assert_eq!(
        sub.next_err().unwrap(),
        "rekey message on mqseal/rekey: already applied (not newer than the keyring)"
    );
    assert_eq!(sub.finish().0, Some(0));
}
