//! AddressSanitizer's manual poisoning of the memory pymalloc keeps for itself.
//!
//! ASan sees `malloc` and `free`, not the blocks obj-alloc carves from its arenas: to it a
//! whole arena is one mapped region, so a read of a freed block or of a pool's uncarved slack
//! looks legal. Under ASan (the build script sets `cfg(pyheap_asan)` when the crate is built
//! with `-Zsanitizer=address`) the pools tell it which bytes nobody may touch:
//!
//! ```text
//!   a pool:  | handed out | free (linked) | handed out | not carved yet ...             |
//!              addressable   poisoned        addressable  poisoned
//!   a kind's free list: [dead block] -> [dead block]     poisoned
//! ```
//!
//! - [`poison`] when a block goes back to its pool or onto a kind's free list, and over a
//!   pool's whole body when the pool starts serving a class (the slack beyond `nextoffset`);
//! - [`unpoison`] when a block is handed out, around the intrusive link words obj-alloc reads
//!   and writes inside free blocks, and over a whole arena before it goes back to the OS (the
//!   OS may map the same addresses again, for anyone).
//!
//! In every other build both functions are empty and inline: the hot paths do not change.

use std::ptr::NonNull;

#[cfg(pyheap_asan)]
extern "C" {
    fn __asan_poison_memory_region(addr: *const u8, size: usize);
    fn __asan_unpoison_memory_region(addr: *const u8, size: usize);
}

/// The size of the link word a free block holds (pools and kinds' free lists alike).
pub(crate) const LINK: usize = size_of::<Option<NonNull<u8>>>();

/// Marks `len` bytes at `ptr` as unaddressable: ASan reports any access until [`unpoison`].
#[inline(always)]
pub(crate) fn poison(ptr: NonNull<u8>, len: usize) {
    #[cfg(pyheap_asan)]
    // SAFETY: the ASan runtime only updates its shadow memory for the range; it reads and
    // writes none of the bytes themselves, whatever the range.
    unsafe {
        __asan_poison_memory_region(ptr.as_ptr(), len)
    };
    #[cfg(not(pyheap_asan))]
    let _ = (ptr, len);
}

/// Marks `len` bytes at `ptr` as addressable again.
#[inline(always)]
pub(crate) fn unpoison(ptr: NonNull<u8>, len: usize) {
    #[cfg(pyheap_asan)]
    // SAFETY: as for `poison`: only the shadow memory changes.
    unsafe {
        __asan_unpoison_memory_region(ptr.as_ptr(), len)
    };
    #[cfg(not(pyheap_asan))]
    let _ = (ptr, len);
}
