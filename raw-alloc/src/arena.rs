//! An arena: one size-aligned region of the private heap, with a small header at its base.
//!
//! ```text
//!   base = addr & !(size - 1)
//!   |
//!   v
//!   +--------------+--------------------------------------------------------------+
//!   | ArenaHeader  |  space for the tier above (pools, in obj-alloc)              |
//!   | owner, magic |                                                              |
//!   +--------------+--------------------------------------------------------------+
//!   |<- ARENA_HEADER_SIZE ->|
//!   |<------------------------------ size (a power of two) ------------------------>|
//! ```
//!
//! Because an arena starts at a multiple of its size, masking any address inside it gives the
//! header: that is how a dying object finds the heap that owns it without thread-locals or fat
//! handles. The `owner` word is opaque here; the tier that owns the heap puts its own pointer
//! there (raw-alloc never looks through it).

use std::cell::Cell;
use std::ptr::NonNull;

/// The bytes reserved for [`ArenaHeader`] at the base of every arena (a multiple of 16, so the
/// space after it keeps the heap's 16-byte alignment).
pub const ARENA_HEADER_SIZE: usize = 16;

/// A value written in every live arena's header, checked in debug builds.
const ARENA_MAGIC: usize = 0x7079_6865_6170_4152; // "pyheapAR"

/// What lives at the base of every arena.
#[repr(C)]
pub struct ArenaHeader {
    owner: Cell<*const ()>,
    magic: usize,
}

const _: () = assert!(std::mem::size_of::<ArenaHeader>() <= ARENA_HEADER_SIZE);

/// A handle to a mapped arena: its base address and size. Copying the handle copies no memory.
///
/// An `Arena` is valid from [`RawHeap::alloc_arena`](crate::RawHeap::alloc_arena) until it is
/// given to [`RawHeap::free_arena`](crate::RawHeap::free_arena).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arena {
    base: NonNull<u8>,
    size: usize,
}

impl Arena {
    /// Writes the header of a freshly mapped region and wraps it.
    ///
    /// # Safety
    /// `base` must be the start of `size` writable bytes aligned to `size`, owned by the caller.
    pub(crate) unsafe fn init(base: NonNull<u8>, size: usize, owner: *const ()) -> Arena {
        // SAFETY: by the contract the region is ours, writable and aligned to `size` >= 16.
        unsafe {
            base.cast::<ArenaHeader>().as_ptr().write(ArenaHeader {
                owner: Cell::new(owner),
                magic: ARENA_MAGIC,
            });
        }
        Arena { base, size }
    }

    /// The arena that contains `addr`.
    ///
    /// # Safety
    /// `addr` must point inside a live arena whose size is `size`.
    pub unsafe fn containing(addr: NonNull<u8>, size: usize) -> Arena {
        let base = addr.as_ptr().map_addr(|a| a & !(size - 1));
        let arena = Arena {
            // SAFETY: a live arena never starts at address 0.
            base: unsafe { NonNull::new_unchecked(base) },
            size,
        };
        debug_assert_eq!(
            arena.header().magic,
            ARENA_MAGIC,
            "not an arena of this size"
        );
        arena
    }

    /// The first byte of the arena (where its header lives).
    pub fn base(self) -> NonNull<u8> {
        self.base
    }

    /// The arena's size in bytes.
    pub fn size(self) -> usize {
        self.size
    }

    /// The first byte after the header: where the tier above may start placing data.
    pub fn usable_start(self) -> NonNull<u8> {
        // SAFETY: the header is smaller than any arena, so base + ARENA_HEADER_SIZE is in bounds.
        unsafe { self.base.add(ARENA_HEADER_SIZE) }
    }

    /// Whether `addr` lies inside this arena.
    pub fn contains(self, addr: *const u8) -> bool {
        let a = addr as usize;
        let b = self.base.as_ptr() as usize;
        a >= b && a < b + self.size
    }

    fn header(&self) -> &ArenaHeader {
        // SAFETY: a live arena's header was written by `init` and is only written through
        // `Cell`s afterwards; the handle is only used while the arena is live.
        unsafe { self.base.cast::<ArenaHeader>().as_ref() }
    }

    /// The opaque owner pointer stored in the header.
    pub fn owner(self) -> *const () {
        self.header().owner.get()
    }

    /// Replaces the opaque owner pointer stored in the header.
    pub fn set_owner(self, owner: *const ()) {
        self.header().owner.set(owner)
    }

    /// Clears the header's magic before the region goes back to the OS, so that a stale lookup
    /// trips the debug assertion instead of reading a plausible header.
    pub(crate) fn retire(self) {
        // SAFETY: the arena is still live and its header was written by `init`.
        unsafe { (*self.base.cast::<ArenaHeader>().as_ptr()).magic = 0 }
    }
}
