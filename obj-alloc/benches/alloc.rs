//! obj-alloc's plain size-class path against glibc malloc (`std::alloc::System`) and mimalloc
//! (`mimalloc::MiMalloc` called through `GlobalAlloc`, not installed as the global allocator), in
//! the same run, on the same pre-generated random sequences (PEERS.md).
//!
//! - `churn_1k`, `churn_100k`: that many live blocks of 16..=512 bytes; one iteration frees a
//!   random live block and allocates a new one of a random size in its place. Criterion's time
//!   per iteration is the time per operation (one free plus one allocation).
//! - `alloc_10m_free_all`: allocate 10,000,000 blocks of random sizes 16..=512, then free them
//!   all in allocation order; reported per block (throughput in elements). bumpalo, the floor,
//!   allocates the same sizes and drops its arena at the end.
//!
//! Run: `cargo bench -p obj-alloc -- --warm-up-time 1 --measurement-time 3`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::ptr::NonNull;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{criterion_main, BenchmarkGroup, Criterion, SamplingMode, Throughput};
use mimalloc::MiMalloc;
use obj_alloc::{ObjAlloc, ObjConfig};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// The allocators compared: one small interface over each.
trait BenchAlloc {
    const NAME: &'static str;
    fn alloc(&self, size: usize) -> *mut u8;
    /// # Safety
    /// `ptr` must come from `alloc(size)` of this allocator and not have been freed.
    unsafe fn free(&self, ptr: *mut u8, size: usize);
}

/// Every peer gets the alignment obj-alloc promises.
fn layout(size: usize) -> Layout {
    Layout::from_size_align(size, 16).expect("small sizes")
}

struct Pyheap(ObjAlloc);

impl BenchAlloc for Pyheap {
    const NAME: &'static str = "pyheap";
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

struct Glibc;

impl BenchAlloc for Glibc {
    const NAME: &'static str = "glibc";
    #[inline]
    fn alloc(&self, size: usize) -> *mut u8 {
        // SAFETY: the layout has a non-zero size.
        let p = unsafe { System.alloc(layout(size)) };
        if p.is_null() {
            std::alloc::handle_alloc_error(layout(size));
        }
        p
    }
    #[inline]
    unsafe fn free(&self, ptr: *mut u8, size: usize) {
        // SAFETY: allocated by System with this layout (contract).
        unsafe { System.dealloc(ptr, layout(size)) }
    }
}

struct Mimalloc;

impl BenchAlloc for Mimalloc {
    const NAME: &'static str = "mimalloc";
    #[inline]
    fn alloc(&self, size: usize) -> *mut u8 {
        // SAFETY: the layout has a non-zero size.
        let p = unsafe { MiMalloc.alloc(layout(size)) };
        if p.is_null() {
            std::alloc::handle_alloc_error(layout(size));
        }
        p
    }
    #[inline]
    unsafe fn free(&self, ptr: *mut u8, size: usize) {
        // SAFETY: allocated by MiMalloc with this layout (contract).
        unsafe { MiMalloc.dealloc(ptr, layout(size)) }
    }
}

const MIN_SIZE: usize = 16;
const MAX_SIZE: usize = 512;

/// A churn sequence: the initial sizes and a cycle of (slot to replace, new size) steps.
struct Churn {
    initial: Vec<u16>,
    steps: Box<[(u32, u16); CHURN_STEPS]>,
}

const CHURN_STEPS: usize = 1 << 20;

impl Churn {
    fn new(live: usize, seed: u64) -> Churn {
        let mut rng = SmallRng::seed_from_u64(seed);
        let mut size = || rng.gen_range(MIN_SIZE..=MAX_SIZE) as u16;
        let initial = (0..live).map(|_| size()).collect();
        let mut rng = SmallRng::seed_from_u64(seed + 1);
        let steps: Vec<(u32, u16)> = (0..CHURN_STEPS)
            .map(|_| {
                (
                    rng.gen_range(0..live) as u32,
                    rng.gen_range(MIN_SIZE..=MAX_SIZE) as u16,
                )
            })
            .collect();
        let steps = steps
            .into_boxed_slice()
            .try_into()
            .expect("CHURN_STEPS steps");
        Churn { initial, steps }
    }
}

/// The timed loop is the same for every allocator and as lean as it can be (no bounds checks),
/// so that the allocators' own costs dominate.
fn churn<A: BenchAlloc>(group: &mut BenchmarkGroup<'_, WallTime>, a: &A, seq: &Churn) {
    let mut live: Vec<(*mut u8, usize)> = seq
        .initial
        .iter()
        .map(|&s| (a.alloc(s as usize), s as usize))
        .collect();
    let mut pos = 0usize;
    group.bench_function(A::NAME, |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                let (slot, size) = seq.steps[pos % CHURN_STEPS];
                pos += 1;
                // SAFETY: every slot was drawn from 0..live.len().
                let entry = unsafe { live.get_unchecked_mut(slot as usize) };
                // SAFETY: the entry holds a live block of `a` with that size.
                unsafe { a.free(entry.0, entry.1) };
                *entry = (a.alloc(size as usize), size as usize);
            }
            start.elapsed()
        })
    });
    for (p, s) in live {
        // SAFETY: live blocks of `a`.
        unsafe { a.free(p, s) };
    }
}

const MANY: usize = 10_000_000;

fn alloc_then_free_all<A: BenchAlloc>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    a: &A,
    sizes: &[u16],
) {
    let mut blocks: Vec<*mut u8> = Vec::with_capacity(sizes.len());
    group.bench_function(A::NAME, |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                blocks.clear();
                let start = Instant::now();
                for &s in sizes {
                    blocks.push(a.alloc(s as usize));
                }
                for (&p, &s) in blocks.iter().zip(sizes) {
                    // SAFETY: allocated just above with this size, freed once.
                    unsafe { a.free(p, s as usize) };
                }
                total += start.elapsed();
            }
            total
        })
    });
}

/// The floor (PEERS.md): bump allocation of the same sizes, the whole arena dropped at the end.
fn bump_then_drop(group: &mut BenchmarkGroup<'_, WallTime>, sizes: &[u16]) {
    let mut blocks: Vec<*mut u8> = Vec::with_capacity(sizes.len());
    group.bench_function("bumpalo", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                blocks.clear();
                let start = Instant::now();
                let bump = bumpalo::Bump::new();
                for &s in sizes {
                    blocks.push(bump.alloc_layout(layout(s as usize)).as_ptr());
                }
                drop(bump);
                total += start.elapsed();
            }
            total
        })
    });
}

fn pyheap() -> Pyheap {
    Pyheap(ObjAlloc::new(ObjConfig::default()).expect("default config"))
}

fn bench_churn(c: &mut Criterion) {
    for (name, live) in [("churn_1k", 1_000), ("churn_100k", 100_000)] {
        let seq = Churn::new(live, 42);
        let mut group = c.benchmark_group(name);
        churn(&mut group, &pyheap(), &seq);
        churn(&mut group, &Glibc, &seq);
        churn(&mut group, &Mimalloc, &seq);
        group.finish();
    }
}

fn bench_alloc_free_all(c: &mut Criterion) {
    let mut rng = SmallRng::seed_from_u64(7);
    let sizes: Vec<u16> = (0..MANY)
        .map(|_| rng.gen_range(MIN_SIZE..=MAX_SIZE) as u16)
        .collect();
    let mut group = c.benchmark_group("alloc_10m_free_all");
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Elements(MANY as u64));
    alloc_then_free_all(&mut group, &pyheap(), &sizes);
    alloc_then_free_all(&mut group, &Glibc, &sizes);
    alloc_then_free_all(&mut group, &Mimalloc, &sizes);
    bump_then_drop(&mut group, &sizes);
    group.finish();
}

mod group {
    // criterion_group! defines a public function it cannot document.
    #![allow(missing_docs)]
    criterion::criterion_group!(benches, super::bench_churn, super::bench_alloc_free_all);
}
criterion_main!(group::benches);
