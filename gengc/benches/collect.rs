//! The collector benchmark (issue 5): pyheap's cycle collector against CPython 3.11 and the Rust
//! peers of `shared/PEERS.md`, on the same graphs, in the same run.
//!
//! ```text
//!   shapes (N objects, two reference slots each)      collectors
//!     pairs   N/2 two-object cycles, dropped            pyheap (gengc over refcount)
//!     ring    one cycle through all N, dropped          CPython 3.11 (python3, lists [None, None])
//!     random  two out-edges to random objects, dropped  bacon_rajan_cc, dumpster, gc, rust-cc
//!     live    the random graph, kept alive              gc-arena (the tracing floor)
//!     live-touched  the same, after a pass that cloned and dropped every root handle (extra:
//!             trial-deletion collectors scan only objects whose count fell; `live` gives them
//!             nothing to do, this gives them the whole graph, as any loop over it would)
//!
//!   one case = (shape, collector, repeat), each in a child process with a 60 s timeout:
//!     build the graph (not timed) -> drop the last handles (timed) -> one full collection (timed)
//!     -> check that what should be freed was freed -> print one JSON line and exit at once
//! ```
//!
//! A crash of a child (stack overflow, segfault, timeout) is a row of the table, not the end of
//! the bench. Every Rust case builds the same graph (one edge list, fixed seed); CPython builds
//! the same shapes with its own generator.
//!
//! Usage: `cargo bench -p gengc --bench collect [-- --quick] [--n N] [--repeats R]
//! [--shape NAME] [--collector NAME]`. Results go to stdout as tables and to
//! `target/gengc-bench.json`.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

/// The seed of the random graphs (the same graph for every Rust collector and every repeat).
const SEED: u64 = 0x5eed_0005;
/// How long one child may run (build, drop and collect) before it is killed.
const TIMEOUT: Duration = Duration::from_secs(60);
/// The stack a child runs its case on: the usual main-thread stack.
const CHILD_STACK: usize = 8 << 20;
/// A slot with no reference in an edge list.
const NONE: u32 = u32::MAX;
/// The full run's size and repeats, and `--quick`'s.
const FULL: (usize, usize) = (1_000_000, 3);
const QUICK: (usize, usize) = (10_000, 1);

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

    fn describe(self, n: usize) -> String {
        match self {
            Shape::Pairs => format!("{} two-object cycles, dropped", n / 2),
            Shape::Ring => format!("one cycle through all {n}, dropped"),
            Shape::Random => "two out-edges per object to uniformly random objects, dropped".into(),
            Shape::Live => "the random graph kept alive by a root vector".into(),
            Shape::LiveTouched => "the live graph after a pass that cloned and dropped every \
                                   root handle (extra shape, not one of issue 5's)"
                .into(),
        }
    }

    /// Whether the handles are dropped before the collection (everything is garbage).
    fn dropped(self) -> bool {
        !matches!(self, Shape::Live | Shape::LiveTouched)
    }

    /// A shape of this bench's own, beyond issue 5's four (its targets are for information).
    fn extra(self) -> bool {
        self == Shape::LiveTouched
    }

    /// pyheap's bound against CPython (issue 5).
    fn cpython_bound(self) -> f64 {
        if self.dropped() {
            0.35
        } else {
            0.5
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Collector {
    Pyheap,
    CPython,
    Bacon,
    Dumpster,
    RustGc,
    RustCc,
    GcArena,
}

impl Collector {
    const ALL: [Collector; 7] = [
        Collector::Pyheap,
        Collector::CPython,
        Collector::Bacon,
        Collector::Dumpster,
        Collector::RustGc,
        Collector::RustCc,
        Collector::GcArena,
    ];

    /// The name on the command line and in the JSON.
    fn key(self) -> &'static str {
        match self {
            Collector::Pyheap => "pyheap",
            Collector::CPython => "cpython",
            Collector::Bacon => "bacon_rajan_cc",
            Collector::Dumpster => "dumpster",
            Collector::RustGc => "gc",
            Collector::RustCc => "rust-cc",
            Collector::GcArena => "gc-arena",
        }
    }

    /// The name in the table.
    fn label(self) -> &'static str {
        match self {
            Collector::CPython => "CPython 3.11",
            Collector::GcArena => "gc-arena (floor)",
            other => other.key(),
        }
    }

    fn parse(s: &str) -> Option<Collector> {
        Collector::ALL.into_iter().find(|c| c.key() == s)
    }

    /// The Rust peers pyheap must beat (gc-arena is the floor it is measured against).
    fn is_rust_peer(self) -> bool {
        matches!(
            self,
            Collector::Bacon | Collector::Dumpster | Collector::RustGc | Collector::RustCc
        )
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

fn ns_since(t: Instant) -> u64 {
    t.elapsed().as_nanos() as u64
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

/// Prints the sample as one JSON line and leaves at once: no teardown (dropping a live graph
/// may itself overflow some peers' stacks, and it is not what is measured).
fn finish(sample: Sample) -> ! {
    use std::io::Write;
    let line = json!({
        "drop_ns": sample.drop_ns,
        "collect_ns": sample.collect_ns,
        "found": sample.found,
    });
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").expect("stdout");
    out.flush().expect("stdout");
    std::process::exit(0)
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

    static NODE: TypeInfo = TypeInfo::new::<Node<'static>>("node");

    impl Object for Node<'_> {
        const CONTAINER: bool = true;
        fn type_info() -> &'static TypeInfo {
            &NODE
        }
    }

    pub(super) fn run(shape: Shape, edges: &[[u32; 2]]) -> ! {
        let heap = GcHeap::new(Default::default()).expect("a heap");
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
        std::mem::forget(kept);
        finish(sample)
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
        finish(sample)
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
        finish(sample)
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
        finish(sample)
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
        finish(sample)
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
        finish(Sample {
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
    let worker = std::thread::Builder::new()
        .name(format!("{}-{}", collector.key(), shape.key()))
        .stack_size(CHILD_STACK)
        .spawn(move || match collector {
            Collector::Pyheap => pyheap_case::run(shape, &edges),
            Collector::Bacon => bacon_case::run(shape, &edges),
            Collector::Dumpster => dumpster_case::run(shape, &edges),
            Collector::RustGc => rust_gc_case::run(shape, &edges),
            Collector::RustCc => rust_cc_case::run(shape, &edges),
            Collector::GcArena => gc_arena_case::run(shape, &edges),
            Collector::CPython => unreachable!("CPython runs in python3"),
        })
        .expect("a thread");
    let _ = worker.join();
    // The case exits the process when it succeeds; here it panicked (the message is on stderr).
    std::process::exit(101)
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

// ---- the parent: run the cases, tabulate, check the targets ---------------------------------

/// The outcome of one case: its samples, or why it did not complete.
type Outcome = Result<Vec<Sample>, String>;

/// Runs one child to completion or to the timeout; its stdout, or what went wrong.
fn run_with_timeout(mut cmd: Command) -> Result<String, String> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("not run ({e})"))?;
    // Readers on threads, so that a chatty child cannot block on a full pipe.
    let mut out = child.stdout.take().expect("piped stdout");
    let mut err = child.stderr.take().expect("piped stderr");
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        match child.try_wait().map_err(|e| format!("lost ({e})"))? {
            Some(status) => break Some(status),
            None if start.elapsed() > TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            None => std::thread::sleep(Duration::from_millis(5)),
        }
    };
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    let Some(status) = status else {
        return Err(format!("timeout >{}s", TIMEOUT.as_secs()));
    };
    if status.success() {
        return Ok(stdout);
    }
    if stderr.contains("overflowed its stack") || stderr.contains("RecursionError") {
        return Err("stack overflow".into());
    }
    use std::os::unix::process::ExitStatusExt;
    if let Some(signal) = status.signal() {
        let name = match signal {
            11 => "SIGSEGV",
            6 => "SIGABRT",
            7 => "SIGBUS",
            9 => "SIGKILL",
            _ => "signal",
        };
        return Err(format!("crashed ({name} {signal})"));
    }
    let reason = stderr
        .lines()
        .rev()
        .find(|l| l.contains("wrong result"))
        .or_else(|| stderr.lines().rev().find(|l| !l.trim().is_empty()))
        .unwrap_or("no message")
        .trim()
        .to_string();
    Err(format!("failed: {reason}"))
}

fn parse_sample(stdout: &str) -> Result<Sample, String> {
    let line = stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .ok_or("no output")?;
    let v: Value = serde_json::from_str(line).map_err(|e| format!("bad output ({e})"))?;
    let num = |k: &str| v[k].as_u64().ok_or(format!("bad output (no {k})"));
    Ok(Sample {
        drop_ns: num("drop_ns")?,
        collect_ns: num("collect_ns")?,
        found: v["found"].as_u64(),
    })
}

fn command(collector: Collector, shape: Shape, n: usize) -> Command {
    if collector == Collector::CPython {
        let mut cmd = Command::new("python3");
        cmd.args(["-c", CPYTHON_SCRIPT, shape.key()])
            .arg(n.to_string())
            .arg(SEED.to_string());
        cmd
    } else {
        let exe = std::env::current_exe().expect("the bench's own path");
        let mut cmd = Command::new(exe);
        cmd.args(["--child", collector.key(), shape.key()])
            .arg(n.to_string());
        cmd
    }
}

/// Runs one repeat of one case in a child; its sample, or why it did not complete.
fn run_once(collector: Collector, shape: Shape, n: usize, r: usize, repeats: usize) -> Outcome {
    eprint!(
        "  {:<12} {:<16} run {}/{} ... ",
        shape.key(),
        collector.key(),
        r + 1,
        repeats
    );
    let started = Instant::now();
    let result = run_with_timeout(command(collector, shape, n)).and_then(|out| parse_sample(&out));
    match &result {
        Ok(s) => eprintln!(
            "collect {:.1} ns/obj, drop {:.1} ns/obj ({:.1}s in all)",
            s.collect_ns as f64 / n as f64,
            s.drop_ns as f64 / n as f64,
            started.elapsed().as_secs_f64()
        ),
        Err(e) => eprintln!("{e}"),
    }
    result.map(|s| vec![s])
}

/// Runs every collector on one shape, `repeats` rounds of one run each (round by round, so
/// that a change in the machine's load falls on every collector alike). A collector that fails
/// once is not run again.
fn run_shape(
    collectors: &[Collector],
    shape: Shape,
    n: usize,
    repeats: usize,
) -> Vec<(Collector, Outcome)> {
    let mut results: Vec<(Collector, Outcome)> =
        collectors.iter().map(|&c| (c, Ok(Vec::new()))).collect();
    for r in 0..repeats {
        for (collector, outcome) in &mut results {
            if let Ok(samples) = outcome {
                match run_once(*collector, shape, n, r, repeats) {
                    Ok(s) => samples.extend(s),
                    Err(e) => *outcome = Err(e),
                }
            }
        }
    }
    results
}

/// Median, min and max of some values.
#[derive(Clone, Copy, Debug)]
struct Spread {
    median: f64,
    min: f64,
    max: f64,
}

impl Spread {
    fn of(mut v: Vec<f64>) -> Spread {
        v.sort_by(f64::total_cmp);
        let k = v.len();
        let median = if k % 2 == 1 {
            v[k / 2]
        } else {
            (v[k / 2 - 1] + v[k / 2]) / 2.0
        };
        Spread {
            median,
            min: v[0],
            max: v[k - 1],
        }
    }

    fn json(self) -> Value {
        json!({"median": self.median, "min": self.min, "max": self.max})
    }

    fn show(self, repeats: usize) -> String {
        if repeats > 1 {
            format!("{:.1} ({:.1}..{:.1})", self.median, self.min, self.max)
        } else {
            format!("{:.1}", self.median)
        }
    }
}

/// A completed case, per object.
#[derive(Clone, Copy, Debug)]
struct Measured {
    collect: Spread,
    drop_collect: Spread,
    found: Option<u64>,
}

fn measure(samples: &[Sample], n: usize) -> Measured {
    let per = |ns: u64| ns as f64 / n as f64;
    Measured {
        collect: Spread::of(samples.iter().map(|s| per(s.collect_ns)).collect()),
        drop_collect: Spread::of(
            samples
                .iter()
                .map(|s| per(s.drop_ns + s.collect_ns))
                .collect(),
        ),
        found: samples.first().and_then(|s| s.found),
    }
}

/// One target of issue 5: pyheap's ratio to a peer against a bound.
struct Target {
    peer: Collector,
    metric: &'static str,
    bound: f64,
    /// pyheap / peer, or why it cannot be computed.
    ratio: Result<f64, String>,
    /// Whether the bound must be strictly beaten ("faster than") or only met ("at most").
    strict: bool,
    /// What the reader should know about this comparison.
    note: Option<&'static str>,
}

impl Target {
    fn pass(&self) -> Option<bool> {
        let r = *self.ratio.as_ref().ok()?;
        Some(if self.strict {
            r < self.bound
        } else {
            r <= self.bound
        })
    }

    fn verdict(&self) -> &'static str {
        match (self.pass(), &self.ratio) {
            (Some(true), _) => "PASS",
            (Some(false), _) => "SHORT",
            (None, Err(e)) if e.starts_with("pyheap") => "SHORT",
            (None, _) => "n/a",
        }
    }
}

/// The targets of one shape: at most 0.35x (0.5x live) CPython, on the collection alone and on
/// drop + collection; faster than every Rust peer that completes the shape, on drop +
/// collection for dropped shapes (trial deletion works at drop time: only the sum is fair) and
/// on the collection for the live shape.
fn targets(shape: Shape, results: &[(Collector, Outcome)], n: usize) -> Vec<Target> {
    let get = |c: Collector| {
        results
            .iter()
            .find(|(k, _)| *k == c)
            .map(|(_, o)| o.as_ref().map(|s| measure(s, n)))
    };
    let ours = get(Collector::Pyheap);
    let ratio = |peer: Collector, pick: fn(&Measured) -> f64| -> Result<f64, String> {
        let ours = match &ours {
            Some(Ok(m)) => pick(m),
            Some(Err(e)) => return Err(format!("pyheap did not complete: {e}")),
            None => return Err("pyheap not run".into()),
        };
        match get(peer) {
            Some(Ok(m)) => Ok(ours / pick(&m)),
            Some(Err(e)) => Err(format!("peer did not complete: {e}")),
            None => Err("peer not run".into()),
        }
    };
    let collect = |m: &Measured| m.collect.median;
    let sum = |m: &Measured| m.drop_collect.median;
    let mut out = Vec::new();
    let bound = shape.cpython_bound();
    if results.iter().any(|(c, _)| *c == Collector::CPython) {
        out.push(Target {
            peer: Collector::CPython,
            metric: "collect",
            bound,
            ratio: ratio(Collector::CPython, collect),
            strict: false,
            note: None,
        });
        if shape.dropped() {
            out.push(Target {
                peer: Collector::CPython,
                metric: "drop+collect",
                bound,
                ratio: ratio(Collector::CPython, sum),
                strict: false,
                note: None,
            });
        }
    }
    for &(peer, _) in results.iter().filter(|(c, _)| c.is_rust_peer()) {
        let (metric, pick) = if shape.dropped() {
            ("drop+collect", sum as fn(&Measured) -> f64)
        } else {
            ("collect", collect as fn(&Measured) -> f64)
        };
        // A trial-deletion collector (or dumpster) scans only objects whose count fell since
        // its last collection: on a graph nobody touched, it has nothing to do.
        let idle = matches!(get(peer), Some(Ok(m)) if m.collect.median < 1.0);
        out.push(Target {
            peer,
            metric,
            bound: 1.0,
            ratio: ratio(peer, pick),
            strict: true,
            note: idle
                .then_some("the peer scanned nothing: no count fell since the graph was built"),
        });
    }
    out
}

/// A ratio for the table; past 100x (a peer that did nothing) only its order matters.
fn show_ratio(r: f64) -> String {
    if r >= 100.0 {
        ">100x".into()
    } else {
        format!("{r:.2}x")
    }
}

fn print_table(shape: Shape, n: usize, repeats: usize, results: &[(Collector, Outcome)]) {
    println!();
    println!(
        "== {} (N = {n}): {}; ns per object, median{} ==",
        shape.key(),
        shape.describe(n),
        if repeats > 1 {
            format!(" (min..max) of {repeats}")
        } else {
            String::new()
        }
    );
    let ours = results
        .iter()
        .find(|(c, _)| *c == Collector::Pyheap)
        .and_then(|(_, o)| o.as_ref().ok())
        .map(|s| measure(s, n));
    println!(
        "{:<18} | {:>22} | {:>22} | {:>24}",
        "collector", "collect ns/obj", "drop+collect ns/obj", "pyheap/peer (c | d+c)"
    );
    println!("{}", "-".repeat(96));
    for (collector, outcome) in results {
        match outcome {
            Ok(samples) => {
                let m = measure(samples, n);
                let ratios = match ours {
                    Some(o) => format!(
                        "{} | {}",
                        show_ratio(o.collect.median / m.collect.median),
                        show_ratio(o.drop_collect.median / m.drop_collect.median)
                    ),
                    None => "-".into(),
                };
                let sum = if shape.dropped() {
                    m.drop_collect.show(repeats)
                } else {
                    "-".into()
                };
                println!(
                    "{:<18} | {:>22} | {:>22} | {:>24}",
                    collector.label(),
                    m.collect.show(repeats),
                    sum,
                    ratios
                );
            }
            Err(e) => println!("{:<18} | {:>22} |", collector.label(), e),
        }
    }
    let targets = targets(shape, results, n);
    if !targets.is_empty() {
        println!(
            "{}",
            if shape.extra() {
                "targets (an extra shape: for information, not one of issue 5's):"
            } else {
                "targets (issue 5):"
            }
        );
    }
    for t in &targets {
        let relation = if t.strict { "<" } else { "<=" };
        let ratio = match &t.ratio {
            Ok(r) => show_ratio(*r),
            Err(e) => e.clone(),
        };
        println!(
            "  {:<5} pyheap/{} {} {} {:.2}x: {}{}",
            t.verdict(),
            t.peer.key(),
            t.metric,
            relation,
            t.bound,
            ratio,
            t.note.map(|n| format!(" ({n})")).unwrap_or_default()
        );
    }
    if let (Some(o), Some((_, Ok(floor)))) =
        (ours, results.iter().find(|(c, _)| *c == Collector::GcArena))
    {
        let f = measure(floor, n);
        println!(
            "  floor: pyheap's collection is {:.1}x gc-arena's mark-and-sweep ({:.1} vs {:.1} \
             ns/obj)",
            o.collect.median / f.collect.median,
            o.collect.median,
            f.collect.median
        );
    }
}

fn shape_json(shape: Shape, n: usize, results: &[(Collector, Outcome)]) -> Value {
    let rows: Vec<Value> = results
        .iter()
        .map(|(c, o)| match o {
            Ok(samples) => {
                let m = measure(samples, n);
                json!({
                    "collector": c.key(),
                    "status": "ok",
                    "collect_ns_per_obj": m.collect.json(),
                    "drop_collect_ns_per_obj": m.drop_collect.json(),
                    "found": m.found,
                    "samples": samples.iter().map(|s| json!({
                        "drop_ns": s.drop_ns, "collect_ns": s.collect_ns, "found": s.found
                    })).collect::<Vec<_>>(),
                })
            }
            Err(e) => json!({"collector": c.key(), "status": e}),
        })
        .collect();
    let targets: Vec<Value> = targets(shape, results, n)
        .iter()
        .map(|t| {
            json!({
                "peer": t.peer.key(),
                "metric": t.metric,
                "bound": t.bound,
                "strict": t.strict,
                "ratio": t.ratio.as_ref().ok(),
                "note": t.ratio.as_ref().err().cloned().or(t.note.map(String::from)),
                "verdict": t.verdict(),
            })
        })
        .collect();
    json!({
        "shape": shape.key(),
        "extra": shape.extra(),
        "results": rows,
        "targets": targets,
    })
}

/// `target/` of the workspace: `$CARGO_TARGET_DIR`, or the one this binary was built into
/// (`target/<profile>/deps/collect-<hash>`).
fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().ok();
    let from_exe = exe.as_deref().and_then(|e| {
        let deps = e.parent()?;
        (deps.file_name()? == "deps").then_some(())?;
        Some(deps.parent()?.parent()?.to_path_buf())
    });
    from_exe.unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target")))
}

struct Options {
    n: usize,
    repeats: usize,
    quick: bool,
    shapes: Vec<Shape>,
    collectors: Vec<Collector>,
}

fn options(args: &[String]) -> Options {
    let mut o = Options {
        n: FULL.0,
        repeats: FULL.1,
        quick: false,
        shapes: Vec::new(),
        collectors: Vec::new(),
    };
    let (mut n, mut repeats) = (None, None);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |what: &str| {
            it.next()
                .unwrap_or_else(|| panic!("{a} needs {what}"))
                .clone()
        };
        match a.as_str() {
            "--quick" => o.quick = true,
            "--n" => n = Some(value("a number").parse().expect("--n N")),
            "--repeats" => repeats = Some(value("a number").parse().expect("--repeats R")),
            "--shape" => {
                let v = value("a shape");
                o.shapes
                    .push(Shape::parse(&v).unwrap_or_else(|| panic!("unknown shape {v}")));
            }
            "--collector" => {
                let v = value("a collector");
                o.collectors
                    .push(Collector::parse(&v).unwrap_or_else(|| panic!("unknown collector {v}")));
            }
            // `cargo bench` passes `--bench`; filters are not used here.
            _ => {}
        }
    }
    let (dn, dr) = if o.quick { QUICK } else { FULL };
    o.n = n.unwrap_or(dn).max(2);
    o.repeats = repeats.unwrap_or(dr).max(1);
    if o.shapes.is_empty() {
        o.shapes = Shape::ALL.to_vec();
    }
    if o.collectors.is_empty() {
        o.collectors = Collector::ALL.to_vec();
    }
    o
}

/// `python3 --version`, for the report (the CPython rows are only as good as this).
fn python_version() -> Option<String> {
    let out = Command::new("python3").arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (!text.is_empty()).then_some(text)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--child") {
        run_child(&args[1..]);
    }
    let o = options(&args);
    eprintln!(
        "gengc collector bench: N = {}, {} repeat(s), each case in a child process ({}s timeout); \
         {}",
        o.n,
        o.repeats,
        TIMEOUT.as_secs(),
        python_version().unwrap_or_else(|| "no python3".into())
    );
    let mut all = Vec::new();
    let mut pyheap_failed = false;
    for &shape in &o.shapes {
        let results = run_shape(&o.collectors, shape, o.n, o.repeats);
        pyheap_failed |= results
            .iter()
            .any(|(c, r)| *c == Collector::Pyheap && r.is_err());
        print_table(shape, o.n, o.repeats, &results);
        all.push(shape_json(shape, o.n, &results));
    }
    let report = json!({
        "bench": "gengc collect",
        "python": python_version(),
        "n": o.n,
        "repeats": o.repeats,
        "quick": o.quick,
        "unit": "ns per object",
        "shapes": all,
    });
    let dir = target_dir();
    let path = dir.join("gengc-bench.json");
    let written = std::fs::create_dir_all(&dir).and_then(|()| {
        std::fs::write(
            &path,
            serde_json::to_string_pretty(&report).expect("json") + "\n",
        )
    });
    match written {
        Ok(()) => println!("\nresults written to {}", path.display()),
        Err(e) => eprintln!("could not write {}: {e}", path.display()),
    }
    if pyheap_failed {
        eprintln!("pyheap did not complete every shape");
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
