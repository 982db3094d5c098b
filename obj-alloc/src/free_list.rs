//! A bounded free list of dead blocks of one size, linked through the blocks themselves.
//!
//! ```text
//!   head -> [next | rest of a dead block] -> [next | ...] -> [None | ...]
//!   len = 3, block_size = the size every block on the list was allocated with
//! ```
//!
//! This module owns the *free-list invariant*: every block on a list was allocated from the
//! owning [`ObjAlloc`](crate::ObjAlloc) with exactly `block_size` bytes (at least a pointer's
//! worth), is used by nobody else, and holds the link to the next block in its first word.
//! Handing a block out or taking one in never touches its pool: that is what a free list is for.

use std::cell::Cell;
use std::ptr::NonNull;

use crate::asan;

/// The smallest block a free list keeps: its first word holds the link.
const MIN_BLOCK: usize = size_of::<Option<NonNull<u8>>>();

/// One free list. Its blocks are still allocated blocks of their size class, as far as pools and
/// statistics are concerned.
#[derive(Default)]
pub(crate) struct FreeList {
    head: Cell<Option<NonNull<u8>>>,
    len: Cell<usize>,
    block_size: Cell<usize>,
}

impl FreeList {
    /// Blocks on the list.
    pub(crate) fn len(&self) -> usize {
        self.len.get()
    }

    /// The size the list's blocks were allocated with (0 before the first block arrives; kept
    /// after the list empties).
    pub(crate) fn block_size(&self) -> usize {
        self.block_size.get()
    }

    /// Takes a block of `size` bytes, if the list holds blocks of that size.
    #[inline]
    pub(crate) fn pop(&self, size: usize) -> Option<NonNull<u8>> {
        if self.block_size.get() != size {
            return None;
        }
        let block = self.head.get()?;
        asan::unpoison(block, size);
        // SAFETY: the block is on the list, so its first word holds the next link (free-list
        // invariant), and it is at least a pointer long and 8-aligned.
        let next = unsafe { block.cast::<Option<NonNull<u8>>>().read() };
        self.head.set(next);
        self.len.set(self.len.get() - 1);
        Some(block)
    }

    /// Takes any block, with its size (when clearing the list).
    pub(crate) fn pop_any(&self) -> Option<(NonNull<u8>, usize)> {
        let size = self.block_size.get();
        self.pop(size).map(|b| (b, size))
    }

    /// Keeps a dead block of `size` bytes, if the list has room and holds blocks of that size
    /// (an empty list adopts any size). Returns whether it kept the block; if not, the caller
    /// still owns it.
    ///
    /// # Safety
    /// `block` must be a live block of the owning allocator, allocated with `size` bytes and
    /// aligned to 8, that the caller gives up (nobody uses it afterwards).
    #[inline]
    pub(crate) unsafe fn push(&self, block: NonNull<u8>, size: usize, capacity: usize) -> bool {
        let len = self.len.get();
        if len >= capacity || size < MIN_BLOCK {
            return false;
        }
        if len == 0 {
            self.block_size.set(size);
        } else if self.block_size.get() != size {
            return false;
        }
        // SAFETY: the block is ours now (contract) and at least a pointer long, 8-aligned.
        unsafe { block.cast::<Option<NonNull<u8>>>().write(self.head.get()) };
        asan::poison(block, size);
        self.head.set(Some(block));
        self.len.set(len + 1);
        true
    }
}
