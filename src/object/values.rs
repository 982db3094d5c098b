//! [`Values`]: the attribute values of an instance whose names are its class's shared keys
//! (CPython's split table, PEP 412): slot `i` holds the value of the class's key `i`, or
//! nothing.
//!
//! ```text
//!   Instance.attrs ──> +------+-----+---------+---------+-----+-----------+
//!                      | used | cap | slot 0  | slot 1  | ... | slot cap-1 |
//!                      +------+-----+---------+---------+-----+-----------+
//!                        u32    u32   8 bytes each: Option<ObjRef>
//! ```
//!
//! One block of the private heap, its capacity filling the 16-byte block the allocator hands
//! out. `used` is one past the last filled slot: the instance's attributes, in insertion order,
//! are the filled slots below it (the instance keeps its slots in key order, see
//! `instance.rs`).
//!
//! This module owns one invariant, as `table.rs`: **no reference into the block is alive while
//! code outside this module runs**; every value given up is returned to the caller, and
//! [`free`](Values::free) is called on a block already detached from its instance.

use std::marker::PhantomData;
use std::ptr::NonNull;

use obj_alloc::OutOfMemory;

use crate::heap::{ArrayKind, Arrays};
use refcount::{ObjRef, Visit};

use super::table::{rounded, too_large};

#[repr(C)]
struct Header {
    /// One past the last filled slot.
    used: u32,
    /// Slots in the block.
    cap: u32,
}

const HEADER_SIZE: usize = std::mem::size_of::<Header>();
const SLOT_SIZE: usize = std::mem::size_of::<Option<ObjRef<'static>>>();
const _: () = assert!(HEADER_SIZE == 8 && SLOT_SIZE == 8);

/// A view of a values block. Copying the view does not copy the block.
#[derive(Clone, Copy)]
pub(crate) struct Values<'h> {
    header: NonNull<Header>,
    _refs: PhantomData<&'h ()>,
}

impl<'h> Values<'h> {
    /// A block with room for at least `cap` slots, all empty.
    pub(crate) fn new(alloc: Arrays<'_>, cap: usize) -> Result<Self, OutOfMemory> {
        let size = cap
            .checked_mul(SLOT_SIZE)
            .and_then(|b| b.checked_add(HEADER_SIZE))
            .ok_or_else(too_large)?;
        let cap = (rounded(size) - HEADER_SIZE) / SLOT_SIZE;
        let cap32 = u32::try_from(cap).map_err(|_| too_large())?;
        let header = alloc
            .alloc(ArrayKind::Values, HEADER_SIZE + cap * SLOT_SIZE)?
            .cast::<Header>();
        // SAFETY: a fresh block of HEADER_SIZE + cap slots, 8-aligned (what Header and slots need).
        unsafe {
            header.write(Header {
                used: 0,
                cap: cap32,
            });
            let slots = header
                .cast::<u8>()
                .add(HEADER_SIZE)
                .cast::<Option<ObjRef<'h>>>();
            for i in 0..cap {
                slots.add(i).write(None);
            }
        }
        Ok(Values {
            header,
            _refs: PhantomData,
        })
    }

    /// The view of a block made by [`new`](Values::new) (and kept as `into_raw` gave it).
    ///
    /// # Safety
    /// `raw` must come from [`into_raw`](Values::into_raw) of a block not freed since.
    pub(crate) unsafe fn from_raw(raw: NonNull<u8>) -> Self {
        Values {
            header: raw.cast(),
            _refs: PhantomData,
        }
    }

    /// The block's address.
    pub(crate) fn into_raw(self) -> NonNull<u8> {
        self.header.cast()
    }

    fn header(&self) -> &Header {
        // SAFETY: a live block starts with its header.
        unsafe { self.header.as_ref() }
    }

    /// One past the last filled slot.
    pub(crate) fn used(&self) -> usize {
        self.header().used as usize
    }

    /// Slots in the block.
    pub(crate) fn cap(&self) -> usize {
        self.header().cap as usize
    }

    /// The bytes of the block, as the allocator hands it out.
    pub(crate) fn size(&self) -> usize {
        HEADER_SIZE + self.cap() * SLOT_SIZE
    }

    fn slots(&self) -> &[Option<ObjRef<'h>>] {
        // SAFETY: `cap` initialised slots follow the header.
        unsafe {
            std::slice::from_raw_parts(
                self.header.cast::<u8>().add(HEADER_SIZE).cast().as_ptr(),
                self.cap(),
            )
        }
    }

    /// Whether slot `i` is filled.
    pub(crate) fn is_filled(&self, i: usize) -> bool {
        self.slots().get(i).is_some_and(Option::is_some)
    }

    /// A new reference to the value in slot `i`.
    pub(crate) fn get(&self, i: usize) -> Option<ObjRef<'h>> {
        self.slots().get(i).cloned().flatten()
    }

    /// Stores `value` in slot `i` (below `cap`) and returns what was there; keeps `used` one
    /// past the last filled slot.
    pub(crate) fn replace(&self, i: usize, value: Option<ObjRef<'h>>) -> Option<ObjRef<'h>> {
        assert!(i < self.cap(), "slot {i} beyond the block");
        let filled = value.is_some();
        // SAFETY: slot i is initialised (i < cap); the reference ends with the statement, and
        // the old value is dropped by the caller.
        let old = unsafe {
            let slot = self
                .header
                .cast::<u8>()
                .add(HEADER_SIZE)
                .cast::<Option<ObjRef<'h>>>();
            std::mem::replace(&mut *slot.add(i).as_ptr(), value)
        };
        let mut used = self.used();
        if filled {
            used = used.max(i + 1);
        } else {
            while used > 0 && !self.is_filled(used - 1) {
                used -= 1;
            }
        }
        // SAFETY: the header of a live block; used <= cap fits in u32.
        unsafe { (*self.header.as_ptr()).used = used as u32 };
        old
    }

    /// The filled slots (index, value), in order.
    pub(crate) fn filled(&self) -> impl Iterator<Item = (usize, &ObjRef<'h>)> {
        self.slots()[..self.used()]
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
        let new = Values::new(alloc, cap.max(self.cap()))?;
        let used = self.used();
        // SAFETY: both blocks have at least `used` slots; the new one's empty slots are
        // overwritten bitwise (None needs no drop), the old block is freed without dropping
        // the values it moved.
        unsafe {
            let from = self.header.cast::<u8>().add(HEADER_SIZE);
            let to = new.header.cast::<u8>().add(HEADER_SIZE);
            to.copy_from_nonoverlapping(from, used * SLOT_SIZE);
            (*new.header.as_ptr()).used = used as u32;
            alloc.dealloc(ArrayKind::Values, self.header.cast(), self.size());
        }
        Ok(new)
    }

    /// Drops every value and frees the block, which must be detached from its instance (the
    /// values may run code that reaches the instance).
    pub(crate) fn free(self, alloc: Arrays<'_>) {
        let cap = self.cap();
        let size = self.size();
        // SAFETY: the slots follow the header inside the block.
        let slots =
            unsafe { self.header.cast::<u8>().add(HEADER_SIZE) }.cast::<Option<ObjRef<'h>>>();
        for i in 0..cap {
            // SAFETY: every slot below cap is initialised; each is moved out once, and the
            // detached block is reachable by nobody else.
            drop(unsafe { slots.add(i).read() });
        }
        // SAFETY: the block came from `alloc` with `size` bytes; its values were moved out.
        unsafe { alloc.dealloc(ArrayKind::Values, self.header.cast(), size) };
    }
}
