//! `list`: a growable array of references; list objects come from a bounded free list.
//!
//! The object is 48 bytes: the collector's pre-header, the header, and the raw parts of a
//! `Vec` of its items (the pointer, a 32-bit length and a 32-bit capacity; CPython's list
//! object is 56 bytes). The item array comes from the system allocator and is counted by its
//! capacity.
//!
//! This module owns one invariant, as refcount's `RefVec`: **no borrow of the items is alive
//! while code outside this module runs.** Every method rebuilds the `Vec` for an operation that
//! runs no user code, stores its raw parts back, and drops the values it gave up afterwards.

use std::cell::Cell;
use std::mem::ManuallyDrop;
use std::ptr::NonNull;

use obj_alloc::Policy;
use refcount::{ObjRef, Object, Trace, TypeInfo, Visit};

use crate::HeapError;

/// The most items of a list: the length and the capacity (at most twice the length after a
/// growth) are stored in 32 bits.
pub const MAX_LIST_LEN: usize = (u32::MAX / 2) as usize;

/// `list`. Made by [`Heap::list`](crate::Heap::list).
///
/// ```
/// # let heap = pyheap::Heap::new(pyheap::Config::default()).unwrap();
/// let l = heap.list(vec![]).unwrap();
/// l.append(heap.int(1).unwrap()).unwrap();
/// l.insert(0, heap.int(0).unwrap()).unwrap();
/// assert_eq!(l.len(), 2);
/// assert!(l.pop().is_some());
/// ```
pub struct List<'h> {
    /// The raw parts of the items' `Vec` (see the module documentation).
    ptr: Cell<NonNull<ObjRef<'h>>>,
    len: Cell<u32>,
    cap: Cell<u32>,
}

impl<'h> List<'h> {
    /// A list of `items`, or `None` when they are more than [`MAX_LIST_LEN`].
    pub(crate) fn from_vec(mut items: Vec<ObjRef<'h>>) -> Option<Self> {
        if items.len() > MAX_LIST_LEN {
            return None;
        }
        if items.capacity() > 2 * MAX_LIST_LEN {
            items.shrink_to_fit();
        }
        let list = List {
            ptr: Cell::new(NonNull::dangling()),
            len: Cell::new(0),
            cap: Cell::new(0),
        };
        list.store(items);
        Some(list)
    }

    /// Keeps the raw parts of `items` (whose length and capacity fit, see `MAX_LIST_LEN`).
    fn store(&self, items: Vec<ObjRef<'h>>) {
        let mut items = ManuallyDrop::new(items);
        let len = u32::try_from(items.len()).expect("at most MAX_LIST_LEN items");
        let cap = u32::try_from(items.capacity()).expect("at most twice MAX_LIST_LEN");
        // SAFETY: a Vec's pointer is never null (dangling when it has no capacity).
        self.ptr
            .set(unsafe { NonNull::new_unchecked(items.as_mut_ptr()) });
        self.len.set(len);
        self.cap.set(cap);
    }

    /// Runs `f` on the items as a `Vec`, then keeps its raw parts again. `f` must run no code
    /// outside this module and not panic (it is private; a `Vec` operation that cannot
    /// allocate aborts).
    fn with<R>(&self, f: impl FnOnce(&mut Vec<ObjRef<'h>>) -> R) -> R {
        // SAFETY: ptr, len and cap are the raw parts of a Vec (kept by `store`), and no other
        // Vec owns them while `f` runs (the module invariant: nothing else runs); they are
        // replaced by the parts of the Vec `f` leaves.
        let mut items = ManuallyDrop::new(unsafe {
            Vec::from_raw_parts(
                self.ptr.get().as_ptr(),
                self.len.get() as usize,
                self.cap.get() as usize,
            )
        });
        let r = f(&mut items);
        self.store(ManuallyDrop::into_inner(items));
        r
    }

    /// The items, for a reader that runs no code outside this module.
    fn items(&self) -> &[ObjRef<'h>] {
        // SAFETY: the first `len` items of the Vec's buffer are initialised.
        unsafe { std::slice::from_raw_parts(self.ptr.get().as_ptr(), self.len.get() as usize) }
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        self.len.get() as usize
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `l[i]`, or None past the end.
    pub fn get(&self, i: usize) -> Option<ObjRef<'h>> {
        self.items().get(i).cloned()
    }

    /// The error for a list that cannot grow.
    fn full(&self) -> Result<(), HeapError> {
        if self.len() >= MAX_LIST_LEN {
            return Err(HeapError::TooLong {
                len: self.len() + 1,
            });
        }
        Ok(())
    }

    /// `l.append(item)`. Fails if `item` lives in another heap, or the list holds
    /// [`MAX_LIST_LEN`] items.
    pub fn append(&self, item: ObjRef<'h>) -> Result<(), HeapError> {
        crate::check_same_heap(self, &item)?;
        self.full()?;
        self.with(|v| v.push(item));
        Ok(())
    }

    /// `l.insert(i, item)` (an index past the end appends).
    pub fn insert(&self, i: usize, item: ObjRef<'h>) -> Result<(), HeapError> {
        crate::check_same_heap(self, &item)?;
        self.full()?;
        self.with(|v| v.insert(i.min(v.len()), item));
        Ok(())
    }

    /// `l.pop()`: the last item, or None when empty.
    pub fn pop(&self) -> Option<ObjRef<'h>> {
        self.with(Vec::pop)
    }

    /// `l.pop(i)`.
    pub fn pop_at(&self, i: usize) -> Option<ObjRef<'h>> {
        self.with(|v| (i < v.len()).then(|| v.remove(i)))
    }

    /// `l[i] = item`; the old item is dropped after the list is updated.
    pub fn set(&self, i: usize, item: ObjRef<'h>) -> Result<(), HeapError> {
        crate::check_same_heap(self, &item)?;
        let len = self.len();
        // The item comes back when `i` is out of range: it is dropped out here, like the old one.
        let old = self.with(|v| match v.get_mut(i) {
            Some(slot) => Ok(std::mem::replace(slot, item)),
            None => Err(item),
        });
        match old {
            Ok(old) => {
                drop(old);
                Ok(())
            }
            Err(item) => {
                drop(item);
                Err(HeapError::IndexOutOfRange { index: i, len })
            }
        }
    }

    /// `l.clear()`: the items are dropped after the list is empty.
    pub fn clear(&self) {
        drop(self.with(std::mem::take));
    }

    /// New references to every item, in order (a snapshot).
    pub fn to_vec(&self) -> Vec<ObjRef<'h>> {
        self.items().to_vec()
    }

    /// Bytes of the item array (outside the object's block).
    pub(crate) fn buffer_bytes(&self) -> usize {
        self.cap.get() as usize * std::mem::size_of::<ObjRef<'h>>()
    }
}

impl Trace for List<'_> {
    fn trace(&self, v: &mut Visit<'_>) {
        // The visitor does not change the graph (Trace's contract): the items stay put.
        for r in self.items() {
            v.visit(r);
        }
    }
    fn clear(&self) {
        List::clear(self)
    }
}

impl Drop for List<'_> {
    fn drop(&mut self) {
        self.clear();
    }
}

const _: () = assert!(std::mem::size_of::<List<'static>>() == 16);

// SAFETY: the trace reports each reference the payload holds, once, and dropping it only
// drops references.
static LIST: TypeInfo = unsafe { TypeInfo::new::<List<'static>>("list").assume_exact_trace() };
impl Object for List<'_> {
    const CONTAINER: bool = true;
    const POLICY: Policy = Policy::LIST;
    fn type_info() -> &'static TypeInfo {
        &LIST
    }
}
