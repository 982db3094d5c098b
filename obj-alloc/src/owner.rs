//! Owner lookup: how the tier above finds its heap from an object's address, without
//! thread-locals.
//!
//! Every arena's header holds an opaque owner pointer. A block carved from an arena finds it by
//! masking its address down to the arena's base; a direct block has no arena, so the tier above
//! keeps the owner in a prefix of its own. [`ObjAlloc::placement`] says which case a size is, the
//! same way every time for one allocator.

use std::ptr::NonNull;

use raw_alloc::Arena;
use serde::{Deserialize, Serialize};

use crate::ObjAlloc;

/// Where a block of a given size lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Placement {
    /// Carved from an arena of `1 << arena_shift` bytes: [`ObjAlloc::arena_owner`] finds the
    /// owner.
    Arena {
        /// log2 of the arena size.
        arena_shift: u8,
    },
    /// A direct block of the raw heap (a large request, or any with the system backend).
    Direct,
}

impl ObjAlloc {
    /// Stamps `owner` into the header of every arena held now and of every arena mapped later.
    pub fn set_owner(&self, owner: *const ()) {
        self.raw.set_owner(owner);
        for arena in self.arenas.borrow().live_arenas() {
            arena.set_owner(owner);
        }
    }

    /// Where a block of `size` bytes from [`alloc`](Self::alloc) (or the kind functions) lives.
    /// It depends only on the size, the backend and the debug layer (whose padding counts).
    #[inline]
    pub fn placement(&self, size: usize) -> Placement {
        if self.fast_class(size).is_some() || self.is_pooled(size) {
            Placement::Arena {
                arena_shift: self.arena_shift,
            }
        } else {
            Placement::Direct
        }
    }

    /// The owner pointer stamped into the arena that holds `ptr`.
    ///
    /// # Safety
    /// `ptr` must be a live block of an allocator whose [`placement`](Self::placement) for the
    /// block's size was `Placement::Arena { arena_shift }`.
    pub unsafe fn arena_owner(ptr: NonNull<u8>, arena_shift: u8) -> *const () {
        // SAFETY: a live block carved from an arena lies inside that live arena, whose size is
        // 1 << arena_shift (contract).
        unsafe { Arena::containing(ptr, 1usize << arena_shift) }.owner()
    }
}
