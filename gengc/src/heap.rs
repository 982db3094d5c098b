//! [`GcHeap`]: a refcounted heap with the cycle collector attached, and the `gc` module's API.

use std::cell::Cell;
use std::pin::Pin;
use std::ptr::NonNull;

use obj_alloc::ObjConfig;
use raw_alloc::OutOfMemory;
use refcount::{ContainerHook, ObjPtr, ObjRef, Object, RcHeap, Ref, Visit};

use crate::collector::{Collector, GcCallback, NUM_GENERATIONS};
use crate::stats::{GcStats, GenerationState, GenerationStats};
use crate::DebugFlags;

/// A `gc` call that cannot be served.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GcError {
    /// `collect(generation)` or `get_objects(generation)` with a generation past 2.
    #[error("invalid generation {0}: generations are 0, 1 and 2")]
    InvalidGeneration(usize),
}

thread_local! {
    /// How many `GcHeap`s live on this thread (a heap is not `Send`): while there is one, no
    /// reference can lead to another heap's object, and the collector skips asking.
    static HEAPS_ON_THIS_THREAD: Cell<usize> = const { Cell::new(0) };
}

/// Whether this thread has more than one `GcHeap`, whose objects may then reference each other.
pub(crate) fn heaps_side_by_side() -> bool {
    HEAPS_ON_THIS_THREAD.with(|n| n.get() > 1)
}

/// An id to remove a callback with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CallbackId(u64);

/// A heap of reference-counted objects whose containers are tracked by a generational cycle
/// collector: the `gc` module of one private heap.
///
/// ```
/// use gengc::GcHeap;
/// use refcount::{Object, RefVec, Trace, TypeInfo, Visit};
///
/// struct List<'h>(RefVec<'h>);
/// impl Trace for List<'_> {
///     fn trace(&self, v: &mut Visit<'_>) { self.0.trace(v) }
///     fn clear(&self) { self.0.clear() }
/// }
/// static LIST: TypeInfo = TypeInfo::new::<List<'static>>("list");
/// impl Object for List<'_> {
///     const CONTAINER: bool = true;
///     fn type_info() -> &'static TypeInfo { &LIST }
/// }
///
/// let heap = GcHeap::new(Default::default()).unwrap();
/// let l = heap.alloc(List(RefVec::new())).unwrap();
/// l.0.push(l.clone().erase()); // l.append(l)
/// drop(l);
/// assert_eq!(heap.collect(2).unwrap(), 1);
/// assert_eq!(heap.rc().stats().live, 0);
/// ```
pub struct GcHeap {
    collector: Pin<Box<Collector>>,
    rc: Pin<Box<RcHeap>>,
}

impl GcHeap {
    /// Makes an empty heap with CPython's default thresholds, collection enabled.
    pub fn new(config: ObjConfig) -> Result<GcHeap, obj_alloc::ConfigError> {
        let rc = RcHeap::new(config)?;
        let mut collector = Collector::new();
        collector.rc = &*rc;
        let collector = Box::pin(collector);
        let hook: NonNull<dyn ContainerHook> = NonNull::from(&*collector as &dyn ContainerHook);
        // SAFETY: the collector is boxed (its address is stable) and outlives the hook: Drop
        // uninstalls it before the box goes.
        unsafe { rc.set_container_hook(Some(hook)) };
        HEAPS_ON_THIS_THREAD.with(|n| n.set(n.get() + 1));
        Ok(GcHeap { collector, rc })
    }

    /// The refcount tier underneath.
    pub fn rc(&self) -> &RcHeap {
        &self.rc
    }

    /// Makes an object (see [`RcHeap::alloc`]); a container is tracked, and may trigger an
    /// automatic collection first.
    pub fn alloc<'h, T: Object + 'h>(&'h self, value: T) -> Result<Ref<'h, T>, OutOfMemory> {
        self.rc.alloc(value)
    }

    /// `gc.enable()`.
    pub fn enable(&self) {
        self.collector.enabled.set(true)
    }

    /// `gc.disable()`: no automatic collections; `collect` still works.
    pub fn disable(&self) {
        self.collector.enabled.set(false)
    }

    /// `gc.isenabled()`.
    pub fn isenabled(&self) -> bool {
        self.collector.enabled.get()
    }

    /// Whether every full collection sweeps and scans, as CPython's does. Off by default: a
    /// full collection then skips its scan when no container of the thread has lost a
    /// reference since a full collection found every object reachable (`refcount::Releases`),
    /// since it could find nothing; it only moves the young generations up, in O(1) when
    /// generation 2 is empty. Its results, stats, callbacks and events are the same, but for
    /// the span's `scanned = false` and [`GcStats::scans_skipped`](crate::GcStats). On, for
    /// timing the scan of a live heap, or for running a trace under test.
    pub fn set_always_scan(&self, on: bool) {
        self.collector.always_scan.set(on)
    }

    /// See [`GcHeap::set_always_scan`].
    pub fn always_scans(&self) -> bool {
        self.collector.always_scan.get()
    }

    /// `gc.collect(generation)`: collects `generation` and the younger ones. Returns the
    /// number of unreachable objects found (collected plus uncollectable); 0 when called while
    /// a collection runs (from a finalizer or callback). As in CPython, an object that a
    /// finalizer or callback made reachable again, or took out of the collector's hands
    /// (`untrack`), is neither.
    pub fn collect(&self, generation: usize) -> Result<u64, GcError> {
        if generation >= NUM_GENERATIONS {
            return Err(GcError::InvalidGeneration(generation));
        }
        Ok(self.collector.collect_with_callback(generation))
    }

    /// `gc.get_count()`.
    pub fn get_count(&self) -> (u32, u32, u32) {
        let c = self.collector.counts();
        (c[0], c[1], c[2])
    }

    /// `gc.get_threshold()`.
    pub fn get_threshold(&self) -> (u32, u32, u32) {
        let t = self.collector.thresholds.get();
        (t[0], t[1], t[2])
    }

    /// `gc.set_threshold(t0, t1, t2)`; a `t0` of 0 disables automatic collection.
    pub fn set_threshold(&self, t0: u32, t1: u32, t2: u32) {
        self.collector.thresholds.set([t0, t1, t2])
    }

    /// `gc.get_stats()`: one record per generation.
    pub fn get_stats(&self) -> [GenerationStats; NUM_GENERATIONS] {
        self.collector.stats.get()
    }

    /// `gc.get_objects(generation)`: the tracked objects of one generation, or of all three.
    pub fn get_objects(&self, generation: Option<usize>) -> Result<Vec<ObjRef<'_>>, GcError> {
        match generation {
            Some(g) if g >= NUM_GENERATIONS => Err(GcError::InvalidGeneration(g)),
            Some(g) => Ok(self.collector.objects_of(g)),
            None => Ok((0..NUM_GENERATIONS)
                .flat_map(|g| self.collector.objects_of(g))
                .collect()),
        }
    }

    /// `gc.get_referents(obj)`: what `obj` refers to.
    pub fn get_referents<'h>(&'h self, obj: &ObjRef<'h>) -> Vec<ObjRef<'h>> {
        let mut out = Vec::new();
        // SAFETY: visited pointers are live objects of this heap; the visitor only collects
        // new references (an incref runs no user code).
        let mut visit = |p: ObjPtr| out.push(unsafe { p.to_ref() });
        // SAFETY: the handle keeps obj alive.
        unsafe { refcount::trace(obj.as_ptr(), &mut Visit::new(&mut visit)) };
        out
    }

    /// `gc.get_referrers(obj)`: the tracked objects (all generations, frozen ones included)
    /// that refer to `obj`.
    pub fn get_referrers<'h>(&'h self, obj: &ObjRef<'h>) -> Vec<ObjRef<'h>> {
        let target = obj.as_ptr();
        let mut out = Vec::new();
        for g in 0..=NUM_GENERATIONS {
            for candidate in self.collector.objects_of(g) {
                let mut hit = false;
                let mut visit = |p: ObjPtr| hit |= p == target;
                // SAFETY: the handle keeps candidate alive; the visitor only compares.
                unsafe { refcount::trace(candidate.as_ptr(), &mut Visit::new(&mut visit)) };
                if hit {
                    out.push(candidate);
                }
            }
        }
        out
    }

    /// `gc.is_tracked(obj)`: whether this heap's collector tracks it (never an object of
    /// another heap).
    pub fn is_tracked(&self, obj: &ObjRef<'_>) -> bool {
        self.generation_of(obj).is_some()
    }

    /// Whether `obj` is a container of this heap (the collector's methods leave other heaps'
    /// objects alone: their tracking state is their own collector's).
    fn holds(&self, obj: &ObjRef<'_>) -> bool {
        // SAFETY: the handle keeps obj alive.
        obj.type_info().container && unsafe { self.collector.owns(obj.as_ptr()) }
    }

    /// The generation a tracked object is in (0..=2; 3 when frozen; 4 while a running collection
    /// examines it), or None if untracked.
    pub fn generation_of(&self, obj: &ObjRef<'_>) -> Option<usize> {
        if !self.holds(obj) {
            return None;
        }
        // SAFETY: the handle keeps the container alive.
        unsafe { self.collector.generation_of(obj.as_ptr()) }
    }

    /// Stops tracking a container (CPython untracks tuples and dicts that hold only atoms).
    ///
    /// During a collection (from a trace, a finalizer, a callback...), an object the
    /// collection holds is untracked when it ends: until then it is still tracked.
    pub fn untrack(&self, obj: &ObjRef<'_>) {
        if self.holds(obj) {
            // SAFETY: the handle keeps the container alive.
            unsafe { self.collector.untrack(obj.as_ptr()) }
        }
    }

    /// Tracks a container again (into generation 0), if it is not tracked.
    pub fn track(&self, obj: &ObjRef<'_>) {
        if self.holds(obj) {
            // SAFETY: the handle keeps the container alive; a handle of this heap's.
            unsafe { self.collector.track(obj.as_ptr()) }
        }
    }

    /// `gc.is_finalized(obj)`.
    pub fn is_finalized(&self, obj: &ObjRef<'_>) -> bool {
        obj.header().is_finalized()
    }

    /// `gc.freeze()`: moves every tracked object to the permanent generation, which
    /// collections ignore.
    pub fn freeze(&self) {
        self.collector.freeze()
    }

    /// `gc.unfreeze()`: the permanent generation goes back to the oldest.
    pub fn unfreeze(&self) {
        self.collector.unfreeze()
    }

    /// `gc.get_freeze_count()`.
    pub fn get_freeze_count(&self) -> usize {
        self.collector.generation_len(3)
    }

    /// `gc.garbage`: uncollectable objects (and, with DEBUG_SAVEALL, every unreachable one).
    pub fn garbage(&self) -> Vec<ObjRef<'_>> {
        self.collector
            .garbage
            .borrow()
            .iter()
            // SAFETY: garbage entries own a reference each, so they are live.
            .map(|p| unsafe { p.to_ref() })
            .collect()
    }

    /// `del gc.garbage[:]`: drops the list's references.
    pub fn clear_garbage(&self) {
        let list = std::mem::take(&mut *self.collector.garbage.borrow_mut());
        for p in list {
            // SAFETY: each entry owned one reference.
            unsafe { p.decref() };
        }
    }

    /// `gc.callbacks.append(cb)`: `cb` hears the start and stop of every collection.
    pub fn add_callback(&self, cb: GcCallback) -> CallbackId {
        let id = self.collector.next_callback_id.get();
        self.collector.next_callback_id.set(id + 1);
        self.collector
            .callbacks
            .borrow_mut()
            .push((id, std::rc::Rc::new(std::cell::RefCell::new(cb))));
        CallbackId(id)
    }

    /// `gc.callbacks.remove(cb)`. Returns whether it was there.
    pub fn remove_callback(&self, id: CallbackId) -> bool {
        let mut list = self.collector.callbacks.borrow_mut();
        let removed = list
            .iter()
            .position(|(i, _)| *i == id.0)
            .map(|at| list.remove(at));
        drop(list);
        // Dropped after the borrow: a callback's captured state runs user code when dropped
        // (which may add or remove callbacks).
        removed.is_some()
    }

    /// `gc.set_debug(flags)`.
    pub fn set_debug(&self, flags: DebugFlags) {
        self.collector.debug.set(flags)
    }

    /// `gc.get_debug()`.
    pub fn get_debug(&self) -> DebugFlags {
        self.collector.debug.get()
    }

    /// Whether a collection is running now.
    pub fn is_collecting(&self) -> bool {
        self.collector.is_collecting()
    }

    /// A snapshot of the collector's state.
    pub fn stats(&self) -> GcStats {
        let c = &self.collector;
        let counts = c.counts();
        let thresholds = c.thresholds.get();
        let stats = c.stats.get();
        GcStats {
            enabled: c.enabled.get(),
            generations: [0, 1, 2].map(|g| GenerationState {
                objects: c.generation_len(g) as u64,
                count: counts[g],
                threshold: thresholds[g],
                stats: stats[g],
            }),
            frozen: c.generation_len(3) as u64,
            garbage: c.garbage.borrow().len() as u64,
            long_lived_total: c.long_lived_total.get(),
            long_lived_pending: c.long_lived_pending.get(),
            scans_skipped: c.scans_skipped.get(),
            last_pause_ns: c.last_pause_ns.get(),
        }
    }
}

impl Drop for GcHeap {
    /// Frees what can be freed before the memory goes: `garbage` is emptied, frozen objects
    /// thawed, and one full collection runs with finalizers and callbacks off (no user code
    /// runs against a heap that is going away; CPython makes no promise at exit either).
    /// Objects that survive even that are released with the arenas.
    fn drop(&mut self) {
        self.rc.set_user_code_enabled(false);
        self.rc.set_context(std::ptr::null());
        self.clear_garbage();
        self.unfreeze();
        self.set_debug(DebugFlags::empty());
        // Dropped after the borrow: a callback's captured state runs user code when dropped.
        let callbacks = std::mem::take(&mut *self.collector.callbacks.borrow_mut());
        drop(callbacks);
        self.collector.collect_with_callback(NUM_GENERATIONS - 1);
        self.clear_garbage();
        // SAFETY: uninstalling; the collector box dies after this.
        unsafe { self.rc.set_container_hook(None) };
        // Nothing tracks the survivors any more: their headers must not point into the
        // collector's arrays.
        for g in 0..=NUM_GENERATIONS {
            for obj in self.collector.objects_of(g) {
                // The handle keeps the container alive.
                crate::header::set_state(obj.header(), crate::header::UNTRACKED);
                std::mem::forget(obj); // objects_of added a reference; keep them alive
            }
        }
        // Only now: the final collection above still had to check other heaps' objects.
        HEAPS_ON_THIS_THREAD.with(|n| n.set(n.get() - 1));
    }
}
