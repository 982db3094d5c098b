//! Arenas: alignment, masking, owners, limit and accounting.

use raw_alloc::{
    Arena, Backend, ConfigError, OomCause, OutOfMemory, RawConfig, RawHeap, ARENA_HEADER_SIZE,
    MIN_ARENA_SIZE,
};
use std::ptr::NonNull;

fn heap(arena_size: usize, limit: Option<usize>) -> RawHeap {
    RawHeap::new(RawConfig {
        arena_size,
        limit,
        ..RawConfig::default()
    })
    .unwrap()
}

#[test]
fn arenas_are_aligned_to_their_size_for_every_accepted_size() {
    for shift in [16, 17, 20, 22] {
        let size = 1usize << shift;
        let h = heap(size, None);
        let arenas: Vec<Arena> = (0..4).map(|_| h.alloc_arena().unwrap()).collect();
        for a in &arenas {
            assert_eq!(a.base().as_ptr() as usize % size, 0, "size {size}");
            assert_eq!(a.size(), size);
        }
        for a in arenas {
            // SAFETY: each arena came from `h` and is freed once.
            unsafe { h.free_arena(a) };
        }
    }
}

#[test]
fn masking_any_address_inside_an_arena_finds_its_header_and_owner() {
    let h = heap(1 << 20, None);
    static OWNER: u8 = 7;
    let owner: *const () = (&OWNER as *const u8).cast();
    h.set_owner(owner);
    let a = h.alloc_arena().unwrap();
    for offset in [ARENA_HEADER_SIZE, 4096, (1 << 20) - 1] {
        // SAFETY: offset < arena size.
        let inside = unsafe { a.base().add(offset) };
        // SAFETY: `inside` is inside the live arena `a`.
        let found = unsafe { Arena::containing(inside, 1 << 20) };
        assert_eq!(found, a);
        assert_eq!(found.owner(), owner);
        assert!(a.contains(inside.as_ptr()));
    }
    a.set_owner(std::ptr::null());
    assert!(a.owner().is_null());
    assert_eq!(
        a.usable_start().as_ptr() as usize - a.base().as_ptr() as usize,
        16
    );
    // SAFETY: a came from h.
    unsafe { h.free_arena(a) };
}

#[test]
fn arena_memory_is_writable_over_its_whole_usable_span() {
    let h = heap(MIN_ARENA_SIZE, None);
    let a = h.alloc_arena().unwrap();
    let len = a.size() - ARENA_HEADER_SIZE;
    // SAFETY: the usable span of a live arena is ours to write.
    let bytes = unsafe { std::slice::from_raw_parts_mut(a.usable_start().as_ptr(), len) };
    bytes.fill(0xAB);
    // One comparison of the whole span (a `memcmp`, which Miri checks byte for byte at once,
    // where a loop over the bytes took it 15 s).
    assert!(bytes == vec![0xAB; len].as_slice());
    // SAFETY: a came from h; `bytes` is not used after this.
    unsafe { h.free_arena(a) };
}

#[test]
fn bad_arena_sizes_are_configuration_errors() {
    for size in [0, 3 << 20, 4096, MIN_ARENA_SIZE / 2, 1 << 31] {
        let err = RawHeap::new(RawConfig {
            arena_size: size,
            ..RawConfig::default()
        })
        .err()
        .unwrap();
        assert_eq!(err, ConfigError::ArenaSize(size));
    }
}

#[test]
fn a_request_past_the_limit_fails_and_leaves_the_heap_usable() {
    let size = 1 << 20;
    let h = heap(size, Some(2 * size + 100));
    let a = h.alloc_arena().unwrap();
    let b = h.alloc_arena().unwrap();
    let err = h.alloc_arena().unwrap_err();
    assert_eq!(
        err,
        OutOfMemory {
            requested: size,
            limit: Some(2 * size + 100),
            in_use: 2 * size,
            cause: OomCause::Limit
        }
    );
    assert!(err.to_string().contains("out of memory"));
    // Small direct blocks still fit under the limit; a large one does not.
    let d = h.alloc_direct(64).unwrap();
    assert_eq!(h.alloc_direct(4096).unwrap_err().cause, OomCause::Limit);
    let s = h.stats();
    assert_eq!((s.arenas_current, s.failed_requests), (2, 2));
    assert_eq!(s.bytes_in_use, 2 * size + 64);
    // Freeing makes room again.
    // SAFETY: each block/arena came from h and is freed once.
    unsafe {
        h.free_direct(d, 64);
        h.free_arena(a);
    }
    let c = h.alloc_arena().unwrap();
    // SAFETY: as above.
    unsafe {
        h.free_arena(b);
        h.free_arena(c);
    }
    assert_eq!(h.stats().bytes_in_use, 0);
}

#[test]
fn accounting_tracks_allocated_reclaimed_current_and_highwater() {
    let size = MIN_ARENA_SIZE;
    let h = heap(size, None);
    let mut live: Vec<Arena> = (0..5).map(|_| h.alloc_arena().unwrap()).collect();
    for a in live.drain(..3) {
        // SAFETY: from h, once.
        unsafe { h.free_arena(a) };
    }
    live.push(h.alloc_arena().unwrap());
    let big = h.alloc_direct(1000).unwrap();
    let s = h.stats();
    assert_eq!(s.backend, Backend::Arena);
    assert_eq!(s.arenas_allocated, 6);
    assert_eq!(s.arenas_reclaimed, 3);
    assert_eq!(s.arenas_current, 3);
    assert_eq!(s.arenas_highwater, 5);
    assert_eq!(
        (s.direct_blocks, s.direct_bytes),
        (1, 1008),
        "rounded to 16"
    );
    assert_eq!(s.bytes_in_use, 3 * size + 1008);
    assert_eq!(s.bytes_highwater, 5 * size, "the peak was five arenas");
    // SAFETY: from h, once each.
    unsafe {
        h.free_direct(big, 1000);
        for a in live {
            h.free_arena(a);
        }
    }
    let s = h.stats();
    assert_eq!(
        (s.arenas_current, s.direct_blocks, s.bytes_in_use),
        (0, 0, 0)
    );
    let json = serde_json::to_value(&s).unwrap();
    assert_eq!(json["arenas_highwater"], 5);
    assert_eq!(json["backend"], "arena");
}

#[test]
fn direct_blocks_are_sixteen_byte_aligned_and_writable() {
    let h = heap(MIN_ARENA_SIZE, None);
    let blocks: Vec<(NonNull<u8>, usize)> = [1, 15, 16, 513, 100_000]
        .into_iter()
        .map(|n| (h.alloc_direct(n).unwrap(), n))
        .collect();
    for &(p, n) in &blocks {
        assert_eq!(p.as_ptr() as usize % 16, 0);
        // SAFETY: a live direct block of n bytes.
        unsafe { p.as_ptr().write_bytes(0x5A, n) };
    }
    for (p, n) in blocks {
        // SAFETY: from h, once.
        unsafe { h.free_direct(p, n) };
    }
}

#[test]
fn an_injected_fault_fails_exactly_the_chosen_request() {
    let h = heap(MIN_ARENA_SIZE, None);
    h.fail_os_request(Some(3));
    let a = h.alloc_arena().unwrap();
    let d = h.alloc_direct(32).unwrap();
    let err = h.alloc_arena().unwrap_err();
    assert_eq!(err.cause, OomCause::Injected);
    assert_eq!(h.stats().arenas_current, 1);
    let b = h.alloc_arena().unwrap();
    // SAFETY: from h, once each.
    unsafe {
        h.free_arena(a);
        h.free_arena(b);
        h.free_direct(d, 32);
    }
    assert_eq!(h.stats().bytes_in_use, 0);
}

#[test]
fn huge_page_arenas_are_mapped_aligned_and_usable() {
    // Whether the kernel grants huge pages is its business; the arenas must work either way.
    let h = RawHeap::new(RawConfig {
        arena_size: 2 << 20,
        huge_pages: true,
        ..RawConfig::default()
    })
    .unwrap();
    let a = h.alloc_arena().unwrap();
    assert_eq!(a.base().as_ptr() as usize % (2 << 20), 0);
    // SAFETY: the usable span of a live arena is ours to write.
    unsafe { a.usable_start().as_ptr().write_bytes(1, (2 << 20) - 16) };
    // SAFETY: from h, once.
    unsafe { h.free_arena(a) };
    assert_eq!(h.stats().bytes_in_use, 0);
}
