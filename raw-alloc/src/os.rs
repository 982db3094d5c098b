//! The operating system's side of the heap: whole arenas, mapped aligned to their size.
//!
//! This module owns one invariant: every region it hands out is `size` bytes long, starts at a
//! multiple of `size` (a power of two), is readable and writable, and stays mapped until it is
//! given back to [`unmap_aligned`] with the same `size`.
//!
//! The real implementation maps anonymous memory with `mmap` (over-mapping by `size` and trimming
//! the unaligned head and tail). Under Miri, which cannot run `mmap`, regions come from
//! `std::alloc` with the same size and alignment, so the tiers above run unchanged.

use std::ptr::NonNull;

/// The size of a transparent huge page on x86-64 Linux.
pub(crate) const HUGE_PAGE_SIZE: usize = 2 << 20;

/// Maps `size` bytes aligned to `size`. Returns `None` when the OS refuses. With `huge_pages`
/// (and `size` a multiple of [`HUGE_PAGE_SIZE`]) the region is advised for transparent huge
/// pages, so touching it costs one fault per 2 MiB instead of one per 4 KiB.
///
/// `size` must be a power of two and a multiple of the page size.
pub(crate) fn map_aligned(size: usize, huge_pages: bool) -> Option<NonNull<u8>> {
    debug_assert!(size.is_power_of_two());
    imp::map_aligned(size, huge_pages && size.is_multiple_of(HUGE_PAGE_SIZE))
}

/// Returns a region to the OS.
///
/// # Safety
/// `base` must come from [`map_aligned`] called with the same `size`, and must not have been
/// unmapped already. No reference into the region may be used afterwards.
pub(crate) unsafe fn unmap_aligned(base: NonNull<u8>, size: usize) {
    // SAFETY: the caller's contract is exactly imp::unmap_aligned's.
    unsafe { imp::unmap_aligned(base, size) }
}

#[cfg(not(miri))]
mod imp {
    use rustix::mm::{madvise, mmap_anonymous, munmap, Advice, MapFlags, ProtFlags};
    use std::ptr::{null_mut, NonNull};

    pub(super) fn map_aligned(size: usize, huge_pages: bool) -> Option<NonNull<u8>> {
        let span = size.checked_mul(2)?;
        // SAFETY: an anonymous private mapping at an address of the kernel's choice aliases no
        // existing Rust object.
        let raw = unsafe {
            mmap_anonymous(
                null_mut(),
                span,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::PRIVATE,
            )
        }
        .ok()? as usize;
        let aligned = (raw + size - 1) & !(size - 1);
        let head = aligned - raw;
        let tail = span - head - size;
        // SAFETY: [raw, raw + head) and [aligned + size, raw + span) are parts of the mapping
        // just made that we never hand out; unmapping them touches nothing else.
        unsafe {
            if head > 0 {
                munmap(raw as *mut _, head).ok()?;
            }
            if tail > 0 {
                munmap((aligned + size) as *mut _, tail).ok()?;
            }
        }
        if huge_pages {
            // SAFETY: advice on a region we just mapped changes no byte of it; a kernel without
            // transparent huge pages refuses, which is harmless.
            let _ = unsafe { madvise(aligned as *mut _, size, Advice::LinuxHugepage) };
        }
        NonNull::new(aligned as *mut u8)
    }

    pub(super) unsafe fn unmap_aligned(base: NonNull<u8>, size: usize) {
        // SAFETY: by the caller's contract the region [base, base + size) is one of ours and
        // is no longer used.
        let result = unsafe { munmap(base.as_ptr().cast(), size) };
        debug_assert!(result.is_ok(), "munmap of an arena failed: {result:?}");
    }
}

#[cfg(miri)]
mod imp {
    use std::alloc::{alloc, dealloc, Layout};
    use std::ptr::NonNull;

    pub(super) fn map_aligned(size: usize, _huge_pages: bool) -> Option<NonNull<u8>> {
        let layout = Layout::from_size_align(size, size).ok()?;
        // SAFETY: the layout has a non-zero size.
        NonNull::new(unsafe { alloc(layout) })
    }

    pub(super) unsafe fn unmap_aligned(base: NonNull<u8>, size: usize) {
        let layout = Layout::from_size_align(size, size).expect("checked when mapped");
        // SAFETY: by the caller's contract `base` came from `alloc` with this same layout.
        unsafe { dealloc(base.as_ptr(), layout) }
    }
}
