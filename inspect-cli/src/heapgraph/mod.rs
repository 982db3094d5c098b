//! Heapgraph files: a real CPython 3.11 heap and its cycle collector's verdict.
//!
//! A heapgraph file (`shared/heapgraph-format.md`, version 1) is JSON Lines: a header, one line
//! per object of the heap (its type, kind, size, the ids it refers to, how many references come
//! from outside the file, whether the collector tracks it), and a trailer with the ids CPython's
//! full collection found unreachable. A memory manager that replays the file must find the same
//! garbage. This module reads such files into a compact [`HeapGraph`], writes them back, and
//! checks the trailer's verdict against the graph:
//!
//! * [`HeapGraph::read`] streams a file line by line (a heap of half a million objects is some
//!   60 MB of text; only one line is held at a time) and checks every rule of sections 1 to 4. A file that breaks one gives a [`ReadError`]: the 1-based line and an [`ErrorKind`].
//!   The reader never panics, whatever the input.
//! * [`HeapGraph::write`] writes a graph back; reading what it wrote gives the same graph.
//! * [`expected_garbage`] computes section 5's garbage set G, and [`check`] compares it with
//!   the trailer's `garbage` ([`CheckReport`]).
//!
//! In memory an object line takes 48 bytes ([`ObjectLine`]): references live in one flat
//! `Vec<u32>` ([`HeapGraph::refs`]), type names are interned ([`TypeNames`]), the kind is an
//! enum ([`Kind`]), and an atom's value or a container's length share one field ([`Detail`]).
//!
//! ```
//! use inspect_cli::heapgraph::{expected_garbage, HeapGraph};
//!
//! // The format's section 9 example: a dict held from outside, the list it holds, a list
//! // that holds only itself, the dict's key and the small int 7.
//! let file = include_str!("../../testdata/graphs/spec-example.jsonl");
//! let graph = HeapGraph::read(file.as_bytes())?;
//! assert_eq!(graph.len(), 5);
//! assert_eq!(expected_garbage(&graph), [2]);
//! assert_eq!(graph.trailer.garbage, [2]);
//! # Ok::<(), inspect_cli::heapgraph::ReadError>(())
//! ```

mod error;
mod garbage;
mod json;
mod model;
mod read;
mod write;

pub(crate) use error::{is_bidi_control, printable};
pub use error::{ErrorKind, ReadError};
pub use garbage::{check, expected_garbage, CheckReport};
pub use model::{
    Counts, Detail, Header, HeapGraph, Kind, NewObject, ObjectLine, RefSpan, Trailer, TypeName,
    TypeNames,
};
pub use read::{read, MAX_LINE, VERSION};
pub use write::write;
