//! `heap-inspect timeline --svg OUT.svg [WORKLOAD]`: the generations and the pauses over a
//! workload's run.
//!
//! A [`Recorder`] hears every operation of the workload and samples the generations' sizes
//! every `--every` operations and after every collection; a `gc.callbacks` entry times each
//! collection from its start to its stop.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::io::Write;
use std::rc::Rc;
use std::time::Instant;

use pyheap::gengc::Phase;
use pyheap::Heap;
use serde::Serialize;

use super::{write_svg, Outcome};
use crate::cli::TimelineArgs;
use crate::error::CliError;
use crate::output::{emit, Nanos};
use crate::svg::timeline::{self, Pause, Sample, Series};
use crate::workload::{new_heap, Observer, RunReport, Workload};

/// About this many samples are taken when `--every` is not given.
const SAMPLES: u64 = 600;

/// What the timeline shows, in numbers, and the workload's report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TimelineReport {
    /// Generation samples taken.
    pub samples: u64,
    /// Collections of generations 0, 1 and 2.
    pub collections: [u64; 3],
    /// The longest pause (absent with `--no-timings`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub longest_pause_ns: Option<u64>,
    /// All pauses together (absent with `--no-timings`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_pause_ns: Option<u64>,
    /// The workload's own report.
    pub run: RunReport,
}

impl fmt::Display for TimelineReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = self.collections;
        write!(
            f,
            "timeline: {} samples, {} collections (generation 0: {}, 1: {}, 2: {})",
            self.samples,
            c.iter().sum::<u64>(),
            c[0],
            c[1],
            c[2]
        )?;
        if let (Some(longest), Some(total)) = (self.longest_pause_ns, self.total_pause_ns) {
            write!(
                f,
                "; longest pause {}, all pauses {}",
                Nanos(longest),
                Nanos(total)
            )?;
        }
        writeln!(f)?;
        writeln!(f)?;
        write!(f, "{}", self.run)
    }
}

/// Samples the generations (see the module's docs).
struct Recorder {
    every: u64,
    samples: Vec<Sample>,
    ops: Rc<Cell<u64>>,
    collections: Rc<Cell<u64>>,
    seen: u64,
}

impl Recorder {
    fn sample(&mut self, heap: &Heap, op: u64) {
        let generations = heap.gc().stats().generations.map(|g| g.objects);
        self.samples.push(Sample { op, generations });
    }
}

impl Observer for Recorder {
    fn step(&mut self, heap: &Heap, ops: u64) {
        self.ops.set(ops);
        let collections = self.collections.get();
        if ops.is_multiple_of(self.every) || collections != self.seen {
            self.seen = collections;
            self.sample(heap, ops);
        }
    }
}

/// The default sampling period: about [`SAMPLES`] samples over the workload's operations
/// (`deep-chain` makes two lists per unit of `n`), at least every operation.
fn default_every(workload: Workload, n: u64) -> u64 {
    let per_n = if workload == Workload::DeepChain {
        2
    } else {
        1
    };
    (n.saturating_mul(per_n) / SAMPLES).max(1)
}

/// Runs the workload while recording, draws the picture, prints the numbers and the stats.
pub fn timeline(args: &TimelineArgs, out: &mut dyn Write) -> Result<Outcome, CliError> {
    let heap = new_heap()?;
    let n = args.n.unwrap_or(args.workload.default_n());
    let every = args
        .every
        .unwrap_or_else(|| default_every(args.workload, n));
    let ops = Rc::new(Cell::new(0));
    let collections = Rc::new(Cell::new(0));
    let pauses: Rc<RefCell<Vec<Pause>>> = Rc::default();
    let started: Rc<Cell<Option<Instant>>> = Rc::default();
    let callback = {
        let (ops, collections, pauses) = (ops.clone(), collections.clone(), pauses.clone());
        heap.gc()
            .add_callback(Box::new(move |phase, info| match phase {
                Phase::Start => started.set(Some(Instant::now())),
                Phase::Stop => {
                    let ns = started.take().map_or(0, |t| t.elapsed().as_nanos() as u64);
                    pauses.borrow_mut().push(Pause {
                        op: ops.get() + 1,
                        generation: info.generation,
                        ns,
                        collected: info.collected,
                    });
                    collections.set(collections.get() + 1);
                }
            }))
    };
    let mut recorder = Recorder {
        every,
        samples: Vec::new(),
        ops,
        collections,
        seen: 0,
    };
    recorder.sample(&heap, 0);
    let timings = args.output.timings();
    let (run, kept) =
        crate::workload::run(&heap, args.workload, n, args.seed, &mut recorder, timings)?;
    heap.gc().remove_callback(callback);
    let total_ops = recorder.ops.get();
    if recorder.samples.last().map(|s| s.op) != Some(total_ops) {
        recorder.sample(&heap, total_ops);
    }
    let mut pauses = pauses.take();
    if !timings {
        pauses.iter_mut().for_each(|p| p.ns = 0);
    }
    let subject = format!("{}, n = {n}, seed {}", args.workload.name(), args.seed);
    let svg = timeline::render(&Series {
        subject: &subject,
        samples: &recorder.samples,
        pauses: &pauses,
        total_ops,
        timed: timings,
    });
    write_svg(&args.svg, &svg)?;
    let mut by_generation = [0u64; 3];
    for pause in &pauses {
        by_generation[pause.generation.min(2)] += 1;
    }
    let report = TimelineReport {
        samples: recorder.samples.len() as u64,
        collections: by_generation,
        longest_pause_ns: timings.then(|| pauses.iter().map(|p| p.ns).max().unwrap_or(0)),
        total_pause_ns: timings.then(|| pauses.iter().map(|p| p.ns).sum()),
        run,
    };
    let stats = heap.stats();
    drop(kept);
    emit(out, &args.output, "timeline", &report, Some(stats))?;
    Ok(Outcome::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_period_does_not_overflow() {
        assert_eq!(default_every(Workload::Mixed, 0), 1);
        assert_eq!(default_every(Workload::Mixed, 60_000), 100);
        assert_eq!(default_every(Workload::DeepChain, 60_000), 200);
        // `timeline deep-chain --n 18446744073709551615` overflowed `n * 2` (a panic in
        // debug builds, a wrong period in release ones).
        assert_eq!(
            default_every(Workload::DeepChain, u64::MAX),
            u64::MAX / SAMPLES
        );
    }
}
