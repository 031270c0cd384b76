//! Test infrastructure: the built `mqseal` binary, deployments it provisions,
//! real `mosquitto` brokers started from them (stopped on drop, even when a
//! test fails), and real `mosquitto_pub` / `mosquitto_sub` clients.
#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_mqseal");

/// A command for the built binary, with colours off.
pub fn mqseal() -> Command {
    let mut c = Command::new(BIN);
    c.env("NO_COLOR", "1").env_remove("CLICOLOR_FORCE");
    c
}

/// Whether the tests run as root, who may give files to other users.
pub fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    let probe = tempfile::NamedTempFile::new().unwrap();
    probe.as_file().metadata().unwrap().uid() == 0
}

/// Runs the CLI with `args` as uid and gid 4242, through util-linux's
/// `setpriv` (so as root): a copy of the binary in `dir`, which must be
/// reachable by that user, so that this works wherever the build lives.
/// `None` when `setpriv` cannot be run.
pub fn run_as_uid_4242(dir: &Path, args: &[&str]) -> Option<Output> {
    use std::os::unix::fs::PermissionsExt;
    let bin = dir.join("mqseal");
    if !bin.exists() {
        std::fs::copy(BIN, &bin).unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    Command::new("setpriv")
        .args(["--reuid=4242", "--regid=4242", "--clear-groups", "--"])
        .arg(&bin)
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .ok()
}

/// Runs the binary with `args` and `stdin`.
pub fn run(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = mqseal()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    // A command that fails before reading its input closes the pipe early.
    let _ = input.write_all(stdin);
    drop(input);
    child.wait_with_output().unwrap()
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A deployment provisioned by the binary for a broker on 127.0.0.1.
pub struct Deployment {
    pub dir: PathBuf,
    pub port: u16,
}

impl Deployment {
    /// `mqseal provision mosquitto` into `dir` with the given clients, on a
    /// free port bound to 127.0.0.1, and `--user root` (as root, mosquitto
    /// would otherwise switch to the user `mosquitto`, who cannot read the
    /// 0600 keys written by root).
    pub fn provision(dir: &Path, extra: &[&str]) -> Deployment {
        Deployment::provision_as(dir, extra, Some("root"))
    }

    /// [`Deployment::provision`] with `--user user`, or without `--user`
    /// (mosquitto started as root then runs as the user `mosquitto`).
    pub fn provision_as(dir: &Path, extra: &[&str], user: Option<&str>) -> Deployment {
        let port = free_port();
        let port_s = port.to_string();
        let dir_s = dir.display().to_string();
        let mut args = vec![
            "provision",
            "mosquitto",
            "--out",
            &dir_s,
            "--server-name",
            "localhost",
            "--server-ip",
            "127.0.0.1",
            "--port",
            &port_s,
            "--bind",
            "127.0.0.1",
        ];
        if let Some(user) = user {
            args.extend(["--user", user]);
        }
        args.extend_from_slice(extra);
        let out = run(&args, b"");
        assert!(
            out.status.success(),
            "provision failed: {}",
            text(&out.stderr)
        );
        Deployment {
            dir: dir.to_path_buf(),
            port,
        }
    }

    pub fn path(&self, rel: &str) -> String {
        self.dir.join(rel).display().to_string()
    }

    pub fn password(&self, client: &str) -> String {
        std::fs::read_to_string(self.dir.join(format!("clients/{client}.password")))
            .unwrap()
            .trim()
            .to_string()
    }

    /// Connection arguments for `mosquitto_pub`/`mosquitto_sub`: the CA,
    /// `client`'s certificate and key (unless `None`), and `-u`/`-P`.
    pub fn client_args(&self, cert: Option<&str>, user: Option<(&str, &str)>) -> Vec<String> {
        let mut a = vec![
            "-h".to_string(),
            "localhost".into(),
            "-p".into(),
            self.port.to_string(),
            "--cafile".into(),
            self.path("ca.crt"),
        ];
        if let Some(c) = cert {
            a.extend([
                "--cert".into(),
                self.path(&format!("clients/{c}.crt")),
                "--key".into(),
                self.path(&format!("clients/{c}.key")),
            ]);
        }
        if let Some((u, p)) = user {
            a.extend(["-u".into(), u.into(), "-P".into(), p.into()]);
        }
        a
    }

    /// The usual arguments of `client`: its certificate, name and password.
    pub fn as_client(&self, client: &str) -> Vec<String> {
        self.client_args(Some(client), Some((client, &self.password(client))))
    }

    pub fn start(&self) -> Mosquitto {
        Mosquitto::start(&self.dir.join("mosquitto.conf"), self.port)
    }
}

/// A `mosquitto` process; killed on drop.
pub struct Mosquitto {
    child: Option<Child>,
    log: PathBuf,
}

impl Mosquitto {
    /// Starts `mosquitto -c conf -v` and waits until `port` accepts connections
    /// and the broker says it is running. Mosquitto 2.0 listens before it
    /// loads its certificates and installs its signal handlers: a SIGHUP in
    /// between would end it.
    pub fn start(conf: &Path, port: u16) -> Mosquitto {
        let log = conf.with_extension("log");
        let log_file = std::fs::File::create(&log).unwrap();
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(conf)
            .arg("-v")
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("mosquitto is installed (Debian package `mosquitto`)");
        let mut m = Mosquitto {
            child: Some(child),
            log,
        };
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_err() {
            if let Some(status) = m.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("mosquitto exited with {status}; log:\n{}", m.log());
            }
            assert!(
                Instant::now() < deadline,
                "mosquitto did not listen on {port}; log:\n{}",
                m.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        while !m.log().contains(" running") {
            if let Some(status) = m.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("mosquitto exited with {status}; log:\n{}", m.log());
            }
            assert!(
                Instant::now() < deadline,
                "mosquitto did not say it is running; log:\n{}",
                m.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        m
    }

    /// Asks the broker to reload its password file and ACL (SIGHUP).
    pub fn reload(&self) {
        let pid = self.child.as_ref().unwrap().id().to_string();
        assert!(
            Command::new("kill")
                .args(["-HUP", &pid])
                .status()
                .unwrap()
                .success()
        );
    }

    /// [`Mosquitto::reload`], and waits until the broker has reloaded (its
    /// log says so): a connection made afterwards meets the new files.
    pub fn reload_and_wait(&self) {
        let count = || self.log().matches("Reloading config.").count();
        let before = count();
        self.reload();
        let deadline = Instant::now() + Duration::from_secs(10);
        let pid = self.child.as_ref().unwrap().id().to_string();
        while count() == before {
            // Exited (a zombie until dropped) or gone.
            let alive = std::fs::read_to_string(format!("/proc/{pid}/status")).is_ok_and(|st| {
                !st.lines()
                    .any(|l| l.starts_with("State:") && l.contains('Z'))
            });
            assert!(
                alive,
                "mosquitto exited on the reload; log:\n{}",
                self.log()
            );
            assert!(
                Instant::now() < deadline,
                "mosquitto did not reload; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Publishes one message with `mosquitto_pub` at QoS 1 (the broker has handled
/// it when this returns); the exit status and standard error.
pub fn publish(args: &[String], topic: &str, message: &str) -> (bool, String) {
    let out = Command::new("mosquitto_pub")
        .args(args)
        .args(["-q", "1", "-t", topic, "-m", message])
        .stdin(Stdio::null())
        .output()
        .expect("mosquitto_pub is installed (Debian package `mosquitto-clients`)");
    (out.status.success(), text(&out.stderr))
}

/// A `mosquitto_sub -v` process whose output lines arrive on a channel; killed on drop.
pub struct Subscriber {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Subscriber {
    pub fn start(args: &[String], filters: &[&str]) -> Subscriber {
        let mut cmd = Command::new("mosquitto_sub");
        cmd.args(args).arg("-v");
        for f in filters {
            cmd.args(["-t", f]);
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto_sub is installed (Debian package `mosquitto-clients`)");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Subscriber { child, lines }
    }

    /// Waits until the subscription is in place: publishes probes on
    /// `probe_topic` (with `publisher`) until one arrives.
    pub fn wait_ready(&self, publisher: &[String], probe_topic: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (ok, err) = publish(publisher, probe_topic, "probe");
            assert!(ok, "probe publish failed: {err}");
            if let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200)) {
                assert!(line.starts_with(probe_topic), "unexpected {line}");
                return;
            }
            assert!(Instant::now() < deadline, "subscriber never became ready");
        }
    }

    /// The next line that is not a probe on `probe_topic`, within 5 s.
    pub fn next_except(&self, probe_topic: &str) -> Option<String> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.lines.recv_timeout(left).ok()?;
            if !line.starts_with(&format!("{probe_topic} ")) {
                return Some(line);
            }
        }
    }

    /// Whether the process has exited (refused or disconnected).
    pub fn exited_within(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.child.try_wait().unwrap().is_some() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `mqseal args` and renders the command, its exit status and output;
/// `dir` (if any) is shown as `<DIR>`.
pub fn transcript(args: &[&str], dir: Option<&Path>) -> String {
    transcript_with(args, None, dir)
}

/// [`transcript`] with standard input (`label` names it on the command line:
/// `$ mqseal ... < label`).
pub fn transcript_with(args: &[&str], stdin: Option<(&str, &[u8])>, dir: Option<&Path>) -> String {
    let out = run(args, stdin.map_or(&b""[..], |(_, b)| b));
    let mut command = format!("$ mqseal {}", args.join(" "));
    if let Some((label, _)) = stdin {
        command.push_str(&format!(" < {label}"));
    }
    let mut s = format!(
        "{}\nexit status: {}\n",
        command.trim_end(),
        out.status.code().unwrap()
    );
    for (name, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        if !bytes.is_empty() {
            s.push_str(&format!("--- {name}\n{}", String::from_utf8_lossy(bytes)));
        }
    }
    match dir {
        Some(d) => s.replace(&d.display().to_string(), "<DIR>"),
        None => s,
    }
}

/// Replaces every ISO-8601 UTC time (`2026-11-23T15:53:23Z`, with optional
/// milliseconds) by `<TIME>`.
pub fn without_times(s: &str) -> String {
    let b = s.as_bytes();
    let shape = b"dddd-dd-ddTdd:dd:dd";
    let mut out = String::new();
    let mut i = 0;
    while i < b.len() {
        let fits = b.len() - i >= shape.len()
            && shape.iter().zip(&b[i..]).all(|(p, c)| match p {
                b'd' => c.is_ascii_digit(),
                p => p == c,
            });
        if fits {
            let mut j = i + shape.len();
            if b.get(j) == Some(&b'.') {
                j += 1;
                while b.get(j).is_some_and(u8::is_ascii_digit) {
                    j += 1;
                }
            }
            if b.get(j) == Some(&b'Z') {
                out.push_str("<TIME>");
                i = j + 1;
                continue;
            }
        }
        let ch = s[i..].chars().next().unwrap();
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

/// Compares `actual` with `tests/golden/<name>.txt`, or rewrites the file with
/// `MQSEAL_UPDATE_GOLDEN=1`.
pub fn check(name: &str, actual: &str) {
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

/// Runs `mqseal args` and asserts success; its standard output.
pub fn ok(args: &[&str]) -> String {
    ok_with(args, b"")
}

/// [`ok`] with standard input; raw standard output.
pub fn ok_bytes(args: &[&str], stdin: &[u8]) -> Vec<u8> {
    let out = run(args, stdin);
    assert!(
        out.status.success(),
        "mqseal {} failed: {}",
        args.join(" "),
        text(&out.stderr)
    );
    out.stdout
}

/// [`ok`] with standard input.
pub fn ok_with(args: &[&str], stdin: &[u8]) -> String {
    text(&ok_bytes(args, stdin))
}

/// Runs `mqseal args` and asserts failure with status 1; its standard error.
pub fn fails(args: &[&str], stdin: &[u8]) -> String {
    let out = run(args, stdin);
    assert_eq!(
        out.status.code(),
        Some(1),
        "mqseal {} should fail: {} {}",
        args.join(" "),
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stderr)
}

/// A path in `dir` as a string.
pub fn p(dir: &Path, name: &str) -> String {
    dir.join(name).display().to_string()
}

/// The `label value` lines of an inspect output.
pub fn fields(out: &str) -> std::collections::BTreeMap<String, String> {
    out.lines()
        .filter(|l| l.len() > 11 && !l.starts_with(' '))
        .map(|l| {
            let (k, v) = l.split_at(11);
            (k.trim().to_string(), v.trim_start().to_string())
        })
        .collect()
}

/// Writes `bytes` to a new file.
pub fn write_file(path: &Path, bytes: &[u8]) {
    std::fs::File::create(path)
        .and_then(|mut f| f.write_all(bytes))
        .unwrap();
}

/// A `mqseal sub` process: its standard output and error lines arrive on
/// channels; killed on drop.
pub struct SealedSub {
    child: Child,
    pub out: mpsc::Receiver<String>,
    pub err: mpsc::Receiver<String>,
}

fn lines_of(r: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

impl SealedSub {
    /// Starts `mqseal sub args` and waits until the broker granted `filters`
    /// subscriptions (`subscribed to ...` on standard error).
    pub fn start(args: &[String], filters: usize) -> SealedSub {
        let mut child = mqseal()
            .arg("sub")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = lines_of(child.stdout.take().unwrap());
        let err = lines_of(child.stderr.take().unwrap());
        let s = SealedSub { child, out, err };
        for _ in 0..filters {
            let line = s
                .err
                .recv_timeout(Duration::from_secs(10))
                .expect("mqseal sub never subscribed");
            assert!(line.starts_with("subscribed to "), "{line}");
        }
        s
    }

    /// The next line on standard error, within 5 s.
    pub fn next_err(&self) -> Option<String> {
        self.err.recv_timeout(Duration::from_secs(5)).ok()
    }

    /// Waits for the process to exit (within 10 s); its exit code, and the
    /// standard output lines.
    pub fn finish(mut self) -> (Option<i32>, Vec<String>) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(Instant::now() < deadline, "mqseal sub did not exit");
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut lines = Vec::new();
        while let Ok(l) = self.out.recv_timeout(Duration::from_millis(500)) {
            lines.push(l);
        }
        (status.code(), lines)
    }
}

impl Drop for SealedSub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Deployment {
    /// Connection arguments for `mqseal pub`/`mqseal sub` as `client`
    /// (`--auth cert`: the certificate alone).
    pub fn mqseal_client(&self, client: &str) -> Vec<String> {
        self.client_args(Some(client), None)
    }
}
