//! Test infrastructure: a private PKI made with rcgen, real `mosquitto`
//! processes on free loopback ports (stopped on drop, even when a test
//! fails), and secure clients driven on tokio tasks.
#![allow(dead_code, unreachable_pub)]

use std::fs;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mqseal::*;
use mqseal_rumqttc::rumqttc;
use mqseal_rumqttc::{MqttOptions, QoS, SecureAsyncClient, SecureEvent, tls};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use tokio::sync::mpsc;

pub const SECRET: [u8; 32] = [0x5a; 32];

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A CA and the certificates it issued, as PEM files in a directory.
pub struct Pki {
    pub dir: PathBuf,
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Pki {
    /// A new CA named `name` with a server certificate for 127.0.0.1 and localhost.
    pub fn new(dir: &Path, name: &str) -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, format!("{name} CA"));
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        fs::write(dir.join(format!("{name}-ca.crt")), issuer.pem()).unwrap();
        let pki = Pki {
            dir: dir.to_path_buf(),
            issuer,
        };
        pki.issue(&format!("{name}-server"), &["127.0.0.1", "localhost"]);
        pki
    }

    /// Issues a certificate with common name `cn` (and the given SANs); writes
    /// `<cn>.crt` and `<cn>.key`.
    pub fn issue(&self, cn: &str, sans: &[&str]) {
        let mut params =
            CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        fs::write(self.dir.join(format!("{cn}.crt")), cert.pem()).unwrap();
        fs::write(self.dir.join(format!("{cn}.key")), key.serialize_pem()).unwrap();
    }

    pub fn path(&self, file: &str) -> String {
        self.dir.join(file).display().to_string()
    }

    pub fn read(&self, file: &str) -> Vec<u8> {
        fs::read(self.dir.join(file)).unwrap()
    }
}

/// A `mosquitto` process with its own config; killed on drop.
pub struct Mosquitto {
    child: Option<Child>,
    conf: PathBuf,
    ports: Vec<u16>,
    log: PathBuf,
}

impl Mosquitto {
    /// Writes `config` to `<dir>/<name>.conf`, starts mosquitto and waits until
    /// every port in `ports` accepts connections.
    pub fn start(dir: &Path, name: &str, config: &str, ports: &[u16]) -> Mosquitto {
        let conf = dir.join(format!("{name}.conf"));
        let log = dir.join(format!("{name}.log"));
        // Running as root, mosquitto drops to user `mosquitto` unless told otherwise.
        fs::write(
            &conf,
            format!(
                "user root\nlog_dest file {}\nlog_type all\n{config}",
                log.display()
            ),
        )
        .unwrap();
        let mut m = Mosquitto {
            child: None,
            conf,
            ports: ports.to_vec(),
            log,
        };
        m.spawn();
        m
    }

    fn spawn(&mut self) {
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(&self.conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto is installed (Debian package `mosquitto`)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        for &port in &self.ports {
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            while TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_err() {
                if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().unwrap()) {
                    panic!("mosquitto exited with {status}; log:\n{}", self.log());
                }
                assert!(
                    Instant::now() < deadline,
                    "mosquitto did not listen on {port}; log:\n{}",
                    self.log()
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// Stops the broker with SIGTERM (it saves its persistence file) and waits.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while child.try_wait().unwrap().is_none() {
                if Instant::now() > deadline {
                    let _ = child.kill();
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.wait();
        }
    }

    /// Starts the stopped broker again with the same config and ports.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
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

/// The policy of the integration tests.
pub fn policy() -> Policy {
    Policy::builder()
        .rule("chats/+/messages", Protection::encrypt(Aead::Aes256Gcm))
        .unwrap()
        .rule("sensors/#", Protection::encrypt(Aead::ChaCha20Poly1305))
        .unwrap()
        .rule("control/#", Protection::encrypt(Aead::Aes256Gcm).sign())
        .unwrap()
        .build()
}

pub fn signing_key() -> SigningKey {
    SigningKey::from_seed([0x11; 32])
}

/// An endpoint with sender id `id`, the test secret, the shared signing key
/// trusted for sender `station`.
pub fn endpoint(id: &str) -> Endpoint {
    let provider = crypto::default_provider();
    let mut trust = TrustStore::new();
    trust.insert(
        SenderId::new(b"station").unwrap(),
        signing_key().public_key(provider),
    );
    Endpoint::builder(policy())
        .sender_id(SenderId::new(id.as_bytes()).unwrap())
        .keyring(Keyring::new(1, GroupSecret::from_bytes(SECRET)))
        .signing_key(signing_key())
        .trust(trust)
        .counter_store(MemoryCounterStore::new())
        .build()
        .unwrap()
}

pub fn options(client_id: &str, port: u16) -> MqttOptions {
    let mut o = MqttOptions::new(client_id, "127.0.0.1", port);
    o.set_keep_alive(Duration::from_secs(5));
    o
}

pub fn tls_options(
    client_id: &str,
    port: u16,
    pki: &Pki,
    ca: &str,
    cert: Option<&str>,
) -> MqttOptions {
    let mut o = options(client_id, port);
    let ca = pki.read(ca);
    let pair = cert.map(|c| (pki.read(&format!("{c}.crt")), pki.read(&format!("{c}.key"))));
    let client = pair.as_ref().map(|(c, k)| (&c[..], &k[..]));
    o.set_transport(tls::transport(&ca, client).unwrap());
    o
}

/// A secure client whose event loop runs on a task, forwarding secure events.
pub struct Peer {
    pub client: SecureAsyncClient,
    pub events: mpsc::UnboundedReceiver<SecureEvent>,
    pub connected: mpsc::UnboundedReceiver<()>,
}

pub fn peer(options: MqttOptions, endpoint: Endpoint) -> Peer {
    let (client, mut eventloop) =
        SecureAsyncClient::new(options, 100, endpoint).expect("secure client");
    let (tx, events) = mpsc::unbounded_channel();
    let (ctx, connected) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            match eventloop.poll().await {
                Ok(SecureEvent::Mqtt(mqseal_rumqttc::Event::Incoming(
                    mqseal_rumqttc::Packet::ConnAck(_),
                ))) => {
                    let _ = ctx.send(());
                }
                // The client disconnected on purpose: stop, instead of
                // reconnecting and taking the session from its successor.
                Ok(SecureEvent::Mqtt(mqseal_rumqttc::Event::Outgoing(
                    rumqttc::Outgoing::Disconnect,
                ))) => return,
                Ok(SecureEvent::Mqtt(_)) => {}
                Ok(e) => {
                    if tx.send(e).is_err() {
                        return;
                    }
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    });
    Peer {
        client,
        events,
        connected,
    }
}

impl Peer {
    pub async fn wait_connected(&mut self) {
        tokio::time::timeout(Duration::from_secs(10), self.connected.recv())
            .await
            .expect("connected within 10 s");
    }

    /// The next secure event, within `secs` seconds.
    pub async fn next(&mut self, secs: u64) -> Option<SecureEvent> {
        tokio::time::timeout(Duration::from_secs(secs), self.events.recv())
            .await
            .ok()
            .flatten()
    }

    pub async fn subscribe(&mut self, filter: &str, qos: QoS) {
        self.client.subscribe(filter, qos).await.unwrap();
        // Let the SUBACK arrive before anything is published.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// A raw rumqttc client (no mqseal), collecting received payloads on a task.
pub fn raw(
    options: MqttOptions,
) -> (
    rumqttc::AsyncClient,
    mpsc::UnboundedReceiver<rumqttc::Publish>,
    mpsc::UnboundedReceiver<bool>,
) {
    let (client, mut eventloop) = rumqttc::AsyncClient::new(options, 100);
    let (tx, rx) = mpsc::unbounded_channel();
    let (ctx, crx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            match eventloop.poll().await {
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p))) => {
                    let _ = tx.send(p);
                }
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_))) => {
                    let _ = ctx.send(true);
                }
                Ok(_) => {}
                Err(_) => {
                    let _ = ctx.send(false);
                    tokio::time::sleep(Duration::from_millis(200)).await
                }
            }
        }
    });
    (client, rx, crx)
}

/// Creates a Mosquitto password file with `mosquitto_passwd`.
pub fn password_file(path: &Path, users: &[(&str, &str)]) {
    fs::write(path, "").unwrap();
    for (u, p) in users {
        let ok = Command::new("mosquitto_passwd")
            .arg("-b")
            .arg(path)
            .arg(u)
            .arg(p)
            .status()
            .unwrap()
            .success();
        assert!(ok, "mosquitto_passwd failed");
    }
}
