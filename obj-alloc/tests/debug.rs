//! The raw heap's debug layer, seen through obj-alloc: every check fires for pool blocks and
//! direct blocks alike, and clean use finds nothing.

use obj_alloc::{ObjAlloc, ObjConfig, SizeClass};
use raw_alloc::debug::{padded_size, CLEANBYTE, DEADBYTE, FORBIDDENBYTE};
use raw_alloc::{RawConfig, ViolationKind};

fn debug_heap() -> ObjAlloc {
    ObjAlloc::new(ObjConfig {
        raw: RawConfig {
            debug: true,
            ..RawConfig::default()
        },
        ..ObjConfig::default()
    })
    .unwrap()
}

fn violations(heap: &ObjAlloc) -> u64 {
    heap.raw().stats().debug.unwrap().violations
}

/// One small size (carved from a pool) and one large (a direct block).
const SIZES: [usize; 2] = [40, 2000];

#[test]
fn clean_use_finds_no_violation_and_blocks_come_padded_from_their_pools() {
    let heap = debug_heap();
    let mut blocks = Vec::new();
    for size in (0..=600).step_by(7).chain(SIZES) {
        let b = heap.alloc(size).unwrap();
        // The pads are multiples of 16: a multiple of 16 keeps its 16-byte alignment.
        let align = if size > 0 && size.is_multiple_of(16) {
            16
        } else {
            8
        };
        assert_eq!(b.as_ptr() as usize % align, 0, "size {size}");
        // SAFETY: fresh user bytes of a live block.
        let fresh = unsafe { std::slice::from_raw_parts(b.as_ptr(), size) };
        assert!(fresh.iter().all(|&x| x == CLEANBYTE));
        // SAFETY: the block has `size` user bytes.
        unsafe { b.as_ptr().write_bytes(1, size) };
        blocks.push((b, size));
    }
    // 40 bytes become a padded 72-byte request: class 72 (an 8-byte step).
    let class = SizeClass::of(padded_size(40)).unwrap();
    assert_eq!(class.block_size(), 72);
    assert!(heap.stats().classes[class.index()].blocks_in_use >= 1);
    for (b, size) in blocks {
        // SAFETY: each block is live, from `heap`, with `size` bytes.
        assert_eq!(unsafe { heap.try_dealloc(b, size) }, Ok(()));
    }
    assert_eq!(violations(&heap), 0);
    heap.trim(); // the one empty arena kept against thrashing
    let s = heap.stats();
    assert_eq!((s.arenas.current, s.raw.direct_blocks), (0, 0));
}

#[test]
fn a_write_before_the_block_is_reported_as_an_underrun() {
    let heap = debug_heap();
    for size in SIZES {
        let b = heap.alloc(size).unwrap();
        // SAFETY: the byte before the user area is the layer's pad, inside the padded block.
        unsafe { b.as_ptr().sub(1).write(0) };
        // SAFETY: the block is live and from `heap`.
        let v = unsafe { heap.try_dealloc(b, size) }.unwrap_err();
        assert_eq!((v.kind, v.requested), (ViolationKind::Underrun, size));
        assert_eq!(v.address, b.as_ptr() as usize);
        // The block was left alone, still live: mend the pad and it frees cleanly.
        // SAFETY: as above.
        unsafe {
            b.as_ptr().sub(1).write(FORBIDDENBYTE);
            heap.try_dealloc(b, size).unwrap();
        }
    }
    assert_eq!(violations(&heap), 2);
    heap.trim(); // the one empty arena kept against thrashing
    assert_eq!(heap.raw().stats().bytes_in_use, 0);
}

#[test]
fn a_write_past_the_end_is_reported_as_an_overrun() {
    let heap = debug_heap();
    for size in SIZES {
        let b = heap.alloc(size).unwrap();
        // SAFETY: the byte after the user area is the layer's pad, inside the padded block.
        unsafe { b.as_ptr().add(size).write(0) };
        // SAFETY: the block is live and from `heap`.
        let v = unsafe { heap.try_dealloc(b, size) }.unwrap_err();
        assert_eq!(v.kind, ViolationKind::Overrun);
        // SAFETY: as above; the block is still live, its pad mended.
        unsafe {
            b.as_ptr().add(size).write(FORBIDDENBYTE);
            heap.try_dealloc(b, size).unwrap();
        }
    }
    assert_eq!(violations(&heap), 2);
    heap.trim(); // the one empty arena kept against thrashing
    assert_eq!(heap.raw().stats().bytes_in_use, 0);
}

#[test]
fn a_second_free_is_reported_as_a_double_free() {
    let heap = debug_heap();
    // Keep another block alive so the pool (and arena) stays mapped after the first free.
    let keep = heap.alloc(40).unwrap();
    for size in SIZES {
        let b = heap.alloc(size).unwrap();
        // SAFETY: live block of `heap`.
        unsafe { heap.try_dealloc(b, size) }.unwrap();
        // SAFETY: the layer knows the block as freed and does not dereference it.
        let v = unsafe { heap.try_dealloc(b, size) }.unwrap_err();
        assert_eq!(v.kind, ViolationKind::DoubleFree);
        assert_eq!(v.requested, size);
    }
    // SAFETY: live block of `heap`.
    unsafe { heap.dealloc(keep, 40) };
    assert_eq!(violations(&heap), 2);
}

#[test]
fn a_pointer_from_elsewhere_is_reported_as_foreign() {
    let heap = debug_heap();
    let other = debug_heap();
    let theirs = other.alloc(40).unwrap();
    let on_stack = [0u64; 8];
    for (ptr, size) in [
        (theirs, 40),
        (std::ptr::NonNull::from(&on_stack).cast::<u8>(), 64),
    ] {
        // SAFETY: the layer never dereferences a pointer it did not hand out.
        let v = unsafe { heap.try_dealloc(ptr, size) }.unwrap_err();
        assert_eq!(v.kind, ViolationKind::ForeignPointer);
    }
    assert_eq!(violations(&heap), 2);
    // SAFETY: live block of `other`.
    unsafe { other.dealloc(theirs, 40) };
}

#[test]
fn a_free_with_the_wrong_size_is_reported_and_the_block_stays_out_of_its_pool() {
    let heap = debug_heap();
    let b = heap.alloc(40).unwrap();
    let class = SizeClass::of(padded_size(40)).unwrap().index();
    // SAFETY: live block of `heap`; the wrong size is caught before anything is freed.
    let v = unsafe { heap.try_dealloc(b, 41) }.unwrap_err();
    assert_eq!(v.kind, ViolationKind::SizeMismatch { claimed: 41 });
    assert_eq!(
        heap.stats().classes[class].blocks_in_use,
        1,
        "not returned to the pool"
    );
    // `dealloc` swallows the violation (the layer counted it) and also keeps the block out.
    // SAFETY: as above.
    unsafe { heap.dealloc(b, 39) };
    assert_eq!(heap.stats().classes[class].blocks_in_use, 1);
    assert_eq!(violations(&heap), 2);
    // The right size frees it.
    // SAFETY: live block of `heap` with 40 bytes.
    unsafe { heap.try_dealloc(b, 40) }.unwrap();
    heap.trim(); // the one empty arena kept against thrashing
    assert_eq!(heap.stats().arenas.current, 0);
}

#[test]
fn freed_user_bytes_are_filled_with_deadbyte() {
    let heap = debug_heap();
    let keep = heap.alloc(40).unwrap();
    let b = heap.alloc(40).unwrap();
    // SAFETY: live block of `heap` with 40 bytes.
    unsafe { heap.try_dealloc(b, 40) }.unwrap();
    // The pool still holds `keep`, so the freed block is mapped; its first word is the pool's
    // free-list link, the user bytes after it are dead.
    // SAFETY: the block lies in a live pool of `heap`; we only read it.
    let user = unsafe { std::slice::from_raw_parts(b.as_ptr(), 40) };
    assert!(user.iter().all(|&x| x == DEADBYTE));
    // SAFETY: live block of `heap`.
    unsafe { heap.dealloc(keep, 40) };
}
