//! Classes and their instances. A class is an atom holding a name, an optional finalizer (a
//! Rust closure: Python's `__del__`) and the attribute names its instances share; an instance
//! holds its class and its attributes.
//!
//! Attributes live with the instance (CPython 3.11's "managed dict" before anything reads
//! `__dict__`): two instances pointing at each other are a cycle of 2 objects, not 4. They take
//! one of two layouts (CPython's split and combined tables, PEP 412):
//!
//! - **split**: the names are the class's shared keys (interned strs, at most
//!   [`MAX_SHARED_KEYS`], append-only) and the instance holds only a values array (`values.rs`),
//!   slot `i` for key `i`. An instance's attributes must then follow the class's key order: a new
//!   name gets the next shared key, and a value may go to any empty slot past the last filled
//!   one. This is what instances of one class usually do (`__init__` sets the same names in the
//!   same order), and it costs 8 bytes per attribute, in a block with no header.
//! - **combined**: a [`Table`] of its own, when the instance diverges: a name that is not a str,
//!   a class whose shared keys are full, or an insertion below a filled slot (which would
//!   change the order). The table keeps names and values in insertion order.
//!
//! The instance's one word of attributes is null (no attributes), a table block (a 16-aligned
//! address), or a values block with its capacity in the four low bits (see `values.rs`).

use std::cell::{Cell, RefCell};
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::ptr::NonNull;
use std::rc::Rc;

use refcount::{ObjRef, Object, Trace, TypeInfo, Visit};

use crate::heap::Arrays;

use super::table::Table;
use super::values::{Values, CAP_BITS};
use super::Str;
use crate::{Heap, HeapError};

/// The most attribute names a class shares with its instances (CPython's
/// `SHARED_KEYS_MAX_SIZE`); an instance that needs more gets a table of its own.
pub const MAX_SHARED_KEYS: usize = 30;

/// A class's finalizer: `__del__(self)`. It gets the heap and the instance (a strong
/// reference: storing a clone somewhere live resurrects the object). An `Err` or a panic is
/// reported to the unraisable hook, and the object dies all the same.
pub type Finalizer<'h> = Rc<dyn Fn(&'h Heap, &ObjRef<'h>) -> Result<(), String> + 'h>;

/// What a finalizer is (CPython's `tp_finalize` or the legacy `tp_del`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FinalizerKind {
    /// PEP 442: runs once, also for objects in cycles, which are then freed.
    Safe,
    /// Legacy: cycles through such objects are uncollectable and go to `gc.garbage`.
    Legacy,
}

/// A user-defined class (`class Name: ...`). Made by [`Heap::class`](crate::Heap::class).
///
/// The class keeps the attribute names its instances share (see the module documentation):
/// strs, which are atoms, so the class stays an atom for the collector.
///
/// ```
/// use std::rc::Rc;
/// use pyheap::object::FinalizerKind;
/// # let heap = pyheap::Heap::new(pyheap::Config::default()).unwrap();
/// let c = heap
///     .class("Node", Some((Rc::new(|_heap, _this| Ok(())), FinalizerKind::Safe)))
///     .unwrap();
/// let a = heap.instance(&c).unwrap();
/// heap.setattr(&a, "me", a.clone()).unwrap(); // a cycle through an attribute
/// assert_eq!(c.shared_keys(), 1);
/// drop(a);
/// assert_eq!(heap.gc().collect(2).unwrap(), 1);
/// ```
pub struct Class<'h> {
    name: String,
    finalizer: Option<(Finalizer<'h>, FinalizerKind)>,
    /// The shared attribute names, in the order instances first set them. Borrowed only by
    /// this module, never while code outside it runs (comparing strs runs none).
    keys: RefCell<Vec<ObjRef<'h>>>,
}

impl<'h> Class<'h> {
    pub(crate) fn new(name: &str, finalizer: Option<(Finalizer<'h>, FinalizerKind)>) -> Self {
        Class {
            name: name.to_owned(),
            finalizer,
            keys: RefCell::new(Vec::new()),
        }
    }

    /// `cls.__name__`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The kind of finalizer, if the class has one.
    pub fn finalizer_kind(&self) -> Option<FinalizerKind> {
        self.finalizer.as_ref().map(|(_, k)| *k)
    }

    /// How many attribute names the class shares with its instances.
    pub fn shared_keys(&self) -> usize {
        self.keys.borrow().len()
    }

    /// The index of the shared key equal to `name` (a str); with `add`, a new key is made
    /// while there is room.
    fn key_index(&self, name: &ObjRef<'h>, add: bool) -> Option<usize> {
        if !name.is::<Str>() {
            return None;
        }
        let found = {
            let keys = self.keys.borrow();
            keys.iter()
                .position(|k| k.ptr_eq(name))
                .or_else(|| keys.iter().position(|k| super::key_eq(k, name)))
        };
        if found.is_some() || !add {
            return found;
        }
        let mut keys = self.keys.borrow_mut();
        (keys.len() < MAX_SHARED_KEYS).then(|| {
            keys.push(name.clone());
            keys.len() - 1
        })
    }

    /// A new reference to shared key `i`.
    fn key(&self, i: usize) -> Option<ObjRef<'h>> {
        self.keys.borrow().get(i).cloned()
    }

    /// Bytes of the shared-key array (outside the class's block).
    pub(crate) fn buffer_bytes(&self) -> usize {
        self.keys.borrow().capacity() * std::mem::size_of::<ObjRef<'h>>()
    }
}

impl Trace for Class<'_> {}
// Not a container (its shared keys are strs), so never garbage; and no exact-trace promise
// either: it holds its instances' finalizers, closures whose captures' drops are user code.
static CLASS: TypeInfo = TypeInfo::new::<Class<'static>>("type");
impl Object for Class<'_> {
    fn type_info() -> &'static TypeInfo {
        &CLASS
    }
}

/// An instance of a [`Class`]: its attributes, keyed by strs (interned by
/// [`Heap::setattr`](crate::Heap::setattr)), in insertion order.
///
/// The object is 48 bytes (the collector's pre-header, the header, the class and one word of
/// attributes); the attributes are a values array of 8 bytes a slot while they follow the
/// class's shared keys, else a table (see the module documentation).
pub struct Instance<'h> {
    /// Dropped by hand, before the attributes (the order the collector's trace reports).
    class: ManuallyDrop<ObjRef<'h>>,
    /// Null, a table block, or a values block with `cap / 2` in its low bits.
    attrs: Cell<*mut u8>,
    _refs: PhantomData<ObjRef<'h>>,
}

/// What an instance's attribute word holds.
enum Layout<'h> {
    Empty,
    Split(Values<'h>),
    Combined(NonNull<u8>),
}

impl<'h> Instance<'h> {
    /// An instance without attributes. It gets a block only once it is inside a heap object
    /// (attributes are set through a handle), so a value dropped before it was placed frees
    /// nothing.
    pub(crate) fn new(class: ObjRef<'h>) -> Self {
        Instance {
            class: ManuallyDrop::new(class),
            attrs: Cell::new(std::ptr::null_mut()),
            _refs: PhantomData,
        }
    }

    /// The allocator of the heap this instance lives in.
    fn alloc(&self) -> Arrays<'_> {
        // SAFETY: an Instance with attributes, or reached through a handle, is the payload of
        // a live object (see `new`; the instance types are `repr(transparent)`), whose heap
        // outlives it.
        unsafe { Arrays::of(self) }
    }

    fn layout(&self) -> Layout<'h> {
        let word = self.attrs.get();
        match NonNull::new(word) {
            None => Layout::Empty,
            Some(p) if p.addr().get() & CAP_BITS == 0 => Layout::Combined(p),
            // SAFETY: a word with a capacity in its low bits is a values block this instance
            // owns.
            Some(p) => Layout::Split(unsafe { Values::from_raw(p) }),
        }
    }

    /// Stores a table as the attributes (null if it has no block).
    fn store_table(&self, table: Table<'h>) {
        let word = table.into_raw().map_or(std::ptr::null_mut(), |p| {
            assert!(
                p.addr().get() & CAP_BITS == 0,
                "blocks of the private heap are 16-aligned"
            );
            p.as_ptr()
        });
        self.attrs.set(word);
    }

    /// Runs `f` on the combined table at `block`, then stores the table back (it may have
    /// moved or emptied). `f` must run no code outside the table.
    fn with_table<R>(&self, block: NonNull<u8>, f: impl FnOnce(&Table<'h>) -> R) -> R {
        // SAFETY: `block` is this instance's table block (tagged in `attrs`).
        let table = unsafe { Table::from_raw(Some(block)) };
        let r = f(&table);
        self.store_table(table);
        r
    }

    /// The instance's class.
    pub fn class(&self) -> &Class<'h> {
        self.class
            .downcast_ref::<Class<'h>>()
            .expect("an instance's class is a Class")
    }

    /// The class object.
    pub fn class_obj(&self) -> ObjRef<'h> {
        ObjRef::clone(&self.class)
    }

    /// Whether the attributes follow the class's shared keys (CPython's split table).
    pub fn has_split_attrs(&self) -> bool {
        !matches!(self.layout(), Layout::Combined(_))
    }

    /// `getattr(o, name)`, by an interned-or-not name object.
    pub fn get_attr(&self, name: &ObjRef<'h>) -> Result<Option<ObjRef<'h>>, HeapError> {
        match self.layout() {
            Layout::Empty => Ok(None),
            Layout::Split(values) => Ok(self
                .class()
                .key_index(name, false)
                .and_then(|i| values.get(i))),
            Layout::Combined(block) => self.with_table(block, |t| t.get(name)),
        }
    }

    /// `setattr(o, name, value)`.
    pub fn set_attr(&self, name: ObjRef<'h>, value: ObjRef<'h>) -> Result<(), HeapError> {
        crate::check_same_heap(self, &name)?;
        crate::check_same_heap(self, &value)?;
        let alloc = self.alloc();
        let old = match self.layout() {
            Layout::Combined(block) => {
                // The table drops what it does not keep (the name, when an equal key is
                // stored; both on failure) before `with_table` stores its copy back: held here,
                // those drops are not the last, so no user code (a finalizer, a weakref
                // callback) can change the attributes under that copy.
                let held = (name.clone(), value.clone());
                let old = self.with_table(block, |t| t.set(alloc, name, value));
                drop(held);
                old?
            }
            layout => match self.class().key_index(&name, true) {
                Some(i) => match self.set_split(alloc, layout, i, value)? {
                    Ok(old) => old,
                    Err(value) => self.set_combined(alloc, name, value)?,
                },
                None => self.set_combined(alloc, name, value)?,
            },
        };
        drop(old);
        Ok(())
    }

    /// Stores `value` in slot `i` of the values array (made or grown as needed): the old
    /// value, or the value given back if the slot would break the insertion order.
    #[allow(clippy::type_complexity)]
    fn set_split(
        &self,
        alloc: Arrays<'_>,
        layout: Layout<'h>,
        i: usize,
        value: ObjRef<'h>,
    ) -> Result<Result<Option<ObjRef<'h>>, ObjRef<'h>>, HeapError> {
        let want = (i + 1).max(self.class().shared_keys());
        let values = match layout {
            Layout::Split(v) if i < v.cap() => v,
            Layout::Split(v) => {
                let v = v.grow(alloc, want)?; // i >= cap >= used: the order holds
                self.attrs.set(v.into_raw().as_ptr());
                v
            }
            _ => {
                let v = Values::new(alloc, want)?;
                self.attrs.set(v.into_raw().as_ptr());
                v
            }
        };
        if values.is_filled(i) || i >= values.used() {
            Ok(Ok(values.replace(i, Some(value))))
        } else {
            Ok(Err(value))
        }
    }

    /// Moves the attributes to a table of their own (if they are not in one) and sets
    /// `name`. On failure the instance is unchanged.
    fn set_combined(
        &self,
        alloc: Arrays<'_>,
        name: ObjRef<'h>,
        value: ObjRef<'h>,
    ) -> Result<Option<ObjRef<'h>>, HeapError> {
        let table = Table::new();
        let filled = match self.layout() {
            Layout::Split(values) => values
                .filled()
                .map(|(i, v)| (i, v.clone()))
                .collect::<Vec<_>>(),
            _ => Vec::new(),
        };
        let class = self.class();
        let copied = filled.into_iter().try_for_each(|(i, v)| {
            let key = class.key(i).ok_or(HeapError::NotAnInstance {
                type_name: "instance",
            })?;
            table.set(alloc, key, v).map(drop)
        });
        let old = copied.and_then(|()| table.set(alloc, name, value));
        if let Err(e) = old {
            table.clear(alloc);
            return Err(e);
        }
        let before = self.layout();
        self.store_table(table);
        if let Layout::Split(values) = before {
            values.free(alloc); // the originals of the values copied
        }
        old
    }

    /// `delattr(o, name)`; whether it was there.
    pub fn del_attr(&self, name: &ObjRef<'h>) -> Result<bool, HeapError> {
        let alloc = self.alloc();
        let old = match self.layout() {
            Layout::Empty => None,
            Layout::Combined(block) => self.with_table(block, |t| t.remove(alloc, name))?,
            Layout::Split(values) => {
                let Some(i) = self.class().key_index(name, false) else {
                    return Ok(false);
                };
                if !values.is_filled(i) {
                    return Ok(false);
                }
                let old = values.replace(i, None);
                if values.used() == 0 {
                    self.attrs.set(std::ptr::null_mut());
                    values.free(alloc); // every slot is empty
                }
                old.map(|v| (name.clone(), v))
            }
        };
        Ok(old.is_some())
    }

    /// Every (name, value), in insertion order.
    pub fn attrs(&self) -> Vec<(ObjRef<'h>, ObjRef<'h>)> {
        match self.layout() {
            Layout::Empty => Vec::new(),
            Layout::Split(values) => {
                let class = self.class();
                values
                    .filled()
                    .filter_map(|(i, v)| Some((class.key(i)?, v.clone())))
                    .collect()
            }
            Layout::Combined(block) => self.with_table(block, |t| t.items()),
        }
    }

    /// Drops every attribute (the collector's `clear`, and the instance's death). The block is
    /// detached first: the values dropped may run code that reaches this instance.
    fn clear_attrs(&self) {
        let layout = self.layout();
        if matches!(layout, Layout::Empty) {
            return;
        }
        self.attrs.set(std::ptr::null_mut());
        let alloc = self.alloc();
        match layout {
            Layout::Empty => {}
            Layout::Split(values) => values.free(alloc),
            // SAFETY: the detached table block this instance owned.
            Layout::Combined(block) => unsafe { Table::from_raw(Some(block)) }.clear(alloc),
        }
    }

    /// Bytes of the values array or table (outside the object's block).
    pub(crate) fn buffer_bytes(&self) -> usize {
        match self.layout() {
            Layout::Empty => 0,
            Layout::Split(values) => super::table::rounded(values.size()),
            Layout::Combined(block) => self.with_table(block, |t| t.buffer_bytes()),
        }
    }

    /// The class, then the values (a split instance's names are the class's strs; a table's
    /// keys are visited while one may be a container).
    fn trace(&self, v: &mut Visit<'_>) {
        v.visit(&self.class);
        match self.layout() {
            Layout::Empty => {}
            Layout::Split(values) => values.trace(v),
            Layout::Combined(block) => self.with_table(block, |t| t.trace(v)),
        }
    }
}

impl Drop for Instance<'_> {
    fn drop(&mut self) {
        // SAFETY: the class is dropped once, here, and not used after.
        unsafe { ManuallyDrop::drop(&mut self.class) };
        self.clear_attrs();
    }
}

/// The three run-time types of instances, by their class's finalizer. They share the payload
/// layout (`repr(transparent)` over [`Instance`]).
macro_rules! instance_type {
    ($name:ident, $static:ident, $type_name:literal, $has:expr, $legacy:expr) => {
        #[repr(transparent)]
        pub(crate) struct $name<'h>(pub(crate) Instance<'h>);
        impl Trace for $name<'_> {
            fn trace(&self, v: &mut Visit<'_>) {
                self.0.trace(v)
            }
            fn clear(&self) {
                self.0.clear_attrs()
            }
        }
        static $static: TypeInfo =
            // SAFETY: the trace reports references the instance holds (its class, its
            // attributes' containers), each once; dropping it only drops references (its
            // finalizer is `finalize`, which the collector runs on its careful path).
            unsafe { TypeInfo::new::<$name<'static>>($type_name).assume_exact_trace() };
        impl Object for $name<'_> {
            const CONTAINER: bool = true;
            const HAS_FINALIZER: bool = $has;
            const LEGACY_FINALIZER: bool = $legacy;
            fn type_info() -> &'static TypeInfo {
                &$static
            }
            fn finalize(this: &ObjRef<'_>) {
                run_finalizer(this)
            }
        }
    };
}

// Three names, so that the allocator's per-kind table tells them apart.
instance_type!(PlainInstance, PLAIN_INSTANCE, "instance", false, false);
instance_type!(FinInstance, FIN_INSTANCE, "instance+finalizer", true, false);
instance_type!(
    LegacyInstance,
    LEGACY_INSTANCE,
    "instance+legacy-finalizer",
    false,
    true
);

/// The instance payload of `obj`, if it is an instance.
pub fn as_instance<'a, 'h>(obj: &'a ObjRef<'h>) -> Option<&'a Instance<'h>> {
    obj.downcast_ref::<PlainInstance<'h>>()
        .map(|i| &i.0)
        .or_else(|| obj.downcast_ref::<FinInstance<'h>>().map(|i| &i.0))
        .or_else(|| obj.downcast_ref::<LegacyInstance<'h>>().map(|i| &i.0))
}

/// Calls the class's finalizer of a dying (or collected) instance.
fn run_finalizer(this: &ObjRef<'_>) {
    let Some(inst) = as_instance(this) else {
        return;
    };
    let Some((finalizer, _)) = &inst.class().finalizer else {
        return;
    };
    let finalizer = finalizer.clone();
    let Some(heap) = Heap::try_of(this) else {
        return;
    };
    if let Err(message) = finalizer(heap, this) {
        heap.gc().rc().report_unraisable(refcount::Unraisable {
            context: "finalizer",
            type_name: "instance",
            message,
        });
    }
}
