//! A picture of the heap's layout: every arena as a row of pools, each pool's state, class and
//! occupancy. Data for renderers (the CLI draws it as SVG); no addresses, so it is
//! deterministic for a deterministic workload.

use serde::{Deserialize, Serialize};

use crate::ObjAlloc;

/// One pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum PoolState {
    /// Never carved from its arena.
    Uncarved,
    /// Carved, no block handed out (free).
    Empty,
    /// Serving a size class.
    Used {
        /// The size class index.
        class: usize,
        /// Blocks handed out (free-list blocks of kinds included).
        blocks: u32,
        /// Blocks the pool can hold.
        capacity: u32,
    },
}

/// One arena: its pools in address order (after the pool table).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArenaMap {
    /// The arena's slot in the arena table.
    pub slot: usize,
    /// Its usable pools.
    pub pools: Vec<PoolState>,
}

/// The whole heap's layout.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeapMap {
    /// Bytes per arena.
    pub arena_size: usize,
    /// Bytes per pool.
    pub pool_size: usize,
    /// Every live arena.
    pub arenas: Vec<ArenaMap>,
    /// Live direct blocks (large requests, or every block with the system backend).
    pub direct_blocks: u64,
    /// Their bytes.
    pub direct_bytes: usize,
}

impl ObjAlloc {
    /// The heap's layout now: a walk of every carved pool, meant for inspection.
    pub fn heap_map(&self) -> HeapMap {
        let raw = self.raw().stats();
        HeapMap {
            arena_size: raw.arena_size,
            pool_size: self.pool_size(),
            arenas: self.arenas.borrow().pool_map(),
            direct_blocks: raw.direct_blocks,
            direct_bytes: raw.direct_bytes,
        }
    }
}
