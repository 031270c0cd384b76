//! The native `$7$` password lines are byte-identical to `mosquitto_passwd`'s:
//! each line `mosquitto_passwd` writes is recomputed from its salt and
//! iteration count. (That the broker accepts native lines is shown by the
//! connections in `provision.rs`.)

mod common;

use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use mqseal_cli::passwd;

#[test]
fn native_lines_match_mosquitto_passwd() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("passwd");
    std::fs::write(&file, "").unwrap();
    let users = [
        ("alice", "secret"),
        ("bob", "P4-80R2kqhvvAo6qtyVEm84dyjnBmXqf"),
        ("carol", "spaces and $ymbols: \"'\\"),
        ("dave", "ünïcødé 🔑"),
    ];
    for (user, password) in users {
        let status = Command::new("mosquitto_passwd")
            .arg("-b")
            .arg(&file)
            .arg(user)
            .arg(password)
            .status()
            .expect("mosquitto_passwd is installed (Debian package `mosquitto`)");
        assert!(status.success());
    }
    let text = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), users.len());
    for ((user, password), line) in users.iter().zip(lines) {
        // user:$7$<iterations>$<salt>$<hash>
        let (name, hash) = line.split_once(':').unwrap();
        assert_eq!(name, *user);
        let parts: Vec<&str> = hash.split('$').collect();
        assert_eq!(parts[..2], ["", "7"], "{line}");
        let iterations: u32 = parts[2].parse().unwrap();
        assert_eq!(iterations, passwd::DEFAULT_ITERATIONS, "{line}");
        let salt = STANDARD.decode(parts[3]).unwrap();
        assert_eq!(salt.len(), passwd::SALT_LEN, "{line}");
        assert_eq!(STANDARD.decode(parts[4]).unwrap().len(), passwd::HASH_LEN);
        assert_eq!(
            passwd::line_with_salt(user, password, &salt, iterations),
            line,
            "native line differs from mosquitto_passwd's"
        );
        assert_eq!(passwd::verify(line, password), Some(true));
        assert_eq!(passwd::verify(line, "not it"), Some(false));
    }
}
