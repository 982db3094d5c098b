//! Frees one by one against a [`FreeBatch`](obj_alloc::FreeBatch): 1,000,000 blocks of 48
//! bytes of one kind (no free list, as the collector's containers mostly are), allocated in
//! order and written once, then freed in allocation order, every block or every other one.
//!
//! ```text
//!   case           frees                                        per
//!   all            1,000,000: dealloc_kind_len one by one,      one block freed
//!                  or FreeBatch::push_kind_len (whole pools:
//!                  emptied wholesale, no block written)
//!   every other    500,000 of them (no pool empties: every run is linked onto its pool)
//! ```
//!
//! Two configurations: the default one (an 8 MiB empty-arena budget, so the ~40 arenas that
//! empty past it go back to the OS during the frees, `munmap` included in the time) and one
//! that retains every empty arena (the allocator's own work alone). Each round is a fresh heap;
//! one-by-one and batch rounds alternate; the median of the rounds is printed.
//!
//! Run: `cargo run --release -p obj-alloc --example free_batch -- [ROUNDS] [BLOCKS]`.

use std::hint::black_box;
use std::ptr::NonNull;
use std::time::Instant;

use obj_alloc::{ObjAlloc, ObjConfig, Policy, DEFAULT_EMPTY_ARENA_BUDGET};

const SIZE: usize = 48;

#[derive(Clone, Copy, PartialEq)]
enum How {
    OneByOne,
    Batch,
}

/// Allocates `n` blocks, frees every `stride`th of them `how`; returns the ns per block freed.
fn round(budget: usize, n: usize, stride: usize, how: How) -> f64 {
    let heap = ObjAlloc::new(ObjConfig {
        empty_arena_budget: budget,
        ..ObjConfig::default()
    })
    .unwrap();
    let kind = heap.register_kind("object", Policy::SizeClass);
    let blocks: Vec<NonNull<u8>> = (0..n)
        .map(|i| {
            let b = heap.alloc_kind_len(kind, 0, SIZE).unwrap();
            // SAFETY: a fresh block of SIZE bytes.
            unsafe { b.as_ptr().write_bytes(i as u8, SIZE) };
            b
        })
        .collect();
    let freed: Vec<NonNull<u8>> = blocks.iter().step_by(stride).copied().collect();
    let start = Instant::now();
    match how {
        How::OneByOne => {
            for &b in &freed {
                // SAFETY: each block came from `heap` with SIZE bytes and is freed once.
                unsafe { heap.dealloc_kind_len(kind, 0, black_box(b), SIZE) };
            }
        }
        How::Batch => {
            let mut batch = heap.free_batch();
            for &b in &freed {
                // SAFETY: as above.
                unsafe { batch.push_kind_len(kind, 0, black_box(b), SIZE) };
            }
            batch.finish();
        }
    }
    let ns = start.elapsed().as_nanos() as f64 / freed.len() as f64;
    assert_eq!(heap.kind_stats(kind).frees, freed.len() as u64);
    black_box(&heap);
    ns
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let rounds: usize = args.next().map_or(9, |a| a.parse().expect("ROUNDS"));
    let n: usize = args
        .next()
        .map_or(1_000_000, |a| a.parse().expect("BLOCKS"));
    println!("{n} blocks of {SIZE} bytes in order; ns per block freed, median of {rounds} rounds");
    for (config, budget) in [
        ("default budget", DEFAULT_EMPTY_ARENA_BUDGET),
        ("retain all", 1 << 34),
    ] {
        for (label, stride) in [("all", 1), ("every other", 2)] {
            let (mut one, mut batch) = (Vec::new(), Vec::new());
            for _ in 0..rounds {
                one.push(round(budget, n, stride, How::OneByOne));
                batch.push(round(budget, n, stride, How::Batch));
            }
            let (one, batch) = (median(one), median(batch));
            println!(
                "{config:>14}, {label:<11}: one by one {one:6.2}   batch {batch:6.2}   ({:.2}x)",
                one / batch
            );
        }
    }
}
