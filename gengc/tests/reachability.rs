//! Property test: random graphs, mutations, drops and collections; after a full collection the
//! survivors are exactly the objects reachable from live handles, computed independently.

#![cfg(not(miri))] // hundreds of programs: too slow for the interpreter

mod common;

use common::*;
use gengc::GcHeap;
use proptest::prelude::*;
use refcount::Ref;

#[derive(Clone, Debug)]
enum Op {
    New,
    Link(usize, usize),
    Unlink(usize),
    DropHandle(usize),
    Collect(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::New),
        5 => (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Op::Link(a, b)),
        1 => any::<usize>().prop_map(Op::Unlink),
        2 => any::<usize>().prop_map(Op::DropHandle),
        1 => (0usize..3).prop_map(Op::Collect),
    ]
}

/// Object ids reachable from the rooted ones over the model's edges.
fn reachable(edges: &[Vec<usize>], roots: impl Iterator<Item = usize>) -> Vec<bool> {
    let mut seen = vec![false; edges.len()];
    let mut stack: Vec<usize> = roots.collect();
    while let Some(i) = stack.pop() {
        if !std::mem::replace(&mut seen[i], true) {
            stack.extend(&edges[i]);
        }
    }
    seen
}

fn run(ops: Vec<Op>, threshold: u32) {
    let h = GcHeap::new(Default::default()).unwrap();
    h.set_threshold(threshold, 2, 2);
    // objs[i]: the id's object while the model says it may be alive (a raw handle kept by the
    // test only to compare identities; it holds a reference only through `handles`).
    let mut handles: Vec<(usize, Ref<'_, Node<'_>>)> = Vec::new();
    let mut edges: Vec<Vec<usize>> = Vec::new();
    let mut ids: Vec<refcount::ObjPtr> = Vec::new();
    for op in ops {
        match op {
            Op::New => {
                let n = h.alloc(Node::default()).unwrap();
                ids.push(n.as_ptr());
                edges.push(Vec::new());
                handles.push((ids.len() - 1, n));
            }
            Op::Link(a, b) if !handles.is_empty() => {
                let (ia, ha) = &handles[a % handles.len()];
                let (ib, hb) = &handles[b % handles.len()];
                ha.kids.push(hb.clone().erase());
                edges[*ia].push(*ib);
            }
            Op::Unlink(a) if !handles.is_empty() => {
                let (ia, ha) = &handles[a % handles.len()];
                ha.kids.pop();
                edges[*ia].pop();
            }
            Op::DropHandle(a) if !handles.is_empty() => {
                let k = a % handles.len();
                handles.swap_remove(k);
            }
            Op::Collect(g) => {
                h.collect(g).unwrap();
            }
            _ => {}
        }
    }
    h.collect(2).unwrap();
    let live = reachable(&edges, handles.iter().map(|(i, _)| *i));
    let expected = live.iter().filter(|x| **x).count() as u64;
    assert_eq!(
        h.rc().stats().live,
        expected,
        "survivors = the reachable set"
    );
    // Every tracked object is one the model says is reachable.
    let tracked = h.get_objects(None).unwrap();
    for o in &tracked {
        // Blocks are reused: the newest id at an address is the live one.
        let id = ids
            .iter()
            .rposition(|p| *p == o.as_ptr())
            .expect("a known object");
        assert!(live[id], "object {id} survived but is unreachable");
    }
    drop(tracked);
    drop(handles);
    h.collect(2).unwrap();
    assert_eq!(h.rc().stats().live, 0);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn after_a_full_collection_the_survivors_are_exactly_the_reachable_objects(
        ops in prop::collection::vec(op(), 0..200),
        threshold in prop_oneof![Just(0u32), Just(3u32), Just(700u32)],
    ) {
        run(ops, threshold);
    }
}
