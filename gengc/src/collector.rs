//! The collector: generations, counts and thresholds, and the collection itself.
//!
//! [`Collector::collect_main`] reads as CPython 3.11's `gc_collect_main`: each phase is a
//! function named after what it does, and the comment above it says what holds when it returns.

use std::cell::{Cell, RefCell};
use std::marker::PhantomPinned;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::time::Instant;

use bumpalo::collections::Vec as BumpVec;
use bumpalo::Bump;
use obj_alloc::prefetch;
use refcount::{
    ContainerHook, FirstPanic, ObjHeader, ObjPtr, ObjRef, Object, RcHeap, Releases, Visit,
    WeakRefObj, IMMORTAL,
};

use crate::generation::Generation;
use crate::header::{
    gc_header, is_new, set_state, state, GcHeader, Tags, GARBAGE, GARBAGE_DEAD, NEW_BASE,
    UNREACHABLE, UNTRACKED, YOUNG,
};
use crate::slots::SlotSet;
use crate::stats::{CallbackInfo, GenerationStats, Phase};
use crate::DebugFlags;

/// The `gc_refs` mark of a garbage object that CPython's finalizers would have freed (it holds
/// no reference to the garbage while they run), from `freed_by_finalizers` to
/// `delete_garbage`: never saved by DEBUG_SAVEALL.
const FREED_BY_FINALIZERS: i64 = -1;

/// The number of generations.
pub const NUM_GENERATIONS: usize = 3;
/// CPython's default thresholds.
pub const DEFAULT_THRESHOLDS: [u32; NUM_GENERATIONS] = [700, 10, 10];

/// A `gc.callbacks` function.
pub type GcCallback = Box<dyn FnMut(Phase, &CallbackInfo)>;

/// A registered callback, shared with the invocation that runs it.
pub(crate) type SharedCallback = Rc<RefCell<GcCallback>>;

/// Marks a collection as running while it lives: its drop, on the way out or by an unwind,
/// lets the next collection run (`Collector::collect_with_callback`).
struct Collecting<'a>(&'a Collector);

impl Drop for Collecting<'_> {
    fn drop(&mut self) {
        self.0.collecting_gen.set(None);
        self.0.collecting.set(false);
    }
}

/// The collector's state. Lives in a `Box` whose address the refcount tier keeps as its
/// container hook.
pub(crate) struct Collector {
    pub(crate) rc: *const RcHeap,
    /// Generations 0, 1, 2 and the permanent one: a tracked object knows its slot, so
    /// untracking empties it (see `generation`).
    gens: [RefCell<Generation>; 4],
    /// Which state each generation's objects carry (see [`Tags`]).
    tags: Cell<Tags>,
    /// The release epoch (`refcount::Releases`) at which the last full collection found every
    /// object of generations 0..=2 reachable, or at which the heap was made (no object yet):
    /// while the thread's epoch still reads the same, a full collection has nothing to find
    /// and skips its scan ([`Collector::collect_main`]). `None` after a full collection that
    /// found garbage or gave up, or an `unfreeze` that brought unscanned objects in.
    all_reachable_at: Cell<Option<Releases>>,
    /// `unfreeze`s that thawed objects, and `track`s by user code of untracked objects: a
    /// full collection during which one ran proves nothing about the objects brought in (an
    /// untracked object's references count as from outside, so tracking it can turn objects
    /// that scan found reachable into garbage without any release).
    unscanned_joins: Cell<u64>,
    /// Full collections that skipped their scan.
    pub(crate) scans_skipped: Cell<u64>,
    /// Whether a full collection scans even with nothing to find (`GcHeap::set_always_scan`).
    pub(crate) always_scan: Cell<bool>,
    /// The objects of a running collection (`None`: a hole of a generation it took, not yet
    /// swept; or an object that died during it, or was left as garbage).
    young: RefCell<Vec<Option<ObjPtr>>>,
    /// The slots of the young array whose objects the scan found unreachable.
    unreachable: RefCell<SlotSet>,
    /// Two buffers of visited references for `update_and_subtract_refs` (kept for capacity).
    edges: Cell<[EdgeBatch; 2]>,
    /// Whether, in the running collection, more than a quarter of the references lead further
    /// than [`NEAR`] from their referrer (then prefetching the children pays).
    scattered: Cell<bool>,
    /// Whether the running collection's sweep pinned the young counts: only when every young
    /// type promised an exact trace (whose traces make no reference), since a trace runs while
    /// counts are pinned and a reference it made would not be counted.
    pinned: Cell<bool>,
    counts: Cell<[u32; NUM_GENERATIONS]>,
    pub(crate) thresholds: Cell<[u32; NUM_GENERATIONS]>,
    pub(crate) enabled: Cell<bool>,
    collecting: Cell<bool>,
    /// The generation the running collection collects, from its sweep's start to its end
    /// (callbacks excluded): `untrack` then defers objects it holds (see [`Collector::untrack`]).
    collecting_gen: Cell<Option<usize>>,
    /// Whether an `untrack` was deferred during the running collection.
    untracks_deferred: Cell<bool>,
    /// Whether the running collection's young array holds the collected generations' slots
    /// (from the sweep's start to the collection's end): a container that joins one of them
    /// then is `NEW_BASE + g` ([`Collector::joining_state`]).
    lent: Cell<bool>,
    /// The collected generations a container joined during the running collection (a bit
    /// each): only those are walked at its end.
    joined: Cell<u8>,
    /// Whether other heaps live on this thread during the running collection: then a visited
    /// object's tracking state is only read as this collection's after checking its heap.
    mixed: Cell<bool>,
    /// The first panic of user code (a trace, a clear, a payload's drop) that the running
    /// collection caught: it finishes consistently (see [`Collector::catching`]), then
    /// `collect` resumes it.
    panic: FirstPanic,
    pub(crate) debug: Cell<DebugFlags>,
    pub(crate) stats: Cell<[GenerationStats; NUM_GENERATIONS]>,
    pub(crate) long_lived_total: Cell<u64>,
    pub(crate) long_lived_pending: Cell<u64>,
    pub(crate) last_pause_ns: Cell<u64>,
    /// `gc.garbage`: each entry owns a reference.
    pub(crate) garbage: RefCell<Vec<ObjPtr>>,
    /// `gc.callbacks`, in the order they were added (so by id); shared with a running
    /// invocation, so that a callback may add or remove callbacks, itself included.
    pub(crate) callbacks: RefCell<Vec<(u64, SharedCallback)>>,
    pub(crate) next_callback_id: Cell<u64>,
    /// Scratch memory of a collection, reset after each.
    scratch: Cell<Option<Bump>>,
    /// The refcount tier holds the collector's address (its container hook): it must not move.
    _pinned: PhantomPinned,
}

impl Collector {
    pub(crate) fn new() -> Self {
        Collector {
            rc: std::ptr::null(),
            gens: Default::default(),
            tags: Cell::new(Tags::IDENTITY),
            all_reachable_at: Cell::new(Some(Releases::now())),
            unscanned_joins: Cell::new(0),
            scans_skipped: Cell::new(0),
            always_scan: Cell::new(false),
            young: RefCell::new(Vec::new()),
            unreachable: RefCell::new(SlotSet::default()),
            edges: Cell::default(),
            scattered: Cell::new(false),
            pinned: Cell::new(false),
            counts: Cell::new([0; NUM_GENERATIONS]),
            thresholds: Cell::new(DEFAULT_THRESHOLDS),
            enabled: Cell::new(true),
            collecting: Cell::new(false),
            collecting_gen: Cell::new(None),
            untracks_deferred: Cell::new(false),
            lent: Cell::new(false),
            joined: Cell::new(0),
            mixed: Cell::new(false),
            panic: FirstPanic::new(),
            debug: Cell::new(DebugFlags::empty()),
            stats: Cell::new([GenerationStats::default(); NUM_GENERATIONS]),
            long_lived_total: Cell::new(0),
            long_lived_pending: Cell::new(0),
            last_pause_ns: Cell::new(0),
            garbage: RefCell::new(Vec::new()),
            callbacks: RefCell::new(Vec::new()),
            next_callback_id: Cell::new(1),
            scratch: Cell::new(Some(Bump::new())),
            _pinned: PhantomPinned,
        }
    }

    fn rc(&self) -> &RcHeap {
        // SAFETY: set right after the RcHeap was pinned, which outlives the collector's use
        // (the GcHeap uninstalls the hook before dropping either).
        unsafe { &*self.rc }
    }

    pub(crate) fn counts(&self) -> [u32; NUM_GENERATIONS] {
        self.counts.get()
    }

    pub(crate) fn is_collecting(&self) -> bool {
        self.collecting.get()
    }

    pub(crate) fn generation_len(&self, gen: usize) -> usize {
        self.gens[gen].borrow().len()
    }

    /// New references to the objects of a generation (0..=2, or 3 for the permanent one),
    /// leaving out dying ones (count 0: see
    /// [`update_and_subtract_refs`](Self::update_and_subtract_refs)): a new reference would
    /// resurrect an object whose deallocation is under way.
    pub(crate) fn objects_of<'h>(&self, gen: usize) -> Vec<ObjRef<'h>> {
        self.gens[gen]
            .borrow()
            .iter()
            // SAFETY: tracked objects are live (they untrack when they are freed).
            .filter(|p| unsafe { p.header() }.refcnt() > 0)
            // SAFETY: a live object with a count above 0: a new reference is an ordinary one.
            .map(|p| unsafe { p.to_ref() })
            .collect()
    }

    // ---- tracking ----------------------------------------------------------------------

    /// Puts a container into generation `gen` (0..=3).
    ///
    /// # Safety
    /// `obj` must be a live, untracked container of this heap.
    pub(crate) unsafe fn link(&self, obj: ObjPtr, gen: usize) {
        // SAFETY: contract.
        let (h, header) = unsafe { (gc_header(obj), obj.header()) };
        set_state(header, self.joining_state(gen));
        h.gc_refs.set(0);
        h.untrack_later.set(false);
        // SAFETY: a live container, untracked until now (contract).
        unsafe { self.gens[gen].borrow_mut().push(obj) };
    }

    /// `gc.untrack`-style untracking, asked for by user code: at once, unless a collection is
    /// running and holds `obj` (in its young array or its unreachable set, or in a generation
    /// it collects, whose slots its young array took). Then the object stays where it is,
    /// marked, and is untracked when the collection ends (`move_survivors`, or
    /// [`Collector::end_tracking_changes`] for one outside the young array): the sweep
    /// and the rescue must see the young set they started with, or a reference they subtracted
    /// from an object's count would never be traced back.
    ///
    /// # Safety
    /// `obj` must be a live container.
    pub(crate) unsafe fn untrack(&self, obj: ObjPtr) {
        // SAFETY: contract.
        let (h, header) = unsafe { (gc_header(obj), obj.header()) };
        let held = match (self.collecting_gen.get(), state(header)) {
            (None, _) => false,
            (Some(_), YOUNG | UNREACHABLE) => true,
            (Some(_), s) if is_new(s) => false,
            (Some(_), UNTRACKED | GARBAGE | GARBAGE_DEAD) => false,
            (Some(collected), s) => self.tags.get().generation(s) <= collected,
        };
        if held {
            h.untrack_later.set(true);
            self.untracks_deferred.set(true);
        } else {
            // SAFETY: contract.
            unsafe { self.unlink(obj) };
        }
    }

    /// `gc.track`-style tracking, asked for by user code: into generation 0 if untracked; an
    /// untracking deferred by the running collection is called off.
    ///
    /// # Safety
    /// `obj` must be a live container of this heap.
    pub(crate) unsafe fn track(&self, obj: ObjPtr) {
        // SAFETY: contract.
        let (h, header) = unsafe { (gc_header(obj), obj.header()) };
        if state(header) == UNTRACKED {
            // Like a thaw: an object whose references counted as from outside joins, and a
            // full collection running meanwhile (whose trace may be the caller) has not
            // scanned it, nor what only it held (see `unscanned_joins`).
            self.unscanned_joins.set(self.unscanned_joins.get() + 1);
            // SAFETY: a live, untracked container of this heap (contract).
            unsafe { self.link(obj, 0) };
        } else {
            h.untrack_later.set(false);
        }
    }

    /// The state of a container joining generation `gen`: `NEW_BASE + gen` when a running
    /// collection lent `gen`'s slots to its young array (the container is not young), else
    /// `gen`'s.
    fn joining_state(&self, gen: usize) -> u8 {
        match self.collecting_gen.get() {
            Some(collected) if self.lent.get() && gen <= collected => {
                self.joined.set(self.joined.get() | 1 << gen);
                NEW_BASE + gen as u8
            }
            _ => self.tags.get().state(gen),
        }
    }

    /// At the end of a collection: the `NEW` objects become ordinary ones, and, if
    /// `untrack` was deferred, the marked objects outside the young array (`move_survivors`
    /// did those) are untracked: objects made during the collection, or moved by a `freeze`
    /// or an `unfreeze` that ran meanwhile, in any generation.
    fn end_tracking_changes(&self) {
        self.lent.set(false);
        let joined = self.joined.replace(0);
        for (g, gen) in self.gens[..NUM_GENERATIONS].iter().enumerate() {
            if joined & 1 << g != 0 {
                for obj in gen.borrow().iter() {
                    // SAFETY: objects of a generation are live containers.
                    let header = unsafe { obj.header() };
                    let s = state(header);
                    if is_new(s) {
                        set_state(header, self.tags.get().state((s - NEW_BASE) as usize));
                    }
                }
            }
        }
        if !self.untracks_deferred.replace(false) {
            return;
        }
        let mut marked = Vec::new();
        for gen in &self.gens {
            marked.extend(
                gen.borrow()
                    .iter()
                    // SAFETY: objects of a generation are live containers.
                    .filter(|&obj| unsafe { gc_header(obj) }.untrack_later.get()),
            );
        }
        for obj in marked {
            // SAFETY: a live container in a generation, its slot valid (no collection runs).
            unsafe { self.unlink(obj) };
        }
    }

    /// Takes a container out of whatever holds it (a generation or a running collection).
    ///
    /// # Safety
    /// `obj` must be a live container.
    pub(crate) unsafe fn unlink(&self, obj: ObjPtr) {
        // SAFETY: contract.
        let (h, header) = unsafe { (gc_header(obj), obj.header()) };
        let index = h.index.get() as usize;
        match state(header) {
            UNTRACKED => return,
            // Out of every array already (the careful path's list is not an index).
            GARBAGE | GARBAGE_DEAD => {}
            YOUNG => self.young.borrow_mut()[index] = None,
            // SAFETY: a NEW object's GC header names its slot in its generation.
            s if is_new(s) => unsafe {
                self.gens[(s - NEW_BASE) as usize]
                    .borrow_mut()
                    .remove(index)
            },
            UNREACHABLE => {
                self.unreachable.borrow_mut().remove(index);
                self.young.borrow_mut()[index] = None;
            }
            // SAFETY: a tracked object's GC header names its slot in its generation (during a
            // sweep, whose young array holds generations' objects with stale slots, no death
            // is freed: collect_main defers them).
            s => unsafe {
                self.gens[self.tags.get().generation(s)]
                    .borrow_mut()
                    .remove(index)
            },
        }
        set_state(header, UNTRACKED);
    }

    /// The generation of a tracked container (0..=3), or None.
    ///
    /// # Safety
    /// `obj` must be a live container.
    pub(crate) unsafe fn generation_of(&self, obj: ObjPtr) -> Option<usize> {
        // SAFETY: contract.
        match state(unsafe { obj.header() }) {
            UNTRACKED => None,
            YOUNG | UNREACHABLE | GARBAGE | GARBAGE_DEAD => Some(NUM_GENERATIONS + 1), // running
            s if is_new(s) => Some((s - NEW_BASE) as usize),
            s => Some(self.tags.get().generation(s)),
        }
    }

    /// Moves every object of generation `from` to the end of generation `to`. Into an empty
    /// generation, outside the sweep-to-end stretch of a collection (whose `NEW` states name
    /// generations), the two trade slots and tags: no object is touched, whatever their
    /// number.
    pub(crate) fn merge(&self, from: usize, to: usize) {
        if from == to || self.gens[from].borrow().is_empty() {
            return;
        }
        if !self.lent.get() && self.gens[to].borrow().is_empty() {
            self.gens[from].swap(&self.gens[to]);
            self.tags.set(self.tags.get().swapped(from, to));
            return;
        }
        let moved = self.gens[from].borrow_mut().take_slots();
        let mut dest = self.gens[to].borrow_mut();
        for obj in moved.into_iter().flatten() {
            // SAFETY: tracked objects are live containers; `obj` left generation `from` above.
            unsafe {
                set_state(obj.header(), self.joining_state(to));
                dest.push(obj);
            }
        }
    }

    pub(crate) fn freeze(&self) {
        for g in 0..NUM_GENERATIONS {
            self.merge(g, 3);
        }
        let mut c = self.counts.get();
        c[0] = 0;
        self.counts.set(c);
    }

    pub(crate) fn unfreeze(&self) {
        if self.gens[3].borrow().is_empty() {
            return;
        }
        // The thawed objects were in no scan: until one, a full collection proves nothing.
        self.all_reachable_at.set(None);
        self.unscanned_joins.set(self.unscanned_joins.get() + 1);
        self.merge(3, NUM_GENERATIONS - 1);
    }

    /// What a full collection with nothing to find does instead of its sweep and scan: the
    /// survivors' move, generations 1 and 0 joining the end of generation 2 in that order,
    /// as a scan's survivors would (O(1) into an empty generation 2, see `merge`). Returns how
    /// many objects generation 2 then holds, all of them reachable.
    fn promote_unscanned(&self) -> usize {
        self.merge(1, NUM_GENERATIONS - 1);
        self.merge(0, NUM_GENERATIONS - 1);
        self.generation_len(NUM_GENERATIONS - 1)
    }

    // ---- automatic collection -------------------------------------------------------------

    /// CPython's `collect_generations`: the oldest generation over its threshold, with the
    /// long-lived heuristic for the oldest.
    fn collect_generations(&self) {
        let counts = self.counts.get();
        let thresholds = self.thresholds.get();
        for g in (0..NUM_GENERATIONS).rev() {
            if counts[g] > thresholds[g] {
                if g == NUM_GENERATIONS - 1
                    && self.long_lived_pending.get() < self.long_lived_total.get() / 4
                {
                    continue;
                }
                self.collect_with_callback(g);
                break;
            }
        }
    }

    // ---- the collection -------------------------------------------------------------------

    /// A collection of generation `g` with the callbacks around it. Returns the number of
    /// unreachable objects found (collected + uncollectable); 0 at once if a collection is
    /// already running.
    pub(crate) fn collect_with_callback(&self, g: usize) -> u64 {
        if self.collecting.replace(true) {
            return 0;
        }
        // Whatever escapes (a tracing subscriber's panic where the heap is consistent: a span
        // opening or closing), the collector is not left refusing every later collection.
        let running = Collecting(self);
        self.invoke_callbacks(
            Phase::Start,
            CallbackInfo {
                generation: g,
                collected: 0,
                uncollectable: 0,
            },
        );
        let (m, n) = self.collect_main(g);
        self.invoke_callbacks(
            Phase::Stop,
            CallbackInfo {
                generation: g,
                collected: m,
                uncollectable: n,
            },
        );
        drop(running);
        self.panic.resume();
        m + n
    }

    /// Runs user code (a trace, a clear, payload drops) so that a panic in it cannot leave the
    /// collection half done: the first panic is kept, to be resumed once the collection has
    /// ended consistently; later ones are dropped. Whoever calls this checks
    /// [`Collector::panicked`] and does only what stays sound when `f` stopped half way
    /// (a trace that reported part of its references, garbage partly freed).
    fn catching(&self, f: impl FnOnce()) {
        self.panic.catch(f);
    }

    /// Whether user code panicked during the running collection.
    fn panicked(&self) -> bool {
        self.panic.is_held()
    }

    /// Whether a tracked object belongs to this collector's heap (a strong reference may lead
    /// to another heap's object, whose tracking state is that heap's business).
    ///
    /// # Safety
    /// `obj` must be live.
    #[inline]
    pub(crate) unsafe fn owns(&self, obj: ObjPtr) -> bool {
        // SAFETY: contract.
        std::ptr::eq(unsafe { RcHeap::of(obj) }, self.rc)
    }

    /// Whether a tracked object the collection visits is one of this heap's: always, when the
    /// thread has no other heap ([`Collector::mixed`]).
    ///
    /// # Safety
    /// `obj` must be live.
    #[inline]
    unsafe fn is_own(&self, obj: ObjPtr) -> bool {
        // SAFETY: contract.
        !self.mixed.get() || unsafe { self.owns(obj) }
    }

    /// A young object's trace, its panic caught (see [`Collector::catching`]).
    ///
    /// # Safety
    /// As [`refcount::trace`].
    #[inline]
    unsafe fn trace(&self, obj: ObjPtr, visit: &mut Visit<'_>) {
        // SAFETY: contract.
        self.catching(|| unsafe { refcount::trace(obj, visit) });
    }

    /// Calls every callback registered when the call began and still registered when its
    /// turn comes, in order: a callback may add callbacks (they hear the next phase) or remove
    /// any, itself included. A panicking callback goes to the unraisable hook.
    fn invoke_callbacks(&self, phase: Phase, info: CallbackInfo) {
        let limit = self.next_callback_id.get();
        let mut last = 0;
        loop {
            let next = self
                .callbacks
                .borrow()
                .iter()
                .find(|(id, _)| *id > last && *id < limit)
                .map(|(id, cb)| (*id, Rc::clone(cb)));
            let Some((id, cb)) = next else { break };
            last = id;
            // A callback is never running already: a nested collection calls none.
            let Ok(mut cb) = cb.try_borrow_mut() else {
                continue;
            };
            if let Err(panic) = catch_unwind(AssertUnwindSafe(|| (*cb)(phase, &info))) {
                self.rc().report_panic("gc callback", "callback", panic);
            }
        }
    }

    /// CPython's `gc_collect_main`. Returns (collected, uncollectable).
    fn collect_main(&self, g: usize) -> (u64, u64) {
        let start = Instant::now();
        let span = tracing::debug_span!(
            "gc_collect",
            generation = g,
            examined = tracing::field::Empty,
            scanned = tracing::field::Empty,
            collected = tracing::field::Empty,
            uncollectable = tracing::field::Empty,
            elapsed_ns = tracing::field::Empty
        );
        let _enter = span.enter();
        let debug = self.debug.get();
        let bump = self.scratch.take().unwrap_or_default();
        self.collecting_gen.set(Some(g));
        self.mixed.set(crate::heap::heaps_side_by_side());

        // CPython's "gc: collecting generation g" comes first, before any count is pinned: a
        // subscriber is user code, which may upgrade a weak reference to what turns out to be
        // garbage (and must then find its true count).
        if debug.contains(DebugFlags::STATS) {
            self.catching(|| {
                tracing::info!(target: "gengc", generation = g,
                    objects = ?[0, 1, 2].map(|i| self.generation_len(i)), "gc: collecting")
            });
        }
        self.update_counts(g);
        let old = (g + 1).min(NUM_GENERATIONS - 1);
        let full = g == NUM_GENERATIONS - 1;
        // The release epoch before any user code of the collection runs (traces included).
        let releases = Releases::now();
        let joins = self.unscanned_joins.get();
        // Not inside a deallocation: a dying object (count 0) is still tracked then, and a
        // scan leaves it in its generation, out of the long-lived count.
        if full
            && !self.always_scan.get()
            && !self.rc().is_deallocating()
            && self.all_reachable_at.get() == Some(releases)
        {
            // No container lost a reference since a full collection (or the heap's birth)
            // found every object reachable: nothing can have become unreachable since
            // (`refcount::Releases`), and a scan would find nothing. CPython always scans.
            let kept = self.promote_unscanned();
            self.scans_skipped.set(self.scans_skipped.get() + 1);
            return self.finish_collection(g, start, &span, bump, false, (0, 0, kept, kept));
        }
        // The sweep and the scan run the young objects' traces, user code that may drop a
        // reference it should only have reported (`Trace` is a safe trait). An object that
        // dies of it must not be freed while the collector holds the young array and the
        // generations' slots, nor be taken for garbage: deaths wait until both are done
        // (inside a deallocation, until that one's loop), and a collection during which
        // anything died gives up (Err).
        let rc = self.rc();
        let waiting = rc.deaths_waiting();
        let (mut examined, mut no_drops) = (0, false);
        let mut sweep_and_scan = || {
            let sweep = self.update_and_subtract_refs(g);
            examined = sweep.examined;
            if rc.deaths_waiting() != waiting || self.panicked() {
                return Err(Settled::Swept);
            }
            // Every young count is pinned now. Nothing young is referenced from outside, and
            // the garbage needs nothing but freeing: no scan (None). Otherwise the scan gives
            // the counts of the objects referenced from outside back.
            if sweep.no_roots
                && sweep.special.none()
                && !debug.contains(DebugFlags::SAVEALL)
                && !debug.contains(DebugFlags::COLLECTABLE)
            {
                no_drops = sweep.no_drops;
                return Ok(None);
            }
            let special = self.move_unreachable(&bump);
            if rc.deaths_waiting() != waiting || self.panicked() {
                return Err(Settled::Scanned);
            }
            Ok(Some(special))
        };
        // The deaths are freed at the end of defer_frees, once the arrays are consistent; a
        // payload's drop that panics there is kept for the end of the collection like a
        // trace's panic.
        let mut settled = None;
        self.catching(|| rc.defer_frees(|| settled = Some(sweep_and_scan())));
        let Some(settled) = settled else {
            // The collector's own code panicked (a bug): nothing to finish consistently.
            self.collecting_gen.set(None);
            resume_unwind(self.panic.take().expect("the panic caught"));
        };

        // `reachable`: what the scan found reachable, which the long-lived counts take (as
        // CPython's do, before finalizers run): not the garbage that survives.
        let (m, n, reachable, scanned_all) = match settled {
            // Something died while a trace ran, or a trace panicked: all survive.
            Err(settled) => (0, 0, self.give_up(settled, old), false),
            // All of the young set is garbage, and common garbage (see below) at that: free
            // it where it stands.
            Ok(None) => (self.delete_young_in_bulk(no_drops), 0, 0, true),
            Ok(Some(special)) => {
                let reachable = examined - self.unreachable.borrow().len();
                // The objects of the unreachable slots are garbage, their counts pinned; the
                // others in the young array are reachable from outside the young set (see
                // move_unreachable).
                let (m, n) = if special.none()
                    && self.pinned.get()
                    && !debug.contains(DebugFlags::SAVEALL)
                {
                    // The common case: no user code can run on the garbage, none of it is
                    // kept, and every young type's trace is exact
                    // (TypeInfo::assume_exact_trace), the survivors' included: a survivor's
                    // trace that made no promise may have reported a reference to the garbage
                    // in the sweep and not in the rescue, and what the careful path finds
                    // still referenced after its clear survives.
                    self.log_collectable(debug);
                    (self.delete_garbage_in_bulk(), 0)
                } else {
                    self.handle_special_garbage(debug, special, &bump)
                };
                self.move_survivors(old);
                (m, n, reachable, true)
            }
        };
        if full {
            // Found everything reachable: the proof the next full collection may rest on.
            let proof = scanned_all && reachable == examined && self.unscanned_joins.get() == joins;
            self.all_reachable_at.set(proof.then_some(releases));
        }
        self.finish_collection(g, start, &span, bump, true, (m, n, reachable, examined))
    }

    /// What every collection ends with: the long-lived counts, the stats, the span and
    /// DEBUG_STATS's last event. `found` is (collected, uncollectable, reachable, examined).
    /// The span's fields are recorded once the collection has ended (`end_tracking_changes`):
    /// a subscriber is user code, and what it does must find the same heap whether the
    /// collection scanned or not.
    fn finish_collection(
        &self,
        g: usize,
        start: Instant,
        span: &tracing::Span,
        mut bump: Bump,
        scanned: bool,
        (m, n, reachable, examined): (u64, u64, usize, usize),
    ) -> (u64, u64) {
        let debug = self.debug.get();
        let reachable = reachable as u64;
        if g == NUM_GENERATIONS - 2 {
            self.long_lived_pending
                .set(self.long_lived_pending.get() + reachable);
        } else if g == NUM_GENERATIONS - 1 {
            self.long_lived_pending.set(0);
            self.long_lived_total.set(reachable);
            // CPython clears its free lists on a full collection.
            self.rc().allocator().clear_free_lists();
        }
        let mut stats = self.stats.get();
        stats[g].collections += 1;
        stats[g].collected += m;
        stats[g].uncollectable += n;
        self.stats.set(stats);

        self.collecting_gen.set(None);
        self.end_tracking_changes();
        bump.reset();
        self.scratch.set(Some(bump));
        let elapsed = start.elapsed().as_nanos() as u64;
        self.last_pause_ns.set(elapsed);
        self.catching(|| {
            span.record("scanned", scanned);
            span.record("examined", examined);
            span.record("collected", m);
            span.record("uncollectable", n);
            span.record("elapsed_ns", elapsed);
        });
        if debug.contains(DebugFlags::STATS) {
            self.catching(|| {
                tracing::info!(target: "gengc", examined,
                    "gc: done, {m} unreachable, {n} uncollectable, {:.4}s elapsed",
                    elapsed as f64 / 1e9)
            });
        }
        (m, n)
    }

    /// How many finalizers and weakref callbacks have run in this heap's life.
    fn user_code_runs(&self) -> u64 {
        let s = self.rc().stats();
        s.finalizers_run + s.callbacks_run
    }

    /// Collecting generation `g` bumps `g + 1`'s count and resets the counts of `0..=g`.
    fn update_counts(&self, g: usize) {
        let mut c = self.counts.get();
        if g + 1 < NUM_GENERATIONS {
            c[g + 1] += 1;
        }
        for count in &mut c[..=g] {
            *count = 0;
        }
        self.counts.set(c);
    }

    /// CPython's merge, `update_refs` and `subtract_refs` in one sweep: moves generations
    /// `0..=g` into the young array and subtracts every reference between young objects. On
    /// return every young object has `state == YOUNG`, `reachable` false, `gc_refs` equal to
    /// its references from outside the young set (above zero means reachable from outside),
    /// and, if every young type promised an exact trace ([`Collector::pinned`]), its count
    /// pinned at `IMMORTAL`, the true count parked in `index` until move_unreachable gives it
    /// back (or the whole young set is freed as garbage); otherwise its slot in `index`. And
    /// `refs_outside` says whether it references anything outside the young set (an atom, an
    /// older or frozen object, `gc.garbage`'s): a child counts as inside if its state is
    /// YOUNG or a collected generation, which at the end means YOUNG (a dying object of a
    /// collected generation has no counted referrer, and a container that joins one during the
    /// sweep is NEW, not of its generation's state).
    ///
    /// One sweep is enough because `gc_refs` is 0 outside a collection: each object adds its
    /// count, each reference from a young object subtracts one, in any order. A visited object
    /// takes part if its state (one load of its header) is YOUNG or a collected generation.
    /// The references are gathered in a buffer, a batch at a time, and their headers
    /// prefetched one batch before they are subtracted, so that a random graph waits on memory
    /// once per batch rather than once per reference.
    ///
    /// The oldest non-empty collected generation lends its buffer to the young array (see
    /// `Generation`), the younger ones are appended to it: the young array is in generation
    /// order, oldest first, and the sweep runs over it in place.
    ///
    /// Dying objects stay where they are: a container whose count is 0 is being deallocated
    /// (it waits on the refcount tier's pending stack, or runs its weakref callbacks), which is
    /// possible when a finalizer or callback of that deallocation collects. CPython untracks such
    /// objects before its trashcan defers them; here they go back to their generation, their
    /// references counting as references from outside (they are released when the object's
    /// turn comes), and what young objects subtracted from them is undone.
    fn update_and_subtract_refs(&self, g: usize) -> Sweep {
        // The states that make a visited object one of the collected set's: YOUNG, and those
        // of generations 0..=g (objects not swept yet).
        let tags = self.tags.get();
        let inside = (0..=g).fold(1u32 << YOUNG, |bits, gen| bits | 1 << tags.state(gen));
        let mixed = self.mixed.get();
        // References subtracted from young objects (and from dying ones, undone below).
        let mut subtracted: u64 = 0;
        // Whether any young object references something outside the young set.
        let any_outside = Cell::new(false);
        let subtract = |batch: &mut EdgeBatch, young: &[Option<ObjPtr>], subtracted: &mut u64| {
            for (&child, &owner) in batch.children.iter().zip(&batch.owners) {
                // SAFETY: visited pointers are live objects (Visit only takes handles).
                let header = unsafe { child.header() };
                let s = state(header);
                if inside >> s & 1 != 0
                    && (!mixed || {
                        // SAFETY: a live object (the visitor is given live objects).
                        unsafe { self.owns(child) }
                    })
                {
                    // SAFETY: only tracked containers have a state other than UNTRACKED.
                    let h = unsafe { gc_header(child) };
                    h.gc_refs.set(h.gc_refs.get() - 1);
                    *subtracted += 1;
                } else if let Some(owner) = young[owner as usize] {
                    // SAFETY: the owner, swept already, is a live young container.
                    unsafe { gc_header(owner) }.refs_outside.set(true);
                    any_outside.set(true);
                }
            }
            batch.children.clear();
            batch.owners.clear();
        };
        let [mut filling, mut ready] = self.edges.take();
        let (mut edges, mut far) = (0usize, 0usize);
        let mut counted: u64 = 0;
        let mut special = Special::default();
        let mut young = self.young.borrow_mut();
        debug_assert!(young.is_empty());
        if let Some(lender) = (0..=g)
            .rev()
            .find(|&gen| !self.gens[gen].borrow().is_empty())
        {
            let mut lent = self.gens[lender].borrow_mut();
            let spare = std::mem::replace(&mut *young, lent.take_slots());
            // SAFETY: the young array is empty between collections: no slot at all.
            unsafe { lent.set_slots(spare) };
            drop(lent);
            for gen in (0..lender).rev() {
                self.gens[gen].borrow_mut().drain_into(&mut young);
            }
        }
        // From here on a container that joins a collected generation is not young (NEW).
        self.lent.set(true);
        let mut kept = 0;
        let mut pinning = true;
        let mut release_only_drops = true;
        // The loop runs under one catch_unwind rather than one per trace (which costs in this
        // loop): a trace that panics ends the closure, and the loop resumes after its object,
        // the edges it reported so far counted as its own (the collection then gives up).
        let mut next = 0;
        while next < young.len() {
            let swept = catch_unwind(AssertUnwindSafe(|| {
                let start = next;
                for i in start..young.len() {
                    next = i + 1;
                    let Some(obj) = young[i] else { continue };
                    // SAFETY: tracked objects are live containers.
                    let (h, header) = unsafe { (gc_header(obj), obj.header()) };
                    if header.refcnt() == 0 {
                        // Dying: back to its generation, in order.
                        let mut list = self.gens[tags.generation(state(header))].borrow_mut();
                        // SAFETY: a live container; its generation gave its slots to the young array.
                        unsafe { list.push(obj) };
                        continue;
                    }
                    if pinning && !header.type_info().has_exact_trace() {
                        // Its trace, which promised nothing, runs below: no count may be pinned then.
                        Self::unpin_swept(&young[..kept]);
                        pinning = false;
                    }
                    release_only_drops &= header.type_info().has_release_only_drop();
                    let count = header.refcnt();
                    set_state(header, YOUNG);
                    if pinning {
                        // The count is pinned (and parked in `index`) until the scan: whatever the
                        // young set turns out to be, references among it then cost nothing to drop.
                        h.index.set(count);
                        // SAFETY: only code that makes no reference (the exact traces of the young
                        // set) runs before move_unreachable gives the count back to every object it
                        // does not find unreachable; garbage is freed pinned.
                        unsafe { header.set_refcnt(IMMORTAL) };
                    } else {
                        h.index.set(kept as u32);
                    }
                    h.reachable.set(false);
                    h.refs_outside.set(false);
                    h.gc_refs.set(h.gc_refs.get() + i64::from(count));
                    counted += u64::from(count);
                    special.note(header);
                    if kept != i {
                        young[kept] = Some(obj);
                    }
                    kept += 1;
                    let first = filling.children.len();
                    // SAFETY: a live object; the visitor only gathers pointers.
                    unsafe { refcount::trace(obj, &mut Visit::into_vec(&mut filling.children)) };
                    filling
                        .owners
                        .resize(filling.children.len(), (kept - 1) as u32);
                    edges += filling.children.len() - first;
                    far += filling.children[first..]
                        .iter()
                        .filter(|c| c.addr().abs_diff(obj.addr()) > NEAR)
                        .count();
                    if filling.children.len() >= EDGE_BATCH {
                        for &child in &filling.children {
                            prefetch_header(child);
                        }
                        subtract(&mut ready, &young, &mut subtracted);
                        std::mem::swap(&mut filling, &mut ready);
                    }
                }
            }));
            if let Err(panic) = swept {
                self.panic.keep(panic);
                filling
                    .owners
                    .resize(filling.children.len(), kept.saturating_sub(1) as u32);
            }
        }
        young.truncate(kept);
        self.pinned.set(pinning);
        subtract(&mut ready, &young, &mut subtracted);
        subtract(&mut filling, &young, &mut subtracted);
        self.edges.set([filling, ready]);
        self.scattered.set(far * 4 > edges);
        // Undo what young objects subtracted from dying ones (gc_refs is 0 outside a collection).
        for gen in 0..=g {
            for obj in self.gens[gen].borrow().iter() {
                // SAFETY: objects left in a collected generation are dying, still live.
                let h = unsafe { gc_header(obj) };
                subtracted -= h.gc_refs.get().unsigned_abs();
                h.gc_refs.set(0);
            }
        }
        Sweep {
            examined: kept,
            // Each young object's outside references are its count less the references from
            // young objects, never below 0 when every trace is exact (none reports a reference
            // twice): when the counts add up to the references between young objects, no
            // young object is referenced from outside.
            no_roots: counted == subtracted && !special.inexact_traces,
            no_drops: release_only_drops && !any_outside.get(),
            special,
        }
    }

    /// Gives the objects the sweep pinned so far their counts and slots back.
    fn unpin_swept(swept: &[Option<ObjPtr>]) {
        for (i, obj) in swept.iter().enumerate() {
            let Some(obj) = *obj else { continue };
            // SAFETY: swept objects are live containers.
            let (h, header) = unsafe { (gc_header(obj), obj.header()) };
            // SAFETY: the true count the sweep parked in index.
            unsafe { header.set_refcnt(h.index.replace(i as u32)) };
        }
    }

    /// Finds which young objects are reachable, CPython's `move_unreachable` in two steps.
    ///
    /// The scan: when the sweep pinned the counts, every young object gets its slot back in
    /// `index`, and one with references from outside its true count from there. One without
    /// (`gc_refs <= 0`) is tentatively unreachable: its slot joins the unreachable set, and
    /// its count stays pinned at `IMMORTAL` (the true count now in `gc_refs`), so that, should
    /// it turn out to be garbage, the references between garbage objects need no counting
    /// when their payloads are dropped. (When the sweep pinned nothing, because a young type
    /// made no promise about its trace, no count is pinned and the garbage takes the careful
    /// path.) The scan traces nothing.
    ///
    /// The rescue: what the roots (the other young objects) reach through unreachable objects
    /// is reachable after all: its slot leaves the set and it gets its count back. Only
    /// objects without outside references need finding, so the walk stops as soon as none is
    /// left to find: a live heap whose objects all have outside references is settled without
    /// tracing at all. No recursion: an explicit stack in scratch memory.
    ///
    /// On return the unreachable slots hold the garbage (state UNREACHABLE), the other slots
    /// the reachable objects (state YOUNG). Returns what the garbage needs beyond freeing.
    fn move_unreachable(&self, bump: &Bump) -> Special {
        let mut special = Special::default();
        let pinned = self.pinned.get();
        let mut to_find = {
            let young = self.young.borrow();
            let mut unreachable = self.unreachable.borrow_mut();
            unreachable.reset(young.len());
            for (i, slot) in young.iter().enumerate() {
                let Some(obj) = *slot else { continue };
                // SAFETY: young objects are live containers.
                let (h, header) = unsafe { (gc_header(obj), obj.header()) };
                // A sweep that pinned the count parked the true one in `index`.
                let count = if pinned {
                    h.index.replace(i as u32)
                } else {
                    header.refcnt()
                };
                if h.gc_refs.get() > 0 {
                    if pinned {
                        // SAFETY: the true count, pinned since the sweep.
                        unsafe { header.set_refcnt(count) };
                    }
                    continue;
                }
                // The count stays pinned, the true one kept in gc_refs: given back by
                // `rescue_reachable` or `take_unreachable` before any code that counts
                // references runs; freed as garbage otherwise.
                h.gc_refs.set(i64::from(count));
                set_state(header, UNREACHABLE);
                special.note(header);
                unreachable.insert(i);
            }
            unreachable.len()
        };
        let mut stack = BumpVec::new_in(bump);
        let mut i = 0;
        while to_find > 0 {
            let Some(&slot) = self.young.borrow().get(i) else {
                break;
            };
            i += 1;
            let Some(obj) = slot else { continue };
            // SAFETY: young objects are live containers.
            let (h, header) = unsafe { (gc_header(obj), obj.header()) };
            if state(header) == YOUNG && !h.reachable.get() {
                // A root (a rescued object is marked and was traced when rescued).
                stack.push(obj);
                to_find -= self.rescue_reachable(&mut stack);
            }
        }
        if !special.none() {
            // The scan's answer counted objects rescued since: ask the garbage itself.
            special = Special::default();
            self.for_each_unreachable(|obj| {
                // SAFETY: objects of the unreachable slots are live.
                special.note(unsafe { obj.header() })
            });
        }
        special
    }

    /// Gives back its count to every unreachable object the stacked objects reach,
    /// transitively, and takes its slot out of the unreachable set. Returns how many.
    fn rescue_reachable(&self, stack: &mut BumpVec<'_, ObjPtr>) -> usize {
        let mut unreachable = self.unreachable.borrow_mut();
        let mut rescued = 0;
        while let Some(obj) = stack.pop() {
            let mut visit = |child: ObjPtr| {
                // SAFETY: visited pointers are live objects.
                let header = unsafe { child.header() };
                if state(header) == UNREACHABLE && {
                    // SAFETY: a live object (the visitor is given live objects).
                    unsafe { self.is_own(child) }
                } {
                    // SAFETY: only young containers in unreachable slots have this state.
                    let h = unsafe { gc_header(child) };
                    self.unpin(h, header);
                    unreachable.remove(h.index.get() as usize);
                    h.reachable.set(true);
                    set_state(header, YOUNG);
                    rescued += 1;
                    stack.push(child);
                }
            };
            // SAFETY: obj is live; the visitor only restores counts and collector state.
            unsafe { self.trace(obj, &mut Visit::new(&mut visit)) };
        }
        rescued
    }

    /// Ends a collection during which an object died (a trace dropped a reference) or a trace
    /// panicked: every young object survives, as if reachable, and moves to generation `old`.
    /// Its traces having changed the graph under it, or reported only part of it, the
    /// collection cannot trust what it counted; the next collection will. `settled` says how
    /// far it got, and so where the pinned counts are. Returns how many survived.
    ///
    /// A death only comes from a trace that made no promise, so with nothing pinned; a panic
    /// may come from any trace.
    fn give_up(&self, settled: Settled, old: usize) -> usize {
        if self.pinned.get() {
            let young = self.young.borrow();
            match settled {
                // The sweep parked every young object's true count in its `index`.
                Settled::Swept => Self::unpin_swept(&young),
                // The scan gave the objects with outside references theirs back, and kept the
                // others' in `gc_refs`.
                Settled::Scanned => self.for_each_unreachable(|obj| {
                    // SAFETY: objects of the unreachable slots are live containers.
                    let (h, header) = unsafe { (gc_header(obj), obj.header()) };
                    self.unpin(h, header);
                }),
            }
        }
        let young = self.young.borrow().len();
        // Emptying the set makes the objects the scan found unreachable survivors like the
        // others (move_survivors resets their state).
        self.unreachable.borrow_mut().reset(young);
        self.move_survivors(old)
    }

    /// Gives an UNREACHABLE object its true count back (if the collection pinned it).
    fn unpin(&self, h: &GcHeader, header: &ObjHeader) {
        if self.pinned.get() {
            // SAFETY: the count pinned by the sweep, kept in gc_refs by the scan, restored
            // once.
            unsafe { header.set_refcnt(h.gc_refs.get() as u32) };
        }
        h.gc_refs.set(0);
    }

    /// Calls `f` on the object of every unreachable slot, in young order.
    fn for_each_unreachable(&self, mut f: impl FnMut(ObjPtr)) {
        let young = self.young.borrow();
        for i in self.unreachable.borrow().iter() {
            if let Some(obj) = young[i] {
                f(obj);
            }
        }
    }

    /// With DEBUG_COLLECTABLE, an event per garbage object.
    fn log_collectable(&self, debug: DebugFlags) {
        if debug.contains(DebugFlags::COLLECTABLE) {
            self.for_each_unreachable(|o| {
                // SAFETY: objects of the unreachable slots are live until deleted.
                let ty = unsafe { o.type_info() }.name;
                self.catching(
                    || tracing::info!(target: "gengc", "gc: collectable <{ty} {:#x}>", o.addr()),
                );
            });
        }
    }

    /// The common case of deletion: garbage without finalizers to run or weak references,
    /// none of it kept. Its counts are pinned, so the refcount tier drops every payload
    /// (releasing what the garbage holds outside itself) and then frees every block, in young
    /// order, without counting the references among the garbage and without passing each
    /// object through the pending stack and the container hook. The garbage's slots stay in
    /// the unreachable set, which `move_survivors` skips. Returns how many it freed.
    ///
    /// Generation 0's count, which the container hook lowers on each death, is 0 here (reset
    /// when this collection started, nothing allocated since) and never falls below 0: the
    /// garbage's deaths leave it as it is.
    fn delete_garbage_in_bulk(&self) -> u64 {
        let rc = self.rc();
        // The garbage is counted before it is freed: a payload's drop that panics unwinds out
        // of defer_frees at its end (every member freed all the same) and skips the
        // assignment below, yet the garbage was collected, as CPython would count it.
        let garbage = self.unreachable.borrow().len() as u64;
        let mut freed = garbage;
        // The outer defer_frees drains the deaths outside the garbage (which may run user
        // code) after the closure returned, when these borrows are over. A payload's drop that
        // panics leaves the garbage freed (or, at worst, leaked): its slots are never read
        // again, so the collection goes on to move the survivors.
        self.catching(|| {
            freed = rc.defer_frees(|| {
                let young = self.young.borrow();
                let slots = self.unreachable.borrow();
                // The garbage: every object of an unreachable slot is a live container of this
                // heap, reachable only from other such objects, its count pinned at IMMORTAL
                // (move_unreachable), with no finalizer to run, no weak reference, and a type that
                // promised an exact trace (Special::none).
                // SAFETY: free_garbage's contract is the paragraph above; the collector forgets the
                // garbage after it (move_survivors skips its slots, nothing reads their state).
                unsafe {
                    rc.free_garbage(
                        || slots.iter().filter_map(|i| young[i]),
                        self.scattered.get(),
                        // A young child may have been reachable: every payload is dropped.
                        |_| false,
                    )
                }
            })
        });
        debug_assert_eq!(freed, garbage);
        freed
    }

    /// Deletion when the sweep found no young object referenced from outside
    /// ([`Sweep::no_roots`]) and the young set needs nothing but freeing: the whole young
    /// array is garbage, its counts pinned by the sweep. No scan: the refcount tier frees it
    /// all in young order, and the young array is emptied. With `no_drops` ([`Sweep`]), in
    /// one pass that drops no payload. Returns how many it freed.
    fn delete_young_in_bulk(&self, no_drops: bool) -> u64 {
        let rc = self.rc();
        // As in delete_garbage_in_bulk, deaths outside the garbage are drained after the
        // closure, once the young array is empty and no borrow is held.
        let delete = || {
            rc.defer_frees(|| {
                let young = self.young.borrow();
                // The garbage: every young object, a live container of this heap referenced from
                // nowhere but the young set (the sweep's counts add up), its count pinned at
                // IMMORTAL by the sweep, with no finalizer to run, no weak reference, and a type
                // that promised an exact trace (Special::none over the whole young set). An object
                // whose references the sweep found all inside the young set (`refs_outside`) holds
                // only garbage: every child it counted inside ended the sweep YOUNG.
                // With no_drops, every young type only releases references in its drop, and every
                // young object holds only garbage.
                // SAFETY: free_garbage's contract (and free_garbage_undropped's, with no_drops) is
                // the paragraph above; the collector forgets the garbage right after, by emptying
                // the young array.
                let freed = unsafe {
                    if no_drops {
                        rc.free_garbage_undropped(young.iter().flatten().copied())
                    } else {
                        rc.free_garbage(
                            || young.iter().flatten().copied(),
                            self.scattered.get(),
                            // SAFETY: the young objects are live containers until freed.
                            |obj| !gc_header(obj).refs_outside.get(),
                        )
                    }
                };
                drop(young);
                self.young.borrow_mut().clear();
                freed
            })
        };
        // Counted before, as in delete_garbage_in_bulk (a panic skips the assignment): the
        // sweep left every young slot filled.
        let garbage = self.young.borrow().len() as u64;
        let mut freed = garbage;
        self.catching(|| freed = delete());
        debug_assert_eq!(freed, garbage);
        // Forgotten even if a payload's drop panicked: the garbage is freed (or leaked).
        self.young.borrow_mut().clear();
        freed
    }

    /// The careful path, CPython's phases for garbage that needs more than freeing: legacy
    /// finalizers, weak references, finalizers, resurrection, DEBUG_SAVEALL. Returns
    /// (collected, uncollectable).
    fn handle_special_garbage(
        &self,
        debug: DebugFlags,
        special: Special,
        bump: &Bump,
    ) -> (u64, u64) {
        let unreachable = self.take_unreachable(bump);
        // The garbage is out of the young array (its objects say GARBAGE), with a reference
        // held to each, so nothing it holds is freed while finalizers and callbacks run.
        // Legacy finalizers make cycles uncollectable because they must not run on them; a
        // heap being torn down runs no finalizer at all, so then they are ordinary garbage.
        // CPython's `finalizers` list: survivors, with a reference held to each here.
        let mut uncollectable = BumpVec::new_in(bump);
        if special.legacy_finalizers && self.rc().user_code_enabled() {
            uncollectable = self.move_legacy_finalizers(&unreachable, bump);
        }
        if debug.contains(DebugFlags::COLLECTABLE) {
            for &o in unreachable.iter().filter(|o| self.is_garbage(**o)) {
                // SAFETY: we hold a reference to every unreachable object.
                let ty = unsafe { o.type_info() }.name;
                self.catching(
                    || tracing::info!(target: "gengc", "gc: collectable <{ty} {:#x}>", o.addr()),
                );
            }
        }
        let mut weakrefs_freed = 0;
        let mut user_code_ran = false;
        if special.weakrefs || special.finalizers {
            let user_code_before = self.user_code_runs();
            if special.weakrefs {
                weakrefs_freed = self.handle_weakrefs(&unreachable, &mut uncollectable, bump);
            }
            if special.finalizers {
                self.finalize_garbage(&unreachable);
            }
            // Finalizers and callbacks may have stored references to garbage somewhere live:
            // recompute which of it is still unreachable; what a resurrected object reaches
            // survives with it. When no such code ran, nothing can have changed.
            if self.user_code_runs() != user_code_before {
                user_code_ran = true;
                self.handle_resurrected_objects(&unreachable, bump);
            }
        }
        if self.panicked() {
            // A trace panicked while the careful path marked what is reachable: what it did
            // not mark may be reachable all the same. Everything still garbage survives.
            for &obj in unreachable.iter().filter(|o| self.is_garbage(**o)) {
                self.revive(obj);
            }
        }
        // What CPython's reference counting freed while the finalizers ran (it holds no
        // reference to the garbage then): not in its final_unreachable.
        let freed_by_finalizers = if user_code_ran && !self.panicked() {
            self.freed_by_finalizers(&unreachable, bump)
        } else {
            0
        };
        // Collected: what is still garbage now, as CPython counts `final_unreachable` (the
        // resurrected and the uncollectable are not, nor what its finalizers freed; what
        // survives its clear below, or is saved by DEBUG_SAVEALL, is), and the weakrefs that
        // died of their callbacks.
        let m = unreachable.iter().filter(|o| self.is_garbage(**o)).count() as u64
            - freed_by_finalizers
            + weakrefs_freed;
        self.delete_garbage(&unreachable, debug.contains(DebugFlags::SAVEALL));
        let n = self.handle_legacy_finalizers(uncollectable);
        (m, n)
    }

    /// CPython's count of the uncollectable and its `handle_legacy_finalizers`, after
    /// `delete_garbage`: what is left of the uncollectable goes to `gc.garbage` (our reference
    /// moves there), and is counted. In CPython, whose `finalizers` list holds no reference,
    /// an uncollectable object that only the garbage referenced died when the garbage was
    /// cleared: here that is one whose only reference is ours, released (which may leave
    /// another with ours alone, so until none is).
    fn handle_legacy_finalizers(&self, mut uncollectable: BumpVec<'_, ObjPtr>) -> u64 {
        loop {
            let before = uncollectable.len();
            uncollectable.retain(|obj| {
                // SAFETY: we hold a reference to each object of the list.
                if unsafe { obj.header() }.refcnt() > 1 {
                    return true;
                }
                // SAFETY: our reference, given up: the object dies, as it did in CPython.
                unsafe { obj.decref() };
                false
            });
            if uncollectable.len() == before {
                break;
            }
        }
        let debug = self.debug.get().contains(DebugFlags::UNCOLLECTABLE);
        for &obj in &uncollectable {
            if debug {
                // SAFETY: live (we hold a reference).
                let ty = unsafe { obj.type_info() }.name;
                self.catching(|| {
                    tracing::info!(target: "gengc", "gc: uncollectable <{ty} {:#x}>", obj.addr())
                });
            }
        }
        self.garbage
            .borrow_mut()
            .extend(uncollectable.iter().copied());
        uncollectable.len() as u64
    }

    /// Marks what the stacked objects reach through garbage objects (state GARBAGE) that are
    /// neither marked nor referenced from outside (`gc_refs > 0`). Returns how many it marked.
    fn propagate_reachable(&self, stack: &mut BumpVec<'_, ObjPtr>) -> usize {
        let mut marked = 0;
        while let Some(obj) = stack.pop() {
            let mut visit = |child: ObjPtr| {
                // SAFETY: visited pointers are live objects.
                let header = unsafe { child.header() };
                if state(header) == GARBAGE && {
                    // SAFETY: a live object (the visitor is given live objects).
                    unsafe { self.is_own(child) }
                } {
                    // SAFETY: only containers of the careful path's list carry this state.
                    let h = unsafe { gc_header(child) };
                    if !h.reachable.get() && h.gc_refs.get() <= 0 {
                        h.reachable.set(true);
                        marked += 1;
                        stack.push(child);
                    }
                }
            };
            // SAFETY: obj is live; the visitor only marks.
            unsafe { self.trace(obj, &mut Visit::new(&mut visit)) };
        }
        marked
    }

    /// Whether an object found unreachable is still garbage (not resurrected, not
    /// uncollectable, not saved).
    fn is_garbage(&self, obj: ObjPtr) -> bool {
        // SAFETY: called on containers of the unreachable list, to which we hold references.
        state(unsafe { obj.header() }) == GARBAGE
    }

    /// The careful path's start: the objects of the unreachable slots leave the young array
    /// for a list of garbage (state GARBAGE, counts restored, one reference taken to each,
    /// `gc_refs` 0, unmarked), in young order; the set is emptied.
    fn take_unreachable<'b>(&self, bump: &'b Bump) -> BumpVec<'b, ObjPtr> {
        let mut young = self.young.borrow_mut();
        let mut slots = self.unreachable.borrow_mut();
        let mut out = BumpVec::with_capacity_in(slots.len(), bump);
        for i in slots.iter() {
            let Some(obj) = young[i].take() else { continue };
            // SAFETY: objects of the unreachable slots are live containers.
            let (h, header) = unsafe { (gc_header(obj), obj.header()) };
            self.unpin(h, header);
            // SAFETY: a live object; the reference is given back in delete_garbage.
            unsafe { obj.incref() };
            h.reachable.set(false);
            set_state(header, GARBAGE);
            out.push(obj);
        }
        slots.clear();
        out
    }

    /// Puts a garbage object back among the survivors (it was resurrected, is uncollectable,
    /// or is saved in `garbage`).
    fn revive(&self, obj: ObjPtr) {
        // SAFETY: a live container of the unreachable list (we hold a reference).
        let (h, header) = unsafe { (gc_header(obj), obj.header()) };
        let mut young = self.young.borrow_mut();
        set_state(header, YOUNG);
        h.reachable.set(true);
        h.index.set(young.len() as u32);
        young.push(Some(obj));
    }

    /// Objects with legacy finalizers, and everything they reach among the garbage, are
    /// uncollectable: they survive, and are returned with a reference held to each, for
    /// `handle_legacy_finalizers` to send to `garbage` once the garbage is deleted.
    fn move_legacy_finalizers<'b>(
        &self,
        unreachable: &[ObjPtr],
        bump: &'b Bump,
    ) -> BumpVec<'b, ObjPtr> {
        let mut stack = BumpVec::new_in(bump);
        for &obj in unreachable {
            // SAFETY: we hold a reference to obj.
            if unsafe { obj.type_info() }.legacy_finalizer {
                // SAFETY: as above.
                unsafe { gc_header(obj) }.reachable.set(true);
                stack.push(obj);
            }
        }
        self.propagate_reachable(&mut stack);
        let mut uncollectable = BumpVec::new_in(bump);
        for &obj in unreachable {
            // SAFETY: as above.
            if unsafe { gc_header(obj) }.reachable.get() {
                // SAFETY: a live object; the returned list owns the new reference.
                unsafe { obj.incref() };
                uncollectable.push(obj);
                self.revive(obj);
            }
        }
        uncollectable
    }

    /// Clears every weak reference to the garbage (upgrading gives nothing from now on), then
    /// runs the callbacks of the weakrefs that are not garbage themselves.
    ///
    /// A weakref that is garbage itself is detached from its referent first (CPython,
    /// bpo-38006): its referent may be outside the garbage and die while the garbage is
    /// deleted, and its callback must not run then, on a weakref already cleared.
    ///
    /// Returns how many of the weakrefs whose callbacks ran died when the collector let go of
    /// them (their callback dropped their last other holder): CPython counts those among the
    /// collected.
    ///
    /// A weakref among the uncollectable whose callback runs leaves that list (CPython moves
    /// it to its callbacks list): it survives, but is not uncollectable.
    fn handle_weakrefs(
        &self,
        unreachable: &[ObjPtr],
        uncollectable: &mut BumpVec<'_, ObjPtr>,
        bump: &Bump,
    ) -> u64 {
        let rc = self.rc();
        let mut callbacks = BumpVec::new_in(bump);
        for &obj in unreachable.iter().filter(|o| self.is_garbage(**o)) {
            // SAFETY: we hold a reference to obj; the handle borrows it without count changes.
            let handle = std::mem::ManuallyDrop::new(unsafe { ObjRef::from_owned(obj) });
            rc.detach_weakref(&handle);
            // Newest first, as CPython walks a referent's list from its head (where a weakref
            // with a callback goes) and as a death by reference counting runs them.
            // SAFETY: we hold a reference to obj.
            for wr in unsafe { rc.clear_weakrefs(obj) }.into_iter().rev() {
                // A weakref is a container: in the garbage iff its header says so.
                if !self.is_garbage(wr.as_ptr()) {
                    callbacks.push(wr);
                }
            }
        }
        let mut freed = 0;
        for wr in callbacks {
            if wr.has_callback() {
                if let Some(i) = uncollectable.iter().position(|&o| o == wr.as_ptr()) {
                    uncollectable.remove(i);
                    // SAFETY: the list's reference to it, given up (`wr` holds another).
                    unsafe { wr.as_ptr().decref() };
                }
            }
            // The collector's own reference, given back once the callback is done (the one
            // `clear_weakrefs` made goes to the callback).
            let ours = wr.has_callback().then(|| wr.clone());
            rc.run_weakref_callback(wr);
            if let Some(ours) = ours {
                freed += u64::from(ours.refcnt() == 1);
            }
        }
        freed
    }

    /// Runs each garbage object's finalizer, once in its life (PEP 442).
    fn finalize_garbage(&self, unreachable: &[ObjPtr]) {
        let rc = self.rc();
        for &obj in unreachable.iter().filter(|o| self.is_garbage(**o)) {
            // SAFETY: we hold a reference to obj; the handle borrows it without count changes.
            let handle = std::mem::ManuallyDrop::new(unsafe { ObjRef::from_owned(obj) });
            rc.finalize(&handle);
        }
    }

    /// Recomputes reachability inside the garbage: an object a finalizer made reachable again
    /// (its count exceeds our reference plus the garbage's own references) is revived, with
    /// everything it reaches. On return the objects still marked GARBAGE are garbage.
    fn handle_resurrected_objects(&self, unreachable: &[ObjPtr], bump: &Bump) {
        let garbage = || unreachable.iter().copied().filter(|o| self.is_garbage(*o));
        for obj in garbage() {
            // SAFETY: we hold a reference to obj (the 1 subtracted), so it is a live container.
            let (h, header) = unsafe { (gc_header(obj), obj.header()) };
            h.gc_refs.set(i64::from(header.refcnt()) - 1);
            h.reachable.set(false);
        }
        let mut visit = |child: ObjPtr| {
            // SAFETY: visited pointers are live.
            if state(unsafe { child.header() }) == GARBAGE && {
                // SAFETY: a live object (the visitor is given live objects).
                unsafe { self.is_own(child) }
            } {
                // SAFETY: only containers of the careful path's list carry this state.
                let h = unsafe { gc_header(child) };
                h.gc_refs.set(h.gc_refs.get() - 1);
            }
        };
        for obj in garbage() {
            // SAFETY: live; the visitor only counts.
            unsafe { self.trace(obj, &mut Visit::new(&mut visit)) };
        }
        // Mark from the resurrected, through garbage only (survivors are marked already).
        let mut stack = BumpVec::new_in(bump);
        for obj in garbage() {
            // SAFETY: live container.
            let h = unsafe { gc_header(obj) };
            if h.gc_refs.get() > 0 {
                h.reachable.set(true);
                stack.push(obj);
            }
        }
        self.propagate_reachable(&mut stack);
        for &obj in unreachable {
            // SAFETY: as above.
            if self.is_garbage(obj) && unsafe { gc_header(obj) }.reachable.get() {
                self.revive(obj);
            }
        }
    }

    /// How many garbage objects CPython would have freed by reference counting while the
    /// finalizers ran: CPython holds no reference to its unreachable objects then, so one that
    /// a finalizer leaves referenced by nothing but such objects dies at once and leaves the
    /// unreachable list. Here the collector's own reference keeps it garbage until
    /// `delete_garbage`: those whose count is the collector's reference plus references from
    /// such objects, found from the ones with nothing but the collector's. Leaves their
    /// `gc_refs` at FREED_BY_FINALIZERS (for `delete_garbage`, which resets it) and the other
    /// garbage's at 0.
    fn freed_by_finalizers(&self, unreachable: &[ObjPtr], bump: &Bump) -> u64 {
        let garbage = || unreachable.iter().copied().filter(|o| self.is_garbage(*o));
        let mut freed = BumpVec::new_in(bump);
        for obj in garbage() {
            // SAFETY: we hold a reference to obj (the 1 subtracted), so it is a live container.
            let (h, header) = unsafe { (gc_header(obj), obj.header()) };
            h.gc_refs.set(i64::from(header.refcnt()) - 1);
            if h.gc_refs.get() == 0 {
                freed.push(obj);
            }
        }
        let mut count = 0;
        while let Some(obj) = freed.pop() {
            count += 1;
            let mut release = |child: ObjPtr| {
                // SAFETY: visited pointers are live objects.
                if state(unsafe { child.header() }) == GARBAGE && unsafe { self.is_own(child) } {
                    // SAFETY: only containers of the careful path's list carry this state.
                    let h = unsafe { gc_header(child) };
                    h.gc_refs.set(h.gc_refs.get() - 1);
                    if h.gc_refs.get() == 0 {
                        freed.push(child);
                    }
                }
            };
            // SAFETY: live (we hold a reference); the visitor only reads headers and counts.
            unsafe { self.trace(obj, &mut Visit::new(&mut release)) };
        }
        for obj in garbage() {
            // SAFETY: as above.
            let h = unsafe { gc_header(obj) };
            // Marked FREED_BY_FINALIZERS, for delete_garbage; 0 for the rest.
            h.gc_refs.set(if h.gc_refs.get() == 0 {
                FREED_BY_FINALIZERS
            } else {
                0
            });
        }
        count
    }

    /// Breaks the garbage's cycles: each object's `clear` drops its references (or, with
    /// DEBUG_SAVEALL, the object goes to `garbage` instead); then the references taken in
    /// `take_unreachable` are given back, and reference counting frees the garbage, all deaths
    /// deferred to one deallocation loop.
    fn delete_garbage(&self, unreachable: &[ObjPtr], save_all: bool) {
        let rc = self.rc();
        // Every death inside is deferred to one loop at the end, so no object of the list is
        // freed while the list is walked: each can be cleared and let go in the same pass. A
        // clear that panics stops that object's clear only; a death's drop that panics, the
        // loop's freeing only once it is done.
        self.catching(|| {
            rc.defer_frees(|| {
                for &obj in unreachable {
                    if self.is_garbage(obj) {
                        // SAFETY: we hold a reference to obj, a container.
                        let freed_by_finalizers =
                            unsafe { gc_header(obj) }.gc_refs.replace(0) == FREED_BY_FINALIZERS;
                        // What a finalizer freed in CPython is never saved (it is cleared
                        // here, and dies with the references it held).
                        if save_all && !freed_by_finalizers {
                            // SAFETY: live; garbage owns the new reference.
                            unsafe { obj.incref() };
                            self.garbage.borrow_mut().push(obj);
                            self.revive(obj);
                        } else {
                            // No longer garbage to the collector's visitors: it is being cleared.
                            // SAFETY: we hold a reference to obj.
                            set_state(unsafe { obj.header() }, GARBAGE_DEAD);
                            // SAFETY: as above; the handle borrows it without count changes.
                            let handle =
                                std::mem::ManuallyDrop::new(unsafe { ObjRef::from_owned(obj) });
                            self.catching(|| rc.clear_refs(&handle));
                            if handle.refcnt() > 1 {
                                // Still referenced after its clear (by what it did not clear yet,
                                // or from somewhere live its clear stored it): it may die later,
                                // as in CPython, and survives into the old generation meanwhile.
                                self.revive(obj);
                            }
                        }
                    }
                    // SAFETY: take_unreachable took one reference to each; given back once. A
                    // death it causes waits for the end of defer_frees.
                    unsafe { obj.decref() };
                }
            })
        });
    }

    /// Everything left in the young array (reachable, resurrected, uncollectable, saved, or
    /// surviving its clear) moves to generation `old`, in young order. The survivors close
    /// ranks in the young array first; when `old` is empty (a full collection's), the young
    /// array's buffer becomes the generation, and the generation's empty one the young array's
    /// (see `Generation::set_slots`); otherwise they are appended. Returns how many.
    fn move_survivors(&self, old: usize) -> usize {
        let mut young = self.young.borrow_mut();
        let mut garbage = self.unreachable.borrow_mut();
        let mut dest = self.gens[old].borrow_mut();
        let base = dest.next_slot();
        let survivor_state = self.tags.get().state(old);
        let mut kept = 0;
        // 64 slots at a time: a run of garbage costs one test of its word.
        for w in 0..young.len().div_ceil(64) {
            let dead = garbage.word(w);
            if dead == !0 {
                continue;
            }
            for i in w * 64..young.len().min(w * 64 + 64) {
                let Some(obj) = young[i] else { continue };
                if dead & (1 << (i % 64)) != 0 {
                    continue;
                }
                // SAFETY: objects still in the young array, outside the unreachable set, are
                // live containers.
                let (h, header) = unsafe { (gc_header(obj), obj.header()) };
                if h.untrack_later.replace(false) {
                    // User code untracked it during the collection (Collector::untrack).
                    set_state(header, UNTRACKED);
                    h.reachable.set(false);
                    h.gc_refs.set(0);
                    continue;
                }
                set_state(header, survivor_state);
                h.index.set((base + kept) as u32);
                h.reachable.set(false);
                h.gc_refs.set(0);
                young[kept] = Some(obj);
                kept += 1;
            }
        }
        young.truncate(kept);
        garbage.clear();
        // SAFETY: the first `kept` slots were filled above with live containers, each told its
        // slot in `old`, `base` on; the rest truncated away.
        unsafe {
            if base == 0 {
                let spare = dest.take_slots();
                dest.set_slots(std::mem::replace(&mut *young, spare));
            } else {
                dest.append(&mut young);
            }
        }
        kept
    }
}

/// How far a collection that gives up got ([`Collector::give_up`]).
#[derive(Clone, Copy, Debug)]
enum Settled {
    /// Through the sweep: every young count pinned, if any, is parked in the GC header's
    /// `index`.
    Swept,
    /// Through the scan: the unreachable objects' pinned counts are in `gc_refs`.
    Scanned,
}

/// What [`Collector::update_and_subtract_refs`] learned of the young set as a whole.
struct Sweep {
    /// How many objects the young array holds.
    examined: usize,
    /// No young object is referenced from outside the young set: the counts of the young
    /// objects add up to the references between them (and every trace is exact).
    no_roots: bool,
    /// Every young type only releases references in its drop, and no young object references
    /// anything outside the young set: when the young set is garbage, none of it needs its
    /// drop.
    no_drops: bool,
    /// What the young set as a whole needs beyond freeing.
    special: Special,
}

/// What the garbage of a collection needs beyond freeing.
#[derive(Default)]
struct Special {
    legacy_finalizers: bool,
    finalizers: bool,
    weakrefs: bool,
    /// A type without the promise of an exact trace: its garbage must be cleared and left to
    /// reference counting (a wrong trace then leaks or clears, but never frees a live object).
    inexact_traces: bool,
}

impl Special {
    /// Adds what an unreachable object needs.
    #[inline]
    fn note(&mut self, header: &ObjHeader) {
        let ty = header.type_info();
        self.legacy_finalizers |= ty.legacy_finalizer;
        self.finalizers |= ty.has_finalizer() && !header.is_finalized();
        self.weakrefs |= header.has_weakrefs() || std::ptr::eq(ty, WeakRefObj::type_info());
        self.inexact_traces |= !ty.has_exact_trace();
    }

    /// Whether the garbage needs nothing but freeing.
    fn none(&self) -> bool {
        !(self.legacy_finalizers || self.finalizers || self.weakrefs || self.inexact_traces)
    }
}

/// References visited by `update_and_subtract_refs`, with the young slot of the object that
/// holds each.
#[derive(Default)]
struct EdgeBatch {
    children: Vec<ObjPtr>,
    owners: Vec<u32>,
}

/// How many visited references `update_and_subtract_refs` gathers before it prefetches them
/// (and subtracts the batch before): enough to keep the memory system busy, few enough that
/// the prefetched lines are still in cache when used.
const EDGE_BATCH: usize = 32;

/// How far (in bytes) a reference may lead from its referrer and still count as near: objects
/// made one after the other sit within a few blocks of each other, in the same pages.
const NEAR: usize = 4096;

/// Asks the CPU to start loading an object's header and the collector's header before it.
#[inline(always)]
fn prefetch_header(obj: ObjPtr) {
    let addr = obj.as_non_null().as_ptr().cast::<u8>();
    prefetch(addr.wrapping_sub(16));
    prefetch(addr.wrapping_add(8));
}

impl ContainerHook for Collector {
    fn on_alloc(&self, obj: ObjPtr) {
        let mut c = self.counts.get();
        c[0] += 1;
        self.counts.set(c);
        let t = self.thresholds.get();
        if self.enabled.get() && t[0] != 0 && c[0] > t[0] && !self.collecting.get() {
            self.collect_generations();
        }
        // SAFETY: a fresh, live, untracked container of this heap.
        unsafe { self.link(obj, 0) };
    }

    fn on_dealloc(&self, obj: ObjPtr) {
        let mut c = self.counts.get();
        c[0] = c[0].saturating_sub(1);
        self.counts.set(c);
        // SAFETY: a live (dying) container.
        unsafe { self.unlink(obj) };
    }
}
