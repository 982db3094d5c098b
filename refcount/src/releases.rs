//! The thread's release epoch: it moves on whenever, on this thread, a container lost a
//! reference and lived on (its count fell and stayed above zero).
//!
//! ```text
//!   ObjHeader::decref of a container:  count n -> n - 1 > 0   ==>  RELEASED = true
//!   a finalizer's temporary reference removed, the object alive  ==>  RELEASED = true
//!   Releases::now():  if RELEASED { EPOCH += 1; RELEASED = false }  ->  EPOCH
//! ```
//!
//! This module owns one fact a cycle collector may build on: an object becomes unreachable
//! only by losing a reference, to itself or to an object on every path that led to it. A
//! reference removed from an object that dies with it is counted when that death releases the
//! next one, and an atom leads nowhere. So if a collector found every tracked object reachable
//! when the epoch read `r`, and reads `r` again, every one of them is still reachable (the
//! containers that joined since were reachable when they joined: a handle made them), and a
//! full collection has nothing to find (`gengc` then skips its scan).
//!
//! A release sets a flag rather than counting: a counter would chain every release of a tight
//! loop through one memory word (a load, an add, a store), and the flag, already set, costs a
//! load. Any reader that finds the flag set moves the epoch on for every reader, so two
//! readings are equal exactly when no release came between them, however many heaps read.
//!
//! The epoch is the thread's, not a heap's: objects and handles never leave their thread (no
//! heap or handle is `Send`), and a reference from one heap's object into another's is
//! released in the referent's thread like any other. The epoch relies on that:
//!
//! ```compile_fail
//! fn send<T: Send>() {}
//! send::<refcount::ObjRef<'static>>(); // a handle stays on its thread
//! ```
//! ```compile_fail
//! fn send<T: Send>() {}
//! send::<refcount::RcHeap>(); // and so does its heap
//! ```

use std::cell::Cell;

thread_local! {
    static RELEASED: Cell<bool> = const { Cell::new(false) };
    static EPOCH: Cell<u64> = const { Cell::new(0) };
}

/// A reading of this thread's release epoch (see the module's documentation). Two equal
/// readings mean that no container of the thread lost a reference between them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Releases(u64);

impl Releases {
    /// This thread's epoch now.
    #[inline]
    pub fn now() -> Releases {
        if RELEASED.with(|r| r.replace(false)) {
            EPOCH.with(|e| e.set(e.get() + 1));
        }
        Releases(EPOCH.with(Cell::get))
    }
}

/// Notes one release. The flag is read before it is written: it is almost always set
/// already, and a load costs a loop of releases less than a store (stores, not loads, are
/// what such a loop runs out of).
#[inline]
pub(crate) fn note_release() {
    RELEASED.with(|r| {
        if !r.get() {
            r.set(true)
        }
    });
}
