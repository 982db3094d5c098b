//! When no young object is referenced from outside the young set (their counts add up to the
//! references between them), every young object is garbage: the collector frees the young
//! array where it stands, without a scan, pinning the counts as it goes. These tests pin what
//! that path must still get right; `scenarios.rs` covers the collections that need more.

mod common;

use std::cell::Cell;
use std::rc::Rc;

use common::*;
use gengc::GcHeap;
use refcount::ObjRef;

fn heap() -> GcHeap {
    GcHeap::new(Default::default()).unwrap()
}

/// `n` nodes in a ring, each also holding `extra`: returns nothing, the ring is garbage.
fn garbage_ring<'h>(h: &'h GcHeap, n: usize, extra: &[&ObjRef<'h>]) {
    let nodes: Vec<_> = (0..n).map(|_| h.alloc(Node::default()).unwrap()).collect();
    for (i, node) in nodes.iter().enumerate() {
        node.kids.push(nodes[(i + 1) % n].clone().erase());
        for e in extra {
            node.kids.push((*e).clone());
        }
    }
}

#[test]
fn garbage_releases_each_reference_it_holds_to_an_older_object_and_an_atom() {
    let h = heap();
    let old = h.alloc(Node::default()).unwrap().erase();
    let atom = h.alloc(Atom(7)).unwrap().erase();
    h.collect(2).unwrap();
    assert_eq!(h.generation_of(&old), Some(2));
    garbage_ring(&h, 10, &[&old, &old, &atom]);
    assert_eq!(old.refcnt(), 21);
    assert_eq!(atom.refcnt(), 11);

    assert_eq!(h.collect(0).unwrap(), 10);

    assert_eq!(
        old.refcnt(),
        1,
        "two references from each of ten nodes released"
    );
    assert_eq!(atom.refcnt(), 1);
    assert_eq!(h.rc().stats().live, 2);
    assert_eq!(
        h.generation_of(&old),
        Some(2),
        "the older object stays where it was"
    );
}

#[test]
fn an_older_object_held_only_by_the_garbage_dies_with_it_and_its_finalizer_runs() {
    let h = heap();
    let ran = Rc::new(Cell::new(0));
    let seen = ran.clone();
    let old = h
        .alloc(FinNode {
            kids: Default::default(),
            fin: Box::new(move |_| seen.set(seen.get() + 1)),
        })
        .unwrap()
        .erase();
    h.collect(2).unwrap();
    assert_eq!(h.generation_of(&old), Some(2));
    garbage_ring(&h, 3, &[&old]);
    drop(old);

    assert_eq!(h.collect(0).unwrap(), 3, "only the ring was young");

    assert_eq!(ran.get(), 1);
    assert_eq!(h.rc().stats().live, 0);
    assert_eq!(h.get_objects(None).unwrap().len(), 0);
}

#[test]
fn a_young_object_held_from_outside_keeps_what_it_reaches_alive() {
    // The counts do not add up (one reference from a handle): the scan must run, and the
    // object held keeps the whole ring alive.
    let h = heap();
    let nodes: Vec<_> = (0..5).map(|_| h.alloc(Node::default()).unwrap()).collect();
    for (i, node) in nodes.iter().enumerate() {
        node.kids.push(nodes[(i + 1) % 5].clone().erase());
    }
    let held = nodes[3].clone().erase();
    drop(nodes);

    assert_eq!(h.collect(2).unwrap(), 0);
    assert_eq!(h.rc().stats().live, 5);
    drop(held);
    assert_eq!(h.collect(2).unwrap(), 5);
    assert_eq!(h.rc().stats().live, 0);
}

#[test]
fn freeing_the_whole_young_array_gives_every_block_back() {
    let h = heap();
    let n = if cfg!(miri) { 300 } else { 20_000 };
    let before = h.rc().allocator().stats();
    for _ in 0..3 {
        garbage_ring(&h, n, &[]);
        assert_eq!(h.collect(2).unwrap(), n as u64);
        assert_eq!(h.rc().stats().live, 0);
    }
    let after = h.rc().allocator().stats();
    assert_eq!(after.totals.bytes_in_blocks, before.totals.bytes_in_blocks);
    // The young array is empty again: the next collection finds nothing.
    assert_eq!(h.collect(2).unwrap(), 0);
}

#[test]
fn a_full_collection_keeps_its_survivors_in_generation_order_oldest_first() {
    let h = heap();
    let in_2 = h.alloc(Node::default()).unwrap().erase();
    h.collect(2).unwrap();
    let in_1 = h.alloc(Node::default()).unwrap().erase();
    h.collect(0).unwrap();
    let in_0 = h.alloc(Node::default()).unwrap().erase();
    assert_eq!(
        [&in_2, &in_1, &in_0].map(|o| h.generation_of(o)),
        [Some(2), Some(1), Some(0)]
    );
    garbage_ring(&h, 4, &[]);

    assert_eq!(h.collect(2).unwrap(), 4);

    let order: Vec<usize> = h
        .get_objects(Some(2))
        .unwrap()
        .iter()
        .map(|o| o.as_ptr().addr())
        .collect();
    let expected: Vec<usize> = [&in_2, &in_1, &in_0]
        .iter()
        .map(|o| o.as_ptr().addr())
        .collect();
    assert_eq!(order, expected);
    // Each survivor knows its new slot: untracking the middle one leaves the others in place.
    drop(in_1);
    assert_eq!(h.get_objects(Some(2)).unwrap().len(), 2);
    assert_eq!(h.generation_of(&in_0), Some(2));
    assert_eq!(h.generation_of(&in_2), Some(2));
}
