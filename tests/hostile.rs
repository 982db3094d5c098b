//! Hostile finalizers and callbacks: ones that panic, allocate until the heap limit, drop
//! everything, collect again, inspect the collector or upgrade weak references while objects
//! are dying. Each must leave no undefined behaviour (the sanitizer runs check that), a reported
//! error where one is due, and a consistent heap that [`support::finish`] finds holding only
//! its immortals.

mod support;

use std::cell::RefCell;
use std::rc::Rc;

use pyheap::object::{FinalizerKind, WeakRefObj};
use pyheap::{Heap, ObjRef, Ref};

/// Roots a test keeps where its finalizers can reach them.
type Shared<'h> = Rc<RefCell<Vec<ObjRef<'h>>>>;

// ---- regressions: user code that runs while objects wait on the pending stack -------------

/// Regression: a collection run from a finalizer during a refcount cascade examined the
/// objects waiting on the pending stack (count 0, still tracked), found them unreachable, and
/// freed them a second time.
#[test]
fn a_finalizer_that_collects_during_a_cascade_frees_each_waiting_object_once() {
    let h = support::heap();
    let base = h.gc().rc().stats();
    let collected = Rc::new(RefCell::new(Vec::new()));
    let c = collected.clone();
    let class = h
        .class(
            "C",
            Some((
                Rc::new(move |heap: &Heap, _: &ObjRef<'_>| {
                    c.borrow_mut().push(heap.gc().collect(2).unwrap());
                    Ok(())
                }),
                FinalizerKind::Safe,
            )),
        )
        .unwrap();
    let x = h.instance(&class).unwrap();
    let waiting = h.list(vec![h.list(vec![]).unwrap().erase()]).unwrap();
    // Dropping the outer list releases x (its finalizer runs first) and `waiting`, which waits
    // on the pending stack with a count of 0 while the finalizer collects.
    let outer = h.list(vec![x, waiting.erase()]).unwrap();
    drop(outer);
    let s = h.gc().rc().stats();
    assert_eq!(
        s.freed - base.freed,
        4,
        "outer, x, waiting and its item: once each"
    );
    assert_eq!(s.live, base.live + 1, "only the class is left");
    assert_eq!(*collected.borrow(), [0], "nothing was garbage");
    drop(class);
    support::finish(h);
}

/// Regression: `WeakRefObj::upgrade` handed out a strong reference to an object whose count
/// had reached zero and that waited on the pending stack; the deallocation loop then freed it
/// under the new handle (a use after free).
#[test]
fn a_weakref_to_an_object_waiting_on_the_pending_stack_upgrades_to_nothing() {
    let h = support::heap();
    let kept: Shared<'_> = Rc::default();
    let weak: Rc<RefCell<Option<Ref<'_, WeakRefObj<'_>>>>> = Rc::default();
    let upgraded = Rc::new(RefCell::new(Vec::new()));
    let (k, w, u) = (kept.clone(), weak.clone(), upgraded.clone());
    let class = h
        .class(
            "C",
            Some((
                Rc::new(move |_: &Heap, _: &ObjRef<'_>| {
                    let got = w.borrow().as_ref().and_then(|w| w.upgrade());
                    u.borrow_mut().push(got.is_some());
                    k.borrow_mut().extend(got);
                    Ok(())
                }),
                FinalizerKind::Safe,
            )),
        )
        .unwrap();
    let target = h.list(vec![]).unwrap();
    *weak.borrow_mut() = Some(h.weakref(target.as_obj(), None).unwrap());
    let outer = h
        .list(vec![h.instance(&class).unwrap(), target.erase()])
        .unwrap();
    drop(outer);
    assert_eq!(
        *upgraded.borrow(),
        [false],
        "the target was dying: no upgrade"
    );
    assert!(kept.borrow().is_empty());
    assert!(weak.borrow().as_ref().unwrap().upgrade().is_none());
    drop((weak, kept, class));
    support::finish(h);
}

/// Regression: `gc.get_objects()` called from a finalizer during a refcount cascade handed out
/// strong references to tracked objects waiting on the pending stack; dropping them freed
/// those objects a second time.
#[test]
fn get_objects_during_a_cascade_leaves_out_the_objects_waiting_to_die() {
    let h = support::heap();
    let seen = Rc::new(RefCell::new(Vec::new()));
    let s = seen.clone();
    let class = h
        .class(
            "C",
            Some((
                Rc::new(move |heap: &Heap, _: &ObjRef<'_>| {
                    let objects = heap.gc().get_objects(None).unwrap();
                    s.borrow_mut()
                        .push(objects.iter().map(|o| o.refcnt()).min());
                    Ok(())
                }),
                FinalizerKind::Safe,
            )),
        )
        .unwrap();
    let base = h.gc().rc().stats();
    let outer = h
        .list(vec![
            h.instance(&class).unwrap(),
            h.list(vec![]).unwrap().erase(),
        ])
        .unwrap();
    drop(outer);
    let s = h.gc().rc().stats();
    assert_eq!(s.freed - base.freed, 3);
    assert!(
        seen.borrow()[0].is_none_or(|min| min > 1),
        "only live objects, each with the finalizer's new reference on top: {:?}",
        seen.borrow()
    );
    drop(class);
    support::finish(h);
}

// ---- panics ------------------------------------------------------------------------------

/// A class whose finalizer panics with `message`.
fn panicking_class<'h>(h: &'h Heap, message: &'static str) -> Ref<'h, pyheap::object::Class<'h>> {
    h.class(
        "Panics",
        Some((
            Rc::new(move |_: &Heap, _: &ObjRef<'_>| panic!("{message}")),
            FinalizerKind::Safe,
        )),
    )
    .unwrap()
}

#[test]
fn an_unraisable_hook_that_panics_falls_back_to_the_log_and_the_heap_stays_usable() {
    let h = support::heap();
    h.gc()
        .rc()
        .set_unraisable_hook(Some(Box::new(|_| panic!("the hook itself fails"))));
    let class = panicking_class(&h, "finalizer fails");
    let base = h.gc().rc().stats();
    let obj = h.instance(&class).unwrap();
    h.setattr(&obj, "next", h.list(vec![]).unwrap().erase())
        .unwrap();
    drop(obj); // the finalizer panics, then the hook panics while reporting it
    let s = h.gc().rc().stats();
    assert_eq!(s.unraisable - base.unraisable, 1, "the failure was counted");
    assert_eq!(s.live, base.live, "the instance and its list were freed");
    // The heap still frees at once (it is not stuck in a deallocation).
    let l = h.list(vec![]).unwrap();
    drop(l);
    assert_eq!(h.gc().rc().stats().live, base.live);
    h.gc().rc().set_unraisable_hook(None);
    drop(class);
    support::finish(h);
}

// ---- regressions: weakrefs in the garbage --------------------------------------------------

/// Regression (CPython bpo-38006): a weakref that is itself garbage, whose referent is outside
/// the garbage but dies when the garbage is cleared, ran its callback during the deletion; a
/// callback that kept its weakref resurrected an object the collector had already cleared, and
/// it stayed in the collector's limbo (tracked by no generation, never collected again).
#[test]
fn a_weakref_that_is_garbage_gets_no_callback_when_the_garbage_kills_its_referent() {
    // Several shapes and tracking orders, so that some deletion order kills the referent while
    // the garbage tuple still holds the weakref.
    for variant in 0..8 {
        let h = support::heap();
        let ran = Rc::new(RefCell::new(0));
        let kept: Shared<'_> = Rc::default();
        let (r, k) = (ran.clone(), kept.clone());
        let referent = h.str("outside the garbage").unwrap();
        // A container tracked before the others, dropped below: its slot in generation 0 goes
        // to the newest container, which changes the order the collector visits them in.
        let filler = (variant & 1 == 0).then(|| h.dict().unwrap());
        let early = h.list(vec![]).unwrap();
        let wr = h
            .weakref(
                &referent,
                Some(Box::new(move |wr| {
                    *r.borrow_mut() += 1;
                    k.borrow_mut().push(wr.erase());
                })),
            )
            .unwrap();
        let l = early;
        // A tuple (it cannot be cleared) holds the weakref and the list; the list holds the
        // tuple and the referent: all of it one garbage cycle but the referent, a str.
        let t = if variant & 2 == 0 {
            h.tuple(&[wr.clone().erase(), l.clone().erase()]).unwrap()
        } else {
            h.tuple(&[l.clone().erase(), wr.clone().erase()]).unwrap()
        };
        if variant & 4 == 0 {
            l.append(t.clone().erase()).unwrap();
            l.append(referent).unwrap();
        } else {
            l.append(referent).unwrap();
            l.append(t.clone().erase()).unwrap();
        }
        drop((wr, t, l, filler));
        assert!(h.gc().collect(2).unwrap() >= 3);
        assert_eq!(
            *ran.borrow(),
            0,
            "variant {variant}: the garbage weakref's callback ran"
        );
        assert!(kept.borrow().is_empty());
        assert_eq!(
            h.gc().collect(2).unwrap(),
            0,
            "variant {variant}: nothing left over"
        );
        drop(kept);
        support::finish(h);
    }
}

/// A class whose finalizer panics in every instance; its instances' weakref callbacks too.
#[test]
fn finalizers_and_callbacks_that_panic_are_reported_and_everything_is_freed() {
    let h = support::heap();
    let reports = Rc::new(RefCell::new(Vec::<String>::new()));
    let r = reports.clone();
    h.gc().rc().set_unraisable_hook(Some(Box::new(move |u| {
        r.borrow_mut().push(u.message.clone())
    })));
    h.gc()
        .add_callback(Box::new(|_, _| panic!("gc callback fails")));
    let class = panicking_class(&h, "finalizer fails");
    let base = h.gc().rc().stats();
    let mut weakrefs = Vec::new();
    // A chain freed by reference counting, and rings freed by the collector.
    let mut head = h.list(vec![]).unwrap().erase();
    for i in 0..1_000 {
        let o = h.instance(&class).unwrap();
        h.setattr(&o, "next", head).unwrap();
        if i % 10 == 0 {
            h.setattr(&o, "me", o.clone()).unwrap();
        }
        weakrefs.push(
            h.weakref(&o, Some(Box::new(|_| panic!("callback fails"))))
                .unwrap(),
        );
        head = o;
    }
    drop(head);
    h.gc().collect(2).unwrap();
    let finalizers = reports
        .borrow()
        .iter()
        .filter(|m| *m == "finalizer fails")
        .count();
    let callbacks = reports
        .borrow()
        .iter()
        .filter(|m| *m == "callback fails")
        .count();
    assert_eq!(
        (finalizers, callbacks),
        (1_000, 1_000),
        "each reported once"
    );
    assert!(weakrefs.iter().all(|w| w.upgrade().is_none()));
    let s = h.gc().rc().stats();
    assert_eq!(s.live - base.live, 1_000, "only the weakrefs are left");
    drop(weakrefs);
    support::check_consistent(&h);
    h.gc().rc().set_unraisable_hook(None);
    drop(class);
    support::finish(h);
}

// ---- allocating until the heap limit -----------------------------------------------------

/// A class whose finalizer allocates until the heap refuses, keeping what it made in `kept`
/// (or dropping it, when `kept` is None), and reports the refusal as its error.
fn greedy_class<'h>(h: &'h Heap, kept: Option<Shared<'h>>) -> Ref<'h, pyheap::object::Class<'h>> {
    h.class(
        "Greedy",
        Some((
            Rc::new(move |heap: &'h Heap, _: &ObjRef<'h>| {
                let mut mine = Vec::new();
                loop {
                    match heap.str("0123456789abcdef0123456789abcdef0123456789") {
                        Ok(s) => mine.push(s),
                        Err(e) => {
                            if let Some(k) = &kept {
                                k.borrow_mut().extend(mine);
                            }
                            return Err(e.to_string());
                        }
                    }
                }
            }),
            FinalizerKind::Safe,
        )),
    )
    .unwrap()
}

fn limited_heap() -> std::pin::Pin<Box<Heap>> {
    support::heap_with(pyheap::Config {
        arena_size: 64 << 10,
        pool_size: 4 << 10,
        limit: Some(1 << 20),
        ..support::config()
    })
}

#[test]
fn a_finalizer_that_allocates_until_the_limit_gets_an_error_and_the_memory_back() {
    let h = limited_heap();
    let reports = Rc::new(RefCell::new(Vec::<String>::new()));
    let r = reports.clone();
    h.gc().rc().set_unraisable_hook(Some(Box::new(move |u| {
        r.borrow_mut().push(u.message.clone())
    })));
    let class = greedy_class(&h, None);
    let before = h.stats().alloc.raw.bytes_in_use;
    // Once through reference counting, once through the collector.
    drop(h.instance(&class).unwrap());
    let o = h.instance(&class).unwrap();
    h.setattr(&o, "me", o.clone()).unwrap();
    drop(o);
    h.gc().collect(2).unwrap();
    assert_eq!(reports.borrow().len(), 2);
    assert!(
        reports.borrow().iter().all(|m| m.contains("out of memory")),
        "{:?}",
        reports.borrow()
    );
    let s = h.stats().alloc.raw;
    assert!(s.failed_requests >= 2);
    assert!(
        s.bytes_in_use <= before + (64 << 10),
        "the strings were freed with the finalizer's frame"
    );
    // The heap is usable again.
    let l = h.list(vec![h.str("fits").unwrap()]).unwrap();
    drop(l);
    h.gc().rc().set_unraisable_hook(None);
    drop(class);
    support::finish(h);
}

#[test]
fn a_finalizer_that_fills_the_heap_leaves_it_full_but_consistent_until_freed() {
    let h = limited_heap();
    h.gc().rc().set_unraisable_hook(Some(Box::new(|_| {})));
    let kept: Shared<'_> = Rc::default();
    let class = greedy_class(&h, Some(kept.clone()));
    drop(h.instance(&class).unwrap());
    assert!(!kept.borrow().is_empty());
    support::check_consistent(&h);
    // Full: at most the pool the instance's death emptied is left, then every request of the
    // same size is refused, with an error.
    let mut more = Vec::new();
    let err = loop {
        match h.str("0123456789abcdef0123456789abcdef0123456789") {
            Ok(s) => more.push(s),
            Err(e) => break e,
        }
        assert!(more.len() < 200, "the heap was not full");
    };
    assert!(matches!(err, pyheap::HeapError::OutOfMemory(_)));
    // Freeing makes room.
    drop(more);
    kept.borrow_mut().clear();
    assert!(h.str("0123456789abcdef0123456789abcdef0123456789").is_ok());
    h.gc().rc().set_unraisable_hook(None);
    drop((class, kept));
    support::finish(h);
}

// ---- dropping everything -----------------------------------------------------------------

/// A class whose finalizer drops every root the test keeps in `roots`.
fn dropping_class<'h>(h: &'h Heap, roots: &Shared<'h>) -> Ref<'h, pyheap::object::Class<'h>> {
    let roots = roots.clone();
    h.class(
        "DropsAll",
        Some((
            Rc::new(move |_: &Heap, _: &ObjRef<'_>| {
                let all = std::mem::take(&mut *roots.borrow_mut());
                drop(all);
                Ok(())
            }),
            FinalizerKind::Safe,
        )),
    )
    .unwrap()
}

/// Rings of instances and lists, all reachable only from `roots`, half of them with a
/// finalizer that drops `roots`.
fn rings<'h>(h: &'h Heap, class: &Ref<'h, pyheap::object::Class<'h>>, roots: &Shared<'h>) {
    let plain = h.class("Plain", None).unwrap();
    for ring in 0..20 {
        let first = h
            .instance(if ring % 2 == 0 { class } else { &plain })
            .unwrap();
        let mut last = first.clone();
        for i in 0..50 {
            let next = if i % 3 == 0 {
                h.list(vec![]).unwrap().erase()
            } else {
                h.instance(&plain).unwrap()
            };
            match last.downcast_ref::<pyheap::object::List>() {
                Some(l) => l.append(next.clone()).unwrap(),
                None => h.setattr(&last, "next", next.clone()).unwrap(),
            }
            last = next;
        }
        match last.downcast_ref::<pyheap::object::List>() {
            Some(l) => l.append(first.clone()).unwrap(),
            None => h.setattr(&last, "next", first.clone()).unwrap(),
        }
        roots.borrow_mut().push(first);
    }
}

#[test]
fn a_finalizer_that_drops_everything_during_a_collection_leaves_a_consistent_heap() {
    let h = support::heap();
    let roots: Shared<'_> = Rc::default();
    let class = dropping_class(&h, &roots);
    rings(&h, &class, &roots);
    // Half the rings garbage: their finalizers run inside the collection and drop the rest.
    let half: Vec<_> = roots.borrow_mut().drain(..10).collect();
    drop(half);
    h.gc().collect(2).unwrap();
    assert!(roots.borrow().is_empty(), "a finalizer dropped the roots");
    support::check_consistent(&h);
    h.gc().collect(2).unwrap();
    drop((class, roots));
    support::finish(h);
}

#[test]
fn a_finalizer_that_drops_everything_during_a_cascade_leaves_a_consistent_heap() {
    let h = support::heap();
    let roots: Shared<'_> = Rc::default();
    let class = dropping_class(&h, &roots);
    rings(&h, &class, &roots);
    // An instance outside the rings, freed by counting: its finalizer drops every ring while
    // the pending stack holds the instance's own references.
    let trigger = h.instance(&class).unwrap();
    h.setattr(
        &trigger,
        "x",
        h.list(vec![h.list(vec![]).unwrap().erase()])
            .unwrap()
            .erase(),
    )
    .unwrap();
    drop(trigger);
    assert!(roots.borrow().is_empty());
    support::check_consistent(&h);
    assert!(h.gc().collect(2).unwrap() > 0, "the rings are garbage now");
    drop((class, roots));
    support::finish(h);
}

// ---- collecting again, and other gc calls from inside a collection ------------------------

#[test]
fn finalizers_and_callbacks_that_call_the_gc_module_mid_collection_are_harmless() {
    let h = support::heap();
    let results = Rc::new(RefCell::new(Vec::new()));
    let r = results.clone();
    let class = h
        .class(
            "Meddler",
            Some((
                Rc::new(move |heap: &Heap, this: &ObjRef<'_>| {
                    let gc = heap.gc();
                    r.borrow_mut().push(gc.collect(2).unwrap());
                    gc.freeze();
                    gc.unfreeze();
                    gc.set_debug(pyheap::DebugFlags::SAVEALL);
                    gc.set_debug(pyheap::DebugFlags::empty());
                    gc.clear_garbage();
                    gc.untrack(this);
                    gc.track(this);
                    gc.set_threshold(1, 1, 1);
                    let _ = gc.get_objects(None).unwrap();
                    let _ = gc.get_referrers(this);
                    let _ = gc.get_referents(this);
                    Ok(())
                }),
                FinalizerKind::Safe,
            )),
        )
        .unwrap();
    let rr = results.clone();
    h.gc()
        .add_callback(Box::new(move |_, _| rr.borrow_mut().push(99)));
    let weak_target = h.list(vec![]).unwrap();
    let hp: &Heap = &h;
    let _w = h
        .weakref(
            weak_target.as_obj(),
            Some(Box::new(move |_| {
                assert_eq!(hp.gc().collect(1).unwrap(), 0, "no nested collection");
            })),
        )
        .unwrap();
    for _ in 0..50 {
        let o = h.instance(&class).unwrap();
        h.setattr(&o, "me", o.clone()).unwrap();
        h.setattr(&o, "peer", weak_target.clone().erase()).unwrap();
    }
    drop(weak_target);
    let live_before = h.gc().rc().stats().live;
    // Each finalizer untracks and tracks its own object: out of the garbage, as
    // PyObject_GC_UnTrack takes an object out of CPython's unreachable list, so neither
    // counted as collected nor freed by this collection.
    assert_eq!(h.gc().collect(2).unwrap(), 0);
    assert_eq!(h.gc().rc().stats().live, live_before);
    // Finalized now, still in their self-cycles: the next full collection frees the 50 and
    // the list they share (and runs no finalizer again).
    h.gc().set_threshold(0, 0, 0);
    let finalizer_runs = || results.borrow().iter().filter(|&&n| n != 99).count();
    let runs = finalizer_runs();
    assert_eq!(h.gc().collect(2).unwrap(), 51);
    assert_eq!(finalizer_runs(), runs, "no finalizer ran again");
    h.gc().set_threshold(1, 1, 1);
    // Inside the collection every nested collect returned 0 (the automatic ones the low
    // thresholds start afterwards may run for real).
    assert!(results
        .borrow()
        .iter()
        .filter(|&&n| n != 99)
        .take(50)
        .all(|&n| n == 0));
    h.gc().set_threshold(700, 10, 10);
    support::check_consistent(&h);
    drop((class, _w));
    support::finish(h);
}

#[test]
fn a_chain_of_finalizers_that_each_collect_does_not_recurse() {
    // Each death runs a finalizer that collects, while the next object waits on the pending
    // stack: ten thousand collections inside one deallocation, one frame of stack each.
    std::thread::Builder::new()
        .stack_size(1 << 20)
        .spawn(|| {
            let h = support::heap();
            let class = h
                .class(
                    "Collects",
                    Some((
                        Rc::new(|heap: &Heap, _: &ObjRef<'_>| {
                            heap.gc().collect(0).unwrap();
                            Ok(())
                        }),
                        FinalizerKind::Safe,
                    )),
                )
                .unwrap();
            let mut head = h.list(vec![]).unwrap().erase();
            for _ in 0..10_000 {
                let o = h.instance(&class).unwrap();
                h.setattr(&o, "next", head).unwrap();
                head = o;
            }
            let base = h.gc().rc().stats().finalizers_run;
            drop(head);
            assert_eq!(h.gc().rc().stats().finalizers_run - base, 10_000);
            drop(class);
            support::finish(h);
        })
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn an_unraisable_hook_that_allocates_and_collects_is_harmless() {
    let h = support::heap();
    // The hook is `'static`: it reaches the heap through a raw pointer.
    let heap: *const Heap = &*h;
    let seen = Rc::new(RefCell::new(0));
    let s = seen.clone();
    h.gc().rc().set_unraisable_hook(Some(Box::new(move |_| {
        *s.borrow_mut() += 1;
        // SAFETY: the heap is pinned and outlives the hook, which is uninstalled below before
        // the heap is dropped; only shared references are made.
        let hp = unsafe { &*heap };
        drop(hp.list(vec![hp.str("from the hook").unwrap()]).unwrap());
        hp.gc().collect(2).unwrap();
    })));
    let class = panicking_class(&h, "fails");
    // Reported from a deallocation (objects wait on the pending stack) and from a collection.
    drop(
        h.list(vec![
            h.instance(&class).unwrap(),
            h.list(vec![]).unwrap().erase(),
        ])
        .unwrap(),
    );
    let o = h.instance(&class).unwrap();
    h.setattr(&o, "me", o.clone()).unwrap();
    drop(o);
    h.gc().collect(2).unwrap();
    assert_eq!(*seen.borrow(), 2);
    h.gc().rc().set_unraisable_hook(None);
    drop(class);
    support::finish(h);
}
