//! What the reliability tests share: the heap configuration a sanitizer run chooses, and the
//! leak check every test ends with.
//!
//! - `PYHEAP_TEST_BACKEND=system` makes every heap these tests build take each block from the
//!   system allocator (`Backend::System`), so AddressSanitizer and valgrind see every block;
//!   unset or `arena`, blocks come from arenas (under ASan, obj-alloc poisons the free ones).
//! - [`finish`] takes the heap by value, so the borrow checker proves that no handle is left;
//!   it releases what the heap still caches (`garbage`, frozen objects, free lists) and checks
//!   that the heap holds exactly what a fresh one held: its immortals, their blocks and arenas.
//!   Dropping the heap then gives those back (`tests/leaks_maps.rs` and `tests/leaks_malloc.rs`
//!   watch that from outside the process's allocator).
#![allow(dead_code)]

use std::pin::Pin;

use pyheap::{Backend, Config, DebugFlags, Heap};

/// Every attribute and type name the reliability tests use. [`heap_with`] interns them when it
/// makes a heap, so the immortal strings of a heap are all there from the start and a string
/// that survives a test is a leak, not a new interned name.
pub const NAMES: &[&str] = &[
    "a", "b", "c", "d", "e", "f", "g", "h", "x", "y", "me", "next", "other", "peer", "attr",
    "function", "cell", "module", "frame", "object", "n0", "n1", "n2", "n3", "n4", "n5", "n6",
    "n7", "n8", "n9", "n10", "n11", "n12", "n13", "n14", "n15",
];

/// The backend the environment asks for (`PYHEAP_TEST_BACKEND`), arenas by default.
pub fn backend() -> Backend {
    match std::env::var("PYHEAP_TEST_BACKEND").as_deref() {
        Ok("system") => Backend::System,
        Ok("arena") | Err(_) => Backend::Arena,
        Ok(other) => panic!("PYHEAP_TEST_BACKEND={other}: expected `arena` or `system`"),
    }
}

/// `Config::default()` with the backend of the environment.
pub fn config() -> Config {
    Config {
        backend: backend(),
        ..Config::default()
    }
}

/// A heap of the default configuration (with the environment's backend).
pub fn heap() -> Pin<Box<Heap>> {
    heap_with(config())
}

/// A heap of `config`, the backend overridden by the environment when it names one.
pub fn heap_with(mut config: Config) -> Pin<Box<Heap>> {
    if std::env::var_os("PYHEAP_TEST_BACKEND").is_some() {
        config.backend = backend();
    }
    heap_exact(config)
}

/// A heap of exactly `config` (for tests about one backend), with the names interned.
pub fn heap_exact(config: Config) -> Pin<Box<Heap>> {
    let heap = Heap::new(config).expect("a valid configuration");
    for name in NAMES {
        heap.intern(name).expect("room for the names");
    }
    heap
}

/// What a heap holds when nothing but its immortals is alive and nothing is cached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holdings {
    /// Live objects, per kind name (immortal ones: small ints, None, interned strings).
    pub live_by_kind: Vec<(String, u64)>,
    /// Objects alive.
    pub live: u64,
    /// Blocks handed out by the allocator (pool blocks and direct blocks).
    pub blocks: u64,
    /// Arenas mapped.
    pub arenas: u64,
    /// Direct blocks live.
    pub direct_blocks: u64,
    /// Bytes the heap holds from the OS.
    pub bytes_in_use: usize,
}

/// What `heap` holds once every cache is released, as its own drop would release them:
/// `garbage` emptied, frozen objects thawed, and user code off (finalizers and callbacks no
/// longer run, so cycles through legacy finalizers are ordinary garbage), then two full
/// collections and the free lists emptied. For the end of a test: user code stays off.
pub fn holdings(heap: &Heap) -> Holdings {
    heap.gc().rc().set_user_code_enabled(false);
    heap.gc().clear_garbage();
    heap.gc().unfreeze();
    heap.gc().set_debug(DebugFlags::empty());
    heap.gc().collect(2).expect("generation 2 exists");
    heap.gc().clear_garbage(); // what the collection found uncollectable
    heap.gc().collect(2).expect("generation 2 exists");
    heap.gc().rc().allocator().clear_free_lists();
    let s = heap.stats();
    let mut live_by_kind: Vec<(String, u64)> = Vec::new();
    for k in &s.alloc.kinds {
        match live_by_kind.iter_mut().find(|(n, _)| *n == k.name) {
            Some((_, n)) => *n += k.live,
            None => live_by_kind.push((k.name.clone(), k.live)),
        }
    }
    live_by_kind.retain(|(_, n)| *n > 0);
    live_by_kind.sort();
    Holdings {
        live_by_kind,
        live: s.refcount.live,
        blocks: heap.allocated_blocks(),
        arenas: s.alloc.arenas.current,
        direct_blocks: s.alloc.raw.direct_blocks,
        bytes_in_use: s.alloc.raw.bytes_in_use,
    }
}

/// What a fresh heap of `config` holds (its immortals), for comparison with [`holdings`].
pub fn fresh_holdings(config: &Config) -> Holdings {
    let heap = heap_exact(config.clone());
    holdings(&heap)
}

/// Ends a test: checks that the heap, every handle gone, holds what a fresh heap of its
/// configuration holds (the leak check), that no tier is in the middle of anything and that
/// the debug layer (if on) found nothing; then drops it.
pub fn finish(heap: Pin<Box<Heap>>) {
    assert_released(&heap);
    drop(heap);
}

/// The leak check of [`finish`], for a test that drops the heap itself. Call it when no handle
/// is left (it cannot check that: [`finish`] can).
pub fn assert_released(heap: &Heap) {
    let expected = fresh_holdings(heap.config());
    let got = holdings(heap);
    assert_eq!(
        got, expected,
        "after every handle is gone and the caches are emptied, a heap holds only its \
         immortals (a difference is a leak)"
    );
    check_consistent(heap);
}

/// Checks the invariants every quiescent heap keeps, whatever it holds.
pub fn check_consistent(heap: &Heap) {
    let s = heap.stats();
    assert_eq!(s.refcount.pending, 0, "nothing waits on the pending stack");
    assert_eq!(s.refcount.live, s.refcount.allocated - s.refcount.freed);
    assert!(!heap.gc().is_collecting());
    let raw = &s.alloc.raw;
    assert_eq!(
        raw.bytes_in_use,
        raw.arenas_current as usize * raw.arena_size + raw.direct_bytes,
        "bytes from the OS = arenas + direct blocks"
    );
    assert_eq!(raw.arenas_current, s.alloc.arenas.current);
    let pools: usize = s.alloc.classes.iter().map(|c| c.pools).sum();
    assert_eq!(pools, s.alloc.arenas.pools_in_use, "pools per class add up");
    let is_array = |name: &str| name == pyheap::TABLE_KIND || name == pyheap::VALUES_KIND;
    let kinds_live: u64 = s
        .alloc
        .kinds
        .iter()
        .filter(|k| !is_array(&k.name))
        .map(|k| k.live)
        .sum();
    assert_eq!(
        kinds_live, s.refcount.live,
        "every live object is of one kind"
    );
    let arrays: u64 = s
        .alloc
        .kinds
        .iter()
        .filter(|k| is_array(&k.name))
        .map(|k| k.live)
        .sum();
    let free_listed: u64 = s.alloc.kinds.iter().map(|k| k.free_list_len as u64).sum();
    assert_eq!(
        heap.allocated_blocks(),
        s.refcount.live + arrays + free_listed,
        "every block handed out is a live object, an object's table or values array, or a \
         dead object on a free list"
    );
    if let Some(debug) = &raw.debug {
        assert_eq!(debug.violations, 0, "the debug layer found a violation");
        assert_eq!(debug.live_blocks, heap.allocated_blocks());
    }
}
