//! [`Table`]: CPython's compact dict (3.6+), the storage of `dict` objects and of instance
//! attributes that left their class's shared keys.
//!
//! A table is one pointer. Its memory is a single block of the private heap (obj-alloc, so the
//! arena accounting sees it), made at the first insertion and freed when the table is emptied:
//!
//! ```text
//!   Table ──> +--------+--------------------------+--------------------------------+
//!             | Header | index: 2^log2 slots       | entries: cap x (key, value)    |
//!             +--------+--------------------------+--------------------------------+
//!               16 B     1, 2, 4 or 8 bytes each    16 B each, in insertion order
//! ```
//!
//! - The **index** is an open-addressed hash table of entry numbers (CPython's `dk_indices`):
//!   1-byte slots for tables of up to 128 slots, 2-byte up to 2^15, then 4 and 8. A slot is
//!   `EMPTY`, `DUMMY` (its entry was deleted: probing goes on past it) or an entry number.
//!   Probing follows CPython's recurrence `i = 5i + 1 + perturb; perturb >>= 5`.
//! - The **entries** are dense and in insertion order; a deleted entry stays as a hole (both
//!   references `None`) until the next rebuild compacts them. There are at most 2/3 as many
//!   entries as index slots (CPython's `USABLE_FRACTION`), so probing always meets an `EMPTY`
//!   slot. Unlike CPython, the entry array grows in small steps (by a quarter, at least one
//!   entry, filling the 16-byte block) up to that bound before the index doubles, so a table
//!   built by insertion carries little slack.
//! - An entry holds no hash (CPython's layout for str-keyed tables): every hashable key of the
//!   model has a cached or O(1) hash, except tuples, whose hash is recomputed on a rebuild.
//!   Probing compares keys by identity, then by [`key_eq`].
//! - The header counts live entries (`len`), used entries (`nentries`, holes included) and the
//!   capacity, and keeps a flag set while a container key (a tuple) may be present: without
//!   one, [`trace`](Table::trace) visits values only, like CPython's dicts with str keys. The
//!   flag is recomputed at each rebuild.
//!
//! This module owns one invariant, the same as refcount's `RefVec`: **no borrow of the table
//! is alive while code outside this module runs.** Hashing and comparing keys only read atoms
//! and tuples (no user code), and every value the table gives up (an old value, a deleted
//! entry, the entries of a cleared table) is returned, or dropped after the table was updated.
//! So the collector may `trace` or `clear` the table at any time.
//!
//! A table does not know its allocator: the object that holds it passes its heap's
//! [`Arrays`] (the heap's allocator) to every method that may allocate or free, and must [`clear`](Table::clear) it
//! before it is dropped (a table that never held an entry has no block).

use std::cell::Cell;
use std::marker::PhantomData;
use std::ptr::NonNull;

use obj_alloc::{OutOfMemory, SizeClass};

use crate::heap::{ArrayKind, Arrays};
use refcount::{ObjRef, Visit};

use super::{key_eq, key_hash};
use crate::HeapError;

/// The bytes of the header at the start of a table's block.
const HEADER_SIZE: usize = std::mem::size_of::<Header>();
/// The smallest index: 8 slots (CPython's `PyDict_MINSIZE`).
const MIN_LOG2: u8 = 3;
/// An index slot never used since the last rebuild.
const EMPTY: i64 = -1;
/// An index slot whose entry was deleted.
const DUMMY: i64 = -2;
/// Probing's perturbation shift (CPython's `PERTURB_SHIFT`).
const PERTURB_SHIFT: u32 = 5;

/// The start of a table's block.
#[repr(C)]
struct Header {
    /// Live entries.
    len: u32,
    /// Entries used since the last rebuild, live or deleted.
    nentries: u32,
    /// Entries the block has room for (at most `usable(log2)`).
    cap: u32,
    /// The index has `1 << log2` slots.
    log2: u8,
    /// Whether a container key may be present (exact after a rebuild; set by an insertion).
    container_keys: bool,
}

/// One entry: both `None` once deleted.
struct Entry<'h> {
    key: Option<ObjRef<'h>>,
    value: Option<ObjRef<'h>>,
}

const ENTRY_SIZE: usize = std::mem::size_of::<Entry<'static>>();
const _: () = assert!(ENTRY_SIZE == 16 && HEADER_SIZE == 16);

/// The entries an index of `1 << log2` slots may serve (CPython's `USABLE_FRACTION`).
fn usable(log2: u8) -> usize {
    ((1usize << log2) * 2) / 3
}

/// The bytes of one index slot.
fn index_width(log2: u8) -> usize {
    match log2 {
        0..=7 => 1,
        8..=15 => 2,
        16..=31 => 4,
        _ => 8,
    }
}

/// The offset of the entries in a block (a multiple of 8).
fn entries_offset(log2: u8) -> usize {
    HEADER_SIZE + (1usize << log2) * index_width(log2)
}

/// The bytes of a block, or None on overflow.
fn block_size(log2: u8, cap: usize) -> Option<usize> {
    cap.checked_mul(ENTRY_SIZE)?
        .checked_add(entries_offset(log2))
}

/// The bytes the allocator hands out for a request of `size` (its size class's block size).
pub(crate) fn rounded(size: usize) -> usize {
    SizeClass::of(size).map_or(size.next_multiple_of(16), SizeClass::block_size)
}

/// The out-of-memory error for a size that does not fit the address space.
pub(crate) fn too_large() -> OutOfMemory {
    OutOfMemory {
        requested: usize::MAX,
        limit: None,
        in_use: 0,
        cause: raw_alloc::OomCause::Os,
    }
}

/// An insertion-ordered map from hashable objects to objects. See the module documentation.
pub(crate) struct Table<'h> {
    block: Cell<Option<NonNull<Header>>>,
    _refs: PhantomData<ObjRef<'h>>,
}

impl<'h> Table<'h> {
    /// An empty table (no block).
    pub(crate) const fn new() -> Self {
        Table {
            block: Cell::new(None),
            _refs: PhantomData,
        }
    }

    /// The table whose block is `block` (from [`into_raw`](Table::into_raw)).
    ///
    /// # Safety
    /// `block` must come from `into_raw` of a table whose block was not freed since, and be
    /// owned by the caller (one table per block).
    pub(crate) unsafe fn from_raw(block: Option<NonNull<u8>>) -> Self {
        Table {
            block: Cell::new(block.map(NonNull::cast)),
            _refs: PhantomData,
        }
    }

    /// The table's block (None when empty), to be kept by its owner.
    pub(crate) fn into_raw(self) -> Option<NonNull<u8>> {
        self.block.get().map(NonNull::cast)
    }

    /// A view of this block, for a reader that runs no code outside this module.
    fn raw(&self) -> Option<Raw<'h>> {
        self.block.get().map(|header| Raw {
            header,
            _refs: PhantomData,
        })
    }

    /// Number of entries.
    pub(crate) fn len(&self) -> usize {
        self.raw().map_or(0, |r| r.header().len as usize)
    }

    /// Whether the table is empty.
    pub(crate) fn is_empty(&self) -> bool {
        self.block.get().is_none()
    }

    /// `d.get(key)`.
    pub(crate) fn get(&self, key: &ObjRef<'h>) -> Result<Option<ObjRef<'h>>, HeapError> {
        let hash = key_hash(key)?;
        Ok(self.raw().and_then(|r| {
            let (_, ix) = r.lookup(hash, key);
            ix.and_then(|ix| r.entry(ix).value.clone())
        }))
    }

    /// `d[key] = value`. Returns the value it replaces.
    pub(crate) fn set(
        &self,
        alloc: Arrays<'_>,
        key: ObjRef<'h>,
        value: ObjRef<'h>,
    ) -> Result<Option<ObjRef<'h>>, HeapError> {
        let hash = key_hash(&key)?;
        if let Some(r) = self.raw() {
            if let (_, Some(ix)) = r.lookup(hash, &key) {
                return Ok(r.entry_mut(ix).value.replace(value));
            }
        }
        let r = match self.raw() {
            Some(r) if (r.header().nentries as usize) < r.header().cap as usize => r,
            _ => self.grow(alloc)?,
        };
        let (slot, _) = r.lookup(hash, &key);
        let header = r.header_mut();
        let ix = header.nentries as usize;
        header.nentries += 1;
        header.len += 1;
        header.container_keys |= key.type_info().container;
        r.set_index(slot, ix as i64);
        // SAFETY: ix < cap (grow made room), and the slot is unused: write without dropping.
        unsafe {
            r.entries().add(ix).write(Entry {
                key: Some(key),
                value: Some(value),
            })
        };
        Ok(None)
    }

    /// `del d[key]`: the removed (key, value), or None if absent. The block is freed when the
    /// last entry goes.
    pub(crate) fn remove(
        &self,
        alloc: Arrays<'_>,
        key: &ObjRef<'h>,
    ) -> Result<Option<(ObjRef<'h>, ObjRef<'h>)>, HeapError> {
        let hash = key_hash(key)?;
        let Some(r) = self.raw() else {
            return Ok(None);
        };
        let (slot, Some(ix)) = r.lookup(hash, key) else {
            return Ok(None);
        };
        r.set_index(slot, DUMMY);
        let entry = r.entry_mut(ix);
        let (k, v) = (entry.key.take(), entry.value.take());
        r.header_mut().len -= 1;
        if r.header().len == 0 {
            self.clear(alloc); // every entry is a hole: nothing is dropped
        }
        Ok(k.zip(v))
    }

    /// New references to every (key, value), in insertion order (a snapshot).
    pub(crate) fn items(&self) -> Vec<(ObjRef<'h>, ObjRef<'h>)> {
        let Some(r) = self.raw() else {
            return Vec::new();
        };
        r.used()
            .iter()
            .filter_map(|e| Some((e.key.clone()?, e.value.clone()?)))
            .collect()
    }

    /// Removes every entry and frees the block; the entries are dropped after the table is
    /// empty, so code they run may use the table again.
    pub(crate) fn clear(&self, alloc: Arrays<'_>) {
        let Some(r) = self.block.take().map(|header| Raw::<'h> {
            header,
            _refs: PhantomData,
        }) else {
            return;
        };
        let n = r.header().nentries as usize;
        let size = r.size();
        let entries = r.entries();
        for i in 0..n {
            // SAFETY: the block is detached from the table, so nothing else reaches it; each
            // used entry is read (moved out) once, then the block is freed without dropping.
            drop(unsafe { entries.add(i).read() });
        }
        // SAFETY: the block came from `alloc` with `size` bytes and is no longer referenced.
        unsafe { alloc.dealloc(ArrayKind::Table, r.header.cast(), size) };
    }

    /// Reports every value, and every key while a container key may be present.
    pub(crate) fn trace(&self, visit: &mut Visit<'_>) {
        let Some(r) = self.raw() else {
            return;
        };
        let keys = r.header().container_keys;
        for e in r.used() {
            if keys {
                if let Some(k) = &e.key {
                    visit.visit(k);
                }
            }
            if let Some(v) = &e.value {
                visit.visit(v);
            }
        }
    }

    /// Bytes of the block (outside the object's block), as the allocator hands it out.
    pub(crate) fn buffer_bytes(&self) -> usize {
        self.raw().map_or(0, |r| rounded(r.size()))
    }

    /// Makes room for one more entry: a larger entry array under the same index while the
    /// index allows it, else a rebuild (holes dropped, the index sized for three times the
    /// live entries, as CPython's `GROWTH_RATE`). The table is unchanged on failure.
    fn grow(&self, alloc: Arrays<'_>) -> Result<Raw<'h>, OutOfMemory> {
        let (log2, live, used, cap, rebuild) = match self.raw() {
            None => (MIN_LOG2, 0, 0, 0, false),
            Some(r) => {
                let h = r.header();
                let (len, n, cap) = (h.len as usize, h.nentries as usize, h.cap as usize);
                // Grow in place unless holes are as many as live entries (then compact).
                if cap < usable(h.log2) && n - len <= len {
                    (h.log2, len, n, cap, false)
                } else {
                    let mut log2 = MIN_LOG2;
                    while (1usize << log2) < len * 3 || usable(log2) <= len {
                        log2 += 1;
                    }
                    (log2, len, n, cap, true)
                }
            }
        };
        let base = if rebuild { live } else { cap };
        let want = (base + base / 4).max(base + 1).min(usable(log2));
        let size = block_size(log2, want).ok_or_else(too_large)?;
        // Fill the block the allocator hands out.
        let cap = ((rounded(size) - entries_offset(log2)) / ENTRY_SIZE).min(usable(log2));
        let size = block_size(log2, cap).ok_or_else(too_large)?;
        let cap32 = u32::try_from(cap).map_err(|_| too_large())?;
        let block = alloc.alloc(ArrayKind::Table, size)?.cast::<Header>();
        let new = Raw::<'h> {
            header: block,
            _refs: PhantomData,
        };
        let old = self.raw();
        let container_keys = old.as_ref().is_some_and(|r| r.header().container_keys);
        // SAFETY: a fresh block of `size` bytes, 8-aligned (all `Header` needs): room for the header.
        unsafe {
            block.write(Header {
                len: live as u32,
                nentries: if rebuild { live as u32 } else { used as u32 },
                cap: cap32,
                log2,
                container_keys: container_keys && !rebuild,
            })
        };
        match old {
            None => new.fill_index(EMPTY),
            Some(old) if !rebuild => {
                // Same index: copy it and move the entries bitwise.
                // SAFETY: both blocks have the same index size; the new one has room for the
                // `used` entries; the old block is freed below without dropping them.
                unsafe {
                    let index_bytes = entries_offset(log2) - HEADER_SIZE;
                    let from = old.header.cast::<u8>().add(HEADER_SIZE);
                    let to = new.header.cast::<u8>().add(HEADER_SIZE);
                    to.copy_from_nonoverlapping(from, index_bytes);
                    new.entries().copy_from_nonoverlapping(old.entries(), used);
                }
            }
            Some(old) => {
                // Rebuild: live entries moved in order, the index made again from their hashes.
                new.fill_index(EMPTY);
                let mut n = 0;
                let mut containers = false;
                for i in 0..used {
                    // SAFETY: i < nentries of the old block; each entry is moved once, and the
                    // old block is freed below without dropping.
                    let e = unsafe { old.entries().add(i).read() };
                    let Some(key) = &e.key else { continue };
                    containers |= key.type_info().container;
                    // A stored key was hashable when inserted, and keys are immutable.
                    let hash = key_hash(key).unwrap_or(0);
                    let slot = new.empty_slot(hash);
                    new.set_index(slot, n as i64);
                    // SAFETY: n < live <= cap.
                    unsafe { new.entries().add(n).write(e) };
                    n += 1;
                }
                new.header_mut().container_keys = containers;
            }
        }
        if let Some(old) = old {
            let size = old.size();
            // SAFETY: the old block came from `alloc` with this size; its entries were moved.
            unsafe { alloc.dealloc(ArrayKind::Table, old.header.cast(), size) };
        }
        self.block.set(Some(block));
        Ok(new)
    }
}

/// A table's block, read and written through raw pointers by the functions of this module
/// only; none of them runs code outside the module while it holds a reference into the block.
#[derive(Clone, Copy)]
struct Raw<'h> {
    header: NonNull<Header>,
    _refs: PhantomData<ObjRef<'h>>,
}

impl<'h> Raw<'h> {
    fn header(&self) -> &Header {
        // SAFETY: a live block starts with its header (written by `grow`).
        unsafe { self.header.as_ref() }
    }

    #[allow(clippy::mut_from_ref)]
    fn header_mut(&self) -> &mut Header {
        // SAFETY: as `header`; the module invariant: no other reference to it is alive.
        unsafe { &mut *self.header.as_ptr() }
    }

    fn size(&self) -> usize {
        let h = self.header();
        block_size(h.log2, h.cap as usize).unwrap_or(usize::MAX)
    }

    fn entries(&self) -> NonNull<Entry<'h>> {
        // SAFETY: the entries start inside the block, 8-aligned (see `entries_offset`).
        unsafe {
            self.header
                .cast::<u8>()
                .add(entries_offset(self.header().log2))
                .cast()
        }
    }

    /// The used entries (live and holes).
    fn used(&self) -> &[Entry<'h>] {
        // SAFETY: the first `nentries` entries are initialised.
        unsafe {
            std::slice::from_raw_parts(self.entries().as_ptr(), self.header().nentries as usize)
        }
    }

    fn entry(&self, ix: usize) -> &Entry<'h> {
        &self.used()[ix]
    }

    #[allow(clippy::mut_from_ref)]
    fn entry_mut(&self, ix: usize) -> &mut Entry<'h> {
        assert!(ix < self.header().nentries as usize);
        // SAFETY: an initialised entry; the module invariant: no other reference to it.
        unsafe { &mut *self.entries().as_ptr().add(ix) }
    }

    fn index_get(&self, slot: usize) -> i64 {
        let log2 = self.header().log2;
        // SAFETY: slot < 1 << log2 (masked by the callers); the index follows the header.
        unsafe {
            let base = self.header.cast::<u8>().add(HEADER_SIZE);
            match index_width(log2) {
                1 => i64::from(base.cast::<i8>().add(slot).read()),
                2 => i64::from(base.cast::<i16>().add(slot).read()),
                4 => i64::from(base.cast::<i32>().add(slot).read()),
                _ => base.cast::<i64>().add(slot).read(),
            }
        }
    }

    fn set_index(&self, slot: usize, ix: i64) {
        let log2 = self.header().log2;
        // SAFETY: as `index_get`; the value fits the width, since entry numbers are below
        // 2/3 of the slot count.
        unsafe {
            let base = self.header.cast::<u8>().add(HEADER_SIZE);
            match index_width(log2) {
                1 => base.cast::<i8>().add(slot).write(ix as i8),
                2 => base.cast::<i16>().add(slot).write(ix as i16),
                4 => base.cast::<i32>().add(slot).write(ix as i32),
                _ => base.cast::<i64>().add(slot).write(ix),
            }
        }
    }

    fn fill_index(&self, value: i64) {
        for slot in 0..1usize << self.header().log2 {
            self.set_index(slot, value);
        }
    }

    /// The slots `hash` probes, in order (endless: the caller stops at an `EMPTY` slot, and
    /// at least a third of the slots are empty).
    fn probe(&self, hash: u64) -> impl Iterator<Item = usize> {
        let mask = (1usize << self.header().log2) - 1;
        let mut perturb = hash;
        let mut i = hash as usize & mask;
        let mut first = true;
        std::iter::from_fn(move || {
            if !first {
                perturb >>= PERTURB_SHIFT;
                i = (i
                    .wrapping_mul(5)
                    .wrapping_add(perturb as usize)
                    .wrapping_add(1))
                    & mask;
            }
            first = false;
            Some(i)
        })
    }

    /// Where `key` is: its slot and entry number, or the slot an insertion would take (the
    /// first `DUMMY` or `EMPTY` slot met) and None.
    fn lookup(&self, hash: u64, key: &ObjRef<'_>) -> (usize, Option<usize>) {
        let mut free = None;
        for slot in self.probe(hash) {
            match self.index_get(slot) {
                EMPTY => return (free.unwrap_or(slot), None),
                DUMMY => _ = free.get_or_insert(slot),
                ix => {
                    let ix = ix as usize;
                    if let Some(k) = &self.entry(ix).key {
                        if k.ptr_eq(key) || key_eq(k, key) {
                            return (slot, Some(ix));
                        }
                    }
                }
            }
        }
        unreachable!("probing is endless")
    }

    /// The first `EMPTY` slot `hash` probes (a rebuild has no `DUMMY` slots).
    fn empty_slot(&self, hash: u64) -> usize {
        self.probe(hash)
            .find(|&slot| self.index_get(slot) == EMPTY)
            .unwrap_or(0)
    }
}
