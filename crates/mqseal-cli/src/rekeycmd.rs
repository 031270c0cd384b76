//! `mqseal rekey` (the admin issues a rekey) and `mqseal rekey apply` (a
//! device applies one).

use std::fmt::Write as _;
use std::io::Read;
use std::path::Path;

use mqseal::rekey::RekeyBuilder;
use mqseal::{
    ConfigError, Endpoint, Error, GroupSecret, Policy, PublicIdentity, Rejection, SenderId,
};

use crate::cli::{RekeyApplyArgs, RekeyIssueArgs};
use crate::files::{self, SECRET};
use crate::keycmd::key_error;
use crate::keyfiles::{
    load_identity, load_keyring_for_use, load_trust, open_counters, provider, save_keyring,
    save_trust,
};
use crate::util::{format_duration, iso_seconds, note, now_ms, sender_id, stdout_bytes};

fn progress(step: usize, total: usize, msg: &str) {
    note(&format!("[{step}/{total}] {msg}"));
}

/// `mqseal rekey`: the summary for standard error (the message may go to
/// standard output).
pub fn issue(args: &RekeyIssueArgs) -> Result<String, String> {
    let (Some(admin_path), Some(trust_path), Some(keyring_path), Some(out)) =
        (&args.admin, &args.trust, &args.keyring, &args.out)
    else {
        return Err("rekey needs --admin, --trust, --keyring and --out".into());
    };
    let to_stdout = out.as_os_str() == "-";
    if !to_stdout && out.exists() && !args.force {
        return Err(format!(
            "{} already exists, and nothing was changed: add --force to replace it, or choose \
             another --out",
            out.display()
        ));
    }
    let admin = load_identity(admin_path)?;
    let trust = load_trust(trust_path)?;
    let mut keyring = load_keyring_for_use(keyring_path)?;
    let tp = trust_path.display();
    let admin_public = admin.public(provider());
    if let Some((id, key)) = trust.admin()
        && (*id != admin.sender_id || *key != admin_public.signing)
    {
        return Err(format!(
            "{tp} names {id} as the admin, not the identity {} ({}): devices with this trust \
             store would refuse the message. Use the admin's identity, or make it the admin: \
             mqseal trust admin --trust {tp} --peer {}.pub",
            admin_path.display(),
            admin.sender_id,
            admin_path.display()
        ));
    }
    if trust.admin().is_none() {
        note(&format!(
            "note: {tp} names no admin; the devices' trust stores must name this one, or they \
             refuse the message: mqseal trust admin --trust TRUST --peer {}.pub",
            admin_path.display()
        ));
    }
    // The senders this rekey removes; the ones earlier rekeys removed are in
    // the trust store's revoked set and are listed again (see below).
    let mut removed = Vec::new();
    for name in &args.remove {
        let id = sender_id(name)?;
        if id == admin.sender_id {
            return Err(format!(
                "{id} is the admin: it cannot remove itself (make another admin with `mqseal \
                 trust admin` and rekey from there)"
            ));
        }
        if trust.is_revoked(&id) {
            note(&format!(
                "note: {id} was removed by an earlier rekey; every rekey lists it again"
            ));
            continue;
        }
        if trust.get(&id).is_none() {
            return Err(format!(
                "{id} is not in {tp}, and nothing was changed: check the name with `mqseal trust \
                 list --trust {tp}`"
            ));
        }
        if !removed.contains(&id) {
            removed.push(id);
        }
    }
    let recipients: Vec<PublicIdentity> = trust
        .agreement_keys()
        .filter(|(id, _)| !removed.contains(id) && **id != admin.sender_id)
        .filter_map(|(id, a)| {
            trust.get(id).map(|k| PublicIdentity {
                sender_id: *id,
                signing: *k,
                agreement: *a,
            })
        })
        .collect();
    if recipients.is_empty() {
        return Err(format!(
            "no device is left in {tp} to receive the new key: add them with `mqseal trust add`"
        ));
    }
    let epoch = keyring
        .max_epoch()
        .map_or(Some(1), |m| m.checked_add(1))
        .ok_or_else(|| {
            format!(
                "{} holds epoch {}: no number is left",
                keyring_path.display(),
                u32::MAX
            )
        })?;

    let total = 4;
    let names: Vec<String> = recipients.iter().map(|r| r.sender_id.to_string()).collect();
    progress(
        1,
        total,
        &format!(
            "epoch {epoch}: a fresh secret wrapped for {} device{} ({})",
            names.len(),
            if names.len() == 1 { "" } else { "s" },
            names.join(", ")
        ),
    );
    let secret = GroupSecret::generate(provider().random)
        .map_err(|e| format!("cannot generate a group secret: {e}"))?;
    let now = now_ms();
    let mut builder = RekeyBuilder::new(epoch, &secret).grace(args.grace);
    for r in &recipients {
        builder = builder.recipient(*r);
    }
    // Every removal so far, not only this one's: the broker retains only the
    // newest rekey, and a device that missed an earlier one must still revoke
    // the senders it removed.
    let earlier: Vec<SenderId> = trust.revoked().copied().collect();
    builder = builder
        .remove_all(earlier.iter().copied())
        .remove_all(removed.iter().copied());
    let message = builder.sign(provider(), &admin, now).map_err(|e| match e {
        Error::Config(ConfigError::Rekey(why)) => format!("cannot build the rekey: {why}"),
        e => format!("cannot build the rekey: {e}"),
    })?;
    if let Some(warning) = size_warning(message.len()) {
        note(&warning);
    }

    progress(
        2,
        total,
        &format!(
            "writing the message ({} bytes, signed by {}) to {}",
            message.len(),
            admin.sender_id,
            if to_stdout {
                "standard output".to_string()
            } else {
                out.display().to_string()
            }
        ),
    );
    if to_stdout {
        stdout_bytes(&message)?;
    } else {
        files::write_atomic(out, &message, SECRET)
            .map_err(|e| format!("cannot write {}: {e}", out.display()))?;
    }

    progress(
        3,
        total,
        &format!(
            "epoch {epoch} active in {}, the others retiring after {}",
            keyring_path.display(),
            format_duration(args.grace)
        ),
    );
    // As the devices do on applying the message: every other epoch (staged
    // ones too, which a removed device may know) retires after the grace.
    let retire_at = now.saturating_add(u64::try_from(args.grace.as_millis()).unwrap_or(u64::MAX));
    let previous = keyring
        .rekey_to(epoch, secret, now, retire_at)
        .map_err(|e| key_error(e, keyring_path))?;
    save_keyring(keyring_path, &keyring)?;

    let removed_names: Vec<String> = removed.iter().map(ToString::to_string).collect();
    progress(
        4,
        total,
        &if removed.is_empty() {
            format!("{tp}: unchanged (no device removed)")
        } else {
            format!(
                "revoking {} in {tp} (every later rekey lists them again)",
                removed_names.join(", ")
            )
        },
    );
    if !removed.is_empty() {
        // Revoked, not only dropped: the next rekey lists them again.
        let mut trust = trust.clone();
        for id in &removed {
            trust.revoke(*id);
        }
        save_trust(trust_path, &trust)?;
    }

    let mut s = format!("Rekeyed to epoch {epoch}");
    if !removed.is_empty() {
        let _ = write!(s, ", removing {}", removed_names.join(", "));
    }
    let _ = writeln!(s, ".");
    if !earlier.is_empty() {
        let names: Vec<String> = earlier.iter().map(ToString::to_string).collect();
        let _ = writeln!(
            s,
            "It lists again the senders earlier rekeys removed, for devices that missed \
             them: {}.",
            names.join(", ")
        );
    }
    if let Some(prev) = previous {
        let _ = writeln!(
            s,
            "Epoch {prev} is accept-only until {} (grace {}).",
            iso_seconds(retire_at),
            format_duration(args.grace)
        );
    }
    let m = if to_stdout {
        "MESSAGE".to_string()
    } else {
        out.display().to_string()
    };
    let _ = write!(
        s,
        "Publish the message retained on the rekey topic:\n  \
         mosquitto_pub ... -t mqseal/rekey -r -f {m}\n\
         or on each remaining device:\n  \
         mqseal rekey apply --identity DEVICE.identity --trust TRUST --keyring KEYRING \
         --message {m}\n"
    );
    Ok(s)
}

fn read_message(path: &Path) -> Result<Vec<u8>, String> {
    if path.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .map_err(|e| format!("cannot read standard input: {e}"))?;
        return Ok(buf);
    }
    std::fs::read(path)
        .map_err(|e| format!("cannot read the rekey message {}: {e}", path.display()))
}

/// The message of a failed rekey application.
pub fn apply_error(e: &Error, message: &str, trust: &Path, keyring: &Path) -> String {
    let t = trust.display();
    match e {
        Error::Rejected(r) => {
            let why = match r {
                Rejection::NotARecipient => "this device is not a recipient: the message \
                     carries no key for it (it was removed from the group, or the admin knows \
                     another identity for it)"
                    .to_string(),
                Rejection::Replayed => format!(
                    "its epoch is not newer than every epoch {} holds or held (it was \
                     applied already, or it is an older message)",
                    keyring.display()
                ),
                Rejection::UnknownSender => {
                    format!("it is signed by another admin than the one {t} names")
                }
                Rejection::Unauthenticated => {
                    "its signature does not verify: it was forged or altered".to_string()
                }
                Rejection::Malformed(m) => format!("it is not a rekey message: {m}"),
                r => r.to_string(),
            };
            format!(
                "the rekey message {message} was refused ({}): {why}; nothing was changed",
                r.kind()
            )
        }
        Error::Config(ConfigError::NoAdminKey) => format!(
            "{t} names no admin, so no rekey message can be verified: mqseal trust admin --trust \
             {t} --peer ADMIN.identity.pub"
        ),
        Error::Key(k) => key_error(k.clone(), keyring),
        e => format!("cannot apply the rekey message {message}: {e}"),
    }
}

/// `mqseal rekey apply`.
pub fn apply(args: &RekeyApplyArgs) -> Result<String, String> {
    let identity = load_identity(&args.identity)?;
    let me = identity.sender_id;
    let trust = load_trust(&args.trust)?;
    let keyring = load_keyring_for_use(&args.keyring)?;
    let previous = keyring.active().map(|(e, _)| e);
    let message = read_message(&args.message)?;
    let shown = if args.message.as_os_str() == "-" {
        "from standard input".to_string()
    } else {
        args.message.display().to_string()
    };
    // The endpoint seals nothing; the counter store is the identity's (and
    // its lock keeps concurrent runs apart).
    let (store, _lock) = open_counters(&args.identity)?;
    let mut endpoint = Endpoint::builder(Policy::builder().build())
        .identity(identity)
        .trust(trust)
        .keyring(keyring)
        .counter_store(store)
        .build()
        .map_err(|e| e.to_string())?;
    let applied = endpoint
        .apply_rekey(&message)
        .map_err(|e| apply_error(&e, &shown, &args.trust, &args.keyring))?;
    save_keyring(&args.keyring, endpoint.keyring())?;
    if !applied.removed.is_empty() {
        save_trust(&args.trust, endpoint.trust_store())?;
    }
    let mut s = format!(
        "Applied the rekey for {me}: epoch {} is now the active epoch of {}.\n",
        applied.epoch,
        args.keyring.display()
    );
    if let Some(prev) = previous {
        let at = endpoint.keyring().retire_at_ms(prev);
        let _ = writeln!(
            s,
            "Epoch {prev} is accept-only{}.",
            at.map_or(String::new(), |t| format!(" until {}", iso_seconds(t)))
        );
    }
    if !applied.removed.is_empty() {
        let names: Vec<String> = applied.removed.iter().map(ToString::to_string).collect();
        let _ = writeln!(
            s,
            "Revoked {} in {}: their messages are no longer accepted.",
            names.join(", "),
            args.trust.display()
        );
    }
    Ok(s)
}

/// A warning when a rekey message is larger than what devices and the broker
/// take with the default limits (the secure client's packet limit and the
/// generated `max_packet_size` follow the default `max_payload`).
fn size_warning(len: usize) -> Option<String> {
    // The payload of the largest packet such a device or broker takes on the
    // rekey topic: the remaining length less the topic, its length and a
    // packet id.
    let max = mqseal_rumqttc::packet_limit(mqseal::endpoint::DEFAULT_MAX_PAYLOAD)
        - 4
        - "mqseal/rekey".len();
    (len > max).then(|| {
        format!(
            "note: the message is {len} bytes, above the {max} bytes that devices with the \
             default max_payload, and a broker with the generated max_packet_size, take on \
             mqseal/rekey: raise both first"
        )
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_message_above_the_default_limit_is_warned_about() {
        let max = mqseal_rumqttc::packet_limit(mqseal::endpoint::DEFAULT_MAX_PAYLOAD) - 16;
        assert!(super::size_warning(max).is_none());
        let w = super::size_warning(max + 1).unwrap();
        assert!(w.contains(&format!("{} bytes", max + 1)), "{w}");
    }
}
