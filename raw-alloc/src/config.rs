//! How a raw heap is set up, and the errors a bad setup gives.

use serde::{Deserialize, Serialize};

/// The default arena size: 1 MiB, as CPython uses on 64-bit platforms since 3.10.
pub const DEFAULT_ARENA_SIZE: usize = 1 << 20;

/// The smallest arena size accepted: one 64 KiB region (16 pages of 4 KiB).
pub const MIN_ARENA_SIZE: usize = 1 << 16;

/// The largest arena size accepted: 1 GiB.
pub const MAX_ARENA_SIZE: usize = 1 << 30;

/// Where the blocks of the tiers above come from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// Small blocks are carved from size-aligned arenas mapped from the OS (pymalloc).
    #[default]
    Arena,
    /// Every block comes from the system allocator, so valgrind and AddressSanitizer see each one
    /// (CPython's `PYTHONMALLOC=malloc`).
    System,
}

/// The settings of a [`RawHeap`](crate::RawHeap).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawConfig {
    /// Bytes per arena: a power of two in `MIN_ARENA_SIZE..=MAX_ARENA_SIZE`.
    pub arena_size: usize,
    /// The most bytes the heap may take from the OS (arenas plus direct blocks), or no limit.
    pub limit: Option<usize>,
    /// Where blocks come from.
    pub backend: Backend,
    /// Whether the debug layer wraps every block (CPython's `PYTHONMALLOC=debug`).
    pub debug: bool,
    /// Whether arenas ask for transparent huge pages (`madvise(MADV_HUGEPAGE)`); only arenas
    /// of 2 MiB or more can have them. Off by default, as in CPython: a huge page commits
    /// 2 MiB at the first touch, but an allocation-heavy workload faults 512 times less.
    #[serde(default)]
    pub huge_pages: bool,
}

impl Default for RawConfig {
    fn default() -> Self {
        RawConfig {
            arena_size: DEFAULT_ARENA_SIZE,
            limit: None,
            backend: Backend::Arena,
            debug: false,
            huge_pages: false,
        }
    }
}

/// A configuration value that cannot work.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The arena size is not a power of two in the accepted range.
    #[error("arena size {0} is not a power of two between {MIN_ARENA_SIZE} and {MAX_ARENA_SIZE}")]
    ArenaSize(usize),
}

impl RawConfig {
    /// Checks every value.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let s = self.arena_size;
        if !s.is_power_of_two() || !(MIN_ARENA_SIZE..=MAX_ARENA_SIZE).contains(&s) {
            return Err(ConfigError::ArenaSize(s));
        }
        Ok(())
    }
}
