//! The GC header: the two words the refcount tier reserves in front of every container.
//! This module owns its layout and the only code that turns an object into its header.
//!
//! ```text
//!   +------------------+----------------+--------+--------+---------+
//!   | gc_refs: i64     | index: u32     | gen: u8| mark:u8| (2 pad) |   16 bytes
//!   +------------------+----------------+--------+--------+---------+
//!   gen:    0, 1, 2 = the generations, 3 = permanent (frozen), stored off by one; YOUNG = in
//!           the array of a running collection; GARBAGE = in its unreachable list; GARBAGE_DEAD
//!           = being cleared; UNTRACKED = 0 (zero-initialised objects start untracked)
//!   index:  the object's slot in the Vec of its generation (or of the running collection)
//!   gc_refs: during a collection, the references from outside the collected set
//!   mark:   during a collection, whether the object is known reachable
//! ```

use std::cell::Cell;

use refcount::{ObjPtr, CONTAINER_PRE_HEADER};

/// The generation number of objects that are not tracked.
pub(crate) const UNTRACKED: u8 = 0;
/// Generations are stored off by one so that a zeroed header means untracked.
pub(crate) const GEN_BASE: u8 = 1;
/// Objects in the array of a running collection.
pub(crate) const YOUNG: u8 = GEN_BASE + 4;
/// Objects a running collection found unreachable (in its garbage list, not in an array).
pub(crate) const GARBAGE: u8 = GEN_BASE + 5;
/// Garbage being cleared: no longer a candidate for anything, dies when its count falls.
pub(crate) const GARBAGE_DEAD: u8 = GEN_BASE + 6;

/// The collector's per-object state.
#[repr(C)]
pub(crate) struct GcHeader {
    pub gc_refs: Cell<i64>,
    pub index: Cell<u32>,
    pub gen: Cell<u8>,
    pub reachable: Cell<bool>,
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
