//! `mqseal inspect` on the committed known-answer vectors: every printed
//! field matches the vector file, and malformed envelopes print the reason.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use common::*;
use serde_json::Value;

/// The envelope vector files (one per suite; other vector files are skipped).
fn vectors() -> Vec<(String, Value)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/vectors");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    let vectors: Vec<(String, Value)> = files
        .into_iter()
        .map(|p| {
            let v = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
            (p.display().to_string(), v)
        })
        .filter(|(_, v): &(String, Value)| v.get("suite").is_some() && v.get("cases").is_some())
        .collect();
    let mut suites: Vec<&str> = vectors
        .iter()
        .map(|(_, v)| v["suite"].as_str().unwrap())
        .collect();
    suites.sort();
    let mut all: Vec<&str> = mqseal::Suite::ALL.iter().map(|s| s.name()).collect();
    all.sort();
    assert_eq!(
        suites,
        all,
        "one vector file per suite in {}",
        dir.display()
    );
    vectors
}

fn iso(ms: u64) -> String {
    mqseal_cli::civil::iso8601_ms(ms)
}

#[test]
fn every_vector_case_prints_the_files_fields() {
    let mut checked = 0;
    for (file, v) in vectors() {
        let suite = v["suite"].as_str().unwrap();
        let suite_id = v["suite_id"].as_u64().unwrap();
        let sender = hex::decode(v["sender_id"].as_str().unwrap()).unwrap();
        let signed = suite.contains("ed25519");
        let tag = match suite.split('+').next().unwrap() {
            "aes256gcm" => Some("16 bytes (AES-256-GCM)"),
            "chacha20poly1305" => Some("16 bytes (Poly1305)"),
            "hmacsha256" => Some("32 bytes (HMAC-SHA256)"),
            _ => None,
        };
        let encrypted = suite.starts_with("aes") || suite.starts_with("chacha");
        for case in v["cases"].as_array().unwrap() {
            let name = format!("{file} {}", case["name"]);
            let hex_env = case["envelope"].as_str().unwrap();
            let bytes = hex::decode(hex_env).unwrap();
            // Both input forms give the same output.
            let raw = run(&["inspect"], &bytes);
            let hexed = run(&["inspect", "--hex"], format!("{hex_env}\n").as_bytes());
            assert!(raw.status.success(), "{name}: {}", text(&raw.stderr));
            assert_eq!(raw.stdout, hexed.stdout, "{name}");
            let f = fields(&text(&raw.stdout));

            let payload = hex::decode(case["payload"].as_str().unwrap()).unwrap();
            let trailer = tag.map_or(0, |t| t[..2].trim().parse::<usize>().unwrap())
                + if signed { 64 } else { 0 };
            let header = bytes.len() - payload.len() - trailer;
            let mut want = BTreeMap::new();
            let mut put = |k: &str, v: String| want.insert(k.to_string(), v);
            put("version", v["version"].to_string());
            put("suite", format!("{suite} (0x{suite_id:02x})"));
            put("epoch", v["epoch"].to_string());
            put(
                "sender id",
                format!("{:?}", String::from_utf8(sender.clone()).unwrap()),
            );
            put("counter", case["counter"].to_string());
            put(
                "timestamp",
                match case["timestamp_ms"].as_u64() {
                    Some(ms) => format!("{ms} ms ({})", iso(ms)),
                    None => "none".into(),
                },
            );
            put("header", format!("{header} bytes"));
            put(
                "body",
                if payload.len() == 1 {
                    "1 byte".into()
                } else {
                    format!("{} bytes", payload.len())
                },
            );
            put("tag", tag.unwrap_or("none").to_string());
            put(
                "signature",
                if signed { "64 bytes (ed25519)" } else { "none" }.to_string(),
            );
            put("total", format!("{} bytes", bytes.len()));
            if encrypted {
                put(
                    "readable",
                    "no: the body is ciphertext; only a holder of the group key can open it".into(),
                );
            } else {
                put(
                    "readable",
                    "yes: the body is the payload itself, authenticated but not encrypted".into(),
                );
                let shown = match std::str::from_utf8(&payload) {
                    _ if payload.is_empty() => "(empty)".to_string(),
                    Ok(s) if !s.chars().any(char::is_control) => format!("{s:?}"),
                    _ => format!("{} (hex)", hex::encode(&payload)),
                };
                put("payload", shown);
            }
            assert_eq!(f, want, "{name}");
            checked += 1;
        }
    }
    assert!(checked >= 28, "{checked} cases");
}

#[test]
fn malformed_vectors_print_the_reason() {
    for (file, v) in vectors() {
        for case in v["negative"].as_array().unwrap() {
            if case["expect"] != "malformed" {
                continue;
            }
            let bytes = hex::decode(case["envelope"].as_str().unwrap()).unwrap();
            let out = run(&["inspect"], &bytes);
            let err = text(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{file} {}", case["name"]);
            assert!(out.stdout.is_empty());
            let want = match case["name"].as_str().unwrap() {
                "truncated" => "error: malformed envelope: truncated\n".to_string(),
                "unknown_version" => {
                    format!(
                        "error: malformed envelope: unsupported version {}\n",
                        bytes[0] >> 4
                    )
                }
                other => panic!("new malformed vector {other}: extend this test"),
            };
            assert_eq!(err, want, "{file} {}", case["name"]);
        }
    }
}

#[test]
fn malformed_inputs_print_the_reason() {
    let cases: &[(&[u8], &str)] = &[
        (b"", "truncated (standard input is empty)"),
        (&[0x10], "truncated"),
        (&[0x10, 0x01, 0x07, 0x04, b'd'], "truncated"),
        (b"\x00garbage", "unsupported version 0"),
        (&[0x12, 0x01], "reserved flag bits set"),
        (&[0x10, 0x00], "unknown suite 0x00"),
        (
            &[0x10, 0x01, 0x81, 0x00],
            "non-canonical or overlong integer in field epoch",
        ),
        (&[0x10, 0x01, 0x07, 0x00], "sender id length out of range"),
        (&[0x10, 0x01, 0x07, 17], "sender id length out of range"),
        (
            b"1001070464",
            "unsupported version 3 (the input looks like hex text: add --hex)",
        ),
    ];
    for (input, reason) in cases {
        let out = run(&["inspect"], input);
        assert_eq!(out.status.code(), Some(1), "{input:?}");
        assert_eq!(
            text(&out.stderr),
            format!("error: malformed envelope: {reason}\n"),
            "{input:?}"
        );
    }
    let out = run(&["inspect", "--hex"], b"10 01 zz");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "error: the input is not hexadecimal: 'z' at hex digit 5; drop --hex to read raw bytes\n"
    );
}

#[test]
fn a_binary_sender_id_prints_as_hex() {
    // aes256gcm, epoch 300, sender id 00 ff, counter 5, empty body, zero tag.
    let mut env = vec![0x10, 0x01, 0xac, 0x02, 0x02, 0x00, 0xff, 0x05];
    env.extend([0u8; 16]);
    let out = run(&["inspect"], &env);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let f = fields(&text(&out.stdout));
    assert_eq!(f["sender id"], "00ff (hex: not printable)");
    assert_eq!(f["epoch"], "300");
    assert_eq!(f["counter"], "5");
    assert_eq!(f["header"], "8 bytes");
    assert_eq!(f["body"], "0 bytes");
}

#[test]
fn reads_a_file_argument() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("env.hex");
    std::fs::write(&path, "100107046465763100cced3433ab3253167b0b72935d1b0a65").unwrap();
    let out = run(&["inspect", "--hex", path.to_str().unwrap()], b"");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(fields(&text(&out.stdout))["suite"], "aes256gcm (0x01)");
}

/// The vector's keys in files: a keyring (epoch and group secret of the
/// vector) and a trust store with the vector's sender and public key.
fn key_files(dir: &std::path::Path, v: &Value) -> Vec<String> {
    let p = mqseal::crypto::default_provider();
    let epoch = v["epoch"].as_u64().unwrap() as u32;
    let sender =
        mqseal::SenderId::new(&hex::decode(v["sender_id"].as_str().unwrap()).unwrap()).unwrap();
    let mut args = Vec::new();
    if let Some(secret) = v["group_secret"].as_str() {
        let secret = mqseal::GroupSecret::try_from_slice(&hex::decode(secret).unwrap()).unwrap();
        let path = dir.join("vector.keyring");
        mqseal::keyfile::save_keyring(p, &path, &mqseal::Keyring::new(epoch, secret)).unwrap();
        args.extend(["--keyring".to_string(), path.display().to_string()]);
    }
    if let Some(key) = v["public_key"].as_str() {
        let key: [u8; 32] = hex::decode(key).unwrap().try_into().unwrap();
        let mut trust = mqseal::TrustStore::new();
        trust.insert(sender, mqseal::PublicKey(key));
        let path = dir.join("vector.trust");
        mqseal::keyfile::save_trust(p, &path, &trust).unwrap();
        args.extend(["--trust".to_string(), path.display().to_string()]);
    }
    args
}

fn protect_of(suite: &str) -> &'static str {
    match suite {
        "aes256gcm" => "encrypt",
        "chacha20poly1305" => "chacha",
        "hmacsha256" => "mac",
        "ed25519" => "sign",
        "aes256gcm+ed25519" => "encrypt+sign",
        "chacha20poly1305+ed25519" => "chacha+sign",
        "hmacsha256+ed25519" => "mac+sign",
        other => panic!("unknown suite {other}"),
    }
}

/// `inspect` with the vector's keys: every case is accepted and opens to its
/// payload; every negative case that one envelope can show is rejected for
/// the vector's reason.
#[test]
fn with_keys_every_vector_case_is_judged_as_the_vector_says() {
    let tmp = tempfile::tempdir().unwrap();
    let mut judged = 0;
    for (file, v) in vectors() {
        let keys = key_files(tmp.path(), &v);
        let protect = protect_of(v["suite"].as_str().unwrap());
        let max_age = format!("{}ms", v["max_age_ms"]);
        let now = v["now_ms"].to_string();
        // Freshness is judged at the vector's time, or the case's own.
        let inspect = |envelope: &[u8], topic: &str, fresh: bool, at: &Value| {
            let at = at.as_u64().map_or(now.clone(), |t| t.to_string());
            let mut args: Vec<&str> = vec!["inspect", "--topic", topic, "--protect", protect];
            args.extend(keys.iter().map(String::as_str));
            if fresh {
                args.extend(["--max-age", &max_age, "--at", &at]);
            }
            run(&args, envelope)
        };
        for case in v["cases"].as_array().unwrap() {
            let name = format!("{file} {}", case["name"]);
            let env = hex::decode(case["envelope"].as_str().unwrap()).unwrap();
            let topic = case["topic"].as_str().unwrap();
            let fresh = !case["timestamp_ms"].is_null();
            let out = inspect(&env, topic, fresh, &case["now_ms"]);
            assert!(out.status.success(), "{name}: {}", text(&out.stderr));
            let f = fields(&text(&out.stdout));
            assert!(f["verdict"].starts_with("accepted"), "{name}: {f:?}");
            let payload = hex::decode(case["payload"].as_str().unwrap()).unwrap();
            let want = mqseal_cli::inspect::payload(&payload);
            assert_eq!(f["opened"], want, "{name}");
            judged += 1;
        }
        for case in v["negative"].as_array().unwrap() {
            let name = format!("{file} {}", case["name"]);
            let expect = case["expect"].as_str().unwrap();
            if !case["after"].as_array().unwrap().is_empty() {
                // A replay needs the envelopes before it: a fresh receiver
                // cannot see it (the help says so).
                assert_eq!(expect, "replayed", "{name}");
                continue;
            }
            let env = hex::decode(case["envelope"].as_str().unwrap()).unwrap();
            let topic = case["topic"].as_str().unwrap();
            let fresh = topic.contains("fresh");
            let out = inspect(&env, topic, fresh, &case["now_ms"]);
            assert_eq!(out.status.code(), Some(1), "{name}");
            if expect == "malformed" {
                assert!(
                    text(&out.stderr).starts_with("error: malformed envelope: "),
                    "{name}: {}",
                    text(&out.stderr)
                );
                continue;
            }
            let f = fields(&text(&out.stdout));
            assert!(
                f["verdict"].starts_with(&format!("rejected ({expect}): ")),
                "{name}: {f:?}"
            );
            assert_eq!(
                text(&out.stderr),
                "error: the envelope would be rejected (see the verdict)\n"
            );
            judged += 1;
        }
    }
    assert!(judged >= 7 * 9, "{judged}");
}

#[test]
fn with_keys_the_verdict_is_golden() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, v) = vectors()
        .into_iter()
        .find(|(_, v)| v["suite"] == "aes256gcm+ed25519")
        .unwrap();
    let keys = key_files(tmp.path(), &v);
    let case = &v["cases"][1];
    let env = hex::decode(case["envelope"].as_str().unwrap()).unwrap();
    let mut args = vec![
        "inspect",
        "--topic",
        "v/sensors/1",
        "--protect",
        "encrypt+sign",
    ];
    args.extend(keys.iter().map(String::as_str));
    check(
        "inspect-keys-accepted",
        &transcript_with(&args, Some(("64-byte-payload", &env)), Some(tmp.path())),
    );
    args[2] = "v/sensors/2";
    check(
        "inspect-keys-wrong-topic",
        &transcript_with(&args, Some(("64-byte-payload", &env)), Some(tmp.path())),
    );
    let stale = v["negative"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "stale")
        .unwrap();
    let env = hex::decode(stale["envelope"].as_str().unwrap()).unwrap();
    let mut args = vec![
        "inspect",
        "--topic",
        "v/fresh/robot/cmd",
        "--protect",
        "encrypt+sign",
        "--max-age",
        "30s",
        "--at",
        "2026-11-18T11:07:10.001Z",
    ];
    args.extend(keys.iter().map(String::as_str));
    check(
        "inspect-keys-stale",
        &transcript_with(&args, Some(("stale", &env)), Some(tmp.path())),
    );
}
