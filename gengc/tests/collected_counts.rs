//! `gc.collect()`'s collected and uncollectable counts against CPython 3.11's
//! `gc_collect_main`, in the corners the scenarios do not reach. Each expected value was
//! checked against `python3` (3.11); the Python program is in the test's comment.

mod common;

use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;

use common::*;
use gengc::GcHeap;
use refcount::{Object, RefVec, Trace, TypeInfo, Visit};

fn heap() -> GcHeap {
    GcHeap::new(Default::default()).unwrap()
}

/// A node whose payload's drop panics (with a `&str` payload: nothing leaked).
struct DropPanics<'h> {
    kids: RefVec<'h>,
}
impl Trace for DropPanics<'_> {
    fn trace(&self, v: &mut Visit<'_>) {
        self.kids.trace(v)
    }
    fn clear(&self) {
        self.kids.clear()
    }
}
impl Drop for DropPanics<'_> {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            panic!("drop");
        }
    }
}
// SAFETY: the trace reports each reference once; the drop makes no reference.
static DROP_PANICS: TypeInfo =
    unsafe { TypeInfo::new::<DropPanics<'static>>("drop_panics").assume_exact_trace() };
impl Object for DropPanics<'_> {
    const CONTAINER: bool = true;
    fn type_info() -> &'static TypeInfo {
        &DROP_PANICS
    }
}

/// Garbage freed on a bulk path is counted as collected even when a payload's drop panics (as
/// the careful path's is: CPython's `m` never depends on a `tp_clear`'s or a dealloc's errors).
#[test]
fn garbage_freed_in_bulk_is_counted_when_a_drop_panics() {
    for with_root in [false, true] {
        let h = heap();
        // A reachable young object sends the garbage down delete_garbage_in_bulk; without
        // one, the whole young set is garbage (delete_young_in_bulk).
        let keep = with_root.then(|| h.alloc(Node::default()).unwrap());
        let a = h
            .alloc(DropPanics {
                kids: RefVec::new(),
            })
            .unwrap();
        let b = h.alloc(Node::default()).unwrap();
        a.kids.push(b.clone().erase());
        b.kids.push(a.clone().erase());
        drop((a, b));
        let before = h.get_stats()[2].collected;
        let r = catch_unwind(AssertUnwindSafe(|| h.collect(2)));
        assert!(r.is_err(), "the drop's panic resumes");
        assert_eq!(
            h.get_stats()[2].collected - before,
            2,
            "with a reachable object: {with_root}"
        );
        drop(keep);
    }
}

/// The callbacks of the weakrefs to one garbage object run newest first, as CPython's
/// `handle_weakrefs` walks the referent's list from its head:
/// ```python
/// c = C(); c.me = c; order = []
/// w1 = weakref.ref(c, lambda w: order.append(1))
/// w2 = weakref.ref(c, lambda w: order.append(2))
/// del c; gc.collect(); order  # [2, 1]
/// ```
#[test]
fn weakref_callbacks_of_garbage_run_newest_first() {
    let h = heap();
    let order: Rc<RefCell<Vec<u32>>> = Rc::default();
    let a = h.alloc(Node::default()).unwrap();
    a.kids.push(a.clone().erase());
    let a = a.erase();
    let (o1, o2) = (order.clone(), order.clone());
    let w1 = h
        .rc()
        .weakref(&a, Some(Box::new(move |_| o1.borrow_mut().push(1))))
        .unwrap();
    let w2 = h
        .rc()
        .weakref(&a, Some(Box::new(move |_| o2.borrow_mut().push(2))))
        .unwrap();
    drop(a);
    h.collect(2).unwrap();
    assert_eq!(*order.borrow(), [2, 1]);
    drop((w1, w2));
}

/// A self-cycle whose finalizer lets go of its second reference (`self.b = None`).
fn self_cycle_that_drops_its_second_kid(h: &GcHeap) -> refcount::Ref<'_, FinNode<'_>> {
    let a = h
        .alloc(FinNode {
            kids: RefVec::new(),
            fin: Box::new(|this| {
                let me = this.downcast_ref::<FinNode<'_>>().unwrap();
                drop(me.kids.remove(1));
            }),
        })
        .unwrap();
    a.kids.push(a.clone().erase());
    a
}

/// CPython holds no reference to the garbage while finalizers run: what a finalizer lets go
/// of dies at once, and is not in `final_unreachable`:
/// ```python
/// class A:
///     def __del__(self): self.b = None
/// a = A(); a.me = a; a.b = B(); del a; gc.collect()  # 1
/// ```
#[test]
fn garbage_a_finalizer_frees_is_not_counted_as_collected() {
    let h = heap();
    let a = self_cycle_that_drops_its_second_kid(&h);
    a.kids.push(h.alloc(Node::default()).unwrap().erase());
    drop(a);
    assert_eq!(h.collect(2).unwrap(), 1, "the self-cycle only, as CPython");
    assert_eq!(h.get_stats()[2].collected, 1);
    assert_eq!(h.rc().stats().live, 0);
}

/// What the freed object alone held dies with it (CPython: `a.b.c = B()`, collect() still 1);
/// an object in a cycle of its own does not (`a.b.c = a.b`: 2).
#[test]
fn garbage_a_finalizer_frees_takes_what_it_alone_held_but_not_a_cycle() {
    for own_cycle in [false, true] {
        let h = heap();
        let a = self_cycle_that_drops_its_second_kid(&h);
        let b = h.alloc(Node::default()).unwrap();
        if own_cycle {
            b.kids.push(b.clone().erase());
        } else {
            b.kids.push(h.alloc(Node::default()).unwrap().erase());
        }
        a.kids.push(b.erase());
        drop(a);
        let expected = if own_cycle { 2 } else { 1 };
        assert_eq!(h.collect(2).unwrap(), expected, "own cycle: {own_cycle}");
        assert_eq!(h.rc().stats().live, 0);
    }
}

/// The same with a finalizer that keeps its reference: both counted (the control).
#[test]
fn garbage_a_finalizer_leaves_alone_is_counted_as_collected() {
    let h = heap();
    let a = h
        .alloc(FinNode {
            kids: RefVec::new(),
            fin: Box::new(|_| {}),
        })
        .unwrap();
    a.kids.push(a.clone().erase());
    a.kids.push(h.alloc(Node::default()).unwrap().erase());
    drop(a);
    assert_eq!(h.collect(2).unwrap(), 2);
}

/// CPython counts `n` over what is left of its finalizers list after `delete_garbage`, and
/// only then fills `gc.garbage`: a legacy object held only by collectable garbage is freed
/// with it (`_testcapi.with_tp_del` makes the legacy class):
/// ```python
/// c = C(); c.me = c; c.l = L(); del c
/// gc.collect()  # 1: collected 1, uncollectable 0, gc.garbage == []
/// ```
#[test]
fn a_legacy_object_freed_with_the_garbage_is_not_uncollectable() {
    let h = heap();
    let c = h.alloc(Node::default()).unwrap();
    c.kids.push(c.clone().erase());
    c.kids.push(h.alloc(Legacy::default()).unwrap().erase());
    drop(c);
    assert_eq!(h.collect(2).unwrap(), 1);
    assert_eq!(h.get_stats()[2].uncollectable, 0);
    assert!(h.garbage().is_empty());
    assert_eq!(h.rc().stats().live, 0);
}

/// A weakref with a callback held by an uncollectable object has its callback run and leaves
/// the finalizers list (`handle_weakrefs`):
/// ```python
/// c = C(); c.me = c; l = L(); l.me = l; l.w = weakref.ref(c, lambda w: None); del c, l
/// gc.collect()  # 3: collected 1 (c), uncollectable 2 (l and the lambda), gc.garbage == [l]
/// ```
/// pyheap's callback is a closure, not an object: 2 here, with `l` alone in `gc.garbage`.
#[test]
fn a_weakref_among_the_uncollectable_whose_callback_runs_is_not_uncollectable() {
    let h = heap();
    let c = h.alloc(Node::default()).unwrap();
    c.kids.push(c.clone().erase());
    let l = h.alloc(Legacy::default()).unwrap();
    l.kids.push(l.clone().erase());
    let c = c.erase();
    let w = h.rc().weakref(&c, Some(Box::new(|_| {}))).unwrap();
    l.kids.push(w.erase());
    drop((c, l));
    assert_eq!(
        h.collect(2).unwrap(),
        2,
        "the cycle collected, the legacy object"
    );
    assert_eq!(h.garbage().len(), 1);
    h.clear_garbage();
}

/// Under DEBUG_SAVEALL, garbage a finalizer frees is not saved: CPython holds no reference to
/// the garbage while finalizers run, so such an object dies there and then:
/// ```python
/// class A:
///     def __del__(self): self.c = None
/// gc.set_debug(gc.DEBUG_SAVEALL)
/// a = A(); b = N(); a.b = b; b.a = a; a.c = N(); del a, b
/// gc.collect()  # 2; gc.garbage holds a and b, not the N that a.c held
/// ```
#[test]
fn garbage_a_finalizer_frees_is_not_saved_by_debug_saveall() {
    let h = heap();
    h.set_debug(gengc::DebugFlags::SAVEALL);
    let a = h
        .alloc(FinNode {
            kids: RefVec::new(),
            fin: Box::new(|this| {
                let me = this.downcast_ref::<FinNode<'_>>().unwrap();
                drop(me.kids.pop()); // a.c = None
            }),
        })
        .unwrap();
    let b = h.alloc(Node::default()).unwrap();
    b.kids.push(a.clone().erase());
    a.kids.push(b.erase());
    a.kids.push(h.alloc(Node::default()).unwrap().erase()); // a.c
    drop(a);
    assert_eq!(h.collect(2).unwrap(), 2);
    let saved: Vec<&str> = h.garbage().iter().map(|o| o.type_info().name).collect();
    assert_eq!(saved, ["fin_node", "node"]);
    h.set_debug(gengc::DebugFlags::empty());
    for o in h.garbage() {
        if let Some(n) = o.downcast_ref::<Node<'_>>() {
            n.kids.clear();
        }
    }
    h.clear_garbage();
    assert_eq!(h.rc().stats().live, 0);
}
