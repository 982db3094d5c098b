//! # refcount: tier 2 of pyheap
//!
//! Every object in the private heap carries a reference count and is freed the moment it falls
//! to zero. This is the Rust counterpart of `PyObject_HEAD`, `Py_INCREF`/`Py_DECREF` and
//! `tp_dealloc`, with weak references and CPython's trashcan.
//!
//! ```text
//!  one object, in one obj-alloc block:
//!
//!  [direct prefix: heap ptr]  [pre-header: 16 bytes]  [ObjHeader: 16 bytes]  [payload T]
//!   only for direct blocks     only for containers     refcnt u32 | flags u32
//!   (no arena to ask)          (the collector's links) ty: &'static TypeInfo
//!                                                      ^
//!                                                      ObjPtr points here
//!
//!  handles:   Ref<'h, T> --Deref--> T         ObjRef<'h>  (type-erased)       Weak<'h, T>
//!             clone = incref, drop = decref   ObjPtr (raw, uncounted)         WeakRefObj
//!
//!  RcHeap:    ObjAlloc (tier 1)  | pending: Vec<ObjPtr> (the trashcan)
//!             weak table: referent -> [weakref objects]  | container hook (tier 3)
//! ```
//!
//! ## Invariants
//! - A handle ([`ObjRef`], [`Ref`]) owns one counted reference; an object lives while its count
//!   is above zero. A count of [`IMMORTAL`] never changes (increments saturate into it).
//! - An object finds its heap without thread-locals: the arena header that contains it (masking
//!   by the arena size stored in its header flags), or the heap pointer in front of a direct
//!   block. So several heaps live in one process and every object is freed into its own.
//! - Deallocation never recurses: deaths during a deallocation wait on the heap's pending stack.
//! - A finalizer runs at most once per object (PEP 442); it may resurrect the object.
//! - Every fall of a container's count that leaves it alive moves the thread's release epoch
//!   ([`Releases`]) on: while it stands still, no object can have become unreachable.
//! - When an object dies, its weakrefs are cleared before any callback runs, and only weakrefs
//!   that are themselves alive get their callbacks, newest first.
//! - Payload containers ([`RefCell1`], [`RefVec`]) never keep a borrow while user code runs, so
//!   the collector can `clear` any object at any time.
//!
//! ## What this tier never does
//! It never decides that an object is garbage (that is the collector's job, tier 3); it never
//! follows references except through a type's `trace` on request; it knows containers only
//! through the two words it reserves in front of them and the [`ContainerHook`] it calls.
//!
//! ## Example
//! ```
//! use refcount::{Object, ObjRef, RcHeap, RefVec, Trace, TypeInfo, Visit};
//!
//! struct List<'h>(RefVec<'h>);
//! impl Trace for List<'_> {
//!     fn trace(&self, v: &mut Visit<'_>) { self.0.trace(v) }
//!     fn clear(&self) { self.0.clear() }
//! }
//! static LIST: TypeInfo = TypeInfo::new::<List<'static>>("list");
//! impl Object for List<'_> {
//!     const CONTAINER: bool = true;
//!     fn type_info() -> &'static TypeInfo { &LIST }
//! }
//!
//! let heap = RcHeap::new(Default::default()).unwrap();
//! // A chain of 10,000 lists, each holding the next: dropped without recursion.
//! let mut head = heap.alloc(List(RefVec::new())).unwrap();
//! for _ in 0..10_000 {
//!     let next = heap.alloc(List(RefVec::new())).unwrap();
//!     next.0.push(head.erase());
//!     head = next;
//! }
//! drop(head);
//! assert_eq!(heap.stats().live, 0);
//! ```

#![deny(unsafe_op_in_unsafe_fn)]

mod cell;
mod handle;
mod header;
mod heap;
mod panics;
mod releases;
mod stats;
mod type_info;
mod weak;

pub use cell::{RefCell1, RefVec};
pub use handle::{ObjPtr, ObjRef, Ref};
pub use header::{ObjHeader, HEADER_SIZE, IMMORTAL, UPPER_FLAGS_SHIFT};
pub use heap::{
    trace, ContainerHook, RcHeap, Unraisable, UnraisableHook, DIRECT_PREFIX, PAYLOAD_OFFSET,
};
pub use panics::{drop_panic, panic_message, resume_or_drop, FirstPanic, PanicPayload};
pub use releases::Releases;
pub use stats::RcStats;
pub use type_info::{items, Object, Trace, TypeInfo, VarObject, Visit, CONTAINER_PRE_HEADER};
pub use weak::{Weak, WeakCallback, WeakRefObj};
