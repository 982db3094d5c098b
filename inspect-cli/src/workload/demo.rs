//! The demo: one run through everything a heap does, in seven phases.

use std::cell::Cell;
use std::rc::Rc;

use pyheap::object::FinalizerKind;
use pyheap::ObjRef;

use super::{chain, churn, cycles, random_text, Details, Driver, PhaseReport};
use crate::error::CliError;

/// The demo's chain length (the brief of `heap-inspect demo`: a deep chain of ~100k lists).
pub(crate) const CHAIN: u64 = 100_000;

/// Runs the phases: atoms, containers, instances with finalizers, cycles, a deep chain,
/// churn, a final full collection. What each phase keeps stays alive to the end, so the heap
/// the demo leaves has survivors of every kind, spread over partly used pools.
pub(crate) fn demo(d: &mut Driver<'_, '_>) -> Result<Vec<PhaseReport>, CliError> {
    Ok(vec![
        d.phase("atoms", atoms)?,
        d.phase("containers", containers)?,
        d.phase("instances", instances)?,
        d.phase("cycles", |d| cycles::cycles(d, 5_000, false))?,
        d.phase("deep chain", |d| chain::deep_chain(d, CHAIN))?,
        d.phase("churn", |d| churn::churn(d, 50_000))?,
        d.phase("full collection", |d| {
            let found = d.collect(2)?;
            Ok(Details::new().with("found", found))
        })?,
    ])
}

/// 20,000 ints (small ones come from the cache), 10,000 floats, 10,000 strs, 2,000 bytes; a
/// quarter of them kept.
fn atoms(d: &mut Driver<'_, '_>) -> Result<Details, CliError> {
    let heap = d.heap;
    let mut kept = 0;
    for i in 0..42_000u64 {
        let obj = match i {
            0..20_000 => heap.int(i as i64 * 7 - 40)?,
            20_000..30_000 => heap.float(i as f64 / 3.0)?,
            30_000..40_000 => {
                let len = 1 + d.rng.index(40);
                heap.str(random_text(d, len))?
            }
            _ => heap.bytes(&i.to_le_bytes())?,
        };
        if i % 4 == 0 {
            d.keep(obj);
            kept += 1;
        }
        d.step();
    }
    Ok(Details::new().with("made", 42_000).with("kept", kept))
}

/// 10,000 tuples, 5,000 lists, 3,000 dicts of atoms; a third kept.
fn containers(d: &mut Driver<'_, '_>) -> Result<Details, CliError> {
    let heap = d.heap;
    let mut kept = 0;
    for i in 0..18_000i64 {
        let obj: ObjRef<'_> = match i {
            0..10_000 => heap.tuple(&[heap.int(i)?, heap.str("pair")?])?.erase(),
            10_000..15_000 => heap
                .list((0..i % 8).map(|j| heap.int(j)).collect::<Result<_, _>>()?)?
                .erase(),
            _ => {
                let dict = heap.dict()?;
                for j in 0..i % 6 {
                    dict.set(heap.intern(&format!("key{j}"))?, heap.float(j as f64)?)?;
                }
                dict.erase()
            }
        };
        if i % 3 == 0 {
            d.keep(obj);
            kept += 1;
        }
        d.step();
    }
    Ok(Details::new().with("made", 18_000).with("kept", kept))
}

/// 2,000 pairs of instances of a class with a finalizer, pointing at each other; a quarter of
/// the pairs kept, the rest dropped and found by a full collection, which runs the finalizers.
fn instances(d: &mut Driver<'_, '_>) -> Result<Details, CliError> {
    let heap = d.heap;
    let finalized = Rc::new(Cell::new(0u64));
    let counter = finalized.clone();
    let node = heap.class(
        "Node",
        Some((
            Rc::new(move |_, _| {
                counter.set(counter.get() + 1);
                Ok(())
            }),
            FinalizerKind::Safe,
        )),
    )?;
    let leaf = heap.class("Leaf", None)?;
    for i in 0..2_000 {
        let a = heap.instance(&node)?;
        let b = heap.instance(&node)?;
        heap.setattr(&a, "peer", b.clone())?;
        heap.setattr(&b, "peer", a.clone())?;
        let l = heap.instance(&leaf)?;
        heap.setattr(&l, "value", heap.int(i)?)?;
        heap.setattr(&a, "leaf", l)?;
        if i % 4 == 0 {
            d.keep(a);
        }
        d.step();
    }
    let found = d.collect(2)?;
    Ok(Details::new()
        .with("pairs_made", 2_000)
        .with("found_by_the_collection", found)
        .with("finalizers_run", finalized.get()))
}
