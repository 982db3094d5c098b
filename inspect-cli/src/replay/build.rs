//! Building a heapgraph's objects in a pyheap heap.
//!
//! Objects are made in four passes, so that every reference can be set although tuples are
//! immutable and the graph has cycles:
//!
//! 1. **atoms and mutable containers**, in id order: ints (small ones from the cache), floats,
//!    strs and bytes of the right length; lists with one `None` slot per reference, empty
//!    dicts, instances of one class per type name, opaque stand-ins (sets and `other`) with one
//!    `None` slot per reference;
//! 2. **tuples**, each once everything it refers to exists: in dependency order over
//!    tuple-to-tuple references (Kahn's algorithm, without recursion). A tuple in a cycle of
//!    tuples only (impossible in CPython) becomes an opaque stand-in, filled in pass 3;
//! 3. **references** of the mutable containers: list slots, dict entries, instance attributes
//!    `"0"`, `"1"`, ..., opaque slots. A dict whose keys are not all strs lists (value, key)
//!    pairs (CPython's `dict_traverse`), and is built with those keys when they are hashable
//!    and distinct in pyheap (strs of the build are `"x" * len`, so two keys may collide);
//!    otherwise, and for str-keyed dicts (values only), every reference is a value under a
//!    synthetic int key `0..n`;
//! 4. **tracking**: every container is tracked exactly when the file says it is. pyheap
//!    untracks a tuple of atoms at birth where CPython waits for a collection, so such a tuple
//!    is tracked again when the file says so; and containers CPython had untracked (dicts and
//!    tuples of atoms, struct sequences, code and type objects) are untracked, so that their
//!    references act as outside references, as section 5 of the format requires.
//!
//! Then each object held from outside (`external > 0`) gets one root handle, and every other
//! handle of the build is dropped: an object's count is then its in-degree in the file plus one
//! if it is held from outside.

use std::collections::{HashMap, VecDeque};

use pyheap::object::{as_instance, Class, Dict, List, Opaque};
use pyheap::{Heap, HeapError, ObjRef, Ref};

use crate::error::CliError;
use crate::heapgraph::{Detail, HeapGraph, Kind, ObjectLine, TypeName};

/// The value of an int whose `value` the file leaves out (beyond 64 bits): any int that is not
/// cached will do.
const BIG_INT: i64 = i64::MAX;

/// What the build had to do beyond the file's objects.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct BuildReport {
    /// Tuples in cycles of tuples, made as opaque stand-ins.
    pub tuples_made_opaque: u64,
    /// Tuples of atoms pyheap had untracked at birth, tracked again as the file says.
    pub tuples_tracked_again: u64,
    /// Dicts pyheap left untracked (they hold nothing that may be tracked: CPython's
    /// `MAINTAIN_TRACKING`), tracked again as the file says (CPython untracks such a dict only
    /// at a full collection).
    pub dicts_tracked_again: u64,
    /// Containers untracked because the file says CPython did not track them.
    pub containers_untracked: u64,
    /// Classes made for instances, one per type name.
    pub classes: u64,
    /// Int objects made as dict keys beyond the small-int cache (shared by all dicts).
    pub dict_keys_made: u64,
    /// Dicts built with the keys the file lists ((value, key) pairs).
    pub dicts_with_file_keys: u64,
    /// Objects held by one root handle each (`external > 0`).
    pub roots: u64,
    /// Untracked objects no one holds (`external` 0, no referrer: a count of 0, which no
    /// CPython object has; a clamped file can say so), kept alive by a handle so that their
    /// references stay outside references as section 5 says.
    pub unowned_untracked: u64,
    /// Tracked objects no one holds, kept alive by a list that is itself garbage (not an
    /// object of the file), so that the collector finds them unreachable as section 5 says.
    pub unowned_tracked: u64,
}

/// Makes the graph's objects. `on_object` is called once per object made (for a progress bar).
/// Returns the handle of every object, indexed by id.
pub(crate) fn build<'h>(
    heap: &'h Heap,
    graph: &HeapGraph,
    report: &mut BuildReport,
    on_object: &mut dyn FnMut(),
) -> Result<Vec<ObjRef<'h>>, CliError> {
    let mut builder = Builder::new(heap, graph);
    let mut slots = builder.atoms_and_containers(report, on_object)?;
    builder.tuples(&mut slots, report, on_object)?;
    let slots: Vec<ObjRef<'h>> = slots
        .into_iter()
        .map(|s| s.unwrap_or_else(|| heap.none()))
        .collect();
    builder.fill(&slots, report)?;
    builder.set_tracking(&slots, report);
    Ok(slots)
}

struct Builder<'h, 'g> {
    heap: &'h Heap,
    graph: &'g HeapGraph,
    none: ObjRef<'h>,
    /// `"x" * n` for the longest str/bytes of the file: atoms are slices of it.
    text: String,
    classes: HashMap<TypeName, Ref<'h, Class<'h>>>,
    /// Interned attribute names "0", "1", ...
    names: Vec<ObjRef<'h>>,
    /// Dict keys 0, 1, ... (cached small ints, then ints made once and shared).
    keys: Vec<ObjRef<'h>>,
    /// Ids of tuples made as opaque stand-ins.
    opaque_tuples: Vec<bool>,
}

impl<'h, 'g> Builder<'h, 'g> {
    fn new(heap: &'h Heap, graph: &'g HeapGraph) -> Self {
        let longest = graph
            .objects
            .iter()
            .filter(|o| matches!(o.kind, Kind::Str | Kind::Bytes))
            .map(length)
            .max()
            .unwrap_or(0);
        Builder {
            heap,
            graph,
            none: heap.none(),
            text: "x".repeat(longest),
            classes: HashMap::new(),
            names: Vec::new(),
            keys: Vec::new(),
            opaque_tuples: vec![false; graph.len()],
        }
    }

    /// Pass 1: every object but the tuples, in id order.
    fn atoms_and_containers(
        &mut self,
        report: &mut BuildReport,
        on_object: &mut dyn FnMut(),
    ) -> Result<Vec<Option<ObjRef<'h>>>, CliError> {
        let heap = self.heap;
        let mut slots = Vec::with_capacity(self.graph.len());
        for object in &self.graph.objects {
            let refs = self.graph.refs_of(object).len();
            let made = match object.kind {
                Kind::Int => heap.int(match object.detail {
                    Detail::Int(value) => value,
                    _ => BIG_INT,
                })?,
                Kind::Float => heap.float(match object.detail {
                    Detail::Float(value) => value,
                    _ => 0.0,
                })?,
                Kind::Str => heap.str(&self.text[..length(object)])?,
                Kind::Bytes => heap.bytes(&self.text.as_bytes()[..length(object)])?,
                Kind::Tuple => {
                    slots.push(None);
                    continue;
                }
                Kind::List => heap.list(vec![self.none.clone(); refs])?.erase(),
                Kind::Dict => heap.dict()?.erase(),
                Kind::Instance => {
                    let class = self.class(object.type_name, report)?;
                    heap.instance(&class)?
                }
                Kind::Set | Kind::Other => self.opaque(object)?,
            };
            slots.push(Some(made));
            on_object();
        }
        Ok(slots)
    }

    /// An opaque stand-in for `object`, with one empty (`None`) slot per reference.
    fn opaque(&self, object: &ObjectLine) -> Result<ObjRef<'h>, CliError> {
        let refs = self.graph.refs_of(object).len();
        let size = object.size.min(MAX_OBJECT_BYTES) as usize;
        Ok(self.heap.opaque(
            self.graph.type_name(object),
            size,
            &vec![self.none.clone(); refs],
        )?)
    }

    /// The class of instances of type `name` (made on first use).
    fn class(
        &mut self,
        name: TypeName,
        report: &mut BuildReport,
    ) -> Result<Ref<'h, Class<'h>>, CliError> {
        if let Some(class) = self.classes.get(&name) {
            return Ok(class.clone());
        }
        let text = self.graph.type_names.get(name).unwrap_or("?");
        let class = self.heap.class(text, None)?;
        self.classes.insert(name, class.clone());
        report.classes += 1;
        Ok(class)
    }

    /// Pass 2: the tuples, each after the tuples it refers to.
    fn tuples(
        &mut self,
        slots: &mut [Option<ObjRef<'h>>],
        report: &mut BuildReport,
        on_object: &mut dyn FnMut(),
    ) -> Result<(), CliError> {
        let graph = self.graph;
        let is_tuple = |id: u32| graph.objects[id as usize].kind == Kind::Tuple;
        // waiting[t]: references of tuple t to tuples not made yet (duplicates counted);
        // dependents[u]: the tuples that refer to tuple u (once per reference).
        let mut waiting = vec![0u32; graph.len()];
        let mut dependents: HashMap<u32, Vec<u32>> = HashMap::new();
        let mut tuple_ids = Vec::new();
        for (object, id) in graph.objects.iter().zip(0u32..) {
            if object.kind != Kind::Tuple {
                continue;
            }
            tuple_ids.push(id);
            let mut count = 0;
            for &target in graph.refs_of(object).iter().filter(|&&t| is_tuple(t)) {
                count += 1;
                dependents.entry(target).or_default().push(id);
            }
            waiting[id as usize] = count;
        }
        let mut ready: VecDeque<u32> = tuple_ids
            .iter()
            .copied()
            .filter(|&id| waiting[id as usize] == 0)
            .collect();
        let mut next_stuck = 0; // scan position in tuple_ids for the cycle fallback
        let mut made = 0;
        while made < tuple_ids.len() {
            let id = match ready.pop_front() {
                Some(id) => {
                    let object = &graph.objects[id as usize];
                    let items: Vec<ObjRef<'h>> = graph
                        .refs_of(object)
                        .iter()
                        .map(|&r| {
                            slots[r as usize]
                                .clone()
                                .unwrap_or_else(|| self.none.clone())
                        })
                        .collect();
                    slots[id as usize] = Some(self.heap.tuple(&items)?.erase());
                    id
                }
                None => {
                    // Only tuples in (or behind) a cycle of tuples are left: the first one not
                    // made yet becomes an opaque stand-in, and its dependents may go on.
                    while slots[tuple_ids[next_stuck] as usize].is_some() {
                        next_stuck += 1;
                    }
                    let id = tuple_ids[next_stuck];
                    slots[id as usize] = Some(self.opaque(&graph.objects[id as usize])?);
                    self.opaque_tuples[id as usize] = true;
                    report.tuples_made_opaque += 1;
                    id
                }
            };
            made += 1;
            on_object();
            for &dependent in dependents.get(&id).map_or(&[][..], Vec::as_slice) {
                if slots[dependent as usize].is_some() {
                    continue; // made opaque already
                }
                let count = &mut waiting[dependent as usize];
                *count -= 1;
                if *count == 0 {
                    ready.push_back(dependent);
                }
            }
        }
        Ok(())
    }

    /// Pass 3: the references of lists, dicts, instances and opaque stand-ins.
    fn fill(&mut self, slots: &[ObjRef<'h>], report: &mut BuildReport) -> Result<(), CliError> {
        let graph = self.graph;
        for (id, object) in graph.objects.iter().enumerate() {
            let refs = graph.refs_of(object);
            if refs.is_empty() {
                continue;
            }
            let obj = &slots[id];
            let target = |r: u32| slots[r as usize].clone();
            match object.kind {
                Kind::List => {
                    let list = obj.downcast_ref::<List>().ok_or(not_a(obj))?;
                    for (i, &r) in refs.iter().enumerate() {
                        list.set(i, target(r))?;
                    }
                }
                Kind::Dict => {
                    let dict = obj
                        .downcast_ref::<pyheap::object::Dict>()
                        .ok_or(not_a(obj))?;
                    if self.file_keys(dict, object, slots)? {
                        report.dicts_with_file_keys += 1;
                        continue;
                    }
                    for (i, &r) in refs.iter().enumerate() {
                        let key = self.key(i, report)?;
                        dict.set(key, target(r))?;
                    }
                }
                Kind::Instance => {
                    let instance = as_instance(obj).ok_or(HeapError::NotAnInstance {
                        type_name: obj.type_info().name,
                    })?;
                    for (i, &r) in refs.iter().enumerate() {
                        let name = self.name(i)?;
                        instance.set_attr(name, target(r))?;
                    }
                }
                Kind::Tuple if !self.opaque_tuples[id] => {}
                Kind::Set | Kind::Other | Kind::Tuple => {
                    let opaque = obj.downcast_ref::<Opaque>().ok_or(not_a(obj))?;
                    for (i, &r) in refs.iter().enumerate() {
                        opaque.set_ref(i, Some(target(r)))?;
                    }
                }
                Kind::Int | Kind::Float | Kind::Str | Kind::Bytes => {}
            }
        }
        Ok(())
    }

    /// Fills `dict` from the (value, key) pairs its line lists, when it lists pairs (twice
    /// `len` references) and every key is hashable and distinct in pyheap. Returns false, with
    /// the dict left empty, otherwise.
    fn file_keys(
        &self,
        dict: &pyheap::object::Dict<'h>,
        object: &ObjectLine,
        slots: &[ObjRef<'h>],
    ) -> Result<bool, CliError> {
        let refs = self.graph.refs_of(object);
        let Detail::Len(len) = object.detail else {
            return Ok(false);
        };
        if len == 0 || refs.len() as u64 != 2 * len {
            return Ok(false);
        }
        for pair in refs.chunks_exact(2) {
            let (value, key) = (&slots[pair[0] as usize], &slots[pair[1] as usize]);
            if pyheap::object::key_hash(key).is_err() || dict.get(key)?.is_some() {
                dict.clear();
                return Ok(false);
            }
            dict.set(key.clone(), value.clone())?;
        }
        Ok(true)
    }

    /// Dict key `i`: the int `i`, made once.
    fn key(&mut self, i: usize, report: &mut BuildReport) -> Result<ObjRef<'h>, CliError> {
        while self.keys.len() <= i {
            let value = self.keys.len() as i64;
            if value > pyheap::SMALL_INT_MAX {
                report.dict_keys_made += 1;
            }
            self.keys.push(self.heap.int(value)?);
        }
        Ok(self.keys[i].clone())
    }

    /// Attribute name `i`: the interned string `"i"`.
    fn name(&mut self, i: usize) -> Result<ObjRef<'h>, CliError> {
        while self.names.len() <= i {
            let name = self.heap.intern(&self.names.len().to_string())?;
            self.names.push(name);
        }
        Ok(self.names[i].clone())
    }

    /// Pass 4: every container tracked exactly when the file says it is.
    fn set_tracking(&self, slots: &[ObjRef<'h>], report: &mut BuildReport) {
        let gc = self.heap.gc();
        for (object, obj) in self.graph.objects.iter().zip(slots) {
            if !obj.type_info().container || gc.is_tracked(obj) == object.tracked {
                continue;
            }
            if object.tracked {
                gc.track(obj);
                if obj.is::<Dict<'_>>() {
                    report.dicts_tracked_again += 1;
                } else {
                    report.tuples_tracked_again += 1;
                }
            } else {
                gc.untrack(obj);
                report.containers_untracked += 1;
            }
        }
    }
}

/// The longest str or bytes the build makes (256 MiB): a file may claim any `len`.
const MAX_ATOM_LEN: u64 = 1 << 28;

/// The largest opaque stand-in the build makes (256 MiB): a file may claim any `size`.
const MAX_OBJECT_BYTES: u64 = 1 << 28;

/// The length of a str or bytes line: its `len` (0 when absent), at most its `size` (an
/// atom's size counts its characters) and [`MAX_ATOM_LEN`].
fn length(object: &ObjectLine) -> usize {
    match object.detail {
        Detail::Len(len) => len.min(object.size).min(MAX_ATOM_LEN) as usize,
        _ => 0,
    }
}

/// The error for an object that is not of the type its pass made (never happens: the build
/// made it).
fn not_a(obj: &ObjRef<'_>) -> HeapError {
    HeapError::NotAnInstance {
        type_name: obj.type_info().name,
    }
}
