//! `mixed`: churn interleaved with cycles, short chains and manual collections.

use pyheap::ObjRef;

use super::churn::random_object;
use super::{Details, Driver};
use crate::error::CliError;

/// `n` churn operations; every 50th also makes a small cycle, every 1,000th a chain of 500
/// lists that is dropped at once, every 5,000th a manual collection of generation 1. A live
/// set of `n / 10` objects (at least 16) is kept past the phase.
pub(crate) fn mixed(d: &mut Driver<'_, '_>, n: u64) -> Result<Details, CliError> {
    let heap = d.heap;
    let class = heap.class("Record", None)?;
    let mut live: Vec<ObjRef<'_>> = vec![heap.none(); (n / 10).max(16) as usize];
    let (mut cycles, mut chains) = (0, 0);
    for i in 1..=n {
        let obj = random_object(d, &live, &class)?;
        let slot = d.rng.index(live.len());
        live[slot] = obj;
        d.step();
        if i % 50 == 0 {
            let a = heap.list(vec![])?;
            let b = heap.list(vec![a.clone().erase()])?;
            a.append(b.erase())?;
            cycles += 1;
            d.step();
        }
        if i % 1_000 == 0 {
            let mut chain = heap.list(vec![])?;
            for _ in 1..500 {
                chain = heap.list(vec![chain.erase()])?;
            }
            drop(chain);
            chains += 1;
            d.step();
        }
        if i % 5_000 == 0 {
            d.collect(1)?;
        }
    }
    let kept = live.len() as u64;
    for obj in live {
        d.keep(obj);
    }
    Ok(Details::new()
        .with("live_set", kept)
        .with("cycles_made", cycles)
        .with("chains_dropped", chains))
}
