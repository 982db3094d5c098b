//! `list`: a growable array of references; list objects come from a bounded free list.

use obj_alloc::Policy;
use refcount::{ObjRef, Object, RefVec, Trace, TypeInfo, Visit};

use crate::HeapError;

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
    items: RefVec<'h>,
}

impl<'h> List<'h> {
    pub(crate) fn from_vec(items: Vec<ObjRef<'h>>) -> Self {
        List {
            items: RefVec::from_vec(items),
        }
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// `l[i]`, or None past the end.
    pub fn get(&self, i: usize) -> Option<ObjRef<'h>> {
        self.items.get(i)
    }

    /// `l.append(item)`. Fails if `item` lives in another heap.
    pub fn append(&self, item: ObjRef<'h>) -> Result<(), HeapError> {
        crate::check_same_heap(self, &item)?;
        self.items.push(item);
        Ok(())
    }

    /// `l.insert(i, item)` (an index past the end appends).
    pub fn insert(&self, i: usize, item: ObjRef<'h>) -> Result<(), HeapError> {
        crate::check_same_heap(self, &item)?;
        self.items.insert(i, item);
        Ok(())
    }

    /// `l.pop()`: the last item, or None when empty.
    pub fn pop(&self) -> Option<ObjRef<'h>> {
        self.items.pop()
    }

    /// `l.pop(i)`.
    pub fn pop_at(&self, i: usize) -> Option<ObjRef<'h>> {
        self.items.remove(i)
    }

    /// `l[i] = item`; the old item is dropped after the list is updated.
    pub fn set(&self, i: usize, item: ObjRef<'h>) -> Result<(), HeapError> {
        crate::check_same_heap(self, &item)?;
        let len = self.len();
        match self.items.set(i, item) {
            Ok(old) => {
                drop(old);
                Ok(())
            }
            Err(_) => Err(HeapError::IndexOutOfRange { index: i, len }),
        }
    }

    /// `l.clear()`.
    pub fn clear(&self) {
        self.items.clear()
    }

    /// New references to every item, in order (a snapshot).
    pub fn to_vec(&self) -> Vec<ObjRef<'h>> {
        self.items.to_vec()
    }

    /// Bytes of the item array (outside the object's block).
    pub(crate) fn buffer_bytes(&self) -> usize {
        self.items.capacity_bytes()
    }
}

impl Trace for List<'_> {
    fn trace(&self, v: &mut Visit<'_>) {
        self.items.trace(v)
    }
    fn clear(&self) {
        self.items.clear()
    }
}

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
