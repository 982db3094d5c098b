//! User code runs inside a collection: a tracing subscriber (the debug flags report through
//! `tracing`) and every type's `trace`, a safe trait's method. The collector pins the counts
//! of young objects while it works; such code must never find a count pinned that it can
//! change, or the change is lost (a clone made while pinned and dropped after would free a
//! live object). Only traces that promised an exact trace (an unsafe promise that covers
//! making no reference) run while counts are pinned.

mod common;

use std::cell::RefCell;

use common::Node;
use gengc::{DebugFlags, GcHeap};
use refcount::{ObjRef, Object, RefCell1, Trace, TypeInfo, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

thread_local! {
    /// The object the subscriber clones a handle of, at every event of the collector.
    static TARGET: RefCell<Option<ObjRef<'static>>> = const { RefCell::new(None) };
    /// The clones it made.
    static HELD: RefCell<Vec<ObjRef<'static>>> = const { RefCell::new(Vec::new()) };
}

/// A subscriber that clones `TARGET` on each of the collector's events.
struct Cloner;

impl Subscriber for Cloner {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        if event.metadata().target() == "gengc" {
            let clone = TARGET.with(|t| t.borrow().clone());
            HELD.with(|h| h.borrow_mut().extend(clone));
        }
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

/// A heap that lives for `'static` (handles stored in thread-locals need one), and the box to
/// give back to [`free_heap`] once no handle is left.
fn static_heap() -> (&'static GcHeap, *mut GcHeap) {
    let owner = Box::into_raw(Box::new(GcHeap::new(Default::default()).unwrap()));
    // SAFETY: the box is only freed by free_heap, after the last use of this reference.
    (unsafe { &*owner }, owner)
}

/// Frees a heap from [`static_heap`].
///
/// # Safety
/// No handle of the heap is left, and its `'static` reference is not used again.
unsafe fn free_heap(owner: *mut GcHeap) {
    // SAFETY: the box static_heap made, freed once (contract).
    drop(unsafe { Box::from_raw(owner) });
}

#[test]
fn handles_a_subscriber_clones_during_a_collection_are_counted() {
    let (h, owner) = static_heap();
    let young = h.alloc(Node::default()).unwrap().erase();
    let other = h.alloc(Node::default()).unwrap();
    other.kids.push(young.clone());
    TARGET.with(|t| *t.borrow_mut() = Some(young.clone()));
    assert_eq!(young.refcnt(), 3);
    h.set_debug(DebugFlags::STATS | DebugFlags::COLLECTABLE);

    let found = tracing::subscriber::with_default(Cloner, || h.collect(2).unwrap());

    assert_eq!(found, 0);
    let clones = HELD.with(|held| held.borrow().len());
    assert!(clones >= 2, "the subscriber ran at the start and the end");
    assert_eq!(young.refcnt(), 3 + clones as u32, "every clone counted");
    HELD.with(|held| held.borrow_mut().clear());
    assert_eq!(young.refcnt(), 3, "and every drop");
    TARGET.with(|t| *t.borrow_mut() = None);
    drop(other);
    assert_eq!(young.refcnt(), 1);
    drop(young);
    // SAFETY: every handle is gone (the thread-locals are empty).
    unsafe { free_heap(owner) };
}

/// A container whose trace (no promise: a safe method) clones the handle it holds and keeps
/// the clone, as a misbehaving trace may.
#[derive(Default)]
struct Hoarder<'h> {
    kid: RefCell1<'h>,
}
impl Trace for Hoarder<'_> {
    fn trace(&self, v: &mut Visit<'_>) {
        if let Some(kid) = self.kid.get() {
            // SAFETY: the heap is leaked, so it lives for 'static; only the lifetime changes.
            let kid: ObjRef<'static> = unsafe { std::mem::transmute(kid) };
            HELD.with(|h| h.borrow_mut().push(kid));
        }
        self.kid.trace(v);
    }
    fn clear(&self) {
        self.kid.set(None);
    }
}
static HOARDER: TypeInfo = TypeInfo::new::<Hoarder<'static>>("hoarder");
impl Object for Hoarder<'_> {
    const CONTAINER: bool = true;
    fn type_info() -> &'static TypeInfo {
        &HOARDER
    }
}

#[test]
fn handles_a_trace_without_the_exact_promise_clones_are_counted() {
    let (h, owner) = static_heap();
    // Young nodes made before and after the hoarder, held from outside and in a cycle.
    let before = h.alloc(Node::default()).unwrap().erase();
    let hoarder = h.alloc(Hoarder::default()).unwrap();
    let after = h.alloc(Node::default()).unwrap().erase();
    hoarder.kid.set(Some(before.clone()));
    before
        .downcast_ref::<Node>()
        .unwrap()
        .kids
        .push(after.clone());
    after
        .downcast_ref::<Node>()
        .unwrap()
        .kids
        .push(hoarder.clone().erase());
    assert_eq!((before.refcnt(), after.refcnt()), (2, 2));

    h.collect(2).unwrap();

    let clones = HELD.with(|held| held.borrow().len());
    assert!(clones >= 1, "the trace ran");
    assert_eq!(before.refcnt(), 2 + clones as u32, "every clone counted");
    HELD.with(|held| held.borrow_mut().clear());
    assert_eq!(before.refcnt(), 2);
    assert_eq!(after.refcnt(), 2);
    drop((before, hoarder, after));
    h.collect(2).unwrap();
    HELD.with(|held| held.borrow_mut().clear());
    assert_eq!(h.rc().stats().live, 0);
    // SAFETY: every handle is gone (the thread-locals are empty).
    unsafe { free_heap(owner) };
}
