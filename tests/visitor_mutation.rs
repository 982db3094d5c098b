//! A hole the façade cannot close alone: `refcount::Visit::new` is safe and takes any closure,
//! and `Trace::trace` is a public method of the façade's types, so safe code can trace a
//! container with a visitor that changes it. The traces (here `List`'s, as `Dict`'s table,
//! an instance's values, and refcount's own `RefVec` and `RefCell1` under `Opaque`) iterate
//! their storage in place, relying on "the visitor runs no code that changes the graph"
//! (`Trace`'s contract), which nothing enforces. Growing the list from the visitor frees the
//! item buffer under the trace's iterator: a use after free that Miri reports (natively the
//! freed buffer is read without a visible symptom). The fix belongs to refcount (an `unsafe`
//! `Visit::new`, or a visitor that cannot capture handles); run it with
//! `cargo +nightly miri test -p pyheap --test visitor_mutation -- --ignored`.

use pyheap::refcount::{Trace, Visit};
use pyheap::{Config, Heap};

#[test]
#[ignore = "use after free reachable from safe code: refcount's Visit::new must become unsafe (see the module documentation)"]
fn a_visitor_that_grows_the_list_it_traces_does_not_free_the_items_under_the_trace() {
    let heap = Heap::new(Config::default()).unwrap();
    let h = &*heap;
    let l = h.list(vec![h.int(1).unwrap(), h.int(2).unwrap()]).unwrap();
    let mut seen = 0;
    let mut grow = |_| {
        seen += 1;
        for _ in 0..64 {
            l.append(h.none()).unwrap(); // reallocates the buffer the trace iterates
        }
    };
    l.trace(&mut Visit::new(&mut grow));
    assert_eq!(seen, 2);
}
