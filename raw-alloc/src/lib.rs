//! # raw-alloc: tier 0 of pyheap
//!
//! The private heap's contact with the operating system, the part of CPython's memory manager
//! that sits under pymalloc. It knows bytes and regions, never objects.
//!
//! ```text
//!                      RawHeap  (one per private heap; single-threaded)
//!   config: arena_size (power of two), limit, backend, debug
//!   counters: arenas allocated / reclaimed / current / high-water, direct blocks, bytes in use
//!        |                                   |                              |
//!        | alloc_arena / free_arena          | alloc_direct / free_direct    | debug layer
//!        v                                   v                              v
//!   +--------+--------+--------+          malloc'd blocks            forbidden pads, fill
//!   | Arena  | Arena  | Arena  |  ...     (large requests; every      patterns, serials,
//!   +--------+--------+--------+           block with Backend::System) live/freed tables
//!   each `arena_size` bytes, aligned to `arena_size`, an ArenaHeader at its base
//! ```
//!
//! ## Invariants
//! - An [`Arena`] starts at a multiple of its size, so `addr & !(size - 1)` is the arena of any
//!   address inside it; its [`ArenaHeader`] holds an opaque owner pointer for the tiers above.
//! - `bytes_in_use` is exactly the bytes of live arenas plus live direct blocks, and never exceeds
//!   the limit: a request past it returns [`OutOfMemory`] and changes nothing.
//! - Nothing here aborts on exhaustion: refusals of the OS come back as [`OutOfMemory`] too.
//! - The debug layer ([`DebugLayer`]) never dereferences a pointer it did not hand out.
//!
//! ## What this tier never does
//! It never knows about size classes, pools or objects; it never decides on its own to return
//! an arena (the tier above says when one is empty); it never panics on a refused request.
//!
//! ## Costs
//! An arena costs one `mmap` (over-mapped by its size, then trimmed to alignment) and one
//! `munmap`. A direct block costs one call of the system allocator. Accounting is a few `Cell`
//! updates. The debug layer adds 32 bytes per block and a hash-table update per allocation/free.

#![deny(unsafe_op_in_unsafe_fn)]

mod arena;
mod config;
pub mod debug;
mod error;
mod heap;
mod os;
mod stats;

pub use arena::{Arena, ArenaHeader, ARENA_HEADER_SIZE};
pub use config::{
    Backend, ConfigError, RawConfig, DEFAULT_ARENA_SIZE, MAX_ARENA_SIZE, MIN_ARENA_SIZE,
};
pub use debug::{DebugLayer, DebugViolation, ViolationKind};
pub use error::{OomCause, OutOfMemory};
pub use heap::{RawHeap, ALIGNMENT};
pub use stats::{DebugStats, RawStats};
