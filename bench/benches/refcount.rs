//! Reference counting: refcount's handles and deallocation against `std::rc::Rc` and CPython 3.11
//! (shared/PEERS.md), on the same work:
//!
//! ```text
//!   case                  work                                               per
//!   clone_drop            clone a handle and drop the clone                  one clone + drop
//!   chain_100k            build a 100,000-long chain (each object holds the  object
//!                         next) and drop it: `build_drop` timed together,
//!                         `drop` the drop alone
//!   chain_10m             the drop of a 10,000,000-long chain; CPython:      object
//!                         `head = [head]` built with gc disabled, `del head`
//! ```
//!
//! The refcount node is list-like: a container with one `RefCell1` slot (16 bytes of
//! pre-header for the collector, a 48-byte block), on a bare `RcHeap` (no collector attached).
//! `Rc`'s node is `RefCell<Option<Rc<Node>>>` in the system allocator.
//!
//! `chain_100k` runs on a 256 MiB stack, so that `Rc`'s recursive drop completes; `chain_10m`
//! runs on the usual 8 MiB, where `Rc`'s drop overflows (the report says so) and refcount's
//! (which never recurses) does not.
//!
//! Run: `cargo bench -p pyheap-bench --bench refcount -- [--quick] [--out DIR] [--only CASE]`.

use std::cell::RefCell;
use std::fmt;
use std::hint::black_box;
use std::rc::Rc;
use std::time::Instant;

use obj_alloc::ObjConfig;
use pyheap_bench::{
    child_args, child_command, field, push_outcomes, python_command, rounds, run_child_case,
    Options, Records, DEFAULT_STACK,
};
use refcount::{ObjRef, Object, RcHeap, Ref, RefCell1, Trace, TypeInfo, Visit};
use serde_json::json;

// ---- the nodes -------------------------------------------------------------------------------

/// A list-like node: a container with one slot.
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

// SAFETY: the trace reports each reference the payload holds, once, and dropping it only
// drops references.
static NODE: TypeInfo = unsafe { TypeInfo::new::<Node<'static>>("node").assume_exact_trace() };

impl Object for Node<'_> {
    const CONTAINER: bool = true;
    fn type_info() -> &'static TypeInfo {
        &NODE
    }
}

fn chain<'h>(heap: &'h RcHeap, n: usize) -> Ref<'h, Node<'h>> {
    let node = |next: Option<ObjRef<'h>>| Node {
        next: RefCell1::new(next),
    };
    let mut head = heap.alloc(node(None)).expect("no heap limit");
    for _ in 1..n {
        head = heap.alloc(node(Some(head.erase()))).expect("no heap limit");
    }
    head
}

/// `Rc`'s chain node.
struct RcNode {
    #[allow(dead_code)] // never read: only dropped, which is what is timed
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

// ---- the cases -------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Impl {
    Pyheap,
    Rc,
    CPython,
}

impl Impl {
    fn key(self) -> &'static str {
        match self {
            Impl::Pyheap => "pyheap",
            Impl::Rc => "Rc",
            Impl::CPython => "cpython",
        }
    }

    fn parse(s: &str) -> Impl {
        [Impl::Pyheap, Impl::Rc, Impl::CPython]
            .into_iter()
            .find(|i| i.key() == s)
            .expect("an implementation")
    }
}

impl fmt::Display for Impl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.key())
    }
}

/// Clone and drop a handle `n` times (after `n / 10` warm-up rounds); ns per clone + drop.
fn clone_drop<T: Clone>(handle: &T, n: usize) -> f64 {
    let round = |count: usize| {
        for _ in 0..count {
            let c = black_box(handle).clone();
            black_box(&c);
            drop(c);
        }
    };
    round(n / 10);
    let start = Instant::now();
    round(n);
    start.elapsed().as_nanos() as f64 / n as f64
}

/// `iters` chains of `n` objects (after one warm-up chain): per object, the build and drop
/// timed together, and the drop alone (the build and the drop of every chain are timed apart).
fn chains<H>(n: usize, iters: usize, build: impl Fn(usize) -> H) -> (f64, f64) {
    drop(black_box(build(n)));
    let (mut build_ns, mut drop_ns) = (0u128, 0u128);
    for _ in 0..iters {
        let t = Instant::now();
        let head = black_box(build(n));
        let built = Instant::now();
        drop(head);
        build_ns += (built - t).as_nanos();
        drop_ns += built.elapsed().as_nanos();
    }
    let per = (n * iters) as f64;
    ((build_ns + drop_ns) as f64 / per, drop_ns as f64 / per)
}

/// Builds the chain with the collector off (it would only slow the build down), then times
/// `del head`; prints the build and the del, ns per object, as JSON.
const CPYTHON_CHAIN: &str = r#"
import gc, json, sys, time
n = int(sys.argv[1])
gc.disable()
t0 = time.perf_counter_ns()
head = None
for _ in range(n):
    head = [head]
t1 = time.perf_counter_ns()
del head
t2 = time.perf_counter_ns()
print(json.dumps({"build_ns_per_obj": (t1 - t0) / n, "drop_ns_per_obj": (t2 - t1) / n}))
"#;

/// The child: `--child CASE IMPL N ITERS`.
fn child(args: Vec<String>) -> ! {
    let [case, which, n, iters] = &args[..] else {
        panic!("usage: --child CASE IMPL N ITERS");
    };
    let case = case.clone();
    let which = Impl::parse(which);
    let n: usize = n.parse().expect("N");
    let iters: usize = iters.parse().expect("ITERS");
    let stack = if case == "chain_100k" {
        256 << 20
    } else {
        DEFAULT_STACK
    };
    run_child_case(stack, move || match (case.as_str(), which) {
        ("clone_drop", Impl::Pyheap) => {
            let h = heap();
            let r = chain(&h, 1);
            json!({ "ns_per_op": clone_drop(&r, n) })
        }
        ("clone_drop", Impl::Rc) => json!({ "ns_per_op": clone_drop(&rc_chain(1), n) }),
        ("chain_100k", Impl::Pyheap) => {
            let h = heap();
            let (build_drop, drop) = chains(n, iters, |n| chain(&h, n));
            json!({ "build_drop_ns_per_obj": build_drop, "drop_ns_per_obj": drop })
        }
        ("chain_100k", Impl::Rc) => {
            let (build_drop, drop) = chains(n, iters, rc_chain);
            json!({ "build_drop_ns_per_obj": build_drop, "drop_ns_per_obj": drop })
        }
        ("chain_10m", Impl::Pyheap) => {
            let h = heap();
            let head = chain(&h, n);
            let t = Instant::now();
            drop(head);
            let ns = t.elapsed().as_nanos() as f64;
            assert_eq!(h.stats().live, 0, "wrong result: the chain was not freed");
            json!({ "drop_ns_per_obj": ns / n as f64 })
        }
        ("chain_10m", Impl::Rc) => {
            let head = rc_chain(n);
            let t = Instant::now();
            drop(head);
            json!({ "drop_ns_per_obj": t.elapsed().as_nanos() as f64 / n as f64 })
        }
        (case, which) => panic!("no case {case} for {which}"),
    })
}

fn main() {
    if let Some(args) = child_args() {
        child(args);
    }
    let o = Options::from_args();
    let mut records = Records::create(&o, "refcount");
    let both = [Impl::Pyheap, Impl::Rc];

    if o.wants("clone_drop") {
        let n = o.pick(100_000_000, 1_000_000);
        let results = rounds("clone_drop", &both, o.pick(7, 1), |k| {
            child_command(&["clone_drop", k.key(), &n.to_string(), "1"])
        });
        push_outcomes(
            &mut records,
            "clone_drop",
            1,
            &results,
            &[("ns/op", &|v| field(v, "ns_per_op"))],
        );
    }

    if o.wants("chain_100k") {
        let n = 100_000;
        let iters = o.pick(50, 3);
        let results = rounds("chain_100k", &both, o.pick(7, 1), |k| {
            child_command(&["chain_100k", k.key(), &n.to_string(), &iters.to_string()])
        });
        push_outcomes(
            &mut records,
            "chain_100k",
            n as u64,
            &results,
            &[
                ("build+drop ns/obj", &|v| field(v, "build_drop_ns_per_obj")),
                ("drop ns/obj", &|v| field(v, "drop_ns_per_obj")),
            ],
        );
    }

    if o.wants("chain_10m") {
        let n = o.pick(10_000_000, 100_000);
        let results = rounds(
            "chain_10m",
            &[Impl::Pyheap, Impl::Rc, Impl::CPython],
            o.pick(3, 1),
            |k| match k {
                Impl::CPython => python_command(CPYTHON_CHAIN, &[n.to_string()]),
                _ => child_command(&["chain_10m", k.key(), &n.to_string(), "1"]),
            },
        );
        push_outcomes(
            &mut records,
            "chain_10m",
            n as u64,
            &results,
            &[("drop ns/obj", &|v| field(v, "drop_ns_per_obj"))],
        );
    }
    eprintln!("records: {}", records.path().display());
    drop(records);
}
