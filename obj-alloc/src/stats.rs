//! Statistics: a typed, serializable snapshot of the allocator ([`AllocStats`]), and its text
//! rendering in the spirit of CPython's `sys._debugmallocstats()` (the [`Display`] impl: the
//! only place this crate turns numbers into text).

use std::fmt::{self, Display};

use raw_alloc::RawStats;
use serde::{Deserialize, Serialize};

use crate::kind::Policy;
use crate::size_class::{SizeClass, NUM_SIZE_CLASSES, SMALL_REQUEST_THRESHOLD};
use crate::ObjAlloc;

/// A snapshot of everything the allocator holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllocStats {
    /// The largest request served from a pool.
    pub small_request_threshold: usize,
    /// Bytes per pool.
    pub pool_size: usize,
    /// Bytes at the start of each arena that hold no blocks: the arena header and the pool
    /// table (the pools' headers).
    pub pool_table_bytes: usize,
    /// One entry per size class, smallest first (all of them, used or not).
    pub classes: Vec<SizeClassStats>,
    /// The arenas.
    pub arenas: ArenaStats,
    /// One entry per registered kind, in registration order.
    pub kinds: Vec<KindStats>,
    /// Where the bytes of the arenas go.
    pub totals: Totals,
    /// The raw heap's own accounting (direct blocks, bytes from the OS, limit, debug layer).
    pub raw: RawStats,
}

/// The pools and blocks of one size class.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SizeClassStats {
    /// The class's index.
    pub class: usize,
    /// Bytes per block.
    pub size: usize,
    /// Pools serving the class (used or full).
    pub pools: usize,
    /// Blocks handed out, including those on kinds' free lists.
    pub blocks_in_use: usize,
    /// Free blocks in those pools (carved or not): CPython's "avail blocks".
    pub free_blocks: usize,
    /// `blocks_in_use * size`.
    pub bytes_in_use: usize,
}

/// The arenas: counters of the raw heap plus what obj-alloc knows of their pools.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArenaStats {
    /// Bytes per arena.
    pub arena_size: usize,
    /// Pools per arena.
    pub pools_per_arena: usize,
    /// Arenas mapped since the heap was made.
    pub allocated: u64,
    /// Arenas returned to the OS since the heap was made.
    pub reclaimed: u64,
    /// Arenas mapped now.
    pub current: u64,
    /// The most arenas mapped at once.
    pub highwater: u64,
    /// Empty arenas (every pool free) kept mapped for reuse: part of `current`, and of the raw
    /// heap's `bytes_in_use`.
    pub retained: u64,
    /// The most empty arenas kept at once (from the configuration's empty-arena budget).
    pub retained_max: u64,
    /// Pools serving a size class, over all arenas.
    pub pools_in_use: usize,
    /// Free pools (empty or never carved), over all arenas.
    pub free_pools: usize,
    /// Each arena held now, in the order of the arena table's slots.
    pub per_arena: Vec<ArenaUsage>,
}

/// The pools of one arena.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArenaUsage {
    /// Pools serving a size class.
    pub pools_in_use: usize,
    /// Pools free (empty or never carved).
    pub free_pools: usize,
    /// Pools carved so far (the others were never touched).
    pub carved_pools: usize,
}

/// Counters and free lists of one object kind.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KindStats {
    /// The name it was registered with.
    pub name: String,
    /// Its policy.
    pub policy: Policy,
    /// Successful allocations.
    pub allocations: u64,
    /// Frees.
    pub frees: u64,
    /// Objects alive: `allocations - frees`.
    pub live: u64,
    /// Allocations served from a free list.
    pub free_list_hits: u64,
    /// Allocations of a kind with free lists that the lists could not serve.
    pub free_list_misses: u64,
    /// Dead blocks on the kind's free lists now.
    pub free_list_len: usize,
    /// Each free list (one for `FreeList`, one per length for `PerLength`, none otherwise).
    pub free_lists: Vec<FreeListStats>,
}

/// One free list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FreeListStats {
    /// The object length it serves (per-length lists only).
    pub len: Option<usize>,
    /// Dead blocks on it.
    pub blocks: usize,
    /// The size its blocks were allocated with (0 before it first held one).
    pub block_size: usize,
}

/// Where the bytes of the arenas go; the first five add up to `bytes_in_arenas`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// Bytes of blocks handed out (kinds' free lists included).
    pub bytes_in_blocks: usize,
    /// Bytes of free blocks in pools serving a class.
    pub bytes_in_available_blocks: usize,
    /// Bytes of free pools.
    pub bytes_in_free_pools: usize,
    /// Bytes of the arena headers and pool tables.
    pub bytes_in_pool_headers: usize,
    /// Bytes at the end of pools in use too small for one more block.
    pub bytes_lost_to_quantization: usize,
    /// Bytes of the arenas held now.
    pub bytes_in_arenas: usize,
    /// Bytes of the dead blocks on kinds' free lists (part of `bytes_in_blocks`, counted at the
    /// size they were allocated with).
    pub bytes_in_free_lists: usize,
}

impl ObjAlloc {
    /// A snapshot of the allocator's statistics. It walks every carved pool: a cost of one read
    /// per pool, meant for inspection, not for hot loops.
    pub fn stats(&self) -> AllocStats {
        let raw = self.raw.stats();
        let arenas = self.arenas.borrow();
        let census = arenas.census();
        let pools_per_arena = arenas.pools_per_arena() as usize;
        let (retained, retained_max) = (arenas.retained(), arenas.keep_empty());
        drop(arenas);
        let pool_table_bytes = self.geometry.table_bytes();

        let mut totals = Totals {
            bytes_in_blocks: 0,
            bytes_in_available_blocks: 0,
            bytes_in_free_pools: census.free_pool_bytes,
            bytes_in_pool_headers: raw.arenas_current as usize * pool_table_bytes,
            bytes_lost_to_quantization: 0,
            bytes_in_arenas: raw.arenas_current as usize * raw.arena_size,
            bytes_in_free_lists: 0,
        };
        let classes: Vec<SizeClassStats> = SizeClass::all()
            .map(|class| {
                let c = census.classes[class.index()];
                let size = class.block_size();
                let free_blocks = c.capacity - c.blocks;
                totals.bytes_in_blocks += c.blocks * size;
                totals.bytes_in_available_blocks += free_blocks * size;
                totals.bytes_lost_to_quantization += c.quantization;
                SizeClassStats {
                    class: class.index(),
                    size,
                    pools: c.pools,
                    blocks_in_use: c.blocks,
                    free_blocks,
                    bytes_in_use: c.blocks * size,
                }
            })
            .collect();
        let per_arena: Vec<ArenaUsage> = census
            .arenas
            .iter()
            .map(|&(free, carved)| ArenaUsage {
                pools_in_use: pools_per_arena - free as usize,
                free_pools: free as usize,
                carved_pools: carved as usize,
            })
            .collect();
        let free_pools: usize = per_arena.iter().map(|a| a.free_pools).sum();

        let kinds = self.all_kind_stats();
        totals.bytes_in_free_lists = kinds
            .iter()
            .flat_map(|k| &k.free_lists)
            .map(|l| l.blocks * l.block_size)
            .sum();

        AllocStats {
            small_request_threshold: SMALL_REQUEST_THRESHOLD,
            pool_size: self.geometry.pool_size(),
            pool_table_bytes,
            arenas: ArenaStats {
                arena_size: raw.arena_size,
                pools_per_arena,
                allocated: raw.arenas_allocated,
                reclaimed: raw.arenas_reclaimed,
                current: raw.arenas_current,
                highwater: raw.arenas_highwater,
                retained: retained.into(),
                retained_max: retained_max.into(),
                pools_in_use: per_arena.iter().map(|a| a.pools_in_use).sum(),
                free_pools,
                per_arena,
            },
            classes,
            kinds,
            totals,
            raw,
        }
    }
}

/// `1234567` as `1,234,567`.
fn commas(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// One `label = value` line in `_debugmallocstats` style.
fn line(f: &mut fmt::Formatter<'_>, label: impl Display, value: u64) -> fmt::Result {
    writeln!(f, "{:<35}={:>21}", label.to_string(), commas(value))
}

fn policy_label(policy: Policy) -> String {
    match policy {
        Policy::SizeClass => "size class".to_owned(),
        Policy::FreeList { capacity } => format!("free list ({capacity})"),
        Policy::PerLength { max_len, capacity } => format!("per length 1..={max_len} ({capacity})"),
    }
}

impl Display for AllocStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Small block threshold = {}, in {} size classes.",
            self.small_request_threshold, NUM_SIZE_CLASSES
        )?;
        writeln!(f)?;
        writeln!(f, "class   size   num pools   blocks in use  avail blocks")?;
        writeln!(f, "-----   ----   ---------   -------------  ------------")?;
        for c in self.classes.iter().filter(|c| c.pools > 0) {
            writeln!(
                f,
                "{:>5} {:>6} {:>11} {:>15} {:>13}",
                c.class, c.size, c.pools, c.blocks_in_use, c.free_blocks
            )?;
        }
        writeln!(f)?;

        let a = &self.arenas;
        line(f, "# arenas allocated total", a.allocated)?;
        line(f, "# arenas reclaimed", a.reclaimed)?;
        line(f, "# arenas highwater mark", a.highwater)?;
        line(f, "# arenas allocated current", a.current)?;
        line(
            f,
            format_args!("# arenas retained empty (max {})", a.retained_max),
            a.retained,
        )?;
        line(
            f,
            format_args!("{} arenas * {} bytes/arena", a.current, a.arena_size),
            self.totals.bytes_in_arenas as u64,
        )?;
        writeln!(f)?;

        let t = &self.totals;
        line(f, "# bytes in allocated blocks", t.bytes_in_blocks as u64)?;
        line(
            f,
            "# bytes in available blocks",
            t.bytes_in_available_blocks as u64,
        )?;
        line(
            f,
            format_args!("# bytes in {} unused pools", a.free_pools),
            t.bytes_in_free_pools as u64,
        )?;
        line(
            f,
            "# bytes lost to pool headers",
            t.bytes_in_pool_headers as u64,
        )?;
        line(
            f,
            "# bytes lost to quantization",
            t.bytes_lost_to_quantization as u64,
        )?;
        let total = t.bytes_in_blocks
            + t.bytes_in_available_blocks
            + t.bytes_in_free_pools
            + t.bytes_in_pool_headers
            + t.bytes_lost_to_quantization;
        line(f, "Total", total as u64)?;
        writeln!(f)?;

        let r = &self.raw;
        line(f, "# direct blocks", r.direct_blocks)?;
        line(f, "# bytes in direct blocks", r.direct_bytes as u64)?;
        line(f, "# bytes from the OS now", r.bytes_in_use as u64)?;
        line(
            f,
            "# bytes from the OS highwater mark",
            r.bytes_highwater as u64,
        )?;
        match r.limit {
            Some(limit) => line(f, "# heap limit", limit as u64)?,
            None => writeln!(f, "{:<35}={:>21}", "# heap limit", "none")?,
        }
        line(f, "# requests refused", r.failed_requests)?;
        if let Some(d) = &r.debug {
            line(f, "# debug: blocks live", d.live_blocks)?;
            line(f, "# debug: violations found", d.violations)?;
        }

        if self.kinds.is_empty() {
            return Ok(());
        }
        writeln!(f)?;
        writeln!(
            f,
            "{:<12} {:<26} {:>10} {:>10} {:>10} {:>10} {:>10} {:>8}",
            "kind", "policy", "allocated", "freed", "live", "fl hits", "fl misses", "on list"
        )?;
        for k in &self.kinds {
            writeln!(
                f,
                "{:<12} {:<26} {:>10} {:>10} {:>10} {:>10} {:>10} {:>8}",
                k.name,
                policy_label(k.policy),
                k.allocations,
                k.frees,
                k.live,
                k.free_list_hits,
                k.free_list_misses,
                k.free_list_len
            )?;
        }
        writeln!(f)?;
        // Lists that never held a block have no size yet: they are left out.
        for k in &self.kinds {
            for l in k.free_lists.iter().filter(|l| l.block_size > 0) {
                let what = match l.len {
                    Some(len) => format!("{len}-sized {}", k.name),
                    None => k.name.clone(),
                };
                let label = format!("{} free {what} * {} bytes each", l.blocks, l.block_size);
                writeln!(
                    f,
                    "{label:>48} ={:>21}",
                    commas((l.blocks * l.block_size) as u64)
                )?;
            }
        }
        line(
            f,
            "# bytes on free lists",
            self.totals.bytes_in_free_lists as u64,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::commas;

    #[test]
    fn numbers_get_thousands_separators() {
        assert_eq!(commas(0), "0");
        assert_eq!(commas(999), "999");
        assert_eq!(commas(1000), "1,000");
        assert_eq!(commas(4_194_304), "4,194,304");
    }
}
