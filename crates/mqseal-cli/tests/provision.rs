//! `mqseal provision`: the generated deployment runs a real Mosquitto broker,
//! and real `mosquitto_pub`/`mosquitto_sub` clients get exactly the access the
//! ACL gives them.
//!
//! Every broker runs as root with `--user root` (see
//! [`common::Deployment::provision`]) on a free loopback port, and is killed
//! when its guard drops, even if the test fails.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use common::*;

fn mode(path: &str) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn files_modes_and_configuration() {
    let tmp = tempfile::tempdir().unwrap();
    let d = Deployment::provision(
        &tmp.path().join("dep"),
        &["--client", "alice", "--admin", "ops"],
    );
    for secret in [
        "ca.key",
        "server.key",
        "passwd",
        "clients/alice.key",
        "clients/alice.password",
        "clients/ops.key",
        "clients/ops.password",
        "clients/alice.identity",
        "clients/ops.identity",
        "mqseal/fleet.keyring",
        "mqseal/admin.identity",
        "mqseal/trust",
    ] {
        assert_eq!(mode(&d.path(secret)), 0o600, "{secret}");
    }
    for public in [
        "ca.crt",
        "server.crt",
        "aclfile",
        "mosquitto.conf",
        "clients/alice.crt",
        "clients/alice.identity.pub",
        "mqseal/admin.identity.pub",
    ] {
        assert_eq!(mode(&d.path(public)), 0o644, "{public}");
    }
    assert_eq!(mode(&d.path("mqseal")), 0o700);

    // The mqseal keys: one fleet keyring, an identity per client named after
    // it, and a trust store with every client and the admin.
    let p = mqseal::crypto::default_provider();
    let ring = mqseal::keyfile::load_keyring(p, d.path("mqseal/fleet.keyring")).unwrap();
    assert_eq!(ring.active().unwrap().0, 1);
    let trust = mqseal::keyfile::load_trust(p, d.path("mqseal/trust")).unwrap();
    let admin = mqseal::keyfile::load_identity(p, d.path("mqseal/admin.identity")).unwrap();
    assert_eq!(admin.sender_id.as_bytes(), b"mqseal-admin");
    assert_eq!(
        trust.admin(),
        Some(&(admin.sender_id, admin.public(p).signing))
    );
    for name in ["alice", "ops"] {
        let id =
            mqseal::keyfile::load_identity(p, d.path(&format!("clients/{name}.identity"))).unwrap();
        assert_eq!(id.sender_id.as_bytes(), name.as_bytes());
        let public = id.public(p);
        assert_eq!(trust.get(&id.sender_id), Some(&public.signing));
        assert_eq!(trust.agreement_key(&id.sender_id), Some(&public.agreement));
        let text = fs::read_to_string(d.path(&format!("clients/{name}.identity.pub"))).unwrap();
        assert_eq!(text, mqseal_cli::keyfiles::format_public(&public));
    }
    assert_eq!(trust.iter().count(), 3);
    // The lock that add-client and renew take; no temporary file left behind.
    assert_eq!(mode(&d.path(".mqseal-provision.lock")), 0o644);
    for entry in fs::read_dir(&d.dir).unwrap() {
        let name = entry.unwrap().file_name();
        assert!(!name.to_string_lossy().contains(".tmp-"), "{name:?}");
    }

    let conf = fs::read_to_string(d.path("mosquitto.conf")).unwrap();
    let directives: Vec<&str> = conf
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .collect();
    let expected = [
        "per_listener_settings false".to_string(),
        "allow_anonymous false".into(),
        format!(
            "max_packet_size {}",
            mqseal_rumqttc::packet_limit(mqseal::endpoint::DEFAULT_MAX_PAYLOAD) + 1
        ),
        format!("password_file {}", d.path("passwd")),
        format!("acl_file {}", d.path("aclfile")),
        "user root".into(),
        format!("listener {} 127.0.0.1", d.port),
        format!("cafile {}", d.path("ca.crt")),
        format!("certfile {}", d.path("server.crt")),
        format!("keyfile {}", d.path("server.key")),
        "tls_version tlsv1.2".into(),
        "require_certificate true".into(),
        "use_identity_as_username true".into(),
        "use_username_as_clientid true".into(),
    ];
    assert_eq!(directives, expected);

    let passwd = fs::read_to_string(d.path("passwd")).unwrap();
    let users: Vec<&str> = passwd
        .lines()
        .map(|l| l.split(':').next().unwrap())
        .collect();
    assert_eq!(users, ["alice", "ops"]);
    for line in passwd.lines() {
        let user = line.split(':').next().unwrap();
        assert_eq!(
            mqseal_cli::passwd::verify(line, &d.password(user)),
            Some(true)
        );
    }
}

/// The allowed message arrives and the forbidden one, published just before
/// it, does not: Mosquitto would have delivered it first.
#[test]
fn acl_allows_own_topics_and_drops_the_rest() {
    let tmp = tempfile::tempdir().unwrap();
    let d = Deployment::provision(
        &tmp.path().join("dep"),
        &["--client", "alice", "--client", "bob", "--admin", "ops"],
    );
    let broker = d.start();
    // Every rule is in a user block: no `pattern` without %u or %c to warn of.
    assert!(!broker.log().contains("ACL pattern"), "{}", broker.log());
    let alice = d.as_client("alice");
    let ops = d.as_client("ops");

    // Writes: alice may publish under devices/alice/ only. (The probes come
    // from alice: a second connection as ops would replace the first.)
    let sub = Subscriber::start(&ops, &["devices/#", "commands/#"]);
    sub.wait_ready(&alice, "devices/alice/probe");
    for (topic, msg) in [
        ("devices/bob/state", "alice posing as bob"),
        ("commands/bob/go", "alice commanding bob"),
    ] {
        let (ok, err) = publish(&alice, topic, msg);
        assert!(ok, "mosquitto drops a forbidden publish silently: {err}");
    }
    assert!(publish(&alice, "devices/alice/state", "ok").0);
    assert_eq!(
        sub.next_except("devices/alice/probe").unwrap(),
        "devices/alice/state ok"
    );
    drop(sub);

    // Reads: alice receives commands/alice/# only, even subscribed to more.
    let alice_sub = Subscriber::start(&alice, &["commands/#", "devices/#", "#"]);
    alice_sub.wait_ready(&ops, "commands/alice/probe");
    assert!(publish(&ops, "commands/bob/go", "for bob").0);
    assert!(publish(&d.as_client("bob"), "devices/bob/state", "bob's state").0);
    assert!(publish(&ops, "commands/alice/go", "for alice").0);
    assert_eq!(
        alice_sub.next_except("commands/alice/probe").unwrap(),
        "commands/alice/go for alice"
    );
}

/// `--auth cert+password`: the certificate and the password are both checked.
#[test]
fn wrong_credentials_and_foreign_certificates_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let d = Deployment::provision(
        &tmp.path().join("dep"),
        &[
            "--client",
            "alice",
            "--admin",
            "ops",
            "--auth",
            "cert+password",
        ],
    );
    let conf = fs::read_to_string(d.path("mosquitto.conf")).unwrap();
    assert!(conf.contains("\nuse_identity_as_username false\n"));
    // A second deployment: another CA, with its own client alice.
    let other = Deployment::provision(&tmp.path().join("other"), &["--client", "alice"]);
    let _broker = d.start();
    let pw = d.password("alice");

    let refused = |args: Vec<String>, why: &str| {
        let (ok, _) = publish(&args, "devices/alice/x", why);
        assert!(!ok, "{why}: the broker accepted the connection");
    };
    // No client certificate.
    refused(d.client_args(None, Some(("alice", &pw))), "no certificate");
    // A certificate from another CA (the server is still trusted).
    let mut foreign = d.client_args(None, Some(("alice", &other.password("alice"))));
    foreign.extend([
        "--cert".into(),
        other.path("clients/alice.crt"),
        "--key".into(),
        other.path("clients/alice.key"),
    ]);
    refused(foreign, "certificate from another CA");
    // The right certificate, a wrong password or none.
    refused(
        d.client_args(Some("alice"), Some(("alice", "wrong"))),
        "wrong password",
    );
    refused(d.client_args(Some("alice"), None), "no password");
    // A user the password file does not know.
    refused(
        d.client_args(Some("alice"), Some(("mallory", &pw))),
        "unknown user",
    );
    // The natively written password is accepted.
    assert!(publish(&d.as_client("alice"), "devices/alice/x", "ok").0);
}

/// `--auth cert`, the default: the certificate's common name is the username,
/// whatever the client claims, and no password is checked.
#[test]
fn auth_cert_takes_the_username_from_the_certificate() {
    let tmp = tempfile::tempdir().unwrap();
    let d = Deployment::provision(
        &tmp.path().join("dep"),
        &["--client", "alice", "--admin", "ops"],
    );
    let conf = fs::read_to_string(d.path("mosquitto.conf")).unwrap();
    assert!(conf.contains("\nuse_identity_as_username true\n"));
    let _broker = d.start();
    let ops = d.client_args(Some("ops"), None);
    let sub = Subscriber::start(&ops, &["devices/#"]);
    sub.wait_ready(&d.client_args(Some("alice"), None), "devices/alice/probe");
    // alice's certificate claiming to be ops gets alice's rights only.
    let claims_ops = d.client_args(Some("alice"), Some(("ops", "anything")));
    assert!(publish(&claims_ops, "devices/ops/x", "alice as ops").0);
    assert!(publish(&claims_ops, "devices/alice/x", "alice").0);
    assert_eq!(
        sub.next_except("devices/alice/probe").unwrap(),
        "devices/alice/x alice"
    );
    // Still no connection without a certificate from the CA.
    assert!(
        !publish(
            &d.client_args(None, Some(("alice", "x"))),
            "devices/alice/x",
            "no"
        )
        .0
    );
}

#[test]
fn add_client_extends_a_running_deployment_without_touching_the_others() {
    let tmp = tempfile::tempdir().unwrap();
    let d = Deployment::provision(
        &tmp.path().join("dep"),
        &["--client", "alice", "--admin", "ops"],
    );
    let before: Vec<(String, Vec<u8>)> = [
        "passwd",
        "aclfile",
        "ca.crt",
        "ca.key",
        "server.crt",
        "mqseal/fleet.keyring",
        "mqseal/admin.identity",
        "clients/alice.identity",
    ]
    .iter()
    .chain(&[
        "clients/alice.crt",
        "clients/alice.key",
        "clients/alice.password",
    ])
    .map(|f| (f.to_string(), fs::read(d.path(f)).unwrap()))
    .collect();
    let broker = d.start();

    let out = run(
        &[
            "provision",
            "add-client",
            "--dir",
            &d.path(""),
            "--client",
            "carol",
        ],
        b"",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let summary = text(&out.stdout);
    assert!(summary.contains(&d.password("carol")), "{summary}");
    for (file, old) in &before {
        let new = fs::read(d.path(file)).unwrap();
        match file.as_str() {
            // Appended to, the old content unchanged.
            "passwd" | "aclfile" => assert!(new.starts_with(old), "{file}"),
            _ => assert_eq!(&new, old, "{file} changed"),
        }
    }
    assert_eq!(mode(&d.path("passwd")), 0o600);
    assert_eq!(mode(&d.path("clients/carol.key")), 0o600);
    assert_eq!(mode(&d.path("clients/carol.password")), 0o600);
    let acl = fs::read_to_string(d.path("aclfile")).unwrap();
    assert!(
        acl.ends_with(
            "\nuser carol\ntopic write devices/carol/#\ntopic read commands/carol/#\n\
             topic read mqseal/rekey\n"
        ),
        "{acl}"
    );
    // carol has an identity, in the trust store next to the others.
    let p = mqseal::crypto::default_provider();
    let carol = mqseal::keyfile::load_identity(p, d.path("clients/carol.identity")).unwrap();
    let trust = mqseal::keyfile::load_trust(p, d.path("mqseal/trust")).unwrap();
    assert_eq!(trust.get(&carol.sender_id), Some(&carol.public(p).signing));
    assert_eq!(trust.iter().count(), 4);
    assert!(trust.admin().is_some());

    // The running broker reloads on SIGHUP; carol (signed by the same CA) can
    // then publish, and alice still can.
    broker.reload();
    let ops = d.as_client("ops");
    let sub = Subscriber::start(&ops, &["devices/#"]);
    sub.wait_ready(&d.as_client("alice"), "devices/alice/probe");
    let carol = d.as_client("carol");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !publish(&carol, "devices/carol/x", "carol").0 {
        assert!(
            Instant::now() < deadline,
            "carol refused; log:\n{}",
            broker.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        sub.next_except("devices/alice/probe").unwrap(),
        "devices/carol/x carol"
    );
    assert!(publish(&carol, "devices/alice/x", "carol as alice").0);
    assert!(publish(&d.as_client("alice"), "devices/alice/x", "alice").0);
    assert_eq!(
        sub.next_except("devices/alice/probe").unwrap(),
        "devices/alice/x alice"
    );

    // The same name twice is refused, and nothing changes.
    let passwd = fs::read(d.path("passwd")).unwrap();
    let out = run(
        &[
            "provision",
            "add-client",
            "--dir",
            &d.path(""),
            "--client",
            "alice",
        ],
        b"",
    );
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("client alice already exists"));
    assert_eq!(fs::read(d.path("passwd")).unwrap(), passwd);
}

#[test]
fn force_replaces_a_deployment() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("dep");
    let d = Deployment::provision(&dir, &["--client", "alice", "--client", "bob"]);
    let old_ca = fs::read(d.path("ca.crt")).unwrap();
    let old_pw = d.password("alice");
    // Without --force: refused, nothing changed.
    let args = |force: bool| {
        let mut a = vec![
            "provision".to_string(),
            "mosquitto".into(),
            "--out".into(),
            d.path(""),
            "--server-name".into(),
            "localhost".into(),
            "--client".into(),
            "alice".into(),
        ];
        if force {
            a.push("--force".into());
        }
        a
    };
    let refused = mqseal().args(args(false)).output().unwrap();
    assert_eq!(refused.status.code(), Some(1));
    assert_eq!(fs::read(d.path("ca.crt")).unwrap(), old_ca);
    let replaced = mqseal().args(args(true)).output().unwrap();
    assert!(replaced.status.success(), "{}", text(&replaced.stderr));
    assert_ne!(fs::read(d.path("ca.crt")).unwrap(), old_ca);
    assert_ne!(d.password("alice"), old_pw);
    // bob belonged to the replaced deployment: his files are gone.
    assert!(!dir.join("clients/bob.crt").exists());
    assert!(!dir.join("clients/bob.key").exists());
    assert!(!dir.join("clients/bob.identity").exists());
    assert!(!dir.join("clients/bob.identity.pub").exists());
    let trust =
        mqseal::keyfile::load_trust(mqseal::crypto::default_provider(), d.path("mqseal/trust"))
            .unwrap();
    assert_eq!(trust.iter().count(), 2, "alice and the admin");
}

/// The documented setup, for a test that needs root and the user
/// `mosquitto` (`None`, skipped, without them): a deployment in `tmp` with no
/// `--user`, so that mosquitto started as root runs as `mosquitto`, who was
/// given server.key and passwd.
fn as_mosquitto(tmp: &std::path::Path, clients: &[&str]) -> Option<Deployment> {
    if !is_root() {
        eprintln!("skipped: starting mosquitto as another user needs root");
        return None;
    }
    let status = std::process::Command::new("id")
        .arg("mosquitto")
        .stdout(std::process::Stdio::null())
        .status();
    if !status.is_ok_and(|s| s.success()) {
        eprintln!("skipped: there is no user mosquitto");
        return None;
    }
    fs::set_permissions(tmp, fs::Permissions::from_mode(0o755)).unwrap();
    let d = Deployment::provision_as(&tmp.join("dep"), clients, None);
    let status = std::process::Command::new("chown")
        .args(["mosquitto", &d.path("server.key"), &d.path("passwd")])
        .status()
        .unwrap();
    assert!(status.success());
    Some(d)
}

/// For a test run as uid 4242 (`run_as_uid_4242`), which needs root (`None`,
/// skipped, without it): a deployment in `tmp` owned by uid 4242.
fn of_uid_4242(tmp: &std::path::Path, clients: &[&str]) -> Option<Deployment> {
    if !is_root() {
        eprintln!("skipped: running as another user needs root");
        return None;
    }
    fs::set_permissions(tmp, fs::Permissions::from_mode(0o755)).unwrap();
    let d = Deployment::provision(&tmp.join("dep"), clients);
    let status = std::process::Command::new("chown")
        .args(["-R", "4242:4242", &d.path("")])
        .status()
        .unwrap();
    assert!(status.success());
    Some(d)
}

fn add_client(d: &Deployment, name: &str) -> std::process::Output {
    run(
        &[
            "provision",
            "add-client",
            "--dir",
            &d.path(""),
            "--client",
            name,
        ],
        b"",
    )
}

/// The files add-client rewrites keep the owner and mode an operator gave them
/// (the broker's user must still read passwd).
#[test]
fn add_client_keeps_the_owner_and_mode_of_passwd_and_aclfile() {
    use std::os::unix::fs::MetadataExt;
    if !is_root() {
        eprintln!("skipped: giving files to another user needs root");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let d = Deployment::provision(&tmp.path().join("dep"), &["--client", "alice"]);
    std::os::unix::fs::chown(d.path("passwd"), Some(4242), Some(4243)).unwrap();
    fs::set_permissions(d.path("passwd"), fs::Permissions::from_mode(0o640)).unwrap();
    std::os::unix::fs::chown(d.path("aclfile"), Some(4242), None).unwrap();
    let out = add_client(&d, "carol");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        fs::read_to_string(d.path("passwd"))
            .unwrap()
            .contains("\ncarol:")
    );
    let meta = |f: &str| {
        let m = fs::metadata(d.path(f)).unwrap();
        (m.uid(), m.gid(), m.mode() & 0o7777)
    };
    assert_eq!(meta("passwd"), (4242, 4243, 0o640));
    assert_eq!(meta("aclfile"), (4242, 0, 0o644));
}

/// Run by a user who cannot give the new passwd to its owner, add-client
/// refuses and changes nothing.
#[test]
fn add_client_refuses_to_change_the_owner_of_passwd() {
    use std::os::unix::fs::MetadataExt;
    let tmp = tempfile::tempdir().unwrap();
    let Some(d) = of_uid_4242(tmp.path(), &["--client", "alice"]) else {
        return;
    };
    // Except passwd: uid 4243's, readable.
    std::os::unix::fs::chown(d.path("passwd"), Some(4243), Some(4243)).unwrap();
    fs::set_permissions(d.path("passwd"), fs::Permissions::from_mode(0o644)).unwrap();
    let passwd = fs::read(d.path("passwd")).unwrap();
    let Some(out) = run_as_uid_4242(
        tmp.path(),
        &[
            "provision",
            "add-client",
            "--dir",
            &d.path(""),
            "--client",
            "carol",
        ],
    ) else {
        eprintln!("skipped: setpriv (util-linux) is not installed");
        return;
    };
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "cannot write {} as its owner, uid 4243",
            d.path("passwd")
        )) && err.contains("Nothing was changed")
            && err.contains("as root (sudo) or as uid 4243"),
        "{err}"
    );
    assert_eq!(fs::read(d.path("passwd")).unwrap(), passwd);
    assert_eq!(fs::metadata(d.path("passwd")).unwrap().uid(), 4243);
    assert!(!d.dir.join("clients/carol.crt").exists());
    assert!(!d.dir.join("clients/carol.key").exists());
    assert!(
        !fs::read_to_string(d.path("aclfile"))
            .unwrap()
            .contains("carol")
    );
    for entry in fs::read_dir(&d.dir).unwrap() {
        let name = entry.unwrap().file_name();
        assert!(!name.to_string_lossy().contains(".tmp-"), "{name:?} left");
    }
}

/// The documented setup: mosquitto runs as the user `mosquitto`, who was given
/// server.key and passwd. After add-client and SIGHUP, the broker still reads
/// passwd and still applies the ACL.
#[test]
fn a_broker_running_as_mosquitto_keeps_working_after_add_client() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(d) = as_mosquitto(tmp.path(), &["--client", "alice", "--admin", "ops"]) else {
        return;
    };
    let broker = d.start();
    let out = add_client(&d, "carol");
    assert!(out.status.success(), "{}", text(&out.stderr));
    broker.reload_and_wait();

    let ops = d.client_args(Some("ops"), None);
    let alice = d.client_args(Some("alice"), None);
    let carol = d.client_args(Some("carol"), None);
    let sub = Subscriber::start(&ops, &["devices/#"]);
    sub.wait_ready(&alice, "devices/alice/probe");
    // The ACL still applies: carol cannot write as alice, and can as carol.
    assert!(publish(&carol, "devices/alice/x", "carol as alice").0);
    assert!(publish(&carol, "devices/carol/x", "carol").0);
    assert_eq!(
        sub.next_except("devices/alice/probe").unwrap(),
        "devices/carol/x carol"
    );
    let log = broker.log();
    assert!(!log.contains("Unable to open pwfile"), "{log}");
}

/// `--out` an existing directory (a home, /tmp): its mode is left alone; a
/// directory the command creates gets 0755.
#[test]
fn an_existing_out_directory_keeps_its_mode() {
    let tmp = tempfile::tempdir().unwrap();
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o710)).unwrap();
    let d = Deployment::provision(tmp.path(), &["--client", "alice"]);
    assert_eq!(mode(&d.path("")), 0o710);
    assert!(d.dir.join("mosquitto.conf").exists());
    let new = Deployment::provision(&tmp.path().join("new/dep"), &["--client", "alice"]);
    assert_eq!(mode(&new.path("")), 0o755);
}

/// A client cannot take over another's client id: dev2 asking for `dev1`
/// gets `dev2`, and dev1 stays connected.
#[test]
fn a_client_cannot_take_over_another_client_id() {
    let tmp = tempfile::tempdir().unwrap();
    let d = Deployment::provision(
        &tmp.path().join("dep"),
        &["--client", "dev1", "--client", "dev2", "--admin", "ops"],
    );
    let broker = d.start();
    let ops = d.client_args(Some("ops"), None);
    let dev1 = Subscriber::start(&d.client_args(Some("dev1"), None), &["commands/dev1/#"]);
    dev1.wait_ready(&ops, "commands/dev1/probe");
    let mut as_dev1 = d.client_args(Some("dev2"), None);
    as_dev1.extend(["-i".into(), "dev1".into()]);
    let dev2 = Subscriber::start(&as_dev1, &["commands/dev2/#"]);
    dev2.wait_ready(&ops, "commands/dev2/probe");
    // Both are connected, dev2 under its own name; dev1 was never replaced.
    let log = broker.log();
    assert!(
        log.contains("as dev2 (") && !log.contains("already connected, closing old connection"),
        "{log}"
    );
    assert!(publish(&ops, "commands/dev1/go", "after").0);
    assert_eq!(
        dev1.next_except("commands/dev1/probe").unwrap(),
        "commands/dev1/go after"
    );
}

/// Removing a client's block from aclfile (and its line from passwd) and
/// reloading takes its access away, for a running connection too; its
/// certificate still connects, to nothing. The others keep theirs.
#[test]
fn a_removed_client_can_neither_read_nor_write() {
    let tmp = tempfile::tempdir().unwrap();
    let d = Deployment::provision(
        &tmp.path().join("dep"),
        &["--client", "dev1", "--client", "dev2", "--admin", "ops"],
    );
    let acl = fs::read_to_string(d.path("aclfile")).unwrap();
    let block = "\n# client dev2\nuser dev2\ntopic write devices/dev2/#\n\
                 topic read commands/dev2/#\ntopic read mqseal/rekey\n";
    assert!(acl.contains(block), "{acl}");
    let passwd = fs::read_to_string(d.path("passwd")).unwrap();
    let broker = d.start();
    let ops = d.client_args(Some("ops"), None);
    let dev1 = d.client_args(Some("dev1"), None);
    let dev2 = d.client_args(Some("dev2"), None);
    let without: String = passwd
        .lines()
        .filter(|l| !l.starts_with("dev2:"))
        .map(|l| format!("{l}\n"))
        .collect();
    let remove_dev2 = || {
        fs::write(d.path("aclfile"), acl.replace(block, "")).unwrap();
        fs::write(d.path("passwd"), &without).unwrap();
        broker.reload_and_wait();
    };

    // Reads. dev2 listens to its commands, while it may.
    let dev2_sub = Subscriber::start(&dev2, &["commands/dev2/#", "mqseal/rekey"]);
    dev2_sub.wait_ready(&ops, "commands/dev2/probe");
    remove_dev2();
    assert!(publish(&ops, "commands/dev2/go", "while removed").0);
    assert!(publish(&ops, "mqseal/rekey", "while removed").0);
    // Put back: what dev2's connection receives next is what was sent after,
    // not what was sent while it was removed.
    fs::write(d.path("aclfile"), &acl).unwrap();
    fs::write(d.path("passwd"), &passwd).unwrap();
    broker.reload_and_wait();
    assert!(publish(&ops, "commands/dev2/go", "restored").0);
    assert_eq!(
        dev2_sub.next_except("commands/dev2/probe").unwrap(),
        "commands/dev2/go restored"
    );
    // The same connection all along (a new one would have missed the messages
    // for another reason).
    let log = broker.log();
    assert_eq!(log.matches("as dev2 (").count(), 1, "{log}");
    drop(dev2_sub);

    // Writes: dropped; dev1's, published after, arrives first.
    remove_dev2();
    let sub = Subscriber::start(&ops, &["devices/#"]);
    sub.wait_ready(&dev1, "devices/dev1/probe");
    let (connected, err) = publish(&dev2, "devices/dev2/state", "removed");
    assert!(connected, "the certificate still connects: {err}");
    assert!(publish(&dev1, "devices/dev1/state", "ok").0);
    assert_eq!(
        sub.next_except("devices/dev1/probe").unwrap(),
        "devices/dev1/state ok"
    );
}

/// What a provisioning command line refuses, before writing anything.
#[test]
fn bad_arguments_are_refused_before_anything_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("dep");
    let out_s = out.display().to_string();
    let refused = |extra: &[&str], message: &str| {
        let mut args = vec!["provision", "mosquitto", "--out", &out_s, "--client", "a"];
        args.extend_from_slice(extra);
        let o = run(&args, b"");
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {err}");
        assert!(err.contains(message), "{extra:?}: {err}");
        assert!(!out.exists(), "{extra:?}");
    };
    refused(
        &["--server-name", "127.0.0.1"],
        "127.0.0.1 is an IP address, not a DNS name: give it with --server-ip 127.0.0.1",
    );
    refused(
        &["--server-name", "::1"],
        "::1 is an IP address, not a DNS name: give it with --server-ip ::1",
    );
    let days = "a validity is 1 to 3650 days (the CA's own validity)";
    for n in ["0", "3651", "3000000"] {
        refused(&["--server-name", "localhost", "--days", n], days);
    }
    refused(
        &[
            "--server-name",
            "localhost",
            "--user",
            "root\nlistener 1883 0.0.0.0\nallow_anonymous true",
        ],
        "an account name is lower-case letters",
    );
    // The longest validity is accepted: the leaves end with the CA.
    let d = Deployment::provision(&out, &["--client", "a", "--days", "3650"]);
    assert!(d.dir.join("clients/a.crt").exists());
}

/// add-client refuses a CA key that is not the certificate's, and a validity
/// beyond the CA's, changing nothing.
#[test]
fn add_client_refuses_a_foreign_ca_key_and_a_leaf_outliving_the_ca() {
    let tmp = tempfile::tempdir().unwrap();
    let d = Deployment::provision(&tmp.path().join("dep"), &["--client", "alice"]);
    let other = Deployment::provision(&tmp.path().join("other"), &["--client", "alice"]);
    let snapshot = || -> Vec<(String, Vec<u8>)> {
        let mut files: Vec<(String, Vec<u8>)> = ["passwd", "aclfile", "mqseal/trust"]
            .iter()
            .map(|f| (f.to_string(), fs::read(d.path(f)).unwrap()))
            .collect();
        let mut names: Vec<String> = fs::read_dir(d.path("clients"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        files.push(("clients/".into(), names.join(" ").into_bytes()));
        files
    };
    let add = |extra: &[&str]| {
        let dir = d.path("");
        let mut args = vec![
            "provision",
            "add-client",
            "--dir",
            &dir,
            "--client",
            "carol",
        ];
        args.extend_from_slice(extra);
        fails(&args, b"")
    };

    // Another deployment's CA key.
    let own_key = fs::read(d.path("ca.key")).unwrap();
    fs::copy(other.path("ca.key"), d.path("ca.key")).unwrap();
    let before = snapshot();
    let err = add(&[]);
    assert!(
        err.contains(&format!("cannot load the CA from {}", d.path("ca.crt")))
            && err.contains("the private key does not belong to the certificate"),
        "{err}"
    );
    assert_eq!(snapshot(), before);
    fs::write(d.path("ca.key"), &own_key).unwrap();

    // A CA that expires in 100 days: --days 825 would outlive it.
    let until = short_lived_ca(&d, 100);
    let err = add(&[]);
    assert!(
        err.contains(&format!(
            "--days 825 would outlive the CA, valid until {until}: give --days 100 or less"
        )),
        "{err}"
    );
    assert_eq!(snapshot(), before);
    // Within it: issued, and the certificate ends with the CA.
    let dir = d.path("");
    ok(&[
        "provision",
        "add-client",
        "--dir",
        &dir,
        "--client",
        "carol",
        "--days",
        "100",
    ]);
    assert!(d.dir.join("clients/carol.crt").exists());
}

/// Replaces the CA of `d` by one that expires in `days` days; its expiry date.
fn short_lived_ca(d: &Deployment, days: i64) -> String {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::default();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "short-lived CA");
    let (y, m, day) = mqseal_cli::civil::civil_from_days(mqseal_cli::civil::today() + days);
    params.not_after = rcgen::date_time_ymd(y as i32, m as u8, day as u8);
    let cert = params.self_signed(&key).unwrap();
    fs::write(d.path("ca.crt"), cert.pem()).unwrap();
    fs::write(d.path("ca.key"), key.serialize_pem()).unwrap();
    format!("{y:04}-{m:02}-{day:02}")
}

/// A name a rekey removed is revoked on the devices: add-client refuses it
/// rather than make a client every device rejects.
#[test]
fn add_client_refuses_a_revoked_name() {
    let tmp = tempfile::tempdir().unwrap();
    let d = Deployment::provision(&tmp.path().join("dep"), &["--client", "alice"]);
    ok(&[
        "trust",
        "revoke",
        "--trust",
        &d.path("mqseal/trust"),
        "--id",
        "carol",
    ]);
    let before = fs::read(d.path("passwd")).unwrap();
    let out = add_client(&d, "carol");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("carol is revoked in"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(fs::read(d.path("passwd")).unwrap(), before);
    assert!(!std::path::Path::new(&d.path("clients/carol.crt")).exists());
}

fn renew(d: &Deployment, extra: &[&str]) -> std::process::Output {
    let dir = d.path("");
    let mut args = vec!["provision", "renew", "--dir", &dir];
    args.extend_from_slice(extra);
    run(&args, b"")
}

/// Every file of a deployment (the broker's log aside), by relative path:
/// its content, owner, group and mode.
fn snapshot(d: &Deployment) -> std::collections::BTreeMap<String, (Vec<u8>, u32, u32, u32)> {
    use std::os::unix::fs::MetadataExt;
    fn walk(
        root: &std::path::Path,
        dir: &std::path::Path,
        out: &mut std::collections::BTreeMap<String, (Vec<u8>, u32, u32, u32)>,
    ) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let m = fs::metadata(&path).unwrap();
            if m.is_dir() {
                walk(root, &path, out);
                continue;
            }
            let rel = path.strip_prefix(root).unwrap().display().to_string();
            if rel != "mosquitto.log" {
                let content = fs::read(&path).unwrap();
                out.insert(rel, (content, m.uid(), m.gid(), m.mode() & 0o7777));
            }
        }
    }
    let mut out = std::collections::BTreeMap::new();
    walk(&d.dir, &d.dir, &mut out);
    out
}

/// A certificate's subject, subject alternative names, notAfter date and
/// serial, read with x509-parser.
#[derive(Debug, PartialEq)]
struct CertSummary {
    subject: String,
    sans: Vec<String>,
    not_after: String,
    serial: String,
}

fn cert_summary(pem: &str) -> CertSummary {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).unwrap();
    let cert = pem.parse_x509().unwrap();
    let sans = cert
        .subject_alternative_name()
        .unwrap()
        .map(|s| {
            s.value
                .general_names
                .iter()
                .map(ToString::to_string)
                .collect()
        })
        .unwrap_or_default();
    let day = cert.validity().not_after.timestamp().div_euclid(86_400);
    let (y, m, d) = mqseal_cli::civil::civil_from_days(day);
    CertSummary {
        subject: cert.subject().to_string(),
        sans,
        not_after: format!("{y:04}-{m:02}-{d:02}"),
        serial: cert.raw_serial_as_string(),
    }
}

/// `YYYY-MM-DD` of today plus `days`.
fn in_days(days: i64) -> String {
    let (y, m, d) = mqseal_cli::civil::civil_from_days(mqseal_cli::civil::today() + days);
    format!("{y:04}-{m:02}-{d:02}")
}

/// The certificate the broker of `d` presents (PEM, from `openssl s_client`),
/// or `None` without openssl.
fn served_certificate(d: &Deployment, client: &str) -> Option<String> {
    let out = std::process::Command::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{}", d.port)])
        .args(["-servername", "localhost", "-CAfile", &d.path("ca.crt")])
        .args(["-cert", &d.path(&format!("clients/{client}.crt"))])
        .args(["-key", &d.path(&format!("clients/{client}.key"))])
        .stdin(std::process::Stdio::null())
        .output()
        .ok()?;
    let out = text(&out.stdout);
    let begin = out
        .find("-----BEGIN CERTIFICATE-----")
        .unwrap_or_else(|| panic!("no server certificate: {out}"));
    let end = out[begin..].find("-----END CERTIFICATE-----").unwrap() + begin;
    Some(out[begin..end + "-----END CERTIFICATE-----".len()].to_string() + "\n")
}

/// `renew --server`: a new key and certificate, for the same names, and
/// nothing else changes. The running broker presents the old certificate
/// until SIGHUP, then the new one, which clients verify with the same ca.crt.
#[test]
fn renew_server_is_presented_after_sighup() {
    let tmp = tempfile::tempdir().unwrap();
    let d = Deployment::provision(
        &tmp.path().join("dep"),
        &["--client", "dev1", "--admin", "ops"],
    );
    let broker = d.start();
    // A connection made before the renewal, kept open across the reload.
    let sub = Subscriber::start(&d.as_client("ops"), &["devices/#"]);
    sub.wait_ready(&d.as_client("dev1"), "devices/dev1/probe");
    let before = snapshot(&d);
    let old_crt = fs::read_to_string(d.path("server.crt")).unwrap();
    let no_openssl = served_certificate(&d, "ops").is_none();
    if no_openssl {
        eprintln!("openssl is not installed: the presented certificate is not compared");
    } else {
        assert_eq!(served_certificate(&d, "ops").unwrap(), old_crt);
    }

    let expected = in_days(30);
    let out = renew(&d, &["--server", "--days", "30"]);
    // (The command ran on the day before or after midnight UTC.)
    let expected = [expected, in_days(30)];
    let summary = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let new_crt = fs::read_to_string(d.path("server.crt")).unwrap();
    let (old, new) = (cert_summary(&old_crt), cert_summary(&new_crt));
    assert_eq!(new.subject, "CN=localhost");
    assert_eq!(new.subject, old.subject);
    // (x509-parser shows an address as its bytes.)
    assert_eq!(new.sans, ["DNSName(localhost)", "IPAddress(7f:00:00:01)"]);
    assert_eq!(new.sans, old.sans);
    assert_ne!(new.serial, old.serial);
    assert!(expected.contains(&new.not_after), "{}", new.not_after);
    assert!(
        summary.contains(&format!(
            "server.crt, server.key  localhost, 127.0.0.1: valid until {} (was {})",
            new.not_after, old.not_after
        )) && summary.contains("kill -HUP"),
        "{summary}"
    );
    // A new key pair; everything else as it was.
    let after = snapshot(&d);
    for (file, old) in &before {
        let changed = after[file] != *old;
        assert_eq!(
            changed,
            file == "server.crt" || file == "server.key",
            "{file}"
        );
    }
    assert_eq!(after.len(), before.len(), "no file added or left behind");
    assert_eq!(mode(&d.path("server.key")), 0o600);

    if !no_openssl {
        // Until the broker is told, it presents the certificate it loaded.
        assert_eq!(served_certificate(&d, "ops").unwrap(), old_crt);
    }
    broker.reload_and_wait();
    if !no_openssl {
        assert_eq!(served_certificate(&d, "ops").unwrap(), new_crt);
    }
    let log = broker.log();
    assert!(!log.contains("Error when reloading certificate"), "{log}");
    // A client verifying the server with the unchanged ca.crt connects, and
    // its message reaches the connection opened before the reload.
    assert!(publish(&d.as_client("dev1"), "devices/dev1/x", "after").0);
    assert_eq!(
        sub.next_except("devices/dev1/probe").unwrap(),
        "devices/dev1/x after"
    );
    let log = broker.log();
    assert_eq!(log.matches("as ops (").count(), 1, "{log}");
}

/// `renew --client dev1`: a new key and certificate with the same common
/// name; its password, ACL block and identity are unchanged, and so is every
/// other file. The broker needs no reload: dev1 connects with the new
/// certificate at once, with dev1's rights only.
#[test]
fn renew_client_keeps_its_name_acl_and_identity() {
    let tmp = tempfile::tempdir().unwrap();
    let d = Deployment::provision(
        &tmp.path().join("dep"),
        &["--client", "dev1", "--client", "dev2", "--admin", "ops"],
    );
    let broker = d.start();
    let before = snapshot(&d);
    let old_dir = tmp.path().join("old");
    fs::create_dir(&old_dir).unwrap();
    for ext in ["crt", "key"] {
        fs::copy(
            d.path(&format!("clients/dev1.{ext}")),
            old_dir.join(format!("dev1.{ext}")),
        )
        .unwrap();
    }

    let expected = in_days(825);
    let out = renew(&d, &["--client", "dev1"]);
    let expected = [expected, in_days(825)];
    let summary = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let after = snapshot(&d);
    for (file, old) in &before {
        let changed = after[file] != *old;
        assert_eq!(
            changed,
            file == "clients/dev1.crt" || file == "clients/dev1.key",
            "{file}"
        );
    }
    assert_eq!(after.len(), before.len());
    assert_eq!(mode(&d.path("clients/dev1.key")), 0o600);
    let old = cert_summary(&text(&before["clients/dev1.crt"].0));
    let new = cert_summary(&fs::read_to_string(d.path("clients/dev1.crt")).unwrap());
    assert_eq!(new.subject, "CN=dev1");
    assert_ne!(new.serial, old.serial);
    assert!(expected.contains(&new.not_after), "{}", new.not_after);
    assert!(
        summary.contains(&format!(
            "clients/dev1.crt, .key  dev1: valid until {} (was {})",
            new.not_after, old.not_after
        )) && summary.contains(&format!(
            "dev1: {} {}",
            d.path("clients/dev1.crt"),
            d.path("clients/dev1.key")
        )) && !summary.contains("kill -HUP"),
        "{summary}"
    );

    // No reload: dev1's new certificate connects, and the ACL still applies
    // to it: the publish as dev2 is dropped, the one as dev1 arrives.
    let sub = Subscriber::start(&d.as_client("ops"), &["devices/#"]);
    sub.wait_ready(&d.as_client("dev2"), "devices/dev2/probe");
    let dev1 = d.as_client("dev1");
    assert!(publish(&dev1, "devices/dev2/x", "dev1 as dev2").0);
    assert!(publish(&dev1, "devices/dev1/x", "new certificate").0);
    assert_eq!(
        sub.next_except("devices/dev2/probe").unwrap(),
        "devices/dev1/x new certificate"
    );
    let log = broker.log();
    assert!(log.contains("as dev1 ("), "{log}");
    // There is no revocation: the old certificate connects until it expires.
    let mut old_args = d.client_args(None, None);
    old_args.extend([
        "--cert".into(),
        old_dir.join("dev1.crt").display().to_string(),
        "--key".into(),
        old_dir.join("dev1.key").display().to_string(),
    ]);
    assert!(publish(&old_args, "devices/dev1/x", "old certificate").0);
    assert_eq!(
        sub.next_except("devices/dev2/probe").unwrap(),
        "devices/dev1/x old certificate"
    );
}

/// What renew refuses, changing nothing: no selector, a bad --days, an
/// unknown, repeated or revoked client, a certificate of another CA or with
/// another common name, a validity past the CA.
#[test]
fn renew_refusals_change_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let d = Deployment::provision(
        &tmp.path().join("dep"),
        &["--client", "dev1", "--client", "dev2"],
    );
    let other = Deployment::provision(&tmp.path().join("other"), &["--client", "dev1"]);
    let refused = |extra: &[&str], code: i32, message: &str| {
        let before = snapshot(&d);
        let out = renew(&d, extra);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{extra:?}: {err}");
        assert!(err.contains(message), "{extra:?}: {err}");
        assert_eq!(snapshot(&d), before, "{extra:?} changed the deployment");
    };
    let usage = "the following required arguments were not provided:\n  <--server|--client <NAME>>";
    refused(&[], 2, usage);
    refused(&["--days", "30"], 2, usage);
    let days = "a validity is 1 to 3650 days (the CA's own validity)";
    refused(&["--client", "dev1", "--days", "0"], 2, days);
    refused(&["--server", "--days", "3651"], 2, days);
    refused(&["--client", "dev1/x"], 2, "a client name is letters");
    let unknown = format!(
        "client nobody does not exist in {}: there is no {}; nothing was changed",
        d.path(""),
        d.path("clients/nobody.crt")
    );
    refused(&["--client", "nobody"], 1, &unknown);
    // Checked before anything is written: the server is not renewed either.
    refused(
        &["--server", "--client", "dev1", "--client", "nobody"],
        1,
        &unknown,
    );
    refused(
        &["--client", "dev1", "--client", "dev1"],
        1,
        "client dev1 is given twice",
    );
    ok(&[
        "trust",
        "revoke",
        "--trust",
        &d.path("mqseal/trust"),
        "--id",
        "dev2",
    ]);
    refused(
        &["--server", "--client", "dev2"],
        1,
        &format!(
            "dev2 is revoked in {} (by a rekey or `trust revoke`)",
            d.path("mqseal/trust")
        ),
    );
    // Another CA's certificate in dev1's place; dev2's certificate there.
    let own = fs::read(d.path("clients/dev1.crt")).unwrap();
    fs::copy(other.path("clients/dev1.crt"), d.path("clients/dev1.crt")).unwrap();
    refused(
        &["--client", "dev1"],
        1,
        &format!(
            "{}: it was not signed by this deployment's CA (ca.crt)",
            d.path("clients/dev1.crt")
        ),
    );
    let own_server = fs::read(d.path("server.crt")).unwrap();
    fs::copy(other.path("server.crt"), d.path("server.crt")).unwrap();
    refused(
        &["--server"],
        1,
        &format!(
            "{}: it was not signed by this deployment's CA",
            d.path("server.crt")
        ),
    );
    fs::copy(d.path("clients/dev2.crt"), d.path("clients/dev1.crt")).unwrap();
    refused(
        &["--client", "dev1"],
        1,
        &format!(
            "{} is not the certificate of client dev1: its common name is \"dev2\"",
            d.path("clients/dev1.crt")
        ),
    );
    // The server's certificate as a client's, and the CA's own as the server's.
    fs::write(d.path("clients/dev1.crt"), &own_server).unwrap();
    refused(&["--client", "dev1"], 1, "it is not a client certificate");
    fs::write(d.path("clients/dev1.crt"), &own).unwrap();
    fs::copy(d.path("ca.crt"), d.path("server.crt")).unwrap();
    refused(&["--server"], 1, "it is a CA certificate");
    fs::write(d.path("server.crt"), &own_server).unwrap();
    // A key that is a symlink would lend the new key its target's owner and
    // mode: refused.
    let key = fs::read(d.path("server.key")).unwrap();
    fs::write(d.path("elsewhere.key"), &key).unwrap();
    fs::remove_file(d.path("server.key")).unwrap();
    std::os::unix::fs::symlink(d.path("elsewhere.key"), d.path("server.key")).unwrap();
    refused(&["--server"], 1, "server.key is not a regular file");
    fs::remove_file(d.path("server.key")).unwrap();
    fs::write(d.path("server.key"), &key).unwrap();
    fs::set_permissions(d.path("server.key"), fs::Permissions::from_mode(0o600)).unwrap();
    // A CA that expires in 100 days: --days 825 would outlive it.
    let until = short_lived_ca(&d, 100);
    refused(
        &["--client", "dev1"],
        1,
        &format!("--days 825 would outlive the CA, valid until {until}: give --days 100 or less"),
    );
}

/// The files renew replaces keep the owner and mode an operator gave them
/// (the broker's user must still read server.key).
#[test]
fn renew_keeps_the_owner_and_mode_of_the_keys() {
    use std::os::unix::fs::MetadataExt;
    if !is_root() {
        eprintln!("skipped: giving files to another user needs root");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let d = Deployment::provision(&tmp.path().join("dep"), &["--client", "dev1"]);
    std::os::unix::fs::chown(d.path("server.key"), Some(4242), Some(4243)).unwrap();
    fs::set_permissions(d.path("server.key"), fs::Permissions::from_mode(0o640)).unwrap();
    std::os::unix::fs::chown(d.path("server.crt"), Some(4242), None).unwrap();
    std::os::unix::fs::chown(d.path("clients/dev1.key"), Some(4244), Some(4244)).unwrap();
    // A key others could read: the new one keeps the group's read, not theirs.
    fs::set_permissions(
        d.path("clients/dev1.key"),
        fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let before = snapshot(&d);
    let out = renew(&d, &["--server", "--client", "dev1"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let after = snapshot(&d);
    let meta = |f: &str| {
        let m = fs::metadata(d.path(f)).unwrap();
        (m.uid(), m.gid(), m.mode() & 0o7777)
    };
    for file in [
        "server.key",
        "server.crt",
        "clients/dev1.key",
        "clients/dev1.crt",
    ] {
        assert_ne!(after[file].0, before[file].0, "{file} not renewed");
    }
    assert_eq!(meta("server.key"), (4242, 4243, 0o640));
    assert_eq!(meta("server.crt"), (4242, 0, 0o644));
    assert_eq!(meta("clients/dev1.key"), (4244, 4244, 0o640));
    assert_eq!(meta("clients/dev1.crt"), (0, 0, 0o644));
}

/// Run by a user who cannot give the new server.key to its owner, renew
/// refuses and changes nothing, not even server.crt, which that user may
/// write.
#[test]
fn renew_refuses_to_change_the_owner_of_server_key() {
    use std::os::unix::fs::MetadataExt;
    let tmp = tempfile::tempdir().unwrap();
    let Some(d) = of_uid_4242(tmp.path(), &["--client", "dev1"]) else {
        return;
    };
    // server.key is the broker's (uid 4243), readable by uid 4242's group.
    std::os::unix::fs::chown(d.path("server.key"), Some(4243), Some(4242)).unwrap();
    fs::set_permissions(d.path("server.key"), fs::Permissions::from_mode(0o640)).unwrap();
    let before = snapshot(&d);
    let Some(out) = run_as_uid_4242(
        tmp.path(),
        &[
            "provision",
            "renew",
            "--dir",
            &d.path(""),
            "--client",
            "dev1",
            "--server",
        ],
    ) else {
        eprintln!("skipped: setpriv (util-linux) is not installed");
        return;
    };
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "cannot write {} as its owner, uid 4243 (group 4242)",
            d.path("server.key")
        )) && err.contains("Nothing was changed"),
        "{err}"
    );
    assert_eq!(snapshot(&d), before, "no file changed, none left behind");
    assert_eq!(fs::metadata(d.path("server.key")).unwrap().uid(), 4243);
}

/// The documented setup: mosquitto runs as the user `mosquitto`, who was given
/// server.key. After renew --server and SIGHUP, the broker (no longer root)
/// reads the new key and presents the new certificate.
#[test]
fn a_broker_running_as_mosquitto_loads_a_renewed_server_certificate() {
    use std::os::unix::fs::MetadataExt;
    let tmp = tempfile::tempdir().unwrap();
    let Some(d) = as_mosquitto(tmp.path(), &["--client", "dev1", "--admin", "ops"]) else {
        return;
    };
    let owner = fs::metadata(d.path("server.key")).unwrap().uid();
    let broker = d.start();
    let out = renew(&d, &["--server"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(fs::metadata(d.path("server.key")).unwrap().uid(), owner);
    broker.reload_and_wait();
    let new_crt = fs::read_to_string(d.path("server.crt")).unwrap();
    match served_certificate(&d, "ops") {
        Some(served) => assert_eq!(served, new_crt),
        None => eprintln!("openssl is not installed: the presented certificate is not compared"),
    }
    let log = broker.log();
    assert!(!log.contains("Error when reloading certificate"), "{log}");
    let sub = Subscriber::start(&d.client_args(Some("ops"), None), &["devices/#"]);
    sub.wait_ready(&d.client_args(Some("dev1"), None), "devices/dev1/probe");
}

/// Two commands changing one deployment at once would each write back only
/// its own change: while one holds the deployment's lock, add-client and
/// renew are refused and change nothing.
#[test]
fn a_deployment_is_changed_by_one_command_at_a_time() {
    let tmp = tempfile::tempdir().unwrap();
    let d = Deployment::provision(&tmp.path().join("dep"), &["--client", "dev1"]);
    let held = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(d.path(".mqseal-provision.lock"))
        .unwrap();
    held.lock().unwrap();
    let before = snapshot(&d);
    for out in [add_client(&d, "dev2"), renew(&d, &["--client", "dev1"])] {
        assert_eq!(out.status.code(), Some(1));
        assert!(
            text(&out.stderr).contains("another mqseal provision command is changing"),
            "{}",
            text(&out.stderr)
        );
    }
    assert_eq!(snapshot(&d), before);
    held.unlock().unwrap();
    let out = add_client(&d, "dev2");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = renew(&d, &["--client", "dev1"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}
