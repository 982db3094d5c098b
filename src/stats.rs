//! [`HeapStats`]: one typed snapshot of every tier, rendered as text or JSON at the edge.

use std::fmt;

use gengc::GcStats;
use obj_alloc::AllocStats;
use refcount::RcStats;
use serde::{Deserialize, Serialize};

/// Every tier's statistics at one instant. Serializes to JSON; `Display` renders text in the
/// spirit of `sys._debugmallocstats()`, followed by reference counting and the collector.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HeapStats {
    /// Size classes, pools, arenas, kinds and the raw heap (tiers 1 and 0).
    pub alloc: AllocStats,
    /// Reference counting (tier 2).
    pub refcount: RcStats,
    /// The collector (tier 3).
    pub gc: GcStats,
}

impl fmt::Display for HeapStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.alloc)?;
        let r = &self.refcount;
        writeln!(f)?;
        writeln!(f, "reference counting:")?;
        writeln!(f, "    objects allocated  {:>14}", r.allocated)?;
        writeln!(f, "    objects freed      {:>14}", r.freed)?;
        writeln!(f, "    objects alive      {:>14}", r.live)?;
        writeln!(
            f,
            "    deferred frees     {:>14}   (trashcan; deepest wait {})",
            r.deferred, r.max_pending
        )?;
        writeln!(
            f,
            "    finalizers run     {:>14}   ({} resurrected)",
            r.finalizers_run, r.resurrected
        )?;
        writeln!(
            f,
            "    weakrefs cleared   {:>14}   ({} callbacks run)",
            r.weakrefs_cleared, r.callbacks_run
        )?;
        writeln!(f, "    unraisable errors  {:>14}", r.unraisable)?;
        let g = &self.gc;
        writeln!(f)?;
        writeln!(
            f,
            "cycle collector: {}",
            if g.enabled { "enabled" } else { "disabled" }
        )?;
        writeln!(
            f,
            "generation  objects  count/threshold  collections  collected  uncollectable"
        )?;
        for (i, s) in g.generations.iter().enumerate() {
            writeln!(
                f,
                "{i:>10}  {:>7}  {:>15}  {:>11}  {:>9}  {:>13}",
                s.objects,
                format!("{}/{}", s.count, s.threshold),
                s.stats.collections,
                s.stats.collected,
                s.stats.uncollectable
            )?;
        }
        writeln!(f, "    frozen {:>7}    garbage {}", g.frozen, g.garbage)?;
        writeln!(
            f,
            "    long-lived: {} pending of {} (a full collection waits for 25%)",
            g.long_lived_pending, g.long_lived_total
        )?;
        writeln!(
            f,
            "    scans skipped: {} (full collections with nothing released since one found \
             everything reachable)",
            g.scans_skipped
        )
    }
}
