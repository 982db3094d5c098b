//! Dropping a heap unmaps every arena it mapped: checked from outside the heap, in
//! `/proc/self/maps`. This file holds one test, so that no other test thread maps memory
//! meanwhile.

#![cfg(all(target_os = "linux", not(miri)))]

mod support;

use std::collections::BTreeSet;
use std::io::Read;

use pyheap::Backend;

/// Whether `[start, end)` overlaps a mapping listed in `maps` (the text of /proc/self/maps).
fn mapped(maps: &str, start: usize, end: usize) -> bool {
    maps.lines().any(|line| {
        let range = line.split_whitespace().next().unwrap_or("");
        let Some((a, b)) = range.split_once('-') else {
            return false;
        };
        let (a, b) = (
            usize::from_str_radix(a, 16).unwrap_or(0),
            usize::from_str_radix(b, 16).unwrap_or(0),
        );
        a < end && start < b
    })
}

#[test]
fn dropping_a_heap_unmaps_every_arena_it_mapped() {
    let h = support::heap();
    if h.config().backend != Backend::Arena {
        return; // the system backend maps no arena (PYHEAP_TEST_BACKEND=system)
    }
    let arena_size = h.config().arena_size;
    // Objects in many arenas; the arena of each is its address masked to the arena size.
    let mut arenas = BTreeSet::new();
    let lists: Vec<_> = (0..20_000)
        .map(|i| {
            let l = h
                .list(vec![
                    h.int(1_000 + i).unwrap(),
                    h.str("in an arena").unwrap(),
                ])
                .unwrap();
            arenas.insert(l.as_ptr().addr() & !(arena_size - 1));
            l
        })
        .collect();
    let mut maps = String::with_capacity(4 << 20);
    std::fs::File::open("/proc/self/maps")
        .unwrap()
        .read_to_string(&mut maps)
        .unwrap();
    assert!(arenas.len() >= 2, "the objects fill several arenas");
    for &a in &arenas {
        assert!(
            mapped(&maps, a, a + arena_size),
            "arena {a:#x} is mapped while in use"
        );
    }
    drop(lists);
    support::assert_released(&h);

    // Nothing allocates from here to the read: the buffer has its room already.
    maps.clear();
    drop(h);
    std::fs::File::open("/proc/self/maps")
        .unwrap()
        .read_to_string(&mut maps)
        .unwrap();
    for &a in &arenas {
        assert!(
            !mapped(&maps, a, a + arena_size),
            "arena {a:#x} is still mapped after the heap was dropped"
        );
    }
}
