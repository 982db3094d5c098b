//! Opaque containers: stand-ins for CPython objects of other types (functions, modules, code,
//! sets, ...) when a heap graph is replayed: a type name, a size and the references.

use std::cell::UnsafeCell;
use std::marker::PhantomData;

use refcount::{items, ObjRef, Object, RefCell1, Trace, TypeInfo, VarObject, Visit};

use crate::HeapError;

/// An object of another type: its references and enough slots to occupy the size it had.
/// Made by [`Heap::opaque`](crate::Heap::opaque).
///
/// ```
/// # let heap = pyheap::Heap::new(pyheap::Config::default()).unwrap();
/// let f = heap.opaque("function", 152, &[heap.str("name").unwrap()]).unwrap();
/// assert!(heap.size_of(&f) >= 152);
/// ```
pub struct Opaque<'h> {
    type_name: ObjRef<'h>,
    refs: usize,
    slots: usize,
    /// Makes the payload `!Freeze`, as its items (cells written through a shared reference)
    /// are: their pointers derive from a reference to the payload (`items`), which must not
    /// be read-only past its end.
    _mutable_items: UnsafeCell<()>,
    _heap: PhantomData<ObjRef<'h>>,
}

impl<'h> Opaque<'h> {
    pub(crate) fn new(type_name: ObjRef<'h>, refs: usize, slots: usize) -> Self {
        Opaque {
            type_name,
            refs,
            slots,
            _mutable_items: UnsafeCell::new(()),
            _heap: PhantomData,
        }
    }

    /// The name of the type it stands for.
    pub fn type_name(&self) -> &str {
        self.type_name
            .downcast_ref::<super::Str>()
            .map_or("?", super::Str::as_str)
    }

    /// The references it holds now, in order.
    pub fn referents(&self) -> Vec<ObjRef<'h>> {
        items(self)[..self.refs]
            .iter()
            .filter_map(RefCell1::get)
            .collect()
    }

    /// How many reference slots it has.
    pub fn ref_slots(&self) -> usize {
        self.refs
    }

    /// Stores `value` in reference slot `i` (the old value is dropped after the store): for
    /// building graphs whose references form cycles.
    pub fn set_ref(&self, i: usize, value: Option<ObjRef<'h>>) -> Result<(), HeapError> {
        if let Some(v) = &value {
            crate::check_same_heap(self, v)?;
        }
        let slot = items(self)[..self.refs]
            .get(i)
            .ok_or(HeapError::IndexOutOfRange {
                index: i,
                len: self.refs,
            })?;
        slot.set(value);
        Ok(())
    }
}

impl Trace for Opaque<'_> {
    fn trace(&self, v: &mut Visit<'_>) {
        for slot in &items(self)[..self.refs] {
            slot.trace(v);
        }
    }
    /// Like the `tp_clear` of the types it stands for: drops every reference.
    fn clear(&self) {
        for slot in &items(self)[..self.refs] {
            slot.set(None);
        }
    }
}

// SAFETY: the trace reports each reference the payload holds, once, and dropping it only
// drops references.
static OPAQUE: TypeInfo =
    unsafe { TypeInfo::new_var::<Opaque<'static>>("opaque").assume_exact_trace() };
impl Object for Opaque<'_> {
    const CONTAINER: bool = true;
    fn type_info() -> &'static TypeInfo {
        &OPAQUE
    }
}

impl<'h> VarObject for Opaque<'h> {
    /// A reference slot; the slots past `refs` are padding (empty) up to the size asked for.
    type Item = RefCell1<'h>;
    fn len(&self) -> usize {
        self.slots
    }
}
