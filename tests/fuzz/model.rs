//! The reference model: pyheap's documented semantics on plain std collections, written
//! without looking at a single header, block or `gc_refs` field.
//!
//! - **Reference counting** is counts on model objects, and deaths follow the documented
//!   deallocation order: finalizer (it may resurrect), weakrefs cleared then their callbacks
//!   (newest first), untracking, the payload's references released in drop order, deaths
//!   during a deallocation waiting on a pending stack and freed last in, first out, each
//!   payload's releases reversed so that the loop frees them in recursive-drop order.
//! - **The collector** decides what is garbage by an independent reachability computation: a
//!   graph search over the model's edges from everything outside the collected generations
//!   (handles, kept objects, `gc.garbage`, temporary references, and every other live object,
//!   dying ones included). Then CPython's phases: legacy finalizers and what they reach to
//!   `garbage`, weakrefs cleared and callbacks of the live ones run, finalizers run,
//!   resurrection recomputed by the same search, the rest cleared (what is still referenced
//!   after its clear survives) and released in one deferred deallocation loop. Garbage that needs none of these phases (no finalizer to run, no
//!   weakref, no DEBUG_SAVEALL), when every young object's type promises an exact trace (all
//!   the façade's containers but classes and weakrefs), is freed in bulk instead: every payload dropped in order (its
//!   references to other garbage uncounted; the real heap skips the drop of a tuple that
//!   holds only garbage, which changes nothing the model sees), then every object freed, then
//!   the deaths outside it. Generations are arrays in tracking order (track = push, untrack = remove, the
//!   others keeping their order, as `ARCHITECTURE.md` documents), so the model knows the order
//!   the collector visits objects in, and finalizers and callbacks are compared in exact
//!   order.
//! - **Counts and thresholds**: every container's birth counts, every container's death
//!   uncounts; a birth past threshold 0 starts the oldest generation over its threshold (with
//!   the long-lived heuristic for generation 2).

use std::collections::{HashMap, HashSet};

use super::program::{Behavior, Finalizer, Op, Pick, ATTRS, KEYS};

/// A model object's number (creation order).
pub type Id = usize;

/// The kinds of the model, named as the allocator's kinds are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MKind {
    Int,
    Float,
    Str,
    Bytes,
    Tuple,
    List,
    Dict,
    Class,
    Instance,
    WeakRef,
    Opaque,
}

impl MKind {
    /// The kind's name in the allocator's statistics.
    pub fn name(self) -> &'static str {
        match self {
            MKind::Int => "int",
            MKind::Float => "float",
            MKind::Str => "str",
            MKind::Bytes => "bytes",
            MKind::Tuple => "tuple",
            MKind::List => "list",
            MKind::Dict => "dict",
            MKind::Class => "type",
            MKind::Instance => "instance",
            MKind::WeakRef => "weakref",
            MKind::Opaque => "opaque",
        }
    }

    /// The façade's kind.
    pub fn kind(self) -> pyheap::Kind {
        match self {
            MKind::Int => pyheap::Kind::Int,
            MKind::Float => pyheap::Kind::Float,
            MKind::Str => pyheap::Kind::Str,
            MKind::Bytes => pyheap::Kind::Bytes,
            MKind::Tuple => pyheap::Kind::Tuple,
            MKind::List => pyheap::Kind::List,
            MKind::Dict => pyheap::Kind::Dict,
            MKind::Class => pyheap::Kind::Class,
            MKind::Instance => pyheap::Kind::Instance,
            MKind::WeakRef => pyheap::Kind::WeakRef,
            MKind::Opaque => pyheap::Kind::Opaque,
        }
    }

    /// Whether objects of the kind are containers (tracked, counted by the collector).
    pub fn container(self) -> bool {
        matches!(
            self,
            MKind::Tuple
                | MKind::List
                | MKind::Dict
                | MKind::Instance
                | MKind::WeakRef
                | MKind::Opaque
        )
    }
}

/// Where a container is, for the collector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gen {
    Untracked,
    /// 0, 1, 2, or 3 (frozen).
    In(usize),
    /// In the array of a running collection.
    Young,
    /// Found unreachable by a running collection.
    Garbage,
    /// Garbage being cleared.
    GarbageDead,
}

/// What a model object holds.
#[derive(Clone, Debug)]
pub enum Body {
    Atom,
    Class(Finalizer),
    Tuple(Vec<Id>),
    List(Vec<Id>),
    Dict(Vec<(i64, Id)>),
    Instance {
        class: Id,
        attrs: Vec<(&'static str, Id)>,
        fin: Finalizer,
    },
    WeakRef {
        referent: Option<Id>,
        callback: Option<Behavior>,
    },
    Opaque(Vec<Option<Id>>),
}

/// One object of the model.
#[derive(Clone, Debug)]
pub struct MObj {
    pub kind: MKind,
    pub body: Body,
    pub alive: bool,
    /// Strong references: handles, kept, `garbage`, edges of live objects, temporaries.
    pub count: u32,
    /// References held by running code (a creation, a finalizer's `this`, a callback's
    /// weakref): roots the collector cannot see as edges.
    pub temp: u32,
    /// Whether a running collection holds a reference to it (its garbage).
    pub gc_held: bool,
    pub gen: Gen,
    pub index: usize,
    pub finalized: bool,
    /// Weakrefs to this object, oldest first.
    pub weakrefs: Vec<Id>,
    /// The real object's address (None for objects user code made and dropped at once).
    pub ptr: Option<usize>,
}

impl MObj {
    /// Strong references held, in trace order (which is also drop order).
    pub fn edges(&self) -> Vec<Id> {
        match &self.body {
            Body::Atom | Body::Class(_) | Body::WeakRef { .. } => Vec::new(),
            Body::Tuple(v) | Body::List(v) => v.clone(),
            Body::Dict(e) => e.iter().map(|(_, v)| *v).collect(),
            Body::Instance { class, attrs, .. } => std::iter::once(*class)
                .chain(attrs.iter().map(|(_, v)| *v))
                .collect(),
            Body::Opaque(s) => s.iter().flatten().copied().collect(),
        }
    }

    /// The kind's name in the allocator's statistics (instances are named by their finalizer).
    pub fn kind_name(&self) -> &'static str {
        match &self.body {
            Body::Instance {
                fin: Finalizer::Safe(_),
                ..
            } => "instance+finalizer",
            Body::Instance {
                fin: Finalizer::Legacy(_),
                ..
            } => "instance+legacy-finalizer",
            _ => self.kind.name(),
        }
    }

    fn finalizer(&self) -> Option<Behavior> {
        match &self.body {
            Body::Instance {
                fin: Finalizer::Safe(b) | Finalizer::Legacy(b),
                ..
            } => Some(*b),
            _ => None,
        }
    }

    fn legacy(&self) -> bool {
        matches!(
            self.body,
            Body::Instance {
                fin: Finalizer::Legacy(_),
                ..
            }
        )
    }
}

/// What user code and the collector report, in the order it happens. Objects are named by
/// address (the real log knows nothing else); the model knows each object's address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A finalizer ran on the object at this address.
    Finalized(usize),
    /// A weakref's callback ran; `cleared`: the weakref gave nothing when called.
    Callback { weakref: usize, cleared: bool },
    /// A collection of this generation started (`gc.callbacks`).
    GcStart(usize),
    /// It stopped.
    GcStop {
        generation: usize,
        collected: u64,
        uncollectable: u64,
    },
    /// A finalizer's or callback's `gc.collect()` returned this.
    NestedCollect(u64),
    /// Something was reported to the unraisable hook.
    Unraisable(String),
}

/// The refcount tier's counters, as the model keeps them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub allocated: u64,
    pub freed: u64,
    pub deferred: u64,
    pub max_pending: u64,
    pub finalizers_run: u64,
    pub resurrected: u64,
    pub weakrefs_cleared: u64,
    pub callbacks_run: u64,
}

/// An operation with its picks resolved to handle indices: what both sides execute.
#[derive(Clone, Debug)]
pub enum Step {
    Int(i64),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    Tuple(Vec<usize>),
    List(Vec<usize>),
    Dict,
    Class(Finalizer),
    Instance(usize),
    WeakRef(usize, Option<Behavior>),
    Opaque(Vec<usize>, usize),
    /// A list of these handles' objects; the handles (distinct) are given up.
    ListOf(Vec<usize>),
    Append(usize, usize),
    /// Append, then give up the item's handle.
    Give(usize, usize),
    SetItem(usize, usize, usize),
    Pop(usize),
    ClearList(usize),
    DictSet(usize, i64, usize),
    DictDel(usize, i64),
    DictClear(usize),
    SetAttr(usize, &'static str, usize),
    DelAttr(usize, &'static str),
    SetSlot(usize, usize, Option<usize>),
    Dup(usize),
    Drop(usize),
    ReleaseKept,
    Collect(usize),
    SetThreshold(u32, u32, u32),
    Enable(bool),
    Freeze,
    Unfreeze,
    SaveAll(bool),
    ClearGarbage,
    UserCode(bool),
}

/// The model heap.
pub struct Model {
    pub objs: Vec<MObj>,
    pub handles: Vec<Id>,
    pub kept: Vec<Id>,
    pub garbage: Vec<Id>,
    pub gens: [Vec<Id>; 4],
    young: Vec<Option<Id>>,
    pub counts: [u32; 3],
    pub thresholds: [u32; 3],
    pub enabled: bool,
    collecting: bool,
    pub saveall: bool,
    /// Whether finalizers and weakref callbacks run.
    pub user_code: bool,
    /// Per generation: collections, collected, uncollectable.
    pub stats: [(u64, u64, u64); 3],
    pub long_lived_total: u64,
    pub long_lived_pending: u64,
    deallocating: bool,
    pending: Vec<Id>,
    pub events: Vec<Event>,
    pub c: Counters,
}

impl Model {
    pub fn new(thresholds: [u32; 3]) -> Model {
        Model {
            objs: Vec::new(),
            handles: Vec::new(),
            kept: Vec::new(),
            garbage: Vec::new(),
            gens: Default::default(),
            young: Vec::new(),
            counts: [0; 3],
            thresholds,
            enabled: true,
            collecting: false,
            saveall: false,
            user_code: true,
            stats: [(0, 0, 0); 3],
            long_lived_total: 0,
            long_lived_pending: 0,
            deallocating: false,
            pending: Vec::new(),
            events: Vec::new(),
            c: Counters::default(),
        }
    }

    pub fn obj(&self, id: Id) -> &MObj {
        &self.objs[id]
    }

    fn ptr(&self, id: Id) -> usize {
        self.objs[id].ptr.unwrap_or(0)
    }

    /// The live objects.
    pub fn alive(&self) -> impl Iterator<Item = Id> + '_ {
        (0..self.objs.len()).filter(|&i| self.objs[i].alive)
    }

    // ---- resolving picks --------------------------------------------------------------------

    fn pick_where(&self, pick: Pick, ok: impl Fn(&MObj) -> bool) -> Option<usize> {
        let candidates: Vec<usize> = (0..self.handles.len())
            .filter(|&i| ok(&self.objs[self.handles[i]]))
            .collect();
        // Counted from the newest: removing an older, unrelated operation (as shrinking does)
        // does not change what a pick names.
        let n = candidates.len();
        (n > 0).then(|| candidates[n - 1 - pick as usize % n])
    }

    fn pick_any(&self, pick: Pick) -> Option<usize> {
        self.pick_where(pick, |_| true)
    }

    fn pick_kind(&self, pick: Pick, kind: MKind) -> Option<usize> {
        self.pick_where(pick, |o| o.kind == kind)
    }

    /// The concrete step of an operation now, or None when it has no candidate.
    pub fn resolve(&self, op: &Op) -> Option<Step> {
        let any = |p: &Pick| self.pick_any(*p);
        Some(match op {
            Op::Int(v) => Step::Int(1000 + i64::from(*v).abs()),
            Op::Float(v) => Step::Float(f64::from(*v) / 4.0),
            Op::Str(len) => Step::Str(format!("{len:03}-").repeat(*len as usize / 4 * 2 + 1)),
            Op::Bytes(len) => Step::Bytes(vec![*len; *len as usize * 8]),
            Op::Tuple(p) => Step::Tuple(p.iter().map(any).collect::<Option<_>>()?),
            Op::List(p) => Step::List(p.iter().map(any).collect::<Option<_>>()?),
            Op::Dict => Step::Dict,
            Op::Class(f) => Step::Class(*f),
            Op::Instance(c) => Step::Instance(self.pick_kind(*c, MKind::Class)?),
            Op::WeakRef(t, cb) => Step::WeakRef(any(t)?, *cb),
            Op::Opaque(p, size) => Step::Opaque(
                p.iter().map(any).collect::<Option<_>>()?,
                *size as usize * 8,
            ),
            Op::ListOf(p) => {
                let mut items: Vec<usize> = p.iter().map(any).collect::<Option<_>>()?;
                let mut seen = HashSet::new();
                items.retain(|i| seen.insert(*i));
                Step::ListOf(items)
            }
            Op::Append(l, x) => Step::Append(self.pick_kind(*l, MKind::List)?, any(x)?),
            Op::Give(l, x) => Step::Give(self.pick_kind(*l, MKind::List)?, any(x)?),
            Op::SetItem(l, i, x) => {
                let l =
                    self.pick_where(*l, |o| matches!(&o.body, Body::List(v) if !v.is_empty()))?;
                let Body::List(items) = &self.objs[self.handles[l]].body else {
                    unreachable!()
                };
                Step::SetItem(l, *i as usize % items.len(), any(x)?)
            }
            Op::Pop(l) => Step::Pop(self.pick_kind(*l, MKind::List)?),
            Op::ClearList(l) => Step::ClearList(self.pick_kind(*l, MKind::List)?),
            Op::DictSet(d, k, v) => Step::DictSet(
                self.pick_kind(*d, MKind::Dict)?,
                i64::from(*k % KEYS),
                any(v)?,
            ),
            Op::DictDel(d, k) => {
                Step::DictDel(self.pick_kind(*d, MKind::Dict)?, i64::from(*k % KEYS))
            }
            Op::DictClear(d) => Step::DictClear(self.pick_kind(*d, MKind::Dict)?),
            Op::SetAttr(o, n, v) => Step::SetAttr(
                self.pick_kind(*o, MKind::Instance)?,
                ATTRS[*n as usize % ATTRS.len()],
                any(v)?,
            ),
            Op::DelAttr(o, n) => Step::DelAttr(
                self.pick_kind(*o, MKind::Instance)?,
                ATTRS[*n as usize % ATTRS.len()],
            ),
            Op::SetSlot(o, s, v) => {
                let o =
                    self.pick_where(*o, |o| matches!(&o.body, Body::Opaque(s) if !s.is_empty()))?;
                let Body::Opaque(slots) = &self.objs[self.handles[o]].body else {
                    unreachable!()
                };
                let v = match v {
                    Some(p) => Some(any(p)?),
                    None => None,
                };
                Step::SetSlot(o, *s as usize % slots.len(), v)
            }
            Op::Dup(p) => Step::Dup(any(p)?),
            Op::Drop(p) => Step::Drop(any(p)?),
            Op::ReleaseKept => Step::ReleaseKept,
            Op::Collect(g) => Step::Collect(*g as usize % 3),
            Op::SetThreshold(a, b, c) => Step::SetThreshold((*a).into(), (*b).into(), (*c).into()),
            Op::Enable(on) => Step::Enable(*on),
            Op::Freeze => Step::Freeze,
            Op::Unfreeze => Step::Unfreeze,
            Op::SaveAll(on) => Step::SaveAll(*on),
            Op::ClearGarbage => Step::ClearGarbage,
            Op::UserCode(on) => Step::UserCode(*on),
        })
    }

    // ---- steps ------------------------------------------------------------------------------

    /// Runs a step. `new_ptr` is the address of the object the real heap made, for creations.
    /// Returns what `gc.collect` returned, for collections.
    pub fn apply(&mut self, step: &Step, new_ptr: Option<usize>) -> Option<u64> {
        let h = |i: &usize| self.handles[*i];
        match step {
            Step::Int(_) => {
                self.create(MKind::Int, Body::Atom, new_ptr);
            }
            Step::Float(_) => {
                self.create(MKind::Float, Body::Atom, new_ptr);
            }
            Step::Str(_) => {
                self.create(MKind::Str, Body::Atom, new_ptr);
            }
            Step::Bytes(_) => {
                self.create(MKind::Bytes, Body::Atom, new_ptr);
            }
            Step::Tuple(items) => {
                let items: Vec<Id> = items.iter().map(h).collect();
                let id = self.create(MKind::Tuple, Body::Tuple(items.clone()), new_ptr);
                // Untracked when no item may be tracked: atoms, and untracked tuples.
                let untracked = items.iter().all(|&i| {
                    let o = &self.objs[i];
                    !o.kind.container() || (o.kind == MKind::Tuple && o.gen == Gen::Untracked)
                });
                if untracked {
                    self.unlink(id);
                }
            }
            Step::List(items) => {
                let items = items.iter().map(h).collect();
                self.create(MKind::List, Body::List(items), new_ptr);
            }
            Step::Dict => {
                // Untracked until it holds something that may be tracked (MAINTAIN_TRACKING).
                let id = self.create(MKind::Dict, Body::Dict(Vec::new()), new_ptr);
                self.unlink(id);
            }
            Step::Class(f) => {
                self.create(MKind::Class, Body::Class(*f), new_ptr);
            }
            Step::Instance(c) => {
                let class = h(c);
                let Body::Class(fin) = self.objs[class].body else {
                    unreachable!("resolved to a class")
                };
                let body = Body::Instance {
                    class,
                    attrs: Vec::new(),
                    fin,
                };
                self.create(MKind::Instance, body, new_ptr);
            }
            Step::WeakRef(t, callback) => {
                let target = h(t);
                let body = Body::WeakRef {
                    referent: Some(target),
                    callback: *callback,
                };
                let id = self.create_unpushed(MKind::WeakRef, body, new_ptr);
                self.objs[target].weakrefs.push(id);
                self.push_handle(id);
                return None;
            }
            Step::Opaque(refs, _) => {
                let slots = refs.iter().map(|i| Some(h(i))).collect();
                self.create(MKind::Opaque, Body::Opaque(slots), new_ptr);
            }
            Step::ListOf(given) => {
                let items = given.iter().map(h).collect();
                let id = self.create_unpushed(MKind::List, Body::List(items), new_ptr);
                self.give_up(given);
                self.push_handle(id);
            }
            Step::Append(l, x) | Step::Give(l, x) => {
                let (l, x) = (h(l), h(x));
                self.incref(x);
                let Body::List(items) = &mut self.objs[l].body else {
                    unreachable!()
                };
                items.push(x);
                if let Step::Give(_, i) = step {
                    self.give_up(&[*i]);
                }
            }
            Step::SetItem(l, i, x) => {
                let (l, x) = (h(l), h(x));
                self.incref(x);
                let Body::List(items) = &mut self.objs[l].body else {
                    unreachable!()
                };
                let old = std::mem::replace(&mut items[*i], x);
                self.decref(old);
            }
            Step::Pop(l) => {
                let Body::List(items) = &mut self.objs[h(l)].body else {
                    unreachable!()
                };
                if let Some(x) = items.pop() {
                    self.decref(x);
                }
            }
            Step::ClearList(l) => self.clear(h(l)),
            Step::DictSet(d, k, v) => {
                let (d, v) = (h(d), h(v));
                self.set_entry(d, *k, v);
            }
            Step::DictDel(d, k) => {
                let Body::Dict(e) = &mut self.objs[h(d)].body else {
                    unreachable!()
                };
                if let Some(i) = e.iter().position(|(key, _)| key == k) {
                    let (_, v) = e.remove(i);
                    self.decref(v);
                }
            }
            Step::DictClear(d) => self.clear(h(d)),
            Step::SetAttr(o, name, v) => {
                let (o, v) = (h(o), h(v));
                self.incref(v);
                let Body::Instance { attrs, .. } = &mut self.objs[o].body else {
                    unreachable!()
                };
                let old = match attrs.iter_mut().find(|(n, _)| n == name) {
                    Some((_, slot)) => Some(std::mem::replace(slot, v)),
                    None => {
                        attrs.push((name, v));
                        None
                    }
                };
                if let Some(old) = old {
                    self.decref(old);
                }
            }
            Step::DelAttr(o, name) => {
                let Body::Instance { attrs, .. } = &mut self.objs[h(o)].body else {
                    unreachable!()
                };
                if let Some(i) = attrs.iter().position(|(n, _)| n == name) {
                    let (_, v) = attrs.remove(i);
                    self.decref(v);
                }
            }
            Step::SetSlot(o, s, v) => {
                let o = h(o);
                let v = v.as_ref().map(h);
                if let Some(v) = v {
                    self.incref(v);
                }
                let Body::Opaque(slots) = &mut self.objs[o].body else {
                    unreachable!()
                };
                let old = std::mem::replace(&mut slots[*s], v);
                if let Some(old) = old {
                    self.decref(old);
                }
            }
            Step::Dup(i) => {
                let id = h(i);
                self.incref(id);
                self.handles.push(id);
            }
            Step::Drop(i) => {
                let id = self.handles.remove(*i);
                self.decref(id);
            }
            Step::ReleaseKept => {
                let mut kept = std::mem::take(&mut self.kept);
                kept.sort_by_key(|&id| self.ptr(id));
                self.release_in_order(kept);
            }
            Step::Collect(g) => return Some(self.collect_with_callback(*g)),
            Step::SetThreshold(a, b, c) => self.thresholds = [*a, *b, *c],
            Step::Enable(on) => self.enabled = *on,
            Step::Freeze => {
                for g in 0..3 {
                    self.merge(g, 3);
                }
                self.counts[0] = 0;
            }
            Step::Unfreeze => self.merge(3, 2),
            Step::SaveAll(on) => self.saveall = *on,
            Step::ClearGarbage => {
                let garbage = std::mem::take(&mut self.garbage);
                self.release_in_order(garbage);
            }
            Step::UserCode(on) => self.user_code = *on,
        }
        None
    }

    /// Releases references taken out of where they were held into a local vector, one after
    /// the other: while one release runs its consequences (finalizers, collections), the later
    /// ones are still held by the vector.
    fn release_in_order(&mut self, ids: Vec<Id>) {
        for &id in &ids {
            self.objs[id].temp += 1;
        }
        for id in ids {
            self.objs[id].temp -= 1;
            self.decref(id);
        }
    }

    /// Drops the handles at these (distinct) indices, the highest first.
    fn give_up(&mut self, indices: &[usize]) {
        let mut indices = indices.to_vec();
        indices.sort_unstable_by(|a, b| b.cmp(a));
        for i in indices {
            let id = self.handles.remove(i);
            self.decref(id);
        }
    }

    fn set_entry(&mut self, d: Id, key: i64, v: Id) {
        self.incref(v);
        let Body::Dict(e) = &mut self.objs[d].body else {
            unreachable!()
        };
        let old = match e.iter_mut().find(|(k, _)| *k == key) {
            Some((_, slot)) => Some(std::mem::replace(slot, v)),
            None => {
                e.push((key, v));
                None
            }
        };
        // CPython's MAINTAIN_TRACKING: a value that may be tracked (a container, a tuple only
        // while tracked) has an untracked dict tracked. Keys are ints here.
        let value = &self.objs[v];
        let may_be_tracked =
            value.kind.container() && (value.kind != MKind::Tuple || value.gen != Gen::Untracked);
        if may_be_tracked && self.objs[d].gen == Gen::Untracked {
            self.link(d, 0);
        }
        if let Some(old) = old {
            self.decref(old);
        }
    }

    /// A creation: the references the object holds were counted by the caller's clones; the
    /// object is born (a container may start an automatic collection first), then its handle is
    /// pushed.
    fn create(&mut self, kind: MKind, body: Body, ptr: Option<usize>) -> Id {
        let id = self.create_unpushed(kind, body, ptr);
        self.push_handle(id);
        id
    }

    fn create_unpushed(&mut self, kind: MKind, body: Body, ptr: Option<usize>) -> Id {
        let id = self.objs.len();
        let holds = match &body {
            Body::WeakRef { .. } => Vec::new(),
            _ => MObj {
                kind,
                body: body.clone(),
                alive: true,
                count: 0,
                temp: 0,
                gc_held: false,
                gen: Gen::Untracked,
                index: 0,
                finalized: false,
                weakrefs: Vec::new(),
                ptr: None,
            }
            .edges(),
        };
        for x in holds {
            self.incref(x);
        }
        self.objs.push(MObj {
            kind,
            body,
            alive: true,
            count: 1,
            temp: 1,
            gc_held: false,
            gen: Gen::Untracked,
            index: 0,
            finalized: false,
            weakrefs: Vec::new(),
            ptr,
        });
        self.c.allocated += 1;
        if kind.container() {
            self.on_alloc(id);
        }
        id
    }

    fn push_handle(&mut self, id: Id) {
        self.objs[id].temp -= 1;
        self.handles.push(id);
    }

    // ---- reference counting -----------------------------------------------------------------

    fn incref(&mut self, id: Id) {
        let o = &mut self.objs[id];
        assert!(o.alive, "model: incref of dead object {id}");
        o.count += 1;
    }

    fn decref(&mut self, id: Id) {
        let o = &mut self.objs[id];
        assert!(o.alive && o.count > 0, "model: decref of dead object {id}");
        o.count -= 1;
        if o.count == 0 {
            self.dealloc(id);
        }
    }

    fn dealloc(&mut self, id: Id) {
        if self.deallocating {
            self.pending.push(id);
            self.c.deferred += 1;
            self.c.max_pending = self.c.max_pending.max(self.pending.len() as u64);
            return;
        }
        self.deallocating = true;
        self.dealloc_one(id);
        self.drain();
        self.deallocating = false;
    }

    fn drain(&mut self) {
        while let Some(id) = self.pending.pop() {
            self.dealloc_one(id);
        }
    }

    fn dealloc_one(&mut self, id: Id) {
        if self.objs[id].finalizer().is_some() && !self.objs[id].finalized && self.run_finalizer(id)
        {
            return; // resurrected
        }
        if !self.objs[id].weakrefs.is_empty() {
            let live = self.clear_weakrefs(id);
            for wr in live.into_iter().rev() {
                self.run_weakref_callback(wr);
            }
        }
        if self.objs[id].kind.container() {
            self.counts[0] = self.counts[0].saturating_sub(1);
            self.unlink(id);
        }
        let mark = self.pending.len();
        let releases = self.objs[id].edges();
        if let Body::WeakRef {
            referent: Some(r), ..
        } = self.objs[id].body
        {
            self.objs[r].weakrefs.retain(|&w| w != id);
        }
        for x in releases {
            self.decref(x);
        }
        if self.pending.len() > mark + 1 {
            self.pending[mark..].reverse();
        }
        self.objs[id].alive = false;
        self.c.freed += 1;
    }

    /// Runs the finalizer once; true when it resurrected the object.
    fn run_finalizer(&mut self, id: Id) -> bool {
        let Some(behavior) = self.objs[id].finalizer() else {
            return false;
        };
        if self.objs[id].finalized || !self.user_code {
            return false;
        }
        self.objs[id].finalized = true;
        self.c.finalizers_run += 1;
        let before = self.objs[id].count;
        self.objs[id].count += 1;
        self.objs[id].temp += 1;
        let ptr = self.ptr(id);
        self.events.push(Event::Finalized(ptr));
        self.behave(behavior, id);
        self.objs[id].temp -= 1;
        self.objs[id].count -= 1;
        if self.objs[id].count > before {
            self.c.resurrected += 1;
            return true;
        }
        false
    }

    fn behave(&mut self, behavior: Behavior, subject: Id) {
        match behavior {
            Behavior::Log => {}
            Behavior::Keep => {
                self.incref(subject);
                self.kept.push(subject);
            }
            Behavior::Alloc => {
                let id = self.create_unpushed(MKind::List, Body::List(Vec::new()), None);
                self.objs[id].temp -= 1;
                self.decref(id);
            }
            Behavior::Collect(g) => {
                let n = self.collect_with_callback(g as usize % 3);
                self.events.push(Event::NestedCollect(n));
            }
            Behavior::Upgrade => {
                // A referent that is dying (count 0: waiting to be freed) is dead to its
                // weakrefs.
                let weakrefs: Vec<Id> = self.handles.clone();
                for wr in weakrefs {
                    if let Body::WeakRef {
                        referent: Some(r), ..
                    } = self.objs[wr].body
                    {
                        if self.objs[r].count > 0 {
                            self.incref(r);
                            self.kept.push(r);
                        }
                    }
                }
            }
            Behavior::Inspect => {} // new references, dropped at once: nothing changes
        }
    }

    /// Clears every weakref to `id`; returns the live ones, each with a new reference.
    fn clear_weakrefs(&mut self, id: Id) -> Vec<Id> {
        let list = std::mem::take(&mut self.objs[id].weakrefs);
        let mut live = Vec::new();
        for wr in list {
            let Body::WeakRef { referent, .. } = &mut self.objs[wr].body else {
                unreachable!()
            };
            *referent = None;
            if self.objs[wr].count > 0 {
                self.objs[wr].count += 1;
                self.objs[wr].temp += 1;
                live.push(wr);
            }
        }
        self.c.weakrefs_cleared += live.len() as u64;
        live
    }

    /// Runs a weakref's callback if it has one, then gives back the reference.
    fn run_weakref_callback(&mut self, wr: Id) {
        let Body::WeakRef { callback, .. } = &mut self.objs[wr].body else {
            unreachable!()
        };
        let callback = if self.user_code {
            callback.take()
        } else {
            None
        };
        if let Some(b) = callback {
            self.c.callbacks_run += 1;
            let ptr = self.ptr(wr);
            self.events.push(Event::Callback {
                weakref: ptr,
                cleared: true,
            });
            self.behave(b, wr);
        }
        self.objs[wr].temp -= 1;
        self.decref(wr);
    }

    /// Drops an object's references as its type's `clear` does.
    fn clear(&mut self, id: Id) {
        if let Body::Opaque(slots) = &self.objs[id].body {
            // Slot by slot: each old value is released while the later slots still hold theirs.
            for i in 0..slots.len() {
                let Body::Opaque(slots) = &mut self.objs[id].body else {
                    unreachable!()
                };
                if let Some(x) = slots[i].take() {
                    self.decref(x);
                }
            }
            return;
        }
        // The others take all their references out at once, then release them in order.
        let released = match &mut self.objs[id].body {
            Body::List(v) => std::mem::take(v),
            Body::Dict(e) => std::mem::take(e).into_iter().map(|(_, v)| v).collect(),
            Body::Instance { attrs, .. } => {
                std::mem::take(attrs).into_iter().map(|(_, v)| v).collect()
            }
            _ => Vec::new(),
        };
        self.release_in_order(released);
    }

    // ---- tracking ---------------------------------------------------------------------------

    fn on_alloc(&mut self, id: Id) {
        self.counts[0] += 1;
        let t = self.thresholds;
        if self.enabled && t[0] != 0 && self.counts[0] > t[0] && !self.collecting {
            self.collect_generations();
        }
        self.link(id, 0);
    }

    fn link(&mut self, id: Id, gen: usize) {
        let index = self.gens[gen].len();
        self.gens[gen].push(id);
        let o = &mut self.objs[id];
        o.gen = Gen::In(gen);
        o.index = index;
    }

    fn unlink(&mut self, id: Id) {
        let (gen, index) = (self.objs[id].gen, self.objs[id].index);
        match gen {
            Gen::Untracked => return,
            Gen::Garbage | Gen::GarbageDead => {}
            Gen::Young => self.young[index] = None,
            Gen::In(g) => {
                // The others keep their order (the real generation leaves a hole).
                self.gens[g].remove(index);
                for (i, &moved) in self.gens[g].iter().enumerate().skip(index) {
                    self.objs[moved].index = i;
                }
            }
        }
        self.objs[id].gen = Gen::Untracked;
    }

    fn merge(&mut self, from: usize, to: usize) {
        for id in std::mem::take(&mut self.gens[from]) {
            self.link(id, to);
        }
    }

    // ---- the collector ----------------------------------------------------------------------

    fn collect_generations(&mut self) {
        for g in (0..3).rev() {
            if self.counts[g] > self.thresholds[g] {
                if g == 2 && self.long_lived_pending < self.long_lived_total / 4 {
                    continue;
                }
                self.collect_with_callback(g);
                break;
            }
        }
    }

    fn collect_with_callback(&mut self, g: usize) -> u64 {
        if self.collecting {
            return 0;
        }
        self.collecting = true;
        self.events.push(Event::GcStart(g));
        let (m, n) = self.collect_main(g);
        self.events.push(Event::GcStop {
            generation: g,
            collected: m,
            uncollectable: n,
        });
        self.collecting = false;
        m + n
    }

    /// Objects of `set` referenced from outside it: by a root (handle, kept, `garbage`, a
    /// running piece of code) or by an edge of a live object not in the set.
    fn referenced_from_outside(&self, set: &HashSet<Id>) -> HashSet<Id> {
        let mut out: HashSet<Id> = HashSet::new();
        for &r in self.handles.iter().chain(&self.kept).chain(&self.garbage) {
            if set.contains(&r) {
                out.insert(r);
            }
        }
        for id in self.alive() {
            let o = &self.objs[id];
            if o.temp > 0 && set.contains(&id) {
                out.insert(id);
            }
            if set.contains(&id) {
                continue;
            }
            for x in o.edges() {
                if set.contains(&x) {
                    out.insert(x);
                }
            }
        }
        out
    }

    /// Everything of `set` reachable from `roots` through edges inside `set`.
    fn reach_within(&self, set: &HashSet<Id>, roots: HashSet<Id>) -> HashSet<Id> {
        let mut seen = roots.clone();
        let mut stack: Vec<Id> = roots.into_iter().collect();
        while let Some(id) = stack.pop() {
            for x in self.objs[id].edges() {
                if set.contains(&x) && seen.insert(x) {
                    stack.push(x);
                }
            }
        }
        seen
    }

    fn collect_main(&mut self, g: usize) -> (u64, u64) {
        // Counts: this generation and the younger ones start again; the next one counts one.
        if g < 2 {
            self.counts[g + 1] += 1;
        }
        for c in &mut self.counts[..=g] {
            *c = 0;
        }
        let old = (g + 1).min(2);

        // The young set: generations g..=0, oldest first, in tracking order; dying objects
        // (count 0) stay where they are.
        self.young.clear();
        for gen in (0..=g).rev() {
            let list = std::mem::take(&mut self.gens[gen]);
            for id in list {
                if self.objs[id].count == 0 {
                    self.link(id, gen);
                } else {
                    self.objs[id].gen = Gen::Young;
                    self.objs[id].index = self.young.len();
                    self.young.push(Some(id));
                }
            }
        }

        // The bulk path below needs every young type to promise an exact trace (the class and
        // weakref types do not): a survivor's trace that promised nothing may have reported
        // less in the collector's rescue than in its sweep.
        let exact = self
            .young
            .iter()
            .flatten()
            .all(|&id| !matches!(self.objs[id].kind, MKind::Class | MKind::WeakRef));

        // Reachability, computed on the graph.
        let young: HashSet<Id> = self.young.iter().flatten().copied().collect();
        let roots = self.referenced_from_outside(&young);
        let reachable = self.reach_within(&young, roots);
        let mut unreachable = Vec::new();
        for slot in &mut self.young {
            let Some(id) = *slot else { continue };
            if !reachable.contains(&id) {
                *slot = None;
                unreachable.push(id);
            }
        }
        // What the long-lived counts take: the reachable, not the garbage that will survive.
        let reachable = reachable.len() as u64;

        // The common case: every young type's trace is exact, no garbage object has a
        // finalizer left to run or weak references (nor is one), and nothing is saved. Every payload is dropped in order, its references
        // to other garbage having no effect, the deaths outside waiting on the pending stack;
        // then every garbage object is freed; then the pending stack drains.
        let needs_care = |o: &MObj| {
            o.legacy()
                || (o.finalizer().is_some() && !o.finalized)
                || !o.weakrefs.is_empty()
                || o.kind == MKind::WeakRef
        };
        if exact && !self.saveall && !unreachable.iter().any(|&id| needs_care(&self.objs[id])) {
            let set: HashSet<Id> = unreachable.iter().copied().collect();
            let outer = std::mem::replace(&mut self.deallocating, true);
            for &id in &unreachable {
                let mark = self.pending.len();
                for x in self.objs[id].edges() {
                    if !set.contains(&x) {
                        self.decref(x);
                    }
                }
                if self.pending.len() > mark + 1 {
                    self.pending[mark..].reverse();
                }
            }
            for &id in &unreachable {
                self.counts[0] = self.counts[0].saturating_sub(1);
                let o = &mut self.objs[id];
                o.gen = Gen::Untracked;
                o.count = 0;
                o.alive = false;
                self.c.freed += 1;
            }
            if !outer {
                self.drain();
                self.deallocating = false;
            }
            return self.finish_collection(g, old, unreachable.len() as u64, 0, reachable);
        }

        for &id in &unreachable {
            let o = &mut self.objs[id];
            o.gen = Gen::Garbage;
            o.gc_held = true;
            o.count += 1;
        }

        // Legacy finalizers, and what they reach in the garbage: uncollectable, held (with a
        // reference) until the garbage is deleted.
        let mut uncollectable = Vec::new();
        let legacy: HashSet<Id> = unreachable
            .iter()
            .copied()
            .filter(|&i| self.objs[i].legacy())
            .collect();
        if !legacy.is_empty() && self.user_code {
            let set: HashSet<Id> = unreachable.iter().copied().collect();
            let doomed = self.reach_within(&set, legacy);
            for &id in &unreachable {
                if doomed.contains(&id) {
                    self.objs[id].count += 1;
                    uncollectable.push(id);
                    self.revive(id);
                }
            }
        }

        // Weakrefs to the garbage are cleared; the callbacks of live weakrefs that are not
        // garbage themselves run, in order.
        let runs_before = self.c.finalizers_run + self.c.callbacks_run;
        let mut callbacks = Vec::new();
        for &id in &unreachable {
            if self.objs[id].gen != Gen::Garbage {
                continue;
            }
            // A weakref in the garbage is detached from its referent (bpo-38006).
            if let Body::WeakRef { referent, .. } = &mut self.objs[id].body {
                if let Some(r) = referent.take() {
                    self.objs[r].weakrefs.retain(|&w| w != id);
                }
            }
            // Newest first, as the heap (and CPython) run them.
            for wr in self.clear_weakrefs(id).into_iter().rev() {
                if self.objs[wr].gen != Gen::Garbage {
                    callbacks.push(wr);
                } else {
                    self.objs[wr].temp -= 1;
                    self.decref(wr);
                }
            }
        }
        // A weakref whose callback let go of its last other holder dies as the collector gives
        // its reference back: CPython counts it among the collected.
        let mut weakrefs_freed = 0;
        for wr in callbacks {
            let had_callback = matches!(
                &self.objs[wr].body,
                Body::WeakRef {
                    callback: Some(_),
                    ..
                }
            );
            // A weakref among the uncollectable whose callback runs leaves that list.
            if had_callback {
                if let Some(i) = uncollectable.iter().position(|&u| u == wr) {
                    uncollectable.remove(i);
                    self.decref(wr);
                }
            }
            self.run_weakref_callback(wr);
            if had_callback && self.objs[wr].count == 0 {
                weakrefs_freed += 1;
            }
        }
        // Finalizers.
        for &id in &unreachable {
            if self.objs[id].gen == Gen::Garbage {
                self.run_finalizer(id);
            }
        }
        // Resurrection: what a finalizer or callback made reachable again survives, with all
        // it reaches.
        let user_code_ran = self.c.finalizers_run + self.c.callbacks_run != runs_before;
        if user_code_ran {
            let set: HashSet<Id> = unreachable
                .iter()
                .copied()
                .filter(|&i| self.objs[i].gen == Gen::Garbage)
                .collect();
            let roots = self.referenced_from_outside(&set);
            let revived = self.reach_within(&set, roots);
            for &id in &unreachable {
                if self.objs[id].gen == Gen::Garbage && revived.contains(&id) {
                    self.revive(id);
                }
            }
        }

        // What CPython's reference counting freed while the finalizers ran (it holds no
        // reference to the garbage): referenced by nothing but the collector and such objects.
        let mut freed_by_finalizers = 0;
        let mut freed_set = HashSet::new();
        if user_code_ran {
            let garbage: Vec<Id> = unreachable
                .iter()
                .copied()
                .filter(|&i| self.objs[i].gen == Gen::Garbage)
                .collect();
            let mut refs: HashMap<Id, i64> = garbage
                .iter()
                .map(|&i| (i, i64::from(self.objs[i].count) - 1))
                .collect();
            let mut freed: Vec<Id> = garbage.iter().copied().filter(|i| refs[i] == 0).collect();
            while let Some(id) = freed.pop() {
                freed_by_finalizers += 1;
                freed_set.insert(id);
                for x in self.objs[id].edges() {
                    if let Some(r) = refs.get_mut(&x) {
                        *r -= 1;
                        if *r == 0 {
                            freed.push(x);
                        }
                    }
                }
            }
        }
        // Collected: what is still garbage (CPython's final_unreachable) but what the
        // finalizers freed, and the weakrefs that died of their callbacks.
        let m = unreachable
            .iter()
            .filter(|&&id| self.objs[id].gen == Gen::Garbage)
            .count() as u64
            - freed_by_finalizers
            + weakrefs_freed;

        // Deletion: clear the garbage, give back the collector's references; deaths wait on
        // the pending stack until the end (or until the deallocation this collection runs in
        // finishes).
        let outer = std::mem::replace(&mut self.deallocating, true);
        for &id in &unreachable {
            if self.objs[id].gen == Gen::Garbage {
                // What CPython's finalizers freed is never saved.
                if self.saveall && !freed_set.contains(&id) {
                    self.objs[id].count += 1;
                    self.garbage.push(id);
                    self.revive(id);
                } else {
                    self.objs[id].gen = Gen::GarbageDead;
                    self.clear(id);
                    if self.objs[id].count > 1 {
                        // Still referenced after its clear (the collector's reference is one):
                        // it survives into the old generation, and may die later.
                        self.revive(id);
                    }
                }
            }
            self.objs[id].gc_held = false;
            self.decref(id);
        }
        if !outer {
            self.drain();
            self.deallocating = false;
        }

        // What is left of the uncollectable goes to gc.garbage and is counted; one whose only
        // reference is the list's died with the garbage in CPython, and dies now.
        loop {
            let before = uncollectable.len();
            let mut kept = Vec::new();
            for id in uncollectable {
                if self.objs[id].count > 1 {
                    kept.push(id);
                } else {
                    self.decref(id);
                }
            }
            uncollectable = kept;
            if uncollectable.len() == before {
                break;
            }
        }
        let n = uncollectable.len() as u64;
        self.garbage.extend(uncollectable);

        self.finish_collection(g, old, m, n, reachable)
    }

    /// Survivors move to the next generation; the stats count the collection, the long-lived
    /// counts the `reachable` objects.
    fn finish_collection(
        &mut self,
        g: usize,
        old: usize,
        m: u64,
        n: u64,
        reachable: u64,
    ) -> (u64, u64) {
        let survivors: Vec<Id> = std::mem::take(&mut self.young)
            .into_iter()
            .flatten()
            .collect();
        for &id in &survivors {
            self.link(id, old);
        }
        if g == 1 {
            self.long_lived_pending += reachable;
        } else if g == 2 {
            self.long_lived_pending = 0;
            self.long_lived_total = reachable;
        }
        let s = &mut self.stats[g];
        s.0 += 1;
        s.1 += m;
        s.2 += n;
        (m, n)
    }

    fn revive(&mut self, id: Id) {
        let o = &mut self.objs[id];
        o.gen = Gen::Young;
        o.index = self.young.len();
        self.young.push(Some(id));
    }

    // ---- the model's own invariant ----------------------------------------------------------

    /// Between steps: every count is exactly the references that exist, nothing is pending or
    /// held by running code, and every tracked object is where its generation says.
    pub fn self_check(&self) -> Result<(), String> {
        let mut refs: HashMap<Id, u32> = HashMap::new();
        for &r in self.handles.iter().chain(&self.kept).chain(&self.garbage) {
            *refs.entry(r).or_default() += 1;
        }
        for id in self.alive() {
            for x in self.objs[id].edges() {
                *refs.entry(x).or_default() += 1;
            }
        }
        for id in self.alive() {
            let o = &self.objs[id];
            let expected = refs.get(&id).copied().unwrap_or(0);
            if o.count != expected || o.temp != 0 || o.gc_held {
                return Err(format!(
                    "model: object {id} ({:?}) count {} temp {} but {expected} references",
                    o.kind, o.count, o.temp
                ));
            }
            if o.count == 0 {
                return Err(format!("model: object {id} alive with count 0"));
            }
            if let Gen::In(g) = o.gen {
                if self.gens[g].get(o.index) != Some(&id) {
                    return Err(format!("model: object {id} not at its index"));
                }
            }
        }
        if !self.pending.is_empty() || self.deallocating || self.collecting {
            return Err("model: not quiescent between steps".into());
        }
        Ok(())
    }
}
