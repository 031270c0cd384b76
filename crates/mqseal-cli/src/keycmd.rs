//! `mqseal keygen`, `mqseal key` and `mqseal trust`.

use std::fmt::Write as _;
use std::path::Path;

use mqseal::{EpochState, GroupSecret, Identity, KeyError, Keyring};

use crate::cli::{
    Key, KeyAddArgs, KeyEpochArgs, KeyPromoteArgs, KeyRatchetArgs, KeygenIdentityArgs,
    KeygenKeyringArgs, KeyringArg, Trust, TrustFileArg, TrustPeerArgs, TrustRemoveArgs,
};
use crate::keyfiles::{
    self, check_new, load_keyring_for_use, load_trust, load_trust_or_new, provider, public_path,
    read_public, save_identity, save_keyring, save_trust, write_public,
};
use crate::util::{format_duration, iso_seconds, now_ms, sender_id};

/// `mqseal keygen identity`.
pub fn keygen_identity(args: &KeygenIdentityArgs) -> Result<String, String> {
    let public = public_path(&args.out);
    check_new(&args.out, args.force, "an identity")?;
    check_new(&public, args.force, "a public identity")?;
    let id = sender_id(&args.id)?;
    let identity = Identity::generate(id, provider().random)
        .map_err(|e| format!("cannot generate an identity: {e}"))?;
    save_identity(&args.out, &identity)?;
    write_public(&public, &identity.public(provider()))?;
    let (out, public) = (args.out.display(), public.display());
    Ok(format!(
        "Wrote the identity of {name} to {out} (0600: keep it on the device only)\n\
         and its public half to {public}.\n\
         Trust it, where its signatures are checked and on the admin's machine:\n  \
         mqseal trust add --trust TRUST --peer {public}\n",
        name = args.id
    ))
}

/// `mqseal keygen keyring`.
pub fn keygen_keyring(args: &KeygenKeyringArgs) -> Result<String, String> {
    check_new(&args.out, args.force, "a keyring")?;
    let secret = GroupSecret::generate(provider().random)
        .map_err(|e| format!("cannot generate a group secret: {e}"))?;
    let keyring = Keyring::new(args.epoch, secret);
    save_keyring(&args.out, &keyring)?;
    Ok(format!(
        "Wrote a keyring to {} (0600): epoch {}, active, a fresh random secret.\n\
         Give it to every member of the group over a secure channel.\n",
        args.out.display(),
        args.epoch
    ))
}

/// `mqseal key ...`.
pub fn key(cmd: &Key) -> Result<String, String> {
    match cmd {
        Key::Add(a) => key_add(a),
        Key::Promote(a) => key_promote(a),
        Key::Retire(a) => key_retire(a),
        Key::List(a) => key_list(a),
        Key::Ratchet(a) => key_ratchet(a),
    }
}

/// A keyring error, with the file and the fix.
pub fn key_error(e: KeyError, path: &Path) -> String {
    let p = path.display();
    match e {
        KeyError::NoSuchEpoch(n) => {
            format!("epoch {n} is not in {p}: `mqseal key list --keyring {p}` shows its epochs")
        }
        KeyError::EpochRetired(n) => format!(
            "epoch {n} is retired in {p} (its secret is erased): add a new epoch with \
             `mqseal key add --keyring {p}`"
        ),
        KeyError::RetireActive(n) => format!(
            "epoch {n} is the active epoch of {p}: promote another epoch first \
             (`mqseal key add`, then `mqseal key promote`)"
        ),
        KeyError::EpochExists(n) => format!(
            "epoch {n} is or was in {p}, and epoch numbers are never reused: leave out --epoch \
             to take the next free number"
        ),
        KeyError::NotHighest { active, highest } => {
            let fix = match keyring_state(path, highest) {
                Some(mqseal::EpochState::Retired) => format!(
                    "epoch {highest} is retired, so this keyring can no longer ratchet: rotate \
                     with `mqseal key add` and `mqseal key promote` (on every device)"
                ),
                _ => format!(
                    "promote epoch {highest} first (`mqseal key promote --keyring {p} --epoch \
                     {highest}`), or retire it"
                ),
            };
            format!(
                "cannot ratchet {p}: epoch {highest} is above the active epoch {active}, and \
                 devices that ratchet must stay on one chain: {fix}"
            )
        }
        KeyError::NoActiveEpoch => format!(
            "{p} has no active epoch: promote one with `mqseal key promote --keyring {p} \
             --epoch N`"
        ),
        e => format!("{p}: {e}"),
    }
}

fn keyring_state(path: &Path, epoch: u32) -> Option<EpochState> {
    keyfiles::load_keyring(path).ok()?.state(epoch)
}

fn key_add(args: &KeyAddArgs) -> Result<String, String> {
    let path = &args.keyring.keyring;
    let mut keyring = load_keyring_for_use(path)?;
    let epoch = match args.epoch {
        Some(e) => e,
        None => keyring
            .max_epoch()
            .map_or(Some(1), |m| m.checked_add(1))
            .ok_or_else(|| {
                format!(
                    "{} holds epoch {}: no number is left",
                    path.display(),
                    u32::MAX
                )
            })?,
    };
    let secret = GroupSecret::generate(provider().random)
        .map_err(|e| format!("cannot generate a group secret: {e}"))?;
    keyring.add(epoch, secret).map_err(|e| key_error(e, path))?;
    save_keyring(path, &keyring)?;
    let p = path.display();
    Ok(format!(
        "Added epoch {epoch} to {p}, accept-only: it opens messages, it does not seal yet.\n\
         Give {p} to every device; once they all have it:\n  \
         mqseal key promote --keyring {p} --epoch {epoch} --grace 10m\n"
    ))
}

fn key_promote(args: &KeyPromoteArgs) -> Result<String, String> {
    let path = &args.keyring.keyring;
    let p = path.display();
    let mut keyring = load_keyring_for_use(path)?;
    let epoch = args.epoch;
    if keyring.state(epoch) == Some(EpochState::Active) {
        return Ok(format!(
            "Epoch {epoch} is already the active epoch of {p}; nothing changed.\n"
        ));
    }
    let now = now_ms();
    // With a grace, the staged epochs this promotion skips retire with the
    // previous one.
    let skipped: Vec<u32> = keyring.skipped_by(epoch).collect();
    let previous = match args.grace {
        Some(g) => keyring.promote_with_grace(epoch, now, g),
        None => keyring.promote(epoch),
    }
    .map_err(|e| key_error(e, path))?;
    save_keyring(path, &keyring)?;
    let mut s = format!("Epoch {epoch} is now the active epoch of {p}: it seals from now on.\n");
    match (previous, args.grace) {
        (Some(prev), Some(g)) => {
            let at = keyring.retire_at_ms(prev).unwrap_or(now);
            let _ = writeln!(
                s,
                "Epoch {prev} is accept-only until {} (grace {}), then retired.",
                iso_seconds(at),
                format_duration(g)
            );
            for e in skipped {
                let at = keyring.retire_at_ms(e).unwrap_or(now);
                let _ = writeln!(
                    s,
                    "Epoch {e}, staged below {epoch} and skipped, is retired at {} too.",
                    iso_seconds(at)
                );
            }
        }
        (Some(prev), None) => {
            let _ = writeln!(
                s,
                "Epoch {prev} is accept-only: once the messages in flight are through, retire \
                 it:\n  mqseal key retire --keyring {p} --epoch {prev}"
            );
        }
        (None, _) => {}
    }
    Ok(s)
}

fn key_retire(args: &KeyEpochArgs) -> Result<String, String> {
    let path = &args.keyring.keyring;
    let p = path.display();
    let mut keyring = load_keyring_for_use(path)?;
    let epoch = args.epoch;
    if keyring.state(epoch) == Some(EpochState::Retired) {
        return Ok(format!(
            "Epoch {epoch} is already retired in {p}; nothing changed.\n"
        ));
    }
    keyring.retire(epoch).map_err(|e| key_error(e, path))?;
    save_keyring(path, &keyring)?;
    Ok(format!(
        "Retired epoch {epoch} in {p}: its secret is erased, and its messages are refused.\n"
    ))
}

/// The state of an epoch as `key list` shows it.
fn state_label(keyring: &Keyring, epoch: u32, state: EpochState, now: u64) -> &'static str {
    match state {
        EpochState::Active => "active",
        EpochState::Retired => "retired",
        EpochState::AcceptOnly if keyring.retire_at_ms(epoch).is_some_and(|t| t <= now) => {
            "accept-only (grace over)"
        }
        EpochState::AcceptOnly => "accept-only",
    }
}

fn key_list(args: &KeyringArg) -> Result<String, String> {
    let path = &args.keyring;
    let keyring = keyfiles::load_keyring(path)?;
    let now = now_ms();
    let epochs: Vec<(u32, EpochState)> = keyring.all_epochs().collect();
    let active = keyring
        .active()
        .map_or("none".to_string(), |(e, _)| e.to_string());
    let mut s = format!(
        "Keyring {}: {} epoch{}, active: {active}\n",
        path.display(),
        epochs.len(),
        if epochs.len() == 1 { "" } else { "s" }
    );
    let rows: Vec<[String; 4]> = epochs
        .iter()
        .map(|&(e, st)| {
            [
                e.to_string(),
                state_label(&keyring, e, st, now).to_string(),
                keyring.created_ms(e).map_or("-".into(), iso_seconds),
                keyring.retire_at_ms(e).map_or("-".into(), iso_seconds),
            ]
        })
        .collect();
    let header = [
        "EPOCH".to_string(),
        "STATE".into(),
        "CREATED".into(),
        "RETIRES AT".into(),
    ];
    let mut widths = [0usize; 4];
    for row in std::iter::once(&header).chain(&rows) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let line = format!(
            "{:>w0$}  {:<w1$}  {:<w2$}  {}",
            row[0],
            row[1],
            row[2],
            row[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        );
        let _ = writeln!(s, "{}", line.trim_end());
    }
    Ok(s)
}

fn key_ratchet(args: &KeyRatchetArgs) -> Result<String, String> {
    let path = &args.keyring.keyring;
    let p = path.display();
    let mut keyring = load_keyring_for_use(path)?;
    let previous = keyring.active().map(|(e, _)| e);
    let now = now_ms();
    let epoch = keyring
        .ratchet(provider(), now, args.grace)
        .map_err(|e| key_error(e, path))?;
    save_keyring(path, &keyring)?;
    let mut s = format!(
        "Ratcheted {p}: epoch {epoch}, derived one-way from the previous active epoch, is now \
         active.\n"
    );
    if let Some(prev) = previous {
        let at = keyring.retire_at_ms(prev).unwrap_or(now);
        let _ = writeln!(
            s,
            "Epoch {prev} is accept-only until {} (grace {}), then retired.",
            iso_seconds(at),
            format_duration(args.grace)
        );
    }
    Ok(s)
}

/// `mqseal trust ...`.
pub fn trust(cmd: &Trust) -> Result<String, String> {
    match cmd {
        Trust::Add(a) => trust_add(a, false),
        Trust::Admin(a) => trust_add(a, true),
        Trust::Remove(a) => trust_remove(a),
        Trust::Revoke(a) => trust_revoke(a),
        Trust::List(a) => trust_list(a),
    }
}

fn trust_add(args: &TrustPeerArgs, admin: bool) -> Result<String, String> {
    let peer = read_public(&args.peer)?;
    let path = &args.trust;
    let p = path.display();
    let (mut trust, created) = load_trust_or_new(path)?;
    let id = peer.sender_id;
    if trust.is_revoked(&id) {
        return Err(format!(
            "{id} is revoked in {p} (by a rekey or `trust revoke`), as it is on every device \
             that applied a rekey since, whatever its keys; nothing was changed. Give the new \
             device another sender id (mqseal keygen identity --id NEW-ID --out \
             NEW-ID.identity)"
        ));
    }
    let same_signing = trust.get(&id) == Some(&peer.signing);
    let same_agreement = trust.agreement_key(&id) == Some(&peer.agreement);
    // A peer known by its signing key only may get its X25519 key added.
    let conflict = trust.get(&id).is_some()
        && (!same_signing || (trust.agreement_key(&id).is_some() && !same_agreement));
    if conflict {
        return Err(format!(
            "{p} already trusts {id} with other keys, and nothing was changed: if {} is its new \
             identity, remove the old one first: mqseal trust remove --trust {p} --id {id}",
            args.peer.display()
        ));
    }
    let is_admin_already = trust
        .admin()
        .is_some_and(|(a, k)| *a == id && *k == peer.signing);
    if same_signing && same_agreement && (!admin || is_admin_already) {
        let role = if admin { " as the admin" } else { "" };
        return Ok(format!(
            "{p} already trusts {id}{role} with these keys; nothing changed.\n"
        ));
    }
    trust.insert_identity(&peer);
    let mut s = String::new();
    if admin {
        if let Some((old, _)) = trust.admin().filter(|(a, _)| *a != id) {
            let _ = writeln!(s, "{old} is no longer the admin of {p}.");
        }
        trust.set_admin(id, peer.signing);
    }
    save_trust(path, &trust)?;
    let verb = if created { "Created" } else { "Updated" };
    if admin {
        let _ = writeln!(
            s,
            "{verb} {p}: {id} is the admin (rekey messages must carry its signature), and is \
             trusted as a peer."
        );
    } else {
        let _ = writeln!(
            s,
            "{verb} {p}: {id} is trusted (its signatures are accepted; rekeys are wrapped for \
             it)."
        );
    }
    Ok(s)
}

fn trust_remove(args: &TrustRemoveArgs) -> Result<String, String> {
    let path = &args.trust;
    let p = path.display();
    let mut trust = load_trust(path)?;
    let id = sender_id(&args.id)?;
    let is_admin = trust.admin().is_some_and(|(a, _)| *a == id);
    if trust.get(&id).is_none() && !is_admin {
        return Err(format!(
            "{p} does not trust {id}; nothing was changed: `mqseal trust list --trust {p}` \
             shows whom it trusts"
        ));
    }
    trust.remove(&id);
    if is_admin {
        trust.remove_admin();
    }
    save_trust(path, &trust)?;
    let admin = if is_admin {
        " It was the admin: this trust store now accepts no rekey message until \
         `mqseal trust admin` names one."
    } else {
        ""
    };
    Ok(format!("Removed {id} from {p}.{admin}\n"))
}

fn trust_revoke(args: &TrustRemoveArgs) -> Result<String, String> {
    let path = &args.trust;
    let p = path.display();
    let mut trust = load_trust(path)?;
    let id = sender_id(&args.id)?;
    if trust.admin().is_some_and(|(a, _)| *a == id) {
        return Err(format!(
            "{id} is the admin of {p}: it cannot be revoked here; nothing was changed (make \
             another admin with `mqseal trust admin` first)"
        ));
    }
    if trust.is_revoked(&id) {
        return Ok(format!(
            "{id} is already revoked in {p}; nothing changed.\n"
        ));
    }
    let was_trusted = trust.get(&id).is_some();
    trust.revoke(id);
    save_trust(path, &trust)?;
    let keys = if was_trusted {
        " Its keys were dropped."
    } else {
        ""
    };
    Ok(format!(
        "Revoked {id} in {p}.{keys} The next `mqseal rekey` lists it; devices that apply that \
         rekey refuse its messages.\n"
    ))
}

fn trust_list(args: &TrustFileArg) -> Result<String, String> {
    let path = &args.trust;
    let trust = load_trust(path)?;
    let peers = trust.iter().count();
    let admin = trust.admin().copied();
    let mut s = format!(
        "Trust store {}: {peers} peer{}, admin: {}\n",
        path.display(),
        if peers == 1 { "" } else { "s" },
        admin.map_or("none".to_string(), |(a, _)| a.to_string())
    );
    for (id, key) in trust.iter() {
        let role = match admin {
            Some((a, k)) if a == *id && k == *key => " (admin)",
            Some((a, _)) if a == *id => " (admin, with another signing key)",
            _ => "",
        };
        let _ = writeln!(s, "{id}{role}");
        let _ = writeln!(s, "  ed25519  {}", hex::encode(key.0));
        match trust.agreement_key(id) {
            Some(a) => {
                let _ = writeln!(s, "  x25519   {}", hex::encode(a.0));
            }
            None => {
                let _ = writeln!(s, "  x25519   none: rekeys cannot be wrapped for it");
            }
        }
    }
    if let Some((a, k)) = admin
        && trust.get(&a).is_none()
    {
        let _ = writeln!(s, "{a} (admin only, not a peer)");
        let _ = writeln!(s, "  ed25519  {}", hex::encode(k.0));
    }
    let revoked: Vec<String> = trust.revoked().map(ToString::to_string).collect();
    if !revoked.is_empty() {
        let _ = writeln!(
            s,
            "revoked (every rekey lists them): {}",
            revoked.join(", ")
        );
    }
    Ok(s)
}
