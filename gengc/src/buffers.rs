//! The generations (`Vec<ObjPtr>`) and the young array of a running collection
//! (`Vec<Option<ObjPtr>>`, a slot emptied when its object dies during the collection) lend each
//! other their buffers: a collection takes the oldest generation it collects as its young
//! array instead of copying it, and a full collection's survivors become that generation
//! again where they stand. No copy, and no fresh memory to fault in on a first collection.
//!
//! The one invariant this module owns: `Option<ObjPtr>` has the layout of `ObjPtr`, a
//! `repr(transparent)` wrapper of a `NonNull` (Rust guarantees the null niche for such a
//! wrapper: `None` is the null pointer), so a buffer of one is a buffer of the other.

use std::mem::ManuallyDrop;

use refcount::ObjPtr;

const _: () = assert!(
    std::mem::size_of::<Option<ObjPtr>>() == std::mem::size_of::<ObjPtr>()
        && std::mem::align_of::<Option<ObjPtr>>() == std::mem::align_of::<ObjPtr>()
);

/// A generation's buffer as a young array: every slot full.
pub(crate) fn into_slots(objects: Vec<ObjPtr>) -> Vec<Option<ObjPtr>> {
    let mut objects = ManuallyDrop::new(objects);
    let (ptr, len, cap) = (objects.as_mut_ptr(), objects.len(), objects.capacity());
    // SAFETY: the buffer came from a Vec of ObjPtr with this length and capacity, and
    // Option<ObjPtr> has ObjPtr's size and alignment (module invariant); every ObjPtr is a
    // valid Some. The original Vec is forgotten, so the buffer has one owner.
    unsafe { Vec::from_raw_parts(ptr.cast::<Option<ObjPtr>>(), len, cap) }
}

/// A young array whose slots are all full, as a generation's buffer.
///
/// # Safety
/// Every slot of `slots` is `Some` (a `None` would be a null `ObjPtr`).
pub(crate) unsafe fn into_objects(slots: Vec<Option<ObjPtr>>) -> Vec<ObjPtr> {
    debug_assert!(slots.iter().all(Option::is_some));
    let mut slots = ManuallyDrop::new(slots);
    let (ptr, len, cap) = (slots.as_mut_ptr(), slots.len(), slots.capacity());
    // SAFETY: as in into_slots, the other way; every slot is Some (contract), whose
    // representation is the ObjPtr itself (module invariant).
    unsafe { Vec::from_raw_parts(ptr.cast::<ObjPtr>(), len, cap) }
}
