//! `FreeBatch` against frees one by one: two heaps run the same program, one freeing each block
//! with `dealloc`/`dealloc_kind_len`, the other pushing the same blocks, in the same order, to
//! batches. Their statistics and heap maps must agree after every step, and so must the
//! offsets (within their arenas) of every block handed out afterwards: a batch leaves pools,
//! free lists and arenas exactly as the frees one by one do.

use std::collections::BTreeMap;
use std::ptr::NonNull;

use obj_alloc::{KindId, ObjAlloc, ObjConfig, Placement, Policy, SizeClass};
use proptest::prelude::*;
use raw_alloc::{Backend, RawConfig};

const ARENA: usize = 64 << 10;
const POOL: usize = 4 << 10;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Plain,
    Debug,
    System,
}

/// A heap of 64 KiB arenas and 4 KiB pools that retains up to `keep` empty arenas (at least 1).
fn heap(mode: Mode, keep: usize) -> ObjAlloc {
    ObjAlloc::new(ObjConfig {
        raw: RawConfig {
            arena_size: ARENA,
            backend: if mode == Mode::System {
                Backend::System
            } else {
                Backend::Arena
            },
            debug: mode == Mode::Debug,
            ..RawConfig::default()
        },
        pool_size: POOL,
        empty_arena_budget: keep * ARENA,
    })
    .unwrap()
}

fn alloc_n(heap: &ObjAlloc, size: usize, n: usize) -> Vec<NonNull<u8>> {
    (0..n).map(|_| heap.alloc(size).unwrap()).collect()
}

fn free_one_by_one(heap: &ObjAlloc, blocks: &[NonNull<u8>], size: usize) {
    for &b in blocks {
        // SAFETY: every block came from `heap` with `size` bytes and is freed once.
        unsafe { heap.dealloc(b, size) };
    }
}

fn free_batched(heap: &ObjAlloc, blocks: &[NonNull<u8>], size: usize) {
    let mut batch = heap.free_batch();
    for &b in blocks {
        // SAFETY: as above.
        unsafe { batch.push(b, size) };
    }
    batch.finish();
}

/// Where a block lies in its arena (arenas of two heaps are at different addresses).
fn offset(p: NonNull<u8>) -> usize {
    p.as_ptr() as usize & (ARENA - 1)
}

fn offsets(blocks: &[NonNull<u8>]) -> Vec<usize> {
    blocks.iter().map(|&p| offset(p)).collect()
}

fn assert_same_heap(one_by_one: &ObjAlloc, batched: &ObjAlloc) {
    assert_eq!(one_by_one.stats(), batched.stats(), "statistics");
    assert_eq!(one_by_one.heap_map(), batched.heap_map(), "heap maps");
    assert_eq!(one_by_one.retained_arenas(), batched.retained_arenas());
}

/// 48-byte blocks per 4 KiB pool.
const PER_POOL_48: usize = POOL / 48;

#[test]
fn whole_pools_freed_in_a_batch_empty_and_their_arenas_go_as_one_by_one() {
    // Under Miri: one arena and a bit; else three and a half.
    let n = if cfg!(miri) {
        20 * PER_POOL_48
    } else {
        55 * PER_POOL_48
    };
    // Under Miri only the budget of one arena, so that an arena goes back to the OS (with two
    // arenas and a budget of two, both are retained): retention is the same code whichever
    // way the pools emptied, and Miri runs it in obj-alloc's unit test
    // `empty_arenas_are_retained_up_to_the_budget_and_the_rest_go_back_to_the_os`.
    let keeps: &[usize] = if cfg!(miri) { &[0] } else { &[0, 2] };
    for &keep in keeps {
        let (a, b) = (heap(Mode::Plain, keep), heap(Mode::Plain, keep));
        let (xa, xb) = (alloc_n(&a, 48, n), alloc_n(&b, 48, n));
        assert_eq!(offsets(&xa), offsets(&xb));
        let arenas = a.stats().arenas.current;
        assert!(arenas >= 2);
        free_one_by_one(&a, &xa, 48);
        free_batched(&b, &xb, 48);
        assert_same_heap(&a, &b);
        let s = b.stats();
        assert_eq!(s.totals.bytes_in_blocks, 0);
        assert_eq!(s.classes[SizeClass::of(48).unwrap().index()].pools, 0);
        assert_eq!(
            s.arenas.current,
            keep.max(1) as u64,
            "retained per the budget"
        );
        assert_eq!(s.arenas.reclaimed, arenas - keep.max(1) as u64);
        // The pools serve again, in the same order.
        let (ya, yb) = (alloc_n(&a, 48, n), alloc_n(&b, 48, n));
        assert_eq!(offsets(&ya), offsets(&yb));
        assert_same_heap(&a, &b);
    }
}

#[test]
fn a_full_pool_freed_whole_leaves_the_used_pools_as_they_were() {
    // Three pools: the first two full (out of the used table), the third used. Freeing the
    // whole first pool takes it from full to empty at once: it must not touch the used table.
    let n = 2 * PER_POOL_48 + 5;
    let (a, b) = (heap(Mode::Plain, 1), heap(Mode::Plain, 1));
    let (xa, xb) = (alloc_n(&a, 48, n), alloc_n(&b, 48, n));
    free_one_by_one(&a, &xa[..PER_POOL_48], 48);
    free_batched(&b, &xb[..PER_POOL_48], 48);
    assert_same_heap(&a, &b);
    // The third pool serves next, then the emptied one.
    let (ya, yb) = (
        alloc_n(&a, 48, 2 * PER_POOL_48),
        alloc_n(&b, 48, 2 * PER_POOL_48),
    );
    assert_eq!(offsets(&ya), offsets(&yb));
    assert_same_heap(&a, &b);
    let mut all: Vec<_> = xb[PER_POOL_48..].iter().chain(&yb).collect();
    all.sort();
    all.dedup();
    assert_eq!(
        all.len(),
        n - PER_POOL_48 + 2 * PER_POOL_48,
        "a block handed out twice"
    );
}

#[test]
fn a_partial_run_links_its_blocks_as_one_by_one_frees_do() {
    let n = 5 * PER_POOL_48 + 7;
    let (a, b) = (heap(Mode::Plain, 1), heap(Mode::Plain, 1));
    let (xa, xb) = (alloc_n(&a, 48, n), alloc_n(&b, 48, n));
    // Every other block: no pool empties; full pools become used again.
    let odd = |v: &[NonNull<u8>]| v.iter().skip(1).step_by(2).copied().collect::<Vec<_>>();
    free_one_by_one(&a, &odd(&xa), 48);
    free_batched(&b, &odd(&xb), 48);
    assert_same_heap(&a, &b);
    assert_eq!(
        b.stats().classes[SizeClass::of(48).unwrap().index()].blocks_in_use,
        n - n / 2
    );
    // The freed blocks come back in the same order, each once.
    let (ya, yb) = (alloc_n(&a, 48, n / 2 + 3), alloc_n(&b, 48, n / 2 + 3));
    assert_eq!(offsets(&ya), offsets(&yb));
    let mut again = odd(&xb);
    again.sort();
    let mut got = yb[..n / 2].to_vec();
    got.sort();
    assert_eq!(got, again, "exactly the freed blocks, each once");
    assert_same_heap(&a, &b);
}

#[test]
fn runs_alternating_between_pools_and_classes_match_one_by_one() {
    let n = 3 * PER_POOL_48;
    let (a, b) = (heap(Mode::Plain, 1), heap(Mode::Plain, 1));
    let mut programs = Vec::new();
    for h in [&a, &b] {
        // Interleaved allocations: 48-, 16- and 400-byte blocks, so consecutive frees change
        // pool (and class) at every block, and runs of one pool at times.
        let mut blocks = Vec::new();
        for i in 0..n {
            let size = [48, 16, 400, 48][i % 4];
            blocks.push((h.alloc(size).unwrap(), size));
            if i % 3 == 0 {
                blocks.push((h.alloc(48).unwrap(), 48));
            }
        }
        programs.push(blocks);
    }
    let (pa, pb) = (&programs[0], &programs[1]);
    let order: Vec<usize> = (0..pa.len())
        .filter(|i| i % 5 != 2)
        .chain((0..pa.len()).filter(|i| i % 5 == 2).rev())
        .collect();
    for &i in &order[..order.len() / 2] {
        // SAFETY: each block is freed once, with its size.
        unsafe { a.dealloc(pa[i].0, pa[i].1) };
    }
    let mut batch = b.free_batch();
    for &i in &order[..order.len() / 2] {
        // SAFETY: as above.
        unsafe { batch.push(pb[i].0, pb[i].1) };
    }
    drop(batch); // dropping finishes the batch too
    assert_same_heap(&a, &b);
    // The rest, grouped by class: whole pools empty.
    for class_size in [16, 48, 400] {
        let rest = || order[order.len() / 2..].iter().copied();
        for i in rest().filter(|&i| pa[i].1 == class_size) {
            // SAFETY: as above.
            unsafe { a.dealloc(pa[i].0, pa[i].1) };
        }
        let mut batch = b.free_batch();
        for i in rest().filter(|&i| pb[i].1 == class_size) {
            // SAFETY: as above.
            unsafe { batch.push(pb[i].0, pb[i].1) };
        }
        batch.finish();
        assert_same_heap(&a, &b);
    }
    assert_eq!(b.stats().totals.bytes_in_blocks, 0);
}

/// Registers the same kinds in a heap: (no free list, free list of 3, per length up to 3).
fn kinds(h: &ObjAlloc) -> [KindId; 3] {
    [
        h.register_kind("plain", Policy::SizeClass),
        h.register_kind("float", Policy::FreeList { capacity: 3 }),
        h.register_kind(
            "tuple",
            Policy::PerLength {
                max_len: 3,
                capacity: 3,
            },
        ),
    ]
}

#[test]
fn kinds_with_free_lists_keep_blocks_and_the_rest_go_to_their_pools() {
    let (a, b) = (heap(Mode::Plain, 1), heap(Mode::Plain, 1));
    let (ka, kb) = (kinds(&a), kinds(&b));
    // (kind, len, size): floats of 24 and 32 bytes (the list takes one size), tuples of length
    // 0..=4 (lengths 1..=3 have lists), plain objects, and a direct block.
    let objects: Vec<(usize, usize, usize)> = (0..200)
        .map(|i| match i % 6 {
            0 | 1 => (1, 0, [24, 32][i % 4 / 2]),
            2 | 3 => (2, i % 5, 16 + 8 * (i % 5)),
            4 => (0, 0, 48),
            _ => (0, 0, if i % 12 == 5 { 600 } else { 48 }),
        })
        .collect();
    let alloc = |h: &ObjAlloc, k: &[KindId; 3]| -> Vec<NonNull<u8>> {
        objects
            .iter()
            .map(|&(kind, len, size)| h.alloc_kind_len(k[kind], len, size).unwrap())
            .collect()
    };
    let (xa, xb) = (alloc(&a, &ka), alloc(&b, &kb));
    for (&p, &(kind, len, size)) in xa.iter().zip(&objects) {
        // SAFETY: each block came from `a` with this kind, length and size; freed once.
        unsafe { a.dealloc_kind_len(ka[kind], len, p, size) };
    }
    let mut batch = b.free_batch();
    for (&p, &(kind, len, size)) in xb.iter().zip(&objects) {
        // SAFETY: as above, for `b`.
        unsafe { batch.push_kind_len(kb[kind], len, p, size) };
    }
    batch.finish();
    assert_same_heap(&a, &b);
    let float = b.kind_stats(kb[1]);
    assert_eq!((float.frees, float.free_list_len), (68, 3));
    // The next allocations take the same blocks (free-list hits first, last in first out);
    // direct blocks come from the system allocator, wherever it likes.
    let (ya, yb) = (alloc(&a, &ka), alloc(&b, &kb));
    let pooled = |v: &[NonNull<u8>]| -> Vec<usize> {
        v.iter()
            .zip(&objects)
            .filter(|(_, o)| o.2 <= 512)
            .map(|(&p, _)| offset(p))
            .collect()
    };
    assert_eq!(pooled(&ya), pooled(&yb));
    assert_same_heap(&a, &b);
    // push_kind (no length) for the float kind, and a plain push of a kind's block.
    let mut batch = b.free_batch();
    for (&p, &(kind, len, size)) in yb.iter().zip(&objects) {
        // SAFETY: as above.
        unsafe {
            match kind {
                1 => batch.push_kind(kb[1], p, size),
                _ => batch.push_kind_len(kb[kind], len, p, size),
            }
        }
    }
    drop(batch);
    for (&p, &(kind, len, size)) in ya.iter().zip(&objects) {
        // SAFETY: as above, for `a`.
        unsafe {
            match kind {
                1 => a.dealloc_kind(ka[1], p, size),
                _ => a.dealloc_kind_len(ka[kind], len, p, size),
            }
        }
    }
    assert_same_heap(&a, &b);
    assert_eq!(a.clear_free_lists(), b.clear_free_lists());
    assert_same_heap(&a, &b);
    assert_eq!(b.stats().arenas.current, 0);
}

#[test]
fn blocks_freed_in_a_batch_are_handed_out_again_once_each() {
    let h = heap(Mode::Plain, 1);
    let n = 4 * PER_POOL_48;
    let first = alloc_n(&h, 48, n);
    let keep: Vec<_> = first.iter().step_by(3).copied().collect();
    let gone: Vec<_> = first
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 3 != 0)
        .map(|(_, &p)| p)
        .collect();
    for &p in &keep {
        // SAFETY: a live block of 48 bytes.
        unsafe { p.as_ptr().write_bytes(0x5A, 48) };
    }
    free_batched(&h, &gone, 48);
    let second = alloc_n(&h, 48, gone.len() + PER_POOL_48);
    let mut all: Vec<usize> = keep
        .iter()
        .chain(&second)
        .map(|p| p.as_ptr() as usize)
        .collect();
    all.sort();
    assert!(
        all.windows(2).all(|w| w[1] - w[0] >= 48),
        "a block handed out twice"
    );
    let mut reused: Vec<_> = second[..gone.len()].to_vec();
    reused.sort();
    let mut gone = gone;
    gone.sort();
    assert_eq!(reused, gone, "the freed blocks first");
    for &p in &keep {
        // SAFETY: as above.
        let bytes = unsafe { std::slice::from_raw_parts(p.as_ptr(), 48) };
        assert!(
            bytes.iter().all(|&x| x == 0x5A),
            "a live block was clobbered"
        );
    }
    free_batched(&h, &second, 48);
    free_batched(&h, &keep, 48);
    h.trim();
    assert_eq!(h.stats().arenas.current, 0);
}

#[test]
fn allocations_during_a_batch_never_get_a_pending_block() {
    let h = heap(Mode::Plain, 1);
    let blocks = alloc_n(&h, 48, 2 * PER_POOL_48);
    let mut batch = h.free_batch();
    // Half of the first pool is pending...
    for &p in &blocks[..PER_POOL_48 / 2] {
        // SAFETY: live blocks of 48 bytes, freed once.
        unsafe { batch.push(p, 48) };
    }
    // ...and counts as handed out meanwhile.
    let class = SizeClass::of(48).unwrap().index();
    assert_eq!(h.stats().classes[class].blocks_in_use, 2 * PER_POOL_48);
    let during = alloc_n(&h, 48, 10);
    for p in &during {
        assert!(!blocks.contains(p), "a pending or live block handed out");
    }
    for &p in &blocks[PER_POOL_48 / 2..] {
        // SAFETY: as above.
        unsafe { batch.push(p, 48) };
    }
    batch.finish();
    assert_eq!(h.stats().classes[class].blocks_in_use, 10);
    free_batched(&h, &during, 48);
    h.trim();
    assert_eq!(h.stats().arenas.current, 0);
}

#[test]
fn the_debug_layer_and_the_system_backend_free_one_by_one() {
    for mode in [Mode::Debug, Mode::System] {
        let (a, b) = (heap(mode, 1), heap(mode, 1));
        let sizes = [0, 8, 48, 48, 512, 513, 4000];
        let n = if cfg!(miri) { 40 } else { 400 };
        let make = |h: &ObjAlloc| -> Vec<(NonNull<u8>, usize)> {
            (0..n)
                .map(|i| sizes[i % sizes.len()])
                .map(|s| (h.alloc(s).unwrap(), s))
                .collect()
        };
        let (xa, xb) = (make(&a), make(&b));
        for &(p, s) in &xa {
            // SAFETY: each block came from `a` with size `s`, freed once.
            unsafe { a.dealloc(p, s) };
        }
        let mut batch = b.free_batch();
        for &(p, s) in &xb {
            // SAFETY: as above, for `b`.
            unsafe { batch.push(p, s) };
        }
        batch.finish();
        let (sa, sb) = (a.stats(), b.stats());
        assert_eq!(sa, sb, "{mode:?}");
        assert_eq!(sb.raw.direct_blocks, 0);
        if let Some(d) = sb.raw.debug {
            assert_eq!((d.live_blocks, d.violations), (0, 0));
        }
    }
}

// ---- random programs ------------------------------------------------------------------------

#[derive(Clone, Debug)]
enum Op {
    /// `n` allocations through `user` (0: plain, 1..=3: the kinds) of sizes chosen by `pick`.
    Alloc {
        user: usize,
        pick: usize,
        len: usize,
        n: usize,
    },
    /// Free `n` live blocks from index `start` on, every `stride`th (in allocation order, so
    /// mostly consecutive blocks of a pool): as one batch, or one by one.
    Free {
        start: usize,
        n: usize,
        stride: usize,
    },
    /// Free these live blocks (indices modulo the live count, in this order), as one batch.
    Scatter(Vec<usize>),
    /// Overwrite a live block with a new pattern.
    Write(usize, u8),
    Clear,
    Trim,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..4usize, any::<usize>(), 0..5usize, 1..120usize)
            .prop_map(|(user, pick, len, n)| Op::Alloc { user, pick, len, n }),
        4 => (any::<usize>(), 1..300usize, 1..4usize)
            .prop_map(|(start, n, stride)| Op::Free { start, n, stride }),
        2 => proptest::collection::vec(any::<usize>(), 1..40).prop_map(Op::Scatter),
        1 => (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Op::Write(i, b)),
        1 => Just(Op::Clear),
        1 => Just(Op::Trim),
    ]
}

/// One block held by both heaps' users.
struct Twin {
    one: NonNull<u8>,
    batched: NonNull<u8>,
    size: usize,
    user: usize,
    len: usize,
    pattern: u8,
}

impl Twin {
    fn write(&self) {
        for p in [self.one, self.batched] {
            // SAFETY: a live block of `size` bytes owned by the test.
            unsafe { p.as_ptr().write_bytes(self.pattern, self.size) };
        }
    }

    fn check(&self) {
        for p in [self.one, self.batched] {
            // SAFETY: as above.
            let bytes = unsafe { std::slice::from_raw_parts(p.as_ptr(), self.size) };
            assert!(
                bytes.iter().all(|&x| x == self.pattern),
                "a live block was clobbered"
            );
        }
    }
}

struct Programs {
    one: ObjAlloc,
    batched: ObjAlloc,
    kinds_one: [KindId; 3],
    kinds_batched: [KindId; 3],
    /// In allocation order.
    live: Vec<Twin>,
    /// The batched heap's blocks handed out (live or on a free list): start -> end.
    taken: BTreeMap<usize, usize>,
    /// The batched heap's blocks on kinds' free lists (start), with their size.
    on_lists: BTreeMap<usize, usize>,
    serial: u8,
}

fn size_for(user: usize, pick: usize, len: usize) -> usize {
    match user {
        0 => [0, 8, 16, 48, 48, 48, 100, 256, 512, 513, 700][pick % 11],
        1 => [48, 48, 16][pick % 3],
        2 => [24, 24, 32, 600][pick % 4],
        _ => 16 + 8 * len,
    }
}

impl Programs {
    fn new(mode: Mode, keep: usize) -> Programs {
        let (one, batched) = (heap(mode, keep), heap(mode, keep));
        let (kinds_one, kinds_batched) = (kinds(&one), kinds(&batched));
        Programs {
            one,
            batched,
            kinds_one,
            kinds_batched,
            live: Vec::new(),
            taken: BTreeMap::new(),
            on_lists: BTreeMap::new(),
            serial: 0,
        }
    }

    fn alloc(&mut self, user: usize, pick: usize, len: usize) {
        let size = size_for(user, pick, len);
        let (one, batched) = match user {
            0 => (
                self.one.alloc(size).unwrap(),
                self.batched.alloc(size).unwrap(),
            ),
            u => (
                self.one
                    .alloc_kind_len(self.kinds_one[u - 1], len, size)
                    .unwrap(),
                self.batched
                    .alloc_kind_len(self.kinds_batched[u - 1], len, size)
                    .unwrap(),
            ),
        };
        if matches!(self.batched.placement(size), Placement::Arena { .. })
            && self.batched.raw().config().backend == Backend::Arena
        {
            assert_eq!(offset(one), offset(batched), "the same block in both heaps");
        }
        let start = batched.as_ptr() as usize;
        if self.on_lists.remove(&start).is_none() {
            let end = start + size.max(1);
            if let Some((&s, &e)) = self.taken.range(..end).next_back() {
                assert!(e <= start, "{start:#x}..{end:#x} overlaps {s:#x}..{e:#x}");
            }
            self.taken.insert(start, end);
        }
        self.serial = self.serial.wrapping_add(1);
        let twin = Twin {
            one,
            batched,
            size,
            user,
            len,
            pattern: self.serial,
        };
        twin.write();
        self.live.push(twin);
    }

    /// Frees the live blocks at these indices (each valid, distinct), in this order.
    fn free(&mut self, indices: Vec<usize>) {
        let mut batch = self.batched.free_batch();
        let mut kept = Vec::new();
        for &i in &indices {
            let t = &self.live[i];
            t.check();
            // SAFETY: both blocks are live, of `size` bytes, of this kind and length; each is
            // freed once (the indices are distinct and leave `live` below).
            unsafe {
                match t.user {
                    0 => {
                        self.one.dealloc(t.one, t.size);
                        batch.push(t.batched, t.size);
                    }
                    u => {
                        let kind = self.kinds_one[u - 1];
                        let before = self.one.kind_stats(kind).free_list_len;
                        self.one.dealloc_kind_len(kind, t.len, t.one, t.size);
                        // Kept on a free list by the one heap, so by the other: still taken.
                        if self.one.kind_stats(kind).free_list_len > before {
                            kept.push(i);
                        }
                        batch.push_kind_len(self.kinds_batched[u - 1], t.len, t.batched, t.size);
                    }
                }
            }
        }
        batch.finish();
        let mut indices = indices;
        indices.sort_unstable();
        for &i in indices.iter().rev() {
            let t = self.live.remove(i);
            let start = t.batched.as_ptr() as usize;
            if kept.contains(&i) {
                self.on_lists.insert(start, t.size);
            } else {
                self.taken.remove(&start);
            }
        }
    }

    fn check(&self) {
        for t in &self.live {
            t.check();
        }
        assert_same_heap(&self.one, &self.batched);
        for (k1, k2) in self.kinds_one.iter().zip(&self.kinds_batched) {
            assert_eq!(self.one.kind_stats(*k1), self.batched.kind_stats(*k2));
        }
    }

    fn clear(&mut self) {
        assert_eq!(self.one.clear_free_lists(), self.batched.clear_free_lists());
        for (start, _) in std::mem::take(&mut self.on_lists) {
            self.taken.remove(&start);
        }
    }
}

fn run(mode: Mode, keep: usize, ops: Vec<Op>) {
    let mut p = Programs::new(mode, keep);
    for op in ops {
        match op {
            Op::Alloc { user, pick, len, n } => {
                for i in 0..n {
                    p.alloc(user, pick.wrapping_add(i / 8), len);
                }
            }
            Op::Free { start, n, stride } => {
                if !p.live.is_empty() {
                    let len = p.live.len();
                    let start = start % len;
                    let indices = (start..len).step_by(stride).take(n).collect();
                    p.free(indices);
                }
            }
            Op::Scatter(picks) => {
                let mut indices: Vec<usize> = Vec::new();
                if !p.live.is_empty() {
                    for i in picks {
                        let i = i % p.live.len();
                        if !indices.contains(&i) {
                            indices.push(i);
                        }
                    }
                    p.free(indices);
                }
            }
            Op::Write(i, byte) => {
                if !p.live.is_empty() {
                    let n = p.live.len();
                    let t = &mut p.live[i % n];
                    t.check();
                    t.pattern = byte;
                    t.write();
                }
            }
            Op::Clear => p.clear(),
            Op::Trim => {
                p.one.trim();
                p.batched.trim();
            }
        }
        p.check();
    }
    let all = (0..p.live.len()).collect();
    p.free(all);
    p.clear();
    p.check();
    p.one.trim();
    p.batched.trim();
    assert_eq!(p.batched.stats().raw.bytes_in_use, 0);
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: if cfg!(miri) { 2 } else { 96 },
        // Miri's isolation has no current directory for the regressions file.
        failure_persistence: if cfg!(miri) {
            None
        } else {
            ProptestConfig::default().failure_persistence
        },
        ..ProptestConfig::default()
    })]

    #[test]
    fn batched_frees_match_frees_one_by_one(
        mode in prop_oneof![4 => Just(Mode::Plain), 1 => Just(Mode::Debug), 1 => Just(Mode::System)],
        keep in 0..3usize,
        ops in proptest::collection::vec(op(), 1..if cfg!(miri) { 6 } else { 120 }),
    ) {
        run(mode, keep, ops);
    }
}
