//! `mixed`: churn interleaved with cycles, short chains and manual collections.

use pyheap::ObjRef;

use super::churn::random_object;
use super::{Details, Driver};
use crate::error::CliError;

/// The most objects the live set keeps: its slots are allocated before the first operation,
/// so an `n` of any size must not ask for more than this.
const MAX_LIVE: u64 = 1_000_000;

/// The live set's size for `n` operations: a tenth of them, within 16..=[`MAX_LIVE`].
fn live_len(n: u64) -> usize {
    (n / 10).clamp(16, MAX_LIVE) as usize
}

/// `n` churn operations; every 50th also makes a small cycle, every 1,000th a chain of 500
/// lists that is dropped at once, every 5,000th a manual collection of generation 1. A live
/// set of `n / 10` objects (within 16..=1,000,000, see [`live_len`]) is kept past the phase.
pub(crate) fn mixed(d: &mut Driver<'_, '_>, n: u64) -> Result<Details, CliError> {
    let heap = d.heap;
    let class = heap.class("Record", None)?;
    let mut live: Vec<ObjRef<'_>> = vec![heap.none(); live_len(n)];
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

#[cfg(test)]
mod tests {
    use super::live_len;

    #[test]
    fn the_live_set_is_bounded_whatever_n() {
        assert_eq!(live_len(0), 16);
        assert_eq!(live_len(1_500), 150);
        assert_eq!(live_len(10_000_000), 1_000_000);
        // `run mixed --n 18446744073709551615` panicked ("capacity overflow") before a
        // single operation, and `--n 100000000000` aborted asking for 80 GB.
        assert_eq!(live_len(u64::MAX), 1_000_000);
    }
}
