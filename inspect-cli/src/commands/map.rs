//! `heap-inspect map --svg OUT.svg`: a picture of the heap's arenas and pools.

use std::fmt;
use std::io::Write;

use pyheap::obj_alloc::HeapMap;
use serde::Serialize;

use super::replay::{load, replay_heap, source_name};
use super::{read_graph, write_svg, Outcome};
use crate::cli::MapArgs;
use crate::error::CliError;
use crate::heapgraph::printable;
use crate::output::emit;
use crate::svg::heap_map::{self, MapTotals};
use crate::workload::{new_heap, run, run_demo, NoObserver};

/// What the picture shows, in numbers.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MapReport {
    /// The heap drawn: `demo (seed 1)`, a workload with its size, or a file name.
    pub source: String,
    /// Bytes per arena.
    pub arena_size: u64,
    /// Bytes per pool.
    pub pool_size: u64,
    /// Arenas.
    pub arenas: u64,
    /// Pools serving a size class.
    pub used_pools: u64,
    /// Of those, full ones.
    pub full_pools: u64,
    /// Carved pools with no block in use.
    pub empty_pools: u64,
    /// Pools never carved.
    pub uncarved_pools: u64,
    /// Blocks handed out in used pools.
    pub blocks: u64,
    /// Blocks the used pools can hold.
    pub capacity: u64,
    /// `blocks / capacity` in percent, to one decimal.
    pub occupancy_percent: f64,
    /// Live direct blocks.
    pub direct_blocks: u64,
    /// Their bytes.
    pub direct_bytes: u64,
}

impl MapReport {
    /// The numbers of `map`.
    pub fn of(map: &HeapMap, source: String) -> Self {
        let t = MapTotals::of(map);
        MapReport {
            source,
            arena_size: map.arena_size as u64,
            pool_size: map.pool_size as u64,
            arenas: t.arenas,
            used_pools: t.used_pools,
            full_pools: t.full_pools,
            empty_pools: t.empty_pools,
            uncarved_pools: t.uncarved_pools,
            blocks: t.blocks,
            capacity: t.capacity,
            occupancy_percent: (t.occupancy() * 10.0).round() / 10.0,
            direct_blocks: map.direct_blocks,
            direct_bytes: map.direct_bytes as u64,
        }
    }
}

impl fmt::Display for MapReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "heap map of {}", printable(&self.source))?;
        writeln!(
            f,
            "  {} arenas of {} bytes; pools of {} bytes: {} in use ({} full), {} empty, {} uncarved",
            self.arenas,
            self.arena_size,
            self.pool_size,
            self.used_pools,
            self.full_pools,
            self.empty_pools,
            self.uncarved_pools
        )?;
        writeln!(
            f,
            "  {} of {} blocks of the pools in use are handed out ({:.1}%); {} direct blocks, {} bytes",
            self.blocks, self.capacity, self.occupancy_percent, self.direct_blocks, self.direct_bytes
        )
    }
}

/// Draws the heap the demo leaves (or a workload's, or a replayed file's before any
/// collection) and prints its numbers and the heap's stats.
pub fn map(args: &MapArgs, out: &mut dyn Write) -> Result<Outcome, CliError> {
    let timings = args.output.timings();
    if let Some(path) = &args.graph {
        let (graph, bar) = read_graph(path)?;
        let heap = replay_heap(args.limit)?;
        let replayed = load(&heap, &graph, &bar, path)?;
        return finish(args, out, &heap, source_name(path), replayed);
    }
    let heap = new_heap()?;
    let (source, kept) = match args.workload {
        Some(workload) => {
            let n = args.n.unwrap_or(workload.default_n());
            let (_, kept) = run(&heap, workload, n, args.seed, &mut NoObserver, timings)?;
            (
                format!("{}, n = {n}, seed {}", workload.name(), args.seed),
                kept,
            )
        }
        None => {
            let (_, kept) = run_demo(&heap, args.seed, &mut NoObserver, timings)?;
            (format!("demo, seed {}", args.seed), kept)
        }
    };
    finish(args, out, &heap, source, kept)
}

/// Draws the heap while `_alive` keeps its objects alive, then prints.
fn finish<T>(
    args: &MapArgs,
    out: &mut dyn Write,
    heap: &pyheap::Heap,
    source: String,
    _alive: T,
) -> Result<Outcome, CliError> {
    let map = heap.gc().rc().allocator().heap_map();
    write_svg(&args.svg, &heap_map::render(&map, &source))?;
    let report = MapReport::of(&map, source);
    emit(out, &args.output, "map", &report, Some(heap.stats()))?;
    Ok(Outcome::Success)
}
