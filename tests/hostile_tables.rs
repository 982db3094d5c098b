//! Finalizers that change the very dict or instance whose operation is dropping them: every
//! value a table or values block gives up is dropped after the table is consistent again, so
//! the finalizer may grow, shrink, clear or re-enter it. Cheap enough for Miri, which checks
//! that no reference into a freed block is used.

use std::cell::RefCell;
use std::rc::Rc;

use pyheap::object::{as_instance, Dict, FinalizerKind};
use pyheap::{Config, Heap, ObjRef, Ref};

type Target<'h> = Rc<RefCell<Option<ObjRef<'h>>>>;

/// A class whose instances, when they die, insert `n` keys into the target dict (or set `n`
/// attributes on the target instance) and delete a few.
fn meddler<'h>(h: &'h Heap, target: &Target<'h>, n: i64) -> Ref<'h, pyheap::object::Class<'h>> {
    let target = target.clone();
    h.class(
        "Meddler",
        Some((
            Rc::new(move |h: &'h Heap, _this: &ObjRef<'h>| {
                let Some(t) = target.borrow().clone() else {
                    return Ok(());
                };
                if let Some(d) = t.downcast_ref::<Dict>() {
                    for k in 0..n {
                        d.set(h.int(1000 + k).unwrap(), h.none()).unwrap();
                    }
                    d.delete(&h.int(1000).unwrap()).unwrap();
                } else if let Some(i) = as_instance(&t) {
                    for k in 0..n {
                        let name = if k % 3 == 0 {
                            h.int(2000 + k).unwrap() // a non-str name: a table of its own
                        } else {
                            h.intern(&format!("m{k}")).unwrap()
                        };
                        i.set_attr(name, h.none()).unwrap();
                    }
                    i.del_attr(&h.intern("m1").unwrap()).unwrap();
                }
                Ok(())
            }),
            FinalizerKind::Safe,
        )),
    )
    .unwrap()
}

const N: i64 = if cfg!(miri) { 12 } else { 40 };

#[test]
fn a_finalizer_run_by_a_dict_operation_may_change_that_dict() {
    let heap = Heap::new(Config::default()).unwrap();
    let h = &*heap;
    let target: Target<'_> = Rc::default();
    let d = h.dict().unwrap();
    *target.borrow_mut() = Some(d.clone().erase());
    let class = meddler(h, &target, N);
    let fill = || {
        for k in 0..12 {
            d.set(h.int(k).unwrap(), h.instance(&class).unwrap())
                .unwrap();
        }
    };
    // Replacing a value, deleting a key, clearing: each drops a meddler.
    fill();
    d.set(h.int(3).unwrap(), h.none()).unwrap();
    assert!(d.delete(&h.int(4).unwrap()).unwrap());
    d.clear();
    assert_eq!(d.len(), N as usize - 1, "the last finalizers' keys");
    fill();
    // The collector's clear of the dict, in a cycle with it (the finalizers, run before,
    // find no target).
    d.set(h.str("me").unwrap(), d.clone().erase()).unwrap();
    target.borrow_mut().take();
    drop(d);
    h.gc().collect(2).unwrap();
    h.gc().collect(2).unwrap();
}

#[test]
fn a_finalizer_run_by_an_attribute_operation_may_change_that_instance() {
    let heap = Heap::new(Config::default()).unwrap();
    let h = &*heap;
    let target: Target<'_> = Rc::default();
    let plain = h.class("Plain", None).unwrap();
    for combined in [false, true] {
        let inst = h.instance(&plain).unwrap();
        *target.borrow_mut() = Some(inst.clone());
        let class = meddler(h, &target, N);
        let i = as_instance(&inst).unwrap();
        let names = ["a", "b", "c", "d"];
        if combined {
            i.set_attr(h.int(7).unwrap(), h.none()).unwrap();
        }
        for name in names {
            h.setattr(&inst, name, h.instance(&class).unwrap()).unwrap();
        }
        assert_eq!(i.has_split_attrs(), !combined);
        // Replacing, deleting: each drops a meddler that sets and deletes attributes.
        h.setattr(&inst, "a", h.none()).unwrap();
        assert!(i.del_attr(&h.intern("b").unwrap()).unwrap());
        // Re-setting a deleted name below a filled one moves the attributes to a table.
        h.setattr(&inst, "b", h.instance(&class).unwrap()).unwrap();
        assert!(i.get_attr(&h.intern("m2").unwrap()).unwrap().is_some());
        // The collector's clear, in a cycle.
        h.setattr(&inst, "me", inst.clone()).unwrap();
        target.borrow_mut().take();
        drop(inst);
        h.gc().collect(2).unwrap();
        h.gc().collect(2).unwrap();
    }
}
