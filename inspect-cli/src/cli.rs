//! The command line: subcommands and their arguments (clap, derive).
//!
//! Every subcommand has `--help`; every one that prints statistics takes [`OutputArgs`]
//! (`--format text|json`, `--no-timings`).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::output::OutputArgs;
use crate::workload::Workload;

/// Inspects pyheap heaps: runs workloads, replays heaps exported from CPython 3.11, prints
/// the statistics of every tier and draws the heap.
#[derive(Debug, Parser)]
#[command(name = "heap-inspect", version)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// A subcommand.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Runs the built-in representative workload and prints what it did and the heap's stats.
    Demo(DemoArgs),
    /// Runs one built-in workload and prints what it did and the heap's stats.
    Run(RunArgs),
    /// Replays a heapgraph file in a pyheap heap and compares pyheap's verdict with CPython's.
    ///
    /// Exit status: 0 when pyheap's full collection finds exactly CPython's garbage, 1 when
    /// it does not, 2 when the file is missing or malformed.
    Replay(ReplayArgs),
    /// Runs a Python workload under CPython 3.11 and exports its heap as a heapgraph file.
    Capture(CaptureArgs),
    /// Draws the heap's arenas and pools as SVG (after the demo, a workload, or a replay).
    Map(MapArgs),
    /// Runs a workload and draws the generations' sizes and the collection pauses over time.
    Timeline(TimelineArgs),
    /// Validates a heapgraph file and compares section 5's garbage with CPython's verdict.
    ///
    /// Exit status: 0 on a match, 1 on a mismatch, 2 when the file is missing or malformed.
    Check(CheckArgs),
}

/// `demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// The seed of the workload's random choices.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Output options.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The workload.
    #[arg(value_enum)]
    pub workload: Workload,
    /// Its size (operations, cycles or chain length; each workload has its default).
    #[arg(long)]
    pub n: Option<u64>,
    /// The seed of its random choices.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Output options.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The heapgraph file (JSON Lines, `shared/heapgraph-format.md`).
    pub graph: PathBuf,
    /// Also draw the replayed heap, before any collection, as SVG.
    #[arg(long, value_name = "OUT.svg")]
    pub svg: Option<PathBuf>,
    /// The replayed heap's limit.
    #[command(flatten)]
    pub limit: HeapLimitArgs,
    /// Output options.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// The limit of a heap that a file decides the size of (`replay`, `map --graph`).
#[derive(Debug, Clone, Copy, Args)]
pub struct HeapLimitArgs {
    /// The most memory the replayed heap may take, in bytes or with a K, M or G suffix (powers
    /// of 1024): past it the replay stops with an error rather than exhaust the machine (a
    /// file may claim objects of any size). Default: half of this machine's memory.
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes)]
    pub heap_limit: Option<usize>,
}

/// A byte count: digits, then optionally K, M or G (KiB, MiB, GiB).
pub fn parse_bytes(text: &str) -> Result<usize, String> {
    let (digits, shift) = match text.as_bytes().last() {
        Some(b'K' | b'k') => (&text[..text.len() - 1], 10),
        Some(b'M' | b'm') => (&text[..text.len() - 1], 20),
        Some(b'G' | b'g') => (&text[..text.len() - 1], 30),
        _ => (text, 0),
    };
    let n: usize = digits.parse().map_err(|e: std::num::ParseIntError| {
        if *e.kind() == std::num::IntErrorKind::PosOverflow {
            format!("`{text}` is too large")
        } else {
            format!("`{text}` is not a byte count (digits, then K, M or G)")
        }
    })?;
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("`{text}` is too large"))
}

/// `capture`.
#[derive(Debug, Args)]
pub struct CaptureArgs {
    /// The Python workload: a script that defines `build()`.
    pub script: PathBuf,
    /// The heapgraph file to write.
    #[arg(short, long, value_name = "GRAPH.jsonl")]
    pub output: PathBuf,
    /// Load the workload without `runpy` (smaller files; see the exporter's docstring).
    #[arg(long)]
    pub lean: bool,
    /// The Python interpreter (CPython 3.11).
    #[arg(long, default_value = "python3")]
    pub python: String,
}

/// `map`.
#[derive(Debug, Args)]
pub struct MapArgs {
    /// The SVG file to write.
    #[arg(long, value_name = "OUT.svg")]
    pub svg: PathBuf,
    /// Draw the heap of this replayed heapgraph file (before any collection) instead of the
    /// demo's.
    #[arg(long, value_name = "GRAPH.jsonl", conflicts_with = "workload")]
    pub graph: Option<PathBuf>,
    /// Draw the heap a built-in workload leaves instead of the demo's.
    #[arg(long, value_enum)]
    pub workload: Option<Workload>,
    /// The workload's size.
    #[arg(long, requires = "workload")]
    pub n: Option<u64>,
    /// The seed of the workload's (or the demo's) random choices.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The replayed heap's limit (with --graph).
    #[command(flatten)]
    pub limit: HeapLimitArgs,
    /// Output options.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `timeline`.
#[derive(Debug, Args)]
pub struct TimelineArgs {
    /// The SVG file to write.
    #[arg(long, value_name = "OUT.svg")]
    pub svg: PathBuf,
    /// The workload.
    #[arg(value_enum, default_value_t = Workload::Mixed)]
    pub workload: Workload,
    /// Its size.
    #[arg(long)]
    pub n: Option<u64>,
    /// The seed of its random choices.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Sample the generations every this many operations (default: about 600 samples),
    /// and after every collection.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub every: Option<u64>,
    /// Output options.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The heapgraph file (JSON Lines).
    pub graph: PathBuf,
    /// Print text (`match` or the differences) or the JSON envelope.
    #[arg(long, value_enum, default_value_t = crate::output::Format::Text)]
    pub format: crate::output::Format,
}
