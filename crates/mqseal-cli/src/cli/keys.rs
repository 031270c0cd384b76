//! Arguments of the key commands: `keygen`, `key`, `trust` and `rekey`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};

use crate::provision::parse_client_name;
use crate::util::{parse_duration, parse_sender_id};

pub(crate) const KEYGEN_ABOUT: &str = "\
Generate a device identity or a keyring of group keys.

Key files are written with mode 0600, atomically, with a checksum; an existing file is never
overwritten without --force (its secrets would be lost for good). Every command that reads a
key file refuses one that group or others may read.";

pub(crate) const KEYGEN_AFTER: &str = "\
Examples:
  mqseal keygen keyring --out fleet.keyring
  mqseal keygen identity --id robot-1 --out robot-1.identity   # and robot-1.identity.pub
  mqseal trust add --trust trust --peer robot-1.identity.pub";

/// `mqseal keygen identity|keyring`.
#[derive(Debug, Subcommand)]
pub enum Keygen {
    /// Generate a device identity (Ed25519 + X25519) and its public file
    #[command(long_about = KEYGEN_IDENTITY_ABOUT, after_long_help = KEYGEN_IDENTITY_AFTER)]
    Identity(KeygenIdentityArgs),
    /// Generate a keyring with one fresh random group secret, active
    #[command(long_about = KEYGEN_KEYRING_ABOUT, after_long_help = KEYGEN_KEYRING_AFTER)]
    Keyring(KeygenKeyringArgs),
}

const KEYGEN_IDENTITY_ABOUT: &str = "\
Generate a device identity (Ed25519 + X25519) and its public file.

FILE (mode 0600) holds the device's sender id (--id, written in every envelope it seals), its
Ed25519 signing key (the +sign protections) and its X25519 key (to receive rekey messages).
Keep it on the device only.

FILE.pub (mode 0644) holds the public half, one line of text:
  mqseal-identity-v1 <sender id, hex> <Ed25519 public key, hex> <X25519 public key, hex>
Give it to peers and to the admin: `mqseal trust add --peer FILE.pub` trusts its signatures
and lets the admin wrap new group keys for it.";

const KEYGEN_IDENTITY_AFTER: &str = "\
Examples:
  mqseal keygen identity --id robot-1 --out robot-1.identity
  cat robot-1.identity.pub
  mqseal trust add --trust station.trust --peer robot-1.identity.pub";

/// Arguments of `mqseal keygen identity`.
#[derive(Debug, Args)]
pub struct KeygenIdentityArgs {
    /// The sender id: 1 to 16 letters, digits, '-', '_' or '.' (the client name)
    #[arg(long, value_name = "NAME", value_parser = parse_client_name)]
    pub id: String,
    /// The identity file to write; the public half goes to FILE.pub
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Replace FILE and FILE.pub if they exist (the old identity is lost)
    #[arg(long)]
    pub force: bool,
}

const KEYGEN_KEYRING_ABOUT: &str = "\
Generate a keyring with one fresh random group secret, active.

A keyring holds numbered key epochs, each a 32-byte group secret from the system's CSPRNG and
a state: active (seals and opens; one at most), accept-only (opens only) or retired (secret
erased, only the number is kept so that it is never reused). Every member of a group holds the
same keyring: give the file to each device over a secure channel. Manage its epochs with
`mqseal key`.";

const KEYGEN_KEYRING_AFTER: &str = "\
Examples:
  mqseal keygen keyring --out fleet.keyring
  mqseal key list --keyring fleet.keyring";

/// Arguments of `mqseal keygen keyring`.
#[derive(Debug, Args)]
pub struct KeygenKeyringArgs {
    /// The number of the first epoch
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub epoch: u32,
    /// The keyring file to write
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Replace FILE if it exists (its keys are lost: what they sealed can no longer be opened)
    #[arg(long)]
    pub force: bool,
}

pub(crate) const KEY_ABOUT: &str = "\
Manage the epochs of a keyring: add, promote, retire, list, ratchet.

Rotation is staged, as with Tinkey, so that no receiver ever sees a key it does not have:
  1. key add      a new random epoch, accept-only; give the keyring to every device (or send
                  the new key to them with `mqseal rekey`): nothing changes on the wire yet;
  2. key promote  once every device has it: senders switch to it, and the previous epoch
                  stays accept-only (with --grace, for that long) for messages in flight;
  3. key retire   the previous epoch: its secret is erased, its messages refused.
Or, without any distribution: `key ratchet` on every device, on an agreed schedule (the
next secret is derived from the current one, so every device derives the same).
Each command rewrites the keyring file atomically; none prints a secret.
See docs/rotation.md for the whole model.";

pub(crate) const KEY_AFTER: &str = "\
Examples:
  mqseal key add --keyring fleet.keyring                 # epoch 2, accept-only
  (copy fleet.keyring to every device, over a secure channel)
  mqseal key promote --keyring fleet.keyring --epoch 2 --grace 10m   # here and on each device
  mqseal key list --keyring fleet.keyring";

/// `mqseal key add|promote|retire|list|ratchet`.
#[derive(Debug, Subcommand)]
pub enum Key {
    /// Add a new epoch with a fresh random secret, accept-only
    #[command(long_about = KEY_ADD_ABOUT, after_long_help = KEY_ADD_AFTER)]
    Add(KeyAddArgs),
    /// Make an epoch the one that seals; the previous one stays accept-only
    #[command(long_about = KEY_PROMOTE_ABOUT, after_long_help = KEY_PROMOTE_AFTER)]
    Promote(KeyPromoteArgs),
    /// Retire an epoch: erase its secret and refuse its messages from now on
    #[command(long_about = KEY_RETIRE_ABOUT, after_long_help = KEY_RETIRE_AFTER)]
    Retire(KeyEpochArgs),
    /// List the epochs: number, state, creation, scheduled retirement (never a secret)
    #[command(long_about = KEY_LIST_ABOUT, after_long_help = KEY_LIST_AFTER)]
    List(KeyringArg),
    /// Derive the next epoch one-way from the active one and promote it
    #[command(long_about = KEY_RATCHET_ABOUT, after_long_help = KEY_RATCHET_AFTER)]
    Ratchet(KeyRatchetArgs),
}

/// `--keyring FILE`.
#[derive(Debug, Args)]
pub struct KeyringArg {
    /// The keyring file (from `mqseal keygen keyring`)
    #[arg(long, value_name = "FILE")]
    pub keyring: PathBuf,
}

const KEY_ADD_ABOUT: &str = "\
Add a new epoch with a fresh random secret, accept-only.

The new epoch opens messages but does not seal yet: distribute the keyring to every device,
then promote it. The number defaults to one above the highest ever held; a number the keyring
holds or held (even retired) is refused.";

const KEY_ADD_AFTER: &str = "\
Examples:
  mqseal key add --keyring fleet.keyring
  mqseal key add --keyring fleet.keyring --epoch 10";

/// Arguments of `mqseal key add`.
#[derive(Debug, Args)]
pub struct KeyAddArgs {
    #[allow(missing_docs)]
    #[command(flatten)]
    pub keyring: KeyringArg,
    /// The new epoch's number [default: one above the highest ever held]
    #[arg(long, value_name = "N")]
    pub epoch: Option<u32>,
}

const KEY_PROMOTE_ABOUT: &str = "\
Make an epoch the one that seals; the previous one stays accept-only.

Promote only once every receiver holds the epoch: one that does not rejects the new messages
as `unknown epoch`. The previously active epoch keeps opening messages already in flight
(queued at the broker, retained, on a bridge): with --grace, it is retired automatically that
long after now, the next time the keyring is used (seal, open, pub, sub, key); without,
it stays until `mqseal key retire`.";

const KEY_PROMOTE_AFTER: &str = "\
Examples:
  mqseal key promote --keyring fleet.keyring --epoch 2 --grace 10m
  mqseal key promote --keyring fleet.keyring --epoch 2    # retire epoch 1 by hand later";

/// Arguments of `mqseal key promote`.
#[derive(Debug, Args)]
pub struct KeyPromoteArgs {
    #[allow(missing_docs)]
    #[command(flatten)]
    pub keyring: KeyringArg,
    /// The epoch to promote
    #[arg(long, value_name = "N")]
    pub epoch: u32,
    /// Retire the previously active epoch this long after now (e.g. 90s, 10m, 1h, 7d)
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub grace: Option<Duration>,
}

const KEY_RETIRE_ABOUT: &str = "\
Retire an epoch: erase its secret and refuse its messages from now on.

The secret is overwritten and gone: what was sealed under the epoch can no longer be opened,
with this keyring or any copy made after. The number stays in the keyring so it is never
reused. The active epoch cannot be retired: promote another first.";

const KEY_RETIRE_AFTER: &str = "\
Examples:
  mqseal key retire --keyring fleet.keyring --epoch 1";

/// Arguments of `mqseal key retire`.
#[derive(Debug, Args)]
pub struct KeyEpochArgs {
    #[allow(missing_docs)]
    #[command(flatten)]
    pub keyring: KeyringArg,
    /// The epoch
    #[arg(long, value_name = "N")]
    pub epoch: u32,
}

const KEY_LIST_ABOUT: &str = "\
List the epochs: number, state, creation, scheduled retirement (never a secret).

States: active (seals and opens), accept-only (opens), retired (secret erased). Times are UTC.
An accept-only epoch whose grace period is over is shown as `accept-only (grace over)`: it is
retired the next time the keyring is used.";

const KEY_LIST_AFTER: &str = "\
Examples:
  mqseal key list --keyring fleet.keyring";

const KEY_RATCHET_ABOUT: &str = "\
Derive the next epoch one-way from the active one and promote it.

secret(n + 1) = HKDF-SHA256(salt \"mqseal/v1 ratchet\", secret(n), n + 1): devices that ratchet
on the same schedule stay in step without any message, and since the derivation is one-way,
once the old epoch is retired a device compromised later cannot recover it (forward secrecy).
A ratchet does not exclude a device that is compromised now (it can ratchet too): use
`mqseal rekey` for that. The previous epoch is retired after --grace.";

const KEY_RATCHET_AFTER: &str = "\
Examples:
  Every day at 00:00 UTC, on every device (cron):
    mqseal key ratchet --keyring /etc/mqseal/fleet.keyring --grace 10m";

/// Arguments of `mqseal key ratchet`.
#[derive(Debug, Args)]
pub struct KeyRatchetArgs {
    #[allow(missing_docs)]
    #[command(flatten)]
    pub keyring: KeyringArg,
    /// How long the previous epoch keeps opening messages in flight
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "10m")]
    pub grace: Duration,
}

pub(crate) const TRUST_ABOUT: &str = "\
Manage a trust store: the peers' public identities and the admin.

A trust store file lists public identities (from `mqseal keygen identity`, the FILE.pub
files): a receiver accepts a signed message only from a sender listed with its key, and the
admin wraps new group keys for every listed peer (`mqseal rekey`). One peer may be the
admin, whose signature devices require on rekey messages. It holds no secret, and is written
with mode 0600 like every key file. The file is created by the first `trust add`.";

pub(crate) const TRUST_AFTER: &str = "\
Examples:
  mqseal trust add --trust trust --peer robot-1.identity.pub
  mqseal trust admin --trust trust --peer admin.identity.pub
  mqseal trust list --trust trust
  mqseal trust remove --trust trust --id robot-1
  mqseal trust revoke --trust trust --id robot-1";

/// `mqseal trust add|admin|remove|revoke|list`.
#[derive(Debug, Subcommand)]
pub enum Trust {
    /// Trust a peer: its signatures, and rekeys are wrapped for it
    #[command(after_long_help = TRUST_ADD_AFTER)]
    Add(TrustPeerArgs),
    /// Make a peer the admin, whose signature rekey messages need (and trust it as a peer)
    #[command(after_long_help = TRUST_ADMIN_AFTER)]
    Admin(TrustPeerArgs),
    /// Stop trusting a peer (or the admin)
    #[command(after_long_help = TRUST_REMOVE_AFTER)]
    Remove(TrustRemoveArgs),
    /// Record a sender as revoked: the admin's next rekey lists it for the devices
    #[command(long_about = TRUST_REVOKE_ABOUT, after_long_help = TRUST_REVOKE_AFTER)]
    Revoke(TrustRemoveArgs),
    /// List the admin and the peers with their public keys
    #[command(after_long_help = TRUST_LIST_AFTER)]
    List(TrustFileArg),
}

const TRUST_ADD_AFTER: &str = "\
A peer already trusted with other keys is refused: remove it first, knowingly.

Examples:
  mqseal trust add --trust trust --peer robot-1.identity.pub";

const TRUST_ADMIN_AFTER: &str = "\
Devices apply a rekey message only if the admin of their trust store signed it.

Examples:
  mqseal keygen identity --id admin --out admin.identity
  mqseal trust admin --trust trust --peer admin.identity.pub";

const TRUST_REMOVE_AFTER: &str = "\
This changes one file. To exclude a device from the group, use `mqseal rekey --remove`.

Examples:
  mqseal trust remove --trust trust --id robot-1";

const TRUST_REVOKE_ABOUT: &str = "\
Record a sender as revoked in the admin's trust store, without a rekey.

Its keys are dropped and the id is kept as revoked: every later `mqseal rekey` lists it, and
devices that apply that rekey refuse its messages, whatever the epoch. `mqseal rekey --remove`
does the same for the devices it removes. Use this for a sender that is not in the trust store
any more (removed by an older version of mqseal, which dropped it), or to revoke an id before
the next rekey. A revoked id stays revoked: a replacement device gets a new id.";

const TRUST_REVOKE_AFTER: &str = "\
Examples:
  mqseal trust revoke --trust mqseal/trust --id robot-2
  mqseal rekey --admin mqseal/admin.identity --trust mqseal/trust --keyring mqseal/fleet.keyring \\
    --grace 60s --out rekey.msg";

const TRUST_LIST_AFTER: &str = "\
Examples:
  mqseal trust list --trust trust";

/// `--trust FILE`.
#[derive(Debug, Args)]
pub struct TrustFileArg {
    /// The trust store file
    #[arg(long, value_name = "FILE")]
    pub trust: PathBuf,
}

/// Arguments of `mqseal trust add` and `trust admin`.
#[derive(Debug, Args)]
pub struct TrustPeerArgs {
    /// The trust store file (created if missing)
    #[arg(long, value_name = "FILE")]
    pub trust: PathBuf,
    /// The peer's public identity file (FILE.pub, from `mqseal keygen identity`)
    #[arg(long, value_name = "FILE.pub")]
    pub peer: PathBuf,
}

/// Arguments of `mqseal trust remove` and `trust revoke`.
#[derive(Debug, Args)]
pub struct TrustRemoveArgs {
    /// The trust store file
    #[arg(long, value_name = "FILE")]
    pub trust: PathBuf,
    /// The sender id
    #[arg(long, value_name = "NAME", value_parser = parse_sender_id)]
    pub id: String,
}

pub(crate) const REKEY_ABOUT: &str = "\
Replace the group key and remove devices, with one signed message.

Run by the admin (the control station) when a device leaves, is lost or stolen:
  1. a fresh random secret for epoch max + 1 of --keyring;
  2. wrapped for every peer of --trust that has an X25519 key, except the --remove'd devices
     and the admin itself (X25519, HKDF-SHA256, AES-256-GCM, one wrapping each), and the
     whole message signed with --admin's key;
  3. the message is written to --out (`-`: standard output);
  4. the removed devices are kept in --trust as revoked: every later rekey lists them again,
     so that a device that missed this one still revokes them;
  5. the new epoch is added to --keyring and promoted; the previous one retires after
     --grace (keep it short: the removed devices know the old key).
Publish the message retained on the rekey topic (`mqseal sub --rekey-topic` applies it as it
arrives), or copy it to each device and run `mqseal rekey apply` there. A removed device
finds no key for itself in it. Without --remove, the same message rotates the key for
everyone (and lists the earlier removals). Devices count --grace from when the message was
issued: one that applies it later gets only what is left of it.";

pub(crate) const REKEY_AFTER: &str = "\
Examples:
  Remove robot-2, then publish the message retained for the others:
    mqseal rekey --admin admin.identity --trust trust --keyring fleet.keyring \\
      --remove robot-2 --grace 60s --out rekey.msg
    mosquitto_pub ... -t mqseal/rekey -r -f rekey.msg

  On robot-1 (or with `mqseal sub --rekey-topic mqseal/rekey`):
    mqseal rekey apply --identity robot-1.identity --trust trust --keyring fleet.keyring \\
      --message rekey.msg";

/// `mqseal rekey` and `mqseal rekey apply`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct RekeyArgs {
    /// `apply`, or nothing to issue a rekey.
    #[command(subcommand)]
    pub command: Option<RekeyCommand>,
    #[allow(missing_docs)]
    #[command(flatten)]
    pub issue: RekeyIssueArgs,
}

/// Arguments of `mqseal rekey` (issuing).
#[derive(Debug, Args)]
pub struct RekeyIssueArgs {
    /// The admin's identity: signs the message
    #[arg(long, value_name = "IDENTITY", required = true)]
    pub admin: Option<PathBuf>,
    /// The admin's trust store: the recipients; the removed devices are revoked in it
    #[arg(long, value_name = "FILE", required = true)]
    pub trust: Option<PathBuf>,
    /// The admin's keyring: gets the new epoch, active
    #[arg(long, value_name = "FILE", required = true)]
    pub keyring: Option<PathBuf>,
    /// A device to remove from the group; repeat for several
    #[arg(long = "remove", value_name = "NAME", value_parser = parse_sender_id)]
    pub remove: Vec<String>,
    /// How long devices keep accepting the previous epoch
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "60s")]
    pub grace: Duration,
    /// Where to write the message (`-` for standard output)
    #[arg(long, value_name = "FILE", required = true)]
    pub out: Option<PathBuf>,
    /// Replace --out if it exists
    #[arg(long)]
    pub force: bool,
}

/// `mqseal rekey apply`.
#[derive(Debug, Subcommand)]
pub enum RekeyCommand {
    /// Apply a rekey message on a device: verify it, unwrap the new key, save the keyring
    #[command(long_about = REKEY_APPLY_ABOUT, after_long_help = REKEY_APPLY_AFTER)]
    Apply(RekeyApplyArgs),
}

const REKEY_APPLY_ABOUT: &str = "\
Apply a rekey message on a device: verify it, unwrap the new key, save the keyring.

Checked before anything changes: the format, that the admin of --trust signed it, that its
epoch is newer than every epoch --keyring holds or held (so a message applied once, or an
older one, is refused as replayed), and that it carries a key for this device (a removed
device gets `not a recipient`). Then the new epoch becomes active in --keyring, the previous
one retires after the message's grace period (counted from when the admin issued it), and
the removed devices are revoked in --trust: their messages are refused, whatever the epoch.";

const REKEY_APPLY_AFTER: &str = "\
Examples:
  mqseal rekey apply --identity robot-1.identity --trust trust --keyring fleet.keyring \\
    --message rekey.msg";

/// Arguments of `mqseal rekey apply`.
#[derive(Debug, Args)]
pub struct RekeyApplyArgs {
    /// This device's identity: the message must carry a key for it
    #[arg(long, value_name = "IDENTITY")]
    pub identity: PathBuf,
    /// This device's trust store: its admin must have signed the message
    #[arg(long, value_name = "FILE")]
    pub trust: PathBuf,
    /// This device's keyring: gets the new epoch, active
    #[arg(long, value_name = "FILE")]
    pub keyring: PathBuf,
    /// The rekey message (`-` for standard input)
    #[arg(long, value_name = "FILE")]
    pub message: PathBuf,
}
