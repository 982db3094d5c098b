//! A full collection skips its sweep and scan when no container of the thread has lost a
//! reference since a full collection found every object reachable (`refcount::Releases`). These
//! tests pin when it may, that it then does what a scan that found nothing would have done,
//! and each way garbage can appear, which must make the next full collection scan.

mod common;

use common::*;
use gengc::GcHeap;
use refcount::ObjRef;

fn heap() -> GcHeap {
    GcHeap::new(Default::default()).unwrap()
}

fn skipped(h: &GcHeap) -> u64 {
    h.stats().scans_skipped
}

/// Two nodes referencing each other, with no handle left: garbage. Making it drops a handle
/// to a node that lives on (a release).
fn garbage_pair(h: &GcHeap) {
    let a = h.alloc(Node::default()).unwrap();
    let b = h.alloc(Node::default()).unwrap();
    a.kids.push(b.clone().erase());
    b.kids.push(a.erase());
}

/// Objects in generations 2, 1 and 0, made with clones only (no release).
fn three_generations(h: &GcHeap) -> [ObjRef<'_>; 3] {
    let in_2 = h.alloc(Node::default()).unwrap().erase();
    h.collect(2).unwrap();
    let in_1 = h.alloc(Node::default()).unwrap().erase();
    h.collect(0).unwrap();
    let in_0 = h.alloc(Node::default()).unwrap().erase();
    in_0.downcast_ref::<Node>().unwrap().kids.push(in_1.clone());
    [in_2, in_1, in_0]
}

#[test]
fn a_heap_built_without_releases_is_collected_without_a_scan() {
    let h = heap();
    let n = if cfg!(miri) { 60 } else { 1000 };
    let nodes: Vec<_> = (0..n).map(|_| h.alloc(Node::default()).unwrap()).collect();
    for (i, node) in nodes.iter().enumerate() {
        node.kids.push(nodes[(i * 7 + 1) % n].clone().erase());
    }
    assert_eq!(h.collect(2).unwrap(), 0);
    assert_eq!(skipped(&h), 1);
    assert_eq!(h.collect(2).unwrap(), 0, "and again");
    assert_eq!(skipped(&h), 2);
    let s = h.stats();
    assert_eq!(s.generations.map(|g| g.objects), [0, 0, n as u64]);
    assert_eq!(s.generations[2].stats.collections, 2);
    assert_eq!((s.long_lived_total, s.long_lived_pending), (n as u64, 0));
    assert!(nodes
        .iter()
        .all(|node| h.generation_of(&node.clone().erase()) == Some(2)));
}

#[test]
fn a_skipped_scan_leaves_the_generations_as_a_scan_would() {
    let (scanned, skipping) = (heap(), heap());
    scanned.set_always_scan(true);
    let order = |h: &GcHeap, objs: &[ObjRef<'_>; 3]| -> Vec<Option<usize>> {
        let all = h.get_objects(Some(2)).unwrap();
        objs.iter()
            .map(|o| all.iter().position(|x| x.as_ptr() == o.as_ptr()))
            .collect()
    };
    let a = three_generations(&scanned);
    let b = three_generations(&skipping);
    let before = skipped(&skipping);
    assert_eq!(scanned.collect(2).unwrap(), 0);
    assert_eq!(skipping.collect(2).unwrap(), 0);
    assert_eq!(skipped(&skipping), before + 1);
    assert_eq!(skipped(&scanned), 0, "always_scan scans");
    assert_eq!(
        order(&scanned, &a),
        [Some(0), Some(1), Some(2)],
        "oldest first"
    );
    assert_eq!(order(&skipping, &b), order(&scanned, &a));
    assert_eq!(scanned.stats().generations, skipping.stats().generations);
    assert_eq!(scanned.get_count(), skipping.get_count());
}

#[test]
fn a_release_makes_the_next_full_collection_scan() {
    let h = heap();
    let n = h.alloc(Node::default()).unwrap();
    h.collect(2).unwrap();
    assert_eq!(skipped(&h), 1);
    drop(n.clone());
    h.collect(2).unwrap();
    assert_eq!(skipped(&h), 1, "scanned");
    h.collect(2).unwrap();
    assert_eq!(skipped(&h), 2, "that scan found everything reachable");
}

#[test]
fn garbage_is_always_found() {
    let h = heap();
    h.collect(2).unwrap();
    garbage_pair(&h);
    assert_eq!(h.collect(2).unwrap(), 2);
    // The scan found garbage: it proves nothing about the next one's heap.
    garbage_pair(&h);
    assert_eq!(h.collect(2).unwrap(), 2);
    assert_eq!(skipped(&h), 1, "only the first, on the empty heap");
}

#[test]
fn an_object_a_finalizer_resurrects_into_a_self_cycle_is_found_next_time() {
    let h = heap();
    h.collect(2).unwrap();
    // Dies by counting; its finalizer stores it in itself: garbage no decref saw fall.
    let ouroboros = h
        .alloc(FinNode {
            kids: Default::default(),
            fin: Box::new(|this| {
                let me = this.downcast_ref::<FinNode<'_>>().unwrap();
                me.kids.push(same_heap(this.clone()));
            }),
        })
        .unwrap();
    drop(ouroboros);
    assert_eq!(h.rc().stats().resurrected, 1);
    assert_eq!(h.collect(2).unwrap(), 1);
    assert_eq!(h.rc().stats().live, 0);
}

#[test]
fn garbage_frozen_then_thawed_is_found() {
    let h = heap();
    garbage_pair(&h);
    h.freeze();
    // Nothing to find outside the permanent generation: this scan proves generations 0..=2
    // reachable, not the frozen pair.
    assert_eq!(h.collect(2).unwrap(), 0);
    h.unfreeze();
    assert_eq!(h.collect(2).unwrap(), 2);
    assert_eq!(h.rc().stats().live, 0);
}

#[test]
fn freezing_a_whole_heap_and_thawing_it_moves_every_object() {
    let h = heap();
    let [in_2, in_1, in_0] = three_generations(&h);
    h.freeze();
    assert_eq!(h.get_freeze_count(), 3);
    for o in [&in_2, &in_1, &in_0] {
        assert_eq!(h.generation_of(o), Some(3));
    }
    h.unfreeze();
    for o in [&in_2, &in_1, &in_0] {
        assert_eq!(h.generation_of(o), Some(2));
    }
    // Untracking finds each object's slot in its new generation.
    h.untrack(&in_1);
    assert!(!h.is_tracked(&in_1));
    assert_eq!(h.get_objects(Some(2)).unwrap().len(), 2);
    drop((in_2, in_1, in_0));
    assert_eq!(h.rc().stats().live, 0);
    assert!(h.get_objects(None).unwrap().is_empty());
}

#[test]
fn after_generations_traded_places_young_collections_still_find_young_garbage() {
    let h = heap();
    let keep: Vec<_> = (0..50).map(|_| h.alloc(Node::default()).unwrap()).collect();
    h.collect(2).unwrap(); // generation 0's slots and tag go to generation 2
    assert_eq!(skipped(&h), 1);
    garbage_pair(&h);
    let young = h.alloc(Node::default()).unwrap();
    assert_eq!(h.collect(0).unwrap(), 2);
    assert_eq!(h.generation_of(&young.clone().erase()), Some(1));
    assert_eq!(h.collect(1).unwrap(), 0);
    assert_eq!(h.generation_of(&young.clone().erase()), Some(2));
    assert_eq!(h.get_objects(Some(2)).unwrap().len(), 51);
    drop(keep);
    assert_eq!(h.get_objects(Some(2)).unwrap().len(), 1);
}

thread_local! {
    static HEAP: std::cell::Cell<Option<&'static GcHeap>> = const { std::cell::Cell::new(None) };
    static TRACK_ARMED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Holds one reference in a plain field (no cell: the trace reaches it without a count). Once
/// armed, its trace has the collector track that reference (`track` makes and drops no
/// reference, see tracking_during_a_collection.rs). A safe type: no promise made.
struct Tracks<'h> {
    other: ObjRef<'h>,
}
impl refcount::Trace for Tracks<'_> {
    fn trace(&self, v: &mut refcount::Visit<'_>) {
        if TRACK_ARMED.with(|a| a.replace(false)) {
            HEAP.with(std::cell::Cell::get).unwrap().track(&self.other);
        }
        v.visit(&self.other);
    }
}
static TRACKS: refcount::TypeInfo = refcount::TypeInfo::new::<Tracks<'static>>("tracks");
impl refcount::Object for Tracks<'_> {
    const CONTAINER: bool = true;
    fn type_info() -> &'static refcount::TypeInfo {
        &TRACKS
    }
}

/// `t <-> u` with `u` untracked: garbage the collector cannot see, since `u`'s reference to
/// `t` counts as one from outside. A full collection scans (the cycle was made with
/// releases), finds `t` reachable, and while its sweep runs, `t`'s trace tracks `u`: from
/// then on the pair is garbage a scan finds, and no container lost a reference. As with an
/// `unfreeze` during a collection, the objects tracked during it were in no scan, and its
/// proof must not cover them.
#[test]
fn an_object_tracked_during_a_full_collection_is_not_covered_by_its_proof() {
    let (h, owner) = static_heap();
    HEAP.with(|c| c.set(Some(h)));
    let u = h.alloc(Node::default()).unwrap().erase();
    h.untrack(&u);
    let t = h.alloc(Tracks { other: u.clone() }).unwrap();
    u.downcast_ref::<Node>().unwrap().kids.push(t.erase());
    drop(u); // a release: the next full collection scans
    TRACK_ARMED.with(|a| a.set(true));
    let first = h.collect(2).unwrap();
    // (Counted without handles: dropping one would be a release.)
    let tracked: u64 = h.stats().generations.iter().map(|g| g.objects).sum();
    let second = h.collect(2).unwrap();
    let live = h.rc().stats().live;
    HEAP.with(|c| c.set(None));
    // SAFETY: no handle of the heap is left.
    unsafe { free_heap(owner) };
    assert_eq!(
        (first, tracked),
        (0, 2),
        "t reachable through untracked u; u tracked since"
    );
    assert_eq!(
        (second, live),
        (2, 0),
        "t <-> u, both tracked, is garbage a scan finds"
    );
}

thread_local! {
    static SUBJECT: std::cell::RefCell<Option<ObjRef<'static>>> =
        const { std::cell::RefCell::new(None) };
    static RECORDS: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Untracks `SUBJECT` at the collector's first event ("gc: collecting", before the sweep:
/// deferred until the collection ends), and tracks it again at the first field the span
/// records.
struct UntrackThenTrack;
impl tracing::Subscriber for UntrackThenTrack {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {
        if RECORDS.with(|r| r.replace(r.get() + 1)) == 0 {
            let h = HEAP.with(std::cell::Cell::get).unwrap();
            SUBJECT.with(|s| h.track(s.borrow().as_ref().unwrap()));
        }
    }
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        if event.metadata().target() == "gengc" && RECORDS.with(std::cell::Cell::get) == 0 {
            let h = HEAP.with(std::cell::Cell::get).unwrap();
            SUBJECT.with(|s| h.untrack(s.borrow().as_ref().unwrap()));
        }
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

/// Where an object ends after a full collection during which a subscriber untracked it (before
/// the sweep) and then tracked it (at the span's first recorded field).
fn generation_after_untrack_then_track(always_scan: bool) -> (Option<usize>, u64) {
    let (h, owner) = static_heap();
    HEAP.with(|c| c.set(Some(h)));
    h.set_always_scan(always_scan);
    let x = h.alloc(Node::default()).unwrap().erase();
    SUBJECT.with(|s| *s.borrow_mut() = Some(x.clone()));
    RECORDS.with(|r| r.set(0));
    h.set_debug(gengc::DebugFlags::STATS);
    tracing::subscriber::with_default(UntrackThenTrack, || h.collect(2).unwrap());
    h.set_debug(gengc::DebugFlags::empty());
    let gen = h.generation_of(&x);
    let skipped = h.stats().scans_skipped;
    SUBJECT.with(|s| s.borrow_mut().take());
    drop(x);
    HEAP.with(|c| c.set(None));
    // SAFETY: no handle of the heap is left.
    unsafe { free_heap(owner) };
    (gen, skipped)
}

/// A subscriber is user code: what it does in the middle of a collection must find the same
/// heap whether the collection scanned or skipped. The span records `scanned` after a scan's
/// survivors took their deferred untracks, but before a skip's end applies them.
#[test]
fn a_subscriber_sees_the_same_tracking_whether_the_collection_scanned_or_not() {
    let (scanned, zero) = generation_after_untrack_then_track(true);
    let (skipped, one) = generation_after_untrack_then_track(false);
    assert_eq!((zero, one), (0, 1), "the second one skipped");
    assert_eq!(skipped, scanned);
}

/// What a collection started by a weakref callback of a dying object leaves: the long-lived
/// total, and the generations' sizes. The dying object (count 0) is still tracked then.
fn collect_from_a_dying_objects_callback(always_scan: bool) -> (u64, [u64; 3]) {
    let h = heap();
    h.set_always_scan(always_scan);
    let _kept = h.alloc(Node::default()).unwrap();
    let dying = h.alloc(Node::default()).unwrap().erase();
    let seen = std::rc::Rc::new(std::cell::Cell::new((0, [0; 3])));
    let out = seen.clone();
    let hr = &h;
    let _w = h
        .rc()
        .weakref(
            &dying,
            Some(Box::new(move |_| {
                hr.collect(2).unwrap();
                let s = hr.stats();
                out.set((s.long_lived_total, s.generations.map(|g| g.objects)));
            })),
        )
        .unwrap();
    drop(dying);
    seen.get()
}

#[test]
fn a_collection_inside_a_deallocation_counts_as_a_scan_would() {
    // A scan leaves a dying object where it was, out of the long-lived count.
    assert_eq!(
        collect_from_a_dying_objects_callback(false),
        collect_from_a_dying_objects_callback(true)
    );
}
