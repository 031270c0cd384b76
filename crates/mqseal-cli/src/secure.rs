//! `mqseal seal`, `mqseal open` and the verdict of `mqseal inspect` with keys:
//! a one-rule policy, an [`Endpoint`] built from the key files, and rejections
//! explained.

use std::io::Read;
use std::path::{Path, PathBuf};

use mqseal::{
    ConfigError, Endpoint, EndpointBuilder, Error, KeyError, ManualClock, MemoryCounterStore,
    Policy, Rejection,
};

use crate::cli::{KeyArgs, OpenArgs, Protect, ProtectArgs, SealArgs};
use crate::keyfiles::{
    CounterLock, load_identity, load_keyring, load_keyring_for_use, load_trust, open_counters,
};
use crate::util::{format_duration, stdout_bytes};

/// What an endpoint is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Seals (needs an identity; its counters persist).
    Seal,
    /// Opens only; with an identity, the replay state persists in its counter file.
    Open,
    /// Opens, and applies rekey messages (with an identity; nothing persists).
    Subscribe,
    /// Opens once, to judge an envelope: no file is written.
    Inspect,
}

/// A policy with one rule per filter, all with the same protection; a filter
/// that an earlier one covers is left out (it would get the same protection).
pub fn policy(filters: &[String], p: &ProtectArgs) -> Result<Policy, String> {
    let protection = p.protect.protection(p.max_age);
    let with = |rules: &[&str]| {
        rules
            .iter()
            .try_fold(Policy::builder(), |b, r| b.rule(r, protection))
    };
    let mut rules: Vec<&str> = Vec::new();
    for f in filters {
        let mut candidate = rules.clone();
        candidate.push(f);
        match with(&candidate) {
            Ok(_) => rules = candidate,
            Err(ConfigError::ShadowedRule { .. }) => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    with(&rules).map(|b| b.build()).map_err(|e| e.to_string())
}

/// Checks that the key files `protect` needs are given.
pub fn require_keys(protect: Protect, keys: &KeyArgs, role: Role) -> Result<(), String> {
    let mode = protect.name();
    if protect.symmetric() && keys.keyring.is_none() {
        return Err(format!(
            "--protect {mode} uses the group keys: add --keyring FILE (made by `mqseal keygen \
             keyring`, or mqseal/fleet.keyring of a provisioned deployment)"
        ));
    }
    if role == Role::Seal && keys.identity.is_none() {
        return Err(
            "sealing needs --identity IDENTITY: the sender id written in the envelope, \
             the signing key and the counters (made by `mqseal keygen identity`, or \
             clients/NAME.identity of a provisioned deployment)"
                .into(),
        );
    }
    if role != Role::Seal && protect.signed() && keys.trust.is_none() {
        return Err(format!(
            "--protect {mode} checks the sender's signature: add --trust FILE (made by `mqseal \
             trust add`, or mqseal/trust of a provisioned deployment)"
        ));
    }
    Ok(())
}

/// An endpoint and what must live as long as it.
pub struct Built {
    /// The endpoint. (Declared first: dropped before the lock.)
    pub endpoint: Endpoint,
    /// The identity's lock, held while the endpoint lives.
    pub lock: Option<CounterLock>,
    /// The keyring file, if any.
    pub keyring: Option<PathBuf>,
}

impl std::fmt::Debug for Built {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Built")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

/// Builds an endpoint from the key files, after [`require_keys`].
pub fn build(
    policy: Policy,
    protect: Protect,
    keys: &KeyArgs,
    role: Role,
    tune: impl FnOnce(EndpointBuilder) -> EndpointBuilder,
) -> Result<Built, String> {
    require_keys(protect, keys, role)?;
    let mut b = Endpoint::builder(policy);
    if let Some(path) = &keys.keyring {
        b = b.keyring(if role == Role::Inspect {
            load_keyring(path)?
        } else {
            load_keyring_for_use(path)?
        });
    }
    if let Some(path) = &keys.trust {
        b = b.trust(load_trust(path)?);
    }
    let mut lock = None;
    if let Some(path) = &keys.identity {
        let identity = load_identity(path)?;
        b = b.identity(identity);
        match role {
            Role::Seal | Role::Open => {
                let (store, l) = open_counters(path)?;
                lock = Some(l);
                b = b.counter_store(store);
                if role == Role::Open {
                    b = b.persist_replay_state(1024);
                }
            }
            Role::Subscribe | Role::Inspect => b = b.counter_store(MemoryCounterStore::new()),
        }
    }
    let endpoint = tune(b).build().map_err(|e| match e {
        Error::Key(KeyError::InvalidPublicKey) => format!(
            "the trust store {} holds an invalid public key: rebuild it with `mqseal trust add`",
            keys.trust
                .as_deref()
                .map_or("".into(), |p| p.display().to_string())
        ),
        e => e.to_string(),
    })?;
    Ok(Built {
        endpoint,
        lock,
        keyring: keys.keyring.clone(),
    })
}

/// The protection of a suite, for hints.
fn mode_of(suite: mqseal::Suite) -> String {
    Protect::of_suite(suite).map_or(suite.name().to_string(), |p| p.name().to_string())
}

/// Why a message was rejected, and what it means: `(kind): reason` and a hint.
pub fn explain_rejection(r: &Rejection, max_age: Option<std::time::Duration>) -> (String, String) {
    let head = format!("({}): {r}", r.kind());
    let hint = match r {
        Rejection::Malformed(_) => {
            "the input is not an mqseal envelope, or it was cut or damaged".to_string()
        }
        Rejection::NoPolicy => "no rule of the policy covers the topic".into(),
        Rejection::PolicyMismatch { found, .. } => format!(
            "it was sealed with --protect {}: a receiver expecting another protection refuses \
             it (it may be a downgrade)",
            mode_of(*found)
        ),
        Rejection::MissingTimestamp => {
            "--max-age needs a timestamp: the sender sealed without --max-age".into()
        }
        Rejection::TooLarge { .. } => "the envelope is larger than any payload allowed".into(),
        Rejection::UnknownEpoch(n) => format!(
            "the keyring does not hold epoch {n}: the sender uses a key this keyring never got \
             (`mqseal key add` or `mqseal rekey apply` it), or another keyring"
        ),
        Rejection::RetiredEpoch(n) => format!(
            "epoch {n} is retired in the keyring (its secret erased): the sender must seal with \
             the active epoch"
        ),
        Rejection::NotARecipient => {
            "the message carries no key for this device: it was removed from the group, or \
             the admin wrapped the key for another identity"
                .into()
        }
        Rejection::UnknownSender => {
            "the sender is not in the trust store, or a rekey removed it: trust it with \
             `mqseal trust add --peer SENDER.pub`"
                .into()
        }
        Rejection::Unauthenticated => "the envelope was forged or tampered with, sealed with \
             other keys, or moved to another topic: is the topic the one it was sealed for?"
            .into(),
        Rejection::Replayed => {
            "this envelope's counter was already accepted (or is too far behind): a replay".into()
        }
        Rejection::Stale => format!(
            "its timestamp is older than --max-age {}",
            max_age.map_or("?".into(), format_duration)
        ),
        Rejection::FromFuture => {
            "its timestamp is ahead of this clock by more than 1 s: check both clocks".into()
        }
        _ => String::new(),
    };
    (head, hint)
}

/// The message of an error from opening: a rejection explained, or the error.
pub fn open_error(e: &Error, max_age: Option<std::time::Duration>) -> String {
    match e.rejection() {
        Some(r) => {
            let (head, hint) = explain_rejection(r, max_age);
            if hint.is_empty() {
                format!("envelope rejected {head}")
            } else {
                format!("envelope rejected {head}\n  {hint}")
            }
        }
        None => format!("cannot open: {e}"),
    }
}

/// The message of an error from sealing.
pub fn seal_error(e: &Error, keyring: Option<&Path>) -> String {
    let k = keyring.map_or("the keyring".into(), |p| p.display().to_string());
    match e {
        Error::Config(ConfigError::NoKeyring) | Error::Key(KeyError::NoActiveEpoch) => format!(
            "{k} has no active epoch to seal with: promote one with `mqseal key promote \
             --keyring {k} --epoch N`"
        ),
        Error::Key(KeyError::UsageLimit { .. }) => format!(
            "cannot seal: {e}: `mqseal key add` and `mqseal key promote` (or `mqseal key \
             ratchet`) in {k}"
        ),
        Error::Counter(c) => format!("cannot seal: {c}"),
        Error::Config(c) => format!("cannot seal: {c}"),
        e => format!("cannot seal: {e}"),
    }
}

fn read_stdin() -> Result<Vec<u8>, String> {
    let mut buf = Vec::new();
    std::io::stdin()
        .read_to_end(&mut buf)
        .map_err(|e| format!("cannot read standard input: {e}"))?;
    Ok(buf)
}

/// `mqseal seal`.
pub fn seal(args: &SealArgs) -> Result<(), String> {
    let policy = policy(std::slice::from_ref(&args.topic), &args.protect)?;
    let mut built = build(policy, args.protect.protect, &args.keys, Role::Seal, |b| b)?;
    let payload = read_stdin()?;
    let sealed = built.endpoint.seal(&args.topic, &payload);
    // Record the exact next counter, whatever happened.
    let flushed = built.endpoint.flush();
    let envelope = sealed.map_err(|e| seal_error(&e, built.keyring.as_deref()))?;
    flushed.map_err(|e| format!("cannot record the counter: {e}"))?;
    // The endpoint (and its counter store) goes before the identity's lock.
    drop(built);
    if args.hex {
        stdout_bytes(format!("{}\n", hex::encode(&envelope)).as_bytes())
    } else {
        stdout_bytes(&envelope)
    }
}

/// `mqseal open`.
pub fn open(args: &OpenArgs) -> Result<(), String> {
    let policy = policy(std::slice::from_ref(&args.topic), &args.protect)?;
    mqseal::policy::validate_topic(&args.topic).map_err(|e| e.to_string())?;
    let mut built = build(policy, args.protect.protect, &args.keys, Role::Open, |b| b)?;
    let input = read_stdin()?;
    let envelope = if args.hex {
        crate::inspect::decode_hex(&input)?
    } else {
        input
    };
    let (payload, _) = built
        .endpoint
        .open(&args.topic, &envelope)
        .map_err(|e| open_error(&e, args.protect.max_age))?;
    built
        .endpoint
        .flush()
        .map_err(|e| format!("cannot record the replay state: {e}"))?;
    stdout_bytes(&payload)
}

/// The verdict of `mqseal inspect` with keys: `Ok(lines)` if accepted,
/// `Err(lines)` if rejected.
pub fn verdict(
    envelope: &[u8],
    topic: &str,
    protect: Protect,
    max_age: Option<std::time::Duration>,
    at: Option<u64>,
    keys: &KeyArgs,
) -> Result<Result<String, String>, String> {
    let p = ProtectArgs { protect, max_age };
    let policy = policy(&[topic.to_string()], &p)?;
    let keys = KeyArgs {
        identity: None,
        ..keys.clone()
    };
    let mut built = build(policy, protect, &keys, Role::Inspect, |b| match at {
        Some(ms) => b.clock(ManualClock::new(ms)),
        None => b,
    })?;
    Ok(match built.endpoint.open(topic, envelope) {
        Ok((payload, _)) => Ok(format!(
            "{:<11} accepted (as a first delivery: a fresh receiver detects no replay)\n\
             {:<11} {}\n",
            "verdict",
            "opened",
            crate::inspect::payload(&payload)
        )),
        Err(e) => match e.rejection() {
            Some(r) => {
                let (head, hint) = explain_rejection(r, max_age);
                Err(format!(
                    "{:<11} rejected {head}\n{:<11} {hint}\n",
                    "verdict", ""
                ))
            }
            None => return Err(format!("cannot open: {e}")),
        },
    })
}
