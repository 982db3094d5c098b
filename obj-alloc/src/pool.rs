//! Pools: `pool_size`-aligned pieces of an arena that each serve blocks of one size class; the
//! pool table that holds their headers; and the table of partly used pools per class (CPython's
//! `usedpools`).
//!
//! ```text
//!   arena base = block & !(arena_size - 1)
//!   |
//!   v
//!   +-------------+--------------------------------+-------------+---------+---------+-----
//!   | ArenaHeader | PoolHeader 0 | PoolHeader 1 |...| blocks of   | pool 1  | pool 2  | ...
//!   | (raw-alloc) |        the pool table           | pool 0      |         |         |
//!   +-------------+--------------------------------+-------------+---------+---------+-----
//!   |<------------------------ pool 0 ------------------------->|<- pool_size ->|
//!
//!   pool index of a block = (block & (arena_size - 1)) >> log2(pool_size)
//!   its header            = arena base + ARENA_HEADER_SIZE + index * size_of::<PoolHeader>()
//!
//!   inside a pool:  | block | block | block |  not carved yet ...        |
//!                                           ^ nextoffset
//!   freeblock -> block 1 -> block 0 -> None        (freed blocks link through their first word)
//! ```
//!
//! CPython puts each pool's header at the pool's own base. Here the headers of an arena's pools
//! sit side by side after the arena header: pool bases are all `pool_size` apart, so headers at
//! the bases all fall into the same cache sets and evict one another (measured with cachegrind on
//! a churn of 1,000 live blocks: 2.5 L1 misses per allocate+free with headers at the bases, 1.0
//! with the table). The table takes the start of pool 0 (2.5 KiB of a 1 MiB arena of 16 KiB
//! pools, less than CPython's 48 bytes per pool), and a pool's header is still found from a block
//! by masking and shifting its address.
//!
//! This module owns one invariant, the *pool invariant*: for a pool whose header was written by
//! [`Pool::init`] and whose arena is still mapped (a *live* pool),
//! - `count` blocks are handed out (to users or to a kind's free list);
//! - every block on the `freeblock` list lies in the pool, below `nextoffset`, and is not handed
//!   out; its first word links to the next free block;
//! - the blocks at and beyond `nextoffset` were never handed out (carved lazily, a batch at a time).
//!
//! [`UsedPools`] adds the *used invariant*: a pool is linked into `UsedPools` for its class iff it
//! is *used* (some blocks handed out, `freeblock` not empty, `hold == 0`). A *withheld* pool (it
//! handed out its last block, and frees have given back fewer than [`HOLD`] blocks since; `hold`
//! counts the frees still to come; a *full* pool is a withheld one with an empty `freeblock`) and
//! an *empty* pool (`count == 0`, owned by its arena) are in no list here.
//!
//! Why withhold: a full pool put back in the used table at its first free (CPython's rule) is
//! full again at its class's next allocation. In a churn of mostly full pools (100,000 live
//! blocks, each step one free and one allocation) nearly every step then linked a pool and
//! unlinked it again, and the two branches that decide it went either way at random. A pool
//! withheld until it has gathered [`HOLD`] free blocks changes state once per `HOLD` frees, and
//! joins at the head as before, so that allocation still fills the fullest pools first and the
//! emptiest drain (a heap shrunk from 1,000,000 blocks to 100,000 and churned ends with as many
//! pools as before, 1,804 against 1,743; a FIFO used list, which also ends the flapping, kept
//! 4,503). The cost: at most `HOLD - 1` free blocks per withheld pool that no allocation takes
//! while another pool has one (a heap limit that refuses a new pool ends a hold first).

use std::cell::Cell;
use std::ptr::NonNull;

use raw_alloc::{ALIGNMENT, ARENA_HEADER_SIZE};

use crate::asan;
use crate::size_class::{SizeClass, NUM_SIZE_CLASSES, SMALL_REQUEST_THRESHOLD};

/// What the pool table records about one pool. The fields a free and an allocation touch come
/// first (14 bytes: of the 40-byte entries, which start 16 bytes into a 64-aligned arena, one
/// in eight straddles two cache lines; with `count` after the links, three in eight did).
#[repr(C)]
pub(crate) struct PoolHeader {
    /// The first free block, or `None` when every carved block is handed out.
    freeblock: Option<NonNull<u8>>,
    /// Blocks handed out.
    count: u32,
    /// For a *withheld* pool (full, then given back fewer than [`HOLD`] blocks), the frees still
    /// to come before it is used again (at least 1); 0 for every other pool.
    hold: u8,
    /// The size class the pool serves.
    class: SizeClass,
    /// Links in the used table (both) or in the arena's list of empty pools (`nextpool` only).
    nextpool: Option<Pool>,
    prevpool: Option<Pool>,
    /// Offset from the pool base of the first block never carved.
    nextoffset: u32,
    /// The slot of the pool's arena in the arena table.
    arena_index: u32,
}

const HEADER: usize = size_of::<PoolHeader>();

/// How many blocks a pool that became full gathers from frees before it rejoins the used table
/// (fewer when it holds fewer blocks). A full pool put back at the first free would be full
/// again at the next allocation: in a churn of mostly full pools, nearly every step would link
/// and unlink a pool, and the branches that decide it would be a coin toss.
pub(crate) const HOLD: u8 = 4;

/// The most bytes of blocks [`Pool::carve`] carves at once: one 4 KiB page.
pub(crate) const CARVE_BATCH: usize = 4 << 10;

const _: () = assert!(ARENA_HEADER_SIZE.is_multiple_of(align_of::<PoolHeader>()));

/// A handle to a pool's header in its arena's pool table. Copying it copies no memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(transparent)]
pub(crate) struct Pool(NonNull<PoolHeader>);

/// The shape of arenas and pools: where pools and their headers are, and where blocks start.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Geometry {
    /// `!(arena_size - 1)`.
    arena_mask: usize,
    /// `log2(pool_size)`.
    pool_shift: u32,
    /// Bytes per pool.
    pool_size: usize,
    /// Pools per arena, counting those the pool table covers.
    pools_per_arena: u32,
    /// Offset from the arena base of the first byte after the pool table, 16-aligned.
    table_end: usize,
    /// The first pool with room for blocks (two of the largest class) after the table.
    first_pool: u32,
}

impl Geometry {
    /// The geometry of `arena_size`-byte arenas of `pool_size`-byte pools (both powers of two,
    /// `pool_size <= arena_size`, checked by the configuration).
    pub(crate) fn new(arena_size: usize, pool_size: usize) -> Geometry {
        let pools_per_arena = u32::try_from(arena_size / pool_size).expect("checked by the config");
        let table_end =
            (ARENA_HEADER_SIZE + pools_per_arena as usize * HEADER).div_ceil(ALIGNMENT) * ALIGNMENT;
        let room = pool_size - 2 * SMALL_REQUEST_THRESHOLD;
        // The table's tail may leave too little room in its last pool: that pool is skipped.
        let mut first_pool = table_end / pool_size;
        if table_end % pool_size > room {
            first_pool += 1;
        }
        // Cannot fail: a pool (at least 4 KiB) is far larger than its 40-byte header.
        assert!(
            first_pool < pools_per_arena as usize,
            "the pool table leaves no pool for blocks"
        );
        Geometry {
            arena_mask: !(arena_size - 1),
            pool_shift: pool_size.trailing_zeros(),
            pool_size,
            pools_per_arena,
            table_end,
            first_pool: first_pool as u32,
        }
    }

    /// Bytes per pool.
    pub(crate) fn pool_size(self) -> usize {
        self.pool_size
    }

    /// The pools of an arena that can hold blocks: `first_pool..pools_per_arena`.
    pub(crate) fn usable_pools(self) -> std::ops::Range<u32> {
        self.first_pool..self.pools_per_arena
    }

    /// Bytes at the start of an arena that no usable pool's blocks use: the arena header, the pool
    /// table and the pools it covers.
    pub(crate) fn table_bytes(self) -> usize {
        self.first_pool as usize * self.pool_size + self.first_block(self.first_pool)
    }

    /// The offset of pool `index`'s first block from the pool's base: 0 except where the pool
    /// table takes the start of the pool.
    pub(crate) fn first_block(self, index: u32) -> usize {
        let base = index as usize * self.pool_size;
        self.table_end.saturating_sub(base).min(self.pool_size)
    }

    /// How many blocks of `class` pool `index` holds.
    pub(crate) fn capacity(self, class: SizeClass, index: u32) -> usize {
        (self.pool_size - self.first_block(index)) / class.block_size()
    }

    /// The pool that contains `block`. Nothing is read; the pointer keeps `block`'s provenance.
    #[inline(always)]
    pub(crate) fn pool_of(self, block: NonNull<u8>) -> Pool {
        let header = block.as_ptr().map_addr(|a| {
            let arena = a & self.arena_mask;
            let index = (a - arena) >> self.pool_shift;
            arena + ARENA_HEADER_SIZE + index * HEADER
        });
        // SAFETY: the address is at least ARENA_HEADER_SIZE, so it is not null.
        Pool(unsafe { NonNull::new_unchecked(header) }.cast())
    }

    /// Pool `index` of the arena at `arena_base`. Nothing is read.
    pub(crate) fn pool_at(self, arena_base: NonNull<u8>, index: u32) -> Pool {
        debug_assert!(index < self.pools_per_arena);
        // SAFETY: the table lies inside the arena (it ends before the first usable pool).
        Pool(unsafe { arena_base.add(ARENA_HEADER_SIZE + index as usize * HEADER) }.cast())
    }

    /// The pool's index in its arena.
    pub(crate) fn index_of(self, pool: Pool) -> u32 {
        let a = pool.0.as_ptr().addr();
        ((a - (a & self.arena_mask) - ARENA_HEADER_SIZE) / HEADER) as u32
    }

    /// The first byte of the pool.
    fn base_of(self, pool: Pool) -> NonNull<u8> {
        let p = pool.0.cast::<u8>().as_ptr();
        let base =
            p.map_addr(|a| (a & self.arena_mask) + self.index_of(pool) as usize * self.pool_size);
        // SAFETY: a pool's base lies in its arena, and no arena starts at address 0.
        unsafe { NonNull::new_unchecked(base) }
    }
}

/// What freeing a block did to its pool's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AfterFree {
    /// The pool was used and stays used: nothing else to do.
    StillUsed,
    /// The pool was withheld and is used again: it must rejoin the used table.
    NoLongerWithheld,
    /// The pool was used and is now empty: it must leave the used table and go to its arena.
    Empty,
    /// The pool was withheld and is now empty: it is in no list and goes to its arena. Only a
    /// run of frees ([`Pool::free_run`]) does this; one by one, the frees end the hold first.
    EmptyFromWithheld,
}

impl Pool {
    fn header(self) -> *mut PoolHeader {
        self.0.as_ptr()
    }

    /// Makes the pool serve `class` with nothing carved yet but the block returned (its first);
    /// the second becomes the free list. The pool is then used, with one block handed out.
    ///
    /// # Safety
    /// The pool must be a usable pool of a live arena of `geometry` (its header in the arena's
    /// pool table) and hold no handed-out block (it is fresh or empty).
    pub(crate) unsafe fn init(
        self,
        class: SizeClass,
        arena_index: u32,
        geometry: Geometry,
    ) -> NonNull<u8> {
        let size = class.block_size();
        let start = geometry.first_block(geometry.index_of(self));
        debug_assert!(geometry.capacity(class, geometry.index_of(self)) >= 2);
        let base = geometry.base_of(self);
        // SAFETY: both blocks lie inside the pool (a usable pool fits two blocks of any class);
        // the header is the pool's entry in the table, and no block of the pool is handed out.
        unsafe {
            let first = base.add(start);
            let second = first.add(size);
            // Under ASan: the whole body is free (carved or not) but the block handed out.
            asan::poison(first, geometry.pool_size - start);
            asan::unpoison(first, size);
            asan::unpoison(second, asan::LINK);
            second.cast::<Option<NonNull<u8>>>().write(None);
            asan::poison(second, asan::LINK);
            self.header().write(PoolHeader {
                freeblock: Some(second),
                count: 1,
                hold: 0,
                class,
                nextpool: None,
                prevpool: None,
                nextoffset: (start + 2 * size) as u32,
                arena_index,
            });
            first
        }
    }

    /// Hands out the first free block. Returns it and whether the free list is now empty (then
    /// the caller must [`carve`](Self::carve) more blocks or take the pool out of the used table).
    ///
    /// # Safety
    /// The pool must be live and used (its free list not empty).
    #[inline(always)]
    pub(crate) unsafe fn pop(self) -> (NonNull<u8>, bool) {
        let h = self.header();
        // SAFETY: a used pool's header is initialised and its freeblock is a free block of the
        // pool whose first word is the next link (pool invariant).
        unsafe {
            let block = (*h).freeblock.unwrap_unchecked();
            asan::unpoison(block, (*h).class.block_size());
            let next = block.cast::<Option<NonNull<u8>>>().read();
            (*h).freeblock = next;
            (*h).count += 1;
            (block, next.is_none())
        }
    }

    /// Whether a block is left to [`carve`](Self::carve) beyond `nextoffset`; if not, a pool
    /// with an empty free list is full.
    ///
    /// # Safety
    /// The pool must be live, of an arena of `geometry`.
    #[inline(always)]
    pub(crate) unsafe fn can_carve(self, geometry: Geometry) -> bool {
        let h = self.header();
        // SAFETY: the header is initialised (live pool).
        unsafe { (*h).nextoffset as usize + (*h).class.block_size() <= geometry.pool_size }
    }

    /// Carves a batch of blocks from `nextoffset` onto the empty free list: up to
    /// [`CARVE_BATCH`] bytes of them (at least one block), linked in address order, so that a
    /// pool filling up leaves the fast path once per batch rather than once per block (mimalloc
    /// extends a page's free list the same way). Returns whether it carved any; if not, the
    /// pool is full. `any_block` is any block of the pool: the pool's base is found from it by
    /// masking.
    ///
    /// # Safety
    /// The pool must be live, of an arena of `geometry`, with an empty free list; `any_block`
    /// must lie in the pool.
    #[inline(never)]
    pub(crate) unsafe fn carve(self, any_block: NonNull<u8>, geometry: Geometry) -> bool {
        let h = self.header();
        // SAFETY: the header is initialised (live pool); every block carved lies below the
        // pool's end by the bounds, and was never handed out (it is at or past nextoffset).
        unsafe {
            let size = (*h).class.block_size();
            let start = (*h).nextoffset as usize;
            let end = geometry.pool_size - size; // the last offset a block may start at
            if start > end {
                return false;
            }
            let last = end.min(start + CARVE_BATCH.saturating_sub(size));
            let last = start + (last - start) / size * size;
            let base = any_block
                .as_ptr()
                .map_addr(|a| a & !(geometry.pool_size - 1));
            let mut offset = last;
            let mut next: Option<NonNull<u8>> = None;
            loop {
                let block = NonNull::new_unchecked(base.add(offset));
                asan::unpoison(block, asan::LINK);
                block.cast::<Option<NonNull<u8>>>().write(next);
                asan::poison(block, asan::LINK);
                next = Some(block);
                if offset == start {
                    break;
                }
                offset -= size;
            }
            (*h).freeblock = next;
            (*h).nextoffset = (last + size) as u32;
            true
        }
    }

    /// Takes back a block, making it the head of the free list.
    ///
    /// # Safety
    /// The pool must be live and `block` one of its blocks, handed out and not given back since.
    #[inline(always)]
    pub(crate) unsafe fn push(self, block: NonNull<u8>) -> AfterFree {
        let h = self.header();
        // SAFETY: the header is initialised (live pool); the block is ours again, so its first
        // word may hold the link.
        unsafe {
            block.cast::<Option<NonNull<u8>>>().write((*h).freeblock);
            asan::poison(block, (*h).class.block_size());
            (*h).freeblock = Some(block);
            (*h).count -= 1;
            // Stored whether the pool is withheld or not: no branch until the hold ends.
            let hold = (*h).hold;
            (*h).hold = hold.saturating_sub(1);
            if hold == 1 {
                AfterFree::NoLongerWithheld
            } else if (*h).count == 0 {
                // A withheld pool keeps a block handed out until its hold ends (`withhold`),
                // so this one was used.
                AfterFree::Empty
            } else {
                AfterFree::StillUsed
            }
        }
    }

    /// A used pool handed out its last block and leaves the used table: it is *withheld* until
    /// frees give it back [`HOLD`] blocks (or all but one, if it holds fewer than `HOLD + 1`).
    ///
    /// # Safety
    /// The pool must be live, with an empty free list and nothing left to carve.
    pub(crate) unsafe fn withhold(self) {
        let h = self.header();
        // SAFETY: the header is initialised (live pool). A usable pool holds at least two
        // blocks, so `count >= 2`: the hold is at least 1 and ends before the last free.
        unsafe {
            debug_assert!((*h).count >= 2 && (*h).freeblock.is_none());
            (*h).hold = HOLD.min(((*h).count - 1).min(u32::from(u8::MAX)) as u8);
        }
    }

    /// Whether the pool is withheld with a free block: a block the used table does not offer.
    ///
    /// # Safety
    /// As for [`count`](Self::count).
    pub(crate) unsafe fn withholds_a_block(self) -> bool {
        let h = self.header();
        // SAFETY: the header is initialised (contract).
        unsafe { (*h).hold != 0 && (*h).freeblock.is_some() }
    }

    /// Ends the hold on a withheld pool with a free block: it is used again, and must rejoin
    /// the used table.
    ///
    /// # Safety
    /// The pool must be live and [`withholds_a_block`](Self::withholds_a_block).
    pub(crate) unsafe fn end_hold(self) {
        // SAFETY: the header is initialised (live pool).
        unsafe { (*self.header()).hold = 0 }
    }

    /// Takes back a run of its blocks at once, exactly as [`push`](Self::push) on each of them
    /// in order would, but with one state change for the whole run.
    ///
    /// When the run holds every block the pool has handed out, the pool becomes empty
    /// wholesale: free list empty, `nextoffset` back to its first block (as if never carved),
    /// and no block is written. (An empty pool's blocks are never read again: [`init`] starts
    /// it afresh.) Otherwise the blocks are linked onto the free list in run order, so that
    /// the free list ends exactly as one-by-one pushes leave it (the run's last block first).
    ///
    /// [`init`]: Self::init
    ///
    /// # Safety
    /// The pool must be live, of an arena of `geometry`, and `run` non-empty and made of
    /// distinct blocks of the pool, each handed out and not given back since.
    pub(crate) unsafe fn free_run(self, run: &[NonNull<u8>], geometry: Geometry) -> AfterFree {
        debug_assert!(!run.is_empty());
        let h = self.header();
        // SAFETY: the header is initialised (live pool). Each block of the run is a distinct
        // block of the pool that is ours again (contract), so `count >= run.len()` and a block's
        // first word may hold a link; the pool body from its first block lies in the pool.
        unsafe {
            let hold = u32::from((*h).hold);
            let run_len = run.len() as u32;
            debug_assert!((*h).count >= run_len);
            if (*h).count == run_len {
                let start = geometry.first_block(geometry.index_of(self));
                // Every block is free again: poison the whole body (the slack already is).
                asan::poison(
                    geometry.base_of(self).add(start),
                    geometry.pool_size - start,
                );
                (*h).freeblock = None;
                (*h).count = 0;
                (*h).hold = 0;
                (*h).nextoffset = start as u32;
                return if hold != 0 {
                    AfterFree::EmptyFromWithheld
                } else {
                    AfterFree::Empty
                };
            }
            let size = (*h).class.block_size();
            let mut last = (*h).freeblock;
            for &block in run {
                block.cast::<Option<NonNull<u8>>>().write(last);
                asan::poison(block, size);
                last = Some(block);
            }
            (*h).freeblock = last;
            (*h).count -= run_len;
            if hold != 0 && run_len >= hold {
                (*h).hold = 0;
                AfterFree::NoLongerWithheld
            } else if hold != 0 {
                (*h).hold = (hold - run_len) as u8;
                AfterFree::StillUsed
            } else {
                AfterFree::StillUsed
            }
        }
    }

    /// Blocks handed out.
    ///
    /// # Safety
    /// The pool's header must have been written by [`init`](Self::init) and its arena be mapped.
    pub(crate) unsafe fn count(self) -> u32 {
        // SAFETY: the header is initialised (contract).
        unsafe { (*self.header()).count }
    }

    /// The class the pool serves (or served last, if it is empty).
    ///
    /// # Safety
    /// As for [`count`](Self::count).
    pub(crate) unsafe fn class(self) -> SizeClass {
        // SAFETY: the header is initialised (contract).
        unsafe { (*self.header()).class }
    }

    /// The slot of the pool's arena in the arena table.
    ///
    /// # Safety
    /// As for [`count`](Self::count).
    pub(crate) unsafe fn arena_index(self) -> u32 {
        // SAFETY: the header is initialised (contract).
        unsafe { (*self.header()).arena_index }
    }

    /// The next pool in whatever list this pool is in.
    ///
    /// # Safety
    /// As for [`count`](Self::count).
    pub(crate) unsafe fn next(self) -> Option<Pool> {
        // SAFETY: the header is initialised (contract).
        unsafe { (*self.header()).nextpool }
    }

    /// Sets the next pool of the list this pool is in.
    ///
    /// # Safety
    /// As for [`count`](Self::count).
    pub(crate) unsafe fn set_next(self, next: Option<Pool>) {
        // SAFETY: the header is initialised (contract).
        unsafe { (*self.header()).nextpool = next }
    }

    /// # Safety
    /// As for [`count`](Self::count).
    unsafe fn prev(self) -> Option<Pool> {
        // SAFETY: the header is initialised (contract).
        unsafe { (*self.header()).prevpool }
    }

    /// # Safety
    /// As for [`count`](Self::count).
    unsafe fn set_prev(self, prev: Option<Pool>) {
        // SAFETY: the header is initialised (contract).
        unsafe { (*self.header()).prevpool = prev }
    }
}

/// The used table: for each size class, a doubly-linked list of its used pools, the one to
/// allocate from first at the head.
pub(crate) struct UsedPools {
    heads: [Cell<Option<Pool>>; NUM_SIZE_CLASSES],
}

impl UsedPools {
    pub(crate) fn new() -> Self {
        UsedPools {
            heads: std::array::from_fn(|_| Cell::new(None)),
        }
    }

    /// The pool to allocate `class` from, if the class has a used pool.
    #[inline(always)]
    pub(crate) fn head(&self, class: SizeClass) -> Option<Pool> {
        self.heads[class.index()].get()
    }

    /// Links a pool that just became used at the head of its class's list.
    ///
    /// # Safety
    /// The pool must be live, used, of `class`, and in no list.
    pub(crate) unsafe fn push_front(&self, class: SizeClass, pool: Pool) {
        let head = &self.heads[class.index()];
        let old = head.get();
        // SAFETY: pool and old head are live pools (contract; used invariant).
        unsafe {
            pool.set_prev(None);
            pool.set_next(old);
            if let Some(old) = old {
                old.set_prev(Some(pool));
            }
        }
        head.set(Some(pool));
    }

    /// Unlinks a pool that stopped being used (it became full or empty).
    ///
    /// # Safety
    /// The pool must be live and linked in `class`'s list.
    pub(crate) unsafe fn remove(&self, class: SizeClass, pool: Pool) {
        // SAFETY: the pool and its neighbours are live pools of this list (contract).
        unsafe {
            let (prev, next) = (pool.prev(), pool.next());
            match prev {
                Some(prev) => prev.set_next(next),
                None => self.heads[class.index()].set(next),
            }
            if let Some(next) = next {
                next.set_prev(prev);
            }
        }
    }

    /// Forgets every list (when all arenas go back to the OS at once).
    pub(crate) fn clear(&self) {
        for head in &self.heads {
            head.set(None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARENA: usize = 64 << 10;
    const POOL: usize = 4 << 10;

    /// An arena-aligned buffer standing in for an arena.
    struct FakeArena {
        mem: NonNull<u8>,
        layout: std::alloc::Layout,
    }

    impl FakeArena {
        fn new() -> Self {
            let layout = std::alloc::Layout::from_size_align(ARENA, ARENA).unwrap();
            // SAFETY: the layout has a non-zero size.
            let mem = NonNull::new(unsafe { std::alloc::alloc(layout) }).unwrap();
            FakeArena { mem, layout }
        }

        fn addr(&self, offset: usize) -> *mut u8 {
            self.mem.as_ptr().wrapping_add(offset)
        }
    }

    impl Drop for FakeArena {
        fn drop(&mut self) {
            // SAFETY: allocated in `new` with this layout.
            unsafe { std::alloc::dealloc(self.mem.as_ptr(), self.layout) }
        }
    }

    fn geometry() -> Geometry {
        Geometry::new(ARENA, POOL)
    }

    #[test]
    fn the_pool_table_takes_the_start_of_pool_zero_and_blocks_follow_it() {
        let g = geometry();
        assert_eq!(HEADER, 40);
        assert_eq!(g.table_end, (16 + 16 * 40usize).div_ceil(16) * 16);
        assert_eq!(g.first_pool, 0);
        assert_eq!(g.first_block(0), g.table_end);
        assert_eq!(g.first_block(1), 0);
        assert_eq!(g.table_bytes(), g.table_end);
        let default = Geometry::new(1 << 20, 16 << 10);
        assert_eq!(default.table_bytes(), 2576);
        // A table longer than a pool: the pools it covers are skipped.
        let big = Geometry::new(1 << 20, 4 << 10);
        assert_eq!(big.table_end, 16 + 256 * 40);
        assert_eq!(
            big.first_pool, 2,
            "10256 bytes: pools 0 and 1 and the start of pool 2"
        );
        assert_eq!(big.first_block(2), 10256 - 2 * 4096);
        let tight = Geometry::new(64 << 10, 4 << 10);
        assert!(tight.first_block(tight.first_pool) <= (4 << 10) - 1024);
    }

    #[test]
    fn every_block_finds_its_pool_by_masking_and_shifting() {
        let arena = FakeArena::new();
        let g = geometry();
        for index in 0..16u32 {
            let pool = g.pool_at(arena.mem, index);
            assert_eq!(g.index_of(pool), index);
            assert_eq!(g.base_of(pool).as_ptr(), arena.addr(index as usize * POOL));
            for offset in [g.first_block(index), POOL - 16] {
                let block = NonNull::new(arena.addr(index as usize * POOL + offset)).unwrap();
                assert_eq!(g.pool_of(block), pool);
            }
        }
    }

    #[test]
    fn blocks_are_carved_lazily_a_batch_at_a_time_in_address_order() {
        let arena = FakeArena::new();
        let g = geometry();
        let class = SizeClass::of(512).unwrap();
        for index in [0, 5] {
            let pool = g.pool_at(arena.mem, index);
            let capacity = g.capacity(class, index);
            let start = index as usize * POOL + g.first_block(index);
            // SAFETY: the fake arena is ours, fresh and of this geometry; every step below follows
            // the states the functions require (used while the free list is non-empty).
            unsafe {
                let first = pool.init(class, 0, g);
                assert_eq!(first.as_ptr(), arena.addr(start));
                // Only the block handed out and the next one have been carved.
                let carved = (*pool.header()).nextoffset as usize;
                assert_eq!(carved, g.first_block(index) + 2 * 512);
                let mut handed = vec![first];
                loop {
                    let (block, exhausted) = pool.pop();
                    handed.push(block);
                    if exhausted && !pool.carve(block, g) {
                        break;
                    }
                }
                assert_eq!(handed.len(), capacity);
                assert_eq!(pool.count() as usize, capacity);
                for (i, b) in handed.iter().enumerate() {
                    assert_eq!(b.as_ptr(), arena.addr(start + i * 512));
                    assert_eq!(g.pool_of(*b), pool);
                }
            }
        }
    }

    #[test]
    fn the_fields_a_free_touches_come_first() {
        // freeblock, count, hold (and class, for ASan): 14 bytes. Entries start at 16 + k * 40
        // from a 64-aligned arena base, so one in eight straddles two cache lines.
        assert_eq!(std::mem::offset_of!(PoolHeader, freeblock), 0);
        assert_eq!(std::mem::offset_of!(PoolHeader, count), 8);
        assert_eq!(std::mem::offset_of!(PoolHeader, hold), 12);
        assert_eq!(std::mem::offset_of!(PoolHeader, class), 13);
        let straddling = (0..64)
            .map(|k| ARENA_HEADER_SIZE + k * HEADER)
            .filter(|start| start / 64 != (start + 13) / 64)
            .count();
        assert_eq!(straddling, 8);
    }

    #[test]
    fn a_pool_goes_used_full_used_empty_as_blocks_come_and_go() {
        let arena = FakeArena::new();
        let g = geometry();
        let pool = g.pool_at(arena.mem, 3);
        let class = SizeClass::of(512).unwrap();
        // SAFETY: as in the test above.
        unsafe {
            let mut handed = vec![pool.init(class, 7, g)];
            loop {
                let (block, exhausted) = pool.pop();
                handed.push(block);
                if exhausted && !pool.carve(block, g) {
                    break; // full
                }
            }
            assert_eq!((*pool.header()).freeblock, None);
            assert!(!pool.can_carve(g), "nothing left to carve");
            // The allocator takes the full pool out of the used table and withholds it: the
            // first HOLD - 1 frees leave it so, the HOLD-th makes it used again.
            assert!(handed.len() > HOLD as usize);
            pool.withhold();
            for _ in 1..HOLD {
                assert_eq!(pool.push(handed.pop().unwrap()), AfterFree::StillUsed);
            }
            let last = handed.pop().unwrap();
            assert_eq!(pool.push(last), AfterFree::NoLongerWithheld);
            let (again, exhausted) = pool.pop();
            assert_eq!(again, last, "the free list is last in, first out");
            assert!(!exhausted);
            // Used now: no free changes its state until the last one.
            assert_eq!(pool.push(again), AfterFree::StillUsed);
            while handed.len() > 1 {
                assert_eq!(pool.push(handed.pop().unwrap()), AfterFree::StillUsed);
            }
            assert_eq!(pool.push(handed.pop().unwrap()), AfterFree::Empty);
            assert_eq!(pool.count(), 0);
            assert_eq!(pool.arena_index(), 7);
        }
    }

    /// Fills pool `index` of `arena` with blocks of `class` until it is full, and withholds it as
    /// the allocator does; returns them.
    ///
    /// # Safety
    /// The pool must hold no handed-out block.
    unsafe fn fill(arena: &FakeArena, index: u32, class: SizeClass) -> (Pool, Vec<NonNull<u8>>) {
        let g = geometry();
        let pool = g.pool_at(arena.mem, index);
        // SAFETY: the fake arena is of this geometry; the pool is free (contract) and pops
        // only while used.
        unsafe {
            let mut handed = vec![pool.init(class, 0, g)];
            loop {
                let (block, exhausted) = pool.pop();
                handed.push(block);
                if exhausted && !pool.carve(block, g) {
                    break;
                }
            }
            pool.withhold();
            (pool, handed)
        }
    }

    #[test]
    fn a_run_of_every_handed_out_block_empties_the_pool_without_writing_a_block() {
        let arena = FakeArena::new();
        let g = geometry();
        let class = SizeClass::of(48).unwrap();
        for (index, keep) in [(2u32, 0usize), (3, 5)] {
            // SAFETY: a fresh pool of the fake arena; every block freed was handed out once.
            unsafe {
                let (pool, handed) = fill(&arena, index, class);
                for b in &handed {
                    b.as_ptr().write_bytes(0xAB, 48);
                }
                // Pool 3 keeps five blocks back, then frees them one by one: it is used when
                // its run comes, so it empties from the used state.
                for b in &handed[handed.len() - keep..] {
                    pool.push(*b);
                }
                let run = &handed[..handed.len() - keep];
                let expected = if keep == 0 {
                    AfterFree::EmptyFromWithheld
                } else {
                    AfterFree::Empty
                };
                assert_eq!(pool.free_run(run, g), expected);
                assert_eq!(pool.count(), 0);
                assert_eq!((*pool.header()).freeblock, None);
                assert_eq!((*pool.header()).nextoffset as usize, g.first_block(index));
                // (Under ASan the freed blocks are poisoned: reading them is what it reports.)
                for b in run.iter().filter(|_| !cfg!(pyheap_asan)) {
                    let bytes = std::slice::from_raw_parts(b.as_ptr(), 48);
                    assert!(bytes.iter().all(|&x| x == 0xAB), "a block was written");
                }
            }
        }
    }

    #[test]
    fn a_partial_run_leaves_the_free_list_as_pushes_one_by_one_do() {
        let arena = FakeArena::new();
        let g = geometry();
        let class = SizeClass::of(48).unwrap();
        // SAFETY: fresh pools of the fake arena; every block freed was handed out once and the
        // pools pop only while used.
        unsafe {
            let (one, a) = fill(&arena, 4, class);
            let (run, b) = fill(&arena, 5, class);
            // Every other block, from a withheld pool: the HOLD-th free makes it used again.
            let pick = |v: &[NonNull<u8>]| v.iter().step_by(2).copied().collect::<Vec<_>>();
            let (pa, pb) = (pick(&a), pick(&b));
            for (i, blk) in pa.iter().enumerate() {
                let expected = if i + 1 == HOLD as usize {
                    AfterFree::NoLongerWithheld
                } else {
                    AfterFree::StillUsed
                };
                assert_eq!(one.push(*blk), expected, "free {i}");
            }
            // The run: a few blocks leave it withheld, then the rest cross the mark at once.
            let few = HOLD as usize - 2;
            assert_eq!(run.free_run(&pb[..few], g), AfterFree::StillUsed);
            assert_eq!(run.free_run(&pb[few..], g), AfterFree::NoLongerWithheld);
            assert_eq!(one.count(), run.count());
            // A second run on a used pool: still used.
            assert_eq!(run.free_run(&b[1..2], g), AfterFree::StillUsed);
            assert_eq!(one.push(a[1]), AfterFree::StillUsed);
            // Both hand out the same offsets in the same order.
            let offset = |p: NonNull<u8>| p.as_ptr() as usize % POOL;
            for _ in 0..pa.len() + 1 {
                let ((x, ex), (y, ey)) = (one.pop(), run.pop());
                assert_eq!((offset(x), ex), (offset(y), ey));
            }
        }
    }

    #[test]
    fn the_used_table_links_and_unlinks_pools_in_any_position() {
        let arena = FakeArena::new();
        let g = geometry();
        let class = SizeClass::of(100).unwrap();
        let used = UsedPools::new();
        let pools: Vec<Pool> = (1..4).map(|i| g.pool_at(arena.mem, i)).collect();
        // SAFETY: each pool is initialised before it is linked, and only linked pools are
        // removed.
        unsafe {
            for p in &pools {
                p.init(class, 0, g);
                used.push_front(class, *p);
            }
            assert_eq!(used.head(class), Some(pools[2]));
            used.remove(class, pools[1]);
            assert_eq!(pools[2].next(), Some(pools[0]));
            assert_eq!(pools[0].prev(), Some(pools[2]));
            used.remove(class, pools[2]);
            assert_eq!(used.head(class), Some(pools[0]));
            assert_eq!(pools[0].prev(), None);
            used.remove(class, pools[0]);
            assert_eq!(used.head(class), None);
        }
    }
}
