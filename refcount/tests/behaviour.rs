//! The refcount tier's behaviours: counting, immediate freeing, immortality, finalizers,
//! resurrection, weak references and callbacks, deep structures, several heaps.

mod common;

use std::cell::RefCell;
use std::rc::Rc;

use common::*;
use obj_alloc::ObjConfig;
use raw_alloc::{Backend, OomCause, RawConfig};
use refcount::{ObjRef, RcHeap, RefVec, Unraisable, IMMORTAL};

fn heap() -> std::pin::Pin<Box<RcHeap>> {
    RcHeap::new(ObjConfig::default()).unwrap()
}

#[test]
fn clone_adds_a_reference_and_drop_removes_it() {
    let h = heap();
    let a = h.alloc(Num(5)).unwrap();
    assert_eq!(a.refcnt(), 1);
    let b = a.clone();
    let c = b.clone().erase();
    assert_eq!(a.refcnt(), 3);
    drop(b);
    assert_eq!(c.refcnt(), 2);
    assert!(c.is::<Num>() && !c.is::<List>());
    assert_eq!(c.downcast_ref::<Num>().unwrap().0, 5);
    drop((a, c));
    let s = h.stats();
    assert_eq!((s.allocated, s.freed, s.live), (1, 1, 0));
}

#[test]
fn dropping_the_last_reference_returns_the_block_at_once() {
    let h = heap();
    let blocks = || {
        h.allocator()
            .stats()
            .classes
            .iter()
            .map(|c| c.blocks_in_use)
            .sum::<usize>()
    };
    let before = blocks();
    let a = h.alloc(Num(1)).unwrap();
    assert_eq!(blocks(), before + 1);
    drop(a);
    assert_eq!(blocks(), before);
}

#[test]
fn an_immortal_object_keeps_its_count_and_is_never_freed() {
    let h = heap();
    let a = h.alloc(Num(256)).unwrap();
    h.make_immortal(a.as_obj());
    let b = a.clone();
    assert_eq!(b.refcnt(), IMMORTAL);
    let raw = a.as_ptr();
    drop((a, b));
    // SAFETY: an immortal object is never freed, so the pointer stays valid.
    assert_eq!(unsafe { raw.header() }.refcnt(), IMMORTAL);
    assert_eq!(h.stats().live, 1);
}

#[test]
#[cfg_attr(miri, ignore = "millions of objects: too slow for the interpreter")]
fn a_chain_of_ten_million_objects_drops_on_an_8_mib_stack() {
    on_8mib_stack(|| {
        let h = heap();
        let mut head = h.alloc(List::default()).unwrap();
        for _ in 0..10_000_000 {
            let next = h.alloc(List::default()).unwrap();
            next.0.push(head.erase());
            head = next;
        }
        drop(head);
        let s = h.stats();
        assert_eq!(s.live, 0);
        assert_eq!(s.deferred, 10_000_000);
        assert_eq!(s.max_pending, 1, "a chain never waits more than one deep");
        h.allocator().trim(); // the one empty arena kept against thrashing
        assert_eq!(h.allocator().stats().arenas.current, 0);
    });
}

#[test]
#[cfg_attr(miri, ignore = "millions of objects: too slow for the interpreter")]
fn wide_and_deep_trees_drop_without_recursion() {
    on_8mib_stack(|| {
        let h = heap();
        // 1,000 levels of a tree whose every node has 1,000 children only at the bottom,
        // and a deep spine: 1,000,000 leaves in all.
        let root = h.alloc(List::default()).unwrap();
        let mut spine = root.clone();
        for _ in 0..1000 {
            let next = h.alloc(List::default()).unwrap();
            for _ in 0..1000 {
                next.0.push(h.alloc(Num(0)).unwrap().erase());
            }
            spine.0.push(next.clone().erase());
            spine = next;
        }
        drop(spine);
        assert_eq!(h.stats().live, 1 + 1000 + 1_000_000);
        drop(root);
        assert_eq!(h.stats().live, 0);
    });
}

#[test]
fn children_are_freed_in_the_order_a_recursive_drop_would_use() {
    let h = heap();
    let log: Log = Rc::default();
    let parent = h.alloc(List::default()).unwrap();
    for name in ["a", "b", "c"] {
        let f = h.alloc(Fin::new(name, &log)).unwrap();
        f.child.set(Some(
            h.alloc(Fin::new(
                ["a1", "b1", "c1"][(name.as_bytes()[0] - b'a') as usize],
                &log,
            ))
            .unwrap()
            .erase(),
        ));
        parent.0.push(f.erase());
    }
    drop(parent);
    assert_eq!(
        *log.borrow(),
        ["a", "a1", "b", "b1", "c", "c1"].map(|n| format!("finalize {n}"))
    );
}

#[test]
fn a_finalizer_runs_once_before_the_object_dies() {
    let h = heap();
    let log: Log = Rc::default();
    let f = h.alloc(Fin::new("f", &log)).unwrap();
    drop(f);
    assert_eq!(*log.borrow(), ["finalize f"]);
    let s = h.stats();
    assert_eq!((s.finalizers_run, s.live), (1, 0));
}

#[test]
fn a_finalizer_that_stores_its_object_resurrects_it_and_never_runs_again() {
    let h = heap();
    let log: Log = Rc::default();
    let keep: Keep = Rc::default();
    let mut fin = Fin::new("phoenix", &log);
    fin.keep = Some(keep.clone());
    let f = h.alloc(fin).unwrap();
    drop(f);
    assert_eq!(h.stats().live, 1, "resurrected");
    assert_eq!(h.stats().resurrected, 1);
    let again = keep.borrow_mut().pop().unwrap();
    assert!(again.header().is_finalized());
    assert_eq!(again.refcnt(), 1);
    drop(again);
    assert_eq!(*log.borrow(), ["finalize phoenix"], "not run twice");
    assert_eq!(h.stats().live, 0);
}

#[test]
fn a_finalizer_that_drops_other_objects_frees_them_too() {
    let h = heap();
    let log: Log = Rc::default();
    let mut fin = Fin::new("outer", &log);
    fin.drop_child_in_finalizer = true;
    let f = h.alloc(fin).unwrap();
    f.child
        .set(Some(h.alloc(Fin::new("inner", &log)).unwrap().erase()));
    drop(f);
    assert_eq!(*log.borrow(), ["finalize outer", "finalize inner"]);
    assert_eq!(h.stats().live, 0);
}

#[test]
fn a_panicking_finalizer_is_reported_and_the_object_still_dies() {
    let h = heap();
    let log: Log = Rc::default();
    let reports: Rc<RefCell<Vec<Unraisable>>> = Rc::default();
    let r = reports.clone();
    h.set_unraisable_hook(Some(Box::new(move |u| r.borrow_mut().push(u.clone()))));
    let mut fin = Fin::new("bad", &log);
    fin.panic = true;
    drop(h.alloc(fin).unwrap());
    let reports = reports.borrow();
    assert_eq!(reports.len(), 1);
    assert_eq!(
        (reports[0].context, reports[0].type_name),
        ("finalizer", "fin")
    );
    assert!(reports[0].message.contains("finalizer of bad failed"));
    let s = h.stats();
    assert_eq!((s.unraisable, s.live), (1, 0));
}

#[test]
fn a_weak_handle_upgrades_while_the_object_lives_and_to_nothing_after() {
    let h = heap();
    let a = h.alloc(Num(3)).unwrap();
    let w = h.downgrade(&a).unwrap();
    assert_eq!(w.upgrade().unwrap().0, 3);
    assert_eq!(h.weakref_count(a.as_obj()), 1);
    drop(a);
    assert!(w.upgrade().is_none() && w.is_dead());
    drop(w);
    assert_eq!(h.stats().live, 0);
}

#[test]
fn weakref_callbacks_run_once_newest_first_after_the_reference_is_cleared() {
    let h = heap();
    let log: Log = Rc::default();
    let a = h.alloc(Num(1)).unwrap();
    let refs: Vec<_> = (1..=3)
        .map(|i| {
            let log = log.clone();
            h.weakref(
                a.as_obj(),
                Some(Box::new(move |wr| {
                    log.borrow_mut()
                        .push(format!("callback {i}, cleared: {}", wr.is_dead()))
                })),
            )
            .unwrap()
        })
        .collect();
    drop(a);
    assert_eq!(
        *log.borrow(),
        [
            "callback 3, cleared: true",
            "callback 2, cleared: true",
            "callback 1, cleared: true"
        ]
    );
    assert!(refs
        .iter()
        .all(|r| r.upgrade().is_none() && !r.has_callback()));
    assert_eq!(h.stats().callbacks_run, 3);
}

#[test]
fn a_weakref_that_dies_first_is_forgotten_and_its_callback_never_runs() {
    let h = heap();
    let ran = Rc::new(RefCell::new(false));
    let a = h.alloc(Num(1)).unwrap();
    let r = ran.clone();
    let wr = h
        .weakref(a.as_obj(), Some(Box::new(move |_| *r.borrow_mut() = true)))
        .unwrap();
    drop(wr);
    assert_eq!(h.weakref_count(a.as_obj()), 0);
    drop(a);
    assert!(!*ran.borrow());
    assert_eq!(h.stats().live, 0);
}

#[test]
fn a_weakref_dying_in_the_same_cascade_gets_no_callback() {
    let h = heap();
    let ran = Rc::new(RefCell::new(false));
    let target = h.alloc(Num(1)).unwrap();
    let r = ran.clone();
    let wr = h
        .weakref(
            target.as_obj(),
            Some(Box::new(move |_| *r.borrow_mut() = true)),
        )
        .unwrap();
    // A list holding the weakref first and the target second: the weakref dies (count zero,
    // waiting) when the target's death clears it.
    let holder = h.alloc(List::default()).unwrap();
    holder.0.push(target.erase());
    holder.0.push(wr.erase());
    drop(holder);
    assert!(!*ran.borrow());
    assert_eq!(h.stats().live, 0);
}

#[test]
fn a_callback_may_allocate_resurrect_others_and_drop_things() {
    let h = heap();
    let keep: Rc<RefCell<Vec<ObjRef>>> = Rc::default();
    let other = h.alloc(List::default()).unwrap();
    let a = h.alloc(Num(1)).unwrap();
    let (k, hh) = (keep.clone(), &*h);
    let mut holder = Some(other);
    let wr = h
        .weakref(
            a.as_obj(),
            Some(Box::new(move |wr| {
                let fresh = hh.alloc(List::default()).unwrap();
                fresh.0.push(wr.erase());
                if let Some(o) = holder.take() {
                    fresh.0.push(o.erase());
                }
                k.borrow_mut().push(fresh.erase());
                assert!(hh.alloc(Num(9)).is_ok());
            })),
        )
        .unwrap();
    // This weakref dies before its referent: its callback never runs.
    drop(wr);
    drop(a);
    assert!(keep.borrow().is_empty());

    let a = h.alloc(Num(2)).unwrap();
    let k = keep.clone();
    let wr = h
        .weakref(
            a.as_obj(),
            Some(Box::new(move |wr| {
                let fresh = hh.alloc(List::default()).unwrap();
                fresh.0.push(wr.erase());
                k.borrow_mut().push(fresh.erase());
            })),
        )
        .unwrap();
    drop(a);
    assert_eq!(
        keep.borrow().len(),
        1,
        "the callback ran and stored a new list"
    );
    drop(wr);
    keep.borrow_mut().clear();
    assert_eq!(h.stats().live, 0);
}

#[test]
fn big_objects_in_direct_blocks_find_their_heap() {
    let h = heap();
    let big = h
        .alloc(Big {
            bytes: [7; 1000],
            child: Default::default(),
        })
        .unwrap();
    big.child.set(Some(h.alloc(Num(1)).unwrap().erase()));
    assert_eq!(big.as_obj().heap() as *const RcHeap, &*h as *const RcHeap);
    assert_eq!(big.bytes[999], 7);
    assert_eq!(h.allocator().raw().stats().direct_blocks, 1);
    drop(big);
    assert_eq!(h.stats().live, 0);
    assert_eq!(h.allocator().raw().stats().direct_blocks, 0);
}

#[test]
#[cfg_attr(
    miri,
    ignore = "thousands of operations: minutes under the interpreter"
)]
fn every_backend_and_the_debug_layer_run_the_same_program() {
    for (backend, debug) in [
        (Backend::Arena, false),
        (Backend::System, false),
        (Backend::Arena, true),
        (Backend::System, true),
    ] {
        let h = RcHeap::new(ObjConfig {
            raw: RawConfig {
                backend,
                debug,
                ..RawConfig::default()
            },
            ..ObjConfig::default()
        })
        .unwrap();
        let root = h.alloc(List::default()).unwrap();
        for i in 0..1000 {
            root.0.push(h.alloc(Num(i)).unwrap().erase());
        }
        root.0.push(
            h.alloc(Big {
                bytes: [0; 1000],
                child: Default::default(),
            })
            .unwrap()
            .erase(),
        );
        assert_eq!(
            root.0.get(500).unwrap().downcast_ref::<Num>().unwrap().0,
            500
        );
        drop(root);
        assert_eq!(h.stats().live, 0, "{backend:?} debug={debug}");
        let raw = h.allocator().raw().stats();
        assert_eq!(raw.direct_blocks, 0);
        if let Some(d) = raw.debug {
            assert_eq!((d.live_blocks, d.violations), (0, 0));
        }
    }
}

#[test]
fn objects_are_freed_into_the_heap_they_came_from() {
    let h1 = heap();
    let h2 = heap();
    let a = h1.alloc(List::default()).unwrap();
    let b = h2.alloc(Num(2)).unwrap();
    a.0.push(b.erase()); // a reference across heaps is still counted correctly
    assert_eq!((h1.stats().live, h2.stats().live), (1, 1));
    drop(a);
    assert_eq!((h1.stats().live, h2.stats().live), (0, 0));
    assert_eq!(h1.stats().freed, 1);
    assert_eq!(h2.stats().freed, 1);
}

#[test]
#[cfg_attr(miri, ignore = "millions of objects: too slow for the interpreter")]
fn out_of_memory_under_the_limit_is_an_error_and_the_heap_recovers() {
    let h = RcHeap::new(ObjConfig {
        raw: RawConfig {
            limit: Some(4 << 20),
            ..RawConfig::default()
        },
        ..ObjConfig::default()
    })
    .unwrap();
    let list = h.alloc(List::default()).unwrap();
    let err = loop {
        match h.alloc(Num(0)) {
            Ok(n) => list.0.push(n.erase()),
            Err(e) => break e,
        }
    };
    assert_eq!(err.cause, OomCause::Limit);
    let n = list.0.len();
    assert!(n > 10_000);
    for _ in 0..1000 {
        list.0.pop();
    }
    assert!(h.alloc(Num(1)).is_ok(), "freeing made room");
    drop(list);
    assert_eq!(h.stats().live, 0);
}

#[test]
fn ref_vec_operations_behave_like_a_python_list() {
    let h = heap();
    let v = RefVec::new();
    let n = |i| h.alloc(Num(i)).unwrap().erase();
    let val = |r: Option<ObjRef>| r.map(|r| r.downcast_ref::<Num>().unwrap().0);
    v.push(n(1));
    v.push(n(3));
    v.insert(1, n(2));
    v.insert(99, n(4));
    assert_eq!(v.len(), 4);
    assert_eq!(
        (1..=4).map(|i| val(v.get(i - 1))).collect::<Vec<_>>(),
        [1, 2, 3, 4].map(Some)
    );
    assert_eq!(val(v.remove(0)), Some(1));
    assert_eq!(val(v.pop()), Some(4));
    assert_eq!(val(v.set(0, n(20)).ok()), Some(2));
    assert!(v.set(5, n(0)).is_err());
    assert_eq!(val(v.get(0)), Some(20));
    v.clear();
    assert!(v.is_empty());
    assert_eq!(h.stats().live, 0);
}

#[test]
fn a_tuple_keeps_its_items_in_its_own_block_and_releases_them() {
    let h = heap();
    let items: Vec<ObjRef> = (0..5).map(|i| h.alloc(Num(i)).unwrap().erase()).collect();
    let t = h.alloc_var(Tuple::new(5), &items).unwrap();
    assert_eq!(
        items[3].refcnt(),
        2,
        "the tuple holds a reference to each item"
    );
    drop(items);
    let values: Vec<i64> = refcount::items(&*t)
        .iter()
        .map(|r| r.downcast_ref::<Num>().unwrap().0)
        .collect();
    assert_eq!(values, [0, 1, 2, 3, 4]);
    // 16 (pre-header) + 16 (header) + 8 (len) + 5 * 8 = 80 bytes, as CPython's 40 + 8n.
    assert_eq!(h.object_size(t.as_obj()), 80);
    drop(t);
    assert_eq!(h.stats().live, 0);
}

#[test]
fn a_dead_tuple_goes_to_the_free_list_of_its_length() {
    let h = heap();
    let one = [h.alloc(Num(1)).unwrap().erase()];
    let t = h.alloc_var(Tuple::new(1), &one).unwrap();
    let addr = t.as_ptr();
    drop(t);
    let again = h.alloc_var(Tuple::new(1), &one).unwrap();
    assert_eq!(
        again.as_ptr(),
        addr,
        "the same block, from the length-1 free list"
    );
    let kinds = h.allocator().stats().kinds;
    let tuple = kinds.iter().find(|k| k.name == "tuple").unwrap();
    assert_eq!((tuple.free_list_hits, tuple.free_list_misses), (1, 1));
}

#[test]
fn a_variable_size_object_larger_than_the_address_space_is_out_of_memory() {
    // `VarObject::len` is the payload's word: a length whose size overflowed the size
    // arithmetic wrapped to a small block (release) and the items were written past it.
    let h = heap();
    for len in [usize::MAX, usize::MAX / 8, isize::MAX as usize / 8 + 1] {
        let r = h.alloc_var_with(Tuple::new(len), |_| unreachable!("no item is written"));
        let e = r.err().expect("refused");
        assert_eq!((e.requested, e.cause), (usize::MAX, OomCause::Os));
    }
    // The heap is unchanged and usable.
    assert_eq!(h.stats().live, 0);
    let t = h.alloc_var(Tuple::new(1), &[h.alloc(Num(1)).unwrap().erase()]);
    assert!(t.is_ok());
}
