//! `deep-chain`: a long chain freed by reference counting, a long ring found by the collector.

use super::{Details, Driver};
use crate::error::CliError;

/// A chain of `n` lists, each holding the previous one, dropped at once: reference counting
/// frees all of it without recursion (the trashcan). Then a ring of `n` lists (the last holds
/// the first), dropped: a full collection finds all of it.
pub(crate) fn deep_chain(d: &mut Driver<'_, '_>, n: u64) -> Result<Details, CliError> {
    let heap = d.heap;
    let mut chain = heap.list(vec![])?;
    d.step();
    for _ in 1..n {
        chain = heap.list(vec![chain.erase()])?;
        d.step();
    }
    let freed_before = heap.gc().rc().stats().freed;
    drop(chain);
    let chain_freed = heap.gc().rc().stats().freed - freed_before;

    let first = heap.list(vec![])?;
    d.step();
    let mut last = first.clone();
    for _ in 1..n {
        let next = heap.list(vec![])?;
        last.append(next.clone().erase())?;
        last = next;
        d.step();
    }
    last.append(first.erase())?;
    drop(last);
    let ring_found = d.collect(2)?;
    Ok(Details::new()
        .with("chain_length", n)
        .with("chain_objects_freed_by_refcounting", chain_freed)
        .with("deepest_pending_stack", heap.gc().rc().stats().max_pending)
        .with("ring_length", n)
        .with("ring_objects_found_by_the_last_collection", ring_found))
}
