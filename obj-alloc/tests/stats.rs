//! Statistics: the snapshot adds up, and its text and JSON forms are pinned on a deterministic
//! workload.

use std::ptr::NonNull;

use obj_alloc::{AllocStats, KindId, ObjAlloc, ObjConfig, Policy};
use raw_alloc::RawConfig;

/// A block the workload left alive, and how to free it.
struct Live {
    block: NonNull<u8>,
    size: usize,
    kind: Option<(KindId, usize)>,
}

impl Live {
    fn free(self, heap: &ObjAlloc) {
        // SAFETY: a live block of `heap` with `size` bytes, freed once, through its kind.
        unsafe {
            match self.kind {
                Some((kind, len)) => heap.dealloc_kind_len(kind, len, self.block, self.size),
                None => heap.dealloc(self.block, self.size),
            }
        }
    }
}

/// A fixed mix: blocks of several classes (some pools full), a third of them freed, two direct
/// blocks, floats and tuples with some on their free lists.
fn workload(heap: &ObjAlloc) -> Vec<Live> {
    let plain = |block, size| Live {
        block,
        size,
        kind: None,
    };
    let mut live = Vec::new();
    for (size, count) in [(8, 100), (24, 1500), (64, 300), (200, 90), (512, 70)] {
        for _ in 0..count {
            live.push(plain(heap.alloc(size).unwrap(), size));
        }
    }
    let mut kept = Vec::new();
    for (i, l) in live.into_iter().enumerate() {
        if i % 3 == 0 {
            l.free(heap);
        } else {
            kept.push(l);
        }
    }
    kept.push(plain(heap.alloc(1000).unwrap(), 1000));
    kept.push(plain(heap.alloc(70_000).unwrap(), 70_000));

    let float = heap.register_kind("float", Policy::FLOAT);
    let tuple = heap.register_kind("tuple", Policy::TUPLE);
    let floats: Vec<_> = (0..150)
        .map(|_| heap.alloc_kind(float, 24).unwrap())
        .collect();
    for block in floats {
        Live {
            block,
            size: 24,
            kind: Some((float, 0)),
        }
        .free(heap);
    }
    for _ in 0..40 {
        let block = heap.alloc_kind(float, 24).unwrap();
        kept.push(Live {
            block,
            size: 24,
            kind: Some((float, 0)),
        });
    }
    for len in 1..=4 {
        let size = 24 + 8 * len;
        let mut tuples: Vec<_> = (0..len * 2)
            .map(|_| Live {
                block: heap.alloc_kind_len(tuple, len, size).unwrap(),
                size,
                kind: Some((tuple, len)),
            })
            .collect();
        kept.push(tuples.remove(0));
        for t in tuples {
            t.free(heap);
        }
    }
    kept
}

fn heap() -> ObjAlloc {
    ObjAlloc::new(ObjConfig {
        raw: RawConfig {
            limit: Some(64 << 20),
            ..RawConfig::default()
        },
        ..ObjConfig::default()
    })
    .unwrap()
}

#[test]
fn the_bytes_of_the_arenas_add_up() {
    let heap = heap();
    let _live = workload(&heap);
    let s: AllocStats = heap.stats();
    let t = &s.totals;
    assert_eq!(
        t.bytes_in_blocks
            + t.bytes_in_available_blocks
            + t.bytes_in_free_pools
            + t.bytes_in_pool_headers
            + t.bytes_lost_to_quantization,
        t.bytes_in_arenas
    );
    assert_eq!(
        s.arenas.pools_in_use + s.arenas.free_pools,
        s.arenas.pools_per_arena * s.arenas.current as usize
    );
    assert_eq!(
        s.arenas.pools_in_use,
        s.classes.iter().map(|c| c.pools).sum::<usize>()
    );
    assert_eq!(s.raw.bytes_in_use, t.bytes_in_arenas + s.raw.direct_bytes);
    let float = &s.kinds[0];
    assert_eq!(float.free_list_len, 100 - 40);
    assert_eq!(
        t.bytes_in_free_lists,
        s.kinds
            .iter()
            .flat_map(|k| &k.free_lists)
            .map(|l| l.blocks * l.block_size)
            .sum::<usize>()
    );
}

#[test]
#[cfg_attr(
    miri,
    ignore = "insta reads snapshot files: Miri isolates the file system"
)]
fn the_text_report_reads_like_debugmallocstats() {
    let heap = heap();
    let live = workload(&heap);
    insta::assert_snapshot!("debugmallocstats", heap.stats().to_string());
    for l in live {
        l.free(&heap);
    }
    heap.clear_free_lists();
    insta::assert_snapshot!(
        "debugmallocstats_after_freeing_everything",
        heap.stats().to_string()
    );
}

#[test]
#[cfg_attr(
    miri,
    ignore = "insta reads snapshot files: Miri isolates the file system"
)]
fn the_snapshot_serializes_to_stable_json() {
    let heap = heap();
    let _live = workload(&heap);
    let stats = heap.stats();
    insta::assert_json_snapshot!("alloc_stats", stats);
    let back: AllocStats = serde_json::from_str(&serde_json::to_string(&stats).unwrap()).unwrap();
    assert_eq!(back, stats);
}

#[test]
fn the_heap_map_shows_each_pool_by_state_class_and_occupancy() {
    let heap = obj_alloc::ObjAlloc::new(obj_alloc::ObjConfig::default()).unwrap();
    let a: Vec<_> = (0..10).map(|_| heap.alloc(16).unwrap()).collect();
    let b = heap.alloc(500).unwrap();
    let map = heap.heap_map();
    assert_eq!(map.arenas.len(), 1);
    let used: Vec<_> = map.arenas[0]
        .pools
        .iter()
        .filter_map(|p| match p {
            obj_alloc::PoolState::Used { class, blocks, .. } => Some((*class, *blocks)),
            _ => None,
        })
        .collect();
    assert_eq!(used, [(1, 10), (47, 1)]); // 16 bytes: class 1 (8, 16, ...); 500: the last
    assert!(map.arenas[0]
        .pools
        .contains(&obj_alloc::PoolState::Uncarved));
    // SAFETY: each block came from `heap` with its size and is freed once.
    unsafe {
        for p in a {
            heap.dealloc(p, 16);
        }
        heap.dealloc(b, 500);
    }
}
