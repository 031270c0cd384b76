//! Arguments of `mqseal pub` and `mqseal sub`, which take mosquitto_pub's and
//! mosquitto_sub's flags (so `-h` is the host, and help is `--help`).

use std::path::PathBuf;

use clap::{ArgAction, ArgGroup, Args};

use super::secure::{KeyArgs, ProtectArgs};

/// How to reach and log in to the broker, as mosquitto_pub/mosquitto_sub.
#[derive(Debug, Args, Clone)]
pub struct ConnArgs {
    /// The broker's host name or address (must match its certificate with TLS)
    #[arg(
        short = 'h',
        long = "host",
        value_name = "HOST",
        default_value = "localhost"
    )]
    pub host: String,
    /// The broker's port [default: 8883 with --cafile, 1883 without]
    #[arg(short = 'p', long = "port", value_name = "PORT")]
    pub port: Option<u16>,
    /// The CA certificate (PEM) that signed the broker's: connects with TLS
    #[arg(long, value_name = "FILE")]
    pub cafile: Option<PathBuf>,
    /// This client's certificate (PEM), for brokers that require one
    #[arg(long, value_name = "FILE", requires = "key", requires = "cafile")]
    pub cert: Option<PathBuf>,
    /// This client's private key (PEM)
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,
    /// The MQTT username
    #[arg(short = 'u', long = "username", value_name = "USER")]
    pub username: Option<String>,
    /// The MQTT password
    #[arg(
        short = 'P',
        long = "pw",
        value_name = "PASSWORD",
        requires = "username"
    )]
    pub password: Option<String>,
    /// The MQTT client id [default: mqseal-pub-PID or mqseal-sub-PID]
    #[arg(short = 'i', long = "id", value_name = "CLIENTID")]
    pub client_id: Option<String>,
    /// Quality of service: 0, 1 or 2
    #[arg(short = 'q', long = "qos", value_name = "QOS", default_value_t = 0,
          value_parser = clap::value_parser!(u8).range(0..=2))]
    pub qos: u8,
}

pub(crate) const PUB_ABOUT: &str = "\
Publish one sealed message, like mosquitto_pub.

The same flags as mosquitto_pub for the broker (-h -p --cafile --cert --key -u -P -i -q -r)
and the message (-t and one of -m, -f, -s, -l, -n), plus the mqseal keys: the payload is sealed
for the topic with --protect (default encrypt) before it leaves, so the broker and every
other subscriber see only the envelope. Needs --identity (sender id, counters in
IDENTITY.counters), and --keyring for every mode but sign.

With -q 1 or 2, the command returns once the broker acknowledged the message. Progress and
errors go to standard error.";

pub(crate) const PUB_AFTER: &str = "\
Examples:
  A deployment from `mqseal provision mosquitto --out broker ...`, as client robot-1:
    mqseal pub -h broker.example.com --cafile broker/ca.crt \\
      --cert broker/clients/robot-1.crt --key broker/clients/robot-1.key \\
      --keyring broker/mqseal/fleet.keyring --identity broker/clients/robot-1.identity \\
      -t devices/robot-1/temp -m 21.5 -q 1

  Each line of standard input as a message, signed:
    sensor-reader | mqseal pub ... --protect mac+sign -t devices/robot-1/temp -l";

/// Arguments of `mqseal pub`.
#[derive(Debug, Args)]
#[command(disable_help_flag = true)]
#[command(group(ArgGroup::new("payload").required(true)
    .args(["message", "file", "stdin_file", "stdin_lines", "null_message"])))]
pub struct PubArgs {
    #[allow(missing_docs)]
    #[command(flatten)]
    pub conn: ConnArgs,
    /// The topic to publish to
    #[arg(short = 't', long = "topic", value_name = "TOPIC")]
    pub topic: String,
    /// The message
    #[arg(short = 'm', long = "message", value_name = "MESSAGE")]
    pub message: Option<String>,
    /// The message is the content of FILE
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// The message is all of standard input
    #[arg(short = 's', long = "stdin-file")]
    pub stdin_file: bool,
    /// One message per line of standard input
    #[arg(short = 'l', long = "stdin-line")]
    pub stdin_lines: bool,
    /// An empty message (sealed: the envelope still authenticates it)
    #[arg(short = 'n', long = "null-message")]
    pub null_message: bool,
    /// Ask the broker to retain the message
    #[arg(short = 'r', long = "retain")]
    pub retain: bool,
    #[allow(missing_docs)]
    #[command(flatten)]
    pub protect: ProtectArgs,
    #[allow(missing_docs)]
    #[command(flatten)]
    pub keys: KeyArgs,
    /// Print help
    #[arg(long, action = ArgAction::Help)]
    pub help: Option<bool>,
}

pub(crate) const SUB_ABOUT: &str = "\
Subscribe and print verified messages, like mosquitto_sub.

The same flags as mosquitto_sub for the broker (-h -p --cafile --cert --key -u -P -i -q) and
the output (-t, repeatable; -v; -C; -W), plus the mqseal keys. Every message is opened with
--protect (default encrypt) for its topic: a verified one is printed on standard output, its
payload and a newline (with -v: `TOPIC PAYLOAD`); one that fails a check is printed on
standard error with the reason, `rejected on TOPIC (KIND): REASON`, and the command goes on.

Keys: --keyring for every mode but sign, --trust for the +sign modes. --rekey-topic TOPIC also
subscribes to the admin's rekey topic: a rekey message that arrives there is verified with
--trust's admin and applied (needs --identity), and --keyring and --trust are saved.

`subscribed to FILTER` is printed on standard error once the broker granted a filter.
-C COUNT exits after COUNT verified messages; -W SECONDS exits after that long (with -C, not
having COUNT messages by then is an error).";

pub(crate) const SUB_AFTER: &str = "\
Examples:
  The control station, of a deployment from `mqseal provision mosquitto --out broker ...`:
    mqseal sub -h broker.example.com --cafile broker/ca.crt \\
      --cert broker/clients/station.crt --key broker/clients/station.key \\
      --keyring broker/mqseal/fleet.keyring -t 'devices/#' -v

  Wait for one message, at most 10 s:
    mqseal sub ... -t devices/robot-1/temp -C 1 -W 10

  A device that follows the admin's rekeys:
    mqseal sub ... --identity robot-1.identity --trust trust --rekey-topic mqseal/rekey \\
      -t 'commands/robot-1/#'";

/// Arguments of `mqseal sub`.
#[derive(Debug, Args)]
#[command(disable_help_flag = true)]
pub struct SubArgs {
    #[allow(missing_docs)]
    #[command(flatten)]
    pub conn: ConnArgs,
    /// A topic filter to subscribe to; repeat for several
    #[arg(short = 't', long = "topic", value_name = "FILTER", required = true)]
    pub topics: Vec<String>,
    /// Print the topic before each payload
    #[arg(short = 'v', long = "verbose")]
    pub verbose: bool,
    /// Exit after COUNT verified messages
    #[arg(short = 'C', value_name = "COUNT")]
    pub count: Option<u64>,
    /// Exit after SECONDS
    #[arg(short = 'W', value_name = "SECONDS")]
    pub timeout: Option<u64>,
    /// The admin's rekey topic: apply the rekey messages that arrive on it
    #[arg(long, value_name = "TOPIC", requires = "identity", requires = "trust")]
    pub rekey_topic: Option<String>,
    #[allow(missing_docs)]
    #[command(flatten)]
    pub protect: ProtectArgs,
    #[allow(missing_docs)]
    #[command(flatten)]
    pub keys: KeyArgs,
    /// Print help
    #[arg(long, action = ArgAction::Help)]
    pub help: Option<bool>,
}
