//! `dict`: an insertion-ordered table; dict objects come from a bounded free list.

use obj_alloc::Policy;
use refcount::{ObjPtr, ObjRef, Object, Trace, TypeInfo, Visit};

use crate::heap::Arrays;

use super::table::{InOwner, Table};
use crate::HeapError;

/// `dict`. Made by [`Heap::dict`](crate::Heap::dict). Keys must be hashable (see
/// [`key_hash`](super::key_hash)): ints, floats, strs, bytes, None and tuples of hashables by
/// value; instances, classes and opaque stand-ins by identity.
///
/// ```
/// # let heap = pyheap::Heap::new(pyheap::Config::default()).unwrap();
/// let d = heap.dict().unwrap();
/// d.set(heap.str("k").unwrap(), heap.int(1).unwrap()).unwrap();
/// assert!(d.get(&heap.str("k").unwrap()).unwrap().is_some()); // equal by content
/// assert!(d.set(heap.list(vec![]).unwrap().erase(), heap.none()).is_err()); // unhashable
/// let class = heap.class("C", None).unwrap();
/// let (a, b) = (heap.instance(&class).unwrap(), heap.instance(&class).unwrap());
/// d.set(a.clone(), heap.int(2).unwrap()).unwrap(); // by identity
/// assert!(d.get(&a).unwrap().is_some() && d.get(&b).unwrap().is_none());
/// ```
///
/// The object is 48 bytes (the collector's pre-header, the header, one pointer and the table's
/// short header); the entries live in one block of the same private heap, CPython's compact table (see
/// `object/table.rs`): no index up to 10 entries (searched in order), then an index of 1-byte
/// slots up to 128 slots, then wider, and 16-byte (key, value) entries in insertion order,
/// made at the first insertion and freed when the dict is emptied. The collector visits the keys only while one may be a container (a tuple, an
/// instance, an opaque stand-in).
pub struct Dict<'h> {
    table: Table<'h, InOwner>,
}

impl<'h> Dict<'h> {
    /// An empty dict. It gets a block only once it is inside a heap object (`set` is reached
    /// through a handle), so a value dropped before it was placed frees nothing.
    pub(crate) fn new() -> Self {
        Dict {
            table: Table::new(),
        }
    }

    /// The allocator of the heap this dict lives in.
    fn alloc(&self) -> Arrays<'_> {
        // SAFETY: a Dict with a table block, or reached through a handle, is the payload of a
        // live object (see `new`), whose heap outlives it.
        unsafe { Arrays::of(self) }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether the dict is empty.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// `d.get(key)`.
    pub fn get(&self, key: &ObjRef<'h>) -> Result<Option<ObjRef<'h>>, HeapError> {
        self.table.get(key)
    }

    /// `d[key] = value`. Fails on an unhashable key or an object of another heap. Storing a
    /// key or value that may be tracked has the collector track the dict (CPython's
    /// `MAINTAIN_TRACKING`).
    pub fn set(&self, key: ObjRef<'h>, value: ObjRef<'h>) -> Result<(), HeapError> {
        crate::check_same_heap(self, &key)?;
        crate::check_same_heap(self, &value)?;
        let track = crate::heap::may_be_tracked(&key) || crate::heap::may_be_tracked(&value);
        let old = self.table.set(self.alloc(), key, value)?;
        if track {
            self.track();
        }
        drop(old);
        Ok(())
    }

    /// Has the collector track this dict, if it does not.
    fn track(&self) {
        // SAFETY: a Dict reached through a handle is the payload of a live object (see
        // `new`); the handle made here borrows it without a count of its own.
        let me =
            std::mem::ManuallyDrop::new(unsafe { ObjRef::from_owned(ObjPtr::from_payload(self)) });
        if let Some(heap) = crate::Heap::try_of(&me) {
            heap.gc().track(&me);
        }
    }

    /// `del d[key]`; returns whether the key was there.
    pub fn delete(&self, key: &ObjRef<'h>) -> Result<bool, HeapError> {
        Ok(self.table.remove(self.alloc(), key)?.is_some())
    }

    /// New references to every (key, value), in insertion order.
    pub fn items(&self) -> Vec<(ObjRef<'h>, ObjRef<'h>)> {
        self.table.items()
    }

    /// `d.clear()`.
    pub fn clear(&self) {
        self.table.clear(self.alloc())
    }

    pub(crate) fn buffer_bytes(&self) -> usize {
        self.table.buffer_bytes()
    }
}

impl Trace for Dict<'_> {
    fn trace(&self, v: &mut Visit<'_>) {
        self.table.trace(v)
    }
    fn clear(&self) {
        Dict::clear(self)
    }
}

impl Drop for Dict<'_> {
    fn drop(&mut self) {
        if !self.table.is_empty() {
            self.clear();
        }
    }
}

// SAFETY: the trace reports each reference the payload holds, once, and dropping it only
// drops references.
static DICT: TypeInfo = unsafe { TypeInfo::new::<Dict<'static>>("dict").assume_exact_trace() };
impl Object for Dict<'_> {
    const CONTAINER: bool = true;
    const POLICY: Policy = Policy::DICT;
    fn type_info() -> &'static TypeInfo {
        &DICT
    }
}
