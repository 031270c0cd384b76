//! The scenario programs run to the end against their embedded broker and
//! report every attack as rejected.

use std::process::Command;

fn run(bin: &str, args: &[&str]) -> String {
    let out = Command::new(bin).args(args).output().expect("example runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{bin} failed:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

#[test]
fn control_station_rejects_every_attack_and_the_robot_keeps_running() {
    let out = run(env!("CARGO_BIN_EXE_control_station"), &[]);
    for expected in [
        "robot-1: ACCEPTED robots/1/cmd from station: move arm to 10,20",
        "robot-1: REJECTED robots/1/cmd (message rejected: replayed",
        "robot-1: REJECTED robots/1/cmd (message rejected: authentication failed)",
        "robot-1: REJECTED robots/1/cmd (message rejected: stale",
        "robot-1: ACCEPTED robots/1/cmd from station: return to base",
        "robot-1: 2 accepted, 4 rejected",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
}

#[test]
fn sensor_fleet_changes_rate_and_rejects_the_rogue() {
    let out = run(
        env!("CARGO_BIN_EXE_sensor"),
        &["--sensors", "10", "--seconds", "1"],
    );
    assert!(out.contains("10 of 10 sensors changed their rate"), "{out}");
    assert!(out.contains("10 fake rate commands were rejected"), "{out}");
    assert_eq!(out.matches("    REJECTED sensors/").count(), 3, "{out}");
}

#[test]
fn chat_spy_sees_only_ciphertext() {
    let out = run(env!("CARGO_BIN_EXE_chat"), &[]);
    assert!(
        out.contains("alice: ACCEPTED chats/alice/messages from bob: Lunch at noon?"),
        "{out}"
    );
    assert!(
        out.contains("carol: REJECTED chats/alice/messages"),
        "{out}"
    );
    assert_eq!(out.matches("ciphertext only").count(), 2, "{out}");
    assert!(!out.contains("PLAINTEXT VISIBLE"), "{out}");
}

#[test]
fn quickstart_runs() {
    let out = run(env!("CARGO_BIN_EXE_quickstart"), &[]);
    assert!(out.contains("robot: 2 accepted, 3 rejected"), "{out}");
}
