//! Allocates and frees through raw-alloc, then prints its accounting as text and JSON.
//!
//! `cargo run --example raw_stats`

use raw_alloc::{RawConfig, RawHeap};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let heap = RawHeap::new(RawConfig {
        limit: Some(64 << 20),
        ..RawConfig::default()
    })?;
    let arenas: Vec<_> = (0..8)
        .map(|_| heap.alloc_arena())
        .collect::<Result<_, _>>()?;
    let blocks: Vec<_> = (1..=100)
        .map(|i| heap.alloc_direct(i * 1000).map(|p| (p, i * 1000)))
        .collect::<Result<_, _>>()?;
    println!("after mapping 8 arenas and 100 direct blocks:");
    print_stats(&heap);

    for (p, n) in blocks {
        // SAFETY: each block came from `heap` with this size and is freed once.
        unsafe { heap.free_direct(p, n) };
    }
    for a in arenas.into_iter().skip(2) {
        // SAFETY: each arena came from `heap` and is freed once.
        unsafe { heap.free_arena(a) };
    }
    println!("\nafter freeing the blocks and 6 arenas:");
    print_stats(&heap);

    match heap.alloc_direct(128 << 20) {
        Ok(_) => unreachable!("the limit is 64 MiB"),
        Err(e) => println!("\na 128 MiB request under the 64 MiB limit: {e}"),
    }
    println!(
        "\nas JSON:\n{}",
        serde_json::to_string_pretty(&heap.stats())?
    );
    Ok(())
}

fn print_stats(heap: &RawHeap) {
    let s = heap.stats();
    println!(
        "  arenas: {} current, {} allocated, {} reclaimed, {} high-water ({} KiB each)",
        s.arenas_current,
        s.arenas_allocated,
        s.arenas_reclaimed,
        s.arenas_highwater,
        s.arena_size / 1024
    );
    println!(
        "  direct blocks: {} ({} bytes); bytes in use {} (high-water {})",
        s.direct_blocks, s.direct_bytes, s.bytes_in_use, s.bytes_highwater
    );
}
