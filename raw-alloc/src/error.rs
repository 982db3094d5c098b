//! The one allocation error of the private heap: Python's `MemoryError`.

use serde::{Deserialize, Serialize};

/// Why a request could not be served.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OomCause {
    /// Serving it would take the heap past its configured limit.
    Limit,
    /// The operating system (or the system allocator) refused.
    Os,
    /// A fault injected for testing (see [`RawHeap::fail_os_request`](crate::RawHeap::fail_os_request)).
    Injected,
}

/// A request the heap could not serve. The heap is unchanged and stays usable: freeing memory
/// and asking again may succeed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("out of memory: {requested} bytes requested with {in_use} bytes in use{}{}",
    match .limit { Some(l) => format!(" (limit {l})"), None => String::new() },
    match .cause { OomCause::Limit => "", OomCause::Os => ": the OS refused", OomCause::Injected => ": injected fault" })]
pub struct OutOfMemory {
    /// Bytes the failed request would have taken from the OS.
    pub requested: usize,
    /// The heap limit in force, if any.
    pub limit: Option<usize>,
    /// Bytes the heap held from the OS when the request failed.
    pub in_use: usize,
    /// Why it failed.
    pub cause: OomCause,
}

impl OutOfMemory {
    /// The error for a request no block can serve: more bytes than `isize::MAX`, the most any
    /// allocation may have. The tiers above refuse such sizes before their arithmetic on them
    /// could overflow; the heap is not asked, so `in_use` and `limit` say nothing.
    pub fn too_large() -> OutOfMemory {
        OutOfMemory {
            requested: usize::MAX,
            limit: None,
            in_use: 0,
            cause: OomCause::Os,
        }
    }
}
