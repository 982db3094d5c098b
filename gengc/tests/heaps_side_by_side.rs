//! Two heaps side by side, with strong references from one heap's objects to the other's (the
//! refcount tier counts them like any other): one heap's collection takes only its own objects
//! for its young set, whatever the other heap's objects' tracking state says.

mod common;

use common::{system_heap as heap, Node};

/// x (heap 1, held by a handle) references y (heap 2, generation 0): y's state says
/// "generation 0", but not heap 1's, so x's reference to it is a reference out of the young
/// set, and x's count does not add up to references among young objects.
#[test]
fn a_reference_into_another_heap_does_not_make_a_held_object_garbage() {
    let h1 = heap();
    let h2 = heap();
    let x = h1.alloc(Node::default()).unwrap();
    let y = h2.alloc(Node::default()).unwrap().erase();
    x.kids.push(y.clone());
    assert_eq!(h1.rc().stats().live, 1);

    let found = h1.collect(0).unwrap();

    assert_eq!(found, 0, "x is held by a handle: nothing is garbage");
    assert_eq!(h1.rc().stats().live, 1, "x still alive");
    assert_eq!(x.kids.len(), 1);
    drop(x);
    drop(y);
}

/// Heap 1's collection subtracts nothing from y's `gc_refs`, so heap 2's next collection
/// counts x's reference to y (from outside heap 2's young set) and keeps y.
#[test]
fn a_collection_of_one_heap_leaves_the_other_heaps_objects_alone() {
    let h1 = heap();
    let h2 = heap();
    let x = h1.alloc(Node::default()).unwrap();
    let x2 = x.clone(); // two handles: x is a root of heap 1's collection
    let y = h2.alloc(Node::default()).unwrap().erase();
    x.kids.push(y.clone());
    assert_eq!(h1.collect(0).unwrap(), 0);
    drop(y); // y is now held by x only
    let live2 = h2.rc().stats().live;

    let found = h2.collect(0).unwrap();

    assert_eq!(found, 0, "y is held by x (heap 1)");
    assert_eq!(h2.rc().stats().live, live2, "y still alive");
    drop((x, x2));
}

/// The `gc` functions given another heap's object: it is not tracked by this heap, and
/// tracking or untracking it here changes nothing in either heap.
#[test]
fn another_heaps_object_is_not_tracked_here_and_cannot_be() {
    let h1 = heap();
    let h2 = heap();
    let y = h2.alloc(Node::default()).unwrap().erase();
    let x = h1.alloc(Node::default()).unwrap().erase();
    assert!(!h1.is_tracked(&y) && h1.generation_of(&y).is_none());
    h1.untrack(&y);
    assert_eq!(
        h2.generation_of(&y),
        Some(0),
        "still tracked by its own heap"
    );
    h2.untrack(&y);
    h1.track(&y);
    assert!(!h2.is_tracked(&y), "not tracked by heap 1's track either");
    assert_eq!(h1.get_objects(None).unwrap().len(), 1, "x only");
    h2.track(&y);
    assert_eq!(h2.generation_of(&y), Some(0));
    drop((x, y));
}

/// The final collection of a heap being dropped still knows that another heap lives beside it
/// (its objects reference the other heap's), and leaves that heap's objects alone.
#[test]
fn dropping_a_heap_leaves_the_other_heaps_objects_alone() {
    let hb = heap();
    let b = hb.alloc(Node::default()).unwrap().erase(); // held by this handle
    {
        let ha = heap();
        let a = ha.alloc(Node::default()).unwrap();
        a.kids.push(a.clone().erase()); // a cycle in heap A...
        a.kids.push(b.clone()); // ...that references b (heap B, generation 0)
        drop(a);
        drop(ha); // final collection of A: frees a, releases its reference to b
    }
    assert_eq!(hb.rc().stats().live, 1);
    let found = hb.collect(0).unwrap();
    assert_eq!(found, 0, "b is held by a handle: nothing is garbage");
    assert_eq!(hb.rc().stats().live, 1, "b still alive");
    drop(b);
    drop(hb);
}
