//! # inspect-cli: the `heap-inspect` tool and its heapgraph library
//!
//! The library half of the crate; the `heap-inspect` binary is a thin command line over it.
//! Today it holds [`heapgraph`]: the reader, writer and checker of heapgraph files, the JSON
//! Lines format in which a real CPython 3.11 heap and the verdict of CPython's cycle collector
//! on it are exported (`shared/heapgraph-format.md`). The exporter that writes such files from
//! a running interpreter is `python/export_heapgraph.py` in this crate.
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

pub mod heapgraph;
