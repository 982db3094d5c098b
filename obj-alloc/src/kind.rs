//! Object-specific allocation: each object kind registers a [`Policy`] and gets its own counters
//! (CPython's float, list, dict and tuple free lists, generalised).
//!
//! ```text
//!   KindId(0) "float"  FreeList { capacity: 100 }       [list] -> dead -> dead -> None
//!   KindId(1) "tuple"  PerLength { max_len: 19, .. }    len 1: [list] -> dead -> None
//!                                                       len 2: [list] -> None
//!                                                       ...
//!   KindId(2) "int"    SizeClass                        (no list: straight to the pools)
//! ```
//!
//! A free-list hit hands out a dead block of the same size without touching any pool; a free
//! goes onto the list while it has room. Blocks on a free list still count as allocated blocks of
//! their size class (as in CPython) and show in the kind's `free_list_len`;
//! [`ObjAlloc::clear_free_lists`] gives them back to their pools. All kinds draw on the same
//! arenas and the same heap limit.

use std::cell::{Cell, UnsafeCell};
use std::ptr::NonNull;

use raw_alloc::OutOfMemory;
use serde::{Deserialize, Serialize};

use crate::free_list::FreeList;
use crate::stats::{FreeListStats, KindStats};
use crate::ObjAlloc;

/// Dead floats CPython keeps (`PyFloat_MAXFREELIST`).
pub const FLOAT_FREE_LIST_CAPACITY: usize = 100;
/// Dead lists CPython keeps (`PyList_MAXFREELIST`).
pub const LIST_FREE_LIST_CAPACITY: usize = 80;
/// Dead dicts CPython keeps (`PyDict_MAXFREELIST`).
pub const DICT_FREE_LIST_CAPACITY: usize = 80;
/// The longest tuple CPython keeps on a per-length free list (`PyTuple_MAXSAVESIZE - 1`).
pub const TUPLE_MAX_SAVED_LEN: usize = 19;
/// Dead tuples CPython keeps per length (`PyTuple_MAXFREELIST`).
pub const TUPLE_FREE_LIST_CAPACITY: usize = 2000;

/// How the blocks of one object kind are allocated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    /// Straight from the size classes (or direct blocks): no free list.
    SizeClass,
    /// A free list of up to `capacity` dead blocks of one size.
    FreeList {
        /// The most dead blocks kept.
        capacity: usize,
    },
    /// One free list per object length `1..=max_len`, each of up to `capacity` dead blocks.
    /// Other lengths go straight to the size classes.
    PerLength {
        /// The longest length with a free list.
        max_len: usize,
        /// The most dead blocks kept per length.
        capacity: usize,
    },
}

impl Policy {
    /// CPython's floats.
    pub const FLOAT: Policy = Policy::FreeList {
        capacity: FLOAT_FREE_LIST_CAPACITY,
    };
    /// CPython's lists (the list object; its item array is a separate block).
    pub const LIST: Policy = Policy::FreeList {
        capacity: LIST_FREE_LIST_CAPACITY,
    };
    /// CPython's dicts (the dict object; its table is a separate block).
    pub const DICT: Policy = Policy::FreeList {
        capacity: DICT_FREE_LIST_CAPACITY,
    };
    /// CPython's tuples.
    pub const TUPLE: Policy = Policy::PerLength {
        max_len: TUPLE_MAX_SAVED_LEN,
        capacity: TUPLE_FREE_LIST_CAPACITY,
    };
}

/// A registered object kind of one [`ObjAlloc`]. Using it with another allocator is a logic
/// error (it names another kind there, or panics if there is none).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct KindId(u32);

impl KindId {
    /// The kind's position in registration order (0 for the first registered).
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// One kind: its policy, free lists and counters.
pub(crate) struct Kind {
    name: &'static str,
    policy: Policy,
    capacity: usize,
    lists: Box<[FreeList]>,
    allocations: Cell<u64>,
    frees: Cell<u64>,
    hits: Cell<u64>,
    misses: Cell<u64>,
}

impl Kind {
    fn new(name: &'static str, policy: Policy) -> Kind {
        let (lists, capacity) = match policy {
            Policy::SizeClass => (0, 0),
            Policy::FreeList { capacity } => (1, capacity),
            Policy::PerLength { max_len, capacity } => (max_len, capacity),
        };
        Kind {
            name,
            policy,
            capacity,
            lists: (0..lists).map(|_| FreeList::default()).collect(),
            allocations: Cell::new(0),
            frees: Cell::new(0),
            hits: Cell::new(0),
            misses: Cell::new(0),
        }
    }

    /// The free list serving an object of length `len` (ignored unless the policy is per
    /// length), if the policy has one.
    #[inline]
    fn list(&self, len: Option<usize>) -> Option<&FreeList> {
        match self.policy {
            Policy::SizeClass => None,
            Policy::FreeList { .. } => self.lists.first(),
            Policy::PerLength { .. } => self.lists.get(len?.wrapping_sub(1)),
        }
    }

    fn bump(counter: &Cell<u64>) {
        counter.set(counter.get() + 1);
    }

    fn stats(&self) -> KindStats {
        let per_length = matches!(self.policy, Policy::PerLength { .. });
        let free_lists: Vec<FreeListStats> = self
            .lists
            .iter()
            .enumerate()
            .map(|(i, l)| FreeListStats {
                len: per_length.then_some(i + 1),
                blocks: l.len(),
                block_size: l.block_size(),
            })
            .collect();
        let (allocations, frees) = (self.allocations.get(), self.frees.get());
        KindStats {
            name: self.name.to_owned(),
            policy: self.policy,
            allocations,
            frees,
            live: allocations.saturating_sub(frees),
            free_list_hits: self.hits.get(),
            free_list_misses: self.misses.get(),
            free_list_len: free_lists.iter().map(|l| l.blocks).sum(),
            free_lists,
        }
    }
}

/// The registered kinds. Kinds are boxed and never move or die before the table, so a `&Kind`
/// stays valid while the table grows.
///
/// Invariant: the `Vec` is only touched inside this type's methods, each of which holds its
/// reference into it only while it reads or pushes one element, calling nothing else meanwhile;
/// so no reference into the `Vec` is alive when `register` pushes.
pub(crate) struct Kinds {
    table: UnsafeCell<Vec<NonNull<Kind>>>,
}

impl Kinds {
    pub(crate) fn new() -> Self {
        Kinds {
            table: UnsafeCell::new(Vec::new()),
        }
    }

    fn register(&self, kind: Kind) -> KindId {
        let kind = NonNull::from(Box::leak(Box::new(kind)));
        // SAFETY: no reference into the Vec is alive (type invariant).
        let table = unsafe { &mut *self.table.get() };
        table.push(kind);
        KindId(u32::try_from(table.len() - 1).expect("fewer than 2^32 kinds"))
    }

    /// The kind `id`. Panics if it was not registered here.
    #[inline]
    fn get(&self, id: KindId) -> &Kind {
        // SAFETY: no mutable reference into the Vec is alive (type invariant).
        let kind = unsafe { (&*self.table.get())[id.0 as usize] };
        // SAFETY: the Box behind it lives as long as the table and is only read through `&`.
        unsafe { kind.as_ref() }
    }

    fn len(&self) -> usize {
        // SAFETY: no mutable reference into the Vec is alive (type invariant).
        unsafe { (*self.table.get()).len() }
    }

    fn iter(&self) -> impl Iterator<Item = &Kind> + '_ {
        (0..self.len() as u32).map(|i| self.get(KindId(i)))
    }
}

impl Drop for Kinds {
    fn drop(&mut self) {
        for kind in self.table.get_mut().drain(..) {
            // SAFETY: each pointer came from Box::leak in `register` and is dropped once.
            drop(unsafe { Box::from_raw(kind.as_ptr()) });
        }
    }
}

impl ObjAlloc {
    /// Registers an object kind with its allocation policy and fresh counters.
    pub fn register_kind(&self, name: &'static str, policy: Policy) -> KindId {
        self.kinds.register(Kind::new(name, policy))
    }

    /// Allocates `size` bytes for an object of `kind`: from the kind's free list when it holds a
    /// dead block of that size, else as [`alloc`](Self::alloc) does. For a
    /// [`Policy::PerLength`] kind this takes no length, so it skips the lists (a miss): use
    /// [`alloc_kind_len`](Self::alloc_kind_len).
    ///
    /// Counters: every successful allocation counts; for a kind with free lists it is also a
    /// hit or a miss.
    #[inline]
    pub fn alloc_kind(&self, kind: KindId, size: usize) -> Result<NonNull<u8>, OutOfMemory> {
        self.alloc_kind_inner(kind, None, size)
    }

    /// As [`alloc_kind`](Self::alloc_kind), for an object of length `len`: a
    /// [`Policy::PerLength`] kind serves lengths `1..=max_len` from the list of that length.
    /// Other policies ignore `len`.
    #[inline]
    pub fn alloc_kind_len(
        &self,
        kind: KindId,
        len: usize,
        size: usize,
    ) -> Result<NonNull<u8>, OutOfMemory> {
        self.alloc_kind_inner(kind, Some(len), size)
    }

    /// The hot path of every kind: a kind without free lists (most object types) is a plain
    /// [`alloc`](Self::alloc) and a counter; the free lists have their own function.
    #[inline(always)]
    fn alloc_kind_inner(
        &self,
        kind: KindId,
        len: Option<usize>,
        size: usize,
    ) -> Result<NonNull<u8>, OutOfMemory> {
        let k = self.kinds.get(kind);
        let block = if k.lists.is_empty() {
            self.alloc(size)?
        } else {
            self.alloc_from_lists(k, len, size)?
        };
        Kind::bump(&k.allocations);
        Ok(block)
    }

    /// An allocation of a kind with free lists: a hit pops the list, a miss allocates.
    #[inline]
    fn alloc_from_lists(
        &self,
        k: &Kind,
        len: Option<usize>,
        size: usize,
    ) -> Result<NonNull<u8>, OutOfMemory> {
        if let Some(block) = k.list(len).and_then(|list| list.pop(size)) {
            Kind::bump(&k.hits);
            return Ok(block);
        }
        let block = self.alloc(size)?;
        Kind::bump(&k.misses);
        Ok(block)
    }

    /// Frees an object of `kind`: onto the kind's free list while it has room (and holds blocks
    /// of this size), else as [`dealloc`](Self::dealloc) does.
    ///
    /// # Safety
    /// As for [`dealloc`](Self::dealloc): `ptr` must come from this allocator (through any of its
    /// allocation functions) with `size` bytes, and not have been freed since.
    #[inline]
    pub unsafe fn dealloc_kind(&self, kind: KindId, ptr: NonNull<u8>, size: usize) {
        // SAFETY: the caller's contract is ours.
        unsafe { self.dealloc_kind_inner(kind, None, ptr, size) }
    }

    /// As [`dealloc_kind`](Self::dealloc_kind), for an object of length `len`.
    ///
    /// # Safety
    /// As for [`dealloc_kind`](Self::dealloc_kind).
    #[inline]
    pub unsafe fn dealloc_kind_len(&self, kind: KindId, len: usize, ptr: NonNull<u8>, size: usize) {
        // SAFETY: the caller's contract is ours.
        unsafe { self.dealloc_kind_inner(kind, Some(len), ptr, size) }
    }

    /// # Safety
    /// As for [`dealloc_kind`](Self::dealloc_kind).
    #[inline(always)]
    unsafe fn dealloc_kind_inner(
        &self,
        kind: KindId,
        len: Option<usize>,
        ptr: NonNull<u8>,
        size: usize,
    ) {
        // SAFETY: the caller's contract is ours.
        if !unsafe { self.count_free_and_keep(kind, len, ptr, size) } {
            // SAFETY: the caller's contract; the block was not kept.
            unsafe { self.dealloc(ptr, size) }
        }
    }

    /// The kind's part of a free: counts it, and keeps the block on the kind's free list if the
    /// list has room. Returns whether it kept the block; if not, the caller must free it (as
    /// [`dealloc`](Self::dealloc) does).
    ///
    /// # Safety
    /// As for [`dealloc_kind`](Self::dealloc_kind).
    #[inline(always)]
    pub(crate) unsafe fn count_free_and_keep(
        &self,
        kind: KindId,
        len: Option<usize>,
        ptr: NonNull<u8>,
        size: usize,
    ) -> bool {
        let k = self.kinds.get(kind);
        Kind::bump(&k.frees);
        if k.lists.is_empty() {
            return false; // a kind without free lists keeps nothing
        }
        match k.list(len) {
            // SAFETY: ptr is a live block of `size` bytes that the caller gives up (contract);
            // every block of this allocator is 8-aligned.
            Some(list) => unsafe { list.push(ptr, size, k.capacity) },
            None => false,
        }
    }

    /// Gives every block on every kind's free list back to its pool (or to the raw heap), as
    /// CPython's collection of the oldest generation does. Returns how many blocks it freed.
    ///
    /// Like every release of cached memory, it also [`trim`](Self::trim)s the empty arena kept
    /// against thrashing.
    pub fn clear_free_lists(&self) -> usize {
        let mut freed = 0;
        for kind in self.kinds.iter() {
            for list in kind.lists.iter() {
                while let Some((block, size)) = list.pop_any() {
                    // SAFETY: a block on a free list is a live block of this allocator of `size`
                    // bytes that nobody uses (free-list invariant); it just left the list.
                    unsafe { self.dealloc(block, size) };
                    freed += 1;
                }
            }
        }
        self.trim();
        freed
    }

    /// The counters and free lists of one kind.
    pub fn kind_stats(&self, kind: KindId) -> KindStats {
        self.kinds.get(kind).stats()
    }

    /// The counters and free lists of every kind, in registration order.
    pub(crate) fn all_kind_stats(&self) -> Vec<KindStats> {
        self.kinds.iter().map(Kind::stats).collect()
    }
}
