//! The `mqseal` command line, as a library so that its tests can reach the
//! pieces (the password file format, the envelope description).
//!
//! - `mqseal inspect`: decode an envelope without any key ([`inspect`]).
//! - `mqseal provision mosquitto` and `provision add-client`: a Mosquitto 2.0
//!   deployment with a private CA, client certificates, native `$7$` password
//!   hashes and least-privilege ACLs ([`provision`], [`pki`], [`passwd`]).
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
pub mod passwd;
pub mod pki;
pub mod provision;

use cli::{Cli, Command, InspectArgs, Provision};

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
    print(&text)
}
