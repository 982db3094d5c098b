//! What a command can fail with, and the exit status each failure gives.
//!
//! Every failure is one line on stderr (`heap-inspect: ` and the [`CliError`]'s message) and
//! exit status [`EXIT_ERROR`]. A replay whose verdict differs from CPython's is not an error:
//! it is an [`Outcome`](crate::commands::Outcome) with its own status.

use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;

use thiserror::Error;

use crate::heapgraph::{printable, ReadError};

/// A path as one line of a message: control characters escaped.
fn shown(path: &Path) -> String {
    printable(&path.display().to_string())
}

/// Exit status of a run that failed: a malformed or missing file, an unusable argument, a
/// failed exporter, an output that could not be written (clap's usage errors use it too).
pub const EXIT_ERROR: u8 = 2;

/// A command that could not do its job.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CliError {
    /// An input file could not be opened.
    #[error("{}: {source}", shown(path))]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A heapgraph file breaks the format (the error names the line and the problem).
    #[error("{}: {source}", shown(path))]
    Malformed {
        /// The file.
        path: PathBuf,
        /// The reader's error: `line N: problem`.
        #[source]
        source: ReadError,
    },
    /// An output file could not be written.
    #[error("cannot write {}: {source}", shown(path))]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// Standard output could not be written.
    #[error("cannot write the output: {0}")]
    Output(#[source] io::Error),
    /// The pyheap heap could not be made.
    #[error("cannot make the heap: {0}")]
    Config(#[from] pyheap::ConfigError),
    /// The heap refused an operation (out of memory under its limit).
    #[error("the heap refused an operation: {0}")]
    Heap(#[from] pyheap::HeapError),
    /// The replayed heap went over its limit (a file may claim objects of any size).
    #[error("the replayed heap went over its limit: {0} (--heap-limit BYTES sets the limit)")]
    HeapLimit(#[source] pyheap::HeapError),
    /// A heapgraph object claims more bytes than the replayed heap may hold: refused before
    /// the build (it could never fit; the build would make a stand-in of at most 256 MiB).
    #[error("{}: line {line}: object {id} claims {size} bytes, more than the replayed heap's limit of {limit} (--heap-limit BYTES sets the limit)", shown(path))]
    ObjectTooLarge {
        /// The file.
        path: PathBuf,
        /// The object's line.
        line: u64,
        /// The object's id.
        id: u32,
        /// Its `size`.
        size: u64,
        /// The heap's limit.
        limit: usize,
    },
    /// A graph built by hand (not read from a file, which is checked) has a reference to no
    /// object of it.
    #[error("the graph's object {object} refers to {reference}, which is not one of its {objects} objects")]
    DanglingRef {
        /// The referring object's id.
        object: u32,
        /// The reference.
        reference: u32,
        /// How many objects the graph has.
        objects: usize,
    },
    /// The collector refused a call.
    #[error("the collector refused a call: {0}")]
    Gc(#[from] pyheap::gengc::GcError),
    /// `capture`: the Python interpreter is not installed.
    #[error("`{}` was not found: capture runs the exporter under CPython 3.11 (install python3, or name one with --python)", printable(program))]
    PythonMissing {
        /// The program that was looked for.
        program: String,
    },
    /// `capture`: the Python interpreter could not be started.
    #[error("cannot run `{}`: {source}", printable(program))]
    Spawn {
        /// The program.
        program: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// `capture`: the exporter ran and failed (its own messages went to stderr before).
    #[error("the exporter failed on {} ({status})", shown(script))]
    Exporter {
        /// The workload script.
        script: PathBuf,
        /// How the interpreter exited.
        status: ExitStatus,
    },
    /// `capture`: the exporter's files could not be written to a temporary directory.
    #[error("cannot prepare the exporter in {}: {source}", shown(dir))]
    ExporterSetup {
        /// The temporary directory.
        dir: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
}

impl CliError {
    /// Wraps an error writing standard output.
    pub fn output(error: io::Error) -> Self {
        CliError::Output(error)
    }
}
