//! `Trace` and `Object` are safe traits, so a wrong trace must never free a live object. The
//! collector frees garbage directly (without counting the references among it) only for types
//! whose descriptor promises an exact trace (`TypeInfo::assume_exact_trace`, an unsafe
//! promise); everything else dies as in CPython: cleared, then freed by reference counting,
//! which keeps whatever is still referenced alive.

mod common;

use std::cell::Cell;

use common::{system_heap, Node};

use gengc::GcHeap;
use refcount::{ObjRef, Object, RefCell1, RefVec, Trace, TypeInfo, Visit};

/// A container whose trace reports each reference twice: an over-reporting trace, the kind
/// of bug that makes an object with an outside reference look unreachable.
#[derive(Default)]
struct Doubling<'h> {
    kids: RefVec<'h>,
    value: Cell<u64>,
}
impl Trace for Doubling<'_> {
    fn trace(&self, v: &mut Visit<'_>) {
        self.kids.trace(v);
        self.kids.trace(v);
    }
    fn clear(&self) {
        self.kids.clear()
    }
}
static DOUBLING: TypeInfo = TypeInfo::new::<Doubling<'static>>("doubling");
impl Object for Doubling<'_> {
    const CONTAINER: bool = true;
    fn type_info() -> &'static TypeInfo {
        &DOUBLING
    }
}

#[test]
fn an_over_reporting_trace_never_frees_an_object_held_from_outside() {
    let h = GcHeap::new(Default::default()).unwrap();
    let a = h.alloc(Doubling::default()).unwrap();
    let b = h.alloc(Doubling::default()).unwrap();
    b.value.set(42);
    // a -> b -> a; a reports its one reference to b twice, so b's two references (a's and
    // the `b` handle here) both look internal.
    a.kids.push(b.clone().erase());
    b.kids.push(a.clone().erase());
    drop(a);
    let before = h.rc().stats().live;

    h.collect(2).unwrap();

    // b is still referenced from here: it must be alive, its payload intact. The collector
    // may clear it (it took b for garbage), as CPython's would; it must not free it.
    assert_eq!(b.value.get(), 42);
    assert_eq!(h.rc().stats().live, before - 1, "only a died");
    let again: ObjRef<'_> = b.clone().erase();
    assert!(h.is_tracked(&again));
    drop(again);
    drop(b);
    h.collect(2).unwrap();
    assert_eq!(h.rc().stats().live, before - 2);
}

/// Reports its slot for its first `reports` traces only; never drops anything.
struct Fickle<'h> {
    slot: RefCell1<'h>,
    reports: Cell<u32>,
}
impl Trace for Fickle<'_> {
    fn trace(&self, v: &mut Visit<'_>) {
        if self.reports.get() > 0 {
            self.reports.set(self.reports.get() - 1);
            self.slot.trace(v);
        }
    }
    fn clear(&self) {
        self.slot.set(None);
    }
}
static FICKLE: TypeInfo = TypeInfo::new::<Fickle<'static>>("fickle"); // no promise
impl Object for Fickle<'_> {
    const CONTAINER: bool = true;
    fn type_info() -> &'static TypeInfo {
        &FICKLE
    }
}

#[test]
fn a_trace_that_reports_less_in_the_rescue_than_in_the_sweep_frees_nothing_held() {
    let h = system_heap();
    let child = h.alloc(Node::default()).unwrap().erase();
    let holder = h
        .alloc(Fickle {
            slot: RefCell1::new(Some(child)), // the child's only reference
            reports: Cell::new(1),            // reported in the sweep, not in the rescue
        })
        .unwrap();

    // The rescue does not see the holder's reference: the child is taken for garbage, but it
    // takes the careful path (a young trace made no promise), where it survives its clear.
    h.collect(0).unwrap();

    let child = holder
        .slot
        .get()
        .expect("the holder's slot is its own, never cleared");
    assert_eq!(child.refcnt(), 2, "the holder's reference and this handle");
    assert!(
        h.is_tracked(&child),
        "the survivor of its clear is tracked again"
    );
    drop(child);
    drop(holder);
    assert_eq!(h.rc().stats().live, 0);
}
