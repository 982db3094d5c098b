//! [`Table`]: an insertion-ordered hash table of references, the storage of `dict` objects and
//! of instance attributes (CPython's compact dict: an index table into an entry array).
//!
//! This module owns one invariant, the same as refcount's `RefVec`: **no borrow of the table
//! is alive while code outside this module runs.** Hashing and comparing keys only read atoms
//! and tuples (no user code), and every value the table gives up (an old value, a deleted
//! entry) is returned or dropped after the borrow ended. So the collector may `trace` or
//! `clear` the table at any time.

use std::cell::UnsafeCell;

use hashbrown::HashTable;
use refcount::{ObjRef, Visit};

use super::{key_eq, key_hash};
use crate::HeapError;

struct Entry<'h> {
    hash: u64,
    key: ObjRef<'h>,
    value: ObjRef<'h>,
}

#[derive(Default)]
struct Inner<'h> {
    /// Indices into `entries`.
    index: HashTable<usize>,
    /// In insertion order; `None` where an entry was deleted.
    entries: Vec<Option<Entry<'h>>>,
    live: usize,
}

/// An insertion-ordered map from hashable objects to objects.
#[derive(Default)]
pub struct Table<'h> {
    inner: UnsafeCell<Inner<'h>>,
}

impl<'h> Table<'h> {
    /// Runs `f` on the table. Private: every caller passes a closure that runs no user code and
    /// drops no reference.
    fn with<R>(&self, f: impl FnOnce(&mut Inner<'h>) -> R) -> R {
        // SAFETY: see the module invariant: no other borrow exists while `f` runs.
        f(unsafe { &mut *self.inner.get() })
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.with(|t| t.live)
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `d.get(key)`.
    pub fn get(&self, key: &ObjRef<'h>) -> Result<Option<ObjRef<'h>>, HeapError> {
        let hash = key_hash(key)?;
        Ok(self.with(|t| {
            let i = *t.index.find(hash, |&i| matches(&t.entries[i], hash, key))?;
            t.entries[i].as_ref().map(|e| e.value.clone())
        }))
    }

    /// `d[key] = value`. Returns the value it replaces.
    pub fn set(&self, key: ObjRef<'h>, value: ObjRef<'h>) -> Result<Option<ObjRef<'h>>, HeapError> {
        let hash = key_hash(&key)?;
        Ok(self.with(|t| {
            if let Some(&i) = t.index.find(hash, |&i| matches(&t.entries[i], hash, &key)) {
                let entry = t.entries[i].as_mut().expect("indexed entries are live");
                return Some(std::mem::replace(&mut entry.value, value));
            }
            let i = t.entries.len();
            t.entries.push(Some(Entry { hash, key, value }));
            let entries = &t.entries;
            t.index
                .insert_unique(hash, i, |&j| entries[j].as_ref().map_or(0, |e| e.hash));
            t.live += 1;
            None
        }))
    }

    /// `del d[key]`: the removed (key, value), or None if absent.
    pub fn remove(&self, key: &ObjRef<'h>) -> Result<Option<(ObjRef<'h>, ObjRef<'h>)>, HeapError> {
        let hash = key_hash(key)?;
        Ok(self.with(|t| {
            let found = t
                .index
                .find_entry(hash, |&i| matches(&t.entries[i], hash, key))
                .ok()?;
            let (i, _) = found.remove();
            let entry = t.entries[i].take()?;
            t.live -= 1;
            if t.live * 2 < t.entries.len() && t.entries.len() > 8 {
                t.compact();
            }
            Some((entry.key, entry.value))
        }))
    }

    /// New references to every (key, value), in insertion order (a snapshot).
    pub fn items(&self) -> Vec<(ObjRef<'h>, ObjRef<'h>)> {
        self.with(|t| {
            t.entries
                .iter()
                .flatten()
                .map(|e| (e.key.clone(), e.value.clone()))
                .collect()
        })
    }

    /// Removes every entry; they are dropped after the table is empty.
    pub fn clear(&self) {
        drop(self.with(std::mem::take));
    }

    /// Reports every key and value.
    pub fn trace(&self, visit: &mut Visit<'_>) {
        // SAFETY: the visitor changes nothing (Trace's contract), so the table is not written
        // while this shared borrow lives.
        let t = unsafe { &*self.inner.get() };
        for e in t.entries.iter().flatten() {
            visit.visit(&e.key);
            visit.visit(&e.value);
        }
    }

    /// Whether every key and value is an atom (CPython untracks such dicts).
    pub fn holds_only_atoms(&self) -> bool {
        self.with(|t| {
            t.entries
                .iter()
                .flatten()
                .all(|e| !e.key.type_info().container && !e.value.type_info().container)
        })
    }

    /// Bytes of the index and entry arrays (outside the object's block).
    pub(crate) fn buffer_bytes(&self) -> usize {
        self.with(|t| {
            t.entries.capacity() * std::mem::size_of::<Option<Entry<'h>>>()
                + t.index.capacity() * (std::mem::size_of::<usize>() + 1)
        })
    }
}

impl Inner<'_> {
    /// Drops the holes left by deletions, keeping the order.
    fn compact(&mut self) {
        self.entries.retain(Option::is_some);
        self.index.clear();
        for (i, e) in self.entries.iter().enumerate() {
            let hash = e.as_ref().map_or(0, |e| e.hash);
            let entries = &self.entries;
            self.index
                .insert_unique(hash, i, |&j| entries[j].as_ref().map_or(0, |e| e.hash));
        }
    }
}

fn matches(entry: &Option<Entry<'_>>, hash: u64, key: &ObjRef<'_>) -> bool {
    entry
        .as_ref()
        .is_some_and(|e| e.hash == hash && (e.key.ptr_eq(key) || key_eq(&e.key, key)))
}
