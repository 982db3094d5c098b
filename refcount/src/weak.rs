//! Weak references: weakref objects with optional callbacks, and the typed [`Weak`] handle.
//!
//! An object's weak references are kept in a side table of the heap, keyed by the object's
//! address, so objects without weak references pay nothing (one header flag says whether to
//! look). When the object dies, every weakref to it is cleared first (upgrading gives nothing),
//! then the callbacks of the weakrefs that are themselves still alive run, newest first, each
//! once (CPython's `PyObject_ClearWeakRefs`). A weakref removes itself from its referent's list
//! when it dies first.

use std::cell::{Cell, RefCell};
use std::marker::PhantomData;

use hashbrown::HashMap;
use raw_alloc::OutOfMemory;

use crate::handle::{ObjPtr, ObjRef, Ref};
use crate::header::HAS_WEAKREFS;
use crate::heap::RcHeap;
use crate::type_info::{Object, Trace, TypeInfo};

/// The callback of a weakref: runs once, after the referent died, with the weakref itself.
pub type WeakCallback<'h> = Box<dyn FnOnce(Ref<'h, WeakRefObj<'h>>) + 'h>;

/// referent address -> the weakref objects that point to it, oldest first. Not owning.
#[derive(Default)]
pub(crate) struct WeakTable {
    lists: RefCell<HashMap<usize, Vec<ObjPtr>>>,
}

/// A weakref object: `weakref.ref(o, callback)`.
pub struct WeakRefObj<'h> {
    referent: Cell<Option<ObjPtr>>,
    callback: Cell<Option<WeakCallback<'h>>>,
    _heap: PhantomData<&'h RcHeap>,
}

static WEAKREF_TYPE: TypeInfo = TypeInfo::new::<WeakRefObj<'static>>("weakref");

impl Trace for WeakRefObj<'_> {}

/// A container, though it traces nothing: it is tracked, so the collector can tell a weakref
/// that is part of the garbage (its callback never runs) from one that is not.
impl Object for WeakRefObj<'_> {
    const CONTAINER: bool = true;
    fn type_info() -> &'static TypeInfo {
        &WEAKREF_TYPE
    }
}

impl<'h> WeakRefObj<'h> {
    /// The referent, if it is still alive (`wr()`).
    pub fn upgrade(&self) -> Option<ObjRef<'h>> {
        // SAFETY: the referent is alive with a count above 0 (live_referent).
        self.live_referent().map(|p| unsafe { p.to_ref() })
    }

    /// Whether the referent died (or was cleared by the collector, or is being deallocated).
    pub fn is_dead(&self) -> bool {
        self.live_referent().is_none()
    }

    /// The referent, unless it is gone or dying. A referent whose count fell to 0 waits on the
    /// pending stack (or runs its finalizer's aftermath) with its weakrefs not cleared yet; as
    /// in CPython (`PyWeakref_GET_OBJECT` tests the count), it is dead to its weakrefs: a new
    /// reference would resurrect an object whose deallocation is under way.
    fn live_referent(&self) -> Option<ObjPtr> {
        let p = self.referent.get()?;
        // SAFETY: a referent that is set is alive: it clears every weakref before it is freed.
        (unsafe { p.header() }.refcnt() > 0).then_some(p)
    }

    /// Whether a callback is still waiting to run.
    pub fn has_callback(&self) -> bool {
        let cb = self.callback.take();
        let has = cb.is_some();
        self.callback.set(cb);
        has
    }
}

impl Drop for WeakRefObj<'_> {
    fn drop(&mut self) {
        if let Some(referent) = self.referent.get() {
            // SAFETY: self is the payload of a weakref object whose referent is still alive.
            let me = unsafe { ObjPtr::from_payload(self) };
            // SAFETY: the referent is alive (it clears its weakrefs before dying).
            let heap = unsafe { &*RcHeap::of(referent) };
            heap.weak.remove(referent, me);
        }
    }
}

impl WeakTable {
    fn add(&self, referent: ObjPtr, wr: ObjPtr) {
        self.lists
            .borrow_mut()
            .entry(referent.addr())
            .or_default()
            .push(wr);
    }

    fn remove(&self, referent: ObjPtr, wr: ObjPtr) {
        let mut lists = self.lists.borrow_mut();
        if let Some(list) = lists.get_mut(&referent.addr()) {
            list.retain(|&p| p != wr);
            if list.is_empty() {
                lists.remove(&referent.addr());
                // SAFETY: the referent is alive (caller).
                unsafe { referent.header() }.set(HAS_WEAKREFS, false);
            }
        }
    }

    fn take(&self, referent: ObjPtr) -> Vec<ObjPtr> {
        self.lists
            .borrow_mut()
            .remove(&referent.addr())
            .unwrap_or_default()
    }

    pub(crate) fn count(&self, referent: ObjPtr) -> usize {
        self.lists
            .borrow()
            .get(&referent.addr())
            .map_or(0, Vec::len)
    }
}

impl RcHeap {
    /// Makes a weakref to `target`, with an optional callback (`weakref.ref(target, cb)`).
    pub fn weakref<'h>(
        &'h self,
        target: &ObjRef<'h>,
        callback: Option<WeakCallback<'h>>,
    ) -> Result<Ref<'h, WeakRefObj<'h>>, OutOfMemory> {
        let wr = self.alloc(WeakRefObj {
            referent: Cell::new(Some(target.as_ptr())),
            callback: Cell::new(callback),
            _heap: PhantomData,
        })?;
        // Filed with the referent's own heap: that is the table its death clears, even when
        // the weakref lives in another heap.
        target.heap().weak.add(target.as_ptr(), wr.as_ptr());
        target.header().set(HAS_WEAKREFS, true);
        Ok(wr)
    }

    /// A weak handle to `target` (a weakref without callback, typed).
    pub fn downgrade<'h, T: Object + 'h>(
        &'h self,
        target: &Ref<'h, T>,
    ) -> Result<Weak<'h, T>, OutOfMemory> {
        Ok(Weak {
            wr: self.weakref(target.as_obj(), None)?,
            _type: PhantomData,
        })
    }

    /// How many weakrefs point to `obj` (`weakref.getweakrefcount`).
    pub fn weakref_count(&self, obj: &ObjRef<'_>) -> usize {
        obj.heap().weak.count(obj.as_ptr())
    }

    /// Clears every weakref to `obj` (upgrading them gives nothing from now on) and returns
    /// the ones that are still alive, with a reference each, for the caller to run callbacks
    /// on. The collector uses this for objects it found unreachable.
    ///
    /// # Safety
    /// `obj` must be live.
    pub unsafe fn clear_weakrefs(&self, obj: ObjPtr) -> Vec<Ref<'_, WeakRefObj<'_>>> {
        // SAFETY: obj is live (contract).
        let header = unsafe { obj.header() };
        if !header.has(HAS_WEAKREFS) {
            return Vec::new();
        }
        header.set(HAS_WEAKREFS, false);
        let list = self.weak.take(obj);
        let mut live = Vec::with_capacity(list.len());
        for wr in list {
            // SAFETY: a weakref in the table is not freed (it removes itself when it dies),
            // though it may be dying (count zero, waiting on the pending stack).
            let wr_header = unsafe { wr.header() };
            // SAFETY: the payload of a weakref object.
            let payload = unsafe { wr.payload().cast::<WeakRefObj<'_>>().as_ref() };
            payload.referent.set(None);
            if wr_header.refcnt() > 0 {
                // SAFETY: a live weakref of this heap.
                live.push(unsafe {
                    Ref::from_owned({
                        wr.incref();
                        wr
                    })
                });
            }
        }
        let n = live.len() as u64;
        let mut c = self.counters.get();
        c.weakrefs_cleared += n;
        self.counters.set(c);
        live
    }

    /// Detaches a weakref object from its referent (CPython's `_PyWeakref_ClearRef`): upgrading
    /// it gives nothing from now on, and as its referent no longer lists it, its callback never
    /// runs. The collector does this to weakrefs that are garbage themselves. Returns whether
    /// `wr` is a weakref object (anything else is left alone).
    pub fn detach_weakref(&self, wr: &ObjRef<'_>) -> bool {
        let Some(w) = wr.downcast_ref::<WeakRefObj<'_>>() else {
            return false;
        };
        if let Some(referent) = w.referent.take() {
            // SAFETY: a referent that is set is alive: it clears its weakrefs before it is freed.
            let heap = unsafe { &*RcHeap::of(referent) };
            heap.weak.remove(referent, wr.as_ptr());
        }
        true
    }

    /// Runs a weakref's callback if it has one that has not run; a panic is reported as
    /// unraisable.
    pub fn run_weakref_callback<'h>(&'h self, wr: Ref<'h, WeakRefObj<'h>>) {
        if !self.user_code_enabled() {
            return;
        }
        if let Some(cb) = wr.callback.take() {
            let mut c = self.counters.get();
            c.callbacks_run += 1;
            self.counters.set(c);
            self.guarded("weakref callback", "weakref", move || cb(wr));
        }
    }

    pub(crate) fn clear_weakrefs_and_call_back(&self, obj: ObjPtr) {
        // SAFETY: called from dealloc_one on a live (dying) object.
        let live = unsafe { self.clear_weakrefs(obj) };
        for wr in live.into_iter().rev() {
            self.run_weakref_callback(wr);
        }
    }
}

/// A typed weak handle: upgrades to a [`Ref`] while the object lives, to nothing after.
pub struct Weak<'h, T: Object> {
    wr: Ref<'h, WeakRefObj<'h>>,
    _type: PhantomData<*const T>,
}

impl<'h, T: Object + 'h> Weak<'h, T> {
    /// A strong handle, if the object is alive.
    pub fn upgrade(&self) -> Option<Ref<'h, T>> {
        self.wr.upgrade().and_then(|o| o.downcast::<T>().ok())
    }

    /// Whether the object died.
    pub fn is_dead(&self) -> bool {
        self.wr.is_dead()
    }
}

impl<T: Object> Clone for Weak<'_, T> {
    fn clone(&self) -> Self {
        Weak {
            wr: self.wr.clone(),
            _type: PhantomData,
        }
    }
}
