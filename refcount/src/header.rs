//! The object header: `PyObject_HEAD`. This module owns the reference-count arithmetic.
//!
//! ```text
//!   +----------------+----------------+--------------------------------+
//!   | refcnt: u32    | flags: u32     | ty: &'static TypeInfo          |   16 bytes
//!   +----------------+----------------+--------------------------------+
//!   flags: bits 0..6  locator: log2 of the arena size, or 0 for a direct block whose first
//!                     word points to the heap
//!          bit 8      FINALIZED (the finalizer ran; it never runs again)
//!          bit 9      HAS_WEAKREFS (the heap's weak table has an entry for this object)
//!          bit 10     CONTAINER (its type may hold references: a fall of its count that
//!                     leaves it alive is a release, counted in `releases.rs`)
//!          bits 16..  free for the tier above (the collector's flags)
//! ```
//!
//! A count of [`IMMORTAL`] never changes: incrementing saturates into it (PEP 683), and
//! decrementing an immortal object does nothing, so an immortal object is never freed and no
//! count is ever written into a freed object.

use std::cell::Cell;

use crate::releases::note_release;
use crate::TypeInfo;

/// The reference count of an immortal object.
pub const IMMORTAL: u32 = u32::MAX;

/// Bytes of [`ObjHeader`].
pub const HEADER_SIZE: usize = 16;

pub(crate) const LOCATOR_MASK: u32 = 0x3F;
pub(crate) const FINALIZED: u32 = 1 << 8;
pub(crate) const HAS_WEAKREFS: u32 = 1 << 9;
pub(crate) const CONTAINER: u32 = 1 << 10;
/// The first flag bit the tier above may use (bits `UPPER_FLAGS_SHIFT..32`).
pub const UPPER_FLAGS_SHIFT: u32 = 16;

/// The header at the start of every object (after the pre-header of containers).
#[repr(C)] // 8-aligned: obj-alloc's blocks are 8-aligned unless a type asks for 16
pub struct ObjHeader {
    refcnt: Cell<u32>,
    flags: Cell<u32>,
    ty: &'static TypeInfo,
}

const _: () = assert!(std::mem::size_of::<ObjHeader>() == HEADER_SIZE);

impl ObjHeader {
    pub(crate) fn new(ty: &'static TypeInfo, locator: u32) -> Self {
        ObjHeader {
            refcnt: Cell::new(1),
            flags: Cell::new((locator & LOCATOR_MASK) | if ty.container { CONTAINER } else { 0 }),
            ty,
        }
    }

    /// The current reference count ([`IMMORTAL`] for immortal objects).
    #[inline]
    pub fn refcnt(&self) -> u32 {
        self.refcnt.get()
    }

    /// The object's type.
    #[inline]
    pub fn type_info(&self) -> &'static TypeInfo {
        self.ty
    }

    /// Whether the count is pinned at [`IMMORTAL`].
    #[inline]
    pub fn is_immortal(&self) -> bool {
        self.refcnt.get() == IMMORTAL
    }

    /// Adds one reference; saturates into immortality instead of overflowing.
    #[inline]
    pub(crate) fn incref(&self) {
        self.refcnt.set(self.refcnt.get().saturating_add(1));
    }

    /// Drops one reference; true when the count reached zero (the caller must deallocate).
    /// A container that lives on counts a release (`releases.rs`).
    #[inline]
    pub(crate) fn decref(&self) -> bool {
        let n = self.refcnt.get();
        if n == IMMORTAL {
            return false;
        }
        debug_assert!(n > 0, "decref of a dead object of type {}", self.ty.name);
        self.refcnt.set(n - 1);
        if n == 1 {
            return true;
        }
        self.released();
        false
    }

    /// Counts a release if the object is a container: it lost a reference and lives on.
    #[inline]
    pub(crate) fn released(&self) {
        if self.has(CONTAINER) {
            note_release();
        }
    }

    /// Replaces the count.
    ///
    /// # Safety
    /// Only for a caller that owns every reference to the object and accounts for them: the
    /// collector pins garbage at [`IMMORTAL`] while it frees it (see
    /// [`RcHeap::free_garbage`](crate::RcHeap::free_garbage)) and gives back the true count
    /// of an object it turns out not to free. A wrong count frees a live object or leaks one.
    #[inline]
    pub unsafe fn set_refcnt(&self, n: u32) {
        self.refcnt.set(n)
    }

    pub(crate) fn make_immortal(&self) {
        self.refcnt.set(IMMORTAL)
    }

    pub(crate) fn locator(&self) -> u32 {
        self.flags.get() & LOCATOR_MASK
    }

    pub(crate) fn has(&self, flag: u32) -> bool {
        self.flags.get() & flag != 0
    }

    pub(crate) fn set(&self, flag: u32, on: bool) {
        let f = self.flags.get();
        self.flags.set(if on { f | flag } else { f & !flag });
    }

    /// The flag bits of the tier above (`flags >> UPPER_FLAGS_SHIFT`).
    #[inline]
    pub fn upper_flags(&self) -> u16 {
        (self.flags.get() >> UPPER_FLAGS_SHIFT) as u16
    }

    /// Replaces the flag bits of the tier above.
    ///
    /// # Safety
    /// Only the tier that installed the heap's container hook
    /// ([`RcHeap::set_container_hook`](crate::RcHeap::set_container_hook)) writes these bits, on
    /// objects of its heap, under whatever invariant it keeps with them (a cycle collector
    /// keeps an object's tracking state there, and trusts it to find the object's slot).
    ///
    /// ```compile_fail
    /// # fn f(h: &refcount::ObjHeader) {
    /// h.set_upper_flags(1); // unsafe: the collector's tracking state
    /// # }
    /// ```
    #[inline]
    pub unsafe fn set_upper_flags(&self, bits: u16) {
        let low = self.flags.get() & ((1 << UPPER_FLAGS_SHIFT) - 1);
        self.flags.set(low | (u32::from(bits) << UPPER_FLAGS_SHIFT));
    }

    /// Whether weak references point to the object (it has an entry in its heap's weak table).
    #[inline]
    pub fn has_weakrefs(&self) -> bool {
        self.has(HAS_WEAKREFS)
    }

    /// Whether the object's finalizer has run (`gc.is_finalized`).
    pub fn is_finalized(&self) -> bool {
        self.has(FINALIZED)
    }
}
