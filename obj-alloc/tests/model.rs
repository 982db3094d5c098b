//! Property tests against a simple model: random sequences of allocations (plain and through
//! every policy), writes and frees, in every mode. Contents are never clobbered, no block is
//! handed out twice, free-list hits return exactly the block the model predicts, and every
//! counter matches the model.

#![cfg(not(miri))] // thousands of operations per case: too slow for the interpreter

use std::collections::BTreeMap;
use std::ptr::NonNull;

use obj_alloc::{KindId, ObjAlloc, ObjConfig, Placement, Policy, SizeClass, NUM_SIZE_CLASSES};
use proptest::prelude::*;
use raw_alloc::{debug::padded_size, Backend, RawConfig};

#[derive(Clone, Copy, Debug)]
enum Mode {
    Plain,
    Debug,
    System,
}

#[derive(Clone, Debug)]
enum Op {
    /// Allocate through `user` (0: plain `alloc`, 1..=3: kinds) with a size chosen by `pick`.
    Alloc {
        user: usize,
        pick: usize,
        len: usize,
    },
    /// Free the live block at this index (modulo the number of live blocks).
    Free(usize),
    /// Overwrite a live block with a new pattern.
    Write(usize, u8),
    /// Clear every free list.
    Clear,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (0..4usize, 0..1000usize, 0..5usize).prop_map(|(user, pick, len)| Op::Alloc { user, pick, len }),
        4 => any::<usize>().prop_map(Op::Free),
        1 => (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Op::Write(i, b)),
        1 => Just(Op::Clear),
    ]
}

/// What a user of the heap holds.
struct Block {
    ptr: NonNull<u8>,
    size: usize,
    user: usize,
    len: usize,
    pattern: u8,
}

/// The model of one free list.
#[derive(Default)]
struct ModelList {
    blocks: Vec<NonNull<u8>>,
    size: usize,
}

#[derive(Default, Debug, PartialEq, Eq)]
struct Counters {
    allocations: u64,
    frees: u64,
    hits: u64,
    misses: u64,
    free_list_len: usize,
}

struct Model {
    heap: ObjAlloc,
    mode: Mode,
    kinds: [KindId; 3],
    live: Vec<Block>,
    /// Start -> (end, size) of every block handed out: live or on a free list.
    taken: BTreeMap<usize, (usize, usize)>,
    /// Per kind (index user - 1), per list.
    lists: [Vec<ModelList>; 3],
    counters: [Counters; 3],
}

const CAPACITY: usize = 3;

impl Model {
    fn new(mode: Mode) -> Model {
        let raw = RawConfig {
            arena_size: 64 << 10,
            backend: match mode {
                Mode::System => Backend::System,
                _ => Backend::Arena,
            },
            debug: matches!(mode, Mode::Debug),
            ..RawConfig::default()
        };
        let heap = ObjAlloc::new(ObjConfig {
            raw,
            pool_size: 4 << 10,
            ..ObjConfig::default()
        })
        .unwrap();
        let kinds = [
            heap.register_kind("plain", Policy::SizeClass),
            heap.register_kind("float", Policy::FreeList { capacity: CAPACITY }),
            heap.register_kind(
                "tuple",
                Policy::PerLength {
                    max_len: 3,
                    capacity: CAPACITY,
                },
            ),
        ];
        let lists = [
            Vec::new(),
            vec![ModelList::default()],
            (0..3).map(|_| ModelList::default()).collect(),
        ];
        Model {
            heap,
            mode,
            kinds,
            live: Vec::new(),
            taken: BTreeMap::new(),
            lists,
            counters: Default::default(),
        }
    }

    /// The free list a kind uses for an object of `len`, as the crate documents it.
    fn list(&mut self, user: usize, len: usize) -> Option<&mut ModelList> {
        match user {
            2 => self.lists[1].first_mut(),
            3 if (1..=3).contains(&len) => self.lists[2].get_mut(len - 1),
            _ => None,
        }
    }

    fn size_for(user: usize, pick: usize, len: usize) -> usize {
        match user {
            2 => [24, 24, 24, 32, 600][pick % 5],
            3 => 16 + 8 * len,
            _ => pick % 700,
        }
    }

    fn alloc(&mut self, user: usize, pick: usize, len: usize) {
        let size = Self::size_for(user, pick, len);
        let ptr = match user {
            0 => self.heap.alloc(size).unwrap(),
            u => self
                .heap
                .alloc_kind_len(self.kinds[u - 1], len, size)
                .unwrap(),
        };
        let align = if size > 0 && size.is_multiple_of(16) {
            16
        } else {
            8
        };
        assert_eq!(
            ptr.as_ptr() as usize % align,
            0,
            "alignment of {size} bytes"
        );
        if user > 0 {
            let predicted = match self.list(user, len) {
                Some(list) if list.size == size => list.blocks.pop(),
                _ => None,
            };
            let has_lists = user > 1;
            let c = &mut self.counters[user - 1];
            c.allocations += 1;
            match predicted {
                Some(p) => {
                    assert_eq!(ptr, p, "a hit hands out the last block freed");
                    c.hits += 1;
                    c.free_list_len -= 1;
                }
                None if has_lists => c.misses += 1,
                None => {}
            }
            if predicted.is_some() {
                self.live.push(Block::new(ptr, size, user, len));
                self.fill_last();
                return;
            }
        }
        let start = ptr.as_ptr() as usize;
        let end = start + size.max(1);
        if let Some((&s, &(e, _))) = self.taken.range(..end).next_back() {
            assert!(
                e <= start,
                "block {start:#x}..{end:#x} overlaps {s:#x}..{e:#x}"
            );
        }
        self.taken.insert(start, (end, size));
        self.live.push(Block::new(ptr, size, user, len));
        self.fill_last();
    }

    fn fill_last(&mut self) {
        let b = self.live.last_mut().unwrap();
        b.pattern = (b.ptr.as_ptr() as usize >> 4) as u8 ^ b.size as u8;
        b.write();
    }

    fn free(&mut self, index: usize) {
        if self.live.is_empty() {
            return;
        }
        let b = self.live.swap_remove(index % self.live.len());
        b.check();
        match b.user {
            0 => {
                // SAFETY: a live block of the heap with that size, freed once.
                unsafe { self.heap.dealloc(b.ptr, b.size) };
            }
            u => {
                // SAFETY: as above.
                unsafe {
                    self.heap
                        .dealloc_kind_len(self.kinds[u - 1], b.len, b.ptr, b.size)
                };
                self.counters[u - 1].frees += 1;
                let kept = match self.list(u, b.len) {
                    Some(list)
                        if list.blocks.len() < CAPACITY
                            && b.size >= 8
                            && (list.blocks.is_empty() || list.size == b.size) =>
                    {
                        list.size = b.size;
                        list.blocks.push(b.ptr);
                        true
                    }
                    _ => false,
                };
                if kept {
                    self.counters[u - 1].free_list_len += 1;
                    return;
                }
            }
        }
        self.taken.remove(&(b.ptr.as_ptr() as usize));
    }

    fn clear(&mut self) {
        let freed = self.heap.clear_free_lists();
        let mut expected = 0;
        for kind in &mut self.lists {
            for list in kind {
                for p in list.blocks.drain(..) {
                    self.taken.remove(&(p.as_ptr() as usize));
                    expected += 1;
                }
            }
        }
        assert_eq!(freed, expected);
        for c in &mut self.counters {
            c.free_list_len = 0;
        }
    }

    /// The bytes the block layer gives a request of `size`.
    fn block_bytes(&self, size: usize) -> usize {
        match self.mode {
            Mode::Debug => padded_size(size),
            _ => size,
        }
    }

    fn check_counters(&self) {
        for (i, kind) in self.kinds.iter().enumerate() {
            let s = self.heap.kind_stats(*kind);
            let got = Counters {
                allocations: s.allocations,
                frees: s.frees,
                hits: s.free_list_hits,
                misses: s.free_list_misses,
                free_list_len: s.free_list_len,
            };
            assert_eq!(got, self.counters[i], "counters of kind {i}");
            assert_eq!(s.live, s.allocations - s.frees);
        }
    }

    fn check_stats(&self) {
        for b in &self.live {
            b.check();
        }
        let mut per_class = [0usize; NUM_SIZE_CLASSES];
        let mut direct = 0;
        for &(_, size) in self.taken.values() {
            match self.heap.placement(size) {
                Placement::Arena { .. } => {
                    per_class[SizeClass::of(self.block_bytes(size)).unwrap().index()] += 1
                }
                Placement::Direct => direct += 1,
            }
        }
        let s = self.heap.stats();
        let got: Vec<usize> = s.classes.iter().map(|c| c.blocks_in_use).collect();
        assert_eq!(got, per_class.to_vec(), "blocks in use per class");
        assert_eq!(s.raw.direct_blocks, direct);
        let t = &s.totals;
        assert_eq!(
            t.bytes_in_blocks
                + t.bytes_in_available_blocks
                + t.bytes_in_free_pools
                + t.bytes_in_pool_headers
                + t.bytes_lost_to_quantization,
            t.bytes_in_arenas
        );
    }

    fn finish(mut self) {
        while !self.live.is_empty() {
            self.free(0);
        }
        self.clear();
        self.check_counters();
        self.check_stats();
        self.heap.trim(); // the one empty arena kept against thrashing
        let s = self.heap.stats();
        assert_eq!((s.arenas.current, s.raw.bytes_in_use), (0, 0));
        if let Some(d) = s.raw.debug {
            assert_eq!((d.violations, d.live_blocks), (0, 0));
        }
    }
}

impl Block {
    fn new(ptr: NonNull<u8>, size: usize, user: usize, len: usize) -> Block {
        Block {
            ptr,
            size,
            user,
            len,
            pattern: 0,
        }
    }

    fn write(&self) {
        // SAFETY: a live block with `size` bytes, owned by the model.
        unsafe { self.ptr.as_ptr().write_bytes(self.pattern, self.size) };
    }

    fn check(&self) {
        // SAFETY: as above.
        let bytes = unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.size) };
        assert!(
            bytes.iter().all(|&x| x == self.pattern),
            "block of {} bytes clobbered",
            self.size
        );
    }
}

fn run(mode: Mode, ops: Vec<Op>) {
    let mut model = Model::new(mode);
    for (step, op) in ops.into_iter().enumerate() {
        match op {
            Op::Alloc { user, pick, len } => model.alloc(user, pick, len),
            Op::Free(i) => model.free(i),
            Op::Write(i, byte) => {
                if !model.live.is_empty() {
                    let n = model.live.len();
                    let b = &mut model.live[i % n];
                    b.check();
                    b.pattern = byte;
                    b.write();
                }
            }
            Op::Clear => model.clear(),
        }
        model.check_counters();
        if step % 25 == 0 {
            model.check_stats();
        }
    }
    model.finish();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn random_workloads_match_the_model(
        mode in prop_oneof![3 => Just(Mode::Plain), 1 => Just(Mode::Debug), 1 => Just(Mode::System)],
        ops in proptest::collection::vec(op(), 1..500),
    ) {
        run(mode, ops);
    }
}

#[test]
fn a_long_grow_and_shrink_workload_matches_the_model_in_every_mode() {
    for mode in [Mode::Plain, Mode::Debug, Mode::System] {
        let mut ops = Vec::new();
        for i in 0..3000usize {
            let pick = i.wrapping_mul(2654435761) % 1000;
            ops.push(Op::Alloc {
                user: i % 4,
                pick,
                len: i % 5,
            });
            if i % 3 == 0 {
                ops.push(Op::Free(pick));
            }
        }
        for i in 0..2500usize {
            ops.push(Op::Free(i.wrapping_mul(40503)));
        }
        run(mode, ops);
    }
}
