//! A collection's memory comes from buffers the collector keeps (the generations' and the young
//! array's, which trade places, and a bump arena reset after each collection): once a steady
//! load has run for a while, a collection makes no system allocation. This binary counts the
//! system allocator's calls to show it.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use common::Node;
use gengc::GcHeap;
use refcount::ObjRef;

/// The system allocator, counting the allocations of this thread while `COUNTING` is on.
struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn note_allocation() {
    // `try_with`: the allocator also runs while thread-locals are torn down.
    let _ = COUNTING.try_with(|on| {
        if on.get() {
            let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        }
    });
}

// SAFETY: every call goes to the system allocator unchanged; counting touches no memory the
// allocator hands out.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: the caller's contract is System's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_allocation();
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// System allocations made by `f` on this thread.
fn allocations_of<R>(f: impl FnOnce() -> R) -> (R, u64) {
    ALLOCATIONS.with(|n| n.set(0));
    COUNTING.with(|on| on.set(true));
    let r = f();
    COUNTING.with(|on| on.set(false));
    (r, ALLOCATIONS.with(Cell::get))
}

#[test]
fn a_steady_load_collects_without_a_system_allocation() {
    let h = GcHeap::new(Default::default()).unwrap();
    h.disable();
    let (rounds, per_round) = if cfg!(miri) { (25, 20) } else { (200, 100) };
    // A window of live objects, half of it replaced each round; and garbage cycles.
    let mut window: Vec<ObjRef<'_>> = Vec::new();
    let mut last = Vec::new();
    for round in 0..rounds {
        for i in 0..per_round {
            let a = h.alloc(Node::default()).unwrap();
            let b = h.alloc(Node::default()).unwrap();
            a.kids.push(b.clone().erase());
            b.kids.push(a.clone().erase());
            if i % 2 == 0 {
                window.push(a.erase());
            }
        }
        if window.len() > per_round {
            window.drain(..per_round / 2);
        }
        let generation = [0, 0, 1, 0, 2][round % 5];
        let (found, allocations) = allocations_of(|| h.collect(generation).unwrap());
        assert!(found > 0);
        last.push(allocations);
    }
    // Warm-up over, every collection reuses what the earlier ones kept.
    let tail = &last[last.len() - 10..];
    assert!(
        tail.iter().all(|&n| n == 0),
        "system allocations by the last collections: {tail:?}"
    );
}
