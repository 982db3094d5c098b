//! Under AddressSanitizer, obj-alloc poisons the memory it keeps for itself (its `asan`
//! module): a read of a block given back to its pool, of a block on a kind's free list, or of
//! a pool's uncarved slack is reported, although all of it lies in a mapped arena. Each read
//! runs in a child process (this test binary again, `asan_child`), which ASan stops at the
//! read; the parent checks the report.
//!
//! Only meaningful in an ASan build: `cargo xtask sanitize` sets `PYHEAP_ASAN=1` for its
//! arena-backend pass; elsewhere the test returns at once.

#![cfg(not(miri))]

use std::process::Command;

use pyheap::obj_alloc::{ObjAlloc, ObjConfig, Policy};

/// The three reads, by name.
const CASES: [&str; 3] = ["freed_block", "free_list_block", "pool_slack"];

#[test]
fn asan_reports_reads_of_freed_blocks_free_list_blocks_and_pool_slack() {
    if std::env::var_os("PYHEAP_ASAN").is_none() {
        return; // not an ASan build: the poisoning compiles to nothing
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    for case in CASES {
        let out = Command::new(&exe)
            .args(["asan_child", "--exact", "--ignored", "--nocapture"])
            .env("PYHEAP_ASAN_CASE", case)
            .output()
            .expect("the child runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{case}: the read went unreported");
        assert!(
            stderr.contains("AddressSanitizer: use-after-poison"),
            "{case}: {stderr}"
        );
    }
}

/// Reads one byte ASan must stop: the case named by `PYHEAP_ASAN_CASE`.
#[test]
#[ignore = "a child of asan_reports_reads_of_freed_blocks_free_list_blocks_and_pool_slack"]
fn asan_child() {
    let case = std::env::var("PYHEAP_ASAN_CASE").expect("PYHEAP_ASAN_CASE");
    let heap = ObjAlloc::new(ObjConfig::default()).unwrap();
    // A block that stays out keeps its pool (and arena) alive and mapped.
    let keep = heap.alloc(48).unwrap();
    let target = match case.as_str() {
        "freed_block" => {
            let b = heap.alloc(48).unwrap();
            // SAFETY: a block of this allocator, of 48 bytes, freed once.
            unsafe { heap.dealloc(b, 48) };
            b
        }
        "free_list_block" => {
            let kind = heap.register_kind("float", Policy::FLOAT);
            let b = heap.alloc_kind(kind, 48).unwrap();
            // SAFETY: as above; the block goes onto the kind's free list.
            unsafe { heap.dealloc_kind(kind, b, 48) };
            b
        }
        "pool_slack" => {
            // Two blocks are carved when a pool starts; the third is slack until carved.
            // SAFETY: 2 * 48 bytes past `keep` is inside its 16 KiB pool.
            unsafe { keep.add(2 * 48) }
        }
        other => panic!("unknown case {other}"),
    };
    // SAFETY: not sound, on purpose: the byte is poisoned and ASan stops the process at this
    // read. It lies in a mapped arena (`keep` holds it), so even unsanitized it reads mapped
    // memory; this test only runs as a child under ASan.
    let byte = unsafe { target.as_ptr().read_volatile() };
    println!("read {byte} unreported");
    // SAFETY: `keep` came from `heap` with 48 bytes and is freed once.
    unsafe { heap.dealloc(keep, 48) };
}
