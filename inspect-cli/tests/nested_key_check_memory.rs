//! The check for keys repeated in nested objects costs memory in proportion to the line, not
//! to the line's nesting times its key lengths: it names the path of a repeated key only once
//! it finds one. A counting allocator measures the peak.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use inspect_cli::heapgraph::HeapGraph;

struct Peak;
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator, only counting.
unsafe impl GlobalAlloc for Peak {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, forwarded.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOC: Peak = Peak;

/// One line: an object under a 50 KB key holding 4000 empty objects (about 100 KB in all).
/// Building every nested object's path up front copied the long key 4000 times (200 MB; a
/// 430 KB line took 4 GB and 7 s in `heap-inspect check`).
#[test]
fn a_long_key_over_many_nested_objects_costs_memory_in_proportion_to_the_line() {
    let key = "k".repeat(50_000);
    let inner: Vec<String> = (0..4000).map(|i| format!("\"c{i}\":{{}}")).collect();
    let line = format!("{{\"{key}\":{{{}}}}}\n", inner.join(","));
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let read = HeapGraph::read(line.as_bytes());
    assert!(read.is_err(), "not a heapgraph header");
    let peak = PEAK.load(Ordering::Relaxed) - base;
    assert!(
        peak < 32 * line.len() + (1 << 20),
        "peak {peak} bytes for a line of {} bytes",
        line.len()
    );
}
