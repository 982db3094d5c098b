//! Mapping and unmapping 10,000 arenas leaves the process's mappings as they were. This file
//! holds one test so that no other test thread maps memory meanwhile.

#![cfg(all(target_os = "linux", not(miri)))]

use raw_alloc::{RawConfig, RawHeap, MIN_ARENA_SIZE};

/// (start, end) of every mapping of this process.
fn mappings() -> Vec<(usize, usize)> {
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .map(|l| {
            let range = l.split_whitespace().next().unwrap();
            let (a, b) = range.split_once('-').unwrap();
            (
                usize::from_str_radix(a, 16).unwrap(),
                usize::from_str_radix(b, 16).unwrap(),
            )
        })
        .collect()
}

fn mapped_bytes(maps: &[(usize, usize)]) -> usize {
    maps.iter().map(|(a, b)| b - a).sum()
}

#[test]
fn mapping_and_unmapping_ten_thousand_arenas_leaves_the_mappings_as_before() {
    let heap = RawHeap::new(RawConfig {
        arena_size: MIN_ARENA_SIZE,
        ..RawConfig::default()
    })
    .unwrap();
    // Room for the handles first, so the Vec's own growth is not part of the difference.
    let mut arenas = Vec::with_capacity(10_000);
    let before = mappings();
    for _ in 0..10_000 {
        arenas.push(heap.alloc_arena().unwrap());
    }
    let during = mappings();
    assert!(
        mapped_bytes(&during) >= mapped_bytes(&before) + 10_000 * MIN_ARENA_SIZE,
        "the arenas are mapped"
    );
    let ranges: Vec<(usize, usize)> = arenas
        .iter()
        .map(|a| {
            (
                a.base().as_ptr() as usize,
                a.base().as_ptr() as usize + a.size(),
            )
        })
        .collect();
    for a in arenas.drain(..) {
        // SAFETY: each arena came from `heap` and is freed once.
        unsafe { heap.free_arena(a) };
    }
    let after = mappings();
    // Nothing of any arena is still mapped...
    for &(s, e) in &ranges {
        assert!(
            !after.iter().any(|&(a, b)| a < e && s < b)
                || before.iter().any(|&(a, b)| a < e && s < b),
            "arena {s:#x} is still mapped"
        );
    }
    // ...and the process maps what it mapped before. The slack (1 MiB, 16 arenas' worth) covers
    // the system allocator growing its own heap to read a 10,000-line maps file.
    let (b, a) = (mapped_bytes(&before), mapped_bytes(&after));
    assert!(a <= b + (1 << 20), "mapped {b} bytes before, {a} after");
    assert_eq!(heap.stats().arenas_current, 0);
    assert_eq!(heap.stats().arenas_reclaimed, 10_000);
}
