//! The empty-arena retention policy against a simple model: random allocations (pooled and
//! direct), frees, trims and free-list clears under a heap limit, for budgets of one to four
//! arenas. The model knows which arena each block is in (by masking its address) and predicts
//! exactly which arenas are retained, which go back to the OS, and what the raw heap holds.

#![cfg(not(miri))] // hundreds of operations per case: too slow for the interpreter

use std::collections::{BTreeMap, BTreeSet};
use std::ptr::NonNull;

use obj_alloc::{ObjAlloc, ObjConfig, SMALL_REQUEST_THRESHOLD};
use proptest::prelude::*;
use raw_alloc::{OomCause, RawConfig};

const ARENA: usize = 64 << 10;
const LIMIT: usize = 6 * ARENA;

#[derive(Clone, Debug)]
enum Op {
    /// This many pooled requests of this many bytes (1..=512): bursts fill arenas.
    Small(usize, usize),
    /// A direct request of this many bytes (over 512).
    Direct(usize),
    /// Free this many live blocks from this index on (modulo the number of live blocks): runs of
    /// frees empty arenas.
    Free(usize, usize),
    Trim,
    ClearFreeLists,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (1..=SMALL_REQUEST_THRESHOLD, 1..300usize).prop_map(|(s, n)| Op::Small(s, n)),
        2 => (SMALL_REQUEST_THRESHOLD + 1..=3 * ARENA).prop_map(Op::Direct),
        6 => (any::<usize>(), 1..400usize).prop_map(|(i, n)| Op::Free(i, n)),
        1 => Just(Op::Trim),
        1 => Just(Op::ClearFreeLists),
    ]
}

struct Model {
    heap: ObjAlloc,
    keep: usize,
    /// Live blocks: (pointer, size).
    live: Vec<(NonNull<u8>, usize)>,
    /// Every mapped arena by base: live blocks in it.
    arenas: BTreeMap<usize, usize>,
    /// The mapped arenas with no live block: retained.
    retained: BTreeSet<usize>,
    direct_bytes: usize,
}

fn rounded(size: usize) -> usize {
    size.div_ceil(16) * 16
}

impl Model {
    fn new(keep: usize) -> Model {
        let heap = ObjAlloc::new(ObjConfig {
            raw: RawConfig {
                arena_size: ARENA,
                limit: Some(LIMIT),
                ..RawConfig::default()
            },
            pool_size: 4 << 10,
            empty_arena_budget: keep * ARENA,
        })
        .unwrap();
        Model {
            heap,
            keep,
            live: Vec::new(),
            arenas: BTreeMap::new(),
            retained: BTreeSet::new(),
            direct_bytes: 0,
        }
    }

    fn mapped(&self) -> usize {
        self.arenas.len() * ARENA + self.direct_bytes
    }

    fn release_retained(&mut self) {
        for base in std::mem::take(&mut self.retained) {
            self.arenas.remove(&base);
        }
    }

    fn small(&mut self, size: usize) {
        let retained_before = self.retained.len();
        match self.heap.alloc(size) {
            Ok(ptr) => {
                let base = ptr.as_ptr() as usize & !(ARENA - 1);
                match self.arenas.get_mut(&base) {
                    Some(count) => {
                        *count += 1;
                        self.retained.remove(&base);
                    }
                    None => {
                        assert_eq!(retained_before, 0, "an arena mapped while one was retained");
                        self.arenas.insert(base, 1);
                    }
                }
                self.live.push((ptr, size));
            }
            Err(e) => {
                assert_eq!(e.cause, OomCause::Limit);
                assert_eq!(retained_before, 0, "refused while an arena was retained");
                assert!(self.mapped() + ARENA > LIMIT);
            }
        }
    }

    fn direct(&mut self, size: usize) {
        let bytes = rounded(size);
        if self.mapped() + bytes > LIMIT {
            self.release_retained(); // retention never costs an allocation
        }
        let fits = self.mapped() + bytes <= LIMIT;
        match self.heap.alloc(size) {
            Ok(ptr) => {
                assert!(fits, "a direct block over the limit");
                self.direct_bytes += bytes;
                self.live.push((ptr, size));
            }
            Err(e) => {
                assert!(
                    !fits,
                    "refused although it fits once the retained arenas are gone"
                );
                assert_eq!(e.cause, OomCause::Limit);
            }
        }
    }

    fn free(&mut self, index: usize) {
        if self.live.is_empty() {
            return;
        }
        let (ptr, size) = self.live.swap_remove(index % self.live.len());
        // SAFETY: a live block of the heap with that size, freed once.
        unsafe { self.heap.dealloc(ptr, size) };
        if size > SMALL_REQUEST_THRESHOLD {
            self.direct_bytes -= rounded(size);
            return;
        }
        let base = ptr.as_ptr() as usize & !(ARENA - 1);
        let count = self.arenas.get_mut(&base).expect("a mapped arena");
        *count -= 1;
        if *count == 0 {
            if self.retained.len() < self.keep {
                self.retained.insert(base);
            } else {
                self.arenas.remove(&base);
            }
        }
    }

    fn check(&self) {
        let s = self.heap.stats();
        assert_eq!(
            s.arenas.retained as usize,
            self.retained.len(),
            "retained arenas"
        );
        assert_eq!(s.arenas.retained_max as usize, self.keep);
        assert_eq!(
            s.arenas.current as usize,
            self.arenas.len(),
            "mapped arenas"
        );
        assert_eq!(s.raw.bytes_in_use, self.mapped(), "bytes from the OS");
        assert!(s.raw.bytes_in_use <= LIMIT);
        let empty = s
            .arenas
            .per_arena
            .iter()
            .filter(|a| a.pools_in_use == 0)
            .count();
        assert_eq!(
            empty,
            self.retained.len(),
            "retained arenas are the empty ones"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn retention_matches_the_model(
        keep in 1..=4usize,
        ops in proptest::collection::vec(op(), 1..100),
    ) {
        let mut m = Model::new(keep);
        for op in ops {
            match op {
                Op::Small(size, n) => (0..n).for_each(|_| m.small(size)),
                Op::Direct(size) => m.direct(size),
                Op::Free(i, n) => (0..n).for_each(|_| m.free(i)),
                Op::Trim => {
                    m.heap.trim();
                    m.release_retained();
                }
                Op::ClearFreeLists => {
                    m.heap.clear_free_lists();
                    m.release_retained();
                }
            }
            m.check();
        }
        while !m.live.is_empty() {
            m.free(0);
        }
        m.check();
        m.heap.clear_free_lists();
        let s = m.heap.stats();
        prop_assert_eq!((s.arenas.current, s.raw.bytes_in_use), (0, 0));
    }
}
