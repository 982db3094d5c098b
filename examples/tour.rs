//! A walk through pyheap for a newcomer: ints, strings, containers, a cycle, a collection, and
//! the statistics of every tier.
//!
//! `cargo run --example tour`

use std::rc::Rc;

use pyheap::object::{FinalizerKind, Int, Str};
use pyheap::{Config, Heap, HeapError};

fn main() -> Result<(), HeapError> {
    // One heap is one interpreter's private memory: CPython 3.11's setup by default.
    let heap = Heap::new(Config::default()).expect("the default configuration is valid");

    // Small ints are preallocated, shared and immortal; larger ones are new objects.
    let a = heap.int(42)?;
    let b = heap.int(42)?;
    println!(
        "42 is 42: {} (immortal: {})",
        a.ptr_eq(&b),
        a.header().is_immortal()
    );
    let big = heap.int(1 << 40)?;
    println!(
        "2**40 = {}, {} bytes",
        big.downcast_ref::<Int>().unwrap().0,
        heap.size_of(&big)
    );

    // Strings keep their text inline and their hash cached; interning makes one object per text.
    let s = heap.str("hello, heap")?;
    println!(
        "{:?} takes {} bytes",
        s.downcast_ref::<Str>().unwrap().as_str(),
        heap.size_of(&s)
    );
    println!(
        "intern twice, same object: {}",
        heap.intern("name")?.ptr_eq(&heap.intern("name")?)
    );

    // Containers hold counted references; dropping the last reference frees at once.
    let list = heap.list(vec![a, s, heap.float(2.5)?])?;
    let d = heap.dict()?;
    d.set(heap.str("items")?, list.clone().erase())?;
    let t = heap.tuple(&[heap.int(1)?, heap.int(2)?])?;
    println!(
        "a list of {} items, a dict of {}, a tuple of {} (tracked by the collector: {})",
        list.len(),
        d.len(),
        t.len(),
        heap.gc().is_tracked(t.as_obj())
    );

    // A class with a finalizer (Python's __del__), and two instances in a cycle.
    let class = heap.class(
        "Node",
        Some((
            Rc::new(|_heap, this| {
                println!("  __del__ of a Node at {:#x}", this.as_ptr().addr());
                Ok(())
            }),
            FinalizerKind::Safe,
        )),
    )?;
    let x = heap.instance(&class)?;
    let y = heap.instance(&class)?;
    heap.setattr(&x, "peer", y.clone())?;
    heap.setattr(&y, "peer", x.clone())?;
    let watch = heap.weakref(&x, None)?;
    drop((x, y));
    println!(
        "after dropping both nodes, the weakref still sees x: {}",
        watch.upgrade().is_some()
    );

    // Reference counting cannot free the cycle: the collector can.
    let cycle = heap.list(vec![])?;
    cycle.append(cycle.clone().erase())?;
    drop(cycle);
    println!("collecting:");
    let found = heap.gc().collect(2).expect("generation 2 exists");
    println!(
        "gc.collect() found {found} unreachable objects; x is gone: {}",
        watch.upgrade().is_none()
    );
    drop((list, d, t));

    // A deep structure is freed without recursion.
    let mut chain = heap.list(vec![])?;
    for _ in 0..1_000_000 {
        chain = heap.list(vec![chain.erase()])?;
    }
    drop(chain);
    println!(
        "a chain of a million lists dropped ({} deferred frees)",
        heap.stats().refcount.deferred
    );

    println!("\n{}", heap.stats());
    Ok(())
}
