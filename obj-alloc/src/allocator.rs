//! [`ObjAlloc`]: the object allocator, with the hot paths of `alloc` and `dealloc`.
//!
//! The hot path is: a request of `1..=SMALL_REQUEST_THRESHOLD` bytes, with the arena backend and
//! no debug layer, served from the head pool of its class in the used table, which keeps a free
//! block. Everything else (a new pool, a pool becoming full or empty, direct blocks, the debug
//! layer, the system backend) leaves through a function of its own.

use std::cell::{Cell, RefCell};
use std::ptr::NonNull;

use raw_alloc::{debug, Backend, DebugViolation, OomCause, OutOfMemory, RawHeap};

use crate::arena::ArenaTable;
use crate::config::{ConfigError, ObjConfig};
use crate::kind::Kinds;
use crate::pool::{AfterFree, Geometry, Pool, UsedPools};
use crate::size_class::{SizeClass, SMALL_REQUEST_THRESHOLD};

/// The object allocator of one private heap: pymalloc over a [`RawHeap`].
///
/// Single-threaded: it is used through `&self` from one thread (it is neither `Send` nor
/// `Sync`). Blocks are aligned to 8 bytes, and to 16 ([`raw_alloc::ALIGNMENT`]) when the request
/// is a non-zero multiple of 16 bytes (see [`SizeClass`]). Frees must give the size the block was
/// allocated with, as Rust deallocation does.
///
/// Dropping the allocator frees every kind's free list, returns every arena to the OS and every
/// direct block to the system allocator: blocks still handed out become dangling.
#[repr(C)] // the hot fields first, in one cache line with the first classes' used pools
pub struct ObjAlloc {
    /// Requests of `1..=fast_limit` bytes take the fast path: `SMALL_REQUEST_THRESHOLD` with the
    /// arena backend and no debug layer, else 0 (everything takes the general path).
    fast_limit: usize,
    /// Where pools and their headers are: a block's pool is found from its address.
    pub(crate) geometry: Geometry,
    /// Per size class, the used pools.
    pub(crate) used: UsedPools,
    pub(crate) arenas: RefCell<ArenaTable>,
    pub(crate) kinds: Kinds,
    pub(crate) arena_shift: u8,
    pub(crate) raw: RawHeap,
    /// The run buffer of [`FreeBatch`](crate::FreeBatch), kept between batches so that a batch
    /// allocates nothing (a batch takes it and puts it back; a nested batch makes its own).
    pub(crate) free_run_buffer: Cell<Vec<NonNull<u8>>>,
}

/// Where the block layer serves a request of some number of bytes.
#[derive(Clone, Copy)]
enum Route {
    Pool(SizeClass),
    Direct,
}

impl ObjAlloc {
    /// Makes an allocator that holds no memory yet.
    pub fn new(config: ObjConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let keep_empty = config.empty_arenas_kept();
        let raw = RawHeap::new(config.raw)?;
        let arena_size = raw.config().arena_size;
        let geometry = Geometry::new(arena_size, config.pool_size);
        let plain = raw.config().backend == Backend::Arena && !raw.config().debug;
        Ok(ObjAlloc {
            fast_limit: if plain { SMALL_REQUEST_THRESHOLD } else { 0 },
            geometry,
            used: UsedPools::new(),
            arenas: RefCell::new(ArenaTable::new(geometry, keep_empty)),
            kinds: Kinds::new(),
            arena_shift: arena_size.trailing_zeros() as u8,
            raw,
            free_run_buffer: Cell::new(Vec::new()),
        })
    }

    /// The raw heap underneath (its configuration, statistics, debug layer).
    pub fn raw(&self) -> &RawHeap {
        &self.raw
    }

    /// Bytes per pool.
    pub fn pool_size(&self) -> usize {
        self.geometry.pool_size()
    }

    /// Returns every retained empty arena (see [`ObjConfig::empty_arena_budget`]) to the OS.
    /// After every block is freed and `trim` (or [`clear_free_lists`], which calls it) runs, no
    /// arena is mapped.
    ///
    /// [`clear_free_lists`]: Self::clear_free_lists
    pub fn trim(&self) {
        self.arenas.borrow_mut().release_retained(&self.raw);
    }

    /// Empty arenas retained now (mapped, every pool free, waiting for the next pools).
    pub fn retained_arenas(&self) -> u32 {
        self.arenas.borrow().retained()
    }

    /// The size class of a request that takes the fast path, if it does.
    #[inline(always)]
    pub(crate) fn fast_class(&self, size: usize) -> Option<SizeClass> {
        let size_minus_one = size.wrapping_sub(1); // 0 wraps around and takes the general path
        if size_minus_one < self.fast_limit {
            Some(SizeClass::from_request_index(size_minus_one))
        } else {
            None
        }
    }

    /// Allocates `size` bytes, aligned to 8, or to 16 when `size` is a non-zero multiple of 16 (a
    /// caller that needs 16 rounds its size up). Small requests come from pools, larger ones (and
    /// all of them with the system backend) are direct blocks, always 16-aligned. Zero bytes are
    /// served as one.
    ///
    /// Fails only when the raw heap refuses more memory (the heap limit or the OS); the
    /// allocator is unchanged then.
    #[inline]
    pub fn alloc(&self, size: usize) -> Result<NonNull<u8>, OutOfMemory> {
        match self.fast_class(size) {
            Some(class) => self.alloc_small(class),
            None => self.alloc_general(size),
        }
    }

    /// Frees a block. With the debug layer on, a violation found is counted and traced by the
    /// layer and the block is left alone; [`try_dealloc`](Self::try_dealloc) returns it instead.
    ///
    /// # Safety
    /// `ptr` must come from this allocator with `size` bytes (any allocation function of it; the
    /// kinds' included) and not have been freed since. With the debug layer on, a pointer that
    /// breaks this is reported (double free, foreign pointer, size mismatch) without being
    /// dereferenced, provided the padded block of a pointer the layer knows is still mapped.
    #[inline]
    pub unsafe fn dealloc(&self, ptr: NonNull<u8>, size: usize) {
        match self.fast_class(size) {
            // SAFETY: a live block of this class (caller's contract).
            Some(class) => unsafe { self.free_small(ptr, class) },
            // SAFETY: the caller's contract; a violation was counted and traced by the layer.
            None => _ = unsafe { self.try_dealloc_general(ptr, size) },
        }
    }

    /// Frees a block, returning what the debug layer found wrong, if it is on. On a violation the
    /// block is not returned to its pool.
    ///
    /// # Safety
    /// As for [`dealloc`](Self::dealloc).
    pub unsafe fn try_dealloc(&self, ptr: NonNull<u8>, size: usize) -> Result<(), DebugViolation> {
        match self.fast_class(size) {
            Some(class) => {
                // SAFETY: a live block of this class (caller's contract).
                unsafe { self.free_small(ptr, class) };
                Ok(())
            }
            // SAFETY: the caller's contract.
            None => unsafe { self.try_dealloc_general(ptr, size) },
        }
    }

    // ---- the pool paths -------------------------------------------------------------------

    /// A block of `class` from the head pool of the used table, or from a new pool.
    #[inline(always)]
    fn alloc_small(&self, class: SizeClass) -> Result<NonNull<u8>, OutOfMemory> {
        let Some(pool) = self.used.head(class) else {
            return self.alloc_from_new_pool(class);
        };
        // SAFETY: a pool in the used table is live and has a free block (used invariant).
        let (block, exhausted) = unsafe { pool.pop() };
        if exhausted {
            // SAFETY: the pool is live, used, in the table for `class`, with an empty free list,
            // and `block` is one of its blocks.
            unsafe { self.pool_exhausted(pool, class, block) };
        }
        Ok(block)
    }

    /// Gives a block back to its pool.
    ///
    /// # Safety
    /// `block` must be a handed-out block of `class` from this allocator's pools.
    #[inline(always)]
    unsafe fn free_small(&self, block: NonNull<u8>, class: SizeClass) {
        let pool = self.geometry.pool_of(block);
        // SAFETY: the block is handed out, so its pool is live (contract).
        let after = unsafe { pool.push(block) };
        if after != AfterFree::StillUsed {
            // SAFETY: the pool is live, of `class`, and just changed state as `after` says.
            unsafe { self.pool_changed_state(pool, class, after) };
        }
    }

    /// The used table has no pool for `class`: takes a pool from the arenas.
    #[cold]
    #[inline(never)]
    fn alloc_from_new_pool(&self, class: SizeClass) -> Result<NonNull<u8>, OutOfMemory> {
        let taken = self.arenas.borrow_mut().take_pool(class, &self.raw);
        match taken {
            Ok((pool, block)) => {
                // SAFETY: take_pool hands out a live pool, used, of `class`, in no list.
                unsafe { self.used.push_front(class, pool) };
                tracing::trace!(target: "obj_alloc", class = class.index(), "pool taken");
                Ok(block)
            }
            Err(refused) => {
                // No new pool (the limit or the OS): a free block of a withheld pool serves
                // before the request fails, so a request is refused only when its class has
                // no free block at all.
                let pool = self.arenas.borrow().withheld_pool(class).ok_or(refused)?;
                // SAFETY: a live pool of `class`, withheld with a free block, so in no list;
                // once its hold ends it is used and may join the used table.
                unsafe {
                    pool.end_hold();
                    self.used.push_front(class, pool);
                }
                self.alloc_small(class)
            }
        }
    }

    /// The head pool of `class` handed out its last free block: carves a batch more, or, when
    /// nothing is left to carve, the pool is full: it leaves the used table, withheld.
    ///
    /// # Safety
    /// `pool` must be live, in the used table for `class`, with an empty free list; `block` one
    /// of its blocks.
    #[cold]
    #[inline(never)]
    unsafe fn pool_exhausted(&self, pool: Pool, class: SizeClass, block: NonNull<u8>) {
        // SAFETY: the pool is live with an empty free list, and holds `block` (contract); once
        // unlinked, it is in no list, full, and may be withheld.
        unsafe {
            if pool.can_carve(self.geometry) {
                pool.carve(block, self.geometry);
            } else {
                self.used.remove(class, pool);
                pool.withhold();
            }
        }
    }

    /// A free changed a pool's state: withheld -> used rejoins the used table; used -> empty
    /// leaves it and goes back to its arena (which may go back to the OS); withheld -> empty (a
    /// run of frees) goes back to its arena from no list.
    ///
    /// # Safety
    /// `pool` must be live, of `class`, and have just changed state as `after` says.
    #[cold]
    #[inline(never)]
    pub(crate) unsafe fn pool_changed_state(&self, pool: Pool, class: SizeClass, after: AfterFree) {
        match after {
            AfterFree::StillUsed => {}
            // SAFETY: a withheld pool is in no list; its hold ended, so it is used again.
            AfterFree::NoLongerWithheld => unsafe { self.used.push_front(class, pool) },
            AfterFree::Empty => {
                tracing::trace!(target: "obj_alloc", class = class.index(), "pool released");
                // SAFETY: it was used, so linked for `class`; now it is empty and in no list.
                unsafe {
                    self.used.remove(class, pool);
                    self.arenas.borrow_mut().return_pool(pool, &self.raw);
                }
            }
            AfterFree::EmptyFromWithheld => {
                tracing::trace!(target: "obj_alloc", class = class.index(), "pool released");
                // SAFETY: a withheld pool is in no list; now it is empty.
                unsafe { self.arenas.borrow_mut().return_pool(pool, &self.raw) };
            }
        }
    }

    // ---- the general paths: direct blocks, the system backend, the debug layer -----------

    /// The bytes the block layer must provide for a request of `size`: the debug layer's padded
    /// size, if it is on. `None` if that overflows.
    fn block_bytes(&self, size: usize) -> Option<usize> {
        if self.raw.debug_layer().is_some() {
            size.checked_add(debug::padded_size(0))
        } else {
            Some(size)
        }
    }

    /// Where a block of `bytes` comes from.
    fn route(&self, bytes: usize) -> Route {
        match self.raw.config().backend {
            Backend::System => Route::Direct,
            Backend::Arena => SizeClass::of(bytes).map_or(Route::Direct, Route::Pool),
        }
    }

    /// The bytes a request of `size` bytes takes from this allocator, as `sys.getsizeof` would
    /// count them: the block size of its size class when it is carved from a pool (without the
    /// debug layer's pads), else the request itself (a direct block).
    pub fn usable_size(&self, size: usize) -> usize {
        match self.block_bytes(size).map(|b| self.route(b)) {
            Some(Route::Pool(_)) if self.raw.debug_layer().is_none() => {
                SizeClass::of(size).map_or(size, SizeClass::block_size)
            }
            _ => size,
        }
    }

    /// Whether a request of `size` bytes is carved from an arena.
    pub(crate) fn is_pooled(&self, size: usize) -> bool {
        matches!(
            self.block_bytes(size).map(|b| self.route(b)),
            Some(Route::Pool(_))
        )
    }

    #[inline(never)]
    fn alloc_general(&self, size: usize) -> Result<NonNull<u8>, OutOfMemory> {
        let Some(bytes) = self.block_bytes(size) else {
            return Err(OutOfMemory {
                requested: size,
                limit: self.raw.config().limit,
                in_use: self.raw.stats().bytes_in_use,
                cause: OomCause::Os,
            });
        };
        let block = match self.route(bytes) {
            Route::Pool(class) => self.alloc_small(class)?,
            Route::Direct => self.alloc_direct(bytes)?,
        };
        Ok(match self.raw.debug_layer() {
            // SAFETY: the block is fresh, padded_size(size) bytes long, and 16-aligned when
            // padded_size(size) is a multiple of 16 (8-aligned otherwise, which the layer allows).
            Some(layer) => unsafe { layer.on_alloc(block, size) },
            None => block,
        })
    }

    /// A direct block from the raw heap. If the limit refuses it while empty arenas are retained,
    /// they go back to the OS first and the request is tried again: retention never costs an
    /// allocation. (A new pool never needs this: arenas are only mapped when none is retained.)
    fn alloc_direct(&self, bytes: usize) -> Result<NonNull<u8>, OutOfMemory> {
        if !self.raw.within_limit(bytes) && self.retained_arenas() > 0 {
            self.trim();
        }
        self.raw.alloc_direct(bytes)
    }

    /// # Safety
    /// As for [`dealloc`](Self::dealloc).
    #[inline(never)]
    unsafe fn try_dealloc_general(
        &self,
        ptr: NonNull<u8>,
        size: usize,
    ) -> Result<(), DebugViolation> {
        let block = match self.raw.debug_layer() {
            // SAFETY: the caller's contract is the layer's.
            Some(layer) => unsafe { layer.on_free(ptr, size)? },
            None => ptr,
        };
        // The layer accepted the block, so `size` is what was allocated and this cannot overflow.
        let bytes = self.block_bytes(size).expect("checked when allocated");
        match self.route(bytes) {
            // SAFETY: a handed-out block of this class (caller's contract, checked by the layer).
            Route::Pool(class) => unsafe { self.free_small(block, class) },
            // SAFETY: a direct block allocated with `bytes` bytes (caller's contract).
            Route::Direct => unsafe { self.raw.free_direct(block, bytes) },
        }
        Ok(())
    }
}

impl Drop for ObjAlloc {
    fn drop(&mut self) {
        self.clear_free_lists();
        self.used.clear();
        // SAFETY: the allocator is going away; nothing may use its blocks afterwards (documented
        // on the type).
        unsafe { self.arenas.get_mut().release_all(&self.raw) };
    }
}
