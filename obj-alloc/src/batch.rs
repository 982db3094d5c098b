//! [`FreeBatch`]: many frees at once, with the pool work done once per run of blocks of one
//! pool (a collector freeing its garbage frees mostly consecutive blocks, often whole pools).
//!
//! ```text
//!   push(b0) push(b1) ... push(b340)  push(c0) ...   (b*: blocks of pool P, c*: of pool Q)
//!   run: P [b0 b1 ... b340]  --the pool changes-->  flush P, then  run: Q [c0 ...]
//!
//!   flush P:  the run holds every block P has handed out -> P is empty wholesale: its header
//!                                                           reset, no block written;
//!             else -> the run is linked onto P's free list, in push order;
//!             then at most one state change (used, withheld -> used, -> empty) for the whole run
//! ```
//!
//! Until its run is flushed (when the pool changes, on [`FreeBatch::finish`] and on drop), a
//! block pushed still counts as handed out: its pool cannot empty or be reused under it, so
//! anything may happen meanwhile (allocation included) and stay correct. Flushing only on a
//! change of pool keeps every pool's and arena's state changes in the order frees one by one
//! make them, so the heap ends exactly as they would leave it.

use std::ptr::NonNull;

use crate::kind::KindId;
use crate::pool::{AfterFree, Pool};
use crate::prefetch::prefetch_for_write;
use crate::size_class::{SizeClass, QUANTUM};
use crate::ObjAlloc;

/// A batch of frees: the pool work (finding the pool's state, linking blocks, a state change)
/// is done once per run of consecutive blocks of one pool instead of once per block, and a run
/// that frees all of a pool's handed-out blocks empties it without writing into any block.
///
/// Observably the same as freeing each block one by one with
/// [`dealloc`](ObjAlloc::dealloc), [`dealloc_kind`](ObjAlloc::dealloc_kind) or
/// [`dealloc_kind_len`](ObjAlloc::dealloc_kind_len), in push order: the same kind counters and
/// free lists, the same pool and arena states and statistics, the same arenas retained or
/// returned to the OS, the same blocks handed out next. Blocks that do not come from a pool
/// (direct blocks, the debug layer, `Backend::System`) and blocks a kind's free list keeps take
/// the one-by-one path at once.
///
/// Until the batch is [`finish`](Self::finish)ed (or dropped), the blocks of its pending run
/// (the last pool's) still count as handed out, in [`ObjAlloc::stats`] too; everything else,
/// kind counters included, is up to date after each push.
///
/// ```
/// use obj_alloc::{ObjAlloc, ObjConfig};
///
/// let heap = ObjAlloc::new(ObjConfig::default()).unwrap();
/// let blocks: Vec<_> = (0..1000).map(|_| heap.alloc(48).unwrap()).collect();
/// let mut batch = heap.free_batch();
/// for block in blocks {
///     // SAFETY: each block came from this heap with 48 bytes and is freed once.
///     unsafe { batch.push(block, 48) };
/// }
/// batch.finish();
/// assert_eq!(heap.stats().totals.bytes_in_blocks, 0);
/// ```
pub struct FreeBatch<'a> {
    heap: &'a ObjAlloc,
    /// The pool of the pending run and its class; `None` when no run is pending.
    run_pool: Option<(Pool, SizeClass)>,
    /// The pending run: distinct blocks of `run_pool`, handed out and given up by the pushes'
    /// callers (the *run invariant*), in push order.
    run: Vec<NonNull<u8>>,
}

impl ObjAlloc {
    /// Starts a batch of frees (see [`FreeBatch`]). The batch borrows the allocator; it
    /// allocates nothing (its run buffer is kept in the allocator between batches).
    #[must_use = "a batch does nothing until blocks are pushed"]
    pub fn free_batch(&self) -> FreeBatch<'_> {
        let mut run = self.free_run_buffer.take();
        if self.fast_class(1).is_some() {
            // A run holds at most a pool's blocks: pool_size / 8 for the smallest class.
            run.reserve(self.geometry.pool_size() / QUANTUM);
        }
        FreeBatch {
            heap: self,
            run_pool: None,
            run,
        }
    }
}

impl FreeBatch<'_> {
    /// Frees a block, as [`ObjAlloc::dealloc`] would.
    ///
    /// # Safety
    /// As for [`ObjAlloc::dealloc`]: `block` must come from the batch's allocator with `size`
    /// bytes and not have been freed since (nor pushed to a batch).
    #[inline]
    pub unsafe fn push(&mut self, block: NonNull<u8>, size: usize) {
        // Zero bytes are served as one; with the debug layer or the system backend every size
        // takes the general path.
        match self.heap.fast_class(size.max(1)) {
            // SAFETY: a handed-out block of this class, given up (contract).
            Some(class) => unsafe { self.push_small(block, class) },
            // A direct block (or the debug layer, or the system backend, where no run is ever
            // pending): no pool's state is involved, so the run need not be flushed first.
            // SAFETY: the caller's contract.
            None => unsafe { self.heap.dealloc(block, size) },
        }
    }

    /// Frees an object of `kind`, as [`ObjAlloc::dealloc_kind`] would.
    ///
    /// # Safety
    /// As for [`push`](Self::push).
    #[inline]
    pub unsafe fn push_kind(&mut self, kind: KindId, block: NonNull<u8>, size: usize) {
        // SAFETY: the caller's contract is ours.
        unsafe { self.push_kind_inner(kind, None, block, size) }
    }

    /// Frees an object of `kind` and length `len`, as [`ObjAlloc::dealloc_kind_len`] would.
    ///
    /// # Safety
    /// As for [`push`](Self::push).
    #[inline]
    pub unsafe fn push_kind_len(
        &mut self,
        kind: KindId,
        len: usize,
        block: NonNull<u8>,
        size: usize,
    ) {
        // SAFETY: the caller's contract is ours.
        unsafe { self.push_kind_inner(kind, Some(len), block, size) }
    }

    /// Frees every pending block. Dropping the batch does the same.
    pub fn finish(self) {}

    /// # Safety
    /// As for [`push`](Self::push).
    #[inline(always)]
    unsafe fn push_kind_inner(
        &mut self,
        kind: KindId,
        len: Option<usize>,
        block: NonNull<u8>,
        size: usize,
    ) {
        // SAFETY: the caller's contract: a live block of `size` bytes, given up.
        if !unsafe { self.heap.count_free_and_keep(kind, len, block, size) } {
            // SAFETY: as above; the kind did not keep the block.
            unsafe { self.push(block, size) }
        }
    }

    /// Adds a pool block to the run, flushing the run first if the block is of another pool.
    ///
    /// # Safety
    /// `block` must be a handed-out block of `class` of the allocator's pools, given up.
    #[inline(always)]
    unsafe fn push_small(&mut self, block: NonNull<u8>, class: SizeClass) {
        let pool = self.heap.geometry.pool_of(block);
        if self.run_pool.map(|(p, _)| p) != Some(pool) {
            self.flush();
            self.run_pool = Some((pool, class));
        }
        debug_assert_eq!(self.run_pool, Some((pool, class)), "one class per pool");
        // A block that does not follow the run's last one: the run is likely not its whole pool
        // in order, so the flush will write its link. Fetching its line now lets that miss
        // overlap the pushes instead of stalling the flush (freeing every other block of 1M:
        // 10.3 -> 6.5 ns a block). Blocks in order, the whole-pool case, are never touched.
        if let Some(&last) = self.run.last() {
            if last.as_ptr().wrapping_add(class.block_size()) != block.as_ptr() {
                prefetch_for_write(block.as_ptr());
            }
        }
        // Never grows: a run holds at most a pool's blocks, and the buffer has room for them.
        self.run.push(block);
    }

    /// Gives the pending run back to its pool: one [`Pool::free_run`] and at most one state
    /// change.
    #[inline(never)]
    fn flush(&mut self) {
        let Some((pool, class)) = self.run_pool.take() else {
            return;
        };
        // SAFETY: the run is non-empty (a run starts with a push) and made of distinct
        // handed-out blocks of `pool`, given up (run invariant); they keep the pool live.
        let after = unsafe { pool.free_run(&self.run, self.heap.geometry) };
        self.run.clear();
        if after != AfterFree::StillUsed {
            // SAFETY: the pool is live, of `class`, and just changed state as `after` says.
            unsafe { self.heap.pool_changed_state(pool, class, after) };
        }
    }
}

impl Drop for FreeBatch<'_> {
    fn drop(&mut self) {
        self.flush();
        self.heap.free_run_buffer.set(std::mem::take(&mut self.run));
    }
}
