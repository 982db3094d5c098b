//! Traverse completeness: an object's `trace` must report every strong reference it holds. An
//! incomplete traverse is the classic source of leaks in CPython-style collectors: the
//! collector subtracts only the references it is shown, so a hidden one makes its target look
//! referenced from outside, and a cycle through it is never freed.
//!
//! The check: in a quiescent heap where the test holds exactly one handle to each object it
//! made, every container's reference count must equal the number of times the traces of all
//! those objects visit it, plus the test's handle. (Immortal objects, whose count never
//! changes, are skipped: the small ints, `None`, interned strings.) Atoms may be held without
//! being visited, as in CPython, whose dicts with str keys do not report their keys: an atom
//! can be in no cycle, so the collector needs no account of it; its count must only be at least
//! what the traces report. It runs over every type of the object model and every layout of
//! its tables (dicts with and without container keys, split and combined instances), and
//! catches a test-local type whose trace forgets a reference.

mod support;

use std::collections::HashMap;
use std::rc::Rc;

use pyheap::object::{FinalizerKind, Kind};
use pyheap::refcount::{Object, RefCell1, Trace, TypeInfo, Visit};
use pyheap::{Heap, ObjRef};

/// What the check found wrong: one line per object whose count its referrers' traces do not
/// explain.
fn traverse_mismatches(h: &Heap, objects: &[ObjRef<'_>]) -> Vec<String> {
    let mut visits: HashMap<usize, u32> = HashMap::new();
    for o in objects {
        for r in h.gc().get_referents(o) {
            *visits.entry(r.as_ptr().addr()).or_default() += 1;
        }
    }
    let mut handles: HashMap<usize, u32> = HashMap::new();
    for o in objects {
        *handles.entry(o.as_ptr().addr()).or_default() += 1;
    }
    let mut wrong = Vec::new();
    for o in objects {
        if o.header().is_immortal() {
            continue;
        }
        let addr = o.as_ptr().addr();
        let explained = visits.get(&addr).copied().unwrap_or(0) + handles[&addr];
        let atom = !o.type_info().container;
        if o.refcnt() != explained && !(atom && o.refcnt() > explained) {
            wrong.push(format!(
                "{} at {addr:#x}: count {}, but traces and handles account for {explained}",
                o.type_info().name,
                o.refcnt()
            ));
        }
    }
    wrong
}

fn assert_traverse_complete(h: &Heap, objects: &[ObjRef<'_>]) {
    let wrong = traverse_mismatches(h, objects);
    assert!(
        wrong.is_empty(),
        "incomplete traverse:\n{}",
        wrong.join("\n")
    );
}

/// One object of every kind of the model (and of each instance type), referencing one another
/// through every kind of slot: list items, dict keys and values, attributes, tuple items,
/// opaque slots; with cycles, and weakrefs (which hold no strong reference).
fn every_kind<'h>(h: &'h Heap) -> Vec<ObjRef<'h>> {
    let int = h.int(1_000_000).unwrap();
    let float = h.float(2.5).unwrap();
    let s = h.str("a str").unwrap();
    let bytes = h.bytes(b"some bytes").unwrap();
    let plain = h.class("Plain", None).unwrap();
    let safe = h
        .class("Safe", Some((Rc::new(|_, _| Ok(())), FinalizerKind::Safe)))
        .unwrap();
    let legacy = h
        .class(
            "Legacy",
            Some((Rc::new(|_, _| Ok(())), FinalizerKind::Legacy)),
        )
        .unwrap();
    let list = h.list(vec![int.clone(), float.clone(), h.none()]).unwrap();
    let dict = h.dict().unwrap();
    let key = h.tuple(&[h.int(7).unwrap(), s.clone()]).unwrap();
    let atoms = h.tuple(&[int.clone(), bytes.clone()]).unwrap(); // untracked: atoms only
    let boxes = h
        .tuple(&[list.clone().erase(), dict.clone().erase()])
        .unwrap();
    let a = h.instance(&plain).unwrap();
    let b = h.instance(&safe).unwrap();
    let c = h.instance(&legacy).unwrap();
    let opaque = h
        .opaque("function", 200, &[a.clone(), s.clone(), bytes.clone()])
        .unwrap();
    let weak_plain = h.weakref(&a, None).unwrap();
    let weak_cb = h.weakref(&int, Some(Box::new(|_| {}))).unwrap();

    // Dict keys of every hashable kind, values of every kind (itself included).
    dict.set(h.int(1).unwrap(), s.clone()).unwrap();
    dict.set(s.clone(), list.clone().erase()).unwrap();
    dict.set(key.clone().erase(), dict.clone().erase()).unwrap();
    dict.set(float.clone(), opaque.clone()).unwrap();
    dict.set(bytes.clone(), weak_plain.clone().erase()).unwrap();
    dict.set(h.none(), c.clone()).unwrap();
    // A dict of atom keys only (its keys are not visited) and one whose only container key
    // came and went (the flag stays until a rebuild: visiting more is still complete).
    let atom_keys = h.dict().unwrap();
    atom_keys.set(s.clone(), dict.clone().erase()).unwrap();
    atom_keys.set(int.clone(), a.clone()).unwrap();
    let gone = h.dict().unwrap();
    gone.set(key.clone().erase(), h.none()).unwrap();
    gone.set(bytes.clone(), list.clone().erase()).unwrap();
    assert!(gone.delete(key.as_obj()).unwrap());
    // Keys hashed by identity (instances, classes, opaque stand-ins), in a table large enough
    // for the long header (more than 85 entries); the table is then visited keys and all.
    let by_identity = h.dict().unwrap();
    by_identity.set(b.clone(), a.clone()).unwrap();
    by_identity.set(opaque.clone(), h.none()).unwrap();
    by_identity.set(plain.clone().erase(), c.clone()).unwrap();
    for i in 0..100 {
        by_identity
            .set(h.int(1000 + i).unwrap(), s.clone())
            .unwrap();
    }
    // Instances of one class: `a` in the class's key order (split), `d` against it and
    // `e` with a tuple as a name (both combined: a table of their own).
    let d = h.instance(&plain).unwrap();
    let e = h.instance(&plain).unwrap();
    // A split instance of another class with many attributes: values blocks of every even
    // capacity up to the largest, each one's capacity kept in the attribute word.
    let wide = h.instance(&h.class("Wide", None).unwrap()).unwrap();
    for name in &support::NAMES[..pyheap::object::MAX_SHARED_KEYS] {
        h.setattr(&wide, name, list.clone().erase()).unwrap();
    }
    // Attributes: a cycle through every instance type, and references to the rest.
    h.setattr(&a, "next", b.clone()).unwrap();
    h.setattr(&b, "next", c.clone()).unwrap();
    h.setattr(&c, "next", a.clone()).unwrap();
    h.setattr(&a, "me", a.clone()).unwrap();
    h.setattr(&b, "x", boxes.clone().erase()).unwrap();
    h.setattr(&c, "y", weak_cb.clone().erase()).unwrap();
    h.setattr(&c, "attr", plain.clone().erase()).unwrap();
    h.setattr(&d, "me", d.clone()).unwrap();
    h.setattr(&d, "next", a.clone()).unwrap();
    let e_inst = pyheap::object::as_instance(&e).unwrap();
    e_inst.set_attr(key.clone().erase(), e.clone()).unwrap();
    e_inst
        .set_attr(s.clone(), atom_keys.clone().erase())
        .unwrap();
    let split = |o: &ObjRef<'_>| pyheap::object::as_instance(o).unwrap().has_split_attrs();
    assert!(
        split(&a) && split(&wide) && !split(&d) && !split(&e),
        "both layouts are covered"
    );
    list.append(list.clone().erase()).unwrap();
    list.append(atoms.clone().erase()).unwrap();
    list.append(opaque.clone()).unwrap();
    opaque
        .downcast_ref::<pyheap::object::Opaque>()
        .unwrap()
        .set_ref(1, Some(dict.clone().erase()))
        .unwrap();

    let objects = vec![
        int,
        float,
        s,
        bytes,
        plain.erase(),
        safe.erase(),
        legacy.erase(),
        list.erase(),
        dict.erase(),
        key.erase(),
        atoms.erase(),
        boxes.erase(),
        a,
        b,
        c,
        d,
        e,
        wide,
        by_identity.erase(),
        atom_keys.erase(),
        gone.erase(),
        opaque,
        weak_plain.erase(),
        weak_cb.erase(),
        h.none(),
    ];
    let kinds: std::collections::HashSet<Kind> = objects.iter().map(Kind::of).collect();
    assert_eq!(kinds.len(), 12, "every kind of the model: {kinds:?}");
    objects
}

/// Drops the objects and checks that nothing of them is left.
fn release(h: &Heap, objects: Vec<ObjRef<'_>>) {
    drop(objects);
    h.gc().collect(2).unwrap();
}

#[test]
fn the_traverse_of_every_type_reports_every_reference_it_holds() {
    let h = support::heap();
    let objects = every_kind(&h);
    assert_traverse_complete(&h, &objects);
    release(&h, objects);
    support::finish(h);
}

#[test]
fn traverses_stay_complete_through_mutation_and_collection() {
    let h = support::heap();
    let mut objects = every_kind(&h);
    // Collections move the containers between generations; deletions compact tables.
    h.gc().collect(0).unwrap();
    assert_traverse_complete(&h, &objects);
    let dict = objects
        .iter()
        .find(|o| o.is::<pyheap::object::Dict>())
        .unwrap()
        .clone();
    let d = dict.downcast_ref::<pyheap::object::Dict>().unwrap();
    for i in 0..20 {
        d.set(h.int(100 + i).unwrap(), h.list(vec![]).unwrap().erase())
            .unwrap();
    }
    for i in 0..18 {
        assert!(d.delete(&h.int(100 + i).unwrap()).unwrap());
    }
    let list = objects
        .iter()
        .find(|o| o.is::<pyheap::object::List>())
        .unwrap()
        .clone();
    let l = list.downcast_ref::<pyheap::object::List>().unwrap();
    l.pop_at(0);
    l.insert(1, dict.clone()).unwrap();
    l.set(0, list.clone()).unwrap();
    drop((dict, list));
    // The two lists the dict still holds are objects of their own: give the test a handle.
    let new_lists: Vec<ObjRef<'_>> = h
        .gc()
        .get_objects(None)
        .unwrap()
        .into_iter()
        .filter(|o| o.is::<pyheap::object::List>() && !objects.iter().any(|p| p.ptr_eq(o)))
        .collect();
    assert_eq!(new_lists.len(), 2);
    objects.extend(new_lists);
    h.gc().collect(2).unwrap();
    assert_traverse_complete(&h, &objects);
    h.gc().freeze();
    assert_traverse_complete(&h, &objects);
    h.gc().unfreeze();
    release(&h, objects);
    support::finish(h);
}

// ---- the check catches an incomplete traverse --------------------------------------------

/// A test-local type holding two references whose trace forgets the second: the bug the check
/// is for.
struct ForgetfulPair<'h> {
    first: RefCell1<'h>,
    second: RefCell1<'h>,
}

impl Trace for ForgetfulPair<'_> {
    fn trace(&self, v: &mut Visit<'_>) {
        self.first.trace(v); // `second` is forgotten
    }
    fn clear(&self) {
        self.first.set(None);
        self.second.set(None);
    }
}

static FORGETFUL_PAIR: TypeInfo = TypeInfo::new::<ForgetfulPair<'static>>("forgetful_pair");
impl Object for ForgetfulPair<'_> {
    const CONTAINER: bool = true;
    fn type_info() -> &'static TypeInfo {
        &FORGETFUL_PAIR
    }
}

#[test]
fn the_check_catches_a_trace_that_forgets_a_reference_and_the_leak_it_causes() {
    let h = support::heap();
    let seen = h.str("seen").unwrap();
    let target = h.list(vec![]).unwrap().erase();
    let pair = h
        .gc()
        .alloc(ForgetfulPair {
            first: RefCell1::new(Some(seen.clone())),
            second: RefCell1::new(Some(target.clone())),
        })
        .unwrap()
        .erase();
    let objects = vec![pair, target, seen];
    let wrong = traverse_mismatches(&h, &objects);
    assert_eq!(wrong.len(), 1, "exactly the hidden target: {wrong:?}");
    assert!(wrong[0].starts_with("list"), "{wrong:?}");
    let [pair, target, _] = <[ObjRef<'_>; 3]>::try_from(objects).unwrap();
    let target = target.downcast::<pyheap::object::List>().unwrap();

    // The consequence: a cycle through the forgotten reference is never collected.
    target.append(pair.clone()).unwrap();
    let weak = h.weakref(target.as_obj(), None).unwrap();
    drop((pair, target));
    assert_eq!(
        h.gc().collect(2).unwrap(),
        0,
        "the collector cannot see the cycle"
    );
    assert!(weak.upgrade().is_some(), "leaked");
    // Break it by hand so that the heap can finish clean.
    let target = weak.upgrade().unwrap();
    target
        .downcast_ref::<pyheap::object::List>()
        .unwrap()
        .clear();
    drop((target, weak));
    h.gc().collect(2).unwrap();
    support::finish(h);
}
