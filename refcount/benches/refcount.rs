//! refcount against its peers (PEERS.md), in the same run, on the same work:
//!
//! - `clone_drop`: clone a handle and drop the clone; `Ref` against `std::rc::Rc`.
//! - `chain_100k`: build a 100,000-long chain (each object holds the next) and drop it, timed
//!   together (`build_drop`) and the drop alone (`drop`); refcount against `Rc` (a node
//!   `RefCell<Option<Rc<Node>>>`, in the system allocator).
//!   A diagnostic pair repeats refcount's case with the arenas kept mapped between iterations
//!   (a few objects stay alive in each): the difference is the cost of returning arenas to the
//!   OS after every drop and faulting them in again on the next build, which glibc under `Rc`
//!   never pays (it keeps freed chunks).
//! - `chain_10m`: the same with 10,000,000 objects, which `Rc` cannot drop (its drop recurses);
//!   refcount's drop against CPython's `del head` of a chain `head = [head]`, timed by `python3`
//!   itself (skipped when there is no `python3`).
//!
//! The refcount chains use a one-slot node: `CONTAINER = true` (a list-like object: 16 bytes of
//! pre-header for the collector, 48-byte blocks) and, for comparison, `CONTAINER = false`
//! (32-byte blocks). No container hook is installed.
//!
//! Everything runs on one thread with a 1 GiB stack, so that `Rc`'s recursive drop of 100,000
//! nodes cannot overflow and both sides run on the same thread. A summary with ns per operation
//! (per object for chains) and the ratios refcount / peer is printed at the end; its figures are
//! the medians of the per-iteration times of every sample criterion took.
//!
//! Run: `cargo bench -p refcount --bench refcount -- --warm-up-time 1 --measurement-time 3`
//! (without `--bench refcount`, the library's test harness also receives criterion's options
//! and rejects them).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::hint::black_box;
use std::process::Command;
use std::rc::Rc;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, SamplingMode, Throughput};
use obj_alloc::ObjConfig;
use refcount::{ObjRef, Object, RcHeap, Ref, RefCell1, Trace, TypeInfo, Visit};

// ---- the chain nodes -----------------------------------------------------------------------

/// A link of a refcount chain.
trait Link<'h>: Object + 'h {
    const LABEL: &'static str;
    fn new(next: Option<ObjRef<'h>>) -> Self;
}

/// A list-like node: a container.
struct Node<'h> {
    next: RefCell1<'h>,
}

impl Trace for Node<'_> {
    fn trace(&self, v: &mut Visit<'_>) {
        self.next.trace(v)
    }
    fn clear(&self) {
        self.next.set(None)
    }
}

static NODE: TypeInfo = TypeInfo::new::<Node<'static>>("node");

impl Object for Node<'_> {
    const CONTAINER: bool = true;
    fn type_info() -> &'static TypeInfo {
        &NODE
    }
}

impl<'h> Link<'h> for Node<'h> {
    const LABEL: &'static str = "refcount";
    fn new(next: Option<ObjRef<'h>>) -> Self {
        Node {
            next: RefCell1::new(next),
        }
    }
}

/// The same node declared as no container: no pre-header, no container hook check.
struct FlatNode<'h> {
    next: RefCell1<'h>,
}

impl Trace for FlatNode<'_> {
    fn trace(&self, v: &mut Visit<'_>) {
        self.next.trace(v)
    }
    fn clear(&self) {
        self.next.set(None)
    }
}

static FLAT_NODE: TypeInfo = TypeInfo::new::<FlatNode<'static>>("flat node");

impl Object for FlatNode<'_> {
    fn type_info() -> &'static TypeInfo {
        &FLAT_NODE
    }
}

impl<'h> Link<'h> for FlatNode<'h> {
    const LABEL: &'static str = "refcount (CONTAINER = false)";
    fn new(next: Option<ObjRef<'h>>) -> Self {
        FlatNode {
            next: RefCell1::new(next),
        }
    }
}

fn chain<'h, T: Link<'h>>(heap: &'h RcHeap, n: usize) -> Ref<'h, T> {
    let mut head = heap.alloc(T::new(None)).expect("no heap limit");
    for _ in 1..n {
        head = heap
            .alloc(T::new(Some(head.erase())))
            .expect("no heap limit");
    }
    head
}

/// `Rc`'s chain node.
struct RcNode {
    #[allow(dead_code)] // never read: only dropped, which is what the bench times
    next: RefCell<Option<Rc<RcNode>>>,
}

fn rc_chain(n: usize) -> Rc<RcNode> {
    let mut head = Rc::new(RcNode {
        next: RefCell::new(None),
    });
    for _ in 1..n {
        head = Rc::new(RcNode {
            next: RefCell::new(Some(head)),
        });
    }
    head
}

fn heap() -> std::pin::Pin<Box<RcHeap>> {
    RcHeap::new(ObjConfig::default()).expect("default config")
}

// ---- the summary ---------------------------------------------------------------------------

/// Per case, the ns per operation of every call criterion made (warm-up included: the median
/// ignores it).
#[derive(Default)]
struct Summary {
    samples: BTreeMap<String, Vec<f64>>,
}

impl Summary {
    fn record(&mut self, case: &str, elapsed: Duration, ops: u64) {
        self.samples
            .entry(case.to_string())
            .or_default()
            .push(elapsed.as_nanos() as f64 / ops as f64);
    }

    fn median(&self, case: &str) -> Option<f64> {
        let mut v = self.samples.get(case)?.clone();
        v.sort_by(f64::total_cmp);
        Some(v[v.len() / 2])
    }
}

/// Times `iters` runs of `setup` then `timed`, counting only `timed`; records ns per `per` ops.
fn timed_runs<S>(
    summary: &RefCell<Summary>,
    case: &str,
    iters: u64,
    per: u64,
    mut setup: impl FnMut() -> S,
    mut timed: impl FnMut(S),
) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let input = setup();
        let start = Instant::now();
        timed(input);
        total += start.elapsed();
    }
    summary.borrow_mut().record(case, total, iters * per);
    total
}

// ---- (a) clone + drop ----------------------------------------------------------------------

fn bench_clone_drop(c: &mut Criterion, summary: &RefCell<Summary>) {
    let mut group = c.benchmark_group("clone_drop");
    let h = heap();
    let r = h.alloc(Node::new(None)).expect("no heap limit");
    group.bench_function("refcount", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                let c = black_box(&r).clone();
                black_box(&c);
                drop(c);
            }
            let t = start.elapsed();
            summary.borrow_mut().record("clone_drop/refcount", t, iters);
            t
        })
    });
    let rc = rc_chain(1);
    group.bench_function("Rc", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                let c = Rc::clone(black_box(&rc));
                black_box(&c);
                drop(c);
            }
            let t = start.elapsed();
            summary.borrow_mut().record("clone_drop/Rc", t, iters);
            t
        })
    });
    group.finish();
}

// ---- (b), (c) chains -----------------------------------------------------------------------

fn chain_build_drop<'h, T: Link<'h>>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    summary: &RefCell<Summary>,
    heap: &'h RcHeap,
    group_name: &str,
    n: usize,
) {
    let case = format!("{group_name}/build_drop/{}", T::LABEL);
    group.bench_function(format!("build_drop/{}", T::LABEL), |b| {
        b.iter_custom(|iters| {
            timed_runs(
                summary,
                &case,
                iters,
                n as u64,
                || (),
                |()| drop(black_box(chain::<T>(heap, n))),
            )
        })
    });
}

fn chain_drop<'h, T: Link<'h>>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    summary: &RefCell<Summary>,
    heap: &'h RcHeap,
    group_name: &str,
    n: usize,
) {
    let case = format!("{group_name}/drop/{}", T::LABEL);
    group.bench_function(format!("drop/{}", T::LABEL), |b| {
        b.iter_custom(|iters| {
            timed_runs(
                summary,
                &case,
                iters,
                n as u64,
                || chain::<T>(heap, n),
                drop,
            )
        })
    });
}

const CHAIN_100K: usize = 100_000;

/// A few objects in every arena a chain of `n` nodes takes (one per 4,096 nodes, so in distinct
/// pools, about five per 1 MiB arena): while they live, those arenas stay mapped.
fn arena_keepers<'h>(heap: &'h RcHeap, n: usize) -> Vec<Ref<'h, Node<'h>>> {
    let all: Vec<_> = (0..n + n / 4)
        .map(|_| heap.alloc(Node::new(None)).expect("no heap limit"))
        .collect();
    all.into_iter().step_by(4096).collect()
}

fn bench_chain_100k(c: &mut Criterion, summary: &RefCell<Summary>) {
    let name = "chain_100k";
    let n = CHAIN_100K;
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Elements(n as u64));
    group.sample_size(20);
    let h = heap();
    chain_build_drop::<Node>(&mut group, summary, &h, name, n);
    chain_build_drop::<FlatNode>(&mut group, summary, &h, name, n);
    let case = format!("{name}/build_drop/Rc");
    group.bench_function("build_drop/Rc", |b| {
        b.iter_custom(|iters| {
            timed_runs(
                summary,
                &case,
                iters,
                n as u64,
                || (),
                |()| drop(black_box(rc_chain(n))),
            )
        })
    });
    chain_drop::<Node>(&mut group, summary, &h, name, n);
    chain_drop::<FlatNode>(&mut group, summary, &h, name, n);
    let case = format!("{name}/drop/Rc");
    group.bench_function("drop/Rc", |b| {
        b.iter_custom(|iters| timed_runs(summary, &case, iters, n as u64, || rc_chain(n), drop))
    });
    // Diagnostic: the same as refcount's first case with the arenas kept mapped between
    // iterations (a few objects stay alive in each), so that no iteration maps, faults in and
    // unmaps its arenas again; `Rc`'s glibc keeps its freed chunks in the same way.
    let keepers = arena_keepers(&h, n);
    let case = format!("{name}/build_drop/refcount, arenas kept");
    group.bench_function("build_drop/refcount, arenas kept", |b| {
        b.iter_custom(|iters| {
            timed_runs(
                summary,
                &case,
                iters,
                n as u64,
                || (),
                |()| drop(black_box(chain::<Node>(&h, n))),
            )
        })
    });
    let case = format!("{name}/drop/refcount, arenas kept");
    group.bench_function("drop/refcount, arenas kept", |b| {
        b.iter_custom(|iters| {
            timed_runs(
                summary,
                &case,
                iters,
                n as u64,
                || chain::<Node>(&h, n),
                drop,
            )
        })
    });
    drop(keepers);
    group.finish();
}

const CHAIN_10M: usize = 10_000_000;

fn bench_chain_10m(c: &mut Criterion, summary: &RefCell<Summary>) {
    let name = "chain_10m";
    let n = CHAIN_10M;
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Elements(n as u64));
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    let h = heap();
    chain_build_drop::<Node>(&mut group, summary, &h, name, n);
    chain_drop::<Node>(&mut group, summary, &h, name, n);
    chain_drop::<FlatNode>(&mut group, summary, &h, name, n);
    group.finish();
}

// ---- CPython -------------------------------------------------------------------------------

/// Builds the chain with the collector off (it would only slow the build down), then times
/// `del head`; prints the build and the del in ns.
const CPYTHON_CHAIN: &str = r#"
import gc, sys, time
n = int(sys.argv[1])
gc.disable()
t0 = time.perf_counter_ns()
head = None
for _ in range(n):
    head = [head]
t1 = time.perf_counter_ns()
del head
t2 = time.perf_counter_ns()
print(t1 - t0, t2 - t1)
"#;

/// CPython's build and `del` of a chain of `n` lists, ns per object: the median of `runs`.
fn cpython_chain(n: usize, runs: usize) -> Result<(f64, f64, String), String> {
    let mut builds = Vec::new();
    let mut dels = Vec::new();
    let mut version = String::new();
    for _ in 0..runs {
        let out = Command::new("python3")
            .args(["-c", CPYTHON_CHAIN, &n.to_string()])
            .output()
            .map_err(|e| format!("python3 did not run: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "python3 failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let nums: Vec<f64> = text
            .split_whitespace()
            .filter_map(|s| s.parse().ok())
            .collect();
        let [build, del] = nums[..] else {
            return Err(format!("unexpected output from python3: {text}"));
        };
        builds.push(build / n as f64);
        dels.push(del / n as f64);
    }
    if let Ok(out) = Command::new("python3").arg("--version").output() {
        version = String::from_utf8_lossy(&out.stdout).trim().to_string();
    }
    builds.sort_by(f64::total_cmp);
    dels.sort_by(f64::total_cmp);
    Ok((builds[runs / 2], dels[runs / 2], version))
}

// ---- the report ----------------------------------------------------------------------------

struct Row {
    case: &'static str,
    ours: String,
    peer: &'static str,
    peer_case: String,
    target: f64,
}

fn report(summary: &Summary, cpython: Option<&Result<(f64, f64, String), String>>) {
    let rows = [
        Row {
            case: "clone + drop, ns/op",
            ours: "clone_drop/refcount".into(),
            peer: "Rc",
            peer_case: "clone_drop/Rc".into(),
            target: 1.2,
        },
        Row {
            case: "100k chain build+drop, ns/obj",
            ours: "chain_100k/build_drop/refcount".into(),
            peer: "Rc",
            peer_case: "chain_100k/build_drop/Rc".into(),
            target: 1.0,
        },
        Row {
            case: "  same, CONTAINER = false",
            ours: "chain_100k/build_drop/refcount (CONTAINER = false)".into(),
            peer: "Rc",
            peer_case: "chain_100k/build_drop/Rc".into(),
            target: 1.0,
        },
        Row {
            case: "100k chain drop, ns/obj",
            ours: "chain_100k/drop/refcount".into(),
            peer: "Rc",
            peer_case: "chain_100k/drop/Rc".into(),
            target: 1.0,
        },
        Row {
            case: "  same, CONTAINER = false",
            ours: "chain_100k/drop/refcount (CONTAINER = false)".into(),
            peer: "Rc",
            peer_case: "chain_100k/drop/Rc".into(),
            target: 1.0,
        },
        Row {
            case: "  build+drop, arenas kept mapped",
            ours: "chain_100k/build_drop/refcount, arenas kept".into(),
            peer: "Rc",
            peer_case: "chain_100k/build_drop/Rc".into(),
            target: 1.0,
        },
        Row {
            case: "  drop, arenas kept mapped",
            ours: "chain_100k/drop/refcount, arenas kept".into(),
            peer: "Rc",
            peer_case: "chain_100k/drop/Rc".into(),
            target: 1.0,
        },
        Row {
            case: "10M chain drop, ns/obj",
            ours: "chain_10m/drop/refcount".into(),
            peer: "CPython",
            peer_case: "cpython/del".into(),
            target: 1.0,
        },
        Row {
            case: "  same, CONTAINER = false",
            ours: "chain_10m/drop/refcount (CONTAINER = false)".into(),
            peer: "CPython",
            peer_case: "cpython/del".into(),
            target: 1.0,
        },
        Row {
            case: "10M chain build+drop, ns/obj",
            ours: "chain_10m/build_drop/refcount".into(),
            peer: "CPython",
            peer_case: "cpython/build_del".into(),
            target: f64::NAN, // CPython's build runs the interpreter loop: for information only
        },
    ];
    let peer_value = |case: &str| match (case, cpython) {
        ("cpython/del", Some(Ok((_, del, _)))) => Some(*del),
        ("cpython/build_del", Some(Ok((build, del, _)))) => Some(build + del),
        _ => summary.median(case),
    };
    println!();
    println!("refcount against its peers: medians, ns per op (per object for chains)");
    println!(
        "{:<32} {:>10} {:>8} {:>10} {:>7} {:>7}  verdict",
        "case", "refcount", "peer", "peer ns", "ratio", "target"
    );
    for row in &rows {
        let Some(ours) = summary.median(&row.ours) else {
            continue; // filtered out
        };
        let Some(theirs) = peer_value(&row.peer_case) else {
            println!(
                "{:<32} {:>10.2} {:>8} {:>10}",
                row.case, ours, row.peer, "-"
            );
            continue;
        };
        let ratio = ours / theirs;
        let (target, verdict) = if row.target.is_nan() {
            ("-".to_string(), "")
        } else if ratio <= row.target {
            (format!("{:.1}x", row.target), "ok")
        } else {
            (format!("{:.1}x", row.target), "MISSED")
        };
        println!(
            "{:<32} {:>10.2} {:>8} {:>10.2} {:>6.2}x {:>7}  {}",
            row.case, ours, row.peer, theirs, ratio, target, verdict
        );
    }
    match cpython {
        Some(Ok((build, del, version))) => println!(
            "CPython ({version}): build {build:.1} ns/obj, del {del:.1} ns/obj (median of \
             {CPYTHON_RUNS} runs of {CHAIN_10M} lists, gc disabled while building)"
        ),
        Some(Err(e)) => println!("CPython comparison skipped: {e}"),
        None => {}
    }
}

const CPYTHON_RUNS: usize = 3;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let only_listing_or_testing = args
        .iter()
        .any(|a| a == "--list" || a == "--test" || a == "--profile-time");
    let runner = std::thread::Builder::new()
        .name("bench".into())
        .stack_size(1 << 30)
        .spawn(move || {
            let mut c = Criterion::default().configure_from_args();
            let summary = RefCell::new(Summary::default());
            bench_clone_drop(&mut c, &summary);
            bench_chain_100k(&mut c, &summary);
            bench_chain_10m(&mut c, &summary);
            c.final_summary();
            summary.into_inner()
        })
        .expect("spawn the bench thread");
    let summary = runner.join().expect("the benches ran");
    if only_listing_or_testing {
        return;
    }
    let cpython = summary
        .median("chain_10m/drop/refcount")
        .map(|_| cpython_chain(CHAIN_10M, CPYTHON_RUNS));
    report(&summary, cpython.as_ref());
}
