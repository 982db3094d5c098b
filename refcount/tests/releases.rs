//! The thread's release epoch (`refcount::Releases`): a container that loses a reference and
//! lives on moves it on; deaths, atoms and immortal objects do not. A cycle collector skips
//! its scan on the strength of this epoch, so every way a reference can leave a living
//! container must be noted.

mod common;

use common::{List, Num};
use refcount::{ObjRef, Object, RcHeap, RefCell1, Releases, Trace, TypeInfo, Visit};

fn heap() -> std::pin::Pin<Box<RcHeap>> {
    RcHeap::new(Default::default()).unwrap()
}

/// Whether `f` released a container (moved the epoch on).
fn released(f: impl FnOnce()) -> bool {
    let before = Releases::now();
    f();
    Releases::now() != before
}

#[test]
fn dropping_one_of_two_handles_to_a_container_is_a_release() {
    let h = heap();
    let list = h.alloc(List::default()).unwrap();
    let other = list.clone();
    assert!(released(|| drop(other)));
    assert!(!released(|| drop(list)), "a death is not a release");
}

#[test]
fn replacing_a_reference_held_by_a_container_releases_the_old_target() {
    let h = heap();
    let (holder, target) = (
        h.alloc(List::default()).unwrap(),
        h.alloc(List::default()).unwrap(),
    );
    holder.0.push(target.clone().erase());
    assert!(released(|| holder.0.clear()), "target lives on: a release");
    drop(target);
    assert_eq!(h.stats().live, 1);
}

#[test]
fn a_death_releases_what_the_dead_object_held() {
    let h = heap();
    let (outer, inner) = (
        h.alloc(List::default()).unwrap(),
        h.alloc(List::default()).unwrap(),
    );
    outer.0.push(inner.clone().erase());
    // outer dies (no release of its own), inner loses outer's reference and lives on.
    assert!(released(|| drop(outer)));
    assert_eq!(inner.refcnt(), 1);
}

#[test]
fn atoms_and_immortal_objects_count_no_release() {
    let h = heap();
    let n = h.alloc(Num(1)).unwrap();
    let n2 = n.clone();
    assert!(!released(|| drop(n2)), "an atom leads nowhere");
    let list = h.alloc(List::default()).unwrap();
    h.make_immortal(&list.clone().erase());
    let again = list.clone();
    assert!(!released(|| drop(again)), "an immortal count never falls");
}

/// A container whose finalizer stores its own handle in itself: dying, it comes back as a
/// self-cycle that nobody else references.
struct Ouroboros<'h>(RefCell1<'h>);
impl Trace for Ouroboros<'_> {
    fn trace(&self, v: &mut Visit<'_>) {
        self.0.trace(v)
    }
    fn clear(&self) {
        self.0.set(None)
    }
}
static OUROBOROS: TypeInfo = TypeInfo::new::<Ouroboros<'static>>("ouroboros");
impl Object for Ouroboros<'_> {
    const CONTAINER: bool = true;
    const HAS_FINALIZER: bool = true;
    fn type_info() -> &'static TypeInfo {
        &OUROBOROS
    }
    fn finalize(this: &ObjRef<'_>) {
        let me = this.downcast_ref::<Ouroboros<'_>>().unwrap();
        // SAFETY: only a lifetime changes: the handle is stored in its own object.
        me.0.set(Some(unsafe {
            std::mem::transmute::<ObjRef<'_>, ObjRef<'_>>(this.clone())
        }));
    }
}

#[test]
fn a_finalizer_that_resurrects_its_object_into_a_cycle_counts_a_release() {
    let h = heap();
    let o = h.alloc(Ouroboros(RefCell1::default())).unwrap();
    // The finalizer's temporary reference goes away with the object alive, referenced only
    // by itself: garbage that no decref ever saw fall.
    assert!(released(|| drop(o)));
    assert_eq!((h.stats().resurrected, h.stats().live), (1, 1));
}
