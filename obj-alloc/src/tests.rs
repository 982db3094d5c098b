//! Unit tests of the invariants that only the inside of the crate can see: the usable-arena
//! ordering and the arena table's bookkeeping.

use std::ptr::NonNull;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use raw_alloc::RawConfig;

use crate::{ObjAlloc, ObjConfig, SizeClass};

const ARENA: usize = 64 << 10;

/// 64 KiB arenas of 16 pools of 4 KiB: small numbers, easy to reason about. It keeps one empty
/// arena, as CPython does.
fn small_heap() -> ObjAlloc {
    small_heap_keeping(1)
}

/// As [`small_heap`], keeping up to `arenas` empty arenas.
fn small_heap_keeping(arenas: usize) -> ObjAlloc {
    ObjAlloc::new(ObjConfig {
        raw: RawConfig {
            arena_size: ARENA,
            ..RawConfig::default()
        },
        pool_size: 4 << 10,
        empty_arena_budget: arenas * ARENA,
    })
    .unwrap()
}

const BIG: usize = 512;

/// Fills `arenas` arenas with 512-byte blocks; returns them grouped by pool, 16 pools per arena
/// in the order of the arenas' slots.
fn fill_pools(heap: &ObjAlloc, arenas: usize) -> Vec<Vec<NonNull<u8>>> {
    let g = heap.geometry;
    let class = SizeClass::of(BIG).unwrap();
    let per_arena: usize = g.usable_pools().map(|i| g.capacity(class, i)).sum();
    let mut blocks: Vec<NonNull<u8>> = (0..arenas * per_arena)
        .map(|_| heap.alloc(BIG).unwrap())
        .collect();
    assert_eq!(heap.raw().stats().arenas_current as usize, arenas);
    // By arena slot, then by address.
    blocks.sort_by_key(|b| (slot_of(heap, *b), *b));
    let mut pools: Vec<Vec<NonNull<u8>>> = Vec::new();
    for b in blocks {
        match pools.last_mut() {
            Some(p) if g.pool_of(p[0]) == g.pool_of(b) => p.push(b),
            _ => pools.push(vec![b]),
        }
    }
    assert_eq!(pools.len(), arenas * 16);
    pools
}

fn free_pool(heap: &ObjAlloc, blocks: Vec<NonNull<u8>>) {
    for b in blocks {
        // SAFETY: each block came from `heap` with BIG bytes and is freed once.
        unsafe { heap.dealloc(b, BIG) };
    }
    heap.arenas.borrow().check();
}

fn slot_of(heap: &ObjAlloc, block: NonNull<u8>) -> u32 {
    heap.arenas.borrow().slot_of(block.as_ptr()).unwrap()
}

#[test]
fn usable_arenas_stay_sorted_by_free_pools_fewest_first() {
    let heap = small_heap();
    let mut pools = fill_pools(&heap, 3); // three full arenas: slots 0, 1, 2
    heap.arenas.borrow().check();
    assert_eq!(heap.arenas.borrow().usable_order(), vec![]);
    assert_eq!(slot_of(&heap, pools[0][0]), 0);
    assert_eq!(slot_of(&heap, pools[47][0]), 2);

    // Free 5 pools of arena 0, 2 of arena 1, 8 of arena 2 (highest pools first).
    for (arena, n) in [(0usize, 5usize), (1, 2), (2, 8)] {
        for p in 0..n {
            free_pool(&heap, std::mem::take(&mut pools[arena * 16 + 15 - p]));
        }
    }
    assert_eq!(
        heap.arenas.borrow().usable_order(),
        vec![(1, 2), (0, 5), (2, 8)]
    );

    // Arena 1 frees more pools and moves behind arena 0 once it has more free pools than it.
    free_pool(&heap, std::mem::take(&mut pools[16 + 13]));
    assert_eq!(
        heap.arenas.borrow().usable_order(),
        vec![(1, 3), (0, 5), (2, 8)]
    );
    for p in [12, 11, 10] {
        free_pool(&heap, std::mem::take(&mut pools[16 + p]));
    }
    assert_eq!(
        heap.arenas.borrow().usable_order(),
        vec![(0, 5), (1, 6), (2, 8)]
    );
}

#[test]
fn a_new_pool_comes_from_the_arena_with_the_fewest_free_pools() {
    let heap = small_heap();
    let mut pools = fill_pools(&heap, 3);
    for (arena, n) in [(0usize, 5usize), (1, 2), (2, 8)] {
        for p in 0..n {
            free_pool(&heap, std::mem::take(&mut pools[arena * 16 + 15 - p]));
        }
    }
    // A class with no used pool takes a new pool: from arena 1, the fullest.
    let small = heap.alloc(16).unwrap();
    assert_eq!(slot_of(&heap, small), 1);
    assert_eq!(
        heap.arenas.borrow().usable_order(),
        vec![(1, 1), (0, 5), (2, 8)]
    );
    let other = heap.alloc(100).unwrap();
    assert_eq!(slot_of(&heap, other), 1);
    // Arena 1 is full now and leaves the list; the next pool comes from arena 0.
    assert_eq!(heap.arenas.borrow().usable_order(), vec![(0, 5), (2, 8)]);
    let third = heap.alloc(200).unwrap();
    assert_eq!(slot_of(&heap, third), 0);
    heap.arenas.borrow().check();
    // SAFETY: each block came from `heap` with that size and is freed once.
    unsafe {
        heap.dealloc(small, 16);
        heap.dealloc(other, 100);
        heap.dealloc(third, 200);
    }
    heap.arenas.borrow().check();
}

#[test]
fn one_empty_arena_is_kept_and_the_next_returned_to_the_os() {
    let heap = small_heap();
    let mut pools = fill_pools(&heap, 2); // arenas in slots 0 and 1
    for p in pools.drain(..16) {
        free_pool(&heap, p);
    }
    // Arena 0 is empty: kept (CPython keeps one), not unmapped.
    assert_eq!(heap.raw().stats().arenas_current, 2);
    assert_eq!(heap.raw().stats().arenas_reclaimed, 0);
    // Arena 1 is full: the next pool comes from the kept arena, with no new mapping.
    let b = heap.alloc(BIG).unwrap();
    assert_eq!(slot_of(&heap, b), 0);
    assert_eq!(heap.raw().stats().arenas_allocated, 2);
    // SAFETY: from `heap` with BIG bytes, freed once.
    unsafe { heap.dealloc(b, BIG) };
    for p in pools {
        free_pool(&heap, p);
    }
    // Both empty: one kept, the other returned; trim returns the kept one.
    assert_eq!(heap.raw().stats().arenas_current, 1);
    heap.arenas.borrow().check();
    heap.trim();
    assert_eq!(heap.raw().stats().arenas_current, 0);
    assert_eq!(heap.raw().stats().arenas_reclaimed, 2);
    // A released slot is reused by the next arena.
    let c = heap.alloc(BIG).unwrap();
    assert!(slot_of(&heap, c) < 2);
    // SAFETY: as above.
    unsafe { heap.dealloc(c, BIG) };
}

#[test]
fn a_workload_at_an_arena_boundary_does_not_map_and_unmap_each_time() {
    let heap = small_heap();
    let pools = fill_pools(&heap, 1);
    for _ in 0..100 {
        let b = heap.alloc(BIG).unwrap(); // needs a second arena
                                          // SAFETY: from `heap` with BIG bytes, freed once.
        unsafe { heap.dealloc(b, BIG) };
    }
    assert_eq!(
        heap.raw().stats().arenas_allocated,
        2,
        "one mapping, not 100"
    );
    for p in pools {
        free_pool(&heap, p);
    }
    heap.trim();
    assert_eq!(heap.raw().stats().arenas_current, 0);
}

#[test]
#[cfg_attr(
    miri,
    ignore = "thousands of operations: minutes under the interpreter"
)]
fn random_churn_keeps_every_arena_table_invariant() {
    let heap = small_heap();
    let mut rng = SmallRng::seed_from_u64(7);
    let mut live: Vec<(NonNull<u8>, usize)> = Vec::new();
    for step in 0..20_000 {
        // Grow for a while, then shrink, so arenas fill, drain and go back to the OS.
        let grow = (step / 5_000) % 2 == 0;
        if live.is_empty() || rng.gen_bool(if grow { 0.7 } else { 0.3 }) {
            let size = rng.gen_range(1..=512);
            live.push((heap.alloc(size).unwrap(), size));
        } else {
            let (b, size) = live.swap_remove(rng.gen_range(0..live.len()));
            // SAFETY: from `heap` with `size` bytes, freed once.
            unsafe { heap.dealloc(b, size) };
        }
        if step % 97 == 0 {
            heap.arenas.borrow().check();
        }
    }
    for (b, size) in live {
        // SAFETY: as above.
        unsafe { heap.dealloc(b, size) };
    }
    heap.arenas.borrow().check();
    assert_eq!(heap.raw().stats().arenas_current, 1, "the one kept empty");
    heap.trim();
    assert_eq!(heap.raw().stats().arenas_current, 0);
    assert!(heap.raw().stats().arenas_reclaimed > 1);
}

#[test]
fn empty_arenas_are_retained_up_to_the_budget_and_the_rest_go_back_to_the_os() {
    let heap = small_heap_keeping(2);
    let pools = fill_pools(&heap, 4);
    for p in pools {
        free_pool(&heap, p);
    }
    // Four arenas emptied: two retained (the budget), two returned.
    let raw = heap.raw().stats();
    assert_eq!((raw.arenas_current, raw.arenas_reclaimed), (2, 2));
    assert_eq!(heap.retained_arenas(), 2);
    assert_eq!(
        raw.bytes_in_use,
        2 * ARENA,
        "retained arenas are mapped memory"
    );
    // Retained arenas are usable with every pool free: the tail of the usable list.
    assert!(heap
        .arenas
        .borrow()
        .usable_order()
        .iter()
        .all(|&(_, free)| free == 16));
    heap.trim();
    assert_eq!(heap.retained_arenas(), 0);
    assert_eq!(heap.raw().stats().arenas_current, 0);
    heap.arenas.borrow().check();
}

#[test]
fn retained_arenas_serve_the_next_pools_before_any_new_mapping() {
    let heap = small_heap_keeping(3);
    for p in fill_pools(&heap, 3) {
        free_pool(&heap, p);
    }
    assert_eq!(heap.retained_arenas(), 3);
    // The same work again maps nothing: every pool comes from a retained arena.
    let pools = fill_pools(&heap, 3);
    let raw = heap.raw().stats();
    assert_eq!((raw.arenas_allocated, raw.arenas_reclaimed), (3, 0));
    assert_eq!(heap.retained_arenas(), 0);
    for p in pools {
        free_pool(&heap, p);
    }
    heap.clear_free_lists();
    assert_eq!(heap.raw().stats().arenas_current, 0);
}

#[test]
fn a_new_pool_comes_from_a_partly_used_arena_before_a_retained_one() {
    let heap = small_heap_keeping(4);
    let mut pools = fill_pools(&heap, 2);
    for p in pools.drain(..16) {
        free_pool(&heap, p); // arena 0 empty: retained
    }
    free_pool(&heap, pools.pop().unwrap()); // arena 1 has one free pool
    assert_eq!(heap.retained_arenas(), 1);
    assert_eq!(heap.arenas.borrow().usable_order(), vec![(1, 1), (0, 16)]);
    let b = heap.alloc(BIG).unwrap();
    assert_eq!(slot_of(&heap, b), 1, "the retained arena stays empty");
    assert_eq!(heap.retained_arenas(), 1);
    // SAFETY: from `heap` with BIG bytes, freed once.
    unsafe { heap.dealloc(b, BIG) };
    for p in pools {
        free_pool(&heap, p);
    }
    assert_eq!(heap.retained_arenas(), 2);
    heap.trim();
    assert_eq!(heap.raw().stats().arenas_current, 0);
}

#[test]
#[cfg_attr(
    miri,
    ignore = "thousands of operations: minutes under the interpreter"
)]
fn random_churn_with_retention_keeps_every_arena_table_invariant() {
    let heap = small_heap_keeping(3);
    let mut rng = SmallRng::seed_from_u64(11);
    let mut live: Vec<(NonNull<u8>, usize)> = Vec::new();
    for step in 0..20_000 {
        let grow = (step / 3_000) % 2 == 0;
        if live.is_empty() || rng.gen_bool(if grow { 0.7 } else { 0.3 }) {
            let size = rng.gen_range(1..=512);
            live.push((heap.alloc(size).unwrap(), size));
        } else {
            let (b, size) = live.swap_remove(rng.gen_range(0..live.len()));
            // SAFETY: from `heap` with `size` bytes, freed once.
            unsafe { heap.dealloc(b, size) };
        }
        if step % 97 == 0 {
            heap.arenas.borrow().check();
            assert!(heap.retained_arenas() <= 3);
        }
    }
    for (b, size) in live {
        // SAFETY: as above.
        unsafe { heap.dealloc(b, size) };
    }
    heap.arenas.borrow().check();
    assert_eq!(heap.raw().stats().arenas_current, 3, "the three retained");
    heap.trim();
    assert_eq!(heap.raw().stats().arenas_current, 0);
}
