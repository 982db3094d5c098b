//! Defects found by the adversarial review of the façade's object model, each pinned by the
//! behaviour it breaks.

use std::cell::RefCell;
use std::rc::Rc;

use pyheap::object::as_instance;
use pyheap::{Config, Heap, ObjRef};

/// An instance whose attributes are a table of their own (a non-str name makes it diverge).
fn combined_instance<'h>(h: &'h Heap) -> ObjRef<'h> {
    let class = h.class("C", None).unwrap();
    let inst = h.instance(&class).unwrap();
    let i = as_instance(&inst).unwrap();
    i.set_attr(h.int(1000).unwrap(), h.none()).unwrap();
    i.set_attr(h.intern("x").unwrap(), h.int(1).unwrap())
        .unwrap();
    assert!(!i.has_split_attrs());
    inst
}

#[test]
fn replacing_a_combined_attribute_whose_name_dies_with_a_callback_keeps_the_table() {
    let heap = Heap::new(Config::default()).unwrap();
    let h = &*heap;
    let inst = combined_instance(h);
    let grew = Rc::new(RefCell::new(false));
    // A name equal to "x" but not the stored one: the table keeps its own key and drops this
    // one. Its death runs a weakref callback that grows the instance's table (a new block).
    let name = h.str("x").unwrap();
    let target = inst.clone();
    let flag = grew.clone();
    let wr = h
        .weakref(
            &name,
            Some(Box::new(move |_| {
                let i = as_instance(&target).unwrap();
                for n in 0..40 {
                    i.set_attr(h.int(2000 + n).unwrap(), h.none()).unwrap();
                }
                *flag.borrow_mut() = true;
            })),
        )
        .unwrap();
    as_instance(&inst)
        .unwrap()
        .set_attr(name, h.int(2).unwrap())
        .unwrap();
    assert!(*grew.borrow());
    let i = as_instance(&inst).unwrap();
    assert_eq!(i.attrs().len(), 42);
    let x = i.get_attr(&h.intern("x").unwrap()).unwrap().unwrap();
    assert!(x.ptr_eq(&h.int(2).unwrap()));
    drop(wr);
}

/// Python compares an int with a float exactly: `2**53 + 1 != 2.0**53`, although the int
/// converted to a float rounds to it; `2**63 - 1 != 2.0**63` likewise.
#[test]
fn an_int_and_a_float_are_one_key_only_when_they_are_exactly_equal() {
    let heap = Heap::new(Config::default()).unwrap();
    let h = &*heap;
    for (int, float) in [
        ((1i64 << 53) + 1, (1u64 << 53) as f64),
        (i64::MAX, 2f64.powi(63)),
    ] {
        let d = h.dict().unwrap();
        d.set(h.int(int).unwrap(), h.str("int").unwrap()).unwrap();
        d.set(h.float(float).unwrap(), h.str("float").unwrap())
            .unwrap();
        assert_eq!(d.len(), 2, "{int} and {float:?} are two keys");
        let text = |k: ObjRef<'_>| {
            let v = d.get(&k).unwrap().unwrap();
            v.downcast_ref::<pyheap::object::Str>()
                .unwrap()
                .as_str()
                .to_owned()
        };
        assert_eq!(text(h.int(int).unwrap()), "int");
        assert_eq!(text(h.float(float).unwrap()), "float");
        assert!(!pyheap::object::key_eq(
            &h.int(int).unwrap(),
            &h.float(float).unwrap()
        ));
    }
    // Equal numbers stay one key: 1 == 1.0 == -0.0 + 1, 0 == -0.0.
    let d = h.dict().unwrap();
    d.set(h.int(1).unwrap(), h.none()).unwrap();
    d.set(h.float(1.0).unwrap(), h.none()).unwrap();
    d.set(h.int(0).unwrap(), h.none()).unwrap();
    d.set(h.float(-0.0).unwrap(), h.none()).unwrap();
    assert_eq!(d.len(), 2);
}

/// `getattr(o, name)` does not intern `name` in CPython (only `setattr` does): looking up a
/// name leaves nothing behind, however many names are asked for.
#[test]
fn getattr_of_a_missing_name_leaves_no_immortal_string_behind() {
    let heap = Heap::new(Config::default()).unwrap();
    let h = &*heap;
    let class = h.class("C", None).unwrap();
    let inst = h.instance(&class).unwrap();
    h.setattr(&inst, "present", h.int(1).unwrap()).unwrap();
    let blocks = h.allocated_blocks();
    for n in 0..100 {
        let name = format!("absent{n}");
        assert!(h.getattr(&inst, &name).unwrap().is_none());
        assert!(!h.is_interned(&h.str(&name).unwrap()));
    }
    assert_eq!(
        h.allocated_blocks(),
        blocks,
        "no block left per name looked up"
    );
    // A name that was set is found, interned or not.
    assert!(h.getattr(&inst, "present").unwrap().is_some());
    let i = as_instance(&inst).unwrap();
    assert!(i.get_attr(&h.str("present").unwrap()).unwrap().is_some());
}

/// A stand-in asked to be larger than any block can be is refused as out of memory, not a
/// panic (nor, in a release build, an overflowed size and a write past the block).
#[test]
fn an_opaque_object_larger_than_the_address_space_is_out_of_memory() {
    let heap = Heap::new(Config::default()).unwrap();
    let h = &*heap;
    let mut sizes = vec![usize::MAX, usize::MAX / 2, isize::MAX as usize + 1];
    if !cfg!(miri) {
        // These reach the allocator, which refuses them (Miri stops at such a request).
        sizes.extend([isize::MAX as usize, 1 << 62]);
    }
    for size in sizes {
        let r = h.opaque("huge", size, &[h.none()]);
        assert!(
            matches!(r, Err(pyheap::HeapError::OutOfMemory(_))),
            "size {size}: {r:?}"
        );
    }
    // The heap is still usable.
    let f = h.opaque("function", 152, &[h.none()]).unwrap();
    assert!(h.size_of(&f) >= 152);
}

/// CPython untracks a tuple whose items may none of them be tracked (`_PyTuple_MaybeUntrack`:
/// atoms, and tuples that are untracked themselves), so `((1,),)` is untracked after its
/// collections, and a dict holding it stays untracked (`MAINTAIN_TRACKING`). pyheap untracks
/// at birth; a tuple holding a tracked tuple, or any other container, stays tracked.
#[test]
fn a_tuple_of_untracked_tuples_is_untracked_and_does_not_track_a_dict() {
    let heap = Heap::new(Config::default()).unwrap();
    let h = &*heap;
    let inner = h.tuple(&[h.int(1000).unwrap()]).unwrap();
    assert!(!h.gc().is_tracked(inner.as_obj()));
    let outer = h.tuple(&[inner.clone().erase()]).unwrap();
    h.gc().collect(2).unwrap();
    h.gc().collect(2).unwrap();
    assert!(
        !h.gc().is_tracked(outer.as_obj()),
        "as CPython after its collections"
    );
    let d = h.dict().unwrap();
    d.set(h.str("t").unwrap(), outer.clone().erase()).unwrap();
    d.set(outer.clone().erase(), h.none()).unwrap();
    assert!(!h.gc().is_tracked(d.as_obj()));
    // Still tracked: a tuple holding a list, and one holding that (tracked) tuple.
    let boxed = h.tuple(&[h.list(vec![]).unwrap().erase()]).unwrap();
    let outer2 = h.tuple(&[boxed.clone().erase()]).unwrap();
    assert!(h.gc().is_tracked(boxed.as_obj()) && h.gc().is_tracked(outer2.as_obj()));
    d.set(h.str("u").unwrap(), outer2.erase()).unwrap();
    assert!(h.gc().is_tracked(d.as_obj()));
}

/// A deeply nested tuple is a key like any other: hashing and comparing it walk the nesting
/// without recursion, so it costs heap, not the thread's stack (CPython 3.11 recurses and
/// crashes on `hash` of a tuple nested a million deep; the library must not abort).
#[test]
fn a_deeply_nested_tuple_key_is_hashed_and_compared_without_recursion() {
    let depth = if cfg!(miri) { 200 } else { 200_000 };
    let heap = Heap::new(Config::default()).unwrap();
    let h = &*heap;
    let nest = |leaf: i64| {
        let mut t = h.tuple(&[h.int(leaf).unwrap()]).unwrap();
        for _ in 0..depth {
            t = h.tuple(&[t.erase(), h.none()]).unwrap();
        }
        t.erase()
    };
    let (a, b, c) = (nest(1), nest(1), nest(2));
    let d = h.dict().unwrap();
    d.set(a.clone(), h.int(10).unwrap()).unwrap();
    assert!(pyheap::object::key_eq(&a, &b));
    assert!(!pyheap::object::key_eq(&a, &c));
    assert_eq!(
        pyheap::object::key_hash(&a).unwrap(),
        pyheap::object::key_hash(&b).unwrap()
    );
    assert!(d.get(&b).unwrap().unwrap().ptr_eq(&h.int(10).unwrap()));
    assert!(d.get(&c).unwrap().is_none());
    // An unhashable element deep inside is still an error.
    let mut bad = h.tuple(&[h.list(vec![]).unwrap().erase()]).unwrap();
    for _ in 0..depth {
        bad = h.tuple(&[bad.erase()]).unwrap();
    }
    assert!(matches!(
        d.set(bad.erase(), h.none()),
        Err(pyheap::HeapError::Unhashable { type_name: "list" })
    ));
    // Small tuples hash as before the walk was iterative: equal tuples equally, across
    // ints and floats.
    let t1 = h.tuple(&[
        h.int(1).unwrap(),
        h.tuple(&[h.str("x").unwrap()]).unwrap().erase(),
    ]);
    let t2 = h.tuple(&[
        h.float(1.0).unwrap(),
        h.tuple(&[h.str("x").unwrap()]).unwrap().erase(),
    ]);
    let (t1, t2) = (t1.unwrap().erase(), t2.unwrap().erase());
    assert!(pyheap::object::key_eq(&t1, &t2));
    assert_eq!(
        pyheap::object::key_hash(&t1).unwrap(),
        pyheap::object::key_hash(&t2).unwrap()
    );
}
