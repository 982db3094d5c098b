//! The debug layer catches each kind of misuse CPython's PYTHONMALLOC=debug catches, and stays
//! quiet on clean use.

use raw_alloc::debug::{padded_size, CLEANBYTE, DEADBYTE};
use raw_alloc::{DebugLayer, RawConfig, RawHeap, ViolationKind};
use std::ptr::NonNull;

/// A debug heap and a helper that wraps direct blocks, as obj-alloc does.
struct Fixture {
    heap: RawHeap,
}

impl Fixture {
    fn new() -> Self {
        Fixture {
            heap: RawHeap::new(RawConfig {
                debug: true,
                ..RawConfig::default()
            })
            .unwrap(),
        }
    }
    fn layer(&self) -> &DebugLayer {
        self.heap.debug_layer().unwrap()
    }
    fn alloc(&self, n: usize) -> NonNull<u8> {
        let raw = self.heap.alloc_direct(padded_size(n)).unwrap();
        // SAFETY: raw has padded_size(n) bytes, aligned to 16, unused.
        unsafe { self.layer().on_alloc(raw, n) }
    }
    fn free(&self, p: NonNull<u8>, n: usize) -> Result<(), raw_alloc::DebugViolation> {
        // SAFETY: blocks of this fixture stay mapped until freed cleanly.
        let raw = unsafe { self.layer().on_free(p, n) }?;
        // SAFETY: raw is the block alloc_direct gave for padded_size(n).
        unsafe { self.heap.free_direct(raw, padded_size(n)) };
        Ok(())
    }
    /// Gives a block the layer refused back to the system, unchecked (the layer leaks such
    /// blocks on purpose; the test must not).
    fn discard(&self, p: NonNull<u8>, n: usize) {
        // SAFETY: p is a user pointer of this fixture: the raw block starts 16 bytes before it
        // and came from alloc_direct(padded_size(n)).
        unsafe {
            let raw = NonNull::new_unchecked(p.as_ptr().sub(raw_alloc::debug::DEBUG_PREFIX));
            self.heap.free_direct(raw, padded_size(n));
        }
    }
}

#[test]
fn clean_use_reports_nothing_and_fills_fresh_memory() {
    let f = Fixture::new();
    let blocks: Vec<_> = (1..50).map(|n| (f.alloc(n), n)).collect();
    for &(p, n) in &blocks {
        // SAFETY: n live user bytes.
        let bytes = unsafe { std::slice::from_raw_parts(p.as_ptr(), n) };
        assert!(bytes.iter().all(|&b| b == CLEANBYTE));
        // SAFETY: writing inside the block is allowed.
        unsafe { p.as_ptr().write_bytes(0x11, n) };
    }
    // SAFETY: all blocks are mapped.
    assert!(unsafe { f.layer().check_all() }.is_empty());
    for (p, n) in blocks {
        f.free(p, n).unwrap();
    }
    let s = f.heap.stats().debug.unwrap();
    assert_eq!((s.live_blocks, s.violations, s.next_serial), (0, 0, 50));
}

#[test]
fn serial_numbers_count_allocations_from_one() {
    let f = Fixture::new();
    let a = f.alloc(8);
    let b = f.alloc(8);
    assert_eq!(f.layer().serial_of(a), Some(1));
    assert_eq!(f.layer().serial_of(b), Some(2));
    f.free(a, 8).unwrap();
    assert_eq!(f.layer().serial_of(a), None);
    f.free(b, 8).unwrap();
}

#[test]
fn a_write_past_the_end_is_an_overrun() {
    let f = Fixture::new();
    let p = f.alloc(24);
    // SAFETY: the byte after the block is the tail pad, inside the padded block.
    unsafe { p.as_ptr().add(24).write(0) };
    let v = f.free(p, 24).unwrap_err();
    assert_eq!(v.kind, ViolationKind::Overrun);
    assert_eq!(
        (v.address, v.requested, v.serial),
        (p.as_ptr() as usize, 24, 1)
    );
    assert_eq!(v.pad.unwrap()[0], 0);
    let text = v.to_string();
    assert!(text.starts_with(&format!("Debug memory block at address p={:#x}", v.address)));
    assert!(text.contains("past the end") && text.contains("24 bytes originally requested"));
    f.discard(p, 24);
}

#[test]
fn a_write_before_the_start_is_an_underrun() {
    let f = Fixture::new();
    let p = f.alloc(16);
    // SAFETY: the byte before the block is the leading pad, inside the padded block.
    unsafe { p.as_ptr().sub(1).write(0x41) };
    let v = f.free(p, 16).unwrap_err();
    assert_eq!(v.kind, ViolationKind::Underrun);
    assert!(v.to_string().contains("before the block"));
    f.discard(p, 16);
}

#[test]
fn freeing_twice_is_a_double_free_and_does_not_touch_memory() {
    let f = Fixture::new();
    let p = f.alloc(40);
    f.free(p, 40).unwrap();
    let v = f.free(p, 40).unwrap_err();
    assert_eq!(v.kind, ViolationKind::DoubleFree);
    assert_eq!((v.requested, v.serial), (40, 1));
    assert!(v.to_string().contains("double free"));
}

#[test]
fn freeing_a_pointer_the_layer_never_gave_is_foreign() {
    let f = Fixture::new();
    let mut local = [0u8; 64];
    let p = NonNull::new(local.as_mut_ptr().wrapping_add(16)).unwrap();
    // SAFETY: an unknown pointer is never dereferenced by on_free.
    let v = unsafe { f.layer().on_free(p, 8) }.unwrap_err();
    assert_eq!(v.kind, ViolationKind::ForeignPointer);
    assert_eq!(local, [0u8; 64], "the foreign memory was not touched");
}

#[test]
fn freeing_with_the_wrong_size_is_a_size_mismatch() {
    let f = Fixture::new();
    let p = f.alloc(32);
    let v = f.free(p, 48).unwrap_err();
    assert_eq!(v.kind, ViolationKind::SizeMismatch { claimed: 48 });
    f.free(p, 32).unwrap();
}

#[test]
fn freed_blocks_are_filled_with_deadbyte() {
    let f = Fixture::new();
    let raw = f.heap.alloc_direct(padded_size(8)).unwrap();
    // SAFETY: as in Fixture::alloc.
    let p = unsafe { f.layer().on_alloc(raw, 8) };
    // SAFETY: p is live.
    let back = unsafe { f.layer().on_free(p, 8) }.unwrap();
    assert_eq!(back, raw);
    // SAFETY: the raw block is still allocated from the system (not yet given back).
    let bytes = unsafe { std::slice::from_raw_parts(raw.as_ptr(), padded_size(8)) };
    assert!(bytes.iter().all(|&b| b == DEADBYTE));
    // SAFETY: raw came from alloc_direct(padded_size(8)).
    unsafe { f.heap.free_direct(raw, padded_size(8)) };
}

#[test]
fn check_all_finds_damaged_live_blocks_in_serial_order() {
    let f = Fixture::new();
    let a = f.alloc(8);
    let b = f.alloc(8);
    let c = f.alloc(8);
    // SAFETY: writes into the pads of live blocks.
    unsafe {
        c.as_ptr().add(8).write(1);
        a.as_ptr().sub(2).write(1);
    }
    // SAFETY: all blocks are mapped.
    let found = unsafe { f.layer().check_all() };
    let kinds: Vec<_> = found.iter().map(|v| (v.serial, v.kind)).collect();
    assert_eq!(
        kinds,
        vec![(1, ViolationKind::Underrun), (3, ViolationKind::Overrun)]
    );
    f.free(b, 8).unwrap();
    assert_eq!(f.heap.stats().debug.unwrap().violations, 2);
    f.discard(a, 8);
    f.discard(c, 8);
}
