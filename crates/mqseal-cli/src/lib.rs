//! The `mqseal` command line, as a library so that its tests can reach the
//! pieces (the password file format, the envelope description, the public
//! identity format).
//!
//! - `mqseal provision mosquitto`, `provision add-client` and `provision
//!   renew`: a Mosquitto 2.0 deployment with a private CA, client
//!   certificates, native `$7$` password hashes, least-privilege ACLs and the
//!   clients' mqseal keys; clients added later; certificates renewed with the
//!   same CA ([`provision`], [`pki`], [`passwd`]).
//! - `mqseal keygen`, `mqseal key` and `mqseal trust`: key files
//!   ([`keycmd`], [`keyfiles`]); `mqseal rekey` ([`rekeycmd`]).
//! - `mqseal seal` and `mqseal open` ([`secure`]); `mqseal pub` and
//!   `mqseal sub` ([`net`]).
//! - `mqseal inspect`: decode an envelope without any key, and with keys say
//!   whether it would be accepted ([`inspect`], [`secure::verdict`]).
//!
//! The user documentation is in the help texts (`mqseal --help`) and in
//! `docs/cli.md`.

#![forbid(unsafe_code)]

use std::io::{Read, Write};
use std::process::ExitCode;

use clap::Parser;

pub mod civil;
pub mod cli;
pub mod files;
pub mod inspect;
pub mod keycmd;
pub mod keyfiles;
pub mod net;
pub mod passwd;
pub mod pki;
pub mod provision;
pub mod rekeycmd;
pub mod secure;
pub mod util;

use cli::{Cli, Command, InspectArgs, KeyArgs, Keygen, Provision, RekeyCommand};

/// Runs the command line with the process's arguments, printing errors as
/// `error: ...` on standard error.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Runs a parsed command line.
pub fn run(cli: &Cli) -> Result<(), String> {
    match &cli.command {
        Command::Inspect(args) => run_inspect(args),
        Command::Provision(Provision::Mosquitto(args)) => {
            print(&provision::mosquitto(args)?.summary)
        }
        Command::Provision(Provision::AddClient(args)) => {
            print(&provision::add_client(args)?.summary)
        }
        Command::Provision(Provision::Renew(args)) => print(&provision::renew(args)?.summary),
        Command::Keygen(Keygen::Identity(args)) => print(&keycmd::keygen_identity(args)?),
        Command::Keygen(Keygen::Keyring(args)) => print(&keycmd::keygen_keyring(args)?),
        Command::Key(cmd) => print(&keycmd::key(cmd)?),
        Command::Trust(cmd) => print(&keycmd::trust(cmd)?),
        Command::Rekey(args) => match &args.command {
            Some(RekeyCommand::Apply(a)) => print(&rekeycmd::apply(a)?),
            None => {
                let summary = rekeycmd::issue(&args.issue)?;
                if args
                    .issue
                    .out
                    .as_deref()
                    .is_some_and(|o| o.as_os_str() == "-")
                {
                    // The message went to standard output.
                    eprint!("{summary}");
                    Ok(())
                } else {
                    print(&summary)
                }
            }
        },
        Command::Seal(args) => secure::seal(args),
        Command::Open(args) => secure::open(args),
        Command::Pub(args) => net::publish(args),
        Command::Sub(args) => net::subscribe(args),
    }
}

fn print(text: &str) -> Result<(), String> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| format!("cannot write to standard output: {e}"))
}

fn run_inspect(args: &InspectArgs) -> Result<(), String> {
    let (input, source) = match &args.file {
        Some(path) => (
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?,
            path.display().to_string(),
        ),
        None => {
            let mut buf = Vec::new();
            std::io::stdin()
                .read_to_end(&mut buf)
                .map_err(|e| format!("cannot read standard input: {e}"))?;
            (buf, "standard input".to_string())
        }
    };
    let bytes = if args.hex {
        inspect::decode_hex(&input)?
    } else {
        input
    };
    let text = inspect::describe(&bytes).map_err(|m| {
        let looks_hex = bytes
            .iter()
            .all(|b| b.is_ascii_hexdigit() || b.is_ascii_whitespace());
        let hint = if bytes.is_empty() {
            format!(" ({source} is empty)")
        } else if !args.hex && looks_hex {
            " (the input looks like hex text: add --hex)".to_string()
        } else {
            String::new()
        };
        format!("malformed envelope: {m}{hint}")
    })?;
    let (Some(topic), Some(protect)) = (&args.topic, args.protect) else {
        return print(&text);
    };
    let keys = KeyArgs {
        keyring: args.keyring.clone(),
        identity: None,
        trust: args.trust.clone(),
    };
    match secure::verdict(&bytes, topic, protect, args.max_age, args.at, &keys)? {
        Ok(lines) => print(&format!("{text}{lines}")),
        Err(lines) => {
            print(&format!("{text}{lines}"))?;
            Err("the envelope would be rejected (see the verdict)".into())
        }
    }
}
