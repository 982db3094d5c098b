//! Built-in workloads: deterministic programs that exercise every tier of a pyheap heap.
//!
//! | workload | what it does |
//! | --- | --- |
//! | `churn` | makes N mixed objects (ints, floats, strs, bytes, tuples, lists, dicts, instances), each replacing a random member of a live set; one in sixteen is also stored in a live list, which closes cycles |
//! | `cycles` | makes N small cycles of five shapes (a list holding itself, a list and a dict, two instances, a tuple in a list, an instance with a finalizer and a list) and drops them; the collector finds them |
//! | `deep-chain` | a chain of N lists, each holding the previous, dropped at once (freed without recursion); then a ring of N lists, dropped and found by a full collection |
//! | `mixed` | N churn operations interleaved with cycles, short chains and manual collections of generation 1 |
//! | `demo` | the representative run of `heap-inspect demo`: atoms, containers, instances with finalizers, cycles, a chain of 100,000 lists, churn, and a full collection |
//!
//! Every workload is a function of its size and seed only (the generator is [`Rng`]), with
//! automatic collection on, CPython's thresholds: two runs print the same counts.
//!
//! [`Rng`]: crate::rng::Rng

mod chain;
mod churn;
mod cycles;
mod demo;
mod driver;
mod mixed;

use std::fmt;

use clap::ValueEnum;
use pyheap::{Config, Heap, ObjRef};
use serde::Serialize;

pub use driver::{Collections, Details, Driver, NoObserver, Observer, PhaseReport};

use crate::error::CliError;

/// A workload `run` and `timeline` can run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Workload {
    /// Mixed objects replacing members of a live set.
    Churn,
    /// Small cycles of five shapes, dropped and collected.
    Cycles,
    /// A chain of N lists dropped, and a ring of N lists collected.
    DeepChain,
    /// Churn interleaved with cycles, chains and manual collections.
    Mixed,
}

impl Workload {
    /// The workload's name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Churn => "churn",
            Workload::Cycles => "cycles",
            Workload::DeepChain => "deep-chain",
            Workload::Mixed => "mixed",
        }
    }

    /// The size used when `--n` is not given.
    pub fn default_n(self) -> u64 {
        match self {
            Workload::Churn => 100_000,
            Workload::Cycles => 10_000,
            Workload::DeepChain => 100_000,
            Workload::Mixed => 50_000,
        }
    }
}

/// A heap set up like CPython 3.11's (automatic collection on, default thresholds).
pub fn new_heap() -> Result<std::pin::Pin<Box<Heap>>, CliError> {
    Ok(Heap::new(Config::default())?)
}

/// What a workload did: its phases.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RunReport {
    /// The workload's name.
    pub workload: &'static str,
    /// Its size (`--n`; `null` for the demo, whose sizes are fixed).
    pub n: Option<u64>,
    /// Its seed.
    pub seed: u64,
    /// Its phases, in order.
    pub phases: Vec<PhaseReport>,
    /// Wall-clock nanoseconds of the whole run (absent with `--no-timings`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub elapsed_ns: Option<u64>,
}

impl fmt::Display for RunReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "workload {}", self.workload)?;
        if let Some(n) = self.n {
            write!(f, ", n = {n}")?;
        }
        write!(f, ", seed {}", self.seed)?;
        if let Some(ns) = self.elapsed_ns {
            write!(f, ", {}", crate::output::Nanos(ns))?;
        }
        writeln!(f)?;
        writeln!(f)?;
        write!(f, "{}", driver::PhaseTable(&self.phases))
    }
}

/// Runs `workload` of size `n` on `heap`. Returns its report and the objects it leaves alive
/// (drop them to let the heap go back to its start).
pub fn run<'h>(
    heap: &'h Heap,
    workload: Workload,
    n: u64,
    seed: u64,
    observer: &mut dyn Observer,
    timings: bool,
) -> Result<(RunReport, Vec<ObjRef<'h>>), CliError> {
    let start = std::time::Instant::now();
    let mut driver = Driver::new(heap, seed, observer, timings);
    let phase = match workload {
        Workload::Churn => driver.phase("churn", |d| churn::churn(d, n)),
        Workload::Cycles => driver.phase("cycles", |d| cycles::cycles(d, n, true)),
        Workload::DeepChain => driver.phase("deep-chain", |d| chain::deep_chain(d, n)),
        Workload::Mixed => driver.phase("mixed", |d| mixed::mixed(d, n)),
    }?;
    let report = RunReport {
        workload: workload.name(),
        n: Some(n),
        seed,
        phases: vec![phase],
        elapsed_ns: timings.then(|| start.elapsed().as_nanos() as u64),
    };
    Ok((report, driver.into_kept()))
}

/// Runs the demo: the representative workload of `heap-inspect demo`.
pub fn run_demo<'h>(
    heap: &'h Heap,
    seed: u64,
    observer: &mut dyn Observer,
    timings: bool,
) -> Result<(RunReport, Vec<ObjRef<'h>>), CliError> {
    let start = std::time::Instant::now();
    let mut driver = Driver::new(heap, seed, observer, timings);
    let phases = demo::demo(&mut driver)?;
    let report = RunReport {
        workload: "demo",
        n: None,
        seed,
        phases,
        elapsed_ns: timings.then(|| start.elapsed().as_nanos() as u64),
    };
    Ok((report, driver.into_kept()))
}

/// 128 printable ASCII characters: strings of the workloads are slices of it.
const TEXT: &str = "the quick brown fox jumps over the lazy dog; THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG: 0123456789 pack my box with five dozen!";

/// A string of `len` characters (at most 64) starting at a random place of [`TEXT`].
pub(crate) fn random_text(driver: &mut Driver<'_, '_>, len: usize) -> &'static str {
    let len = len.min(64);
    let start = driver.rng.index(TEXT.len() - len);
    &TEXT[start..start + len]
}
