//! Random allocate / write / free programs over direct blocks and arenas, with and without the
//! debug layer: contents are never clobbered and the accounting always adds up.

#![cfg(not(miri))] // thousands of operations per case: too slow for the interpreter

use proptest::prelude::*;
use raw_alloc::debug::padded_size;
use raw_alloc::{RawConfig, RawHeap, MIN_ARENA_SIZE};
use std::ptr::NonNull;

#[derive(Clone, Debug)]
enum Op {
    Direct(usize),
    Arena,
    Free(usize),
    Write(usize, u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1usize..3000).prop_map(Op::Direct),
        1 => Just(Op::Arena),
        3 => any::<usize>().prop_map(Op::Free),
        3 => (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Op::Write(i, b)),
    ]
}

enum Block {
    Direct { ptr: NonNull<u8>, len: usize },
    Arena(raw_alloc::Arena),
}

impl Block {
    fn bytes(&self) -> (NonNull<u8>, usize) {
        match self {
            Block::Direct { ptr, len } => (*ptr, *len),
            Block::Arena(a) => (a.usable_start(), 4096),
        }
    }
}

fn run(ops: Vec<Op>, debug: bool) {
    let heap = RawHeap::new(RawConfig {
        arena_size: MIN_ARENA_SIZE,
        limit: Some(8 * MIN_ARENA_SIZE),
        debug,
        ..RawConfig::default()
    })
    .unwrap();
    let mut live: Vec<(Block, u8)> = Vec::new();
    let mut model_bytes = 0usize;
    let free = |heap: &RawHeap, b: Block| match b {
        Block::Direct { ptr, len } => {
            if let Some(layer) = heap.debug_layer() {
                // SAFETY: ptr is a live debug block.
                let raw = unsafe { layer.on_free(ptr, len) }.expect("clean free");
                // SAFETY: raw came from alloc_direct(padded_size(len)).
                unsafe { heap.free_direct(raw, padded_size(len)) };
            } else {
                // SAFETY: ptr came from alloc_direct(len).
                unsafe { heap.free_direct(ptr, len) };
            }
        }
        // SAFETY: the arena is live and freed once.
        Block::Arena(a) => unsafe { heap.free_arena(a) },
    };
    for op in ops {
        match op {
            Op::Direct(len) => {
                let want = if debug { padded_size(len) } else { len };
                let Ok(raw) = heap.alloc_direct(want) else {
                    continue;
                };
                model_bytes += want.div_ceil(16) * 16;
                let ptr = match heap.debug_layer() {
                    // SAFETY: raw has padded_size(len) fresh bytes.
                    Some(layer) => unsafe { layer.on_alloc(raw, len) },
                    None => raw,
                };
                // SAFETY: len fresh bytes.
                unsafe { ptr.as_ptr().write_bytes(0, len) };
                live.push((Block::Direct { ptr, len }, 0));
            }
            Op::Arena => {
                if let Ok(a) = heap.alloc_arena() {
                    model_bytes += MIN_ARENA_SIZE;
                    // SAFETY: the usable part of a fresh arena.
                    unsafe { a.usable_start().as_ptr().write_bytes(0, 4096) };
                    live.push((Block::Arena(a), 0));
                }
            }
            Op::Free(i) if !live.is_empty() => {
                let (b, fill) = live.swap_remove(i % live.len());
                let (p, n) = b.bytes();
                // SAFETY: the block is live.
                let bytes = unsafe { std::slice::from_raw_parts(p.as_ptr(), n) };
                assert!(bytes.iter().all(|&x| x == fill), "block clobbered");
                model_bytes -= match &b {
                    Block::Direct { len, .. } => {
                        (if debug { padded_size(*len) } else { *len }).div_ceil(16) * 16
                    }
                    Block::Arena(_) => MIN_ARENA_SIZE,
                };
                free(&heap, b);
            }
            Op::Write(i, v) if !live.is_empty() => {
                let k = i % live.len();
                let (p, n) = live[k].0.bytes();
                // SAFETY: the block is live and n bytes long.
                unsafe { p.as_ptr().write_bytes(v, n) };
                live[k].1 = v;
            }
            _ => {}
        }
        assert_eq!(heap.stats().bytes_in_use, model_bytes);
    }
    for (b, _) in live {
        free(&heap, b);
    }
    let s = heap.stats();
    assert_eq!(
        (s.bytes_in_use, s.arenas_current, s.direct_blocks),
        (0, 0, 0)
    );
    if let Some(d) = s.debug {
        assert_eq!((d.live_blocks, d.violations), (0, 0));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn random_programs_never_clobber_blocks_and_accounting_adds_up(
        ops in prop::collection::vec(op(), 0..300)
    ) {
        run(ops, false);
    }

    #[test]
    fn random_programs_under_the_debug_layer_report_no_violation(
        ops in prop::collection::vec(op(), 0..300)
    ) {
        run(ops, true);
    }
}
