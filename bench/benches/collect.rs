//! Collection: pyheap's cycle collector against CPython 3.11 and the Rust peers of
//! shared/PEERS.md, on the same graphs, in the same run; and its scaling with the heap's size.
//!
//! ```text
//!   shapes (N objects, two reference slots each)      collectors
//!     pairs   N/2 two-object cycles, dropped            pyheap (gengc over refcount), and
//!                                                       pyheap-huge-pages (2 MiB arenas, THP)
//!     ring    one cycle through all N, dropped          CPython 3.11 (python3, lists [None, None])
//!     random  two out-edges to random objects, dropped  bacon_rajan_cc, dumpster, gc, rust-cc
//!     live    the random graph, kept alive              gc-arena (the tracing floor)
//!     live-touched  the same, after a pass that cloned and dropped every root handle: in
//!             `live` no count fell since the graph was built, so the trial-deletion
//!             collectors have nothing to scan and pyheap skips its scan (`scans_skipped`);
//!             here every collector must trace the whole graph, as after any loop over it
//!
//!   one run = (shape, collector, N), in a child process with a 60 s timeout:
//!     build the graph (not timed) -> drop the last handles (timed) -> one full collection (timed)
//!     -> check that what should be freed was freed -> print one JSON line and exit at once
//! ```
//!
//! Sizes: every shape at 1,000,000 and 10,000,000 objects, 3 rounds (`live-touched` only at
//! 1,000,000); `ring` and `random` also at 10,000 and 100,000 (5 rounds) for the scaling curve. `--quick`: 10,000 and 100,000, with
//! 1,000 for the curve, 1 round.
//!
//! Two records per run: the collection alone (`collect ns/obj`), and the drop of the last
//! handles plus the collection (`drop+collect ns/obj`): trial-deletion collectors (bacon_rajan_cc,
//! rust-cc) do part of their work when a count falls, so only the sum is fair to them.
//! Every Rust collector builds the same graph (one edge list, fixed seed); CPython builds the
//! same shapes with its own generator.
//!
//! Run: `cargo bench -p pyheap-bench --bench collect -- [--quick] [--out DIR] [--only SHAPE]`.

use std::fmt;
use std::time::Instant;

use pyheap_bench::{
    child_args, child_command, field, finish, ns_since, push_outcomes, python_command, rounds,
    run_child_case, Metric, Options, Records, DEFAULT_STACK,
};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

/// The seed of the random graphs (the same graph for every Rust collector and every repeat).
const SEED: u64 = 0x5eed_0005;
/// A slot with no reference in an edge list.
const NONE: u32 = u32::MAX;

// ---- shapes and collectors ------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    Pairs,
    Ring,
    Random,
    Live,
    LiveTouched,
}

impl Shape {
    const ALL: [Shape; 5] = [
        Shape::Pairs,
        Shape::Ring,
        Shape::Random,
        Shape::Live,
        Shape::LiveTouched,
    ];

    fn key(self) -> &'static str {
        match self {
            Shape::Pairs => "pairs",
            Shape::Ring => "ring",
            Shape::Random => "random",
            Shape::Live => "live",
            Shape::LiveTouched => "live-touched",
        }
    }

    fn parse(s: &str) -> Option<Shape> {
        Shape::ALL.into_iter().find(|sh| sh.key() == s)
    }

    /// Whether the handles are dropped before the collection (everything is garbage).
    fn dropped(self) -> bool {
        !matches!(self, Shape::Live | Shape::LiveTouched)
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.key())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Collector {
    Pyheap,
    /// pyheap with 2 MiB arenas that ask for transparent huge pages (`RawConfig::huge_pages`):
    /// not the default (CPython's 1 MiB arenas), reported beside it.
    PyheapHuge,
    CPython,
    Bacon,
    Dumpster,
    RustGc,
    RustCc,
    GcArena,
}

impl Collector {
    const ALL: [Collector; 8] = [
        Collector::Pyheap,
        Collector::PyheapHuge,
        Collector::CPython,
        Collector::Bacon,
        Collector::Dumpster,
        Collector::RustGc,
        Collector::RustCc,
        Collector::GcArena,
    ];

    /// The name on the command line and in the records.
    fn key(self) -> &'static str {
        match self {
            Collector::Pyheap => "pyheap",
            Collector::PyheapHuge => "pyheap-huge-pages",
            Collector::CPython => "cpython",
            Collector::Bacon => "bacon_rajan_cc",
            Collector::Dumpster => "dumpster",
            Collector::RustGc => "gc",
            Collector::RustCc => "rust-cc",
            Collector::GcArena => "gc-arena",
        }
    }

    fn parse(s: &str) -> Option<Collector> {
        Collector::ALL.into_iter().find(|c| c.key() == s)
    }
}

impl fmt::Display for Collector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.key())
    }
}

// ---- the graphs -----------------------------------------------------------------------------

/// The two out-edges of every object (`NONE` for an empty slot), by index.
fn edges(shape: Shape, n: usize) -> Vec<[u32; 2]> {
    assert!(n < NONE as usize, "object indices are u32");
    let n32 = n as u32;
    match shape {
        // 2i <-> 2i+1 (an odd last object stays alone, freed by its count)
        Shape::Pairs => (0..n32)
            .map(|i| {
                let partner = i ^ 1;
                [if partner < n32 { partner } else { NONE }, NONE]
            })
            .collect(),
        Shape::Ring => (0..n32).map(|i| [(i + 1) % n32, NONE]).collect(),
        Shape::Random | Shape::Live | Shape::LiveTouched => {
            let mut rng = SmallRng::seed_from_u64(SEED);
            (0..n)
                .map(|_| [rng.gen_range(0..n32), rng.gen_range(0..n32)])
                .collect()
        }
    }
}

/// The targets of a slot, for building.
fn target(e: u32) -> Option<usize> {
    (e != NONE).then_some(e as usize)
}

/// For `live-touched`: every root handle is cloned and dropped once (not timed), so every
/// object's count has fallen since the graph was built.
fn touch<H: Clone>(shape: Shape, handles: &[H]) {
    if shape == Shape::LiveTouched {
        for h in handles {
            drop(std::hint::black_box(h.clone()));
        }
    }
}

// ---- one case, in a child process -----------------------------------------------------------

/// What one case measured.
#[derive(Clone, Copy, Debug)]
struct Sample {
    drop_ns: u64,
    collect_ns: u64,
    /// What the collector said it found, where it says (pyheap, CPython).
    found: Option<u64>,
}

/// Times the drop of the handles (dropped shapes) and then one full collection. The handles of
/// the live shape come back, to be kept alive until the checks are done.
fn time_case<H>(
    shape: Shape,
    handles: H,
    collect: impl FnOnce() -> Option<u64>,
) -> (Sample, Option<H>) {
    let (drop_ns, kept) = if shape.dropped() {
        let t = Instant::now();
        drop(handles);
        (ns_since(t), None)
    } else {
        (0, Some(handles))
    };
    let t = Instant::now();
    let found = collect();
    let collect_ns = ns_since(t);
    (
        Sample {
            drop_ns,
            collect_ns,
            found,
        },
        kept,
    )
}

/// Checks that a dropped shape left nothing behind and the live shape lost nothing: `remaining`
/// is what is still allocated after the collection, `built` what was allocated before the drop.
fn check_remaining(shape: Shape, built: u64, remaining: u64) {
    let expected = if shape.dropped() { 0 } else { built };
    assert_eq!(
        remaining, expected,
        "wrong result: {remaining} of {built} still allocated after the collection, expected \
         {expected}"
    );
}

/// Prints the sample as one JSON line and leaves at once (see [`finish`]).
fn finish_sample(sample: Sample) -> ! {
    finish(json!({
        "drop_ns": sample.drop_ns,
        "collect_ns": sample.collect_ns,
        "found": sample.found,
    }))
}

mod pyheap_case {
    //! pyheap: a container with two `RefCell1` slots, as a Python object with two attributes.
    use gengc::GcHeap;
    use refcount::{Object, Ref, RefCell1, Trace, TypeInfo, Visit};

    use super::*;

    struct Node<'h> {
        a: RefCell1<'h>,
        b: RefCell1<'h>,
    }

    impl Trace for Node<'_> {
        fn trace(&self, v: &mut Visit<'_>) {
            self.a.trace(v);
            self.b.trace(v);
        }
        fn clear(&self) {
            self.a.set(None);
            self.b.set(None);
        }
    }

    // SAFETY: the trace reports each reference the payload holds, once, and dropping it only
    // drops references (which it says, so that a collection may skip the drop of garbage
    // that references only garbage).
    static NODE: TypeInfo = unsafe {
        TypeInfo::new::<Node<'static>>("node")
            .assume_exact_trace()
            .drop_only_releases_refs()
    };

    impl Object for Node<'_> {
        const CONTAINER: bool = true;
        fn type_info() -> &'static TypeInfo {
            &NODE
        }
    }

    /// One case; with `huge_pages`, in 2 MiB arenas that ask for transparent huge pages.
    pub(super) fn run(shape: Shape, edges: &[[u32; 2]], huge_pages: bool) -> ! {
        let mut config = obj_alloc::ObjConfig::default();
        if huge_pages {
            config.raw.arena_size = 2 << 20;
            config.raw.huge_pages = true;
        }
        let heap = GcHeap::new(config).expect("a heap");
        heap.disable();
        let nodes: Vec<Ref<'_, Node<'_>>> = edges
            .iter()
            .map(|_| {
                heap.alloc(Node {
                    a: RefCell1::default(),
                    b: RefCell1::default(),
                })
                .expect("memory")
            })
            .collect();
        let slot = |e: u32| target(e).map(|j| nodes[j].clone().erase());
        for (node, e) in nodes.iter().zip(edges) {
            node.a.set(slot(e[0]));
            node.b.set(slot(e[1]));
        }
        touch(shape, &nodes);
        let built = heap.rc().stats().live;
        let mut waiting = 0;
        let (sample, kept) = time_case(shape, nodes, || {
            // What the drop left to the collector (the random graph loses its unreferenced
            // objects, and what hangs from them, to reference counting).
            waiting = heap.rc().stats().live;
            Some(heap.collect(2).expect("generation 2"))
        });
        let found = sample.found.unwrap_or_default();
        if shape.dropped() {
            assert_eq!(
                found, waiting,
                "wrong result: collect(2) found {found} of {waiting}"
            );
        } else {
            assert_eq!(
                found, 0,
                "wrong result: collect(2) found {found} in a live graph"
            );
        }
        if matches!(shape, Shape::Pairs | Shape::Ring) {
            assert_eq!(
                found, built,
                "wrong result: collect(2) found {found} of {built}"
            );
        }
        check_remaining(shape, built, heap.rc().stats().live);
        if shape == Shape::LiveTouched {
            // Every count fell once since the graph was built: the collection had to scan.
            assert_eq!(
                heap.stats().scans_skipped,
                0,
                "wrong setup: live-touched skipped"
            );
        }
        std::mem::forget(kept);
        finish_sample(sample)
    }
}

mod bacon_case {
    //! bacon_rajan_cc: `Cc<Node>` with two `RefCell` slots; `collect_cycles()`.
    use std::cell::{Cell, RefCell};

    use bacon_rajan_cc::{collect_cycles, Cc, Trace, Tracer};

    use super::*;

    thread_local!(static DROPPED: Cell<u64> = const { Cell::new(0) });

    struct Node {
        a: RefCell<Option<Cc<Node>>>,
        b: RefCell<Option<Cc<Node>>>,
    }

    impl Trace for Node {
        fn trace(&self, tracer: &mut Tracer) {
            self.a.trace(tracer);
            self.b.trace(tracer);
        }
    }

    impl Drop for Node {
        fn drop(&mut self) {
            DROPPED.with(|d| d.set(d.get() + 1));
        }
    }

    pub(super) fn run(shape: Shape, edges: &[[u32; 2]]) -> ! {
        let nodes: Vec<Cc<Node>> = edges
            .iter()
            .map(|_| {
                Cc::new(Node {
                    a: RefCell::new(None),
                    b: RefCell::new(None),
                })
            })
            .collect();
        for (node, e) in nodes.iter().zip(edges) {
            *node.a.borrow_mut() = target(e[0]).map(|j| nodes[j].clone());
            *node.b.borrow_mut() = target(e[1]).map(|j| nodes[j].clone());
        }
        touch(shape, &nodes);
        let built = nodes.len() as u64;
        let (sample, kept) = time_case(shape, nodes, || {
            collect_cycles();
            None
        });
        check_remaining(shape, built, built - DROPPED.with(Cell::get));
        std::mem::forget(kept);
        finish_sample(sample)
    }
}

mod dumpster_case {
    //! dumpster: `dumpster::unsync::Gc<Node>` with two `RefCell` slots; `collect()`, with
    //! automatic collection turned off.
    use std::cell::{Cell, RefCell};

    use dumpster::unsync::{collect, set_collect_condition, CollectInfo, Gc};
    use dumpster::Trace;

    use super::*;

    thread_local!(static DROPPED: Cell<u64> = const { Cell::new(0) });

    #[derive(Trace)]
    struct Node {
        a: RefCell<Option<Gc<Node>>>,
        b: RefCell<Option<Gc<Node>>>,
    }

    impl Drop for Node {
        fn drop(&mut self) {
            DROPPED.with(|d| d.set(d.get() + 1));
        }
    }

    fn never(_: &CollectInfo) -> bool {
        false
    }

    pub(super) fn run(shape: Shape, edges: &[[u32; 2]]) -> ! {
        set_collect_condition(never);
        let nodes: Vec<Gc<Node>> = edges
            .iter()
            .map(|_| {
                Gc::new(Node {
                    a: RefCell::new(None),
                    b: RefCell::new(None),
                })
            })
            .collect();
        for (node, e) in nodes.iter().zip(edges) {
            *node.a.borrow_mut() = target(e[0]).map(|j| nodes[j].clone());
            *node.b.borrow_mut() = target(e[1]).map(|j| nodes[j].clone());
        }
        touch(shape, &nodes);
        let built = nodes.len() as u64;
        let (sample, kept) = time_case(shape, nodes, || {
            collect();
            None
        });
        check_remaining(shape, built, built - DROPPED.with(Cell::get));
        std::mem::forget(kept);
        finish_sample(sample)
    }
}

mod rust_gc_case {
    //! gc (rust-gc): `Gc<Node>` with two `GcCell` slots; `force_collect()`, with the automatic
    //! threshold out of reach.
    // gc_derive 0.5 wraps its impls in a `const _` block, which today's rustc flags.
    #![allow(non_local_definitions)]
    use gc::{Finalize, Gc, GcCell, Trace};

    use super::*;

    #[derive(Trace, Finalize)]
    struct Node {
        a: GcCell<Option<Gc<Node>>>,
        b: GcCell<Option<Gc<Node>>>,
    }

    pub(super) fn run(shape: Shape, edges: &[[u32; 2]]) -> ! {
        gc::configure(|c| c.threshold = usize::MAX);
        let nodes: Vec<Gc<Node>> = edges
            .iter()
            .map(|_| {
                Gc::new(Node {
                    a: GcCell::new(None),
                    b: GcCell::new(None),
                })
            })
            .collect();
        for (node, e) in nodes.iter().zip(edges) {
            *node.a.borrow_mut() = target(e[0]).map(|j| nodes[j].clone());
            *node.b.borrow_mut() = target(e[1]).map(|j| nodes[j].clone());
        }
        touch(shape, &nodes);
        let built = gc::stats().bytes_allocated as u64;
        let (sample, kept) = time_case(shape, nodes, || {
            gc::force_collect();
            None
        });
        check_remaining(shape, built, gc::stats().bytes_allocated as u64);
        std::mem::forget(kept);
        finish_sample(sample)
    }
}

mod rust_cc_case {
    //! rust-cc: `Cc<Node>` with two `RefCell` slots; `collect_cycles()` (no `auto-collect`
    //! feature, so nothing runs while the graph is built).
    use std::cell::RefCell;

    use rust_cc::{collect_cycles, Cc, Finalize, Trace};

    use super::*;

    #[derive(Trace, Finalize)]
    struct Node {
        a: RefCell<Option<Cc<Node>>>,
        b: RefCell<Option<Cc<Node>>>,
    }

    fn allocated() -> u64 {
        rust_cc::state::allocated_bytes().expect("rust-cc state") as u64
    }

    pub(super) fn run(shape: Shape, edges: &[[u32; 2]]) -> ! {
        let nodes: Vec<Cc<Node>> = edges
            .iter()
            .map(|_| {
                Cc::new(Node {
                    a: RefCell::new(None),
                    b: RefCell::new(None),
                })
            })
            .collect();
        for (node, e) in nodes.iter().zip(edges) {
            *node.a.borrow_mut() = target(e[0]).map(|j| nodes[j].clone());
            *node.b.borrow_mut() = target(e[1]).map(|j| nodes[j].clone());
        }
        touch(shape, &nodes);
        let built = allocated();
        let (sample, kept) = time_case(shape, nodes, || {
            collect_cycles();
            None
        });
        check_remaining(shape, built, allocated());
        std::mem::forget(kept);
        finish_sample(sample)
    }
}

mod gc_arena_case {
    //! gc-arena, the tracing floor: an arena whose root is a `Vec` of `Gc<RefLock<Node>>`;
    //! clearing the root is the drop, `finish_cycle()` the collection.
    use gc_arena::{Arena, Collect, Gc, RefLock, Rootable};

    use super::*;

    type NodePtr<'gc> = Gc<'gc, RefLock<Node<'gc>>>;

    #[derive(Collect)]
    #[collect(no_drop)]
    struct Node<'gc> {
        a: Option<NodePtr<'gc>>,
        b: Option<NodePtr<'gc>>,
    }

    type Root = Rootable![Vec<NodePtr<'_>>];

    pub(super) fn run(shape: Shape, edges: &[[u32; 2]]) -> ! {
        let mut arena = Arena::<Root>::new(|_| Vec::new());
        arena.mutate_root(|mc, root| {
            root.reserve_exact(edges.len());
            for _ in edges {
                root.push(Gc::new(mc, RefLock::new(Node { a: None, b: None })));
            }
            for (node, e) in root.iter().zip(edges) {
                let mut node = node.borrow_mut(mc);
                node.a = target(e[0]).map(|j| root[j]);
                node.b = target(e[1]).map(|j| root[j]);
            }
        });
        let built = arena.metrics().total_gc_count() as u64;
        let drop_ns = if shape.dropped() {
            let t = Instant::now();
            arena.mutate_root(|_, root| root.clear());
            ns_since(t)
        } else {
            0
        };
        let t = Instant::now();
        arena.finish_cycle();
        let collect_ns = ns_since(t);
        check_remaining(shape, built, arena.metrics().total_gc_count() as u64);
        finish_sample(Sample {
            drop_ns,
            collect_ns,
            found: None,
        })
    }
}

/// The child's side: `--child COLLECTOR SHAPE N`.
fn run_child(args: &[String]) -> ! {
    let [collector, shape, n] = args else {
        panic!("usage: --child COLLECTOR SHAPE N");
    };
    let collector = Collector::parse(collector).expect("a collector");
    let shape = Shape::parse(shape).expect("a shape");
    let n: usize = n.parse().expect("N");
    let edges = edges(shape, n);
    // Each case finishes the process itself (without teardown); returning is never reached.
    run_child_case(DEFAULT_STACK, move || match collector {
        Collector::Pyheap => pyheap_case::run(shape, &edges, false),
        Collector::PyheapHuge => pyheap_case::run(shape, &edges, true),
        Collector::Bacon => bacon_case::run(shape, &edges),
        Collector::Dumpster => dumpster_case::run(shape, &edges),
        Collector::RustGc => rust_gc_case::run(shape, &edges),
        Collector::RustCc => rust_cc_case::run(shape, &edges),
        Collector::GcArena => gc_arena_case::run(shape, &edges),
        Collector::CPython => unreachable!("CPython runs in python3"),
    })
}

// ---- CPython ---------------------------------------------------------------------------------

/// Builds a shape from 2-element lists (`[None, None]`, CPython's own containers) with the gc
/// disabled, drops the root list and times `gc.collect()`; prints one JSON line. Objects the
/// interpreter made at startup are frozen first, so the collection sees only the graph (as
/// pyheap's heap holds only the graph).
const CPYTHON_SCRIPT: &str = r#"
import gc, json, random, sys, time

def build(shape, n, seed):
    nodes = [[None, None] for _ in range(n)]
    if shape == "pairs":
        for i in range(0, n - 1, 2):
            a = nodes[i]
            b = nodes[i + 1]
            a[0] = b
            b[0] = a
    elif shape == "ring":
        for i in range(n):
            nodes[i][0] = nodes[(i + 1) % n]
    else:
        r = random.Random(seed).randrange
        for node in nodes:
            node[0] = nodes[r(n)]
            node[1] = nodes[r(n)]
    return nodes

def main():
    shape, n, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    gc.disable()
    gc.collect()
    gc.freeze()
    base = len(gc.get_objects())
    nodes = build(shape, n, seed)
    clock = time.perf_counter_ns
    if shape == "live-touched":
        for node in nodes:
            pass
    if shape.startswith("live"):
        t0 = clock()
        found = gc.collect()
        t1 = clock()
        drop_ns, collect_ns = 0, t1 - t0
        assert found == 0, f"wrong result: gc.collect() found {found} in a live graph"
        assert len(nodes) == n
    else:
        t0 = clock()
        del nodes
        t1 = clock()
        found = gc.collect()
        t2 = clock()
        drop_ns, collect_ns = t1 - t0, t2 - t1
        left = len(gc.get_objects()) - base
        assert left == 0, f"wrong result: {left} objects left after gc.collect()"
        if shape != "random":
            assert found == n, f"wrong result: gc.collect() found {found} of {n}"
    print(json.dumps({"drop_ns": drop_ns, "collect_ns": collect_ns, "found": found}))

main()
"#;

// ---- the parent: the rounds and the records --------------------------------------------------

fn command(collector: Collector, shape: Shape, n: usize) -> std::process::Command {
    if collector == Collector::CPython {
        python_command(
            CPYTHON_SCRIPT,
            &[shape.key().to_string(), n.to_string(), SEED.to_string()],
        )
    } else {
        child_command(&[
            collector.key().to_string(),
            shape.key().to_string(),
            n.to_string(),
        ])
    }
}

/// Runs every collector on one shape at one size and records the collection alone and (for the
/// dropped shapes) the drop plus the collection, ns per object.
fn run_shape(records: &mut Records, shape: Shape, n: usize, repeats: usize) {
    let case = format!("{shape} N={n}");
    let results = rounds(&case, &Collector::ALL, repeats, |c| command(c, shape, n));
    let per = move |ns: f64| ns / n as f64;
    let collect = move |v: &Value| per(field(v, "collect_ns"));
    let drop_collect = move |v: &Value| per(field(v, "drop_ns") + field(v, "collect_ns"));
    let mut metrics: Vec<Metric<'_>> = vec![("collect ns/obj", &collect)];
    if shape.dropped() {
        metrics.push(("drop+collect ns/obj", &drop_collect));
    }
    push_outcomes(records, shape.key(), n as u64, &results, &metrics);
}

fn main() {
    if let Some(args) = child_args() {
        run_child(&args);
    }
    let o = Options::from_args();
    let mut records = Records::create(&o, "collect");
    let (small, large) = o.pick((1_000_000, 10_000_000), (10_000, 100_000));
    let scaling: &[usize] = o.pick(&[10_000, 100_000], &[1_000]);
    for shape in Shape::ALL {
        if !o.wants(shape.key()) {
            continue;
        }
        run_shape(&mut records, shape, small, o.pick(3, 1));
        if shape != Shape::LiveTouched {
            run_shape(&mut records, shape, large, o.pick(3, 1));
        }
        if matches!(shape, Shape::Ring | Shape::Random) {
            for &n in scaling {
                run_shape(&mut records, shape, n, o.pick(5, 1));
            }
        }
    }
    eprintln!("records: {}", records.path().display());
    drop(records);
}
