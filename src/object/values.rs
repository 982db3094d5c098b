//! [`Values`]: the attribute values of an instance whose names are its class's shared keys
//! (CPython's split table, PEP 412): slot `i` holds the value of the class's key `i`, or
//! nothing.
//!
//! ```text
//!   Instance.attrs = address | cap/2 ──> +---------+---------+-----+------------+
//!                                        | slot 0  | slot 1  | ... | slot cap-1 |
//!                                        +---------+---------+-----+------------+
//!                                          8 bytes each: Option<ObjRef>, no header
//! ```
//!
//! One block of the private heap with no header: its capacity fills the 16-byte block the
//! allocator hands out, so it is even, and at most [`MAX_SLOTS`] (the class's shared keys are
//! at most [`MAX_SHARED_KEYS`](super::MAX_SHARED_KEYS)). The instance keeps `cap / 2` (1..=15)
//! in the four low bits of its attribute word, which are free in a 16-aligned address: a
//! values block is the word's address and these bits together ([`into_raw`](Values::into_raw)
//! and [`from_raw`](Values::from_raw)). The attributes, in insertion order, are the filled
//! slots (the instance keeps its slots in key order, see `instance.rs`); one past the last
//! filled slot, [`used`](Values::used), is found by a scan of at most 30 slots.
//!
//! This module owns one invariant, as `table.rs`: **no reference into the block is alive while
//! code outside this module runs**; every value given up is returned to the caller, and
//! [`free`](Values::free) is called on a block already detached from its instance.

use std::ptr::NonNull;

use obj_alloc::OutOfMemory;

use crate::heap::{ArrayKind, Arrays};
use refcount::{ObjRef, Visit};

use super::table::rounded;

/// The most slots of a values block: `cap / 2` must fit in the four low bits of the word.
pub(crate) const MAX_SLOTS: usize = 30;
/// The low bits of an attribute word that hold `cap / 2`.
pub(crate) const CAP_BITS: usize = 0b1111;
const SLOT_SIZE: usize = std::mem::size_of::<Option<ObjRef<'static>>>();
const _: () =
    assert!(SLOT_SIZE == 8 && MAX_SLOTS / 2 <= CAP_BITS && MAX_SLOTS >= super::MAX_SHARED_KEYS);

/// A view of a values block. Copying the view does not copy the block.
#[derive(Clone, Copy)]
pub(crate) struct Values<'h> {
    slots: NonNull<Option<ObjRef<'h>>>,
    /// Slots in the block: even, 2..=MAX_SLOTS.
    cap: usize,
}

impl<'h> Values<'h> {
    /// A block with room for at least `cap` slots (at most [`MAX_SLOTS`]), all empty.
    pub(crate) fn new(alloc: Arrays<'_>, cap: usize) -> Result<Self, OutOfMemory> {
        if cap > MAX_SLOTS {
            return Err(OutOfMemory::too_large());
        }
        let cap = rounded(cap.max(1) * SLOT_SIZE) / SLOT_SIZE; // even: blocks are 16-byte units
        let slots = alloc
            .alloc(ArrayKind::Values, cap * SLOT_SIZE)?
            .cast::<Option<ObjRef<'h>>>();
        assert!(
            slots.addr().get() & CAP_BITS == 0,
            "blocks of the private heap are 16-aligned"
        );
        for i in 0..cap {
            // SAFETY: a fresh block of `cap` slots.
            unsafe { slots.add(i).write(None) };
        }
        Ok(Values { slots, cap })
    }

    /// The view of a block from its attribute word, as [`into_raw`](Values::into_raw) gave it.
    ///
    /// # Safety
    /// `raw` must come from [`into_raw`](Values::into_raw) of a block not freed since.
    pub(crate) unsafe fn from_raw(raw: NonNull<u8>) -> Self {
        let code = raw.addr().get() & CAP_BITS;
        Values {
            // SAFETY: the address of a live block (the caller's contract) is nonzero.
            slots: unsafe { NonNull::new_unchecked(raw.as_ptr().map_addr(|a| a & !CAP_BITS)) }
                .cast(),
            cap: code * 2,
        }
    }

    /// The attribute word: the block's address with `cap / 2` in its low bits (never 0).
    pub(crate) fn into_raw(self) -> NonNull<u8> {
        self.slots.cast::<u8>().map_addr(|a| a | (self.cap / 2))
    }

    /// One past the last filled slot.
    pub(crate) fn used(&self) -> usize {
        let slots = self.slots();
        (0..slots.len())
            .rev()
            .find(|&i| slots[i].is_some())
            .map_or(0, |i| i + 1)
    }

    /// Slots in the block.
    pub(crate) fn cap(&self) -> usize {
        self.cap
    }

    /// The bytes of the block, as the allocator hands it out.
    pub(crate) fn size(&self) -> usize {
        self.cap * SLOT_SIZE
    }

    fn slots(&self) -> &[Option<ObjRef<'h>>] {
        // SAFETY: the block holds `cap` initialised slots.
        unsafe { std::slice::from_raw_parts(self.slots.as_ptr(), self.cap) }
    }

    /// Whether slot `i` is filled.
    pub(crate) fn is_filled(&self, i: usize) -> bool {
        self.slots().get(i).is_some_and(Option::is_some)
    }

    /// A new reference to the value in slot `i`.
    pub(crate) fn get(&self, i: usize) -> Option<ObjRef<'h>> {
        self.slots().get(i).cloned().flatten()
    }

    /// Stores `value` in slot `i` (below `cap`) and returns what was there.
    pub(crate) fn replace(&self, i: usize, value: Option<ObjRef<'h>>) -> Option<ObjRef<'h>> {
        assert!(i < self.cap, "slot {i} beyond the block");
        // SAFETY: slot i is initialised (i < cap); the reference ends with the statement, and
        // the old value is dropped by the caller.
        unsafe { std::mem::replace(&mut *self.slots.add(i).as_ptr(), value) }
    }

    /// The filled slots (index, value), in order.
    pub(crate) fn filled(&self) -> impl Iterator<Item = (usize, &ObjRef<'h>)> {
        self.slots()
            .iter()
            .enumerate()
            .filter_map(|(i, v)| Some((i, v.as_ref()?)))
    }

    /// Reports every value.
    pub(crate) fn trace(&self, visit: &mut Visit<'_>) {
        for (_, v) in self.filled() {
            visit.visit(v);
        }
    }

    /// A larger block (at least `cap` slots) with the same values; this one is freed.
    pub(crate) fn grow(self, alloc: Arrays<'_>, cap: usize) -> Result<Self, OutOfMemory> {
        let new = Values::new(alloc, cap.max(self.cap))?;
        // SAFETY: the new block has at least `self.cap` slots; its empty slots are overwritten
        // bitwise (None needs no drop), and the old block is freed without dropping the values
        // it moved.
        unsafe {
            new.slots.copy_from_nonoverlapping(self.slots, self.cap);
            alloc.dealloc(ArrayKind::Values, self.slots.cast(), self.size());
        }
        Ok(new)
    }

    /// Drops every value and frees the block, which must be detached from its instance (the
    /// values may run code that reaches the instance).
    pub(crate) fn free(self, alloc: Arrays<'_>) {
        for i in 0..self.cap {
            // SAFETY: every slot below cap is initialised; each is moved out once, and the
            // detached block is reachable by nobody else.
            drop(unsafe { self.slots.add(i).read() });
        }
        // SAFETY: the block came from `alloc` with `size` bytes; its values were moved out.
        unsafe { alloc.dealloc(ArrayKind::Values, self.slots.cast(), self.size()) };
    }
}
