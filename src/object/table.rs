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
//!              8 or 16 B  1, 2, 4 or 8 bytes each    16 B each, in insertion order
//! ```
//!
//! - The **header** is 8 bytes while the table has no index or one of 1-byte slots (its
//!   counts then fit in a byte), 16 bytes after; its first byte is `log2` in both forms, so a
//!   reader knows which it is. Where the header lives is the owner's choice ([`HeadPlace`]): a
//!   dict keeps the short header in its own object (whose block has 8 bytes to spare), so the
//!   block of a small dict is its index and entries only ([`InOwner`]); an instance's table
//!   starts with it ([`InBlock`]). A long header is always in the block (the owner's copy then
//!   only says so, by its `log2`).
//! - A table of up to [`LINEAR_MAX`] entries has **no index** (`log2` is [`LINEAR`]): a lookup
//!   compares the key with each entry in order, identity first, then [`key_eq`] (a str's
//!   cached hash rejects most). Most dicts are this small; the 8- or 16-slot index they would
//!   otherwise need costs a 16-byte step of the block for most of them.
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

/// The smallest index: 8 slots (CPython's `PyDict_MINSIZE`).
const MIN_LOG2: u8 = 3;
/// The `log2` of a table without an index (its entries are searched in order).
const LINEAR: u8 = 0;
/// The most entries of a table without an index: as many as a 16-slot index serves.
const LINEAR_MAX: usize = 10;
/// An index slot never used since the last rebuild.
const EMPTY: i64 = -1;
/// An index slot whose entry was deleted.
const DUMMY: i64 = -2;
/// Probing's perturbation shift (CPython's `PERTURB_SHIFT`).
const PERTURB_SHIFT: u32 = 5;

/// A table's header, decoded (see [`SmallHeader`] and [`LargeHeader`] for the stored forms).
#[derive(Clone, Copy)]
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

/// The stored header of a table with 1-byte index slots (`log2 <= SMALL_LOG2`): its counts
/// are at most `usable(SMALL_LOG2)` = 85.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct SmallHeader {
    log2: u8,
    container_keys: bool,
    len: u8,
    nentries: u8,
    cap: u8,
    _pad: [u8; 3],
}

/// The stored header of a larger table.
#[repr(C)]
struct LargeHeader {
    log2: u8,
    container_keys: bool,
    _pad: [u8; 2],
    len: u32,
    nentries: u32,
    cap: u32,
}

/// The largest index with the short header (its slots are 1 byte, see `index_width`).
const SMALL_LOG2: u8 = 7;
const _: () =
    assert!(std::mem::size_of::<SmallHeader>() == 8 && std::mem::size_of::<LargeHeader>() == 16);

/// Where a table's short header lives: in front of the index in its block, or in the object
/// that owns the table.
pub(crate) trait HeadPlace: Default {
    /// The owner's room for the short header, if it has some.
    fn head(&self) -> Option<NonNull<SmallHeader>>;
}

/// The header is at the start of the block (an instance's table: the instance keeps one word).
#[derive(Default)]
pub(crate) struct InBlock;
impl HeadPlace for InBlock {
    fn head(&self) -> Option<NonNull<SmallHeader>> {
        None
    }
}

/// The short header is in the owner (a dict's table): 8 more bytes in the object, 8 fewer in
/// the block, and a 16-byte step saved for most small dicts.
#[derive(Default)]
pub(crate) struct InOwner(Cell<SmallHeader>);
impl HeadPlace for InOwner {
    fn head(&self) -> Option<NonNull<SmallHeader>> {
        NonNull::new(self.0.as_ptr())
    }
}

/// The bytes before the index in a block whose index has `1 << log2` slots: the header,
/// unless the owner keeps it (`in_owner`, short headers only).
fn prefix(log2: u8, in_owner: bool) -> usize {
    if in_owner && log2 <= SMALL_LOG2 {
        0
    } else {
        header_size(log2)
    }
}

/// The bytes of the header of a table whose index has `1 << log2` slots.
fn header_size(log2: u8) -> usize {
    if log2 <= SMALL_LOG2 {
        std::mem::size_of::<SmallHeader>()
    } else {
        std::mem::size_of::<LargeHeader>()
    }
}

/// One entry: both `None` once deleted.
struct Entry<'h> {
    key: Option<ObjRef<'h>>,
    value: Option<ObjRef<'h>>,
}

const ENTRY_SIZE: usize = std::mem::size_of::<Entry<'static>>();
const _: () = assert!(ENTRY_SIZE == 16);

/// The entries an index of `1 << log2` slots may serve (CPython's `USABLE_FRACTION`).
fn usable(log2: u8) -> usize {
    if log2 == LINEAR {
        return LINEAR_MAX;
    }
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

/// The offset of the entries in a block (a multiple of 8: an index has at least 8 slots).
fn entries_offset(log2: u8, in_owner: bool) -> usize {
    if log2 == LINEAR {
        return prefix(log2, in_owner);
    }
    prefix(log2, in_owner) + (1usize << log2) * index_width(log2)
}

/// The bytes of a block, or None on overflow.
fn block_size(log2: u8, cap: usize, in_owner: bool) -> Option<usize> {
    cap.checked_mul(ENTRY_SIZE)?
        .checked_add(entries_offset(log2, in_owner))
}

/// The bytes the allocator hands out for a table or values block of `size` bytes. Such blocks
/// are asked for in multiples of 16, so they are 16-aligned (a class whose size is a multiple
/// of 16 gives 16-aligned blocks): an instance keeps a values block's capacity in the low four
/// bits of its address.
pub(crate) fn rounded(size: usize) -> usize {
    let size = size.next_multiple_of(16);
    SizeClass::of(size).map_or(size, SizeClass::block_size)
}

/// An insertion-ordered map from hashable objects to objects, its short header kept where
/// `P` says. See the module documentation.
pub(crate) struct Table<'h, P: HeadPlace = InBlock> {
    block: Cell<Option<NonNull<Header>>>,
    place: P,
    _refs: PhantomData<ObjRef<'h>>,
}

const _: () = assert!(
    std::mem::size_of::<Table<'static>>() == 8
        && std::mem::size_of::<Table<'static, InOwner>>() == 16
);

impl<'h> Table<'h> {
    /// The table whose block is `block` (from [`into_raw`](Table::into_raw)).
    ///
    /// # Safety
    /// `block` must come from `into_raw` of a table whose block was not freed since, and be
    /// owned by the caller (one table per block).
    pub(crate) unsafe fn from_raw(block: Option<NonNull<u8>>) -> Self {
        Table {
            block: Cell::new(block.map(NonNull::cast)),
            place: InBlock,
            _refs: PhantomData,
        }
    }

    /// The table's block (None when empty), to be kept by its owner.
    pub(crate) fn into_raw(self) -> Option<NonNull<u8>> {
        self.block.get().map(NonNull::cast)
    }
}

impl<'h, P: HeadPlace> Table<'h, P> {
    /// An empty table (no block).
    pub(crate) fn new() -> Self {
        Table {
            block: Cell::new(None),
            place: P::default(),
            _refs: PhantomData,
        }
    }

    /// A view of this block, for a reader that runs no code outside this module.
    fn raw(&self) -> Option<Raw<'h>> {
        self.block.get().map(|header| Raw {
            header,
            head: self.place.head(),
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
        let mut header = r.header();
        let ix = header.nentries as usize;
        header.nentries += 1;
        header.len += 1;
        header.container_keys |= key.type_info().container;
        r.set_header(header);
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
        let mut header = r.header();
        header.len -= 1;
        r.set_header(header);
        if header.len == 0 {
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
            head: self.place.head(),
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
            None => (LINEAR, 0, 0, 0, false),
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
                    if len < LINEAR_MAX {
                        log2 = LINEAR; // room for one more without an index
                    }
                    (log2, len, n, cap, true)
                }
            }
        };
        let head = self.place.head();
        let in_owner = head.is_some();
        let base = if rebuild { live } else { cap };
        let want = (base + base / 4).max(base + 1).min(usable(log2));
        let size = block_size(log2, want, in_owner).ok_or_else(OutOfMemory::too_large)?;
        // Fill the block the allocator hands out.
        let cap = ((rounded(size) - entries_offset(log2, in_owner)) / ENTRY_SIZE).min(usable(log2));
        let size = block_size(log2, cap, in_owner).ok_or_else(OutOfMemory::too_large)?;
        let cap32 = u32::try_from(cap).map_err(|_| OutOfMemory::too_large())?;
        let block = alloc.alloc(ArrayKind::Table, size)?.cast::<Header>();
        let new = Raw::<'h> {
            header: block,
            head,
            _refs: PhantomData,
        };
        // What the old block needs is read before the new header is written: an owner's
        // header is shared by both blocks.
        let old = self
            .raw()
            .map(|r| (r.header.cast::<u8>(), r.entries(), r.size(), r.header()));
        let container_keys = old.as_ref().is_some_and(|(.., h)| h.container_keys);
        new.set_header(Header {
            len: live as u32,
            nentries: if rebuild { live as u32 } else { used as u32 },
            cap: cap32,
            log2,
            container_keys: container_keys && !rebuild,
        });
        match old {
            None => new.fill_index(EMPTY),
            Some((old_block, old_entries, ..)) if !rebuild => {
                // Same index: copy it and move the entries bitwise.
                // SAFETY: both blocks have the same index size and prefix; the new one has
                // room for the `used` entries; the old block is freed below without dropping
                // them.
                unsafe {
                    let start = prefix(log2, in_owner);
                    let index_bytes = entries_offset(log2, in_owner) - start;
                    let from = old_block.add(start);
                    let to = new.header.cast::<u8>().add(start);
                    to.copy_from_nonoverlapping(from, index_bytes);
                    new.entries().copy_from_nonoverlapping(old_entries, used);
                }
            }
            Some((_, old_entries, ..)) => {
                // Rebuild: live entries moved in order, the index made again from their hashes.
                new.fill_index(EMPTY);
                let mut n = 0;
                let mut containers = false;
                for i in 0..used {
                    // SAFETY: i < nentries of the old block; each entry is moved once, and the
                    // old block is freed below without dropping.
                    let e = unsafe { old_entries.add(i).read() };
                    let Some(key) = &e.key else { continue };
                    containers |= key.type_info().container;
                    if log2 != LINEAR {
                        // A stored key was hashable when inserted, and keys are immutable.
                        let hash = key_hash(key).unwrap_or(0);
                        let slot = new.empty_slot(hash);
                        new.set_index(slot, n as i64);
                    }
                    // SAFETY: n < live <= cap.
                    unsafe { new.entries().add(n).write(e) };
                    n += 1;
                }
                let mut header = new.header();
                header.container_keys = containers;
                new.set_header(header);
            }
        }
        if let Some((old_block, _, size, _)) = old {
            // SAFETY: the old block came from `alloc` with this size; its entries were moved.
            unsafe { alloc.dealloc(ArrayKind::Table, old_block, size) };
        }
        self.block.set(Some(block));
        Ok(new)
    }
}

/// A table's block, read and written through raw pointers by the functions of this module
/// only; none of them runs code outside the module while it holds a reference into the block.
#[derive(Clone, Copy)]
struct Raw<'h> {
    /// The block.
    header: NonNull<Header>,
    /// The owner's room for the short header (`InOwner`), if any.
    head: Option<NonNull<SmallHeader>>,
    _refs: PhantomData<ObjRef<'h>>,
}

impl<'h> Raw<'h> {
    /// The header, decoded from its stored form (chosen by the first byte, `log2`): the
    /// owner's short header, or the block's.
    fn header(&self) -> Header {
        if let Some(head) = self.head {
            // SAFETY: the owner's header cell, alive as long as the owner (which is reading
            // its table); the module invariant: no reference to it is alive.
            let h = unsafe { head.read() };
            if h.log2 <= SMALL_LOG2 {
                return Header {
                    len: h.len.into(),
                    nentries: h.nentries.into(),
                    cap: h.cap.into(),
                    log2: h.log2,
                    container_keys: h.container_keys,
                };
            }
        }
        let block = self.header.cast::<u8>();
        // SAFETY: a live block starts with its header (written by `set_header`) unless the
        // owner keeps it (above); its first byte is log2 in both forms; 16-aligned.
        unsafe {
            let log2 = block.read();
            if log2 <= SMALL_LOG2 {
                let h = block.cast::<SmallHeader>().read();
                Header {
                    len: h.len.into(),
                    nentries: h.nentries.into(),
                    cap: h.cap.into(),
                    log2,
                    container_keys: h.container_keys,
                }
            } else {
                let h = block.cast::<LargeHeader>().read();
                Header {
                    len: h.len,
                    nentries: h.nentries,
                    cap: h.cap,
                    log2,
                    container_keys: h.container_keys,
                }
            }
        }
    }

    /// Stores `h` in the form its `log2` calls for (the block was made for that `log2`), in
    /// the owner when it keeps short headers (a long one goes to the block, and the owner's
    /// copy keeps only its `log2`, which says so).
    fn set_header(&self, h: Header) {
        if let Some(head) = self.head {
            let small = h.log2 <= SMALL_LOG2;
            // SAFETY: the owner's header cell (see `header`).
            unsafe {
                head.write(SmallHeader {
                    log2: h.log2,
                    container_keys: h.container_keys,
                    len: if small { h.len as u8 } else { 0 },
                    nentries: if small { h.nentries as u8 } else { 0 },
                    cap: if small { h.cap as u8 } else { 0 },
                    _pad: [0; 3],
                })
            };
            if small {
                return;
            }
        }
        let block = self.header.cast::<u8>();
        // SAFETY: the block starts with room for the header of its log2, 16-aligned; the
        // module invariant: no reference to it is alive. Small counts fit a byte (at most
        // usable(SMALL_LOG2) = 85).
        unsafe {
            if h.log2 <= SMALL_LOG2 {
                block.cast::<SmallHeader>().write(SmallHeader {
                    log2: h.log2,
                    container_keys: h.container_keys,
                    len: h.len as u8,
                    nentries: h.nentries as u8,
                    cap: h.cap as u8,
                    _pad: [0; 3],
                });
            } else {
                block.cast::<LargeHeader>().write(LargeHeader {
                    log2: h.log2,
                    container_keys: h.container_keys,
                    _pad: [0; 2],
                    len: h.len,
                    nentries: h.nentries,
                    cap: h.cap,
                });
            }
        }
    }

    fn size(&self) -> usize {
        let h = self.header();
        block_size(h.log2, h.cap as usize, self.head.is_some()).unwrap_or(usize::MAX)
    }

    fn entries(&self) -> NonNull<Entry<'h>> {
        // SAFETY: the entries start inside the block, 8-aligned (see `entries_offset`).
        unsafe {
            self.header
                .cast::<u8>()
                .add(entries_offset(self.header().log2, self.head.is_some()))
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

    /// The first byte of the index, which follows the header (when the block holds it).
    fn index_base(&self, log2: u8) -> NonNull<u8> {
        // SAFETY: the prefix is inside the block (`grow` sized the block for it).
        unsafe {
            self.header
                .cast::<u8>()
                .add(prefix(log2, self.head.is_some()))
        }
    }

    fn index_get(&self, slot: usize) -> i64 {
        let log2 = self.header().log2;
        let base = self.index_base(log2);
        // SAFETY: slot < 1 << log2 (masked by the callers): inside the index.
        unsafe {
            match index_width(log2) {
                1 => i64::from(base.cast::<i8>().add(slot).read()),
                2 => i64::from(base.cast::<i16>().add(slot).read()),
                4 => i64::from(base.cast::<i32>().add(slot).read()),
                _ => base.cast::<i64>().add(slot).read(),
            }
        }
    }

    /// Stores `ix` in index slot `slot` (nothing for a table without an index).
    fn set_index(&self, slot: usize, ix: i64) {
        let log2 = self.header().log2;
        if log2 == LINEAR {
            return;
        }
        let base = self.index_base(log2);
        // SAFETY: as `index_get`; the value fits the width, since entry numbers are below
        // 2/3 of the slot count.
        unsafe {
            match index_width(log2) {
                1 => base.cast::<i8>().add(slot).write(ix as i8),
                2 => base.cast::<i16>().add(slot).write(ix as i16),
                4 => base.cast::<i32>().add(slot).write(ix as i32),
                _ => base.cast::<i64>().add(slot).write(ix),
            }
        }
    }

    fn fill_index(&self, value: i64) {
        if self.header().log2 == LINEAR {
            return;
        }
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
    /// A table without an index answers slot 0 and the entry found by comparing in order.
    fn lookup(&self, hash: u64, key: &ObjRef<'_>) -> (usize, Option<usize>) {
        if self.header().log2 == LINEAR {
            let found = self.used().iter().position(|e| {
                e.key
                    .as_ref()
                    .is_some_and(|k| k.ptr_eq(key) || key_eq(k, key))
            });
            return (0, found);
        }
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
        if self.header().log2 == LINEAR {
            return 0;
        }
        self.probe(hash)
            .find(|&slot| self.index_get(slot) == EMPTY)
            .unwrap_or(0)
    }
}
