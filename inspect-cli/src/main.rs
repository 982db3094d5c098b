//! `heap-inspect`: the pyheap inspector's command line.
//!
//! For now one subcommand: `heap-inspect check GRAPH.jsonl` reads a heapgraph file, checks every
//! rule of the format, computes the garbage set of section 5 and compares it with CPython's.
//! It prints `match` and exits 0, or prints the differences and exits 1; a malformed or
//! unreadable file is reported on stderr with exit status 2.

use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use inspect_cli::heapgraph::{check, HeapGraph};

/// Inspects heaps: heapgraph files exported from CPython 3.11.
#[derive(Parser)]
#[command(name = "heap-inspect", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validates a heapgraph file and compares section 5's garbage with CPython's verdict.
    Check {
        /// The heapgraph file (JSON Lines).
        graph: PathBuf,
    },
}

/// Exit status of a file that cannot be read or breaks the format.
const MALFORMED: u8 = 2;

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Check { graph } => check_file(&graph),
    }
}

fn check_file(path: &std::path::Path) -> ExitCode {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) => {
            eprintln!("heap-inspect: {}: {e}", path.display());
            return ExitCode::from(MALFORMED);
        }
    };
    let graph = match HeapGraph::read(BufReader::with_capacity(1 << 16, file)) {
        Ok(graph) => graph,
        Err(e) => {
            eprintln!("heap-inspect: {}: {e}", path.display());
            return ExitCode::from(MALFORMED);
        }
    };
    let report = check(&graph);
    println!("{}", report.render(&graph));
    if report.is_match() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
