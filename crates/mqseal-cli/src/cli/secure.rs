//! Arguments shared by the commands that seal and open: the protection and
//! the key files; `mqseal seal` and `mqseal open`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};
use mqseal::{Aead, Freshness, Protection, Suite};

use crate::util::parse_duration;

/// How a topic is protected: the one rule of the policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Protect {
    /// AES-256-GCM with the group key: only members read or write (needs --keyring)
    #[value(name = "encrypt")]
    Encrypt,
    /// ChaCha20-Poly1305, for devices without AES hardware (needs --keyring)
    #[value(name = "chacha")]
    Chacha,
    /// HMAC-SHA256 with the group key: readable payload, only members write (--keyring)
    #[value(name = "mac")]
    Mac,
    /// Ed25519 signature: readable payload, proves which device wrote it (--identity/--trust)
    #[value(name = "sign")]
    Sign,
    /// AES-256-GCM, then the sender's signature (--keyring, and --identity/--trust)
    #[value(name = "encrypt+sign")]
    EncryptSign,
    /// ChaCha20-Poly1305, then the sender's signature (--keyring, and --identity/--trust)
    #[value(name = "chacha+sign")]
    ChachaSign,
    /// HMAC-SHA256, then the sender's signature (--keyring, and --identity/--trust)
    #[value(name = "mac+sign")]
    MacSign,
}

impl Protect {
    /// The command line spelling.
    pub fn name(self) -> &'static str {
        match self {
            Protect::Encrypt => "encrypt",
            Protect::Chacha => "chacha",
            Protect::Mac => "mac",
            Protect::Sign => "sign",
            Protect::EncryptSign => "encrypt+sign",
            Protect::ChachaSign => "chacha+sign",
            Protect::MacSign => "mac+sign",
        }
    }

    /// The protection, with freshness when `max_age` is given.
    pub fn protection(self, max_age: Option<Duration>) -> Protection {
        let b = match self {
            Protect::Encrypt => Protection::encrypt(Aead::Aes256Gcm),
            Protect::Chacha => Protection::encrypt(Aead::ChaCha20Poly1305),
            Protect::Mac => Protection::mac(),
            Protect::Sign => Protection::sign(),
            Protect::EncryptSign => Protection::encrypt(Aead::Aes256Gcm).sign(),
            Protect::ChachaSign => Protection::encrypt(Aead::ChaCha20Poly1305).sign(),
            Protect::MacSign => Protection::mac().sign(),
        };
        match max_age {
            Some(age) => b.freshness(Freshness::max_age(age)).build(),
            None => b.build(),
        }
    }

    /// The suite this mode writes and requires.
    pub fn suite(self) -> Suite {
        match self {
            Protect::Encrypt => Suite::Aes256Gcm,
            Protect::Chacha => Suite::ChaCha20Poly1305,
            Protect::Mac => Suite::HmacSha256,
            Protect::Sign => Suite::Ed25519,
            Protect::EncryptSign => Suite::Aes256GcmEd25519,
            Protect::ChachaSign => Suite::ChaCha20Poly1305Ed25519,
            Protect::MacSign => Suite::HmacSha256Ed25519,
        }
    }

    /// The mode that writes `suite`.
    pub fn of_suite(suite: Suite) -> Option<Protect> {
        Protect::value_variants()
            .iter()
            .copied()
            .find(|p| p.suite() == suite)
    }

    /// Whether the mode uses the group keys.
    pub fn symmetric(self) -> bool {
        self.suite().symmetric().is_some()
    }

    /// Whether the mode signs.
    pub fn signed(self) -> bool {
        self.suite().signed()
    }
}

/// `--protect` and `--max-age`.
#[derive(Debug, Args, Clone, Copy)]
pub struct ProtectArgs {
    /// How the topic is protected: sender and receiver must agree
    #[arg(long, value_name = "MODE", default_value = "encrypt")]
    pub protect: Protect,
    /// Freshness: the sender stamps the time, the receiver refuses what is older than AGE
    /// (e.g. 5s, 2m) or more than 1 s ahead of its clock
    #[arg(long, value_name = "AGE", value_parser = parse_duration)]
    pub max_age: Option<Duration>,
}

/// The key files of a command that seals or opens.
#[derive(Debug, Args, Clone)]
pub struct KeyArgs {
    /// The group keys, from `mqseal keygen keyring`: needed by every mode but `sign`
    #[arg(long, value_name = "FILE")]
    pub keyring: Option<PathBuf>,
    /// This device's identity, from `mqseal keygen identity`: sender id and signing key;
    /// its counters are kept in IDENTITY.counters
    #[arg(long, value_name = "IDENTITY")]
    pub identity: Option<PathBuf>,
    /// The trust store, from `mqseal trust add`: whose signatures are accepted
    #[arg(long, value_name = "FILE")]
    pub trust: Option<PathBuf>,
}

pub(crate) const SEAL_ABOUT: &str = "\
Seal standard input into an envelope for a topic, on standard output.

The policy is one rule: TOPIC gets the protection --protect (default encrypt, AES-256-GCM).
The envelope is bound to TOPIC: opened on any other topic, it fails to authenticate.

Keys:
  --identity IDENTITY  always: the sender id written in the envelope, the signing key of the
                       +sign modes, and the counters. Every envelope takes the next counter
                       of IDENTITY.counters (reserved durably before use, and written back
                       exactly at the end), so no two runs ever reuse a counter, which is
                       the nonce. Runs with the same identity take turns (a lock on it).
  --keyring FILE       the group keys, for every mode but sign: the active epoch seals.

With --max-age, the envelope carries the sender's clock; receivers refuse it once older.";

pub(crate) const SEAL_AFTER: &str = "\
Examples:
  Seal, then open with the same group keys:
    echo -n 'move 10 20' | mqseal seal --keyring fleet.keyring --identity station.identity \\
      --topic commands/robot-1/move > move.env
    mqseal open --keyring fleet.keyring --topic commands/robot-1/move < move.env

  Signed and encrypted, as hex, with a freshness limit:
    echo -n 'stop' | mqseal seal --protect encrypt+sign --max-age 5s --hex \\
      --keyring fleet.keyring --identity station.identity --topic commands/robot-1/stop";

/// Arguments of `mqseal seal`.
#[derive(Debug, Args)]
pub struct SealArgs {
    /// The topic the envelope is for (authenticated with it)
    #[arg(long, short = 't', value_name = "TOPIC")]
    pub topic: String,
    #[allow(missing_docs)]
    #[command(flatten)]
    pub protect: ProtectArgs,
    #[allow(missing_docs)]
    #[command(flatten)]
    pub keys: KeyArgs,
    /// Write the envelope as hexadecimal text and a newline instead of raw bytes
    #[arg(long)]
    pub hex: bool,
}

pub(crate) const OPEN_ABOUT: &str = "\
Verify and open an envelope from standard input; the payload goes to standard output.

The policy is one rule: TOPIC gets the protection --protect (default encrypt). Everything is
checked: the structure, the suite against --protect, the key epoch, the sender, the signature,
the tag (so the topic too) and, with --max-age, the timestamp. On failure nothing is written to
standard output, the reason is printed on standard error, and the exit status is 1.

Keys:
  --keyring FILE       the group keys, for every mode but sign (every epoch not retired opens)
  --trust FILE         for the +sign modes: the sender must be in it, with its key
  --identity IDENTITY  optional: keep the replay state in IDENTITY.counters, so that an
                       envelope opened once is refused as replayed by later runs too.
                       Without it each run starts afresh and only sees one envelope.";

pub(crate) const OPEN_AFTER: &str = "\
Examples:
  mqseal open --keyring fleet.keyring --topic commands/robot-1/move < move.env
  mqseal open --protect encrypt+sign --keyring fleet.keyring --trust trust \\
    --identity robot-1.identity --topic commands/robot-1/stop --hex <<< \"$ENVELOPE_HEX\"

  A failure says why, for instance an envelope sealed for another topic:
    error: envelope rejected (unauthenticated): authentication failed
      the envelope was forged or tampered with, sealed with other keys, or moved to another
      topic: is --topic the topic it was sealed for?";

/// Arguments of `mqseal open`.
#[derive(Debug, Args)]
pub struct OpenArgs {
    /// The topic the envelope was received on
    #[arg(long, short = 't', value_name = "TOPIC")]
    pub topic: String,
    #[allow(missing_docs)]
    #[command(flatten)]
    pub protect: ProtectArgs,
    #[allow(missing_docs)]
    #[command(flatten)]
    pub keys: KeyArgs,
    /// Read the envelope as hexadecimal text (white space ignored) instead of raw bytes
    #[arg(long)]
    pub hex: bool,
}
