//! Fault injection: a workload of every kind of allocation runs again and again, its Nth
//! request to the OS failing for N = 1, 2, ... until it runs through (raw-alloc's
//! `fail_os_request`). Each time the failure must surface as an out-of-memory error from the
//! operation that made the request (or, inside a finalizer, as an unraisable report), the heap
//! must stay consistent (what the workload built is exactly what its model says, the
//! allocator's accounting adds up), and freeing then retrying must succeed. With the system
//! backend every object is a request of its own, so every allocation site fails once; with
//! small arenas, every arena map does.
//!
//! A second test runs the same workload under a heap limit small enough to be hit again and
//! again: every refusal is an error, and freeing makes room.

#![cfg(not(miri))] // hundreds of runs of the workload: too slow for the interpreter

mod support;

use std::cell::RefCell;
use std::rc::Rc;

use pyheap::object::{Class, FinalizerKind, Float, Int, List, Str};
use pyheap::raw_alloc::OomCause;
use pyheap::{Backend, Config, Heap, HeapError, ObjRef, OutOfMemory, Ref};

/// What an item of the workload's root list must be.
#[derive(Clone, Debug, PartialEq)]
enum Item {
    Int(i64),
    Float(f64),
    Str(String),
    Bytes(usize),
    Tuple,
    List,
    Dict,
    Instance,
    WeakRef,
    Opaque,
}

/// The workload's state: the heap's root list and its model.
struct Workload<'h> {
    h: &'h Heap,
    root: Ref<'h, List<'h>>,
    model: Vec<Item>,
    classes: [Ref<'h, Class<'h>>; 2],
    /// Whether operation 10 drops the oldest third of the root (else memory only grows).
    drops: bool,
}

/// Operations in the workload.
const OPS: usize = 150;

impl<'h> Workload<'h> {
    fn new(h: &'h Heap, drops: bool) -> Workload<'h> {
        // A finalizer that allocates: under fault injection, its allocation may be the one
        // that fails.
        let allocating = h
            .class(
                "Allocating",
                Some((
                    Rc::new(|heap: &Heap, _: &ObjRef<'_>| {
                        // Kinds without free lists: each is a request with the system backend.
                        let n = heap.int(1_000_000).map_err(|e| e.to_string())?;
                        let s = heap.str("made by a finalizer").map_err(|e| e.to_string())?;
                        drop((n, s));
                        Ok(())
                    }),
                    FinalizerKind::Safe,
                )),
            )
            .unwrap();
        Workload {
            h,
            root: h.list(vec![]).unwrap(),
            model: Vec::new(),
            classes: [h.class("Plain", None).unwrap(), allocating],
            drops,
        }
    }

    /// Operation `i`: makes one or a few objects and appends them to the root, or drops
    /// some, or collects. Fails only where the heap refuses memory.
    fn op(&mut self, i: usize) -> Result<(), HeapError> {
        let h = self.h;
        let (item, obj): (Item, ObjRef<'h>) = match i % 12 {
            0 => (Item::Int(1000 + i as i64), h.int(1000 + i as i64)?),
            1 => (Item::Float(i as f64), h.float(i as f64)?),
            2 => {
                // Every third one longer than the small-request threshold: a direct block.
                let text = "x".repeat(if i % 36 == 2 { 700 } else { 20 }) + &i.to_string();
                (Item::Str(text.clone()), h.str(&text)?)
            }
            3 => (Item::Bytes(600), h.bytes(&[7; 600])?),
            4 => (
                Item::Tuple,
                h.tuple(&[h.int(5000 + i as i64)?, h.str("in a tuple")?])?
                    .erase(),
            ),
            5 => (Item::List, h.list(vec![h.float(0.5)?, h.none()])?.erase()),
            6 => {
                let d = h.dict()?;
                d.set(h.int(1)?, h.str("one")?)?;
                d.set(h.str("self")?, d.clone().erase())?; // a cycle
                (Item::Dict, d.erase())
            }
            7 => {
                let o = h.instance(&self.classes[i / 12 % 2])?;
                h.setattr(&o, "me", o.clone())?; // a cycle: its finalizer runs when collected
                h.setattr(&o, "x", h.int(i as i64 * 7)?)?;
                (Item::Instance, o)
            }
            8 => {
                let target = self
                    .root
                    .get(self.root.len().saturating_sub(1))
                    .unwrap_or(h.none());
                (
                    Item::WeakRef,
                    h.weakref(&target, Some(Box::new(|_| {})))?.erase(),
                )
            }
            9 => {
                let refs: Vec<ObjRef<'h>> = self.root.to_vec().into_iter().rev().take(3).collect();
                (Item::Opaque, h.opaque("object", 64 + 8 * (i % 100), &refs)?)
            }
            10 => {
                // Drop the oldest third: cycles among them become garbage.
                if self.drops {
                    self.drop_oldest(self.model.len() / 3);
                }
                return Ok(());
            }
            _ => {
                h.gc().collect(i / 12 % 3).unwrap();
                return Ok(());
            }
        };
        self.root.append(obj)?;
        self.model.push(item);
        Ok(())
    }

    fn drop_oldest(&mut self, n: usize) {
        for _ in 0..n.min(self.model.len()) {
            self.root.pop_at(0);
            self.model.remove(0);
        }
    }

    /// The root list is exactly what the model says.
    fn check(&self) {
        let items = self.root.to_vec();
        assert_eq!(items.len(), self.model.len(), "the root list's length");
        for (o, want) in items.iter().zip(&self.model) {
            let ok = match want {
                Item::Int(v) => o.downcast_ref::<Int>().is_some_and(|i| i.0 == *v),
                Item::Float(v) => o.downcast_ref::<Float>().is_some_and(|f| f.0 == *v),
                Item::Str(s) => o.downcast_ref::<Str>().is_some_and(|x| x.as_str() == s),
                Item::Bytes(n) => o
                    .downcast_ref::<pyheap::object::Bytes>()
                    .is_some_and(|b| b.as_bytes().len() == *n),
                Item::Tuple => o.is::<pyheap::object::Tuple>(),
                Item::List => o.is::<List>(),
                Item::Dict => o.is::<pyheap::object::Dict>(),
                Item::Instance => pyheap::object::as_instance(o).is_some(),
                Item::WeakRef => o.is::<pyheap::object::WeakRefObj>(),
                Item::Opaque => o.is::<pyheap::object::Opaque>(),
            };
            assert!(ok, "{o:?} should be {want:?}");
        }
        support::check_consistent(self.h);
    }
}

/// What one run of the workload saw.
#[derive(Default)]
struct Run {
    /// The operation whose request was refused, if one was.
    refused: Option<usize>,
    /// Unraisable reports of out-of-memory (a finalizer's allocation refused).
    unraisable_oom: usize,
    /// Objects the workload allocated that no free list served, and the tables and values
    /// arrays they allocated (with the system backend: its requests to the OS).
    allocated: u64,
    /// Arenas it mapped.
    arenas: u64,
}

/// Runs `ops` operations of the workload, failing its `n`th request to the OS (None: no
/// fault).
fn run(config: &Config, ops: usize, drops: bool, n: Option<u64>) -> Run {
    let h = support::heap_exact(config.clone());
    let reports = Rc::new(RefCell::new(Vec::new()));
    let r = reports.clone();
    h.gc().rc().set_unraisable_hook(Some(Box::new(move |u| {
        r.borrow_mut().push(u.message.clone())
    })));
    let mut w = Workload::new(&h, drops);
    let mut run = Run::default();
    let before = h.stats();
    let raw = h.gc().rc().allocator().raw();
    raw.fail_os_request(n);
    for i in 0..ops {
        match w.op(i) {
            Ok(()) => {}
            Err(HeapError::OutOfMemory(OutOfMemory { cause, .. })) => {
                assert_eq!(cause, OomCause::Injected, "op {i}: only the injected fault");
                assert!(run.refused.is_none(), "op {i}: the fault fired once");
                run.refused = Some(i);
                // Consistent: the failed operation left nothing half-done.
                w.check();
                // Freeing, then retrying, succeeds.
                w.drop_oldest(w.model.len() / 2);
                h.gc().collect(2).unwrap();
                w.op(i)
                    .unwrap_or_else(|e| panic!("op {i}: the retry failed: {e}"));
            }
            Err(e) => panic!("op {i}: not an out-of-memory error: {e}"),
        }
        assert_eq!(w.root.len(), w.model.len(), "op {i}");
    }
    w.check();
    raw.fail_os_request(None);
    run.unraisable_oom = reports
        .borrow()
        .iter()
        .filter(|m| m.contains("out of memory"))
        .count();
    assert_eq!(
        reports.borrow().len(),
        run.unraisable_oom,
        "only refused allocations are reported: {:?}",
        reports.borrow()
    );
    let after = h.stats();
    let hits = |s: &pyheap::HeapStats| s.alloc.kinds.iter().map(|k| k.free_list_hits).sum::<u64>();
    let arrays = |s: &pyheap::HeapStats| {
        s.alloc
            .kinds
            .iter()
            .filter(|k| k.name == pyheap::TABLE_KIND || k.name == pyheap::VALUES_KIND)
            .map(|k| k.allocations)
            .sum::<u64>()
    };
    run.allocated =
        after.refcount.allocated - before.refcount.allocated - (hits(&after) - hits(&before))
            + (arrays(&after) - arrays(&before));
    run.arenas = after.alloc.raw.arenas_allocated - before.alloc.raw.arenas_allocated;
    let injected = after.alloc.raw.failed_requests;
    let seen = u64::from(run.refused.is_some()) + run.unraisable_oom as u64;
    assert_eq!(injected, seen, "every refused request surfaced once");
    h.gc().rc().set_unraisable_hook(None);
    drop(w);
    support::finish(h);
    run
}

/// Fails request 1, 2, ... until the workload runs through. Returns the faults injected and
/// the clean run's record.
fn fail_every_request_in_turn(config: Config, ops: usize, drops: bool) -> (u64, Run) {
    let clean = run(&config, ops, drops, None);
    assert!(clean.refused.is_none() && clean.unraisable_oom == 0);
    let (mut injected, mut in_finalizers) = (0, 0);
    for n in 1.. {
        let r = run(&config, ops, drops, Some(n));
        if r.refused.is_none() && r.unraisable_oom == 0 {
            break; // the workload makes fewer than n requests
        }
        injected += 1;
        in_finalizers += r.unraisable_oom;
    }
    eprintln!(
        "{:?} backend: {injected} faults injected, {in_finalizers} of them inside finalizers",
        config.backend
    );
    if config.backend == Backend::System {
        assert!(
            in_finalizers > 0,
            "some refusals hit a finalizer's allocation"
        );
    }
    (injected, clean)
}

#[test]
fn every_refused_allocation_is_an_error_the_heap_survives_with_the_system_backend() {
    let (injected, clean) = fail_every_request_in_turn(
        Config {
            backend: Backend::System,
            gc_thresholds: (50, 5, 5),
            ..Config::default()
        },
        OPS,
        true,
    );
    // Every object (and every table or values array) is a request of its own, and each one
    // failed in turn.
    assert_eq!(injected, clean.allocated);
}

#[test]
fn every_refused_arena_is_an_error_the_heap_survives_with_small_arenas() {
    // Nothing dropped: the heap grows through several arenas.
    let (injected, clean) = fail_every_request_in_turn(
        Config {
            arena_size: 64 << 10,
            pool_size: 4 << 10,
            gc_thresholds: (50, 5, 5),
            backend: Backend::Arena,
            ..Config::default()
        },
        24 * OPS,
        false,
    );
    // Every arena map failed in turn (and every large object's direct block).
    assert!(
        injected >= clean.arenas && clean.arenas >= 3,
        "{injected} {}",
        clean.arenas
    );
}

#[test]
fn under_a_heap_limit_every_refusal_is_an_error_and_freeing_makes_room() {
    let h = support::heap_with(Config {
        arena_size: 64 << 10,
        pool_size: 4 << 10,
        limit: Some(4 * (64 << 10)),
        ..Config::default()
    });
    let mut w = Workload::new(&h, false);
    let mut refusals = 0;
    for round in 0..40 {
        for i in 0..OPS {
            let i = round * OPS + i;
            match w.op(i) {
                Ok(()) => {}
                Err(HeapError::OutOfMemory(oom)) => {
                    assert_eq!(oom.cause, OomCause::Limit);
                    assert!(oom.in_use + oom.requested > oom.limit.unwrap());
                    refusals += 1;
                    w.check();
                    w.drop_oldest(w.model.len() / 2);
                    h.gc().collect(2).unwrap();
                    w.op(i)
                        .unwrap_or_else(|e| panic!("op {i}: no room after freeing: {e}"));
                }
                Err(e) => panic!("op {i}: {e}"),
            }
        }
        w.check();
    }
    eprintln!("limit refusals: {refusals}");
    assert!(refusals > 5, "the limit was hit: {refusals}");
    drop(w);
    support::finish(h);
}
