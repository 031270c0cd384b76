//! An embedded MQTT broker for mqseal's examples and tests.
//!
//! [`EmbeddedBroker::start`] runs `rumqttd` in this process on a free loopback
//! port and returns once the port accepts connections. The broker is plain
//! MQTT 3.1.1 without TLS or authentication: it is for demonstrations and
//! tests on `127.0.0.1`, never for a network.
//!
//! ```no_run
//! let broker = mqseal_broker::EmbeddedBroker::start().unwrap();
//! println!("broker on 127.0.0.1:{}", broker.port());
//! ```

use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use rumqttd::{Broker, Config, ConnectionSettings, RouterConfig, ServerSettings};

/// A running in-process broker.
///
/// rumqttd offers no way to stop its threads, so the broker runs until the
/// process exits. Each call to [`EmbeddedBroker::start`] starts a new one on
/// its own port.
#[derive(Debug)]
pub struct EmbeddedBroker {
    addr: SocketAddr,
}

/// The largest payload the embedded broker accepts.
pub const MAX_PAYLOAD: usize = 1024 * 1024;

impl EmbeddedBroker {
    /// Starts a broker on a free port of 127.0.0.1 and waits until it accepts
    /// connections (at most 10 s).
    pub fn start() -> io::Result<Self> {
        // Ask the OS for a free port, then hand it to rumqttd.
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let server = ServerSettings {
            name: format!("mqseal-embedded-{port}"),
            listen: addr,
            tls: None,
            next_connection_delay_ms: 1,
            connections: ConnectionSettings {
                connection_timeout_ms: 60_000,
                max_payload_size: MAX_PAYLOAD,
                max_inflight_count: 500,
                auth: None,
                external_auth: None,
                dynamic_filters: true,
            },
        };
        let config = Config {
            id: 0,
            router: RouterConfig {
                max_connections: 10_010,
                max_outgoing_packet_count: 200,
                max_segment_size: 100 * 1024 * 1024,
                max_segment_count: 10,
                ..RouterConfig::default()
            },
            v4: Some(HashMap::from([("1".to_owned(), server)])),
            v5: None,
            ws: None,
            cluster: None,
            console: None,
            bridge: None,
            prometheus: None,
            metrics: None,
        };
        let mut broker = Broker::new(config);
        thread::Builder::new()
            .name(format!("rumqttd-{port}"))
            .spawn(move || {
                if let Err(e) = broker.start() {
                    eprintln!("embedded broker on port {port} stopped: {e}");
                }
            })?;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
                Ok(_) => return Ok(EmbeddedBroker { addr }),
                Err(e) if Instant::now() > deadline => {
                    return Err(io::Error::new(
                        e.kind(),
                        format!("embedded broker did not start on {addr}: {e}"),
                    ));
                }
                Err(_) => thread::sleep(Duration::from_millis(20)),
            }
        }
    }

    /// The port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}
