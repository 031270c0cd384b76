//! `mqseal pub` and `mqseal sub`: the sealed counterparts of mosquitto_pub
//! and mosquitto_sub, on tokio and [`mqseal_rumqttc`].

use std::collections::VecDeque;
use std::io::{BufRead, Read, Write};
use std::time::Duration;

use mqseal_rumqttc::rumqttc::{ConnectReturnCode, Outgoing, SubscribeReasonCode};
use mqseal_rumqttc::{
    ConnectionError, Event, MqttOptions, Packet, QoS, SecureAsyncClient, SecureEvent,
    SecureEventLoop, tls,
};
use tokio::sync::mpsc;

use crate::cli::{ConnArgs, PubArgs, SubArgs};
use crate::keyfiles::{save_keyring, save_trust};
use crate::secure::{self, Role, explain_rejection, seal_error};
use crate::util::note;

fn qos(q: u8) -> QoS {
    match q {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        _ => QoS::ExactlyOnce,
    }
}

fn read_file(path: &std::path::Path, what: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read the {what} {}: {e}", path.display()))
}

/// The MQTT options of `conn`: TLS with --cafile, credentials, client id.
fn options(conn: &ConnArgs, role: &str) -> Result<(MqttOptions, String), String> {
    let port = conn
        .port
        .unwrap_or(if conn.cafile.is_some() { 8883 } else { 1883 });
    let id = conn
        .client_id
        .clone()
        .unwrap_or_else(|| format!("mqseal-{role}-{}", std::process::id()));
    let mut o = MqttOptions::new(id, conn.host.clone(), port);
    o.set_keep_alive(Duration::from_secs(30));
    o.set_clean_session(true);
    if let Some(ca) = &conn.cafile {
        let ca_pem = read_file(ca, "CA certificate")?;
        let client = match (&conn.cert, &conn.key) {
            (Some(c), Some(k)) => Some((
                read_file(c, "client certificate")?,
                read_file(k, "client key")?,
            )),
            _ => None,
        };
        let transport = tls::transport(
            &ca_pem,
            client.as_ref().map(|(c, k)| (c.as_slice(), k.as_slice())),
        )
        .map_err(|e| format!("cannot set up TLS: {e} (check --cafile, --cert and --key)"))?;
        o.set_transport(transport);
    }
    if let Some(u) = &conn.username {
        o.set_credentials(u.clone(), conn.password.clone().unwrap_or_default());
    }
    let at = format!("{}:{port}", conn.host);
    Ok((o, at))
}

/// A connection error, with a hint.
fn connection_error(e: &ConnectionError, at: &str, tls: bool) -> String {
    match e {
        ConnectionError::ConnectionRefused(code) => {
            let why = match code {
                ConnectReturnCode::BadUserNamePassword => {
                    "bad username or password: check -u and -P"
                }
                ConnectReturnCode::NotAuthorized => {
                    "not authorized: check -u and -P, or the client certificate"
                }
                ConnectReturnCode::BadClientId => "the client id was refused: check -i",
                ConnectReturnCode::ServiceUnavailable => "the broker is unavailable",
                ConnectReturnCode::RefusedProtocolVersion => "it does not speak MQTT 3.1.1",
                ConnectReturnCode::Success => "",
            };
            format!("the broker at {at} refused the connection: {why}")
        }
        ConnectionError::Tls(t) => format!(
            "TLS with {at} failed: {t}; check that --cafile is the CA of the broker's \
             certificate and that -h is a name in it"
        ),
        ConnectionError::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            format!("cannot connect to {at}: connection refused; is the broker running there?")
        }
        e if tls && e.to_string().contains("CertificateRequired") => format!(
            "the broker at {at} requires a client certificate: add --cert and --key (the \
             client's certificate and key, signed by the broker's CA)"
        ),
        e if tls && e.to_string().contains("alert") => format!(
            "the broker at {at} refused the TLS handshake ({e}): check --cert and --key, a \
             certificate signed by the broker's CA"
        ),
        ConnectionError::Io(io) if tls => format!(
            "the connection to {at} failed: {io}; a broker that requires a client certificate \
             closes the connection without one: check --cert and --key"
        ),
        e => format!("the connection to {at} failed: {e}"),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
}

/// Where `pub` takes its messages from: sent one by one on a channel, so
/// that `-l` streams.
fn messages(args: &PubArgs) -> Result<mpsc::Receiver<Vec<u8>>, String> {
    let (tx, rx) = mpsc::channel(64);
    let single = if let Some(m) = &args.message {
        Some(m.clone().into_bytes())
    } else if let Some(f) = &args.file {
        Some(read_file(f, "message file")?)
    } else if args.null_message {
        Some(Vec::new())
    } else if args.stdin_file {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .map_err(|e| format!("cannot read standard input: {e}"))?;
        Some(buf)
    } else {
        None
    };
    match single {
        Some(m) => tx.try_send(m).map_err(|e| e.to_string())?,
        // -l: one message per line, as the lines arrive.
        None => {
            std::thread::spawn(move || {
                for line in std::io::stdin().lock().split(b'\n') {
                    let Ok(mut line) = line else { return };
                    if line.last() == Some(&b'\r') {
                        line.pop();
                    }
                    if tx.blocking_send(line).is_err() {
                        return;
                    }
                }
            });
        }
    }
    Ok(rx)
}

/// `mqseal pub`.
pub fn publish(args: &PubArgs) -> Result<(), String> {
    let policy = secure::policy(std::slice::from_ref(&args.topic), &args.protect)?;
    mqseal::policy::validate_topic(&args.topic).map_err(|e| e.to_string())?;
    let built = secure::build(policy, args.protect.protect, &args.keys, Role::Seal, |b| b)?;
    let keyring = built.keyring.clone();
    let (options, at) = options(&args.conn, "pub")?;
    let tls = args.conn.cafile.is_some();
    let mut source = messages(args)?;
    let rt = runtime()?;
    let result = rt.block_on(async {
        let (client, mut events) =
            SecureAsyncClient::new(options, 64, built.endpoint).map_err(|e| e.to_string())?;
        let result = pub_loop(
            args,
            &client,
            &mut events,
            &mut source,
            &at,
            tls,
            keyring.as_deref(),
        )
        .await;
        // Record the exact next counter, whatever happened.
        let flushed = client.with_endpoint(|e| e.flush());
        match (result, flushed) {
            (Err(e), _) => Err(e),
            (Ok(n), Err(e)) => Err(format!("published {n}, but cannot record the counter: {e}")),
            (Ok(_), Ok(())) => Ok(()),
        }
    });
    drop(built.lock);
    result
}

async fn pub_loop(
    args: &PubArgs,
    client: &SecureAsyncClient,
    events: &mut SecureEventLoop,
    source: &mut mpsc::Receiver<Vec<u8>>,
    at: &str,
    tls: bool,
    keyring: Option<&std::path::Path>,
) -> Result<u64, String> {
    let q = qos(args.conn.qos);
    let mut connected = false;
    let mut sent = 0u64; // sealed and handed to the client
    let mut done = 0u64; // written (QoS 0) or acknowledged
    let mut source_open = true;
    let mut disconnecting = false;
    loop {
        if connected && !source_open && done == sent && !disconnecting {
            client
                .disconnect()
                .await
                .map_err(|e| format!("cannot disconnect: {e}"))?;
            disconnecting = true;
        }
        tokio::select! {
            m = source.recv(), if connected && source_open && sent - done < 32 => match m {
                Some(payload) => {
                    client
                        .publish(args.topic.clone(), q, args.retain, payload)
                        .await
                        .map_err(|e| seal_error(&e, keyring))?;
                    sent += 1;
                }
                None => source_open = false,
            },
            ev = events.poll() => match ev {
                Ok(SecureEvent::Mqtt(Event::Incoming(Packet::ConnAck(_)))) => {
                    connected = true;
                }
                Ok(SecureEvent::Mqtt(Event::Outgoing(Outgoing::Publish(_)))) if q == QoS::AtMostOnce => {
                    done += 1;
                }
                Ok(SecureEvent::Mqtt(Event::Incoming(Packet::PubAck(_)))) if q == QoS::AtLeastOnce => {
                    done += 1;
                }
                Ok(SecureEvent::Mqtt(Event::Incoming(Packet::PubComp(_)))) if q == QoS::ExactlyOnce => {
                    done += 1;
                }
                Ok(SecureEvent::Mqtt(Event::Outgoing(Outgoing::Disconnect))) => return Ok(done),
                Ok(_) => {}
                Err(_) if disconnecting => return Ok(done),
                Err(e) => {
                    let msg = connection_error(&e, at, tls);
                    return Err(if sent > done {
                        format!("{msg} ({} of {sent} messages not confirmed)", sent - done)
                    } else {
                        msg
                    });
                }
            },
        }
    }
}

/// Prints a verified message as mosquitto_sub does.
fn print_message(verbose: bool, topic: &str, payload: &[u8]) -> Result<(), String> {
    let mut out = std::io::stdout().lock();
    let r = (|| {
        if verbose {
            out.write_all(topic.as_bytes())?;
            out.write_all(b" ")?;
        }
        out.write_all(payload)?;
        out.write_all(b"\n")?;
        out.flush()
    })();
    r.map_err(|e| format!("cannot write to standard output: {e}"))
}

/// `mqseal sub`.
pub fn subscribe(args: &SubArgs) -> Result<(), String> {
    for f in &args.topics {
        mqseal::policy::validate_filter(f).map_err(|e| e.to_string())?;
    }
    let policy = secure::policy(&args.topics, &args.protect)?;
    let built = secure::build(
        policy,
        args.protect.protect,
        &args.keys,
        Role::Subscribe,
        |b| match &args.rekey_topic {
            Some(t) => b.rekey_topic(t),
            None => b,
        },
    )?;
    let (options, at) = options(&args.conn, "sub")?;
    let tls = args.conn.cafile.is_some();
    let rt = runtime()?;
    rt.block_on(async {
        let cap = args.topics.len() + 16;
        let (client, mut events) =
            SecureAsyncClient::new(options, cap, built.endpoint).map_err(|e| e.to_string())?;
        let r = sub_loop(args, &client, &mut events, &at, tls).await;
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            if client.disconnect().await.is_ok() {
                while let Ok(ev) = events.poll().await {
                    if matches!(ev, SecureEvent::Mqtt(Event::Outgoing(Outgoing::Disconnect))) {
                        break;
                    }
                }
            }
        })
        .await;
        r
    })
}

async fn sub_loop(
    args: &SubArgs,
    client: &SecureAsyncClient,
    events: &mut SecureEventLoop,
    at: &str,
    tls: bool,
) -> Result<(), String> {
    let q = qos(args.conn.qos);
    let mut filters: Vec<String> = args.topics.clone();
    if let Some(t) = &args.rekey_topic {
        filters.push(t.clone());
    }
    let deadline = args
        .timeout
        .map(|s| tokio::time::Instant::now() + Duration::from_secs(s));
    let mut pending: VecDeque<String> = VecDeque::new();
    let mut received = 0u64;
    let mut ever_connected = false;
    if args.count == Some(0) {
        return Ok(());
    }
    loop {
        let ev = match deadline {
            Some(d) => match tokio::time::timeout_at(d, events.poll()).await {
                Ok(ev) => ev,
                Err(_) => {
                    return match args.count {
                        Some(c) => Err(format!(
                            "timed out after {} s with {received} of {c} messages",
                            args.timeout.unwrap_or(0)
                        )),
                        None => Ok(()),
                    };
                }
            },
            None => events.poll().await,
        };
        match ev {
            Ok(SecureEvent::Mqtt(Event::Incoming(Packet::ConnAck(ack)))) => {
                ever_connected = true;
                if !ack.session_present {
                    for f in &filters {
                        client
                            .subscribe(f.clone(), q)
                            .await
                            .map_err(|e| format!("cannot subscribe to {f}: {e}"))?;
                        pending.push_back(f.clone());
                    }
                }
            }
            Ok(SecureEvent::Mqtt(Event::Incoming(Packet::SubAck(ack)))) => {
                for code in ack.return_codes {
                    let f = pending.pop_front().unwrap_or_default();
                    match code {
                        SubscribeReasonCode::Success(g) => {
                            note(&format!("subscribed to {f} (QoS {})", g as u8));
                        }
                        SubscribeReasonCode::Failure => {
                            return Err(format!("the broker refused the subscription to {f}"));
                        }
                    }
                }
            }
            Ok(SecureEvent::Message(m)) => {
                print_message(args.verbose, &m.topic, &m.payload)?;
                received += 1;
                if args.count.is_some_and(|c| received >= c) {
                    return Ok(());
                }
            }
            Ok(SecureEvent::Rejected(r)) => {
                let rekey = args.rekey_topic.as_deref() == Some(r.topic.as_str());
                match r.error.rejection() {
                    Some(rej) => {
                        let (head, _) = explain_rejection(rej, args.protect.max_age);
                        let what = if rekey { "rekey message " } else { "" };
                        note(&format!("rejected {what}on {} {head}", r.topic));
                    }
                    None => note(&format!("rejected on {}: {}", r.topic, r.error)),
                }
            }
            Ok(SecureEvent::Rekeyed(applied)) => {
                client.with_endpoint(|e| -> Result<(), String> {
                    if let Some(k) = &args.keys.keyring {
                        save_keyring(k, e.keyring())?;
                    }
                    if let Some(t) = &args.keys.trust {
                        save_trust(t, e.trust_store())?;
                    }
                    Ok(())
                })?;
                let removed: Vec<String> =
                    applied.removed.iter().map(ToString::to_string).collect();
                note(&format!(
                    "rekeyed: epoch {} is active{}{}",
                    applied.epoch,
                    if removed.is_empty() {
                        ""
                    } else {
                        "; removed: "
                    },
                    removed.join(", ")
                ));
            }
            Ok(SecureEvent::Duplicate { topic }) if args.rekey_topic.as_deref() == Some(&topic) => {
                note(&format!(
                    "rekey message on {topic}: already applied (not newer than the keyring)"
                ));
            }
            Ok(_) => {}
            Err(e) if !ever_connected => return Err(connection_error(&e, at, tls)),
            Err(e) => {
                note(&format!("{}; reconnecting", connection_error(&e, at, tls)));
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}
