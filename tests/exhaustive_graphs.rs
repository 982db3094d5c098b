//! Exhaustive small graphs: every directed graph on up to 4 nodes (self-loops included), each
//! node with or without an external handle and with or without a finalizer, built, its
//! handles dropped, collected; then the survivors must be exactly the nodes reachable from
//! the handles, computed here independently, and the finalizers must have run exactly on the
//! others. Random graphs of up to 16 nodes of mixed container kinds follow.
//!
//! Coverage: for up to 3 nodes every graph with every handle set and every finalizer set
//! (33,033 cases); for 4 nodes every one of the 65,536 graphs with every handle set up to a
//! renaming of the nodes (5 sets, 327,680 cases), the finalizer set cycling through all 16.
//! Then 2,000 random graphs of up to 16 nodes.

#![cfg(not(miri))] // a hundred thousand graphs: too slow for the interpreter

mod support;

use std::cell::RefCell;
use std::rc::Rc;

use proptest::prelude::*;
use proptest::test_runner::{Config as PropConfig, RngSeed, TestRunner};
use pyheap::object::{Class, FinalizerKind, Int, Opaque, WeakRefObj};
use pyheap::{Config, Heap, ObjRef, Ref};

/// A graph to build: `edges[a]` lists the targets of node `a`.
#[derive(Clone, Debug)]
struct Graph {
    edges: Vec<Vec<usize>>,
    handles: Vec<bool>,
    finalizers: Vec<bool>,
    kinds: Vec<NodeKind>,
}

/// What a node is made of (finalizers need an instance).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum NodeKind {
    Instance,
    List,
    Dict,
    Opaque,
}

impl Graph {
    fn n(&self) -> usize {
        self.edges.len()
    }

    /// Nodes reachable from the handles.
    fn reachable(&self) -> Vec<bool> {
        let mut seen = vec![false; self.n()];
        let mut stack: Vec<usize> = (0..self.n()).filter(|&i| self.handles[i]).collect();
        while let Some(i) = stack.pop() {
            if !std::mem::replace(&mut seen[i], true) {
                stack.extend(&self.edges[i]);
            }
        }
        seen
    }

    /// The unreachable nodes reference counting cannot free (in or under a cycle) and the
    /// collector tracks: what one full collection must report. Freed by counting: repeatedly, any unreachable node no
    /// remaining node points to.
    fn left_for_the_collector(&self, reachable: &[bool]) -> usize {
        let mut alive: Vec<bool> = vec![true; self.n()];
        loop {
            let mut indegree = vec![0usize; self.n()];
            for a in (0..self.n()).filter(|&a| alive[a]) {
                for &b in &self.edges[a] {
                    indegree[b] += 1;
                }
            }
            let dead: Vec<usize> = (0..self.n())
                .filter(|&i| alive[i] && !reachable[i] && !self.handles[i] && indegree[i] == 0)
                .collect();
            if dead.is_empty() {
                break;
            }
            for i in dead {
                alive[i] = false;
            }
        }
        (0..self.n())
            .filter(|&i| alive[i] && !reachable[i] && self.tracked(i))
            .count()
    }

    /// Whether the collector tracks node `i`: every kind does but a dict that holds nothing
    /// (as in CPython, a dict is tracked once it holds a key or value that may be).
    fn tracked(&self, i: usize) -> bool {
        self.kinds[i] != NodeKind::Dict || !self.edges[i].is_empty()
    }
}

/// The two classes of the nodes, and the log their finalizer writes (node numbers).
struct Classes<'h> {
    plain: Ref<'h, Class<'h>>,
    finalized: Ref<'h, Class<'h>>,
    log: Rc<RefCell<Vec<usize>>>,
}

fn classes(h: &Heap) -> Classes<'_> {
    let log: Rc<RefCell<Vec<usize>>> = Rc::default();
    let l = log.clone();
    let finalized = h
        .class(
            "Node",
            Some((
                Rc::new(move |heap: &Heap, this: &ObjRef<'_>| {
                    let x = heap.getattr(this, "x").map_err(|e| e.to_string())?;
                    let x = x
                        .as_ref()
                        .and_then(|x| x.downcast_ref::<Int>())
                        .ok_or("no x")?;
                    l.borrow_mut().push(x.0 as usize);
                    Ok(())
                }),
                FinalizerKind::Safe,
            )),
        )
        .unwrap();
    Classes {
        plain: h.class("Node", None).unwrap(),
        finalized,
        log,
    }
}

/// Attribute names of the edges: one per target node.
const EDGE: [&str; 16] = [
    "n0", "n1", "n2", "n3", "n4", "n5", "n6", "n7", "n8", "n9", "n10", "n11", "n12", "n13", "n14",
    "n15",
];

/// Builds the graph, drops what has no handle, collects, and checks the survivors and the
/// finalizers; then drops the rest and checks that everything is gone, each finalizer run once.
fn check<'h>(h: &'h Heap, c: &Classes<'h>, g: &Graph) -> Result<(), String> {
    let n = g.n();
    c.log.borrow_mut().clear();
    let nodes: Vec<ObjRef<'_>> = (0..n)
        .map(|i| match g.kinds[i] {
            NodeKind::Instance => {
                let class = if g.finalizers[i] {
                    &c.finalized
                } else {
                    &c.plain
                };
                let o = h.instance(class).unwrap();
                h.setattr(&o, "x", h.int(i as i64).unwrap()).unwrap();
                o
            }
            NodeKind::List => h.list(vec![]).unwrap().erase(),
            NodeKind::Dict => h.dict().unwrap().erase(),
            NodeKind::Opaque => h.opaque("object", 0, &vec![h.none(); n]).unwrap(),
        })
        .collect();
    let weak: Vec<Ref<'_, WeakRefObj<'_>>> =
        nodes.iter().map(|o| h.weakref(o, None).unwrap()).collect();
    for (a, targets) in g.edges.iter().enumerate() {
        for &b in targets {
            let (from, to) = (&nodes[a], nodes[b].clone());
            match g.kinds[a] {
                NodeKind::Instance => h.setattr(from, EDGE[b], to).unwrap(),
                NodeKind::List => from
                    .downcast_ref::<pyheap::object::List>()
                    .unwrap()
                    .append(to)
                    .unwrap(),
                NodeKind::Dict => from
                    .downcast_ref::<pyheap::object::Dict>()
                    .unwrap()
                    .set(h.int(b as i64).unwrap(), to)
                    .unwrap(),
                NodeKind::Opaque => from
                    .downcast_ref::<Opaque>()
                    .unwrap()
                    .set_ref(b, Some(to))
                    .unwrap(),
            }
        }
    }
    let held: Vec<ObjRef<'_>> = nodes
        .into_iter()
        .enumerate()
        .filter(|(i, _)| g.handles[*i])
        .map(|(_, o)| o)
        .collect();

    let reachable = g.reachable();
    let found = h.gc().collect(2).unwrap();
    let expected_found = g.left_for_the_collector(&reachable) as u64;
    if found != expected_found {
        return Err(format!(
            "collect() found {found}, expected {expected_found}"
        ));
    }
    for i in 0..n {
        let alive = weak[i].upgrade().is_some();
        if alive != reachable[i] {
            return Err(format!(
                "node {i}: alive {alive}, reachable {}",
                reachable[i]
            ));
        }
    }
    let finalized = |log: &RefCell<Vec<usize>>| {
        let mut v = std::mem::take(&mut *log.borrow_mut());
        v.sort_unstable();
        v
    };
    let expected: Vec<usize> = (0..n)
        .filter(|&i| g.finalizers[i] && !reachable[i])
        .collect();
    let got = finalized(&c.log);
    if got != expected {
        return Err(format!("finalizers ran on {got:?}, expected {expected:?}"));
    }

    drop(held);
    h.gc().collect(2).unwrap();
    if let Some(i) = (0..n).find(|&i| weak[i].upgrade().is_some()) {
        return Err(format!("node {i} outlived its handles"));
    }
    let expected: Vec<usize> = (0..n)
        .filter(|&i| g.finalizers[i] && reachable[i])
        .collect();
    let got = finalized(&c.log);
    if got != expected {
        return Err(format!(
            "at the end, finalizers ran on {got:?}, expected {expected:?}"
        ));
    }
    Ok(())
}

/// Graph number `code` on `n` nodes: bit `a * n + b` is the edge a -> b.
fn graph(n: usize, code: u32, handles: u32, finalizers: u32) -> Graph {
    let edges = (0..n)
        .map(|a| (0..n).filter(|b| code & (1 << (a * n + b)) != 0).collect())
        .collect();
    Graph {
        edges,
        handles: (0..n).map(|i| handles & (1 << i) != 0).collect(),
        finalizers: (0..n).map(|i| finalizers & (1 << i) != 0).collect(),
        kinds: vec![NodeKind::Instance; n],
    }
}

fn heap() -> std::pin::Pin<Box<Heap>> {
    // Only the collections the test asks for.
    support::heap_with(Config {
        gc_enabled: false,
        ..support::config()
    })
}

fn run_all(graphs: impl Iterator<Item = Graph>) {
    let h = heap();
    let c = classes(&h);
    let mut count = 0;
    for g in graphs {
        if let Err(e) = check(&h, &c, &g) {
            panic!("{g:?}: {e}");
        }
        count += 1;
    }
    assert!(count > 0);
    drop(c);
    support::finish(h);
}

#[test]
fn every_graph_of_up_to_three_nodes_with_every_handle_and_finalizer_set() {
    run_all((0..=3usize).flat_map(|n| {
        let sets = 1u32 << n;
        (0..1u32 << (n * n)).flat_map(move |code| {
            (0..sets).flat_map(move |handles| {
                (0..sets).map(move |finalizers| graph(n, code, handles, finalizers))
            })
        })
    }));
}

/// Every graph on 4 nodes with the handle set {0, .., k - 1} for each `k` of `sizes`. Since
/// every graph is tried, every other handle set of the same size is covered up to a renaming
/// of the nodes. The finalizer set cycles with the graph (`(code + 5 * k) % 16`), so each pair
/// (handle set, finalizer set) meets 4,096 different graphs.
fn four_nodes(sizes: std::ops::RangeInclusive<u32>) {
    run_all(sizes.flat_map(|k| {
        let handles = (1 << k) - 1;
        (0..1u32 << 16).map(move |code| graph(4, code, handles, (code + 5 * k) % 16))
    }));
}

// Three tests, so that the harness spreads them over the cores.
#[test]
fn every_graph_of_four_nodes_with_no_handle_or_one() {
    four_nodes(0..=1);
}

#[test]
fn every_graph_of_four_nodes_with_two_handles() {
    four_nodes(2..=2);
}

#[test]
fn every_graph_of_four_nodes_with_three_or_four_handles() {
    four_nodes(3..=4);
}

fn random_graph() -> impl Strategy<Value = Graph> {
    (1usize..=16).prop_flat_map(|n| {
        let kind = prop_oneof![
            Just(NodeKind::Instance),
            Just(NodeKind::List),
            Just(NodeKind::Dict),
            Just(NodeKind::Opaque),
        ];
        (
            prop::collection::vec(prop::collection::vec(0..n, 0..4), n),
            prop::collection::vec(prop::bool::weighted(0.2), n),
            prop::collection::vec(any::<bool>(), n),
            prop::collection::vec(kind, n),
        )
            .prop_map(|(mut edges, handles, finalizers, kinds)| {
                for targets in &mut edges {
                    targets.sort_unstable();
                    targets.dedup(); // one slot per target, whatever the kind
                }
                let finalizers = finalizers
                    .iter()
                    .zip(&kinds)
                    .map(|(f, k)| *f && *k == NodeKind::Instance)
                    .collect();
                Graph {
                    edges,
                    handles,
                    finalizers,
                    kinds,
                }
            })
    })
}

#[test]
fn random_graphs_of_up_to_sixteen_nodes_of_mixed_kinds() {
    let h = heap();
    let c = classes(&h);
    // Fewer under the sanitizers (`PYHEAP_GRAPH_CASES`), which run every test much slower.
    let cases = std::env::var("PYHEAP_GRAPH_CASES").map_or(2000, |c| c.parse().unwrap());
    let mut runner = TestRunner::new(PropConfig {
        cases,
        rng_seed: RngSeed::Fixed(0x6772_6170_6873), // "graphs"
        failure_persistence: None,
        ..PropConfig::default()
    });
    let result = runner.run(&random_graph(), |g| {
        check(&h, &c, &g).map_err(TestCaseError::fail)
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    drop(c);
    support::finish(h);
}
