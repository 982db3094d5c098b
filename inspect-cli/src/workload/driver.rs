//! [`Driver`]: runs a workload's operations on a heap, counts them, and measures each phase.
//!
//! A workload is a list of phases; each phase is a closure over the driver. The driver gives
//! the phase the heap, a seeded [`Rng`], a place to keep objects alive past the workload
//! ([`Driver::keep`], so that `map` can draw the heap the workload leaves), and counts:
//! operations (every [`Driver::step`] also tells the [`Observer`], which is how `timeline`
//! samples the generations) and manual collections. [`Driver::phase`] turns the difference of
//! the heap's counters before and after a phase into a [`PhaseReport`].

use std::fmt;
use std::time::Instant;

use pyheap::gengc::GcStats;
use pyheap::refcount::RcStats;
use pyheap::{Heap, ObjRef};
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use crate::error::CliError;
use crate::rng::Rng;

/// Hears every operation of a workload (after it is done).
pub trait Observer {
    /// One operation was done on `heap`; `ops` operations were done so far.
    fn step(&mut self, heap: &Heap, ops: u64);
}

/// An observer that does nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoObserver;

impl Observer for NoObserver {
    fn step(&mut self, _heap: &Heap, _ops: u64) {}
}

/// Runs a workload's phases on one heap.
pub struct Driver<'h, 'o> {
    /// The heap the workload runs on.
    pub heap: &'h Heap,
    /// The workload's random numbers.
    pub rng: Rng,
    observer: &'o mut dyn Observer,
    timings: bool,
    ops: u64,
    manual: u64,
    kept: Vec<ObjRef<'h>>,
}

impl<'h, 'o> Driver<'h, 'o> {
    /// A driver over `heap`, seeded with `seed`; `timings` says whether phases are timed.
    pub fn new(heap: &'h Heap, seed: u64, observer: &'o mut dyn Observer, timings: bool) -> Self {
        Driver {
            heap,
            rng: Rng::new(seed),
            observer,
            timings,
            ops: 0,
            manual: 0,
            kept: Vec::new(),
        }
    }

    /// One operation was done: counts it and tells the observer.
    pub fn step(&mut self) {
        self.ops += 1;
        self.observer.step(self.heap, self.ops);
    }

    /// Operations done so far.
    pub fn ops(&self) -> u64 {
        self.ops
    }

    /// `gc.collect(generation)`, counted as a manual collection and as an operation.
    pub fn collect(&mut self, generation: usize) -> Result<u64, CliError> {
        self.manual += 1;
        let found = self.heap.gc().collect(generation)?;
        self.step();
        Ok(found)
    }

    /// Keeps `obj` alive until the driver's objects are taken with [`Driver::into_kept`].
    pub fn keep(&mut self, obj: ObjRef<'h>) {
        self.kept.push(obj);
    }

    /// The objects the workload kept alive.
    pub fn into_kept(self) -> Vec<ObjRef<'h>> {
        self.kept
    }

    /// Runs one phase and reports what it did to the heap. The closure returns its own
    /// counts ([`Details`]).
    pub fn phase(
        &mut self,
        name: &str,
        body: impl FnOnce(&mut Self) -> Result<Details, CliError>,
    ) -> Result<PhaseReport, CliError> {
        let before = Counters::of(self.heap);
        let manual_before = self.manual;
        let ops_before = self.ops;
        let start = Instant::now();
        let details = body(self)?;
        let elapsed = start.elapsed().as_nanos() as u64;
        let after = Counters::of(self.heap);
        Ok(PhaseReport::new(
            name,
            details,
            &before,
            &after,
            self.ops - ops_before,
            self.manual - manual_before,
            self.timings.then_some(elapsed),
        ))
    }
}

/// The counters a phase report is the difference of.
struct Counters {
    rc: RcStats,
    gc: GcStats,
}

impl Counters {
    fn of(heap: &Heap) -> Self {
        Counters {
            rc: heap.gc().rc().stats(),
            gc: heap.gc().stats(),
        }
    }

    fn collections(&self) -> [u64; 3] {
        self.gc.generations.map(|g| g.stats.collections)
    }
}

/// A phase's own counts, in the order the phase gives them (`cycles_made = 5000`). JSON
/// renders them as an object whose keys (snake_case) keep that order; text prints the names
/// with spaces.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Details(pub Vec<(&'static str, u64)>);

impl Details {
    /// No counts.
    pub fn new() -> Self {
        Details::default()
    }

    /// Adds a count.
    pub fn with(mut self, name: &'static str, value: u64) -> Self {
        self.0.push((name, value));
        self
    }
}

impl Serialize for Details {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, value) in &self.0 {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

/// The collections that ran during a phase.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Collections {
    /// Collections the thresholds started.
    pub automatic: u64,
    /// `gc.collect()` calls of the workload.
    pub manual: u64,
    /// Collections of each generation (automatic and manual).
    pub by_generation: [u64; 3],
    /// Unreachable objects they found.
    pub unreachable: u64,
    /// Of those, objects found uncollectable (legacy finalizers).
    pub uncollectable: u64,
}

/// What one phase of a workload did to the heap.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PhaseReport {
    /// The phase's name.
    pub name: String,
    /// Operations the phase did (each object made, link set or collection is one).
    pub operations: u64,
    /// Objects allocated during the phase.
    pub objects_made: u64,
    /// Objects freed during the phase.
    pub objects_freed: u64,
    /// Objects alive at its end (the heap's immortal small ints and `None` included).
    pub objects_alive: u64,
    /// Containers the collector tracks at its end.
    pub tracked: u64,
    /// The collections that ran.
    pub collections: Collections,
    /// Finalizers run (`__del__`).
    pub finalizers_run: u64,
    /// Deaths deferred by the trashcan (deallocation without recursion).
    pub deferred_frees: u64,
    /// The phase's own counts.
    pub details: Details,
    /// Wall-clock nanoseconds (absent with `--no-timings`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub elapsed_ns: Option<u64>,
}

impl PhaseReport {
    fn new(
        name: &str,
        details: Details,
        before: &Counters,
        after: &Counters,
        operations: u64,
        manual: u64,
        elapsed_ns: Option<u64>,
    ) -> Self {
        let (b, a) = (before.collections(), after.collections());
        let by_generation = [0, 1, 2].map(|g| a[g] - b[g]);
        let total: u64 = by_generation.iter().sum();
        let sum = |c: &Counters, f: fn(&pyheap::gengc::GenerationStats) -> u64| -> u64 {
            c.gc.generations.iter().map(|g| f(&g.stats)).sum()
        };
        PhaseReport {
            name: name.to_owned(),
            operations,
            objects_made: after.rc.allocated - before.rc.allocated,
            objects_freed: after.rc.freed - before.rc.freed,
            objects_alive: after.rc.live,
            tracked: after.gc.generations.iter().map(|g| g.objects).sum(),
            collections: Collections {
                automatic: total.saturating_sub(manual),
                manual,
                by_generation,
                unreachable: sum(after, |s| s.collected) - sum(before, |s| s.collected),
                uncollectable: sum(after, |s| s.uncollectable) - sum(before, |s| s.uncollectable),
            },
            finalizers_run: after.rc.finalizers_run - before.rc.finalizers_run,
            deferred_frees: after.rc.deferred - before.rc.deferred,
            details,
            elapsed_ns,
        }
    }
}

/// The phases as a table, then each phase's own counts.
pub(crate) struct PhaseTable<'a>(pub &'a [PhaseReport]);

impl fmt::Display for PhaseTable<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let timed = self.0.iter().any(|p| p.elapsed_ns.is_some());
        write!(
            f,
            "{:<18} {:>9} {:>9} {:>9} {:>9} {:>8} {:>7} {:>11} {:>6}",
            "phase", "ops", "made", "freed", "alive", "tracked", "gc auto", "gc manual", "found"
        )?;
        if timed {
            write!(f, " {:>10}", "time")?;
        }
        writeln!(f)?;
        for p in self.0 {
            write!(
                f,
                "{:<18} {:>9} {:>9} {:>9} {:>9} {:>8} {:>7} {:>11} {:>6}",
                p.name,
                p.operations,
                p.objects_made,
                p.objects_freed,
                p.objects_alive,
                p.tracked,
                p.collections.automatic,
                p.collections.manual,
                p.collections.unreachable
            )?;
            if let Some(ns) = p.elapsed_ns {
                write!(f, " {:>10}", crate::output::Nanos(ns))?;
            }
            writeln!(f)?;
        }
        writeln!(f)?;
        for p in self.0 {
            let g = p.collections.by_generation;
            write!(
                f,
                "{}: collections by generation {}/{}/{}, {} uncollectable, {} finalizers run, {} deferred frees",
                p.name, g[0], g[1], g[2], p.collections.uncollectable, p.finalizers_run, p.deferred_frees
            )?;
            for (name, value) in &p.details.0 {
                write!(f, ", {} {value}", name.replace('_', " "))?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}
