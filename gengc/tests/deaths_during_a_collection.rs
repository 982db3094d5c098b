//! A trace is user code (`Trace` is a safe trait) and may do what a trace should not: drop a
//! reference it holds instead of reporting it. When that is the last reference, an object dies
//! in the middle of a collection's sweep or scan, while the collector holds the young array
//! and has moved the generations' slots into it. Such a death must wait until the collection is
//! done with the young set (the collector then finds nothing that time), never be freed under
//! it, and never leave a generation's slots wrong.

mod common;

use std::cell::Cell;

use common::Node;
use gengc::GcHeap;
use refcount::{ObjRef, Object, RefCell1, Trace, TypeInfo, Visit};

/// Reports its slot for its first `reports` traces, then takes the reference out and drops
/// it. No promise about its trace, so the collector never pins counts around it.
struct Taker<'h> {
    slot: RefCell1<'h>,
    reports: Cell<u32>,
}
impl Trace for Taker<'_> {
    fn trace(&self, v: &mut Visit<'_>) {
        if self.reports.get() > 0 {
            self.reports.set(self.reports.get() - 1);
            self.slot.trace(v);
        } else {
            drop(self.slot.take());
        }
    }
}
static TAKER: TypeInfo = TypeInfo::new::<Taker<'static>>("taker");
impl Object for Taker<'_> {
    const CONTAINER: bool = true;
    fn type_info() -> &'static TypeInfo {
        &TAKER
    }
}

fn heap() -> GcHeap {
    GcHeap::new(Default::default()).unwrap()
}

fn taker<'h>(h: &'h GcHeap, held: Option<ObjRef<'h>>, reports: u32) -> ObjRef<'h> {
    h.alloc(Taker {
        slot: RefCell1::new(held),
        reports: Cell::new(reports),
    })
    .unwrap()
    .erase()
}

/// After the misbehaving collection: the heap is whole. A full collection, then dropping
/// `rest`, leaves nothing alive and every block back.
fn check_whole(h: &GcHeap, rest: Vec<ObjRef<'_>>, blocks_before: usize) {
    // Every tracked object is listed in the generation it says it is in.
    for obj in h.get_objects(None).unwrap() {
        let g = h.generation_of(&obj).expect("tracked");
        let listed = h.get_objects(Some(g)).unwrap();
        assert!(listed.iter().any(|o| o.as_ptr() == obj.as_ptr()));
    }
    h.collect(2).unwrap();
    drop(rest);
    h.collect(2).unwrap();
    assert_eq!(h.rc().stats().live, 0);
    assert_eq!(
        h.rc().allocator().stats().totals.bytes_in_blocks,
        blocks_before
    );
}

#[test]
fn a_trace_that_drops_the_last_reference_to_an_object_not_yet_swept() {
    // Young order: the taker first, then the node it holds: the node dies before the sweep
    // reaches it, while its generation's slots are in the young array.
    let h = heap();
    let before = h.rc().allocator().stats().totals.bytes_in_blocks;
    let node = h.alloc(Node::default()).unwrap().erase();
    let t = taker(&h, None, 0);
    // Older filler after the taker, so that the node is not the young array's last slot.
    let filler: Vec<_> = (0..10)
        .map(|_| h.alloc(Node::default()).unwrap().erase())
        .collect();
    t.downcast_ref::<Taker<'_>>().unwrap().slot.set(Some(node));
    let live = h.rc().stats().live;

    assert_eq!(h.collect(0).unwrap(), 0, "the collection gave up");

    assert_eq!(h.rc().stats().live, live - 1, "the node died, once");
    let mut rest = filler;
    rest.push(t);
    check_whole(&h, rest, before);
}

#[test]
fn a_trace_that_drops_the_last_reference_to_an_object_already_swept() {
    // Young order: the node first, then the taker.
    let h = heap();
    let before = h.rc().allocator().stats().totals.bytes_in_blocks;
    let node = h.alloc(Node::default()).unwrap().erase();
    let t = taker(&h, Some(node), 0);
    let live = h.rc().stats().live;

    assert_eq!(h.collect(0).unwrap(), 0);

    assert_eq!(h.rc().stats().live, live - 1, "the node died, once");
    check_whole(&h, vec![t], before);
}

#[test]
fn a_trace_that_reports_in_the_sweep_and_drops_in_the_rescue() {
    // The node's only reference is the taker's: the scan finds it unreachable, then the rescue
    // from the taker (held by a handle) traces the taker again, which drops it.
    let h = heap();
    let before = h.rc().allocator().stats().totals.bytes_in_blocks;
    let node = h.alloc(Node::default()).unwrap().erase();
    let t = taker(&h, Some(node), 1);
    let live = h.rc().stats().live;

    assert_eq!(h.collect(0).unwrap(), 0);

    assert_eq!(h.rc().stats().live, live - 1, "the node died, once");
    check_whole(&h, vec![t], before);
}

#[test]
fn a_trace_that_drops_an_object_of_a_garbage_cycle() {
    // A garbage cycle through the taker: the taker drops the node when traced, which breaks
    // the cycle; whatever the collector then does, nothing is freed twice.
    let h = heap();
    let before = h.rc().allocator().stats().totals.bytes_in_blocks;
    let node = h.alloc(Node::default()).unwrap().erase();
    let t = taker(&h, Some(node.clone()), 0);
    node.downcast_ref::<Node<'_>>().unwrap().kids.push(t);
    drop(node);

    assert_eq!(h.collect(0).unwrap(), 0, "the collection gave up");

    check_whole(&h, Vec::new(), before);
}
