//! Allocation: obj-alloc's size-class path against glibc malloc (`std::alloc::System`), mimalloc
//! (`MiMalloc` called through `GlobalAlloc`, not installed as the global allocator) and, where
//! it applies, bump allocation (`bumpalo`, the floor), on the same pre-generated random
//! sequences (shared/PEERS.md).
//!
//! ```text
//!   case                  work (sizes uniform in 16..=512 bytes)                   per
//!   churn_1k              1,000 live blocks; a step frees a random one and         one step
//!                         allocates a new one in its place (warm-up: 2^20 steps)   (free + alloc)
//!   churn_100k            the same with 100,000 live blocks
//!   alloc_10m_free_all    allocate 10,000,000 blocks, then free all in             one block
//!                         allocation order; bumpalo allocates and drops its arena
//! ```
//!
//! Every run is a fresh child process (fresh heaps for every allocator).
//!
//! Run: `cargo bench -p pyheap-bench --bench alloc -- [--quick] [--out DIR] [--only CASE]`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::fmt;
use std::ptr::NonNull;
use std::time::Instant;

use mimalloc::MiMalloc;
use obj_alloc::{ObjAlloc, ObjConfig};
use pyheap_bench::{
    child_args, child_command, field, push_outcomes, rounds, run_child_case, Options, Records,
    DEFAULT_STACK,
};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

// ---- the allocators --------------------------------------------------------------------------

/// The allocators compared: one small interface over each.
trait BenchAlloc {
    fn alloc(&self, size: usize) -> *mut u8;
    /// # Safety
    /// `ptr` must come from `alloc(size)` of this allocator and not have been freed.
    unsafe fn free(&self, ptr: *mut u8, size: usize);
}

/// Every allocator gets the alignment obj-alloc promises.
fn layout(size: usize) -> Layout {
    Layout::from_size_align(size, 16).expect("small sizes")
}

struct Pyheap(ObjAlloc);

impl BenchAlloc for Pyheap {
    #[inline]
    fn alloc(&self, size: usize) -> *mut u8 {
        match self.0.alloc(size) {
            Ok(p) => p.as_ptr(),
            Err(_) => std::alloc::handle_alloc_error(layout(size)),
        }
    }
    #[inline]
    unsafe fn free(&self, ptr: *mut u8, size: usize) {
        // SAFETY: ptr came from alloc(size) of this heap (contract), so it is not null.
        unsafe { self.0.dealloc(NonNull::new_unchecked(ptr), size) }
    }
}

/// A `GlobalAlloc` as a bench allocator.
struct Global<A>(A);

impl<A: GlobalAlloc> BenchAlloc for Global<A> {
    #[inline]
    fn alloc(&self, size: usize) -> *mut u8 {
        // SAFETY: the layout has a non-zero size.
        let p = unsafe { self.0.alloc(layout(size)) };
        if p.is_null() {
            std::alloc::handle_alloc_error(layout(size));
        }
        p
    }
    #[inline]
    unsafe fn free(&self, ptr: *mut u8, size: usize) {
        // SAFETY: allocated by this allocator with this layout (contract).
        unsafe { self.0.dealloc(ptr, layout(size)) }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Impl {
    Pyheap,
    Glibc,
    Mimalloc,
    Bumpalo,
}

impl Impl {
    const ALL: [Impl; 4] = [Impl::Pyheap, Impl::Glibc, Impl::Mimalloc, Impl::Bumpalo];

    fn key(self) -> &'static str {
        match self {
            Impl::Pyheap => "pyheap",
            Impl::Glibc => "glibc",
            Impl::Mimalloc => "mimalloc",
            Impl::Bumpalo => "bumpalo",
        }
    }

    fn parse(s: &str) -> Impl {
        Impl::ALL
            .into_iter()
            .find(|i| i.key() == s)
            .expect("an allocator")
    }
}

impl fmt::Display for Impl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.key())
    }
}

fn pyheap() -> Pyheap {
    Pyheap(ObjAlloc::new(ObjConfig::default()).expect("default config"))
}

// ---- the work --------------------------------------------------------------------------------

const MIN_SIZE: usize = 16;
const MAX_SIZE: usize = 512;
const SEED: u64 = 42;

/// A churn sequence: the initial sizes and a cycle of (slot to replace, new size) steps.
struct Churn {
    initial: Vec<u16>,
    steps: Vec<(u32, u16)>,
}

const CHURN_STEPS: usize = 1 << 20;

impl Churn {
    fn new(live: usize) -> Churn {
        let mut rng = SmallRng::seed_from_u64(SEED);
        let initial = (0..live)
            .map(|_| rng.gen_range(MIN_SIZE..=MAX_SIZE) as u16)
            .collect();
        let steps = (0..CHURN_STEPS)
            .map(|_| {
                (
                    rng.gen_range(0..live) as u32,
                    rng.gen_range(MIN_SIZE..=MAX_SIZE) as u16,
                )
            })
            .collect();
        Churn { initial, steps }
    }
}

/// Runs `count` steps of the churn from step `from`; the loop is the same for every allocator
/// and as lean as it can be, so that the allocators' own costs dominate.
fn churn_steps<A: BenchAlloc>(a: &A, live: &mut [(*mut u8, usize)], seq: &Churn, count: usize) {
    for i in 0..count {
        let (slot, size) = seq.steps[i % CHURN_STEPS];
        // SAFETY: every slot was drawn from 0..live.len().
        let entry = unsafe { live.get_unchecked_mut(slot as usize) };
        // SAFETY: the entry holds a live block of `a` with that size.
        unsafe { a.free(entry.0, entry.1) };
        *entry = (a.alloc(size as usize), size as usize);
    }
}

/// A churn run: the live set, one warm-up pass over the sequence, then `ops` timed steps.
fn churn<A: BenchAlloc>(a: &A, live_blocks: usize, ops: usize) -> f64 {
    let seq = Churn::new(live_blocks);
    let mut live: Vec<(*mut u8, usize)> = seq
        .initial
        .iter()
        .map(|&s| (a.alloc(s as usize), s as usize))
        .collect();
    churn_steps(a, &mut live, &seq, CHURN_STEPS);
    let start = Instant::now();
    churn_steps(a, &mut live, &seq, ops);
    let ns = start.elapsed().as_nanos() as f64;
    for (p, s) in live {
        // SAFETY: live blocks of `a`.
        unsafe { a.free(p, s) };
    }
    ns / ops as f64
}

fn sizes(n: usize) -> Vec<u16> {
    let mut rng = SmallRng::seed_from_u64(SEED + 1);
    (0..n)
        .map(|_| rng.gen_range(MIN_SIZE..=MAX_SIZE) as u16)
        .collect()
}

/// Allocates `n` blocks, then frees them all in allocation order; ns per block.
fn alloc_then_free_all<A: BenchAlloc>(a: &A, n: usize) -> f64 {
    let sizes = sizes(n);
    let mut blocks: Vec<*mut u8> = Vec::with_capacity(n);
    let start = Instant::now();
    for &s in &sizes {
        blocks.push(a.alloc(s as usize));
    }
    for (&p, &s) in blocks.iter().zip(&sizes) {
        // SAFETY: allocated just above with this size, freed once.
        unsafe { a.free(p, s as usize) };
    }
    start.elapsed().as_nanos() as f64 / n as f64
}

/// The floor: bump allocation of the same sizes, the whole arena dropped at the end.
fn bump_then_drop(n: usize) -> f64 {
    let sizes = sizes(n);
    let mut blocks: Vec<*mut u8> = Vec::with_capacity(n);
    let start = Instant::now();
    let bump = bumpalo::Bump::new();
    for &s in &sizes {
        blocks.push(bump.alloc_layout(layout(s as usize)).as_ptr());
    }
    drop(bump);
    let ns = start.elapsed().as_nanos() as f64;
    std::hint::black_box(&blocks);
    ns / n as f64
}

/// The child: `--child CASE IMPL N OPS`.
fn child(args: Vec<String>) -> ! {
    let [case, which, n, ops] = &args[..] else {
        panic!("usage: --child CASE IMPL N OPS");
    };
    let which = Impl::parse(which);
    let n: usize = n.parse().expect("N");
    let ops: usize = ops.parse().expect("OPS");
    let churning = case.starts_with("churn");
    run_child_case(DEFAULT_STACK, move || {
        let ns = match (churning, which) {
            (true, Impl::Pyheap) => churn(&pyheap(), n, ops),
            (true, Impl::Glibc) => churn(&Global(System), n, ops),
            (true, Impl::Mimalloc) => churn(&Global(MiMalloc), n, ops),
            (false, Impl::Pyheap) => alloc_then_free_all(&pyheap(), n),
            (false, Impl::Glibc) => alloc_then_free_all(&Global(System), n),
            (false, Impl::Mimalloc) => alloc_then_free_all(&Global(MiMalloc), n),
            (false, Impl::Bumpalo) => bump_then_drop(n),
            (true, Impl::Bumpalo) => panic!("bump allocation does not free"),
        };
        json!({ "ns_per_op": ns })
    })
}

fn main() {
    if let Some(args) = child_args() {
        child(args);
    }
    let o = Options::from_args();
    let mut records = Records::create(&o, "alloc");
    let churn_ops = o.pick(8 << 20, 1 << 18);
    let churn_repeats = o.pick(7, 1);
    let cases = [
        ("churn_1k", 1_000, churn_ops, churn_repeats),
        (
            "churn_100k",
            o.pick(100_000, 10_000),
            churn_ops,
            churn_repeats,
        ),
        (
            "alloc_10m_free_all",
            o.pick(10_000_000, 100_000),
            0,
            o.pick(3, 1),
        ),
    ];
    for (case, n, ops, repeats) in cases {
        if !o.wants(case) {
            continue;
        }
        let impls: &[Impl] = if case.starts_with("churn") {
            &Impl::ALL[..3]
        } else {
            &Impl::ALL
        };
        let results = rounds(case, impls, repeats, |k| {
            child_command(&[case, k.key(), &n.to_string(), &ops.to_string()])
        });
        push_outcomes(
            &mut records,
            case,
            n as u64,
            &results,
            &[("ns/op", &|v| field(v, "ns_per_op"))],
        );
    }
    eprintln!("records: {}", records.path().display());
    drop(records);
}
