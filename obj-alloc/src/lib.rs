//! # obj-alloc: tier 1 of pyheap
//!
//! CPython's object allocator (pymalloc) over the raw heap of tier 0. Most objects are small and
//! short-lived, so small requests never reach the system allocator: they are carved from pools,
//! which are carved from arenas.
//!
//! ```text
//!   request 1..=512 bytes                                    request > 512 bytes
//!        | size class = CLASS_OF[(size - 1) >> 3]             (or any, with Backend::System)
//!        v   (8-byte steps to 256, then 16-byte steps)              |
//!   UsedPools: class 0 (8 B)    -> pool <-> pool                    v
//!              class 1 (16 B)   -> pool                        RawHeap::alloc_direct
//!              class 2 (24 B)   -> pool <-> pool               (16-aligned)
//!              ...
//!              class 31 (256 B) -> pool
//!              class 32 (272 B) -> pool
//!              ...
//!              class 47 (512 B) -> pool <-> pool <-> pool
//!                                   |
//!                                   v a pool: pool_size bytes (16 KiB), pool-aligned, one class
//!                         +-------+-------+-------+--------------+
//!                         | block | block | block | not carved   |   freeblock -> block -> None
//!                         +-------+-------+-------+--------------+
//!                           a full pool leaves its list, withheld until 4 frees, then rejoins
//!                                   ^ part of
//!   +-------------+------------+---------------+--------+--------+-----+
//!   | ArenaHeader | pool table | pool 0 blocks | pool 1 | pool 2 | ... |   an arena: arena_size
//!   |  (owner)    | PoolHeader | (after table) |        |        |     |   bytes, size-aligned
//!   +-------------+------------+---------------+--------+--------+-----+
//!   ArenaTable: the usable arenas sorted by free pools, fewest first; the empty ones at the tail
//!
//!   usable -> arena (1 free pool) <-> arena (9) <-> arena (all free) <-> arena (all free) -> None
//!                                                   |<-- retained: at most empty_arena_budget -->|
//!   an arena emptied past the budget -> munmap;  trim() / clear_free_lists() -> munmap them all
//!
//!   KindId "float": FreeList  [dead] -> [dead] -> None    (dead blocks kept for reuse,
//!   KindId "tuple": PerLength [len 1] -> ..., [len 2] ...  never touching a pool)
//!
//!   FreeBatch: push push push ... -> run [blocks of one pool] -> flushed when the pool changes:
//!              the whole pool's blocks: pool emptied wholesale; some: linked onto its free list
//! ```
//!
//! ## Invariants, in the words of the code
//! - A [`SizeClass`] serves requests rounded up to a multiple of 8 bytes up to [`FINE_LIMIT`]
//!   (256) and of 16 above; there are [`NUM_SIZE_CLASSES`] (48) of them, up to
//!   [`SMALL_REQUEST_THRESHOLD`] (512).
//! - Every block is 8-aligned; a block whose class size is a multiple of 16 is 16-aligned (a
//!   pool's first block is 16-aligned and blocks follow one class size apart), and a request
//!   of a non-zero multiple of 16 bytes always gets such a class: callers that need
//!   [`raw_alloc::ALIGNMENT`] round their size up to 16 (the `Allocator` impl does).
//! - A pool serves one size class and is in exactly one state: *used* (some blocks handed out,
//!   a free block left: linked in `UsedPools` for its class), *withheld* (it handed out its
//!   last block, and frees have given back fewer than 4 since: in no list; *full* when none)
//!   or *empty* (no block handed out: on its arena's `empty_pools` list).
//! - A block of a pool is in exactly one state: *handed out* (to a user), on its pool's
//!   `freeblock` list, beyond the pool's `nextoffset` (never carved), or on a kind's free list
//!   (which counts as handed out for the pool).
//! - The pool of a block starts at `block & !(pool_size - 1)`; its header is entry
//!   `(block & (arena_size - 1)) >> log2(pool_size)` of its arena's pool table, which follows
//!   the arena header. (CPython keeps each header at its pool's base instead; side by side they
//!   do not all fall into the same cache sets: see the `pool` module.)
//! - The usable arenas (those with a free pool) are sorted by free pools, fewest first; a new
//!   pool comes from the first, so an empty arena serves only when no other arena has a free
//!   pool. An arena whose pools are all free is *retained* (kept mapped at the tail of the list)
//!   while fewer than [`ObjConfig::empty_arena_budget`] `/ arena_size` arenas (at least one,
//!   CPython's rule) are, and goes back to the OS otherwise. Retained arenas count against the
//!   heap limit and go back to the OS before the limit would refuse a request; [`ObjAlloc::trim`]
//!   and [`ObjAlloc::clear_free_lists`] return them all, so a heap whose blocks are all freed
//!   and whose free lists are cleared holds no arena.
//! - Frees carry the size (Rust deallocation knows the layout), so the size class of a free is
//!   computed, never looked up.
//! - A block pushed to a [`FreeBatch`] counts as handed out until the batch's run of its pool
//!   is flushed (the next block of another pool, `finish`, drop); the flush leaves pools, free
//!   lists and arenas exactly as the same frees one by one would.
//!
//! ## Modes
//! - `Backend::System` (raw config): every block is a direct block, so valgrind and
//!   AddressSanitizer see each one; pools are unused, kinds and their free lists still work.
//! - `debug`: every block is `debug::padded_size(size)` bytes, wrapped by the raw heap's debug
//!   layer; a free that breaks a rule returns a [`DebugViolation`] from
//!   [`ObjAlloc::try_dealloc`] and the block is never reused.
//!
//! ## Modules
//! - [`size_class`](SizeClass): the one size-class table.
//! - `pool`: the pool header and pool table, lazy carving, the used table (unsafe, one
//!   invariant).
//! - `arena`: the arena side table and the usable-arena ordering.
//! - `free_list` / `kind`: per-kind policies, their free lists and counters.
//! - `allocator`: [`ObjAlloc`] and its hot paths; `owner`: [`Placement`] and owner lookup.
//! - `batch`: [`FreeBatch`], many frees with the pool work done once per run of one pool's
//!   blocks (a collector's garbage).
//! - `stats`: [`AllocStats`] and its text rendering; `allocator_api`: `&ObjAlloc` as an
//!   `allocator_api2` allocator.
//! - `asan`: AddressSanitizer poisoning of free blocks and pool slack (only in ASan builds).
//!
//! ## What this tier never does
//! It never knows what an object is (a kind is a name, a policy and counters); it never frees a
//! block by itself (except free-list blocks, on [`ObjAlloc::clear_free_lists`]); it never aborts
//! on exhaustion: [`OutOfMemory`] comes back and the allocator stays usable.
//!
//! ## Costs
//! An allocation from a used pool is a few loads and stores (pop the pool's free list; when that
//! empties it, a page's worth of blocks is carved onto it at once, out of the fast path); a free
//! is the same (push). A kind without free lists adds one check and a counter. Taking a new
//! pool, or a pool becoming full or empty, costs a little more and happens once per pool's
//! worth of blocks; a full pool is withheld until 4 frees, so a churn of full pools pays a state
//! change once per 4 frees, not at nearly every step. An arena costs one `mmap`/`munmap` and a
//! page fault per page touched, which retention saves a heap that grows and shrinks within its
//! budget.
//! A [`FreeBatch`] pays per block only the kind's counter and an append to its run (and a
//! prefetch for a block out of address order); a run that frees all of a pool's blocks writes
//! none of them.
//!
//! ## Example
//! ```
//! use obj_alloc::{ObjAlloc, ObjConfig, Policy};
//!
//! let heap = ObjAlloc::new(ObjConfig::default()).unwrap();
//! let block = heap.alloc(24).unwrap();
//! // SAFETY: the block came from this heap with 24 bytes and is freed once.
//! unsafe { heap.dealloc(block, 24) };
//!
//! // An object kind with CPython's float free list.
//! let float = heap.register_kind("float", Policy::FLOAT);
//! let a = heap.alloc_kind(float, 24).unwrap();
//! // SAFETY: as above; the dead block goes onto the kind's free list...
//! unsafe { heap.dealloc_kind(float, a, 24) };
//! // ...and the next float reuses it without touching a pool.
//! let b = heap.alloc_kind(float, 24).unwrap();
//! assert_eq!(a, b);
//! assert_eq!(heap.kind_stats(float).free_list_hits, 1);
//! // SAFETY: as above.
//! unsafe { heap.dealloc_kind(float, b, 24) };
//! heap.clear_free_lists();
//! assert_eq!(heap.stats().arenas.current, 0);
//!
//! // Collections in the private heap.
//! let mut v = allocator_api2::vec::Vec::new_in(&heap);
//! v.extend([1, 2, 3]);
//! assert_eq!(v.iter().sum::<i32>(), 6);
//! ```

#![deny(unsafe_op_in_unsafe_fn)]

mod allocator;
mod allocator_api;
mod arena;
mod asan;
mod batch;
mod config;
mod free_list;
mod kind;
mod map;
mod owner;
mod pool;
mod prefetch;
mod size_class;
mod stats;
#[cfg(test)]
mod tests;

pub use allocator::ObjAlloc;
pub use batch::FreeBatch;
pub use config::{
    ConfigError, ObjConfig, DEFAULT_EMPTY_ARENA_BUDGET, DEFAULT_POOL_SIZE, MAX_EMPTY_ARENA_BUDGET,
    MIN_POOL_SIZE,
};
pub use kind::{
    KindId, Policy, DICT_FREE_LIST_CAPACITY, FLOAT_FREE_LIST_CAPACITY, LIST_FREE_LIST_CAPACITY,
    TUPLE_FREE_LIST_CAPACITY, TUPLE_MAX_SAVED_LEN,
};
pub use map::{ArenaMap, HeapMap, PoolState};
pub use owner::Placement;
pub use prefetch::{prefetch, prefetch_for_write};
pub use raw_alloc::{DebugViolation, OutOfMemory};
pub use size_class::{SizeClass, FINE_LIMIT, NUM_SIZE_CLASSES, QUANTUM, SMALL_REQUEST_THRESHOLD};
pub use stats::{
    AllocStats, ArenaStats, ArenaUsage, FreeListStats, KindStats, SizeClassStats, Totals,
};
