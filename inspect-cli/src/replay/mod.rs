//! Replaying a heapgraph file in a pyheap heap: the same objects, the same references, the
//! same outside owners; then pyheap's collector must find exactly CPython's garbage.
//!
//! ```text
//!   HeapGraph ──build──► pyheap objects ──► roots: one handle per object with external > 0
//!                          (4 passes)        ids:   address ──► id, for tracked objects
//!                              │
//!                              └─ sizes: Heap::size_of per object, against CPython's `size`
//!   collect: full (SAVEALL) ─► saved objects ─► ids ─► compared with the trailer's garbage
//!            full (free), full of the live heap (timed against the trailer)
//! ```
//!
//! Each kind has its own allocator, as in CPython: ints (small ones are the cached immortal
//! objects, like CPython's static ones), floats, strs and bytes (of the file's length), tuples,
//! lists, dicts, instances (of one class per type name), and opaque stand-ins of the right
//! size for sets and everything else. Objects are made in four passes, so that every
//! reference can be set although tuples are immutable and the graph has cycles: (1) atoms and
//! mutable containers, the containers with empty slots; (2) tuples in dependency order over
//! tuple-to-tuple references (a tuple in a cycle of tuples only, impossible in CPython,
//! becomes an opaque stand-in); (3) the containers' references (dicts under synthetic int keys
//! `0..n`, instances under attribute names `"0"`, `"1"`, ...); (4) tracking as the file says.
//!
//! ## Why pyheap finds exactly CPython's garbage
//!
//! Section 5 of the format: the roots are the objects held from outside (`external > 0`) and
//! the tracked objects that untracked objects refer to; garbage is the tracked objects no root
//! reaches. The replay gets both kinds of roots without computing them: an object held from
//! outside holds one extra count (its root handle), which no traversal subtracts; and an
//! untracked container is invisible to the collector, so its references are never subtracted
//! either, and their targets keep a positive count, like roots. That is why the build tracks
//! and untracks every container exactly as the file says (a tuple of atoms that CPython still
//! tracks is tracked again; a dict CPython untracked is untracked), and why the comparison is
//! restricted to tracked objects (the trailer's garbage has no other).

mod build;
mod report;
mod sizes;
mod verdict;

use std::collections::HashMap;

use pyheap::{Heap, ObjRef};

pub use build::BuildReport;
pub use report::ReplayReport;
pub use sizes::{Bytes, Footprint, Sizes};
pub use verdict::{Collections, Difference, Measured, Named, Verdict};

use crate::error::CliError;
use crate::heapgraph::HeapGraph;

/// A heapgraph's objects in a pyheap heap, held as the file says they are held.
pub struct Replayed<'h> {
    heap: &'h Heap,
    /// One handle per object with `external > 0`.
    roots: Vec<ObjRef<'h>>,
    /// Untracked objects with a count of 0 in the file, held so that they live on.
    unowned: Vec<ObjRef<'h>>,
    /// The id of every tracked object, by address.
    ids: HashMap<usize, u32>,
    /// The address of the garbage list that holds tracked objects with a count of 0 (no
    /// object of the file: the verdict leaves it out).
    keeper: Option<usize>,
    /// What the build did beyond the file's objects.
    pub build: BuildReport,
    /// Bytes per kind, against CPython's.
    pub sizes: Sizes,
}

impl<'h> Replayed<'h> {
    /// Builds `graph`'s objects in `heap` (whose automatic collection is turned off for good:
    /// the replay collects by hand). `on_object` is called once per object made.
    pub fn load(
        heap: &'h Heap,
        graph: &HeapGraph,
        on_object: &mut dyn FnMut(),
    ) -> Result<Replayed<'h>, CliError> {
        if let Some((object, reference)) = graph.first_dangling_ref() {
            return Err(CliError::DanglingRef {
                object,
                reference,
                objects: graph.len(),
            });
        }
        heap.gc().disable();
        let mut report = BuildReport::default();
        let objects = build::build(heap, graph, &mut report, on_object)?;
        let sizes = sizes::measure(heap, graph, &objects);
        let mut referred = vec![false; graph.len()];
        for &target in &graph.refs {
            if let Some(r) = referred.get_mut(target as usize) {
                *r = true;
            }
        }
        let (mut roots, mut unowned, mut unowned_tracked) = (Vec::new(), Vec::new(), Vec::new());
        let mut ids = HashMap::with_capacity(graph.header.tracked.unwrap_or(0) as usize);
        for ((line, obj), id) in graph.objects.iter().zip(&objects).zip(0u32..) {
            let tracked = heap.gc().is_tracked(obj);
            if line.external > 0 {
                roots.push(obj.clone());
            } else if !referred[id as usize] {
                if tracked {
                    unowned_tracked.push(obj.clone());
                } else {
                    unowned.push(obj.clone());
                }
            }
            if tracked {
                ids.insert(obj.as_ptr().addr(), id);
            }
        }
        report.roots = roots.len() as u64;
        report.unowned_untracked = unowned.len() as u64;
        report.unowned_tracked = unowned_tracked.len() as u64;
        let keeper = if unowned_tracked.is_empty() {
            None
        } else {
            let keeper = heap.list(unowned_tracked)?;
            keeper.append(keeper.clone().erase())?;
            Some(keeper.as_ptr().addr())
        };
        drop(objects);
        Ok(Replayed {
            heap,
            roots,
            unowned,
            ids,
            keeper,
            build: report,
            sizes,
        })
    }

    /// The heap.
    pub fn heap(&self) -> &'h Heap {
        self.heap
    }

    /// How many root handles the replay holds.
    pub fn roots(&self) -> usize {
        self.roots.len()
    }

    /// How many untracked objects with a count of 0 the replay holds.
    pub fn unowned(&self) -> usize {
        self.unowned.len()
    }

    /// Runs the three full collections (find with `DEBUG_SAVEALL`, free, live) and compares
    /// pyheap's garbage with the trailer's.
    pub fn collect(
        &self,
        graph: &HeapGraph,
        timings: bool,
    ) -> Result<(Verdict, Collections), CliError> {
        verdict::collect(self, graph, timings)
    }
}
