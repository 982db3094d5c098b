//! Interior mutability for payloads that hold references: [`RefCell1`] (one slot) and
//! [`RefVec`] (a growable list).
//!
//! This module owns one invariant: **no borrow of the contents is alive while code outside this
//! module runs.** Dropping a reference can run arbitrary code (a finalizer, a weakref callback)
//! that may reach the same container again, so every method moves old values out first and
//! drops them after its borrow ended; `trace` only reads, and the collector's visitor changes
//! nothing. That makes `clear` (the collector breaking a cycle) safe at any time.

use std::cell::UnsafeCell;

use crate::handle::ObjRef;
use crate::type_info::Visit;

/// One mutable, traceable reference slot (an attribute, a cell object's contents).
#[derive(Default)]
pub struct RefCell1<'h> {
    slot: UnsafeCell<Option<ObjRef<'h>>>,
}

impl<'h> RefCell1<'h> {
    /// A slot holding `value`.
    pub fn new(value: Option<ObjRef<'h>>) -> Self {
        RefCell1 {
            slot: UnsafeCell::new(value),
        }
    }

    /// A new reference to the value.
    pub fn get(&self) -> Option<ObjRef<'h>> {
        // SAFETY: no borrow of the slot outlives this expression; cloning runs no user code.
        unsafe { (*self.slot.get()).clone() }
    }

    /// Stores `value`, dropping the old one after the slot is updated.
    pub fn set(&self, value: Option<ObjRef<'h>>) {
        drop(self.replace(value));
    }

    /// Stores `value` and returns the old one.
    pub fn replace(&self, value: Option<ObjRef<'h>>) -> Option<ObjRef<'h>> {
        // SAFETY: the borrow ends with the statement; the old value is dropped by the caller.
        unsafe { std::mem::replace(&mut *self.slot.get(), value) }
    }

    /// Takes the value out.
    pub fn take(&self) -> Option<ObjRef<'h>> {
        self.replace(None)
    }

    /// Whether the slot is empty.
    pub fn is_none(&self) -> bool {
        // SAFETY: a read that ends at once.
        unsafe { (*self.slot.get()).is_none() }
    }

    /// Reports the reference, if any.
    #[inline]
    pub fn trace(&self, visit: &mut Visit<'_>) {
        // SAFETY: the visitor runs no code that changes the graph (Trace's contract), so the
        // slot is not written while borrowed.
        if let Some(r) = unsafe { &*self.slot.get() } {
            visit.visit(r);
        }
    }
}

/// A growable, traceable list of references (a Python list's items).
#[derive(Default)]
pub struct RefVec<'h> {
    items: UnsafeCell<Vec<ObjRef<'h>>>,
}

impl<'h> RefVec<'h> {
    /// An empty list.
    pub fn new() -> Self {
        RefVec::default()
    }

    /// A list of `items`.
    pub fn from_vec(items: Vec<ObjRef<'h>>) -> Self {
        RefVec {
            items: UnsafeCell::new(items),
        }
    }

    /// Runs `f` on the items. `f` must not run user code (it is private to this module).
    fn with<R>(&self, f: impl FnOnce(&mut Vec<ObjRef<'h>>) -> R) -> R {
        // SAFETY: only this module calls `with`, always with closures that drop nothing and
        // call out to nothing, so no other borrow exists while this one lives.
        f(unsafe { &mut *self.items.get() })
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        self.with(|v| v.len())
    }

    /// Whether there are no items.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A new reference to item `i`.
    pub fn get(&self, i: usize) -> Option<ObjRef<'h>> {
        self.with(|v| v.get(i).cloned())
    }

    /// Appends an item.
    pub fn push(&self, item: ObjRef<'h>) {
        self.with(|v| v.push(item))
    }

    /// Removes and returns the last item.
    pub fn pop(&self) -> Option<ObjRef<'h>> {
        self.with(|v| v.pop())
    }

    /// Inserts an item at `i` (clamped to the length, like `list.insert`).
    pub fn insert(&self, i: usize, item: ObjRef<'h>) {
        self.with(|v| {
            let i = i.min(v.len());
            v.insert(i, item)
        })
    }

    /// Removes and returns item `i`.
    pub fn remove(&self, i: usize) -> Option<ObjRef<'h>> {
        self.with(|v| (i < v.len()).then(|| v.remove(i)))
    }

    /// Replaces item `i`, returning the old one (dropped by the caller, after the borrow).
    /// Gives `item` back as the error when `i` is out of range.
    pub fn set(&self, i: usize, item: ObjRef<'h>) -> Result<ObjRef<'h>, ObjRef<'h>> {
        self.with(|v| match v.get_mut(i) {
            Some(slot) => Ok(std::mem::replace(slot, item)),
            None => Err(item),
        })
    }

    /// Removes every item; they are dropped after the list is empty.
    pub fn clear(&self) {
        drop(self.with(std::mem::take));
    }

    /// New references to all items (a snapshot: later changes do not show).
    pub fn to_vec(&self) -> Vec<ObjRef<'h>> {
        self.with(|v| v.clone())
    }

    /// Reports every item.
    #[inline]
    pub fn trace(&self, visit: &mut Visit<'_>) {
        // SAFETY: the visitor does not change the graph (Trace's contract), so the list is not
        // written while borrowed.
        for r in unsafe { &*self.items.get() } {
            visit.visit(r);
        }
    }

    /// Bytes of the item buffer (for `size_of`).
    pub fn capacity_bytes(&self) -> usize {
        self.with(|v| v.capacity() * std::mem::size_of::<ObjRef<'h>>())
    }
}
