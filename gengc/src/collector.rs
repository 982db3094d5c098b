//! The collector: generations, counts and thresholds, and the collection itself.
//!
//! [`Collector::collect_main`] reads as CPython 3.11's `gc_collect_main`: each phase is a
//! function named after what it does, and the comment above it says what holds when it returns.

use std::cell::{Cell, RefCell};
use std::marker::PhantomPinned;
use std::time::Instant;

use bumpalo::collections::Vec as BumpVec;
use bumpalo::Bump;
use refcount::{ContainerHook, ObjPtr, ObjRef, Object, RcHeap, Unraisable, Visit, WeakRefObj};

use crate::header::{gc_header, GARBAGE, GARBAGE_DEAD, GEN_BASE, UNTRACKED, YOUNG};
use crate::stats::{CallbackInfo, GenerationStats, Phase};
use crate::DebugFlags;

/// The number of generations.
pub const NUM_GENERATIONS: usize = 3;
/// CPython's default thresholds.
pub const DEFAULT_THRESHOLDS: [u32; NUM_GENERATIONS] = [700, 10, 10];

/// The upper header flag of containers that are in the array of a running collection: lets
/// the edge visitor test membership with one load of the child's header.
const IN_COLLECTION: u16 = 1;

/// A `gc.callbacks` function.
pub type GcCallback = Box<dyn FnMut(Phase, &CallbackInfo)>;

/// The collector's state. Lives in a `Box` whose address the refcount tier keeps as its
/// container hook.
pub(crate) struct Collector {
    pub(crate) rc: *const RcHeap,
    /// Generations 0, 1, 2 and the permanent one, as arrays: a tracked object knows its slot,
    /// so untracking is a swap-remove.
    gens: [RefCell<Vec<ObjPtr>>; 4],
    /// The objects of a running collection (`None`: died during it).
    young: RefCell<Vec<Option<ObjPtr>>>,
    counts: Cell<[u32; NUM_GENERATIONS]>,
    pub(crate) thresholds: Cell<[u32; NUM_GENERATIONS]>,
    pub(crate) enabled: Cell<bool>,
    collecting: Cell<bool>,
    pub(crate) debug: Cell<DebugFlags>,
    pub(crate) stats: Cell<[GenerationStats; NUM_GENERATIONS]>,
    pub(crate) long_lived_total: Cell<u64>,
    pub(crate) long_lived_pending: Cell<u64>,
    pub(crate) last_pause_ns: Cell<u64>,
    /// `gc.garbage`: each entry owns a reference.
    pub(crate) garbage: RefCell<Vec<ObjPtr>>,
    pub(crate) callbacks: RefCell<Vec<(u64, GcCallback)>>,
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
            young: RefCell::new(Vec::new()),
            counts: Cell::new([0; NUM_GENERATIONS]),
            thresholds: Cell::new(DEFAULT_THRESHOLDS),
            enabled: Cell::new(true),
            collecting: Cell::new(false),
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
    /// leaving out dying ones (count 0: see [`gather_young`](Self::gather_young)): a new
    /// reference would resurrect an object whose deallocation is under way.
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
        let h = unsafe { gc_header(obj) };
        let mut list = self.gens[gen].borrow_mut();
        h.gen.set(GEN_BASE + gen as u8);
        h.index.set(list.len() as u32);
        list.push(obj);
    }

    /// Takes a container out of whatever holds it (a generation or a running collection).
    ///
    /// # Safety
    /// `obj` must be a live container.
    pub(crate) unsafe fn unlink(&self, obj: ObjPtr) {
        // SAFETY: contract.
        let h = unsafe { gc_header(obj) };
        let index = h.index.get() as usize;
        match h.gen.get() {
            UNTRACKED => return,
            GARBAGE | GARBAGE_DEAD => {
                // Out of every array already (the unreachable list is not an index).
                // SAFETY: obj is live.
                let header = unsafe { obj.header() };
                header.set_upper_flags(header.upper_flags() & !IN_COLLECTION);
            }
            YOUNG => {
                self.young.borrow_mut()[index] = None;
                // SAFETY: obj is live.
                let header = unsafe { obj.header() };
                header.set_upper_flags(header.upper_flags() & !IN_COLLECTION);
            }
            g => {
                let mut list = self.gens[(g - GEN_BASE) as usize].borrow_mut();
                list.swap_remove(index);
                if let Some(&moved) = list.get(index) {
                    // SAFETY: every object in a generation is a live container.
                    unsafe { gc_header(moved) }.index.set(index as u32);
                }
            }
        }
        h.gen.set(UNTRACKED);
    }

    /// The generation of a tracked container (0..=3), or None.
    ///
    /// # Safety
    /// `obj` must be a live container.
    pub(crate) unsafe fn generation_of(&self, obj: ObjPtr) -> Option<usize> {
        // SAFETY: contract.
        match unsafe { gc_header(obj) }.gen.get() {
            UNTRACKED => None,
            YOUNG | GARBAGE | GARBAGE_DEAD => Some(NUM_GENERATIONS + 1), // in a running collection
            g => Some((g - GEN_BASE) as usize),
        }
    }

    /// Moves every object of generation `from` to the end of generation `to`.
    pub(crate) fn merge(&self, from: usize, to: usize) {
        if from == to {
            return;
        }
        let moved = std::mem::take(&mut *self.gens[from].borrow_mut());
        let mut dest = self.gens[to].borrow_mut();
        for obj in moved {
            // SAFETY: tracked objects are live containers.
            let h = unsafe { gc_header(obj) };
            h.gen.set(GEN_BASE + to as u8);
            h.index.set(dest.len() as u32);
            dest.push(obj);
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
        self.merge(3, NUM_GENERATIONS - 1);
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
        self.collecting.set(false);
        m + n
    }

    fn invoke_callbacks(&self, phase: Phase, info: CallbackInfo) {
        // Taken out while they run: a callback may add or remove callbacks.
        let mut list = std::mem::take(&mut *self.callbacks.borrow_mut());
        for (_, cb) in &mut list {
            if let Err(panic) =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| cb(phase, &info)))
            {
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                self.rc().report_unraisable(Unraisable {
                    context: "gc callback",
                    type_name: "callback",
                    message,
                });
            }
        }
        let mut slot = self.callbacks.borrow_mut();
        let added = std::mem::take(&mut *slot);
        *slot = list;
        slot.extend(added);
    }

    /// CPython's `gc_collect_main`. Returns (collected, uncollectable).
    fn collect_main(&self, g: usize) -> (u64, u64) {
        let start = Instant::now();
        let span = tracing::debug_span!(
            "gc_collect",
            generation = g,
            examined = tracing::field::Empty,
            collected = tracing::field::Empty,
            uncollectable = tracing::field::Empty,
            elapsed_ns = tracing::field::Empty
        );
        let _enter = span.enter();
        let debug = self.debug.get();
        let mut bump = self.scratch.take().unwrap_or_default();

        self.update_counts(g);
        let old = (g + 1).min(NUM_GENERATIONS - 1);
        let examined = self.gather_young(g);
        if debug.contains(DebugFlags::STATS) {
            tracing::info!(target: "gengc", generation = g, examined,
                objects = ?[0, 1, 2].map(|i| self.generation_len(i)), "gc: collecting");
        }

        self.subtract_refs();
        self.move_unreachable(&bump);
        // Every young object is now marked iff something outside the young set reaches it.
        let (unreachable, special) = self.take_unreachable(&bump);
        // The garbage is out of the young array (its objects say GARBAGE), with a reference
        // held to each, so nothing it holds is freed while finalizers and callbacks run.

        let mut n = 0;
        // Legacy finalizers make cycles uncollectable because they must not run on them; a
        // heap being torn down runs no finalizer at all, so then they are ordinary garbage.
        if special.legacy_finalizers && self.rc().user_code_enabled() {
            n = self.move_legacy_finalizers(&unreachable, &bump);
        }
        let m = unreachable.len() as u64 - n as u64;
        if debug.contains(DebugFlags::COLLECTABLE) {
            for &o in unreachable.iter().filter(|o| self.is_garbage(**o)) {
                // SAFETY: we hold a reference to every unreachable object.
                let ty = unsafe { o.type_info() }.name;
                tracing::info!(target: "gengc", "gc: collectable <{ty} {:#x}>", o.addr());
            }
        }
        if special.weakrefs || special.finalizers {
            let user_code_before = self.user_code_runs();
            if special.weakrefs {
                self.handle_weakrefs(&unreachable, &bump);
            }
            if special.finalizers {
                self.finalize_garbage(&unreachable);
            }
            // Finalizers and callbacks may have stored references to garbage somewhere live:
            // recompute which of it is still unreachable; what a resurrected object reaches
            // survives with it. When no such code ran, nothing can have changed.
            if self.user_code_runs() != user_code_before {
                self.handle_resurrected_objects(&unreachable, &bump);
            }
        }
        self.delete_garbage(&unreachable, debug.contains(DebugFlags::SAVEALL));
        drop(unreachable);
        let survivors = self.move_survivors(old);

        if g == NUM_GENERATIONS - 2 {
            self.long_lived_pending
                .set(self.long_lived_pending.get() + survivors as u64);
        } else if g == NUM_GENERATIONS - 1 {
            self.long_lived_pending.set(0);
            self.long_lived_total.set(survivors as u64);
            // CPython clears its free lists on a full collection.
            self.rc().allocator().clear_free_lists();
        }
        let mut stats = self.stats.get();
        stats[g].collections += 1;
        stats[g].collected += m;
        stats[g].uncollectable += n as u64;
        self.stats.set(stats);

        bump.reset();
        self.scratch.set(Some(bump));
        let elapsed = start.elapsed().as_nanos() as u64;
        self.last_pause_ns.set(elapsed);
        span.record("examined", examined);
        span.record("collected", m);
        span.record("uncollectable", n);
        span.record("elapsed_ns", elapsed);
        if debug.contains(DebugFlags::STATS) {
            tracing::info!(target: "gengc", "gc: done, {m} unreachable, {n} uncollectable, {:.4}s elapsed",
                elapsed as f64 / 1e9);
        }
        (m, n as u64)
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

    /// Moves generations `0..=g` into the young array (CPython's merge, then `update_refs`).
    /// On return every young object has `gen == YOUNG`, its index in the array, the
    /// IN_COLLECTION flag, `reachable` false, and `gc_refs` equal to its reference count.
    ///
    /// Dying objects stay where they are: a container whose count is 0 is being deallocated
    /// (it waits on the refcount tier's pending stack, or runs its weakref callbacks), which is
    /// possible when a finalizer or callback of that deallocation collects. CPython untracks such
    /// objects before its trashcan defers them; here they are left out of the collection, their
    /// references counting as references from outside (they are released when the object's
    /// turn comes).
    fn gather_young(&self, g: usize) -> usize {
        let mut young = self.young.borrow_mut();
        young.clear();
        young.reserve((0..=g).map(|gen| self.gens[gen].borrow().len()).sum());
        for gen in (0..=g).rev() {
            // Retained, not taken: each generation keeps its capacity for the next collection.
            let mut list = self.gens[gen].borrow_mut();
            let mut dying = false;
            list.retain(|&obj| {
                // SAFETY: tracked objects are live containers.
                let (h, header) = unsafe { (gc_header(obj), obj.header()) };
                if header.refcnt() == 0 {
                    dying = true;
                    return true;
                }
                h.gen.set(YOUNG);
                h.index.set(young.len() as u32);
                h.reachable.set(false);
                h.gc_refs.set(i64::from(header.refcnt()));
                header.set_upper_flags(header.upper_flags() | IN_COLLECTION);
                young.push(Some(obj));
                false
            });
            if dying {
                for (i, &obj) in list.iter().enumerate() {
                    // SAFETY: a dying container is live until the refcount tier frees it.
                    unsafe { gc_header(obj) }.index.set(i as u32);
                }
            }
        }
        young.len()
    }

    /// Subtracts every reference between young objects. On return `gc_refs` of a young object
    /// counts the references from outside the young set; above zero means reachable from
    /// outside.
    fn subtract_refs(&self) {
        let mut visit = |child: ObjPtr| {
            // SAFETY: visited pointers are live objects (Visit only takes handles).
            let header = unsafe { child.header() };
            if header.upper_flags() & IN_COLLECTION != 0 {
                // SAFETY: only young containers carry the flag.
                let h = unsafe { gc_header(child) };
                h.gc_refs.set(h.gc_refs.get() - 1);
            }
        };
        let young = self.young.borrow();
        for (i, obj) in young.iter().enumerate() {
            if let Some(Some(ahead)) = young.get(i + PREFETCH_DISTANCE) {
                prefetch_children(*ahead);
            }
            if let Some(obj) = obj {
                // SAFETY: young objects are live; the visitor changes nothing but gc_refs.
                unsafe { refcount::trace(*obj, &mut Visit::new(&mut visit)) };
            }
        }
    }

    /// Finds which young objects are reachable: those with outside references (`gc_refs > 0`,
    /// the roots) and everything they reach through young objects. An object counts as
    /// reachable when `gc_refs > 0` or it is marked; only objects without outside references
    /// need marking, so the walk stops as soon as none is left to find (a live heap whose
    /// objects all have outside references is settled without tracing at all). No recursion:
    /// as the scan meets a root it drains an explicit stack (scratch memory) before going on.
    fn move_unreachable(&self, bump: &Bump) {
        let young = self.young.borrow();
        let mut to_find = young
            .iter()
            .flatten()
            // SAFETY: young objects are live containers.
            .filter(|o| unsafe { gc_header(**o) }.gc_refs.get() <= 0)
            .count();
        let mut stack = BumpVec::new_in(bump);
        for obj in young.iter().flatten() {
            if to_find == 0 {
                break;
            }
            // SAFETY: young objects are live containers.
            if unsafe { gc_header(*obj) }.gc_refs.get() > 0 {
                stack.push(*obj);
                to_find -= self.propagate_reachable(&mut stack);
            }
        }
    }

    /// Marks what the stacked objects reach through young objects that are neither marked nor
    /// roots (`gc_refs > 0`). Returns how many it marked.
    fn propagate_reachable(&self, stack: &mut BumpVec<'_, ObjPtr>) -> usize {
        let mut marked = 0;
        while let Some(obj) = stack.pop() {
            let mut visit = |child: ObjPtr| {
                // SAFETY: visited pointers are live objects.
                let header = unsafe { child.header() };
                if header.upper_flags() & IN_COLLECTION != 0 {
                    // SAFETY: only young containers carry the flag.
                    let h = unsafe { gc_header(child) };
                    if !h.reachable.get() && h.gc_refs.get() <= 0 && h.gen.get() != GARBAGE_DEAD {
                        h.reachable.set(true);
                        marked += 1;
                        stack.push(child);
                    }
                }
            };
            // SAFETY: obj is live; the visitor only marks.
            unsafe { refcount::trace(obj, &mut Visit::new(&mut visit)) };
        }
        marked
    }

    /// Whether a young object was found reachable.
    fn is_reachable(h: &crate::header::GcHeader) -> bool {
        h.reachable.get() || h.gc_refs.get() > 0
    }

    /// Whether an object found unreachable is still garbage (not resurrected, not
    /// uncollectable, not saved).
    fn is_garbage(&self, obj: ObjPtr) -> bool {
        // SAFETY: called on containers of the unreachable list, to which we hold references.
        unsafe { gc_header(obj) }.gen.get() == GARBAGE
    }

    /// Takes the unmarked young objects out of the young array into the garbage list (gen
    /// GARBAGE), with one reference taken to each, and says which special handling the
    /// garbage needs.
    fn take_unreachable<'b>(&self, bump: &'b Bump) -> (BumpVec<'b, ObjPtr>, Special) {
        let mut young = self.young.borrow_mut();
        let mut out = BumpVec::with_capacity_in(young.len() / 4, bump);
        let mut special = Special::default();
        for slot in young.iter_mut() {
            let Some(obj) = *slot else { continue };
            // SAFETY: young objects are live containers.
            let (h, header) = unsafe { (gc_header(obj), obj.header()) };
            if !Self::is_reachable(h) {
                // SAFETY: a live object; the reference is given back in delete_garbage.
                unsafe { obj.incref() };
                h.gen.set(GARBAGE);
                *slot = None;
                let ty = header.type_info();
                special.legacy_finalizers |= ty.legacy_finalizer;
                special.finalizers |= ty.has_finalizer() && !header.is_finalized();
                special.weakrefs |=
                    header.has_weakrefs() || std::ptr::eq(ty, WeakRefObj::type_info());
                out.push(obj);
            }
        }
        (out, special)
    }

    /// Puts a garbage object back among the survivors (it was resurrected, is uncollectable,
    /// or is saved in `garbage`).
    fn revive(&self, obj: ObjPtr) {
        // SAFETY: a live container of the unreachable list (we hold a reference).
        let h = unsafe { gc_header(obj) };
        let mut young = self.young.borrow_mut();
        h.gen.set(YOUNG);
        h.reachable.set(true);
        h.index.set(young.len() as u32);
        young.push(Some(obj));
    }

    /// Objects with legacy finalizers, and everything they reach among the garbage, are
    /// uncollectable: they go to `garbage` and survive. Returns how many.
    fn move_legacy_finalizers(&self, unreachable: &[ObjPtr], bump: &Bump) -> usize {
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
        let mut n = 0;
        for &obj in unreachable {
            // SAFETY: as above.
            if unsafe { gc_header(obj) }.reachable.get() {
                // SAFETY: a live object; garbage owns the new reference.
                unsafe { obj.incref() };
                self.garbage.borrow_mut().push(obj);
                self.revive(obj);
                n += 1;
                if self.debug.get().contains(DebugFlags::UNCOLLECTABLE) {
                    // SAFETY: live.
                    let ty = unsafe { obj.type_info() }.name;
                    tracing::info!(target: "gengc", "gc: uncollectable <{ty} {:#x}>", obj.addr());
                }
            }
        }
        n
    }

    /// Clears every weak reference to the garbage (upgrading gives nothing from now on), then
    /// runs the callbacks of the weakrefs that are not garbage themselves.
    ///
    /// A weakref that is garbage itself is detached from its referent first (CPython,
    /// bpo-38006): its referent may be outside the garbage and die while the garbage is
    /// deleted, and its callback must not run then, on a weakref already cleared.
    fn handle_weakrefs(&self, unreachable: &[ObjPtr], bump: &Bump) {
        let rc = self.rc();
        let mut callbacks = BumpVec::new_in(bump);
        for &obj in unreachable.iter().filter(|o| self.is_garbage(**o)) {
            // SAFETY: we hold a reference to obj; the handle borrows it without count changes.
            let handle = std::mem::ManuallyDrop::new(unsafe { ObjRef::from_owned(obj) });
            rc.detach_weakref(&handle);
            // SAFETY: we hold a reference to obj.
            for wr in unsafe { rc.clear_weakrefs(obj) } {
                // A weakref is a container: in the garbage iff its header says so.
                if !self.is_garbage(wr.as_ptr()) {
                    callbacks.push(wr);
                }
            }
        }
        for wr in callbacks {
            rc.run_weakref_callback(wr);
        }
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
            let header = unsafe { child.header() };
            if header.upper_flags() & IN_COLLECTION != 0 {
                // SAFETY: only collected containers carry the flag.
                let h = unsafe { gc_header(child) };
                if h.gen.get() == GARBAGE {
                    h.gc_refs.set(h.gc_refs.get() - 1);
                }
            }
        };
        for obj in garbage() {
            // SAFETY: live; the visitor only counts.
            unsafe { refcount::trace(obj, &mut Visit::new(&mut visit)) };
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
            let h = unsafe { gc_header(obj) };
            if h.gen.get() == GARBAGE && h.reachable.get() {
                self.revive(obj);
            }
        }
    }

    /// Breaks the garbage's cycles: each object's `clear` drops its references (or, with
    /// DEBUG_SAVEALL, the object goes to `garbage` instead); then the references taken in
    /// `take_unreachable` are given back, and reference counting frees the garbage, all deaths
    /// deferred to one deallocation loop.
    fn delete_garbage(&self, unreachable: &[ObjPtr], save_all: bool) {
        let rc = self.rc();
        // Every death inside is deferred to one loop at the end, so no object of the list is
        // freed while the list is walked: each can be cleared and let go in the same pass.
        rc.defer_frees(|| {
            for (i, &obj) in unreachable.iter().enumerate() {
                if let Some(&ahead) = unreachable.get(i + PREFETCH_DISTANCE) {
                    prefetch_children(ahead);
                }
                if self.is_garbage(obj) {
                    if save_all {
                        // SAFETY: live; garbage owns the new reference.
                        unsafe { obj.incref() };
                        self.garbage.borrow_mut().push(obj);
                        self.revive(obj);
                    } else {
                        // No longer garbage to the collector's visitors: it is being cleared.
                        // SAFETY: we hold a reference to obj.
                        unsafe { gc_header(obj) }.gen.set(GARBAGE_DEAD);
                        // SAFETY: as above; the handle borrows it without count changes.
                        let handle =
                            std::mem::ManuallyDrop::new(unsafe { ObjRef::from_owned(obj) });
                        rc.clear_refs(&handle);
                    }
                }
                // SAFETY: take_unreachable took one reference to each; given back once. A
                // death it causes waits for the end of defer_frees.
                unsafe { obj.decref() };
            }
        });
    }

    /// Everything left in the young array (reachable, resurrected, uncollectable, saved, or
    /// surviving its clear) moves to generation `old`. Returns how many.
    fn move_survivors(&self, old: usize) -> usize {
        let mut young = std::mem::take(&mut *self.young.borrow_mut());
        let mut dest = self.gens[old].borrow_mut();
        dest.reserve(young.len());
        let before = dest.len();
        for obj in young.iter().flatten() {
            // SAFETY: objects still in the young array are live containers.
            let (h, header) = unsafe { (gc_header(*obj), obj.header()) };
            h.gen.set(GEN_BASE + old as u8);
            h.index.set(dest.len() as u32);
            h.reachable.set(false);
            header.set_upper_flags(header.upper_flags() & !IN_COLLECTION);
            dest.push(*obj);
        }
        let moved = dest.len() - before;
        drop(dest);
        // Keep the array's capacity for the next collection.
        young.clear();
        *self.young.borrow_mut() = young;
        moved
    }
}

/// What the garbage of a collection needs beyond clearing.
#[derive(Default)]
struct Special {
    legacy_finalizers: bool,
    finalizers: bool,
    weakrefs: bool,
}

/// How many objects ahead the scans prefetch: enough to hide a memory access, few enough that
/// the prefetched lines are still in cache when used.
const PREFETCH_DISTANCE: usize = 8;

/// Asks the CPU to start loading the collector's header of each child of `obj`.
fn prefetch_children(obj: ObjPtr) {
    let mut visit = |child: ObjPtr| prefetch(child.as_non_null().as_ptr().cast());
    // SAFETY: obj is a live object of the collection (young or held garbage); the visitor
    // only issues prefetches, which read nothing the program sees.
    unsafe { refcount::trace(obj, &mut Visit::new(&mut visit)) };
}

#[inline(always)]
fn prefetch(addr: *const u8) {
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    // SAFETY: a prefetch is a hint: it never faults and has no effect the program can observe,
    // whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch(
            addr.cast::<i8>().wrapping_sub(16),
            std::arch::x86_64::_MM_HINT_T0,
        )
    };
    #[cfg(not(all(target_arch = "x86_64", not(miri))))]
    let _ = addr;
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
