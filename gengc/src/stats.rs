//! What the collector reports: per-generation statistics and callback information.

use serde::{Deserialize, Serialize};

/// `gc.get_stats()[generation]`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenerationStats {
    /// Collections of this generation.
    pub collections: u64,
    /// Unreachable objects found (and freed, unless saved) by those collections.
    pub collected: u64,
    /// Objects found uncollectable (legacy finalizers) and sent to `garbage`.
    pub uncollectable: u64,
}

/// One generation's state, for stats dumps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenerationState {
    /// Objects tracked in the generation now.
    pub objects: u64,
    /// The generation's count (`gc.get_count()`).
    pub count: u32,
    /// Its threshold (`gc.get_threshold()`).
    pub threshold: u32,
    /// Its statistics.
    pub stats: GenerationStats,
}

/// A snapshot of the collector.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GcStats {
    /// Whether automatic collection is on.
    pub enabled: bool,
    /// The three generations.
    pub generations: [GenerationState; 3],
    /// Objects in the permanent generation (`gc.get_freeze_count()`).
    pub frozen: u64,
    /// Objects in `gc.garbage`.
    pub garbage: u64,
    /// Objects that survived the last full collection (the long-lived heuristic's base).
    pub long_lived_total: u64,
    /// Objects that reached the oldest generation since (collect it only past 25% of the base).
    pub long_lived_pending: u64,
    /// Full collections that skipped their sweep and scan: no container had lost a reference
    /// since a full collection found everything reachable (`refcount::Releases`), so there
    /// was nothing to find. Not in CPython, which always scans.
    pub scans_skipped: u64,
    /// Wall-clock nanoseconds of the last collection.
    pub last_pause_ns: u64,
}

/// Which end of a collection a callback hears about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Before the collection.
    Start,
    /// After it.
    Stop,
}

/// What a `gc.callbacks` function receives (its `info` dict).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallbackInfo {
    /// The generation being collected.
    pub generation: usize,
    /// Unreachable objects found (0 at start).
    pub collected: u64,
    /// Uncollectable objects found (0 at start).
    pub uncollectable: u64,
}
