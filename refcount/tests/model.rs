//! refcount against a model built from `std::rc::Rc`: random programs run on both, compared
//! after every step.
//!
//! A program allocates list objects, clones and drops handles, links (pushes one object into
//! another's list) and unlinks (pops), makes weakrefs whose callback logs the object's id,
//! upgrades and drops them. The model is `Rc<Node>` with `RefCell<Vec<Rc<Node>>>` children and
//! `rc::Weak`; its weakref callbacks are played by `Node`'s `Drop`, which logs a callback for
//! each weakref that is itself still alive, newest first, then the death: refcount's order
//! (referent cleared, callbacks of live weakrefs, then the payload).
//!
//! After every step: the events of the step (deaths and callbacks), the live objects, the
//! upgrade result, each handle's count against `Rc::strong_count` and `stats().live`.
//!
//! - On forests (every object in at most one list), refcount frees in exactly the order of a
//!   recursive `Rc` drop, so the event log matches event for event.
//! - On any graph (shared children, cycles) the same objects die at the same step with the same
//!   callbacks, and each object's own events (callbacks newest first, then death) come in the
//!   same order; the order *between* objects may differ, because a dying object releases all its
//!   children before any of them is freed (see the last test). Cycles leak in both, alike.

#![cfg(not(miri))]

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::pin::Pin;
use std::rc::{Rc, Weak as RcWeak};

use obj_alloc::ObjConfig;
use proptest::prelude::*;
use proptest::sample::Index;
use refcount::{ObjPtr, ObjRef, Object, RcHeap, Ref, RefVec, Trace, TypeInfo, Visit, WeakRefObj};

/// What both sides log, in the order it happens.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    /// The callback of weakref `weakref`, whose referent `object` died.
    Callback { weakref: u32, object: u32 },
    /// Object `0` was freed (its payload dropped).
    Died(u32),
}

type Events = Rc<RefCell<Vec<Event>>>;

// ---- pyheap's side -------------------------------------------------------------------------

/// A list object that logs its death.
struct Obj<'h> {
    id: u32,
    events: Events,
    children: RefVec<'h>,
}

impl Drop for Obj<'_> {
    fn drop(&mut self) {
        // Runs before the fields drop: the death is logged before the children are released,
        // as `Node`'s is.
        self.events.borrow_mut().push(Event::Died(self.id));
    }
}

impl Trace for Obj<'_> {
    fn trace(&self, v: &mut Visit<'_>) {
        self.children.trace(v)
    }
    fn clear(&self) {
        self.children.clear()
    }
}

static OBJ: TypeInfo = TypeInfo::new::<Obj<'static>>("obj");

impl Object for Obj<'_> {
    const CONTAINER: bool = true;
    fn type_info() -> &'static TypeInfo {
        &OBJ
    }
}

fn id_of(r: &ObjRef<'_>) -> u32 {
    r.downcast_ref::<Obj<'_>>()
        .expect("only objs are upgraded")
        .id
}

// ---- the model -----------------------------------------------------------------------------

struct Node {
    id: u32,
    events: Events,
    children: RefCell<Vec<Rc<Node>>>,
    /// The weakrefs made to this node, oldest first; dead ones fail to upgrade.
    weakrefs: RefCell<Vec<RcWeak<ModelWeakRef>>>,
}

impl Drop for Node {
    fn drop(&mut self) {
        // The strong count is zero here, so every `rc::Weak` to this node already fails to
        // upgrade: cleared before any callback, as in refcount.
        let mut events = self.events.borrow_mut();
        for wr in self.weakrefs.get_mut().iter().rev() {
            if let Some(wr) = wr.upgrade() {
                events.push(Event::Callback {
                    weakref: wr.id,
                    object: self.id,
                });
            }
        }
        events.push(Event::Died(self.id));
    }
}

struct ModelWeakRef {
    id: u32,
    target: RcWeak<Node>,
}

// ---- programs ------------------------------------------------------------------------------

#[derive(Clone, Debug)]
enum Op {
    Alloc,
    Clone(Index),
    Drop(Index),
    /// Pushes the object of handle `.1` into the list of handle `.0`.
    Link(Index, Index),
    /// Pops the last item of the list of handle `.0`.
    Unlink(Index),
    Weakref(Index),
    /// Upgrades a weakref; `true` keeps the strong handle.
    Upgrade(Index, bool),
    DropWeakref(Index),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::Alloc),
        2 => any::<Index>().prop_map(Op::Clone),
        3 => any::<Index>().prop_map(Op::Drop),
        4 => (any::<Index>(), any::<Index>()).prop_map(|(i, j)| Op::Link(i, j)),
        2 => any::<Index>().prop_map(Op::Unlink),
        2 => any::<Index>().prop_map(Op::Weakref),
        2 => (any::<Index>(), any::<bool>()).prop_map(|(i, k)| Op::Upgrade(i, k)),
        1 => any::<Index>().prop_map(Op::DropWeakref),
    ]
}

fn program() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(op(), 1..200)
}

/// Whether links may make shared children and cycles, or only forests.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    Forest,
    AnyGraph,
}

/// Both sides of one program.
struct Run<'h> {
    heap: &'h RcHeap,
    shape: Shape,
    next_id: u32,
    py_events: Events,
    /// Every object pyheap made, uncounted; alive exactly while its death is not logged.
    py_objects: BTreeMap<u32, ObjPtr>,
    py_live: BTreeSet<u32>,
    py_handles: Vec<Ref<'h, Obj<'h>>>,
    py_weakrefs: Vec<Ref<'h, WeakRefObj<'h>>>,
    model_events: Events,
    /// Every node the model made; alive exactly while it upgrades.
    model_nodes: Vec<RcWeak<Node>>,
    model_handles: Vec<Rc<Node>>,
    model_weakrefs: Vec<Rc<ModelWeakRef>>,
}

impl<'h> Run<'h> {
    fn new(heap: &'h RcHeap, shape: Shape) -> Self {
        Run {
            heap,
            shape,
            next_id: 0,
            py_events: Events::default(),
            py_objects: BTreeMap::new(),
            py_live: BTreeSet::new(),
            py_handles: Vec::new(),
            py_weakrefs: Vec::new(),
            model_events: Events::default(),
            model_nodes: Vec::new(),
            model_handles: Vec::new(),
            model_weakrefs: Vec::new(),
        }
    }

    fn fresh_id(&mut self) -> u32 {
        self.next_id += 1;
        self.next_id
    }

    /// The model's node that holds `id` in its list, if any (a forest has at most one).
    fn parent_of(&self, id: u32) -> Option<u32> {
        self.model_nodes
            .iter()
            .filter_map(RcWeak::upgrade)
            .find(|n| n.children.borrow().iter().any(|c| c.id == id))
            .map(|n| n.id)
    }

    /// Whether linking `child` into `parent` keeps the graph a forest.
    fn keeps_a_forest(&self, parent: u32, child: u32) -> bool {
        if self.parent_of(child).is_some() {
            return false;
        }
        let mut up = Some(parent);
        while let Some(p) = up {
            if p == child {
                return false;
            }
            up = self.parent_of(p);
        }
        true
    }

    /// Runs one operation on both sides; the upgrade result, for `Upgrade`.
    fn step(&mut self, op: &Op) -> Option<(Option<u32>, Option<u32>)> {
        let handles = self.model_handles.len();
        let weakrefs = self.model_weakrefs.len();
        match op {
            Op::Alloc => {
                let id = self.fresh_id();
                let obj = self
                    .heap
                    .alloc(Obj {
                        id,
                        events: self.py_events.clone(),
                        children: RefVec::new(),
                    })
                    .expect("no heap limit");
                self.py_objects.insert(id, obj.as_ptr());
                self.py_live.insert(id);
                self.py_handles.push(obj);
                let node = Rc::new(Node {
                    id,
                    events: self.model_events.clone(),
                    children: RefCell::default(),
                    weakrefs: RefCell::default(),
                });
                self.model_nodes.push(Rc::downgrade(&node));
                self.model_handles.push(node);
            }
            Op::Clone(i) if handles > 0 => {
                let i = i.index(handles);
                self.py_handles.push(self.py_handles[i].clone());
                self.model_handles.push(self.model_handles[i].clone());
            }
            Op::Drop(i) if handles > 0 => {
                let i = i.index(handles);
                drop(self.py_handles.remove(i));
                drop(self.model_handles.remove(i));
            }
            Op::Link(i, j) if handles > 0 => {
                let (i, j) = (i.index(handles), j.index(handles));
                let (parent, child) = (&self.model_handles[i], &self.model_handles[j]);
                if self.shape == Shape::AnyGraph || self.keeps_a_forest(parent.id, child.id) {
                    parent.children.borrow_mut().push(child.clone());
                    let child = self.py_handles[j].clone().erase();
                    self.py_handles[i].children.push(child);
                }
            }
            Op::Unlink(i) if handles > 0 => {
                let i = i.index(handles);
                drop(self.py_handles[i].children.pop());
                // Take the item out first: its drop may reach this list again.
                let popped = self.model_handles[i].children.borrow_mut().pop();
                drop(popped);
            }
            Op::Weakref(i) if handles > 0 => {
                let i = i.index(handles);
                let weakref = self.fresh_id();
                let object = self.model_handles[i].id;
                let events = self.py_events.clone();
                let wr = self
                    .heap
                    .weakref(
                        self.py_handles[i].as_obj(),
                        Some(Box::new(move |_wr| {
                            events
                                .borrow_mut()
                                .push(Event::Callback { weakref, object })
                        })),
                    )
                    .expect("no heap limit");
                self.py_weakrefs.push(wr);
                let node = &self.model_handles[i];
                let wr = Rc::new(ModelWeakRef {
                    id: weakref,
                    target: Rc::downgrade(node),
                });
                node.weakrefs.borrow_mut().push(Rc::downgrade(&wr));
                self.model_weakrefs.push(wr);
            }
            Op::Upgrade(k, keep) if weakrefs > 0 => {
                let k = k.index(weakrefs);
                let py = self.py_weakrefs[k].upgrade();
                let model = self.model_weakrefs[k].target.upgrade();
                let ids = (py.as_ref().map(id_of), model.as_ref().map(|n| n.id));
                if let (true, Some(py), Some(model)) = (keep, py, model) {
                    let py = py.downcast::<Obj<'_>>().expect("an obj");
                    self.py_handles.push(py);
                    self.model_handles.push(model);
                }
                return Some(ids);
            }
            Op::DropWeakref(k) if weakrefs > 0 => {
                let k = k.index(weakrefs);
                drop(self.py_weakrefs.remove(k));
                drop(self.model_weakrefs.remove(k));
            }
            _ => {} // nothing to act on yet
        }
        None
    }

    /// The events since the last call: pyheap's and the model's.
    fn take_events(&mut self) -> (Vec<Event>, Vec<Event>) {
        let py = std::mem::take(&mut *self.py_events.borrow_mut());
        let model = std::mem::take(&mut *self.model_events.borrow_mut());
        for e in &py {
            if let Event::Died(id) = e {
                assert!(self.py_live.remove(id), "object {id} died twice");
            }
        }
        (py, model)
    }

    fn model_live(&self) -> BTreeSet<u32> {
        self.model_nodes
            .iter()
            .filter_map(RcWeak::upgrade)
            .map(|n| n.id)
            .collect()
    }

    /// Compares the events of a step (exactly for forests, per object for any graph), the live
    /// objects, the counts of every handle and the heap's live count.
    fn check(&mut self, what: &str) -> Result<(), TestCaseError> {
        let (py, model) = self.take_events();
        match self.shape {
            Shape::Forest => prop_assert_eq!(&py, &model, "events of {}", what),
            Shape::AnyGraph => {
                let (mut py_sorted, mut model_sorted) = (py.clone(), model.clone());
                py_sorted.sort_unstable();
                model_sorted.sort_unstable();
                prop_assert_eq!(py_sorted, model_sorted, "events of {}", what);
                prop_assert_eq!(per_object(&py), per_object(&model), "order of {}", what);
            }
        }
        prop_assert_eq!(&self.py_live, &self.model_live(), "live after {}", what);
        for (py, model) in self.py_handles.iter().zip(&self.model_handles) {
            prop_assert_eq!(py.id, model.id);
            prop_assert_eq!(py.refcnt() as usize, Rc::strong_count(model), "{}", what);
            prop_assert_eq!(py.children.len(), model.children.borrow().len());
        }
        let live = self.py_live.len() + self.py_weakrefs.len();
        prop_assert_eq!(self.heap.stats().live, live as u64, "stats after {}", what);
        Ok(())
    }

    /// Drops every handle (objects first, then weakrefs) and compares what survives: the
    /// objects in cycles. Then breaks those cycles on both sides and checks that nothing is left.
    fn finish(mut self) -> Result<(), TestCaseError> {
        drop(std::mem::take(&mut self.py_handles));
        drop(std::mem::take(&mut self.model_handles));
        self.check("dropping every handle")?;
        drop(std::mem::take(&mut self.py_weakrefs));
        drop(std::mem::take(&mut self.model_weakrefs));
        self.check("dropping every weakref")?;

        let leaked = self.py_live.clone();
        if self.shape == Shape::Forest {
            prop_assert!(leaked.is_empty(), "a forest leaked {:?}", leaked);
        }
        prop_assert_eq!(self.heap.stats().live, leaked.len() as u64);

        // Break the cycles: clear every survivor's list, then let go of them.
        let py_survivors: Vec<ObjRef<'h>> = leaked
            .iter()
            .map(|id| {
                // SAFETY: the object of `id` has not logged its death, and `Obj` logs it before
                // its block is freed, so it is live; it belongs to `self.heap`, which lives
                // for 'h.
                unsafe { self.py_objects[id].to_ref() }
            })
            .collect();
        let model_survivors: Vec<Rc<Node>> = self
            .model_nodes
            .iter()
            .filter_map(RcWeak::upgrade)
            .collect();
        for o in &py_survivors {
            self.heap.clear_refs(o);
        }
        for n in &model_survivors {
            let children = std::mem::take(&mut *n.children.borrow_mut());
            drop(children);
        }
        drop(py_survivors);
        drop(model_survivors);
        let (mut py, mut model) = self.take_events();
        py.sort_unstable();
        model.sort_unstable();
        prop_assert_eq!(py, model, "deaths of the cycles");
        prop_assert!(self.py_live.is_empty() && self.model_live().is_empty());
        prop_assert_eq!(self.heap.stats().live, 0, "no leak");
        Ok(())
    }
}

/// Each object's events in the order they came.
fn per_object(events: &[Event]) -> BTreeMap<u32, Vec<Event>> {
    let mut map: BTreeMap<u32, Vec<Event>> = BTreeMap::new();
    for e in events {
        let (Event::Died(id) | Event::Callback { object: id, .. }) = *e;
        map.entry(id).or_default().push(*e);
    }
    map
}

fn heap() -> Pin<Box<RcHeap>> {
    RcHeap::new(ObjConfig::default()).expect("default config")
}

fn run(program: &[Op], shape: Shape) -> Result<(), TestCaseError> {
    let heap = heap();
    let mut run = Run::new(&heap, shape);
    for (n, op) in program.iter().enumerate() {
        let upgraded = run.step(op);
        if let Some((py, model)) = upgraded {
            prop_assert_eq!(py, model, "upgrade at step {}: {:?}", n, op);
        }
        run.check(&format!("step {n}: {op:?}"))?;
    }
    run.finish()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn on_forests_deaths_and_callbacks_come_in_rc_drop_order(program in program()) {
        run(&program, Shape::Forest)?;
    }

    #[test]
    fn on_any_graph_the_same_objects_die_with_the_same_callbacks_as_with_rc(
        program in program()
    ) {
        run(&program, Shape::AnyGraph)?;
    }
}

/// Where the orders part: `a` holds `[b, c, x]` and `b` holds `[x]`. A recursive `Rc` drop
/// releases `a`'s items one by one, each subtree before the next item: `b` takes `x` from two
/// references to one, then `c` dies, then `a`'s release of `x` frees it. refcount's payload drop
/// releases all of `a`'s items before any of them is freed (`x` falls to one at once), so `b`'s
/// release of `x` is the last one and `x` dies before `c`.
#[test]
fn a_shared_child_dies_at_its_last_release_which_can_come_before_rc_frees_it() {
    let h = heap();
    let mut run = Run::new(&h, Shape::AnyGraph);
    for _ in ["a", "b", "c", "x"] {
        run.step(&Op::Alloc);
    }
    let link = |run: &mut Run<'_>, i: usize, j: usize| {
        let child = run.py_handles[j].clone().erase();
        run.py_handles[i].children.push(child);
        let child = run.model_handles[j].clone();
        run.model_handles[i].children.borrow_mut().push(child);
    };
    let (a, b, c, x) = (0, 1, 2, 3);
    link(&mut run, a, b);
    link(&mut run, a, c);
    link(&mut run, a, x);
    link(&mut run, b, x);
    // Keep only the handle to `a`.
    for _ in 0..3 {
        drop(run.py_handles.pop());
        drop(run.model_handles.pop());
    }
    run.take_events();
    drop(run.py_handles.pop());
    drop(run.model_handles.pop());
    let (py, model) = run.take_events();
    let deaths = |order: [u32; 4]| order.map(Event::Died).to_vec();
    assert_eq!(model, deaths([1, 2, 3, 4]), "Rc: a, b, c, x");
    assert_eq!(py, deaths([1, 2, 4, 3]), "refcount: a, b, x, c");
    assert_eq!(h.stats().live, 0);
}

/// A weakref made by one heap to an object of another must be cleared when the object dies,
/// like any other (references across heaps are counted and freed correctly).
#[test]
fn a_weakref_from_another_heap_is_cleared_when_its_referent_dies() {
    let (h1, h2) = (heap(), heap());
    let events = Events::default();
    let target = h2
        .alloc(Obj {
            id: 1,
            events: events.clone(),
            children: RefVec::new(),
        })
        .unwrap();
    let wr = h1.weakref(target.as_obj(), None).unwrap();
    drop(target);
    assert_eq!(*events.borrow(), [Event::Died(1)]);
    let cleared = wr.is_dead();
    if !cleared {
        // The weakref still names the freed object: dropping it would read the dead object's
        // header (to find its heap). Leak it instead, so that the test fails cleanly.
        std::mem::forget(wr);
    }
    assert!(cleared, "the weakref still points to a freed object");
}
