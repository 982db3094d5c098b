//! # pyheap
//!
//! CPython's memory manager rebuilt as layered Rust crates. This root package is the façade: it
//! re-exports the tiers that exist so far.
//!
//! | tier | crate | owns |
//! | --- | --- | --- |
//! | 0 | [`raw_alloc`] | arenas from the OS, heap limit, accounting, debug layer, backends |

#![deny(unsafe_op_in_unsafe_fn)]

pub use raw_alloc;
