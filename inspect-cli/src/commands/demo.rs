//! `heap-inspect demo`: the representative workload, its phases and the heap's stats.

use std::io::Write;

use super::Outcome;
use crate::cli::DemoArgs;
use crate::error::CliError;
use crate::output::emit;
use crate::workload::{new_heap, run_demo, NoObserver};

/// Runs the demo and prints its phases and the stats of the heap it leaves (its survivors
/// still alive).
pub fn demo(args: &DemoArgs, out: &mut dyn Write) -> Result<Outcome, CliError> {
    let heap = new_heap()?;
    let (report, kept) = run_demo(&heap, args.seed, &mut NoObserver, args.output.timings())?;
    let stats = heap.stats();
    drop(kept);
    emit(out, &args.output, "demo", &report, Some(stats))?;
    Ok(Outcome::Success)
}
