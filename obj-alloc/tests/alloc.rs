//! The allocator's public behaviour: pools, arenas, direct blocks, the limit, backends, owner
//! lookup and the `allocator_api2` implementation.

use std::ptr::NonNull;

use allocator_api2::alloc::{Allocator, Layout};
use obj_alloc::{ConfigError, ObjAlloc, ObjConfig, Placement, SizeClass};
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use raw_alloc::{Backend, OomCause, RawConfig};

fn heap() -> ObjAlloc {
    ObjAlloc::new(ObjConfig::default()).unwrap()
}

fn heap_with(raw: RawConfig) -> ObjAlloc {
    ObjAlloc::new(ObjConfig {
        raw,
        ..ObjConfig::default()
    })
    .unwrap()
}

/// Frees a block handed out by `heap` with `size` bytes.
fn free(heap: &ObjAlloc, block: NonNull<u8>, size: usize) {
    // SAFETY: every caller passes a block of `heap` allocated with `size` and not freed yet.
    unsafe { heap.dealloc(block, size) }
}

fn class_stats(heap: &ObjAlloc, size: usize) -> (usize, usize, usize) {
    let s = heap.stats();
    let c = &s.classes[SizeClass::of(size).unwrap().index()];
    (c.pools, c.blocks_in_use, c.free_blocks)
}

#[test]
fn small_requests_come_from_pools_and_larger_ones_are_direct_blocks() {
    let heap = heap();
    let small = heap.alloc(512).unwrap();
    assert_eq!(heap.raw().stats().direct_blocks, 0);
    assert_eq!(heap.raw().stats().arenas_current, 1);
    let large = heap.alloc(513).unwrap();
    assert_eq!(heap.raw().stats().direct_blocks, 1);
    assert_eq!(heap.raw().stats().direct_bytes, 528);
    free(&heap, large, 513);
    free(&heap, small, 512);
    heap.trim(); // the one empty arena kept against thrashing
    let raw = heap.raw().stats();
    assert_eq!(
        (raw.direct_blocks, raw.arenas_current, raw.bytes_in_use),
        (0, 0, 0)
    );
}

#[test]
#[cfg_attr(
    miri,
    ignore = "thousands of operations: minutes under the interpreter"
)]
fn every_block_is_8_aligned_multiples_of_16_are_16_aligned_and_blocks_hold_their_size() {
    let heap = heap();
    let mut blocks = Vec::new();
    for size in (0..=600).chain([4096, 100_000]) {
        let b = heap.alloc(size).unwrap();
        let align = if size > 0 && size.is_multiple_of(16) {
            16
        } else {
            8
        };
        assert_eq!(b.as_ptr() as usize % align, 0, "size {size}");
        // SAFETY: the block has at least `size` bytes.
        unsafe { b.as_ptr().write_bytes(size as u8, size) };
        blocks.push((b, size));
    }
    for (b, size) in blocks {
        // SAFETY: as above; nothing else wrote the block.
        let bytes = unsafe { std::slice::from_raw_parts(b.as_ptr(), size) };
        assert!(
            bytes.iter().all(|&x| x == size as u8),
            "size {size} clobbered"
        );
        free(&heap, b, size);
    }
    heap.trim(); // the one empty arena kept against thrashing
    assert_eq!(heap.raw().stats().arenas_current, 0);
}

#[test]
fn zero_byte_requests_are_served_as_one_byte_from_the_smallest_class() {
    let heap = heap();
    let a = heap.alloc(0).unwrap();
    let b = heap.alloc(0).unwrap();
    assert_ne!(a, b);
    assert_eq!(class_stats(&heap, 1).1, 2);
    free(&heap, a, 0);
    free(&heap, b, 0);
    heap.trim(); // the one empty arena kept against thrashing
    assert_eq!(heap.raw().stats().arenas_current, 0);
}

#[test]
fn blocks_are_carved_lazily_and_reused_last_in_first_out() {
    let heap = heap();
    let a = heap.alloc(48).unwrap();
    let b = heap.alloc(48).unwrap();
    let c = heap.alloc(48).unwrap();
    // Carved in address order, one class size apart.
    assert_eq!(b.as_ptr() as usize - a.as_ptr() as usize, 48);
    assert_eq!(c.as_ptr() as usize - b.as_ptr() as usize, 48);
    // The first pool of an arena starts its blocks after the arena header and the pool table.
    let s = heap.stats();
    assert_eq!(
        a.as_ptr() as usize % s.arenas.arena_size,
        s.pool_table_bytes
    );
    assert_eq!(s.pool_table_bytes, 16 + 64 * 40);
    free(&heap, a, 48);
    free(&heap, b, 48);
    assert_eq!(heap.alloc(47).unwrap(), b);
    assert_eq!(heap.alloc(41).unwrap(), a);
    for x in [a, b, c] {
        free(&heap, x, 48);
    }
}

#[test]
fn a_pool_goes_from_used_to_full_to_used_to_empty() {
    let heap = heap();
    let mut blocks = vec![heap.alloc(512).unwrap()];
    let per_pool = class_stats(&heap, 512).2 + 1;
    blocks.extend((1..per_pool).map(|_| heap.alloc(512).unwrap()));
    assert_eq!(class_stats(&heap, 512), (1, per_pool, 0), "one full pool");
    // The full pool left the used table: the next block needs a second pool.
    let extra = heap.alloc(512).unwrap();
    let (pools, in_use, _) = class_stats(&heap, 512);
    assert_eq!((pools, in_use), (2, per_pool + 1));
    free(&heap, extra, 512);
    assert_eq!(
        class_stats(&heap, 512),
        (1, per_pool, 0),
        "the empty pool went back"
    );
    // A full pool is withheld until frees give it back 4 blocks (`pool::HOLD`): one free
    // leaves it out of the used table, and the next block needs a second pool again.
    let freed = blocks.pop().unwrap();
    free(&heap, freed, 512);
    assert_eq!(class_stats(&heap, 512), (1, per_pool - 1, 1));
    let extra = heap.alloc(512).unwrap();
    assert_eq!(class_stats(&heap, 512).0, 2);
    free(&heap, extra, 512);
    // The fourth free makes it used again, and the next block comes from it (the last freed).
    let more: Vec<_> = blocks.drain(per_pool - 4..).collect();
    for &b in &more {
        free(&heap, b, 512);
    }
    assert_eq!(class_stats(&heap, 512), (1, per_pool - 4, 4));
    assert_eq!(heap.alloc(512).unwrap(), more[2]);
    blocks.push(more[2]);
    for b in blocks {
        free(&heap, b, 512);
    }
    assert_eq!(class_stats(&heap, 512), (0, 0, 0));
    heap.trim(); // the one empty arena kept against thrashing
    assert_eq!(heap.stats().arenas.current, 0);
}

#[test]
fn freeing_the_last_block_of_an_arena_returns_it_to_the_os() {
    let heap = heap();
    let b = heap.alloc(100).unwrap();
    assert_eq!(heap.raw().stats().arenas_current, 1);
    free(&heap, b, 100);
    heap.trim(); // the one empty arena kept against thrashing
    let raw = heap.raw().stats();
    assert_eq!((raw.arenas_current, raw.arenas_reclaimed), (0, 1));
}

#[test]
#[cfg_attr(miri, ignore = "a million blocks: too slow for the interpreter")]
fn a_million_blocks_allocated_and_freed_leave_no_arena_mapped() {
    let heap = heap();
    let mut rng = SmallRng::seed_from_u64(1);
    let mut blocks: Vec<(NonNull<u8>, usize)> = (0..1_000_000)
        .map(|_| {
            let size = rng.gen_range(1..=512);
            (heap.alloc(size).unwrap(), size)
        })
        .collect();
    let peak = heap.raw().stats().arenas_current;
    assert!(peak > 200, "{peak} arenas for ~264 MB of blocks");
    blocks.shuffle(&mut rng);
    for (b, size) in blocks {
        free(&heap, b, size);
    }
    heap.trim(); // the one empty arena kept against thrashing
    let s = heap.stats();
    assert_eq!(s.arenas.current, 0);
    assert_eq!(s.arenas.reclaimed, s.arenas.allocated);
    assert_eq!(s.raw.bytes_in_use, 0);
}

#[test]
#[cfg_attr(
    miri,
    ignore = "thousands of operations: minutes under the interpreter"
)]
fn the_heap_limit_refuses_cleanly_and_frees_make_room_again() {
    let arena_size = 64 << 10;
    let heap = ObjAlloc::new(ObjConfig {
        raw: RawConfig {
            arena_size,
            limit: Some(2 * arena_size),
            ..RawConfig::default()
        },
        pool_size: 4 << 10,
        ..ObjConfig::default()
    })
    .unwrap();
    let mut blocks = Vec::new();
    let err = loop {
        match heap.alloc(64) {
            Ok(b) => blocks.push(b),
            Err(e) => break e,
        }
    };
    assert_eq!(err.cause, OomCause::Limit);
    assert_eq!(heap.raw().stats().arenas_current, 2);
    // Refused again, and nothing changed.
    let before = heap.stats();
    assert!(heap.alloc(64).is_err());
    assert!(heap.alloc(300).is_err(), "other classes need a pool too");
    assert!(
        heap.alloc(10_000).is_err(),
        "direct blocks count against the limit"
    );
    assert_eq!(heap.stats().classes, before.classes);
    // One free: the full pool is withheld (it waits for more frees before it is used again),
    // but the limit refuses a new pool, so the withheld block serves the next request.
    let b = blocks.pop().unwrap();
    free(&heap, b, 64);
    assert_eq!(heap.alloc(64).unwrap(), b);
    // Free a whole arena's worth: now other classes get pools again.
    let half = blocks.len() / 2;
    for b in blocks.drain(..half) {
        free(&heap, b, 64);
    }
    let big = heap.alloc(300).unwrap();
    free(&heap, big, 300);
    free(&heap, b, 64);
    for b in blocks {
        free(&heap, b, 64);
    }
    heap.trim(); // the one empty arena kept against thrashing
    assert_eq!(heap.raw().stats().arenas_current, 0);
}

#[test]
fn the_system_backend_sends_every_block_to_the_system_allocator() {
    let heap = heap_with(RawConfig {
        backend: Backend::System,
        ..RawConfig::default()
    });
    let blocks: Vec<_> = (1..=100)
        .map(|s| (heap.alloc(s * 8).unwrap(), s * 8))
        .collect();
    heap.trim(); // the one empty arena kept against thrashing
    let s = heap.stats();
    assert_eq!(s.raw.direct_blocks, 100);
    assert_eq!(s.arenas.current, 0);
    assert!(s.classes.iter().all(|c| c.pools == 0));
    assert_eq!(heap.placement(16), Placement::Direct);
    for (b, size) in blocks {
        free(&heap, b, size);
    }
    assert_eq!(heap.raw().stats().direct_blocks, 0);
}

#[test]
#[cfg_attr(
    miri,
    ignore = "thousands of operations: minutes under the interpreter"
)]
fn pool_size_is_configurable_and_bad_pool_sizes_are_refused() {
    let heap = ObjAlloc::new(ObjConfig {
        raw: RawConfig::default(),
        pool_size: 256 << 10,
        ..ObjConfig::default()
    })
    .unwrap();
    let mut blocks = vec![heap.alloc(16).unwrap()];
    let per_pool = class_stats(&heap, 16).2 + 1;
    assert!(per_pool > 16_000, "{per_pool} blocks in a 256 KiB pool");
    blocks.extend((1..per_pool).map(|_| heap.alloc(16).unwrap()));
    assert_eq!(class_stats(&heap, 16), (1, per_pool, 0));
    for b in blocks {
        free(&heap, b, 16);
    }
    for pool_size in [0, 1000, 2048, 4 << 20] {
        let config = ObjConfig {
            raw: RawConfig::default(),
            pool_size,
            ..ObjConfig::default()
        };
        assert!(matches!(
            ObjAlloc::new(config),
            Err(ConfigError::PoolSize { .. })
        ));
    }
    let bad_arena = ObjConfig {
        raw: RawConfig {
            arena_size: 3 << 20,
            ..RawConfig::default()
        },
        ..ObjConfig::default()
    };
    assert!(matches!(ObjAlloc::new(bad_arena), Err(ConfigError::Raw(_))));
}

#[test]
fn placement_follows_the_size_the_backend_and_the_debug_padding() {
    let plain = heap();
    assert_eq!(plain.placement(0), Placement::Arena { arena_shift: 20 });
    assert_eq!(plain.placement(512), Placement::Arena { arena_shift: 20 });
    assert_eq!(plain.placement(513), Placement::Direct);
    let debug = heap_with(RawConfig {
        debug: true,
        ..RawConfig::default()
    });
    assert_eq!(debug.placement(480), Placement::Arena { arena_shift: 20 });
    assert_eq!(debug.placement(481), Placement::Direct);
    assert_eq!(debug.placement(usize::MAX), Placement::Direct);
}

#[test]
fn the_owner_is_found_from_any_arena_block_and_stamped_on_new_arenas() {
    let heap = heap();
    let owner_a = std::ptr::without_provenance::<()>(0x1000);
    let owner_b = std::ptr::without_provenance::<()>(0x2000);
    let first = heap.alloc(32).unwrap();
    heap.set_owner(owner_a);
    let Placement::Arena { arena_shift } = heap.placement(32) else {
        panic!("32 bytes come from an arena")
    };
    // SAFETY: `first` is a live arena block of `heap` with that placement.
    let owner = unsafe { ObjAlloc::arena_owner(first, arena_shift) };
    assert_eq!(owner, owner_a);
    // Enough blocks for a second arena: it gets the owner when mapped.
    let many: Vec<_> = (0..5000).map(|_| heap.alloc(512).unwrap()).collect();
    assert!(heap.raw().stats().arenas_current >= 2);
    let last = *many.last().unwrap();
    // SAFETY: as above.
    assert_eq!(unsafe { ObjAlloc::arena_owner(last, arena_shift) }, owner_a);
    heap.set_owner(owner_b);
    for b in [first, last] {
        // SAFETY: as above.
        assert_eq!(unsafe { ObjAlloc::arena_owner(b, arena_shift) }, owner_b);
    }
    free(&heap, first, 32);
    for b in many {
        free(&heap, b, 512);
    }
}

#[test]
#[cfg_attr(
    miri,
    ignore = "thousands of operations: minutes under the interpreter"
)]
fn a_hashbrown_map_and_an_allocator_api2_vec_live_in_the_heap() {
    let heap = heap();
    {
        let mut map = hashbrown::HashMap::new_in(&heap);
        for i in 0..10_000u64 {
            map.insert(i, i * i);
        }
        assert!(
            heap.raw().stats().direct_blocks > 0,
            "the big table is a direct block"
        );
        let mut v = allocator_api2::vec::Vec::new_in(&heap);
        for i in 0..1000u32 {
            v.push(i);
        }
        v.shrink_to_fit();
        v.truncate(10);
        v.shrink_to_fit();
        assert_eq!(v.iter().sum::<u32>(), 45);
        assert_eq!(map[&77], 77 * 77);
        let small = allocator_api2::vec![in &heap; 7u8; 20];
        assert_eq!(small.len(), 20);
        assert_eq!(
            heap.stats().classes[2].blocks_in_use,
            1,
            "20 bytes: one 24-byte block"
        );
    }
    heap.trim(); // the one empty arena kept against thrashing
    let s = heap.stats();
    assert_eq!((s.arenas.current, s.raw.direct_blocks), (0, 0));
}

#[test]
#[cfg_attr(miri, ignore = "hundreds of layouts: slow under the interpreter")]
fn layouts_aligned_to_16_get_16_aligned_blocks_even_between_8_byte_classes() {
    let heap = heap();
    let a = &heap;
    let mut blocks = Vec::new();
    // Interleave 8- and 16-aligned layouts so that 8-aligned-only classes are in use too.
    for size in (0usize..=600).step_by(8) {
        for align in [8usize, 16] {
            let size = size.next_multiple_of(align);
            let layout = Layout::from_size_align(size, align).unwrap();
            let block = a.allocate(layout).unwrap();
            let ptr = block.cast::<u8>();
            assert_eq!(
                ptr.as_ptr() as usize % align,
                0,
                "size {size} align {align}"
            );
            assert_eq!(block.len(), size);
            // SAFETY: the block has `size` bytes.
            unsafe { ptr.as_ptr().write_bytes(0xAB, size) };
            blocks.push((ptr, layout));
        }
    }
    for (ptr, layout) in blocks {
        // SAFETY: allocated above with this layout.
        unsafe { a.deallocate(ptr, layout) };
    }
    heap.trim();
    let s = heap.stats();
    assert_eq!((s.arenas.current, s.raw.direct_blocks), (0, 0));
}

#[test]
fn a_zero_sized_layout_aligned_to_16_is_16_aligned() {
    let heap = heap();
    let a = &heap;
    let layout = Layout::from_size_align(0, 16).unwrap();
    let small = Layout::from_size_align(8, 8).unwrap();
    // An 8-byte block first, so that a 16-byte-blind allocator would be 8 bytes off.
    let x = a.allocate(small).unwrap().cast::<u8>();
    let y = a.allocate(layout).unwrap().cast::<u8>();
    assert_eq!(y.as_ptr() as usize % 16, 0);
    // SAFETY: allocated above with these layouts.
    unsafe {
        a.deallocate(y, layout);
        a.deallocate(x, small);
    }
}

#[test]
fn over_aligned_layouts_are_aligned_and_freed_whole() {
    let heap = heap();
    let a = &heap;
    let mut blocks = Vec::new();
    for align in [32, 64, 256, 4096] {
        for size in [0, 1, 100, 600, 5000] {
            let layout = Layout::from_size_align(size, align).unwrap();
            let block = a.allocate(layout).unwrap();
            let ptr = block.cast::<u8>();
            assert_eq!(ptr.as_ptr() as usize % align, 0);
            assert_eq!(block.len(), size);
            // SAFETY: the block has `size` bytes.
            unsafe { ptr.as_ptr().write_bytes(0xAB, size) };
            blocks.push((ptr, layout));
        }
    }
    for (ptr, layout) in blocks {
        // SAFETY: allocated above with this layout.
        unsafe { a.deallocate(ptr, layout) };
    }
    heap.trim(); // the one empty arena kept against thrashing
    let s = heap.stats();
    assert_eq!((s.arenas.current, s.raw.direct_blocks), (0, 0));
    let huge = Layout::from_size_align(isize::MAX as usize - 63, 64).unwrap();
    assert!(a.allocate(huge).is_err());
}

#[test]
fn an_allocator_api2_vec_reports_a_refused_growth_under_the_limit() {
    let heap = heap_with(RawConfig {
        limit: Some(4 << 20),
        ..RawConfig::default()
    });
    let mut v: allocator_api2::vec::Vec<u8, _> = allocator_api2::vec::Vec::new_in(&heap);
    assert!(v.try_reserve(8 << 20).is_err());
    assert!(v.try_reserve(1 << 20).is_ok());
    let mut rng = SmallRng::seed_from_u64(3);
    v.extend((0..1000).map(|_| rng.gen::<u8>()));
    assert_eq!(v.len(), 1000);
}

/// 64 KiB arenas of 4 KiB pools, keeping up to `keep` empty arenas, under `limit`.
fn retaining_heap(keep: usize, limit: Option<usize>) -> ObjAlloc {
    ObjAlloc::new(ObjConfig {
        raw: RawConfig {
            arena_size: 64 << 10,
            limit,
            ..RawConfig::default()
        },
        pool_size: 4 << 10,
        empty_arena_budget: keep * (64 << 10),
    })
    .unwrap()
}

/// Allocates 512-byte blocks until `arenas` arenas are full and one more is mapped (empty
/// again: its block is freed, so the next free of a block may retain it).
fn fill_arenas(heap: &ObjAlloc, arenas: u64) -> Vec<NonNull<u8>> {
    let mut blocks = Vec::new();
    loop {
        let b = heap.alloc(512).unwrap();
        if heap.raw().stats().arenas_current > arenas {
            free(heap, b, 512);
            return blocks;
        }
        blocks.push(b);
    }
}

#[test]
fn a_direct_block_the_limit_would_refuse_first_releases_the_retained_arenas() {
    let arena = 64 << 10;
    let heap = retaining_heap(4, Some(4 * arena));
    for b in fill_arenas(&heap, 3) {
        free(&heap, b, 512);
    }
    let s = heap.stats();
    assert_eq!((s.arenas.retained, s.raw.bytes_in_use), (4, 4 * arena));
    // 2 arenas' worth of direct block: it fits only once the retained arenas are gone.
    let big = heap.alloc(2 * arena).unwrap();
    let s = heap.stats();
    assert_eq!(s.arenas.retained, 0);
    assert_eq!(
        s.raw.failed_requests, 0,
        "no request was refused on the way"
    );
    assert_eq!(s.raw.bytes_in_use, 2 * arena);
    free(&heap, big, 2 * arena);
    // A request that fits leaves them alone.
    for b in fill_arenas(&heap, 1) {
        free(&heap, b, 512);
    }
    assert_eq!(heap.stats().arenas.retained, 2);
    let small_direct = heap.alloc(arena).unwrap();
    assert_eq!(heap.stats().arenas.retained, 2);
    free(&heap, small_direct, arena);
    heap.trim();
    assert_eq!(heap.raw().stats().bytes_in_use, 0);
}

#[test]
fn retained_arenas_count_against_the_limit_and_pools_reuse_them_under_it() {
    let arena = 64 << 10;
    let heap = retaining_heap(8, Some(3 * arena));
    for _ in 0..5 {
        // Up to the limit and back, five times: the arenas are mapped once.
        let blocks = fill_arenas(&heap, 2);
        for b in blocks {
            free(&heap, b, 512);
        }
        let raw = heap.raw().stats();
        assert!(raw.bytes_in_use <= 3 * arena);
    }
    let raw = heap.raw().stats();
    assert_eq!(
        raw.arenas_allocated, 3,
        "fill_arenas maps one arena past the two"
    );
    assert_eq!(raw.failed_requests, 0);
    heap.clear_free_lists();
    assert_eq!(heap.raw().stats().arenas_current, 0);
}

#[test]
fn the_empty_arena_budget_keeps_whole_arenas_at_least_one_and_is_bounded() {
    let keeps = |budget: usize| {
        ObjConfig {
            empty_arena_budget: budget,
            ..ObjConfig::default()
        }
        .empty_arenas_kept()
    };
    assert_eq!(keeps(0), 1, "CPython's rule");
    assert_eq!(keeps((1 << 20) - 1), 1);
    assert_eq!(keeps(obj_alloc::DEFAULT_EMPTY_ARENA_BUDGET), 8);
    assert_eq!(keeps(5 << 20 | 12345), 5);
    let too_big = ObjConfig {
        empty_arena_budget: obj_alloc::MAX_EMPTY_ARENA_BUDGET + 1,
        ..ObjConfig::default()
    };
    assert!(matches!(
        ObjAlloc::new(too_big),
        Err(ConfigError::EmptyArenaBudget { .. })
    ));
}

#[test]
#[cfg_attr(
    miri,
    ignore = "a chain's worth of blocks: too slow for the interpreter"
)]
fn building_the_same_structure_again_maps_no_arena_within_the_budget() {
    let heap = heap();
    for round in 0..4 {
        let blocks: Vec<_> = (0..100_000).map(|_| heap.alloc(48).unwrap()).collect();
        for b in blocks {
            free(&heap, b, 48);
        }
        let s = heap.stats();
        assert_eq!(
            s.arenas.allocated, 5,
            "round {round}: 4.8 MB in five arenas, mapped once"
        );
        assert_eq!(s.arenas.retained, 5);
    }
    heap.clear_free_lists();
    assert_eq!(heap.stats().arenas.current, 0);
}

#[test]
fn usable_size_is_the_block_a_request_takes() {
    let h = heap();
    // 8-byte steps up to FINE_LIMIT, 16-byte steps above, the request itself past the
    // threshold (a direct block).
    assert_eq!(h.usable_size(1), 8);
    assert_eq!(h.usable_size(100), 104);
    assert_eq!(h.usable_size(256), 256);
    assert_eq!(h.usable_size(257), 272);
    assert_eq!(h.usable_size(512), 512);
    assert_eq!(h.usable_size(513), 513);
    for size in 1..=512 {
        assert_eq!(
            h.usable_size(size),
            SizeClass::of(size).unwrap().block_size()
        );
    }
    // With the system backend every block is the request, whatever malloc adds.
    let sys = heap_with(RawConfig {
        backend: Backend::System,
        ..RawConfig::default()
    });
    assert_eq!(sys.usable_size(100), 100);
}
