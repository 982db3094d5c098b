//! The stats of every tier after a deterministic mixed workload, as text and as JSON: pinned,
//! so that a change of layout or of accounting shows up in review.

use std::rc::Rc;

use pyheap::object::FinalizerKind;
use pyheap::{Config, Heap, HeapStats};

fn workload() -> HeapStats {
    let heap = Heap::new(Config::default()).unwrap();
    let keep = heap.list(vec![]).unwrap();
    for i in 0..2_000 {
        let item = match i % 5 {
            0 => heap.int(i * 1_000).unwrap(),
            1 => heap.float(i as f64 / 3.0).unwrap(),
            2 => heap.str(&format!("string number {i}")).unwrap(),
            3 => heap
                .tuple(&[heap.int(i).unwrap(), heap.none()])
                .unwrap()
                .erase(),
            _ => heap
                .list(vec![heap.bytes(b"abc").unwrap()])
                .unwrap()
                .erase(),
        };
        if i % 3 == 0 {
            keep.append(item).unwrap();
        }
    }
    let class = heap
        .class("Node", Some((Rc::new(|_, _| Ok(())), FinalizerKind::Safe)))
        .unwrap();
    for _ in 0..100 {
        let a = heap.instance(&class).unwrap();
        let b = heap.instance(&class).unwrap();
        heap.setattr(&a, "peer", b.clone()).unwrap();
        heap.setattr(&b, "peer", a).unwrap();
    }
    let d = heap.dict().unwrap();
    for i in 0..50 {
        d.set(heap.intern(&format!("k{i}")).unwrap(), heap.int(i).unwrap())
            .unwrap();
    }
    heap.gc().collect(2).unwrap();
    keep.append(d.erase()).unwrap();
    let mut stats = heap.stats();
    stats.gc.last_pause_ns = 0; // wall-clock time: the only non-deterministic figure
    stats
}

#[test]
fn stats_text_after_a_mixed_workload() {
    insta::assert_snapshot!(workload().to_string());
}

#[test]
fn stats_json_after_a_mixed_workload() {
    insta::assert_json_snapshot!(workload());
}
