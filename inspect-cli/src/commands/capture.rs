//! `heap-inspect capture SCRIPT.py -o GRAPH.jsonl`: runs the project's exporter under
//! CPython 3.11 and checks the file it writes.
//!
//! The exporter's two Python files are embedded in the binary and written to a fresh
//! temporary directory for each run, so the binary works from any directory (the launcher
//! finds its implementation beside itself).

use std::fmt;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::Serialize;

use super::{read_graph, Outcome};
use crate::cli::CaptureArgs;
use crate::error::CliError;
use crate::heapgraph::{check, printable};

/// The exporter's launcher (`python/export_heapgraph.py`).
const LAUNCHER: &str = include_str!("../../python/export_heapgraph.py");
/// The exporter itself (`python/heapgraph_exporter.py`).
const EXPORTER: &str = include_str!("../../python/heapgraph_exporter.py");

/// What a capture wrote.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CaptureReport {
    /// The workload script.
    pub script: String,
    /// The heapgraph file written.
    pub graph: String,
    /// Its objects.
    pub objects: u64,
    /// Its references.
    pub references: u64,
    /// Its tracked objects.
    pub tracked: u64,
    /// CPython's garbage (the trailer's).
    pub garbage: u64,
    /// Whether section 5's garbage, computed from the file, is the trailer's.
    pub check_matches: bool,
}

impl fmt::Display for CaptureReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "captured {} into {}: {} objects, {} references, {} tracked, {} garbage objects; check: {}",
            printable(&self.script),
            printable(&self.graph),
            self.objects,
            self.references,
            self.tracked,
            self.garbage,
            if self.check_matches { "match" } else { "mismatch" }
        )
    }
}

/// Runs the exporter on `args.script`, writing `args.output`, then reads and checks the file.
pub fn capture(args: &CaptureArgs, out: &mut dyn Write) -> Result<Outcome, CliError> {
    if !args.script.is_file() {
        return Err(CliError::Open {
            path: args.script.clone(),
            source: io::Error::new(io::ErrorKind::NotFound, "no such workload script"),
        });
    }
    let created = check_output(args)?;
    let dir = ExporterDir::create()?;
    let mut command = Command::new(&args.python);
    command.arg(dir.launcher());
    if args.lean {
        command.arg("--lean");
    }
    // The workload's prints go to stderr: stdout carries this command's report alone.
    let status = command
        .arg(&args.script)
        .arg(&args.output)
        .stdin(Stdio::null())
        .stdout(Stdio::from(io::stderr()))
        .status()
        .map_err(|source| match source.kind() {
            io::ErrorKind::NotFound => CliError::PythonMissing {
                program: args.python.clone(),
            },
            _ => CliError::Spawn {
                program: args.python.clone(),
                source,
            },
        })?;
    drop(dir);
    if !status.success() {
        if created {
            // Only the empty file made by `check_output`, or what the exporter left of it.
            let _ = std::fs::remove_file(&args.output);
        }
        return Err(CliError::Exporter {
            script: args.script.clone(),
            status,
        });
    }
    let (graph, _) = read_graph(&args.output).inspect_err(|_| {
        if created {
            // What the exporter left is no heapgraph (a workload that exits the interpreter
            // leaves the empty file made by `check_output`): not worth keeping.
            let _ = std::fs::remove_file(&args.output);
        }
    })?;
    let verdict = check(&graph);
    let counts = graph.counts();
    let report = CaptureReport {
        script: args.script.display().to_string(),
        graph: args.output.display().to_string(),
        objects: graph.len() as u64,
        references: counts.edges,
        tracked: counts.tracked,
        garbage: graph.trailer.garbage.len() as u64,
        check_matches: verdict.is_match(),
    };
    write!(out, "{report}").map_err(CliError::output)?;
    Ok(if report.check_matches {
        Outcome::Success
    } else {
        Outcome::Mismatch
    })
}

/// Checks, before a capture that may take minutes, that the heapgraph file can be written
/// (its directory exists, it is not a directory, it may be created) and that it is not the
/// workload script. Returns whether the file was created by the check.
fn check_output(args: &CaptureArgs) -> Result<bool, CliError> {
    let unwritable = |source| CliError::Write {
        path: args.output.clone(),
        source,
    };
    let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if same(&args.output, &args.script) {
        return Err(unwritable(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "it is the workload script",
        )));
    }
    let existed = args.output.exists();
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(&args.output)
        .map_err(unwritable)?;
    Ok(!existed)
}

/// A temporary directory holding the exporter's files, removed when dropped: of a random
/// name, made for this run only (readable by its owner alone, and never a directory that
/// existed before, which someone else could have filled).
struct ExporterDir {
    dir: tempfile::TempDir,
}

impl ExporterDir {
    fn create() -> Result<Self, CliError> {
        let dir = tempfile::Builder::new()
            .prefix("heap-inspect-exporter-")
            .tempdir()
            .map_err(|source| CliError::ExporterSetup {
                dir: std::env::temp_dir(),
                source,
            })?;
        let dir = ExporterDir { dir };
        let setup = |source| CliError::ExporterSetup {
            dir: dir.dir.path().to_path_buf(),
            source,
        };
        std::fs::write(dir.launcher(), LAUNCHER).map_err(setup)?;
        std::fs::write(dir.dir.path().join("heapgraph_exporter.py"), EXPORTER).map_err(setup)?;
        Ok(dir)
    }

    fn launcher(&self) -> PathBuf {
        self.dir.path().join("export_heapgraph.py")
    }
}
