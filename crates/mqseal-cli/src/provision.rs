//! `mqseal provision`: a complete Mosquitto 2.0 deployment, and clients added
//! to it later.

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use mqseal::{GroupSecret, Identity, Keyring, TrustStore};
use ring::rand::SystemRandom;

use crate::cli::{AddClientArgs, Auth, MosquittoArgs, RenewArgs};
use crate::files::{self, PUBLIC, SECRET};
use crate::keyfiles::{self, provider, public_path};
use crate::passwd;
use crate::pki::{CA_DAYS, Ca, Issued, Leaf};
use crate::util::sender_id;

/// The sender id of the admin identity, `mqseal/admin.identity`.
pub const ADMIN_ID: &str = "mqseal-admin";

/// The files of a deployment, by absolute path.
#[derive(Clone, Debug)]
pub struct Layout {
    /// The deployment directory (absolute).
    pub dir: PathBuf,
}

impl Layout {
    /// An exclusive lock on the deployment, held until dropped, so that two
    /// commands changing it (add-client, renew) do not both read passwd,
    /// aclfile and the trust store and each write back only its own change.
    /// A second command is refused at once rather than left waiting.
    pub fn lock(&self) -> Result<std::fs::File, String> {
        let path = self.dir.join(".mqseal-provision.lock");
        match files::try_lock(&path, PUBLIC) {
            Ok(Some(file)) => Ok(file),
            Ok(None) => Err(format!(
                "another mqseal provision command is changing {} (it holds {}); nothing was \
                 changed: run this one when it is done",
                self.dir.display(),
                path.display()
            )),
            Err(e) => Err(format!("cannot lock {}: {e}", path.display())),
        }
    }

    /// The layout of `dir`, made absolute (Mosquitto needs absolute paths).
    pub fn new(dir: &Path) -> Result<Layout, String> {
        let dir = std::path::absolute(dir)
            .map_err(|e| format!("cannot resolve the directory {}: {e}", dir.display()))?;
        let shown = dir.display().to_string();
        if shown.chars().any(char::is_whitespace) {
            return Err(format!(
                "the directory {shown:?} contains white space, which mosquitto.conf cannot \
                 express: choose a path without spaces"
            ));
        }
        Ok(Layout { dir })
    }

    /// `mosquitto.conf`.
    pub fn conf(&self) -> PathBuf {
        self.dir.join("mosquitto.conf")
    }
    /// `ca.crt`.
    pub fn ca_crt(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }
    /// `ca.key`.
    pub fn ca_key(&self) -> PathBuf {
        self.dir.join("ca.key")
    }
    /// `server.crt`.
    pub fn server_crt(&self) -> PathBuf {
        self.dir.join("server.crt")
    }
    /// `server.key`.
    pub fn server_key(&self) -> PathBuf {
        self.dir.join("server.key")
    }
    /// `passwd`.
    pub fn passwd(&self) -> PathBuf {
        self.dir.join("passwd")
    }
    /// `aclfile`.
    pub fn aclfile(&self) -> PathBuf {
        self.dir.join("aclfile")
    }
    /// `clients/`.
    pub fn clients(&self) -> PathBuf {
        self.dir.join("clients")
    }
    /// `clients/<name>.<ext>`.
    pub fn client_file(&self, name: &str, ext: &str) -> PathBuf {
        self.clients().join(format!("{name}.{ext}"))
    }
    /// `mqseal/`: the mqseal keys.
    pub fn mqseal(&self) -> PathBuf {
        self.dir.join("mqseal")
    }
    /// `mqseal/fleet.keyring`.
    pub fn fleet_keyring(&self) -> PathBuf {
        self.mqseal().join("fleet.keyring")
    }
    /// `mqseal/admin.identity`.
    pub fn admin_identity(&self) -> PathBuf {
        self.mqseal().join("admin.identity")
    }
    /// `mqseal/trust`.
    pub fn trust(&self) -> PathBuf {
        self.mqseal().join("trust")
    }

    fn top_files(&self) -> [PathBuf; 7] {
        [
            self.conf(),
            self.ca_crt(),
            self.ca_key(),
            self.server_crt(),
            self.server_key(),
            self.passwd(),
            self.aclfile(),
        ]
    }
}

/// Checks a client name: it becomes a certificate common name, an MQTT
/// username, a file name and a topic level in the ACL.
pub fn parse_client_name(name: &str) -> Result<String, String> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if name.is_empty() || name.len() > mqseal::envelope::MAX_SENDER_ID_LEN {
        return Err(format!(
            "a client name (also the mqseal sender id) has 1 to {} characters",
            mqseal::envelope::MAX_SENDER_ID_LEN
        ));
    }
    if !name.chars().all(ok_char) || !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err(
            "a client name is letters, digits, '-', '_' and '.', starting with a letter or digit"
                .into(),
        );
    }
    Ok(name.to_string())
}

/// Checks a certificate validity in days: at least 1, at most the CA's
/// [`CA_DAYS`] (a leaf certificate never outlives a CA that `provision`
/// makes, and the dates stay within what a certificate can express).
pub fn parse_days(days: &str) -> Result<u32, String> {
    let range = format!("a validity is 1 to {CA_DAYS} days (the CA's own validity)");
    match days.parse::<u32>() {
        Ok(n) if (1..=CA_DAYS).contains(&n) => Ok(n),
        _ => Err(range),
    }
}

/// Checks the account mosquitto runs as (`user` in mosquitto.conf): a plain
/// account name, so that nothing else can reach the configuration.
pub fn parse_account(name: &str) -> Result<String, String> {
    let ok = !name.is_empty()
        && name.len() <= 32
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-'));
    if !ok {
        return Err(
            "an account name is lower-case letters, digits, '_' and '-', starting with a \
             letter or '_', at most 32 characters (such as mosquitto)"
                .into(),
        );
    }
    Ok(name.to_string())
}

/// Checks a DNS name for the server certificate.
pub fn parse_server_name(name: &str) -> Result<String, String> {
    if name.parse::<IpAddr>().is_ok() {
        return Err(format!(
            "{name} is an IP address, not a DNS name: give it with --server-ip {name}, and a \
             DNS name with --server-name (localhost if clients connect by address only)"
        ));
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if name.len() > 253 || !name.split('.').all(label_ok) {
        return Err(
            "a DNS name is labels of letters, digits and '-' joined by dots, such as \
             broker.example.com; give addresses with --server-ip"
                .into(),
        );
    }
    Ok(name.to_ascii_lowercase())
}

fn io_err(action: &str, path: &Path) -> impl FnOnce(io::Error) -> String {
    let path = path.display().to_string();
    let action = action.to_string();
    move |e| format!("cannot {action} {path}: {e}")
}

fn write(path: &Path, data: &str, mode: u32) -> Result<(), String> {
    files::write_atomic(path, data.as_bytes(), mode).map_err(io_err("write", path))
}

/// [`files::stage_keeping_owner`], with the refusal to change the owner
/// explained: which file, and what to run instead.
fn stage_keeping_owner(path: &Path, data: &str, mode: u32) -> Result<files::Staged, String> {
    files::stage_keeping_owner(path, data.as_bytes(), mode).map_err(|e| match e {
        files::StageError::Owner { uid, gid, source } => format!(
            "cannot write {path} as its owner, uid {uid} (group {gid}): {source}.\n\
             The new version would belong to you, and a broker running as that user could \
             no longer read it. Nothing was changed. Run the command as root (sudo) or as \
             uid {uid}; or, if the broker does not need that owner, take the file first: \
             chown \"$(id -u):$(id -g)\" {path}",
            path = path.display()
        ),
        files::StageError::Io(e) => format!("cannot write {}: {e}", path.display()),
    })
}

fn progress(step: usize, total: usize, msg: &str) {
    eprintln!("[{step}/{total}] {msg}");
}

/// A client to create.
struct NewClient {
    name: String,
    admin: bool,
}

/// Merges `--client` and `--admin` names, refusing duplicates.
fn new_clients(clients: &[String], admins: &[String]) -> Result<Vec<NewClient>, String> {
    let mut out: Vec<NewClient> = Vec::new();
    for (name, admin) in clients
        .iter()
        .map(|n| (n, false))
        .chain(admins.iter().map(|n| (n, true)))
    {
        if out.iter().any(|c| c.name == *name) {
            return Err(format!(
                "client {name} is given twice: name each client once, with --client or --admin"
            ));
        }
        if name == ADMIN_ID {
            return Err(format!(
                "{ADMIN_ID} is the sender id of the deployment's admin identity \
                 (mqseal/admin.identity): choose another client name"
            ));
        }
        out.push(NewClient {
            name: name.clone(),
            admin,
        });
    }
    Ok(out)
}

/// The clients' certificates, passwords, password file lines and identities.
struct Made {
    name: String,
    admin: bool,
    issued: Issued,
    password: String,
    passwd_line: String,
    identity: Identity,
}

fn make_clients(
    ca: &Ca,
    clients: &[NewClient],
    days: u32,
    rng: &SystemRandom,
    step: &mut usize,
    total: usize,
) -> Result<Vec<Made>, String> {
    let mut made = Vec::new();
    for c in clients {
        *step += 1;
        let role = if c.admin { " (admin)" } else { "" };
        progress(
            *step,
            total,
            &format!(
                "client {}{role}: key, certificate, password, mqseal identity",
                c.name
            ),
        );
        let issued = ca.client(&c.name, days, rng)?;
        let password = passwd::random_password(rng)?;
        let passwd_line = passwd::line(&c.name, &password, rng)?;
        let identity = Identity::generate(sender_id(&c.name)?, provider().random)
            .map_err(|e| format!("cannot generate the identity of {}: {e}", c.name))?;
        made.push(Made {
            name: c.name.clone(),
            admin: c.admin,
            issued,
            password,
            passwd_line,
            identity,
        });
    }
    Ok(made)
}

fn write_clients(layout: &Layout, made: &[Made]) -> Result<(), String> {
    files::create_dir(&layout.clients(), 0o700).map_err(io_err("create", &layout.clients()))?;
    for m in made {
        write(
            &layout.client_file(&m.name, "crt"),
            &m.issued.cert_pem,
            PUBLIC,
        )?;
        write(
            &layout.client_file(&m.name, "key"),
            &m.issued.key_pem,
            SECRET,
        )?;
        write(
            &layout.client_file(&m.name, "password"),
            &format!("{}\n", m.password),
            SECRET,
        )?;
        let identity = layout.client_file(&m.name, "identity");
        keyfiles::save_identity(&identity, &m.identity)?;
        keyfiles::write_public(&public_path(&identity), &m.identity.public(provider()))?;
    }
    Ok(())
}

/// The deployment's mqseal keys: the fleet keyring, the admin identity and
/// the trust store of every client and the admin.
fn write_mqseal_keys(layout: &Layout, made: &[Made]) -> Result<(), String> {
    let dir = layout.mqseal();
    files::create_dir(&dir, 0o700).map_err(io_err("create", &dir))?;
    let p = provider();
    let secret = GroupSecret::generate(p.random)
        .map_err(|e| format!("cannot generate the group secret: {e}"))?;
    keyfiles::save_keyring(&layout.fleet_keyring(), &Keyring::new(1, secret))?;
    let admin = Identity::generate(sender_id(ADMIN_ID)?, p.random)
        .map_err(|e| format!("cannot generate the admin identity: {e}"))?;
    let admin_public = admin.public(p);
    keyfiles::save_identity(&layout.admin_identity(), &admin)?;
    keyfiles::write_public(&public_path(&layout.admin_identity()), &admin_public)?;
    let mut trust = TrustStore::new();
    for m in made {
        trust.insert_identity(&m.identity.public(p));
    }
    trust.insert_identity(&admin_public);
    trust.set_admin(admin_public.sender_id, admin_public.signing);
    keyfiles::save_trust(&layout.trust(), &trust)
}

/// The ACL header: comments only; every rule is in a client's own block.
pub const ACL_HEADER: &str = "\
# Mosquitto 2.0 access rules, written by `mqseal provision mosquitto`.
#
# Least privilege, one block per client: `user NAME` and its rules. A client
# (its MQTT username is its name) may
#   publish to    devices/<name>/#    its telemetry, state and replies
#   subscribe to  commands/<name>/#   the commands addressed to it
#   subscribe to  mqseal/rekey        the admin's retained rekey messages
# and nothing else. An admin client may publish and subscribe to every topic.
# There are no rules for every user (no `pattern` lines): a username without
# a block here may do nothing. To remove a client, delete its block.
# Mosquitto denies what no rule allows: a forbidden publish is dropped without
# telling the client, a forbidden subscription receives nothing.
# `mqseal provision add-client` appends one block per client at the end.
";

/// The ACL block of one client.
pub fn acl_block(name: &str, admin: bool) -> String {
    if admin {
        format!(
            "\n# client {name}: admin, every topic\nuser {name}\ntopic readwrite #\ntopic read $SYS/#\n"
        )
    } else {
        format!(
            "\n# client {name}\nuser {name}\ntopic write devices/{name}/#\ntopic read commands/{name}/#\n\
             topic read mqseal/rekey\n"
        )
    }
}

/// Options of the broker configuration.
pub struct ConfOptions<'a> {
    /// The listener's port.
    pub port: u16,
    /// The address the listener binds, all if `None`.
    pub bind: Option<IpAddr>,
    /// How clients authenticate.
    pub auth: Auth,
    /// The `user` directive, if any.
    pub user: Option<&'a str>,
}

/// The broker's `max_packet_size`: the secure client's limit on a packet's
/// remaining length for the default largest payload, plus one. Mosquitto 2.0
/// refuses a packet when its remaining length plus one exceeds the setting
/// (measured on 2.0.11: with 105, a remaining length of 104 passes and 105
/// is refused), so nothing it passes on is above the clients' limit.
pub fn max_packet_size() -> usize {
    mqseal_rumqttc::packet_limit(mqseal::endpoint::DEFAULT_MAX_PAYLOAD) + 1
}

/// The text of `mosquitto.conf`.
pub fn conf(layout: &Layout, o: &ConfOptions<'_>) -> String {
    let p = |path: PathBuf| path.display().to_string();
    let mut s = String::new();
    let _ = write!(
        s,
        "\
# Mosquitto 2.0 configuration, written by `mqseal provision mosquitto`.
# Start the broker:
#   mosquitto -c {conf}
# After `mqseal provision add-client` or `renew --server`, reload the password
# file, the ACL and the server certificate without a restart: send SIGHUP to
# mosquitto.

# One set of security settings, for the one listener.
per_listener_settings false
# Every client authenticates: no anonymous access.
allow_anonymous false
# No packet larger than an mqseal client accepts (the envelope of the largest
# payload, 256 KiB, on the longest topic): a client drops the connection on a
# larger one, and a persistent session would bring it back on every reconnect.
max_packet_size {max_packet}
",
        conf = p(layout.conf()),
        max_packet = max_packet_size()
    );
    match o.auth {
        Auth::CertPassword => {
            let _ = writeln!(
                s,
                "# Client passwords (PBKDF2-SHA512), checked after the certificate.\n\
                 password_file {}",
                p(layout.passwd())
            );
        }
        Auth::Cert => {
            let _ = writeln!(
                s,
                "# Not consulted on a listener with use_identity_as_username true (below):\n\
                 # the certificate alone authenticates. Kept for --auth cert+password.\n\
                 password_file {}",
                p(layout.passwd())
            );
        }
    }
    let _ = writeln!(
        s,
        "# Least-privilege access rules: see the comments in the file.\nacl_file {}",
        p(layout.aclfile())
    );
    match o.user {
        Some(user) => {
            let _ = writeln!(
                s,
                "# Started as root, mosquitto runs as this user, who must read server.key\n\
                 # and passwd.\nuser {user}"
            );
        }
        None => {
            let _ = writeln!(
                s,
                "# Started as root, mosquitto runs as the user `mosquitto`, who must read\n\
                 # server.key and passwd: chown mosquitto {} {}",
                p(layout.server_key()),
                p(layout.passwd())
            );
        }
    }
    let listener = match o.bind {
        Some(addr) => format!("listener {} {addr}", o.port),
        None => format!("listener {}", o.port),
    };
    let identity = match o.auth {
        Auth::CertPassword => {
            "# The username and password the client sends are checked against passwd.\n\
             use_identity_as_username false"
        }
        Auth::Cert => {
            "# The certificate's common name is the username; no password is checked.\n\
             use_identity_as_username true"
        }
    };
    let _ = write!(
        s,
        "
# The only listener: MQTT over TLS 1.2 or later. A client must present a
# certificate signed by the private CA; there is no plaintext listener.
{listener}
cafile {ca}
certfile {crt}
keyfile {key}
tls_version tlsv1.2
require_certificate true
{identity}
# The client id is the username: a client cannot take over another's id (and
# its session). One connection per client name at a time: a second one with
# the same name replaces the first.
use_username_as_clientid true
",
        ca = p(layout.ca_crt()),
        crt = p(layout.server_crt()),
        key = p(layout.server_key()),
    );
    s
}

/// What a provisioning run produced, for the summary.
pub struct Outcome {
    /// The summary for standard output, with the passwords.
    pub summary: String,
}

/// Refuses a file to be replaced that is a symlink, a directory or anything
/// but a regular file: its owner and mode would be taken from elsewhere, or
/// the rename would fail halfway through.
fn regular_or_absent(path: &Path) -> Result<(), String> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_file() => Ok(()),
        Ok(_) => Err(format!(
            "{} is not a regular file (a symlink or a directory?): nothing was changed",
            path.display()
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("cannot look at {}: {e}", path.display())),
    }
}

/// Whether the client `name` (its sender id) is revoked in `trust`.
fn is_revoked(trust: &TrustStore, name: &str) -> bool {
    mqseal::SenderId::try_from(name).is_ok_and(|id| trust.is_revoked(&id))
}

/// The CA's certificate and key as read from a deployment, for a command
/// (`add-client`, `renew`) that signs with them.
struct CaFiles {
    cert: String,
    key: String,
}

impl CaFiles {
    fn read(layout: &Layout, hint: &str, command: &str) -> Result<CaFiles, String> {
        Ok(CaFiles {
            cert: read(&layout.ca_crt(), hint)?,
            key: read(
                &layout.ca_key(),
                &format!(
                    "\n{command} signs with the CA's private key: put ca.key back in the \
                     directory"
                ),
            )?,
        })
    }

    /// The CA, refusing a validity of `days` that would outlive it.
    fn load(&self, layout: &Layout, days: u32) -> Result<Ca, String> {
        let ca = Ca::load(&self.cert, &self.key).map_err(|e| {
            format!(
                "cannot load the CA from {} and {}: {e}",
                layout.ca_crt().display(),
                layout.ca_key().display()
            )
        })?;
        ca.check_days(days)?;
        Ok(ca)
    }
}

/// The deployment's trust store, or `None` if it has none. A file that
/// cannot be looked up (no permission on `mqseal/`, say) is an error, not
/// an absent trust store: its revocations must not be skipped.
fn optional_trust(path: &Path) -> Result<Option<mqseal::TrustStore>, String> {
    match path.try_exists() {
        Ok(true) => keyfiles::load_trust(path).map(Some),
        Ok(false) => Ok(None),
        Err(e) => Err(format!("cannot look for {}: {e}", path.display())),
    }
}

/// `mqseal provision mosquitto`.
pub fn mosquitto(args: &MosquittoArgs) -> Result<Outcome, String> {
    let layout = Layout::new(&args.out)?;
    let clients = new_clients(&args.clients, &args.admins)?;
    if clients.is_empty() {
        return Err("no client to create: give at least one --client NAME or --admin NAME".into());
    }
    check_absent(&layout, args.force)?;

    let rng = SystemRandom::new();
    let total = 4 + clients.len();
    let mut step = 1;
    progress(step, total, "private CA: key and certificate");
    let (ca, ca_issued) = Ca::generate(&format!("mqseal CA for {}", args.server_name), &rng)?;
    step += 1;
    let mut sans = vec![args.server_name.clone()];
    sans.extend(args.server_ips.iter().map(ToString::to_string));
    progress(
        step,
        total,
        &format!("server: key and certificate for {}", sans.join(", ")),
    );
    let server = ca.server(&args.server_name, &args.server_ips, args.days, &rng)?;
    let made = make_clients(&ca, &clients, args.days, &rng, &mut step, total)?;
    step += 1;
    progress(
        step,
        total,
        &format!("writing the deployment to {}", layout.dir.display()),
    );

    files::create_dir(&layout.dir, 0o755).map_err(io_err("create", &layout.dir))?;
    // Part of the deployment from the start: add-client and renew take it.
    let _lock = layout.lock()?;
    if args.force {
        remove_client_files(&layout)?;
    }
    write(&layout.ca_crt(), &ca_issued.cert_pem, PUBLIC)?;
    write(&layout.ca_key(), &ca_issued.key_pem, SECRET)?;
    write(&layout.server_crt(), &server.cert_pem, PUBLIC)?;
    write(&layout.server_key(), &server.key_pem, SECRET)?;
    write_clients(&layout, &made)?;
    let passwd_text: String = made
        .iter()
        .map(|m| format!("{}\n", m.passwd_line))
        .collect();
    write(&layout.passwd(), &passwd_text, SECRET)?;
    let mut acl = ACL_HEADER.to_string();
    for m in &made {
        acl.push_str(&acl_block(&m.name, m.admin));
    }
    write(&layout.aclfile(), &acl, PUBLIC)?;
    let opts = ConfOptions {
        port: args.port,
        bind: args.bind,
        auth: args.auth,
        user: args.user.as_deref(),
    };
    write(&layout.conf(), &conf(&layout, &opts), PUBLIC)?;
    step += 1;
    progress(
        step,
        total,
        "mqseal keys: fleet keyring (epoch 1), admin identity, trust store",
    );
    write_mqseal_keys(&layout, &made)?;

    let mut s = String::new();
    let d = |p: PathBuf| p.display().to_string();
    let _ = writeln!(
        s,
        "Wrote a Mosquitto deployment to {}:",
        layout.dir.display()
    );
    let rows = [
        (
            "mosquitto.conf",
            format!(
                "the broker configuration: one TLS listener, port {}",
                args.port
            ),
        ),
        (
            "ca.crt",
            "the private CA's certificate: every client needs it".into(),
        ),
        (
            "ca.key",
            "the CA's private key (0600): keep it safe; add-client and renew need it".into(),
        ),
        (
            "server.crt",
            format!("the broker's certificate for {}", sans.join(", ")),
        ),
        ("server.key", "the broker's private key (0600)".into()),
        (
            "passwd",
            "the clients' password hashes (0600, PBKDF2-SHA512)".into(),
        ),
        (
            "aclfile",
            "access rules: write devices/<name>/#, read commands/<name>/# and mqseal/rekey".into(),
        ),
        (
            "clients/",
            "<name>.crt, .key (0600), .password (0600), .identity (0600), .identity.pub".into(),
        ),
        (
            "mqseal/fleet.keyring",
            "the group keys every client shares (0600), epoch 1".into(),
        ),
        (
            "mqseal/admin.identity",
            "signs rekey messages (0600): keep it on the operator's machine".into(),
        ),
        (
            "mqseal/trust",
            "every client's public identity, and the admin".into(),
        ),
    ];
    for (file, what) in rows {
        let _ = writeln!(s, "  {file:<21} {what}");
    }
    write_passwords(&mut s, &made, args.auth);
    let first = &made[0].name;
    let _ = write!(
        s,
        "\nStart the broker:\n  mosquitto -c {conf}\nConnect as {first}:\n  mosquitto_sub -h {host} \
         -p {port} --cafile {ca} \\\n    --cert {crt} --key {key} \\\n",
        conf = d(layout.conf()),
        host = args.server_name,
        port = args.port,
        ca = d(layout.ca_crt()),
        crt = d(layout.client_file(first, "crt")),
        key = d(layout.client_file(first, "key")),
    );
    if args.auth == Auth::CertPassword {
        let _ = writeln!(
            s,
            "    -u {first} -P \"$(cat {})\" \\",
            d(layout.client_file(first, "password"))
        );
    }
    let _ = writeln!(s, "    -t 'commands/{first}/#'");
    let _ = write!(
        s,
        "Publish a sealed message as {first}:\n  mqseal pub -h {host} -p {port} --cafile {ca} \\\n    \
         --cert {crt} --key {key} \\\n    --keyring {keyring} --identity {identity} \\\n    \
         -t devices/{first}/hello -m hello\n\
         A device needs only ca.crt, its clients/<name>.* files, mqseal/fleet.keyring and \
         mqseal/trust;\nkeep ca.key and mqseal/admin.identity on this machine.\n",
        host = args.server_name,
        port = args.port,
        ca = d(layout.ca_crt()),
        crt = d(layout.client_file(first, "crt")),
        key = d(layout.client_file(first, "key")),
        keyring = d(layout.fleet_keyring()),
        identity = d(layout.client_file(first, "identity")),
    );
    Ok(Outcome { summary: s })
}

fn write_passwords(s: &mut String, made: &[Made], auth: Auth) {
    let width = made.iter().map(|m| m.name.len()).max().unwrap_or(0);
    let _ = writeln!(
        s,
        "\nClient passwords, shown once (also in clients/<name>.password):"
    );
    if auth == Auth::Cert {
        let _ = writeln!(
            s,
            "  (--auth cert: the broker checks the certificate, not these; they serve if you\n   \
             switch to --auth cert+password)"
        );
    }
    for m in made {
        let admin = if m.admin { "  (admin)" } else { "" };
        let _ = writeln!(s, "  {:<width$}  {}{admin}", m.name, m.password);
    }
}

/// Refuses to overwrite a deployment unless `force`.
fn check_absent(layout: &Layout, force: bool) -> Result<(), String> {
    if force {
        return Ok(());
    }
    let mut found: Vec<PathBuf> = layout
        .top_files()
        .into_iter()
        .filter(|p| p.exists())
        .collect();
    for dir in [layout.clients(), layout.mqseal()] {
        if fs::read_dir(&dir).is_ok_and(|mut d| d.next().is_some()) {
            found.push(dir);
        }
    }
    if let Some(first) = found.first() {
        let dir = layout.dir.display();
        return Err(format!(
            "{} already exists: {dir} holds a deployment, and nothing was changed.\n\
             To add a client to it: mqseal provision add-client --dir {dir} --client NAME\n\
             To renew its certificates with the same CA: mqseal provision renew --dir {dir} \
             --server --client NAME\n\
             To replace it (a new CA: every issued certificate stops working), add --force,\n\
             or choose another --out directory.",
            first.display()
        ));
    }
    Ok(())
}

/// With `--force`: removes the files of the replaced deployment's clients,
/// and the counters of its identities.
fn remove_client_files(layout: &Layout) -> Result<(), String> {
    for (dir, exts) in [
        (
            layout.clients(),
            &[
                "crt", "key", "password", "identity", "pub", "counters", "lock",
            ][..],
        ),
        (layout.mqseal(), &["counters", "lock"][..]),
    ] {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.map_err(io_err("list", &dir))?.path();
            let ours = path
                .extension()
                .is_some_and(|e| exts.iter().any(|x| e == *x));
            if ours {
                fs::remove_file(&path).map_err(io_err("remove", &path))?;
            }
        }
    }
    Ok(())
}

fn read(path: &Path, hint: &str) -> Result<String, String> {
    fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}{hint}", path.display()))
}

/// `mqseal provision add-client`.
pub fn add_client(args: &AddClientArgs) -> Result<Outcome, String> {
    let layout = Layout::new(&args.dir)?;
    let clients = new_clients(&args.clients, &args.admins)?;
    if clients.is_empty() {
        return Err("no client to add: give at least one --client NAME or --admin NAME".into());
    }
    let hint = format!(
        "\n{} is not a deployment made by `mqseal provision mosquitto`: check --dir",
        layout.dir.display()
    );
    for p in [layout.conf(), layout.aclfile()] {
        if !p.exists() {
            return Err(format!("{} does not exist{hint}", p.display()));
        }
    }
    let _lock = layout.lock()?;
    let ca = CaFiles::read(&layout, &hint, "add-client")?;
    let passwd_text = read(&layout.passwd(), &hint)?;
    let acl_text = read(&layout.aclfile(), &hint)?;
    for c in &clients {
        let taken = passwd::users(&passwd_text).any(|u| u == c.name)
            || layout.client_file(&c.name, "crt").exists()
            || layout.client_file(&c.name, "identity").exists()
            || acl_text
                .lines()
                .any(|l| l.trim() == format!("user {}", c.name));
        if taken {
            return Err(format!(
                "client {name} already exists in {dir}: choose another name (to renew its \
                 certificate: mqseal provision renew --dir {dir} --client {name})",
                name = c.name,
                dir = layout.dir.display()
            ));
        }
    }
    let ca = ca.load(&layout, args.days)?;
    let trust_path = layout.trust();
    let trust = optional_trust(&trust_path)?;
    // A name a rekey removed is revoked on every device that applied it: a new
    // client under it would be refused by all of them, and get no new keys.
    if let Some(t) = &trust {
        for c in &clients {
            if is_revoked(t, &c.name) {
                return Err(format!(
                    "{} is revoked in {} (by a rekey or `trust revoke`), as it is on every \
                     device that applied a rekey since; nothing was changed. Give the new client \
                     another name",
                    c.name,
                    trust_path.display()
                ));
            }
        }
    }
    let rng = SystemRandom::new();
    let total = clients.len() + 1;
    let mut step = 0;
    let made = make_clients(&ca, &clients, args.days, &rng, &mut step, total)?;
    progress(
        total,
        total,
        &format!("adding to the deployment in {}", layout.dir.display()),
    );
    let mut new_passwd = passwd_text;
    if !new_passwd.is_empty() && !new_passwd.ends_with('\n') {
        new_passwd.push('\n');
    }
    let mut new_acl = acl_text;
    if !new_acl.is_empty() && !new_acl.ends_with('\n') {
        new_acl.push('\n');
    }
    for m in &made {
        new_passwd.push_str(&m.passwd_line);
        new_passwd.push('\n');
        new_acl.push_str(&acl_block(&m.name, m.admin));
    }
    // The broker reads passwd and aclfile, perhaps as another user: the new
    // versions keep the owner and mode of the old ones, and are ready before
    // anything changes, so that a refusal changes nothing.
    let passwd_staged = stage_keeping_owner(&layout.passwd(), &new_passwd, SECRET)?;
    let acl_staged = stage_keeping_owner(&layout.aclfile(), &new_acl, PUBLIC)?;
    write_clients(&layout, &made)?;
    match trust {
        Some(mut trust) => {
            for m in &made {
                trust.insert_identity(&m.identity.public(provider()));
            }
            keyfiles::save_trust(&trust_path, &trust)?;
        }
        None => crate::util::note(&format!(
            "note: {} does not exist (a deployment made before mqseal keys): the new \
             identities are not in a trust store; add them with `mqseal trust add`",
            trust_path.display()
        )),
    }
    let passwd_path = layout.passwd();
    passwd_staged
        .commit()
        .map_err(io_err("write", &passwd_path))?;
    let acl_path = layout.aclfile();
    acl_staged.commit().map_err(io_err("write", &acl_path))?;

    let mut s = String::new();
    let names: Vec<&str> = made.iter().map(|m| m.name.as_str()).collect();
    let _ = writeln!(
        s,
        "Added {} to the deployment in {}:\n  clients/<name>.crt, .key, .password, .identity and \
         .identity.pub, a line in passwd,\n  a block in aclfile and a public identity in \
         mqseal/trust each; they share mqseal/fleet.keyring.",
        names.join(", "),
        layout.dir.display()
    );
    let conf_text = fs::read_to_string(layout.conf()).unwrap_or_default();
    let auth = if conf_text.contains("\nuse_identity_as_username true") {
        Auth::Cert
    } else {
        Auth::CertPassword
    };
    write_passwords(&mut s, &made, auth);
    let _ = writeln!(
        s,
        "\nA running broker reads passwd and aclfile again on SIGHUP:\n  kill -HUP <pid of mosquitto>"
    );
    Ok(Outcome { summary: s })
}

/// A certificate `renew` replaces: the files, and what it was.
struct Renewal {
    /// The server's (else a client's).
    server: bool,
    /// What it is, for the summary (`server.crt, server.key`).
    files: String,
    /// Whose it is (the server's names, or the client's name).
    whose: String,
    crt: PathBuf,
    key: PathBuf,
    old: Leaf,
}

/// `mqseal provision renew`.
pub fn renew(args: &RenewArgs) -> Result<Outcome, String> {
    let layout = Layout::new(&args.dir)?;
    let dir = layout.dir.display().to_string();
    let mut names: Vec<&str> = Vec::new();
    for name in &args.clients {
        if names.contains(&name.as_str()) {
            return Err(format!(
                "client {name} is given twice: name each client once"
            ));
        }
        names.push(name);
    }
    if !args.server && names.is_empty() {
        return Err("nothing to renew: give --server, --client NAME, or both".into());
    }
    let hint =
        format!("\n{dir} is not a deployment made by `mqseal provision mosquitto`: check --dir");
    if !layout.conf().exists() {
        return Err(format!("{} does not exist{hint}", layout.conf().display()));
    }
    let _lock = layout.lock()?;
    let ca = CaFiles::read(&layout, &hint, "renew")?.load(&layout, args.days)?;
    let issued_by_ca = |path: &Path, pem: &str, server: bool| {
        ca.read_issued(pem, server)
            .map_err(|e| format!("{}: {e}; nothing was changed", path.display()))
    };

    let mut renewals = Vec::new();
    if args.server {
        let crt = layout.server_crt();
        let old = issued_by_ca(&crt, &read(&crt, &hint)?, true)?;
        renewals.push(Renewal {
            server: true,
            files: "server.crt, server.key".into(),
            whose: old.names.describe(),
            crt,
            key: layout.server_key(),
            old,
        });
    }
    let trust_path = layout.trust();
    let trust = if names.is_empty() {
        None
    } else {
        optional_trust(&trust_path)?
    };
    for name in names {
        // A revoked name was removed from the fleet: its certificate is left
        // to expire.
        if trust.as_ref().is_some_and(|t| is_revoked(t, name)) {
            return Err(format!(
                "{name} is revoked in {} (by a rekey or `trust revoke`): a removed client's \
                 certificate is not renewed; nothing was changed",
                trust_path.display()
            ));
        }
        let crt = layout.client_file(name, "crt");
        if !crt.exists() {
            return Err(format!(
                "client {name} does not exist in {dir}: there is no {}; nothing was changed.\n\
                 renew re-issues existing certificates only; to add a client: mqseal provision \
                 add-client --dir {dir} --client {name}",
                crt.display()
            ));
        }
        let old = issued_by_ca(&crt, &read(&crt, "")?, false)?;
        if old.names.common_name.as_deref() != Some(name) {
            return Err(format!(
                "{} is not the certificate of client {name}: its common name is {}; nothing \
                 was changed",
                crt.display(),
                old.names
                    .common_name
                    .as_deref()
                    .map_or("missing".to_string(), |cn| format!("{cn:?}"))
            ));
        }
        renewals.push(Renewal {
            server: false,
            files: format!("clients/{name}.crt, .key"),
            whose: name.to_string(),
            crt,
            key: layout.client_file(name, "key"),
            old,
        });
    }

    let rng = SystemRandom::new();
    let total = renewals.len() + 1;
    let mut issued = Vec::new();
    for (i, r) in renewals.iter().enumerate() {
        let what = if r.server { "server" } else { "client" };
        progress(
            i + 1,
            total,
            &format!("{what} {}: new key and certificate", r.whose),
        );
        issued.push(if r.server {
            ca.server_for(&r.old.names, args.days, &rng)?
        } else {
            ca.client(&r.whose, args.days, &rng)?
        });
    }
    progress(
        total,
        total,
        &format!("replacing the certificates in {dir}"),
    );
    // The broker reads server.key, perhaps as another user: every new file
    // keeps the owner and mode of the one it replaces, and all are ready
    // before the first is renamed into place, so that a refusal changes
    // nothing.
    for r in &renewals {
        for path in [&r.key, &r.crt] {
            regular_or_absent(path)?;
        }
    }
    let mut staged = Vec::new();
    for (r, new) in renewals.iter().zip(&issued) {
        staged.push((
            r.key.clone(),
            stage_keeping_owner(&r.key, &new.key_pem, SECRET)?,
        ));
        staged.push((
            r.crt.clone(),
            stage_keeping_owner(&r.crt, &new.cert_pem, PUBLIC)?,
        ));
    }
    // Each key is renamed into place before its certificate: a broker that
    // reloads in between (a SIGHUP from logrotate) fails to load the new key
    // against the old certificate and keeps the old pair, whereas the new
    // certificate against the old key would leave it no usable key at all.
    let mut replaced: Vec<String> = Vec::new();
    for (path, file) in staged {
        file.commit().map_err(|e| {
            let done = if replaced.is_empty() {
                "nothing was replaced".to_string()
            } else {
                format!(
                    "already replaced: {} (send the broker a SIGHUP if server.key is among \
                     them, and run renew again for the rest)",
                    replaced.join(", ")
                )
            };
            format!("cannot write {}: {e}; {done}", path.display())
        })?;
        replaced.push(path.display().to_string());
    }

    let mut s = String::new();
    let _ = writeln!(
        s,
        "Renewed in {dir}, signed by its CA (valid until {}):",
        ca.not_after()
    );
    let width = renewals.iter().map(|r| r.files.len()).max().unwrap_or(0);
    for (r, new) in renewals.iter().zip(&issued) {
        let _ = writeln!(
            s,
            "  {:<width$}  {}: valid until {} (was {}), a new key",
            r.files, r.whose, new.not_after, r.old.not_after
        );
    }
    let _ = writeln!(
        s,
        "Nothing else changed: the CA, passwords, passwd, aclfile and the mqseal keys are as \
         they were.\nThe old certificates stay valid until they expire."
    );
    if args.server {
        let _ = writeln!(
            s,
            "\nThe broker: Mosquitto 2.0 loads the new server certificate and key on SIGHUP, or \
             restart it:\n  kill -HUP \"$(pidof mosquitto)\"\n\
             (Open connections go on; clients verify the new certificate with the same ca.crt.)"
        );
    }
    let clients: Vec<&Renewal> = renewals.iter().filter(|r| !r.server).collect();
    if !clients.is_empty() {
        let _ = writeln!(
            s,
            "\nCopy to each device its new certificate and key; it presents them from its next\n\
             connection (its password, ACL block and mqseal identity are unchanged):"
        );
        for r in clients {
            let _ = writeln!(s, "  {}: {} {}", r.whose, r.crt.display(), r.key.display());
        }
    }
    Ok(Outcome { summary: s })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names_are_dns_names_not_addresses() {
        assert_eq!(
            parse_server_name("Broker.example.com").unwrap(),
            "broker.example.com"
        );
        for ip in ["127.0.0.1", "::1", "10.0.0.5"] {
            let e = parse_server_name(ip).unwrap_err();
            assert!(e.contains(&format!("--server-ip {ip}")), "{e}");
        }
        assert!(parse_server_name("my broker").is_err());
    }

    #[test]
    fn account_names_are_plain() {
        for ok in ["mosquitto", "root", "_mqtt", "mqtt-broker2"] {
            assert_eq!(parse_account(ok).unwrap(), ok);
        }
        for bad in [
            "",
            "root\nlistener 1883",
            "root listener",
            "Root",
            "1user",
            "-user",
            "user$",
            "a23456789012345678901234567890123",
        ] {
            assert!(parse_account(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn validity_is_one_day_to_the_cas() {
        assert_eq!(parse_days("1"), Ok(1));
        assert_eq!(parse_days("3650"), Ok(3650));
        for bad in ["0", "3651", "3000000", "-1", "x"] {
            assert!(parse_days(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_acl_has_no_rule_for_every_user() {
        let acl = format!(
            "{ACL_HEADER}{}{}",
            acl_block("dev1", false),
            acl_block("ops", true)
        );
        let rules: Vec<&str> = acl
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .collect();
        assert_eq!(
            rules,
            [
                "user dev1",
                "topic write devices/dev1/#",
                "topic read commands/dev1/#",
                "topic read mqseal/rekey",
                "user ops",
                "topic readwrite #",
                "topic read $SYS/#",
            ]
        );
    }
}
