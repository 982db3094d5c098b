//! [`RawHeap`]: the one place where the private heap takes memory from the OS and gives it back.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::{Cell, RefCell};
use std::ptr::NonNull;

use hashbrown::HashMap;

use crate::arena::Arena;
use crate::config::{ConfigError, RawConfig};
use crate::debug::DebugLayer;
use crate::error::{OomCause, OutOfMemory};
use crate::os;
use crate::stats::RawStats;

/// The alignment of every direct block and of every arena's first pool block: the largest
/// alignment the tiers above promise. (obj-alloc's small size classes step by 8, so its blocks
/// are 16-aligned when their size is a multiple of 16 and 8-aligned otherwise.)
pub const ALIGNMENT: usize = 16;

/// The contact of one private heap with the OS: maps and unmaps arenas, serves direct blocks,
/// enforces the limit, keeps the accounting and (optionally) the debug layer.
///
/// A `RawHeap` is single-threaded (`!Sync`): one heap belongs to one thread at a time.
/// Dropping it gives back the direct blocks still out; arenas are unmapped by their holder.
///
/// ```
/// use raw_alloc::{RawConfig, RawHeap};
/// let heap = RawHeap::new(RawConfig { limit: Some(4 << 20), ..RawConfig::default() }).unwrap();
/// let arena = heap.alloc_arena().unwrap();
/// assert_eq!(arena.base().as_ptr() as usize % arena.size(), 0);
/// // SAFETY: the arena came from this heap and is not used afterwards.
/// unsafe { heap.free_arena(arena) };
/// assert_eq!(heap.stats().arenas_current, 0);
/// ```
pub struct RawHeap {
    config: RawConfig,
    owner: Cell<*const ()>,
    stats: Cell<Counters>,
    debug: Option<DebugLayer>,
    os_requests: Cell<u64>,
    fail_at: Cell<Option<u64>>,
    /// The live direct blocks by address (with their pointer and accounted size), so that
    /// dropping the heap gives back those still out, as it unmaps the arenas still mapped.
    direct: RefCell<HashMap<usize, (NonNull<u8>, usize)>>,
}

#[derive(Clone, Copy, Default)]
struct Counters {
    arenas_allocated: u64,
    arenas_reclaimed: u64,
    arenas_highwater: u64,
    direct_blocks: u64,
    direct_bytes: usize,
    bytes_in_use: usize,
    bytes_highwater: usize,
    failed_requests: u64,
}

impl RawHeap {
    /// Makes a heap that holds nothing yet.
    pub fn new(config: RawConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(RawHeap {
            debug: config.debug.then(DebugLayer::new),
            config,
            owner: Cell::new(std::ptr::null()),
            stats: Cell::new(Counters::default()),
            os_requests: Cell::new(0),
            fail_at: Cell::new(None),
            direct: RefCell::new(HashMap::new()),
        })
    }

    /// The configuration the heap was made with.
    pub fn config(&self) -> &RawConfig {
        &self.config
    }

    /// The debug layer, when the configuration turned it on.
    pub fn debug_layer(&self) -> Option<&DebugLayer> {
        self.debug.as_ref()
    }

    /// Sets the opaque owner pointer written into every arena mapped from now on (and into the
    /// ones mapped already is the caller's business: see [`Arena::set_owner`]).
    pub fn set_owner(&self, owner: *const ()) {
        self.owner.set(owner)
    }

    /// Makes the `n`th OS request from now on (1 = the next one) fail with
    /// [`OomCause::Injected`]; `None` turns injection off. Arena maps and direct blocks count.
    pub fn fail_os_request(&self, n: Option<u64>) {
        self.fail_at.set(n.map(|n| self.os_requests.get() + n));
    }

    /// Charges `bytes` against the limit and the fault injector, or says why not.
    fn reserve(&self, bytes: usize) -> Result<(), OutOfMemory> {
        let mut c = self.stats.get();
        let n = self.os_requests.get() + 1;
        self.os_requests.set(n);
        let cause = if self.fail_at.get() == Some(n) {
            Some(OomCause::Injected)
        } else if self
            .config
            .limit
            .is_some_and(|l| c.bytes_in_use.saturating_add(bytes) > l)
        {
            Some(OomCause::Limit)
        } else {
            None
        };
        if let Some(cause) = cause {
            return Err(self.refuse(bytes, cause));
        }
        c.bytes_in_use += bytes;
        c.bytes_highwater = c.bytes_highwater.max(c.bytes_in_use);
        self.stats.set(c);
        Ok(())
    }

    fn release(&self, bytes: usize) {
        let mut c = self.stats.get();
        c.bytes_in_use -= bytes;
        self.stats.set(c);
    }

    fn refuse(&self, requested: usize, cause: OomCause) -> OutOfMemory {
        let mut c = self.stats.get();
        c.failed_requests += 1;
        self.stats.set(c);
        OutOfMemory {
            requested,
            limit: self.config.limit,
            in_use: c.bytes_in_use,
            cause,
        }
    }

    /// Maps a new arena of `config().arena_size` bytes, aligned to its size, with the current
    /// owner pointer in its header.
    pub fn alloc_arena(&self) -> Result<Arena, OutOfMemory> {
        let size = self.config.arena_size;
        self.reserve(size)?;
        let Some(base) = os::map_aligned(size, self.config.huge_pages) else {
            self.release(size);
            return Err(self.refuse(size, OomCause::Os));
        };
        // SAFETY: map_aligned returned `size` fresh writable bytes aligned to `size`.
        let arena = unsafe { Arena::init(base, size, self.owner.get()) };
        let mut c = self.stats.get();
        c.arenas_allocated += 1;
        let current = c.arenas_allocated - c.arenas_reclaimed;
        c.arenas_highwater = c.arenas_highwater.max(current);
        self.stats.set(c);
        tracing::debug!(target: "raw_alloc", base = ?base, size, current, "arena mapped");
        Ok(arena)
    }

    /// Returns an arena to the OS.
    ///
    /// # Safety
    /// `arena` must come from this heap's [`alloc_arena`](Self::alloc_arena) and not have been
    /// freed; nothing inside it may be used afterwards.
    pub unsafe fn free_arena(&self, arena: Arena) {
        arena.retire();
        // SAFETY: the arena was mapped by os::map_aligned with this size (caller's contract).
        unsafe { os::unmap_aligned(arena.base(), arena.size()) };
        self.release(arena.size());
        let mut c = self.stats.get();
        c.arenas_reclaimed += 1;
        self.stats.set(c);
        let current = c.arenas_allocated - c.arenas_reclaimed;
        tracing::debug!(target: "raw_alloc", base = ?arena.base(), current, "arena unmapped");
    }

    /// Serves a block straight from the system allocator: a large request, or any request with
    /// the system backend. `size` is rounded up to [`ALIGNMENT`] for accounting and alignment.
    pub fn alloc_direct(&self, size: usize) -> Result<NonNull<u8>, OutOfMemory> {
        let layout = direct_layout(size).ok_or_else(|| self.refuse(size, OomCause::Os))?;
        self.reserve(layout.size())?;
        // SAFETY: the layout has a non-zero size.
        let Some(ptr) = NonNull::new(unsafe { System.alloc(layout) }) else {
            self.release(layout.size());
            return Err(self.refuse(layout.size(), OomCause::Os));
        };
        let mut c = self.stats.get();
        c.direct_blocks += 1;
        c.direct_bytes += layout.size();
        self.stats.set(c);
        self.direct
            .borrow_mut()
            .insert(ptr.as_ptr().addr(), (ptr, layout.size()));
        Ok(ptr)
    }

    /// Whether a direct block of `size` bytes fits under the limit now (always, without one). The
    /// tier above asks before a request, to give back memory it holds for reuse rather than have
    /// the request refused.
    pub fn within_limit(&self, size: usize) -> bool {
        let Some(limit) = self.config.limit else {
            return true;
        };
        direct_layout(size).is_some_and(|l| {
            self.stats
                .get()
                .bytes_in_use
                .checked_add(l.size())
                .is_some_and(|total| total <= limit)
        })
    }

    /// Returns a direct block to the system allocator.
    ///
    /// # Safety
    /// `ptr` must come from this heap's [`alloc_direct`](Self::alloc_direct) called with the same
    /// `size`, and not have been freed.
    pub unsafe fn free_direct(&self, ptr: NonNull<u8>, size: usize) {
        let layout = direct_layout(size).expect("checked when allocated");
        let known = self.direct.borrow_mut().remove(&ptr.as_ptr().addr());
        debug_assert_eq!(
            known.map(|(_, s)| s),
            Some(layout.size()),
            "a direct block of this heap"
        );
        // SAFETY: ptr was allocated by System with this layout (caller's contract).
        unsafe { System.dealloc(ptr.as_ptr(), layout) };
        self.release(layout.size());
        let mut c = self.stats.get();
        c.direct_blocks -= 1;
        c.direct_bytes -= layout.size();
        self.stats.set(c);
    }

    /// A snapshot of the accounting.
    pub fn stats(&self) -> RawStats {
        let c = self.stats.get();
        RawStats {
            backend: self.config.backend,
            arena_size: self.config.arena_size,
            arenas_allocated: c.arenas_allocated,
            arenas_reclaimed: c.arenas_reclaimed,
            arenas_current: c.arenas_allocated - c.arenas_reclaimed,
            arenas_highwater: c.arenas_highwater,
            direct_blocks: c.direct_blocks,
            direct_bytes: c.direct_bytes,
            bytes_in_use: c.bytes_in_use,
            bytes_highwater: c.bytes_highwater,
            limit: self.config.limit,
            failed_requests: c.failed_requests,
            debug: self.debug.as_ref().map(DebugLayer::stats),
        }
    }
}

impl Drop for RawHeap {
    /// Gives back the direct blocks still out (the arenas are the tier above's to unmap: it
    /// holds them). Whatever the tiers above left in them (immortal objects, leaked ones) is
    /// gone with the heap, as it is with an arena.
    fn drop(&mut self) {
        for (_, (ptr, size)) in self.direct.get_mut().drain() {
            let layout = Layout::from_size_align(size, ALIGNMENT).expect("checked when allocated");
            // SAFETY: a live direct block, allocated by System with this layout; the heap and
            // every block it served go away together, so nothing uses it afterwards.
            unsafe { System.dealloc(ptr.as_ptr(), layout) };
        }
    }
}

fn direct_layout(size: usize) -> Option<Layout> {
    let rounded = size.max(1).checked_add(ALIGNMENT - 1)? & !(ALIGNMENT - 1);
    Layout::from_size_align(rounded, ALIGNMENT).ok()
}
