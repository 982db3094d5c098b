//! `cycles`: small cycles of five shapes, dropped for the collector to find.

use std::cell::Cell;
use std::rc::Rc;

use pyheap::object::FinalizerKind;

use super::{Details, Driver};
use crate::error::CliError;

/// Makes `n` small cycles and drops each at once, so that only the collector can free them:
///
/// 0. a list that holds itself (1 object);
/// 1. a list and a dict that hold each other (2);
/// 2. two instances whose attributes point at each other (2);
/// 3. a list holding a tuple that holds the list (2);
/// 4. an instance with a finalizer (`__del__`) whose attribute is a list holding it (2).
///
/// With `collect_at_end`, a full collection ends the phase, so that every cycle is found
/// (some already were, by automatic collections along the way).
pub(crate) fn cycles(
    d: &mut Driver<'_, '_>,
    n: u64,
    collect_at_end: bool,
) -> Result<Details, CliError> {
    let heap = d.heap;
    let finalized = Rc::new(Cell::new(0u64));
    let counter = finalized.clone();
    let node = heap.class("Node", None)?;
    let fin = heap.class(
        "Finalized",
        Some((
            Rc::new(move |_, _| {
                counter.set(counter.get() + 1);
                Ok(())
            }),
            FinalizerKind::Safe,
        )),
    )?;
    let mut objects = 0;
    for i in 0..n {
        match i % 5 {
            0 => {
                let l = heap.list(vec![])?;
                l.append(l.clone().erase())?;
                objects += 1;
            }
            1 => {
                let l = heap.list(vec![])?;
                let dict = heap.dict()?;
                dict.set(heap.int(i as i64)?, l.clone().erase())?;
                l.append(dict.erase())?;
                objects += 2;
            }
            2 => {
                let a = heap.instance(&node)?;
                let b = heap.instance(&node)?;
                heap.setattr(&a, "peer", b.clone())?;
                heap.setattr(&b, "peer", a)?;
                objects += 2;
            }
            3 => {
                let l = heap.list(vec![])?;
                let t = heap.tuple(&[l.clone().erase(), heap.int(i as i64)?])?;
                l.append(t.erase())?;
                objects += 2;
            }
            _ => {
                let f = heap.instance(&fin)?;
                let holder = heap.list(vec![f.clone()])?;
                heap.setattr(&f, "holder", holder.erase())?;
                objects += 2;
            }
        }
        d.step();
    }
    if collect_at_end {
        d.collect(2)?;
    }
    Ok(Details::new()
        .with("cycles_made", n)
        .with("objects_in_cycles", objects)
        .with("finalizers_of_cycles_run", finalized.get()))
}
