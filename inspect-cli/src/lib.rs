//! # inspect-cli: the `heap-inspect` tool and its heapgraph library
//!
//! `heap-inspect` runs workloads on a pyheap heap, replays heaps exported from CPython 3.11,
//! prints the statistics of every tier (text, or JSON of the schema in `SCHEMA.md`), and
//! draws the heap as SVG pictures. The binary is a thin command line over this library:
//!
//! ```text
//!   main.rs ── cli (clap) ── commands::execute ─┬─ demo, run ──────── workload ─┐
//!                                                ├─ replay, map ────── replay ───┼── pyheap::Heap
//!                                                ├─ timeline ───────── workload ─┘
//!                                                ├─ capture ────────── python/ (embedded exporter)
//!                                                └─ check ──────────── heapgraph
//!   output: text or the JSON envelope        svg: the heap map and the timeline pictures
//! ```
//!
//! * [`heapgraph`]: the reader, writer and checker of heapgraph files, the JSON Lines format
//!   in which a real CPython 3.11 heap and the verdict of CPython's cycle collector on it are
//!   exported (`shared/heapgraph-format.md`). The exporter is `python/export_heapgraph.py`.
//! * [`replay`]: builds a heapgraph's objects in a pyheap heap, each kind with its own
//!   allocator, and checks that pyheap's collector finds exactly CPython's garbage.
//! * [`workload`]: the built-in, deterministic workloads.
//! * [`commands`]: one module per subcommand; [`output`]: text and JSON; [`svg`]: pictures.
//!
//! ```
//! use inspect_cli::heapgraph::{check, HeapGraph};
//!
//! let file = concat!(
//!     r#"{"format":"heapgraph","version":1,"producer":"doc","python":"3.11.7","objects":2}"#, "\n",
//!     r#"{"id":0,"type":"list","kind":"list","size":64,"refs":[1],"external":1,"tracked":true}"#, "\n",
//!     r#"{"id":1,"type":"list","kind":"list","size":64,"refs":[1],"external":0,"tracked":true}"#, "\n",
//!     r#"{"trailer":true,"garbage":[],"collected":0,"collect_ns":1,"live_collect_ns":1}"#, "\n",
//! );
//! let graph = HeapGraph::read(file.as_bytes())?;
//! assert!(check(&graph).is_match()); // list 1 is reachable from list 0, held from outside
//! # Ok::<(), inspect_cli::heapgraph::ReadError>(())
//! ```

#![forbid(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn)]

pub mod cli;
pub mod commands;
pub mod error;
pub mod heapgraph;
pub mod output;
pub mod replay;
pub mod rng;
pub mod svg;
pub mod workload;
