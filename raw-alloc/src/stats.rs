//! Accounting of what the heap holds from the OS, as a typed snapshot.

use serde::{Deserialize, Serialize};

use crate::Backend;

/// A snapshot of a [`RawHeap`](crate::RawHeap)'s accounting. Renderers live at the edge (the
/// façade and the CLI); this is data.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawStats {
    /// The backend blocks come from.
    pub backend: Backend,
    /// Bytes per arena.
    pub arena_size: usize,
    /// Arenas mapped since the heap was made.
    pub arenas_allocated: u64,
    /// Arenas returned to the OS since the heap was made.
    pub arenas_reclaimed: u64,
    /// Arenas mapped now.
    pub arenas_current: u64,
    /// The most arenas ever mapped at once.
    pub arenas_highwater: u64,
    /// Direct blocks (large requests, or every block with the system backend) live now.
    pub direct_blocks: u64,
    /// Bytes of the live direct blocks.
    pub direct_bytes: usize,
    /// Bytes held from the OS now: arenas plus direct blocks.
    pub bytes_in_use: usize,
    /// The most bytes ever held at once.
    pub bytes_highwater: usize,
    /// The configured limit on `bytes_in_use`.
    pub limit: Option<usize>,
    /// Requests refused (limit, OS or injected fault).
    pub failed_requests: u64,
    /// The debug layer's counters, when it is on.
    pub debug: Option<DebugStats>,
}

/// Counters of the debug layer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DebugStats {
    /// The serial number the next block will get (so: blocks handed out so far).
    pub next_serial: u64,
    /// Blocks handed out and not yet freed.
    pub live_blocks: u64,
    /// Violations found on free or by a check.
    pub violations: u64,
}
