//! Per-kind allocation policies: free lists, per-length free lists, their counters and bounds.

use std::ptr::NonNull;

use obj_alloc::{
    KindId, ObjAlloc, ObjConfig, Policy, SizeClass, DICT_FREE_LIST_CAPACITY,
    FLOAT_FREE_LIST_CAPACITY, LIST_FREE_LIST_CAPACITY, TUPLE_FREE_LIST_CAPACITY,
    TUPLE_MAX_SAVED_LEN,
};
use raw_alloc::{Backend, RawConfig};

fn heap() -> ObjAlloc {
    ObjAlloc::new(ObjConfig::default()).unwrap()
}

fn free(heap: &ObjAlloc, kind: KindId, block: NonNull<u8>, size: usize) {
    // SAFETY: every caller passes a live block of `heap` allocated with `size`.
    unsafe { heap.dealloc_kind(kind, block, size) }
}

fn blocks_in_use(heap: &ObjAlloc, size: usize) -> usize {
    heap.stats().classes[SizeClass::of(size).unwrap().index()].blocks_in_use
}

#[test]
fn cpython_capacities_are_the_defaults() {
    assert_eq!(FLOAT_FREE_LIST_CAPACITY, 100);
    assert_eq!(LIST_FREE_LIST_CAPACITY, 80);
    assert_eq!(DICT_FREE_LIST_CAPACITY, 80);
    assert_eq!((TUPLE_MAX_SAVED_LEN, TUPLE_FREE_LIST_CAPACITY), (19, 2000));
    assert_eq!(Policy::FLOAT, Policy::FreeList { capacity: 100 });
    assert_eq!(
        Policy::TUPLE,
        Policy::PerLength {
            max_len: 19,
            capacity: 2000
        }
    );
}

#[test]
fn a_freed_float_is_reused_from_the_free_list_without_touching_its_pool() {
    let heap = heap();
    let float = heap.register_kind("float", Policy::FLOAT);
    let a = heap.alloc_kind(float, 24).unwrap();
    free(&heap, float, a, 24);
    // The dead block is still an allocated block of its class, and on the kind's list.
    assert_eq!(blocks_in_use(&heap, 24), 1);
    assert_eq!(heap.kind_stats(float).free_list_len, 1);
    let before = heap.stats().classes;
    let b = heap.alloc_kind(float, 24).unwrap();
    assert_eq!(a, b);
    assert_eq!(heap.stats().classes, before, "no pool changed");
    let k = heap.kind_stats(float);
    assert_eq!(
        (
            k.allocations,
            k.frees,
            k.live,
            k.free_list_hits,
            k.free_list_misses
        ),
        (2, 1, 1, 1, 1)
    );
    assert_eq!(k.free_list_len, 0);
    free(&heap, float, b, 24);
}

#[test]
fn a_free_list_keeps_at_most_its_capacity_and_frees_the_rest_to_pools() {
    let heap = heap();
    let kind = heap.register_kind("small", Policy::FreeList { capacity: 3 });
    let blocks: Vec<_> = (0..5).map(|_| heap.alloc_kind(kind, 32).unwrap()).collect();
    for &b in &blocks {
        free(&heap, kind, b, 32);
    }
    assert_eq!(heap.kind_stats(kind).free_list_len, 3);
    assert_eq!(blocks_in_use(&heap, 32), 3, "two went back to their pool");
    // The list is last in, first out.
    assert_eq!(heap.alloc_kind(kind, 32).unwrap(), blocks[2]);
    free(&heap, kind, blocks[2], 32);
    assert_eq!(heap.clear_free_lists(), 3);
    assert_eq!(heap.kind_stats(kind).free_list_len, 0);
    assert_eq!(heap.stats().arenas.current, 0);
}

#[test]
fn a_free_list_only_serves_and_keeps_blocks_of_its_size() {
    let heap = heap();
    let kind = heap.register_kind("dict", Policy::DICT);
    let a = heap.alloc_kind(kind, 48).unwrap();
    let b = heap.alloc_kind(kind, 64).unwrap();
    free(&heap, kind, a, 48);
    free(&heap, kind, b, 64); // another size while the list holds 48s: to the pool
    assert_eq!(heap.kind_stats(kind).free_list_len, 1);
    assert_eq!(blocks_in_use(&heap, 64), 0);
    let c = heap.alloc_kind(kind, 64).unwrap(); // a miss: the list holds 48-byte blocks
    assert_ne!(c, a);
    let d = heap.alloc_kind(kind, 48).unwrap(); // a hit
    assert_eq!(d, a);
    let k = heap.kind_stats(kind);
    assert_eq!((k.free_list_hits, k.free_list_misses), (1, 3));
    free(&heap, kind, c, 64);
    free(&heap, kind, d, 48);
    heap.clear_free_lists();
    assert_eq!(heap.stats().arenas.current, 0);
}

#[test]
fn tuples_get_one_free_list_per_length() {
    let heap = heap();
    let tuple = heap.register_kind(
        "tuple",
        Policy::PerLength {
            max_len: 3,
            capacity: 2,
        },
    );
    let size = |len: usize| 24 + 8 * len;
    let mut blocks = Vec::new();
    for len in 1..=4 {
        for _ in 0..3 {
            blocks.push((len, heap.alloc_kind_len(tuple, len, size(len)).unwrap()));
        }
    }
    for &(len, b) in &blocks {
        // SAFETY: live block of `heap` with that size.
        unsafe { heap.dealloc_kind_len(tuple, len, b, size(len)) };
    }
    let k = heap.kind_stats(tuple);
    let lens: Vec<_> = k
        .free_lists
        .iter()
        .map(|l| (l.len, l.blocks, l.block_size))
        .collect();
    assert_eq!(
        lens,
        vec![(Some(1), 2, 32), (Some(2), 2, 40), (Some(3), 2, 48)]
    );
    assert_eq!(k.free_list_len, 6);
    // Length 2 is served from its own list; length 4 has none.
    let again = heap.alloc_kind_len(tuple, 2, size(2)).unwrap();
    assert_eq!(
        again, blocks[4].1,
        "the last length-2 tuple kept (the third did not fit)"
    );
    let long = heap.alloc_kind_len(tuple, 4, size(4)).unwrap();
    let k = heap.kind_stats(tuple);
    assert_eq!((k.free_list_hits, k.free_list_misses), (1, 13));
    assert_eq!(k.live, 2);
    // SAFETY: live blocks of `heap` with those sizes.
    unsafe {
        heap.dealloc_kind_len(tuple, 2, again, size(2));
        heap.dealloc_kind_len(tuple, 4, long, size(4));
    }
    assert_eq!(heap.clear_free_lists(), 6);
    assert_eq!(heap.stats().arenas.current, 0);
}

#[test]
fn a_size_class_kind_counts_without_keeping_anything() {
    let heap = heap();
    let int = heap.register_kind("int", Policy::SizeClass);
    let a = heap.alloc_kind(int, 32).unwrap();
    let b = heap.alloc_kind(int, 1000).unwrap();
    free(&heap, int, a, 32);
    let k = heap.kind_stats(int);
    assert_eq!((k.allocations, k.frees, k.live), (2, 1, 1));
    assert_eq!(
        (k.free_list_hits, k.free_list_misses, k.free_list_len),
        (0, 0, 0)
    );
    assert!(k.free_lists.is_empty());
    free(&heap, int, b, 1000);
    heap.trim(); // the one empty arena kept against thrashing
    assert_eq!(heap.stats().raw.bytes_in_use, 0);
}

#[test]
fn large_objects_use_their_free_list_too() {
    let heap = heap();
    let list = heap.register_kind("list", Policy::LIST);
    let a = heap.alloc_kind(list, 4000).unwrap();
    free(&heap, list, a, 4000);
    assert_eq!(heap.raw().stats().direct_blocks, 1, "kept on the list");
    assert_eq!(heap.alloc_kind(list, 4000).unwrap(), a);
    free(&heap, list, a, 4000);
    heap.clear_free_lists();
    assert_eq!(heap.raw().stats().direct_blocks, 0);
}

#[test]
fn kinds_keep_counting_with_the_system_backend_and_the_debug_layer() {
    for raw in [
        RawConfig {
            backend: Backend::System,
            ..RawConfig::default()
        },
        RawConfig {
            debug: true,
            ..RawConfig::default()
        },
    ] {
        let heap = ObjAlloc::new(ObjConfig {
            raw,
            ..ObjConfig::default()
        })
        .unwrap();
        let float = heap.register_kind("float", Policy::FLOAT);
        let a = heap.alloc_kind(float, 24).unwrap();
        free(&heap, float, a, 24);
        let b = heap.alloc_kind(float, 24).unwrap();
        assert_eq!(a, b);
        free(&heap, float, b, 24);
        let k = heap.kind_stats(float);
        assert_eq!((k.allocations, k.frees, k.free_list_hits), (2, 2, 1));
        heap.clear_free_lists();
        let s = heap.stats();
        assert_eq!((s.raw.bytes_in_use, s.raw.direct_blocks), (0, 0));
        if let Some(d) = s.raw.debug {
            assert_eq!((d.live_blocks, d.violations), (0, 0));
        }
    }
}

#[test]
fn all_kinds_share_the_arenas_and_the_heap_limit() {
    let arena_size = 64 << 10;
    let heap = ObjAlloc::new(ObjConfig {
        raw: RawConfig {
            arena_size,
            limit: Some(arena_size),
            ..RawConfig::default()
        },
        pool_size: 4 << 10,
        ..ObjConfig::default()
    })
    .unwrap();
    let float = heap.register_kind("float", Policy::FLOAT);
    let tuple = heap.register_kind("tuple", Policy::TUPLE);
    let mut floats = Vec::new();
    while let Ok(b) = heap.alloc_kind(float, 24) {
        floats.push(b);
    }
    // The one arena is full of floats' pools: a tuple needs a pool and is refused.
    assert!(heap.alloc_kind_len(tuple, 3, 48).is_err());
    assert_eq!(
        heap.kind_stats(tuple).allocations,
        0,
        "a refusal is not counted"
    );
    for b in floats {
        free(&heap, float, b, 24);
    }
    heap.clear_free_lists();
    let t = heap.alloc_kind_len(tuple, 3, 48).unwrap();
    // SAFETY: live block of `heap` with 48 bytes.
    unsafe { heap.dealloc_kind_len(tuple, 3, t, 48) };
}
