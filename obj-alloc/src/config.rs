//! How an object allocator is set up: the raw heap's settings plus the pool size.

use raw_alloc::RawConfig;
use serde::{Deserialize, Serialize};

/// The default pool size: 16 KiB, as CPython uses since 3.10 (four 4 KiB pages).
pub const DEFAULT_POOL_SIZE: usize = 16 << 10;

/// The smallest pool size accepted: one 4 KiB page. Such a pool still holds seven blocks of the
/// largest class, so no pool is ever full after a single allocation.
pub const MIN_POOL_SIZE: usize = 4 << 10;

/// The settings of an [`ObjAlloc`](crate::ObjAlloc).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjConfig {
    /// The raw heap underneath: arena size, limit, backend and debug layer.
    pub raw: RawConfig,
    /// Bytes per pool: a power of two, at least [`MIN_POOL_SIZE`] and at most the arena size
    /// (which is a power of two too, so it is a multiple of the pool size).
    pub pool_size: usize,
}

impl Default for ObjConfig {
    fn default() -> Self {
        ObjConfig {
            raw: RawConfig::default(),
            pool_size: DEFAULT_POOL_SIZE,
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
        Ok(())
    }
}
