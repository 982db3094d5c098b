//! # refcount: tier 2 of pyheap (not built yet)
//!
//! The object header, type descriptors and handles will live here (issue #4).
