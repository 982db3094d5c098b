//! The expected garbage (section 5), and the checker that compares it with CPython's.
//!
//! ```text
//!   roots   R = { o : external(o) > 0 }
//!             ∪ { t : t tracked, t in refs(u) for some untracked u }
//!   live    L = everything reachable from R through refs (of any object)
//!   garbage G = { o : o tracked, o not in L }
//! ```
//!
//! The walk keeps its own stack: a chain of a million objects needs no deep recursion.

use std::fmt;

use super::model::HeapGraph;
use super::printable;

/// The ids of the objects CPython's full collection must find unreachable, ascending:
/// section 5's G, computed from the object lines alone.
pub fn expected_garbage(graph: &HeapGraph) -> Vec<u32> {
    let live = live_set(graph);
    graph
        .objects
        .iter()
        .zip(0u32..)
        .filter(|&(object, id)| object.tracked && !live[id as usize])
        .map(|(_, id)| id)
        .collect()
}

/// L: `live[id]` is true for every object reachable from a root.
fn live_set(graph: &HeapGraph) -> Vec<bool> {
    let objects = &graph.objects;
    let mut live = vec![false; objects.len()];
    let mut stack = Vec::new();
    let mut mark = |id: u32, stack: &mut Vec<u32>| {
        if let Some(seen) = live.get_mut(id as usize) {
            if !*seen {
                *seen = true;
                stack.push(id);
            }
        }
    };
    for (object, id) in objects.iter().zip(0u32..) {
        if object.external > 0 {
            mark(id, &mut stack);
        }
        if !object.tracked {
            for &target in graph.refs_of(object) {
                if objects.get(target as usize).is_some_and(|t| t.tracked) {
                    mark(target, &mut stack);
                }
            }
        }
    }
    while let Some(id) = stack.pop() {
        for &target in graph.refs_of(&objects[id as usize]) {
            mark(target, &mut stack);
        }
    }
    live
}

/// The section 5 garbage compared with the trailer's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckReport {
    /// G, computed from the object lines.
    pub expected: Vec<u32>,
    /// How many ids the trailer's `garbage` lists.
    pub trailer_len: usize,
    /// Ids in G that the trailer's `garbage` lacks.
    pub missing_from_trailer: Vec<u32>,
    /// Ids of the trailer's `garbage` that are not in G.
    pub not_expected: Vec<u32>,
}

impl CheckReport {
    /// Whether G is exactly the trailer's `garbage`.
    pub fn is_match(&self) -> bool {
        self.missing_from_trailer.is_empty() && self.not_expected.is_empty()
    }

    /// The report as text: `match`, or the differences with each object's type.
    pub fn render<'a>(&'a self, graph: &'a HeapGraph) -> impl fmt::Display + 'a {
        Rendered {
            report: self,
            graph,
        }
    }
}

struct Rendered<'a> {
    report: &'a CheckReport,
    graph: &'a HeapGraph,
}

impl fmt::Display for Rendered<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let report = self.report;
        if report.is_match() {
            return write!(f, "match");
        }
        writeln!(
            f,
            "mismatch: section 5 gives {} garbage objects, the trailer lists {}",
            report.expected.len(),
            report.trailer_len
        )?;
        let lists = [
            (
                "unreachable by section 5 but not in the trailer",
                &report.missing_from_trailer,
            ),
            (
                "in the trailer but reachable by section 5",
                &report.not_expected,
            ),
        ];
        for (title, ids) in lists {
            if ids.is_empty() {
                continue;
            }
            writeln!(f, "{} ({}):", title, ids.len())?;
            for &id in ids.iter().take(50) {
                let name = self
                    .graph
                    .objects
                    .get(id as usize)
                    .map_or("?", |object| self.graph.type_name(object));
                writeln!(f, "  {id} {}", printable(name))?;
            }
            if ids.len() > 50 {
                writeln!(f, "  ... and {} more", ids.len() - 50)?;
            }
        }
        Ok(())
    }
}

/// Computes G and compares it with the trailer's `garbage`.
pub fn check(graph: &HeapGraph) -> CheckReport {
    let expected = expected_garbage(graph);
    let trailer = &graph.trailer.garbage;
    let (missing_from_trailer, not_expected) = sorted_difference(&expected, trailer);
    CheckReport {
        expected,
        trailer_len: trailer.len(),
        missing_from_trailer,
        not_expected,
    }
}

/// `(a - b, b - a)` of two ascending lists (the trailer's is ascending once read; a hand-made
/// one is sorted first).
fn sorted_difference(a: &[u32], b: &[u32]) -> (Vec<u32>, Vec<u32>) {
    let mut b = b.to_vec();
    b.sort_unstable();
    b.dedup();
    let (mut only_a, mut only_b) = (Vec::new(), Vec::new());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        match (a.get(i), b.get(j)) {
            (Some(x), Some(y)) if x == y => {
                i += 1;
                j += 1;
            }
            (Some(&x), Some(&y)) if x < y => {
                only_a.push(x);
                i += 1;
            }
            (Some(&x), None) => {
                only_a.push(x);
                i += 1;
            }
            (_, Some(&y)) => {
                only_b.push(y);
                j += 1;
            }
            (None, None) => break,
        }
    }
    (only_a, only_b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::heapgraph::{Detail, Header, Kind, NewObject};

    fn list(graph: &mut HeapGraph, refs: &[u32], external: u64, tracked: bool) -> u32 {
        graph.push(NewObject {
            type_name: "list",
            kind: Kind::List,
            size: 56,
            refs,
            external,
            tracked,
            detail: Detail::None,
        })
    }

    #[test]
    fn tracked_objects_held_by_untracked_ones_are_roots() {
        let mut graph = HeapGraph::new(Header::new("test", "3.11.7"));
        // 0 (untracked, unreachable) -> 1 (tracked): 1 is a root, so 2 is live too.
        list(&mut graph, &[1], 0, false);
        list(&mut graph, &[2], 0, true);
        list(&mut graph, &[1], 0, true);
        // 3 <-> 4: a garbage cycle.
        list(&mut graph, &[4], 0, true);
        list(&mut graph, &[3], 0, true);
        assert_eq!(expected_garbage(&graph), vec![3, 4]);
    }

    #[test]
    fn a_long_chain_needs_no_recursion() {
        let mut graph = HeapGraph::new(Header::new("test", "3.11.7"));
        let n = 1_000_000u32;
        for i in 0..n {
            list(&mut graph, &[(i + 1) % n], u64::from(i == 0), true);
        }
        assert!(expected_garbage(&graph).is_empty());
        graph.objects[0].external = 0;
        assert_eq!(expected_garbage(&graph).len(), n as usize);
    }

    #[test]
    fn differences_are_listed_both_ways() {
        assert_eq!(
            sorted_difference(&[1, 2, 5, 9], &[9, 2, 3]),
            (vec![1, 5], vec![3])
        );
    }
}
