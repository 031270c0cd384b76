//! The command line's grammar and its help texts.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};

use crate::provision::{parse_account, parse_client_name, parse_days, parse_server_name};
use crate::util::{parse_duration, parse_time};

pub mod keys;
pub mod net;
pub mod secure;

pub use keys::*;
pub use net::*;
pub use secure::*;

const LONG_ABOUT: &str = "\
mqseal secures MQTT payloads end to end: the broker and anyone subscribed to # see only
ciphertext, and a forged, moved, replayed or stale message is rejected.

This command provisions a Mosquitto broker (a private CA, a certificate per client,
least-privilege access rules, a TLS-only configuration, and the clients' mqseal keys), manages
key files (identities, keyrings with staged rotation, trust stores, rekeys that remove a
device), seals and opens messages, publishes and subscribes through a broker, and inspects
envelopes.";

const AFTER_HELP: &str = "\
Examples:
  Provision a broker for two devices and a control station, with their mqseal keys:
    mqseal provision mosquitto --out ./broker --server-name broker.example.com \\
      --server-ip 10.0.0.5 --client robot-1 --client robot-2 --admin station

  Subscribe as the station, publish as robot-1 (the broker sees only ciphertext):
    mqseal sub -h broker.example.com --cafile broker/ca.crt \\
      --cert broker/clients/station.crt --key broker/clients/station.key \\
      --keyring broker/mqseal/fleet.keyring -t 'devices/#' -v
    mqseal pub -h broker.example.com --cafile broker/ca.crt \\
      --cert broker/clients/robot-1.crt --key broker/clients/robot-1.key \\
      --keyring broker/mqseal/fleet.keyring --identity broker/clients/robot-1.identity \\
      -t devices/robot-1/temp -m 21.5

  Seal and open locally; decode an envelope captured on the broker:
    echo -n hello | mqseal seal --keyring k --identity me.identity -t a/b | \\
      mqseal open --keyring k -t a/b
    mosquitto_sub -t 'devices/robot-1/#' -C 1 -N ... | mqseal inspect

Exit status: 0 on success, 1 when the command fails or a message is rejected (the message
says why), 2 on a usage error. Run `mqseal help COMMAND` for a command's details.";

/// The `mqseal` command line.
#[derive(Debug, Parser)]
#[command(
    name = "mqseal",
    version,
    about = "End-to-end security for MQTT payloads: keys, seal/open, pub/sub, inspect, provision",
    long_about = LONG_ABOUT,
    after_long_help = AFTER_HELP
)]
pub struct Cli {
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generate a Mosquitto deployment: CA, certificates, passwords, ACL, mqseal keys
    #[command(
        subcommand,
        long_about = PROVISION_ABOUT,
        after_long_help = PROVISION_AFTER
    )]
    Provision(Provision),
    /// Generate a device identity or a keyring of group keys
    #[command(subcommand, long_about = KEYGEN_ABOUT, after_long_help = KEYGEN_AFTER)]
    Keygen(Keygen),
    /// Manage the epochs of a keyring: add, promote, retire, list, ratchet
    #[command(subcommand, long_about = KEY_ABOUT, after_long_help = KEY_AFTER)]
    Key(Key),
    /// Manage a trust store: the peers' public identities and the admin
    #[command(subcommand, long_about = TRUST_ABOUT, after_long_help = TRUST_AFTER)]
    Trust(Trust),
    /// Replace the group key and remove devices, with one signed message (`rekey apply`)
    #[command(long_about = REKEY_ABOUT, after_long_help = REKEY_AFTER)]
    Rekey(RekeyArgs),
    /// Seal standard input into an envelope for a topic
    #[command(long_about = SEAL_ABOUT, after_long_help = SEAL_AFTER)]
    Seal(SealArgs),
    /// Verify and open an envelope from standard input
    #[command(long_about = OPEN_ABOUT, after_long_help = OPEN_AFTER)]
    Open(OpenArgs),
    /// Publish one sealed message, like mosquitto_pub
    #[command(long_about = PUB_ABOUT, after_long_help = PUB_AFTER)]
    Pub(PubArgs),
    /// Subscribe and print verified messages, like mosquitto_sub
    #[command(long_about = SUB_ABOUT, after_long_help = SUB_AFTER)]
    Sub(SubArgs),
    /// Decode an envelope without any key; with keys, say whether it would be accepted
    #[command(long_about = INSPECT_ABOUT, after_long_help = INSPECT_AFTER)]
    Inspect(InspectArgs),
}

const INSPECT_ABOUT: &str = "\
Decode an envelope without any key; with keys, say whether it would be accepted.

Reads one envelope from standard input (or FILE): raw bytes, or hexadecimal text with --hex.
Prints the version, the suite (name and id), the key epoch, the sender id (quoted text when
printable, hex otherwise), the counter, the timestamp (milliseconds since 1970 and ISO-8601
UTC), the sizes of the header, body, tag and signature, and whether the body is readable: MAC
and signature-only suites carry the payload in clear, which is then printed too.

Without keys only the structure is checked, and nothing says whether the envelope is
authentic: every field shown may be forged. With keys (--keyring and/or --trust, with --topic
and --protect) the envelope is also opened as a fresh receiver would open it, and a `verdict`
line says `accepted` (and the payload), or `rejected` and exactly why; the exit status is then
1. A fresh receiver has seen nothing before, so a replay is not detected here.

A malformed envelope is refused with the reason, and the exit status is 1.";

const INSPECT_AFTER: &str = "\
Examples:
  One envelope as hex:
    echo 100107046465763100cced3433ab3253167b0b72935d1b0a65 | mqseal inspect --hex

  The next message on a topic, as raw bytes (-N: no newline added):
    mosquitto_sub -h broker.example.com -p 8883 --cafile ca.crt --cert c.crt --key c.key \\
      -t 'devices/robot-1/state' -C 1 -N | mqseal inspect

  Would robot-1 accept it, and if not, why?
    mqseal inspect envelope.bin --keyring fleet.keyring --trust trust \\
      --topic devices/robot-1/state --protect encrypt+sign";

/// Arguments of `mqseal inspect`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("keys").args(["keyring", "trust"]).multiple(true)))]
pub struct InspectArgs {
    /// Read hexadecimal text (white space ignored) instead of raw bytes
    #[arg(long)]
    pub hex: bool,
    /// Read the envelope from FILE instead of standard input
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Also open it with these group keys (from `mqseal keygen keyring`)
    #[arg(long, value_name = "FILE", requires_all = ["topic", "protect"])]
    pub keyring: Option<PathBuf>,
    /// Also check its signature with this trust store
    #[arg(long, value_name = "FILE", requires_all = ["topic", "protect"])]
    pub trust: Option<PathBuf>,
    /// The topic the envelope was received on (with keys)
    #[arg(long, value_name = "TOPIC", requires = "keys")]
    pub topic: Option<String>,
    /// The receiver's protection for the topic (with keys)
    #[arg(long, value_name = "MODE", requires = "keys")]
    pub protect: Option<Protect>,
    /// The receiver's freshness limit (with keys)
    #[arg(long, value_name = "AGE", value_parser = parse_duration, requires = "keys")]
    pub max_age: Option<Duration>,
    /// Judge freshness as of TIME (ISO-8601 UTC such as 2026-11-18T11:06:40Z, or milliseconds
    /// since 1970) instead of now
    #[arg(long, value_name = "TIME", value_parser = parse_time, requires = "max_age")]
    pub at: Option<u64>,
}

const PROVISION_ABOUT: &str = "\
Generate a Mosquitto deployment: CA, certificates, passwords, ACL, mqseal keys.

`provision mosquitto` writes a complete, working Mosquitto 2.0 deployment into a directory,
with the mqseal keys of every client; `provision add-client` adds clients to it later, and
`provision renew` re-issues its server and client certificates before they expire, with the
same CA. Nothing is interactive, and no external tool (openssl, mosquitto_passwd) is needed.";

const PROVISION_AFTER: &str = "\
Examples:
  mqseal provision mosquitto --out ./broker --server-name broker.example.com \\
    --server-ip 10.0.0.5 --client robot-1 --admin station
  mqseal provision add-client --dir ./broker --client robot-2
  mqseal provision renew --dir ./broker --server --client robot-1";

/// The provisioning commands.
#[derive(Debug, Subcommand)]
pub enum Provision {
    /// Write a complete Mosquitto 2.0 deployment, with mqseal keys, into a directory
    #[command(long_about = MOSQUITTO_ABOUT, after_long_help = MOSQUITTO_AFTER)]
    Mosquitto(MosquittoArgs),
    /// Add clients to a deployment made by `provision mosquitto`
    #[command(long_about = ADD_CLIENT_ABOUT, after_long_help = ADD_CLIENT_AFTER)]
    AddClient(AddClientArgs),
    /// Renew the server's or clients' certificates of a deployment, with its CA
    #[command(long_about = RENEW_ABOUT, after_long_help = RENEW_AFTER)]
    Renew(RenewArgs),
}

const MOSQUITTO_ABOUT: &str = "\
Write a complete Mosquitto 2.0 deployment, with mqseal keys, into a directory.

Files written into --out DIR (secrets with mode 0600, each file replaced atomically):
  mosquitto.conf         the broker configuration, with absolute paths
  ca.crt, ca.key         a private CA (ECDSA P-256, 10 years); keep ca.key: add-client needs it
  server.crt, .key       the broker's certificate: DNS name --server-name, addresses --server-ip
  clients/NAME.crt       per client: a certificate with common name NAME,
  clients/NAME.key       its private key,
  clients/NAME.password  a random password (192 bits),
  clients/NAME.identity  and its mqseal identity (sender id NAME), with NAME.identity.pub
  passwd                 the password hashes, in Mosquitto's own format (PBKDF2-SHA512, $7$)
  aclfile                the access rules
  mqseal/fleet.keyring   the group keys every client shares (epoch 1)
  mqseal/admin.identity  the admin's identity (sender id mqseal-admin): signs rekey messages
  mqseal/trust           every client's public identity, and the admin
A device needs only its own files: ca.crt, clients/NAME.*, mqseal/fleet.keyring and
mqseal/trust. Keep ca.key and mqseal/admin.identity on the operator's machine.

The broker configuration: no anonymous access, one listener (TLS 1.2 or later, port 8883,
--port to change), no plaintext listener. A client must present a certificate signed by the
CA. How the broker names the client, --auth:
  cert (the default)  the certificate's common name is the username, whatever the client
                      sends: the identity is tied to the certificate, and the ACL below
                      applies to the name in it. Mosquitto 2.0 then checks no password.
  cert+password       the client also sends its name and password (-u NAME -P PASSWORD),
                      checked against passwd: a second secret, but Mosquitto 2.0 does not tie
                      that name to the certificate, so any certificate of this CA with
                      another client's password logs in as that client.

The client id is the username (the name), whatever the client sends: no client can take
over another's session, and each client name has one connection at a time (a second one
replaces the first).

Access rules, least privilege, in a block per client: a client may publish to devices/NAME/#
(its telemetry, state and replies), subscribe to commands/NAME/# (the commands addressed to
it) and read mqseal/rekey (the admin's rekey messages), nothing else. An --admin client may
publish and subscribe to every topic: a control station. A name without a block may do
nothing. A forbidden publish is dropped silently by Mosquitto; a forbidden subscription
receives nothing.

Started as root, mosquitto switches to the user `mosquitto`, who must be able to read
server.key and passwd (chown them), or to the account named with --user.

An existing deployment in DIR is never overwritten without --force. The client passwords are
printed once at the end; progress goes to standard error.";

const MOSQUITTO_AFTER: &str = "\
Examples:
  mqseal provision mosquitto --out /etc/mosquitto/mqseal --server-name broker.example.com \\
    --server-ip 10.0.0.5 --client robot-1 --client robot-2 --admin station
  mosquitto -c /etc/mosquitto/mqseal/mosquitto.conf

  A local test broker, run as root, on 127.0.0.1 only:
    mqseal provision mosquitto --out ./broker --server-name localhost --server-ip 127.0.0.1 \\
      --client dev1 --port 18883 --bind 127.0.0.1 --user root";

/// How clients authenticate to the broker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Auth {
    /// A certificate from the CA; its common name is the username (no password)
    #[value(name = "cert")]
    Cert,
    /// A certificate from the CA, and a username and password not tied to it
    #[value(name = "cert+password")]
    CertPassword,
}

/// Arguments of `mqseal provision mosquitto`.
#[derive(Debug, Args)]
pub struct MosquittoArgs {
    /// The directory to write the deployment into (created if missing)
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// The DNS name clients connect to: the server certificate's name
    #[arg(long, value_name = "NAME", value_parser = parse_server_name)]
    pub server_name: String,
    /// An IP address clients may connect to; repeat for several
    #[arg(long = "server-ip", value_name = "IP")]
    pub server_ips: Vec<IpAddr>,
    /// A client to create: certificate common name, MQTT username and mqseal sender id;
    /// repeat for several
    #[arg(
        long = "client",
        value_name = "NAME",
        value_parser = parse_client_name,
        required_unless_present = "admins"
    )]
    pub clients: Vec<String>,
    /// A client that may publish and subscribe to every topic; repeat for several
    #[arg(long = "admin", value_name = "NAME", value_parser = parse_client_name)]
    pub admins: Vec<String>,
    /// The port of the TLS listener
    #[arg(long, value_name = "PORT", default_value_t = 8883)]
    pub port: u16,
    /// The address the listener binds to [default: every address]
    #[arg(long, value_name = "IP")]
    pub bind: Option<IpAddr>,
    /// How clients authenticate
    #[arg(long, value_name = "MODE", default_value = "cert")]
    pub auth: Auth,
    /// The account mosquitto runs as when started as root (`root` for tests)
    #[arg(long, value_name = "USER", value_parser = parse_account)]
    pub user: Option<String>,
    /// Validity of the server and client certificates, in days (at most 3650, the CA's validity)
    #[arg(long, value_name = "DAYS", default_value_t = 825, value_parser = parse_days)]
    pub days: u32,
    /// Replace an existing deployment in DIR (a new CA: old certificates stop working)
    #[arg(long)]
    pub force: bool,
}

const ADD_CLIENT_ABOUT: &str = "\
Add clients to a deployment made by `provision mosquitto`.

For each client: a certificate signed by the deployment's CA (so ca.key must be in DIR), a
key, a random password and an mqseal identity in clients/, a line appended to passwd, a block
appended to aclfile, and its public identity added to mqseal/trust. The new client shares the
fleet's keyring, mqseal/fleet.keyring. Nothing else changes: the other clients keep their
certificates, passwords and keys (give them the new mqseal/trust if they check signatures).
passwd and aclfile keep their owner and mode (run as root, or as their owner). A running
broker reads passwd and aclfile again on SIGHUP.";

const ADD_CLIENT_AFTER: &str = "\
Examples:
  mqseal provision add-client --dir /etc/mosquitto/mqseal --client robot-3
  kill -HUP \"$(pidof mosquitto)\"";

/// Arguments of `mqseal provision add-client`.
#[derive(Debug, Args)]
pub struct AddClientArgs {
    /// The deployment's directory (the --out of `provision mosquitto`)
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    /// A client to add; repeat for several
    #[arg(
        long = "client",
        value_name = "NAME",
        value_parser = parse_client_name,
        required_unless_present = "admins"
    )]
    pub clients: Vec<String>,
    /// A client to add that may publish and subscribe to every topic
    #[arg(long = "admin", value_name = "NAME", value_parser = parse_client_name)]
    pub admins: Vec<String>,
    /// Validity of the client certificates, in days (at most until the CA expires)
    #[arg(long, value_name = "DAYS", default_value_t = 825, value_parser = parse_days)]
    pub days: u32,
}

const RENEW_ABOUT: &str = "\
Renew the server's or clients' certificates of a deployment, with its CA.

Certificates expire (825 days after `provision mosquitto` or `add-client` by default).
`renew` issues new ones with the deployment's CA (so ca.key must be in DIR), each with a new
key pair, valid for --days from today:
  --server       server.crt and server.key, with the names of the current server.crt: its
                 common name, DNS names and IP addresses
  --client NAME  clients/NAME.crt and clients/NAME.key, common name NAME; the client must
                 exist (clients/NAME.crt, signed by this CA) and not be revoked in
                 mqseal/trust
Nothing else changes: the CA, the passwords, passwd, aclfile and the mqseal keys and
identities stay as they are, and clients keep verifying the server with the same ca.crt.
Each replaced file keeps its owner and mode (the broker's user must still read server.key):
run as root, or as the files' owner. Everything is checked before anything is written: a
refusal changes nothing.

Then, for the server certificate, send SIGHUP to mosquitto (Mosquitto 2.0 loads the new
certificate and key on SIGHUP; connections already open are not interrupted) or restart it;
for a client, copy its new certificate and key to the device, which presents them from its
next connection.

The old certificates stay valid until they expire (no revocation list is kept): renewing is
for expiry, not for a stolen key; remove a compromised client instead (docs/cli.md). The CA
itself is not renewed: no certificate is issued past its expiry.";

const RENEW_AFTER: &str = "\
Examples:
  mqseal provision renew --dir /etc/mosquitto/mqseal --server
  kill -HUP \"$(pidof mosquitto)\"
  mqseal provision renew --dir /etc/mosquitto/mqseal --client robot-1 --client robot-2";

/// Arguments of `mqseal provision renew`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("what").args(["server", "clients"]).required(true).multiple(true)))]
pub struct RenewArgs {
    /// The deployment's directory (the --out of `provision mosquitto`)
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    /// Renew the server certificate and key
    #[arg(long)]
    pub server: bool,
    /// Renew the certificate and key of this client; repeat for several
    #[arg(long = "client", value_name = "NAME", value_parser = parse_client_name)]
    pub clients: Vec<String>,
    /// Validity of the new certificates, in days from today (at most until the CA expires)
    #[arg(long, value_name = "DAYS", default_value_t = 825, value_parser = parse_days)]
    pub days: u32,
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_grammar_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
