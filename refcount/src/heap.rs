//! [`RcHeap`]: allocation of objects, and their deallocation without recursion.
//!
//! Deallocation is CPython's trashcan, made unconditional: the first object whose count reaches
//! zero is freed by a loop; every object that dies while the loop runs (a child released by a
//! payload's drop, an object dropped by a finalizer or a weakref callback) is pushed on the
//! heap's `pending` stack instead of being freed by a nested call. So freeing a chain of ten
//! million objects takes ten million turns of one loop and one frame of stack.
//!
//! A payload's drop is user code and may panic. As when an element of a slice panics in its
//! drop, the deallocation goes on: the object whose drop panicked is freed all the same (its
//! payload counts as dropped), every other death and every member of a
//! [`free_garbage`](RcHeap::free_garbage) call is freed, and the first panic resumes when the
//! loop ends, the heap out of the loop and its counters consistent. Later panics of the same
//! loop are dropped (their message was printed by the panic hook when they happened).

use std::cell::{Cell, RefCell};
use std::marker::PhantomPinned;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::ptr::NonNull;

use obj_alloc::{prefetch, KindId, ObjAlloc, ObjConfig, Placement, Policy};
use raw_alloc::OutOfMemory;

use crate::handle::{ObjPtr, ObjRef, Ref};
use crate::header::{ObjHeader, FINALIZED, HAS_WEAKREFS, HEADER_SIZE};
use crate::panics::{drop_panic, panic_message, resume_or_drop, FirstPanic, PanicPayload};
use crate::stats::RcStats;
use crate::type_info::{items_offset, Object, TypeInfo, VarObject};
use crate::weak::WeakTable;

/// Bytes in front of a direct block's object (pre-header and header), holding the heap pointer:
/// a direct block has no arena header to find its heap through.
pub const DIRECT_PREFIX: usize = 16;

/// What the tier above wants to hear about containers (the collector tracks them).
pub trait ContainerHook {
    /// A container was just made: its payload is initialised and its count is 1.
    fn on_alloc(&self, obj: ObjPtr);
    /// A container's count reached zero; its payload is about to be dropped and its block freed.
    fn on_dealloc(&self, obj: ObjPtr);
}

/// A failure that cannot propagate to anyone: a finalizer or a weakref callback that panicked.
/// (CPython's `sys.unraisablehook`.)
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unraisable {
    /// What was running: `"finalizer"` or `"weakref callback"`.
    pub context: &'static str,
    /// The name of the object's type.
    pub type_name: &'static str,
    /// The panic message.
    pub message: String,
}

/// The function that receives [`Unraisable`] failures.
pub type UnraisableHook = Box<dyn FnMut(&Unraisable)>;

#[derive(Clone, Copy, Default)]
pub(crate) struct Counters {
    pub allocated: u64,
    pub freed: u64,
    pub deferred: u64,
    pub max_pending: u64,
    pub finalizers_run: u64,
    pub resurrected: u64,
    pub weakrefs_cleared: u64,
    pub callbacks_run: u64,
    pub unraisable: u64,
}

/// A private heap of reference-counted objects.
///
/// The heap is pinned (its address is written into its arenas so that a dying object finds it);
/// handles borrow it, so it outlives every handle. Dropping the heap releases all its memory;
/// objects still alive then (leaked, or in uncollected cycles) are not dropped.
///
/// ```
/// use refcount::{Object, RcHeap, Trace, TypeInfo};
/// struct Num(i64);
/// impl Trace for Num {}
/// static NUM: TypeInfo = TypeInfo::new::<Num>("num");
/// impl Object for Num { fn type_info() -> &'static TypeInfo { &NUM } }
///
/// let heap = RcHeap::new(Default::default()).unwrap();
/// let a = heap.alloc(Num(7)).unwrap();
/// let b = a.clone();
/// assert_eq!((a.0, a.refcnt()), (7, 2));
/// drop((a, b));
/// assert_eq!(heap.stats().live, 0);
/// ```
pub struct RcHeap {
    alloc: ObjAlloc,
    /// Whether the deallocation loop is running (nested deaths go to `pending`).
    deallocating: Cell<bool>,
    pending: RefCell<Vec<ObjPtr>>,
    /// The first panic of a payload drop in the running deallocation loop, resumed when the
    /// loop ends (None outside a loop).
    held_panic: FirstPanic,
    /// The lengths of the variable-size objects of a [`free_garbage`](Self::free_garbage) call,
    /// read after their payloads are gone (kept for its capacity).
    garbage_lens: Cell<Vec<usize>>,
    /// The children of a garbage object, gathered to be prefetched (kept for its capacity).
    garbage_children: Cell<Vec<ObjPtr>>,
    /// The types of a [`free_garbage`](Self::free_garbage) call's members, in order, as runs
    /// of one type (kept for its capacity): their blocks are freed without reading a header.
    garbage_types: Cell<Vec<(&'static TypeInfo, usize)>>,
    pub(crate) weak: WeakTable,
    /// The allocation kind of each type, by [`TypeInfo::index`].
    kinds: RefCell<Vec<Option<KindId>>>,
    hook: Cell<Option<NonNull<dyn ContainerHook>>>,
    unraisable: RefCell<Option<UnraisableHook>>,
    pub(crate) counters: Cell<Counters>,
    context: Cell<*const ()>,
    /// Whether finalizers and weakref callbacks may run (off while a heap is torn down).
    user_code: Cell<bool>,
    _pinned: PhantomPinned,
}

impl RcHeap {
    /// Makes an empty heap.
    pub fn new(config: ObjConfig) -> Result<Pin<Box<RcHeap>>, obj_alloc::ConfigError> {
        let heap = Box::pin(RcHeap {
            alloc: ObjAlloc::new(config)?,
            deallocating: Cell::new(false),
            pending: RefCell::new(Vec::new()),
            held_panic: FirstPanic::new(),
            garbage_lens: Cell::new(Vec::new()),
            garbage_children: Cell::new(Vec::new()),
            garbage_types: Cell::new(Vec::new()),
            weak: WeakTable::default(),
            kinds: RefCell::new(Vec::new()),
            hook: Cell::new(None),
            unraisable: RefCell::new(None),
            counters: Cell::new(Counters::default()),
            context: Cell::new(std::ptr::null()),
            user_code: Cell::new(true),
            _pinned: PhantomPinned,
        });
        let owner: *const RcHeap = &*heap;
        heap.alloc.set_owner(owner.cast());
        Ok(heap)
    }

    /// The object allocator underneath.
    pub fn allocator(&self) -> &ObjAlloc {
        &self.alloc
    }

    /// Stores an opaque pointer for the runtime built on this heap (the façade keeps its own
    /// state there, so that a finalizer holding only an object can reach it).
    pub fn set_context(&self, context: *const ()) {
        self.context.set(context)
    }

    /// The pointer given to [`set_context`](Self::set_context) (null if none).
    pub fn context(&self) -> *const () {
        self.context.get()
    }

    /// Turns finalizers and weakref callbacks off (or on again). A heap being torn down turns
    /// them off: objects still die and weak references are still cleared, but no user code
    /// runs against a heap that is going away.
    pub fn set_user_code_enabled(&self, on: bool) {
        self.user_code.set(on)
    }

    /// Whether finalizers and weakref callbacks may run.
    pub fn user_code_enabled(&self) -> bool {
        self.user_code.get()
    }

    /// Installs the hook that hears of every container's birth and death.
    ///
    /// # Safety
    /// `hook` must stay valid until it is replaced or the heap is dropped.
    pub unsafe fn set_container_hook(&self, hook: Option<NonNull<dyn ContainerHook>>) {
        self.hook.set(hook);
    }

    /// Installs the function that receives failed finalizers and callbacks. Without one they
    /// are logged as `tracing` errors. Either way they are counted in the stats.
    pub fn set_unraisable_hook(&self, hook: Option<UnraisableHook>) {
        *self.unraisable.borrow_mut() = hook;
    }

    fn bump(&self, f: impl FnOnce(&mut Counters)) {
        let mut c = self.counters.get();
        f(&mut c);
        self.counters.set(c);
    }

    /// The allocation kind of a type: registered with the obj-alloc tier on first use, with
    /// the type's own policy unless [`set_type_policy`](Self::set_type_policy) chose another.
    /// Every type gets a kind, so the allocator's stats count objects per type.
    #[inline]
    fn kind_of(&self, ty: &'static TypeInfo) -> KindId {
        if let Some(Some(k)) = self.kinds.borrow().get(ty.index()) {
            return *k;
        }
        self.register_type(ty, ty.policy)
    }

    #[cold]
    fn register_type(&self, ty: &'static TypeInfo, policy: Policy) -> KindId {
        let k = self.alloc.register_kind(ty.name, policy);
        let mut kinds = self.kinds.borrow_mut();
        if kinds.len() <= ty.index() {
            kinds.resize(ty.index() + 1, None);
        }
        kinds[ty.index()] = Some(k);
        k
    }

    /// Chooses the allocation policy of a type in this heap (free-list capacities are a heap's
    /// configuration). Returns false, changing nothing, once the type has been allocated.
    pub fn set_type_policy(&self, ty: &'static TypeInfo, policy: Policy) -> bool {
        if let Some(Some(_)) = self.kinds.borrow().get(ty.index()) {
            return false;
        }
        self.register_type(ty, policy);
        true
    }

    /// Moves `value` into a new object with a count of 1.
    ///
    /// Fails with [`OutOfMemory`] under the heap limit; the heap is unchanged then.
    pub fn alloc<'h, T: Object + 'h>(&'h self, value: T) -> Result<Ref<'h, T>, OutOfMemory> {
        let ty = T::type_info();
        debug_assert!(!ty.is_var(), "variable-size types are made by alloc_var");
        let ptr = self.alloc_raw(ty, 0)?;
        // SAFETY: alloc_raw returned a header followed by payload_size = size_of::<T>() bytes,
        // aligned to align_of::<T>() (8, or 16 when T needs it: TypeInfo rounds its size to 16).
        unsafe { ptr.payload().cast::<T>().write(value) };
        self.born(ty, ptr);
        // SAFETY: a fresh object with count 1, which the handle takes over.
        Ok(unsafe { Ref::from_owned(ptr) })
    }

    /// Moves `value` into a new variable-size object followed by clones of `items` (a tuple's
    /// elements, a string's bytes), with a count of 1.
    ///
    /// # Panics
    /// If `value.len()` is not `items.len()` (a bug in the caller, not bad input).
    pub fn alloc_var<'h, T: VarObject + 'h>(
        &'h self,
        value: T,
        items: &[T::Item],
    ) -> Result<Ref<'h, T>, OutOfMemory>
    where
        T::Item: Clone,
    {
        self.alloc_var_with(value, |i| items[i].clone())
    }

    /// Moves `value` into a new variable-size object whose `value.len()` items are made by
    /// `item(0)`, `item(1)`, ... in order.
    pub fn alloc_var_with<'h, T: VarObject + 'h>(
        &'h self,
        value: T,
        mut item: impl FnMut(usize) -> T::Item,
    ) -> Result<Ref<'h, T>, OutOfMemory> {
        let len = value.len();
        let ty = T::type_info();
        let ptr = self.alloc_raw(ty, len)?;
        // SAFETY: alloc_raw returned room for the payload and len items at items_offset, all
        // aligned (TypeInfo::new_var checked the alignments). Should `item` panic, the block
        // leaks (never freed, never read), which is safe.
        unsafe {
            let payload = ptr.payload();
            let first = payload.add(items_offset::<T>()).cast::<T::Item>();
            for i in 0..len {
                first.add(i).write(item(i));
            }
            payload.cast::<T>().write(value);
        }
        self.born(ty, ptr);
        // SAFETY: a fresh object with count 1, which the handle takes over.
        Ok(unsafe { Ref::from_owned(ptr) })
    }

    /// Makes an object whose payload is written by `init` in place (for payloads built from
    /// raw parts). `init` receives the uninitialised payload of `ty.payload_size` bytes.
    ///
    /// # Safety
    /// `init` must leave a valid payload of `ty`'s type in place.
    pub unsafe fn alloc_with<'h>(
        &'h self,
        ty: &'static TypeInfo,
        init: impl FnOnce(NonNull<u8>),
    ) -> Result<ObjRef<'h>, OutOfMemory> {
        debug_assert!(!ty.is_var(), "variable-size types are made by alloc_var");
        let ptr = self.alloc_raw(ty, 0)?;
        init(ptr.payload());
        self.born(ty, ptr);
        // SAFETY: a fresh object with count 1, which the handle takes over.
        Ok(unsafe { ObjRef::from_owned(ptr) })
    }

    #[inline]
    fn born(&self, ty: &'static TypeInfo, ptr: ObjPtr) {
        self.bump(|c| c.allocated += 1);
        if ty.container {
            if let Some(hook) = self.hook.get() {
                // SAFETY: the hook is valid while installed (set_container_hook's contract).
                unsafe { hook.as_ref() }.on_alloc(ptr);
            }
        }
    }

    /// A block with the pre-header (zeroed) and header written; the payload (and `len` items)
    /// uninitialised.
    #[inline]
    fn alloc_raw(&self, ty: &'static TypeInfo, len: usize) -> Result<ObjPtr, OutOfMemory> {
        // At most isize::MAX: adding the direct prefix below cannot overflow.
        let size = ty
            .checked_object_size(len)
            .ok_or_else(OutOfMemory::too_large)?;
        let (block, locator, prefix) = match self.alloc.placement(size) {
            Placement::Arena { arena_shift } => (self.alloc_block(ty, len, size)?, arena_shift, 0),
            Placement::Direct => {
                // (block_layout says the same of this block)
                let block = self.alloc_block(ty, len, size + DIRECT_PREFIX)?;
                let owner: *const RcHeap = self;
                // SAFETY: the block has DIRECT_PREFIX bytes in front of the object, ours to
                // write; its first word is the heap pointer `RcHeap::of` reads.
                unsafe { block.cast::<*const RcHeap>().write(owner) };
                (block, 0, DIRECT_PREFIX)
            }
        };
        let pre = ty.pre_header();
        // SAFETY: the block holds prefix + pre + header + payload bytes; the pre-header is
        // zeroed for the tier above (a typed store: a runtime-length memset is a libc call)
        // and the header written.
        unsafe {
            let start = block.add(prefix);
            if ty.container {
                const _: () = assert!(crate::CONTAINER_PRE_HEADER == 16);
                start.cast::<[u64; 2]>().write([0; 2]);
            }
            let header = start.add(pre).cast::<ObjHeader>();
            header.write(ObjHeader::new(ty, u32::from(locator)));
            Ok(ObjPtr::from_header(header))
        }
    }

    #[inline]
    fn alloc_block(
        &self,
        ty: &'static TypeInfo,
        len: usize,
        size: usize,
    ) -> Result<NonNull<u8>, OutOfMemory> {
        self.alloc.alloc_kind_len(self.kind_of(ty), len, size)
    }

    /// The heap an object belongs to.
    ///
    /// # Safety
    /// `obj` must be a live object.
    pub unsafe fn of(obj: ObjPtr) -> *const RcHeap {
        // SAFETY: obj is live (contract).
        let header = unsafe { obj.header() };
        match header.locator() {
            // SAFETY: a direct block's heap pointer sits DIRECT_PREFIX bytes before the
            // object's pre-header, in the same block (alloc_raw).
            0 => unsafe {
                let pre = header.type_info().pre_header();
                let start = obj.as_non_null().cast::<u8>().sub(pre + DIRECT_PREFIX);
                start.cast::<*const RcHeap>().read()
            },
            // SAFETY: the object was carved from an arena of 1 << shift bytes, whose header
            // holds the heap pointer (set in `new`).
            shift => unsafe { ObjAlloc::arena_owner(obj.as_non_null().cast(), shift as u8).cast() },
        }
    }

    /// Frees an object whose count just reached zero, and everything that dies with it,
    /// without recursion.
    ///
    /// # Safety
    /// `obj` must be a live object whose count is zero, owned by nobody.
    #[cold]
    #[inline(never)]
    pub(crate) unsafe fn dealloc(obj: ObjPtr) {
        // SAFETY: obj is live (contract); its heap outlives it.
        let heap = unsafe { &*RcHeap::of(obj) };
        if heap.deallocating.get() {
            let mut pending = heap.pending.borrow_mut();
            pending.push(obj);
            let depth = pending.len() as u64;
            drop(pending);
            heap.bump(|c| {
                c.deferred += 1;
                c.max_pending = c.max_pending.max(depth);
            });
            return;
        }
        // SAFETY: contract.
        unsafe { heap.deallocate_from(obj) }
    }

    /// The deallocation loop that a handle's drop starts (out of line, so that the deaths it
    /// causes, which only push themselves on the pending stack in `dealloc`, pay for none of
    /// its frame). It is `deallocation_loop` without the catch_unwind around the whole: the
    /// user code of a death (finalizer, weakref callbacks, the payload's drop, the prefetch's
    /// trace) is caught where it runs, so only a bug of the heap or of the container hook
    /// unwinds through here, and the guard still ends the loop then.
    ///
    /// # Safety
    /// As [`dealloc`](Self::dealloc), and `obj` belongs to this heap; no loop runs.
    #[inline(never)]
    unsafe fn deallocate_from(&self, obj: ObjPtr) {
        self.deallocating.set(true);
        let guard = EndLoopOnUnwind(self);
        // SAFETY: obj is live (contract).
        unsafe { self.prefetch_released(obj) };
        // SAFETY: contract.
        unsafe { self.dealloc_one(obj) };
        self.drain_pending();
        std::mem::forget(guard);
        self.deallocating.set(false);
        self.held_panic.resume();
    }

    /// Asks the CPU for the headers of the objects whose references the drop of `obj` is about
    /// to release, when its type says that its trace reports exactly those
    /// ([`TypeInfo::has_release_only_drop`]): the untracking and bookkeeping of its death
    /// then overlap their loads, which in a scattered heap are misses. Only for the object a
    /// deallocation loop starts with (a handle's drop): the deaths it causes are popped from
    /// the pending stack, and a chain's next death has its children next door, where the
    /// trace would cost more than it hides.
    ///
    /// # Safety
    /// `obj` must be live.
    #[inline]
    unsafe fn prefetch_released(&self, obj: ObjPtr) {
        // SAFETY: obj is live (contract).
        let ty = unsafe { obj.type_info() };
        if ty.has_release_only_drop() {
            let mut ask = |child: ObjPtr| prefetch(child.as_non_null().as_ptr().cast());
            // A trace is user code: one that panics is held like a payload drop's panic (this
            // runs inside the loop), and the death goes on.
            if let Err(panic) = catch_unwind(AssertUnwindSafe(|| {
                // SAFETY: a live object; the visitor only prefetches (an exact trace makes and
                // drops no reference).
                unsafe { trace(obj, &mut crate::Visit::new(&mut ask)) }
            })) {
                self.hold_panic(panic);
            }
        }
    }

    /// The deallocation loop: runs `f` with every death deferred to the pending stack, then
    /// frees everything on the stack, then resumes the first panic of a payload drop held
    /// meanwhile ([`hold_panic`](Self::hold_panic)). Called when no loop runs.
    ///
    /// Whatever panics, the heap leaves the loop. A panic of `f` itself (the caller's code in
    /// [`defer_frees`](Self::defer_frees); in [`dealloc`](Self::dealloc), only a bug of the
    /// heap or of the container hook) is not held: it ends the loop at once, and the stack is
    /// not drained then. Freeing would run finalizers, weakref callbacks and the container hook
    /// while the caller's state is whatever the panic left it (the collector defers deaths
    /// because its generations' slots are stale during a sweep); the deaths wait on the stack
    /// for the next loop instead, as they would for an outer one. If `f` panics while a panic
    /// is held, the held one, the first, resumes.
    ///
    /// A loop that ends while its thread is already unwinding (a handle dropped by a
    /// destructor during a panic) drops the panic it held rather than resume it, which would
    /// abort the process: the panic in flight is the first.
    fn deallocation_loop<R>(&self, f: impl FnOnce() -> R) -> R {
        debug_assert!(!self.deallocating.get());
        self.deallocating.set(true);
        let ran = catch_unwind(AssertUnwindSafe(|| {
            let r = f();
            self.drain_pending();
            r
        }));
        // Out of the held slot before any panic is dropped: a payload's drop may free objects,
        // in a loop of their own.
        let held = self.held_panic.take();
        self.deallocating.set(false);
        match (ran, held) {
            (Ok(r), None) => r,
            (Ok(r), Some(first)) => {
                resume_or_drop(first);
                r
            }
            (Err(first), None) => resume_unwind(first),
            (Err(second), Some(first)) => {
                drop_panic(second);
                resume_unwind(first)
            }
        }
    }

    /// Keeps the panic of a payload drop for the end of the running deallocation loop, unless
    /// one is kept already: the first one resumes, later ones are dropped.
    #[cold]
    #[inline(never)]
    fn hold_panic(&self, panic: PanicPayload) {
        debug_assert!(
            self.deallocating.get(),
            "panics are held inside a loop only"
        );
        self.held_panic.keep(panic);
    }

    /// Frees everything on the pending stack, and what dies meanwhile.
    fn drain_pending(&self) {
        loop {
            let next = self.pending.borrow_mut().pop();
            match next {
                // SAFETY: objects on the stack had their count reach zero and are owned by
                // nobody; each is pushed once.
                Some(o) => unsafe { self.dealloc_one(o) },
                None => break,
            }
        }
    }

    /// Runs `f` with every death deferred to the pending stack, then frees them all in one
    /// loop: for a caller that drops many references at once (the collector deleting
    /// garbage), each death is one push instead of one deallocation loop; or for one that
    /// runs user code while no object may be freed under it (see
    /// [`deaths_waiting`](Self::deaths_waiting)). Inside a deallocation already, the deaths
    /// wait for that deallocation's loop instead.
    ///
    /// If a payload drop panics (in the loop after `f`, or in a
    /// [`free_garbage`](Self::free_garbage) that `f` calls), every death is still freed and the
    /// first such panic resumes at the end: of this call, or of the deallocation it runs
    /// inside. If `f` itself panics, the deferring state ends and the panic unwinds out
    /// of this call at once; what died in `f` is not freed under the caller's interrupted
    /// state but waits on the pending stack for the next deallocation loop.
    pub fn defer_frees<R>(&self, f: impl FnOnce() -> R) -> R {
        if self.deallocating.get() {
            return f(); // already inside a deallocation: deaths are deferred anyway
        }
        self.deallocation_loop(f)
    }

    /// Whether a deallocation loop runs: some object's count fell to zero and it is not
    /// freed yet (its finalizer or weakref callbacks may be running, or the deaths it causes
    /// wait on the pending stack).
    pub fn is_deallocating(&self) -> bool {
        self.deallocating.get()
    }

    /// How many objects wait on the pending stack: their count fell to zero inside a
    /// deallocation or [`defer_frees`](Self::defer_frees), and they are not freed yet. A
    /// caller compares two readings to learn whether anything died in between.
    pub fn deaths_waiting(&self) -> usize {
        self.pending.borrow().len()
    }

    /// CPython's `subtype_dealloc`, in order: finalizer (may resurrect), weak references
    /// (cleared, callbacks of live ones run), the container hook (untrack), the payload (its
    /// children die into `pending`), the block.
    ///
    /// # Safety
    /// As [`dealloc`](Self::dealloc), and `obj` belongs to this heap.
    unsafe fn dealloc_one(&self, obj: ObjPtr) {
        // SAFETY: obj is live until its block is freed below.
        let header = unsafe { obj.header() };
        let ty = header.type_info();
        if ty.finalize.is_some() && !header.has(FINALIZED) {
            // SAFETY: obj is live with count 0.
            if unsafe { self.run_finalizer(obj) } {
                return; // resurrected: someone kept a reference
            }
        }
        if header.has(HAS_WEAKREFS) {
            self.clear_weakrefs_and_call_back(obj);
        }
        if ty.container {
            if let Some(hook) = self.hook.get() {
                // SAFETY: the hook is valid while installed.
                unsafe { hook.as_ref() }.on_dealloc(obj);
            }
        }
        // SAFETY: the payload is still live: its length is readable.
        let len = unsafe { ty.len_of(obj.payload()) };
        // The children this payload releases are pushed in the payload's drop order; reversing
        // them makes the loop free them in that order, depth first: the order a recursive drop
        // of a tree (of `Rc`s) would have. (A child shared with a sibling's subtree can die
        // earlier than under `Rc`: all of this payload's releases happen before any subtree is
        // freed. tests/model.rs pins both.)
        let mark = self.pending.borrow().len();
        // A drop that panics has dropped what it could (drop glue drops the remaining fields
        // while unwinding); the object is freed all the same, and the panic waits for the end
        // of the loop.
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| {
            // SAFETY: the payload is live and, with the count at zero, used by nobody else; it
            // is never dropped again, even if this drop panics.
            unsafe { (ty.drop_payload)(obj.payload()) }
        })) {
            self.hold_panic(panic);
        }
        let mut pending = self.pending.borrow_mut();
        if pending.len() > mark + 1 {
            pending[mark..].reverse();
        }
        drop(pending);
        // SAFETY: the object is dead; its block goes back where alloc_raw took it.
        unsafe { self.free_block(obj, ty, len) };
        self.bump(|c| c.freed += 1);
    }

    /// Frees a cycle collector's garbage in bulk: objects that only reference each other, none
    /// with a finalizer left to run or a weak reference (the common case of a collection).
    ///
    /// Each payload is dropped, in the order `garbage` yields the objects, as
    /// `dealloc_one` drops it: references to objects outside the set are
    /// released (what dies of it waits on the pending stack, in recursive-drop order), while
    /// references between members change nothing, because the caller pinned every member's
    /// count at [`IMMORTAL`](crate::IMMORTAL). Only then are the blocks freed, in the same
    /// order (no payload drop can touch a freed member); then what died meanwhile is freed.
    /// Compared with dropping the last reference to each member, no member passes through the
    /// pending stack or the container hook. With `prefetch_children`, the children of the
    /// object a few turns ahead are prefetched before each payload drop: it pays when they are
    /// scattered in memory (each drop then waits on their headers), and costs a trace per
    /// object when they are near.
    ///
    /// A member for which `holds_only_garbage` is true, of a type whose drop only releases
    /// references ([`TypeInfo::has_release_only_drop`]), is freed without dropping its
    /// payload: each of those releases would fall on a pinned member and change nothing. Its
    /// children are then neither prefetched nor read. Returns how many objects were freed.
    ///
    /// A member's drop (or trace, run to prefetch) that panics does not stop the others: every
    /// member is freed, and its block returned, exactly once whether this call returns or
    /// unwinds, so the caller may forget all of them either way. The first panic resumes once
    /// the deaths outside the garbage are freed too: at the end of this call, or, inside a
    /// deallocation or [`defer_frees`](Self::defer_frees) (the collector's), at the end of
    /// that one. Only the caller's own code, `garbage` and `holds_only_garbage`, and a
    /// variable-size member's `len` (whose block cannot be freed without it) are not guarded.
    ///
    /// # Safety
    /// Every call of `garbage` yields the same live objects of this heap, each once. Each has
    /// its count set to `IMMORTAL` by the caller, is referenced by nothing but members of the
    /// set (no handle, no object outside), has no finalizer left to run and no weak
    /// references, has a type that promised an exact trace
    /// ([`TypeInfo::assume_exact_trace`]: no payload drop makes a new reference), and is no
    /// longer tracked by the container hook's owner (the caller accounts for its death there).
    /// `holds_only_garbage` is true only of members whose every reference (as their trace
    /// reports them) leads to a member.
    pub unsafe fn free_garbage<I: Iterator<Item = ObjPtr>>(
        &self,
        garbage: impl Fn() -> I,
        prefetch_children: bool,
        holds_only_garbage: impl Fn(ObjPtr) -> bool,
    ) -> u64 {
        let drop_skipped = |obj: ObjPtr| {
            // SAFETY: called on members only, live until the second pass frees them.
            let ty = unsafe { obj.type_info() };
            ty.has_release_only_drop() && holds_only_garbage(obj)
        };
        self.defer_frees(|| {
            let mut lens = self.garbage_lens.take();
            lens.clear();
            let mut types = self.garbage_types.take();
            types.clear();
            let mut children = self.garbage_children.take();
            let mut ahead = garbage().skip(PREFETCH_AHEAD);
            for obj in garbage() {
                // The payload drops below read the header of every child (a random graph's
                // children are anywhere): ask for the children of an object a few turns ahead.
                if let Some(next) = ahead
                    .next()
                    .filter(|&next| prefetch_children && !drop_skipped(next))
                {
                    if let Err(panic) = catch_unwind(AssertUnwindSafe(|| {
                        // SAFETY: a live member; the visitor only gathers pointers.
                        unsafe { trace(next, &mut crate::Visit::into_vec(&mut children)) }
                    })) {
                        self.hold_panic(panic);
                    }
                    for &child in &children {
                        prefetch(child.as_non_null().as_ptr().cast());
                    }
                    children.clear();
                }
                // SAFETY: a live member (contract); its payload is dropped once, here (never
                // again, even if its drop panics).
                unsafe {
                    let ty = obj.type_info();
                    debug_assert!(obj.header().is_immortal() && !obj.header().has(HAS_WEAKREFS));
                    match types.last_mut() {
                        Some((last, run)) if std::ptr::eq(*last, ty) => *run += 1,
                        _ => types.push((ty, 1)),
                    }
                    if ty.is_var() {
                        lens.push(ty.len_of(obj.payload()));
                    }
                    if ty.has_release_only_drop() && holds_only_garbage(obj) {
                        continue;
                    }
                    let mark = self.pending.borrow().len();
                    // As in dealloc_one: a payload whose drop panics counts as dropped, its
                    // block is freed below, and the panic waits for the end of the loop.
                    if let Err(panic) =
                        catch_unwind(AssertUnwindSafe(|| (ty.drop_payload)(obj.payload())))
                    {
                        self.hold_panic(panic);
                    }
                    let mut pending = self.pending.borrow_mut();
                    if pending.len() > mark + 1 {
                        pending[mark..].reverse();
                    }
                }
            }
            // The blocks, from what the first pass noted: no member is read again, and
            // whole pools of members are emptied without writing into a block (FreeBatch).
            let mut var_lens = lens.iter();
            let mut members = garbage();
            let mut batch = self.alloc.free_batch();
            let mut freed = 0;
            for &(ty, run) in &types {
                let kind = self.kind_of(ty);
                let fixed = (!ty.is_var()).then(|| self.block_layout(ty, 0));
                for obj in members.by_ref().take(run) {
                    let len = if ty.is_var() {
                        *var_lens
                            .next()
                            .expect("one length per variable-size member")
                    } else {
                        0
                    };
                    let (offset, size) = fixed.unwrap_or_else(|| self.block_layout(ty, len));
                    // The member's payload was dropped above, or needed no drop.
                    // SAFETY: alloc_raw carved its block `offset` bytes before the header,
                    // `size` bytes of kind `kind` (block_layout); each member is yielded once.
                    unsafe {
                        let block = obj.as_non_null().cast::<u8>().sub(offset);
                        batch.push_kind_len(kind, len, block, size);
                    }
                    freed += 1;
                }
            }
            batch.finish();
            self.garbage_types.set(types);
            self.garbage_lens.set(lens);
            self.garbage_children.set(children);
            self.bump(|c| c.freed += freed);
            freed
        })
    }

    /// [`free_garbage`](Self::free_garbage) when no member needs its drop: every member's
    /// type only releases references in its drop ([`TypeInfo::has_release_only_drop`]) and
    /// every member references members only, so no payload is dropped, no member is read by
    /// another, and each block is freed in the one pass that reads its header (type and
    /// length), while its line is at hand. Nothing dies of it. Returns how many it freed.
    ///
    /// # Safety
    /// As [`free_garbage`](Self::free_garbage) for the members, and each one's type has a
    /// release-only drop and each reference it holds (as its trace reports them) leads to a
    /// member.
    pub unsafe fn free_garbage_undropped(&self, garbage: impl Iterator<Item = ObjPtr>) -> u64 {
        let mut batch = self.alloc.free_batch();
        let mut freed = 0;
        // The kind and, for a fixed-size type, the block layout of the last type seen.
        let mut last: Option<(&'static TypeInfo, KindId, (usize, usize))> = None;
        for obj in garbage {
            // SAFETY: a live member until its block is freed below (contract).
            let (ty, len) = unsafe {
                debug_assert!(obj.header().is_immortal() && !obj.header().has(HAS_WEAKREFS));
                let ty = obj.type_info();
                (ty, ty.len_of(obj.payload()))
            };
            debug_assert!(ty.has_release_only_drop());
            let (kind, (offset, size)) = match last {
                Some((t, kind, layout)) if std::ptr::eq(t, ty) => (
                    kind,
                    if ty.is_var() {
                        self.block_layout(ty, len)
                    } else {
                        layout
                    },
                ),
                _ => {
                    let (kind, layout) = (self.kind_of(ty), self.block_layout(ty, len));
                    last = Some((ty, kind, layout));
                    (kind, layout)
                }
            };
            // SAFETY: alloc_raw carved its block `offset` bytes before the header, `size`
            // bytes of kind `kind` (block_layout); each member is yielded once, and no other
            // member's drop runs to read it once it is freed (contract).
            unsafe {
                let block = obj.as_non_null().cast::<u8>().sub(offset);
                batch.push_kind_len(kind, len, block, size);
            }
            freed += 1;
        }
        batch.finish();
        self.bump(|c| c.freed += freed);
        freed
    }

    /// Runs the finalizer of a dying object once (PEP 442). Returns true when it resurrected
    /// the object (its count is above zero afterwards).
    ///
    /// # Safety
    /// `obj` must be live; its count may be zero (dying) or above (called by the collector).
    pub(crate) unsafe fn run_finalizer(&self, obj: ObjPtr) -> bool {
        // SAFETY: contract.
        let header = unsafe { obj.header() };
        let ty = header.type_info();
        let Some(finalize) = ty.finalize else {
            return false;
        };
        if header.has(FINALIZED) || !self.user_code.get() {
            return false;
        }
        header.set(FINALIZED, true);
        self.bump(|c| c.finalizers_run += 1);
        let before = header.refcnt();
        // A temporary reference for the finalizer (CPython's resurrection dance).
        // SAFETY: the object is live; the handle's reference is removed below without dealloc.
        let this = std::mem::ManuallyDrop::new(unsafe { obj.to_ref::<'_>() });
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| finalize(&this))) {
            self.report_panic("finalizer", ty.name, panic);
        }
        let after = header.refcnt() - 1;
        // SAFETY: removes the temporary reference added above.
        unsafe { header.set_refcnt(after) };
        if after > 0 {
            // Resurrected, and possibly into a cycle of its own making (a self-reference): as
            // any reference dropped from an object that lives on, a release.
            header.released();
        }
        if after > before {
            self.bump(|c| c.resurrected += 1);
            return true;
        }
        false
    }

    /// Calls `f` with panics reported as unraisable instead of unwinding into the heap.
    pub(crate) fn guarded(&self, context: &'static str, type_name: &'static str, f: impl FnOnce()) {
        if let Err(panic) = catch_unwind(AssertUnwindSafe(f)) {
            self.report_panic(context, type_name, panic);
        }
    }

    /// Reports the panic of user code that nobody can catch (a finalizer, a weakref callback,
    /// a gc callback) as [unraisable](Self::report_unraisable), with the panic's message.
    pub fn report_panic(
        &self,
        context: &'static str,
        type_name: &'static str,
        panic: PanicPayload,
    ) {
        self.report_unraisable(Unraisable {
            context,
            type_name,
            message: panic_message(panic.as_ref()),
        });
        drop_panic(panic);
    }

    /// Reports a failure nobody can catch (`sys.unraisablehook`): to the installed hook, or as
    /// a `tracing` error; counted either way. The tiers above report their own (a failing gc
    /// callback) here too.
    ///
    /// A hook that panics is reported the way CPython treats a failing `sys.unraisablehook`:
    /// both failures go to the log, and the hook stays installed. Its panic never unwinds into
    /// the deallocation loop or the collector that reported.
    pub fn report_unraisable(&self, u: Unraisable) {
        self.bump(|c| c.unraisable += 1);
        // Take the hook out while it runs, so that a hook that fails or reports again cannot
        // re-enter the RefCell.
        let hook = self.unraisable.borrow_mut().take();
        match hook {
            Some(mut h) => {
                let failed = catch_unwind(AssertUnwindSafe(|| h(&u))).err();
                let mut slot = self.unraisable.borrow_mut();
                if slot.is_none() {
                    *slot = Some(h);
                }
                drop(slot);
                if let Some(panic) = failed {
                    log_unraisable(&u);
                    log_unraisable(&Unraisable {
                        context: "unraisable hook",
                        type_name: u.type_name,
                        message: panic_message(panic.as_ref()),
                    });
                    drop_panic(panic);
                }
            }
            None => log_unraisable(&u),
        }
    }

    /// # Safety
    /// `obj` is dead (payload dropped) and its block came from this heap's `alloc_raw` for `ty`
    /// and `len`.
    unsafe fn free_block(&self, obj: ObjPtr, ty: &'static TypeInfo, len: usize) {
        let (offset, size) = self.block_layout(ty, len);
        if cfg!(debug_assertions) {
            // SAFETY: obj's header is still readable (the payload was dropped, not the header).
            let stamped_direct = unsafe { obj.header() }.locator() == 0;
            assert_eq!(
                stamped_direct,
                offset != ty.pre_header(),
                "a direct block is what alloc_raw stamped as one"
            );
        }
        // SAFETY: alloc_raw carved the block `offset` bytes before the header (block_layout).
        let block = unsafe { obj.as_non_null().cast::<u8>().sub(offset) };
        // SAFETY: the block came from alloc_block with this size, kind and length.
        unsafe {
            self.alloc
                .dealloc_kind_len(self.kind_of(ty), len, block, size)
        }
    }

    /// Where the block of an object of type `ty` with `len` items starts (bytes before its
    /// header) and the size `alloc_raw` asked for: a function of the type, the length and the
    /// allocator's configuration only, so freeing a block needs no look at the object.
    #[inline]
    fn block_layout(&self, ty: &'static TypeInfo, len: usize) -> (usize, usize) {
        let size = ty.object_size(len);
        match self.alloc.placement(size) {
            Placement::Arena { .. } => (ty.pre_header(), size),
            Placement::Direct => (ty.pre_header() + DIRECT_PREFIX, size + DIRECT_PREFIX),
        }
    }

    /// The bytes of an object's block (pre-header, header, payload, items, and the rest of its
    /// size class's block; not what its payload owns elsewhere): the core of `sys.getsizeof`.
    pub fn object_size(&self, obj: &ObjRef<'_>) -> usize {
        let ty = obj.type_info();
        // SAFETY: the handle keeps the payload alive.
        let size = ty.object_size(unsafe { ty.len_of(obj.as_ptr().payload()) });
        self.alloc.usable_size(size)
    }

    /// Makes an object immortal (PEP 683): its count never changes again and it is never freed.
    pub fn make_immortal(&self, obj: &ObjRef<'_>) {
        obj.header().make_immortal();
    }

    /// Clears an object's references (its type's `clear`): what the collector does to break a
    /// cycle. The object stays valid.
    ///
    /// A `clear` that panics unwinds out of this call; the heap needs no repair: the object is
    /// still valid (a `clear` leaves it so, as safe code must, even half done), and what it
    /// released is freed, or waits for the deallocation loop this runs in (see
    /// [`defer_frees`](Self::defer_frees) for a loop that a panic ends).
    pub fn clear_refs(&self, obj: &ObjRef<'_>) {
        // SAFETY: the handle keeps the payload alive.
        unsafe { (obj.type_info().clear)(obj.as_ptr().payload()) }
    }

    /// Runs an object's finalizer now if it has one that has not run (the collector's
    /// `finalize_garbage`). Panics are reported as unraisable.
    pub fn finalize(&self, obj: &ObjRef<'_>) {
        // SAFETY: the handle keeps the object alive.
        unsafe { self.run_finalizer(obj.as_ptr()) };
    }

    /// A snapshot of the counters, with the allocator's.
    pub fn stats(&self) -> RcStats {
        RcStats::new(self.counters.get(), self.pending.borrow().len() as u64)
    }
}

impl Drop for RcHeap {
    fn drop(&mut self) {
        // Every handle borrowed the heap, so none is left; objects still alive are leaked
        // (uncollected cycles, immortals): their memory goes with the arenas.
        self.hook.set(None);
    }
}

/// How many objects ahead [`RcHeap::free_garbage`] prefetches the children of the garbage.
const PREFETCH_AHEAD: usize = 8;

/// Ends a deallocation loop that unwinds (see [`RcHeap::dealloc`]): the heap leaves the
/// loop, and a panic held for its end is dropped (the one in flight wins).
struct EndLoopOnUnwind<'a>(&'a RcHeap);

impl Drop for EndLoopOnUnwind<'_> {
    fn drop(&mut self) {
        self.0.deallocating.set(false);
        if let Some(held) = self.0.held_panic.take() {
            drop_panic(held);
        }
    }
}

/// The default `sys.unraisablehook`: a `tracing` error. A subscriber that panics on it (a log
/// sink that fails) has nowhere left to report to: its panic is dropped, as CPython ignores a
/// failure to print an unraisable exception, and never unwinds into the deallocation loop or
/// the collector that reported.
fn log_unraisable(u: &Unraisable) {
    let logged = catch_unwind(AssertUnwindSafe(|| {
        tracing::error!(
            target: "refcount::unraisable",
            context = u.context,
            type_name = u.type_name,
            "exception ignored in {} of {} object: {}",
            u.context,
            u.type_name,
            u.message
        )
    }));
    if let Err(panic) = logged {
        drop_panic(panic);
    }
}

/// Visits the strong references of a live object (its type's `trace`).
///
/// # Safety
/// `obj` must be live, and `visit` must not change the object graph.
#[inline]
pub unsafe fn trace(obj: ObjPtr, visit: &mut crate::Visit<'_>) {
    // SAFETY: contract.
    unsafe { (obj.type_info().trace)(obj.payload(), visit) }
}

/// The number of bytes from the start of an object's header to its payload.
pub const PAYLOAD_OFFSET: usize = HEADER_SIZE;
