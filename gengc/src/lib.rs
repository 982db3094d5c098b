//! # gengc: tier 3 of pyheap
//!
//! Reference counting cannot free cycles. This crate is CPython's `gc` module for a pyheap
//! heap: it finds groups of containers that only reference each other and breaks them, without
//! ever freeing a reachable object — it never frees memory itself: it clears references and lets
//! reference counting free.
//!
//! ```text
//!   GcHeap ── RcHeap (tier 2) ── container hook ──> Collector
//!
//!   Collector
//!     gens[0]  gens[1]  gens[2]  permanent        slots each (Generation); a container's GC
//!     count/threshold per generation (700,10,10)   header (its 16-byte pre-header) holds its
//!     garbage, callbacks, debug flags, stats       slot, its object header the tracking state:
//!     young: the array of a running collection     track = push, untrack = leave a hole
//!     unreachable: a bit per young slot            scratch: a bumpalo arena, reset per run
//!
//!   collect(2), the release epoch (refcount::Releases) unchanged since a full collection
//!   found everything reachable: promote_unscanned (no sweep, no scan: nothing can be found)
//!
//!   collect(g):  update_and_subtract_refs (the oldest collected generation lends its
//!                │   buffer as the young array; the sweep adds up counts and references)
//!                ├─ no young object referenced from outside, and common garbage:
//!                │    delete_young_in_bulk ── RcHeap::free_garbage (no scan)
//!                └─ otherwise: move_unreachable (scan, then rescue)
//!                ├─ common garbage (no finalizer to run, no weakref, no SAVEALL):
//!                │    delete_garbage_in_bulk ── RcHeap::free_garbage (drop all, free all)
//!                └─ otherwise, CPython's careful path: take_unreachable
//!                     ─> move_legacy_finalizers ─> handle_weakrefs ─> finalize_garbage
//!                     ─> handle_resurrected_objects ─> delete_garbage
//!                     ─> handle_legacy_finalizers (to gc.garbage, counted)
//!                ─> move_survivors
//! ```
//!
//! ## Invariants
//! - Every tracked container is in exactly one generation array, at the index its GC header
//!   says, and carries its generation's tag (`Tags`: a merge into an empty generation trades
//!   the two generations' arrays and tags, and writes no header); a container that dies is
//!   untracked first (the refcount tier calls the hook), except
//!   garbage freed in bulk, which the collector forgets itself.
//! - Outside a collection `gc_refs` is 0, so one sweep both counts and subtracts. During a
//!   collection, the young array holds the collected generations; `gc_refs` of a young object
//!   is, after `update_and_subtract_refs`, the number of references from outside the young set.
//! - The sweep pins the count of every young object at `IMMORTAL` (the true count parked in
//!   the GC header's `index`) when every young type promised an exact trace; the scan gives
//!   it back to the objects with outside references and keeps it pinned for the others (the
//!   true count in `gc_refs`) until they are freed or given their count back (rescued, or
//!   taken by the careful path). No code that could make or drop a reference runs while a
//!   reachable object's count is pinned: only traces that promised not to (a young type
//!   without the promise turns pinning off for the collection, and then garbage takes the
//!   careful path); DEBUG_STATS's start event comes before the sweep. When the young counts add up to the references
//!   among young objects, nothing young has an outside reference: there is no scan, and the
//!   young array is freed as it stands, pinned. The sweep flags (`refs_outside`) each young
//!   object with a reference that leads out of the young set; on that path the others hold
//!   nothing but garbage, and the refcount tier skips their drop if their type says it only
//!   releases references.
//! - Between collections the young array is empty; a generation and the young array trade
//!   buffers (both are `Vec<Option<ObjPtr>>`). A container that dies leaves a hole in its
//!   generation (`generation.rs`), closed by the generation's next collection or once holes
//!   outnumber objects.
//! - On the careful path the collector holds a reference to every object it found unreachable
//!   until deletion ends, so nothing it works on is freed under it; finalizers and callbacks
//!   may allocate, drop, resurrect, or call `collect` (which returns 0 at once while a
//!   collection runs).
//! - The young set does not change under the sweep and the scan: a death during them makes
//!   the collection give up (every young object survives), and an `untrack` from user code of
//!   an object the collection holds is applied when it ends. User code that panics (a trace, a
//!   clear, a payload's drop, a `tracing` subscriber at an event) is caught; the collection
//!   gives up or finishes consistently, and `collect` then resumes the first panic. A panic
//!   that escapes where the heap is consistent (a subscriber opening or closing the span)
//!   still lets the next collection run.
//! - With more than one `GcHeap` on the thread, references may lead into another heap: a
//!   collection then checks each visited object's heap before taking it for its own.
//! - No phase recurses: reachability is propagated with an explicit stack in scratch memory, so
//!   a ring or chain of ten million objects is collected on an 8 MiB stack.
//! - Free lists are cleared by every full collection, as in CPython.
//! - A full collection skips its sweep and scan only while the thread's release epoch reads
//!   what it read before the sweep of a full collection that found everything reachable, and
//!   no `unfreeze` thawed objects since (nor, during that collection, a `track` brought an
//!   untracked object in): an object becomes unreachable only by losing a
//!   reference, which moves the epoch on (`refcount::Releases`).
//!
//! ## What this tier never does
//! It never frees a block: refcounting does, when `clear` drops the last references, or when
//! the collector hands it garbage whose counts it pinned (`RcHeap::free_garbage`). It never
//! allocates objects, and never knows an object's type beyond its `TypeInfo`.

#![deny(unsafe_op_in_unsafe_fn)]

mod collector;
mod generation;
mod header;
mod heap;
mod slots;
mod stats;

pub use collector::{GcCallback, DEFAULT_THRESHOLDS, NUM_GENERATIONS};
pub use heap::{CallbackId, GcError, GcHeap};
pub use stats::{CallbackInfo, GcStats, GenerationState, GenerationStats, Phase};

/// `gc.set_debug` flags.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct DebugFlags(u8);

impl DebugFlags {
    /// `gc.DEBUG_STATS`: a `tracing` event at the start and end of each collection.
    pub const STATS: DebugFlags = DebugFlags(1);
    /// `gc.DEBUG_COLLECTABLE`: an event per collectable object found.
    pub const COLLECTABLE: DebugFlags = DebugFlags(2);
    /// `gc.DEBUG_UNCOLLECTABLE`: an event per uncollectable object found.
    pub const UNCOLLECTABLE: DebugFlags = DebugFlags(4);
    /// `gc.DEBUG_SAVEALL`: unreachable objects go to `garbage` instead of being freed.
    pub const SAVEALL: DebugFlags = DebugFlags(32);
    /// `gc.DEBUG_LEAK`: COLLECTABLE | UNCOLLECTABLE | SAVEALL.
    pub const LEAK: DebugFlags = DebugFlags(2 | 4 | 32);

    /// No flag.
    pub const fn empty() -> Self {
        DebugFlags(0)
    }

    /// Whether every flag of `other` is set.
    pub const fn contains(self, other: DebugFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// The bits, as Python's `gc.get_debug()` gives them.
    pub const fn bits(self) -> u8 {
        self.0
    }
}

impl std::ops::BitOr for DebugFlags {
    type Output = DebugFlags;
    fn bitor(self, rhs: DebugFlags) -> DebugFlags {
        DebugFlags(self.0 | rhs.0)
    }
}
