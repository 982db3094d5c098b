//! Bytes per kind: what pyheap's objects take (`Heap::size_of`) against what CPython reported
//! for the same objects (`sys.getsizeof`, the file's `size`).

use std::collections::HashMap;

use pyheap::{Heap, ObjRef};
use serde::Serialize;

use crate::heapgraph::{HeapGraph, Kind};
use crate::output::ratio4;

/// How many types the largest differences list.
const LARGEST: usize = 10;

/// Objects and bytes of one kind (or type, or all objects).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Bytes {
    /// The kind (`int`, ..., `other`), the type name, or `total`.
    pub name: String,
    /// Objects.
    pub objects: u64,
    /// Their bytes in CPython (the sum of their `size`, `sys.getsizeof`).
    pub cpython_bytes: u64,
    /// The same sizes rounded up to 16 bytes each: the blocks pymalloc (or malloc) gives
    /// them, what pyheap's sizes count too.
    pub cpython_block_bytes: u64,
    /// Their bytes in pyheap (the sum of `Heap::size_of`: the object's block and the arrays it
    /// owns; a cached small int counts for every line that names it).
    pub pyheap_bytes: u64,
    /// `pyheap_bytes / cpython_bytes`.
    pub ratio: Option<f64>,
    /// `pyheap_bytes / cpython_block_bytes`.
    pub block_ratio: Option<f64>,
}

impl Bytes {
    fn new(name: &str) -> Self {
        Bytes {
            name: name.to_owned(),
            objects: 0,
            cpython_bytes: 0,
            cpython_block_bytes: 0,
            pyheap_bytes: 0,
            ratio: None,
            block_ratio: None,
        }
    }

    /// Adds one object. The sums saturate: a file may claim any `size` up to `i64::MAX`.
    fn add(&mut self, cpython: u64, pyheap: u64) {
        self.objects += 1;
        self.cpython_bytes = self.cpython_bytes.saturating_add(cpython);
        let block = cpython.div_ceil(16).saturating_mul(16);
        self.cpython_block_bytes = self.cpython_block_bytes.saturating_add(block);
        self.pyheap_bytes = self.pyheap_bytes.saturating_add(pyheap);
    }

    fn finish(mut self) -> Self {
        self.ratio = ratio4(self.pyheap_bytes as f64, self.cpython_bytes as f64);
        self.block_ratio = ratio4(self.pyheap_bytes as f64, self.cpython_block_bytes as f64);
        self
    }

    /// pyheap's bytes minus CPython's blocks (clamped to the range of `i64`).
    pub fn difference(&self) -> i64 {
        let difference = i128::from(self.pyheap_bytes) - i128::from(self.cpython_block_bytes);
        i64::try_from(difference).unwrap_or(if difference < 0 { i64::MIN } else { i64::MAX })
    }
}

/// The size comparison of a replay.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Sizes {
    /// One row per kind of the format, in its order (kinds without objects left out).
    pub by_kind: Vec<Bytes>,
    /// All objects.
    pub total: Bytes,
    /// The types whose bytes differ most between pyheap and CPython's blocks (by absolute
    /// difference).
    pub largest_differences: Vec<Bytes>,
    /// The pyheap heap after the build, before any collection.
    pub heap: Footprint,
}

/// Where the replayed heap's memory is, right after the build.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Footprint {
    /// Bytes of the blocks handed out by the allocator (pool blocks, free lists included).
    pub bytes_in_blocks: u64,
    /// Bytes of live direct blocks (requests over 512 bytes).
    pub direct_bytes: u64,
    /// Bytes of arenas and direct blocks taken from the OS.
    pub bytes_from_os: u64,
}

/// Measures every object of the graph (`objects[id]` is the object of line `id`).
pub(crate) fn measure(heap: &Heap, graph: &HeapGraph, objects: &[ObjRef<'_>]) -> Sizes {
    let mut by_kind: Vec<Bytes> = Kind::ALL.iter().map(|k| Bytes::new(k.name())).collect();
    let mut total = Bytes::new("total");
    let mut by_type: HashMap<&str, Bytes> = HashMap::new();
    for (line, obj) in graph.objects.iter().zip(objects) {
        let pyheap = heap.size_of(obj) as u64;
        let kind = Kind::ALL.iter().position(|&k| k == line.kind).unwrap_or(0);
        by_kind[kind].add(line.size, pyheap);
        total.add(line.size, pyheap);
        let name = graph.type_name(line);
        by_type
            .entry(name)
            .or_insert_with(|| Bytes::new(name))
            .add(line.size, pyheap);
    }
    let mut types: Vec<Bytes> = by_type.into_values().map(Bytes::finish).collect();
    types.sort_by(|a, b| {
        b.difference()
            .unsigned_abs()
            .cmp(&a.difference().unsigned_abs())
            .then_with(|| a.name.cmp(&b.name))
    });
    types.truncate(LARGEST);
    let alloc = heap.gc().rc().allocator().stats();
    Sizes {
        by_kind: by_kind
            .into_iter()
            .filter(|b| b.objects > 0)
            .map(Bytes::finish)
            .collect(),
        total: total.finish(),
        largest_differences: types,
        heap: Footprint {
            bytes_in_blocks: alloc.totals.bytes_in_blocks as u64,
            direct_bytes: alloc.raw.direct_bytes as u64,
            bytes_from_os: alloc.raw.bytes_in_use as u64,
        },
    }
}
