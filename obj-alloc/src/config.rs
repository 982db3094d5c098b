//! How an object allocator is set up: the raw heap's settings, the pool size and how many empty
//! arenas stay mapped for reuse.

use raw_alloc::RawConfig;
use serde::{Deserialize, Serialize};

/// The default pool size: 16 KiB, as CPython uses since 3.10 (four 4 KiB pages).
pub const DEFAULT_POOL_SIZE: usize = 16 << 10;

/// The smallest pool size accepted: one 4 KiB page. Such a pool still holds seven blocks of the
/// largest class, so no pool is ever full after a single allocation.
pub const MIN_POOL_SIZE: usize = 4 << 10;

/// The default budget of empty arenas kept mapped: 8 MiB (eight arenas of 1 MiB).
///
/// CPython 3.9+ keeps one empty arena. That stops a heap hovering at an arena boundary from
/// mapping and unmapping one arena over and over, but a heap that repeatedly grows and shrinks
/// by a few MiB (build a structure, drop it, build the next) still maps, page-faults and unmaps
/// every arena each time. The other allocators keep more: glibc returns the top of its heap only
/// past `M_TRIM_THRESHOLD` (128 KiB, raised dynamically up to 64 MiB on 64-bit) and never
/// unmaps its fragmented middle; mimalloc keeps its arenas mapped and purges freed pages only
/// after a delay (`purge_delay`, 10 ms). Here the budget bounds the memory kept, and the "delay"
/// is the next full collection: every one calls `clear_free_lists`, which [`trim`]s every
/// retained arena.
///
/// [`trim`]: crate::ObjAlloc::trim
pub const DEFAULT_EMPTY_ARENA_BUDGET: usize = 8 << 20;

/// The largest empty-arena budget accepted (a bound on configuration mistakes): 1 TiB.
pub const MAX_EMPTY_ARENA_BUDGET: usize = 1 << 40;

/// The settings of an [`ObjAlloc`](crate::ObjAlloc).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjConfig {
    /// The raw heap underneath: arena size, limit, backend and debug layer.
    pub raw: RawConfig,
    /// Bytes per pool: a power of two, at least [`MIN_POOL_SIZE`] and at most the arena size
    /// (which is a power of two too, so it is a multiple of the pool size).
    pub pool_size: usize,
    /// Bytes of empty arenas (arenas with every pool free) kept mapped for the next pools instead
    /// of going back to the OS: `empty_arena_budget / arena_size` arenas, and always at least
    /// one, so that 0 is CPython's rule (keep one). Default [`DEFAULT_EMPTY_ARENA_BUDGET`], at
    /// most [`MAX_EMPTY_ARENA_BUDGET`].
    ///
    /// Retained arenas are mapped memory: they count in the raw heap's `bytes_in_use` and
    /// against its limit. An allocation the limit would refuse first returns them to the OS and
    /// tries again, so retention never makes an allocation fail. [`trim`] (and
    /// `clear_free_lists`, which every full collection calls) returns them all.
    ///
    /// [`trim`]: crate::ObjAlloc::trim
    #[serde(default = "default_empty_arena_budget")]
    pub empty_arena_budget: usize,
}

fn default_empty_arena_budget() -> usize {
    DEFAULT_EMPTY_ARENA_BUDGET
}

impl Default for ObjConfig {
    fn default() -> Self {
        ObjConfig {
            raw: RawConfig::default(),
            pool_size: DEFAULT_POOL_SIZE,
            empty_arena_budget: DEFAULT_EMPTY_ARENA_BUDGET,
        }
    }
}

/// A configuration that cannot work.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The raw heap's settings are wrong.
    #[error(transparent)]
    Raw(#[from] raw_alloc::ConfigError),
    /// The pool size is not a power of two between [`MIN_POOL_SIZE`] and the arena size.
    #[error(
        "pool size {pool_size} is not a power of two between {MIN_POOL_SIZE} and the arena size \
         {arena_size}"
    )]
    PoolSize {
        /// The pool size asked for.
        pool_size: usize,
        /// The arena size it must divide.
        arena_size: usize,
    },
    /// The empty-arena budget is over [`MAX_EMPTY_ARENA_BUDGET`].
    #[error("empty arena budget {budget} is over the maximum of {MAX_EMPTY_ARENA_BUDGET}")]
    EmptyArenaBudget {
        /// The budget asked for.
        budget: usize,
    },
}

impl ObjConfig {
    /// Checks every value.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.raw.validate()?;
        let (pool_size, arena_size) = (self.pool_size, self.raw.arena_size);
        if !pool_size.is_power_of_two() || pool_size < MIN_POOL_SIZE || pool_size > arena_size {
            return Err(ConfigError::PoolSize {
                pool_size,
                arena_size,
            });
        }
        if self.empty_arena_budget > MAX_EMPTY_ARENA_BUDGET {
            return Err(ConfigError::EmptyArenaBudget {
                budget: self.empty_arena_budget,
            });
        }
        Ok(())
    }

    /// How many empty arenas the budget keeps: at least one.
    pub fn empty_arenas_kept(&self) -> u32 {
        let arenas = self.empty_arena_budget / self.raw.arena_size.max(1);
        u32::try_from(arenas).unwrap_or(u32::MAX).max(1)
    }
}
