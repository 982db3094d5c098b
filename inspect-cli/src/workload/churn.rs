//! `churn`: mixed objects replacing members of a live set.

use pyheap::object::{Class, List};
use pyheap::{ObjRef, Ref};

use super::{random_text, Details, Driver};
use crate::error::CliError;

/// The live set's size for `n` operations: an eighth of them, within 16..=50,000.
fn live_len(n: u64) -> usize {
    (n / 8).clamp(16, 50_000) as usize
}

/// Makes `n` random objects, each replacing a random member of a live set (the old member is
/// dropped, and freed unless something else holds it). One object in sixteen is also appended
/// to a random live list, so some lists come to hold their own ancestors: cycles that only the
/// collector frees. The live set is kept alive past the phase.
pub(crate) fn churn(d: &mut Driver<'_, '_>, n: u64) -> Result<Details, CliError> {
    let heap = d.heap;
    let class = heap.class("Item", None)?;
    let mut live: Vec<ObjRef<'_>> = vec![heap.none(); live_len(n)];
    let mut links = 0;
    for _ in 0..n {
        let obj = random_object(d, &live, &class)?;
        if d.rng.one_in(16) {
            let target = &live[d.rng.index(live.len())];
            if let Some(list) = target.downcast_ref::<List>() {
                list.append(obj.clone())?;
                links += 1;
            }
        }
        let slot = d.rng.index(live.len());
        live[slot] = obj;
        d.step();
    }
    let kept = live.len() as u64;
    for obj in live {
        d.keep(obj);
    }
    Ok(Details::new()
        .with("live_set", kept)
        .with("links_into_live_lists", links))
}

/// One random object: an atom, or a container of random members of `live`.
pub(crate) fn random_object<'h>(
    d: &mut Driver<'h, '_>,
    live: &[ObjRef<'h>],
    class: &Ref<'h, Class<'h>>,
) -> Result<ObjRef<'h>, CliError> {
    let heap = d.heap;
    let pick = |d: &mut Driver<'h, '_>| live[d.rng.index(live.len())].clone();
    let obj = match d.rng.below(16) {
        0 => heap.int(d.rng.below(300) as i64 - 20)?,
        1 | 2 => heap.int(1_000 + d.rng.below(1 << 40) as i64)?,
        3 | 4 => heap.float(d.rng.below(1 << 20) as f64 / 7.0)?,
        5..=7 => {
            let len = 1 + d.rng.index(64);
            heap.str(random_text(d, len))?
        }
        8 => {
            let len = d.rng.index(200);
            heap.bytes(&vec![b'b'; len])?
        }
        9 | 10 => {
            let len = 1 + d.rng.index(4);
            let items: Vec<ObjRef<'h>> = (0..len).map(|_| pick(d)).collect();
            heap.tuple(&items)?.erase()
        }
        11 | 12 => {
            let len = d.rng.index(5);
            let items: Vec<ObjRef<'h>> = (0..len).map(|_| pick(d)).collect();
            heap.list(items)?.erase()
        }
        13 => {
            let dict = heap.dict()?;
            for key in 0..=d.rng.below(4) as i64 {
                let value = pick(d);
                dict.set(heap.int(key)?, value)?;
            }
            dict.erase()
        }
        _ => {
            let inst = heap.instance(class)?;
            for name in ["a", "b", "c"].into_iter().take(1 + d.rng.index(3)) {
                let value = pick(d);
                heap.setattr(&inst, name, value)?;
            }
            inst
        }
    };
    Ok(obj)
}
