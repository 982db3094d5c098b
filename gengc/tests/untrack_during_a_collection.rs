//! `untrack` called by user code in the middle of a collection (here, a trace: a safe method
//! that made no promise). An object of the running collection is untracked when the
//! collection ends, so that the sweep and the rescue see the young set they started with; an
//! object outside it at once.

mod common;

use std::cell::{Cell, RefCell};

use common::Node;
use gengc::GcHeap;
use refcount::{ObjRef, Object, Trace, TypeInfo, Visit};

thread_local! {
    static HEAP: Cell<Option<&'static GcHeap>> = const { Cell::new(None) };
    static ARMED: Cell<bool> = const { Cell::new(false) };
    static TARGET: RefCell<Option<ObjRef<'static>>> = const { RefCell::new(None) };
    static MADE: RefCell<Option<ObjRef<'static>>> = const { RefCell::new(None) };
    static ALLOCATE: Cell<bool> = const { Cell::new(false) };
}

/// A heap that lives for `'static` (the traces reach it through a thread-local), every block
/// from the system allocator so that Miri sees each free; and the box to give back to
/// [`free_heap`] once no handle is left.
fn static_heap() -> (&'static GcHeap, *mut GcHeap) {
    let owner = Box::into_raw(Box::new(
        GcHeap::new(obj_alloc::ObjConfig {
            raw: raw_alloc::RawConfig {
                backend: raw_alloc::Backend::System,
                ..Default::default()
            },
            ..Default::default()
        })
        .unwrap(),
    ));
    // SAFETY: the box is only freed by free_heap, after the last use of this reference.
    let h: &'static GcHeap = unsafe { &*owner };
    HEAP.with(|c| c.set(Some(h)));
    (h, owner)
}

/// Frees a heap from [`static_heap`].
///
/// # Safety
/// No handle of the heap is left, and its `'static` reference is not used again.
unsafe fn free_heap(owner: *mut GcHeap) {
    HEAP.with(|c| c.set(None));
    // SAFETY: the box static_heap made, freed once (contract).
    drop(unsafe { Box::from_raw(owner) });
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
