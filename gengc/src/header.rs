//! The collector's per-object state: the GC header, the two words the refcount tier reserves in
//! front of every container, and the tracking state, in the object header's upper flag bits.
//! This module owns their layout and the only code that turns an object into either.
//!
//! ```text
//!   pre-header (GcHeader)                                      ObjHeader
//!   +------------------+----------------+--------+--------+---------+  +--------+-------------+----+
//!   | gc_refs: i64     | index: u32     | mark:u8| out:u8 |later:u8| pad|  | refcnt | flags: state| ty |
//!   +------------------+----------------+--------+--------+---------+  +--------+-------------+----+
//!   state:   (upper 16 flag bits) UNTRACKED = 0 (zeroed objects and atoms start untracked);
//!            1..=4 = generations 0, 1, 2 and permanent, each by its tag (`Tags`: a merge into
//!            an empty generation trades tags instead of rewriting headers); YOUNG = in the array
//!            of a running collection; NEW_BASE + g = generation g, joined during a running
//!            collection of it (not young); UNREACHABLE = found unreachable by its scan, count
//!            pinned; GARBAGE = in the unreachable list of the careful path; GARBAGE_DEAD =
//!            being cleared
//!   index:   the object's slot in the Vec of its generation or of the running collection;
//!            from a collection's sweep to its scan, the object's true count (its header's
//!            count pinned at IMMORTAL meanwhile)
//!   gc_refs: 0 outside a collection; during one, the references from outside the collected
//!            set; for an UNREACHABLE object, its true count
//!   mark:    during a collection, whether the object is known reachable
//!   out:     from a collection's sweep on, whether the object references anything outside the
//!            young set (an atom, an untracked container, an older or frozen object)
//!   later:   `untrack` was called on it during a collection that holds it: untracked when
//!            that collection ends (see `Collector::untrack`)
//! ```
//!
//! The state lives in the object header, not the GC header, so that one load of any visited
//! object (a container or an atom) says whether it takes part in the collection.

use std::cell::Cell;

use refcount::{ObjHeader, ObjPtr, CONTAINER_PRE_HEADER};

/// Objects that are not tracked (atoms always: their upper flags are zero).
pub(crate) const UNTRACKED: u8 = 0;
/// Generations are stored off by one so that a zeroed header means untracked.
pub(crate) const GEN_BASE: u8 = 1;
/// Objects in the array of a running collection.
pub(crate) const YOUNG: u8 = GEN_BASE + 4;
/// Objects a running collection's scan found unreachable: their young slots in its unreachable
/// set, their count pinned at `IMMORTAL` (the true count kept in `gc_refs`) until they are
/// freed or rescued.
pub(crate) const UNREACHABLE: u8 = GEN_BASE + 5;
/// Objects the careful path holds as garbage (in its list, one reference held to each).
pub(crate) const GARBAGE: u8 = GEN_BASE + 6;
/// Garbage being cleared: no longer a candidate for anything, dies when its count falls.
pub(crate) const GARBAGE_DEAD: u8 = GEN_BASE + 7;
/// `NEW_BASE + g`: generation `g`, for a container that joined it while a collection of `g`
/// or an older generation runs its sweep and what follows (`g` lent its slots to the young
/// array): tracked then (into generation 0) or thawed then (`unfreeze`, into generation 2).
/// Not one of the young objects, so a reference to it leads out of the young set. Back to
/// generation `g`'s state when the collection ends.
pub(crate) const NEW_BASE: u8 = GEN_BASE + 8;

/// Which state each generation's objects carry: generation `g` (0..=2, and 3 for the
/// permanent one) is `GEN_BASE + tag_of[g]`. The tags start equal to the generations; a merge
/// into an empty generation trades the two generations' slots and tags (`Collector::merge`),
/// so that the objects moved keep their state and the generation that now holds them reads
/// it as its own: freezing a heap, or promoting a young generation into an empty old one,
/// writes no header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Tags {
    tag_of: [u8; 4],
    gen_of: [u8; 4],
}

impl Tags {
    /// Every generation carries its own number.
    pub(crate) const IDENTITY: Tags = Tags {
        tag_of: [0, 1, 2, 3],
        gen_of: [0, 1, 2, 3],
    };

    /// The state of generation `gen`'s objects.
    #[inline]
    pub(crate) fn state(self, gen: usize) -> u8 {
        GEN_BASE + self.tag_of[gen]
    }

    /// The generation whose objects carry `state`, one of `GEN_BASE..GEN_BASE + 4`.
    #[inline]
    pub(crate) fn generation(self, state: u8) -> usize {
        usize::from(self.gen_of[usize::from(state - GEN_BASE)])
    }

    /// The tags with generations `a` and `b`'s traded.
    pub(crate) fn swapped(mut self, a: usize, b: usize) -> Tags {
        self.tag_of.swap(a, b);
        self.gen_of[usize::from(self.tag_of[a])] = a as u8;
        self.gen_of[usize::from(self.tag_of[b])] = b as u8;
        self
    }
}

/// Whether a state is one of the `NEW_BASE + g`.
#[inline]
pub(crate) fn is_new(state: u8) -> bool {
    (NEW_BASE..NEW_BASE + 3).contains(&state)
}

/// The collector's per-object numbers.
#[repr(C)]
pub(crate) struct GcHeader {
    pub gc_refs: Cell<i64>,
    pub index: Cell<u32>,
    pub reachable: Cell<bool>,
    pub refs_outside: Cell<bool>,
    pub untrack_later: Cell<bool>,
}

const _: () = assert!(std::mem::size_of::<GcHeader>() <= CONTAINER_PRE_HEADER);

/// The GC header of a container.
///
/// # Safety
/// `obj` must be a live container (its type's `container` is true) for `'a`.
#[inline]
pub(crate) unsafe fn gc_header<'a>(obj: ObjPtr) -> &'a GcHeader {
    // SAFETY: containers have CONTAINER_PRE_HEADER bytes in front of the header, zeroed at
    // allocation (a valid GcHeader: all Cells of integers) and written only through Cells.
    unsafe { obj.pre_header().cast::<GcHeader>().as_ref() }
}

/// The tracking state of any object (UNTRACKED for atoms).
#[inline]
pub(crate) fn state(header: &ObjHeader) -> u8 {
    header.upper_flags() as u8
}

/// Sets the tracking state of a container.
#[inline]
pub(crate) fn set_state(header: &ObjHeader, state: u8) {
    // SAFETY: the collector installed the hook of the heap its callers' objects belong to;
    // this module is the one place that writes the tracking state.
    unsafe { header.set_upper_flags(u16::from(state)) };
}
