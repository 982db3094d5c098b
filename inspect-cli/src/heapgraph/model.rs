//! The typed, compact form of a heapgraph file.
//!
//! ```text
//!   HeapGraph
//!   ├── header      Header                 producer, python, workload, declared counts
//!   ├── objects     Vec<ObjectLine>        48 bytes per object, index = id
//!   │                 type_name ──────────► type_names  (each distinct name stored once)
//!   │                 refs: RefSpan ──────► refs        (one flat Vec<u32> of all edges)
//!   ├── refs        Vec<u32>               object i's refs are refs[span.start..][..span.len]
//!   ├── type_names  TypeNames
//!   └── trailer     Trailer                garbage, timings, exporter's self-checks
//! ```
//!
//! A graph read from a file satisfies every rule of the format: ids are indexes into
//! `objects`, every entry of `refs` names an object, every span lies inside `refs`, and
//! `trailer.garbage` is sorted, in range and tracked. A graph built by hand is not checked;
//! [`HeapGraph::write`] followed by [`HeapGraph::read`] checks it, and the replay refuses one
//! with a reference outside it ([`HeapGraph::first_dangling_ref`]).

use std::collections::HashMap;
use std::fmt;

/// The object model an object belongs to (section 3.3), by exact type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `int` or `bool`: an atom.
    Int,
    /// `float`: an atom.
    Float,
    /// `str`: an atom.
    Str,
    /// `bytes`: an atom.
    Bytes,
    /// `tuple`: a container, perhaps untracked.
    Tuple,
    /// `list`.
    List,
    /// `dict`: perhaps untracked.
    Dict,
    /// `set` or `frozenset`.
    Set,
    /// An object of a mutable heap type that is not a metaclass (a class statement's).
    Instance,
    /// Everything else: functions, types, modules, code, `None`, objects of C types.
    Other,
}

impl Kind {
    /// Every kind, in the format's order.
    pub const ALL: [Kind; 10] = [
        Kind::Int,
        Kind::Float,
        Kind::Str,
        Kind::Bytes,
        Kind::Tuple,
        Kind::List,
        Kind::Dict,
        Kind::Set,
        Kind::Instance,
        Kind::Other,
    ];

    /// The kind's name in the file (`"int"`, ..., `"other"`).
    pub fn name(self) -> &'static str {
        match self {
            Kind::Int => "int",
            Kind::Float => "float",
            Kind::Str => "str",
            Kind::Bytes => "bytes",
            Kind::Tuple => "tuple",
            Kind::List => "list",
            Kind::Dict => "dict",
            Kind::Set => "set",
            Kind::Instance => "instance",
            Kind::Other => "other",
        }
    }

    /// The kind a file's name stands for.
    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|kind| kind.name() == name)
    }

    /// Atoms hold no references and are never tracked: int, float, str, bytes.
    pub fn is_atom(self) -> bool {
        matches!(self, Kind::Int | Kind::Float | Kind::Str | Kind::Bytes)
    }

    /// Kinds whose lines may carry `len`: str, bytes, tuple, list, dict, set.
    pub fn has_len(self) -> bool {
        matches!(
            self,
            Kind::Str | Kind::Bytes | Kind::Tuple | Kind::List | Kind::Dict | Kind::Set
        )
    }

    /// Kinds whose lines may carry `value`: int and float.
    pub fn has_value(self) -> bool {
        matches!(self, Kind::Int | Kind::Float)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The optional part of an object line: an atom's `value` or a container's `len`. The format
/// allows at most one of them on a line (`value` on ints and floats, `len` on the others).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Detail {
    /// Neither `value` nor `len`.
    #[default]
    None,
    /// `value` of an int (a bool is 0 or 1).
    Int(i64),
    /// `value` of a float (always finite).
    Float(f64),
    /// `len` of a str (code points), bytes, tuple, list, dict or set.
    Len(u64),
}

/// A type name interned in [`TypeNames`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TypeName(u32);

impl TypeName {
    /// The name's index in its [`TypeNames`].
    pub fn index(self) -> u32 {
        self.0
    }
}

/// The distinct `type` strings of a file, each stored once.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TypeNames {
    names: Vec<Box<str>>,
    index: HashMap<Box<str>, TypeName>,
}

impl TypeNames {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// The handle of `name`, added if new.
    ///
    /// # Panics
    ///
    /// If the table already holds 2^32 names (a file never can: it has fewer objects).
    pub fn intern(&mut self, name: &str) -> TypeName {
        if let Some(&handle) = self.index.get(name) {
            return handle;
        }
        let handle = TypeName(u32::try_from(self.names.len()).expect("2^32 type names"));
        self.names.push(name.into());
        self.index.insert(name.into(), handle);
        handle
    }

    /// The name behind a handle of this table.
    pub fn get(&self, name: TypeName) -> Option<&str> {
        self.names.get(name.0 as usize).map(|name| &**name)
    }

    /// The number of distinct names.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Every name with its handle, in the order they were first seen.
    pub fn iter(&self) -> impl Iterator<Item = (TypeName, &str)> {
        (0u32..)
            .zip(&self.names)
            .map(|(i, name)| (TypeName(i), &**name))
    }
}

/// Where an object's references lie in [`HeapGraph::refs`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RefSpan {
    /// Index of the first reference.
    pub start: u32,
    /// Number of references.
    pub len: u32,
}

/// One object line (section 3), compactly: its id is its index in [`HeapGraph::objects`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ObjectLine {
    /// `type(o).__name__`, interned in [`HeapGraph::type_names`].
    pub type_name: TypeName,
    /// The object model (section 3.3).
    pub kind: Kind,
    /// `gc.is_tracked(o)`.
    pub tracked: bool,
    /// Its `refs`, in [`HeapGraph::refs`].
    pub refs: RefSpan,
    /// `sys.getsizeof(o)` in bytes.
    pub size: u64,
    /// References held by owners outside the file (section 3.5).
    pub external: u64,
    /// `value` or `len`.
    pub detail: Detail,
}

/// Line 1 (section 2). `format` and `version` are implied; the number of objects is
/// `HeapGraph::objects.len()`. The optional counts are what the file declared.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Header {
    /// The program that wrote the file.
    pub producer: String,
    /// The CPython version of the heap (`"3.11.7"`).
    pub python: String,
    /// The workload script.
    pub workload: Option<String>,
    /// Total length of all `refs` lists.
    pub edges: Option<u64>,
    /// Objects with `"tracked": true`.
    pub tracked: Option<u64>,
    /// Objects with `external > 0`.
    pub externally_held: Option<u64>,
    /// Objects whose external count was negative and written as 0.
    pub clamped: Option<u64>,
    /// References from untracked objects to tracked ones.
    pub untracked_to_tracked: Option<u64>,
}

impl Header {
    /// A header with the required fields and no declared counts.
    pub fn new(producer: impl Into<String>, python: impl Into<String>) -> Self {
        Self {
            producer: producer.into(),
            python: python.into(),
            ..Self::default()
        }
    }

    /// Declares the counts a graph's objects give (`clamped` is left as it is: only the
    /// exporter knows it).
    pub fn declare(&mut self, counts: &Counts) {
        self.edges = Some(counts.edges);
        self.tracked = Some(counts.tracked);
        self.externally_held = Some(counts.externally_held);
        self.untracked_to_tracked = Some(counts.untracked_to_tracked);
    }
}

/// The last line (section 4): CPython's verdict and the exporter's measurements.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Trailer {
    /// Ids CPython's full collection found unreachable: sorted, each once, all tracked.
    pub garbage: Vec<u32>,
    /// What that `gc.collect()` returned.
    pub collected: u64,
    /// Nanoseconds of that collection.
    pub collect_ns: u64,
    /// Nanoseconds of a collection of the surviving heap.
    pub live_collect_ns: u64,
    /// How `garbage` was obtained.
    pub garbage_source: Option<String>,
    /// How many objects `gc.garbage` held after the measured collection.
    pub saved: Option<u64>,
    /// Ids of `garbage` that were not in `gc.garbage` (resurrected, or freed by finalizers).
    pub not_saved: Option<Vec<u32>>,
    /// Ids in `gc.garbage` but not in `garbage`.
    pub saved_not_garbage: Option<Vec<u32>>,
    /// Nanoseconds of the collection that freed the garbage.
    pub free_collect_ns: Option<u64>,
    /// What that collection returned.
    pub freed: Option<u64>,
    /// What the live collection returned.
    pub live_collected: Option<u64>,
    /// More timings of the live collection.
    pub live_collect_ns_repeats: Option<Vec<u64>>,
    /// Objects of `gc.garbage` that are not in the file.
    pub unmapped_garbage: Option<u64>,
    /// Their histogram by type name, in file order.
    pub unmapped_types: Option<Vec<(String, u64)>>,
    /// Objects of the forked copy's unreachable set that are not in the file.
    pub unmapped_unreachable: Option<u64>,
    /// The exporter's self-checks, as written (section 7).
    pub verify: Option<serde_json::Map<String, serde_json::Value>>,
}

/// Counts computed from the object lines, as the header may declare them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Total length of all `refs`.
    pub edges: u64,
    /// Tracked objects.
    pub tracked: u64,
    /// Objects with `external > 0`.
    pub externally_held: u64,
    /// Entries of `refs` of untracked objects that name tracked objects.
    pub untracked_to_tracked: u64,
    /// Objects with `external == 0` (an upper bound of `clamped`).
    pub zero_external: u64,
}

/// A whole heapgraph file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HeapGraph {
    /// Line 1.
    pub header: Header,
    /// The object lines; an object's id is its index.
    pub objects: Vec<ObjectLine>,
    /// Every object's references, one after the other (see [`ObjectLine::refs`]).
    pub refs: Vec<u32>,
    /// The distinct type names.
    pub type_names: TypeNames,
    /// The last line.
    pub trailer: Trailer,
}

/// An object to append with [`HeapGraph::push`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NewObject<'a> {
    /// `type(o).__name__`.
    pub type_name: &'a str,
    /// The object model.
    pub kind: Kind,
    /// Size in bytes.
    pub size: u64,
    /// Ids of the objects it refers to.
    pub refs: &'a [u32],
    /// Outside references.
    pub external: u64,
    /// Whether the collector tracks it.
    pub tracked: bool,
    /// `value` or `len`.
    pub detail: Detail,
}

impl HeapGraph {
    /// A graph with no objects and an empty trailer.
    pub fn new(header: Header) -> Self {
        Self {
            header,
            ..Self::default()
        }
    }

    /// Appends an object and returns its id.
    ///
    /// # Panics
    ///
    /// If the graph would exceed 2^32 - 1 objects or references, the limits of a readable file.
    pub fn push(&mut self, object: NewObject<'_>) -> u32 {
        let id = u32::try_from(self.objects.len()).expect("2^32 objects");
        let start = u32::try_from(self.refs.len()).expect("2^32 references");
        let len = u32::try_from(object.refs.len()).expect("2^32 references");
        start.checked_add(len).expect("2^32 references");
        self.refs.extend_from_slice(object.refs);
        let type_name = self.type_names.intern(object.type_name);
        self.objects.push(ObjectLine {
            type_name,
            kind: object.kind,
            tracked: object.tracked,
            refs: RefSpan { start, len },
            size: object.size,
            external: object.external,
            detail: object.detail,
        });
        id
    }

    /// The number of objects.
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    /// Whether the graph has no objects.
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    /// The references of an object line (empty if its span lies outside [`HeapGraph::refs`]).
    pub fn refs_of(&self, object: &ObjectLine) -> &[u32] {
        let start = object.refs.start as usize;
        self.refs
            .get(start..start.saturating_add(object.refs.len as usize))
            .unwrap_or(&[])
    }

    /// The first reference that names no object of the graph, as (object, reference): `None`
    /// for a graph read from a file, which is checked; a graph built by hand is not.
    pub fn first_dangling_ref(&self) -> Option<(u32, u32)> {
        let n = self.objects.len();
        (0u32..).zip(&self.objects).find_map(|(id, o)| {
            self.refs_of(o)
                .iter()
                .find(|&&r| r as usize >= n)
                .map(|&r| (id, r))
        })
    }

    /// The type name of an object line (`"?"` for a handle of another table).
    pub fn type_name(&self, object: &ObjectLine) -> &str {
        self.type_names.get(object.type_name).unwrap_or("?")
    }

    /// The counts the header may declare, computed from the objects.
    pub fn counts(&self) -> Counts {
        let mut counts = Counts::default();
        for object in &self.objects {
            let refs = self.refs_of(object);
            counts.edges += refs.len() as u64;
            counts.tracked += u64::from(object.tracked);
            if object.external > 0 {
                counts.externally_held += 1;
            } else {
                counts.zero_external += 1;
            }
            if !object.tracked {
                counts.untracked_to_tracked += refs
                    .iter()
                    .filter(|&&target| self.objects.get(target as usize).is_some_and(|t| t.tracked))
                    .count() as u64;
            }
        }
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_object_line_takes_48_bytes() {
        assert_eq!(std::mem::size_of::<ObjectLine>(), 48);
    }

    #[test]
    fn kinds_round_trip_their_names() {
        for kind in Kind::ALL {
            assert_eq!(Kind::from_name(kind.name()), Some(kind));
        }
        assert_eq!(Kind::from_name("List"), None);
    }

    #[test]
    fn type_names_are_interned_once() {
        let mut names = TypeNames::new();
        let list = names.intern("list");
        assert_eq!(names.intern("dict").index(), 1);
        assert_eq!(names.intern("list"), list);
        assert_eq!(names.len(), 2);
        assert_eq!(names.get(list), Some("list"));
    }
}
