//! How a [`Heap`](crate::Heap) is set up. `Config::default()` is CPython 3.11's setup, but for
//! one deliberate difference: empty arenas up to [`DEFAULT_EMPTY_ARENA_BUDGET`] (8 MiB) stay
//! mapped for reuse until the next full collection, where CPython keeps one.

pub use obj_alloc::{DEFAULT_EMPTY_ARENA_BUDGET, MAX_EMPTY_ARENA_BUDGET};
use obj_alloc::{
    DICT_FREE_LIST_CAPACITY, FLOAT_FREE_LIST_CAPACITY, LIST_FREE_LIST_CAPACITY,
    TUPLE_FREE_LIST_CAPACITY, TUPLE_MAX_SAVED_LEN,
};
use raw_alloc::{Backend, DEFAULT_ARENA_SIZE};
use serde::{Deserialize, Serialize};

/// The most blocks a free list may keep (a bound on configuration mistakes).
pub const MAX_FREE_LIST_CAPACITY: usize = 1 << 20;

/// Free-list capacities per kind (CPython's numbers by default).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FreeLists {
    /// Dead float blocks kept (CPython: 100).
    pub float: usize,
    /// Dead list objects kept (CPython: 80).
    pub list: usize,
    /// Dead dict objects kept (CPython: 80).
    pub dict: usize,
    /// The longest tuple length with a free list (CPython: 19).
    pub tuple_max_len: usize,
    /// Dead tuples kept per length (CPython: 2000).
    pub tuple_per_length: usize,
}

impl Default for FreeLists {
    fn default() -> Self {
        FreeLists {
            float: FLOAT_FREE_LIST_CAPACITY,
            list: LIST_FREE_LIST_CAPACITY,
            dict: DICT_FREE_LIST_CAPACITY,
            tuple_max_len: TUPLE_MAX_SAVED_LEN,
            tuple_per_length: TUPLE_FREE_LIST_CAPACITY,
        }
    }
}

/// Everything a heap can be set up with.
///
/// ```
/// use pyheap::{Config, Heap};
/// let heap = Heap::new(Config { limit: Some(64 << 20), ..Config::default() }).unwrap();
/// assert_eq!(heap.gc().get_threshold(), (700, 10, 10));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    /// Bytes per arena (a power of two; CPython: 1 MiB).
    pub arena_size: usize,
    /// Bytes per pool (a power of two, at most the arena size; CPython: 16 KiB).
    pub pool_size: usize,
    /// The most bytes the heap may take from the OS, or no limit.
    pub limit: Option<usize>,
    /// Where blocks come from (arenas, or the system allocator for valgrind/ASan).
    pub backend: Backend,
    /// Whether the debug layer wraps every block (`PYTHONMALLOC=debug`).
    pub debug: bool,
    /// Whether arenas ask for transparent huge pages (only arenas of 2 MiB or more can have
    /// them; see `raw_alloc::RawConfig::huge_pages`).
    #[serde(default)]
    pub huge_pages: bool,
    /// Bytes of empty arenas kept mapped for reuse instead of going back to the OS (whole
    /// arenas, at least one: 0 is CPython's rule). They count against `limit`, are given back
    /// before the limit would refuse a request, and every full collection gives them all back.
    /// See `obj_alloc::ObjConfig::empty_arena_budget`; at most [`MAX_EMPTY_ARENA_BUDGET`].
    #[serde(default = "default_empty_arena_budget")]
    pub empty_arena_budget: usize,
    /// The collector's thresholds (CPython: 700, 10, 10).
    pub gc_thresholds: (u32, u32, u32),
    /// Whether automatic collection starts enabled.
    pub gc_enabled: bool,
    /// Free-list capacities.
    pub free_lists: FreeLists,
}

fn default_empty_arena_budget() -> usize {
    DEFAULT_EMPTY_ARENA_BUDGET
}

impl Default for Config {
    fn default() -> Self {
        Config {
            arena_size: DEFAULT_ARENA_SIZE,
            pool_size: obj_alloc::DEFAULT_POOL_SIZE,
            limit: None,
            backend: Backend::Arena,
            debug: false,
            huge_pages: false,
            empty_arena_budget: DEFAULT_EMPTY_ARENA_BUDGET,
            gc_thresholds: (700, 10, 10),
            gc_enabled: true,
            free_lists: FreeLists::default(),
        }
    }
}

/// A configuration that cannot work.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The allocator's settings (arena or pool size, empty-arena budget) are wrong.
    #[error(transparent)]
    Alloc(#[from] obj_alloc::ConfigError),
    /// A free list is larger than [`MAX_FREE_LIST_CAPACITY`].
    #[error("free list `{name}` capacity {value} is over the maximum of {MAX_FREE_LIST_CAPACITY}")]
    FreeList {
        /// Which free list.
        name: &'static str,
        /// The capacity asked for.
        value: usize,
    },
    /// The limit is smaller than one arena: nothing could ever be allocated.
    #[error("heap limit {limit} is smaller than one arena ({arena_size} bytes)")]
    LimitBelowOneArena {
        /// The limit asked for.
        limit: usize,
        /// The arena size.
        arena_size: usize,
    },
}

impl Config {
    /// The lower tiers' configuration.
    pub fn obj_config(&self) -> obj_alloc::ObjConfig {
        obj_alloc::ObjConfig {
            raw: raw_alloc::RawConfig {
                arena_size: self.arena_size,
                limit: self.limit,
                backend: self.backend,
                debug: self.debug,
                huge_pages: self.huge_pages,
            },
            pool_size: self.pool_size,
            empty_arena_budget: self.empty_arena_budget,
        }
    }

    /// Checks every value.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.obj_config().validate()?;
        let f = &self.free_lists;
        for (name, value) in [
            ("float", f.float),
            ("list", f.list),
            ("dict", f.dict),
            ("tuple_max_len", f.tuple_max_len),
            ("tuple_per_length", f.tuple_per_length),
        ] {
            if value > MAX_FREE_LIST_CAPACITY {
                return Err(ConfigError::FreeList { name, value });
            }
        }
        if let Some(limit) = self.limit {
            if limit < self.arena_size {
                return Err(ConfigError::LimitBelowOneArena {
                    limit,
                    arena_size: self.arena_size,
                });
            }
        }
        Ok(())
    }
}
