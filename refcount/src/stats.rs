//! The refcount tier's counters, as a typed snapshot.

use serde::{Deserialize, Serialize};

use crate::heap::Counters;

/// A snapshot of an [`RcHeap`](crate::RcHeap)'s counters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RcStats {
    /// Objects made since the heap was.
    pub allocated: u64,
    /// Objects freed.
    pub freed: u64,
    /// Objects alive now (`allocated - freed`, immortal and leaked ones included).
    pub live: u64,
    /// Deaths deferred to the pending stack instead of a nested call (the trashcan at work).
    pub deferred: u64,
    /// The deepest the pending stack ever was.
    pub max_pending: u64,
    /// Objects waiting on the pending stack now (0 outside a deallocation).
    pub pending: u64,
    /// Finalizers run.
    pub finalizers_run: u64,
    /// Objects a finalizer resurrected.
    pub resurrected: u64,
    /// Weak references cleared because their referent died.
    pub weakrefs_cleared: u64,
    /// Weakref callbacks run.
    pub callbacks_run: u64,
    /// Finalizers and callbacks that panicked (reported to the unraisable hook).
    pub unraisable: u64,
}

impl RcStats {
    pub(crate) fn new(c: Counters, pending: u64) -> Self {
        RcStats {
            allocated: c.allocated,
            freed: c.freed,
            live: c.allocated - c.freed,
            deferred: c.deferred,
            max_pending: c.max_pending,
            pending,
            finalizers_run: c.finalizers_run,
            resurrected: c.resurrected,
            weakrefs_cleared: c.weakrefs_cleared,
            callbacks_run: c.callbacks_run,
            unraisable: c.unraisable,
        }
    }
}
