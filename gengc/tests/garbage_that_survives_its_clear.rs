//! Garbage on the careful path that survives its `clear` (a clear that breaks nothing yet, or
//! that stores a reference to its object somewhere live) goes back to the old generation, as
//! in CPython's `delete_garbage` ("it may die later"): tracked, in a generation, examined again
//! by the next collection.

mod common;

use std::cell::Cell;

use common::Node;
use gengc::GcHeap;
use refcount::{Object, RefCell1, Trace, TypeInfo, Visit};

fn heap() -> GcHeap {
    GcHeap::new(Default::default()).unwrap()
}

/// One slot; no exact-trace promise (so its garbage takes the careful path). Its clear drops
/// the slot only from its second call on; with a `keeper` (a live node, not reported: it is
/// held from outside anyway), its first clear moves its slot's reference to itself into the
/// keeper (resurrection in tp_clear, in safe code).
struct Stubborn<'h> {
    slot: RefCell1<'h>,
    clears: Cell<u32>,
    keeper: RefCell1<'h>,
}
impl Trace for Stubborn<'_> {
    fn trace(&self, v: &mut Visit<'_>) {
        self.slot.trace(v)
    }
    fn clear(&self) {
        self.clears.set(self.clears.get() + 1);
        if self.clears.get() >= 2 {
            self.slot.set(None);
        } else if let Some(keeper) = self.keeper.get() {
            let me = self.slot.take().unwrap();
            keeper.downcast_ref::<Node<'_>>().unwrap().kids.push(me);
        }
    }
}
static STUBBORN: TypeInfo = TypeInfo::new::<Stubborn<'static>>("stubborn");
impl Object for Stubborn<'_> {
    const CONTAINER: bool = true;
    fn type_info() -> &'static TypeInfo {
        &STUBBORN
    }
}

fn self_cycle<'h>(h: &'h GcHeap, keeper: Option<refcount::ObjRef<'h>>) {
    let s = h
        .alloc(Stubborn {
            slot: RefCell1::new(None),
            clears: Cell::new(0),
            keeper: RefCell1::new(keeper),
        })
        .unwrap();
    s.slot.set(Some(s.clone().erase()));
}

#[test]
fn a_cycle_whose_first_clear_breaks_nothing_is_collected_by_the_next_collection() {
    let h = heap();
    self_cycle(&h, None);
    assert_eq!(h.collect(2).unwrap(), 1);
    assert_eq!(
        h.rc().stats().live,
        1,
        "its first clear broke nothing (as in CPython)"
    );

    // CPython moved it back to the oldest generation: the next full collection finds it
    // again and its second clear frees it.
    assert_eq!(
        h.get_objects(None).unwrap().len(),
        1,
        "the survivor of its clear is in a generation"
    );
    h.collect(2).unwrap();
    assert_eq!(h.rc().stats().live, 0, "the second collection frees it");
}

#[test]
fn an_object_resurrected_by_its_clear_is_in_the_old_generation() {
    let h = heap();
    let keeper = h.alloc(Node::default()).unwrap();
    self_cycle(&h, Some(keeper.clone().erase()));
    h.collect(2).unwrap();
    let me = keeper.kids.pop().expect("resurrected by its clear");
    assert!(!h.is_collecting());
    assert_eq!(
        (h.is_tracked(&me), h.generation_of(&me)),
        (true, Some(2)),
        "tracked, and in the generation the collection moved it to"
    );
    drop(me);
}
