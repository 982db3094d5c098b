//! `&ObjAlloc` as an [`allocator_api2::alloc::Allocator`], so that `hashbrown` tables and
//! `allocator_api2` vectors can live in the private heap.
//!
//! Layouts aligned to at most 8 bytes are plain [`ObjAlloc::alloc`] requests (every block is
//! 8-aligned). A layout aligned to 16 asks for its size rounded up to a non-zero multiple of 16,
//! which the size classes serve with a 16-aligned block (see the `size_class` module); only a
//! zero-sized layout actually changes, since a layout's size is a multiple of its alignment.
//! A larger
//! alignment is served by over-allocating `size + align` bytes and moving the pointer up to the
//! next multiple of `align`; the distance moved (at least 8 bytes, since every block is
//! 8-aligned; in fact 16, since `size + align` is a multiple of 16) is stored in the word just below the pointer handed out, for the free.
//!
//! ```text
//!   block (8-aligned)               ptr (a multiple of align)
//!   v                               v
//!   +---------------------+--------+---------------------------+----------+
//!   |   unused            | offset |   layout.size() bytes     |  unused  |
//!   +---------------------+--------+---------------------------+----------+
//!   |<------ offset (8..=align) --->|
//!   |<------------------- size + align bytes ------------------------------>|
//! ```

use std::ptr::NonNull;

use allocator_api2::alloc::{AllocError, Allocator, Layout};
use raw_alloc::ALIGNMENT;

use crate::size_class::QUANTUM;
use crate::ObjAlloc;

// SAFETY: blocks stay valid until deallocated or until the allocator is dropped, which the
// borrow `&'a ObjAlloc` outlives every user of; copies of `&ObjAlloc` are the same allocator;
// every block meets the layout's size and alignment (below).
unsafe impl Allocator for &ObjAlloc {
    fn allocate(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        let ptr = if layout.align() <= ALIGNMENT {
            self.alloc(request_size(layout)).map_err(|_| AllocError)?
        } else {
            self.alloc_over_aligned(layout)?
        };
        Ok(NonNull::slice_from_raw_parts(ptr, layout.size()))
    }

    unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout) {
        if layout.align() <= ALIGNMENT {
            // SAFETY: allocated by `allocate` with this layout, so by `alloc(request_size(layout))`.
            unsafe { self.dealloc(ptr, request_size(layout)) }
        } else {
            // SAFETY: allocated by `alloc_over_aligned` with this layout.
            unsafe { self.dealloc_over_aligned(ptr, layout) }
        }
    }
}

const OFFSET_WORD: usize = size_of::<usize>();

/// The bytes asked of [`ObjAlloc::alloc`] for a layout aligned to at most [`ALIGNMENT`]: its size,
/// rounded up to a non-zero multiple of 16 when it must be 16-aligned (a request of a multiple
/// of 16 bytes gets a 16-aligned block; any request gets an 8-aligned one).
#[inline]
fn request_size(layout: Layout) -> usize {
    if layout.align() <= QUANTUM {
        layout.size()
    } else {
        // A layout's size is at most isize::MAX - (align - 1), so this cannot overflow.
        layout.size().max(1).next_multiple_of(ALIGNMENT)
    }
}

impl ObjAlloc {
    fn alloc_over_aligned(&self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        let align = layout.align();
        let total = layout.size().checked_add(align).ok_or(AllocError)?;
        let block = self.alloc(total).map_err(|_| AllocError)?;
        let offset = align - (block.addr().get() & (align - 1));
        debug_assert!((QUANTUM..=align).contains(&offset));
        // SAFETY: offset <= align, so ptr .. ptr + size stays inside the block of size + align
        // bytes; every block is 8-aligned, so offset >= 8 leaves room for the offset word below
        // ptr, 8-aligned.
        unsafe {
            let ptr = block.add(offset);
            ptr.sub(OFFSET_WORD).cast::<usize>().write(offset);
            Ok(ptr)
        }
    }

    /// # Safety
    /// `ptr` must come from [`alloc_over_aligned`](Self::alloc_over_aligned) with `layout` and
    /// not have been freed.
    unsafe fn dealloc_over_aligned(&self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: alloc_over_aligned wrote the offset just below ptr, inside the block; the
        // block starts `offset` bytes below ptr and has size + align bytes.
        unsafe {
            let offset = ptr.sub(OFFSET_WORD).cast::<usize>().read();
            self.dealloc(ptr.sub(offset), layout.size() + layout.align());
        }
    }
}
