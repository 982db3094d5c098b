//! `untrack` and `track` called by user code in the middle of a collection (a trace, a
//! finalizer). An object of the running collection is untracked when the collection ends, so
//! that the sweep and the rescue see the young set they started with, wherever a `freeze` or
//! an `unfreeze` moved it meanwhile; an object outside it at once. An object tracked during
//! the collection is not one of its young objects.

mod common;

use std::cell::{Cell, RefCell};

use common::{FinNode, Node};
use gengc::GcHeap;
use refcount::{ObjRef, Object, RefCell1, RefVec, Trace, TypeInfo, Visit};

/// A `'static` system heap ([`common::static_heap`]) that user code reaches through `HEAP`.
fn static_heap() -> (&'static GcHeap, *mut GcHeap) {
    let (h, owner) = common::static_heap();
    HEAP.with(|c| c.set(Some(h)));
    (h, owner)
}

/// Frees a heap from [`static_heap`].
///
/// # Safety
/// As [`common::free_heap`].
unsafe fn free_heap(owner: *mut GcHeap) {
    HEAP.with(|c| c.set(None));
    // SAFETY: contract.
    unsafe { common::free_heap(owner) }
}

thread_local! {
    static HEAP: Cell<Option<&'static GcHeap>> = const { Cell::new(None) };
    static ARMED: Cell<bool> = const { Cell::new(false) };
    static TARGET: RefCell<Option<ObjRef<'static>>> = const { RefCell::new(None) };
    static MADE: RefCell<Option<ObjRef<'static>>> = const { RefCell::new(None) };
    static ALLOCATE: Cell<bool> = const { Cell::new(false) };
    static FROZEN: RefCell<Option<ObjRef<'static>>> = const { RefCell::new(None) };
    static TO_TRACK: RefCell<Option<ObjRef<'static>>> = const { RefCell::new(None) };
    static THAW_ARMED: Cell<bool> = const { Cell::new(false) };
}

/// Holds nothing. Once armed, its next trace (optionally) allocates a node, kept in `MADE`,
/// then untracks `TARGET`.
#[derive(Default)]
struct Untracker;
impl Trace for Untracker {
    fn trace(&self, _: &mut Visit<'_>) {
        if !ARMED.with(|a| a.replace(false)) {
            return;
        }
        let h = HEAP.with(Cell::get).unwrap();
        if ALLOCATE.with(Cell::get) {
            let n = h.alloc(Node::default()).unwrap().erase();
            MADE.with(|m| *m.borrow_mut() = Some(n));
        }
        TARGET.with(|t| h.untrack(t.borrow().as_ref().unwrap()));
    }
}
static UNTRACKER: TypeInfo = TypeInfo::new::<Untracker>("untracker");
impl Object for Untracker {
    const CONTAINER: bool = true;
    fn type_info() -> &'static TypeInfo {
        &UNTRACKER
    }
}

#[test]
fn untracking_a_young_object_not_yet_swept_untracks_it_when_the_collection_ends() {
    let (h, owner) = static_heap();
    let u = h.alloc(Untracker).unwrap(); // swept first
    let x = h.alloc(Node::default()).unwrap().erase(); // generation 0, slot 1
    TARGET.with(|t| *t.borrow_mut() = Some(x.clone()));
    ARMED.with(|a| a.set(true));

    // gens[0] is empty while the young array has its slots: x's slot 1 is out of bounds.
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| h.collect(0)));
    if r.is_err() {
        // The heap is left mid-collection: dropping x would panic again, in its unlink.
        TARGET.with(|t| std::mem::forget(t.borrow_mut().take()));
        std::mem::forget((u, x));
        panic!("collect panicked inside the library (see the first panic above)");
    }
    assert!(!h.is_tracked(&x));
    TARGET.with(|t| *t.borrow_mut() = None);
    drop((u, x));
    // SAFETY: no handle of the heap is left.
    unsafe { free_heap(owner) };
}

#[test]
fn untracking_during_the_sweep_leaves_every_tracked_object_in_its_generation() {
    let (h, owner) = static_heap();
    let u = h.alloc(Untracker).unwrap();
    h.collect(0).unwrap(); // u to generation 1
    let x = h.alloc(Node::default()).unwrap().erase(); // generation 0, slot 0
    TARGET.with(|t| *t.borrow_mut() = Some(x.clone()));
    ALLOCATE.with(|a| a.set(true));
    ARMED.with(|a| a.set(true));

    // Young array: [u (generation 1's buffer), x (appended from generation 0)]. u's trace
    // makes n (generation 0, slot 0), then untracks x, whose header still says
    // "generation 0, slot 0": n's slot is the one removed.
    h.collect(1).unwrap();

    let n = MADE.with(|m| m.borrow_mut().take()).unwrap();
    let gen0 = h.get_objects(Some(0)).unwrap();
    assert_eq!(h.generation_of(&n), Some(0));
    if !gen0.iter().any(|o| o.ptr_eq(&n)) {
        // Dropping n would unlink it from a slot it does not have (another panic).
        std::mem::forget(n);
        panic!(
            "n says generation 0 and must be listed there; generation 0 has {} objects",
            gen0.len()
        );
    }
    assert!(!h.is_tracked(&x), "x was untracked");
    TARGET.with(|t| *t.borrow_mut() = None);
    drop((u, x, n, gen0));
    // SAFETY: no handle of the heap is left.
    unsafe { free_heap(owner) };
}

#[test]
fn an_object_made_during_the_sweep_is_collected_later() {
    let (h, owner) = static_heap();
    let u = h.alloc(Untracker).unwrap();
    h.collect(0).unwrap();
    let x = h.alloc(Node::default()).unwrap().erase();
    TARGET.with(|t| *t.borrow_mut() = Some(x.clone()));
    ALLOCATE.with(|a| a.set(true));
    ARMED.with(|a| a.set(true));
    h.collect(1).unwrap();
    TARGET.with(|t| *t.borrow_mut() = None);
    drop((u, x));

    // n, made during the sweep, becomes a garbage cycle.
    let n = MADE.with(|m| m.borrow_mut().take()).unwrap();
    n.downcast_ref::<Node<'_>>().unwrap().kids.push(n.clone());
    drop(n);
    h.collect(2).unwrap();
    assert_eq!(h.rc().stats().live, 0, "CPython frees the cycle");
    // SAFETY: no handle of the heap is left.
    unsafe { free_heap(owner) };
}

/// Holds nothing, reports nothing; its second trace untracks `TARGET`.
#[derive(Default)]
struct SecondTraceUntracker {
    traces: Cell<u32>,
}
impl Trace for SecondTraceUntracker {
    fn trace(&self, _: &mut Visit<'_>) {
        self.traces.set(self.traces.get() + 1);
        if self.traces.get() == 2 {
            let h = HEAP.with(Cell::get).unwrap();
            TARGET.with(|t| h.untrack(t.borrow().as_ref().unwrap()));
        }
    }
}
static SECOND_TRACE_UNTRACKER: TypeInfo =
    TypeInfo::new::<SecondTraceUntracker>("second_trace_untracker");
impl Object for SecondTraceUntracker {
    const CONTAINER: bool = true;
    fn type_info() -> &'static TypeInfo {
        &SECOND_TRACE_UNTRACKER
    }
}

#[test]
fn untracking_a_root_during_the_rescue_frees_nothing_it_holds() {
    let (h, owner) = static_heap();
    // Young order: the untracker (a root: traced first in the rescue), x (a root), c (held
    // only by x: tentatively unreachable, to be rescued through x).
    let u = h.alloc(SecondTraceUntracker::default()).unwrap();
    let x = h.alloc(Node::default()).unwrap();
    let c = h.alloc(Node::default()).unwrap().erase();
    x.kids.push(c);
    TARGET.with(|t| *t.borrow_mut() = Some(x.clone().erase()));

    let found = h.collect(0).unwrap();

    assert_eq!(found, 0, "c is held by x, which a handle holds");
    assert!(
        !h.is_tracked(x.as_obj()),
        "x was untracked once the collection ended"
    );
    let c = x.kids.get(0).unwrap();
    assert_eq!(c.refcnt(), 2);
    drop(c);
    TARGET.with(|t| *t.borrow_mut() = None);
    drop((u, x));
    // SAFETY: no handle of the heap is left.
    unsafe { free_heap(owner) };
}

/// A cycle through a FinNode (so the careful path runs its finalizer).
fn garbage_with_finalizer(h: &'static GcHeap, fin: common::FinFn) {
    let f = h
        .alloc(FinNode {
            kids: RefVec::new(),
            fin,
        })
        .unwrap();
    f.kids.push(f.clone().erase());
}

#[test]
fn an_object_untracked_then_frozen_by_a_finalizer_is_untracked_after_the_collection() {
    let (h, owner) = static_heap();
    garbage_with_finalizer(
        h,
        Box::new(|_| {
            let h = HEAP.with(Cell::get).unwrap();
            let x = h.alloc(Node::default()).unwrap().erase(); // generation 0
            h.untrack(&x); // deferred: generation 0 is collected
            h.freeze(); // x moves to the permanent generation, its mark with it
            MADE.with(|m| *m.borrow_mut() = Some(x));
        }),
    );
    assert_eq!(h.collect(0).unwrap(), 1);
    let x = MADE.with(|m| m.borrow_mut().take()).unwrap();
    let gen = h.generation_of(&x);
    drop(x);
    // SAFETY: no handle left.
    unsafe { free_heap(owner) };
    assert_eq!(
        gen, None,
        "untracked during the collection: untracked once it ended"
    );
}

#[test]
fn an_object_unfrozen_then_untracked_by_a_finalizer_is_untracked_after_the_collection() {
    let (h, owner) = static_heap();
    let y = h.alloc(Node::default()).unwrap().erase();
    h.freeze();
    FROZEN.with(|f| *f.borrow_mut() = Some(y));
    garbage_with_finalizer(
        h,
        Box::new(|_| {
            let h = HEAP.with(Cell::get).unwrap();
            h.unfreeze(); // y to generation 2, collected by this collection
            FROZEN.with(|f| h.untrack(f.borrow().as_ref().unwrap())); // deferred
        }),
    );
    assert_eq!(h.collect(2).unwrap(), 1);
    let y = FROZEN.with(|f| f.borrow_mut().take()).unwrap();
    let gen = h.generation_of(&y);
    drop(y);
    // SAFETY: no handle left.
    unsafe { free_heap(owner) };
    assert_eq!(
        gen, None,
        "untracked during the collection: untracked once it ended"
    );
}

/// Two slots, with an exact trace and a release-only drop (slots own no memory of their own,
/// as `drop_only_releases_refs` asks).
#[derive(Default)]
struct Rel<'h>(RefCell1<'h>, RefCell1<'h>);
impl Trace for Rel<'_> {
    fn trace(&self, v: &mut Visit<'_>) {
        self.0.trace(v);
        self.1.trace(v);
    }
    fn clear(&self) {
        self.0.set(None);
        self.1.set(None);
    }
}
// SAFETY: each held reference reported once; the drop only releases them.
static REL: TypeInfo = unsafe {
    TypeInfo::new::<Rel<'static>>("rel")
        .assume_exact_trace()
        .drop_only_releases_refs()
};
impl Object for Rel<'_> {
    const CONTAINER: bool = true;
    fn type_info() -> &'static TypeInfo {
        &REL
    }
}

/// One slot, the same promises, whose trace first tracks `TO_TRACK` (once).
#[derive(Default)]
struct Tracker<'h>(RefCell1<'h>);
impl Trace for Tracker<'_> {
    fn trace(&self, v: &mut Visit<'_>) {
        if let Some(u) = TO_TRACK.with(|t| t.borrow_mut().take()) {
            HEAP.with(Cell::get).unwrap().track(&u);
        }
        self.0.trace(v)
    }
    fn clear(&self) {
        self.0.set(None)
    }
}
// SAFETY: as Rel (tracking makes and drops no reference).
static TRACKER: TypeInfo = unsafe {
    TypeInfo::new::<Tracker<'static>>("tracker")
        .assume_exact_trace()
        .drop_only_releases_refs()
};
impl Object for Tracker<'_> {
    const CONTAINER: bool = true;
    fn type_info() -> &'static TypeInfo {
        &TRACKER
    }
}

#[test]
fn an_object_tracked_during_the_sweep_is_released_by_the_garbage() {
    let (h, owner) = static_heap();

    let t = h.alloc(Tracker::default()).unwrap(); // swept first
    let a = h.alloc(Rel::default()).unwrap();
    let u = h.alloc(Rel::default()).unwrap().erase();
    h.untrack(&u);
    t.0.set(Some(a.clone().erase()));
    a.0.set(Some(t.clone().erase()));
    a.1.set(Some(u.clone())); // u: the handle and a
    drop((t, a)); // t <-> a: garbage
    TO_TRACK.with(|x| *x.borrow_mut() = Some(u.clone()));

    let found = h.collect(0).unwrap();
    let count = u.refcnt();
    let live = h.rc().stats().live;
    drop(u);
    // SAFETY: no handle of the heap is left.
    unsafe { free_heap(owner) };
    assert_eq!(found, 2, "t and a are garbage");
    assert_eq!(
        (count, live),
        (1, 1),
        "a's reference to u released: u held by its handle only"
    );
}

/// One slot, same promises; once armed, its trace calls `unfreeze` (which makes and drops no
/// reference).
#[derive(Default)]
struct Thawer<'h>(RefCell1<'h>);
impl Trace for Thawer<'_> {
    fn trace(&self, v: &mut Visit<'_>) {
        if THAW_ARMED.with(|a| a.replace(false)) {
            HEAP.with(Cell::get).unwrap().unfreeze();
        }
        self.0.trace(v)
    }
    fn clear(&self) {
        self.0.set(None)
    }
}
// SAFETY: as Rel.
static THAWER: TypeInfo = unsafe {
    TypeInfo::new::<Thawer<'static>>("thawer")
        .assume_exact_trace()
        .drop_only_releases_refs()
};
impl Object for Thawer<'_> {
    const CONTAINER: bool = true;
    fn type_info() -> &'static TypeInfo {
        &THAWER
    }
}

#[test]
fn an_object_unfrozen_during_the_sweep_is_released_by_the_garbage() {
    let (h, owner) = static_heap();
    let y = h.alloc(Rel::default()).unwrap().erase();
    h.freeze(); // y: permanent generation

    let t = h.alloc(Thawer::default()).unwrap(); // swept first
    let a = h.alloc(Rel::default()).unwrap();
    t.0.set(Some(a.clone().erase()));
    a.0.set(Some(t.clone().erase()));
    a.1.set(Some(y.clone())); // y: its handle and a
    drop((t, a)); // t <-> a: garbage
    THAW_ARMED.with(|x| x.set(true));

    let found = h.collect(2).unwrap();
    let count = y.refcnt();
    let gen = h.generation_of(&y);
    let live = h.rc().stats().live;
    drop(y);
    let live_after = h.rc().stats().live;
    // SAFETY: no handle of the heap is left.
    unsafe { free_heap(owner) };
    assert_eq!(found, 2, "t and a are garbage");
    assert_eq!(gen, Some(2), "y thawed into generation 2");
    assert_eq!(
        (count, live, live_after),
        (1, 1, 0),
        "a's reference to y released: y held by its handle only, freed when it goes"
    );
}

/// The same garbage with no unfreeze during the sweep (y frozen throughout) releases y.
#[test]
fn the_same_garbage_without_the_unfreeze_releases_the_frozen_object() {
    let (h, owner) = static_heap();
    let y = h.alloc(Rel::default()).unwrap().erase();
    h.freeze();
    let t = h.alloc(Thawer::default()).unwrap();
    let a = h.alloc(Rel::default()).unwrap();
    t.0.set(Some(a.clone().erase()));
    a.0.set(Some(t.clone().erase()));
    a.1.set(Some(y.clone()));
    drop((t, a));
    let found = h.collect(2).unwrap();
    let count = y.refcnt();
    drop(y);
    // SAFETY: no handle of the heap is left.
    unsafe { free_heap(owner) };
    assert_eq!((found, count), (2, 1));
}
