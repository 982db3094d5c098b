//! Leak checks through the heap's own accounting: after a workload of every kind has let go
//! of everything, the heap holds what a fresh one holds (its immortals, their blocks, their
//! arena): no object, no block, no arena more. Every reliability test ends with this check
//! (`support::finish`); these tests push it hardest and show that it catches a leak.
//! `tests/leaks_maps.rs` and `tests/leaks_malloc.rs` watch the drop itself from outside.

mod support;

use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;

use pyheap::object::FinalizerKind;
use pyheap::{Config, DebugFlags, Heap, ObjRef};

/// Objects of every kind, many of them in cycles, with finalizers (one resurrecting its object
/// into `kept`), weakrefs with callbacks, frozen objects, `gc.garbage` (legacy cycles and
/// DEBUG_SAVEALL), and free lists filled: every place a heap can hold on to something.
fn everything<'h>(h: &'h Heap, kept: &Rc<RefCell<Vec<ObjRef<'h>>>>, scale: i64) {
    let k = kept.clone();
    let resurrecting = h
        .class(
            "Phoenix",
            Some((
                Rc::new(move |_: &Heap, this: &ObjRef<'h>| {
                    k.borrow_mut().push(this.clone());
                    Ok(())
                }),
                FinalizerKind::Safe,
            )),
        )
        .unwrap();
    let legacy = h
        .class(
            "Legacy",
            Some((Rc::new(|_, _| Ok(())), FinalizerKind::Legacy)),
        )
        .unwrap();
    let plain = h.class("Plain", None).unwrap();
    let mut root = h.list(vec![]).unwrap();
    let mut frozen_root = None;
    for i in 0..scale {
        let class = [&plain, &resurrecting, &legacy][(i % 3) as usize];
        let o = h.instance(class).unwrap();
        h.setattr(&o, "me", o.clone()).unwrap();
        h.setattr(&o, "x", h.int(i * 1_000).unwrap()).unwrap();
        h.setattr(&o, "y", h.str(&format!("text {i}")).unwrap())
            .unwrap();
        let d = h.dict().unwrap();
        d.set(h.int(i % 7).unwrap(), o.clone()).unwrap();
        d.set(h.str("self").unwrap(), d.clone().erase()).unwrap();
        let t = h
            .tuple(&[d.clone().erase(), h.float(i as f64).unwrap()])
            .unwrap();
        let w = h.weakref(&o, Some(Box::new(|_| {}))).unwrap();
        let big = h.bytes(&vec![1; 600 + i as usize % 300]).unwrap(); // a direct block
        let opaque = h
            .opaque("frame", 700, &[t.erase(), w.erase(), big])
            .unwrap();
        root.append(opaque).unwrap();
        if i == scale / 2 {
            // The first half (a cycle through its root) frozen; the second half collected
            // into `gc.garbage` below.
            root.append(root.clone().erase()).unwrap();
            h.gc().freeze();
            frozen_root = Some(std::mem::replace(&mut root, h.list(vec![]).unwrap()));
        }
    }
    drop(frozen_root);
    h.gc().set_debug(DebugFlags::SAVEALL);
    root.append(root.clone().erase()).unwrap();
    drop(root);
    h.gc().collect(2).unwrap();
    h.gc().set_debug(DebugFlags::empty());
    // Fill the free lists.
    let floats: Vec<_> = (0..500).map(|i| h.float(f64::from(i)).unwrap()).collect();
    let lists: Vec<_> = (0..500).map(|_| h.list(vec![]).unwrap()).collect();
    drop((floats, lists));
}

#[test]
fn a_heap_that_held_everything_holds_only_its_immortals_once_let_go() {
    let h = support::heap();
    let kept = Rc::default();
    everything(&h, &kept, 300);
    let s = h.stats();
    assert!(
        s.gc.garbage > 0 && s.gc.frozen > 0,
        "the workload reached every cache"
    );
    assert!(!kept.borrow().is_empty(), "and resurrected objects");
    kept.borrow_mut().clear();
    drop(kept);
    support::finish(h);
}

#[test]
fn a_heap_that_grew_through_many_arenas_gives_every_one_back() {
    let h = support::heap_with(Config {
        arena_size: 64 << 10,
        pool_size: 4 << 10,
        ..support::config()
    });
    let fresh = support::fresh_holdings(h.config());
    let kept = Rc::default();
    everything(&h, &kept, 4_000);
    let s = h.stats().alloc;
    if s.raw.backend == pyheap::Backend::Arena {
        assert!(
            s.arenas.highwater >= 20,
            "{} arenas at most",
            s.arenas.highwater
        );
    }
    kept.borrow_mut().clear();
    drop(kept);
    let released = support::holdings(&h);
    assert_eq!(released, fresh);
    // The raw heap's own counters agree: every arena mapped since the fresh state went back.
    let raw = h.stats().alloc.raw;
    assert_eq!(raw.arenas_allocated - raw.arenas_reclaimed, fresh.arenas);
    assert_eq!(raw.arenas_current, fresh.arenas);
    assert_eq!(raw.bytes_in_use, fresh.bytes_in_use);
    support::finish(h);
}

/// Common garbage (no finalizer, no weakref) of every container kind and of sizes from the
/// smallest class to direct blocks, in runs of one type and mixed: what the collector frees
/// in bulk, by the block layout it notes, with whole pools emptied at once.
fn common_garbage<'h>(h: &'h Heap, n: i64) {
    let plain = h.class("Plain", None).unwrap();
    let mut previous = h.list(vec![]).unwrap().erase();
    let first = previous.clone();
    for i in 0..n {
        // A run of one type and size, then one of every kind.
        let items: Vec<ObjRef<'h>> = (0..=(i % 3)).map(|_| previous.clone()).collect();
        let small = h.tuple(&items).unwrap().erase();
        let mut big_items = vec![small];
        big_items.extend((0..70).map(|k| h.int(k).unwrap()));
        let big = h.tuple(&big_items).unwrap().erase(); // over 512 bytes: a direct block
        let o = h.instance(&plain).unwrap();
        h.setattr(&o, "next", big).unwrap();
        let d = h.dict().unwrap();
        d.set(h.str("o").unwrap(), o).unwrap();
        let l = h.list(vec![d.erase(), h.float(i as f64).unwrap()]).unwrap();
        previous = l.erase();
    }
    // Close the chain into one cycle, and drop it.
    first
        .downcast_ref::<pyheap::object::List>()
        .unwrap()
        .append(previous)
        .unwrap();
}

#[test]
fn common_garbage_of_every_kind_and_size_is_given_back_whole() {
    for config in [
        support::config(),
        Config {
            arena_size: 64 << 10,
            pool_size: 4 << 10,
            ..support::config()
        },
    ] {
        let h = support::heap_with(config);
        common_garbage(&h, 500);
        let found = h.gc().collect(2).unwrap();
        // Five containers a turn (two tuples, an instance, a dict, a list) and the first list.
        assert_eq!(found, 500 * 5 + 1, "the whole cycle is garbage");
        support::finish(h);
    }
}

#[test]
fn the_leak_check_catches_an_object_left_behind() {
    let h = support::heap();
    // A handle lost: its count never falls. (A str: it owns nothing outside the heap, so the
    // heap's drop still frees all of it, and LeakSanitizer has nothing to report.)
    std::mem::forget(h.str("never freed").unwrap());
    let caught = catch_unwind(AssertUnwindSafe(|| support::assert_released(&h)));
    let message = caught.expect_err("the leak is found");
    let text = message
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(text.contains("a difference is a leak"), "{text}");
    let strs = support::NAMES.len() + 1;
    assert!(
        text.contains(&format!(r#"("str", {strs})"#)),
        "the leaked str is counted: {text}"
    );
}

#[test]
fn the_leak_check_catches_a_cycle_hidden_from_the_collector() {
    // A finalizer closure that holds a handle is a reference no trace reports: the collector
    // cannot free a cycle through it, and the leak check sees what is left.
    let h = support::heap();
    let holder: Rc<RefCell<Option<ObjRef<'_>>>> = Rc::default();
    let hold = holder.clone();
    let class = h
        .class(
            "Holds",
            Some((
                Rc::new(move |_: &Heap, _: &ObjRef<'_>| {
                    let _ = &hold; // the closure keeps `holder` alive
                    Ok(())
                }),
                FinalizerKind::Safe,
            )),
        )
        .unwrap();
    let o = h.instance(&class).unwrap();
    *holder.borrow_mut() = Some(o.clone()); // class -> closure -> holder -> instance -> class
    drop((o, class));
    let caught = catch_unwind(AssertUnwindSafe(|| support::assert_released(&h)));
    assert!(caught.is_err(), "the hidden cycle is a leak");
    // Broken by hand, it goes.
    holder.borrow_mut().take();
    drop(holder);
    support::finish(h);
}
