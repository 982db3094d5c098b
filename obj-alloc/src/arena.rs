//! The arena table: what obj-alloc knows about each arena it holds (CPython's `arena_object`
//! side table), and the `usable_arenas` list that decides where the next pool comes from.
//!
//! ```text
//!   slots: [ ArenaSlot | ArenaSlot | ArenaSlot (unused) | ArenaSlot | ... ]
//!              |                                            |
//!   usable -> arena 3 (1 free pool) <-> arena 0 (1) <-> arena 5 (4) <-> arena 1 (14) -> None
//!                              ^ last_with[1]           ^ last_with[4]  ^ last_with[14]
//!
//!   inside one arena (pools of pool_size bytes, the first one after the pool table):
//!   +-------+------+------+------+------+------+------+-----------------------------+
//!   | table | pool | pool | pool | pool | pool | pool |  not carved yet             |
//!   |       | used | full | empty| used | full | empty|                             |
//!   +-------+------+------+------+------+------+------+-----------------------------+
//!                           |                    |    ^ carved
//!   empty_pools ------------+--------------------+ (linked through the pools' headers)
//! ```
//!
//! Invariants of this module:
//! - A slot is *live* (holds an `Arena`) or *unused* (on the `unused` list, for reuse).
//! - In a live arena, pools below `carved` have initialised headers; the ones beyond were never
//!   touched (pools are carved lazily, like blocks). `free_pools` counts the empty carved pools
//!   (all on `empty_pools`) plus the uncarved ones.
//! - The usable list holds exactly the live arenas with `0 < free_pools`, sorted by `free_pools`
//!   ascending, so that a new pool comes from the fullest arena and nearly empty arenas drain.
//!   `last_with[n]` is the last arena on the list with `n` free pools (CPython's `nfp2lasta`),
//!   which makes re-sorting after a pool comes back O(1).
//! - An arena whose pools are all free is *retained* (kept mapped, on the usable list's tail,
//!   for the next pool) while fewer than `keep_empty` arenas are retained; otherwise it goes
//!   back to the OS at once. `retained` counts the live arenas with every pool free: they are
//!   exactly the tail of the usable list from `last_with[pools_per_arena]` backwards.

use std::ptr::NonNull;

use raw_alloc::{Arena, OutOfMemory, RawHeap};

use crate::asan;
use crate::pool::{Geometry, Pool};
use crate::size_class::{SizeClass, NUM_SIZE_CLASSES};

/// What the table records about one arena slot.
struct ArenaSlot {
    /// The arena, or `None` when the slot is unused.
    arena: Option<Arena>,
    /// Pools carved so far, from the arena's base up.
    carved: u32,
    /// Empty carved pools plus uncarved ones.
    free_pools: u32,
    /// Empty carved pools, linked through their headers.
    empty_pools: Option<Pool>,
    /// Links in the usable list (both) or in the unused list (`next` only).
    next: Option<u32>,
    prev: Option<u32>,
}

/// Counts of pools and blocks in use, gathered by walking every carved pool.
pub(crate) struct Census {
    /// Per size class.
    pub(crate) classes: [ClassCensus; NUM_SIZE_CLASSES],
    /// Per live arena, in slot order: free pools and carved pools.
    pub(crate) arenas: Vec<(u32, u32)>,
    /// Bytes of free pools (where their blocks would go).
    pub(crate) free_pool_bytes: usize,
}

impl Default for Census {
    fn default() -> Self {
        Census {
            classes: [ClassCensus::default(); NUM_SIZE_CLASSES],
            arenas: Vec::new(),
            free_pool_bytes: 0,
        }
    }
}

/// The pools serving one size class.
#[derive(Clone, Copy, Default)]
pub(crate) struct ClassCensus {
    /// Pools in use (used or full).
    pub(crate) pools: usize,
    /// Blocks handed out.
    pub(crate) blocks: usize,
    /// Blocks those pools can hold.
    pub(crate) capacity: usize,
    /// Bytes at the ends of those pools too small for a block.
    pub(crate) quantization: usize,
}

/// The arena side table and the usable list.
pub(crate) struct ArenaTable {
    slots: Vec<ArenaSlot>,
    unused: Option<u32>,
    usable: Option<u32>,
    /// Live arenas with all their pools free, kept mapped for reuse.
    retained: u32,
    /// The most arenas retained at once (at least one: CPython 3.9+ keeps one, so that a
    /// workload hovering at an arena boundary does not map and unmap an arena each time).
    keep_empty: u32,
    last_with: Vec<Option<u32>>,
    /// Usable pools per arena (those after the pool table).
    pools_per_arena: u32,
    geometry: Geometry,
}

impl ArenaTable {
    /// An empty table that retains up to `keep_empty` empty arenas (at least one).
    pub(crate) fn new(geometry: Geometry, keep_empty: u32) -> Self {
        let pools = geometry.usable_pools();
        let pools_per_arena = pools.end - pools.start;
        ArenaTable {
            slots: Vec::new(),
            unused: None,
            usable: None,
            retained: 0,
            keep_empty: keep_empty.max(1),
            last_with: vec![None; pools_per_arena as usize + 1],
            pools_per_arena,
            geometry,
        }
    }

    /// Empty arenas retained now.
    pub(crate) fn retained(&self) -> u32 {
        self.retained
    }

    /// The most empty arenas retained at once.
    pub(crate) fn keep_empty(&self) -> u32 {
        self.keep_empty
    }

    /// Usable pools in each arena.
    pub(crate) fn pools_per_arena(&self) -> u32 {
        self.pools_per_arena
    }

    /// Takes a pool from the fullest usable arena (mapping a new arena if none is usable), and
    /// makes it serve `class`. Returns the pool, now used, and the block it hands out first.
    pub(crate) fn take_pool(
        &mut self,
        class: SizeClass,
        raw: &RawHeap,
    ) -> Result<(Pool, NonNull<u8>), OutOfMemory> {
        let index = match self.usable {
            Some(index) => index,
            None => self.new_arena(raw)?,
        };
        let geometry = self.geometry;
        let slot = &mut self.slots[index as usize];
        let arena = slot.arena.expect("usable arenas are live");
        let pool = match slot.empty_pools {
            Some(pool) => {
                // SAFETY: pools on the empty list were carved, so their headers are initialised.
                slot.empty_pools = unsafe { pool.next() };
                pool
            }
            None => {
                debug_assert!(slot.carved < geometry.usable_pools().end);
                let pool = geometry.pool_at(arena.base(), slot.carved);
                slot.carved += 1;
                pool
            }
        };
        // SAFETY: the pool is a usable pool of a live arena of this geometry and holds no
        // handed-out block (it was empty or never carved).
        let first = unsafe { pool.init(class, index, geometry) };

        // The head has the fewest free pools, so taking one keeps the list sorted; it only
        // leaves the list when it has none left.
        let nf = slot.free_pools;
        slot.free_pools = nf - 1;
        if nf == self.pools_per_arena {
            self.retained -= 1; // a retained arena serves again
        }
        if self.last_with[nf as usize] == Some(index) {
            self.last_with[nf as usize] = None;
        }
        if nf > 1 {
            debug_assert_eq!(self.last_with[nf as usize - 1], None);
            self.last_with[nf as usize - 1] = Some(index);
        } else {
            self.unlink(index);
        }
        Ok((pool, first))
    }

    /// Maps a new arena and puts it on the (empty) usable list.
    #[cold]
    fn new_arena(&mut self, raw: &RawHeap) -> Result<u32, OutOfMemory> {
        debug_assert!(self.usable.is_none());
        let arena = raw.alloc_arena()?;
        let slot = ArenaSlot {
            arena: Some(arena),
            carved: self.geometry.usable_pools().start,
            free_pools: self.pools_per_arena,
            empty_pools: None,
            next: None,
            prev: None,
        };
        let index = match self.unused {
            Some(index) => {
                self.unused = self.slots[index as usize].next;
                self.slots[index as usize] = slot;
                index
            }
            None => {
                self.slots.push(slot);
                u32::try_from(self.slots.len() - 1).expect("fewer than 2^32 arenas")
            }
        };
        self.link_after(index, None);
        self.last_with[self.pools_per_arena as usize] = Some(index);
        // Every pool is free, as in a retained arena; the pool about to be taken ends that.
        self.retained += 1;
        tracing::debug!(target: "obj_alloc", arena = index, pools = self.pools_per_arena, "arena taken");
        Ok(index)
    }

    /// Gives an empty pool back to its arena, re-sorting the usable list, and returns the arena
    /// to the OS if all its pools are now free.
    ///
    /// # Safety
    /// The pool must be live, empty (no block handed out) and in no list.
    pub(crate) unsafe fn return_pool(&mut self, pool: Pool, raw: &RawHeap) {
        // SAFETY: the pool is live (contract), so its header is initialised.
        let index = unsafe { pool.arena_index() };
        let slot = &mut self.slots[index as usize];
        // SAFETY: as above; an empty pool's header is free for the list link.
        unsafe { pool.set_next(slot.empty_pools) };
        slot.empty_pools = Some(pool);
        let old = slot.free_pools;
        let nf = old + 1;
        slot.free_pools = nf;
        let prev = slot.prev;

        // If the arena was the last with `old` free pools, its predecessor may be now.
        let last_old = self.last_with[old as usize];
        if last_old == Some(index) {
            self.last_with[old as usize] =
                prev.filter(|&p| self.slots[p as usize].free_pools == old);
        }

        if nf == self.pools_per_arena {
            if self.retained >= self.keep_empty {
                if old > 0 {
                    self.unlink(index);
                }
                // SAFETY: every pool of the arena is free, so nothing in it is used any more.
                unsafe { self.release(index, raw) };
                return;
            }
            // Retained, sorted at the tail like any other arena with all its pools free.
            self.retained += 1;
        }
        if old == 0 {
            // It was not usable: it goes to the head, having the fewest free pools possible.
            self.link_after(index, None);
            if self.last_with[1].is_none() {
                self.last_with[1] = Some(index);
            }
            return;
        }
        if self.last_with[nf as usize].is_none() {
            self.last_with[nf as usize] = Some(index);
        }
        if last_old == Some(index) {
            return; // still sorted: everything after it has at least `nf` free pools
        }
        // Arenas after it still have `old` free pools: move it behind the last of them.
        let last_old = last_old.expect("an arena with `old` free pools is on the list");
        self.unlink(index);
        self.link_after(index, Some(last_old));
    }

    /// Returns every retained arena to the OS. Returns how many.
    pub(crate) fn release_retained(&mut self, raw: &RawHeap) -> u32 {
        let all_free = self.pools_per_arena;
        let released = self.retained;
        // The retained arenas are the tail of the usable list: walk it from its last one.
        while let Some(index) = self.last_with[all_free as usize] {
            let prev = self.slots[index as usize].prev;
            self.last_with[all_free as usize] =
                prev.filter(|&p| self.slots[p as usize].free_pools == all_free);
            self.unlink(index);
            self.retained -= 1;
            // SAFETY: all the arena's pools are free (it was retained for that), and it is off
            // the usable list now.
            unsafe { self.release(index, raw) };
        }
        debug_assert_eq!(self.retained, 0);
        released
    }

    /// Returns a free arena to the OS and its slot to the unused list.
    ///
    /// # Safety
    /// The arena in slot `index` must be live, off the usable list, with nothing in it used.
    unsafe fn release(&mut self, index: u32, raw: &RawHeap) {
        let slot = &mut self.slots[index as usize];
        let arena = slot.arena.take().expect("released arenas are live");
        slot.empty_pools = None;
        slot.next = self.unused;
        slot.prev = None;
        self.unused = Some(index);
        // The OS may map these addresses again, for anyone: no poison may outlive the arena.
        asan::unpoison(arena.base(), arena.size());
        // SAFETY: the arena came from this heap's alloc_arena and nothing in it is used (contract).
        unsafe { raw.free_arena(arena) };
        tracing::debug!(target: "obj_alloc", arena = index, "arena released");
    }

    /// Returns every arena to the OS, whatever is in it.
    ///
    /// # Safety
    /// Nothing in any arena may be used afterwards.
    pub(crate) unsafe fn release_all(&mut self, raw: &RawHeap) {
        for slot in &mut self.slots {
            if let Some(arena) = slot.arena.take() {
                asan::unpoison(arena.base(), arena.size());
                // SAFETY: the arena came from this heap and nothing in it is used (contract).
                unsafe { raw.free_arena(arena) };
            }
        }
        self.slots.clear();
        self.unused = None;
        self.usable = None;
        self.retained = 0;
        self.last_with.fill(None);
    }

    /// Unlinks a slot from the usable list.
    fn unlink(&mut self, index: u32) {
        let (prev, next) = {
            let slot = &mut self.slots[index as usize];
            (slot.prev.take(), slot.next.take())
        };
        match prev {
            Some(p) => self.slots[p as usize].next = next,
            None => self.usable = next,
        }
        if let Some(n) = next {
            self.slots[n as usize].prev = prev;
        }
    }

    /// Links a slot into the usable list after `after` (`None`: at the head).
    fn link_after(&mut self, index: u32, after: Option<u32>) {
        let next = match after {
            Some(a) => self.slots[a as usize].next.replace(index),
            None => self.usable.replace(index),
        };
        if let Some(n) = next {
            self.slots[n as usize].prev = Some(index);
        }
        let slot = &mut self.slots[index as usize];
        slot.prev = after;
        slot.next = next;
    }

    /// The live arenas, in slot order.
    pub(crate) fn live_arenas(&self) -> impl Iterator<Item = Arena> + '_ {
        self.slots.iter().filter_map(|s| s.arena)
    }

    /// Walks every usable pool of every live arena.
    pub(crate) fn census(&self) -> Census {
        let g = self.geometry;
        let mut census = Census::default();
        for slot in &self.slots {
            let Some(arena) = slot.arena else { continue };
            census
                .arenas
                .push((slot.free_pools, slot.carved - g.usable_pools().start));
            for index in g.usable_pools() {
                if index >= slot.carved {
                    census.free_pool_bytes += g.pool_size() - g.first_block(index);
                    continue;
                }
                let pool = g.pool_at(arena.base(), index);
                // SAFETY: carved pools of live arenas have initialised headers.
                let (count, class) = unsafe { (pool.count(), pool.class()) };
                if count == 0 {
                    census.free_pool_bytes += g.pool_size() - g.first_block(index);
                    continue;
                }
                let entry = &mut census.classes[class.index()];
                entry.pools += 1;
                entry.blocks += count as usize;
                entry.capacity += g.capacity(class, index);
                entry.quantization += (g.pool_size() - g.first_block(index)) % class.block_size();
            }
        }
        census
    }

    /// A withheld pool of `class` with a free block (see [`Pool::withhold`]), if there is one:
    /// what a request of the class gets before it is refused. Visits every carved pool.
    pub(crate) fn withheld_pool(&self, class: SizeClass) -> Option<Pool> {
        let g = self.geometry;
        self.slots.iter().find_map(|slot| {
            let arena = slot.arena?;
            (g.usable_pools().start..slot.carved).find_map(|index| {
                let pool = g.pool_at(arena.base(), index);
                // SAFETY: carved pools of live arenas have initialised headers.
                let hit = unsafe {
                    pool.count() > 0 && pool.class() == class && pool.withholds_a_block()
                };
                hit.then_some(pool)
            })
        })
    }

    /// Every live arena's pools, in slot and address order (for pictures of the heap).
    pub(crate) fn pool_map(&self) -> Vec<crate::map::ArenaMap> {
        use crate::map::{ArenaMap, PoolState};
        let g = self.geometry;
        let mut out = Vec::new();
        for (slot_index, slot) in self.slots.iter().enumerate() {
            let Some(arena) = slot.arena else { continue };
            let pools = g
                .usable_pools()
                .map(|index| {
                    if index >= slot.carved {
                        return PoolState::Uncarved;
                    }
                    let pool = g.pool_at(arena.base(), index);
                    // SAFETY: carved pools of live arenas have initialised headers.
                    let (count, class) = unsafe { (pool.count(), pool.class()) };
                    if count == 0 {
                        PoolState::Empty
                    } else {
                        PoolState::Used {
                            class: class.index(),
                            blocks: count,
                            capacity: g.capacity(class, index) as u32,
                        }
                    }
                })
                .collect();
            out.push(ArenaMap {
                slot: slot_index,
                pools,
            });
        }
        out
    }

    /// The usable list from its head: (slot, free pools) of each arena.
    #[cfg(test)]
    pub(crate) fn usable_order(&self) -> Vec<(u32, u32)> {
        let mut order = Vec::new();
        let mut at = self.usable;
        while let Some(i) = at {
            let slot = &self.slots[i as usize];
            order.push((i, slot.free_pools));
            at = slot.next;
        }
        order
    }

    /// The slot of the live arena that contains `addr`.
    #[cfg(test)]
    pub(crate) fn slot_of(&self, addr: *const u8) -> Option<u32> {
        self.slots
            .iter()
            .position(|s| s.arena.is_some_and(|a| a.contains(addr)))
            .map(|i| i as u32)
    }

    /// Checks every invariant of the module docs; panics on the first broken one.
    #[cfg(test)]
    pub(crate) fn check(&self) {
        let order = self.usable_order();
        assert!(
            order.windows(2).all(|w| w[0].1 <= w[1].1),
            "usable list unsorted: {order:?}"
        );
        for (n, last) in self.last_with.iter().enumerate() {
            let expected = order
                .iter()
                .rev()
                .find(|(_, f)| *f as usize == n)
                .map(|(i, _)| *i);
            assert_eq!(*last, expected, "last_with[{n}] wrong for {order:?}");
        }
        let all_free = order
            .iter()
            .filter(|(_, f)| *f == self.pools_per_arena)
            .count();
        assert_eq!(
            all_free, self.retained as usize,
            "retained arenas miscounted"
        );
        assert!(
            self.retained <= self.keep_empty,
            "more arenas retained than kept"
        );
        for (i, slot) in self.slots.iter().enumerate() {
            let on_list = order.iter().any(|(j, _)| *j as usize == i);
            match slot.arena {
                Some(_) => {
                    assert_eq!(on_list, slot.free_pools > 0, "slot {i} list membership");
                    let mut empties = 0;
                    let mut at = slot.empty_pools;
                    while let Some(pool) = at {
                        // SAFETY: pools on an empty list are carved, so initialised.
                        unsafe {
                            assert_eq!(pool.count(), 0);
                            at = pool.next();
                        }
                        empties += 1;
                    }
                    assert_eq!(
                        slot.free_pools,
                        empties + self.pools_per_arena - slot.carved
                    );
                }
                None => assert!(!on_list),
            }
        }
    }
}
