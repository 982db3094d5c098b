//! The subcommands, one module each. [`execute`] runs one and says how it ended.
//!
//! Commands write their results to the writer they are given (standard output in the binary,
//! a buffer in tests), so that every output can be pinned by a test without a process.

mod capture;
mod check;
mod demo;
mod graph_file;
mod map;
mod replay;
mod run;
mod timeline;

use std::io::Write;

pub use capture::{capture, CaptureReport};
pub use check::{check, CheckResult};
pub use demo::demo;
pub use graph_file::read_graph;
pub use map::{map, MapReport};
pub use replay::replay;
pub use run::run;
pub use timeline::{timeline, TimelineReport};

use crate::cli::Command;
use crate::error::CliError;

/// How a command that did its job ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It did its job and found nothing wrong (exit status 0).
    Success,
    /// A replay or check whose verdict differs from CPython's (exit status 1).
    Mismatch,
}

impl Outcome {
    /// The process's exit status.
    pub fn exit_code(self) -> u8 {
        match self {
            Outcome::Success => 0,
            Outcome::Mismatch => 1,
        }
    }
}

/// Runs a subcommand, printing to `out`.
pub fn execute(command: &Command, out: &mut dyn Write) -> Result<Outcome, CliError> {
    match command {
        Command::Demo(args) => demo(args, out),
        Command::Run(args) => run(args, out),
        Command::Replay(args) => replay(args, out),
        Command::Capture(args) => capture(args, out),
        Command::Map(args) => map(args, out),
        Command::Timeline(args) => timeline(args, out),
        Command::Check(args) => check(args, out),
    }
}

/// Writes an SVG picture to `path`.
fn write_svg(path: &std::path::Path, svg: &str) -> Result<(), CliError> {
    std::fs::write(path, svg).map_err(|source| CliError::Write {
        path: path.to_owned(),
        source,
    })
}
