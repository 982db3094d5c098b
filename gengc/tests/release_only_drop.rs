//! Garbage of a type whose drop only releases references
//! (`TypeInfo::drop_only_releases_refs`) is freed without dropping its payload when everything
//! it references is garbage of the same collection: those releases would fall on pinned counts
//! and change nothing. Any other member, and all garbage when the collection needed a scan, is
//! dropped as before, so that what it references outside the garbage is released.
//!
//! The test type counts its drops, which its promise says it would not do: the count is how
//! the tests see which drops were skipped.

mod common;

use std::cell::Cell;

use common::*;
use gengc::GcHeap;
use refcount::{ObjRef, Object, RefCell1, Trace, TypeInfo, Visit};

thread_local! {
    static DROPS: Cell<usize> = const { Cell::new(0) };
}

fn drops() -> usize {
    DROPS.with(Cell::get)
}

/// Two reference slots, like a two-element tuple.
#[derive(Default)]
struct Pair<'h> {
    a: RefCell1<'h>,
    b: RefCell1<'h>,
}
impl Trace for Pair<'_> {
    fn trace(&self, v: &mut Visit<'_>) {
        self.a.trace(v);
        self.b.trace(v);
    }
    fn clear(&self) {
        self.a.set(None);
        self.b.set(None);
    }
}
impl Drop for Pair<'_> {
    fn drop(&mut self) {
        DROPS.with(|d| d.set(d.get() + 1));
    }
}
// SAFETY: the trace reports each reference the payload holds, once, and dropping it only
// drops references (and counts, for the tests).
static PAIR: TypeInfo = unsafe {
    TypeInfo::new::<Pair<'static>>("pair")
        .assume_exact_trace()
        .drop_only_releases_refs()
};
impl Object for Pair<'_> {
    const CONTAINER: bool = true;
    fn type_info() -> &'static TypeInfo {
        &PAIR
    }
}

/// The same without the declaration.
#[derive(Default)]
struct PlainPair<'h>(Pair<'h>);
impl Trace for PlainPair<'_> {
    fn trace(&self, v: &mut Visit<'_>) {
        self.0.trace(v)
    }
}
// SAFETY: as Pair's.
static PLAIN_PAIR: TypeInfo =
    unsafe { TypeInfo::new::<PlainPair<'static>>("plain_pair").assume_exact_trace() };
impl Object for PlainPair<'_> {
    const CONTAINER: bool = true;
    fn type_info() -> &'static TypeInfo {
        &PLAIN_PAIR
    }
}

/// Three slots: another size, another kind.
#[derive(Default)]
struct Triple<'h>([RefCell1<'h>; 3]);
impl Trace for Triple<'_> {
    fn trace(&self, v: &mut Visit<'_>) {
        self.0.iter().for_each(|slot| slot.trace(v));
    }
}
// SAFETY: as Pair's.
static TRIPLE: TypeInfo = unsafe {
    TypeInfo::new::<Triple<'static>>("triple")
        .assume_exact_trace()
        .drop_only_releases_refs()
};
impl Object for Triple<'_> {
    const CONTAINER: bool = true;
    fn type_info() -> &'static TypeInfo {
        &TRIPLE
    }
}

fn heap() -> GcHeap {
    GcHeap::new(Default::default()).unwrap()
}

/// A ring of `n` pairs (slot `a` to the next); returns the handles.
fn ring<'h>(h: &'h GcHeap, n: usize) -> Vec<ObjRef<'h>> {
    let nodes: Vec<_> = (0..n)
        .map(|_| h.alloc(Pair::default()).unwrap().erase())
        .collect();
    for (i, node) in nodes.iter().enumerate() {
        let pair = node.downcast_ref::<Pair<'_>>().unwrap();
        pair.a.set(Some(nodes[(i + 1) % n].clone()));
    }
    nodes
}

fn slot_b<'a, 'h>(node: &'a ObjRef<'h>) -> &'a RefCell1<'h> {
    &node.downcast_ref::<Pair<'_>>().unwrap().b
}

#[test]
fn garbage_that_references_only_garbage_is_freed_without_a_drop() {
    let h = heap();
    let before = h.rc().allocator().stats();
    drop(ring(&h, 100));
    let dropped = drops();

    assert_eq!(h.collect(2).unwrap(), 100);

    assert_eq!(drops(), dropped, "no payload was dropped");
    assert_eq!(h.rc().stats().live, 0);
    assert_eq!(
        h.rc().allocator().stats().totals.bytes_in_blocks,
        before.totals.bytes_in_blocks,
        "every block came back"
    );
}

#[test]
fn a_member_that_references_an_atom_or_an_older_object_is_dropped_and_releases_it() {
    let h = heap();
    let old = h.alloc(Node::default()).unwrap().erase();
    let atom = h.alloc(Atom(7)).unwrap().erase();
    h.collect(2).unwrap();
    assert_eq!(h.generation_of(&old), Some(2));
    let nodes = ring(&h, 10);
    slot_b(&nodes[2]).set(Some(atom.clone()));
    slot_b(&nodes[7]).set(Some(old.clone()));
    drop(nodes);
    let dropped = drops();

    assert_eq!(h.collect(0).unwrap(), 10);

    assert_eq!(
        drops() - dropped,
        2,
        "the two members holding outside references"
    );
    assert_eq!(atom.refcnt(), 1, "released by the garbage");
    assert_eq!(old.refcnt(), 1, "released by the garbage");
    assert_eq!(h.rc().stats().live, 2);
}

#[test]
fn an_older_object_held_only_by_the_garbage_dies_with_it() {
    let h = heap();
    let old = h.alloc(Pair::default()).unwrap().erase();
    h.collect(2).unwrap();
    let nodes = ring(&h, 4);
    slot_b(&nodes[0]).set(Some(old));
    drop(nodes);

    assert_eq!(h.collect(0).unwrap(), 4, "only the ring was young");

    assert_eq!(h.rc().stats().live, 0, "the older pair died of the release");
}

#[test]
fn when_a_young_object_is_reachable_every_garbage_payload_is_dropped() {
    // The scan runs: a young object referenced from outside and by the garbage is not garbage,
    // so the garbage's references to it must be released by dropping the payloads.
    let h = heap();
    let live = h.alloc(Pair::default()).unwrap().erase();
    let nodes = ring(&h, 6);
    for node in &nodes {
        slot_b(node).set(Some(live.clone()));
    }
    drop(nodes);
    assert_eq!(live.refcnt(), 7);
    let dropped = drops();

    assert_eq!(h.collect(2).unwrap(), 6);

    assert_eq!(drops() - dropped, 6);
    assert_eq!(live.refcnt(), 1);
    assert_eq!(h.rc().stats().live, 1);
}

#[test]
fn without_the_declaration_every_payload_is_dropped() {
    let h = heap();
    let nodes: Vec<_> = (0..50)
        .map(|_| h.alloc(PlainPair::default()).unwrap().erase())
        .collect();
    for (i, node) in nodes.iter().enumerate() {
        let pair = &node.downcast_ref::<PlainPair<'_>>().unwrap().0;
        pair.a.set(Some(nodes[(i + 1) % 50].clone()));
    }
    drop(nodes);
    let dropped = drops();

    assert_eq!(h.collect(2).unwrap(), 50);

    assert_eq!(drops() - dropped, 50);
    assert_eq!(h.rc().stats().live, 0);
}

#[test]
fn the_declaration_counts_only_with_an_exact_trace() {
    let exact = &PAIR;
    assert!(exact.has_release_only_drop());
    let inexact = TypeInfo::new::<Pair<'static>>("pair").drop_only_releases_refs();
    assert!(!inexact.has_release_only_drop());
    assert!(!PLAIN_PAIR.has_release_only_drop());
}

#[test]
fn outside_references_are_found_in_every_batch_of_the_sweep() {
    // The sweep subtracts references a batch behind the trace (32 at a time): outside
    // references early, in the middle and at the end of a long ring all release their target.
    let h = heap();
    let atoms: Vec<_> = (0..3).map(|i| h.alloc(Atom(i)).unwrap().erase()).collect();
    let nodes = ring(&h, 100);
    for (k, at) in [3, 50, 97].into_iter().enumerate() {
        slot_b(&nodes[at]).set(Some(atoms[k].clone()));
    }
    drop(nodes);
    let dropped = drops();

    assert_eq!(h.collect(0).unwrap(), 100);

    assert_eq!(drops() - dropped, 3);
    for atom in &atoms {
        assert_eq!(atom.refcnt(), 1);
    }
}

#[test]
fn garbage_of_several_kinds_that_needs_no_drop_gives_every_block_back() {
    // Pairs and triples in turns: the one pass that frees them switches kind at every member.
    let h = heap();
    let before = h.rc().allocator().stats();
    let n = 300;
    let nodes: Vec<ObjRef<'_>> = (0..n)
        .map(|i| {
            if i % 2 == 0 {
                h.alloc(Pair::default()).unwrap().erase()
            } else {
                h.alloc(Triple::default()).unwrap().erase()
            }
        })
        .collect();
    for (i, node) in nodes.iter().enumerate() {
        let next = Some(nodes[(i + 1) % n].clone());
        match node.downcast_ref::<Pair<'_>>() {
            Some(pair) => pair.a.set(next),
            None => node.downcast_ref::<Triple<'_>>().unwrap().0[2].set(next),
        }
    }
    drop(nodes);
    let dropped = drops();

    assert_eq!(h.collect(2).unwrap(), n as u64);

    assert_eq!(drops(), dropped);
    assert_eq!(h.rc().stats().live, 0);
    let after = h.rc().allocator().stats();
    assert_eq!(after.totals.bytes_in_blocks, before.totals.bytes_in_blocks);
}
