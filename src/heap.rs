//! [`Heap`]: the tiers composed, with Python's values on top.

use std::cell::RefCell;
use std::marker::PhantomPinned;
use std::pin::Pin;

use gengc::GcHeap;
use hashbrown::HashTable;
use obj_alloc::Policy;
use refcount::{ObjPtr, ObjRef, Object, RcHeap, Ref, WeakCallback, WeakRefObj};

use crate::object::{
    as_instance, Bytes, Class, Dict, FinInstance, Finalizer, FinalizerKind, Float, Instance, Int,
    LegacyInstance, List, NoneType, Opaque, PlainInstance, Str, Tuple,
};
use crate::stats::HeapStats;
use crate::{Config, ConfigError, HeapError};

/// The smallest cached int (CPython's `-NSMALLNEGINTS`).
pub const SMALL_INT_MIN: i64 = -5;
/// The largest cached int (CPython's `NSMALLPOSINTS - 1`).
pub const SMALL_INT_MAX: i64 = 256;

/// A private heap with Python's object model and its `gc` module: one interpreter's memory.
///
/// Objects are reached through counted handles ([`ObjRef`], or typed [`Ref`]s) that borrow the
/// heap, so the heap outlives them. Dropping the heap runs one last collection and gives all
/// memory back to the OS.
///
/// ```
/// use pyheap::{Config, Heap};
///
/// let heap = Heap::new(Config::default()).unwrap();
/// let l = heap.list(vec![heap.int(1).unwrap(), heap.str("two").unwrap()]).unwrap();
/// l.append(l.clone().erase()).unwrap(); // l.append(l): a cycle
/// drop(l);
/// assert_eq!(heap.gc().collect(2).unwrap(), 1);
/// ```
pub struct Heap {
    gc: GcHeap,
    config: Config,
    /// -5..=256, immortal.
    small_ints: Vec<ObjPtr>,
    none: ObjPtr,
    /// Interned strings (immortal), by their hash.
    interned: RefCell<HashTable<ObjPtr>>,
    /// The allocator kinds of the arrays objects own outside their blocks.
    array_kinds: ArrayKinds,
    _pinned: PhantomPinned,
}

impl Heap {
    /// Builds a heap; `Config::default()` is CPython 3.11's setup.
    pub fn new(config: Config) -> Result<Pin<Box<Heap>>, ConfigError> {
        config.validate()?;
        let gc = GcHeap::new(config.obj_config())?;
        let (t0, t1, t2) = config.gc_thresholds;
        gc.set_threshold(t0, t1, t2);
        if !config.gc_enabled {
            gc.disable();
        }
        let rc = gc.rc();
        let f = &config.free_lists;
        rc.set_type_policy(Float::type_info(), Policy::FreeList { capacity: f.float });
        rc.set_type_policy(List::type_info(), Policy::FreeList { capacity: f.list });
        rc.set_type_policy(Dict::type_info(), Policy::FreeList { capacity: f.dict });
        rc.set_type_policy(
            Tuple::type_info(),
            Policy::PerLength {
                max_len: f.tuple_max_len,
                capacity: f.tuple_per_length,
            },
        );
        let immortal = |obj: ObjRef<'_>| {
            rc.make_immortal(&obj);
            obj.into_owned()
        };
        let small_ints = (SMALL_INT_MIN..=SMALL_INT_MAX)
            .map(|i| rc.alloc(Int(i)).map(|r| immortal(r.erase())))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| ConfigError::LimitBelowOneArena {
                limit: config.limit.unwrap_or(0),
                arena_size: config.arena_size,
            })?;
        let none = rc
            .alloc(NoneType)
            .map(|r| immortal(r.erase()))
            .map_err(|_| ConfigError::LimitBelowOneArena {
                limit: config.limit.unwrap_or(0),
                arena_size: config.arena_size,
            })?;
        let alloc = rc.allocator();
        let array_kinds = ArrayKinds {
            table: alloc.register_kind(TABLE_KIND, Policy::SizeClass),
            values: alloc.register_kind(VALUES_KIND, Policy::SizeClass),
        };
        let heap = Box::pin(Heap {
            array_kinds,
            gc,
            config,
            small_ints,
            none,
            interned: RefCell::new(HashTable::new()),
            _pinned: PhantomPinned,
        });
        let me: *const Heap = &*heap;
        heap.gc.rc().set_context(me.cast());
        Ok(heap)
    }

    /// The heap an object lives in.
    ///
    /// # Panics
    /// If the object belongs to a bare refcount heap rather than a `Heap` (only objects made
    /// through a `Heap` can be given here by safe code that got them from this crate).
    pub fn of<'h>(obj: &ObjRef<'h>) -> &'h Heap {
        Heap::try_of(obj).expect("the object does not belong to a live pyheap::Heap")
    }

    /// The heap an object lives in, or None for an object of a bare refcount heap (or of a
    /// heap being dropped).
    pub fn try_of<'h>(obj: &ObjRef<'h>) -> Option<&'h Heap> {
        let ctx = obj.heap().context();
        // SAFETY: the context of a façade heap's RcHeap is the pinned Heap that owns it, which
        // lives as long as the RcHeap ('h); it is reset to null before the heap is dropped.
        (!ctx.is_null()).then(|| unsafe { &*ctx.cast::<Heap>() })
    }

    /// The configuration the heap was made with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The `gc` module of this heap.
    pub fn gc(&self) -> &GcHeap {
        &self.gc
    }

    fn rc(&self) -> &RcHeap {
        self.gc.rc()
    }

    /// `None`.
    pub fn none(&self) -> ObjRef<'_> {
        // SAFETY: None is immortal and lives in this heap.
        unsafe { self.none.to_ref() }
    }

    /// An `int`. -5..=256 are the same immortal objects every time.
    pub fn int(&self, value: i64) -> Result<ObjRef<'_>, HeapError> {
        if (SMALL_INT_MIN..=SMALL_INT_MAX).contains(&value) {
            let p = self.small_ints[(value - SMALL_INT_MIN) as usize];
            // SAFETY: small ints are immortal objects of this heap.
            return Ok(unsafe { p.to_ref() });
        }
        Ok(self.rc().alloc(Int(value))?.erase())
    }

    /// A `float` (from the float free list when it has a block).
    pub fn float(&self, value: f64) -> Result<ObjRef<'_>, HeapError> {
        Ok(self.rc().alloc(Float(value))?.erase())
    }

    /// A `str` (at most [`MAX_ATOM_LEN`](crate::object::MAX_ATOM_LEN) bytes of UTF-8).
    pub fn str(&self, text: &str) -> Result<ObjRef<'_>, HeapError> {
        let header = Str::header_for(text).ok_or(HeapError::TooLong { len: text.len() })?;
        Ok(self.rc().alloc_var(header, text.as_bytes())?.erase())
    }

    /// `sys.intern(text)`: the one immortal `str` with this text in this heap.
    pub fn intern(&self, text: &str) -> Result<ObjRef<'_>, HeapError> {
        let hash = crate::object::Str::header_for(text)
            .ok_or(HeapError::TooLong { len: text.len() })?
            .hash();
        if let Some(s) = self.find_interned(text, hash) {
            return Ok(s);
        }
        let s = self.str(text)?;
        self.rc().make_immortal(&s);
        let p = s.as_ptr();
        self.interned.borrow_mut().insert_unique(hash, p, |q| {
            // SAFETY: as above.
            unsafe { q.payload().cast::<Str>().as_ref() }.hash()
        });
        Ok(s)
    }

    /// The interned `str` with this text (whose hash is `hash`), if there is one.
    fn find_interned(&self, text: &str, hash: u64) -> Option<ObjRef<'_>> {
        let eq = |p: &ObjPtr| {
            // SAFETY: interned strings are immortal objects of this heap.
            let s = unsafe { p.payload().cast::<Str>().as_ref() };
            s.as_str() == text
        };
        let p = *self.interned.borrow().find(hash, eq)?;
        // SAFETY: immortal, of this heap.
        Some(unsafe { p.to_ref() })
    }

    /// Whether `obj` is an interned string.
    pub fn is_interned(&self, obj: &ObjRef<'_>) -> bool {
        let Some(s) = obj.downcast_ref::<Str>() else {
            return false;
        };
        self.interned
            .borrow()
            .find(s.hash(), |p| *p == obj.as_ptr())
            .is_some()
    }

    /// A `bytes` (at most [`MAX_ATOM_LEN`](crate::object::MAX_ATOM_LEN) bytes).
    pub fn bytes(&self, data: &[u8]) -> Result<ObjRef<'_>, HeapError> {
        let header = Bytes::header_for(data).ok_or(HeapError::TooLong { len: data.len() })?;
        Ok(self.rc().alloc_var(header, data)?.erase())
    }

    /// A `tuple` of `items`. A tuple none of whose items may be tracked (atoms, and tuples
    /// that are not tracked themselves) is not tracked by the collector (CPython untracks such
    /// tuples at their collections, `_PyTuple_MaybeUntrack`; pyheap does it at once).
    pub fn tuple<'h>(&'h self, items: &[ObjRef<'h>]) -> Result<Ref<'h, Tuple<'h>>, HeapError> {
        self.check_all(items)?;
        let t = self.rc().alloc_var(Tuple::with_len(items.len()), items)?;
        if items.iter().all(|i| !may_be_tracked(i)) {
            self.gc.untrack(t.as_obj());
        }
        Ok(t)
    }

    /// A `list` of `items`.
    pub fn list<'h>(&'h self, items: Vec<ObjRef<'h>>) -> Result<Ref<'h, List<'h>>, HeapError> {
        self.check_all(&items)?;
        let len = items.len();
        let list = List::from_vec(items).ok_or(HeapError::TooLong { len })?;
        Ok(self.rc().alloc(list)?)
    }

    /// An empty `dict`. It is not tracked by the collector until a key or value that may be
    /// tracked is stored in it, as in CPython (`MAINTAIN_TRACKING`): a dict of atoms can be in
    /// no cycle.
    pub fn dict(&self) -> Result<Ref<'_, Dict<'_>>, HeapError> {
        let d = self.rc().alloc(Dict::new())?;
        self.gc.untrack(d.as_obj());
        Ok(d)
    }

    /// A class named `name`, with an optional finalizer.
    pub fn class<'h>(
        &'h self,
        name: &str,
        finalizer: Option<(Finalizer<'h>, FinalizerKind)>,
    ) -> Result<Ref<'h, Class<'h>>, HeapError> {
        Ok(self.rc().alloc(Class::new(name, finalizer))?)
    }

    /// A new instance of `class`, with no attributes.
    pub fn instance<'h>(&'h self, class: &Ref<'h, Class<'h>>) -> Result<ObjRef<'h>, HeapError> {
        self.check_all(std::slice::from_ref(class.as_obj()))?;
        let inst = Instance::new(class.clone().erase());
        let obj = match class.finalizer_kind() {
            None => self.rc().alloc(PlainInstance(inst))?.erase(),
            Some(FinalizerKind::Safe) => self.rc().alloc(FinInstance(inst))?.erase(),
            Some(FinalizerKind::Legacy) => self.rc().alloc(LegacyInstance(inst))?.erase(),
        };
        Ok(obj)
    }

    /// `setattr(obj, name, value)` (the name is interned, as CPython does).
    pub fn setattr<'h>(
        &'h self,
        obj: &ObjRef<'h>,
        name: &str,
        value: ObjRef<'h>,
    ) -> Result<(), HeapError> {
        let inst = as_instance(obj).ok_or(HeapError::NotAnInstance {
            type_name: obj.type_info().name,
        })?;
        inst.set_attr(self.intern(name)?, value)
    }

    /// `getattr(obj, name, None)`. The name is not interned (as in CPython, where only
    /// `setattr` interns): looking a name up leaves nothing behind.
    pub fn getattr<'h>(
        &'h self,
        obj: &ObjRef<'h>,
        name: &str,
    ) -> Result<Option<ObjRef<'h>>, HeapError> {
        let inst = as_instance(obj).ok_or(HeapError::NotAnInstance {
            type_name: obj.type_info().name,
        })?;
        let header = Str::header_for(name).ok_or(HeapError::TooLong { len: name.len() })?;
        let name = match self.find_interned(name, header.hash()) {
            Some(interned) => interned,
            // Not a name `setattr` ever set: a temporary str, for names set otherwise.
            None => self.str(name)?,
        };
        inst.get_attr(&name)
    }

    /// `weakref.ref(obj, callback)`.
    pub fn weakref<'h>(
        &'h self,
        obj: &ObjRef<'h>,
        callback: Option<WeakCallback<'h>>,
    ) -> Result<Ref<'h, WeakRefObj<'h>>, HeapError> {
        self.check_all(std::slice::from_ref(obj))?;
        Ok(self.rc().weakref(obj, callback)?)
    }

    /// An opaque container standing for an object of another type: `type_name`, at least
    /// `size` bytes (as `sys.getsizeof` reported it), holding `refs`.
    pub fn opaque<'h>(
        &'h self,
        type_name: &str,
        size: usize,
        refs: &[ObjRef<'h>],
    ) -> Result<ObjRef<'h>, HeapError> {
        self.check_all(refs)?;
        let name = self.intern(type_name)?;
        let ty = Opaque::type_info();
        let fixed = ty.pre_header() + refcount::HEADER_SIZE + ty.payload_size;
        let slot = std::mem::size_of::<refcount::RefCell1<'_>>();
        // A size past any block is refused below (TypeInfo::checked_object_size).
        let slots = refs.len().max(size.saturating_sub(fixed).div_ceil(slot));
        let obj = self
            .rc()
            .alloc_var_with(Opaque::new(name, refs.len(), slots), |i| {
                refcount::RefCell1::new(refs.get(i).cloned())
            })?;
        Ok(obj.erase())
    }

    /// `sys.getsizeof(obj)`: the object's block and the arrays it owns (a list's items, a
    /// dict's table, an instance's values or table, a class's shared keys), each counted as
    /// the block the allocator hands out.
    pub fn size_of(&self, obj: &ObjRef<'_>) -> usize {
        let own = self.rc().object_size(obj);
        let extra = if let Some(l) = obj.downcast_ref::<List>() {
            l.buffer_bytes()
        } else if let Some(d) = obj.downcast_ref::<Dict>() {
            d.buffer_bytes()
        } else if let Some(i) = as_instance(obj) {
            i.buffer_bytes()
        } else if let Some(c) = obj.downcast_ref::<Class>() {
            c.buffer_bytes()
        } else {
            0
        };
        own + extra
    }

    /// `sys.getallocatedblocks()`: blocks handed out by the allocator now.
    pub fn allocated_blocks(&self) -> u64 {
        let s = self.rc().allocator().stats();
        s.classes
            .iter()
            .map(|c| c.blocks_in_use as u64)
            .sum::<u64>()
            + s.raw.direct_blocks
    }

    /// One snapshot of every tier.
    pub fn stats(&self) -> HeapStats {
        HeapStats {
            alloc: self.rc().allocator().stats(),
            refcount: self.rc().stats(),
            gc: self.gc.stats(),
        }
    }

    /// Fails if any object lives in another heap.
    fn check_all(&self, objs: &[ObjRef<'_>]) -> Result<(), HeapError> {
        let me: *const RcHeap = self.rc();
        match objs.iter().find(|o| !std::ptr::eq(o.heap(), me)) {
            Some(o) => Err(HeapError::ForeignObject {
                type_name: o.type_info().name,
            }),
            None => Ok(()),
        }
    }
}

/// The allocator kind of a dict's (or a combined instance's) table block (CPython's
/// `PyDictKeysObject`).
pub const TABLE_KIND: &str = "dict-keys";
/// The allocator kind of a split instance's values block (CPython's `PyDictValues`).
pub const VALUES_KIND: &str = "dict-values";

#[derive(Clone, Copy)]
struct ArrayKinds {
    table: obj_alloc::KindId,
    values: obj_alloc::KindId,
}

/// Which array a block is.
#[derive(Clone, Copy)]
pub(crate) enum ArrayKind {
    /// A table (dicts, combined instances).
    Table,
    /// A split instance's values.
    Values,
}

/// Where an object's arrays (outside its block) come from: its heap's allocator, counted under
/// the array's kind while the façade is alive (during the heap's own teardown, when the façade
/// is gone, blocks are freed uncounted).
#[derive(Clone, Copy)]
pub(crate) struct Arrays<'a> {
    alloc: &'a obj_alloc::ObjAlloc,
    kinds: Option<ArrayKinds>,
}

impl<'a> Arrays<'a> {
    /// The arrays of the object whose payload is `payload`.
    ///
    /// # Safety
    /// `payload` must be the payload of a live object of a façade heap.
    pub(crate) unsafe fn of<T>(payload: &T) -> Arrays<'a> {
        // SAFETY: the caller's contract; the heap outlives its objects.
        let rc = unsafe { &*RcHeap::of(ObjPtr::from_payload(payload)) };
        let ctx = rc.context();
        // SAFETY: a façade heap's context is its pinned Heap, alive while set.
        let kinds = (!ctx.is_null()).then(|| unsafe { (*ctx.cast::<Heap>()).array_kinds });
        Arrays {
            alloc: rc.allocator(),
            kinds,
        }
    }

    fn kind(&self, which: ArrayKind) -> Option<obj_alloc::KindId> {
        self.kinds.map(|k| match which {
            ArrayKind::Table => k.table,
            ArrayKind::Values => k.values,
        })
    }

    /// A 16-aligned block of `size` bytes: the request is rounded up to a multiple of 16, which
    /// obj-alloc always serves 16-aligned (an instance keeps a values block's capacity in the low
    /// four bits of its address, and marks a table block with the lowest).
    pub(crate) fn alloc(
        &self,
        which: ArrayKind,
        size: usize,
    ) -> Result<std::ptr::NonNull<u8>, crate::OutOfMemory> {
        let size = size.next_multiple_of(16);
        match self.kind(which) {
            Some(k) => self.alloc.alloc_kind(k, size),
            None => self.alloc.alloc(size),
        }
    }

    /// Frees a block.
    ///
    /// # Safety
    /// `ptr` must come from [`alloc`](Self::alloc) of the same heap with `size` bytes, not
    /// freed since.
    pub(crate) unsafe fn dealloc(&self, which: ArrayKind, ptr: std::ptr::NonNull<u8>, size: usize) {
        let size = size.next_multiple_of(16);
        match self.kind(which) {
            // SAFETY: the caller's contract.
            Some(k) => unsafe { self.alloc.dealloc_kind(k, ptr, size) },
            // SAFETY: the caller's contract.
            None => unsafe { self.alloc.dealloc(ptr, size) },
        }
    }
}

/// CPython's `_PyObject_GC_MAY_BE_TRACKED`: whether `obj` is a container that is tracked or
/// may be (a tuple counts only while tracked: pyheap untracks at birth a tuple none of whose
/// items may be tracked).
pub(crate) fn may_be_tracked(obj: &ObjRef<'_>) -> bool {
    obj.type_info().container
        && (!obj.is::<Tuple<'_>>() || Heap::try_of(obj).is_none_or(|h| h.gc.is_tracked(obj)))
}

/// Fails if `item` does not live in the same heap as the object whose payload is `container`.
pub(crate) fn check_same_heap<T>(container: &T, item: &ObjRef<'_>) -> Result<(), HeapError> {
    // SAFETY: the model's payload types are only ever made inside heap objects (their
    // constructors are private to this crate), so `container` is a payload.
    let owner = unsafe { RcHeap::of(ObjPtr::from_payload(container)) };
    if std::ptr::eq(owner, item.heap()) {
        Ok(())
    } else {
        Err(HeapError::ForeignObject {
            type_name: item.type_info().name,
        })
    }
}
