//! # pyheap
//!
//! CPython's memory manager, rebuilt as layered Rust crates, behind one [`Heap`] with Python's
//! values: small ints cached and immortal, floats from a free list, strings with cached hashes
//! and interning, tuples from per-length free lists, lists and dicts from their own free lists,
//! instances of user classes with finalizers, weak references with callbacks, opaque
//! containers for replayed objects, and the `gc` module ([`Heap::gc`]).
//!
//! ```text
//!   Heap ── small ints (-5..=256, immortal) ── interned strs (immortal) ── None
//!    │
//!    └─ GcHeap (gengc, tier 3)        generations, thresholds, collect, garbage, callbacks
//!        └─ RcHeap (refcount, tier 2) headers, handles, weakrefs, trashcan deallocation
//!            └─ ObjAlloc (obj-alloc, tier 1)  size classes, pools, per-kind free lists
//!                └─ RawHeap (raw-alloc, tier 0)  arenas, limit, accounting, debug layer
//! ```
//!
//! ## Invariants
//! - Every object of a heap is reached through counted handles that borrow the heap; mutation
//!   goes through the object model's methods, which keep the collector's invariants (no borrow
//!   of a container is alive while user code runs), so users need no `unsafe`.
//! - Objects of one heap are never stored in another: the model's methods check and return
//!   [`HeapError::ForeignObject`].
//! - Out of memory under the heap limit is an error value ([`HeapError::OutOfMemory`]); the
//!   heap stays consistent and usable.
//!
//! The tiers are re-exported for users who need one of them directly.

#![deny(unsafe_op_in_unsafe_fn)]

mod config;
mod heap;
pub mod object;
mod stats;

pub use config::{
    Config, ConfigError, FreeLists, DEFAULT_EMPTY_ARENA_BUDGET, MAX_EMPTY_ARENA_BUDGET,
    MAX_FREE_LIST_CAPACITY,
};
pub use gengc::{DebugFlags, GcHeap};
pub(crate) use heap::check_same_heap;
pub use heap::{Heap, SMALL_INT_MAX, SMALL_INT_MIN, TABLE_KIND, VALUES_KIND};
pub use object::Kind;
pub use raw_alloc::{Backend, OutOfMemory};
pub use refcount::{ObjRef, Ref};
pub use stats::HeapStats;

pub use {gengc, obj_alloc, raw_alloc, refcount};

/// What an operation of the object model can fail with.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HeapError {
    /// The heap limit (or the OS) refused the memory: Python's `MemoryError`.
    #[error(transparent)]
    OutOfMemory(#[from] OutOfMemory),
    /// An object of another heap was given.
    #[error("a {type_name} object of another heap cannot be stored in this one")]
    ForeignObject {
        /// The foreign object's type.
        type_name: &'static str,
    },
    /// A dict key that cannot be hashed.
    #[error("unhashable type: '{type_name}'")]
    Unhashable {
        /// The key's type.
        type_name: &'static str,
    },
    /// A str or bytes longer than [`MAX_ATOM_LEN`](crate::object::MAX_ATOM_LEN) bytes, or a
    /// list longer than [`MAX_LIST_LEN`](crate::object::MAX_LIST_LEN) items (Python's
    /// `OverflowError`).
    #[error("a length of {len} is too long for this object")]
    TooLong {
        /// The length asked for (bytes or items).
        len: usize,
    },
    /// An index past the end.
    #[error("index {index} out of range for length {len}")]
    IndexOutOfRange {
        /// The index given.
        index: usize,
        /// The length.
        len: usize,
    },
    /// An attribute operation on an object that has none.
    #[error("'{type_name}' object has no attributes")]
    NotAnInstance {
        /// The object's type.
        type_name: &'static str,
    },
}
