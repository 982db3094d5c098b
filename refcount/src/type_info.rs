//! Type descriptors: what the tiers above may ask of any object, type-erased.

use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};

use obj_alloc::Policy;

use crate::handle::{ObjPtr, ObjRef};
use crate::header::HEADER_SIZE;

/// Bytes reserved in front of the header of every container (an object whose type may hold
/// references): two words that belong to the tier above (the collector's list links). Atoms
/// have none.
pub const CONTAINER_PRE_HEADER: usize = 16;

/// Visits the strong references an object holds. Handed to [`Trace::trace`].
///
/// Only live references can be visited (`&ObjRef`), so whatever the visitor does with the
/// pointers it gets, they name live objects. A visit either calls a function per reference
/// ([`Visit::new`]) or appends the references to a buffer ([`Visit::into_vec`]): the collector's
/// hot loops use the buffer, so that a reference costs a push, not an indirect call, and the
/// collector can prefetch what it gathered before it looks at it.
pub struct Visit<'v> {
    sink: Sink<'v>,
}

enum Sink<'v> {
    Call(&'v mut dyn FnMut(ObjPtr)),
    Buffer(&'v mut Vec<ObjPtr>),
}

impl<'v> Visit<'v> {
    /// Wraps a function that receives each visited object.
    ///
    /// # Safety
    /// `f` must leave every object as it found it: no allocation, no mutation, no reference
    /// dropped (which may free an object and run user code). It may read, and make new
    /// handles. A trace iterates its
    /// object's storage in place while `f` runs (a list's item buffer, a dict's table): growing
    /// that list from `f` would free the buffer under the trace.
    ///
    /// ```compile_fail
    /// // A visitor runs inside a trace: making one is unsafe.
    /// let mut f = |_: refcount::ObjPtr| {};
    /// let _ = refcount::Visit::new(&mut f);
    /// ```
    pub unsafe fn new(f: &'v mut dyn FnMut(ObjPtr)) -> Self {
        Visit {
            sink: Sink::Call(f),
        }
    }

    /// Appends each visited object to `buf`.
    pub fn into_vec(buf: &'v mut Vec<ObjPtr>) -> Self {
        Visit {
            sink: Sink::Buffer(buf),
        }
    }

    /// Reports one strong reference.
    #[inline]
    pub fn visit(&mut self, r: &ObjRef<'_>) {
        match &mut self.sink {
            Sink::Buffer(buf) => buf.push(r.as_ptr()),
            Sink::Call(f) => f(r.as_ptr()),
        }
    }
}

/// The references an object holds, for the collector.
///
/// `trace` must report every strong reference the object holds (an incomplete trace makes the
/// collector keep garbage: a leak, never unsafety), and run no code that could change the graph.
/// `clear` drops the references (through interior mutability), to break cycles.
pub trait Trace {
    /// Reports each strong reference held, in a stable order.
    fn trace(&self, _visit: &mut Visit<'_>) {}
    /// Drops every strong reference held. After `clear` the object must still be valid to use
    /// and to drop.
    fn clear(&self) {}
}

/// A type whose values live in the private heap behind a header.
///
/// Implement it with a `static` [`TypeInfo`] built by [`TypeInfo::new`]:
///
/// ```
/// use refcount::{Object, Trace, TypeInfo};
/// struct Point { x: f64, y: f64 }
/// impl Trace for Point {}
/// static POINT: TypeInfo = TypeInfo::new::<Point>("Point");
/// impl Object for Point {
///     fn type_info() -> &'static TypeInfo { &POINT }
/// }
/// ```
pub trait Object: Trace + Sized {
    /// The descriptor of this type (a `static`, so that its address identifies the type).
    fn type_info() -> &'static TypeInfo;
    /// Whether values may hold references to other objects (then they get a pre-header and are
    /// announced to the container hook).
    const CONTAINER: bool = false;
    /// Whether [`finalize`](Object::finalize) does anything (PEP 442 `tp_finalize`).
    const HAS_FINALIZER: bool = false;
    /// A finalizer that must not run on objects in cycles (CPython's legacy `tp_del`): the
    /// collector sends such cycles to `garbage` instead.
    const LEGACY_FINALIZER: bool = false;
    /// The allocation policy of this type's blocks.
    const POLICY: Policy = Policy::SizeClass;
    /// Runs once, before the object dies (by refcount or by the collector). It gets a strong
    /// reference; storing it somewhere resurrects the object.
    fn finalize(_this: &ObjRef<'_>) {}
}

/// An object whose payload `T` is followed, in the same block, by `len()` items: a tuple's
/// elements, a string's bytes (CPython's `PyVarObject`). Make one with
/// [`RcHeap::alloc_var`](crate::RcHeap::alloc_var), describe it with [`TypeInfo::new_var`],
/// and read the items with [`items`].
///
/// [`items`] derives the items' pointer from a shared reference to the payload. If the items
/// are written through it (cells, as `RefCell1`), `T` must not be `Freeze`: give it an
/// `UnsafeCell<()>` field. Past the end of a reference to a `Freeze` value, memory is
/// read-only (Tree Borrows), and a write there is undefined behaviour.
pub trait VarObject: Object {
    /// The type of the items.
    type Item;
    /// How many items follow the payload. Must not change during the object's life.
    fn len(&self) -> usize;
    /// Whether no item follows the payload.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The items that follow a [`VarObject`]'s payload.
pub fn items<T: VarObject>(this: &T) -> &[T::Item] {
    let offset = items_offset::<T>();
    // SAFETY: every T: VarObject lives in a block made by alloc_var, which placed len()
    // initialised items at this offset after the payload.
    unsafe {
        let start = (this as *const T)
            .cast::<u8>()
            .add(offset)
            .cast::<T::Item>();
        std::slice::from_raw_parts(start, this.len())
    }
}

/// Bytes from the start of a `T` payload to its first item.
pub(crate) const fn items_offset<T: VarObject>() -> usize {
    let align = std::mem::align_of::<T::Item>();
    (std::mem::size_of::<T>() + align - 1) & !(align - 1)
}

/// A type at run time: its name, its payload size and the functions the tiers call.
pub struct TypeInfo {
    /// The type's name (`type(o).__name__`).
    pub name: &'static str,
    /// Bytes of the payload after the header (for a variable-size type: up to the first item).
    pub payload_size: usize,
    /// Bytes per item of a variable-size type (0 for a fixed-size type).
    pub item_size: usize,
    pub(crate) var_len: Option<unsafe fn(NonNull<u8>) -> usize>,
    /// `object_size` rounds up to `round + 1` bytes: 8, or 16 for a type aligned to 16 (whose
    /// blocks must then be 16-aligned: obj-alloc gives 16-aligned blocks to multiples of 16).
    round: usize,
    /// A small number unique to this type in the process, given on first use: heaps index
    /// their per-type tables with it.
    index: AtomicU32,
    /// Whether the type may hold references (see [`Object::CONTAINER`]).
    pub container: bool,
    /// Whether the type has a legacy finalizer (see [`Object::LEGACY_FINALIZER`]).
    pub legacy_finalizer: bool,
    /// The allocation policy of its blocks.
    pub policy: Policy,
    pub(crate) drop_payload: unsafe fn(NonNull<u8>),
    pub(crate) trace: unsafe fn(NonNull<u8>, &mut Visit<'_>),
    pub(crate) clear: unsafe fn(NonNull<u8>),
    pub(crate) finalize: Option<fn(&ObjRef<'_>)>,
    /// Whether the type promised an exact trace (see [`assume_exact_trace`](Self::assume_exact_trace)).
    exact_trace: bool,
    /// Whether dropping a payload only releases references (see
    /// [`drop_only_releases_refs`](Self::drop_only_releases_refs)).
    release_only_drop: bool,
}

impl std::fmt::Debug for TypeInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TypeInfo")
            .field("name", &self.name)
            .field("payload_size", &self.payload_size)
            .field("container", &self.container)
            .finish_non_exhaustive()
    }
}

impl TypeInfo {
    /// The descriptor of `T`. Use it to initialise the `static` that [`Object::type_info`]
    /// returns; for a type with a lifetime, name it with `'static` (lifetimes do not exist at
    /// run time).
    pub const fn new<T: Object>(name: &'static str) -> TypeInfo {
        assert!(
            std::mem::align_of::<T>() <= 16,
            "payloads are aligned to 16 bytes at most"
        );
        TypeInfo {
            name,
            payload_size: std::mem::size_of::<T>(),
            item_size: 0,
            var_len: None,
            round: if std::mem::align_of::<T>() > 8 { 15 } else { 7 },
            index: AtomicU32::new(0),
            container: T::CONTAINER,
            legacy_finalizer: T::LEGACY_FINALIZER,
            policy: T::POLICY,
            drop_payload: drop_payload::<T>,
            trace: trace::<T>,
            clear: clear::<T>,
            finalize: if T::HAS_FINALIZER || T::LEGACY_FINALIZER {
                Some(T::finalize)
            } else {
                None
            },
            exact_trace: false,
            release_only_drop: false,
        }
    }

    /// Promises that the collector may free garbage of this type directly: dropped and freed
    /// without counting the references among the garbage, the fast path of a collection
    /// (CPython clears garbage and lets reference counting free it: slower, and it needs no
    /// promise). Types without it take that careful path.
    ///
    /// # Safety
    /// For every object of the type: [`Trace::trace`] never reports more than the object holds:
    /// each reference it reports is a strong reference the object holds, reported once (one
    /// reported that is not held, or twice, can make an object held from outside look like
    /// garbage, which would then be freed while referenced; leaving references out only
    /// leaks). `trace` only reports: it makes no reference and drops none (a collector runs
    /// it while it has counts pinned, and a change to a pinned count would be lost). And
    /// dropping the payload makes no new reference to any object (no clone of a handle that
    /// outlives the drop) and runs no code that could.
    pub const unsafe fn assume_exact_trace(mut self) -> TypeInfo {
        self.exact_trace = true;
        self
    }

    /// Whether the type promised an exact trace ([`assume_exact_trace`](Self::assume_exact_trace)).
    #[inline]
    pub fn has_exact_trace(&self) -> bool {
        self.exact_trace
    }

    /// Says that dropping a payload of this type does nothing but release the references its
    /// trace reports: it owns no other resource (no `Box`, `Vec` or `String` of its own) and
    /// its drop runs no other code. A collector may then free garbage of this type without
    /// dropping its payload when every reference the payload holds leads to other garbage of
    /// the same collection (whose counts it has pinned): those releases would change nothing,
    /// and skipping them spares a read of every child, at random in a scattered graph.
    /// Without an exact trace ([`assume_exact_trace`](Self::assume_exact_trace)) it is
    /// never used.
    ///
    /// Not `unsafe`: a payload wrongly declared so only leaks what its drop would have freed
    /// or released. Its block is reused all the same, so do not declare it for a payload
    /// whose drop must run before its memory goes (a value that unsafe code pinned there).
    pub const fn drop_only_releases_refs(mut self) -> TypeInfo {
        self.release_only_drop = true;
        self
    }

    /// Whether a payload's drop may be skipped when everything it references is garbage
    /// being freed with it ([`drop_only_releases_refs`](Self::drop_only_releases_refs) and an
    /// exact trace).
    #[inline]
    pub fn has_release_only_drop(&self) -> bool {
        self.release_only_drop && self.exact_trace
    }

    /// The descriptor of a variable-size type `T` (see [`VarObject`]).
    pub const fn new_var<T: VarObject>(name: &'static str) -> TypeInfo {
        assert!(
            std::mem::align_of::<T>() <= 16 && std::mem::align_of::<T::Item>() <= 16,
            "payloads are aligned to 16 bytes at most"
        );
        let mut ty = TypeInfo::new::<T>(name);
        ty.payload_size = items_offset::<T>();
        ty.item_size = std::mem::size_of::<T::Item>();
        if std::mem::align_of::<T::Item>() > 8 {
            ty.round = 15;
        }
        ty.var_len = Some(var_len::<T>);
        ty.drop_payload = drop_var::<T>;
        ty
    }

    /// Bytes in front of the header (the collector's links for containers).
    #[inline]
    pub fn pre_header(&self) -> usize {
        if self.container {
            CONTAINER_PRE_HEADER
        } else {
            0
        }
    }

    /// Bytes of an object of this type with `len` items (0 for fixed-size types): pre-header,
    /// header, payload and items, rounded up to 8 (to 16 for a type aligned to 16). For the
    /// length of a live object, whose size was checked when it was made
    /// ([`checked_object_size`](Self::checked_object_size)).
    #[inline]
    pub fn object_size(&self, len: usize) -> usize {
        let r = self.round;
        (self.pre_header() + HEADER_SIZE + self.payload_size + self.item_size * len + r) & !r
    }

    /// [`object_size`](Self::object_size) for a length that comes from a payload not yet
    /// allocated (`VarObject::len` is the payload's word): `None` when the object would be
    /// larger than `isize::MAX` bytes, which no block can be.
    pub fn checked_object_size(&self, len: usize) -> Option<usize> {
        let r = self.round;
        let fixed = self.pre_header() + HEADER_SIZE + self.payload_size + r;
        let size = self.item_size.checked_mul(len)?.checked_add(fixed)? & !r;
        (size <= isize::MAX as usize).then_some(size)
    }

    /// This type's process-wide index (1, 2, ...), assigned on first call.
    pub fn index(&self) -> usize {
        static NEXT: AtomicU32 = AtomicU32::new(1);
        let i = self.index.load(Ordering::Relaxed);
        if i != 0 {
            return i as usize;
        }
        let fresh = NEXT.fetch_add(1, Ordering::Relaxed);
        match self
            .index
            .compare_exchange(0, fresh, Ordering::Relaxed, Ordering::Relaxed)
        {
            Ok(_) => fresh as usize,
            Err(won) => won as usize,
        }
    }

    /// Whether objects of this type carry items after their payload.
    pub fn is_var(&self) -> bool {
        self.var_len.is_some()
    }

    /// The number of items of an object of this type (0 for fixed-size types).
    ///
    /// # Safety
    /// `payload` must be the payload of a live object of this type.
    pub(crate) unsafe fn len_of(&self, payload: NonNull<u8>) -> usize {
        match self.var_len {
            // SAFETY: contract.
            Some(f) => unsafe { f(payload) },
            None => 0,
        }
    }

    /// Whether the type has a finalizer of either kind.
    pub fn has_finalizer(&self) -> bool {
        self.finalize.is_some()
    }
}

/// # Safety
/// `payload` must point to a live, initialised `T` that is not used afterwards.
unsafe fn drop_payload<T>(payload: NonNull<u8>) {
    // SAFETY: contract.
    unsafe { payload.cast::<T>().drop_in_place() }
}

/// # Safety
/// `payload` must point to a live `T`.
unsafe fn trace<T: Trace>(payload: NonNull<u8>, visit: &mut Visit<'_>) {
    // SAFETY: contract.
    unsafe { payload.cast::<T>().as_ref() }.trace(visit)
}

/// # Safety
/// `payload` must point to a live `T`.
unsafe fn clear<T: Trace>(payload: NonNull<u8>) {
    // SAFETY: contract.
    unsafe { payload.cast::<T>().as_ref() }.clear()
}

/// # Safety
/// `payload` must point to a live `T`.
unsafe fn var_len<T: VarObject>(payload: NonNull<u8>) -> usize {
    // SAFETY: contract.
    unsafe { payload.cast::<T>().as_ref() }.len()
}

/// # Safety
/// `payload` must point to a live `T` followed by its `len()` initialised items, none of which
/// is used afterwards.
unsafe fn drop_var<T: VarObject>(payload: NonNull<u8>) {
    // SAFETY: contract; the items lie at items_offset::<T>() after the payload.
    unsafe {
        let len = payload.cast::<T>().as_ref().len();
        let items = payload.add(items_offset::<T>()).cast::<T::Item>();
        std::ptr::slice_from_raw_parts_mut(items.as_ptr(), len).drop_in_place();
        payload.cast::<T>().drop_in_place();
    }
}
