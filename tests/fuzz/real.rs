//! The real side: a program's steps run against a pyheap heap, and after each step, everything
//! observable compared with the model.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::mem::ManuallyDrop;
use std::rc::Rc;

use pyheap::gengc::Phase;
use pyheap::object::{as_instance, Class, Dict, List, Opaque, WeakRefObj};
use pyheap::{DebugFlags, Heap, Kind, ObjRef};

use super::model::{Body, Event, Gen, Id, Model, Step};
use super::program::{Behavior, Finalizer};

/// The program's handles and what its user code keeps, where finalizers and callbacks can
/// reach them. No borrow of either is held while heap code runs (a handle is taken out of the
/// vector before it is dropped).
pub struct Shared<'h> {
    pub handles: RefCell<Vec<ObjRef<'h>>>,
    pub kept: RefCell<Vec<ObjRef<'h>>>,
}

/// The program's side of the heap: its handles, what user code kept, and the log of events.
///
/// The handles live in a `ManuallyDrop`: when a step panics (a broken invariant inside the
/// heap), the unwinding must not run more of the heap's code on a heap in an unknown state; the
/// handles and the heap are then leaked, and the failure is reported (and shrunk) normally.
pub struct Real<'h> {
    heap: &'h Heap,
    shared: ManuallyDrop<Rc<Shared<'h>>>,
    log: Rc<RefCell<Vec<Event>>>,
    /// The refcount counters before the program (the immortals' allocations).
    base: pyheap::refcount::RcStats,
    base_live_by_kind: HashMap<String, u64>,
}

impl<'h> Real<'h> {
    pub fn new(heap: &'h Heap) -> Real<'h> {
        let log: Rc<RefCell<Vec<Event>>> = Rc::default();
        let l = log.clone();
        heap.gc().add_callback(Box::new(move |phase, info| {
            l.borrow_mut().push(match phase {
                Phase::Start => Event::GcStart(info.generation),
                Phase::Stop => Event::GcStop {
                    generation: info.generation,
                    collected: info.collected,
                    uncollectable: info.uncollectable,
                },
            })
        }));
        let l = log.clone();
        heap.gc().rc().set_unraisable_hook(Some(Box::new(move |u| {
            l.borrow_mut()
                .push(Event::Unraisable(format!("{}: {}", u.context, u.message)))
        })));
        let s = heap.stats();
        let mut base_live_by_kind = HashMap::new();
        for k in &s.alloc.kinds {
            *base_live_by_kind.entry(k.name.clone()).or_default() += k.live;
        }
        Real {
            heap,
            shared: ManuallyDrop::new(Rc::new(Shared {
                handles: RefCell::default(),
                kept: RefCell::default(),
            })),
            log,
            base: s.refcount,
            base_live_by_kind,
        }
    }

    /// Lets go of the program's side once it has released everything (a program that passed):
    /// the classes' closures hold the other clones of `shared` and go with the classes.
    pub fn release(self) {
        assert!(self.shared.handles.borrow().is_empty() && self.shared.kept.borrow().is_empty());
        drop(ManuallyDrop::into_inner(self.shared));
        self.heap.gc().rc().set_unraisable_hook(None);
    }

    /// The events logged since the last call.
    pub fn take_events(&self) -> Vec<Event> {
        std::mem::take(&mut *self.log.borrow_mut())
    }

    fn finalizer_closure(&self, behavior: Behavior) -> pyheap::object::Finalizer<'h> {
        let shared = (*self.shared).clone();
        let log = self.log.clone();
        Rc::new(move |heap: &'h Heap, this: &ObjRef<'h>| {
            log.borrow_mut()
                .push(Event::Finalized(this.as_ptr().addr()));
            behave(heap, &shared, &log, behavior, this)
        })
    }

    fn callback(&self, behavior: Behavior) -> pyheap::refcount::WeakCallback<'h> {
        let shared = (*self.shared).clone();
        let log = self.log.clone();
        let heap = self.heap;
        Box::new(move |wr| {
            log.borrow_mut().push(Event::Callback {
                weakref: wr.as_ptr().addr(),
                cleared: wr.upgrade().is_none(),
            });
            let wr = wr.erase();
            if let Err(e) = behave(heap, &shared, &log, behavior, &wr) {
                log.borrow_mut().push(Event::Unraisable(e));
            }
        })
    }

    /// Drops the handles at these (distinct) indices, the highest first.
    fn give_up(&self, indices: &[usize]) {
        let mut indices = indices.to_vec();
        indices.sort_unstable_by(|a, b| b.cmp(a));
        for i in indices {
            let handle = self.shared.handles.borrow_mut().remove(i);
            drop(handle);
        }
    }

    /// A new reference to handle `i`.
    fn h(&self, i: usize) -> ObjRef<'h> {
        self.shared.handles.borrow()[i].clone()
    }

    /// Runs a step. Returns the new object's address (creations) and what `gc.collect`
    /// returned (collections).
    pub fn apply(&mut self, step: &Step) -> Result<(Option<usize>, Option<u64>), String> {
        let heap = self.heap;
        let err = |e: pyheap::HeapError| format!("the heap refused: {e}");
        let new = match step {
            Step::Int(v) => Some(heap.int(*v).map_err(err)?),
            Step::Float(v) => Some(heap.float(*v).map_err(err)?),
            Step::Str(s) => Some(heap.str(s).map_err(err)?),
            Step::Bytes(b) => Some(heap.bytes(b).map_err(err)?),
            Step::Tuple(items) => {
                let items: Vec<ObjRef<'h>> = items.iter().map(|&i| self.h(i)).collect();
                Some(heap.tuple(&items).map_err(err)?.erase())
            }
            Step::List(items) => {
                let items = items.iter().map(|&i| self.h(i)).collect();
                Some(heap.list(items).map_err(err)?.erase())
            }
            Step::Dict => Some(heap.dict().map_err(err)?.erase()),
            Step::Class(f) => {
                let fin = match *f {
                    Finalizer::None => None,
                    Finalizer::Safe(b) => Some((
                        self.finalizer_closure(b),
                        pyheap::object::FinalizerKind::Safe,
                    )),
                    Finalizer::Legacy(b) => Some((
                        self.finalizer_closure(b),
                        pyheap::object::FinalizerKind::Legacy,
                    )),
                };
                Some(heap.class("C", fin).map_err(err)?.erase())
            }
            Step::Instance(c) => {
                let class = self
                    .h(*c)
                    .downcast::<Class>()
                    .map_err(|o| format!("not a class: {o:?}"))?;
                Some(heap.instance(&class).map_err(err)?)
            }
            Step::WeakRef(t, cb) => {
                let cb = cb.map(|b| self.callback(b));
                Some(heap.weakref(&self.h(*t), cb).map_err(err)?.erase())
            }
            Step::Opaque(refs, size) => {
                let refs: Vec<ObjRef<'h>> = refs.iter().map(|&i| self.h(i)).collect();
                Some(heap.opaque("object", *size, &refs).map_err(err)?)
            }
            Step::ListOf(given) => {
                let items = given.iter().map(|&i| self.h(i)).collect();
                let l = heap.list(items).map_err(err)?.erase();
                self.give_up(given);
                Some(l)
            }
            Step::Append(l, x) | Step::Give(l, x) => {
                let item = self.h(*x);
                list(&self.h(*l))?.append(item).map_err(err)?;
                if let Step::Give(_, i) = step {
                    self.give_up(&[*i]);
                }
                None
            }
            Step::SetItem(l, i, x) => {
                let item = self.h(*x);
                list(&self.h(*l))?.set(*i, item).map_err(err)?;
                None
            }
            Step::Pop(l) => {
                let popped = list(&self.h(*l))?.pop();
                drop(popped);
                None
            }
            Step::ClearList(l) => {
                list(&self.h(*l))?.clear();
                None
            }
            Step::DictSet(d, k, v) => {
                let (key, value) = (heap.int(*k).map_err(err)?, self.h(*v));
                dict(&self.h(*d))?.set(key, value).map_err(err)?;
                None
            }
            Step::DictDel(d, k) => {
                let key = heap.int(*k).map_err(err)?;
                dict(&self.h(*d))?.delete(&key).map_err(err)?;
                None
            }
            Step::DictClear(d) => {
                dict(&self.h(*d))?.clear();
                None
            }
            Step::SetAttr(o, name, v) => {
                let value = self.h(*v);
                heap.setattr(&self.h(*o), name, value).map_err(err)?;
                None
            }
            Step::DelAttr(o, name) => {
                let name = heap.intern(name).map_err(err)?;
                let obj = self.h(*o);
                let inst = as_instance(&obj).ok_or("not an instance")?;
                inst.del_attr(&name).map_err(err)?;
                None
            }
            Step::SetSlot(o, s, v) => {
                let value = v.map(|i| self.h(i));
                let obj = self.h(*o);
                let opaque = obj.downcast_ref::<Opaque>().ok_or("not an opaque")?;
                opaque.set_ref(*s, value).map_err(err)?;
                None
            }
            Step::Dup(i) => Some(self.h(*i)),
            Step::Drop(i) => {
                let handle = self.shared.handles.borrow_mut().remove(*i);
                drop(handle);
                None
            }
            Step::ReleaseKept => {
                let mut kept = std::mem::take(&mut *self.shared.kept.borrow_mut());
                kept.sort_by_key(|o| o.as_ptr().addr());
                for o in kept {
                    drop(o);
                }
                None
            }
            Step::Collect(g) => {
                let n = heap.gc().collect(*g).map_err(|e| e.to_string())?;
                return Ok((None, Some(n)));
            }
            Step::SetThreshold(a, b, c) => {
                heap.gc().set_threshold(*a, *b, *c);
                None
            }
            Step::Enable(on) => {
                if *on {
                    heap.gc().enable()
                } else {
                    heap.gc().disable()
                }
                None
            }
            Step::Freeze => {
                heap.gc().freeze();
                None
            }
            Step::Unfreeze => {
                heap.gc().unfreeze();
                None
            }
            Step::SaveAll(on) => {
                heap.gc().set_debug(if *on {
                    DebugFlags::SAVEALL
                } else {
                    DebugFlags::empty()
                });
                None
            }
            Step::ClearGarbage => {
                heap.gc().clear_garbage();
                None
            }
            Step::UserCode(on) => {
                heap.gc().rc().set_user_code_enabled(*on);
                None
            }
        };
        let is_dup = matches!(step, Step::Dup(_));
        Ok(match new {
            Some(obj) => {
                let ptr = obj.as_ptr().addr();
                self.shared.handles.borrow_mut().push(obj);
                (if is_dup { None } else { Some(ptr) }, None)
            }
            None => (None, None),
        })
    }

    // ---- the comparison ---------------------------------------------------------------------

    /// Everything observable, compared with the model between two steps.
    pub fn compare(&self, model: &Model) -> Result<(), String> {
        let heap = self.heap;
        let ptr = |id: Id| model.obj(id).ptr.unwrap_or(0);
        let ptrs = |ids: &[Id]| ids.iter().map(|&i| ptr(i)).collect::<Vec<_>>();
        let addrs =
            |objs: &[ObjRef<'_>]| objs.iter().map(|o| o.as_ptr().addr()).collect::<Vec<_>>();

        // Roots: handles, kept, garbage.
        expect_eq(
            "handles",
            addrs(&self.shared.handles.borrow()),
            ptrs(&model.handles),
        )?;
        expect_eq("kept", addrs(&self.shared.kept.borrow()), ptrs(&model.kept))?;
        expect_eq(
            "gc.garbage",
            addrs(&heap.gc().garbage()),
            ptrs(&model.garbage),
        )?;

        // The collector: generations in order, counts, thresholds, statistics.
        let gc = heap.gc();
        for g in 0..3 {
            let objects = gc.get_objects(Some(g)).map_err(|e| e.to_string())?;
            expect_eq(
                &format!("generation {g}"),
                addrs(&objects),
                ptrs(&model.gens[g]),
            )?;
        }
        expect_eq("freeze count", gc.get_freeze_count(), model.gens[3].len())?;
        let c = model.counts;
        expect_eq("gc.get_count()", gc.get_count(), (c[0], c[1], c[2]))?;
        let t = model.thresholds;
        expect_eq("gc.get_threshold()", gc.get_threshold(), (t[0], t[1], t[2]))?;
        expect_eq("gc.isenabled()", gc.isenabled(), model.enabled)?;
        let stats: Vec<(u64, u64, u64)> = gc
            .get_stats()
            .iter()
            .map(|s| (s.collections, s.collected, s.uncollectable))
            .collect();
        expect_eq("gc.get_stats()", stats, model.stats.to_vec())?;
        let gs = gc.stats();
        expect_eq(
            "long-lived (total, pending)",
            (gs.long_lived_total, gs.long_lived_pending),
            (model.long_lived_total, model.long_lived_pending),
        )?;

        // Reference counting's counters.
        let r = gc.rc().stats();
        let m = &model.c;
        let b = &self.base;
        expect_eq(
            "objects alive",
            r.live - b.live,
            model.alive().count() as u64,
        )?;
        expect_eq(
            "refcount counters (allocated, freed, deferred, max pending)",
            (
                r.allocated - b.allocated,
                r.freed - b.freed,
                r.deferred - b.deferred,
                r.max_pending,
            ),
            (
                m.allocated,
                m.freed,
                m.deferred,
                m.max_pending.max(b.max_pending),
            ),
        )?;
        expect_eq(
            "user code counters (finalizers, resurrected, weakrefs cleared, callbacks)",
            (
                r.finalizers_run,
                r.resurrected,
                r.weakrefs_cleared,
                r.callbacks_run,
            ),
            (
                m.finalizers_run,
                m.resurrected,
                m.weakrefs_cleared,
                m.callbacks_run,
            ),
        )?;
        expect_eq("unraisable", r.unraisable, 0)?;

        // Live objects per kind, immortals aside.
        let mut by_kind: HashMap<&str, u64> = HashMap::new();
        for id in model.alive() {
            *by_kind.entry(model.obj(id).kind_name()).or_default() += 1;
        }
        let mut real_by_kind: HashMap<String, u64> = HashMap::new();
        for k in &heap.stats().alloc.kinds {
            *real_by_kind.entry(k.name.clone()).or_default() += k.live;
        }
        for (name, live) in &real_by_kind {
            if name == pyheap::TABLE_KIND || name == pyheap::VALUES_KIND {
                continue; // arrays of objects, not objects
            }
            let base = self.base_live_by_kind.get(name).copied().unwrap_or(0);
            let expected = by_kind.get(name.as_str()).copied().unwrap_or(0);
            expect_eq(
                &format!("live objects of kind {name}"),
                live - base,
                expected,
            )?;
        }

        // Every object reachable from the roots and the tracked generations, one by one.
        self.compare_objects(model)?;
        crate::support::check_consistent(heap);
        Ok(())
    }

    /// Walks the real heap from its roots (handles, kept, garbage, generations 0..=2) through
    /// `gc.get_referents`, and the model from the same roots through its edges; the two must
    /// find the same objects, each with the model's count, kind, references, tracking and
    /// weakref state.
    fn compare_objects(&self, model: &Model) -> Result<(), String> {
        let heap = self.heap;
        let by_ptr: HashMap<usize, Id> = model
            .alive()
            .filter_map(|id| model.obj(id).ptr.map(|p| (p, id)))
            .collect();

        // The model's side of the walk.
        let mut roots: Vec<Id> = model
            .handles
            .iter()
            .chain(&model.kept)
            .chain(&model.garbage)
            .copied()
            .collect();
        roots.extend(model.gens[..3].iter().flatten());
        let mut expected: HashSet<Id> = HashSet::new();
        while let Some(id) = roots.pop() {
            if expected.insert(id) {
                roots.extend(model.obj(id).edges());
            }
        }

        // The real side: one handle per object found (its count is then one more).
        let mut found: HashMap<usize, ObjRef<'_>> = HashMap::new();
        let mut stack: Vec<ObjRef<'_>> = self.shared.handles.borrow().clone();
        stack.extend(self.shared.kept.borrow().iter().cloned());
        stack.extend(heap.gc().garbage());
        stack.extend(heap.gc().get_objects(None).map_err(|e| e.to_string())?);
        while let Some(o) = stack.pop() {
            if o.header().is_immortal() || found.contains_key(&o.as_ptr().addr()) {
                continue;
            }
            stack.extend(heap.gc().get_referents(&o));
            found.insert(o.as_ptr().addr(), o);
        }
        drop(stack);
        let found_ids: HashSet<Id> = found
            .keys()
            .map(|p| {
                by_ptr
                    .get(p)
                    .copied()
                    .ok_or_else(|| format!("a live object at {p:#x} the model does not know"))
            })
            .collect::<Result<_, _>>()?;
        if found_ids != expected {
            let mut extra: Vec<_> = found_ids.difference(&expected).collect();
            let mut missing: Vec<_> = expected.difference(&found_ids).collect();
            extra.sort();
            missing.sort();
            return Err(format!(
                "objects reachable: the heap also has {extra:?}, lacks {missing:?}"
            ));
        }

        for (&addr, o) in &found {
            let id = by_ptr[&addr];
            let mo = model.obj(id);
            let what = format!("object {id} ({:?} at {addr:#x})", mo.kind);
            expect_eq(&format!("{what}: kind"), Kind::of(o), mo.kind.kind())?;
            expect_eq(
                &format!("{what}: reference count"),
                o.refcnt() - 1,
                mo.count,
            )?;
            let referents: Vec<usize> = heap
                .gc()
                .get_referents(o)
                .iter()
                .filter(|r| !r.header().is_immortal())
                .map(|r| r.as_ptr().addr())
                .collect();
            let edges: Vec<usize> = mo
                .edges()
                .iter()
                .map(|&e| model.obj(e).ptr.unwrap_or(0))
                .collect();
            expect_eq(&format!("{what}: referents"), referents, edges)?;
            let generation = heap.gc().generation_of(o);
            let model_generation = match mo.gen {
                Gen::In(g) => Some(g),
                Gen::Untracked => None,
                other => return Err(format!("{what}: the model left it in {other:?}")),
            };
            expect_eq(&format!("{what}: generation"), generation, model_generation)?;
            if let Body::WeakRef { referent, .. } = &mo.body {
                let wr = o.downcast_ref::<WeakRefObj>().ok_or("not a weakref")?;
                let got = wr.upgrade().map(|r| r.as_ptr().addr());
                let want = referent.map(|r| model.obj(r).ptr.unwrap_or(0));
                expect_eq(&format!("{what}: upgrade"), got, want)?;
                expect_eq(
                    &format!("{what}: is_dead"),
                    wr.is_dead(),
                    referent.is_none(),
                )?;
                expect_eq(
                    &format!("{what}: callback pending"),
                    wr.has_callback(),
                    matches!(
                        mo.body,
                        Body::WeakRef {
                            callback: Some(_),
                            ..
                        }
                    ),
                )?;
            }
            expect_eq(
                &format!("{what}: weakref count"),
                heap.gc().rc().weakref_count(o),
                mo.weakrefs.len(),
            )?;
            expect_eq(
                &format!("{what}: finalized"),
                heap.gc().is_finalized(o),
                mo.finalized,
            )?;
        }
        Ok(())
    }
}

/// What a finalizer or callback does besides logging.
fn behave<'h>(
    heap: &'h Heap,
    shared: &Shared<'h>,
    log: &RefCell<Vec<Event>>,
    behavior: Behavior,
    subject: &ObjRef<'h>,
) -> Result<(), String> {
    match behavior {
        Behavior::Log => {}
        Behavior::Keep => shared.kept.borrow_mut().push(subject.clone()),
        Behavior::Alloc => drop(heap.list(vec![]).map_err(|e| e.to_string())?),
        Behavior::Collect(g) => {
            let n = heap
                .gc()
                .collect(g as usize % 3)
                .map_err(|e| e.to_string())?;
            log.borrow_mut().push(Event::NestedCollect(n));
        }
        Behavior::Upgrade => {
            let weakrefs: Vec<ObjRef<'h>> = shared.handles.borrow().clone();
            for w in &weakrefs {
                if let Some(target) = w.downcast_ref::<WeakRefObj>().and_then(|w| w.upgrade()) {
                    shared.kept.borrow_mut().push(target);
                }
            }
        }
        Behavior::Inspect => {
            let objects = heap.gc().get_objects(None).map_err(|e| e.to_string())?;
            let referrers = heap.gc().get_referrers(subject);
            drop((objects, referrers));
        }
    }
    Ok(())
}

fn list<'a, 'h>(o: &'a ObjRef<'h>) -> Result<&'a List<'h>, String> {
    o.downcast_ref::<List>()
        .ok_or_else(|| format!("not a list: {o:?}"))
}

fn dict<'a, 'h>(o: &'a ObjRef<'h>) -> Result<&'a Dict<'h>, String> {
    o.downcast_ref::<Dict>()
        .ok_or_else(|| format!("not a dict: {o:?}"))
}

fn expect_eq<T: PartialEq + std::fmt::Debug>(what: &str, got: T, want: T) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what}: the heap has {got:?}, the model {want:?}"))
    }
}
