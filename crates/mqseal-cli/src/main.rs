//! The `mqseal` command line. See `mqseal --help`.

use std::process::ExitCode;

fn main() -> ExitCode {
    mqseal_cli::main()
}
