//! `heap-inspect replay GRAPH.jsonl`: a CPython heap rebuilt in pyheap; pyheap's verdict,
//! timings and bytes against CPython's.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use indicatif::ProgressBar;
use pyheap::{Config, Heap};

use super::{read_graph, write_svg, Outcome};
use crate::cli::{HeapLimitArgs, ReplayArgs};
use crate::error::CliError;
use crate::heapgraph::HeapGraph;
use crate::output::emit;
use crate::replay::{ReplayReport, Replayed};
use crate::svg::heap_map;

/// Replays the file: exit status 0 when pyheap's full collection finds exactly CPython's
/// garbage, 1 when not ([`Outcome::Mismatch`]); a missing or malformed file is an error.
pub fn replay(args: &ReplayArgs, out: &mut dyn Write) -> Result<Outcome, CliError> {
    let (graph, bar) = read_graph(&args.graph)?;
    let heap = replay_heap(args.limit)?;
    let start = Instant::now();
    let replayed = load(&heap, &graph, &bar, &args.graph)?;
    let build_ns = start.elapsed().as_nanos() as u64;
    if let Some(path) = &args.svg {
        let map = heap.gc().rc().allocator().heap_map();
        write_svg(path, &heap_map::render(&map, &source_name(&args.graph)))?;
    }
    let (verdict, collections) = replayed.collect(&graph, args.output.timings())?;
    let counts = graph.counts();
    let report = ReplayReport {
        file: args.graph.display().to_string(),
        workload: graph.header.workload.clone(),
        python: graph.header.python.clone(),
        objects: graph.len() as u64,
        references: counts.edges,
        tracked: counts.tracked,
        externally_held: counts.externally_held,
        build_ns: args.output.timed(build_ns),
        build: replayed.build.clone(),
        verdict,
        collections,
        sizes: replayed.sizes.clone(),
    };
    let matches = report.verdict.matches;
    let stats = heap.stats();
    drop(replayed);
    emit(out, &args.output, "replay", &report, Some(stats))?;
    Ok(if matches {
        Outcome::Success
    } else {
        Outcome::Mismatch
    })
}

/// The heap a replay builds in: CPython's setup with automatic collection off (the file's
/// objects must all exist before the one measured collection), and a limit, so that a file
/// claiming huge objects ends in an error ([`CliError::HeapLimit`]) rather than in the
/// machine's out-of-memory killer.
pub(crate) fn replay_heap(limit: HeapLimitArgs) -> Result<std::pin::Pin<Box<Heap>>, CliError> {
    Ok(Heap::new(Config {
        gc_enabled: false,
        limit: Some(limit.heap_limit.unwrap_or_else(default_heap_limit)),
        ..Config::default()
    })?)
}

/// Half of this machine's memory (`MemTotal` of `/proc/meminfo`), or 4 GiB where that cannot
/// be read.
fn default_heap_limit() -> usize {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| {
            let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
            let kib: usize = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kib.saturating_mul(1024) / 2)
        })
        .unwrap_or(4 << 30)
}

/// Builds the graph's objects (read from `path`), advancing the progress bar. An object
/// larger than the heap's limit is refused first: no build could hold it.
pub(crate) fn load<'h>(
    heap: &'h Heap,
    graph: &HeapGraph,
    bar: &ProgressBar,
    path: &Path,
) -> Result<Replayed<'h>, CliError> {
    if let Some(limit) = heap.gc().rc().allocator().stats().raw.limit {
        let too_large = graph
            .objects
            .iter()
            .zip(0u32..)
            .find(|(o, _)| o.size > limit as u64);
        if let Some((object, id)) = too_large {
            bar.finish_and_clear();
            return Err(CliError::ObjectTooLarge {
                path: path.to_owned(),
                line: u64::from(id) + 2,
                id,
                size: object.size,
                limit,
            });
        }
    }
    let mut made = 0u64;
    let result = Replayed::load(heap, graph, &mut || {
        made += 1;
        if made.is_multiple_of(4096) {
            bar.set_position(made);
        }
    });
    bar.finish_and_clear();
    result.map_err(|e| match e {
        CliError::Heap(oom @ pyheap::HeapError::OutOfMemory(_)) => CliError::HeapLimit(oom),
        e => e,
    })
}

/// The picture's name for a heap read from `path`: its file name.
pub(crate) fn source_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}
