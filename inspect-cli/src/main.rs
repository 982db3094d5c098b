//! `heap-inspect`: the pyheap inspector's command line (see `heap-inspect --help`).
//!
//! Exit status: 0 when the command did its job, 1 when a replay or check found a verdict that
//! differs from CPython's, 2 on any error (one line on stderr: a missing or malformed file
//! with its line and problem, a bad argument, a failed exporter).

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use inspect_cli::cli::Cli;
use inspect_cli::commands::execute;
use inspect_cli::error::{CliError, EXIT_ERROR};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match execute(&cli.command, &mut out) {
        Ok(outcome) => ExitCode::from(outcome.exit_code()),
        // A reader that went away (`heap-inspect demo | head`) is not an error.
        Err(CliError::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(error) => {
            let _ = out.flush();
            eprintln!("heap-inspect: {error}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}
