//! The collections of a replay: pyheap's verdict against CPython's, and their timings.
//!
//! Three full collections, as the exporter ran them in CPython (section 7 of the format):
//!
//! 1. with `DEBUG_SAVEALL`: finds the garbage and sets it aside in `gc.garbage` (timed against
//!    the trailer's `collect_ns`). The saved objects are mapped back to ids by address and
//!    compared with the trailer's `garbage` (all tracked objects, section 5);
//! 2. after `gc.garbage` is emptied, without the flag: finds the same garbage again and frees
//!    it (against `free_collect_ns`);
//! 3. of the live heap, with nothing to find (against `live_collect_ns`), six times: the first
//!    and the best are reported, like the trailer's `live_collect_ns` and its repeats.

use std::time::Instant;

use pyheap::DebugFlags;
use serde::Serialize;

use super::Replayed;
use crate::error::CliError;
use crate::heapgraph::HeapGraph;
use crate::output::ratio4;

/// How many ids of each difference the verdict names.
const FIRST: usize = 10;

/// Live collections run after the garbage is freed (the trailer has one and five repeats).
const LIVE_RUNS: usize = 6;

/// An object of the file, named by id and type.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Named {
    /// Its id (line number minus 2).
    pub id: u32,
    /// Its `type`.
    pub type_name: String,
}

/// One side of a difference between two garbage sets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Difference {
    /// How many objects.
    pub count: u64,
    /// The first few, by id.
    pub first: Vec<Named>,
}

impl Difference {
    fn of(ids: &[u32], graph: &HeapGraph) -> Self {
        Difference {
            count: ids.len() as u64,
            first: ids
                .iter()
                .take(FIRST)
                .map(|&id| Named {
                    id,
                    type_name: graph
                        .objects
                        .get(id as usize)
                        .map_or("?", |o| graph.type_name(o))
                        .to_owned(),
                })
                .collect(),
        }
    }
}

/// pyheap's garbage against CPython's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// Whether pyheap found exactly CPython's garbage.
    pub matches: bool,
    /// Objects in the trailer's `garbage`.
    pub cpython_garbage: u64,
    /// Objects pyheap's collection saved (mapped to ids of the file).
    pub pyheap_garbage: u64,
    /// In CPython's garbage, not in pyheap's.
    pub missing: Difference,
    /// In pyheap's garbage, not in CPython's.
    pub unexpected: Difference,
    /// Objects pyheap saved that are no object of the file (0 unless something is wrong).
    pub unmapped: u64,
}

/// One collection of pyheap against the same collection of CPython.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Measured {
    /// What pyheap's `collect` returned (unreachable objects found).
    pub pyheap_found: u64,
    /// What CPython's `gc.collect()` returned (absent if the trailer does not say).
    pub cpython_found: Option<u64>,
    /// pyheap's wall-clock nanoseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pyheap_ns: Option<u64>,
    /// CPython's, from the trailer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpython_ns: Option<u64>,
    /// `pyheap_ns / cpython_ns`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratio: Option<f64>,
    /// The live collection only: the best of pyheap's six runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pyheap_best_ns: Option<u64>,
    /// The live collection only: the best of CPython's six runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpython_best_ns: Option<u64>,
}

impl Measured {
    fn new(found: u64, cpython_found: Option<u64>, ns: u64, cpython_ns: Option<u64>) -> Self {
        Measured {
            pyheap_found: found,
            cpython_found,
            pyheap_ns: Some(ns),
            cpython_ns,
            ratio: cpython_ns.and_then(|c| ratio4(ns as f64, c as f64)),
            pyheap_best_ns: None,
            cpython_best_ns: None,
        }
    }

    fn without_timings(self) -> Self {
        Measured {
            pyheap_ns: None,
            cpython_ns: None,
            ratio: None,
            pyheap_best_ns: None,
            cpython_best_ns: None,
            ..self
        }
    }
}

/// The three collections.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Collections {
    /// With `DEBUG_SAVEALL`: find and set aside.
    pub find: Measured,
    /// After `gc.garbage` is emptied: find and free.
    pub free: Measured,
    /// Of the live heap.
    pub live: Measured,
}

/// Runs the three collections on a replayed heap.
pub(crate) fn collect(
    replayed: &Replayed<'_>,
    graph: &HeapGraph,
    timings: bool,
) -> Result<(Verdict, Collections), CliError> {
    let gc = replayed.heap.gc();
    let trailer = &graph.trailer;
    // CPython's collections scan: so do these, whose times are compared with its (a heap
    // replayed without a release would otherwise be collected without a scan).
    gc.set_always_scan(true);

    gc.set_debug(DebugFlags::SAVEALL);
    let start = Instant::now();
    let found = gc.collect(2)?;
    let find_ns = start.elapsed().as_nanos() as u64;
    let mut saved = Vec::new();
    let mut unmapped = 0;
    for obj in gc.garbage() {
        let addr = obj.as_ptr().addr();
        match replayed.ids.get(&addr) {
            Some(&id) => saved.push(id),
            None if replayed.keeper == Some(addr) => {}
            None => unmapped += 1,
        }
    }
    saved.sort_unstable();
    saved.dedup();
    let (missing, unexpected) = differences(&trailer.garbage, &saved);
    let verdict = Verdict {
        matches: missing.is_empty() && unexpected.is_empty() && unmapped == 0,
        cpython_garbage: trailer.garbage.len() as u64,
        pyheap_garbage: saved.len() as u64,
        missing: Difference::of(&missing, graph),
        unexpected: Difference::of(&unexpected, graph),
        unmapped,
    };

    gc.set_debug(DebugFlags::empty());
    gc.clear_garbage();
    let start = Instant::now();
    let freed = gc.collect(2)?;
    let free_ns = start.elapsed().as_nanos() as u64;

    let mut live_ns = Vec::with_capacity(LIVE_RUNS);
    let mut live_found = 0;
    for run in 0..LIVE_RUNS {
        let start = Instant::now();
        let found = gc.collect(2)?;
        live_ns.push(start.elapsed().as_nanos() as u64);
        if run == 0 {
            live_found = found;
        }
    }
    let cpython_best = std::iter::once(trailer.live_collect_ns)
        .chain(trailer.live_collect_ns_repeats.iter().flatten().copied())
        .min();
    let mut live = Measured::new(
        live_found,
        trailer.live_collected,
        live_ns[0],
        Some(trailer.live_collect_ns),
    );
    live.pyheap_best_ns = live_ns.iter().copied().min();
    live.cpython_best_ns = cpython_best;

    let mut collections = Collections {
        find: Measured::new(
            found,
            Some(trailer.collected),
            find_ns,
            Some(trailer.collect_ns),
        ),
        free: Measured::new(freed, trailer.freed, free_ns, trailer.free_collect_ns),
        live,
    };
    if !timings {
        collections = Collections {
            find: collections.find.without_timings(),
            free: collections.free.without_timings(),
            live: collections.live.without_timings(),
        };
    }
    Ok((verdict, collections))
}

/// `(a - b, b - a)` of two ascending lists without duplicates.
fn differences(a: &[u32], b: &[u32]) -> (Vec<u32>, Vec<u32>) {
    let (mut only_a, mut only_b) = (Vec::new(), Vec::new());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Equal => {
                i += 1;
                j += 1;
            }
            std::cmp::Ordering::Less => {
                only_a.push(a[i]);
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                only_b.push(b[j]);
                j += 1;
            }
        }
    }
    only_a.extend_from_slice(&a[i..]);
    only_b.extend_from_slice(&b[j..]);
    (only_a, only_b)
}

#[cfg(test)]
mod tests {
    use super::differences;

    #[test]
    fn differences_go_both_ways() {
        assert_eq!(
            differences(&[1, 2, 5, 9], &[2, 3, 9, 12]),
            (vec![1, 5], vec![3, 12])
        );
        assert_eq!(differences(&[], &[4]), (vec![], vec![4]));
    }
}
