//! `tuple`: immutable, its references in its own block, dead tuples kept per length.

use std::marker::PhantomData;

use obj_alloc::Policy;
use refcount::{items, ObjRef, Object, Trace, TypeInfo, VarObject, Visit};

/// `tuple`. Made by [`Heap::tuple`](crate::Heap::tuple).
///
/// ```
/// # let heap = pyheap::Heap::new(pyheap::Config::default()).unwrap();
/// let t = heap.tuple(&[heap.int(1).unwrap(), heap.str("a").unwrap()]).unwrap();
/// assert_eq!(t.len(), 2);
/// assert!(!heap.gc().is_tracked(t.as_obj())); // only atoms inside: not tracked
/// ```
pub struct Tuple<'h> {
    len: usize,
    _heap: PhantomData<ObjRef<'h>>,
}

impl Tuple<'_> {
    pub(crate) fn with_len(len: usize) -> Self {
        Tuple {
            len,
            _heap: PhantomData,
        }
    }
}

impl<'h> Tuple<'h> {
    /// The elements.
    pub fn items(&self) -> &[ObjRef<'h>] {
        items(self)
    }

    /// A new reference to element `i`.
    pub fn get(&self, i: usize) -> Option<ObjRef<'h>> {
        self.items().get(i).cloned()
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the tuple is `()`.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Trace for Tuple<'_> {
    fn trace(&self, v: &mut Visit<'_>) {
        for r in self.items() {
            v.visit(r);
        }
    }
    // A tuple cannot be cleared (CPython's tuples have no tp_clear either): cycles through a
    // tuple are broken by clearing the mutable objects in them.
}

// SAFETY: the trace reports each reference the payload holds, once, and dropping it only
// drops references (which also makes a tuple of garbage free to free without its drop).
static TUPLE: TypeInfo = unsafe {
    TypeInfo::new_var::<Tuple<'static>>("tuple")
        .assume_exact_trace()
        .drop_only_releases_refs()
};
impl Object for Tuple<'_> {
    const CONTAINER: bool = true;
    const POLICY: Policy = Policy::TUPLE;
    fn type_info() -> &'static TypeInfo {
        &TUPLE
    }
}

impl<'h> VarObject for Tuple<'h> {
    type Item = ObjRef<'h>;
    fn len(&self) -> usize {
        self.len
    }
}
