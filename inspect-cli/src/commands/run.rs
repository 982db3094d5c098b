//! `heap-inspect run WORKLOAD`: one built-in workload, what it did and the heap's stats.

use std::io::Write;

use super::Outcome;
use crate::cli::RunArgs;
use crate::error::CliError;
use crate::output::emit;
use crate::workload::{new_heap, NoObserver};

/// Runs the workload and prints its report and the stats of the heap it leaves (its live set
/// still alive).
pub fn run(args: &RunArgs, out: &mut dyn Write) -> Result<Outcome, CliError> {
    let heap = new_heap()?;
    let n = args.n.unwrap_or(args.workload.default_n());
    let (report, kept) = crate::workload::run(
        &heap,
        args.workload,
        n,
        args.seed,
        &mut NoObserver,
        args.output.timings(),
    )?;
    let stats = heap.stats();
    drop(kept);
    emit(out, &args.output, "run", &report, Some(stats))?;
    Ok(Outcome::Success)
}
